/* chain/tx — legacy/EIP-155 and EIP-1559 transaction encoding and signing; see tx.h. */
#include "chain/tx.h"

#include <string.h>

#include "chain/rlp.h"
#include "core/err.h"
#include "crypto/keccak.h"
#include "crypto/secp.h"

void tx_init(tx *t, int type, uint64_t chain_id) {
  memset(t, 0, sizeof *t);
  t->type = type;
  t->chain_id = chain_id;
}

static int put_access(buf *b, const tx *t) {
  if (!t->naccess && t->access_rlp) return rlp_put_raw(b, t->access_rlp, t->access_rlp_len);
  size_t at = rlp_list_begin(b);
  int rc = 0;
  for (size_t i = 0; i < t->naccess && !rc; i++) {
    size_t e = rlp_list_begin(b);
    rc = rlp_put_bytes(b, t->access[i].addr, 20);
    size_t k = rlp_list_begin(b);
    for (size_t j = 0; j < t->access[i].nkeys && !rc; j++) rc = rlp_put_bytes(b, t->access[i].keys[j], 32);
    if (!rc) rc = rlp_list_end(b, k);
    if (!rc) rc = rlp_list_end(b, e);
  }
  if (!rc) rc = rlp_list_end(b, at);
  return rc;
}

/* r and s travel as minimal integers. */
static int put_word(buf *b, const uint8_t w[32]) {
  size_t i = 0;
  while (i < 32 && !w[i]) i++;
  return rlp_put_bytes(b, w + i, 32 - i);
}

/* The common fields; signed: 0 = signing payload, 1 = signed form. */
static int encode(const tx *t, buf *b, int with_sig) {
  int rc;
  if (t->type == TX_EIP1559) {
    if ((rc = buf_append(b, "\x02", 1))) return rc;
    size_t at = rlp_list_begin(b);
    rc = rlp_put_u64(b, t->chain_id);
    if (!rc) rc = rlp_put_u64(b, t->nonce);
    if (!rc) rc = rlp_put_u256(b, &t->max_priority_fee);
    if (!rc) rc = rlp_put_u256(b, &t->max_fee);
    if (!rc) rc = rlp_put_u64(b, t->gas_limit);
    if (!rc) rc = rlp_put_bytes(b, t->to, t->has_to ? 20 : 0);
    if (!rc) rc = rlp_put_u256(b, &t->value);
    if (!rc) rc = rlp_put_bytes(b, t->data, t->data_len);
    if (!rc) rc = put_access(b, t);
    if (with_sig) {
      if (!rc) rc = rlp_put_u64(b, t->y_parity);
      if (!rc) rc = put_word(b, t->r);
      if (!rc) rc = put_word(b, t->s);
    }
    if (!rc) rc = rlp_list_end(b, at);
    return rc;
  }
  if (t->type != TX_LEGACY) return ERR_INVAL;
  size_t at = rlp_list_begin(b);
  rc = rlp_put_u64(b, t->nonce);
  if (!rc) rc = rlp_put_u256(b, &t->gas_price);
  if (!rc) rc = rlp_put_u64(b, t->gas_limit);
  if (!rc) rc = rlp_put_bytes(b, t->to, t->has_to ? 20 : 0);
  if (!rc) rc = rlp_put_u256(b, &t->value);
  if (!rc) rc = rlp_put_bytes(b, t->data, t->data_len);
  if (with_sig) {
    u256 v = u256_from_u64(27u + t->y_parity);
    if (t->chain_id) {
      v = u256_from_u64(t->chain_id);
      if (u256_mul_u64(&v, &v, 2)) return ERR_RANGE;
      u256 add = u256_from_u64(35u + t->y_parity);
      if (u256_add(&v, &v, &add)) return ERR_RANGE;
    }
    if (!rc) rc = rlp_put_u256(b, &v);
    if (!rc) rc = put_word(b, t->r);
    if (!rc) rc = put_word(b, t->s);
  } else if (t->chain_id) {
    if (!rc) rc = rlp_put_u64(b, t->chain_id);
    if (!rc) rc = rlp_put_bytes(b, NULL, 0);
    if (!rc) rc = rlp_put_bytes(b, NULL, 0);
  }
  if (!rc) rc = rlp_list_end(b, at);
  return rc;
}

