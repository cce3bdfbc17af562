/* crypto/eip712 — EIP-712 typed data hashing, voucher digests, personal_sign; see eip712.h.
 *
 * Types are looked up in the jansson "types" object on every use (typed data is small);
 * recursion is bounded by EIP712_MAX_DEPTH and the dependency set by EIP712_MAX_TYPES. */
#include "crypto/eip712.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"

/* ---- type helpers ---- */

/* Is type an array ("T[]" / "T[n]")? Then elem_out gets T (NUL-terminated, cap bytes) and
 * *fixed_out the length (-1 dynamic). */
static int split_array(const char *type, char *elem_out, size_t cap, long *fixed_out) {
  size_t n = strlen(type);
  if (!n || type[n - 1] != ']') return 0;
  const char *lb = strrchr(type, '[');
  if (!lb || (size_t)(lb - type) + 1 > cap || lb == type) return ERR_FORMAT;
  memcpy(elem_out, type, (size_t)(lb - type));
  elem_out[lb - type] = 0;
  if (lb[1] == ']') {
    *fixed_out = -1;
  } else {
    char *end;
    long v = strtol(lb + 1, &end, 10);
    if (end != type + n - 1 || v < 0 || v > 1000000 || lb[1] < '0' || lb[1] > '9') return ERR_FORMAT;
    *fixed_out = v;
  }
  return 1;
}

/* The struct name at the root of a member type (array suffixes stripped). */
static void base_name(const char *type, char *out, size_t cap) {
  size_t n = strcspn(type, "[");
  if (n >= cap) n = cap - 1;
  memcpy(out, type, n);
  out[n] = 0;
}

static const json_t *struct_members(const json_t *types, const char *name) {
  const json_t *m = json_object_get(types, name);
  return json_is_array(m) ? m : NULL;
}

static int member(const json_t *m, const char **name, const char **type) {
  *name = json_string_value(json_object_get(m, "name"));
  *type = json_string_value(json_object_get(m, "type"));
  return *name && *type ? 0 : ERR_FORMAT;
}

