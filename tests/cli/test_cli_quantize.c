/* CLI tests for `apiary model quantize`, `apiary model synth` and `apiary bench`: --help
 * (exit 0), a bad type or flag (exit 2), a missing file (exit 1), and a real run of each
 * on the tiny reference model (quantize --json, bench --json fields, synth --layers 1).
 * Runs the built binary (APIARY_BIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"

static char out[1 << 16], err[1 << 16], tmp[512];

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

static json_t *parse_out(void) {
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  if (!j) fail_msg("bad JSON output (%s): %s", je.text, out);
  return j;
}

static int setup_all(void **state) {
  (void)state;
  tu_tmpdir(tmp, sizeof tmp);
  return 0;
}

static int teardown_all(void **state) {
  (void)state;
  tu_rm_rf(tmp);
  return 0;
}

static void test_help_and_usage(void **state) {
  (void)state;
  assert_int_equal(run("model quantize --help"), 0);
  assert_non_null(strstr(out, "Q4_K_M"));
  assert_int_equal(run("model synth --help"), 0);
  assert_non_null(strstr(out, "llama3.2-1b"));
  assert_int_equal(run("bench --help"), 0);
  assert_non_null(strstr(out, "tg"));
  assert_int_equal(run("model quantize a.gguf b.gguf Q9_9"), 2);
  assert_non_null(strstr(err, "Q9_9"));
  assert_int_equal(run("model quantize a.gguf b.gguf"), 2);
  assert_int_equal(run("model quantize --bogus a b Q8_0"), 2);
  assert_int_equal(run("model synth --shape gpt-9 --type Q8_0 -o %s/x.gguf", tmp), 2);
  assert_int_equal(run("model synth --shape smollm2-135m --type Q3 -o %s/x.gguf", tmp), 2);
  assert_int_equal(run("model synth --shape smollm2-135m --type Q8_0"), 2);
  assert_int_equal(run("bench"), 2);
  assert_int_equal(run("bench x.gguf -p abc"), 2);
}

static void test_missing_files(void **state) {
  (void)state;
  assert_int_equal(run("model quantize %s/none.gguf %s/out.gguf Q8_0", tmp, tmp), 1);
  assert_non_null(strstr(err, "none.gguf"));
  assert_int_equal(run("bench %s/none.gguf", tmp), 1);
  assert_non_null(strstr(err, "none.gguf"));
  assert_int_equal(run("model synth --shape smollm2-135m --type Q8_0 -o %s/x.gguf --vocab-from %s/none.gguf", tmp, tmp),
                   1);
}

static void test_quantize_and_bench(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char in[1024];
  tu_shared_path(in, sizeof in, "testdata/tiny-spm4k-F32.gguf");
  assert_int_equal(run("model quantize %s %s/q8.gguf Q8_0 --json", in, tmp), 0);
  json_t *j = parse_out();
  assert_string_equal(json_string_value(json_object_get(j, "type")), "Q8_0");
  assert_int_equal(json_integer_value(json_object_get(j, "tensors")), 21);
  json_t *tt = json_object_get(j, "tensor_types");
  assert_int_equal(json_integer_value(json_object_get(tt, "Q8_0")), 14);
  assert_int_equal(json_integer_value(json_object_get(tt, "F32")), 7);
  assert_int_equal(json_integer_value(json_object_get(j, "fallback_tensors")), 2); /* ffn_down: 172 % 32 */
  assert_non_null(strstr(err, "blk.0.ffn_down.weight: rows of 172 are not whole Q8_0 blocks; writing F32"));
  json_decref(j);
  assert_int_equal(run("model inspect %s/q8.gguf --json", tmp), 0);
  j = parse_out();
  assert_int_equal(json_integer_value(json_object_get(j, "file_type")), 7);
  json_decref(j);
  assert_int_equal(run("bench %s/q8.gguf -t 1 -p 16 -n 4 -r 2 --json", tmp), 0);
  j = parse_out();
  assert_true(json_real_value(json_object_get(j, "pp_tps")) > 0);
  assert_true(json_real_value(json_object_get(j, "tg_tps")) > 0);
  assert_true(json_real_value(json_object_get(j, "peak_rss_mb")) > 0);
  json_decref(j);
  assert_int_equal(run("bench %s/q8.gguf -t 1 -p 8 -n 2 -r 1", tmp), 0);
  assert_non_null(strstr(out, "pp8"));
  assert_non_null(strstr(out, "tg2"));
}

static void test_synth(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char vocab[1024];
  tu_shared_path(vocab, sizeof vocab, "testdata/tiny-spm4k-F32.gguf");
  assert_int_equal(run("model synth --shape qwen2.5-0.5b --type Q4_K_M --layers 1 --seed 3 --vocab-from %s -o "
                       "%s/qwen.gguf --json",
                       vocab, tmp),
                   0);
  json_t *j = parse_out();
  assert_int_equal(json_integer_value(json_object_get(j, "n_vocab")), 4096);
  assert_int_equal(json_integer_value(json_object_get(j, "n_layer")), 1);
  json_decref(j);
  assert_non_null(strstr(err, "4096")); /* says the vocabulary differs */
  assert_int_equal(run("model inspect %s/qwen.gguf --json", tmp), 0);
  j = parse_out();
  assert_string_equal(json_string_value(json_object_get(j, "architecture")), "qwen2");
  assert_int_equal(json_integer_value(json_object_get(j, "embedding_length")), 896);
  assert_int_equal(json_integer_value(json_object_get(j, "file_type")), 15);
  json_decref(j);
  assert_int_equal(run("bench %s/qwen.gguf -t 1 -p 4 -n 2 -r 1 --json", tmp), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_and_usage),
      cmocka_unit_test(test_missing_files),
      cmocka_unit_test(test_quantize_and_bench),
      cmocka_unit_test(test_synth),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
