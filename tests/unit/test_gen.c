/* market/gen — the one generation path: a model in the store runs on the local worker
 * (greedy text checked against llama.cpp's pieces for the tiny reference model); anything
 * else, or a named provider, goes to the network hook, whose stream reads the same way;
 * with no network an unknown model is a 404; the policy hook sees where a request would
 * run and can refuse it (403). Every refused request's owned fields are freed (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/hex.h"
#include "llm/mstore.h"
#include "market/gen.h"
#include "privacy/policy.h"

static char dir[512];
static local_svc *worker;
static json_t *ref;

static int setup(void **state) {
  (void)state;
  char path[1024];
  if (tu_shared_path(path, sizeof path, "testdata/tiny-spm4k-Q8_0.gguf")) return 0;
  tu_tmpdir(dir, sizeof dir);
  mstore_pull_opts po = {.name = "tiny"};
  mstore_model m;
  char err[512];
  if (mstore_pull(dir, path, &po, &m, err, sizeof err)) return -1;
  if (local_svc_new(1, 256, &worker)) return -1;
  tu_shared_path(path, sizeof path, "testdata/tiny-spm4k-Q8_0.ref.json");
  ref = tu_load_json(path);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  local_svc_free(worker);
  json_decref(ref);
  if (dir[0]) tu_rm_rf(dir);
  return 0;
}

static local_req prompt_req(const char *prompt, int max_tokens) {
  local_req lr;
  memset(&lr, 0, sizeof lr);
  lr.prompt = strdup(prompt);
  lr.prompt_len = strlen(prompt);
  lr.add_bos = -1;
  lr.sp = sample_default_params();
  lr.sp.temp = 0;
  lr.max_tokens = max_tokens;
  return lr;
}

/* The network hook of these tests: records the call and hands back a stream the test
 * writes (as node/mktsvc would from the loop). */
static struct {
  int calls;
  char model[256];
  int had_only;
  uint8_t only[32];
  int max_tokens;
  char prompt[512];         /* the prompt as it was handed to the network */
  mkt_stream *s;
} net;

static int fake_network(void *ud, const char *model, const uint8_t *only, local_req *lr, mkt_stream **out) {
  (void)ud;
  net.calls++;
  snprintf(net.model, sizeof net.model, "%s", model);
  net.had_only = only != NULL;
  if (only) memcpy(net.only, only, 32);
  net.max_tokens = lr->max_tokens;
  snprintf(net.prompt, sizeof net.prompt, "%s", lr->prompt ? lr->prompt : "");
  local_req_clear(lr); /* taken */
  net.s = mkt_stream_new();
  mkt_stream_ref(net.s);
  *out = net.s;
  return 0;
}

static gen_where seen_where;
static int refuse_network(void *ud, const char *model, gen_where where, const local_req *lr, char *why, size_t cap) {
  (void)ud, (void)model, (void)lr;
  seen_where = where;
  if (where == GEN_NETWORK) snprintf(why, cap, "this request must stay on this device");
  return where == GEN_NETWORK;
}

static void test_local(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gen *g;
  gen_opts o = {.models_dir = dir, .local = worker, .network = fake_network, .self_id = "apself"};
  assert_int_equal(gen_new(&o, &g), 0);
  json_t *g0 = json_array_get(json_object_get(ref, "greedy"), 0);
  local_req lr = prompt_req(json_string_value(json_object_get(g0, "prompt")), 5);
  gen_stream *s;
  char name[128];
  gen_error e;
  gen_request r = {.model = "tiny"};
  net.calls = 0;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_string_equal(name, "tiny");
  assert_false(gen_is_remote(s));
  assert_int_equal(net.calls, 0);
  char node[MKT_NODE_ID_MAX];
  assert_int_equal(gen_wait_started(s, 0, node), 0);
  assert_string_equal(node, "apself");
  mkt_result res;
  assert_int_equal(gen_wait(s, 60000, &res), 0);
  assert_int_equal(res.finish, LOCAL_LENGTH);
  assert_int_equal(res.completion_tokens, 5);
  assert_int_equal(res.prompt_tokens, (int)json_array_size(json_object_get(g0, "prompt_ids")));
  assert_string_equal(res.providers[0], "apself");
  assert_int_equal(res.cost_wei, 0);
  /* the text: llama.cpp's first five greedy pieces */
  char want[256] = "", text[256];
  size_t wl = 0;
  for (size_t i = 0; i < 5; i++) {
    const char *hx = json_string_value(json_object_get(json_array_get(json_object_get(g0, "steps"), i), "piece_hex"));
    int n = hex_decode_var(hx, strlen(hx), (uint8_t *)want + wl, sizeof want - wl - 1);
    assert_true(n >= 0);
    wl += (size_t)n;
  }
  want[wl] = 0;
  int n, tl = 0;
  while ((n = gen_read(s, text + tl, sizeof text - 1 - (size_t)tl, 0)) > 0) tl += n;
  text[tl] = 0;
  assert_string_equal(text, want);
  gen_release(s);
  gen_free(g);
}

