/* Embeddings as a user sees them, against llama.cpp's numbers (tests/data/embeddings):
 * `apiary embed` on stories15M, and POST /v1/embeddings on a real node process serving the
 * tiny model: OpenAI's answer shape and usage, vectors equal to llama.cpp's mean pooling
 * (the file names none) and, on a copy whose metadata says last, to its last-token pooling;
 * base64 bytes equal to the floats; token-id input equal to the text's; dimensions; every
 * refusal (empty or malformed input, past the context, a model not on this node, no
 * token); and the tokens counted by /metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <math.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "llm/gguf.h"

#define DATA "tests/data/embeddings"

static char out[1 << 20], err[65536];

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

typedef struct resp { char *body; size_t len; long status; } resp;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  char *b = realloc(r->body, r->len + sz * n + 1);
  assert_non_null(b);
  memcpy(b + r->len, p, sz * n);
  r->body = b;
  r->len += sz * n;
  b[r->len] = 0;
  return sz * n;
}

/* POSTs body to path (token NULL: none); r->body is owned (free it). */
static void post(resp *r, int port, const char *path, const char *token, const char *body) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  char url[256], auth[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  else curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  if (!r->body) r->body = calloc(1, 1);
}

/* The answer to an embeddings request, which must have status want (the caller decrefs). */
static json_t *embed_post(int port, const char *tok, const char *body, long want) {
  resp r;
  post(&r, port, "/v1/embeddings", tok, body);
  if (r.status != want) fail_msg("status %ld, not %ld, for %.300s: %.500s", r.status, want, body, r.body);
  json_t *j = json_loads(r.body, 0, NULL);
  if (!j) fail_msg("not JSON: %.300s", r.body);
  free(r.body);
  return j;
}

/* A refusal: status, OpenAI's error shape, and the code when given. */
static void refused(int port, const char *tok, const char *body, long status, const char *code) {
  json_t *j = embed_post(port, tok, body, status);
  json_t *e = json_object_get(j, "error");
  if (!json_is_string(json_object_get(e, "message"))) fail_msg("no error message for %s", body);
  const char *got = json_string_value(json_object_get(e, "code"));
  if (code && (!got || strcmp(got, code)))
    fail_msg("code '%s', not '%s', for %.300s", json_string_value(json_object_get(e, "code")), code, body);
  json_decref(j);
}

/* Fails unless the numbers of v (a JSON array) are within tol of ref and cosine >= 0.9999. */
static void check_close(json_t *v, json_t *ref, double tol, const char *what) {
  if (json_array_size(v) != json_array_size(ref))
    fail_msg("%s: %zu numbers, not %zu", what, json_array_size(v), json_array_size(ref));
  double dot = 0, na = 0, nb = 0, worst = 0;
  for (size_t i = 0; i < json_array_size(ref); i++) {
    double a = json_number_value(json_array_get(v, i)), b = json_number_value(json_array_get(ref, i));
    dot += a * b, na += a * a, nb += b * b;
    if (fabs(a - b) > worst) worst = fabs(a - b);
  }
  double cos = dot / sqrt(na * nb);
  if (!(cos >= 0.9999) || !(worst <= tol)) fail_msg("%s: cosine %.7f, max |diff| %.2e", what, cos, worst);
}

/* text in single quotes for the shell (owned); the texts used hold none */
static char *quoted(const char *text) {
  assert_null(strchr(text, '\''));
  size_t n = strlen(text) + 3;
  char *q = malloc(n);
  snprintf(q, n, "'%s'", text);
  return q;
}

static json_t *ref_input(json_t *ref, size_t i) { return json_array_get(json_object_get(ref, "inputs"), i); }
static const char *ref_text(json_t *ref, size_t i) { return json_string_value(json_object_get(ref_input(ref, i), "text")); }

