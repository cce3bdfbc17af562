/* The inference market end to end: real node processes on loopback, a real anvil chain.
 *
 *   A sells stories15M (the genuine Q8_0, listed in the Registry by A at start) at a price
 *   per 1k prompt and generated tokens; C has no model and answers its API through A,
 *   paying per token from a channel it opens by itself. The text follows llama.cpp's
 *   greedy reference; the usage, the X-Apiary-Node / X-Apiary-Cost-Wei headers, C's and
 *   A's receipts and the amount A claims on chain all agree to the wei with tokens x price.
 *   A request without a valid bearer token gets 401.
 *
 *   B then advertises a different file (the F32 GGUF) under the name stories15M, cheaper,
 *   and does not list it in the Registry: C never uses it, and asking for that hash
 *   directly is refused because it is not listed; once the file is listed under a name of
 *   its own, a request by that name resolves through the Registry and goes to B.
 *
 *   Failover: B restarts with the genuine model; A and B both serve it (speed-capped so a
 *   kill lands mid-answer). C streams a long greedy answer; the provider serving it is
 *   SIGKILLed after some tokens; the answer completes via the other one, identical to an
 *   uninterrupted answer (no gap, no repeated token), and each provider is paid only for the
 *   tokens it produced. The same with a provider that stalls (SIGSTOP: the link stays up but
 *   nothing comes): after [market] stall_timeout the answer continues on the other one.
 *
 *   Credit window: with a client that never pays mid-stream, each provider stops after its
 *   credit_tokens and the request fails (502) with nobody left to ask.
 *
 *   Also: A's offers are in its signed DHT record; C's GET /v1/models lists the network's.
 *
 * Skips without anvil or ../shared. Nothing leaves the machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

#define PRICE_P 1000000000ull   /* wei per 1k prompt tokens */
#define PRICE_G 3000000007ull   /* wei per 1k generated tokens (odd: rounding shows) */

static char out[1 << 18], err[1 << 16];
static char token[128], mirror[1024];
static tu_cluster cl;
static int ready;

enum { A = 0, B = 1, C = 2 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)

/* Shorthands over tests/support/cluster. */
#define home(n) (cl.node[n].home)
#define ids(n) (cl.node[n].id)
static int http_port(int n) { return tu_node_http_port(&cl, n); }
static void start_node(int n) {
  if (tu_node_start(&cl, n)) fail_msg("node %s did not start (see %s.log)", home(n), home(n));
}
static void stop_node(int n) { tu_node_stop(&cl, n); }
static void set_cfg(int n, const char *key, const char *value) { assert_int_equal(tu_node_set(&cl, n, key, value), 0); }
/* Waits until C knows an offer of sha from node n (-1: from anyone). */
static int wait_offer(const char *sha, int n) { return tu_node_wait_offer(&cl, C, sha, n); }

static uint64_t cost(uint64_t pt, uint64_t gt) {
  unsigned __int128 w = (unsigned __int128)pt * PRICE_P + (unsigned __int128)gt * PRICE_G;
  return (uint64_t)((w + 999) / 1000);
}

static json_t *receipt(int n, const char *req, const char *role, const char *provider) {
  return tu_node_receipt(&cl, n, req, role, provider);
}

static uint64_t dec(json_t *o, const char *k) { return tu_dec(o, k); }

/* Waits for a complete receipt (both sides settle after the answer). */
static json_t *settled(int n, const char *req, const char *role, const char *provider) {
  for (int i = 0; i < 100; i++) {
    json_t *r = receipt(n, req, role, provider);
    if (r && !strcmp(json_string_value(json_object_get(r, "status")), "complete")) return r;
    json_decref(r);
    usleep(100000);
  }
  return receipt(n, req, role, provider);
}

/* POST to C's API; returns the parsed body, headers in hdr. */
static json_t *post(const char *path, const char *body, char *hdr, size_t hdr_cap, const char *auth) {
  char cmd[8192], hpath[400];
  snprintf(hpath, sizeof hpath, "%s/hdr.txt", cl.dir);
  snprintf(cmd, sizeof cmd, "curl -s -D %s -H 'Content-Type: application/json' %s%s%s http://127.0.0.1:%d%s -d '%s'",
           hpath, auth ? "-H 'Authorization: Bearer " : "", auth ? auth : "", auth ? "'" : "", http_port(C), path,
           body);
  if (tu_run(cmd, out, sizeof out, err, sizeof err)) return NULL;
  json_t *j = json_loads(out, 0, NULL);
  FILE *f = fopen(hpath, "r");
  size_t n = f ? fread(hdr, 1, hdr_cap - 1, f) : 0;
  hdr[n] = 0;
  if (f) fclose(f);
  return j;
}

