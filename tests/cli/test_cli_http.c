/* The local API as a client sees it: a real node process serving HTTP on loopback, tokens
 * created with the CLI (with and without a running node), every request authenticated,
 * revocation taking effect at once, OpenAI-shaped errors, body caps, and /v1/models
 * listing the model store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "../support/testutil.h"
#include "core/buf.h"
#include "llm/mstore.h"

static char out[65536], err[65536];

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

typedef struct resp { char body[65536]; size_t len; long status; } resp;

static size_t on_data(char *p, size_t sz, size_t n, void *ud) {
  resp *r = ud;
  size_t k = sz * n;
  if (r->len + k >= sizeof r->body) k = sizeof r->body - 1 - r->len;
  memcpy(r->body + r->len, p, k);
  r->len += k;
  r->body[r->len] = 0;
  return sz * n;
}

static void http(resp *r, int port, const char *method, const char *path, const char *token, const char *body,
                 size_t body_len) {
  memset(r, 0, sizeof *r);
  CURL *c = curl_easy_init();
  char url[256], auth[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  struct curl_slist *h = NULL;
  if (token) {
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
  }
  h = curl_slist_append(h, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  assert_int_equal(curl_easy_perform(c), CURLE_OK);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
}

/* Sends raw request headers (no body) and returns the status line of the answer, or "" when
 * none came within 3 s. */
static void raw_head(int port, const char *head, char *status, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_true(write(fd, head, strlen(head)) == (ssize_t)strlen(head));
  struct timeval tv = {.tv_sec = 3};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char b[512];
  ssize_t n = read(fd, b, sizeof b - 1);
  close(fd);
  b[n > 0 ? n : 0] = 0;
  size_t len = strcspn(b, "\r\n");
  if (len >= cap) len = cap - 1;
  memcpy(status, b, len);
  status[len] = 0;
}

static void check_openai_error(const resp *r, long status, const char *type) {
  assert_int_equal(r->status, status);
  json_t *j = json_loads(r->body, 0, NULL);
  assert_non_null(j);
  json_t *e = json_object_get(j, "error");
  assert_true(json_is_string(json_object_get(e, "message")));
  assert_string_equal(json_string_value(json_object_get(e, "type")), type);
  json_decref(j);
}

static void test_api_auth(void **state) {
  (void)state;
  char dir[256], home[300], tok1[128], tok2[128];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  assert_int_equal(apiary("init --home %s", home), 0);
  /* A token made while no node runs (the CLI writes the database itself). */
  assert_int_equal(apiary("token --home %s create --label first --json", home), 0);
  json_t *j = json_loads(out, 0, NULL);
  snprintf(tok1, sizeof tok1, "%s", json_string_value(json_object_get(j, "token")));
  json_decref(j);
  assert_int_equal(strlen(tok1), 47);
  assert_memory_equal(tok1, "apy_", 4);
  /* The database keeps no token, only hashes. */
  char db[400], cmd[600];
  snprintf(db, sizeof db, "%s/apiary.db", home);
  snprintf(cmd, sizeof cmd, "grep -c '%s' %s", tok1 + 4, db);
  assert_int_not_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);

  /* A model in the store to list. */
  char src[400], models[400];
  snprintf(src, sizeof src, "%s/tiny.gguf", dir);
  FILE *f = fopen(src, "wb");
  fputs("GGUF....test-bytes", f);
  fclose(f);
  snprintf(models, sizeof models, "%s/models", home);
  mstore_model m;
  assert_int_equal(mstore_pull(models, src, NULL, &m, err, sizeof err), 0);

  char log[400];
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

  resp r;
  http(&r, port, "GET", "/v1/models", NULL, NULL, 0);
  check_openai_error(&r, 401, "authentication_error");
  http(&r, port, "GET", "/v1/models", "apy_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, 0);
  check_openai_error(&r, 401, "authentication_error");
  http(&r, port, "GET", "/v1/models", tok1, NULL, 0);
  assert_int_equal(r.status, 200);
  j = json_loads(r.body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "object")), "list");
  json_t *d0 = json_array_get(json_object_get(j, "data"), 0);
  assert_string_equal(json_string_value(json_object_get(d0, "id")), "tiny.gguf");
  assert_string_equal(json_string_value(json_object_get(d0, "sha256")), m.sha256);
  json_decref(j);
  /* one model, by name or by sha256; an unknown one is a 404 in OpenAI's shape */
  http(&r, port, "GET", "/v1/models/tiny.gguf", tok1, NULL, 0);
  assert_int_equal(r.status, 200);
  j = json_loads(r.body, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "id")), "tiny.gguf");
  assert_string_equal(json_string_value(json_object_get(j, "object")), "model");
  json_decref(j);
  char bysha[128];
  snprintf(bysha, sizeof bysha, "/v1/models/%s", m.sha256);
  http(&r, port, "GET", bysha, tok1, NULL, 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"tiny.gguf\""));
  http(&r, port, "GET", "/v1/models/nope", tok1, NULL, 0);
  check_openai_error(&r, 404, "invalid_request_error");
  assert_non_null(strstr(r.body, "model_not_found"));
  /* Unknown route, wrong method, oversized body: errors in OpenAI's shape, still authed. */
  http(&r, port, "GET", "/v1/nope", tok1, NULL, 0);
  check_openai_error(&r, 404, "invalid_request_error");
  http(&r, port, "POST", "/v1/models", tok1, "{}", 2);
  check_openai_error(&r, 405, "invalid_request_error");
  assert_non_null(strstr(r.body, "use GET /v1/models")); /* 405 names the allowed method */
  /* /health answers without a token (and says nothing else) */
  http(&r, port, "GET", "/health", NULL, NULL, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "{\"status\":\"ok\"}");
  http(&r, port, "POST", "/health", NULL, "{}", 2);
  check_openai_error(&r, 401, "authentication_error"); /* only GET is public */
  size_t big = 5u << 20;
  char *huge = malloc(big);
  memset(huge, ' ', big);
  http(&r, port, "POST", "/v1/models", tok1, huge, big);
  check_openai_error(&r, 413, "invalid_request_error");
  free(huge);
  http(&r, port, "POST", "/v1/models", NULL, "{}", 2);
  check_openai_error(&r, 401, "authentication_error"); /* auth comes before anything else */
  /* A declared 1 GB body is refused as soon as the headers came, without reading it: no
   * token is a 401, a token with a body over the cap a 413 (the body never comes here). */
  char st[128], head[512];
  raw_head(port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n", st, sizeof st);
  assert_string_equal(st, "HTTP/1.1 401 Unauthorized");
  snprintf(head, sizeof head,
           "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 1073741824\r\n\r\n",
           tok1);
  raw_head(port, head, st, sizeof st);
  assert_memory_equal(st, "HTTP/1.1 413 ", 13); /* the reason phrase differs by libmicrohttpd version */

  /* Completions: bad requests get OpenAI-shaped 400s; an unknown model 404; a stored file
   * that is not a loadable model a clean 500 (the node keeps running). */
  http(&r, port, "POST", "/v1/completions", tok1, "not json", 8);
  check_openai_error(&r, 400, "invalid_request_error");
  http(&r, port, "POST", "/v1/completions", tok1, "{\"prompt\":\"x\"}", 14);
  check_openai_error(&r, 400, "invalid_request_error");
  const char *bad_temp = "{\"model\":\"tiny.gguf\",\"prompt\":\"x\",\"temperature\":5}";
  http(&r, port, "POST", "/v1/completions", tok1, bad_temp, strlen(bad_temp));
  check_openai_error(&r, 400, "invalid_request_error");
  /* a single stop string gets the same checks as a list (empty: refused, not a 500) */
  const char *empty_stop = "{\"model\":\"tiny.gguf\",\"prompt\":\"x\",\"stop\":\"\"}";
  http(&r, port, "POST", "/v1/completions", tok1, empty_stop, strlen(empty_stop));
  check_openai_error(&r, 400, "invalid_request_error");
  assert_non_null(strstr(r.body, "invalid_stop"));
  const char *no_prompt = "{\"model\":\"tiny.gguf\"}";
  http(&r, port, "POST", "/v1/completions", tok1, no_prompt, strlen(no_prompt));
  check_openai_error(&r, 400, "invalid_request_error");
  const char *unknown = "{\"model\":\"no-such-model\",\"prompt\":\"x\"}";
  http(&r, port, "POST", "/v1/completions", tok1, unknown, strlen(unknown));
  check_openai_error(&r, 404, "invalid_request_error");
  const char *broken = "{\"model\":\"tiny.gguf\",\"prompt\":\"x\",\"max_tokens\":2}";
  http(&r, port, "POST", "/v1/completions", tok1, broken, strlen(broken));
  check_openai_error(&r, 500, "server_error");
  http(&r, port, "GET", "/v1/completions", tok1, NULL, 0);
  check_openai_error(&r, 405, "invalid_request_error");
  const char *no_msgs = "{\"model\":\"tiny.gguf\",\"messages\":[]}";
  http(&r, port, "POST", "/v1/chat/completions", tok1, no_msgs, strlen(no_msgs));
  check_openai_error(&r, 400, "invalid_request_error");
  const char *bad_role = "{\"model\":\"tiny.gguf\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}";
  http(&r, port, "POST", "/v1/chat/completions", tok1, bad_role, strlen(bad_role));
  check_openai_error(&r, 400, "invalid_request_error");
  http(&r, port, "GET", "/v1/models", tok1, NULL, 0);
  assert_int_equal(r.status, 200); /* still serving */

  /* A token made while the node runs works at once; revocation takes effect at once. */
  assert_int_equal(apiary("token --home %s create --json", home), 0);
  j = json_loads(out, 0, NULL);
  snprintf(tok2, sizeof tok2, "%s", json_string_value(json_object_get(j, "token")));
  json_decref(j);
  http(&r, port, "GET", "/v1/models", tok2, NULL, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(apiary("token --home %s revoke 1", home), 0);
  http(&r, port, "GET", "/v1/models", tok1, NULL, 0);
  check_openai_error(&r, 401, "authentication_error");
  http(&r, port, "GET", "/v1/models", tok2, NULL, 0);
  assert_int_equal(r.status, 200);
  assert_int_equal(apiary("token --home %s list --json", home), 0);
  assert_non_null(strstr(out, "\"revoked\":true"));
  assert_int_equal(apiary("token --home %s revoke 99", home), 1);
  assert_int_equal(apiary("token --home %s frob", home), 2);

  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 5000), 0);
  tu_rm_rf(dir);
}

