/* http/openai — the OpenAI-compatible routes of the local API.
 *
 * GET /v1/models lists the models in the local store. The completion routes arrive with
 * the inference engine and market wiring (issue: inference market). Handlers run on HTTP
 * threads. */
#ifndef APIARY_HTTP_OPENAI_H
#define APIARY_HTTP_OPENAI_H

#include <jansson.h>
#include <stddef.h>

struct MHD_Connection;

typedef struct http_request {
  struct MHD_Connection *conn;
  const char *method;
  const char *path;
  const char *body;      /* borrowed; may be NULL */
  size_t body_len;
  const char *models_dir;
  const char *node_id;
} http_request;

/* Routes req and queues a response. Returns an MHD_Result. */
int openai_route(const http_request *req);

/* Internal helpers shared by the http files. */
int http__send_json(struct MHD_Connection *c, unsigned status, json_t *j /* taken */);
int http__send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *code,
                     const char *message);

#endif
