/* Solidity ABI: selectors/topics, encoding against known answers (the ABI spec examples
 * f/g, re-derived with foundry `cast calldata`), decoding round trips, event logs, revert
 * reasons and hostile data (truncation, bad offsets, huge lengths, dirty high bits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "chain/abi.h"
#include "core/err.h"
#include "core/hex.h"

static void expect_hex(const uint8_t *p, size_t n, const char *want) {
  char *h = malloc(2 * n + 1);
  hex_encode(p, n, h);
  if (!strncmp(want, "0x", 2)) want += 2;
  if (strcmp(h, want)) fail_msg("got  %s\nwant %s", h, want);
  free(h);
}

static uint8_t *unhex(const char *s, size_t *n) {
  size_t l = strlen(s);
  uint8_t *b = malloc(l / 2 + 1);
  int k = hex_decode_var(s, l, b, l / 2 + 1);
  assert_true(k >= 0);
  *n = (size_t)k;
  return b;
}

static const char F_WANT[] =
    "0x8be65246"
    "0000000000000000000000000000000000000000000000000000000000000123"
    "0000000000000000000000000000000000000000000000000000000000000080"
    "3132333435363738393000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000e0"
    "0000000000000000000000000000000000000000000000000000000000000002"
    "0000000000000000000000000000000000000000000000000000000000000456"
    "0000000000000000000000000000000000000000000000000000000000000789"
    "000000000000000000000000000000000000000000000000000000000000000d"
    "48656c6c6f2c20776f726c642100000000000000000000000000000000000000";

static const char G_WANT[] =
    "0x2289b18c"
    "0000000000000000000000000000000000000000000000000000000000000040"
    "0000000000000000000000000000000000000000000000000000000000000140"
    "0000000000000000000000000000000000000000000000000000000000000002"
    "0000000000000000000000000000000000000000000000000000000000000040"
    "00000000000000000000000000000000000000000000000000000000000000a0"
    "0000000000000000000000000000000000000000000000000000000000000002"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0000000000000000000000000000000000000000000000000000000000000002"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "0000000000000000000000000000000000000000000000000000000000000003"
    "0000000000000000000000000000000000000000000000000000000000000003"
    "0000000000000000000000000000000000000000000000000000000000000060"
    "00000000000000000000000000000000000000000000000000000000000000a0"
    "00000000000000000000000000000000000000000000000000000000000000e0"
    "0000000000000000000000000000000000000000000000000000000000000003"
    "6f6e650000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000003"
    "74776f0000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000005"
    "7468726565000000000000000000000000000000000000000000000000000000";

static const char H_WANT[] =
    "0x4c62fb2f"
    "0000000000000000000000000000000000000000000000000000000000000080"
    "0000000000000000000000001111111111111111111111111111111111111111"
    "0000000000000000000000002222222222222222222222222222222222222222"
    "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffd"
    "0000000000000000000000000000000000000000000000000000000000000007"
    "0000000000000000000000000000000000000000000000000000000000000040"
    "0000000000000000000000000000000000000000000000000000000000000001"
    "7800000000000000000000000000000000000000000000000000000000000000";

static void test_selectors(void **state) {
  (void)state;
  uint8_t s[4], t[32];
  assert_int_equal(abi_selector("transfer(address,uint256)", s), 0);
  expect_hex(s, 4, "a9059cbb");
  /* Names, spaces, "uint" aliases and data locations are canonicalized away. */
  assert_int_equal(abi_selector("transfer(address to, uint amount)", s), 0);
  expect_hex(s, 4, "a9059cbb");
  assert_int_equal(abi_event_topic("Transfer(address indexed from, address indexed to, uint256 value)", t), 0);
  expect_hex(t, 32, "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  assert_int_equal(abi_selector("Error(string)", s), 0);
  expect_hex(s, 4, "08c379a0");
  assert_int_equal(abi_selector("Panic(uint256)", s), 0);
  expect_hex(s, 4, "4e487b71");
  abi_sig g;
  assert_int_equal(abi_sig_parse("g(uint[][], string[] memory names, (int,bytes3)[2])", &g), 0);
  assert_string_equal(g.canonical, "g(uint256[][],string[],(int256,bytes3)[2])");
  /* Bad signatures. */
  assert_int_equal(abi_sig_parse("f(uint7)", &g), ERR_FORMAT);
  assert_int_equal(abi_sig_parse("f(bytes33)", &g), ERR_FORMAT);
  assert_int_equal(abi_sig_parse("f(uint256", &g), ERR_FORMAT);
  assert_int_equal(abi_sig_parse("f(uint256))", &g), ERR_FORMAT);
  assert_int_equal(abi_sig_parse("f(foo)", &g), ERR_FORMAT);
  assert_int_equal(abi_sig_parse("f(fixed128x18)", &g), ERR_UNSUPPORTED);
  assert_int_equal(abi_sig_parse("f(uint[a])", &g), ERR_FORMAT);
  assert_int_equal(abi_sig_parse("f(((((((((((((((((((uint)))))))))))))))))))", &g), ERR_TOOBIG);
}

