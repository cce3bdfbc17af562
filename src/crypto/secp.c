/* crypto/secp — recoverable ECDSA helpers over libsecp256k1; see secp.h. */
#include "crypto/secp.h"

#include <pthread.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sodium.h>
#include <string.h>

#include "core/err.h"
#include "crypto/keccak.h"

static secp256k1_context *g_ctx;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void make_ctx(void) {
  if (sodium_init() < 0) return;
  secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
  if (!c) return;
  uint8_t seed[32];
  randombytes_buf(seed, sizeof seed);
  if (!secp256k1_context_randomize(c, seed)) {
    secp256k1_context_destroy(c);
    c = NULL;
  }
  sodium_memzero(seed, sizeof seed);
  g_ctx = c;
}

secp256k1_context *secp_context(void) {
  pthread_once(&g_once, make_ctx);
  return g_ctx;
}

static secp256k1_context *ctx(void) { return secp_context(); }

int secp_sign(const uint8_t sk[static 32], const uint8_t digest[static 32], uint8_t sig_out[static SECP_SIG_BYTES]) {
  secp256k1_context *c = ctx();
  if (!c) return ERR_CRYPTO;
  secp256k1_ecdsa_recoverable_signature sig;
  if (!secp256k1_ecdsa_sign_recoverable(c, &sig, digest, sk, NULL, NULL)) return ERR_CRYPTO;
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(c, sig_out, &recid, &sig);
  if (recid < 0 || recid > 1) return ERR_CRYPTO; /* x-overflow case: never in practice */
  sig_out[64] = (uint8_t)recid;
  return 0;
}

/* n/2 for secp256k1, big-endian. */
static const uint8_t HALF_N[32] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4,
                                   0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0};

int secp_recover(const uint8_t digest[static 32], const uint8_t sig[static 64], int recid,
                 uint8_t pub_out[static 64], uint8_t addr_out[static 20]) {
  secp256k1_context *c = ctx();
  if (!c) return ERR_CRYPTO;
  if (recid < 0 || recid > 1) return ERR_CRYPTO;
  if (memcmp(sig + 32, HALF_N, 32) > 0) return ERR_CRYPTO;
  static const uint8_t zero[32];
  if (!memcmp(sig, zero, 32) || !memcmp(sig + 32, zero, 32)) return ERR_CRYPTO;
  secp256k1_ecdsa_recoverable_signature rs;
  if (!secp256k1_ecdsa_recoverable_signature_parse_compact(c, &rs, sig, recid)) return ERR_CRYPTO;
  secp256k1_pubkey pk;
  if (!secp256k1_ecdsa_recover(c, &pk, &rs, digest)) return ERR_CRYPTO;
  uint8_t ser[65];
  size_t n = sizeof ser;
  secp256k1_ec_pubkey_serialize(c, ser, &n, &pk, SECP256K1_EC_UNCOMPRESSED);
  memcpy(pub_out, ser + 1, 64);
  uint8_t h[32];
  keccak256(ser + 1, 64, h);
  memcpy(addr_out, h + 12, 20);
  return 0;
}

int secp_recover_rsv(const uint8_t digest[static 32], const uint8_t sig65[static 65], uint8_t addr_out[static 20]) {
  int v = sig65[64];
  if (v >= 27) v -= 27;
  if (v != 0 && v != 1) return ERR_CRYPTO;
  uint8_t pub[64];
  return secp_recover(digest, sig65, v, pub, addr_out);
}
