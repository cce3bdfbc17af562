/* privacy/redact_coin — cryptocurrency addresses, each with its checksum checked: Bitcoin
 * base58check ("1…", "3…": version byte, 20-byte hash, 4 bytes of double SHA-256), Bitcoin
 * bech32/bech32m ("bc1…", BIP 173/350) and Ethereum ("0x" + 40 hex; mixed case must be the
 * EIP-55 checksum, one case throughout carries none and is taken as is). */
#include <sodium.h>
#include <string.h>

#include "crypto/keccak.h"
#include "privacy/redact.h"
#include "privacy/redact_int.h"

static const char b58[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
static const char b32[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static int base58check_ok(const char *s, size_t n) {
  if (n < 26 || n > 35) return 0;
  uint8_t out[25] = {0};
  for (size_t k = 0; k < n; k++) {
    const char *q = memchr(b58, s[k], 58);
    if (!q || !s[k]) return 0;
    unsigned carry = (unsigned)(q - b58);
    for (int b = 24; b >= 0; b--) {
      carry += 58u * out[b];
      out[b] = (uint8_t)carry;
      carry >>= 8;
    }
    if (carry) return 0; /* more than 25 bytes */
  }
  uint8_t h[32];
  crypto_hash_sha256(h, out, 21);
  crypto_hash_sha256(h, h, 32);
  return !memcmp(h, out + 21, 4) && (out[0] == 0 || out[0] == 5);
}

static uint32_t polymod_step(uint32_t c, unsigned v) {
  static const uint32_t g[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
  uint32_t b = c >> 25;
  c = ((c & 0x1ffffff) << 5) ^ v;
  for (int k = 0; k < 5; k++)
    if ((b >> k) & 1) c ^= g[k];
  return c;
}

static int bech32_ok(const char *s, size_t n) {
  if (n < 14 || n > 90) return 0;
  int lower = 0, upper = 0;
  for (size_t k = 0; k < n; k++) lower |= s[k] >= 'a' && s[k] <= 'z', upper |= s[k] >= 'A' && s[k] <= 'Z';
  if (lower && upper) return 0;
  uint32_t c = 1;
  c = polymod_step(c, 'b' >> 5), c = polymod_step(c, 'c' >> 5), c = polymod_step(c, 0);
  c = polymod_step(c, 'b' & 31), c = polymod_step(c, 'c' & 31);
  for (size_t k = 3; k < n; k++) {
    const char *q = memchr(b32, s[k] | 0x20, 32);
    if (!q || !s[k]) return 0;
    c = polymod_step(c, (unsigned)(q - b32));
  }
  return c == 1 || c == 0x2bc830a3;
}

int redact__btc_ok(const char *s, size_t n) {
  if (n >= 3 && (s[0] | 0x20) == 'b' && (s[1] | 0x20) == 'c' && s[2] == '1') return bech32_ok(s, n);
  return (s[0] == '1' || s[0] == '3') && base58check_ok(s, n);
}

int redact__eth_ok(const char *s, size_t n) {
  if (n != 42 || s[0] != '0' || (s[1] | 0x20) != 'x') return 0;
  int lower = 0, upper = 0;
  char low[40];
  for (int k = 0; k < 40; k++) {
    char c = s[2 + k];
    if (!redact__hex((unsigned char)c)) return 0;
    lower |= c >= 'a' && c <= 'f', upper |= c >= 'A' && c <= 'F';
    low[k] = (char)(c >= 'A' && c <= 'F' ? c | 0x20 : c);
  }
  if (!(lower && upper)) return 1;
  uint8_t h[KECCAK256_BYTES];
  keccak256(low, 40, h);
  for (int k = 0; k < 40; k++) {
    int nib = (h[k / 2] >> (k % 2 ? 0 : 4)) & 15;
    char c = s[2 + k];
    if (c >= 'a' && c <= 'f' && nib >= 8) return 0;
    if (c >= 'A' && c <= 'F' && nib < 8) return 0;
  }
  return 1;
}

int redact__scan_crypto(const char *t, size_t n, size_t i, size_t *end) {
  if (redact__alnum(redact__prev(t, i))) return 0;
  size_t j = i;
  while (j < n && j - i <= 90 && redact__alnum((unsigned char)t[j])) j++;
  if (redact__alnum(redact__at(t, n, j))) return 0;
  if (!redact__btc_ok(t + i, j - i) && !redact__eth_ok(t + i, j - i)) return 0;
  *end = j;
  return 1;
}