static void test_encode_known(void **state) {
  (void)state;
  buf b;
  buf_init(&b);
  /* f(uint256,uint32[],bytes10,bytes) */
  abi_value arr[2] = {abi_uint(0x456), abi_uint(0x789)};
  abi_value f[4] = {abi_uint(0x123), abi_array(arr, 2), abi_fixed_bytes((const uint8_t *)"1234567890", 10),
                    abi_bytes((const uint8_t *)"Hello, world!", 13)};
  assert_int_equal(abi_encode_call(&b, "f(uint256,uint32[],bytes10,bytes)", f, 4), 0);
  expect_hex(b.ptr, b.len, F_WANT);
  /* Decode it back. */
  abi_value pool[32];
  const abi_value *t;
  int used = abi_decode("(uint256,uint32[],bytes10,bytes)", b.ptr + 4, b.len - 4, pool, 32, &t);
  assert_true(used > 0);
  assert_int_equal(t->n, 4);
  uint64_t x;
  assert_int_equal(abi_get_u64(&t->items[0], &x), 0);
  assert_int_equal(x, 0x123);
  assert_int_equal(t->items[1].n, 2);
  assert_int_equal(abi_get_u64(&t->items[1].items[1], &x), 0);
  assert_int_equal(x, 0x789);
  assert_memory_equal(t->items[2].b, "1234567890", 10);
  assert_int_equal(t->items[3].len, 13);
  assert_memory_equal(t->items[3].ptr, "Hello, world!", 13);

  /* g(uint256[][],string[]) */
  buf_reset(&b);
  abi_value in0[2] = {abi_uint(1), abi_uint(2)}, in1[1] = {abi_uint(3)};
  abi_value outer[2] = {abi_array(in0, 2), abi_array(in1, 1)};
  abi_value strs[3] = {abi_string("one"), abi_string("two"), abi_string("three")};
  abi_value g[2] = {abi_array(outer, 2), abi_array(strs, 3)};
  assert_int_equal(abi_encode_call(&b, "g(uint256[][],string[])", g, 2), 0);
  expect_hex(b.ptr, b.len, G_WANT);
  used = abi_decode("(uint256[][],string[])", b.ptr + 4, b.len - 4, pool, 32, &t);
  assert_true(used > 0);
  assert_int_equal(t->items[0].n, 2);
  assert_int_equal(t->items[0].items[0].n, 2);
  assert_int_equal(abi_get_u64(&t->items[0].items[1].items[0], &x), 0);
  assert_int_equal(x, 3);
  assert_int_equal(t->items[1].items[2].len, 5);
  assert_memory_equal(t->items[1].items[2].ptr, "three", 5);
  /* A pool that is too small is a clean ERR_TOOBIG. */
  assert_int_equal(abi_decode("(uint256[][],string[])", b.ptr + 4, b.len - 4, pool, 5, &t), ERR_TOOBIG);

  /* h((uint256,string),address[2],int8) */
  buf_reset(&b);
  uint8_t a1[20], a2[20];
  memset(a1, 0x11, 20);
  memset(a2, 0x22, 20);
  abi_value tup[2] = {abi_uint(7), abi_string("x")};
  abi_value addrs[2] = {abi_address(a1), abi_address(a2)};
  abi_value h[3] = {abi_tuple(tup, 2), abi_array(addrs, 2), abi_int(-3)};
  assert_int_equal(abi_encode_call(&b, "h((uint256,string),address[2],int8)", h, 3), 0);
  expect_hex(b.ptr, b.len, H_WANT);
  used = abi_decode("((uint256,string),address[2],int8)", b.ptr + 4, b.len - 4, pool, 32, &t);
  assert_true(used > 0);
  int64_t i64;
  assert_int_equal(abi_get_i64(&t->items[2], &i64), 0);
  assert_int_equal(i64, -3);
  assert_memory_equal(t->items[1].items[1].b, a2, 20);
  assert_memory_equal(t->items[0].items[1].ptr, "x", 1);

  /* Type/value mismatches and ranges. */
  buf_reset(&b);
  abi_value bad1[1] = {abi_uint(256)};
  assert_int_equal(abi_encode(&b, "(uint8)", bad1, 1), ERR_RANGE);
  abi_value bad2[1] = {abi_int(-129)};
  assert_int_equal(abi_encode(&b, "(int8)", bad2, 1), ERR_RANGE);
  abi_value bad3[1] = {abi_string("x")};
  assert_int_equal(abi_encode(&b, "(uint8)", bad3, 1), ERR_INVAL);
  assert_int_equal(abi_encode(&b, "(uint8,uint8)", bad1, 1), ERR_INVAL);
  abi_value bad4[1] = {abi_array(arr, 2)};
  assert_int_equal(abi_encode(&b, "(uint256[3])", bad4, 1), ERR_INVAL);
  assert_int_equal(b.len, 0); /* nothing left behind on failure */
  abi_value ok[1] = {abi_int(-128)};
  assert_int_equal(abi_encode(&b, "(int8)", ok, 1), 0);
  buf_deinit(&b);
}

