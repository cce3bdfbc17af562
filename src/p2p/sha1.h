/* p2p/sha1 — SHA-1 (FIPS 180-4), for the Mainline DHT only.
 *
 * libsodium has no SHA-1, and the DHT needs it for wire compatibility: BEP 44 targets
 * (SHA1(k || salt), SHA1(bencode(v))), BEP 5 tokens and apiary's infohashes. SHA-1 is
 * collision-broken; nothing here relies on it for security beyond DHT addressing (item
 * authenticity comes from the Ed25519 signature, peers are authenticated by Noise).
 * Pure functions; thread-safe. */
#ifndef APIARY_P2P_SHA1_H
#define APIARY_P2P_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_BYTES 20

typedef struct sha1_ctx {
  uint32_t h[5];     /* chaining state */
  uint64_t total;    /* bytes hashed so far */
  uint8_t block[64]; /* pending partial block */
  size_t fill;       /* bytes in block */
} sha1_ctx;

void sha1_init(sha1_ctx *c);
void sha1_update(sha1_ctx *c, const void *data, size_t len);
void sha1_final(sha1_ctx *c, uint8_t out[static SHA1_BYTES]);
void sha1(const void *data, size_t len, uint8_t out[static SHA1_BYTES]);

#endif