static int header(const char *hdr, const char *name, char *val, size_t cap) {
  const char *p = strcasestr(hdr, name);
  if (!p) return -1;
  p += strlen(name);
  while (*p == ':' || *p == ' ') p++;
  size_t n = strcspn(p, "\r\n");
  if (n >= cap) n = cap - 1;
  memcpy(val, p, n);
  val[n] = 0;
  return 0;
}

/* Waits until the SSE stream being written to sse holds at least n data chunks, then
 * returns which provider produces it now (A or B: the newest chunk's apiary.node). The
 * files must be the current request's: callers remove them before starting it. */
static int serving_after(const char *sse, const char *hpath, int n) {
  (void)hpath;
  static char line[1 << 16], last[1 << 16];
  for (int i = 0; i < 400; i++) {
    usleep(50000);
    FILE *f = fopen(sse, "r");
    int chunks = 0;
    last[0] = 0;
    while (f && fgets(line, sizeof line, f))
      if (!strncmp(line, "data: {", 7)) chunks++, memcpy(last, line, strlen(line) + 1);
    if (f) fclose(f);
    if (chunks < n) continue;
    json_t *e = json_loads(last + 6, 0, NULL);
    const char *node = json_string_value(json_object_get(json_object_get(e, "apiary"), "node"));
    int who = node && !strcmp(node, ids(A)) ? A : node && !strcmp(node, ids(B)) ? B : -1;
    json_decref(e);
    if (who < 0) fail_msg("the stream's chunks name no known provider: %.200s", last);
    return who;
  }
  fail_msg("the stream did not reach %d chunks", n);
  return -1;
}

/* Reassembles the text of the SSE stream in path into got; returns its last event (owned). */
static json_t *read_stream(const char *path, char *got, size_t cap) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char line[1 << 16];
  size_t got_len = 0;
  json_t *last = NULL;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "data: {", 7)) continue;
    json_t *e = json_loads(line + 6, 0, NULL);
    assert_non_null(e);
    const char *t = json_string_value(json_object_get(json_array_get(json_object_get(e, "choices"), 0), "text"));
    size_t tl = t ? strlen(t) : 0;
    assert_true(got_len + tl < cap);
    memcpy(got + got_len, t, tl);
    got_len += tl;
    json_decref(last);
    last = e;
  }
  fclose(f);
  got[got_len] = 0;
  return last;
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared()) return 0;
  tu_shared_path(mirror, sizeof mirror, "models");
  int rc = tu_cluster_init(&cl, 3);
  if (rc < 0) return -1;
  ready = rc == 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (cl.n) tu_cluster_free(&cl);
  return 0;
}

