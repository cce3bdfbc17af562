/* http/embeddings — POST /v1/embeddings, served by the node's own models.
 *
 * The body is read by http/embparse; the request goes through market/gen like every
 * generation (the node's policy, [http] max_generations, shutdown), which runs it on the
 * local worker (llm/local: one pooled, unit-length vector per input) and refuses models
 * this node does not hold with a 404 (the market sells generations only). The answer is
 * OpenAI's: {"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
 * "model", "usage": {prompt_tokens, total_tokens}}, each embedding an array of numbers or,
 * with "encoding_format": "base64", the base64 of its little-endian float32 bytes. The
 * request's log line carries its tokens, so /metrics counts them as tokens in. Handlers
 * run on the HTTP pool's threads and park while the worker embeds (http__wait). */
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/err.h"
#include "http/embparse.h"
#include "http/openai.h"

#define FULL_WAIT_MS (30 * 60 * 1000)
#define GONE_CHECK_MS 250 /* how often a waiting request looks whether its client left */

static int bad_request(const http_request *req, const char *code, const char *msg) {
  return http__send_error(req->conn, 400, "invalid_request_error", code, msg);
}

/* Writes one vector v[0..dim) as a JSON array of numbers (%.9g: float32 round-trips) or
 * a base64 string of its little-endian float32 bytes. ERR_RANGE for a non-finite value. */
static int write_vector(buf *out, const float *v, int dim, int base64, unsigned char *bytes, char *b64,
                        size_t b64_cap) {
  for (int i = 0; i < dim; i++)
    if (!isfinite(v[i])) return ERR_RANGE;
  if (base64) {
    for (int i = 0; i < dim; i++) {
      uint32_t u;
      memcpy(&u, &v[i], sizeof u);
      for (int k = 0; k < 4; k++) bytes[4 * i + k] = (unsigned char)(u >> (8 * k));
    }
    sodium_bin2base64(b64, b64_cap, bytes, (size_t)dim * 4, sodium_base64_VARIANT_ORIGINAL);
    return buf_printf(out, "\"%s\"", b64);
  }
  int rc = buf_append(out, "[", 1);
  for (int i = 0; !rc && i < dim; i++) rc = buf_printf(out, i ? ",%.9g" : "%.9g", (double)v[i]);
  return rc ? rc : buf_append(out, "]", 1);
}

/* The whole answer into out. */
static int write_answer(buf *out, const char *model, const float *vecs, int n, int dim, int base64, int tokens,
                        const char *node_id) {
  size_t b64_cap = sodium_base64_ENCODED_LEN((size_t)dim * 4, sodium_base64_VARIANT_ORIGINAL);
  unsigned char *bytes = malloc((size_t)dim * 4);
  char *b64 = malloc(b64_cap);
  json_t *name = json_string(model), *node = json_string(node_id);
  char *name_json = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
  char *node_json = node ? json_dumps(node, JSON_ENCODE_ANY) : NULL;
  json_decref(name);
  json_decref(node);
  int rc = bytes && b64 && name_json && node_json ? buf_printf(out, "{\"object\":\"list\",\"data\":[") : ERR_NOMEM;
  for (int i = 0; !rc && i < n; i++) {
    rc = buf_printf(out, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "", i);
    if (!rc) rc = write_vector(out, vecs + (size_t)i * dim, dim, base64, bytes, b64, b64_cap);
    if (!rc) rc = buf_append(out, "}", 1);
  }
  if (!rc)
    rc = buf_printf(out,
                    "],\"model\":%s,\"usage\":{\"prompt_tokens\":%d,\"total_tokens\":%d},"
                    "\"apiary\":{\"node\":%s,\"cost_wei\":\"0\",\"served\":\"local\"}}",
                    name_json, tokens, tokens, node_json);
  free(bytes);
  free(b64);
  free(name_json);
  free(node_json);
  return rc;
}

