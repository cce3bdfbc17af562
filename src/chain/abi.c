/* chain/abi — Solidity ABI encoder/decoder; see abi.h.
 *
 * A signature parses into a small tree of abi_type nodes (first-child / next-sibling
 * indexes in a fixed array). Encoding writes heads in order with 32-byte placeholders for
 * dynamic members, then appends each tail and patches its offset. Decoding walks the same
 * tree, bounds-checking every offset and length against the enclosing input. */
#include "chain/abi.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "crypto/keccak.h"

abi_value abi_int(int64_t v) {
  abi_value x = {.kind = ABI_INT};
  uint64_t ext = v < 0 ? UINT64_MAX : 0;
  x.num.w[0] = (uint64_t)v;
  x.num.w[1] = x.num.w[2] = x.num.w[3] = ext;
  return x;
}

/* ---- signature parsing ---- */

typedef struct parser {
  const char *s;
  size_t pos;
  abi_sig *sig;
} parser;

static void skip_ws(parser *p) {
  while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n') p->pos++;
}

static int new_node(parser *p, abi_kind k) {
  if (p->sig->nnodes >= ABI_MAX_NODES) return ERR_TOOBIG;
  int i = (int)p->sig->nnodes++;
  abi_type *t = &p->sig->nodes[i];
  memset(t, 0, sizeof *t);
  t->kind = k;
  t->child = -1;
  t->next = -1;
  t->arr_len = -1;
  return i;
}

static size_t ident_len(const char *s) {
  size_t n = 0;
  while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '$') n++;
  return n;
}

static int parse_bits(const char *s, size_t n, unsigned lo, unsigned hi, unsigned step, unsigned *out) {
  if (!n || n > 3 || s[0] == '0') return ERR_FORMAT;
  unsigned v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) return ERR_FORMAT;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v < lo || v > hi || v % step) return ERR_FORMAT;
  *out = v;
  return 0;
}

static int parse_type(parser *p, unsigned depth, bool top);

/* Parses "(t, t, ...)" at p->pos; returns the tuple node. top: allow names/indexed. */
static int parse_tuple(parser *p, unsigned depth, bool top) {
  if (depth > ABI_MAX_DEPTH) return ERR_TOOBIG;
  if (p->s[p->pos] != '(') return ERR_FORMAT;
  p->pos++;
  int t = new_node(p, ABI_TUPLE);
  if (t < 0) return t;
  int last = -1;
  skip_ws(p);
  if (p->s[p->pos] == ')') {
    p->pos++;
    return t;
  }
  for (;;) {
    skip_ws(p);
    int c = parse_type(p, depth + 1, top);
    if (c < 0) return c;
    if (last < 0) p->sig->nodes[t].child = (int16_t)c;
    else p->sig->nodes[last].next = (int16_t)c;
    last = c;
    if (++p->sig->nodes[t].nchild > ABI_MAX_NODES) return ERR_TOOBIG;
    /* Modifiers and a parameter name. */
    for (;;) {
      skip_ws(p);
      size_t n = ident_len(p->s + p->pos);
      if (!n) break;
      if (n == 7 && !strncmp(p->s + p->pos, "indexed", 7)) p->sig->nodes[c].indexed = true;
      p->pos += n;
    }
    if (p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->s[p->pos] == ')') {
      p->pos++;
      return t;
    }
    return ERR_FORMAT;
  }
}