/* `apiary embed`: the model's vectors, its pooling or --pooling's, and usage errors. */
static void test_cli_embed(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  json_t *ref = tu_load_json(DATA "/stories15M-F32.json");
  char model[1024];
  tu_shared_path(model, sizeof model, "models/stories15M-F32.gguf");
  char *q0 = quoted(ref_text(ref, 0)), *q2 = quoted(ref_text(ref, 2));
  json_t *j = tu_apiary_json(out, sizeof out, err, sizeof err, "embed -m %s %s %s", model, q0, q2);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "pooling")), "mean");
  assert_int_equal(json_integer_value(json_object_get(j, "n_embd")), 288);
  json_t *data = json_object_get(j, "data");
  assert_int_equal(json_array_size(data), 2);
  for (size_t k = 0; k < 2; k++) {
    json_t *d = json_array_get(data, k);
    json_t *in = ref_input(ref, k ? 2 : 0);
    assert_int_equal(json_integer_value(json_object_get(d, "tokens")), json_integer_value(json_object_get(in, "n_tokens")));
    check_close(json_object_get(d, "embedding"), json_object_get(in, "mean"), 1e-4, "apiary embed, mean");
  }
  json_decref(j);
  j = tu_apiary_json(out, sizeof out, err, sizeof err, "embed -m %s --pooling last %s", model, q2);
  assert_non_null(j);
  check_close(json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding"),
              json_object_get(ref_input(ref, 2), "last"), 1e-4, "apiary embed --pooling last");
  json_decref(j);
  /* text mode: one line of n_embd numbers */
  assert_int_equal(apiary("embed -m %s --pooling cls %s", model, q0), 0);
  assert_int_equal((int)strspn(out, "0123456789-.e "), (int)strcspn(out, "\n"));
  int words = 1;
  for (char *p = out; *p && *p != '\n'; p++) words += *p == ' ';
  assert_int_equal(words, 288);
  assert_true(fabs(atof(out) - json_number_value(json_array_get(json_object_get(ref_input(ref, 0), "cls"), 0))) < 1e-4);
  assert_int_equal(apiary("embed --help"), 0);
  assert_non_null(strstr(out, "usage: apiary embed"));
  assert_int_equal(apiary("embed %s", q0), 2);                       /* no model */
  assert_int_equal(apiary("embed -m %s", model), 2);                 /* no text */
  assert_int_equal(apiary("embed -m %s ''", model), 2);              /* empty text */
  assert_int_equal(apiary("embed -m %s --pooling rank x", model), 2);
  assert_int_equal(apiary("embed -m %s -c 4 %s", model, q2), 1);     /* past the context */
  assert_non_null(strstr(err, "context"));
  free(q0);
  free(q2);
  json_decref(ref);
}

/* A copy of the tiny F32 model with llama.pooling_type = 3 (last) at dst. */
static void write_last_pooled(const char *src, const char *dst) {
  char e[256];
  gguf_file *f;
  assert_int_equal(gguf_open(src, &f, e, sizeof e), 0);
  gguf_writer *w = gguf_writer_new();
  assert_int_equal(gguf_writer_copy_kv(w, f), 0);
  assert_int_equal(gguf_writer_set_u32(w, "llama.pooling_type", 3), 0);
  for (size_t i = 0; i < gguf_n_tensors(f); i++) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    char name[GGUF_MAX_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
    assert_int_equal(gguf_writer_add_tensor(w, name, t->n_dims, t->ne, t->type, t->data, t->nbytes), 0);
  }
  assert_int_equal(gguf_writer_write(w, dst), 0);
  gguf_writer_free(w);
  gguf_close(f);
}

/* A sample of the /metrics text (the value after "name "), or -1. */
static long long metric(const char *text, const char *name) {
  char key[200];
  snprintf(key, sizeof key, "\n%s ", name);
  const char *p = strstr(text, key);
  return p ? atoll(p + strlen(key)) : -1;
}

static long long prompt_tokens_metric(int port, const char *tok) {
  resp r;
  post(&r, port, "/metrics", tok, NULL);
  assert_int_equal(r.status, 200);
  long long v = metric(r.body, "apiary_tokens_total{kind=\"prompt\",served=\"local\"}");
  free(r.body);
  return v < 0 ? 0 : v;
}

static json_t *vec_of(json_t *answer, size_t i) {
  return json_object_get(json_array_get(json_object_get(answer, "data"), i), "embedding");
}