static void test_market(void **state) {
  (void)state;
  if (!ready) {
    print_message("anvil or ../shared not available; skipping\n");
    skip();
  }
  const char *names = "abc";
  char pp[32], gp[32];
  snprintf(pp, sizeof pp, "%llu", PRICE_P);
  snprintf(gp, sizeof gp, "%llu", PRICE_G);
  for (int n = A; n <= B; n++) {
    set_cfg(n, "price_prompt", pp);
    set_cfg(n, "price_gen", gp);
    set_cfg(n, "claim_threshold_wei", "\"1\"");
    set_cfg(n, "claim_interval", "1");
  }
  set_cfg(C, "stall_timeout", "3000");
  assert_int_equal(apiary("model pull --home %s stories15M --from %s", home(A), mirror), 0);
  json_t *ml = apiary_json("model list --home %s", home(A));
  char sha[65];
  snprintf(sha, sizeof sha, "%s", json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")));
  json_decref(ml);

  /* The reference: llama.cpp's greedy continuation. */
  char refpath[1200];
  snprintf(refpath, sizeof refpath, "%s/stories15M-Q8_0.ref.json", mirror);
  json_t *ref = tu_load_json(refpath);
  json_t *g0 = json_array_get(json_object_get(ref, "greedy"), 0);
  const char *prompt = json_string_value(json_object_get(g0, "prompt"));
  const char *want = json_string_value(json_object_get(g0, "generated_text"));
  json_int_t want_pt = (json_int_t)json_array_size(json_object_get(g0, "prompt_ids"));

  start_node(A);
  start_node(C);
  assert_true(wait_offer(sha, A));
  /* A's offers are in its signed DHT record (key "o": a list of dicts with the model hash). */
  int in_record = 0;
  for (int i = 0; i < 100 && !in_record; i++) {
    json_t *rec = apiary_json("dht --home %s get %s --salt apiary-node-v1", home(C), ids(A));
    const char *raw = json_string_value(json_object_get(rec, "raw_hex"));
    in_record = raw && strstr(raw, "313a6f6c") /* "1:ol" */ && strstr(raw, sha);
    json_decref(rec);
    if (!in_record) usleep(100000);
  }
  assert_true(in_record);
  json_t *tk = apiary_json("token --home %s create", home(C));
  snprintf(token, sizeof token, "%s", json_string_value(json_object_get(tk, "token")));
  json_decref(tk);

  /* C's model list includes what the network sells. */
  char cmdm[1024];
  snprintf(cmdm, sizeof cmdm, "curl -s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/models", token, http_port(C));
  assert_int_equal(tu_run(cmdm, out, sizeof out, err, sizeof err), 0);
  json_t *models = json_loads(out, 0, NULL);
  if (!json_array_size(json_object_get(models, "data"))) fail_msg("no models: %s", out);
  json_t *m0 = json_array_get(json_object_get(models, "data"), 0);
  assert_string_equal(json_string_value(json_object_get(m0, "sha256")), sha);
  assert_string_equal(json_string_value(json_object_get(m0, "owned_by")), "network");
  json_decref(models);
  /* and one by name: GET /v1/models/{id} */
  snprintf(cmdm, sizeof cmdm, "curl -s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/models/stories15M", token,
           http_port(C));
  assert_int_equal(tu_run(cmdm, out, sizeof out, err, sizeof err), 0);
  json_t *one = json_loads(out, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(one, "sha256")), sha);
  assert_string_equal(json_string_value(json_object_get(one, "owned_by")), "network");
  json_decref(one);

  /* ---- C's API answers through A, paid per token ---- */
  char body[2048], hdr[4096], val[128];
  snprintf(body, sizeof body, "{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":24,\"temperature\":0}", prompt);
  json_t *r = post("/v1/completions", body, hdr, sizeof hdr, token);
  assert_non_null(r);
  const char *text = json_string_value(json_object_get(json_array_get(json_object_get(r, "choices"), 0), "text"));
  assert_non_null(text);
  if (strncmp(text, want, 40)) fail_msg("remote text '%.60s' does not follow llama.cpp's '%.60s'", text, want);
  json_t *usage = json_object_get(r, "usage");
  assert_int_equal(json_integer_value(json_object_get(usage, "prompt_tokens")), want_pt);
  assert_int_equal(json_integer_value(json_object_get(usage, "completion_tokens")), 24);
  assert_int_equal(header(hdr, "X-Apiary-Node", val, sizeof val), 0);
  assert_string_equal(val, ids(A));
  uint64_t want_cost = cost((uint64_t)want_pt, 24);
  assert_int_equal(header(hdr, "X-Apiary-Cost-Wei", val, sizeof val), 0);
  assert_int_equal(strtoull(val, NULL, 10), want_cost);
  json_decref(r);

  /* Receipts on both sides agree with tokens x price. */
  json_t *l = apiary_json("receipts --home %s", home(C));
  char req1[40];
  snprintf(req1, sizeof req1, "%s", json_string_value(json_object_get(json_array_get(json_object_get(l, "receipts"), 0), "request")));
  json_decref(l);
  json_t *rc = settled(C, req1, "client", ids(A)), *ra = settled(A, req1, "provider", NULL);
  assert_non_null(rc);
  assert_non_null(ra);
  assert_string_equal(json_string_value(json_object_get(rc, "status")), "complete");
  assert_string_equal(json_string_value(json_object_get(ra, "status")), "complete");
  assert_int_equal(dec(rc, "amount"), want_cost);
  assert_int_equal(dec(ra, "amount"), want_cost);
  assert_int_equal(json_integer_value(json_object_get(ra, "gen_tokens")), 24);
  assert_int_equal(json_integer_value(json_object_get(ra, "prompt_tokens")), want_pt);
  assert_string_equal(json_string_value(json_object_get(ra, "client")), ids(C));
  assert_string_equal(json_string_value(json_object_get(ra, "model")), sha);
  /* Both hashed the same request (sha256 of the exact generate params). */
  assert_non_null(json_string_value(json_object_get(ra, "request_hash")));
  assert_string_equal(json_string_value(json_object_get(ra, "request_hash")),
                      json_string_value(json_object_get(rc, "request_hash")));
  char chan_a[80];
  snprintf(chan_a, sizeof chan_a, "%s", json_string_value(json_object_get(ra, "channel")));
  /* The same money in the metrics: C spent it on 24 bought tokens, A earned it. */
  json_t *ta = apiary_json("token --home %s create", home(A));
  char tok_a[128];
  snprintf(tok_a, sizeof tok_a, "%s", json_string_value(json_object_get(ta, "token")));
  json_decref(ta);
  long long spent = -1, bought = -1, earned = -1;
  for (int i = 0; i < 50; i++) {
    char mc[600], *p;
    snprintf(mc, sizeof mc, "curl -s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/metrics", token, http_port(C));
    if (!tu_run(mc, out, sizeof out, NULL, 0)) {
      spent = (p = strstr(out, "\napiary_wei_spent_total ")) ? atoll(p + strlen("\napiary_wei_spent_total ")) : -1;
      bought = (p = strstr(out, "\napiary_tokens_bought_total ")) ? atoll(p + strlen("\napiary_tokens_bought_total ")) : -1;
    }
    snprintf(mc, sizeof mc, "curl -s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/metrics", tok_a, http_port(A));
    if (!tu_run(mc, out, sizeof out, NULL, 0)) earned = (p = strstr(out, "\napiary_wei_earned_total ")) ? atoll(p + strlen("\napiary_wei_earned_total ")) : -1;
    if (spent == (long long)want_cost && earned == (long long)want_cost) break;
    usleep(100000);
  }
  assert_int_equal(spent, (long long)want_cost);
  assert_int_equal(earned, (long long)want_cost);
  assert_int_equal(bought, 24);
  json_decref(rc);
  json_decref(ra);

  /* The uninterrupted answer that the failover answer must equal later. */
  snprintf(body, sizeof body, "{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":150,\"temperature\":0}", prompt);
  r = post("/v1/completions", body, hdr, sizeof hdr, token);
  assert_non_null(r);
  if (!json_object_get(r, "choices")) fail_msg("no answer: %s", out);
  char *full = strdup(json_string_value(json_object_get(json_array_get(json_object_get(r, "choices"), 0), "text")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "usage"), "completion_tokens")), 150);
  json_decref(r);

  /* No token, or a wrong one: 401. */
  json_decref(post("/v1/completions", body, hdr, sizeof hdr, NULL));
  assert_non_null(strstr(hdr, " 401 "));
  json_decref(post("/v1/completions", body, hdr, sizeof hdr, "apiary_wrongtoken"));
  assert_non_null(strstr(hdr, " 401 "));

  /* ---- a provider advertising a hash that is not the registered one is not used ---- */
  char f32[1200];
  snprintf(f32, sizeof f32, "%s/stories15M-F32.gguf", mirror);
  assert_int_equal(apiary("model pull --home %s %s --name stories15M", home(B), f32), 0);
  ml = apiary_json("model list --home %s", home(B));
  char bad_sha[65];
  snprintf(bad_sha, sizeof bad_sha, "%s", json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")));
  json_decref(ml);
  assert_string_not_equal(bad_sha, sha);
  set_cfg(B, "price_prompt", "1");
  set_cfg(B, "price_gen", "1");
  set_cfg(B, "register_models", "false");
  start_node(B);
  assert_true(wait_offer(bad_sha, B));
  for (int i = 0; i < 3; i++) {
    snprintf(body, sizeof body, "{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":4,\"temperature\":0}", prompt);
    json_decref(post("/v1/completions", body, hdr, sizeof hdr, token));
    assert_int_equal(header(hdr, "X-Apiary-Node", val, sizeof val), 0);
    assert_string_equal(val, ids(A)); /* B is cheaper, but its file is not the registered one */
  }
  snprintf(body, sizeof body, "{\"model\":\"%s\",\"prompt\":\"x\",\"max_tokens\":4}", bad_sha);
  r = post("/v1/completions", body, hdr, sizeof hdr, token);
  assert_non_null(strstr(hdr, " 404 "));
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "not listed"));
  json_decref(r);
  /* Once someone lists that file in the Registry under a name of its own, a request by that
   * name resolves through the Registry and goes to B, the node that has it. */
  assert_int_equal(apiary("registry --home %s model add %s --name tinytales --license MIT --source test", home(C), f32), 0);
  snprintf(body, sizeof body, "{\"model\":\"tinytales\",\"prompt\":\"%s\",\"max_tokens\":4,\"temperature\":0}", prompt);
  r = post("/v1/completions", body, hdr, sizeof hdr, token);
  if (!json_object_get(r, "choices")) fail_msg("no answer for a Registry name: %s", out);
  assert_int_equal(header(hdr, "X-Apiary-Node", val, sizeof val), 0);
  assert_string_equal(val, ids(B));
  json_decref(r);
  stop_node(B);

  /* ---- failover: A and B serve the genuine model; the serving one is killed mid-answer ---- */
  assert_int_equal(tu_sh("rm -rf %s/models/*", home(B)), 0);
  assert_int_equal(apiary("model pull --home %s stories15M --from %s", home(B), mirror), 0);
  set_cfg(B, "price_prompt", pp);
  set_cfg(B, "price_gen", gp);
  stop_node(A);
  set_cfg(A, "max_tps", "25");
  set_cfg(B, "max_tps", "25");
  start_node(A);
  start_node(B);
  assert_true(wait_offer(sha, A));
  assert_true(wait_offer(sha, B));
  char sse[400], hpath[400], cmd[4096];
  snprintf(sse, sizeof sse, "%s/sse.txt", cl.dir);
  snprintf(hpath, sizeof hpath, "%s/sse-hdr.txt", cl.dir);
  snprintf(cmd, sizeof cmd,
           "curl -s -N -D %s -o %s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":150,\"temperature\":0,\"stream\":true}'",
           hpath, sse, token, http_port(C), prompt);
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  unlink(sse);
  unlink(hpath);
  pid_t curl = tu_spawn(argv, NULL);
  int victim = serving_after(sse, hpath, 20);
  kill(cl.node[victim].pid, SIGKILL);
  tu_wait_exit(cl.node[victim].pid, 5000);
  cl.node[victim].pid = 0;
  int survivor = victim == A ? B : A;
  assert_int_equal(tu_wait_exit(curl, 60000), 0);
  /* Reassemble the streamed text. */
  static char got[1 << 16];
  json_t *last = read_stream(sse, got, sizeof got);
  assert_string_equal(got, full); /* one uninterrupted answer: no gap, no repeat */
  json_t *ap = json_object_get(last, "apiary");
  assert_int_equal(json_integer_value(json_object_get(ap, "failovers")), 1);
  assert_int_equal(json_array_size(json_object_get(ap, "providers")), 2);
  assert_string_equal(json_string_value(json_array_get(json_object_get(ap, "providers"), 1)), ids(survivor));

  /* Each provider paid for its own tokens only. */
  l = apiary_json("receipts --home %s", home(C));
  char req2[40];
  snprintf(req2, sizeof req2, "%s", json_string_value(json_object_get(json_array_get(json_object_get(l, "receipts"), 0), "request")));
  json_decref(l);
  json_t *cv = receipt(C, req2, "client", ids(victim));
  json_t *cs = settled(C, req2, "client", ids(survivor));
  json_t *ps = settled(survivor, req2, "provider", NULL);
  assert_non_null(cv);
  assert_non_null(cs);
  assert_non_null(ps);
  uint64_t gv = (uint64_t)json_integer_value(json_object_get(cv, "gen_tokens"));
  uint64_t gs = (uint64_t)json_integer_value(json_object_get(cs, "gen_tokens"));
  uint64_t ps_pt = (uint64_t)json_integer_value(json_object_get(ps, "prompt_tokens"));
  assert_true(gv >= 20);
  assert_int_equal(gv + gs, 150);
  assert_int_equal(ps_pt, (uint64_t)want_pt + gv); /* it continued from the prompt plus the received tokens */
  assert_int_equal((uint64_t)json_integer_value(json_object_get(ps, "gen_tokens")), gs);
  assert_int_equal(dec(ps, "amount"), cost(ps_pt, gs));
  assert_int_equal(dec(cs, "amount"), cost(ps_pt, gs));
  assert_true(dec(cv, "amount") <= cost((uint64_t)want_pt, gv)); /* the dead one: never more than its tokens */
  assert_true(dec(cv, "amount") + cost(0, 40) >= cost((uint64_t)want_pt, gv)); /* within the credit window */

  /* The killed provider comes back: its receipt survived, and it claims on chain what it was paid. */
  start_node(victim);
  json_t *pv = receipt(victim, req2, "provider", NULL);
  assert_non_null(pv);
  assert_true(dec(pv, "amount") >= dec(cv, "amount"));
  assert_true(dec(pv, "amount") <= cost((uint64_t)want_pt, gv));
  /* On chain, each provider's claimed total equals the sum of its receipts on that channel. */
  for (int n = A; n <= B; n++) {
    json_t *rl = apiary_json("receipts --home %s --role provider", home(n));
    uint64_t sum = 0;
    size_t k;
    json_t *x;
    char chan[80] = "";
    json_array_foreach(json_object_get(rl, "receipts"), k, x) {
      sum += dec(x, "amount");
      snprintf(chan, sizeof chan, "%s", json_string_value(json_object_get(x, "channel")));
    }
    json_decref(rl);
    if (n == A) assert_string_equal(chan, chan_a);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
      json_t *chl = apiary_json("channel --home %s list", home(n));
      json_array_foreach(json_object_get(chl, "channels"), k, x) {
        if (strcmp(json_string_value(json_object_get(x, "id")) ?: "", chan)) continue;
        ok = dec(x, "claimed") == sum;
      }
      json_decref(chl);
      if (!ok) usleep(200000);
    }
    if (!ok) fail_msg("node %c did not claim %llu wei on channel %s", names[n], (unsigned long long)sum, chan);
  }
  json_decref(cv);
  json_decref(cs);
  json_decref(ps);
  json_decref(pv);
  json_decref(last);
  last = NULL;

  /* ---- a provider that stalls (SIGSTOP: its link stays up, nothing comes) is left for the other ---- */
  assert_true(wait_offer(sha, victim));
  unlink(sse); /* the last request's stream must not be mistaken for this one's */
  unlink(hpath);
  pid_t curl2 = tu_spawn(argv, NULL); /* the same streamed request */
  int staller = serving_after(sse, hpath, 10);
  kill(cl.node[staller].pid, SIGSTOP);
  int st2 = tu_wait_exit(curl2, 60000);
  kill(cl.node[staller].pid, SIGCONT);
  assert_int_equal(st2, 0);
  last = read_stream(sse, got, sizeof got);
  assert_string_equal(got, full);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(last, "apiary"), "failovers")), 1);
  json_decref(last);

  /* ---- the credit window: a client that does not pay gets at most credit_tokens ---- */
  for (int n = A; n <= C; n++) stop_node(n);
  for (int n = A; n <= B; n++) {
    set_cfg(n, "credit_tokens", "8");
    set_cfg(n, "pay_timeout", "1");
    set_cfg(n, "max_tps", "0");
  }
  set_cfg(C, "pay_every", "100000"); /* C pays only when an answer ends: it never does here */
  for (int n = A; n <= C; n++) start_node(n);
  assert_true(wait_offer(sha, A));
  assert_true(wait_offer(sha, B));
  snprintf(body, sizeof body, "{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":100,\"temperature\":0}", prompt);
  r = post("/v1/completions", body, hdr, sizeof hdr, token);
  assert_non_null(strstr(hdr, " 502 ")); /* both providers stopped; nobody else sells it */
  json_decref(r);
  l = apiary_json("receipts --home %s", home(C));
  char req3[40];
  snprintf(req3, sizeof req3, "%s", json_string_value(json_object_get(json_array_get(json_object_get(l, "receipts"), 0), "request")));
  json_decref(l);
  for (int n = A; n <= B; n++) {
    json_t *pr = receipt(n, req3, "provider", NULL);
    assert_non_null(pr);
    json_int_t g = json_integer_value(json_object_get(pr, "gen_tokens"));
    if (g > 8) fail_msg("node %c generated %lld unpaid tokens past its credit window of 8", names[n], (long long)g);
    assert_true(g >= 1);
    json_decref(pr);
  }
  json_decref(ref);
  free(full);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_market)};
  return cmocka_run_group_tests_name("market_net", tests, setup, teardown);
}
