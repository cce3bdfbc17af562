/* crypto/ident — Ed25519 node identity and node id text form; see ident.h. */
#include "crypto/ident.h"

#include <sodium.h>
#include <string.h>

#include "core/err.h"
#include "crypto/keyfile.h"

#define CHECK_BYTES 3
static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char check_tag[] = "apiary-node-id";

static int ensure_sodium(void) { return sodium_init() < 0 ? ERR_CRYPTO : 0; }

int ident_from_seed(const uint8_t seed[static 32], ident *out) {
  if (ensure_sodium()) return ERR_CRYPTO;
  return crypto_sign_seed_keypair(out->pk, out->sk, seed) ? ERR_CRYPTO : 0;
}

int ident_generate(ident *out) {
  if (ensure_sodium()) return ERR_CRYPTO;
  return crypto_sign_keypair(out->pk, out->sk) ? ERR_CRYPTO : 0;
}

int ident_save(const ident *id, const char *path) {
  return keyfile_save(path, "apiary node identity (Ed25519 seed). Secret: never share or commit this file.",
                      IDENT_FILE_KIND, id->sk, 32);
}

int ident_load(const char *path, ident *out) {
  uint8_t seed[32];
  int rc = keyfile_load(path, IDENT_FILE_KIND, seed, sizeof seed);
  if (!rc) rc = ident_from_seed(seed, out);
  sodium_memzero(seed, sizeof seed);
  return rc;
}

void ident_wipe(ident *id) { sodium_memzero(id, sizeof *id); }

void ident_sign(const ident *id, const uint8_t *msg, size_t len, uint8_t sig_out[static IDENT_SIG_BYTES]) {
  crypto_sign_detached(sig_out, NULL, msg, len, id->sk);
}

int ident_verify(const uint8_t pk[static IDENT_PK_BYTES], const uint8_t *msg, size_t len,
                 const uint8_t sig[static IDENT_SIG_BYTES]) {
  if (ensure_sodium()) return ERR_CRYPTO;
  return crypto_sign_verify_detached(sig, msg, len, pk) ? ERR_CRYPTO : 0;
}

static void checksum(const uint8_t pk[static IDENT_PK_BYTES], uint8_t out[CHECK_BYTES]) {
  uint8_t h[32];
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, sizeof h);
  crypto_generichash_update(&st, (const uint8_t *)check_tag, sizeof check_tag - 1);
  crypto_generichash_update(&st, pk, IDENT_PK_BYTES);
  crypto_generichash_final(&st, h, sizeof h);
  memcpy(out, h, CHECK_BYTES);
}

/* 35 bytes = 280 bits = exactly 56 base32 characters: no padding. */
void ident_id_encode(const uint8_t pk[static IDENT_PK_BYTES], char out[static IDENT_ID_BUF]) {
  uint8_t raw[IDENT_PK_BYTES + CHECK_BYTES];
  memcpy(raw, pk, IDENT_PK_BYTES);
  checksum(pk, raw + IDENT_PK_BYTES);
  memcpy(out, IDENT_ID_PREFIX, 2);
  char *o = out + 2;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < sizeof raw; i++) {
    acc = (acc << 8) | raw[i];
    bits += 8;
    while (bits >= 5) {
      *o++ = b32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  *o = 0;
}

void ident_id_short(const uint8_t pk[static IDENT_PK_BYTES], char out[static 11]) {
  char full[IDENT_ID_BUF];
  ident_id_encode(pk, full);
  memcpy(out, full, 10);
  out[10] = 0;
}

static int b32_value(char c) {
  if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
  const char *p = c ? strchr(b32, c) : NULL;
  return p ? (int)(p - b32) : -1;
}

int ident_id_decode(const char *text, size_t len, uint8_t pk_out[static IDENT_PK_BYTES]) {
  if (len != IDENT_ID_LEN) return ERR_FORMAT;
  if ((text[0] | 0x20) != 'a' || (text[1] | 0x20) != 'p') return ERR_FORMAT;
  uint8_t raw[IDENT_PK_BYTES + CHECK_BYTES];
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 2; i < len; i++) {
    int v = b32_value(text[i]);
    if (v < 0) return ERR_FORMAT;
    acc = (acc << 5) | (uint32_t)v;
    bits += 5;
    if (bits >= 8) {
      raw[n++] = (uint8_t)(acc >> (bits - 8));
      bits -= 8;
    }
  }
  if (n != sizeof raw) return ERR_FORMAT;
  uint8_t want[CHECK_BYTES];
  checksum(raw, want);
  if (sodium_memcmp(want, raw + IDENT_PK_BYTES, CHECK_BYTES)) return ERR_CRYPTO;
  memcpy(pk_out, raw, IDENT_PK_BYTES);
  return 0;
}
