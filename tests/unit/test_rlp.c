/* RLP against ethereum/tests RLPTests (../shared/testdata/vectors/ethereum/rlptest.json and
 * invalidRLPTest.json) plus hostile input: every truncation of every valid encoding, depth
 * bombs, oversized length claims and non-canonical integers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "chain/rlp.h"
#include "core/err.h"
#include "core/hex.h"

/* Decimal text → minimal big-endian bytes of any length (the vectors go past 2^256). */
static size_t dec_to_be(const char *s, uint8_t *out, size_t cap) {
  size_t n = 0; /* out[cap-n .. cap) holds the number */
  for (; *s; s++) {
    unsigned carry = (unsigned)(*s - '0');
    for (size_t i = 0; i < n; i++) {
      unsigned v = out[cap - 1 - i] * 10u + carry;
      out[cap - 1 - i] = (uint8_t)v;
      carry = v >> 8;
    }
    while (carry) {
      assert_true(n < cap);
      out[cap - 1 - n++] = (uint8_t)carry;
      carry >>= 8;
    }
  }
  memmove(out, out + cap - n, n);
  return n;
}

static void encode_json(buf *b, json_t *v) {
  if (json_is_array(v)) {
    size_t at = rlp_list_begin(b), i;
    json_t *x;
    json_array_foreach(v, i, x) encode_json(b, x);
    assert_int_equal(rlp_list_end(b, at), 0);
  } else if (json_is_integer(v)) {
    assert_int_equal(rlp_put_u64(b, (uint64_t)json_integer_value(v)), 0);
  } else {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    assert_non_null(s);
    if (s[0] == '#') {
      uint8_t be[64];
      size_t k = dec_to_be(s + 1, be, sizeof be);
      assert_int_equal(rlp_put_bytes(b, be, k), 0);
    } else if (!strncmp(s, "0x", 2)) {
      uint8_t *raw = malloc(n / 2 + 1);
      int k = hex_decode_var(s, n, raw, n / 2 + 1);
      assert_true(k >= 0);
      assert_int_equal(rlp_put_bytes(b, raw, (size_t)k), 0);
      free(raw);
    } else {
      assert_int_equal(rlp_put_bytes(b, s, n), 0);
    }
  }
}

/* Re-encodes a decoded item (round trip). */
static void reencode(buf *b, const rlp_item *it) {
  if (it->kind == RLP_BYTES) {
    assert_int_equal(rlp_put_bytes(b, it->ptr, it->len), 0);
    return;
  }
  size_t at = rlp_list_begin(b);
  rlp_iter r;
  rlp_iter_init(&r, it);
  rlp_item x;
  int rc;
  while ((rc = rlp_iter_next(&r, &x)) == 1) reencode(b, &x);
  assert_int_equal(rc, 0);
  assert_int_equal(rlp_list_end(b, at), 0);
}

static uint8_t *unhex(const char *s, size_t *n_out) {
  size_t n = strlen(s);
  uint8_t *raw = malloc(n / 2 + 1);
  int k = hex_decode_var(s, n, raw, n / 2 + 1);
  assert_true(k >= 0);
  *n_out = (size_t)k;
  return raw;
}

static void test_valid(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/rlptest.json");
  json_error_t jerr; /* bytestring00 holds a NUL: tu_load_json would refuse it */
  json_t *root = json_load_file(path, JSON_ALLOW_NUL, &jerr);
  if (!root) fail_msg("cannot load %s: %s", path, jerr.text);
  const char *name;
  json_t *c;
  int checked = 0;
  json_object_foreach(root, name, c) {
    /* Known upstream defect (vectors README): the header of listofbinaries says 167 bytes
     * but the payload holds 320; the correct encoding starts f90140. Skipped. */
    if (!strcmp(name, "listofbinaries")) {
      /* Our encoding of its input has the header the README gives: f90140, 320 bytes. */
      buf lb;
      buf_init(&lb);
      encode_json(&lb, json_object_get(c, "in"));
      assert_int_equal(lb.len, 3 + 320);
      assert_memory_equal(lb.ptr, "\xf9\x01\x40", 3);
      rlp_item li;
      assert_int_equal(rlp_decode(lb.ptr, lb.len, &li), 0);
      buf_deinit(&lb);
      continue;
    }
    const char *want = json_string_value(json_object_get(c, "out"));
    buf b;
    buf_init(&b);
    encode_json(&b, json_object_get(c, "in"));
    char *hex = malloc(2 * b.len + 1);
    hex_encode(b.ptr, b.len, hex);
    if (strcmp(hex, want + 2)) fail_msg("%s: encoded %s, want %s", name, hex, want);
    free(hex);
    /* Decode the expected bytes and re-encode them. */
    size_t n;
    uint8_t *raw = unhex(want, &n);
    rlp_item it;
    if (rlp_decode(raw, n, &it)) fail_msg("%s: decoder rejected a valid encoding", name);
    buf r;
    buf_init(&r);
    reencode(&r, &it);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.ptr, raw, n);
    /* Every strict prefix must be rejected. */
    for (size_t k = 0; k < n; k++) {
      uint8_t *cut = malloc(k ? k : 1);
      memcpy(cut, raw, k);
      if (!rlp_decode(cut, k, &it)) fail_msg("%s: truncation to %zu accepted", name, k);
      free(cut);
    }
    /* A trailing byte must be rejected. */
    uint8_t *ext = malloc(n + 1);
    memcpy(ext, raw, n);
    ext[n] = 0;
    assert_int_not_equal(rlp_decode(ext, n + 1, &it), 0);
    free(ext);
    buf_deinit(&r);
    buf_deinit(&b);
    free(raw);
    checked++;
  }
  assert_int_equal(checked, 28);
  json_decref(root);
}

