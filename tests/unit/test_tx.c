/* Transactions against ethereum/eip1559_signed_txs.json (5 cases: unsigned payload, signing
 * hash, raw signed tx, tx hash, sender; byte-exact) and ethereum/eip155_example.json, plus
 * decode round trips and hostile raw input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "chain/rlp.h"
#include "chain/tx.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/keccak.h"

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  if (!s) fail_msg("missing %s", k);
  return s;
}

static u256 ju256(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  u256 r;
  if (json_is_integer(v)) return u256_from_u64((uint64_t)json_integer_value(v));
  const char *s = json_string_value(v);
  assert_non_null(s);
  assert_int_equal(u256_from_str(s, strlen(s), &r), 0);
  return r;
}

static uint64_t ju64(json_t *o, const char *k) {
  uint64_t x;
  u256 v = ju256(o, k);
  assert_int_equal(u256_to_u64(&v, &x), 0);
  return x;
}

static void expect_hex(const uint8_t *p, size_t n, const char *want, const char *what) {
  char *h = malloc(2 * n + 1);
  hex_encode(p, n, h);
  if (strncmp(want, "0x", 2) == 0) want += 2;
  if (strcasecmp(h, want)) fail_msg("%s: got %s want %s", what, h, want);
  free(h);
}

static void key_from_hex(const char *s, wallet *w) {
  uint8_t sk[32];
  assert_int_equal(hex_decode(s, strlen(s), sk, 32), 0);
  assert_int_equal(wallet_from_secret(sk, w), 0);
}

static void check_decode(const buf *raw, const tx *orig, const uint8_t from[20]) {
  tx d;
  assert_int_equal(tx_decode(raw->ptr, raw->len, &d), 0);
  assert_int_equal(d.type, orig->type);
  assert_int_equal(d.chain_id, orig->chain_id);
  assert_int_equal(d.nonce, orig->nonce);
  assert_int_equal(d.gas_limit, orig->gas_limit);
  assert_int_equal(d.has_to, orig->has_to);
  assert_int_equal(d.data_len, orig->data_len);
  assert_int_equal(u256_cmp(&d.value, &orig->value), 0);
  assert_memory_equal(d.r, orig->r, 32);
  assert_memory_equal(d.s, orig->s, 32);
  uint8_t who[20];
  assert_int_equal(tx_sender(&d, who), 0);
  assert_memory_equal(who, from, 20);
  buf re;
  buf_init(&re);
  assert_int_equal(tx_encode_signed(&d, &re), 0);
  assert_int_equal(re.len, raw->len);
  assert_memory_equal(re.ptr, raw->ptr, raw->len);
  buf_deinit(&re);
  /* Every truncation fails cleanly. */
  for (size_t k = 0; k < raw->len; k++) assert_true(tx_decode(raw->ptr, k, &d) < 0);
}

static void test_eip1559(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/eip1559_signed_txs.json");
  json_t *root = tu_load_json(path);
  json_t *cases = json_object_get(root, "cases"), *c;
  size_t i;
  assert_int_equal(json_array_size(cases), 5);
  json_array_foreach(cases, i, c) {
    const char *name = jstr(c, "name");
    json_t *j = json_object_get(c, "tx");
    wallet w;
    key_from_hex(jstr(c, "privateKey"), &w);
    tx t;
    tx_init(&t, TX_EIP1559, ju64(j, "chainId"));
    t.nonce = ju64(j, "nonce");
    t.max_priority_fee = ju256(j, "maxPriorityFeePerGas");
    t.max_fee = ju256(j, "maxFeePerGas");
    t.gas_limit = ju64(j, "gasLimit");
    t.value = ju256(j, "value");
    const char *to = json_string_value(json_object_get(j, "to"));
    if (to) {
      t.has_to = true;
      assert_int_equal(hex_decode(to, strlen(to), t.to, 20), 0);
    }
    uint8_t data[256];
    const char *ds = jstr(j, "data");
    int dn = hex_decode_var(ds, strlen(ds), data, sizeof data);
    assert_true(dn >= 0);
    t.data = data;
    t.data_len = (size_t)dn;
    json_t *al = json_object_get(j, "accessList"), *e;
    tx_access acc[4];
    uint8_t keys[4][8][32];
    size_t ai;
    json_array_foreach(al, ai, e) {
      const char *a = jstr(e, "address");
      assert_int_equal(hex_decode(a, strlen(a), acc[ai].addr, 20), 0);
      json_t *ks = json_object_get(e, "storageKeys"), *kv;
      size_t ki;
      json_array_foreach(ks, ki, kv) {
        const char *k = json_string_value(kv);
        assert_int_equal(hex_decode(k, strlen(k), keys[ai][ki], 32), 0);
      }
      acc[ai].keys = (const uint8_t(*)[32])keys[ai];
      acc[ai].nkeys = json_array_size(ks);
    }
    t.access = acc;
    t.naccess = json_array_size(al);

    buf b;
    buf_init(&b);
    assert_int_equal(tx_encode_unsigned(&t, &b), 0);
    expect_hex(b.ptr, b.len, jstr(c, "unsigned_payload"), name);
    uint8_t h[32];
    assert_int_equal(tx_signing_hash(&t, h), 0);
    expect_hex(h, 32, jstr(c, "signing_hash"), name);
    buf_reset(&b);
    assert_int_equal(tx_sign(&t, &w, &b, h), 0);
    expect_hex(b.ptr, b.len, jstr(c, "signed_tx"), name);
    expect_hex(h, 32, jstr(c, "tx_hash"), name);
    expect_hex(t.r, 32, jstr(c, "r"), name);
    expect_hex(t.s, 32, jstr(c, "s"), name);
    assert_int_equal(t.y_parity, json_integer_value(json_object_get(c, "y_parity")));
    uint8_t from[20];
    const char *fs = jstr(c, "from");
    assert_int_equal(hex_decode(fs, strlen(fs), from, 20), 0);
    assert_memory_equal(w.addr, from, 20);
    check_decode(&b, &t, from);
    buf_deinit(&b);
    wallet_wipe(&w);
  }
  json_decref(root);
}

