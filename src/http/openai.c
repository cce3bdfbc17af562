/* http/openai — OpenAI-compatible routes; see openai.h. */
#include "http/openai.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "llm/mstore.h"

static int list_models(const http_request *req) {
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
  free(list);
  return http__send_json(req->conn, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

int openai_route(const http_request *req) {
  if (!strcmp(req->path, "/v1/models")) {
    if (strcmp(req->method, "GET"))
      return http__send_error(req->conn, 405, "invalid_request_error", "method_not_allowed", "use GET /v1/models");
    return list_models(req);
  }
  if (!strcmp(req->path, "/v1/chat/completions")) {
    if (strcmp(req->method, "POST"))
      return http__send_error(req->conn, 405, "invalid_request_error", "method_not_allowed",
                              "use POST /v1/chat/completions");
    return http__chat_completions(req);
  }
  if (!strcmp(req->path, "/v1/completions")) {
    if (strcmp(req->method, "POST"))
      return http__send_error(req->conn, 405, "invalid_request_error", "method_not_allowed", "use POST /v1/completions");
    return http__completions(req);
  }
  return http__send_error(req->conn, 404, "invalid_request_error", "unknown_url", "no such endpoint");
}
