/* Market: exact request costs (hand-computed vectors, overflow), tokens covered against
 * mkt_cost as a property, offers in JSON and bencode (round trips, every malformed-input
 * rule), provider ranking, and receipts and provider statistics on a migrated store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/ident.h"
#include "market/offer.h"
#include "market/rank.h"
#include "market/receipt.h"

/* ---- cost ---- */

static void cost_is(uint64_t pt, uint64_t gt, uint64_t pp, uint64_t pg, uint64_t want) {
  uint64_t got = 12345;
  assert_int_equal(mkt_cost(pt, gt, pp, pg, &got), 0);
  assert_true(got == want);
}

static void test_cost_vectors(void **state) {
  (void)state;
  cost_is(0, 0, 7, 9, 0);               /* nothing used: 0 */
  cost_is(1, 0, 1, 0, 1);               /* 1 wei-token / 1000 = 0.001 -> ceil 1 */
  cost_is(1000, 0, 1, 0, 1);            /* 1000 / 1000 = 1 exactly */
  cost_is(1001, 0, 1, 0, 2);            /* 1.001 -> 2 */
  cost_is(0, 1999, 0, 1, 2);            /* 1.999 -> 2 */
  cost_is(100, 200, 1000, 2000, 500);   /* 100000 + 400000 = 500000 / 1000 = 500 */
  cost_is(3, 7, 333, 1, 2);             /* 999 + 7 = 1006 -> 1.006 -> 2 */
  cost_is(600, 400, 1, 1, 1);           /* remainders 600 + 400 make exactly 1000: 1, not 2 */
  cost_is(600, 600, 1, 1, 2);           /* 1200 -> 1.2 -> 2 */
  cost_is(999, 999, 1, 1, 2);           /* 1998 -> 2 */
  cost_is(1000000, 1000000, 0, 0, 0);   /* free */
  cost_is(5, 1000000, 0, 3, 3000);      /* prompt free: 3,000,000 / 1000 */
  cost_is(12, 34, 1000000000000000ull, 2000000000000000ull, 80000000000000ull);
  /* (12e15 + 68e15) / 1000 = 8e13 */
  cost_is(UINT64_MAX, 0, 1000, 0, UINT64_MAX);          /* (2^64-1)*1000/1000: the largest */
  cost_is(UINT64_MAX, UINT64_MAX, 500, 500, UINT64_MAX); /* same, split across both */
  cost_is(UINT64_MAX, 0, 1, 0, 18446744073709552ull);   /* ceil(18446744073709551.615) */
  uint64_t got = 77;
  /* (2^64-1)*1000 + 1 -> ceil = 2^64: one past the top */
  assert_int_equal(mkt_cost(UINT64_MAX, 1, 1000, 1, &got), ERR_RANGE);
  assert_int_equal(mkt_cost(UINT64_MAX, 0, 1001, 0, &got), ERR_RANGE);
  /* both products near 2^128: the sum would overflow even 128 bits */
  assert_int_equal(mkt_cost(UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, &got), ERR_RANGE);
  assert_true(got == 77); /* untouched on error */
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) { /* xorshift64*: deterministic */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
/* Random value of a random magnitude (so small, medium and huge all occur). */
static uint64_t rnd_mag(void) {
  unsigned bits = (unsigned)(rnd() % 65);
  return bits == 0 ? 0 : bits == 64 ? rnd() : rnd() & ((1ull << bits) - 1);
}

static void check_covered(uint64_t pt, uint64_t paid, uint64_t pp, uint64_t pg) {
  int64_t c = mkt_tokens_covered(pt, paid, pp, pg);
  uint64_t cost;
  if (c < 0) {
    assert_int_equal(c, -1);
    int rc = mkt_cost(pt, 0, pp, pg, &cost);
    assert_true(rc == ERR_RANGE || cost > paid);
    return;
  }
  assert_true(c <= (int64_t)1 << 30);
  assert_int_equal(mkt_cost(pt, (uint64_t)c, pp, pg, &cost), 0);
  assert_true(cost <= paid);
  if (c < (int64_t)1 << 30) {
    int rc = mkt_cost(pt, (uint64_t)c + 1, pp, pg, &cost);
    assert_true(rc == ERR_RANGE || cost > paid);
  } else if (pg == 0) {
    assert_true(c == (int64_t)1 << 30);
  }
}

static void test_tokens_covered(void **state) {
  (void)state;
  /* Vectors: 1000 wei paid at 2000 wei/1k gen, prompt free -> 500 tokens (cost 1000). */
  assert_int_equal(mkt_tokens_covered(10, 1000, 0, 2000), 500);
  /* 1 wei buys up to 1000 wei-tokens: with price 3 that is 333 tokens (999 -> 1 wei). */
  assert_int_equal(mkt_tokens_covered(0, 1, 0, 3), 333);
  /* prompt 100 tokens at 1000 wei/1k = 100 wei; 150 paid leaves 50 wei = 25 tokens at 2000. */
  assert_int_equal(mkt_tokens_covered(100, 150, 1000, 2000), 25);
  /* prompt alone costs 101 wei > 100 paid */
  assert_int_equal(mkt_tokens_covered(101, 100, 1000, 2000), -1);
  /* rounding in the client's favour: 1 token at 1 wei/1k costs ceil(0.001) = 1 wei */
  assert_int_equal(mkt_tokens_covered(1, 0, 1, 1), -1);
  assert_int_equal(mkt_tokens_covered(0, 0, 1, 1), 0);
  /* free generation: the cap */
  assert_int_equal(mkt_tokens_covered(5, 0, 0, 0), (int64_t)1 << 30);
  assert_int_equal(mkt_tokens_covered(5, 1, 200, 0), (int64_t)1 << 30);
  /* huge budget at a tiny price: capped */
  assert_int_equal(mkt_tokens_covered(0, UINT64_MAX, 0, 1), (int64_t)1 << 30);
  /* prompt cost beyond 64 bits is never covered */
  assert_int_equal(mkt_tokens_covered(UINT64_MAX, UINT64_MAX, UINT64_MAX, 1), -1);
  /* Property: cost(pt, covered) <= paid < cost(pt, covered + 1), over many random inputs. */
  for (int i = 0; i < 200000; i++) {
    uint64_t pt = rnd() % 4 == 0 ? rnd_mag() : rnd() % 100000;
    uint64_t paid = rnd_mag();
    uint64_t pp = rnd() % 3 == 0 ? rnd_mag() : rnd() % 10000000;
    uint64_t pg = rnd() % 3 == 0 ? rnd_mag() : rnd() % 10000000;
    check_covered(pt, paid, pp, pg);
  }
}

/* ---- offers ---- */

static mkt_offer offer(uint8_t tag, const char *name, uint64_t pp, uint64_t pg, uint32_t conc) {
  mkt_offer o;
  memset(&o, 0, sizeof o);
  memset(o.model, tag, 32);
  o.model[31] = (uint8_t)(tag + 1);
  snprintf(o.name, sizeof o.name, "%s", name);
  o.price_prompt = pp;
  o.price_gen = pg;
  o.max_concurrent = conc;
  return o;
}

static void assert_offers_equal(const mkt_offer *a, const mkt_offer *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_memory_equal(a[i].model, b[i].model, 32);
    assert_string_equal(a[i].name, b[i].name);
    assert_true(a[i].price_prompt == b[i].price_prompt);
    assert_true(a[i].price_gen == b[i].price_gen);
    assert_int_equal(a[i].max_concurrent, b[i].max_concurrent);
  }
}