/* A sample of the /metrics text (the value after "name "), or -1. */
static long long metric(const char *text, const char *name) {
  char key[200];
  snprintf(key, sizeof key, "\n%s ", name);
  const char *p = strstr(text, key);
  return p ? atoll(p + strlen(key)) : -1;
}

/* Starts a node on home with its API on a free port; returns the port (pid in *pid). */
static int start_api_node(const char *home, pid_t *pid) {
  char log[400];
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
                        "--http", "127.0.0.1:0", NULL};
  *pid = tu_spawn(argv, log);
  int port = 0;
  for (int i = 0; i < 200 && !port; i++) {
    if (apiary("status --home %s --json", home) == 0) {
      json_t *st = json_loads(out, 0, NULL);
      port = (int)json_integer_value(json_object_get(st, "http_port"));
      json_decref(st);
    }
    if (!port) usleep(50000);
  }
  return port;
}

/* A node in a new home (dir, home: 256 and 300 bytes) with the tiny reference model as
 * "tiny", its config edited by the sed expression, an API token in tok (128 bytes); returns
 * its API port (pid in *pid). */
static int tiny_api_node(char *dir, char *home, char *tok, const char *sed_expr, pid_t *pid) {
  char model[1024], cfg[400];
  tu_tmpdir(dir, 256);
  snprintf(home, 300, "%s/n", dir);
  assert_int_equal(apiary("init --home %s", home), 0);
  snprintf(cfg, sizeof cfg, "%s/config.toml", home);
  assert_int_equal(tu_sh("sed -i '%s' %s", sed_expr, cfg), 0);
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-Q8_0.gguf");
  assert_int_equal(apiary("model pull --home %s %s --name tiny", home, model), 0);
  assert_int_equal(apiary("token --home %s create --json", home), 0);
  json_t *j = json_loads(out, 0, NULL);
  snprintf(tok, 128, "%s", json_string_value(json_object_get(j, "token")));
  json_decref(j);
  int port = start_api_node(home, pid);
  assert_true(port > 0);
  return port;
}

/* What the API cannot honour is a clear 400, never silently ignored: a prompt past the
 * context (OpenAI's context_length_exceeded, also inside a stream), logprobs and
 * top_logprobs out of range or on the wrong endpoint, best_of, logit_bias;
 * max_completion_tokens caps the answer like max_tokens (the smaller of the two wins). */
