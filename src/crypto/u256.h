/* crypto/u256 — a small unsigned 256-bit integer for Ethereum amounts, gas prices and
 * ABI/RLP/EIP-712 words. Four 64-bit limbs, least significant first. No allocation, pure
 * functions, thread-safe. Arithmetic reports overflow instead of wrapping silently.
 *
 * (Lives in crypto/ because crypto/eip712 and chain/ both need it; it has no dependencies
 * beyond core/err.) */
#ifndef APIARY_CRYPTO_U256_H
#define APIARY_CRYPTO_U256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct u256 {
  uint64_t w[4]; /* limbs, w[0] least significant */
} u256;

#define U256_DEC_BUF 79 /* 78 decimal digits + NUL */
#define U256_HEX_BUF 67 /* "0x" + 64 hex digits + NUL */

static inline u256 u256_from_u64(uint64_t v) { u256 r = {{v, 0, 0, 0}}; return r; }
bool u256_is_zero(const u256 *a);
int u256_cmp(const u256 *a, const u256 *b); /* -1, 0, 1 */
/* r = a + b; returns 0 or ERR_RANGE on overflow (r then holds the wrapped value). r may alias. */
int u256_add(u256 *r, const u256 *a, const u256 *b);
/* r = a - b; returns 0 or ERR_RANGE when b > a. */
int u256_sub(u256 *r, const u256 *a, const u256 *b);
/* r = a * m; returns 0 or ERR_RANGE on overflow. */
int u256_mul_u64(u256 *r, const u256 *a, uint64_t m);
/* r = a / d, *rem_out = a % d (rem_out may be NULL); d != 0. */
void u256_divmod_u64(u256 *r, const u256 *a, uint64_t d, uint64_t *rem_out);
/* Fits in 64 bits? Then *out = value and 0, else ERR_RANGE. */
int u256_to_u64(const u256 *a, uint64_t *out);
/* Number of significant bits (0 for zero). */
unsigned u256_bits(const u256 *a);

/* Big-endian bytes: from up to 32 bytes (ERR_RANGE when longer with non-zero excess). */
int u256_from_be(const uint8_t *in, size_t len, u256 *out);
void u256_to_be32(const u256 *a, uint8_t out[static 32]);
/* Minimal big-endian (no leading zeros; zero → 0 bytes). Returns the byte count (0..32). */
size_t u256_to_be_min(const u256 *a, uint8_t out[static 32]);

/* Text. from_dec: decimal digits only. from_hex: "0x" prefix optional, 1..64 digits (odd
 * count allowed, leading zeros allowed). from_str: "0x…" → hex, else decimal.
 * All return 0, ERR_FORMAT or ERR_RANGE. */
int u256_from_dec(const char *s, size_t len, u256 *out);
int u256_from_hex(const char *s, size_t len, u256 *out);
int u256_from_str(const char *s, size_t len, u256 *out);
void u256_to_dec(const u256 *a, char out[static U256_DEC_BUF]);
/* "0x" + minimal lowercase hex ("0x0" for zero), the JSON-RPC QUANTITY form. */
void u256_to_hex(const u256 *a, char out[static U256_HEX_BUF]);

#endif
