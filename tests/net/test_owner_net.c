/* The owner's policy ([policy], privacy/owner) across real nodes on loopback with anvil:
 *
 *   A and B sell stories15M, A cheaper; C buys through its API. C denies A: every answer
 *   comes from B although A is cheaper, and C never calls A. C's daily spending cap lets
 *   one request through and refuses the next with 402 and a message naming the cap;
 *   nothing is paid beyond it (C's client receipts = B's provider receipts <= the cap).
 *   Then A stops and B denies C: C's request is refused by B with its policy's message.
 *
 * Skips without anvil or ../shared. Nothing leaves the machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

#define CAP 80000000ull /* one request of 8 tokens fits (estimate 56e6 wei), two do not */

static char out[1 << 18], err[1 << 16];
static char token[128], mirror[1024];
static tu_cluster cl;
static int ready;

enum { A = 0, B = 1, C = 2 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define home(n) (cl.node[n].home)
#define ids(n) (cl.node[n].id)

static void start_node(int n) {
  if (tu_node_start(&cl, n)) fail_msg("node %s did not start (see %s.log)", home(n), home(n));
}
static void set_cfg(int n, const char *key, const char *value) { assert_int_equal(tu_node_set(&cl, n, key, value), 0); }

/* POST /v1/completions to C; the parsed body, the status in *status. */
static json_t *complete(int *status, char *node, size_t node_cap) {
  char cmd[4096], hpath[400];
  snprintf(hpath, sizeof hpath, "%s/hdr.txt", cl.dir);
  snprintf(cmd, sizeof cmd,
           "curl -s -D %s -H 'Content-Type: application/json' -H 'Authorization: Bearer %s' "
           "http://127.0.0.1:%d/v1/completions -d '{\"model\":\"stories15M\",\"prompt\":\"Once upon a time\","
           "\"max_tokens\":8,\"temperature\":0}'",
           hpath, token, tu_node_http_port(&cl, C));
  if (tu_run(cmd, out, sizeof out, err, sizeof err)) return NULL;
  json_t *j = json_loads(out, 0, NULL);
  static char hdr[4096];
  FILE *f = fopen(hpath, "r");
  size_t n = f ? fread(hdr, 1, sizeof hdr - 1, f) : 0;
  hdr[n] = 0;
  if (f) fclose(f);
  *status = atoi(hdr + strcspn(hdr, " "));
  node[0] = 0;
  const char *p = strcasestr(hdr, "X-Apiary-Node:");
  if (p) {
    p += 14;
    while (*p == ' ') p++;
    size_t k = strcspn(p, "\r\n");
    snprintf(node, node_cap, "%.*s", (int)k, p);
  }
  return j;
}

/* The sum of node n's receipts of role, and how many name provider p (NULL: any). */
static uint64_t receipts_sum(int n, const char *role, const char *provider, int *count) {
  json_t *l = apiary_json("receipts --home %s --role %s", home(n), role);
  uint64_t sum = 0;
  *count = 0;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(l, "receipts"), k, x) {
    sum += tu_dec(x, "amount");
    if (!provider || !strcmp(json_string_value(json_object_get(x, "provider")) ?: "", provider)) (*count)++;
  }
  json_decref(l);
  return sum;
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared() || tu_shared_path(mirror, sizeof mirror, "models")) return 0;
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

static void test_owner_policy(void **state) {
  (void)state;
  if (!ready) {
    print_message("anvil or ../shared not available; skipping\n");
    skip();
  }
  char v[256];
  for (int n = A; n <= B; n++) {
    assert_int_equal(apiary("model pull --home %s stories15M --from %s", home(n), mirror), 0);
    set_cfg(n, "price_prompt", "1000000000");
    set_cfg(n, "price_gen", n == A ? "1000000000" : "3000000000");
  }
  snprintf(v, sizeof v, "[\"%s\"]", ids(A));
  set_cfg(C, "deny_nodes", v);
  snprintf(v, sizeof v, "\"%llu\"", CAP);
  set_cfg(C, "daily_spend_cap_wei", v);
  json_t *ml = apiary_json("model list --home %s", home(A));
  char sha[65];
  snprintf(sha, sizeof sha, "%s", json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")));
  json_decref(ml);
  start_node(A);
  start_node(B);
  start_node(C);
  assert_true(tu_node_wait_offer(&cl, C, sha, A));
  assert_true(tu_node_wait_offer(&cl, C, sha, B));
  json_t *tk = apiary_json("token --home %s create", home(C));
  snprintf(token, sizeof token, "%s", json_string_value(json_object_get(tk, "token")));
  json_decref(tk);

  /* the denied provider is never used, though cheaper */
  int status;
  char node[128];
  json_t *r = complete(&status, node, sizeof node);
  if (status != 200) fail_msg("first request: %d %s", status, out);
  assert_string_equal(node, ids(B));
  json_decref(r);
  /* past the cap: refused before anything is signed */
  r = complete(&status, node, sizeof node);
  assert_int_equal(status, 402);
  const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
  if (!msg || !strstr(msg, "daily_spend_cap_wei")) fail_msg("no cap message: %s", out);
  json_decref(r);
  int n_c, n_a, n_b;
  uint64_t paid = 0, earned = 0;
  for (int i = 0; i < 50; i++) { /* the last voucher settles after the answer */
    paid = receipts_sum(C, "client", NULL, &n_c);
    earned = receipts_sum(B, "provider", NULL, &n_b);
    if (paid && paid == earned) break;
    usleep(100000);
  }
  assert_true(paid > 0);
  assert_true(paid <= CAP);
  assert_int_equal(paid, earned);
  assert_int_equal(n_c, 1);
  receipts_sum(A, "provider", NULL, &n_a);
  assert_int_equal(n_a, 0); /* A never served C */

  /* a denied buyer is refused */
  tu_node_stop(&cl, A);
  tu_node_stop(&cl, B);
  tu_node_stop(&cl, C);
  snprintf(v, sizeof v, "[\"%s\"]", ids(C));
  set_cfg(B, "deny_nodes", v);
  set_cfg(C, "deny_nodes", "[]");
  set_cfg(C, "daily_spend_cap_wei", "\"0\"");
  start_node(B);
  start_node(C);
  assert_true(tu_node_wait_offer(&cl, C, sha, B));
  r = complete(&status, node, sizeof node);
  assert_int_equal(status, 502);
  msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
  if (!msg || !strstr(msg, "does not sell to your node")) fail_msg("no policy message: %s", out);
  json_decref(r);
  receipts_sum(B, "provider", NULL, &n_b);
  assert_int_equal(n_b, 1); /* only the first request's */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_owner_policy, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
