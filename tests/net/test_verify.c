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

#include "../support/testutil.h"

static char out[1 << 17], err[1 << 16];
static char dir[256], home[3][300], ids[3][80], mirror[1024];
static pid_t pids[3];
static int base;

enum { A = 0, B = 1, C = 2 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)

static void start_node(int n, const char *extra) {
  char listen[64], dhtp[16], boot[64], log[400];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", base + n);
  snprintf(dhtp, sizeof dhtp, "%d", base + 10 + n);
  snprintf(boot, sizeof boot, "127.0.0.1:%d", base + 10 + (n == C ? A : C));
  snprintf(log, sizeof log, "%s.log", home[n]);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", home[n], "--listen", listen, "--dht-port", dhtp,
                        "--bootstrap", boot, "--no-lan", "--http", "127.0.0.1:0", extra, extra ? "1" : NULL, NULL};
  pids[n] = tu_spawn(argv, log);
  for (int k = 0; k < 300; k++) {
    if (apiary("status --home %s", home[n]) == 0) return;
    usleep(50000);
  }
  fail_msg("node %s did not start (see %s)", home[n], log);
}

static void stop_node(int n) {
  if (pids[n] <= 0) return;
  apiary("stop --home %s", home[n]);
  if (tu_wait_exit(pids[n], 15000) < 0) kill(pids[n], SIGKILL);
  pids[n] = 0;
}

/* C's view of provider n: its offer entry (owned), or NULL. */
static json_t *offer_of(int n) {
  json_t *o = apiary_json("offers --home %s", home[C]);
  json_t *found = NULL;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(o, "offers"), k, x) {
    if (!strcmp(json_string_value(json_object_get(x, "node")) ?: "", ids[n])) found = json_incref(x);
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
  json_t *r = apiary_json("ask --home %s stories15M 'Once upon a time, in a big forest' -n 48 --temp 0", home[C]);
  assert_non_null(r);
  const char *who = json_string_value(json_object_get(r, "node_id"));
  int n = !strcmp(who, ids[A]) ? A : !strcmp(who, ids[B]) ? B : -1;
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
  tu_tmpdir(dir, sizeof dir);
  srand((unsigned)(getpid() ^ time(NULL)));
  base = 26000 + (rand() % 60) * 100; /* below the ephemeral range (32768+) */
  tu_shared_path(mirror, sizeof mirror, "models");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int n = 0; n < 3; n++) stop_node(n);
  unsetenv("APIARY_FAULT_SERVE_FILE");
  if (dir[0] && !getenv("APIARY_KEEP_TEST_DIR")) tu_rm_rf(dir);
  return 0;
}

static void test_verify(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  const char *names = "abc";
  for (int n = 0; n < 3; n++) {
    snprintf(home[n], sizeof home[n], "%s/%c", dir, names[n]);
    json_t *j = apiary_json("init --home %s", home[n]);
    assert_non_null(j);
    snprintf(ids[n], sizeof ids[n], "%s", json_string_value(json_object_get(j, "node_id")));
    json_decref(j);
  }
  for (int n = A; n <= B; n++) assert_int_equal(apiary("model pull --home %s stories15M --from %s", home[n], mirror), 0);
  char liar[400], f32[1200];
  snprintf(liar, sizeof liar, "%s/other-Q4_0.gguf", dir);
  snprintf(f32, sizeof f32, "%s/stories15M-F32.gguf", mirror);
  assert_int_equal(apiary("model quantize %s %s Q4_0", f32, liar), 0);

  /* Honest providers agree. */
  start_node(A, NULL);
  start_node(B, NULL);
  start_node(C, "--verify-rate");
  for (int i = 0; i < 100 && (stat_of(A, "max_concurrent") < 0 || stat_of(B, "max_concurrent") < 0); i++) usleep(100000);
  int first = ask();
  if (!wait_stat(first, "verifications", 1)) fail_msg("no verification of %c's answer", names[first]);
  assert_int_equal(stat_of(first, "mismatches"), 0);

  /* B lies: it advertises the genuine hash but runs another file. */
  stop_node(B);
  setenv("APIARY_FAULT_SERVE_FILE", liar, 1);
  start_node(B, NULL);
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