static void test_offer_find(void **state) {
  (void)state;
  mkt_offer o[3] = {offer(1, "a", 1, 1, 1), offer(2, "b", 1, 1, 1), offer(3, "c", 1, 1, 1)};
  assert_ptr_equal(mkt_offer_find(o, 3, o[1].model), &o[1]);
  assert_ptr_equal(mkt_offer_find(o, 3, o[2].model), &o[2]);
  uint8_t other[32] = {9};
  assert_null(mkt_offer_find(o, 3, other));
  assert_null(mkt_offer_find(o, 0, o[0].model));
}

static void test_json_round_trip(void **state) {
  (void)state;
  char longest[65];
  memset(longest, 'x', 64);
  longest[64] = 0;
  mkt_offer in[4] = {offer(0xab, "stories15M", 1000, 2000, 2), offer(1, "", 0, 0, 1),
                     offer(2, longest, UINT64_MAX, UINT64_MAX - 1, 1024), offer(3, "qwen \xe2\x9c\x93", 7, 0, 3)};
  json_t *j = mkt_offers_to_json(in, 4);
  assert_non_null(j);
  /* through text and back, as it travels */
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  assert_non_null(strstr(text, "\"price_prompt\":\"18446744073709551615\""));
  assert_non_null(strstr(text, "\"model\":\"abababababababababababababababababababababababababababababababac\""));
  json_error_t je;
  j = json_loads(text, 0, &je);
  free(text);
  assert_non_null(j);
  mkt_offer out[MKT_MAX_OFFERS];
  size_t n = 99;
  char err[200];
  assert_int_equal(mkt_offers_from_json(j, out, MKT_MAX_OFFERS, &n, err, sizeof err), 0);
  assert_int_equal(n, 4);
  assert_offers_equal(in, out, 4);
  /* cap: exactly n fits; n-1 does not */
  assert_int_equal(mkt_offers_from_json(j, out, 4, &n, err, sizeof err), 0);
  assert_int_equal(mkt_offers_from_json(j, out, 3, &n, err, sizeof err), ERR_TOOBIG);
  assert_int_equal(n, 0);
  json_decref(j);
  /* the empty list */
  j = json_array();
  assert_int_equal(mkt_offers_from_json(j, out, MKT_MAX_OFFERS, &n, err, sizeof err), 0);
  assert_int_equal(n, 0);
  json_decref(j);
  /* the documented example parses; unknown keys are ignored */
  j = json_loads("[{\"model\":\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\","
                 "\"name\":\"stories15M\",\"price_prompt\":\"1000\",\"price_gen\":\"2000\",\"max_concurrent\":2,"
                 "\"future\":[1,2]}]", 0, &je);
  assert_non_null(j);
  assert_int_equal(mkt_offers_from_json(j, out, MKT_MAX_OFFERS, &n, err, sizeof err), 0);
  assert_int_equal(n, 1);
  assert_int_equal(out[0].model[5], 0x55);
  assert_int_equal(out[0].model[10], 0xaa);
  assert_true(out[0].price_prompt == 1000 && out[0].price_gen == 2000 && out[0].max_concurrent == 2);
  json_decref(j);
}