static void test_hostile(void **state) {
  (void)state;
  size_t n;
  uint8_t *d = unhex(F_WANT, &n);
  abi_value pool[64];
  const abi_value *t;
  const char *ty = "(uint256,uint32[],bytes10,bytes)";
  /* Every truncation into the encoding fails cleanly. (Like Solidity's decoder, the zero
   * padding after the last bytes value may be missing: the 19 pad bytes of "Hello, world!".) */
  for (size_t k = 0; k < n - 4 - 19; k++) assert_true(abi_decode(ty, d + 4, k, pool, 64, &t) < 0);
  /* Offset pointing past the end. */
  uint8_t *c = malloc(n);
  memcpy(c, d, n);
  c[4 + 32 + 31] = 0xff;
  assert_int_equal(abi_decode(ty, c + 4, n - 4, pool, 64, &t), ERR_FORMAT);
  /* Array length 2^64-1. */
  memcpy(c, d, n);
  memset(c + 4 + 128 + 8, 0xff, 24);
  assert_int_equal(abi_decode(ty, c + 4, n - 4, pool, 64, &t), ERR_FORMAT);
  /* uint32 element with dirty high bits. */
  memcpy(c, d, n);
  c[4 + 160 + 27] = 1;
  assert_int_equal(abi_decode(ty, c + 4, n - 4, pool, 64, &t), ERR_FORMAT);
  /* bytes10 with a non-zero pad byte. */
  memcpy(c, d, n);
  c[4 + 64 + 20] = 1;
  assert_int_equal(abi_decode(ty, c + 4, n - 4, pool, 64, &t), ERR_FORMAT);
  /* Bytes length past the end. */
  memcpy(c, d, n);
  c[4 + 224 + 31] = 0x40;
  assert_int_equal(abi_decode(ty, c + 4, n - 4, pool, 64, &t), ERR_FORMAT);
  free(c);
  free(d);
  /* Absurd static sizes saturate instead of overflowing. */
  uint8_t zeros[64] = {0};
  assert_int_equal(abi_decode("(uint256[1000000][1000000][1000000][1000000])", zeros, 64, pool, 64, &t), ERR_FORMAT);
  /* bool 2 and address with dirty bits. */
  uint8_t w[32] = {0};
  w[31] = 2;
  assert_int_equal(abi_decode("(bool)", w, 32, pool, 4, &t), ERR_FORMAT);
  w[31] = 1;
  assert_true(abi_decode("(bool)", w, 32, pool, 4, &t) > 0);
  w[0] = 1;
  assert_int_equal(abi_decode("(address)", w, 32, pool, 4, &t), ERR_FORMAT);
  /* Empty input for a non-empty tuple; empty tuple from nothing. */
  assert_int_equal(abi_decode("(uint256)", w, 0, pool, 4, &t), ERR_FORMAT);
  assert_true(abi_decode("()", w, 0, pool, 4, &t) > 0);
  /* Aliased offsets: many elements pointing at the same big array exhaust the pool, not memory. */
  uint8_t big[32 * 8] = {0};
  big[31] = 0x20;      /* offset of the outer array */
  big[63] = 4;         /* outer length 4 */
  for (int i = 0; i < 4; i++) big[64 + 32 * i + 31] = 0x80; /* every inner points to +0x80 */
  big[64 + 128 + 31] = 1; /* inner length 1 */
  assert_true(abi_decode("(uint256[][])", big, sizeof big, pool, 64, &t) > 0);
  assert_int_equal(abi_decode("(uint256[][])", big, sizeof big, pool, 6, &t), ERR_TOOBIG);
}