static void test_network(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gen *g;
  gen_opts o = {.models_dir = dir, .local = worker, .network = fake_network, .self_id = "apself"};
  assert_int_equal(gen_new(&o, &g), 0);
  char name[128];
  gen_error e;
  gen_stream *s;
  /* a model this node does not have goes to the network */
  local_req lr = prompt_req("hello", 7);
  gen_request r = {.model = "stories15M"};
  net.calls = 0;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_int_equal(net.calls, 1);
  assert_string_equal(net.model, "stories15M");
  assert_false(net.had_only);
  assert_int_equal(net.max_tokens, 7);
  assert_true(gen_is_remote(s));
  char node[MKT_NODE_ID_MAX];
  assert_int_equal(gen_wait_started(s, 10, node), -ETIMEDOUT); /* no provider yet */
  mkt_stream_set_node(net.s, "approv");
  mkt_stream_push(net.s, "abc", 3);
  mkt_result fin = {.finish = LOCAL_STOP, .prompt_tokens = 2, .completion_tokens = 1, .cost_wei = 42, .n_providers = 1};
  snprintf(fin.node_id, sizeof fin.node_id, "approv");
  snprintf(fin.providers[0], sizeof fin.providers[0], "approv");
  mkt_stream_finish(net.s, &fin);
  mkt_stream_unref(net.s);
  assert_int_equal(gen_wait_started(s, 0, node), 0);
  assert_string_equal(node, "approv");
  char text[16];
  assert_int_equal(gen_read(s, text, sizeof text, 0), 3);
  assert_memory_equal(text, "abc", 3);
  mkt_result res;
  assert_int_equal(gen_wait(s, 0, &res), 0);
  assert_int_equal(res.cost_wei, 42);
  assert_false(gen_failed_early(s));
  gen_release(s);
  /* a named provider: bought even though the model is local */
  uint8_t who[32];
  memset(who, 0x5a, 32);
  lr = prompt_req("hello", 3);
  r = (gen_request){.model = "tiny", .only = who};
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_int_equal(net.calls, 2);
  assert_true(net.had_only);
  assert_memory_equal(net.only, who, 32);
  /* a stream that ends in an error before any text failed early */
  mkt_result bad = {.finish = LOCAL_ERROR, .http_status = 502};
  snprintf(bad.error, sizeof bad.error, "no provider");
  mkt_stream_finish(net.s, &bad);
  mkt_stream_unref(net.s);
  assert_true(gen_failed_early(s));
  gen_release(s);
  gen_free(g);
}

static void test_refusals(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gen *g;
  char name[128];
  gen_error e;
  gen_stream *s = NULL;
  /* no network: a model that is not here is a 404, and the request's fields are freed */
  gen_opts o = {.models_dir = dir, .local = worker, .self_id = "apself"};
  assert_int_equal(gen_new(&o, &g), 0);
  local_req lr = prompt_req("hello", 3);
  gen_request r = {.model = "stories15M"};
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), ERR_NOTFOUND);
  assert_int_equal(e.status, 404);
  assert_string_equal(e.code, "model_not_found");
  assert_non_null(strstr(e.message, "stories15M"));
  assert_null(lr.prompt);
  gen_free(g);
  /* the policy sees where it would run; a refusal is a 403 with its reason */
  o.network = fake_network;
  assert_int_equal(gen_new(&o, &g), 0);
  gen_set_policy(g, refuse_network, NULL);
  lr = prompt_req("hello", 3);
  net.calls = 0;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), ERR_PERM);
  assert_int_equal(seen_where, GEN_NETWORK);
  assert_int_equal(e.status, 403);
  assert_string_equal(e.message, "this request must stay on this device");
  assert_int_equal(net.calls, 0);
  lr = prompt_req("hello", 2);
  r.model = "tiny";
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_int_equal(seen_where, GEN_LOCAL);
  mkt_result res;
  assert_int_equal(gen_wait(s, 60000, &res), 0);
  gen_release(s);
  gen_free(g);
}