/* Collects primary and every struct it references into deps (unique). */
static int collect(const json_t *types, const char *name, const char **deps, size_t *n, unsigned depth) {
  if (depth > EIP712_MAX_DEPTH) return ERR_TOOBIG;
  for (size_t i = 0; i < *n; i++) {
    if (!strcmp(deps[i], name)) return 0;
  }
  const json_t *ms = struct_members(types, name);
  if (!ms) return 0; /* atomic */
  if (*n >= EIP712_MAX_TYPES) return ERR_TOOBIG;
  const char *key = NULL;
  json_t *tmp;
  json_object_foreach((json_t *)types, key, tmp) {
    if (!strcmp(key, name)) break; /* use the key's storage: outlives this call */
  }
  deps[(*n)++] = key;
  size_t i;
  json_t *m;
  json_array_foreach(ms, i, m) {
    const char *mn, *mt;
    if (member(m, &mn, &mt)) return ERR_FORMAT;
    char b[128];
    base_name(mt, b, sizeof b);
    int rc = collect(types, b, deps, n, depth + 1);
    if (rc) return rc;
  }
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static int append_one_type(const json_t *types, const char *name, buf *out) {
  const json_t *ms = struct_members(types, name);
  int rc = buf_append_str(out, name);
  if (!rc) rc = buf_append(out, "(", 1);
  size_t i;
  json_t *m;
  json_array_foreach(ms, i, m) {
    const char *mn, *mt;
    if (member(m, &mn, &mt)) return ERR_FORMAT;
    if (!rc && i) rc = buf_append(out, ",", 1);
    if (!rc) rc = buf_printf(out, "%s %s", mt, mn);
  }
  if (!rc) rc = buf_append(out, ")", 1);
  return rc;
}

int eip712_encode_type(const json_t *types, const char *primary, buf *out) {
  if (!struct_members(types, primary)) return ERR_FORMAT;
  const char *deps[EIP712_MAX_TYPES];
  size_t n = 0;
  int rc = collect(types, primary, deps, &n, 0);
  if (rc) return rc;
  qsort(deps + 1, n - 1, sizeof deps[0], cmp_str);
  for (size_t i = 0; i < n && !rc; i++) rc = append_one_type(types, deps[i], out);
  return rc;
}

int eip712_type_hash(const json_t *types, const char *primary, uint8_t out[static 32]) {
  buf b;
  buf_init(&b);
  int rc = eip712_encode_type(types, primary, &b);
  if (!rc) keccak256(b.ptr, b.len, out);
  buf_deinit(&b);
  return rc;
}

/* ---- values ---- */

static int hash_struct(const json_t *types, const char *name, const json_t *data, uint8_t out[32], unsigned depth);

/* Parses a number for uint<bits>/int<bits> into a 256-bit two's-complement word. */
static int encode_number(const json_t *v, unsigned bits, bool is_signed, uint8_t word[32]) {
  u256 mag;
  bool neg = false;
  if (json_is_integer(v)) {
    json_int_t x = json_integer_value(v);
    neg = x < 0;
    mag = u256_from_u64(neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x);
  } else if (json_is_string(v)) {
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n && s[0] == '-') neg = true, s++, n--;
    if (u256_from_str(s, n, &mag)) return ERR_FORMAT;
  } else {
    return ERR_FORMAT;
  }
  if (neg && !is_signed && !u256_is_zero(&mag)) return ERR_RANGE;
  if (!is_signed) {
    if (u256_bits(&mag) > bits) return ERR_RANGE;
  } else if (!neg) {
    if (u256_bits(&mag) > bits - 1) return ERR_RANGE;
  } else {
    u256 one = u256_from_u64(1), m1;
    if (!u256_is_zero(&mag)) {
      u256_sub(&m1, &mag, &one);
      if (u256_bits(&m1) > bits - 1) return ERR_RANGE;
      /* two's complement: ~mag + 1 */
      for (int i = 0; i < 4; i++) mag.w[i] = ~mag.w[i];
      u256_add(&mag, &mag, &one);
    }
  }
  u256_to_be32(&mag, word);
  return 0;
}

static int parse_bits(const char *s, unsigned *bits) {
  if (!*s) {
    *bits = 256;
    return 0;
  }
  char *end;
  long b = strtol(s, &end, 10);
  if (*end || b < 8 || b > 256 || b % 8 || s[0] == '0') return ERR_FORMAT;
  *bits = (unsigned)b;
  return 0;
}

/* Bytes from a "0x…" hex string; returns the length or an error. *out is malloc'd. */
static int hex_bytes(const json_t *v, uint8_t **out) {
  const char *s = json_string_value(v);
  if (!s) return ERR_FORMAT;
  size_t n = json_string_length(v);
  if (n < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return ERR_FORMAT;
  if (n > (1u << 24)) return ERR_TOOBIG;
  *out = malloc(n / 2 + 1);
  if (!*out) return ERR_NOMEM;
  int k = hex_decode_var(s, n, *out, n / 2 + 1);
  if (k < 0) {
    free(*out);
    *out = NULL;
  }
  return k;
}

static int encode_value(const json_t *types, const char *type, const json_t *v, uint8_t word[32], unsigned depth) {
  if (depth > EIP712_MAX_DEPTH) return ERR_TOOBIG;
  char elem[128];
  long fixed;
  int arr = split_array(type, elem, sizeof elem, &fixed);
  if (arr < 0) return arr;
  if (arr) {
    if (!json_is_array(v)) return ERR_FORMAT;
    if (fixed >= 0 && json_array_size(v) != (size_t)fixed) return ERR_FORMAT;
    keccak256_ctx c;
    keccak256_init(&c);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      uint8_t w[32];
      int rc = encode_value(types, elem, x, w, depth + 1);
      if (rc) return rc;
      keccak256_update(&c, w, 32);
    }
    keccak256_final(&c, word);
    return 0;
  }
  if (struct_members(types, type)) return hash_struct(types, type, v, word, depth + 1);
  memset(word, 0, 32);
  if (!strcmp(type, "string")) {
    if (!json_is_string(v)) return ERR_FORMAT;
    keccak256(json_string_value(v), json_string_length(v), word);
    return 0;
  }
  if (!strcmp(type, "bytes")) {
    uint8_t *b = NULL;
    int k = hex_bytes(v, &b);
    if (k < 0) return k;
    keccak256(b, (size_t)k, word);
    free(b);
    return 0;
  }
  if (!strcmp(type, "bool")) {
    if (json_is_boolean(v)) word[31] = json_is_true(v);
    else if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1))
      word[31] = (uint8_t)json_integer_value(v);
    else return ERR_FORMAT;
    return 0;
  }
  if (!strcmp(type, "address")) {
    const char *s = json_string_value(v);
    if (!s || hex_decode(s, json_string_length(v), word + 12, 20)) return ERR_FORMAT;
    return 0;
  }
  unsigned bits;
  if (!strncmp(type, "uint", 4)) {
    if (parse_bits(type + 4, &bits)) return ERR_FORMAT;
    return encode_number(v, bits, false, word);
  }
  if (!strncmp(type, "int", 3)) {
    if (parse_bits(type + 3, &bits)) return ERR_FORMAT;
    return encode_number(v, bits, true, word);
  }
  if (!strncmp(type, "bytes", 5)) {
    char *end;
    long n = strtol(type + 5, &end, 10);
    if (*end || n < 1 || n > 32) return ERR_FORMAT;
    const char *s = json_string_value(v);
    if (!s || hex_decode(s, json_string_length(v), word, (size_t)n)) return ERR_FORMAT;
    return 0;
  }
  return ERR_UNSUPPORTED;
}

