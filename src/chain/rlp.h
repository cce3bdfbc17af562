/* chain/rlp — Recursive Length Prefix encoding (Ethereum yellow paper, appendix B).
 *
 * Encoding appends to a caller-owned buf. Lists are written in place: rlp_list_begin()
 * remembers where the payload starts, rlp_list_end() inserts the header in front of it
 * (a memmove of the payload, fine at transaction sizes).
 *
 * Decoding is strict and zero-copy: items borrow the input. Every non-canonical form is
 * rejected (a single byte < 0x80 wrapped in 0x81, long forms for lengths < 56, length
 * fields with leading zeros, lengths past the end, trailing bytes). Inputs are capped at
 * RLP_MAX_INPUT bytes and RLP_MAX_DEPTH levels of nesting. No I/O, no allocation in the
 * decoder; pure and thread-safe. */
#ifndef APIARY_CHAIN_RLP_H
#define APIARY_CHAIN_RLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/u256.h"

#define RLP_MAX_INPUT (16u << 20) /* bytes; larger inputs are ERR_TOOBIG */
#define RLP_MAX_DEPTH 32          /* list nesting levels accepted by rlp_validate */

/* ---- encoding (all return 0 or ERR_NOMEM / ERR_TOOBIG) ---- */
int rlp_put_bytes(buf *out, const void *data, size_t len);
int rlp_put_str(buf *out, const char *s); /* NUL-terminated text as a byte string */
int rlp_put_u64(buf *out, uint64_t v);    /* minimal big-endian; 0 → 0x80 */
int rlp_put_u256(buf *out, const u256 *v);
/* Writes an already-encoded item verbatim (caller guarantees it is valid RLP). */
int rlp_put_raw(buf *out, const void *enc, size_t len);
/* Returns the offset to pass to rlp_list_end (cannot fail). */
size_t rlp_list_begin(const buf *out);
int rlp_list_end(buf *out, size_t begin);

/* ---- decoding ---- */
typedef enum rlp_kind { RLP_BYTES = 0, RLP_LIST = 1 } rlp_kind;

typedef struct rlp_item {
  rlp_kind kind;
  const uint8_t *ptr; /* payload (borrowed from the input) */
  size_t len;         /* payload length */
  size_t enc_len;     /* header + payload */
} rlp_item;

/* Decodes the header of the first item of in[0..len) (payload not descended into).
 * Returns 0, ERR_FORMAT (non-canonical or truncated) or ERR_TOOBIG. Trailing bytes after
 * the item are allowed here (see rlp_decode). */
int rlp_item_read(const uint8_t *in, size_t len, rlp_item *item_out);
/* Decodes exactly one item spanning the whole input and validates every nested item
 * (depth ≤ RLP_MAX_DEPTH). Returns 0, ERR_FORMAT or ERR_TOOBIG. */
int rlp_decode(const uint8_t *in, size_t len, rlp_item *item_out);
/* Validates a sequence of items filling payload[0..len) recursively. */
int rlp_validate(const uint8_t *in, size_t len, unsigned depth);

/* Iterates over a list's items. */
typedef struct rlp_iter {
  const uint8_t *p; /* next item */
  size_t left;      /* bytes left in the list payload */
} rlp_iter;

void rlp_iter_init(rlp_iter *it, const rlp_item *list);
/* Returns 1 and the next item, 0 at the end, or ERR_FORMAT. */
int rlp_iter_next(rlp_iter *it, rlp_item *item_out);
/* Counts the items of a list (ERR_FORMAT on malformed payload). */
int rlp_list_count(const rlp_item *list);

/* Reads a byte string as a canonical integer: no leading zero bytes (0 is the empty
 * string). Returns 0, ERR_FORMAT (a list or leading zeros) or ERR_RANGE. */
int rlp_get_u64(const rlp_item *it, uint64_t *out);
int rlp_get_u256(const rlp_item *it, u256 *out);
/* A byte string of exactly n bytes (ERR_FORMAT otherwise). */
int rlp_get_fixed(const rlp_item *it, uint8_t *out, size_t n);

#endif
