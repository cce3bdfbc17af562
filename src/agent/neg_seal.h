/* agent/neg_seal — confidential issue values sealed to the counterpart's key.
 *
 * A side marks issues confidential in its mandate. In the offers it sends, such an issue's
 * value is not written in clear but as crypto_box_seal (libsodium: an ephemeral X25519 key,
 * XSalsa20-Poly1305) of 22 bytes, session id (16) || round (4, little endian) || issue
 * index (1) || value index (1), to the counterpart's X25519 key, which is derived from its
 * Ed25519 node identity (crypto_sign_ed25519_pk_to_curve25519). Every seal uses a fresh
 * ephemeral key, so equal values give unequal ciphertexts, and the binding to session,
 * round and issue stops a relay from replaying a sealed value elsewhere. Only the
 * counterpart opens it; the deal document both sign holds the terms in clear and stays
 * with the two parties. A side's reservation value, weights and scores are never sent.
 *
 * Pure functions over caller-owned keys; thread-safe after sodium_init. */
#ifndef APIARY_AGENT_NEG_SEAL_H
#define APIARY_AGENT_NEG_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ident.h"

#define NEG_SESSION_BYTES 16
#define NEG_SEAL_PLAIN 22
#define NEG_SEAL_B64 128  /* buffer for the base64 text of a sealed value, NUL included */

typedef struct neg_seal_keys {
  uint8_t pk[32];  /* X25519 public */
  uint8_t sk[32];  /* X25519 secret (wipe with neg_seal_keys_wipe) */
} neg_seal_keys;

/* X25519 keys from a node identity. 0 or ERR_CRYPTO. */
int neg_seal_keys_from_ident(const ident *id, neg_seal_keys *out);
void neg_seal_keys_wipe(neg_seal_keys *k);
/* The counterpart's X25519 public key from its Ed25519 node key. 0 or ERR_CRYPTO. */
int neg_seal_peer_key(const uint8_t ed_pk[static 32], uint8_t x_pk_out[static 32]);

/* Seals value index v of issue i at (session, round) to peer_xpk; writes base64 text
 * (NUL-terminated) into out. 0 or ERR_CRYPTO. */
int neg_seal_value(const uint8_t peer_xpk[static 32], const uint8_t session[static NEG_SESSION_BYTES], int round, int issue,
                   int value, char out[static NEG_SEAL_B64]);
/* Opens a sealed value meant for keys, checking it is bound to (session, round, issue).
 * Returns the value index (>= 0), ERR_FORMAT (not base64 / wrong size) or ERR_CRYPTO (not
 * for us, tampered, or bound elsewhere). */
int neg_open_value(const neg_seal_keys *keys, const char *b64, size_t len, const uint8_t session[static NEG_SESSION_BYTES],
                   int round, int issue);

#endif