static void test_api_limits(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], tok[128];
  pid_t pid;
  int port = tiny_api_node(dir, home, tok, "s|^context = .*|context = 16|; "
                           "s|^cors_origins = .*|cors_origins = [\"http://app.example\"]|", &pid);
  json_t *j;
  resp r;
  const char *longp = "{\"model\":\"tiny\",\"prompt\":\"Once upon a time, in a small village by the sea, there "
                      "lived an old fisherman who had a small boat and a big dream\",\"max_tokens\":4}";
  http(&r, port, "POST", "/v1/completions", tok, longp, strlen(longp));
  check_openai_error(&r, 400, "invalid_request_error");
  assert_non_null(strstr(r.body, "\"context_length_exceeded\""));
  /* in a stream the error arrives as an event with the same code */
  char longs[600];
  snprintf(longs, sizeof longs, "%.*s,\"stream\":true}", (int)strlen(longp) - 1, longp);
  http(&r, port, "POST", "/v1/completions", tok, longs, strlen(longs));
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "context_length_exceeded"));
  /* stream_options.include_usage: the usage comes in a last chunk of its own with no
   * choices (every other chunk says "usage": null); without it, no usage at all */
  const char *su = "{\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_tokens\":3,\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true}}";
  http(&r, port, "POST", "/v1/completions", tok, su, strlen(su));
  assert_int_equal(r.status, 200);
  char *lastd = NULL, *prevd = NULL;
  for (char *q = strstr(r.body, "data: {"); q; q = strstr(q + 1, "data: {")) prevd = lastd, lastd = q;
  assert_non_null(lastd);
  assert_non_null(prevd);
  json_t *uj = json_loads(lastd + 6, JSON_DISABLE_EOF_CHECK, NULL);
  assert_int_equal(json_array_size(json_object_get(uj, "choices")), 0);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(uj, "usage"), "completion_tokens")), 3);
  json_decref(uj);
  json_t *fj = json_loads(prevd + 6, JSON_DISABLE_EOF_CHECK, NULL);
  assert_true(json_is_null(json_object_get(fj, "usage")));
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(fj, "choices"), 0), "finish_reason")),
                      "length");
  json_decref(fj);
  const char *nu = "{\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_tokens\":2,\"stream\":true}";
  http(&r, port, "POST", "/v1/completions", tok, nu, strlen(nu));
  assert_null(strstr(r.body, "usage"));
  /* max_completion_tokens */
  const char *mct = "{\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_completion_tokens\":3,\"temperature\":0}";
  http(&r, port, "POST", "/v1/completions", tok, mct, strlen(mct));
  assert_int_equal(r.status, 200);
  j = json_loads(r.body, 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 3);
  json_decref(j);
  const char *both = "{\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_tokens\":5,\"max_completion_tokens\":2}";
  http(&r, port, "POST", "/v1/completions", tok, both, strlen(both));
  j = json_loads(r.body, 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 2);
  json_decref(j);
  /* fields this node cannot honour, and values out of range */
  const char *refused[][2] = {
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"logprobs\":6}", "invalid_logprobs"},
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"logprobs\":-1}", "invalid_logprobs"},
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"logprobs\":true}", "invalid_logprobs"},
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"top_logprobs\":2}", "unsupported_parameter"},
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"echo\":1}", "invalid_echo"},
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"best_of\":2}", "unsupported_parameter"},
      {"{\"model\":\"tiny\",\"prompt\":\"x\",\"logit_bias\":{\"5\":1}}", "unsupported_parameter"},
      {"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":3}", "invalid_logprobs"},
      {"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":21}",
       "invalid_top_logprobs"},
      {"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logprobs\":true,\"top_logprobs\":1.5}",
       "invalid_top_logprobs"},
      {"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_logprobs\":2}", "invalid_top_logprobs"},
      {"{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"echo\":true}", "unsupported_parameter"},
  };
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
    const char *path = strstr(refused[i][0], "messages") ? "/v1/chat/completions" : "/v1/completions";
    http(&r, port, "POST", path, tok, refused[i][0], strlen(refused[i][0]));
    check_openai_error(&r, 400, "invalid_request_error");
    if (!strstr(r.body, refused[i][1])) fail_msg("%s: %s, not %s", refused[i][0], r.body, refused[i][1]);
  }
  /* one log line per request: what was served, never the prompt */
  const char *secret = "{\"model\":\"tiny\",\"prompt\":\"Zanzibar marmalade secret\",\"max_tokens\":2}";
  http(&r, port, "POST", "/v1/completions", tok, secret, strlen(secret));
  assert_int_equal(r.status, 200);
  http(&r, port, "GET", "/v1/models", NULL, NULL, 0);
  char logf[400];
  snprintf(logf, sizeof logf, "%s.log", home);
  int seen = 0;
  for (int i = 0; i < 40 && !seen; i++) { /* written when the request completes */
    seen = tu_sh("grep -q 'api POST /v1/completions 200 model=tiny served=local.*completion_tokens=2' %s", logf) == 0 &&
           tu_sh("grep -q 'api GET /v1/models 401' %s", logf) == 0;
    if (!seen) usleep(50000);
  }
  assert_true(seen);
  assert_int_not_equal(tu_sh("grep -q Zanzibar %s", logf), 0);
  /* CORS: a preflight from an allowed origin is answered without a token; another origin
   * gets a 403; real answers carry the header only for the allowed origin */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "curl -s -i -X OPTIONS -H 'Origin: http://app.example' -H 'Access-Control-Request-Method: POST' "
           "http://127.0.0.1:%d/v1/chat/completions", port);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  assert_non_null(strstr(out, " 204 "));
  assert_non_null(strcasestr(out, "Access-Control-Allow-Origin: http://app.example"));
  assert_non_null(strcasestr(out, "Access-Control-Allow-Headers: Authorization, Content-Type"));
  snprintf(cmd, sizeof cmd, "curl -s -i -X OPTIONS -H 'Origin: http://evil.example' -H 'Access-Control-Request-Method: POST' "
           "http://127.0.0.1:%d/v1/chat/completions", port);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  assert_non_null(strstr(out, " 403 "));
  assert_null(strcasestr(out, "Access-Control-Allow-Origin"));
  snprintf(cmd, sizeof cmd, "curl -s -i -H 'Origin: http://app.example' -H 'Authorization: Bearer %s' "
           "http://127.0.0.1:%d/v1/models", tok, port);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  assert_non_null(strstr(out, " 200 "));
  assert_non_null(strcasestr(out, "Access-Control-Allow-Origin: http://app.example"));
  snprintf(cmd, sizeof cmd, "curl -s -i -H 'Origin: http://evil.example' -H 'Authorization: Bearer %s' "
           "http://127.0.0.1:%d/v1/models", tok, port);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  assert_null(strcasestr(out, "Access-Control-Allow-Origin"));
  /* /metrics: behind the token; one more local answer of 3 tokens moves the counters by that */
  http(&r, port, "GET", "/metrics", NULL, NULL, 0);
  check_openai_error(&r, 401, "authentication_error");
  http(&r, port, "GET", "/metrics", tok, NULL, 0);
  assert_int_equal(r.status, 200);
  long long t0 = metric(r.body, "apiary_tokens_total{kind=\"completion\",served=\"local\"}");
  long long h0 = metric(r.body, "apiary_generation_seconds_count");
  long long p0 = metric(r.body, "apiary_http_requests_total{method=\"POST\",code=\"2xx\"}");
  assert_true(t0 >= 0 && h0 >= 0 && p0 >= 0);
  assert_int_equal(metric(r.body, "apiary_generations_in_progress"), 0);
  assert_int_equal(metric(r.body, "apiary_wei_spent_total"), 0);
  const char *three = "{\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_tokens\":3}";
  http(&r, port, "POST", "/v1/completions", tok, three, strlen(three));
  assert_int_equal(r.status, 200);
  long long t1 = -1, h1 = -1, p1 = -1;
  for (int i = 0; i < 40; i++) { /* counted when the request completes */
    http(&r, port, "GET", "/metrics", tok, NULL, 0);
    t1 = metric(r.body, "apiary_tokens_total{kind=\"completion\",served=\"local\"}");
    h1 = metric(r.body, "apiary_generation_seconds_count");
    p1 = metric(r.body, "apiary_http_requests_total{method=\"POST\",code=\"2xx\"}");
    if (t1 == t0 + 3) break;
    usleep(50000);
  }
  assert_int_equal(t1, t0 + 3);
  assert_int_equal(h1, h0 + 1);
  assert_int_equal(p1, p0 + 1);
  assert_non_null(strstr(r.body, "# TYPE apiary_generation_seconds histogram"));
  /* n choices, and prompt arrays: each choice its own generation, indexed prompt by prompt;
   * the usage sums them (a prompt counted once); streamed, see test_api_logprobs */
  const char *n2 = "{\"model\":\"tiny\",\"prompt\":[\"Once upon\",\"The cat\"],\"n\":2,\"max_tokens\":3,\"seed\":7}";
  http(&r, port, "POST", "/v1/completions", tok, n2, strlen(n2));
  assert_int_equal(r.status, 200);
  j = json_loads(r.body, 0, NULL);
  json_t *ch = json_object_get(j, "choices");
  assert_int_equal(json_array_size(ch), 4);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ch, i), "index")), (json_int_t)i);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ch, i), "finish_reason")), "length");
  }
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 12);
  json_decref(j);
  const char *cn = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"n\":3,\"max_tokens\":2}";
  http(&r, port, "POST", "/v1/chat/completions", tok, cn, strlen(cn));
  assert_int_equal(r.status, 200);
  j = json_loads(r.body, 0, NULL);
  assert_int_equal(json_array_size(json_object_get(j, "choices")), 3);
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(j, "choices"), 2),
                                                                        "message"), "role")), "assistant");
  json_decref(j);
  const char *n9 = "{\"model\":\"tiny\",\"prompt\":\"x\",\"n\":9}";
  http(&r, port, "POST", "/v1/completions", tok, n9, strlen(n9));
  check_openai_error(&r, 400, "invalid_request_error");
  /* their neutral values are fine */
  const char *neutral = "{\"model\":\"tiny\",\"prompt\":\"x\",\"n\":1,\"logprobs\":null,\"echo\":false,\"max_tokens\":1}";
  http(&r, port, "POST", "/v1/completions", tok, neutral, strlen(neutral));
  assert_int_equal(r.status, 200);
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 5000), 0);
  tu_rm_rf(dir);
}

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
  if (f) fclose(f);
  return kb;
}