static int parse_type(parser *p, unsigned depth, bool top) {
  if (depth > ABI_MAX_DEPTH) return ERR_TOOBIG;
  int node;
  const char *s = p->s + p->pos;
  if (*s == '(') {
    node = parse_tuple(p, depth, false);
    if (node < 0) return node;
  } else {
    size_t n = ident_len(s);
    if (!n) return ERR_FORMAT;
    /* "tuple" is how JSON ABIs spell it; we need the components, so refuse it. */
    abi_kind k;
    unsigned bits = 0;
    if (n == 7 && !strncmp(s, "address", 7)) k = ABI_ADDRESS;
    else if (n == 4 && !strncmp(s, "bool", 4)) k = ABI_BOOL;
    else if (n == 6 && !strncmp(s, "string", 6)) k = ABI_STRING;
    else if (n == 5 && !strncmp(s, "bytes", 5)) k = ABI_BYTES;
    else if (n == 8 && !strncmp(s, "function", 8)) k = ABI_FIXED_BYTES, bits = 24;
    else if (n > 5 && !strncmp(s, "bytes", 5)) {
      if (parse_bits(s + 5, n - 5, 1, 32, 1, &bits)) return ERR_FORMAT;
      k = ABI_FIXED_BYTES;
    } else if (n >= 4 && !strncmp(s, "uint", 4)) {
      bits = 256;
      if (n > 4 && parse_bits(s + 4, n - 4, 8, 256, 8, &bits)) return ERR_FORMAT;
      k = ABI_UINT;
    } else if (n >= 3 && !strncmp(s, "int", 3)) {
      bits = 256;
      if (n > 3 && parse_bits(s + 3, n - 3, 8, 256, 8, &bits)) return ERR_FORMAT;
      k = ABI_INT;
    } else if (!strncmp(s, "fixed", 5) || !strncmp(s, "ufixed", 6)) {
      return ERR_UNSUPPORTED;
    } else {
      return ERR_FORMAT;
    }
    node = new_node(p, k);
    if (node < 0) return node;
    p->sig->nodes[node].bits = (uint16_t)bits;
    p->pos += n;
  }
  /* Array suffixes wrap the node. */
  while (p->s[p->pos] == '[') {
    p->pos++;
    long len = -1;
    if (p->s[p->pos] != ']') {
      len = 0;
      if (!isdigit((unsigned char)p->s[p->pos])) return ERR_FORMAT;
      while (isdigit((unsigned char)p->s[p->pos])) {
        len = len * 10 + (p->s[p->pos++] - '0');
        if (len > 1000000) return ERR_TOOBIG;
      }
      if (p->s[p->pos] != ']') return ERR_FORMAT;
    }
    p->pos++;
    if (++depth > ABI_MAX_DEPTH) return ERR_TOOBIG;
    int a = new_node(p, ABI_ARRAY);
    if (a < 0) return a;
    p->sig->nodes[a].arr_len = (int32_t)len;
    p->sig->nodes[a].child = (int16_t)node;
    node = a;
  }
  (void)top;
  return node;
}

static int write_canon(const abi_sig *g, int i, buf *out) {
  const abi_type *t = &g->nodes[i];
  switch (t->kind) {
    case ABI_UINT: return buf_printf(out, "uint%u", t->bits);
    case ABI_INT: return buf_printf(out, "int%u", t->bits);
    case ABI_ADDRESS: return buf_append_str(out, "address");
    case ABI_BOOL: return buf_append_str(out, "bool");
    case ABI_FIXED_BYTES: return buf_printf(out, "bytes%u", t->bits);
    case ABI_BYTES: return buf_append_str(out, "bytes");
    case ABI_STRING: return buf_append_str(out, "string");
    case ABI_ARRAY: {
      int rc = write_canon(g, t->child, out);
      if (rc) return rc;
      return t->arr_len < 0 ? buf_append_str(out, "[]") : buf_printf(out, "[%d]", (int)t->arr_len);
    }
    case ABI_TUPLE: {
      int rc = buf_append(out, "(", 1);
      for (int c = t->child, k = 0; c >= 0 && !rc; c = g->nodes[c].next, k++) {
        if (k) rc = buf_append(out, ",", 1);
        if (!rc) rc = write_canon(g, c, out);
      }
      return rc ? rc : buf_append(out, ")", 1);
    }
  }
  return ERR_INVAL;
}