typedef struct bad_case {
  const char *json;
  int rc;
  const char *msg; /* substring of err */
} bad_case;

#define M64 "\"model\":\"0000000000000000000000000000000000000000000000000000000000000001\""
#define GOOD_REST "\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1"

static void test_json_malformed(void **state) {
  (void)state;
  static const bad_case cases[] = {
      {"{}", ERR_FORMAT, "array"},
      {"[1]", ERR_FORMAT, "offer 0: not an object"},
      {"[{" GOOD_REST "}]", ERR_FORMAT, "model missing"},
      {"[{\"model\":\"zz00000000000000000000000000000000000000000000000000000000000001\"," GOOD_REST "}]",
       ERR_FORMAT, "64 hex"},
      {"[{\"model\":\"000000000000000000000000000000000000000000000000000000000000001\"," GOOD_REST "}]",
       ERR_FORMAT, "64 hex"}, /* 63 digits */
      {"[{\"model\":\"0x00000000000000000000000000000000000000000000000000000000000001\"," GOOD_REST "}]",
       ERR_FORMAT, "64 hex"}, /* 0x prefix takes two of the 64 */
      {"[{\"model\":7," GOOD_REST "}]", ERR_FORMAT, "64 hex"},
      {"[{" M64 ",\"name\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
       "\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT, "longer than 64"},
      {"[{" M64 ",\"name\":\"a\\u0000b\",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1}]",
       ERR_FORMAT, "NUL"},
      {"[{" M64 ",\"name\":5,\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT,
       "name must be a string"},
      {"[{" M64 ",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT, "name missing"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":1,\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT,
       "price_prompt must be a decimal string"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"-1\",\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT,
       "price_prompt must be 1 to 20"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"\",\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT,
       "price_prompt must be 1 to 20"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1.5\",\"price_gen\":\"2\",\"max_concurrent\":1}]", ERR_FORMAT,
       "price_prompt must be 1 to 20"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"18446744073709551616\",\"max_concurrent\":1}]",
       ERR_FORMAT, "price_gen must be below 2^64"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"99999999999999999999\",\"max_concurrent\":1}]",
       ERR_FORMAT, "below 2^64"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"000000000000000000001\",\"max_concurrent\":1}]",
       ERR_FORMAT, "1 to 20"}, /* 21 digits */
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"max_concurrent\":1}]", ERR_FORMAT, "price_gen missing"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":0}]", ERR_FORMAT,
       "max_concurrent must be an integer in 1..1024"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1025}]", ERR_FORMAT,
       "max_concurrent"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":\"2\"}]", ERR_FORMAT,
       "max_concurrent"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"2\",\"max_concurrent\":1.0}]", ERR_FORMAT,
       "max_concurrent"},
      {"[{" M64 ",\"name\":\"x\",\"price_prompt\":\"1\",\"price_gen\":\"2\"}]", ERR_FORMAT, "max_concurrent missing"},
      {"[{" M64 "," GOOD_REST "},{" M64 "," GOOD_REST "}]", ERR_FORMAT, "offer 1: model listed twice"},
  };
  mkt_offer out[MKT_MAX_OFFERS];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_error_t je;
    json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je);
    if (!j) fail_msg("case %zu does not parse: %s", i, je.text);
    char err[200] = "";
    size_t n = 99;
    int rc = mkt_offers_from_json(j, out, MKT_MAX_OFFERS, &n, err, sizeof err);
    if (rc != cases[i].rc || !strstr(err, cases[i].msg))
      fail_msg("case %zu: rc %d err '%s', want %d '%s'", i, rc, err, cases[i].rc, cases[i].msg);
    assert_int_equal(n, 0);
    json_decref(j);
  }
  /* more than MKT_MAX_OFFERS (even with a bigger cap), checked before any element */
  json_t *a = json_array();
  for (int i = 0; i <= MKT_MAX_OFFERS; i++) json_array_append_new(a, json_integer(i));
  mkt_offer big[MKT_MAX_OFFERS + 8];
  char err[200];
  size_t n;
  assert_int_equal(mkt_offers_from_json(a, big, MKT_MAX_OFFERS + 8, &n, err, sizeof err), ERR_TOOBIG);
  assert_non_null(strstr(err, "at most 16"));
  json_decref(a);
}

static int ben_round(const mkt_offer *in, size_t n, uint8_t *buf, size_t cap, ben_node *nodes, size_t ncap) {
  ben_w w;
  ben_w_init(&w, buf, cap);
  mkt_offers_to_ben(&w, in, n);
  int len = ben_w_finish(&w);
  assert_true(len > 0);
  assert_true(ben_decode(buf, (size_t)len, nodes, ncap, 0) > 0); /* strict: keys sorted */
  return len;
}

