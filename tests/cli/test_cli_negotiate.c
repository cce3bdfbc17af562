/* `apiary negotiate`: gen writes a scenario sim reads back; sim's JSON outcome agrees
 * with its own ground truth; a scenario without a zone of agreement ends without a deal;
 * the Genius Laptop files; errors name the problem (bad file: exit 1; bad usage: exit 2). */
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
#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)

static void test_negotiate(void **state) {
  (void)state;
  char dir[256], f[300], g[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(f, sizeof f, "%s/s.json", dir);
  snprintf(g, sizeof g, "%s/n.json", dir);
  assert_int_equal(apiary("negotiate gen --seed 11 --out %s", f), 0);
  json_t *j = apiary_json("negotiate sim %s --strategy pareto,pareto", f);
  assert_non_null(j);
  assert_true(json_is_true(json_object_get(json_object_get(j, "truth"), "zopa")));
  assert_true(json_is_true(json_object_get(j, "agreed")));
  assert_true(json_real_value(json_object_get(j, "nash_ratio")) > 0.5);
  json_decref(j);
  assert_int_equal(apiary("negotiate gen --seed 11 --no-zopa --out %s", g), 0);
  j = apiary_json("negotiate sim %s --strategy conceder,conceder", g);
  assert_non_null(j);
  assert_false(json_is_true(json_object_get(json_object_get(j, "truth"), "zopa")));
  assert_false(json_is_true(json_object_get(j, "agreed")));
  json_decref(j);
  assert_int_equal(apiary("negotiate sim --genius tests/data/negotiation/laptop_domain.xml "
                          "tests/data/negotiation/laptop_buyer_utility.xml tests/data/negotiation/laptop_seller_utility.xml"),
                   0);
  assert_non_null(strstr(out, "agreement after"));
  assert_non_null(strstr(out, "Nash point Laptop=HP, Harddisk=60 Gb"));
  assert_non_null(strstr(out, "agreement after 4 rounds: Laptop=HP, Harddisk=60 Gb, External Monitor=19'' LCD"));
  assert_non_null(strstr(out, "(the Nash point)"));
  /* Errors. */
  FILE *fp = fopen(f, "w");
  fputs("{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"a\"]}],\"sides\":[]}", fp);
  fclose(fp);
  assert_int_equal(apiary("negotiate sim %s", f), 1);
  assert_non_null(strstr(err, "value 'a' appears twice"));
  assert_int_equal(apiary("negotiate sim %s --strategy greedy,pareto", f), 2);
  assert_int_equal(apiary("negotiate haggle"), 2);
  assert_int_equal(apiary("negotiate --help"), 0);
  assert_non_null(strstr(out, "negotiate sim"));
  /* the node subcommands: usage errors without a node, and no node is a failure */
  assert_int_equal(apiary("negotiate start --home %s apXXX", dir), 2);            /* no --intent */
  assert_int_equal(apiary("negotiate intent --home %s frob", dir), 2);
  assert_int_equal(apiary("negotiate show --home %s", dir), 2);
  assert_int_equal(apiary("negotiate intent add --home %s %s/missing.json", dir, dir), 2);
  assert_int_equal(apiary("negotiate list --home %s", dir), 1);                  /* no node running */
  assert_non_null(strstr(err, "no node is running"));
  assert_int_equal(apiary("negotiate intent --help"), 0);
  assert_non_null(strstr(out, "negotiate start NODE_ID"));
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_negotiate)};
  return cmocka_run_group_tests_name("cli_negotiate", tests, NULL, NULL);
}
