/* CLI tests for `apiary template render`: a raw Jinja file and a tokenizer_config.json
 * render exactly (no newline added; bos/eos from the config), tools and --var reach the
 * template, --no-generation-prompt, raise_exception and parse errors exit 1 with the
 * reason, usage errors exit 2, --help exits 0. Runs the built binary (APIARY_BIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"

static char out[1 << 16], err[1 << 16], dir[512];

static void put(const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int run(const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cd %s && %s template render %s", dir, tu_apiary_bin(), args);
  return tu_run(cmd, out, sizeof out, err, sizeof err);
}

static int setup(void **state) {
  (void)state;
  tu_tmpdir(dir, sizeof dir);
  put("m.json", "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi <|im_end|>\"}]");
  put("t.jinja", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}{{ tools | length if tools }}"
                 "{{ date_string }}\n");
  put("cfg.json", "{\"model_max_length\": 1000000000000000019884624838656, \"bos_token\": {\"content\": \"<s>\"},"
                  " \"eos_token\": \"</s>\", \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"T\"},"
                  " {\"name\": \"default\", \"template\": \"{{ bos_token }}{{ messages[-1].content }}{{ eos_token }}\"}]}");
  put("tools.json", "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]");
  put("raise.jinja", "{{ raise_exception('System role not supported') }}");
  put("bad.jinja", "line one\n{% if %}");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_rm_rf(dir);
  return 0;
}

static void test_render(void **state) {
  (void)state;
  assert_int_equal(run("--template t.jinja --messages m.json"), 0);
  assert_string_equal(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n"
                           "<|im_start|>assistant\n");
  assert_int_equal(run("--template t.jinja --messages m.json --no-generation-prompt --tools tools.json "
                       "--var 'date_string=\"1 Jan\"'"),
                   0);
  assert_string_equal(out, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi <|im_end|><|im_end|>\n11 Jan");
  assert_int_equal(run("--template cfg.json --messages m.json"), 0);
  assert_string_equal(out, "<s>Hi <|im_end|></s>");
}

static void test_errors(void **state) {
  (void)state;
  assert_int_equal(run("--template raise.jinja --messages m.json"), 1);
  assert_non_null(strstr(err, "System role not supported"));
  assert_int_equal(run("--template bad.jinja --messages m.json"), 1);
  assert_non_null(strstr(err, "line 2"));
  assert_int_equal(run("--template missing.jinja --messages m.json"), 1);
  assert_int_equal(run("--template t.jinja --messages tools.json --messages nope.json"), 1);
  assert_int_equal(run("--messages m.json"), 2);
  assert_non_null(strstr(err, "--template"));
  assert_int_equal(run("--template t.jinja"), 2);
  assert_int_equal(run("--template t.jinja --messages m.json --var novalue"), 2);
  assert_int_equal(run("--template t.jinja --messages m.json --bogus"), 2);
  assert_int_equal(run("--help"), 0);
  assert_non_null(strstr(out, "usage: apiary template render"));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s template frob", tu_apiary_bin());
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_render), cmocka_unit_test(test_errors)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