static void test_ben_round_trip(void **state) {
  (void)state;
  char longest[65];
  memset(longest, 'n', 64);
  longest[64] = 0;
  mkt_offer in[3] = {offer(0xab, "stories15M", 1000, 2000, 2), offer(1, "", 0, 0, 1),
                     offer(2, longest, INT64_MAX, INT64_MAX, 1024)};
  uint8_t buf[4096];
  ben_node nodes[256];
  int len = ben_round(in, 3, buf, sizeof buf, nodes, 256);
  mkt_offer out[MKT_MAX_OFFERS];
  size_t n = 99;
  assert_int_equal(mkt_offers_from_ben(&nodes[0], out, MKT_MAX_OFFERS, &n), 0);
  assert_int_equal(n, 3);
  assert_offers_equal(in, out, 3);
  /* the exact encoding of one offer: keys c g m n p */
  len = ben_round(in, 1, buf, sizeof buf, nodes, 256);
  char want[200];
  int wl = snprintf(want, sizeof want, "ld1:ci2e1:gi2000e1:m32:%.32s1:n10:stories15M1:pi1000eee", (const char *)in[0].model);
  assert_int_equal(len, wl);
  assert_memory_equal(buf, want, (size_t)len);
  /* Prices above INT64_MAX cannot be written: such offers are skipped, not clamped. */
  mkt_offer hi[3] = {offer(1, "a", (uint64_t)INT64_MAX + 1, 1, 1), offer(2, "b", 5, 6, 1),
                     offer(3, "c", 1, UINT64_MAX, 1)};
  ben_round(hi, 3, buf, sizeof buf, nodes, 256);
  assert_int_equal(mkt_offers_from_ben(&nodes[0], out, MKT_MAX_OFFERS, &n), 0);
  assert_int_equal(n, 1);
  assert_offers_equal(&hi[1], out, 1);
  /* an invalid max_concurrent is skipped too; at most MKT_MAX_OFFERS are written */
  mkt_offer many[MKT_MAX_OFFERS + 3];
  for (int i = 0; i < MKT_MAX_OFFERS + 3; i++) many[i] = offer((uint8_t)(10 + i), "m", 1, 1, i == 0 ? 0 : 1);
  ben_round(many, MKT_MAX_OFFERS + 3, buf, sizeof buf, nodes, 256);
  assert_int_equal(mkt_offers_from_ben(&nodes[0], out, MKT_MAX_OFFERS, &n), 0);
  assert_int_equal(n, MKT_MAX_OFFERS);
  assert_offers_equal(&many[1], out, MKT_MAX_OFFERS);
  /* writer errors stick: a buffer too small */
  ben_w w;
  ben_w_init(&w, buf, 10);
  mkt_offers_to_ben(&w, in, 3);
  assert_int_equal(ben_w_finish(&w), ERR_TOOBIG);
}

static int ben_parse(const char *text, mkt_offer *out, size_t cap, size_t *n) {
  ben_node nodes[256];
  int rc = ben_decode((const uint8_t *)text, strlen(text), nodes, 256, BEN_LENIENT_ORDER);
  assert_true(rc > 0);
  return mkt_offers_from_ben(&nodes[0], out, cap, n);
}

#define MOD32 "1:m32:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static void test_ben_malformed(void **state) {
  (void)state;
  static const struct {
    const char *ben;
    int rc;
  } cases[] = {
      {"ld1:ci1e1:gi2e" MOD32 "1:n1:x1:pi1eee", 0}, /* the good one, for contrast */
      {"d1:ai1ee", ERR_FORMAT},                    /* not a list */
      {"li1ee", ERR_FORMAT},                       /* item not a dict */
      {"ld1:gi2e" MOD32 "1:n1:x1:pi1eee", ERR_FORMAT},               /* c missing */
      {"ld1:ci1e1:gi2e1:n1:x1:pi1eee", ERR_FORMAT},                  /* m missing */
      {"ld1:ci1e1:gi2e1:m31:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1:n1:x1:pi1eee", ERR_FORMAT}, /* m 31 bytes */
      {"ld1:ci1e1:gi2e1:mi5e1:n1:x1:pi1eee", ERR_FORMAT},            /* m an int */
      {"ld1:ci1e1:gi2e" MOD32 "1:pi1eee", ERR_FORMAT},               /* n missing */
      {"ld1:ci1e1:gi2e" MOD32 "1:ni3e1:pi1eee", ERR_FORMAT},         /* n an int */
      {"ld1:ci1e1:gi2e" MOD32 "1:n3:a\0b1:pi1eee", ERR_FORMAT},      /* (truncated by strlen: bad) */
      {"ld1:ci1e1:gi2e" MOD32 "1:n65:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx1:pi1eee",
       ERR_FORMAT},                                                  /* name 65 bytes */
      {"ld1:ci1e1:gi2e" MOD32 "1:n1:x1:pi-1eee", ERR_FORMAT},        /* negative price */
      {"ld1:ci1e1:gi-5e" MOD32 "1:n1:x1:pi1eee", ERR_FORMAT},
      {"ld1:ci1e1:g1:2" MOD32 "1:n1:x1:pi1eee", ERR_FORMAT},         /* price a string */
      {"ld1:ci0e1:gi2e" MOD32 "1:n1:x1:pi1eee", ERR_FORMAT},         /* concurrency 0 */
      {"ld1:ci1025e1:gi2e" MOD32 "1:n1:x1:pi1eee", ERR_FORMAT},      /* concurrency > 1024 */
      {"ld1:ci1e1:gi2e" MOD32 "1:n1:x1:pi1eed1:ci1e1:gi2e" MOD32 "1:n1:y1:pi1eee", ERR_FORMAT}, /* dup */
  };
  mkt_offer out[MKT_MAX_OFFERS];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    size_t n = 99;
    ben_node nodes[256];
    int d = ben_decode((const uint8_t *)cases[i].ben, strlen(cases[i].ben), nodes, 256, 0);
    if (d <= 0) {
      assert_int_not_equal(cases[i].rc, 0); /* the truncated-NUL case fails in the decoder */
      continue;
    }
    int rc = mkt_offers_from_ben(&nodes[0], out, MKT_MAX_OFFERS, &n);
    if (rc != cases[i].rc) fail_msg("case %zu: rc %d want %d", i, rc, cases[i].rc);
    if (rc) assert_int_equal(n, 0);
  }
  /* a NUL inside the name, built with its length */
  static const char nul_name[] = "ld1:ci1e1:gi2e" MOD32 "1:n3:a\0b1:pi1eee";
  ben_node nodes[64];
  size_t n;
  assert_true(ben_decode((const uint8_t *)nul_name, sizeof nul_name - 1, nodes, 64, 0) > 0);
  assert_int_equal(mkt_offers_from_ben(&nodes[0], out, MKT_MAX_OFFERS, &n), ERR_FORMAT);
  /* too many: more than MKT_MAX_OFFERS, and more than cap */
  char big[8192] = "l";
  for (int i = 0; i <= MKT_MAX_OFFERS; i++) {
    char item[128];
    snprintf(item, sizeof item, "d1:ci1e1:gi2e1:m32:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%02d1:n1:x1:pi1ee", i);
    strcat(big, item);
  }
  strcat(big, "e");
  mkt_offer many[MKT_MAX_OFFERS + 4];
  assert_int_equal(ben_parse(big, many, MKT_MAX_OFFERS + 4, &n), ERR_TOOBIG);
  assert_int_equal(ben_parse("ld1:ci1e1:gi2e" MOD32 "1:n1:x1:pi1eee", out, 0, &n), ERR_TOOBIG);
  assert_int_equal(mkt_offers_from_ben(NULL, out, 1, &n), ERR_FORMAT);
}

