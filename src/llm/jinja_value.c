/* llm/jinja_value — the memory and values of a render.
 *
 * The arena hands out zeroed blocks from chunks it frees all at once, up to a byte cap.
 * jinja__buf is a growable text buffer that also records which of its bytes came from
 * the context (runs, kept sorted and merged). Values follow @huggingface/jinja's data
 * model: undefined, none, booleans, integers and floats (JavaScript numbers), strings
 * (with provenance runs), lists (tuples are lists), dicts in insertion order, namespaces,
 * callables and the lazy `loop` object. Printing and tojson reproduce its output: "true",
 * "1.0", JSON with ", " and ": " for containers, JavaScript number formatting. Any thread
 * (a render's state is its own). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/jinja_impl.h"

/* ---- arena ------------------------------------------------------------------------------ */

struct jinja__chunk {
  jinja__chunk *next;
  size_t used, size;
  _Alignas(16) unsigned char data[];
};

void jinja__arena_init(jinja__arena *a, size_t cap) {
  memset(a, 0, sizeof *a);
  a->cap = cap;
}

void jinja__arena_deinit(jinja__arena *a) {
  jinja__chunk *c = a->head;
  while (c) {
    jinja__chunk *n = c->next;
    free(c);
    c = n;
  }
  a->head = NULL;
  a->total = 0;
}

