/* http/openai — OpenAI-compatible routes; see openai.h. */
#include "http/openai.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm/mstore.h"

/* The node's own models, then the ones the network sells (by sha256, not twice): the data
 * array of GET /v1/models (owned), or NULL. */
static json_t *models_data(const http_request *req) {
  enum { MAX = 256 };
  mstore_model *list = calloc(MAX, sizeof *list);
  if (!list) return NULL;
  int n = mstore_list(req->models_dir, list, MAX);
  json_t *data = json_array();
  for (int i = 0; i < n; i++) {
    struct stat st;
    long long created = stat(list[i].path, &st) == 0 ? (long long)st.st_mtime : 0;
    json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "id", list[i].name, "object", "model",
                                          "created", (json_int_t)created, "owned_by", req->node_id, "sha256",
                                          list[i].sha256, "size", (json_int_t)list[i].size));
  }
  /* Models other nodes sell: requests for them are routed to the network. */
  json_t *remote = req->remote_models ? req->remote_models(req->remote_ud) : NULL;
  size_t k;
  json_t *x;
  json_array_foreach(remote, k, x) {
    const char *sha = json_string_value(json_object_get(x, "sha256"));
    int local = 0;
    for (int i = 0; i < n && !local; i++) local = sha && !strcmp(list[i].sha256, sha);
    if (local || !sha) continue;
    json_array_append_new(data, json_pack("{s:s, s:s, s:I, s:s, s:s, s:O, s:O}", "id",
                                          json_string_value(json_object_get(x, "name")), "object", "model", "created",
                                          (json_int_t)0, "owned_by", "network", "sha256", sha, "providers",
                                          json_object_get(x, "providers"), "min_price_gen_wei_per_1k",
                                          json_object_get(x, "min_price_gen")));
  }
  json_decref(remote);
  free(list);
  return data;
}

static int list_models(const http_request *req, void *ud) {
  (void)ud;
  json_t *data = models_data(req);
  if (!data) return MHD_NO;
  return http__send_json(req->conn, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

/* GET /v1/models/{id}: one model, by name or sha256 (ours first, then the network's). */
static int get_model(const http_request *req, void *ud) {
  (void)ud;
  const char *id = req->path + strlen("/v1/models/");
  json_t *data = models_data(req);
  if (!data) return MHD_NO;
  size_t i;
  json_t *x, *found = NULL;
  json_array_foreach(data, i, x) {
    const char *name = json_string_value(json_object_get(x, "id"));
    const char *sha = json_string_value(json_object_get(x, "sha256"));
    if ((name && !strcmp(name, id)) || (sha && !strcmp(sha, id))) { found = json_incref(x); break; }
  }
  json_decref(data);
  if (found) return http__send_json(req->conn, 200, found);
  char msg[400];
  snprintf(msg, sizeof msg, "model '%.200s' is neither on this node nor offered by the network (see GET /v1/models)", id);
  return http__send_error(req->conn, 404, "invalid_request_error", "model_not_found", msg);
}

static int chat_completions(const http_request *req, void *data) {
  (void)data;
  return http__chat_completions(req);
}

static int completions(const http_request *req, void *data) {
  (void)data;
  return http__completions(req);
}

static int embeddings(const http_request *req, void *data) {
  (void)data;
  return http__embeddings(req);
}

int openai_routes_add(http_routes *t) {
  int rc = http_route_add(t, "GET", "/v1/models", list_models, NULL, 0);
  if (!rc) rc = http_route_add(t, "GET", "/v1/models/*", get_model, NULL, 0);
  if (!rc) rc = http_route_add(t, "POST", "/v1/chat/completions", chat_completions, NULL, 0);
  if (!rc) rc = http_route_add(t, "POST", "/v1/completions", completions, NULL, 0);
  if (!rc) rc = http_route_add(t, "POST", "/v1/embeddings", embeddings, NULL, 0);
  return rc;
}