int abi_sig_parse(const char *sig, abi_sig *out) {
  memset(out, 0, offsetof(abi_sig, nodes));
  out->nnodes = 0;
  out->canonical[0] = 0;
  parser p = {sig, 0, out};
  skip_ws(&p);
  size_t n = ident_len(sig + p.pos);
  if (n >= sizeof out->name) return ERR_TOOBIG;
  memcpy(out->name, sig + p.pos, n);
  out->name[n] = 0;
  p.pos += n;
  skip_ws(&p);
  int root = parse_tuple(&p, 0, true);
  if (root < 0) return root;
  skip_ws(&p);
  if (sig[p.pos]) return ERR_FORMAT;
  if (out->nodes[0].nchild > ABI_MAX_PARAMS) return ERR_TOOBIG;
  buf b;
  buf_init(&b);
  int rc = buf_append_str(&b, out->name);
  if (!rc) rc = write_canon(out, 0, &b);
  if (!rc && b.len >= sizeof out->canonical) rc = ERR_TOOBIG;
  if (!rc) memcpy(out->canonical, b.ptr, b.len + 1);
  buf_deinit(&b);
  return rc;
}

static int hash_sig(const char *sig, uint8_t out[32]) {
  abi_sig *g = malloc(sizeof *g);
  if (!g) return ERR_NOMEM;
  int rc = abi_sig_parse(sig, g);
  if (!rc) keccak256(g->canonical, strlen(g->canonical), out);
  free(g);
  return rc;
}

int abi_selector(const char *sig, uint8_t out[static 4]) {
  uint8_t h[32];
  int rc = hash_sig(sig, h);
  if (!rc) memcpy(out, h, 4);
  return rc;
}

int abi_event_topic(const char *sig, uint8_t out[static 32]) { return hash_sig(sig, out); }

/* ---- encoding ---- */

static bool is_dynamic(const abi_sig *g, int i) {
  const abi_type *t = &g->nodes[i];
  switch (t->kind) {
    case ABI_BYTES:
    case ABI_STRING: return true;
    case ABI_ARRAY: return t->arr_len < 0 || is_dynamic(g, t->child);
    case ABI_TUPLE:
      for (int c = t->child; c >= 0; c = g->nodes[c].next) {
        if (is_dynamic(g, c)) return true;
      }
      return false;
    default: return false;
  }
}

/* Head size of a type: 32 for dynamic ones, the full encoding size for static ones.
 * Saturates at HEAD_MAX (far above ABI_MAX_INPUT) so absurd fixed arrays like
 * uint256[1000000][1000000][1000000] cannot overflow; such types never fit any input. */
#define HEAD_MAX ((size_t)1 << 40)
static size_t head_size(const abi_sig *g, int i) {
  const abi_type *t = &g->nodes[i];
  if (is_dynamic(g, i)) return 32;
  if (t->kind == ABI_ARRAY) {
    size_t e = head_size(g, t->child);
    if (e && (size_t)t->arr_len > HEAD_MAX / e) return HEAD_MAX;
    return (size_t)t->arr_len * e;
  }
  if (t->kind == ABI_TUPLE) {
    size_t s = 0;
    for (int c = t->child; c >= 0; c = g->nodes[c].next) {
      s += head_size(g, c);
      if (s > HEAD_MAX) return HEAD_MAX;
    }
    return s;
  }
  return 32;
}

static int put_word_u256(buf *out, const u256 *v) {
  uint8_t w[32];
  u256_to_be32(v, w);
  return buf_append(out, w, 32);
}

static int put_padded(buf *out, const uint8_t *p, size_t n) {
  static const uint8_t zero[32];
  int rc = n ? buf_append(out, p, n) : 0;
  if (!rc && n % 32) rc = buf_append(out, zero, 32 - n % 32);
  return rc;
}

/* Does a two's-complement 256-bit value fit in a signed bits-wide integer? */
static bool int_fits(const u256 *v, unsigned bits) {
  if (bits == 256) return true;
  bool neg = v->w[3] >> 63;
  for (unsigned b = bits - 1; b < 256; b++) {
    bool bit = (v->w[b / 64] >> (b % 64)) & 1;
    if (bit != neg) return false;
  }
  return true;
}

static int encode_value(const abi_sig *g, int ti, const abi_value *v, buf *out);

/* Encodes items (count n) as a tuple whose member types are given by next_type(). For
 * arrays every member has type elem; for tuples the member list of node ti. */
