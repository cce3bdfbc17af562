/* `apiary sell` / `apiary unsell`: a new home sells nothing; selling a model of the store,
 * every model (--all, serve = ["*"]), prices, --list, unselling; a model not in the store
 * and a bad price are refused; config.toml keeps its comments and still checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../support/testutil.h"

static char out[65536], err[65536];

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static json_t *listing(const char *home) {
  assert_int_equal(apiary("sell --home %s --list --json", home), 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  return j;
}

static void test_sell(void **state) {
  (void)state;
  char dir[256], home[300], src[400];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  assert_int_equal(apiary("init --home %s", home), 0);
  json_t *l = listing(home);
  assert_int_equal(json_array_size(json_object_get(l, "serve")), 0); /* nothing by default */
  json_decref(l);
  assert_int_equal(apiary("sell --home %s --list", home), 0);
  assert_non_null(strstr(out, "sells nothing"));

  snprintf(src, sizeof src, "%s/m.gguf", dir);
  FILE *f = fopen(src, "wb");
  fputs("GGUF-a-model-for-the-sell-test", f);
  fclose(f);
  assert_int_equal(apiary("model pull --home %s %s --name tiny", home, src), 0);
  assert_int_equal(apiary("sell --home %s tiny --price-gen 7 --price-prompt 3", home), 0);
  l = listing(home);
  assert_string_equal(json_string_value(json_array_get(json_object_get(l, "serve"), 0)), "tiny");
  assert_int_equal(json_array_size(json_object_get(l, "serve")), 1);
  assert_string_equal(json_string_value(json_object_get(l, "price_gen")), "7");
  assert_string_equal(json_string_value(json_object_get(l, "price_prompt")), "3");
  json_decref(l);
  assert_int_equal(apiary("sell --home %s tiny", home), 0); /* twice: listed once */
  l = listing(home);
  assert_int_equal(json_array_size(json_object_get(l, "serve")), 1);
  json_decref(l);

  assert_int_equal(apiary("sell --home %s nope", home), 1);
  assert_non_null(strstr(err, "nope"));
  assert_int_equal(apiary("sell --home %s tiny --price-gen -5", home), 2);
  assert_int_equal(apiary("sell --home %s", home), 2);
  assert_int_equal(apiary("unsell --home %s --list", home), 2);

  assert_int_equal(apiary("sell --home %s --all", home), 0);
  l = listing(home);
  assert_string_equal(json_string_value(json_array_get(json_object_get(l, "serve"), 0)), "*");
  json_decref(l);
  assert_int_equal(apiary("unsell --home %s --all", home), 0);
  l = listing(home);
  assert_int_equal(json_array_size(json_object_get(l, "serve")), 0);
  json_decref(l);
  assert_int_equal(apiary("sell --home %s tiny", home), 0);
  assert_int_equal(apiary("unsell --home %s tiny", home), 0);
  l = listing(home);
  assert_int_equal(json_array_size(json_object_get(l, "serve")), 0);
  json_decref(l);

  /* the file keeps its comments and still checks */
  char cfg[400];
  snprintf(cfg, sizeof cfg, "%s/config.toml", home);
  static char text[1 << 16];
  f = fopen(cfg, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  assert_non_null(strstr(text, "# models this node sells"));
  assert_int_equal(apiary("config --home %s check", home), 0);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_sell)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