static int encode_data(const json_t *types, const char *name, const json_t *data, buf *out, unsigned depth) {
  const json_t *ms = struct_members(types, name);
  if (!ms || !json_is_object(data)) return ERR_FORMAT;
  uint8_t w[32];
  int rc = eip712_type_hash(types, name, w);
  if (!rc) rc = buf_append(out, w, 32);
  size_t i;
  json_t *m;
  json_array_foreach(ms, i, m) {
    if (rc) break;
    const char *mn, *mt;
    if (member(m, &mn, &mt)) return ERR_FORMAT;
    const json_t *v = json_object_get(data, mn);
    if (!v) return ERR_FORMAT;
    rc = encode_value(types, mt, v, w, depth);
    if (!rc) rc = buf_append(out, w, 32);
  }
  return rc;
}

static int hash_struct(const json_t *types, const char *name, const json_t *data, uint8_t out[32], unsigned depth) {
  if (depth > EIP712_MAX_DEPTH) return ERR_TOOBIG;
  buf b;
  buf_init(&b);
  int rc = encode_data(types, name, data, &b, depth);
  if (!rc) keccak256(b.ptr, b.len, out);
  buf_deinit(&b);
  return rc;
}

int eip712_encode_data(const json_t *types, const char *primary, const json_t *data, buf *out) {
  return encode_data(types, primary, data, out, 0);
}

int eip712_hash_struct(const json_t *types, const char *primary, const json_t *data, uint8_t out[static 32]) {
  return hash_struct(types, primary, data, out, 0);
}

int eip712_domain_separator(const json_t *typed, uint8_t out[static 32]) {
  const json_t *types = json_object_get(typed, "types");
  const json_t *domain = json_object_get(typed, "domain");
  if (!json_is_object(domain)) return ERR_FORMAT;
  if (struct_members(types, "EIP712Domain")) return hash_struct(types, "EIP712Domain", domain, out, 0);
  static const char *const fields[][2] = {{"name", "string"},
                                          {"version", "string"},
                                          {"chainId", "uint256"},
                                          {"verifyingContract", "address"},
                                          {"salt", "bytes32"}};
  json_t *t = json_object(), *arr = json_array();
  for (size_t i = 0; i < 5; i++) {
    if (json_object_get(domain, fields[i][0]))
      json_array_append_new(arr, json_pack("{s:s,s:s}", "name", fields[i][0], "type", fields[i][1]));
  }
  json_object_set_new(t, "EIP712Domain", arr);
  int rc = hash_struct(t, "EIP712Domain", domain, out, 0);
  json_decref(t);
  return rc;
}