/* The door holds: 64 idle connections, 64 that send half their headers and stop, and a
 * 4 MiB upload without a token, all at once, do not keep a token holder out (answered
 * within curl's 10 s, not after the crowd's timeouts), and the node's memory stays
 * bounded; past [http] max_generations, a generation gets 429 with Retry-After. */
static void test_api_door(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], tok[128];
  pid_t pid;
  int port = tiny_api_node(dir, home, tok, "s|^max_generations = .*|max_generations = 1|; s|^max_tps = .*|max_tps = 5|; "
                           "s|^max_per_address = .*|max_per_address = 4|", &pid);
  long rss0 = rss_kb(pid);
  int fds[128];
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  for (int i = 0; i < 128; i++) {
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof a), 0);
    if (i >= 64) assert_true(write(fds[i], "GET /v1/models HTTP/1.1\r\nHost: x\r\n", 35) == 35); /* and nothing more */
  }
  char cmd[1024], big[400];
  snprintf(big, sizeof big, "%s/big.bin", dir);
  assert_int_equal(tu_sh("head -c 4194000 /dev/zero > %s", big), 0);
  snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -w '%%{http_code}' -X POST --data-binary @%s http://127.0.0.1:%d/v1/completions",
           big, port);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  assert_string_equal(out, "401");
  resp r;
  http(&r, port, "GET", "/v1/models", tok, NULL, 0); /* curl's 10 s timeout: it is not kept waiting */
  assert_int_equal(r.status, 200);
  long rss1 = rss_kb(pid);
  if (rss0 > 0 && rss1 > 0 && rss1 - rss0 > 64 * 1024)
    fail_msg("the node's RSS grew by %ld KiB under 128 idle or slow connections", rss1 - rss0);
  for (int i = 0; i < 128; i++) close(fds[i]);
  /* one address other than 127.0.0.1 (which every local client shares) may hold at most
   * [http] max_per_address connections: the fifth from 127.0.0.2 is closed at once */
  int from2[5];
  struct sockaddr_in src = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
  for (int i = 0; i < 5; i++) {
    from2[i] = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(from2[i], (struct sockaddr *)&src, sizeof src), 0);
    assert_int_equal(connect(from2[i], (struct sockaddr *)&a, sizeof a), 0);
    usleep(100000); /* each is accepted (and counted) before the next */
  }
  struct timeval tv5 = {.tv_sec = 3};
  setsockopt(from2[4], SOL_SOCKET, SO_RCVTIMEO, &tv5, sizeof tv5);
  char b5[16];
  errno = 0;
  ssize_t rn = read(from2[4], b5, sizeof b5); /* closed (EOF or reset), not left open (timeout) */
  assert_true(rn == 0 || (rn < 0 && errno != EAGAIN && errno != EWOULDBLOCK));
  for (int i = 0; i < 5; i++) close(from2[i]);
  http(&r, port, "GET", "/v1/models", tok, NULL, 0); /* 127.0.0.1 is not capped */
  assert_int_equal(r.status, 200);
  /* one generation at a time: a second one meanwhile is told to come back */
  snprintf(cmd, sizeof cmd, "curl -s -N -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_tokens\":60,\"stream\":true}'", tok, port);
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  pid_t longreq = tu_spawn(argv, NULL);
  int busy = 0;
  for (int i = 0; i < 100 && !busy; i++) {
    http(&r, port, "GET", "/metrics", tok, NULL, 0);
    busy = strstr(r.body, "\napiary_generations_in_progress 1") != NULL;
    if (!busy) usleep(50000);
  }
  assert_true(busy);
  snprintf(cmd, sizeof cmd, "curl -s -i -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"tiny\",\"prompt\":\"x\",\"max_tokens\":2}'", tok, port);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  assert_non_null(strstr(out, " 429 "));
  assert_non_null(strcasestr(out, "Retry-After: 1"));
  assert_non_null(strstr(out, "rate_limit_exceeded"));
  kill(longreq, SIGKILL);
  tu_wait_exit(longreq, 5000);
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  tu_rm_rf(dir);
}


static int threads_of(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  int n = -1;
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
  if (f) fclose(f);
  return n;
}

typedef struct crowd_req { resp r; char retry_after; } crowd_req;

static size_t crowd_header(char *p, size_t sz, size_t n, void *ud) {
  crowd_req *c = ud;
  if (sz * n >= 12 && !strncasecmp(p, "Retry-After:", 12)) c->retry_after = 1;
  return sz * n;
}