static int send_body(const http_request *req, buf *out) {
  struct MHD_Response *r = MHD_create_response_from_buffer(out->len, out->ptr, MHD_RESPMEM_MUST_FREE);
  buf_init(out); /* taken by the response */
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "X-Apiary-Node", req->node_id);
  MHD_add_response_header(r, "X-Apiary-Cost-Wei", "0");
  http__cors(r);
  http_log *lg = http__log();
  if (lg) lg->status = 200;
  int ret = MHD_queue_response(req->conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* An embeddings request in flight: parked until its vectors are ready. */
typedef struct embed_task {
  gen_stream *src;       /* watched: its end resumes the connection */
  char name[128];
  int base64;
  uint64_t t0;
} embed_task;

static void embed_free(void *ud) {
  embed_task *t = ud;
  if (t->src) gen_cancel(t->src); /* the client left, it took too long, or the server stops */
  http__gen_release(t->src);
  free(t);
}

static int embed_step(const http_request *req, void *ud) {
  embed_task *t = ud;
  mkt_result res;
  if (gen_wait(t->src, 0, &res) == -ETIMEDOUT) {
    if (http__client_gone(req->conn)) return MHD_NO; /* close, nothing to answer */
    if (http__now_ms() - t->t0 >= FULL_WAIT_MS)
      return http__send_error(req->conn, 504, "server_error", "timeout", "the embeddings took too long");
    return http__wait(req->conn, embed_step, t, embed_free, GONE_CHECK_MS);
  }
  if (res.finish != LOCAL_STOP) {
    http__gen_release(t->src);
    t->src = NULL;
    unsigned st = res.http_status ? (unsigned)res.http_status : 500;
    return http__send_error(req->conn, st, st < 500 ? "invalid_request_error" : "server_error",
                            res.code ? res.code : "embedding_failed",
                            res.error[0] ? res.error : "the embeddings were not computed");
  }
  const float *vecs;
  int dim, n = gen_embeddings(t->src, &vecs, &dim);
  buf out;
  buf_init(&out);
  int rc = n > 0 ? write_answer(&out, t->name, vecs, n, dim, t->base64, res.prompt_tokens, req->node_id) : ERR_INVAL;
  http__gen_release(t->src);
  t->src = NULL;
  if (rc) {
    buf_deinit(&out);
    return http__send_error(req->conn, 500, "server_error", "embedding_failed",
                            rc == ERR_RANGE ? "the model produced a non-finite embedding"
                                            : "cannot write the embeddings (out of memory?)");
  }
  http_log *lg = http__log();
  if (lg) lg->prompt_tokens = res.prompt_tokens;
  return send_body(req, &out);
}

/* Submits lr (taken) and answers (parked while the worker embeds). */
static int embed(const http_request *req, const char *model, local_req *lr, int base64) {
  embed_task *t = calloc(1, sizeof *t);
  if (!t) {
    local_req_clear(lr);
    return http__send_error(req->conn, 500, "server_error", "server_error", "out of memory");
  }
  gen_error ge;
  gen_request gr = {.model = model};
  if (gen_submit(req->gen, &gr, lr, &t->src, t->name, sizeof t->name, &ge)) { /* takes lr */
    free(t);
    if (ge.status == 429) return http__send_busy(req->conn, ge.message);
    return http__send_error(req->conn, (unsigned)ge.status,
                            ge.status == 503 ? "server_error" : ge.status == 403 ? "permission_error"
                                                                                 : "invalid_request_error",
                            ge.code, ge.message);
  }
  http__gen_watch(req->conn, t->src, 0);
  t->base64 = base64;
  t->t0 = http__now_ms();
  http_log *lg = http__log();
  if (lg) {
    snprintf(lg->model, sizeof lg->model, "%.90s", t->name);
    snprintf(lg->served, sizeof lg->served, "local");
    snprintf(lg->node, sizeof lg->node, "%.60s", req->node_id);
  }
  return http__run(req, embed_step, t, embed_free);
}

int http__embeddings(const http_request *req) {
  if (!req->gen) return http__send_error(req->conn, 503, "server_error", "no_engine", "this node does not run models");
  json_error_t je;
  json_t *body = req->body ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je) : NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    return bad_request(req, "invalid_json", "the body must be a JSON object");
  }
  const char *model = json_string_value(json_object_get(body, "model"));
  if (!model || !*model) {
    json_decref(body);
    return bad_request(req, "model_required", "'model' is required: a name from GET /v1/models or a sha256");
  }
  local_req lr;
  memset(&lr, 0, sizeof lr);
  int base64;
  const char *code = NULL, *why = http_parse_embeddings(body, &lr, &base64, &code);
  if (why) {
    local_req_clear(&lr);
    json_decref(body);
    return bad_request(req, code, why);
  }
  char name[256];
  snprintf(name, sizeof name, "%s", model);
  json_decref(body);
  return embed(req, name, &lr, base64);
}