static void test_log_and_revert(void **state) {
  (void)state;
  uint8_t topics[3][32] = {{0}};
  const char *ev = "Transfer(address indexed from, address indexed to, uint256 value)";
  assert_int_equal(abi_event_topic(ev, topics[0]), 0);
  memset(topics[1] + 12, 0xaa, 20);
  memset(topics[2] + 12, 0xbb, 20);
  uint8_t data[32] = {0};
  data[31] = 42;
  abi_value pool[16];
  const abi_value *t;
  assert_true(abi_decode_log(ev, (const uint8_t(*)[32])topics, 3, data, 32, pool, 16, &t) > 0);
  assert_int_equal(t->n, 3);
  assert_int_equal(t->items[0].kind, ABI_ADDRESS);
  assert_int_equal(t->items[1].b[0], 0xbb);
  uint64_t x;
  assert_int_equal(abi_get_u64(&t->items[2], &x), 0);
  assert_int_equal(x, 42);
  /* Wrong topic 0 or count. */
  assert_int_equal(abi_decode_log(ev, (const uint8_t(*)[32])topics, 2, data, 32, pool, 16, &t), ERR_FORMAT);
  topics[0][0] ^= 1;
  assert_int_equal(abi_decode_log(ev, (const uint8_t(*)[32])topics, 3, data, 32, pool, 16, &t), ERR_FORMAT);
  /* An indexed string yields its hash. */
  const char *ev2 = "Named(string indexed name, string note)";
  assert_int_equal(abi_event_topic(ev2, topics[0]), 0);
  buf b;
  buf_init(&b);
  abi_value note[1] = {abi_string("hi")};
  assert_int_equal(abi_encode(&b, "(string)", note, 1), 0);
  assert_true(abi_decode_log(ev2, (const uint8_t(*)[32])topics, 2, b.ptr, b.len, pool, 16, &t) > 0);
  assert_int_equal(t->items[0].kind, ABI_FIXED_BYTES);
  assert_int_equal(t->items[0].len, 32);
  assert_memory_equal(t->items[1].ptr, "hi", 2);

  /* Revert data. */
  char why[ABI_REASON_MAX];
  size_t n;
  uint8_t *r = unhex("0x08c379a0"
                     "0000000000000000000000000000000000000000000000000000000000000020"
                     "0000000000000000000000000000000000000000000000000000000000000004"
                     "6e6f706500000000000000000000000000000000000000000000000000000000",
                     &n);
  assert_int_equal(abi_revert_reason(r, n, why, sizeof why), 0);
  assert_string_equal(why, "nope");
  /* Truncated Error(string) degrades to the custom-error text. */
  assert_int_equal(abi_revert_reason(r, n - 30, why, sizeof why), 1);
  assert_string_equal(why, "custom error 0x08c379a0 (70 bytes)");
  free(r);
  r = unhex("0x4e487b710000000000000000000000000000000000000000000000000000000000000011", &n);
  assert_int_equal(abi_revert_reason(r, n, why, sizeof why), 0);
  assert_string_equal(why, "panic 0x11: arithmetic overflow or underflow");
  free(r);
  assert_int_equal(abi_revert_reason(NULL, 0, why, sizeof why), 1);
  assert_string_equal(why, "reverted without a reason");
  assert_int_equal(abi_revert_reason((const uint8_t *)"\x12\x34", 2, why, sizeof why), 1);
  /* A reason longer than the buffer is cut, control bytes replaced. */
  buf_reset(&b);
  abi_value msg[1] = {abi_string("a\nb")};
  assert_int_equal(abi_encode_call(&b, "Error(string)", msg, 1), 0);
  assert_int_equal(abi_revert_reason(b.ptr, b.len, why, 3), 0);
  assert_string_equal(why, "a?");
  buf_deinit(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_selectors),
      cmocka_unit_test(test_encode_known),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_log_and_revert),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
