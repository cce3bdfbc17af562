/* crypto/keccak — Keccak-256; see keccak.h.
 *
 * Keccak-f[1600] per the Keccak reference (FIPS 202 §3.2 step mappings θ, ρ, π, χ, ι with
 * the original Keccak multi-rate padding pad10*1 and domain byte 0x01). Lanes are
 * little-endian 64-bit words. Written for clarity first; it is not on a hot path. */
#include "crypto/keccak.h"

#include <string.h>

static const uint64_t round_consts[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL,
    0x8000000080008000ULL, 0x000000000000808bULL, 0x0000000080000001ULL,
    0x8000000080008081ULL, 0x8000000000008009ULL, 0x000000000000008aULL,
    0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL,
    0x8000000000008003ULL, 0x8000000000008002ULL, 0x8000000000000080ULL,
    0x000000000000800aULL, 0x800000008000000aULL, 0x8000000080008081ULL,
    0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* ρ rotation offsets, indexed by lane x + 5y. */
static const unsigned rho[25] = {
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
};

static inline uint64_t rotl(uint64_t v, unsigned r) { return r ? (v << r) | (v >> (64 - r)) : v; }

static void keccak_f1600(uint64_t a[25]) {
  uint64_t b[25], c[5], d[5];
  for (int round = 0; round < 24; round++) {
    for (int x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; x++) d[x] = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
    for (int i = 0; i < 25; i++) a[i] ^= d[i % 5];
    /* ρ and π: lane (x,y) moves to (y, 2x+3y) after rotating. */
    for (int x = 0; x < 5; x++)
      for (int y = 0; y < 5; y++) b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], rho[x + 5 * y]);
    /* χ */
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 5; x++)
        a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
    a[0] ^= round_consts[round]; /* ι */
  }
}

static void absorb_block(uint64_t st[25], const uint8_t *blk) {
  for (int i = 0; i < KECCAK256_RATE / 8; i++) {
    uint64_t lane = 0;
    for (int k = 7; k >= 0; k--) lane = (lane << 8) | blk[8 * i + k];
    st[i] ^= lane;
  }
  keccak_f1600(st);
}

void keccak256_init(keccak256_ctx *c) { memset(c, 0, sizeof *c); }

void keccak256_update(keccak256_ctx *c, const void *data, size_t len) {
  const uint8_t *p = data;
  if (c->n) {
    size_t take = KECCAK256_RATE - c->n;
    if (take > len) take = len;
    memcpy(c->buf + c->n, p, take);
    c->n += take;
    p += take;
    len -= take;
    if (c->n < KECCAK256_RATE) return;
    absorb_block(c->st, c->buf);
    c->n = 0;
  }
  for (; len >= KECCAK256_RATE; p += KECCAK256_RATE, len -= KECCAK256_RATE) absorb_block(c->st, p);
  memcpy(c->buf, p, len);
  c->n = len;
}

void keccak256_final(keccak256_ctx *c, uint8_t out[static KECCAK256_BYTES]) {
  memset(c->buf + c->n, 0, KECCAK256_RATE - c->n);
  c->buf[c->n] ^= 0x01;
  c->buf[KECCAK256_RATE - 1] ^= 0x80;
  absorb_block(c->st, c->buf);
  for (int i = 0; i < KECCAK256_BYTES; i++) out[i] = (uint8_t)(c->st[i / 8] >> (8 * (i % 8)));
  memset(c, 0, sizeof *c);
}

void keccak256(const void *data, size_t len, uint8_t out[static KECCAK256_BYTES]) {
  keccak256_ctx c;
  keccak256_init(&c);
  keccak256_update(&c, data, len);
  keccak256_final(&c, out);
}