void *jinja__alloc(jinja__arena *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (!n) n = 16;
  jinja__chunk *c = a->head;
  if (!c || c->size - c->used < n) {
    size_t size = n > (64u << 10) ? n : (64u << 10);
    if (a->total + size > a->cap || n > a->cap) {
      a->over = 1;
      return NULL;
    }
    c = malloc(sizeof *c + size);
    if (!c) return NULL;
    c->used = 0;
    c->size = size;
    c->next = a->head;
    a->head = c;
    a->total += size;
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

/* ---- buffers ---------------------------------------------------------------------------- */

void jinja__buf_init(jinja__buf *b) {
  memset(b, 0, sizeof *b);
}

void jinja__buf_deinit(jinja__buf *b) {
  free(b->p);
  free(b->r);
  memset(b, 0, sizeof *b);
}

static int buf_grow(jinja__buf *b, size_t more) {
  if (b->rc) return -1;
  if (b->len + more > JINJA_MAX_OUTPUT) {
    b->rc = ERR_TOOBIG;
    return -1;
  }
  if (b->len + more + 1 <= b->cap) return 0;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + more + 1) nc *= 2;
  char *p = realloc(b->p, nc);
  if (!p) {
    b->rc = ERR_NOMEM;
    return -1;
  }
  b->p = p;
  b->cap = nc;
  return 0;
}

static void add_run(jinja__buf *b, size_t off, size_t len) {
  if (!len || b->rc) return;
  if (b->nr && b->r[b->nr - 1].off + b->r[b->nr - 1].len >= off) {
    jinja_run *l = &b->r[b->nr - 1];
    if (off + len > l->off + l->len) l->len = off + len - l->off;
    return;
  }
  if (b->nr == b->rcap) {
    size_t nc = b->rcap ? b->rcap * 2 : 16;
    jinja_run *r = realloc(b->r, nc * sizeof *r);
    if (!r) {
      b->rc = ERR_NOMEM;
      return;
    }
    b->r = r;
    b->rcap = nc;
  }
  b->r[b->nr++] = (jinja_run){off, len};
}

void jinja__buf_lit(jinja__buf *b, const char *s, size_t len) {
  if (!len || buf_grow(b, len)) return;
  memcpy(b->p + b->len, s, len);
  b->len += len;
  b->p[b->len] = 0;
}

void jinja__buf_in(jinja__buf *b, const char *s, size_t len) {
  size_t at = b->len;
  jinja__buf_lit(b, s, len);
  if (!b->rc) add_run(b, at, len);
}

void jinja__buf_str(jinja__buf *b, const jinja__str *s) {
  size_t at = b->len;
  jinja__buf_lit(b, s->s, s->len);
  if (b->rc) return;
  for (size_t i = 0; i < s->n_runs; i++) add_run(b, at + s->runs[i].off, s->runs[i].len);
}

void jinja__buf_mark(jinja__buf *b, size_t from) {
  if (b->len > from) add_run(b, from, b->len - from);
}

jinja__str *jinja__buf_take(jinja__render *r, jinja__buf *b) {
  if (b->rc) return NULL;
  jinja__str *s = jinja__alloc(&r->a, sizeof *s);
  char *p = jinja__alloc(&r->a, b->len + 1);
  jinja_run *runs = b->nr ? jinja__alloc(&r->a, b->nr * sizeof *runs) : NULL;
  if (!s || !p || (b->nr && !runs)) {
    b->rc = r->a.over ? ERR_TOOBIG : ERR_NOMEM;
    return NULL;
  }
  if (b->len) memcpy(p, b->p, b->len);
  p[b->len] = 0;
  if (b->nr) memcpy(runs, b->r, b->nr * sizeof *runs);
  s->s = p, s->len = b->len, s->runs = runs, s->n_runs = b->nr;
  return s;
}

/* ---- strings and containers ------------------------------------------------------------- */

jinja__str *jinja__str_new(jinja__render *r, const char *src, size_t len, int input) {
  if (len > JINJA_MAX_OUTPUT) return NULL;
  jinja__str *s = jinja__alloc(&r->a, sizeof *s + (input ? sizeof(jinja_run) : 0));
  char *p = jinja__alloc(&r->a, len + 1);
  if (!s || !p) return NULL;
  if (len) memcpy(p, src, len);
  s->s = p;
  s->len = len;
  if (input && len) {
    s->runs = (jinja_run *)(s + 1);
    s->runs[0] = (jinja_run){0, len};
    s->n_runs = 1;
  }
  return s;
}

jinja__str *jinja__str_sub(jinja__render *r, const jinja__str *s, size_t off, size_t len) {
  jinja__str *o = jinja__alloc(&r->a, sizeof *o);
  if (!o) return NULL;
  o->s = s->s + off; /* shares the bytes; not NUL-terminated in general */
  o->len = len;
  size_t k = 0;
  for (size_t i = 0; i < s->n_runs; i++)
    if (s->runs[i].off < off + len && s->runs[i].off + s->runs[i].len > off) k++;
  if (k) {
    o->runs = jinja__alloc(&r->a, k * sizeof *o->runs);
    if (!o->runs) return NULL;
    for (size_t i = 0; i < s->n_runs; i++) {
      size_t a = s->runs[i].off, e = a + s->runs[i].len;
      if (a >= off + len || e <= off) continue;
      if (a < off) a = off;
      if (e > off + len) e = off + len;
      o->runs[o->n_runs++] = (jinja_run){a - off, e - a};
    }
  }
  /* give it its own terminated copy so C string functions stay safe */
  char *p = jinja__alloc(&r->a, len + 1);
  if (!p) return NULL;
  if (len) memcpy(p, s->s + off, len);
  o->s = p;
  return o;
}

int jinja__str_tainted(const jinja__str *s) {
  return s->n_runs > 0;
}

jinja__val jinja__v_str(jinja__str *s) {
  jinja__val v = {.t = JV_STR};
  v.u.s = s;
  return v;
}
jinja__val jinja__v_int(int64_t i) {
  jinja__val v = {.t = JV_INT};
  v.u.i = i;
  return v;
}
jinja__val jinja__v_float(double f) {
  jinja__val v = {.t = JV_FLOAT};
  v.u.f = f;
  return v;
}
jinja__val jinja__v_bool(int b) {
  jinja__val v = {.t = JV_BOOL};
  v.u.b = !!b;
  return v;
}
jinja__val jinja__v_none(void) {
  return (jinja__val){.t = JV_NONE};
}
jinja__val jinja__v_undef(void) {
  return (jinja__val){.t = JV_UNDEF};
}

jinja__list *jinja__list_new(jinja__render *r, size_t cap) {
  jinja__list *l = jinja__alloc(&r->a, sizeof *l);
  if (!l) return NULL;
  if (cap) {
    if (!(l->v = jinja__alloc(&r->a, cap * sizeof *l->v))) return NULL;
    l->cap = cap;
  }
  return l;
}

int jinja__list_push(jinja__render *r, jinja__list *l, jinja__val v) {
  if (l->n == l->cap) {
    if (l->n >= JINJA_MAX_ITEMS) return ERR_TOOBIG;
    size_t nc = l->cap ? l->cap * 2 : 8;
    jinja__val *nv = jinja__alloc(&r->a, nc * sizeof *nv);
    if (!nv) return r->a.over ? ERR_TOOBIG : ERR_NOMEM;
    if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
    l->v = nv;
    l->cap = nc;
  }
  l->v[l->n++] = v;
  return 0;
}

jinja__dict *jinja__dict_new(jinja__render *r, size_t cap) {
  jinja__dict *d = jinja__alloc(&r->a, sizeof *d);
  if (!d) return NULL;
  if (cap) {
    d->k = jinja__alloc(&r->a, cap * sizeof *d->k);
    d->v = jinja__alloc(&r->a, cap * sizeof *d->v);
    if (!d->k || !d->v) return NULL;
    d->cap = cap;
  }
  return d;
}

jinja__val *jinja__dict_get(const jinja__dict *d, const char *k, size_t len) {
  for (size_t i = 0; i < d->n; i++)
    if (d->k[i]->len == len && !memcmp(d->k[i]->s, k, len)) return &d->v[i];
  return NULL;
}

int jinja__dict_set(jinja__render *r, jinja__dict *d, jinja__str *k, jinja__val v) {
  jinja__val *have = jinja__dict_get(d, k->s, k->len);
  if (have) {
    *have = v;
    return 0;
  }
  if (d->n == d->cap) {
    if (d->n >= JINJA_MAX_ITEMS) return ERR_TOOBIG;
    size_t nc = d->cap ? d->cap * 2 : 8;
    jinja__str **nk = jinja__alloc(&r->a, nc * sizeof *nk);
    jinja__val *nv = jinja__alloc(&r->a, nc * sizeof *nv);
    if (!nk || !nv) return r->a.over ? ERR_TOOBIG : ERR_NOMEM;
    if (d->n) {
      memcpy(nk, d->k, d->n * sizeof *nk);
      memcpy(nv, d->v, d->n * sizeof *nv);
    }
    d->k = nk, d->v = nv, d->cap = nc;
  }
  d->k[d->n] = k;
  d->v[d->n++] = v;
  return 0;
}

int jinja__from_json(jinja__render *r, const json_t *j, int input, int depth, jinja__val *out) {
  int rc;
  if (depth > 128) return jinja__fail(r, UINT32_MAX, ERR_TOOBIG, "context JSON nested too deeply");
  switch (json_typeof(j)) {
  case JSON_OBJECT: {
    jinja__dict *d = jinja__dict_new(r, json_object_size(j));
    if (!d) goto oom;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
      jinja__val x;
      jinja__str *ks = jinja__str_new(r, k, strlen(k), input);
      if (!ks) goto oom;
      if ((rc = jinja__from_json(r, v, input, depth + 1, &x))) return rc;
      if ((rc = jinja__dict_set(r, d, ks, x))) return rc;
    }
    *out = (jinja__val){.t = JV_DICT};
    out->u.d = d;
    return 0;
  }
  case JSON_ARRAY: {
    jinja__list *l = jinja__list_new(r, json_array_size(j));
    if (!l) goto oom;
    for (size_t i = 0; i < json_array_size(j); i++) {
      jinja__val x;
      if ((rc = jinja__from_json(r, json_array_get(j, i), input, depth + 1, &x))) return rc;
      if ((rc = jinja__list_push(r, l, x))) return rc;
    }
    *out = (jinja__val){.t = JV_LIST};
    out->u.l = l;
    return 0;
  }
  case JSON_STRING: {
    jinja__str *s = jinja__str_new(r, json_string_value(j), json_string_length(j), input);
    if (!s) goto oom;
    *out = jinja__v_str(s);
    return 0;
  }
  case JSON_INTEGER: *out = jinja__v_int((int64_t)json_integer_value(j)); return 0;
  case JSON_REAL: {
    double f = json_real_value(j); /* JavaScript has one number type: integral values are integers */
    if (f == floor(f) && fabs(f) < 9e15) *out = jinja__v_int((int64_t)f);
    else *out = jinja__v_float(f);
    return 0;
  }
  case JSON_TRUE: *out = jinja__v_bool(1); return 0;
  case JSON_FALSE: *out = jinja__v_bool(0); return 0;
  default: *out = jinja__v_none(); return 0;
  }
oom:
  return jinja__fail(r, UINT32_MAX, r->a.over ? ERR_TOOBIG : ERR_NOMEM, "out of memory converting the context");
}

