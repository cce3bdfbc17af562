/* agent/mcp_client_int — what the MCP client's core (agent/mcp_client.c) and its two
 * transports (agent/mcp_client_stdio.c, agent/mcp_client_http.c) share. Not for use
 * outside agent/mcp_client*.
 *
 * The core builds messages, matches nothing itself and holds the per-client mutex; a
 * transport moves one request to the server and brings back the response with the same id,
 * answering whatever the server asks meanwhile with mcp_client__answer. */
#ifndef APIARY_AGENT_MCP_CLIENT_INT_H
#define APIARY_AGENT_MCP_CLIENT_INT_H

#include <pthread.h>

#include "agent/mcp_client.h"
#include "agent/mcp_client_frame.h"

typedef struct mcp_client_transport {
  /* Sends request msg (taken; its "id" is id) and waits up to timeout_ms for the response
   * object with that id: 0 with *resp_out (owned), or an error with err filled. */
  int (*request)(mcp_client *c, json_t *msg, json_int_t id, int timeout_ms, json_t **resp_out, char *err, size_t cap);
  /* Sends a notification (taken); 0 or an error. */
  int (*notify)(mcp_client *c, json_t *msg, char *err, size_t cap);
  /* Ends the session and frees the transport's state (c->tr). */
  void (*close)(mcp_client *c);
} mcp_client_transport;

struct mcp_client {
  char name[128];                  /* label for errors and logs */
  int timeout_ms;                  /* default per-request timeout */
  const mcp_client_transport *t;   /* the transport's functions */
  void *tr;                        /* the transport's state (owned by it) */
  pthread_mutex_t mu;              /* serializes calls */
  json_int_t next_id;              /* JSON-RPC ids: 1, 2, ... never reused */
  json_t *init;                    /* the initialize result (owned) */
  char version[16];                /* negotiated protocol revision */
};

/* Opens the transports: fill c->t and c->tr, or return an error (with err). */
int mcp_client__stdio_open(mcp_client *c, const mcp_client_cfg *cfg, char *err, size_t cap);
int mcp_client__http_open(mcp_client *c, const mcp_client_cfg *cfg, char *err, size_t cap);

/* initialize + notifications/initialized over c's transport (the HTTP transport calls it
 * again when the server forgot the session). 0 or an error. */
int mcp_client__initialize(mcp_client *c, char *err, size_t cap);

/* Logs a notification from the server (borrowed) at debug level. */
void mcp_client__notified(const mcp_client *c, const json_t *msg);

/* Milliseconds on the monotonic clock. */
long long mcp_client__now_ms(void);

#endif