static int encode_seq(const abi_sig *g, int first_type, bool same_type, const abi_value *items, size_t n, buf *out) {
  size_t start = out->len, head = 0;
  static const uint8_t zero[32];
  int rc = 0;
  int t = first_type;
  for (size_t k = 0; k < n && !rc; k++) {
    if (t < 0) return ERR_INVAL;
    if (is_dynamic(g, t)) rc = buf_append(out, zero, 32);
    else rc = encode_value(g, t, &items[k], out);
    head += head_size(g, t);
    if (!same_type) t = g->nodes[t].next;
  }
  if (rc) return rc;
  if (!same_type && t >= 0) return ERR_INVAL; /* too few values */
  size_t pos = start;
  t = first_type;
  for (size_t k = 0; k < n && !rc; k++) {
    if (is_dynamic(g, t)) {
      u256 off = u256_from_u64(out->len - start);
      u256_to_be32(&off, out->ptr + pos);
      rc = encode_value(g, t, &items[k], out);
    }
    pos += head_size(g, t);
    if (!same_type) t = g->nodes[t].next;
  }
  (void)head;
  return rc;
}

static int encode_value(const abi_sig *g, int ti, const abi_value *v, buf *out) {
  const abi_type *t = &g->nodes[ti];
  uint8_t w[32] = {0};
  switch (t->kind) {
    case ABI_UINT:
      if (v->kind != ABI_UINT && !(v->kind == ABI_INT && !(v->num.w[3] >> 63))) return ERR_INVAL;
      if (u256_bits(&v->num) > t->bits) return ERR_RANGE;
      return put_word_u256(out, &v->num);
    case ABI_INT:
      if (v->kind == ABI_UINT) {
        if (u256_bits(&v->num) > (unsigned)t->bits - 1) return ERR_RANGE;
      } else if (v->kind != ABI_INT) {
        return ERR_INVAL;
      } else if (!int_fits(&v->num, t->bits)) {
        return ERR_RANGE;
      }
      return put_word_u256(out, &v->num);
    case ABI_BOOL:
      if (v->kind != ABI_BOOL) return ERR_INVAL;
      w[31] = !u256_is_zero(&v->num);
      return buf_append(out, w, 32);
    case ABI_ADDRESS:
      if (v->kind != ABI_ADDRESS) return ERR_INVAL;
      memcpy(w + 12, v->b, 20);
      return buf_append(out, w, 32);
    case ABI_FIXED_BYTES:
      if (v->kind != ABI_FIXED_BYTES || v->len != t->bits) return ERR_INVAL;
      memcpy(w, v->b, t->bits);
      return buf_append(out, w, 32);
    case ABI_BYTES:
    case ABI_STRING: {
      if (v->kind != ABI_BYTES && v->kind != ABI_STRING) return ERR_INVAL;
      u256 n = u256_from_u64(v->len);
      int rc = put_word_u256(out, &n);
      return rc ? rc : put_padded(out, v->ptr, v->len);
    }
    case ABI_ARRAY: {
      if (v->kind != ABI_ARRAY) return ERR_INVAL;
      if (t->arr_len >= 0 && v->n != (size_t)t->arr_len) return ERR_INVAL;
      if (t->arr_len < 0) {
        u256 n = u256_from_u64(v->n);
        int rc = put_word_u256(out, &n);
        if (rc) return rc;
      }
      return encode_seq(g, t->child, true, v->items, v->n, out);
    }
    case ABI_TUPLE:
      if (v->kind != ABI_TUPLE || v->n != t->nchild) return ERR_INVAL;
      return encode_seq(g, t->child, false, v->items, v->n, out);
  }
  return ERR_INVAL;
}

static int encode_with(const abi_sig *g, buf *out, const abi_value *args, size_t nargs) {
  if (nargs != g->nodes[0].nchild) return ERR_INVAL;
  size_t start = out->len;
  int rc = encode_seq(g, g->nodes[0].child, false, args, nargs, out);
  if (rc) out->len = start;
  return rc;
}

