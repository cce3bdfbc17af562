/* agent/neg_seal — sealed confidential values (see neg_seal.h). */
#include "agent/neg_seal.h"

#include <sodium.h>
#include <string.h>

#include "core/err.h"

int neg_seal_keys_from_ident(const ident *id, neg_seal_keys *out) {
  if (crypto_sign_ed25519_pk_to_curve25519(out->pk, id->pk) || crypto_sign_ed25519_sk_to_curve25519(out->sk, id->sk)) {
    neg_seal_keys_wipe(out);
    return ERR_CRYPTO;
  }
  return 0;
}

void neg_seal_keys_wipe(neg_seal_keys *k) { sodium_memzero(k, sizeof *k); }

int neg_seal_peer_key(const uint8_t ed_pk[static 32], uint8_t x_pk_out[static 32]) {
  return crypto_sign_ed25519_pk_to_curve25519(x_pk_out, ed_pk) ? ERR_CRYPTO : 0;
}

static void plain(uint8_t p[static NEG_SEAL_PLAIN], const uint8_t session[static NEG_SESSION_BYTES], int round, int issue,
                  int value) {
  memcpy(p, session, NEG_SESSION_BYTES);
  for (int k = 0; k < 4; k++) p[16 + k] = (uint8_t)((uint32_t)round >> (8 * k));
  p[20] = (uint8_t)issue;
  p[21] = (uint8_t)value;
}

int neg_seal_value(const uint8_t peer_xpk[static 32], const uint8_t session[static NEG_SESSION_BYTES], int round, int issue,
                   int value, char out[static NEG_SEAL_B64]) {
  uint8_t p[NEG_SEAL_PLAIN], c[NEG_SEAL_PLAIN + crypto_box_SEALBYTES];
  plain(p, session, round, issue, value);
  if (sodium_init() < 0 || crypto_box_seal(c, p, sizeof p, peer_xpk)) return ERR_CRYPTO;
  sodium_bin2base64(out, NEG_SEAL_B64, c, sizeof c, sodium_base64_VARIANT_ORIGINAL);
  return 0;
}

int neg_open_value(const neg_seal_keys *keys, const char *b64, size_t len, const uint8_t session[static NEG_SESSION_BYTES],
                   int round, int issue) {
  uint8_t c[NEG_SEAL_PLAIN + crypto_box_SEALBYTES + 1], p[NEG_SEAL_PLAIN], want[NEG_SEAL_PLAIN];
  size_t n = 0;
  if (len >= NEG_SEAL_B64 || sodium_base642bin(c, sizeof c, b64, len, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL) ||
      n != NEG_SEAL_PLAIN + crypto_box_SEALBYTES)
    return ERR_FORMAT;
  if (crypto_box_seal_open(p, c, n, keys->pk, keys->sk)) return ERR_CRYPTO;
  plain(want, session, round, issue, p[21]);
  if (sodium_memcmp(p, want, NEG_SEAL_PLAIN)) return ERR_CRYPTO;
  return p[21];
}
