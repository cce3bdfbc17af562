/* The verification hook: C runs with --verify-rate 1, so every answer bought from one
 * provider is re-run (same parameters and seed) on the other and the token ids compared.
 *
 *   honest   A and B serve the genuine stories15M: the re-run matches; the verified
 *            provider has one verification and no mismatch.
 *   liar     B restarts advertising the genuine file's hash while running another file (a
 *            Q4_0 quantization of the F32 model; fault injection through
 *            APIARY_FAULT_SERVE_FILE, the only way to get a dishonest provider here). The
 *            next answer and its re-run differ: a mismatch is recorded against the provider
 *            that answered, and the following request goes to the other provider.
 * Free offers, no chain. Skips without ../shared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

static char out[1 << 17], err[1 << 16];
static char mirror[1024];
static tu_cluster cl;

enum { A = 0, B = 1, C = 2 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)

/* C's view of provider n: its offer entry (owned), or NULL. */
static json_t *offer_of(int n) {
  json_t *o = tu_node_json(&cl, C, "offers");
  json_t *found = NULL;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(o, "offers"), k, x) {
    if (!strcmp(json_string_value(json_object_get(x, "node")) ?: "", cl.node[n].id)) found = json_incref(x);
  }
  json_decref(o);
  return found;
}

static json_int_t stat_of(int n, const char *k) {
  json_t *o = offer_of(n);
  json_int_t v = o ? json_integer_value(json_object_get(o, k)) : -1;
  json_decref(o);
  return v;
}

/* Asks C; returns which provider answered. */
static int ask(void) {
  json_t *r = tu_node_json(&cl, C, "ask stories15M 'Once upon a time, in a big forest' -n 48 --temp 0");
  assert_non_null(r);
  const char *who = json_string_value(json_object_get(r, "node_id"));
  int n = !strcmp(who, cl.node[A].id) ? A : !strcmp(who, cl.node[B].id) ? B : -1;
  json_decref(r);
  assert_true(n >= 0);
  return n;
}

static int wait_stat(int n, const char *k, json_int_t want) {
  for (int i = 0; i < 150; i++) {
    if (stat_of(n, k) == want) return 1;
    usleep(100000);
  }
  return 0;
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared()) return 0;
  tu_shared_path(mirror, sizeof mirror, "models");
  return tu_cluster_init_nochain(&cl, 3);
}

static int teardown(void **state) {
  (void)state;
  if (cl.n) tu_cluster_free(&cl);
  unsetenv("APIARY_FAULT_SERVE_FILE");
  return 0;
}

static void test_verify(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  const char *names = "abc";
  for (int n = A; n <= B; n++) assert_int_equal(apiary("model pull --home %s stories15M --from %s", cl.node[n].home, mirror), 0);
  char liar[400], f32[1200];
  snprintf(liar, sizeof liar, "%s/other-Q4_0.gguf", cl.dir);
  snprintf(f32, sizeof f32, "%s/stories15M-F32.gguf", mirror);
  assert_int_equal(apiary("model quantize %s %s Q4_0", f32, liar), 0);

  /* Honest providers agree. */
  const char *const verify[] = {"--verify-rate", "1", NULL};
  assert_int_equal(tu_node_start(&cl, A), 0);
  assert_int_equal(tu_node_start(&cl, B), 0);
  assert_int_equal(tu_node_start_with(&cl, C, verify), 0);
  for (int i = 0; i < 100 && (stat_of(A, "max_concurrent") < 0 || stat_of(B, "max_concurrent") < 0); i++) usleep(100000);
  int first = ask();
  if (!wait_stat(first, "verifications", 1)) fail_msg("no verification of %c's answer", names[first]);
  assert_int_equal(stat_of(first, "mismatches"), 0);

  /* B lies: it advertises the genuine hash but runs another file. */
  tu_node_stop(&cl, B);
  setenv("APIARY_FAULT_SERVE_FILE", liar, 1);
  assert_int_equal(tu_node_start(&cl, B), 0);
  unsetenv("APIARY_FAULT_SERVE_FILE");
  for (int i = 0; i < 100 && stat_of(B, "max_concurrent") < 0; i++) usleep(100000);
  int second = ask();
  if (!wait_stat(second, "mismatches", 1))
    fail_msg("the answers of an honest and a lying provider did not mismatch (served by %c)", names[second]);
  /* Its rank dropped: the next request goes to the other provider. */
  int third = ask();
  assert_int_not_equal(third, second);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_verify)};
  return cmocka_run_group_tests_name("verify", tests, setup, teardown);
}