/* ---- truth, printing -------------------------------------------------------------------- */

int jinja__truthy(const jinja__val *v) {
  switch (v->t) {
  case JV_BOOL: return v->u.b;
  case JV_INT: return v->u.i != 0;
  case JV_FLOAT: return v->u.f != 0 && !isnan(v->u.f);
  case JV_STR: return v->u.s->len > 0;
  case JV_LIST: return v->u.l->n > 0;
  case JV_DICT: return v->u.d->n > 0;
  case JV_NS: case JV_FUNC: case JV_LOOP: return 1;
  default: return 0;
  }
}

const char *jinja__type_name(const jinja__val *v) {
  static const char *const n[] = {"undefined", "none", "boolean", "integer", "float", "string",
                                  "list", "dict", "namespace", "function", "loop"};
  return v->t == JV_LIST && v->tuple ? "tuple" : n[v->t];
}

void jinja__fmt_js_number(double f, char *out, size_t cap) {
  if (isnan(f)) {
    snprintf(out, cap, "NaN");
    return;
  }
  if (isinf(f)) {
    snprintf(out, cap, f < 0 ? "-Infinity" : "Infinity");
    return;
  }
  if (f == 0) {
    snprintf(out, cap, "0");
    return;
  }
  char e[40];
  int prec;
  for (prec = 1; prec <= 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec - 1, f);
    if (strtod(e, NULL) == f) break;
  }
  /* e: [-]d[.ddd]e[+-]xx */
  const char *p = e;
  int neg = 0;
  if (*p == '-') neg = 1, p++;
  char dig[24];
  int k = 0;
  for (; *p && *p != 'e'; p++)
    if (*p != '.') dig[k++] = *p;
  dig[k] = 0;
  int x = atoi(p + 1);
  while (k > 1 && dig[k - 1] == '0') dig[--k] = 0;
  int n = x + 1;
  char o[64];
  size_t m = 0;
  if (neg) o[m++] = '-';
  if (k <= n && n <= 21) {
    for (int i = 0; i < k; i++) o[m++] = dig[i];
    for (int i = k; i < n; i++) o[m++] = '0';
  } else if (0 < n && n <= 21) {
    for (int i = 0; i < n; i++) o[m++] = dig[i];
    o[m++] = '.';
    for (int i = n; i < k; i++) o[m++] = dig[i];
  } else if (-6 < n && n <= 0) {
    o[m++] = '0', o[m++] = '.';
    for (int i = 0; i < -n; i++) o[m++] = '0';
    for (int i = 0; i < k; i++) o[m++] = dig[i];
  } else {
    o[m++] = dig[0];
    if (k > 1) {
      o[m++] = '.';
      for (int i = 1; i < k; i++) o[m++] = dig[i];
    }
    m += (size_t)snprintf(o + m, sizeof o - m, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
  }
  o[m] = 0;
  snprintf(out, cap, "%s", o);
}