static void test_invalid(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/invalidRLPTest.json");
  json_t *root = tu_load_json(path);
  const char *name;
  json_t *c;
  int checked = 0;
  json_object_foreach(root, name, c) {
    const char *s = json_string_value(json_object_get(c, "out")); /* some lack "0x" */
    size_t n;
    uint8_t *raw = unhex(s, &n);
    rlp_item it;
    if (!rlp_decode(raw, n, &it)) fail_msg("%s: invalid RLP accepted", name);
    free(raw);
    checked++;
  }
  assert_int_equal(checked, 17);
  json_decref(root);
}

static void test_hostile(void **state) {
  (void)state;
  rlp_item it;
  /* Depth bomb: 40 nested empty lists, each header 0xc0+len. */
  uint8_t deep[64];
  size_t d = 40;
  for (size_t i = 0; i < d; i++) deep[i] = (uint8_t)(0xc0 + (d - 1 - i));
  assert_int_equal(rlp_decode(deep, d, &it), ERR_TOOBIG);
  /* 20 levels are fine. */
  assert_int_equal(rlp_decode(deep + 20, 20, &it), 0);
  /* Length claims of 2^64-1 and beyond the cap. */
  uint8_t huge[] = {0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  assert_true(rlp_decode(huge, sizeof huge, &it) < 0);
  uint8_t big[] = {0xbb, 0x7f, 0xff, 0xff, 0xff, 0x00};
  assert_int_equal(rlp_decode(big, sizeof big, &it), ERR_TOOBIG);
  /* A list whose items overrun its payload. */
  uint8_t over[] = {0xc2, 0x83, 0x61, 0x62};
  assert_int_equal(rlp_decode(over, sizeof over, &it), ERR_FORMAT);
  /* Empty input. */
  assert_int_equal(rlp_decode(over, 0, &it), ERR_FORMAT);
  /* Integers: leading zeros rejected, 33 bytes out of range, lists are not integers. */
  uint8_t lz[] = {0x82, 0x00, 0x01};
  assert_int_equal(rlp_decode(lz, sizeof lz, &it), 0);
  uint64_t v;
  assert_int_equal(rlp_get_u64(&it, &v), ERR_FORMAT);
  uint8_t nine[] = {0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  assert_int_equal(rlp_decode(nine, sizeof nine, &it), 0);
  assert_int_equal(rlp_get_u64(&it, &v), ERR_RANGE);
  u256 w;
  assert_int_equal(rlp_get_u256(&it, &w), 0);
  assert_int_equal(u256_bits(&w), 65);
  uint8_t lst[] = {0xc0};
  assert_int_equal(rlp_decode(lst, 1, &it), 0);
  assert_int_equal(rlp_get_u64(&it, &v), ERR_FORMAT);
  assert_int_equal(rlp_list_count(&it), 0);
}

static void test_u256_text(void **state) {
  (void)state;
  u256 a, b;
  const char *max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
  assert_int_equal(u256_from_dec(max, strlen(max), &a), 0);
  char dec[U256_DEC_BUF], hx[U256_HEX_BUF];
  u256_to_dec(&a, dec);
  assert_string_equal(dec, max);
  u256_to_hex(&a, hx);
  assert_int_equal(strlen(hx), 66);
  const char *over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
  assert_int_equal(u256_from_dec(over, strlen(over), &b), ERR_RANGE);
  b = u256_from_u64(1);
  assert_int_equal(u256_add(&b, &a, &b), ERR_RANGE);
  assert_int_equal(u256_from_hex("0x0", 3, &b), 0);
  u256_to_hex(&b, hx);
  assert_string_equal(hx, "0x0");
  u256_to_dec(&b, dec);
  assert_string_equal(dec, "0");
  assert_int_equal(u256_from_str("0xde0b6b3a7640000", 17, &b), 0);
  u256_to_dec(&b, dec);
  assert_string_equal(dec, "1000000000000000000");
  assert_int_equal(u256_sub(&b, &b, &a), ERR_RANGE);
  assert_int_equal(u256_from_dec("12a", 3, &b), ERR_FORMAT);
  assert_int_equal(u256_from_dec("", 0, &b), ERR_FORMAT);
  b = u256_from_u64(UINT64_MAX);
  assert_int_equal(u256_mul_u64(&b, &b, UINT64_MAX), 0);
  u256_to_dec(&b, dec);
  assert_string_equal(dec, "340282366920938463426481119284349108225");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_u256_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
