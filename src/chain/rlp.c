/* chain/rlp — strict RLP encoder/decoder; see rlp.h. */
#include "chain/rlp.h"

#include <string.h>

#include "core/err.h"

/* Big-endian length bytes of v, minimal; returns the count (1..8). */
static size_t be_len(uint64_t v, uint8_t out[8]) {
  size_t n = 0;
  uint8_t tmp[8];
  do {
    tmp[n++] = (uint8_t)v;
    v >>= 8;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

/* Header for a payload of len bytes with short base 0x80 / 0xc0. */
static size_t header(uint8_t base, size_t len, uint8_t out[9]) {
  if (len <= 55) {
    out[0] = (uint8_t)(base + len);
    return 1;
  }
  size_t n = be_len(len, out + 1);
  out[0] = (uint8_t)(base + 55 + n);
  return 1 + n;
}

int rlp_put_bytes(buf *out, const void *data, size_t len) {
  if (len > RLP_MAX_INPUT) return ERR_TOOBIG;
  const uint8_t *d = data;
  if (len == 1 && d[0] < 0x80) return buf_append(out, d, 1);
  uint8_t h[9];
  size_t hn = header(0x80, len, h);
  int rc = buf_append(out, h, hn);
  if (!rc && len) rc = buf_append(out, d, len);
  return rc;
}

int rlp_put_str(buf *out, const char *s) { return rlp_put_bytes(out, s, strlen(s)); }

int rlp_put_u64(buf *out, uint64_t v) {
  if (!v) return rlp_put_bytes(out, NULL, 0);
  uint8_t b[8];
  size_t n = be_len(v, b);
  return rlp_put_bytes(out, b, n);
}

int rlp_put_u256(buf *out, const u256 *v) {
  uint8_t b[32];
  size_t n = u256_to_be_min(v, b);
  return rlp_put_bytes(out, b, n);
}

int rlp_put_raw(buf *out, const void *enc, size_t len) { return buf_append(out, enc, len); }

size_t rlp_list_begin(const buf *out) { return out->len; }

int rlp_list_end(buf *out, size_t begin) {
  if (begin > out->len) return ERR_INVAL;
  size_t plen = out->len - begin;
  if (plen > RLP_MAX_INPUT) return ERR_TOOBIG;
  uint8_t h[9];
  size_t hn = header(0xc0, plen, h);
  int rc = buf_reserve(out, hn);
  if (rc) return rc;
  memmove(out->ptr + begin + hn, out->ptr + begin, plen);
  memcpy(out->ptr + begin, h, hn);
  out->len += hn;
  out->ptr[out->len] = 0;
  return 0;
}

int rlp_item_read(const uint8_t *in, size_t len, rlp_item *item) {
  if (!len) return ERR_FORMAT;
  if (len > RLP_MAX_INPUT) return ERR_TOOBIG;
  uint8_t b = in[0];
  size_t hlen, plen;
  if (b < 0x80) {
    item->kind = RLP_BYTES;
    item->ptr = in;
    item->len = 1;
    item->enc_len = 1;
    return 0;
  }
  bool list = b >= 0xc0;
  uint8_t base = list ? 0xc0 : 0x80;
  if (b - base <= 55) {
    hlen = 1;
    plen = (size_t)(b - base);
  } else {
    size_t ll = (size_t)(b - base - 55); /* 1..8 */
    if (len < 1 + ll) return ERR_FORMAT;
    if (in[1] == 0) return ERR_FORMAT; /* leading zero in the length */
    uint64_t v = 0;
    for (size_t i = 0; i < ll; i++) {
      if (v >> 56) return ERR_TOOBIG;
      v = (v << 8) | in[1 + i];
    }
    if (v < 56) return ERR_FORMAT; /* should have used the short form */
    if (v > RLP_MAX_INPUT) return ERR_TOOBIG;
    hlen = 1 + ll;
    plen = (size_t)v;
  }
  if (plen > len - hlen) return ERR_FORMAT; /* past the end */
  if (!list && plen == 1 && in[hlen] < 0x80) return ERR_FORMAT; /* should be the byte itself */
  item->kind = list ? RLP_LIST : RLP_BYTES;
  item->ptr = in + hlen;
  item->len = plen;
  item->enc_len = hlen + plen;
  return 0;
}

int rlp_validate(const uint8_t *in, size_t len, unsigned depth) {
  if (depth > RLP_MAX_DEPTH) return ERR_TOOBIG;
  while (len) {
    rlp_item it;
    int rc = rlp_item_read(in, len, &it);
    if (rc) return rc;
    if (it.kind == RLP_LIST) {
      rc = rlp_validate(it.ptr, it.len, depth + 1);
      if (rc) return rc;
    }
    in += it.enc_len;
    len -= it.enc_len;
  }
  return 0;
}

int rlp_decode(const uint8_t *in, size_t len, rlp_item *item) {
  if (len > RLP_MAX_INPUT) return ERR_TOOBIG;
  int rc = rlp_item_read(in, len, item);
  if (rc) return rc;
  if (item->enc_len != len) return ERR_FORMAT; /* trailing bytes */
  if (item->kind == RLP_LIST) return rlp_validate(item->ptr, item->len, 1);
  return 0;
}

void rlp_iter_init(rlp_iter *it, const rlp_item *list) {
  it->p = list->ptr;
  it->left = list->kind == RLP_LIST ? list->len : 0;
}

int rlp_iter_next(rlp_iter *it, rlp_item *item) {
  if (!it->left) return 0;
  int rc = rlp_item_read(it->p, it->left, item);
  if (rc) return rc;
  it->p += item->enc_len;
  it->left -= item->enc_len;
  return 1;
}

int rlp_list_count(const rlp_item *list) {
  if (list->kind != RLP_LIST) return ERR_FORMAT;
  rlp_iter it;
  rlp_iter_init(&it, list);
  rlp_item x;
  int n = 0, rc;
  while ((rc = rlp_iter_next(&it, &x)) == 1) n++;
  return rc < 0 ? rc : n;
}

int rlp_get_u256(const rlp_item *it, u256 *out) {
  if (it->kind != RLP_BYTES) return ERR_FORMAT;
  if (it->len && it->ptr[0] == 0) return ERR_FORMAT;
  if (it->len > 32) return ERR_RANGE;
  return u256_from_be(it->ptr, it->len, out);
}

int rlp_get_u64(const rlp_item *it, uint64_t *out) {
  u256 v;
  int rc = rlp_get_u256(it, &v);
  if (rc) return rc;
  return u256_to_u64(&v, out);
}

int rlp_get_fixed(const rlp_item *it, uint8_t *out, size_t n) {
  if (it->kind != RLP_BYTES || it->len != n) return ERR_FORMAT;
  memcpy(out, it->ptr, n);
  return 0;
}
