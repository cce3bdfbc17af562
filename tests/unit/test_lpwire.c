/* market/lpwire — logprob records on the wire: what mkt_lp_encode writes mkt_lp_decode reads
 * back exactly (ids, logprobs as floats, pieces, alternatives in order); untrusted lists
 * breaking a cap or a rule are refused whole: a positive or non-number logprob, alternatives
 * out of order or more than asked, bad hex, a piece over MKT_LP_MAX_PIECE bytes, more than
 * MKT_LP_MAX_RECS records, a wrong arity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "market/lpwire.h"

static void roundtrip(void **state) {
  (void)state;
  const uint8_t bytes[] = " the\xe2\x80" "cat";
  logprob_rec in[2];
  memset(in, 0, sizeof in);
  in[0].tok = (logprob_tok){42, -0.125f, 0, 4};
  in[0].n_top = 2;
  in[0].top[0] = in[0].tok;
  in[0].top[1] = (logprob_tok){7, -3.5f, 4, 2}; /* a partial UTF-8 piece */
  in[1].tok = (logprob_tok){9, -1e-7f, 6, 3};
  json_t *j = mkt_lp_encode(in, 2, bytes);
  assert_non_null(j);
  logprob_rec out[MKT_LP_MAX_RECS];
  buf b;
  buf_init(&b);
  assert_int_equal(mkt_lp_decode(j, 2, out, MKT_LP_MAX_RECS, &b), 2);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(out[i].tok.id, in[i].tok.id);
    assert_true(out[i].tok.logprob == in[i].tok.logprob);
    assert_int_equal(out[i].tok.len, in[i].tok.len);
    assert_memory_equal(b.ptr + out[i].tok.off, bytes + in[i].tok.off, in[i].tok.len);
    assert_int_equal(out[i].n_top, in[i].n_top);
    for (int k = 0; k < in[i].n_top; k++) {
      assert_int_equal(out[i].top[k].id, in[i].top[k].id);
      assert_true(out[i].top[k].logprob == in[i].top[k].logprob);
      assert_memory_equal(b.ptr + out[i].top[k].off, bytes + in[i].top[k].off, in[i].top[k].len);
    }
  }
  assert_int_equal(mkt_lp_decode(j, 1, out, MKT_LP_MAX_RECS, &b), ERR_FORMAT); /* more alternatives than asked */
  json_decref(j);
  buf_deinit(&b);
}

static void refusals(void **state) {
  (void)state;
  static const char *const bad[] = {
      "{}",
      "[[1, 0.5, \"61\", []]]",                                   /* a positive logprob */
      "[[1, \"x\", \"61\", []]]",
      "[[1, -0.5, \"6\", []]]",                                   /* odd hex */
      "[[1, -0.5, \"zz\", []]]",
      "[[-1, -0.5, \"61\", []]]",
      "[[1, -0.5, \"61\"]]",                                      /* no alternatives list */
      "[[1, -0.5, \"61\", [], 5]]",
      "[[1, -0.5, \"61\", [[2, -2, \"62\"], [3, -1, \"63\"]]]]",  /* alternatives out of order */
      "[[1, -0.5, \"61\", [[2, -2, \"62\", 1]]]]",
      "[5]",
  };
  logprob_rec out[MKT_LP_MAX_RECS];
  buf b;
  buf_init(&b);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *j = json_loads(bad[i], 0, NULL);
    assert_non_null(j);
    if (mkt_lp_decode(j, 20, out, MKT_LP_MAX_RECS, &b) != ERR_FORMAT) fail_msg("accepted %s", bad[i]);
    json_decref(j);
  }
  /* a piece over the cap, and too many records */
  char *hex = malloc(2 * MKT_LP_MAX_PIECE + 3);
  memset(hex, 'a', 2 * MKT_LP_MAX_PIECE + 2);
  hex[2 * MKT_LP_MAX_PIECE + 2] = 0;
  json_t *j = json_pack("[[i, f, s, []]]", 1, -0.5, hex);
  assert_int_equal(mkt_lp_decode(j, 20, out, MKT_LP_MAX_RECS, &b), ERR_FORMAT);
  json_decref(j);
  free(hex);
  j = json_array();
  for (int i = 0; i <= MKT_LP_MAX_RECS; i++) json_array_append_new(j, json_pack("[i, f, s, []]", i, -1.0, "61"));
  assert_int_equal(mkt_lp_decode(j, 20, out, MKT_LP_MAX_RECS, &b), ERR_FORMAT);
  json_array_remove(j, 0);
  assert_int_equal(mkt_lp_decode(j, 20, out, MKT_LP_MAX_RECS, &b), MKT_LP_MAX_RECS);
  json_decref(j);
  buf_deinit(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(roundtrip), cmocka_unit_test(refusals)};
  return cmocka_run_group_tests_name("lpwire", tests, NULL, NULL);
}
