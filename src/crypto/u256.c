/* crypto/u256 — 256-bit unsigned arithmetic; see u256.h. */
#include "crypto/u256.h"

#include <string.h>

#include "core/err.h"

bool u256_is_zero(const u256 *a) { return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]); }

int u256_cmp(const u256 *a, const u256 *b) {
  for (int i = 3; i >= 0; i--) {
    if (a->w[i] != b->w[i]) return a->w[i] < b->w[i] ? -1 : 1;
  }
  return 0;
}

int u256_add(u256 *r, const u256 *a, const u256 *b) {
  unsigned __int128 c = 0;
  u256 t;
  for (int i = 0; i < 4; i++) {
    c += (unsigned __int128)a->w[i] + b->w[i];
    t.w[i] = (uint64_t)c;
    c >>= 64;
  }
  *r = t;
  return c ? ERR_RANGE : 0;
}

int u256_sub(u256 *r, const u256 *a, const u256 *b) {
  int under = u256_cmp(a, b) < 0;
  uint64_t borrow = 0;
  u256 t;
  for (int i = 0; i < 4; i++) {
    uint64_t x = a->w[i], y = b->w[i];
    uint64_t d = x - y - borrow;
    borrow = (x < y) || (x == y && borrow) ? 1 : 0;
    t.w[i] = d;
  }
  *r = t;
  return under ? ERR_RANGE : 0;
}

int u256_mul_u64(u256 *r, const u256 *a, uint64_t m) {
  unsigned __int128 c = 0;
  u256 t;
  for (int i = 0; i < 4; i++) {
    c += (unsigned __int128)a->w[i] * m;
    t.w[i] = (uint64_t)c;
    c >>= 64;
  }
  *r = t;
  return c ? ERR_RANGE : 0;
}

void u256_divmod_u64(u256 *r, const u256 *a, uint64_t d, uint64_t *rem_out) {
  unsigned __int128 rem = 0;
  u256 t;
  for (int i = 3; i >= 0; i--) {
    unsigned __int128 cur = (rem << 64) | a->w[i];
    t.w[i] = (uint64_t)(cur / d);
    rem = cur % d;
  }
  *r = t;
  if (rem_out) *rem_out = (uint64_t)rem;
}

int u256_to_u64(const u256 *a, uint64_t *out) {
  if (a->w[1] | a->w[2] | a->w[3]) return ERR_RANGE;
  *out = a->w[0];
  return 0;
}

unsigned u256_bits(const u256 *a) {
  for (int i = 3; i >= 0; i--) {
    if (a->w[i]) return (unsigned)(64 * i + 64 - __builtin_clzll(a->w[i]));
  }
  return 0;
}

int u256_from_be(const uint8_t *in, size_t len, u256 *out) {
  u256 t = {{0, 0, 0, 0}};
  for (size_t i = 0; i < len; i++) {
    size_t pos = len - 1 - i; /* byte significance */
    if (pos >= 32) {
      if (in[i]) return ERR_RANGE;
      continue;
    }
    t.w[pos / 8] |= (uint64_t)in[i] << (8 * (pos % 8));
  }
  *out = t;
  return 0;
}

void u256_to_be32(const u256 *a, uint8_t out[static 32]) {
  for (int i = 0; i < 32; i++) out[31 - i] = (uint8_t)(a->w[i / 8] >> (8 * (i % 8)));
}

size_t u256_to_be_min(const u256 *a, uint8_t out[static 32]) {
  uint8_t full[32];
  u256_to_be32(a, full);
  size_t skip = 0;
  while (skip < 32 && !full[skip]) skip++;
  memcpy(out, full + skip, 32 - skip);
  return 32 - skip;
}

int u256_from_dec(const char *s, size_t len, u256 *out) {
  if (!len || len > 100) return ERR_FORMAT;
  u256 t = {{0, 0, 0, 0}};
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return ERR_FORMAT;
    if (u256_mul_u64(&t, &t, 10)) return ERR_RANGE;
    u256 d = u256_from_u64((uint64_t)(s[i] - '0'));
    if (u256_add(&t, &t, &d)) return ERR_RANGE;
  }
  *out = t;
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int u256_from_hex(const char *s, size_t len, u256 *out) {
  if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2, len -= 2;
  if (!len) return ERR_FORMAT;
  u256 t = {{0, 0, 0, 0}};
  for (size_t i = 0; i < len; i++) {
    int v = hexval(s[i]);
    if (v < 0) return ERR_FORMAT;
    if (t.w[3] >> 60) return ERR_RANGE;
    t.w[3] = (t.w[3] << 4) | (t.w[2] >> 60);
    t.w[2] = (t.w[2] << 4) | (t.w[1] >> 60);
    t.w[1] = (t.w[1] << 4) | (t.w[0] >> 60);
    t.w[0] = (t.w[0] << 4) | (uint64_t)v;
  }
  *out = t;
  return 0;
}

int u256_from_str(const char *s, size_t len, u256 *out) {
  if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return u256_from_hex(s, len, out);
  return u256_from_dec(s, len, out);
}

void u256_to_dec(const u256 *a, char out[static U256_DEC_BUF]) {
  char tmp[U256_DEC_BUF];
  size_t n = 0;
  u256 t = *a;
  do {
    uint64_t rem;
    u256_divmod_u64(&t, &t, 10, &rem);
    tmp[n++] = (char)('0' + rem);
  } while (!u256_is_zero(&t));
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  out[n] = 0;
}

void u256_to_hex(const u256 *a, char out[static U256_HEX_BUF]) {
  static const char dig[] = "0123456789abcdef";
  out[0] = '0';
  out[1] = 'x';
  size_t n = 2;
  bool started = false;
  for (int i = 63; i >= 0; i--) {
    unsigned nib = (unsigned)(a->w[i / 16] >> (4 * (i % 16))) & 15;
    if (!nib && !started && i) continue;
    started = true;
    out[n++] = dig[nib];
  }
  out[n] = 0;
}