/* Reads s to its end in small pieces (the restored text outgrows what was read). */
static void read_all(gen_stream *s, char *out, size_t cap) {
  size_t n = 0;
  int k;
  char piece[5];
  while ((k = gen_read(s, piece, sizeof piece, 1000)) > 0) {
    assert_true(n + (size_t)k < cap);
    memcpy(out + n, piece, (size_t)k);
    n += (size_t)k;
  }
  assert_int_equal(k, 0);
  out[n] = 0;
}

/* The privacy policy (privacy/policy): local-only is refused before the network sees
 * anything; redact hands the network placeholders and restores the answer, a placeholder
 * split across chunks too; the node's level and the request's combine, strictest first;
 * local generations are not redacted. */
static void test_privacy(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gen *g;
  char name[128], text[512];
  gen_error e;
  gen_stream *s = NULL;
  gen_opts o = {.models_dir = dir, .local = worker, .network = fake_network, .self_id = "apself"};
  assert_int_equal(gen_new(&o, &g), 0);
  gen_request r = {.model = "stories15M"};
  local_req lr = prompt_req("mail bob@example.com, card 4111111111111111", 3);
  lr.privacy = POLICY_LOCAL_ONLY;
  net.calls = 0;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), ERR_PERM);
  assert_int_equal(e.status, 403);
  assert_string_equal(e.code, "privacy_local_only");
  assert_int_equal(net.calls, 0);
  assert_null(lr.prompt);
  /* local-only with a local model runs */
  r.model = "tiny";
  lr = prompt_req("hello", 2);
  lr.privacy = POLICY_LOCAL_ONLY;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_false(gen_is_remote(s));
  mkt_result res;
  assert_int_equal(gen_wait(s, 60000, &res), 0);
  gen_release(s);
  /* redact: placeholders out, values back */
  r.model = "stories15M";
  lr = prompt_req("mail bob@example.com, card 4111111111111111", 3);
  lr.privacy = POLICY_REDACT;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_int_equal(net.calls, 1);
  assert_string_equal(net.prompt, "mail [EMAIL_1], card [CARD_1]");
  assert_int_equal(gen_n_redacted(s), 2);
  static const char *const chunks[] = {"Hi [EMA", "IL_1], your card [", "CARD_1", "] and [EMAIL_2] [C", "A"};
  for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) mkt_stream_push(net.s, chunks[i], strlen(chunks[i]));
  mkt_result fin = {.finish = LOCAL_STOP, .n_providers = 1};
  mkt_stream_finish(net.s, &fin);
  mkt_stream_unref(net.s);
  read_all(s, text, sizeof text);
  assert_string_equal(text, "Hi bob@example.com, your card 4111111111111111 and [EMAIL_2] [CA");
  gen_release(s);
  gen_free(g);
  /* the node says redact, the request says allow: redact */
  o.privacy = POLICY_REDACT;
  assert_int_equal(gen_new(&o, &g), 0);
  lr = prompt_req("ip 10.1.2.3", 3);
  lr.privacy = POLICY_ALLOW;
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_string_equal(net.prompt, "ip [IP_1]");
  mkt_stream_finish(net.s, &fin);
  mkt_stream_unref(net.s);
  read_all(s, text, sizeof text);
  gen_release(s);
  /* a local model: nothing leaves, nothing is redacted */
  r.model = "tiny";
  lr = prompt_req("ip 10.1.2.3", 2);
  assert_int_equal(gen_submit(g, &r, &lr, &s, name, sizeof name, &e), 0);
  assert_false(gen_is_remote(s));
  assert_int_equal(gen_n_redacted(s), 0);
  assert_int_equal(gen_wait(s, 60000, &res), 0);
  gen_release(s);
  gen_free(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_local), cmocka_unit_test(test_network),
                                     cmocka_unit_test(test_refusals), cmocka_unit_test(test_privacy)};
  return cmocka_run_group_tests_name("gen", tests, setup, teardown);
}