void eip712_digest(const uint8_t domain[static 32], const uint8_t struct_hash[static 32], uint8_t out[static 32]) {
  uint8_t m[66] = {0x19, 0x01};
  memcpy(m + 2, domain, 32);
  memcpy(m + 34, struct_hash, 32);
  keccak256(m, sizeof m, out);
}

int eip712_digest_json(const json_t *typed, uint8_t out[static 32]) {
  uint8_t dom[32], hs[32];
  const char *primary = json_string_value(json_object_get(typed, "primaryType"));
  if (!primary) return ERR_FORMAT;
  int rc = eip712_domain_separator(typed, dom);
  if (!rc) rc = eip712_hash_struct(json_object_get(typed, "types"), primary, json_object_get(typed, "message"), hs);
  if (!rc) eip712_digest(dom, hs, out);
  return rc;
}

/* ---- signatures ---- */

int eip712_sign(const wallet *w, const uint8_t digest[static 32], uint8_t sig_out[static 65]) {
  int rc = secp_sign(w->sk, digest, sig_out);
  if (!rc) sig_out[64] += 27;
  return rc;
}

int eip712_recover(const uint8_t digest[static 32], const uint8_t sig[static 65], uint8_t addr_out[static 20]) {
  return secp_recover_rsv(digest, sig, addr_out);
}

void eth_personal_digest(const void *msg, size_t len, uint8_t out[static 32]) {
  char prefix[64];
  int n = snprintf(prefix, sizeof prefix, "\x19" "Ethereum Signed Message:\n%zu", len);
  keccak256_ctx c;
  keccak256_init(&c);
  keccak256_update(&c, prefix, (size_t)n);
  keccak256_update(&c, msg, len);
  keccak256_final(&c, out);
}

/* ---- the voucher ---- */

void eip712_voucher_domain(uint64_t chain_id, const uint8_t contract[static 20], uint8_t out[static 32]) {
  uint8_t enc[5 * 32] = {0};
  keccak256(EIP712_DOMAIN_TYPE, strlen(EIP712_DOMAIN_TYPE), enc);
  keccak256(EIP712_VOUCHER_NAME, strlen(EIP712_VOUCHER_NAME), enc + 32);
  keccak256(EIP712_VOUCHER_VERSION, strlen(EIP712_VOUCHER_VERSION), enc + 64);
  u256 cid = u256_from_u64(chain_id);
  u256_to_be32(&cid, enc + 96);
  memcpy(enc + 128 + 12, contract, 20);
  keccak256(enc, sizeof enc, out);
}

void eip712_voucher_digest(uint64_t chain_id, const uint8_t contract[static 20], const uint8_t channel_id[static 32],
                           const u256 *amount, uint8_t out[static 32]) {
  uint8_t dom[32], enc[3 * 32], hs[32];
  eip712_voucher_domain(chain_id, contract, dom);
  keccak256(EIP712_VOUCHER_TYPE, strlen(EIP712_VOUCHER_TYPE), enc);
  memcpy(enc + 32, channel_id, 32);
  u256_to_be32(amount, enc + 64);
  keccak256(enc, sizeof enc, hs);
  eip712_digest(dom, hs, out);
}

int eip712_voucher_sign(const wallet *w, uint64_t chain_id, const uint8_t contract[static 20],
                        const uint8_t channel_id[static 32], const u256 *amount, uint8_t sig_out[static 65]) {
  uint8_t d[32];
  eip712_voucher_digest(chain_id, contract, channel_id, amount, d);
  return eip712_sign(w, d, sig_out);
}

int eip712_voucher_signer(uint64_t chain_id, const uint8_t contract[static 20], const uint8_t channel_id[static 32],
                          const u256 *amount, const uint8_t sig[static 65], uint8_t addr_out[static 20]) {
  uint8_t d[32];
  eip712_voucher_digest(chain_id, contract, channel_id, amount, d);
  return eip712_recover(d, sig, addr_out);
}
