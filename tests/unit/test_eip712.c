/* EIP-712 against ethereum/eip712_mail_example.json (encodeType, typeHash, encodeData,
 * hashStruct, domain separator, digest, signature, recovery), personal_sign digests against
 * singularitynet/mpe_claim_signatures.json, and the apiary voucher (known answer produced
 * by foundry `cast wallet sign --data`, plus the generic JSON path cross-check). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"
#include "crypto/keccak.h"

static const char *jstr(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  if (!s) fail_msg("missing %s", k);
  return s;
}

static void expect_hex(const uint8_t *p, size_t n, const char *want, const char *what) {
  char *h = malloc(2 * n + 1);
  hex_encode(p, n, h);
  if (!strncmp(want, "0x", 2)) want += 2;
  if (strcasecmp(h, want)) fail_msg("%s: got %s want %s", what, h, want);
  free(h);
}

static void unhex(const char *s, uint8_t *out, size_t n) { assert_int_equal(hex_decode(s, strlen(s), out, n), 0); }

static void test_mail(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/eip712_mail_example.json");
  json_t *root = tu_load_json(path);
  json_t *td = json_object_get(root, "typedData"), *ex = json_object_get(root, "expected");
  json_t *types = json_object_get(td, "types");
  buf b;
  buf_init(&b);
  assert_int_equal(eip712_encode_type(types, "Mail", &b), 0);
  assert_int_equal(b.len, strlen(jstr(ex, "encodeType_Mail")));
  assert_memory_equal(b.ptr, jstr(ex, "encodeType_Mail"), b.len);
  uint8_t h[32];
  assert_int_equal(eip712_type_hash(types, "Mail", h), 0);
  expect_hex(h, 32, jstr(ex, "typeHash_Mail"), "typeHash");
  buf_reset(&b);
  assert_int_equal(eip712_encode_data(types, "Mail", json_object_get(td, "message"), &b), 0);
  expect_hex(b.ptr, b.len, jstr(ex, "encodeData_Mail"), "encodeData");
  assert_int_equal(eip712_hash_struct(types, "Mail", json_object_get(td, "message"), h), 0);
  expect_hex(h, 32, jstr(ex, "hashStruct_Mail"), "hashStruct");
  assert_int_equal(eip712_domain_separator(td, h), 0);
  expect_hex(h, 32, jstr(ex, "domainSeparator"), "domainSeparator");
  uint8_t d[32];
  assert_int_equal(eip712_digest_json(td, d), 0);
  expect_hex(d, 32, jstr(ex, "digest"), "digest");
  /* Key = keccak256("cow"). */
  uint8_t sk[32];
  keccak256("cow", 3, sk);
  expect_hex(sk, 32, jstr(ex, "privateKey"), "key");
  wallet w;
  assert_int_equal(wallet_from_secret(sk, &w), 0);
  expect_hex(w.addr, 20, jstr(ex, "address"), "address");
  uint8_t sig[65], who[20];
  assert_int_equal(eip712_sign(&w, d, sig), 0);
  expect_hex(sig, 65, jstr(ex, "signature_65_bytes_rsv"), "signature");
  assert_int_equal(sig[64], json_integer_value(json_object_get(ex, "v")));
  assert_int_equal(eip712_recover(d, sig, who), 0);
  assert_memory_equal(who, w.addr, 20);
  /* Without an EIP712Domain entry the domain type is derived from the present fields. */
  json_t *copy = json_deep_copy(td);
  json_object_del(json_object_get(copy, "types"), "EIP712Domain");
  assert_int_equal(eip712_domain_separator(copy, h), 0);
  expect_hex(h, 32, jstr(ex, "domainSeparator"), "derived domainSeparator");
  /* Hostile: a missing member, a wrong type and an unknown type are clean errors. */
  json_object_del(json_object_get(json_object_get(copy, "message"), "from"), "wallet");
  assert_int_equal(eip712_digest_json(copy, d), ERR_FORMAT);
  json_object_set_new(json_object_get(json_object_get(copy, "message"), "from"), "wallet", json_integer(5));
  assert_int_equal(eip712_digest_json(copy, d), ERR_FORMAT);
  json_array_append_new(json_object_get(json_object_get(copy, "types"), "Mail"),
                        json_pack("{s:s,s:s}", "name", "x", "type", "fixed128x18"));
  json_object_set_new(json_object_get(copy, "message"), "x", json_integer(1));
  assert_true(eip712_digest_json(copy, d) < 0);
  json_decref(copy);
  /* Tampering with the signature changes the signer or fails. */
  sig[5] ^= 1;
  if (!eip712_recover(d, sig, who)) assert_memory_not_equal(who, w.addr, 20);
  wallet_wipe(&w);
  buf_deinit(&b);
  json_decref(root);
}