static void fmt_float(double f, char *out, size_t cap) {
  if (f == 0 && signbit(f)) snprintf(out, cap, "-0.0");
  else if (isfinite(f) && f == floor(f) && fabs(f) < 1e21) snprintf(out, cap, "%.1f", f);
  else jinja__fmt_js_number(f, out, cap);
}

int jinja__print(jinja__render *r, jinja__buf *b, const jinja__val *v, uint32_t pos) {
  char num[64];
  switch (v->t) {
  case JV_UNDEF:
  case JV_NONE: return 0;
  case JV_BOOL: jinja__buf_lit(b, v->u.b ? "true" : "false", v->u.b ? 4 : 5); return 0;
  case JV_INT: snprintf(num, sizeof num, "%lld", (long long)v->u.i); break;
  case JV_FLOAT: fmt_float(v->u.f, num, sizeof num); break;
  case JV_STR: jinja__buf_str(b, v->u.s); return 0;
  case JV_FUNC: return jinja__fail(r, pos, ERR_FORMAT, "cannot print a function");
  default: {
    jinja__json_opts o = {.indent = -1};
    return jinja__tojson(r, b, v, &o, 0, pos);
  }
  }
  jinja__buf_lit(b, num, strlen(num));
  return 0;
}

jinja__str *jinja__to_str(jinja__render *r, const jinja__val *v, uint32_t pos) {
  char num[64];
  if (v->t == JV_STR) return v->u.s;
  if (v->t == JV_INT) snprintf(num, sizeof num, "%lld", (long long)v->u.i);
  else if (v->t == JV_FLOAT) jinja__fmt_js_number(v->u.f, num, sizeof num);
  else if (v->t == JV_BOOL) snprintf(num, sizeof num, "%s", v->u.b ? "true" : "false");
  else if (v->t == JV_UNDEF || v->t == JV_NONE) num[0] = 0;
  else {
    jinja__buf b;
    jinja__buf_init(&b);
    int rc = jinja__print(r, &b, v, pos);
    jinja__str *s = rc ? NULL : jinja__buf_take(r, &b);
    if (!rc && !s) jinja__fail(r, pos, b.rc ? b.rc : ERR_NOMEM, "out of memory");
    jinja__buf_deinit(&b);
    return s;
  }
  jinja__str *s = jinja__str_new(r, num, strlen(num), 0);
  if (!s) jinja__fail(r, pos, r->a.over ? ERR_TOOBIG : ERR_NOMEM, "out of memory");
  return s;
}