/* A crowd: 200 clients at once each ask for a short completion. Every one gets an answer
 * (200) or a 429 with Retry-After, none is left hanging (each has 120 s, the crowd's work
 * is a few seconds); afterwards the node's threads come back down and a fresh request is
 * answered at once. */
static void test_api_crowd(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], tok[128];
  pid_t pid;
  int port = tiny_api_node(dir, home, tok, "s|^max_generations = .*|max_generations = 16|", &pid);
  enum { N = 200 };
  static crowd_req reqs[N];
  CURL *easy[N];
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)N);
  char url[128], auth[200];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", port);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
  struct curl_slist *h = curl_slist_append(NULL, auth);
  h = curl_slist_append(h, "Content-Type: application/json");
  const char *body = "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}";
  int threads0 = threads_of(pid);
  for (int i = 0; i < N; i++) {
    memset(&reqs[i], 0, sizeof reqs[i]);
    easy[i] = curl_easy_init();
    curl_easy_setopt(easy[i], CURLOPT_URL, url);
    curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &reqs[i].r);
    curl_easy_setopt(easy[i], CURLOPT_HEADERFUNCTION, crowd_header);
    curl_easy_setopt(easy[i], CURLOPT_HEADERDATA, &reqs[i]);
    curl_easy_setopt(easy[i], CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(easy[i], CURLOPT_FORBID_REUSE, 1L);
    curl_multi_add_handle(m, easy[i]);
  }
  int running = 1, peak = 0;
  while (running) {
    curl_multi_perform(m, &running);
    int t = threads_of(pid);
    if (t > peak) peak = t;
    if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  int ok = 0, busy = 0;
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(m, &left)))
    if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK)
      fail_msg("a request of the crowd failed: %s", curl_easy_strerror(msg->data.result));
  for (int i = 0; i < N; i++) {
    curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &reqs[i].r.status);
    if (reqs[i].r.status == 200) {
      json_t *j = json_loads(reqs[i].r.body, 0, NULL);
      assert_non_null(json_object_get(j, "choices"));
      json_decref(j);
      ok++;
    } else if (reqs[i].r.status == 429) {
      assert_true(reqs[i].retry_after);
      assert_non_null(strstr(reqs[i].r.body, "rate_limit_exceeded"));
      busy++;
    } else {
      fail_msg("request %d of the crowd: status %ld: %s", i, reqs[i].r.status, reqs[i].r.body);
    }
    curl_multi_remove_handle(m, easy[i]);
    curl_easy_cleanup(easy[i]);
  }
  curl_multi_cleanup(m);
  curl_slist_free_all(h);
  print_message("crowd of %d: %d answered, %d told to retry; node threads %d before, %d at peak\n", N, ok, busy,
                threads0, peak);
  assert_int_equal(ok + busy, N);
  assert_true(ok >= 16);
  /* the crowd's threads end with its connections */
  int t = threads_of(pid);
  for (int i = 0; i < 100 && t > threads0 + 2; i++) {
    usleep(100000);
    t = threads_of(pid);
  }
  if (t > threads0 + 2) fail_msg("the node kept %d threads after the crowd left (%d before)", t, threads0);
  resp r;
  http(&r, port, "POST", "/v1/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  tu_rm_rf(dir);
}

/* The pool: 200 connections open at once, half streaming, half waiting for a whole answer
 * (every one a generation queued on the worker, which runs slowly: max_tps 5). The node's
 * threads stay bounded all along (the HTTP pool and the fixed workers: no thread per
 * connection), a token holder is still answered meanwhile, and when the crowd hangs up its
 * generations are canceled (suspended connections still notice a client that left). */
static void test_api_pool(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], tok[128];
  pid_t pid;
  int port = tiny_api_node(dir, home, tok, "s|^max_generations = .*|max_generations = 256|; s|^max_tps = .*|max_tps = 5|",
                           &pid);
  enum { N = 200 };
  static resp rs[N];
  CURL *easy[N];
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)N);
  char url[128], auth[200];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", port);
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
  struct curl_slist *h = curl_slist_append(NULL, auth);
  h = curl_slist_append(h, "Content-Type: application/json");
  const char *streamed = "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"max_tokens\":40,\"stream\":true}";
  const char *whole = "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"max_tokens\":40}";
  resp r;
  http(&r, port, "GET", "/v1/models", tok, NULL, 0); /* the pool's threads are up */
  int threads0 = threads_of(pid);
  for (int i = 0; i < N; i++) {
    memset(&rs[i], 0, sizeof rs[i]);
    easy[i] = curl_easy_init();
    curl_easy_setopt(easy[i], CURLOPT_URL, url);
    curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, i % 2 ? streamed : whole);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &rs[i]);
    curl_easy_setopt(easy[i], CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(easy[i], CURLOPT_FORBID_REUSE, 1L);
    curl_multi_add_handle(m, easy[i]);
  }
  int running = 1, peak = 0, live = 0;
  for (int round = 0; round < 60 && running; round++) { /* about 6 s */
    curl_multi_perform(m, &running);
    int t = threads_of(pid);
    if (t > peak) peak = t;
    curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  http(&r, port, "GET", "/metrics", tok, NULL, 0); /* a token holder is answered (curl's 10 s limit) */
  assert_int_equal(r.status, 200);
  const char *g = strstr(r.body, "\napiary_generations_in_progress ");
  assert_non_null(g);
  live = atoi(g + strlen("\napiary_generations_in_progress "));
  print_message("pool: %d connections, %d generations live, node threads %d before, %d at peak\n", N, live, threads0,
                peak);
  if (live < N / 2) fail_msg("only %d of %d requests were still waiting: the test did not load the node", live, N);
  if (peak > threads0 + 3)
    fail_msg("the node grew from %d to %d threads with %d connections open: a thread per connection?", threads0,
             peak, N);
  for (int i = 0; i < N; i++) { /* hang up */
    curl_multi_remove_handle(m, easy[i]);
    curl_easy_cleanup(easy[i]);
  }
  curl_multi_cleanup(m);
  curl_slist_free_all(h);
  for (int i = 0; i < 50 && live > 0; i++) { /* each parked request sees its client left within 250 ms */
    usleep(100000);
    http(&r, port, "GET", "/metrics", tok, NULL, 0);
    g = strstr(r.body, "\napiary_generations_in_progress ");
    live = g ? atoi(g + strlen("\napiary_generations_in_progress ")) : -1;
  }
  if (live != 0) fail_msg("%d generations still live 5 s after their clients left", live);
  const char *body = "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}";
  http(&r, port, "POST", "/v1/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  tu_rm_rf(dir);
}

/* POSTs a chat body and returns its parsed answer (the caller decrefs). */
static json_t *chat_post(int port, const char *tok, const char *body, long want_status) {
  resp r;
  http(&r, port, "POST", "/v1/chat/completions", tok, body, strlen(body));
  if (r.status != want_status) fail_msg("status %ld, not %ld: %s", r.status, want_status, r.body);
  json_t *j = json_loads(r.body, 0, NULL);
  assert_non_null(j);
  return j;
}

static const char *content_of(json_t *answer) {
  return json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(answer, "choices"), 0), "message"), "content"));
}