/* Types the mail example does not cover: arrays, ints, bytes, bool, recursion guard. */
static void test_more_types(void **state) {
  (void)state;
  json_error_t e;
  json_t *td = json_loads(
      "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"}],"
      "\"T\":[{\"name\":\"a\",\"type\":\"int8\"},{\"name\":\"b\",\"type\":\"uint256[]\"},"
      "{\"name\":\"c\",\"type\":\"bytes\"},{\"name\":\"d\",\"type\":\"bool\"},{\"name\":\"e\",\"type\":\"S[2]\"},"
      "{\"name\":\"f\",\"type\":\"bytes4\"}],"
      "\"S\":[{\"name\":\"x\",\"type\":\"uint8\"}]},"
      "\"primaryType\":\"T\",\"domain\":{\"name\":\"t\"},"
      "\"message\":{\"a\":-128,\"b\":[\"1\",\"0x2\"],\"c\":\"0x0102\",\"d\":true,\"e\":[{\"x\":1},{\"x\":255}],"
      "\"f\":\"0xdeadbeef\"}}",
      0, &e);
  assert_non_null(td);
  buf b;
  buf_init(&b);
  assert_int_equal(eip712_encode_type(json_object_get(td, "types"), "T", &b), 0);
  buf_append(&b, "", 1);
  assert_string_equal((char *)b.ptr, "T(int8 a,uint256[] b,bytes c,bool d,S[2] e,bytes4 f)S(uint8 x)");
  buf_reset(&b);
  assert_int_equal(eip712_encode_data(json_object_get(td, "types"), "T", json_object_get(td, "message"), &b), 0);
  assert_int_equal(b.len, 7 * 32);
  /* int8 -128 → 0xff..80 */
  assert_int_equal(b.ptr[32], 0xff);
  assert_int_equal(b.ptr[63], 0x80);
  /* b = keccak(word(1) || word(2)) */
  uint8_t words[64] = {0}, h[32];
  words[31] = 1;
  words[63] = 2;
  keccak256(words, 64, h);
  assert_memory_equal(b.ptr + 64, h, 32);
  assert_int_equal(b.ptr[4 * 32 + 31], 1);
  assert_memory_equal(b.ptr + 6 * 32, "\xde\xad\xbe\xef\0\0", 6);
  uint8_t d[32];
  assert_int_equal(eip712_digest_json(td, d), 0);
  /* Out of range: int8 -129, uint8 256, wrong fixed array length. */
  json_object_set_new(json_object_get(td, "message"), "a", json_integer(-129));
  assert_int_equal(eip712_digest_json(td, d), ERR_RANGE);
  json_object_set_new(json_object_get(td, "message"), "a", json_integer(127));
  assert_int_equal(eip712_digest_json(td, d), 0);
  json_object_set_new(json_object_get(td, "message"), "a", json_integer(128));
  assert_int_equal(eip712_digest_json(td, d), ERR_RANGE);
  json_object_set_new(json_object_get(td, "message"), "a", json_integer(0));
  json_array_append_new(json_object_get(json_object_get(td, "message"), "e"), json_pack("{s:i}", "x", 1));
  assert_int_equal(eip712_digest_json(td, d), ERR_FORMAT);
  json_decref(td);
  /* A self-referencing struct nested too deep is refused, not a stack overflow. */
  json_t *rec = json_loads("{\"types\":{\"R\":[{\"name\":\"r\",\"type\":\"R[]\"}]},\"primaryType\":\"R\","
                           "\"domain\":{},\"message\":{\"r\":[]}}", 0, &e);
  assert_non_null(rec);
  json_t *msg = json_object_get(rec, "message");
  for (int i = 0; i < 40; i++) {
    json_t *outer = json_pack("{s:[O]}", "r", msg);
    json_object_set_new(rec, "message", outer);
    msg = outer;
  }
  assert_int_equal(eip712_hash_struct(json_object_get(rec, "types"), "R", msg, d), ERR_TOOBIG);
  json_decref(rec);
  buf_deinit(&b);
}

