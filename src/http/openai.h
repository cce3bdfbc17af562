/* http/openai — the OpenAI-compatible routes of the local API.
 *
 * GET /v1/models lists the models in the local store and those the network sells; POST
 * /v1/completions and POST /v1/chat/completions generate from one of them, locally or
 * bought from another node (streamed as server-sent events with "stream": true); POST
 * /v1/embeddings embeds text with one of this node's own models (http/embeddings). The
 * routes join the node's table through openai_routes_add. Handlers run on HTTP threads. */
#ifndef APIARY_HTTP_OPENAI_H
#define APIARY_HTTP_OPENAI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/route.h"
#include "market/gen.h"
#include "llm/local.h"
#include "market/stream.h"

struct MHD_Connection;

typedef struct http_request {
  struct MHD_Connection *conn;
  const char *method;
  const char *path;
  const char *body;      /* borrowed; may be NULL */
  size_t body_len;
  const char *models_dir;
  const char *node_id;
  gen *gen;              /* every generation: market/gen (NULL: this node runs none) */
  json_t *(*remote_models)(void *ud);
  void *remote_ud;
  int privacy;           /* the API token's privacy level (privacy/policy; 0: none set) */
} http_request;

/* Registers the OpenAI routes. 0 or http_route_add's error. */
int openai_routes_add(http_routes *t);

/* Internal helpers shared by the http files. */
int http__completions(const http_request *req);
int http__chat_completions(const http_request *req);
int http__embeddings(const http_request *req); /* http/embeddings */
int http__begin(const http_request *req, json_t **body_out, local_req *lr, char *name, size_t name_cap,
                int *stream, int *include_usage, int default_max);
/* How the choices of one request are answered. */
typedef struct http_gen_plan {
  int chat;              /* chat.completion shapes */
  int stream, include_usage;
  int logprobs;          /* the choices carry logprobs (http/logprobs) */
  int echo;              /* completions: each choice's text starts with its prompt */
  int per_prompt;        /* n: choices per prompt (usage counts a prompt once) */
} http_gen_plan;
/* Answers lrs[0..n_lr) (takes them all): one choice, or (streamed) several one after another. */
int http__generate(const http_request *req, local_req *lrs, int n_lr, const char *model, const http_gen_plan *p);
int http__send_json(struct MHD_Connection *c, unsigned status, json_t *j /* taken */);

/* The log line of the request being handled on this thread (one per request, written when
 * it completes; never the prompt). Handlers fill what they know; NULL outside a request. */
typedef struct http_log {
  unsigned status;            /* the HTTP status answered */
  char model[96];             /* the model asked for */
  char served[8];             /* "local" or "network" */
  char node[64];              /* the node that produced the tokens */
  int prompt_tokens, completion_tokens;
  uint64_t wei;               /* paid for it */
} http_log;
http_log *http__log(void);
/* Adds the CORS headers to r when the request on this thread came from an allowed origin. */
struct MHD_Response;
void http__cors(struct MHD_Response *r);
/* 1 when the client of c closed its end (a hang-up or a reset): nobody will read an answer. */
int http__client_gone(struct MHD_Connection *c);
/* ---- waiting without holding a thread (http/server) ------------------------------------
 * The server runs a small pool of threads, each serving many connections: a handler never
 * blocks. To wait (for a generation to start or end, an embedding, the 429 hold), it parks
 * the request; to stream, its content reader suspends the connection when it has nothing to
 * send. A producer's news (gen_set_notify, an MCP event) resumes it through http__wake; a
 * timer resumes every parked connection after at most its ms, so it can look whether its
 * client left (http__client_gone) or its time is up. */
typedef int (*http_cont_fn)(const http_request *req, void *ud);
/* Parks the request on c: suspended until woken or ms passed, then fn(req, ud) is called on a
 * pool thread to go on (answer, or park again). free_fn(ud) runs once nothing needs ud: after
 * fn returns without parking again, or when the connection ends. Only from a handler or from
 * fn. Returns MHD_YES. */
int http__wait(struct MHD_Connection *c, http_cont_fn fn, void *ud, void (*free_fn)(void *ud), unsigned ms);
/* Runs fn(req, ud) now as a handler that may park (http__wait with the same fn, ud and
 * free_fn); free_fn(ud) runs when it answered without parking. fn's MHD_Result. */
int http__run(const http_request *req, http_cont_fn fn, void *ud, void (*free_fn)(void *ud));
/* From a content reader with nothing to send: suspends c until woken or ms passed (the
 * reader then returns 0 and is called again). 0, or ERR_CANCELED when the server is
 * stopping (end the stream). */
int http__suspend(struct MHD_Connection *c, unsigned ms);
/* The wake handle of c: a reference (dropped with http__waker_unref) that stays safe to wake
 * after the connection is gone. http__wake: any thread, cheap (fits gen_set_notify). */
void *http__waker(struct MHD_Connection *c);
void http__waker_unref(void *w);
void http__wake(void *w);
/* src's news wakes c (text: each piece of text too, for a stream; else only a provider
 * chosen and the end); http__gen_release unhooks it and releases src (NULL ok). */
void http__gen_watch(struct MHD_Connection *c, gen_stream *src, int text);
void http__gen_release(gen_stream *src);
/* Milliseconds on the monotonic clock. */
uint64_t http__now_ms(void);

/* 429 rate_limit_exceeded with Retry-After: 1, held HTTP_BUSY_HOLD_MS first (parked). */
int http__send_busy(struct MHD_Connection *c, const char *message);
int http__send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *code,
                     const char *message);

#endif
