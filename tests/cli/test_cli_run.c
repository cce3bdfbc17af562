/* CLI tests for `apiary run`: greedy --json on the tiny reference model gives llama.cpp's
 * prompt ids, greedy ids and text; streaming text mode; a stop string; --help; usage
 * errors (exit 2) and a missing model (exit 1 with a message). Runs the built binary
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

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s", tu_apiary_bin(), args);
  return tu_run(cmd, out, sizeof out, err, sizeof err);
}

/* Single-quotes s for sh into q. */
static void sh_quote(const char *s, char *q, size_t cap) {
  size_t n = 0;
  q[n++] = '\'';
  for (; *s && n + 5 < cap; s++) {
    if (*s == '\'') {
      memcpy(q + n, "'\\''", 4);
      n += 4;
    } else {
      q[n++] = *s;
    }
  }
  q[n++] = '\'';
  q[n] = 0;
}

static void test_greedy_json(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char model[1024], refp[1024], q[1024];
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-F32.gguf");
  tu_shared_path(refp, sizeof refp, "testdata/tiny-spm4k-F32.ref.json");
  json_t *ref = tu_load_json(refp);
  size_t gi;
  json_t *g;
  json_array_foreach(json_object_get(ref, "greedy"), gi, g) {
    sh_quote(json_string_value(json_object_get(g, "prompt")), q, sizeof q);
    int rc = run("run %s -p %s -n 32 --temp 0 --ignore-eos -t 2 --json", model, q);
    if (rc) fail_msg("exit %d: %s", rc, err);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    if (!o) fail_msg("not JSON: %s", out);
    assert_true(json_equal(json_object_get(o, "prompt_ids"), json_object_get(g, "prompt_ids")));
    assert_true(json_equal(json_object_get(o, "ids"), json_object_get(g, "greedy_ids")));
    assert_string_equal(json_string_value(json_object_get(o, "text")),
                        json_string_value(json_object_get(g, "generated_text")));
    assert_int_equal(json_integer_value(json_object_get(o, "n_gen")), 32);
    assert_int_equal(json_integer_value(json_object_get(o, "n_prompt")),
                     (json_int_t)json_array_size(json_object_get(g, "prompt_ids")));
    assert_string_equal(json_string_value(json_object_get(o, "stop")), "max_tokens");
    assert_true(json_number_value(json_object_get(o, "tg_tps")) > 0);
    json_decref(o);
  }
  json_decref(ref);
}

/* The prompt's special-token text: parsed into its control token by default (as llama.cpp
 * does), plain text with --no-parse-special; the same ids as `model tokenize` in each mode
 * (that command is checked against llama-tokenize in test_cli_model). */
static json_t *ids_of(const char *fmt, const char *model, const char *extra, const char *key) {
  int rc = run(fmt, model, extra);
  if (rc) fail_msg("exit %d: %s", rc, err);
  json_t *o = json_loads(out, 0, NULL);
  assert_non_null(o);
  json_t *ids = json_incref(json_object_get(o, key));
  json_decref(o);
  assert_true(json_is_array(ids));
  return ids;
}

static void test_prompt_special(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char model[1024];
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-F32.gguf");
  json_t *eos = ids_of("model tokenize %s --text '</s>' --json%s", model, "", "ids");
  json_int_t eos_id = json_integer_value(json_array_get(eos, json_array_size(eos) - 1));
  json_t *run_sp = ids_of("run %s -p 'Once</s>upon' -n 1 --temp 0 --json%s", model, "", "prompt_ids");
  json_t *run_pl = ids_of("run %s -p 'Once</s>upon' -n 1 --temp 0 --json%s", model, " --no-parse-special", "prompt_ids");
  json_t *tok_sp = ids_of("model tokenize %s --text 'Once</s>upon' --json%s", model, "", "ids");
  json_t *tok_pl = ids_of("model tokenize %s --text 'Once</s>upon' --json%s", model, " --no-parse-special", "ids");
  assert_true(json_equal(run_sp, tok_sp));
  assert_true(json_equal(run_pl, tok_pl));
  int has_sp = 0, has_pl = 0;
  for (size_t i = 1; i < json_array_size(run_sp); i++) has_sp |= json_integer_value(json_array_get(run_sp, i)) == eos_id;
  for (size_t i = 1; i < json_array_size(run_pl); i++) has_pl |= json_integer_value(json_array_get(run_pl, i)) == eos_id;
  assert_true(has_sp);
  assert_false(has_pl);
  json_decref(eos);
  json_decref(run_sp);
  json_decref(run_pl);
  json_decref(tok_sp);
  json_decref(tok_pl);
}

static void test_stream_and_stop(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char model[1024];
  tu_shared_path(model, sizeof model, "models/stories15M-Q8_0.gguf");
  /* text mode: the prompt, then the continuation */
  int rc = run("run %s -p 'Once upon a time' -n 12 --temp 0 -q", model);
  if (rc) fail_msg("exit %d: %s", rc, err);
  assert_true(!strncmp(out, "Once upon a time, there was", 27));
  /* a stop string ends the text right before it */
  rc = run("run %s -p 'Once upon a time' -n 40 --temp 0 --stop Lily --json", model);
  if (rc) fail_msg("exit %d: %s", rc, err);
  json_t *o = json_loads(out, 0, NULL);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "stop")), "stop_string");
  assert_string_equal(json_string_value(json_object_get(o, "text")), ", there was a little girl named ");
  json_decref(o);
  /* seeded sampling repeats */
  char first[4096];
  rc = run("run %s -p 'Once upon a time' -n 16 --seed 11 --json", model);
  assert_int_equal(rc, 0);
  o = json_loads(out, 0, NULL);
  assert_non_null(o);
  assert_int_equal(json_integer_value(json_object_get(o, "seed")), 11);
  snprintf(first, sizeof first, "%s", json_string_value(json_object_get(o, "text")));
  json_decref(o);
  rc = run("run %s -p 'Once upon a time' -n 16 --seed 11 --json", model);
  assert_int_equal(rc, 0);
  o = json_loads(out, 0, NULL);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "text")), first);
  json_decref(o);
}

static void test_usage(void **state) {
  (void)state;
  assert_int_equal(run("run --help"), 0);
  assert_non_null(strstr(out, "usage: apiary run"));
  assert_int_equal(run("run"), 2);
  assert_non_null(strstr(err, "missing MODEL"));
  assert_int_equal(run("run x.gguf"), 2);
  assert_non_null(strstr(err, "missing -p"));
  assert_int_equal(run("run x.gguf -p hi --temp abc"), 2);
  assert_int_equal(run("run x.gguf -p hi -t 0"), 2);
  assert_int_equal(run("run x.gguf -p hi --top-p 2"), 2);
  assert_int_equal(run("run x.gguf -p hi --bogus"), 2);
  assert_int_equal(run("run x.gguf y.gguf -p hi"), 2);
  assert_int_equal(run("run /nonexistent/m.gguf -p hi"), 1);
  assert_non_null(strstr(err, "/nonexistent/m.gguf"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greedy_json),
      cmocka_unit_test(test_prompt_special),
      cmocka_unit_test(test_stream_and_stop),
      cmocka_unit_test(test_usage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
