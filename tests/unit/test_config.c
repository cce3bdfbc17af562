/* Config parser: values and defaults, every error reported with its line number, and the
 * default file written by init parsing back to the defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/config.h"
#include "core/err.h"

static const config_key schema[] = {
    {"node", "name", CONFIG_STR, "\"\"", 0, 0, "label"},
    {"node", "port", CONFIG_INT, "7000", 1, 65535, "port"},
    {"node", "lan", CONFIG_BOOL, "true", 0, 0, "lan"},
    {"dht", "bootstrap", CONFIG_LIST, "[\"a:1\", \"b:2\"]", 0, 0, "bootstrap"},
};
#define N (sizeof schema / sizeof *schema)

static config *parse_ok(const char *text) {
  config *c;
  assert_int_equal(config_new(schema, N, &c), 0);
  char err[512] = "";
  int rc = config_parse(c, text, strlen(text), "t.toml", err, sizeof err);
  if (rc) fail_msg("unexpected error: %s", err);
  return c;
}

static void test_values(void **state) {
  (void)state;
  config *c = parse_ok("# top comment\n\n[node]\nname = \"my \\\"node\\\"\" # trailing\n  port=8080\r\n"
                       "lan = false\n[dht]\nbootstrap = [ \"x:1\" ,\"y:2\",\"z:3\" ]\n");
  assert_string_equal(config_str(c, "node", "name"), "my \"node\"");
  assert_int_equal(config_int(c, "node", "port"), 8080);
  assert_int_equal(config_bool(c, "node", "lan"), 0);
  const char *const *items;
  assert_int_equal(config_list(c, "dht", "bootstrap", &items), 3);
  assert_string_equal(items[2], "z:3");
  config_free(c);
  c = parse_ok("");
  assert_string_equal(config_str(c, "node", "name"), "");
  assert_int_equal(config_int(c, "node", "port"), 7000);
  assert_int_equal(config_bool(c, "node", "lan"), 1);
  assert_int_equal(config_list(c, "dht", "bootstrap", &items), 2);
  config_free(c);
}

static void expect_error(const char *text, const char *want_prefix, const char *want_sub) {
  config *c;
  assert_int_equal(config_new(schema, N, &c), 0);
  char err[512] = "";
  int rc = config_parse(c, text, strlen(text), "t.toml", err, sizeof err);
  assert_true(rc < 0);
  if (strncmp(err, want_prefix, strlen(want_prefix)) || !strstr(err, want_sub))
    fail_msg("for %s got error '%s', want prefix '%s' containing '%s'", text, err, want_prefix, want_sub);
  config_free(c);
}

static void test_errors(void **state) {
  (void)state;
  expect_error("[node]\nport = 1\nbogus = 2\n", "t.toml:3:", "unknown key 'bogus'");
  expect_error("[node]\nbogus = 2\n", "t.toml:2:", "valid keys: name, port, lan");
  expect_error("\n\n[nope]\n", "t.toml:3:", "unknown section [nope]");
  expect_error("[node]\nport = \"80\"\n", "t.toml:2:", "expected an integer");
  expect_error("[node]\nport = 70000\n", "t.toml:2:", "between 1 and 65535");
  expect_error("[node]\nport = 0\n", "t.toml:2:", "between 1 and 65535");
  expect_error("[node]\nlan = yes\n", "t.toml:2:", "true or false");
  expect_error("[node]\nname = \"open\n", "t.toml:2:", "unterminated string");
  expect_error("[node]\nname = \"a\" b\n", "t.toml:2:", "unexpected text");
  expect_error("[node]\nport = 1\nport = 2\n", "t.toml:3:", "set twice");
  expect_error("port = 1\n", "t.toml:1:", "outside any [section]");
  expect_error("[node\n", "t.toml:1:", "bad section header");
  expect_error("[node]\nport 1\n", "t.toml:2:", "expected '='");
  expect_error("[dht]\nbootstrap = [\"a\" \"b\"]\n", "t.toml:2:", "expected ',' or ']'");
  expect_error("[node]\nname = \"\\q\"\n", "t.toml:2:", "unknown escape");
  expect_error("[node]\nport = 99999999999999999999999\n", "t.toml:2:", "");
  /* Over-long lines and NUL bytes are refused, not truncated. */
  char big[CONFIG_MAX_LINE + 64];
  memset(big, 'x', sizeof big);
  memcpy(big, "[node]\nname = \"", 15);
  big[sizeof big - 1] = 0;
  expect_error(big, "t.toml:2:", "longer than");
  config *c;
  assert_int_equal(config_new(schema, N, &c), 0);
  char err[256];
  assert_true(config_parse(c, "[node]\nname = \"a\0b\"\n", 20, "t.toml", err, sizeof err) < 0);
  assert_non_null(strstr(err, "NUL"));
  config_free(c);
}

static void test_default_roundtrip(void **state) {
  (void)state;
  buf b;
  buf_init(&b);
  assert_int_equal(config_write_default(schema, N, "# header\n", &b), 0);
  config *c = parse_ok((const char *)b.ptr);
  assert_int_equal(config_int(c, "node", "port"), 7000);
  const char *const *items;
  assert_int_equal(config_list(c, "dht", "bootstrap", &items), 2);
  assert_string_equal(items[1], "b:2");
  config_free(c);
  buf_deinit(&b);
}

static void test_file(void **state) {
  (void)state;
  char dir[256], path[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/c.toml", dir);
  FILE *f = fopen(path, "w");
  fputs("[node]\nport = 80\nlan = 3\n", f);
  fclose(f);
  config *c;
  assert_int_equal(config_new(schema, N, &c), 0);
  char err[512];
  assert_true(config_load_file(c, path, err, sizeof err) < 0);
  char want[400];
  snprintf(want, sizeof want, "%s:3:", path);
  assert_memory_equal(err, want, strlen(want));
  snprintf(path, sizeof path, "%s/missing.toml", dir);
  assert_true(config_load_file(c, path, err, sizeof err) < 0);
  config_free(c);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_values), cmocka_unit_test(test_errors),
                                     cmocka_unit_test(test_default_roundtrip), cmocka_unit_test(test_file)};
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