int abi_encode(buf *out, const char *types, const abi_value *args, size_t nargs) {
  abi_sig *g = malloc(sizeof *g);
  if (!g) return ERR_NOMEM;
  int rc = abi_sig_parse(types, g);
  if (!rc) rc = encode_with(g, out, args, nargs);
  free(g);
  return rc;
}

int abi_encode_call(buf *out, const char *sig, const abi_value *args, size_t nargs) {
  abi_sig *g = malloc(sizeof *g);
  if (!g) return ERR_NOMEM;
  size_t start = out->len;
  int rc = abi_sig_parse(sig, g);
  if (!rc) {
    uint8_t h[32];
    keccak256(g->canonical, strlen(g->canonical), h);
    rc = buf_append(out, h, 4);
  }
  if (!rc) rc = encode_with(g, out, args, nargs);
  if (rc) out->len = start;
  free(g);
  return rc;
}

/* ---- decoding ---- */

typedef struct dec {
  const abi_sig *g;
  abi_value *pool;
  size_t cap, used;
} dec;

static abi_value *alloc_vals(dec *d, size_t n) {
  if (n > d->cap - d->used) return NULL;
  abi_value *v = d->pool + d->used;
  memset(v, 0, n * sizeof *v);
  d->used += n;
  return v;
}

/* Reads a 32-byte word at off as a size_t bounded by lim. */
static int read_size(const uint8_t *data, size_t len, size_t off, size_t lim, size_t *out) {
  if (off > len || len - off < 32) return ERR_FORMAT;
  u256 v;
  u256_from_be(data + off, 32, &v);
  uint64_t x;
  if (u256_to_u64(&v, &x) || x > lim) return ERR_FORMAT;
  *out = (size_t)x;
  return 0;
}

static int decode_value(dec *d, int ti, const uint8_t *data, size_t len, size_t at, abi_value *v, unsigned depth);

/* Decodes n members starting at block[at..]; offsets of dynamic members are relative to at. */
static int decode_seq(dec *d, int first_type, bool same_type, size_t n, const uint8_t *data, size_t len, size_t at,
                      abi_value *items, unsigned depth) {
  size_t head = at;
  int t = first_type;
  for (size_t k = 0; k < n; k++) {
    if (t < 0) return ERR_FORMAT;
    int rc;
    if (is_dynamic(d->g, t)) {
      size_t off;
      rc = read_size(data, len, head, len - at, &off);
      if (rc) return rc;
      rc = decode_value(d, t, data, len, at + off, &items[k], depth + 1);
    } else {
      rc = decode_value(d, t, data, len, head, &items[k], depth + 1);
    }
    if (rc) return rc;
    head += head_size(d->g, t);
    if (!same_type) t = d->g->nodes[t].next;
  }
  return 0;
}

