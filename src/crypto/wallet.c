/* crypto/wallet — secp256k1 wallet key and EIP-55 addresses; see wallet.h. */
#include "crypto/wallet.h"

#include <secp256k1.h>
#include <sodium.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/keccak.h"
#include "crypto/keyfile.h"
#include "crypto/secp.h"

static secp256k1_context *ctx(void) { return secp_context(); }

int wallet_from_secret(const uint8_t sk[static WALLET_SK_BYTES], wallet *out) {
  secp256k1_context *c = ctx();
  if (!c) return ERR_CRYPTO;
  if (!secp256k1_ec_seckey_verify(c, sk)) return ERR_CRYPTO;
  secp256k1_pubkey pk;
  if (!secp256k1_ec_pubkey_create(c, &pk, sk)) return ERR_CRYPTO;
  uint8_t ser[65];
  size_t n = sizeof ser;
  secp256k1_ec_pubkey_serialize(c, ser, &n, &pk, SECP256K1_EC_UNCOMPRESSED);
  memcpy(out->sk, sk, WALLET_SK_BYTES);
  memcpy(out->pub, ser + 1, 64);
  uint8_t h[KECCAK256_BYTES];
  keccak256(out->pub, 64, h);
  memcpy(out->addr, h + 12, WALLET_ADDR_BYTES);
  return 0;
}

int wallet_generate(wallet *out) {
  if (!ctx()) return ERR_CRYPTO;
  uint8_t sk[WALLET_SK_BYTES];
  int rc;
  do { /* the chance of needing a second draw is about 2^-128 */
    randombytes_buf(sk, sizeof sk);
    rc = wallet_from_secret(sk, out);
  } while (rc == ERR_CRYPTO && ctx());
  sodium_memzero(sk, sizeof sk);
  return rc;
}

int wallet_save(const wallet *w, const char *path) {
  return keyfile_save(path, "apiary wallet (secp256k1 secret key). Secret: never share or commit this file.",
                      WALLET_FILE_KIND, w->sk, WALLET_SK_BYTES);
}

int wallet_load(const char *path, wallet *out) {
  uint8_t sk[WALLET_SK_BYTES];
  int rc = keyfile_load(path, WALLET_FILE_KIND, sk, sizeof sk);
  if (!rc) rc = wallet_from_secret(sk, out);
  sodium_memzero(sk, sizeof sk);
  return rc;
}

void wallet_wipe(wallet *w) { sodium_memzero(w, sizeof *w); }

void wallet_addr_eip55(const uint8_t addr[static WALLET_ADDR_BYTES], char out[static WALLET_ADDR_BUF]) {
  char lower[2 * WALLET_ADDR_BYTES + 1];
  hex_encode(addr, WALLET_ADDR_BYTES, lower);
  uint8_t h[KECCAK256_BYTES];
  keccak256(lower, 2 * WALLET_ADDR_BYTES, h);
  out[0] = '0';
  out[1] = 'x';
  for (int i = 0; i < 2 * WALLET_ADDR_BYTES; i++) {
    int nib = (h[i / 2] >> (i % 2 ? 0 : 4)) & 15;
    char c = lower[i];
    out[2 + i] = (c >= 'a' && nib >= 8) ? (char)(c - 'a' + 'A') : c;
  }
  out[WALLET_ADDR_BUF - 1] = 0;
}

int wallet_addr_parse(const char *text, size_t len, uint8_t addr_out[static WALLET_ADDR_BYTES]) {
  if (len != 42 || text[0] != '0' || (text[1] != 'x' && text[1] != 'X')) return ERR_FORMAT;
  uint8_t a[WALLET_ADDR_BYTES];
  if (hex_decode(text + 2, 40, a, sizeof a)) return ERR_FORMAT;
  int lower = 0, upper = 0;
  for (size_t i = 2; i < len; i++) {
    if (text[i] >= 'a' && text[i] <= 'f') lower = 1;
    if (text[i] >= 'A' && text[i] <= 'F') upper = 1;
  }
  if (lower && upper) {
    char want[WALLET_ADDR_BUF];
    wallet_addr_eip55(a, want);
    if (memcmp(want + 2, text + 2, 40)) return ERR_CRYPTO;
  }
  memcpy(addr_out, a, sizeof a);
  return 0;
}