/* ---- tojson ----------------------------------------------------------------------------- */

static unsigned utf8_next(const unsigned char *s, size_t n, size_t *i) {
  unsigned c = s[*i];
  size_t l = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (!l || *i + l > n) {
    (*i)++;
    return 0xfffd;
  }
  unsigned cp = l == 1 ? c : l == 2 ? c & 0x1f : l == 3 ? c & 0x0f : c & 0x07;
  for (size_t k = 1; k < l; k++) cp = (cp << 6) | (s[*i + k] & 0x3f);
  *i += l;
  return cp;
}

static void json_str_out(jinja__buf *b, const char *s, size_t n, int ascii) {
  char esc[16];
  jinja__buf_lit(b, "\"", 1);
  size_t i = 0, run = 0;
  while (i < n) {
    unsigned char c = (unsigned char)s[i];
    const char *rep = NULL;
    if (c == '"') rep = "\\\"";
    else if (c == '\\') rep = "\\\\";
    else if (c == '\n') rep = "\\n";
    else if (c == '\r') rep = "\\r";
    else if (c == '\t') rep = "\\t";
    else if (c == '\b') rep = "\\b";
    else if (c == '\f') rep = "\\f";
    else if (c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c), rep = esc;
    if (rep) {
      jinja__buf_lit(b, s + run, i - run);
      jinja__buf_lit(b, rep, strlen(rep));
      run = ++i;
      continue;
    }
    if (ascii && c >= 0x7f) {
      jinja__buf_lit(b, s + run, i - run);
      unsigned cp = utf8_next((const unsigned char *)s, n, &i);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      } else {
        snprintf(esc, sizeof esc, "\\u%04x", cp);
      }
      jinja__buf_lit(b, esc, strlen(esc));
      run = i;
      continue;
    }
    i++;
  }
  jinja__buf_lit(b, s + run, n - run);
  jinja__buf_lit(b, "\"", 1);
}

