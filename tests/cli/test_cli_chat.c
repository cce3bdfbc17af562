/* CLI tests for `apiary chat`: two messages piped into stdin on the shared stories15M (a
 * base model without a chat template, so the plain transcript applies) give a reply after
 * each, the second turn reuses the KV cache, greedy output repeats, /exit ends early;
 * --help, usage errors (exit 2) and a missing model (exit 1). Runs the built binary
 * (APIARY_BIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"

static char out[1 << 16], err[1 << 16];

/* Runs `printf INPUT | apiary ARGS` (input is a printf format without quotes). */
static int run_in(const char *input, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_in(const char *input, const char *fmt, ...) {
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  if (input) snprintf(cmd, sizeof cmd, "printf '%s' | %s %s", input, tu_apiary_bin(), args);
  else snprintf(cmd, sizeof cmd, "%s %s </dev/null", tu_apiary_bin(), args);
  return tu_run(cmd, out, sizeof out, err, sizeof err);
}

/* The figures of turn k from the --verbose log: prompt tokens, reused, reply tokens. */
static int turn_stats(int k, int *prompt, int *reused, int *reply) {
  char key[32];
  snprintf(key, sizeof key, "turn %d: prompt ", k);
  const char *p = strstr(err, key);
  if (!p) return -1;
  p += strlen(key);
  if (sscanf(p, "%d tokens, %d reused", prompt, reused) != 2) return -1;
  const char *q = strstr(p, "reply ");
  if (!q || sscanf(q, "reply %d tokens", reply) != 1) return -1;
  return 0;
}

static void test_two_turns(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char model[1024];
  tu_shared_path(model, sizeof model, "models/stories15M-Q8_0.gguf");
  int rc = run_in("Hello there\\nTell me a story\\n", "chat %s --temp 0 -n 16 -t 2 -v", model);
  if (rc) fail_msg("exit %d: %s", rc, err);
  /* no template in this model: the plain default, and it says so */
  assert_non_null(strstr(err, "no chat template"));
  /* a reply after each line */
  int prompt1, reused1, reply1, prompt2, reused2, reply2;
  if (turn_stats(1, &prompt1, &reused1, &reply1) || turn_stats(2, &prompt2, &reused2, &reply2))
    fail_msg("no per-turn figures in: %s", err);
  assert_null(strstr(err, "turn 3:"));
  assert_true(reply1 > 0 && reply1 <= 16);
  assert_true(reply2 > 0 && reply2 <= 16);
  /* the second prompt holds the first exchange, which comes from the cache */
  assert_int_equal(reused1, 0);
  assert_true(prompt2 > prompt1 + reply1 / 2);
  assert_true(reused2 >= prompt1);
  /* the replies are on stdout, each ended by a newline; nothing else is */
  size_t len = strlen(out);
  assert_true(len > 4);
  assert_int_equal(out[len - 1], '\n');
  assert_null(strstr(out, "User:"));
  /* greedy: the same conversation again gives the same text */
  char first[sizeof out];
  memcpy(first, out, len + 1);
  rc = run_in("Hello there\\nTell me a story\\n", "chat %s --temp 0 -n 16 -t 1 -q", model);
  assert_int_equal(rc, 0);
  assert_string_equal(out, first);
  assert_string_equal(err, "");
}

static void test_commands(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char model[1024];
  tu_shared_path(model, sizeof model, "models/stories15M-Q8_0.gguf");
  /* blank lines are skipped, /reset clears, /exit ends before the last line */
  int rc = run_in("\\n  \\nOnce upon a time\\n/reset\\nThe dog\\n/exit\\nnever sent\\n",
                  "chat %s --template llama2 --system 'Be brief.' --temp 0 -n 8 -t 2 -v", model);
  if (rc) fail_msg("exit %d: %s", rc, err);
  assert_non_null(strstr(err, "conversation cleared"));
  int prompt, reused, reply;
  assert_int_equal(turn_stats(2, &prompt, &reused, &reply), 0);
  assert_null(strstr(err, "turn 3:"));
  /* a small context drops the oldest exchanges instead of failing */
  rc = run_in("One\\nTwo\\nThree\\nFour\\nFive\\n", "chat %s --temp 0 -n 12 --ctx 48 -t 2 -v", model);
  if (rc) fail_msg("exit %d: %s", rc, err);
  assert_non_null(strstr(err, "dropping the oldest"));
  assert_int_equal(turn_stats(5, &prompt, &reused, &reply), 0);
  assert_true(prompt <= 48);
}

static void test_usage(void **state) {
  (void)state;
  assert_int_equal(run_in(NULL, "chat --help"), 0);
  assert_non_null(strstr(out, "usage: apiary chat"));
  assert_non_null(strstr(out, "--template"));
  assert_int_equal(run_in(NULL, "chat"), 2);
  assert_non_null(strstr(err, "missing MODEL"));
  assert_int_equal(run_in(NULL, "chat x.gguf --template nope"), 2);
  assert_non_null(strstr(err, "unknown --template 'nope'"));
  assert_int_equal(run_in(NULL, "chat x.gguf --temp abc"), 2);
  assert_int_equal(run_in(NULL, "chat x.gguf -n 0"), 2);
  assert_int_equal(run_in(NULL, "chat x.gguf --bogus"), 2);
  assert_int_equal(run_in(NULL, "chat a.gguf b.gguf"), 2);
  /* a model that is neither a file nor in the store: exit 1 with a message */
  char home[512];
  tu_tmpdir(home, sizeof home);
  assert_int_equal(run_in(NULL, "chat --home %s no-such-model", home), 1);
  assert_non_null(strstr(err, "no-such-model"));
  tu_rm_rf(home);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_two_turns),
      cmocka_unit_test(test_commands),
      cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