/* ---- rank ---- */

static mkt_candidate cand(uint8_t key, uint64_t pp, uint64_t pg, double lat, uint32_t fails, uint32_t mism) {
  mkt_candidate c;
  memset(&c, 0, sizeof c);
  memset(c.node, key, 32);
  c.offer = offer(7, "m", pp, pg, 1);
  c.latency_ms = lat;
  c.recent_failures = fails;
  c.mismatches = mism;
  return c;
}

static void order_is(const mkt_candidate *c, size_t n, const uint8_t *keys) {
  for (size_t i = 0; i < n; i++)
    if (c[i].node[0] != keys[i]) fail_msg("position %zu: node %u, want %u", i, c[i].node[0], keys[i]);
}

static void test_rank(void **state) {
  (void)state;
  mkt_rank_params p = {.prompt_est = 1000, .gen_est = 1000};
  /* price: base = (1000*pp + 1000*pg)/1000 = pp + pg; all latency 0 and no failures */
  mkt_candidate c[4] = {cand(1, 30, 30, 0, 0, 0), cand(2, 10, 10, 0, 0, 0), cand(3, 20, 20, 0, 0, 0),
                        cand(4, 0, 0, 0, 0, 0)};
  assert_int_equal(mkt_rank(c, 4, &p), 4);
  order_is(c, 4, (const uint8_t[]){4, 2, 3, 1});
  assert_true(c[0].score == 1.0);  /* (0 + 1) * 1 * 1 */
  assert_true(c[1].score == 21.0); /* (20 + 1) * 1 * 1 */
  /* failures: 41 * (1 + 0.5*2) = 82 loses to 61 * 1 = 61; mismatch: 21 * 3 = 63 loses to 61 */
  mkt_candidate f[3] = {cand(1, 20, 20, 0, 2, 0), cand(2, 30, 30, 0, 0, 0), cand(3, 10, 10, 0, 0, 1)};
  assert_int_equal(mkt_rank(f, 3, &p), 3);
  order_is(f, 3, (const uint8_t[]){2, 3, 1});
  assert_true(f[0].score == 61.0 && f[1].score == 63.0 && f[2].score == 82.0);
  /* latency: 21 * (1 + 2000/1000) = 63 loses to 31 * (1 + 0.5) = 46.5; unknown = 1000 ms: 26 * 2 = 52 */
  mkt_candidate l[3] = {cand(1, 10, 10, 2000, 0, 0), cand(2, 15, 15, 500, 0, 0), cand(3, 12, 13, -1, 0, 0)};
  assert_int_equal(mkt_rank(l, 3, &p), 3);
  order_is(l, 3, (const uint8_t[]){2, 3, 1});
  assert_true(l[0].score == 46.5 && l[1].score == 52.0 && l[2].score == 63.0);
  /* ties: equal scores -> fewer failures, then lower latency, then the smaller key */
  mkt_candidate t[4] = {cand(9, 10, 10, 0, 0, 0), cand(5, 10, 10, 0, 0, 0), cand(7, 10, 10, 0, 0, 0),
                        cand(6, 10, 10, 0, 0, 0)};
  mkt_rank(t, 4, &p);
  order_is(t, 4, (const uint8_t[]){5, 6, 7, 9});
  /* both 42: (20+1) * (1 + 0.5*2) * 1 with 2 failures vs (20+1) * 1 * (1 + 1000/1000): fewer failures wins */
  mkt_candidate tf[2] = {cand(1, 10, 10, 0, 2, 0), cand(2, 10, 10, 1000, 0, 0)};
  mkt_rank(tf, 2, &p);
  assert_true(tf[0].score == 42.0 && tf[1].score == 42.0);
  order_is(tf, 2, (const uint8_t[]){2, 1});
  /* both 20: base 4 -> 5 * (1 + 3000/1000) vs base 9 -> 10 * (1 + 1000/1000): the faster wins */
  mkt_candidate tl[2] = {cand(1, 2, 2, 3000, 0, 0), cand(2, 4, 5, 1000, 0, 0)};
  mkt_rank(tl, 2, &p);
  assert_true(tl[0].score == 20.0 && tl[1].score == 20.0);
  order_is(tl, 2, (const uint8_t[]){2, 1});
  /* unknown latency counts as exactly 1000 ms: a full tie, so the smaller key wins */
  mkt_candidate tu[2] = {cand(8, 10, 10, -1, 0, 0), cand(3, 10, 10, 1000, 0, 0)};
  mkt_rank(tu, 2, &p);
  order_is(tu, 2, (const uint8_t[]){3, 8});
  /* filters: over max prices, excluded -> dropped to the end; usable count returned */
  mkt_rank_params lim = {.prompt_est = 1000, .gen_est = 1000, .max_price_prompt = 20, .max_price_gen = 25};
  mkt_candidate d[6] = {cand(1, 21, 1, 0, 0, 0),  /* prompt over */
                        cand(2, 20, 25, 0, 0, 0), /* exactly at both limits: kept */
                        cand(3, 1, 26, 0, 0, 0),  /* gen over */
                        cand(4, 5, 5, 0, 0, 0),   /* excluded below */
                        cand(5, 1, 1, 0, 0, 0), cand(6, 10, 10, 0, 0, 0)};
  d[3].excluded = 1;
  assert_int_equal(mkt_rank(d, 6, &lim), 3);
  order_is(d, 3, (const uint8_t[]){5, 6, 2});
  for (int i = 3; i < 6; i++) assert_true(d[i].node[0] == 1 || d[i].node[0] == 3 || d[i].node[0] == 4);
  /* dropped part is deterministic too: same input in another order, same output */
  mkt_candidate d2[6] = {cand(6, 10, 10, 0, 0, 0), cand(4, 5, 5, 0, 0, 0), cand(3, 1, 26, 0, 0, 0),
                         cand(5, 1, 1, 0, 0, 0), cand(2, 20, 25, 0, 0, 0), cand(1, 21, 1, 0, 0, 0)};
  d2[1].excluded = 1;
  assert_int_equal(mkt_rank(d2, 6, &lim), 3);
  for (int i = 0; i < 6; i++) assert_int_equal(d[i].node[0], d2[i].node[0]);
  /* limit 0 = none; a cost beyond 64 bits ranks last but stays usable */
  mkt_rank_params huge = {.prompt_est = UINT64_MAX, .gen_est = UINT64_MAX};
  mkt_candidate h[2] = {cand(1, UINT64_MAX, UINT64_MAX, 0, 0, 0), cand(2, 1, 1, 0, 0, 0)};
  assert_int_equal(mkt_rank(h, 2, &huge), 2);
  order_is(h, 2, (const uint8_t[]){2, 1});
  /* all excluded; empty */
  mkt_candidate x[2] = {cand(1, 1, 1, 0, 0, 0), cand(2, 1, 1, 0, 0, 0)};
  x[0].excluded = x[1].excluded = 1;
  assert_int_equal(mkt_rank(x, 2, &p), 0);
  assert_int_equal(mkt_rank(NULL, 0, &p), 0);
}