static int decode_value(dec *d, int ti, const uint8_t *data, size_t len, size_t at, abi_value *v, unsigned depth) {
  if (depth > 2 * ABI_MAX_DEPTH + 2) return ERR_TOOBIG;
  const abi_type *t = &d->g->nodes[ti];
  v->kind = t->kind;
  if (t->kind != ABI_ARRAY && t->kind != ABI_TUPLE && (at > len || len - at < 32)) return ERR_FORMAT;
  const uint8_t *w = data ? data + at : NULL; /* only dereferenced once 32 bytes are known to be there */
  switch (t->kind) {
    case ABI_UINT:
      u256_from_be(w, 32, &v->num);
      return u256_bits(&v->num) > t->bits ? ERR_FORMAT : 0;
    case ABI_INT:
      u256_from_be(w, 32, &v->num);
      return int_fits(&v->num, t->bits) ? 0 : ERR_FORMAT;
    case ABI_BOOL:
      u256_from_be(w, 32, &v->num);
      return u256_bits(&v->num) > 1 ? ERR_FORMAT : 0;
    case ABI_ADDRESS:
      for (int i = 0; i < 12; i++) {
        if (w[i]) return ERR_FORMAT;
      }
      memcpy(v->b, w + 12, 20);
      v->len = 20;
      return 0;
    case ABI_FIXED_BYTES:
      for (unsigned i = t->bits; i < 32; i++) {
        if (w[i]) return ERR_FORMAT;
      }
      memcpy(v->b, w, t->bits);
      v->len = t->bits;
      return 0;
    case ABI_BYTES:
    case ABI_STRING: {
      size_t n;
      int rc = read_size(data, len, at, len - at - 32, &n);
      if (rc) return rc;
      v->ptr = data + at + 32;
      v->len = n;
      return 0;
    }
    case ABI_ARRAY: {
      size_t n = (size_t)t->arr_len, base = at;
      if (t->arr_len < 0) {
        int rc = read_size(data, len, at, len, &n);
        if (rc) return rc;
        base = at + 32;
      }
      /* Every member takes at least 32 bytes of head: a cheap bound on n. */
      size_t hs = head_size(d->g, t->child);
      if (base > len || (hs && n > (len - base) / hs)) return ERR_FORMAT;
      abi_value *items = alloc_vals(d, n);
      if (!items && n) return ERR_TOOBIG;
      v->items = items;
      v->n = n;
      return decode_seq(d, t->child, true, n, data, len, base, items, depth);
    }
    case ABI_TUPLE: {
      abi_value *items = alloc_vals(d, t->nchild);
      if (!items && t->nchild) return ERR_TOOBIG;
      v->items = items;
      v->n = t->nchild;
      return decode_seq(d, t->child, false, t->nchild, data, len, at, items, depth);
    }
  }
  return ERR_FORMAT;
}

static int decode_with(const abi_sig *g, const uint8_t *data, size_t len, abi_value *pool, size_t cap,
                       const abi_value **out) {
  if (len > ABI_MAX_INPUT) return ERR_TOOBIG;
  if (!cap) return ERR_TOOBIG;
  dec d = {g, pool, cap, 0};
  abi_value *root = alloc_vals(&d, 1);
  int rc = decode_value(&d, 0, data, len, 0, root, 0);
  if (rc) return rc;
  *out = root;
  return (int)d.used;
}

int abi_decode(const char *types, const uint8_t *data, size_t len, abi_value *pool, size_t cap,
               const abi_value **out_tuple) {
  abi_sig *g = malloc(sizeof *g);
  if (!g) return ERR_NOMEM;
  int rc = abi_sig_parse(types, g);
  if (!rc) rc = decode_with(g, data, len, pool, cap, out_tuple);
  free(g);
  return rc;
}

int abi_decode_log(const char *event_decl, const uint8_t (*topics)[32], size_t ntopics, const uint8_t *data,
                   size_t len, abi_value *pool, size_t cap, const abi_value **out_tuple) {
  abi_sig *g = malloc(sizeof *g);
  abi_sig *gd = malloc(sizeof *gd);
  int rc = ERR_NOMEM;
  if (!g || !gd) goto done;
  rc = abi_sig_parse(event_decl, g);
  if (rc) goto done;
  uint8_t h[32];
  keccak256(g->canonical, strlen(g->canonical), h);
  rc = ERR_FORMAT;
  if (!ntopics || memcmp(topics[0], h, 32)) goto done;
  /* Build a second signature holding only the non-indexed parameters. */
  buf b;
  buf_init(&b);
  rc = buf_append(&b, "(", 1);
  size_t nidx = 0, np = 0;
  for (int c = g->nodes[0].child; c >= 0 && !rc; c = g->nodes[c].next) {
    if (g->nodes[c].indexed) {
      nidx++;
      continue;
    }
    if (np++) rc = buf_append(&b, ",", 1);
    if (!rc) rc = write_canon(g, c, &b);
  }
  if (!rc) rc = buf_append(&b, ")", 1);
  if (!rc) rc = abi_sig_parse((const char *)b.ptr, gd);
  buf_deinit(&b);
  if (rc) goto done;
  if (nidx != ntopics - 1 || nidx > 3) {
    rc = ERR_FORMAT;
    goto done;
  }
  if (cap < 1 + (size_t)g->nodes[0].nchild) {
    rc = ERR_TOOBIG;
    goto done;
  }
  abi_value *root = pool, *items = pool + 1;
  memset(root, 0, sizeof *root);
  root->kind = ABI_TUPLE;
  root->items = items;
  root->n = g->nodes[0].nchild;
  const abi_value *body;
  rc = decode_with(gd, data, len, pool + 1 + root->n, cap - 1 - root->n, &body);
  if (rc < 0) goto done;
  int used = rc + 1 + (int)root->n;
  size_t ti = 1, bi = 0, k = 0;
  for (int c = g->nodes[0].child; c >= 0; c = g->nodes[c].next, k++) {
    if (!g->nodes[c].indexed) {
      items[k] = body->items[bi++];
      continue;
    }
    memset(&items[k], 0, sizeof items[k]);
    const uint8_t *w = topics[ti++];
    if (is_dynamic(g, c) || g->nodes[c].kind == ABI_ARRAY || g->nodes[c].kind == ABI_TUPLE) {
      items[k] = abi_fixed_bytes(w, 32); /* the topic is keccak256 of the encoding */
      continue;
    }
    dec d = {g, NULL, 0, 0};
    rc = decode_value(&d, c, w, 32, 0, &items[k], 0);
    if (rc) goto done;
  }
  *out_tuple = root;
  rc = used;
done:
  free(g);
  free(gd);
  return rc;
}

