/* chain/abi — the Solidity contract ABI: types, function selectors, event topics, encoding
 * of calls, decoding of return data, logs and revert data.
 *
 * Types are written as in Solidity signatures: "transfer(address,uint256)",
 * "(uint256,string,(bytes32,uint64)[])"; uint<N>/int<N> (N = 8..256, "uint" = uint256),
 * address, bool, bytes<N> (1..32), bytes, string, T[], T[k] and tuples. Parameter names,
 * "indexed" and data-location words are accepted and ignored (so event declarations copied
 * from Solidity work); selectors and topics hash the canonical form.
 *
 * Values are abi_value trees. Building a call borrows the caller's values. Decoding is
 * zero-copy and allocation-free: bytes/string point into the input, and array/tuple items
 * come from a caller-provided pool (ABI_POOL_DEFAULT values is plenty for contract
 * returns); the decoder is strict (dirty high bits, non-0/1 bools, out-of-range offsets
 * and lengths are ERR_FORMAT) and capped (input ABI_MAX_INPUT bytes, pool size, type
 * nesting ABI_MAX_DEPTH). Pure (no I/O); thread-safe. */
#ifndef APIARY_CHAIN_ABI_H
#define APIARY_CHAIN_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "crypto/u256.h"

#define ABI_MAX_NODES 128         /* type nodes in one signature */
#define ABI_MAX_DEPTH 16          /* type nesting */
#define ABI_MAX_PARAMS 32         /* top-level parameters */
#define ABI_MAX_INPUT (4u << 20)  /* decoder input cap, bytes */
#define ABI_POOL_DEFAULT 256
#define ABI_REASON_MAX 256

typedef enum abi_kind {
  ABI_UINT,
  ABI_INT,
  ABI_ADDRESS,
  ABI_BOOL,
  ABI_FIXED_BYTES, /* bytes1..bytes32 */
  ABI_BYTES,
  ABI_STRING,
  ABI_ARRAY,       /* T[] and T[k] */
  ABI_TUPLE,
} abi_kind;

typedef struct abi_value {
  abi_kind kind;
  u256 num;                      /* uint; int as 256-bit two's complement; bool 0/1 */
  uint8_t b[32];                 /* address in b[0..20), bytesN in b[0..N) */
  const uint8_t *ptr;            /* bytes/string contents (borrowed) */
  size_t len;                    /* bytes/string length; bytesN: N */
  const struct abi_value *items; /* array/tuple members (borrowed) */
  size_t n;                      /* member count */
} abi_value;

/* ---- value constructors (no allocation; the value borrows pointers) ---- */
static inline abi_value abi_uint(uint64_t v) { abi_value x = {.kind = ABI_UINT, .num = u256_from_u64(v)}; return x; }
static inline abi_value abi_u256(const u256 *v) { abi_value x = {.kind = ABI_UINT, .num = *v}; return x; }
abi_value abi_int(int64_t v);
static inline abi_value abi_bool(bool v) { abi_value x = {.kind = ABI_BOOL, .num = u256_from_u64(v)}; return x; }
static inline abi_value abi_address(const uint8_t a[static 20]) {
  abi_value x = {.kind = ABI_ADDRESS, .len = 20};
  memcpy(x.b, a, 20);
  return x;
}
static inline abi_value abi_fixed_bytes(const uint8_t *p, size_t n) { /* n 1..32 */
  abi_value x = {.kind = ABI_FIXED_BYTES, .len = n > 32 ? 32 : n};
  memcpy(x.b, p, x.len);
  return x;
}
static inline abi_value abi_bytes(const uint8_t *p, size_t n) { abi_value x = {.kind = ABI_BYTES, .ptr = p, .len = n}; return x; }
static inline abi_value abi_string(const char *s) {
  abi_value x = {.kind = ABI_STRING, .ptr = (const uint8_t *)s, .len = strlen(s)};
  return x;
}
static inline abi_value abi_array(const abi_value *items, size_t n) { abi_value x = {.kind = ABI_ARRAY, .items = items, .n = n}; return x; }
static inline abi_value abi_tuple(const abi_value *items, size_t n) { abi_value x = {.kind = ABI_TUPLE, .items = items, .n = n}; return x; }

/* ---- parsed signatures ---- */
typedef struct abi_type {
  abi_kind kind;
  uint16_t bits;       /* uint/int width; bytesN: N */
  int32_t arr_len;     /* ABI_ARRAY: -1 dynamic, else k */
  int16_t child;       /* first child (array element / tuple member), -1 none */
  int16_t next;        /* next sibling, -1 none */
  uint16_t nchild;     /* tuple member count */
  bool indexed;        /* top-level event parameter marked "indexed" */
} abi_type;

typedef struct abi_sig {
  char name[64];                  /* function/event name ("" for a bare tuple) */
  abi_type nodes[ABI_MAX_NODES];  /* nodes[0] is the parameter tuple */
  size_t nnodes;
  char canonical[512];            /* "name(type,...)" */
} abi_sig;

/* Parses "name(t1,t2 x,...)" or "(t1,...)". Returns 0, ERR_FORMAT, ERR_UNSUPPORTED
 * (fixed-point) or ERR_TOOBIG. */
int abi_sig_parse(const char *sig, abi_sig *out);
/* First 4 bytes of keccak256(canonical signature). */
int abi_selector(const char *sig, uint8_t out[static 4]);
/* keccak256(canonical event signature): topic 0 of a non-anonymous event. */
int abi_event_topic(const char *sig, uint8_t out[static 32]);

/* ---- encoding (appends; returns 0, ERR_INVAL on a value/type mismatch, ERR_RANGE,
 * ERR_FORMAT for a bad signature, ERR_NOMEM) ---- */
/* Encodes args as the tuple of types ("(uint256,string)" or a signature; its name is ignored). */
int abi_encode(buf *out, const char *types, const abi_value *args, size_t nargs);
/* selector || abi_encode(args): calldata for sig. */
int abi_encode_call(buf *out, const char *sig, const abi_value *args, size_t nargs);

/* ---- decoding ---- */
/* Decodes data as the tuple of types. *out_tuple points into pool (pool[0]); values
 * borrow data. Returns the number of pool slots used, ERR_FORMAT, ERR_TOOBIG (input or
 * pool too small). */
int abi_decode(const char *types, const uint8_t *data, size_t len, abi_value *pool, size_t pool_cap,
               const abi_value **out_tuple);
/* Decodes a log of event_decl (e.g. "Transfer(address indexed from,address indexed to,uint256 value)"):
 * topics[0] must equal the event topic; indexed parameters come from topics[1..] (dynamic
 * indexed types yield their 32-byte hash as bytes32), the rest from data. The result
 * tuple lists every parameter in declaration order. */
int abi_decode_log(const char *event_decl, const uint8_t (*topics)[32], size_t ntopics, const uint8_t *data,
                   size_t len, abi_value *pool, size_t pool_cap, const abi_value **out_tuple);

/* Readable reason for revert data: Error(string) → the string, Panic(uint256) → "panic
 * 0x11: arithmetic overflow or underflow", empty → "reverted without a reason", anything
 * else → "custom error 0x<selector>" (+ byte count). Always writes a NUL-terminated text
 * (control bytes replaced). Returns 0 for Error/Panic, 1 otherwise. */
int abi_revert_reason(const uint8_t *data, size_t len, char *out, size_t cap);

/* Accessors: ERR_INVAL on a kind mismatch, ERR_RANGE when it does not fit. */
int abi_get_u64(const abi_value *v, uint64_t *out);
int abi_get_i64(const abi_value *v, int64_t *out);

#endif