/* ---- receipts and stats ---- */

static char dir[256];

static store *open_db(void) {
  static const store_migration m[] = {{"market", market_schema_v1}};
  char path[300], err[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/m.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(store_migrate(s, m, 1, err, sizeof err), 1);
  return s;
}

static mkt_receipt receipt(mkt_role role, uint8_t req, uint8_t prov, int chan, uint64_t amount, int64_t created) {
  mkt_receipt r;
  memset(&r, 0, sizeof r);
  r.role = role;
  memset(r.request, req, 16);
  memset(r.provider, prov, 32);
  memset(r.client, 0xc1, 32);
  memset(r.model, 0x3d, 32);
  if (chan) {
    memset(r.channel, chan, 32);
    r.has_channel = 1;
  }
  r.prompt_tokens = 100;
  r.gen_tokens = 200;
  r.price_prompt = 1000;
  r.price_gen = UINT64_MAX;
  r.amount = amount;
  snprintf(r.status, sizeof r.status, "complete");
  r.created = created;
  return r;
}

static void test_receipts(void **state) {
  (void)state;
  store *s = open_db();
  mkt_receipt out[8];
  assert_int_equal(mkt_receipt_list(s, 0, out, 8), 0);
  /* provider writes as payments come in: the same key updates in place */
  mkt_receipt r = receipt(MKT_PROVIDER, 1, 0xa1, 0x55, 10, 1000);
  assert_int_equal(mkt_receipt_put(s, &r), 0);
  r.amount = 999; /* the amount moves only through add_amount (with a voucher) */
  r.gen_tokens = 450;
  snprintf(r.status, sizeof r.status, "partial");
  r.created = 5000; /* created is kept from the first write */
  assert_int_equal(mkt_receipt_put(s, &r), 0);
  assert_int_equal(mkt_receipt_add_amount(s, MKT_PROVIDER, r.request, r.provider, 20), 0);
  assert_int_equal(mkt_receipt_add_amount(s, MKT_PROVIDER, r.request, r.provider, -5), 0);
  assert_int_equal(mkt_receipt_add_amount(s, MKT_PROVIDER, r.request, r.provider, -26), ERR_RANGE); /* below 0 */
  uint8_t nobody[16] = {0};
  assert_int_equal(mkt_receipt_add_amount(s, MKT_PROVIDER, nobody, r.provider, 1), ERR_NOTFOUND);
  assert_int_equal(mkt_receipt_list(s, MKT_PROVIDER, out, 8), 1);
  assert_true(out[0].amount == 25 && out[0].gen_tokens == 450);
  assert_string_equal(out[0].status, "partial");
  assert_int_equal(out[0].created, 1000);
  assert_true(out[0].price_gen == UINT64_MAX);
  assert_true(out[0].has_channel);
  assert_memory_equal(out[0].request, r.request, 16);
  assert_memory_equal(out[0].channel, r.channel, 32);
  /* the same request seen by the client is another row; so is another provider */
  mkt_receipt rc = receipt(MKT_CLIENT, 1, 0xa1, 0x55, 25, 1001);
  assert_int_equal(mkt_receipt_put(s, &rc), 0);
  mkt_receipt r2 = receipt(MKT_PROVIDER, 1, 0xa2, 0x55, UINT64_MAX - 30, 1002);
  assert_int_equal(mkt_receipt_put(s, &r2), 0);
  mkt_receipt free_r = receipt(MKT_CLIENT, 2, 0xa1, 0, 0, 0); /* free: no channel; created = now */
  assert_int_equal(mkt_receipt_put(s, &free_r), 0);
  /* newest first; role filter */
  assert_int_equal(mkt_receipt_list(s, 0, out, 8), 4);
  assert_false(out[0].has_channel);
  assert_true(out[0].created > 1000000000);
  assert_int_equal(out[1].created, 1002);
  assert_int_equal(out[2].created, 1001);
  assert_int_equal(out[3].created, 1000);
  assert_int_equal(mkt_receipt_list(s, MKT_CLIENT, out, 8), 2);
  assert_int_equal(mkt_receipt_list(s, MKT_PROVIDER, out, 1), 1);
  assert_int_equal(out[0].created, 1002);
  assert_int_equal(mkt_receipt_list(s, MKT_PROVIDER, out, 0), 0);
  /* sums per role and channel */
  uint8_t ch[32], other[32];
  memset(ch, 0x55, 32);
  memset(other, 0x66, 32);
  uint64_t sum = 1;
  assert_int_equal(mkt_receipt_sum_channel(s, MKT_PROVIDER, ch, &sum), 0);
  assert_true(sum == UINT64_MAX - 5); /* 25 + (2^64-1 - 30) */
  assert_int_equal(mkt_receipt_sum_channel(s, MKT_CLIENT, ch, &sum), 0);
  assert_true(sum == 25);
  assert_int_equal(mkt_receipt_sum_channel(s, MKT_CLIENT, other, &sum), 0);
  assert_true(sum == 0);
  /* overflow of the sum is reported, not wrapped */
  mkt_receipt r3 = receipt(MKT_PROVIDER, 3, 0xa3, 0x55, 6, 1003);
  assert_int_equal(mkt_receipt_put(s, &r3), 0);
  assert_int_equal(mkt_receipt_sum_channel(s, MKT_PROVIDER, ch, &sum), ERR_RANGE);
  /* invalid receipts are refused before the database */
  mkt_receipt bad = receipt(3, 9, 1, 0, 1, 1);
  assert_int_equal(mkt_receipt_put(s, &bad), ERR_INVAL);
  bad = receipt(MKT_CLIENT, 9, 1, 0, 1, 1);
  snprintf(bad.status, sizeof bad.status, "done");
  assert_int_equal(mkt_receipt_put(s, &bad), ERR_INVAL);
  /* inside a caller's transaction, put joins it: a rollback undoes it */
  assert_int_equal(store_begin(s), 0);
  mkt_receipt r4 = receipt(MKT_CLIENT, 4, 0xa4, 0, 1, 1004);
  assert_int_equal(mkt_receipt_put(s, &r4), 0);
  assert_int_equal(store_rollback(s), 0);
  assert_int_equal(mkt_receipt_list(s, MKT_CLIENT, out, 8), 2);
  /* JSON form */
  json_t *j = mkt_receipt_to_json(&r2);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "role")), "provider");
  assert_string_equal(json_string_value(json_object_get(j, "request")), "01010101010101010101010101010101");
  char id[IDENT_ID_BUF];
  ident_id_encode(r2.provider, id);
  assert_string_equal(json_string_value(json_object_get(j, "provider")), id);
  ident_id_encode(r2.client, id);
  assert_string_equal(json_string_value(json_object_get(j, "client")), id);
  assert_string_equal(json_string_value(json_object_get(j, "channel")),
                      "0x5555555555555555555555555555555555555555555555555555555555555555");
  assert_string_equal(json_string_value(json_object_get(j, "model")),
                      "3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d");
  assert_string_equal(json_string_value(json_object_get(j, "amount")), "18446744073709551585");
  assert_string_equal(json_string_value(json_object_get(j, "price_gen")), "18446744073709551615");
  assert_string_equal(json_string_value(json_object_get(j, "price_prompt")), "1000");
  assert_int_equal(json_integer_value(json_object_get(j, "prompt_tokens")), 100);
  assert_int_equal(json_integer_value(json_object_get(j, "gen_tokens")), 200);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "complete");
  assert_int_equal(json_integer_value(json_object_get(j, "created")), 1002);
  json_decref(j);
  j = mkt_receipt_to_json(&free_r);
  assert_true(json_is_null(json_object_get(j, "channel")));
  assert_string_equal(json_string_value(json_object_get(j, "role")), "client");
  json_decref(j);
  /* durable: visible after reopening */
  store_close(s);
  char path[300], err[512];
  snprintf(path, sizeof path, "%s/m.db", dir);
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(mkt_receipt_list(s, 0, out, 8), 5);
  store_close(s);
  tu_rm_rf(dir);
}