int tx_encode_unsigned(const tx *t, buf *out) { return encode(t, out, 0); }
int tx_encode_signed(const tx *t, buf *out) { return encode(t, out, 1); }

int tx_signing_hash(const tx *t, uint8_t hash_out[static 32]) {
  buf b;
  buf_init(&b);
  int rc = encode(t, &b, 0);
  if (!rc) keccak256(b.ptr, b.len, hash_out);
  buf_deinit(&b);
  return rc;
}

void tx_hash(const uint8_t *raw, size_t len, uint8_t hash_out[static 32]) { keccak256(raw, len, hash_out); }

int tx_sign(tx *t, const wallet *w, buf *raw_out, uint8_t hash_out[static 32]) {
  uint8_t h[32], sig[SECP_SIG_BYTES];
  int rc = tx_signing_hash(t, h);
  if (rc) return rc;
  rc = secp_sign(w->sk, h, sig);
  if (rc) return rc;
  memcpy(t->r, sig, 32);
  memcpy(t->s, sig + 32, 32);
  t->y_parity = sig[64];
  size_t start = raw_out->len;
  rc = encode(t, raw_out, 1);
  if (!rc) keccak256(raw_out->ptr + start, raw_out->len - start, hash_out);
  return rc;
}

int tx_sender(const tx *t, uint8_t addr_out[static 20]) {
  uint8_t h[32], sig[64], pub[64];
  if (tx_signing_hash(t, h)) return ERR_CRYPTO;
  memcpy(sig, t->r, 32);
  memcpy(sig + 32, t->s, 32);
  return secp_recover(h, sig, t->y_parity, pub, addr_out);
}

/* r/s: canonical integer of at most 32 bytes, left-padded. */
static int get_word(const rlp_item *it, uint8_t out[32]) {
  u256 v;
  int rc = rlp_get_u256(it, &v);
  if (rc) return ERR_FORMAT;
  u256_to_be32(&v, out);
  return 0;
}

static int get_to(const rlp_item *it, tx *t) {
  if (it->kind != RLP_BYTES) return ERR_FORMAT;
  if (it->len == 0) {
    t->has_to = false;
    return 0;
  }
  t->has_to = true;
  return rlp_get_fixed(it, t->to, 20);
}

/* Checks an access list's shape: [[addr20, [key32...]]...]. */
static int check_access(const rlp_item *al) {
  if (al->kind != RLP_LIST) return ERR_FORMAT;
  rlp_iter i;
  rlp_iter_init(&i, al);
  rlp_item e;
  int rc;
  while ((rc = rlp_iter_next(&i, &e)) == 1) {
    if (e.kind != RLP_LIST || rlp_list_count(&e) != 2) return ERR_FORMAT;
    rlp_iter j;
    rlp_iter_init(&j, &e);
    rlp_item a, keys, k;
    rlp_iter_next(&j, &a);
    rlp_iter_next(&j, &keys);
    if (a.kind != RLP_BYTES || a.len != 20 || keys.kind != RLP_LIST) return ERR_FORMAT;
    rlp_iter ki;
    rlp_iter_init(&ki, &keys);
    while ((rc = rlp_iter_next(&ki, &k)) == 1) {
      if (k.kind != RLP_BYTES || k.len != 32) return ERR_FORMAT;
    }
    if (rc < 0) return rc;
  }
  return rc < 0 ? rc : 0;
}