/* Constrained output on the tiny model (random-ish text unless constrained): a GBNF grammar,
 * a JSON schema and a required tool call each come out valid, checked here by hand and by
 * jansson, not by the grammar engine that made them; what cannot be honoured is a 400. */
static void test_api_tools(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], tok[128];
  pid_t pid;
  int port = tiny_api_node(dir, home, tok, "", &pid);
  for (int seed = 1; seed <= 3; seed++) {
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"tiny\",\"seed\":%d,\"max_tokens\":40,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"grammar\":\"root ::= (\\\"yes\\\" | \\\"no\\\") \\\" \\\" [a-z]{3}\"}", seed);
    json_t *a = chat_post(port, tok, body, 200);
    const char *c = content_of(a);
    assert_non_null(c);
    const char *rest = !strncmp(c, "yes ", 4) ? c + 4 : !strncmp(c, "no ", 3) ? c + 3 : NULL;
    if (!rest || strlen(rest) != 3 || strspn(rest, "abcdefghijklmnopqrstuvwxyz") != 3) fail_msg("not a sentence of the grammar: '%s'", c);
    json_decref(a);
    snprintf(body, sizeof body, "{\"model\":\"tiny\",\"seed\":%d,\"temperature\":1,\"max_tokens\":60,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\",\"strict\":true,\"schema\":{\"type\":\"object\","
             "\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9},\"ok\":{\"type\":\"boolean\"}},"
             "\"required\":[\"n\",\"ok\"],\"additionalProperties\":false}}}}", seed);
    a = chat_post(port, tok, body, 200);
    json_t *o = json_loads(content_of(a), 0, NULL);
    if (!json_is_object(o)) fail_msg("not a JSON object: %s", content_of(a));
    json_t *n = json_object_get(o, "n");
    assert_true(json_is_integer(n) && json_integer_value(n) >= 1 && json_integer_value(n) <= 9);
    assert_true(json_is_boolean(json_object_get(o, "ok")));
    assert_int_equal(json_object_size(o), 2);
    json_decref(o);
    json_decref(a);
    snprintf(body, sizeof body, "{\"model\":\"tiny\",\"seed\":%d,\"temperature\":1,\"max_tokens\":80,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
             "\"tool_choice\":\"required\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"pick\",\"parameters\":"
             "{\"type\":\"object\",\"properties\":{\"c\":{\"enum\":[\"red\",\"blue\"]}},\"required\":[\"c\"],\"additionalProperties\":false}}},"
             "{\"type\":\"function\",\"function\":{\"name\":\"noop\",\"parameters\":{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}}}]}", seed);
    a = chat_post(port, tok, body, 200);
    json_t *ch = json_array_get(json_object_get(a, "choices"), 0);
    assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "tool_calls");
    json_t *calls = json_object_get(json_object_get(ch, "message"), "tool_calls");
    assert_true(json_array_size(calls) >= 1);
    size_t i;
    json_t *tc;
    json_array_foreach(calls, i, tc) {
      const char *name = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
      json_t *args = json_loads(json_string_value(json_object_get(json_object_get(tc, "function"), "arguments")), 0, NULL);
      assert_non_null(name);
      assert_true(json_is_object(args));
      if (!strcmp(name, "pick")) {
        const char *cv = json_string_value(json_object_get(args, "c"));
        assert_true(cv && (!strcmp(cv, "red") || !strcmp(cv, "blue")));
        assert_int_equal(json_object_size(args), 1);
      } else {
        assert_string_equal(name, "noop");
        assert_int_equal(json_object_size(args), 0);
      }
      assert_string_equal(json_string_value(json_object_get(tc, "type")), "function");
      json_decref(args);
    }
    json_decref(a);
  }
  /* refused, with OpenAI's error shape */
  const char *bad[] = {
      "{\"model\":\"tiny\",\"prompt\":\"x\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}",
      "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
      "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}",
      "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"grammar\":\"root ::= \\\"a\\\"\",\"response_format\":{\"type\":\"json_object\"}}",
      "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"grammar\":\"root ::= missing\"}",
      "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
      "{\"name\":\"x\",\"schema\":{\"type\":\"object\",\"unevaluatedProperties\":false}}}}",
      "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:,\"}}]}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    resp r;
    http(&r, port, "POST", strstr(bad[i], "\"prompt\"") ? "/v1/completions" : "/v1/chat/completions", tok, bad[i], strlen(bad[i]));
    check_openai_error(&r, 400, "invalid_request_error");
  }
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  tu_rm_rf(dir);
}

/* ---- logprobs, echo, several streamed choices --------------------------------------- */

/* The JSON events of a server-sent event stream up to [DONE] (an array; the caller
 * decrefs). Fails when it does not end with [DONE]. */
static json_t *sse_events(const char *body) {
  json_t *ev = json_array();
  int done = 0;
  for (const char *p = body; (p = strstr(p, "data: ")); p += 6) {
    if (!strncmp(p + 6, "[DONE]", 6)) { done = 1; break; }
    json_error_t je;
    json_t *j = json_loadb(p + 6, strcspn(p + 6, "\n"), 0, &je);
    if (!j) fail_msg("not JSON in the stream: %.80s", p + 6);
    json_array_append_new(ev, j);
  }
  assert_true(done);
  return ev;
}

static json_t *choice0(json_t *j) { return json_array_get(json_object_get(j, "choices"), 0); }

/* bytes as a string of the byte list */
static size_t bytes_of(json_t *list, char *dst, size_t cap) {
  size_t n = 0, i;
  json_t *b;
  json_array_foreach(list, i, b) {
    assert_true(n + 1 < cap);
    dst[n++] = (char)json_integer_value(b);
  }
  dst[n] = 0;
  return n;
}

/* A chat logprobs.content entry as OpenAI shapes it: token (its bytes when valid UTF-8,
 * else "bytes:\x.."), a logprob <= 0, bytes, k alternatives most likely first; greedy: the
 * token is the first of them. Appends its bytes to all. */
static void check_chat_entry(json_t *e, size_t k, int greedy, buf *all) {
  char b[512];
  size_t n = bytes_of(json_object_get(e, "bytes"), b, sizeof b);
  const char *t = json_string_value(json_object_get(e, "token"));
  assert_non_null(t);
  if (strncmp(t, "bytes:", 6)) {
    assert_int_equal(strlen(t), n);
    assert_memory_equal(t, b, n);
  }
  double lp = json_number_value(json_object_get(e, "logprob"));
  assert_true(json_is_number(json_object_get(e, "logprob")) && lp <= 0);
  json_t *top = json_object_get(e, "top_logprobs");
  assert_int_equal(json_array_size(top), k);
  for (size_t i = 1; i < k; i++)
    assert_true(json_number_value(json_object_get(json_array_get(top, i), "logprob")) <=
                json_number_value(json_object_get(json_array_get(top, i - 1), "logprob")));
  if (greedy && k) {
    assert_string_equal(json_string_value(json_object_get(json_array_get(top, 0), "token")), t);
    assert_true(json_number_value(json_object_get(json_array_get(top, 0), "logprob")) == lp);
  }
  buf_append(all, b, n);
}