static void test_stats(void **state) {
  (void)state;
  store *s = open_db();
  uint8_t a[32], b[32];
  memset(a, 0xaa, 32);
  memset(b, 0xbb, 32);
  mkt_provider_stats st;
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_memory_equal(st.node, a, 32);
  assert_true(st.successes == 0 && st.failures == 0 && st.last_failure == 0 && st.latency_ms == -1);
  /* success without a latency sample keeps latency unknown */
  assert_int_equal(mkt_stats_record(s, a, 1, -1, 100), 0);
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_int_equal(st.successes, 1);
  assert_true(st.latency_ms == -1);
  /* first sample is taken as is; then EWMA alpha 0.3 */
  assert_int_equal(mkt_stats_record(s, a, 1, 200, 101), 0);
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_true(st.latency_ms == 200);
  assert_int_equal(mkt_stats_record(s, a, 1, 100, 102), 0);
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  double want = 0.3 * 100 + 0.7 * 200; /* 170 */
  assert_true(fabs(st.latency_ms - want) < 1e-9);
  assert_int_equal(mkt_stats_record(s, a, 1, 400, 103), 0);
  want = 0.3 * 400 + 0.7 * want; /* 239 */
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_true(fabs(st.latency_ms - want) < 1e-9);
  assert_int_equal(st.successes, 3 + 0 + 1);
  /* failure: counted with its time; its latency argument is ignored; NaN samples ignored */
  assert_int_equal(mkt_stats_record(s, a, 0, 5, 1234), 0);
  assert_int_equal(mkt_stats_record(s, a, 1, NAN, 1235), 0);
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.last_failure, 1234);
  assert_int_equal(st.successes, 5);
  assert_true(fabs(st.latency_ms - want) < 1e-9);
  /* a later success does not clear last_failure */
  assert_int_equal(mkt_stats_record(s, a, 1, -1, 2000), 0);
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_int_equal(st.last_failure, 1234);
  /* a first event that is a failure creates the row */
  assert_int_equal(mkt_stats_record(s, b, 0, 10, 777), 0);
  assert_int_equal(mkt_stats_get(s, b, &st), 0);
  assert_true(st.failures == 1 && st.successes == 0 && st.last_failure == 777 && st.latency_ms == -1);
  /* verifications */
  assert_int_equal(mkt_stats_verify(s, a, 0), 0);
  assert_int_equal(mkt_stats_verify(s, a, 1), 0);
  assert_int_equal(mkt_stats_verify(s, a, 0), 0);
  uint8_t c[32];
  memset(c, 0xcc, 32);
  assert_int_equal(mkt_stats_verify(s, c, 1), 0);
  assert_int_equal(mkt_stats_get(s, a, &st), 0);
  assert_true(st.verifications == 3 && st.mismatches == 1);
  assert_int_equal(mkt_stats_get(s, c, &st), 0);
  assert_true(st.verifications == 1 && st.mismatches == 1 && st.latency_ms == -1 && st.successes == 0);
  store_close(s);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cost_vectors),   cmocka_unit_test(test_tokens_covered),
      cmocka_unit_test(test_offer_find),     cmocka_unit_test(test_json_round_trip),
      cmocka_unit_test(test_json_malformed), cmocka_unit_test(test_ben_round_trip),
      cmocka_unit_test(test_ben_malformed),  cmocka_unit_test(test_rank),
      cmocka_unit_test(test_receipts),       cmocka_unit_test(test_stats),
  };
  return cmocka_run_group_tests_name("market", tests, NULL, NULL);
}