static void json_key_string(jinja__buf *b, const jinja__str *k, int ascii) {
  size_t at = b->len;
  json_str_out(b, k->s, k->len, ascii);
  if (k->n_runs) jinja__buf_mark(b, at);
}

static void pad(jinja__buf *b, int indent, int depth) {
  jinja__buf_lit(b, "\n", 1);
  for (int i = 0; i < indent * depth && !b->rc; i++) jinja__buf_lit(b, " ", 1);
}

static int key_cmp(const void *x, const void *y) {
  const jinja__str *a = *(jinja__str *const *)x, *c = *(jinja__str *const *)y;
  size_t m = a->len < c->len ? a->len : c->len;
  int d = memcmp(a->s, c->s, m);
  return d ? d : (a->len > c->len) - (a->len < c->len);
}

int jinja__tojson(jinja__render *r, jinja__buf *b, const jinja__val *v, const jinja__json_opts *o, int depth,
                  uint32_t pos) {
  char num[64];
  int rc;
  if (depth > 128) return jinja__fail(r, pos, ERR_TOOBIG, "tojson: value nested too deeply (or cyclic)");
  int ind = o->indent > 0 ? o->indent : 0;
  const char *isep = o->item_sep ? o->item_sep : ind ? "," : ", ";
  const char *ksep = o->key_sep ? o->key_sep : ": ";
  switch (v->t) {
  case JV_NONE: jinja__buf_lit(b, "null", 4); break;
  case JV_UNDEF:
    if (o->undef_null) jinja__buf_lit(b, "null", 4);
    else jinja__buf_lit(b, "undefined", 9);
    break;
  case JV_BOOL: jinja__buf_lit(b, v->u.b ? "true" : "false", v->u.b ? 4 : 5); break;
  case JV_INT:
    snprintf(num, sizeof num, "%lld", (long long)v->u.i);
    jinja__buf_lit(b, num, strlen(num));
    break;
  case JV_FLOAT:
    if (!isfinite(v->u.f)) snprintf(num, sizeof num, "null");
    else jinja__fmt_js_number(v->u.f, num, sizeof num);
    jinja__buf_lit(b, num, strlen(num));
    break;
  case JV_STR: json_key_string(b, v->u.s, o->ensure_ascii); break;
  case JV_LIST: {
    const jinja__list *l = v->u.l;
    jinja__buf_lit(b, "[", 1);
    for (size_t i = 0; i < l->n; i++) {
      if (i) jinja__buf_lit(b, isep, strlen(isep));
      if (ind) pad(b, ind, depth + 1);
      if ((rc = jinja__tojson(r, b, &l->v[i], o, depth + 1, pos))) return rc;
    }
    if (ind && l->n) pad(b, ind, depth);
    jinja__buf_lit(b, "]", 1);
    break;
  }
  case JV_LOOP:
  case JV_DICT:
  case JV_NS: {
    if (v->t == JV_LOOP) {
      jinja__buf_lit(b, "{}", 2);
      break;
    }
    const jinja__dict *d = v->u.d;
    size_t *order = NULL;
    jinja__str **keys = NULL;
    if (o->sort_keys && d->n > 1) {
      keys = malloc(d->n * sizeof *keys);
      if (!keys) return jinja__fail(r, pos, ERR_NOMEM, "out of memory");
      memcpy(keys, d->k, d->n * sizeof *keys);
      qsort(keys, d->n, sizeof *keys, key_cmp);
    }
    (void)order;
    jinja__buf_lit(b, "{", 1);
    for (size_t i = 0; i < d->n; i++) {
      const jinja__str *k = keys ? keys[i] : d->k[i];
      const jinja__val *x = keys ? jinja__dict_get(d, k->s, k->len) : &d->v[i];
      if (i) jinja__buf_lit(b, isep, strlen(isep));
      if (ind) pad(b, ind, depth + 1);
      json_key_string(b, k, o->ensure_ascii);
      jinja__buf_lit(b, ksep, strlen(ksep));
      if ((rc = jinja__tojson(r, b, x, o, depth + 1, pos))) {
        free(keys);
        return rc;
      }
    }
    free(keys);
    if (ind && d->n) pad(b, ind, depth);
    jinja__buf_lit(b, "}", 1);
    break;
  }
  default: return jinja__fail(r, pos, ERR_FORMAT, "cannot convert a %s to JSON", jinja__type_name(v));
  }
  return b->rc ? jinja__fail(r, pos, b->rc, "output too large") : 0;
}