static void test_personal_mpe(void **state) {
  (void)state;
  uint8_t d[32];
  /* personal_sign of the empty message and of "hello" (well-known values). */
  eth_personal_digest("", 0, d);
  expect_hex(d, 32, "5f35dce98ba4fba25530a026ed80b2cecdaa31091ba4958b99b52ea1d068adad", "empty");
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/singularitynet/mpe_claim_signatures.json");
  json_t *root = tu_load_json(path);
  json_t *vs = json_object_get(root, "vectors"), *v;
  size_t i;
  assert_int_equal(json_array_size(vs), 2);
  json_array_foreach(vs, i, v) {
    uint8_t msg[135];
    memcpy(msg, "__MPE_claim_message", 19);
    unhex(jstr(v, "mpe_contract"), msg + 19, 20);
    const char *f[3] = {"channelId", "nonce", "plannedAmount"};
    for (int k = 0; k < 3; k++) {
      u256 x;
      const char *s = jstr(v, f[k]);
      assert_int_equal(u256_from_dec(s, strlen(s), &x), 0);
      u256_to_be32(&x, msg + 39 + 32 * k);
    }
    expect_hex(msg, sizeof msg, jstr(v, "packed_message"), "packed");
    uint8_t h[32];
    keccak256(msg, sizeof msg, h);
    expect_hex(h, 32, jstr(v, "message_hash"), "message hash");
    eth_personal_digest(h, 32, d);
    expect_hex(d, 32, jstr(v, "eth_signed_digest"), "digest");
    uint8_t sk[32], sig[65], who[20], want[20];
    unhex(jstr(v, "signer_privateKey"), sk, 32);
    wallet w;
    assert_int_equal(wallet_from_secret(sk, &w), 0);
    assert_int_equal(eip712_sign(&w, d, sig), 0);
    expect_hex(sig, 65, jstr(v, "signature_65_rsv"), "signature");
    unhex(jstr(v, "signer_address"), want, 20);
    assert_int_equal(eip712_recover(d, sig, who), 0);
    assert_memory_equal(who, want, 20);
    wallet_wipe(&w);
  }
  json_decref(root);
}

static void test_voucher(void **state) {
  (void)state;
  uint8_t sk[32], contract[20], chan[32], sig[65], who[20], d[32], d2[32];
  unhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", sk, 32);
  unhex("5FbDB2315678afecb367f032d93F642f64180aa3", contract, 20);
  memset(chan, 1, 32);
  u256 amount;
  assert_int_equal(u256_from_dec("1000000000000000000", 19, &amount), 0);
  wallet w;
  assert_int_equal(wallet_from_secret(sk, &w), 0);
  assert_int_equal(eip712_voucher_sign(&w, 31337, contract, chan, &amount, sig), 0);
  /* Known answer: foundry cast 1.7.1 `cast wallet sign --data` on the same typed data. */
  expect_hex(sig, 65,
             "6bd9ade20f4b005e360af56ae2bb6a7562ff01abc88c3f0baef0f19312b462a637898bf0644b3da1b392db0641c289c68e77d8ff9d"
             "06412501ba93e4abacf25e1b",
             "voucher signature");
  assert_int_equal(eip712_voucher_signer(31337, contract, chan, &amount, sig, who), 0);
  assert_memory_equal(who, w.addr, 20);
  /* The generic JSON path gives the same digest. */
  json_error_t e;
  json_t *td = json_loads(
      "{\"types\":{\"EIP712Domain\":[{\"name\":\"name\",\"type\":\"string\"},{\"name\":\"version\",\"type\":\"string\"},"
      "{\"name\":\"chainId\",\"type\":\"uint256\"},{\"name\":\"verifyingContract\",\"type\":\"address\"}],"
      "\"Voucher\":[{\"name\":\"channelId\",\"type\":\"bytes32\"},{\"name\":\"amount\",\"type\":\"uint256\"}]},"
      "\"primaryType\":\"Voucher\",\"domain\":{\"name\":\"apiary-escrow\",\"version\":\"1\",\"chainId\":31337,"
      "\"verifyingContract\":\"0x5FbDB2315678afecb367f032d93F642f64180aa3\"},"
      "\"message\":{\"channelId\":\"0x0101010101010101010101010101010101010101010101010101010101010101\","
      "\"amount\":\"1000000000000000000\"}}",
      0, &e);
  assert_non_null(td);
  assert_int_equal(eip712_digest_json(td, d2), 0);
  eip712_voucher_digest(31337, contract, chan, &amount, d);
  assert_memory_equal(d, d2, 32);
  json_decref(td);
  /* Another amount, chain or contract → another signer. */
  u256 more = u256_from_u64(1);
  u256_add(&more, &more, &amount);
  assert_int_equal(eip712_voucher_signer(31337, contract, chan, &more, sig, who), 0);
  assert_memory_not_equal(who, w.addr, 20);
  if (!eip712_voucher_signer(1, contract, chan, &amount, sig, who)) assert_memory_not_equal(who, w.addr, 20);
  /* Bad v and high s are refused. */
  sig[64] = 29;
  assert_int_equal(eip712_voucher_signer(31337, contract, chan, &amount, sig, who), ERR_CRYPTO);
  sig[64] = 27;
  memset(sig + 32, 0xff, 32);
  assert_int_equal(eip712_voucher_signer(31337, contract, chan, &amount, sig, who), ERR_CRYPTO);
  wallet_wipe(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mail),
      cmocka_unit_test(test_more_types),
      cmocka_unit_test(test_personal_mpe),
      cmocka_unit_test(test_voucher),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