/* ---- revert data ---- */

static const char *panic_text(uint64_t code) {
  switch (code) {
    case 0x00: return "generic compiler panic";
    case 0x01: return "assertion failed";
    case 0x11: return "arithmetic overflow or underflow";
    case 0x12: return "division or modulo by zero";
    case 0x21: return "invalid enum value";
    case 0x22: return "corrupt storage byte array";
    case 0x31: return "pop on an empty array";
    case 0x32: return "array index out of bounds";
    case 0x41: return "out of memory";
    case 0x51: return "call to an uninitialized function";
    default: return "unknown panic code";
  }
}

int abi_revert_reason(const uint8_t *data, size_t len, char *out, size_t cap) {
  if (!cap) return 1;
  out[0] = 0;
  if (!len) {
    snprintf(out, cap, "reverted without a reason");
    return 1;
  }
  abi_value pool[4];
  const abi_value *t;
  if (len >= 4 && !memcmp(data, "\x08\xc3\x79\xa0", 4) && abi_decode("(string)", data + 4, len - 4, pool, 4, &t) > 0) {
    size_t n = t->items[0].len, j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++) {
      uint8_t c = t->items[0].ptr[i];
      out[j++] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
    }
    out[j] = 0;
    return 0;
  }
  if (len >= 4 && !memcmp(data, "\x4e\x48\x7b\x71", 4) && abi_decode("(uint256)", data + 4, len - 4, pool, 4, &t) > 0) {
    uint64_t code;
    if (u256_to_u64(&t->items[0].num, &code)) code = UINT64_MAX;
    snprintf(out, cap, "panic 0x%02llx: %s", (unsigned long long)code, panic_text(code));
    return 0;
  }
  if (len >= 4)
    snprintf(out, cap, "custom error 0x%02x%02x%02x%02x (%zu bytes)", data[0], data[1], data[2], data[3], len);
  else
    snprintf(out, cap, "malformed revert data (%zu bytes)", len);
  return 1;
}

int abi_get_u64(const abi_value *v, uint64_t *out) {
  if (v->kind != ABI_UINT && v->kind != ABI_BOOL) return ERR_INVAL;
  return u256_to_u64(&v->num, out);
}

int abi_get_i64(const abi_value *v, int64_t *out) {
  if (v->kind == ABI_UINT) {
    uint64_t x;
    if (u256_to_u64(&v->num, &x) || x > INT64_MAX) return ERR_RANGE;
    *out = (int64_t)x;
    return 0;
  }
  if (v->kind != ABI_INT) return ERR_INVAL;
  if (!int_fits(&v->num, 64)) return ERR_RANGE;
  *out = (int64_t)v->num.w[0];
  return 0;
}
