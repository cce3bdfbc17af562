/* Wallet: private key -> address against the Ethereum vectors in ../shared (EIP-155's
 * example key, anvil's first dev key from the EIP-1559 cases, the EIP-712 "cow" key), and
 * EIP-55 checksums against the examples published in EIP-55 itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/wallet.h"

static void check_key(const char *sk_hex, const char *want_addr) {
  uint8_t sk[32];
  assert_int_equal(hex_decode(sk_hex, strlen(sk_hex), sk, 32), 0);
  wallet w;
  assert_int_equal(wallet_from_secret(sk, &w), 0);
  char addr[WALLET_ADDR_BUF];
  wallet_addr_eip55(w.addr, addr);
  /* The reference may be lowercase; compare case-insensitively, then require that a
   * mixed-case reference is exactly our EIP-55 form. */
  if (strcasecmp(addr, want_addr)) fail_msg("key %s: address %s, want %s", sk_hex, addr, want_addr);
  int mixed = 0;
  for (const char *p = want_addr + 2; *p; p++) mixed |= (*p >= 'A' && *p <= 'F');
  if (mixed) assert_string_equal(addr, want_addr);
}

static void test_vectors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/eip155_example.json");
  json_t *j = tu_load_json(path);
  check_key(json_string_value(json_object_get(j, "privateKey")), json_string_value(json_object_get(j, "sender_address")));
  json_decref(j);

  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/eip1559_signed_txs.json");
  j = tu_load_json(path);
  size_t i, checked = 0;
  json_t *c;
  json_array_foreach(json_object_get(j, "cases"), i, c) {
    const char *sk = json_string_value(json_object_get(c, "privateKey"));
    const char *from = json_string_value(json_object_get(c, "from"));
    if (sk && from) { check_key(sk, from); checked++; }
  }
  assert_true(checked > 0);
  json_decref(j);

  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/eip712_mail_example.json");
  j = tu_load_json(path);
  json_t *exp = json_object_get(j, "expected");
  const char *sk = json_string_value(json_object_get(exp, "privateKey"));
  const char *addr = json_string_value(json_object_get(exp, "address"));
  if (!sk) sk = json_string_value(json_object_get(j, "privateKey"));
  if (sk && addr) check_key(sk, addr);
  json_decref(j);
}

/* Examples from the EIP-55 specification text. */
static const char *eip55_examples[] = {
    "0x52908400098527886E0F7030069857D2E4169EE7", "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77", "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
};

static void test_eip55(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof eip55_examples / sizeof *eip55_examples; i++) {
    const char *a = eip55_examples[i];
    uint8_t raw[20];
    assert_int_equal(wallet_addr_parse(a, strlen(a), raw), 0);
    char out[WALLET_ADDR_BUF];
    wallet_addr_eip55(raw, out);
    assert_string_equal(out, a);
  }
  /* A one-letter case flip in a mixed-case address is a checksum error. */
  char typo[] = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
  typo[3] = 'A';
  uint8_t raw[20];
  assert_int_equal(wallet_addr_parse(typo, strlen(typo), raw), ERR_CRYPTO);
  /* All-lowercase is accepted without a checksum. */
  assert_int_equal(wallet_addr_parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", 42, raw), 0);
  assert_int_equal(wallet_addr_parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae", 41, raw), ERR_FORMAT);
  assert_int_equal(wallet_addr_parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaeg", 42, raw), ERR_FORMAT);
}

static void test_bad_secret(void **state) {
  (void)state;
  uint8_t zero[32] = {0};
  wallet w;
  assert_int_equal(wallet_from_secret(zero, &w), ERR_CRYPTO);
  uint8_t order[32]; /* the curve order n itself is not a valid key */
  hex_decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 64, order, 32);
  assert_int_equal(wallet_from_secret(order, &w), ERR_CRYPTO);
}

static void test_save_load(void **state) {
  (void)state;
  char dir[256], path[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/wallet.key", dir);
  wallet w, r;
  assert_int_equal(wallet_generate(&w), 0);
  assert_int_equal(wallet_save(&w, path), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(wallet_load(path, &r), 0);
  assert_memory_equal(w.addr, r.addr, 20);
  assert_memory_equal(w.sk, r.sk, 32);
  wallet w2;
  assert_int_equal(wallet_generate(&w2), 0);
  assert_int_equal(wallet_save(&w2, path), ERR_EXISTS);
  assert_int_equal(wallet_load(path, &r), 0);
  assert_memory_equal(w.sk, r.sk, 32); /* untouched */
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors), cmocka_unit_test(test_eip55),
                                     cmocka_unit_test(test_bad_secret), cmocka_unit_test(test_save_load)};
  return cmocka_run_group_tests_name("wallet", tests, NULL, NULL);
}
