/* agent/mcp_client_http — what the Streamable HTTP transport (agent/mcp_client_http.c) and
 * its standalone-stream listener (agent/mcp_client_listen.c) share. Internal to them.
 *
 * One exchange is one HTTP request and its answer: headers (status, content type, session
 * id, WWW-Authenticate) and body (a JSON object, an SSE stream fed to a parser, or the start
 * of an error body), with any server request met on the way answered through a second
 * handle. The caller's exchanges use t->curl and t->side; the listener's t->lcurl and
 * t->lside, from its own thread. */
#ifndef APIARY_AGENT_MCP_CLIENT_HTTP_H
#define APIARY_AGENT_MCP_CLIENT_HTTP_H

#include <curl/curl.h>
#include <pthread.h>

#include "agent/mcp_client_int.h"
#include "core/buf.h"

#define MCP_CLIENT_SESSION_MAX 256
#define MCP_CLIENT_RETRY_DEFAULT_MS 1000
#define MCP_CLIENT_LISTEN_READY_MS 3000 /* longest wait for the standalone stream to open */

typedef struct mcp_client_http {
  mcp_client *c;
  char *url;                  /* owned */
  char *bearer;               /* owned, secret; NULL = none */
  char session[MCP_CLIENT_SESSION_MAX + 1]; /* "" = no session */
  CURL *curl;                 /* requests, resumptions, notifications */
  CURL *side;                 /* answers to server requests sent while a stream is open */
  int reinit;                 /* inside a re-initialization: no second one */
  /* The standalone stream (GET), read by the listener thread with its own handles. */
  pthread_t listener;
  int listening;              /* the thread runs (caller thread's view) */
  CURL *lcurl, *lside;        /* listener thread only */
  pthread_mutex_t lmu;        /* guards lstop, lsock */
  pthread_cond_t lcv;
  int lstop;                  /* the listener is asked to end */
  int lready;                 /* its first GET was answered (or failed) */
  curl_socket_t lsock;        /* its connection (shut down to wake it), CURL_SOCKET_BAD = none */
} mcp_client_http;

/* One HTTP exchange: what its headers and body said. */
typedef struct mcp_client_exch {
  mcp_client_http *t;
  CURL *h;                    /* the handle of the exchange */
  CURL **side;                /* the handle answers to the server's requests go out on */
  long status;                /* the final response's status */
  int sse;                    /* Content-Type: text/event-stream */
  int www_auth;               /* a WWW-Authenticate header came */
  char session[MCP_CLIENT_SESSION_MAX + 1]; /* Mcp-Session-Id received ("" = none) */
  int session_bad;
  buf body;                   /* a JSON body, or the start of an error body */
  int body_too_big;
  mcp_client_sse *parser;     /* the SSE parser (outlives the exchange across resumptions) */
  int want;                   /* a response is awaited ... */
  json_int_t want_id;         /* ... with this id */
  json_t *resp;               /* the response (owned until taken) */
  int sse_too_big;            /* an event over the cap was dropped */
} mcp_client_exch;

typedef enum { MCP_HTTP_POST, MCP_HTTP_GET, MCP_HTTP_DELETE } mcp_client_http_method;

/* Starts an exchange: caller's handles, parser (borrowed, outlives it), a response awaited
 * with id when want. */
void mcp_client__http_exch_init(mcp_client_exch *x, mcp_client_http *t, mcp_client_sse *parser, int want, json_int_t id);
/* Performs one exchange on x->h; returns the curl code (CURLE_WRITE_ERROR when the answer
 * came and the stream was dropped on purpose: check x->resp). body may be NULL; last_id
 * (may be NULL) becomes Last-Event-ID; timeout_ms < 0: none. */
CURLcode mcp_client__http_perform(mcp_client_http *t, mcp_client_exch *x, mcp_client_http_method m, const char *body,
                                  const char *last_id, long timeout_ms);

/* The standalone stream (agent/mcp_client_listen.c): start after initialize (returns once the
 * GET is open or refused, at most MCP_CLIENT_LISTEN_READY_MS), stop before re-initializing or closing;
 * hooks sets the listener handle's socket callbacks. Caller thread. */
void mcp_client__listen_start(mcp_client_http *t);
void mcp_client__listen_stop(mcp_client_http *t);
void mcp_client__listen_hooks(mcp_client_http *t, CURL *c);

#endif
