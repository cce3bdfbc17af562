/* crypto/keccak — Keccak-256 as Ethereum uses it (original Keccak padding 0x01, not
 * FIPS-202 SHA3-256's 0x06), the one primitive apiary implements itself.
 *
 * Streaming (init/update/final) and one-shot. Rate 136 bytes, capacity 512 bits, 24
 * rounds of Keccak-f[1600]. The context holds no secret beyond the message; callers
 * hashing secrets wipe the context with sodium_memzero. Pure; thread-safe per context. */
#ifndef APIARY_CRYPTO_KECCAK_H
#define APIARY_CRYPTO_KECCAK_H

#include <stddef.h>
#include <stdint.h>

#define KECCAK256_BYTES 32
#define KECCAK256_RATE 136

typedef struct keccak256_ctx {
  uint64_t st[25];              /* the 5x5 lane state, lane (x,y) at st[x + 5y] */
  uint8_t buf[KECCAK256_RATE];  /* partial block */
  size_t n;                     /* bytes in buf */
} keccak256_ctx;

void keccak256_init(keccak256_ctx *c);
void keccak256_update(keccak256_ctx *c, const void *data, size_t len);
void keccak256_final(keccak256_ctx *c, uint8_t out[static KECCAK256_BYTES]);
void keccak256(const void *data, size_t len, uint8_t out[static KECCAK256_BYTES]);

#endif
