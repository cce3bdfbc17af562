/* http/openai — OpenAI-compatible routes; see openai.h. */
#include "http/openai.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm/mstore.h"

/* The node's own models, then the ones the network sells (by sha256, not twice). */
static int list_models(const http_request *req, void *ud) {
  (void)ud;
  enum { MAX = 256 };
  mstore_model *list = calloc(MAX, sizeof *list);
  if (!list) return MHD_NO;
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
  return http__send_json(req->conn, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

static int chat_completions(const http_request *req, void *data) {
  (void)data;
  return http__chat_completions(req);
}

static int completions(const http_request *req, void *data) {
  (void)data;
  return http__completions(req);
}

int openai_routes_add(http_routes *t) {
  int rc = http_route_add(t, "GET", "/v1/models", list_models, NULL, 0);
  if (!rc) rc = http_route_add(t, "POST", "/v1/chat/completions", chat_completions, NULL, 0);
  if (!rc) rc = http_route_add(t, "POST", "/v1/completions", completions, NULL, 0);
  return rc;
}