int tx_decode(const uint8_t *raw, size_t len, tx *t) {
  if (len > TX_MAX_RAW) return ERR_TOOBIG;
  if (!len) return ERR_FORMAT;
  memset(t, 0, sizeof *t);
  rlp_item root, f[12];
  int rc;
  if (raw[0] >= 0xc0) {
    t->type = TX_LEGACY;
    rc = rlp_decode(raw, len, &root);
  } else if (raw[0] == TX_EIP1559) {
    t->type = TX_EIP1559;
    rc = rlp_decode(raw + 1, len - 1, &root);
  } else {
    return raw[0] <= 0x7f ? ERR_UNSUPPORTED : ERR_FORMAT;
  }
  if (rc) return rc;
  if (root.kind != RLP_LIST) return ERR_FORMAT;
  size_t want = t->type == TX_EIP1559 ? 12 : 9, n = 0;
  rlp_iter it;
  rlp_iter_init(&it, &root);
  rlp_item x;
  while ((rc = rlp_iter_next(&it, &x)) == 1) {
    if (n == want) return ERR_FORMAT;
    f[n++] = x;
  }
  if (rc < 0 || n != want) return ERR_FORMAT;
  /* Scalars must be byte strings. */
  for (size_t i = 0; i < n; i++) {
    if (f[i].kind != RLP_BYTES && !(t->type == TX_EIP1559 && i == 8)) return ERR_FORMAT;
  }
  if (t->type == TX_EIP1559) {
    uint64_t yp;
    if (rlp_get_u64(&f[0], &t->chain_id) || rlp_get_u64(&f[1], &t->nonce) ||
        rlp_get_u256(&f[2], &t->max_priority_fee) || rlp_get_u256(&f[3], &t->max_fee) ||
        rlp_get_u64(&f[4], &t->gas_limit) || get_to(&f[5], t) || rlp_get_u256(&f[6], &t->value) ||
        check_access(&f[8]) || rlp_get_u64(&f[9], &yp) || get_word(&f[10], t->r) || get_word(&f[11], t->s))
      return ERR_FORMAT;
    if (yp > 1) return ERR_FORMAT;
    t->y_parity = (uint8_t)yp;
    t->data = f[7].ptr;
    t->data_len = f[7].len;
    t->access_rlp = f[8].ptr - (f[8].enc_len - f[8].len);
    t->access_rlp_len = f[8].enc_len;
    return 0;
  }
  u256 v;
  if (rlp_get_u64(&f[0], &t->nonce) || rlp_get_u256(&f[1], &t->gas_price) || rlp_get_u64(&f[2], &t->gas_limit) ||
      get_to(&f[3], t) || rlp_get_u256(&f[4], &t->value) || rlp_get_u256(&f[6], &v) || get_word(&f[7], t->r) ||
      get_word(&f[8], t->s))
    return ERR_FORMAT;
  t->data = f[5].ptr;
  t->data_len = f[5].len;
  uint64_t vv;
  if (u256_to_u64(&v, &vv)) return ERR_FORMAT;
  if (vv == 27 || vv == 28) {
    t->chain_id = 0;
    t->y_parity = (uint8_t)(vv - 27);
  } else if (vv >= 37) { /* 35/36 would mean chain id 0, which EIP-155 does not allow */
    t->chain_id = (vv - 35) / 2;
    t->y_parity = (uint8_t)((vv - 35) % 2);
  } else {
    return ERR_FORMAT;
  }
  return 0;
}

void tx_create_address(const uint8_t sender[static 20], uint64_t nonce, uint8_t addr_out[static 20]) {
  /* At most 1 + 21 + 9 bytes: build it on the stack, no allocation. */
  uint8_t enc[32], *p = enc + 1;
  *p++ = 0x80 + 20;
  memcpy(p, sender, 20);
  p += 20;
  if (nonce == 0) {
    *p++ = 0x80;
  } else if (nonce < 0x80) {
    *p++ = (uint8_t)nonce;
  } else {
    uint8_t be[8];
    size_t n = 0;
    for (uint64_t v = nonce; v; v >>= 8) n++;
    for (size_t i = 0; i < n; i++) be[i] = (uint8_t)(nonce >> (8 * (n - 1 - i)));
    *p++ = (uint8_t)(0x80 + n);
    memcpy(p, be, n);
    p += n;
  }
  enc[0] = (uint8_t)(0xc0 + (p - enc - 1));
  uint8_t h[32];
  keccak256(enc, (size_t)(p - enc), h);
  memcpy(addr_out, h + 12, 20);
}