static void test_eip155(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/eip155_example.json");
  json_t *root = tu_load_json(path);
  json_t *j = json_object_get(root, "tx");
  wallet w;
  key_from_hex(jstr(root, "privateKey"), &w);
  tx t;
  tx_init(&t, TX_LEGACY, ju64(j, "chainId"));
  t.nonce = ju64(j, "nonce");
  t.gas_price = ju256(j, "gasPrice");
  t.gas_limit = ju64(j, "gasLimit");
  t.value = ju256(j, "value");
  t.has_to = true;
  const char *to = jstr(j, "to");
  assert_int_equal(hex_decode(to, strlen(to), t.to, 20), 0);
  buf b;
  buf_init(&b);
  assert_int_equal(tx_encode_unsigned(&t, &b), 0);
  expect_hex(b.ptr, b.len, jstr(root, "signing_data_rlp"), "signing data");
  uint8_t h[32];
  assert_int_equal(tx_signing_hash(&t, h), 0);
  expect_hex(h, 32, jstr(root, "signing_hash"), "signing hash");
  buf_reset(&b);
  assert_int_equal(tx_sign(&t, &w, &b, h), 0);
  expect_hex(b.ptr, b.len, jstr(root, "signed_tx"), "signed tx");
  expect_hex(t.r, 32, jstr(root, "r"), "r");
  expect_hex(t.s, 32, jstr(root, "s"), "s");
  assert_int_equal(t.chain_id * 2 + 35 + t.y_parity, json_integer_value(json_object_get(root, "v")));
  uint8_t from[20];
  const char *fs = jstr(root, "sender_address");
  assert_int_equal(hex_decode(fs, strlen(fs), from, 20), 0);
  check_decode(&b, &t, from);
  /* Pre-EIP-155 (chain id 0): v = 27/28, six-field signing payload. */
  t.chain_id = 0;
  buf_reset(&b);
  assert_int_equal(tx_sign(&t, &w, &b, h), 0);
  check_decode(&b, &t, from);
  buf_deinit(&b);
  wallet_wipe(&w);
  json_decref(root);
}

static void test_hostile(void **state) {
  (void)state;
  tx t;
  assert_int_equal(tx_decode((const uint8_t *)"", 0, &t), ERR_FORMAT);
  assert_int_equal(tx_decode((const uint8_t *)"\x01\xc0", 2, &t), ERR_UNSUPPORTED);
  assert_int_equal(tx_decode((const uint8_t *)"\x02\xc0", 2, &t), ERR_FORMAT);
  assert_int_equal(tx_decode((const uint8_t *)"\xc0", 1, &t), ERR_FORMAT);
  assert_int_equal(tx_decode((const uint8_t *)"\x80", 1, &t), ERR_FORMAT);
  /* Nine items but a list where the nonce belongs. */
  const uint8_t bad[] = {0xc9, 0xc0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x25, 0x01, 0x01};
  assert_int_equal(tx_decode(bad, sizeof bad, &t), ERR_FORMAT);
  /* v = 35/36 would be EIP-155 with chain id 0: refused (found by fuzz_rlp: it did not
   * round-trip). */
  const uint8_t v36[] = {0xc9, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x24, 0x01, 0x01};
  assert_int_equal(tx_decode(v36, sizeof v36, &t), ERR_FORMAT);
  /* Signature with a high s is refused by tx_sender. */
  const uint8_t ok[] = {0xc9, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x25, 0x01, 0x01};
  assert_int_equal(tx_decode(ok, sizeof ok, &t), 0);
  memset(t.s, 0xff, 32);
  uint8_t a[20];
  assert_int_equal(tx_sender(&t, a), ERR_CRYPTO);
}

/* CREATE addresses: well-known values for the anvil/hardhat dev account 0
 * (0xf39F…2266): nonce 0 → 0x5FbDB2315678afecb367f032d93F642f64180aa3,
 * nonce 1 → 0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512. */
static void test_create_address(void **state) {
  (void)state;
  uint8_t sender[20], a[20], want[20];
  assert_int_equal(hex_decode("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266", 40, sender, 20), 0);
  tx_create_address(sender, 0, a);
  assert_int_equal(hex_decode("5FbDB2315678afecb367f032d93F642f64180aa3", 40, want, 20), 0);
  assert_memory_equal(a, want, 20);
  tx_create_address(sender, 1, a);
  assert_int_equal(hex_decode("e7f1725E7734CE288F8367e1Bb143E90bb3F0512", 40, want, 20), 0);
  assert_memory_equal(a, want, 20);
  /* Multi-byte nonces take the same path as rlp_put_u64. */
  for (uint64_t n = 100; n < UINT64_MAX / 300; n = n * 300 + 7) {
    buf b;
    buf_init(&b);
    size_t at = rlp_list_begin(&b);
    rlp_put_bytes(&b, sender, 20);
    rlp_put_u64(&b, n);
    rlp_list_end(&b, at);
    uint8_t h[32];
    keccak256(b.ptr, b.len, h);
    tx_create_address(sender, n, a);
    assert_memory_equal(a, h + 12, 20);
    buf_deinit(&b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_eip1559),
      cmocka_unit_test(test_eip155),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_create_address),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
