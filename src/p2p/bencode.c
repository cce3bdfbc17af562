/* p2p/bencode — see bencode.h. The decoder is recursive with depth capped at
 * BEN_MAX_DEPTH, so stack use is bounded; every read is bounds-checked against the input
 * length. The writer records each dict's previous key position to enforce sorted keys. */
#include "p2p/bencode.h"

#include <stdint.h>
#include <string.h>

#include "core/err.h"

typedef struct dec {
  const uint8_t *p;   /* input */
  size_t len, pos;    /* input length, read position */
  ben_node *nodes;    /* output array */
  size_t cap, n;      /* its capacity, nodes used */
  unsigned flags;
} dec;

static int keycmp(const ben_node *a, const ben_node *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = n ? memcmp(a->str, b->str, n) : 0;
  if (c) return c;
  return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* Parses a run of decimal digits ending at stop; no leading zeros, non-empty. */
static int digits(dec *d, char stop, uint64_t limit, uint64_t *out) {
  size_t start = d->pos;
  uint64_t v = 0;
  while (d->pos < d->len && d->p[d->pos] >= '0' && d->p[d->pos] <= '9') {
    uint64_t dg = (uint64_t)(d->p[d->pos] - '0');
    if (v > (limit - dg) / 10) return ERR_FORMAT;
    v = v * 10 + dg;
    d->pos++;
  }
  size_t n = d->pos - start;
  if (n == 0 || (n > 1 && d->p[start] == '0')) return ERR_FORMAT;
  if (d->pos >= d->len || d->p[d->pos] != (uint8_t)stop) return ERR_FORMAT;
  d->pos++;
  *out = v;
  return 0;
}

static int value(dec *d, int depth) {
  if (d->pos >= d->len) return ERR_FORMAT;
  if (d->n >= d->cap) return ERR_TOOBIG;
  size_t idx = d->n++;
  ben_node *nd = &d->nodes[idx];
  memset(nd, 0, sizeof *nd);
  size_t start = d->pos;
  uint8_t c = d->p[d->pos];
  int rc;
  if (c == 'i') {
    d->pos++;
    int neg = 0;
    if (d->pos < d->len && d->p[d->pos] == '-') { neg = 1; d->pos++; }
    uint64_t v;
    if ((rc = digits(d, 'e', neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v))) return rc;
    if (neg && v == 0) return ERR_FORMAT; /* i-0e */
    nd->type = BEN_INT;
    nd->i = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
  } else if (c >= '0' && c <= '9') {
    uint64_t n;
    if ((rc = digits(d, ':', UINT32_MAX, &n))) return rc;
    if (n > d->len - d->pos) return ERR_FORMAT;
    nd->type = BEN_STR;
    nd->str = d->p + d->pos;
    nd->len = (size_t)n;
    d->pos += (size_t)n;
  } else if (c == 'l' || c == 'd') {
    if (depth >= BEN_MAX_DEPTH) return ERR_TOOBIG;
    d->pos++;
    int is_dict = c == 'd';
    nd->type = is_dict ? BEN_DICT : BEN_LIST;
    size_t prev_key = SIZE_MAX;
    uint32_t count = 0;
    int unsorted = 0;
    for (;;) {
      if (d->pos >= d->len) return ERR_FORMAT;
      if (d->p[d->pos] == 'e') { d->pos++; break; }
      if (is_dict) {
        size_t k = d->n;
        if ((rc = value(d, depth + 1))) return rc;
        if (d->nodes[k].type != BEN_STR) return ERR_FORMAT;
        if (prev_key != SIZE_MAX) {
          int cmp = keycmp(&d->nodes[prev_key], &d->nodes[k]);
          if (cmp == 0) return ERR_FORMAT;
          if (cmp > 0) {
            if (!(d->flags & BEN_LENIENT_ORDER)) return ERR_FORMAT;
            unsorted = 1;
          }
          if (unsorted) {
            /* Unsorted but tolerated: still refuse duplicates anywhere in the dict. */
            for (size_t j = idx + 1; j < k; j += d->nodes[j].span) {
              if (!keycmp(&d->nodes[j], &d->nodes[k])) return ERR_FORMAT;
              j += d->nodes[j].span; /* skip the key; loop skips its value */
              if (j >= k) break;
            }
          }
        }
        prev_key = k;
        if (d->pos >= d->len || d->p[d->pos] == 'e') return ERR_FORMAT; /* key without value */
      }
      if ((rc = value(d, depth + 1))) return rc;
      count++;
    }
    nd = &d->nodes[idx];
    nd->count = count;
  } else {
    return ERR_FORMAT;
  }
  nd = &d->nodes[idx];
  nd->span = (uint32_t)(d->n - idx);
  nd->raw = d->p + start;
  nd->raw_len = d->pos - start;
  return 0;
}

int ben_decode(const uint8_t *in, size_t len, ben_node *nodes, size_t cap, unsigned flags) {
  if (!in || !nodes || cap == 0) return ERR_INVAL;
  if (len > UINT32_MAX) return ERR_TOOBIG;
  dec d = {.p = in, .len = len, .nodes = nodes, .cap = cap, .flags = flags};
  int rc = value(&d, 0);
  if (rc) return rc;
  if (d.pos != len) return ERR_FORMAT;
  return (int)d.n;
}

const ben_node *ben_dict_getn(const ben_node *d, const void *key, size_t key_len) {
  if (!d || d->type != BEN_DICT) return NULL;
  const ben_node *k = d + 1;
  for (uint32_t i = 0; i < d->count; i++) {
    const ben_node *v = k + k->span;
    if (k->len == key_len && (key_len == 0 || !memcmp(k->str, key, key_len))) return v;
    k = v + v->span;
  }
  return NULL;
}

const ben_node *ben_dict_get(const ben_node *d, const char *key) {
  return ben_dict_getn(d, key, strlen(key));
}

const ben_node *ben_list_at(const ben_node *l, size_t idx) {
  if (!l || l->type != BEN_LIST || idx >= l->count) return NULL;
  const ben_node *n = l + 1;
  while (idx--) n += n->span;
  return n;
}

const ben_node *ben_dict_str(const ben_node *d, const char *key, size_t want_len) {
  const ben_node *v = ben_dict_get(d, key);
  if (!v || v->type != BEN_STR) return NULL;
  if (want_len && v->len != want_len) return NULL;
  return v;
}

int ben_dict_int(const ben_node *d, const char *key, int64_t *out) {
  const ben_node *v = ben_dict_get(d, key);
  if (!v || v->type != BEN_INT) return 0;
  *out = v->i;
  return 1;
}

/* ---- writer ---- */

void ben_w_init(ben_w *w, uint8_t *out, size_t cap) {
  memset(w, 0, sizeof *w);
  w->p = out;
  w->cap = cap;
}

static void put(ben_w *w, const void *s, size_t n) {
  if (w->err) return;
  if (n > w->cap - w->len) { w->err = ERR_TOOBIG; return; }
  if (n) memcpy(w->p + w->len, s, n);
  w->len += n;
}

/* Called before every value: inside a dict, a value must follow a key. */
static void before_value(ben_w *w) {
  if (w->err || w->depth == 0) return;
  int l = w->depth - 1;
  if (w->is_dict[l]) {
    if (w->want_key[l]) { w->err = ERR_FORMAT; return; }
    w->want_key[l] = 1;
  }
}

static void put_len(ben_w *w, size_t n) {
  char tmp[24];
  int i = (int)sizeof tmp;
  tmp[--i] = ':';
  do { tmp[--i] = (char)('0' + n % 10); n /= 10; } while (n);
  put(w, tmp + i, sizeof tmp - (size_t)i);
}

void ben_w_int(ben_w *w, int64_t v) {
  before_value(w);
  char tmp[24];
  int i = (int)sizeof tmp;
  tmp[--i] = 'e';
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do { tmp[--i] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) tmp[--i] = '-';
  tmp[--i] = 'i';
  put(w, tmp + i, sizeof tmp - (size_t)i);
}

void ben_w_str(ben_w *w, const void *s, size_t n) {
  before_value(w);
  put_len(w, n);
  put(w, s, n);
}

void ben_w_cstr(ben_w *w, const char *s) { ben_w_str(w, s, strlen(s)); }

void ben_w_keyn(ben_w *w, const void *key, size_t n) {
  if (w->err) return;
  int l = w->depth - 1;
  if (l < 0 || !w->is_dict[l] || !w->want_key[l]) { w->err = ERR_FORMAT; return; }
  if (w->last_key_len[l] != SIZE_MAX) {
    size_t pl = w->last_key_len[l];
    size_t m = pl < n ? pl : n;
    int c = m ? memcmp(w->p + w->last_key[l], key, m) : 0;
    if (c > 0 || (c == 0 && pl >= n)) { w->err = ERR_FORMAT; return; }
  }
  put_len(w, n);
  w->last_key[l] = w->len;
  w->last_key_len[l] = n;
  put(w, key, n);
  w->want_key[l] = 0;
}

void ben_w_key(ben_w *w, const char *key) { ben_w_keyn(w, key, strlen(key)); }

static void w_open(ben_w *w, int dict) {
  before_value(w);
  if (w->err) return;
  if (w->depth >= BEN_MAX_DEPTH) { w->err = ERR_TOOBIG; return; }
  put(w, dict ? "d" : "l", 1);
  int l = w->depth++;
  w->is_dict[l] = (uint8_t)dict;
  w->want_key[l] = 1;
  w->last_key_len[l] = SIZE_MAX;
}

void ben_w_list(ben_w *w) { w_open(w, 0); }
void ben_w_dict(ben_w *w) { w_open(w, 1); }

void ben_w_end(ben_w *w) {
  if (w->err) return;
  if (w->depth == 0) { w->err = ERR_FORMAT; return; }
  int l = w->depth - 1;
  if (w->is_dict[l] && !w->want_key[l]) { w->err = ERR_FORMAT; return; }
  w->depth--;
  put(w, "e", 1);
}

void ben_w_raw(ben_w *w, const void *raw, size_t n) {
  before_value(w);
  put(w, raw, n);
}

int ben_w_finish(const ben_w *w) {
  if (w->err) return w->err;
  if (w->depth) return ERR_FORMAT;
  return (int)w->len;
}