static void test_api_embeddings(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  json_t *ref = tu_load_json(DATA "/tiny-spm4k-F32.json");
  char dir[256], home[300], tok[128], model[1024], last[600], log[400], body[4096];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  assert_int_equal(apiary("init --home %s", home), 0);
  assert_int_equal(tu_sh("sed -i 's|^context = .*|context = 512|' %s/config.toml", home), 0);
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-F32.gguf");
  assert_int_equal(apiary("model pull --home %s %s --name tinyf", home, model), 0);
  snprintf(last, sizeof last, "%s/last.gguf", dir);
  write_last_pooled(model, last);
  assert_int_equal(apiary("model pull --home %s %s --name tinylast", home, last), 0);
  assert_int_equal(apiary("token --home %s create --json", home), 0);
  json_t *tj = json_loads(out, 0, NULL);
  snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(tj, "token")));
  json_decref(tj);
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
                        "--http", "127.0.0.1:0", NULL};
  pid_t pid = tu_spawn(argv, log);
  int port = 0;
  for (int i = 0; i < 200 && !port; i++) {
    if (apiary("status --home %s --json", home) == 0) {
      json_t *st = json_loads(out, 0, NULL);
      port = (int)json_integer_value(json_object_get(st, "http_port"));
      json_decref(st);
    }
    if (!port) usleep(50000);
  }
  assert_true(port > 0);

  /* one string: OpenAI's shape, usage, llama.cpp's mean-pooled vector */
  long long before = prompt_tokens_metric(port, tok);
  json_t *in0 = ref_input(ref, 0), *s0 = json_object_get(in0, "text");
  json_t *req = json_pack("{s:s, s:O, s:s}", "model", "tinyf", "input", s0, "user", "someone");
  char *b = json_dumps(req, 0);
  json_t *a = embed_post(port, tok, b, 200);
  free(b);
  json_decref(req);
  assert_string_equal(json_string_value(json_object_get(a, "object")), "list");
  assert_string_equal(json_string_value(json_object_get(a, "model")), "tinyf");
  json_t *d0 = json_array_get(json_object_get(a, "data"), 0);
  assert_int_equal(json_array_size(json_object_get(a, "data")), 1);
  assert_string_equal(json_string_value(json_object_get(d0, "object")), "embedding");
  assert_int_equal(json_integer_value(json_object_get(d0, "index")), 0);
  check_close(vec_of(a, 0), json_object_get(in0, "mean"), 1e-4, "one string, mean");
  json_int_t n0 = json_integer_value(json_object_get(in0, "n_tokens"));
  json_t *usage = json_object_get(a, "usage");
  assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), n0);
  assert_int_equal(json_integer_value(json_object_get(usage, "total_tokens")), n0);
  assert_int_equal(prompt_tokens_metric(port, tok) - before, n0); /* /metrics: tokens in */
  json_decref(a);

  /* every reference text in one request, in order; base64 gives the same float32 bytes */
  json_t *texts = json_array();
  json_int_t total = 0;
  for (size_t i = 0; i < json_array_size(json_object_get(ref, "inputs")); i++) {
    json_array_append(texts, json_object_get(ref_input(ref, i), "text"));
    total += json_integer_value(json_object_get(ref_input(ref, i), "n_tokens"));
  }
  json_t *fl = NULL, *b64 = NULL;
  for (int enc = 0; enc < 2; enc++) {
    req = json_pack("{s:s, s:O, s:s}", "model", "tinyf", "input", texts, "encoding_format", enc ? "base64" : "float");
    b = json_dumps(req, 0);
    *(enc ? &b64 : &fl) = embed_post(port, tok, b, 200);
    free(b);
    json_decref(req);
  }
  assert_int_equal(json_integer_value(json_object_get(json_object_get(fl, "usage"), "prompt_tokens")), total);
  for (size_t i = 0; i < json_array_size(texts); i++) {
    json_t *d = json_array_get(json_object_get(fl, "data"), i);
    assert_int_equal(json_integer_value(json_object_get(d, "index")), (json_int_t)i);
    check_close(vec_of(fl, i), json_object_get(ref_input(ref, i), "mean"), 1e-4, "array of strings, mean");
    const char *s = json_string_value(vec_of(b64, i));
    assert_non_null(s);
    unsigned char raw[64 * 4];
    size_t n = 0;
    assert_int_equal(sodium_base642bin(raw, sizeof raw, s, strlen(s), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    assert_int_equal(n, 64 * 4);
    for (size_t k = 0; k < 64; k++) {
      uint32_t u = (uint32_t)raw[4 * k] | (uint32_t)raw[4 * k + 1] << 8 | (uint32_t)raw[4 * k + 2] << 16 |
                   (uint32_t)raw[4 * k + 3] << 24;
      float f;
      memcpy(&f, &u, sizeof f);
      if (f != (float)json_number_value(json_array_get(vec_of(fl, i), k)))
        fail_msg("input %zu element %zu: base64 %.9g, float %.9g", i, k, (double)f,
                 json_number_value(json_array_get(vec_of(fl, i), k)));
    }
  }
  json_decref(fl);
  json_decref(b64);
  json_decref(texts);

  /* token ids (one array, or arrays) embed as their text does; dimensions = n_embd is fine */
  assert_int_equal(apiary("model tokenize %s --text %s --no-parse-special --json", model, "'Once upon a time'"), 0);
  json_t *tk = json_loads(out, 0, NULL), *ids = json_object_get(tk, "ids");
  assert_true(json_array_size(ids) == (size_t)n0);
  for (int nested = 0; nested < 2; nested++) {
    req = nested ? json_pack("{s:s, s:[O,O], s:i}", "model", "tinyf", "input", ids, ids, "dimensions", 64)
                 : json_pack("{s:s, s:O}", "model", "tinyf", "input", ids);
    b = json_dumps(req, 0);
    a = embed_post(port, tok, b, 200);
    free(b);
    json_decref(req);
    assert_int_equal(json_array_size(json_object_get(a, "data")), nested ? 2 : 1);
    check_close(vec_of(a, 0), json_object_get(in0, "mean"), 1e-4, "token ids");
    json_decref(a);
  }
  json_decref(tk);

  /* the model's own pooling: a copy whose metadata says last */
  snprintf(body, sizeof body, "{\"model\":\"tinylast\",\"input\":\"%s\"}", ref_text(ref, 2));
  a = embed_post(port, tok, body, 200);
  check_close(vec_of(a, 0), json_object_get(ref_input(ref, 2), "last"), 1e-4, "pooling_type last");
  json_decref(a);

  /* refused: never silently ignored */
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":\"\"}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":[]}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":[\"a\",\"\"]}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":[[]]}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":[1.5]}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":[-1]}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":{\"a\":1}}", 400, "invalid_input");
  refused(port, tok, "{\"model\":\"tinyf\"}", 400, "invalid_input");
  refused(port, tok, "{\"input\":\"x\"}", 400, "model_required");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":\"x\",\"encoding_format\":\"hex\"}", 400, "invalid_encoding_format");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":\"x\",\"dimensions\":\"64\"}", 400, "invalid_dimensions");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":\"x\",\"dimensions\":32}", 400, "invalid_request");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":\"x\",\"user\":7}", 400, "invalid_user");
  refused(port, tok, "{\"model\":\"tinyf\",\"input\":[4096]}", 400, "invalid_request"); /* outside the vocabulary */
  refused(port, tok, "{\"model\":\"nope\",\"input\":\"x\"}", 404, "model_not_found");
  refused(port, tok, "[1]", 400, "invalid_json");
  refused(port, NULL, "{\"model\":\"tinyf\",\"input\":\"x\"}", 401, NULL);
  /* past the context (512 positions): 513 ids, and a long text */
  char *big = malloc(8192), *p = big;
  p += sprintf(p, "{\"model\":\"tinyf\",\"input\":[");
  for (int i = 0; i < 513; i++) p += sprintf(p, i ? ",%d" : "%d", 300 + i % 50);
  sprintf(p, "]}");
  refused(port, tok, big, 400, "context_length_exceeded");
  p = big + sprintf(big, "{\"model\":\"tinyf\",\"input\":[\"ok\",\"");
  for (int i = 0; i < 600; i++) p += sprintf(p, "dog ");
  sprintf(p, "\"]}");
  refused(port, tok, big, 400, "context_length_exceeded");
  free(big);
  /* 2049 inputs are more than OpenAI's limit */
  big = malloc(5 * 2049 + 64);
  p = big + sprintf(big, "{\"model\":\"tinyf\",\"input\":[");
  for (int i = 0; i < 2049; i++) p += sprintf(p, i ? ",\"a\"" : "\"a\"");
  sprintf(p, "]}");
  refused(port, tok, big, 400, "invalid_input");
  free(big);
  /* GET is the wrong method */
  resp r;
  post(&r, port, "/v1/embeddings", tok, NULL);
  assert_int_equal(r.status, 405);
  free(r.body);

  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  tu_rm_rf(dir);
  json_decref(ref);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_cli_embed), cmocka_unit_test(test_api_embeddings)};
  int rc = cmocka_run_group_tests_name("cli_embed", tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