/* logprobs on the tiny model, against the answers' own text and against each other:
 *   - chat: one entry per generated token whose bytes spell the content, greedy tokens first
 *     among top_logprobs; streamed, the chunks' entries spell each chunk's text and are the
 *     whole answer's entries;
 *   - completions: tokens/token_logprobs/top_logprobs/text_offset; echo gives the prompt's
 *     tokens first, each prompt position's alternatives equal to what a generation from the
 *     prompt up to there reports (position by position vs a batch), and the generated
 *     tokens' numbers unchanged; streamed the same;
 *   - n = 2 streamed (chat and a prompt array): each choice's chunks under its index with
 *     its own finish chunk, the same texts as the whole answer with the same seed, usage
 *     summed with a prompt counted once;
 *   - a model bought from the network: echo with logprobs is refused (400). */
static void test_api_logprobs(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], tok[128];
  pid_t pid;
  int port = tiny_api_node(dir, home, tok, "", &pid);
  resp r;
  /* chat, whole */
  const char *cb = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}],"
                   "\"max_tokens\":12,\"temperature\":0,\"logprobs\":true,\"top_logprobs\":3";
  char body[1024];
  snprintf(body, sizeof body, "%s}", cb);
  json_t *a = chat_post(port, tok, body, 200);
  json_t *content = json_object_get(json_object_get(choice0(a), "logprobs"), "content");
  assert_int_equal(json_array_size(content), json_integer_value(json_object_get(json_object_get(a, "usage"), "completion_tokens")));
  buf all;
  buf_init(&all);
  size_t i;
  json_t *e;
  json_array_foreach(content, i, e) check_chat_entry(e, 3, 1, &all);
  const char *text = content_of(a);
  if (!strstr(text, "\xef\xbf\xbd")) { /* no replacement character: the bytes are the text */
    assert_int_equal(all.len, strlen(text));
    assert_memory_equal(all.ptr, text, all.len);
  }
  /* chat, streamed: the same entries, chunk by chunk */
  snprintf(body, sizeof body, "%s,\"stream\":true}", cb);
  http(&r, port, "POST", "/v1/chat/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  json_t *ev = sse_events(r.body), *c;
  buf streamed;
  buf_init(&streamed);
  size_t k = 0, finishes = 0;
  json_array_foreach(ev, i, c) {
    json_t *ch = choice0(c);
    if (json_is_string(json_object_get(ch, "finish_reason"))) finishes++;
    json_t *lp = json_object_get(ch, "logprobs");
    const char *delta = json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
    if (delta) buf_append_str(&streamed, delta);
    if (json_is_null(lp)) continue;
    buf chunk;
    buf_init(&chunk);
    size_t x;
    json_t *se;
    json_array_foreach(json_object_get(lp, "content"), x, se) {
      if (!json_equal(se, json_array_get(content, k))) fail_msg("stream entry %zu differs from the whole answer's", k);
      check_chat_entry(se, 3, 1, &chunk);
      k++;
    }
    if (delta && !strstr(delta, "\xef\xbf\xbd") && chunk.len == strlen(delta)) assert_memory_equal(chunk.ptr, delta, chunk.len);
    buf_deinit(&chunk);
  }
  assert_int_equal(k, json_array_size(content));
  assert_int_equal(finishes, 1);
  assert_int_equal(streamed.len, strlen(text));
  assert_memory_equal(streamed.ptr, text, streamed.len);
  json_decref(ev);
  json_decref(a);
  buf_deinit(&streamed);
  buf_deinit(&all);

  /* completions: logprobs 2, without and with echo */
  const char *prompt = "Once upon a time";
  snprintf(body, sizeof body, "{\"model\":\"tiny\",\"prompt\":\"%s\",\"max_tokens\":6,\"temperature\":0,\"logprobs\":2}", prompt);
  http(&r, port, "POST", "/v1/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  json_t *plain = json_loads(r.body, 0, NULL);
  json_t *pl = json_object_get(choice0(plain), "logprobs");
  size_t ng = json_array_size(json_object_get(pl, "tokens"));
  assert_int_equal(ng, 6);
  long off = (long)strlen(prompt);
  for (i = 0; i < ng; i++) {
    assert_int_equal(json_integer_value(json_array_get(json_object_get(pl, "text_offset"), i)), off);
    off += (long)strlen(json_string_value(json_array_get(json_object_get(pl, "tokens"), i)));
    json_t *top = json_array_get(json_object_get(pl, "top_logprobs"), i);
    assert_true(json_object_size(top) >= 1 && json_object_size(top) <= 2);
    /* greedy: the token's logprob is the largest of its alternatives */
    double lp = json_number_value(json_array_get(json_object_get(pl, "token_logprobs"), i));
    assert_true(lp <= 0);
    const char *key;
    json_t *v;
    json_object_foreach(top, key, v) assert_true(json_number_value(v) <= lp);
  }
  snprintf(body, sizeof body, "{\"model\":\"tiny\",\"prompt\":\"%s\",\"max_tokens\":6,\"temperature\":0,\"logprobs\":2,\"echo\":true}", prompt);
  http(&r, port, "POST", "/v1/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  json_t *echo = json_loads(r.body, 0, NULL);
  json_t *el = json_object_get(choice0(echo), "logprobs");
  const char *etext = json_string_value(json_object_get(choice0(echo), "text"));
  assert_int_equal(strncmp(etext, prompt, strlen(prompt)), 0);
  assert_string_equal(etext + strlen(prompt), json_string_value(json_object_get(choice0(plain), "text")));
  size_t ne = json_array_size(json_object_get(el, "tokens"));
  assert_true(ne > ng);
  size_t np = ne - ng; /* the prompt's tokens (BOS is not text) */
  for (i = 0; i < ng; i++) { /* the generated tokens: the same numbers */
    assert_string_equal(json_string_value(json_array_get(json_object_get(el, "tokens"), np + i)),
                        json_string_value(json_array_get(json_object_get(pl, "tokens"), i)));
    double x = json_number_value(json_array_get(json_object_get(el, "token_logprobs"), np + i));
    double y = json_number_value(json_array_get(json_object_get(pl, "token_logprobs"), i));
    if (fabs(x - y) > 1e-5) fail_msg("generated token %zu: %.6f with echo, %.6f without", i, x, y);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(el, "text_offset"), np + i)),
                     json_integer_value(json_array_get(json_object_get(pl, "text_offset"), i)));
  }
  /* the prompt's tokens spell the prompt (the first one's space prefix aside), offsets into it */
  buf ptoks;
  buf_init(&ptoks);
  for (i = 0; i < np; i++) buf_append_str(&ptoks, json_string_value(json_array_get(json_object_get(el, "tokens"), i)));
  const char *spelled = (const char *)ptoks.ptr + (ptoks.ptr[0] == ' ' && prompt[0] != ' ');
  assert_string_equal(spelled, prompt);
  assert_int_equal(json_integer_value(json_array_get(json_object_get(el, "text_offset"), 0)), 0);
  /* each prompt position's alternatives: what a generation from the prompt up to there says */
  size_t at = 0;
  for (i = 0; i + 1 < np; i++) {
    at += strlen(json_string_value(json_array_get(json_object_get(el, "tokens"), i)));
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%.*s", (int)(at - (ptoks.ptr[0] == ' ' && prompt[0] != ' ')), prompt);
    snprintf(body, sizeof body, "{\"model\":\"tiny\",\"prompt\":\"%s\",\"max_tokens\":1,\"temperature\":0,\"logprobs\":2}", prefix);
    http(&r, port, "POST", "/v1/completions", tok, body, strlen(body));
    assert_int_equal(r.status, 200);
    json_t *g = json_loads(r.body, 0, NULL);
    json_t *want = json_array_get(json_object_get(json_object_get(choice0(g), "logprobs"), "top_logprobs"), 0);
    json_t *got = json_array_get(json_object_get(el, "top_logprobs"), i + 1);
    const char *key;
    json_t *v;
    assert_int_equal(json_object_size(got), json_object_size(want));
    json_object_foreach(want, key, v) {
      json_t *w = json_object_get(got, key);
      if (!w || fabs(json_number_value(w) - json_number_value(v)) > 1e-5)
        fail_msg("prompt position %zu ('%s'): alternative '%s' %.6f, a generation says %.6f", i + 1, prefix, key,
                 json_number_value(w), json_number_value(v));
    }
    json_decref(g);
  }
  buf_deinit(&ptoks);
  /* completions with echo, streamed: the same text and tokens */
  snprintf(body, sizeof body, "{\"model\":\"tiny\",\"prompt\":\"%s\",\"max_tokens\":6,\"temperature\":0,\"logprobs\":2,"
           "\"echo\":true,\"stream\":true}", prompt);
  http(&r, port, "POST", "/v1/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  ev = sse_events(r.body);
  buf st;
  buf_init(&st);
  k = 0;
  json_array_foreach(ev, i, c) {
    json_t *ch = choice0(c);
    buf_append_str(&st, json_string_value(json_object_get(ch, "text")));
    json_t *lp = json_object_get(ch, "logprobs");
    size_t x;
    json_t *t;
    json_array_foreach(json_object_get(lp, "tokens"), x, t) {
      assert_string_equal(json_string_value(t), json_string_value(json_array_get(json_object_get(el, "tokens"), k)));
      assert_true(json_equal(json_array_get(json_object_get(lp, "text_offset"), x),
                             json_array_get(json_object_get(el, "text_offset"), k)));
      k++;
    }
  }
  assert_int_equal(k, ne);
  assert_string_equal((const char *)st.ptr, etext);
  buf_deinit(&st);
  json_decref(ev);
  json_decref(echo);
  json_decref(plain);

  /* n = 2, streamed, against the whole answer with the same seed */
  const char *nb = "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"n\":2,\"max_tokens\":5,\"seed\":11";
  snprintf(body, sizeof body, "%s}", nb);
  json_t *whole = chat_post(port, tok, body, 200);
  snprintf(body, sizeof body, "%s,\"stream\":true,\"stream_options\":{\"include_usage\":true}}", nb);
  http(&r, port, "POST", "/v1/chat/completions", tok, body, strlen(body));
  assert_int_equal(r.status, 200);
  ev = sse_events(r.body);
  buf texts[2];
  buf_init(&texts[0]);
  buf_init(&texts[1]);
  int fin[2] = {0, 0}, last_index = 0;
  json_t *usage = NULL;
  json_array_foreach(ev, i, c) {
    json_t *ch = choice0(c);
    if (!ch) { usage = json_object_get(c, "usage"); continue; }
    int idx = (int)json_integer_value(json_object_get(ch, "index"));
    assert_true(idx >= last_index && idx < 2); /* one choice after another */
    last_index = idx;
    assert_int_equal(fin[idx], 0); /* nothing after a choice's finish chunk */
    const char *d = json_string_value(json_object_get(json_object_get(ch, "delta"), "content"));
    if (d) buf_append_str(&texts[idx], d);
    if (json_is_string(json_object_get(ch, "finish_reason"))) fin[idx] = 1;
  }
  assert_true(fin[0] && fin[1]);
  for (int x = 0; x < 2; x++) {
    const char *w = json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(whole, "choices"), (size_t)x), "message"), "content"));
    assert_int_equal(texts[x].len, strlen(w));
    assert_memory_equal(texts[x].ptr ? (const char *)texts[x].ptr : "", w, texts[x].len);
    buf_deinit(&texts[x]);
  }
  assert_non_null(usage);
  assert_true(json_equal(usage, json_object_get(whole, "usage")));
  json_decref(ev);
  json_decref(whole);
  /* a prompt array streamed: indexes prompt by prompt, n each */
  const char *pa = "{\"model\":\"tiny\",\"prompt\":[\"Once upon\",\"The cat\"],\"n\":2,\"max_tokens\":2,\"seed\":3,\"stream\":true}";
  http(&r, port, "POST", "/v1/completions", tok, pa, strlen(pa));
  assert_int_equal(r.status, 200);
  ev = sse_events(r.body);
  int seen[4] = {0, 0, 0, 0};
  json_array_foreach(ev, i, c) {
    json_t *ch = choice0(c);
    int idx = (int)json_integer_value(json_object_get(ch, "index"));
    assert_true(idx >= 0 && idx < 4);
    if (json_is_string(json_object_get(ch, "finish_reason"))) seen[idx]++;
  }
  for (int x = 0; x < 4; x++) assert_int_equal(seen[x], 1);
  json_decref(ev);
  /* the prompt's logprobs (echo) of a model this node would buy: refused, not ignored (the
   * provider sends the generated tokens' records only) */
  const char *bought = "{\"model\":\"someone/else\",\"prompt\":\"x\",\"logprobs\":1,\"echo\":true}";
  http(&r, port, "POST", "/v1/completions", tok, bought, strlen(bought));
  if (r.status != 404) { /* a node without the network hook says the model is unknown */
    check_openai_error(&r, 400, "invalid_request_error");
    assert_non_null(strstr(r.body, "unsupported_parameter"));
  }
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  tu_rm_rf(dir);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_api_auth), cmocka_unit_test(test_api_limits),
                                     cmocka_unit_test(test_api_door), cmocka_unit_test(test_api_crowd),
                                     cmocka_unit_test(test_api_pool),
                                     cmocka_unit_test(test_api_tools), cmocka_unit_test(test_api_logprobs)};
  int rc = cmocka_run_group_tests_name("cli_http", tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