/* ---- comparisons ------------------------------------------------------------------------ */

static int numeric(const jinja__val *v) {
  return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL;
}

static double num(const jinja__val *v) {
  return v->t == JV_INT ? (double)v->u.i : v->t == JV_FLOAT ? v->u.f : v->u.b;
}

static double str_to_number(const jinja__str *s) {
  size_t a = 0, e = s->len, l;
  while (a < e && (l = jinja__ws_at(s->s, a, e))) a += l;
  while (e > a && (l = jinja__ws_before(s->s, e))) e -= l;
  if (a == e) return 0;
  char buf[64];
  if (e - a >= sizeof buf) return NAN;
  memcpy(buf, s->s + a, e - a);
  buf[e - a] = 0;
  char *end;
  double d = strtod(buf, &end);
  return *end ? NAN : d;
}

int jinja__loose_eq(const jinja__val *a, const jinja__val *b) {
  int an = a->t == JV_UNDEF || a->t == JV_NONE, bn = b->t == JV_UNDEF || b->t == JV_NONE;
  if (an || bn) return an && bn;
  if (a->t == JV_INT && b->t == JV_INT) return a->u.i == b->u.i;
  if (numeric(a) && numeric(b)) return num(a) == num(b);
  if (a->t == JV_STR && b->t == JV_STR) return a->u.s->len == b->u.s->len && !memcmp(a->u.s->s, b->u.s->s, a->u.s->len);
  if (a->t == JV_STR && numeric(b)) return str_to_number(a->u.s) == num(b);
  if (b->t == JV_STR && numeric(a)) return str_to_number(b->u.s) == num(a);
  if (a->t != b->t) return 0;
  switch (a->t) {
  case JV_LIST: return a->u.l == b->u.l;
  case JV_DICT: case JV_NS: return a->u.d == b->u.d;
  case JV_FUNC: return a->u.fn == b->u.fn;
  case JV_LOOP: return a->u.lp == b->u.lp;
  default: return 0;
  }
}

int jinja__strict_eq(const jinja__val *a, const jinja__val *b) {
  int an = (a->t == JV_INT || a->t == JV_FLOAT), bn = (b->t == JV_INT || b->t == JV_FLOAT);
  if (an && bn) return a->t == JV_INT && b->t == JV_INT ? a->u.i == b->u.i : num(a) == num(b);
  if (a->t != b->t) return 0;
  if (a->t == JV_BOOL) return a->u.b == b->u.b;
  return jinja__loose_eq(a, b);
}

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int jinja__compare(const jinja__val *a, const jinja__val *b, int cs, int *err_out) {
  if (a->t == JV_NONE && b->t == JV_NONE) return 0;
  if (a->t == JV_UNDEF && b->t == JV_UNDEF) return 0;
  if (numeric(a) && numeric(b)) {
    double x = num(a), y = num(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a->t != b->t || a->t != JV_STR) {
    *err_out = 1;
    return 0;
  }
  const unsigned char *x = (const unsigned char *)a->u.s->s, *y = (const unsigned char *)b->u.s->s;
  size_t n = a->u.s->len < b->u.s->len ? a->u.s->len : b->u.s->len;
  for (size_t i = 0; i < n; i++) {
    int p = cs ? x[i] : lower(x[i]), q = cs ? y[i] : lower(y[i]);
    if (p != q) return p < q ? -1 : 1;
  }
  return (a->u.s->len > b->u.s->len) - (a->u.s->len < b->u.s->len);
}
