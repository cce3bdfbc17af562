/* p2p/sha1 — SHA-1 per FIPS 180-4 §6.1, written from the standard. See sha1.h for why this
 * exists (DHT addressing only, not a security primitive here). */
#include "p2p/sha1.h"

#include <string.h>

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void compress(uint32_t h[5], const uint8_t p[64]) {
  uint32_t w[80];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int i = 0; i < 80; i++) {
    uint32_t f, k;
    if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999u; }
    else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1u; }
    else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdcu; }
    else { f = b ^ c ^ d; k = 0xca62c1d6u; }
    uint32_t t = rol(a, 5) + f + e + k + w[i];
    e = d; d = c; c = rol(b, 30); b = a; a = t;
  }
  h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

void sha1_init(sha1_ctx *c) {
  static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
  memcpy(c->h, iv, sizeof iv);
  c->total = 0;
  c->fill = 0;
}

void sha1_update(sha1_ctx *c, const void *data, size_t len) {
  const uint8_t *p = data;
  c->total += len;
  if (c->fill) {
    size_t n = 64 - c->fill < len ? 64 - c->fill : len;
    memcpy(c->block + c->fill, p, n);
    c->fill += n; p += n; len -= n;
    if (c->fill < 64) return;
    compress(c->h, c->block);
    c->fill = 0;
  }
  for (; len >= 64; p += 64, len -= 64) compress(c->h, p);
  memcpy(c->block, p, len);
  c->fill = len;
}

void sha1_final(sha1_ctx *c, uint8_t out[static SHA1_BYTES]) {
  uint64_t bits = c->total * 8;
  uint8_t pad = 0x80;
  sha1_update(c, &pad, 1);
  uint8_t zero = 0;
  while (c->fill != 56) sha1_update(c, &zero, 1);
  uint8_t len[8];
  for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
  sha1_update(c, len, 8);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
  memset(c, 0, sizeof *c);
}

void sha1(const void *data, size_t len, uint8_t out[static SHA1_BYTES]) {
  sha1_ctx c;
  sha1_init(&c);
  sha1_update(&c, data, len);
  sha1_final(&c, out);
}
