/* llm/jinja_filters — filters, tests, methods and global functions of the interpreter.
 *
 * Behaviour follows @huggingface/jinja where it has the feature (tojson's separators and
 * indentation, join's JavaScript stringification, title/capitalize leaving the rest of the
 * word alone, selectattr's tests, dictsort, sort order) and Python Jinja where it does not
 * (select/reject, map with a filter name, batch, wordcount, round, escape, list methods,
 * str.format, str.join). Provenance: substrings (trim, strip, split, slices) keep their
 * runs exactly, join and concatenation keep each part's runs, and any other result made
 * from input text is input as a whole. Case mapping is ASCII-only. Any thread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "llm/jinja_impl.h"

int jinja__call_value(jinja__render *r, const jinja__node *at, const jinja__val *fn, const jinja__args *a, jinja__val *out);

const jinja__val *jinja__arg(const jinja__args *a, size_t i, const char *name) {
  if (i < a->n_pos) return &a->pos[i];
  if (name)
    for (size_t k = 0; k < a->n_kw; k++)
      if (!strcmp(a->kw[k], name)) return &a->kv[k];
  return NULL;
}

static int oom(jinja__render *r, const jinja__node *at) {
  return jinja__fail(r, at->pos, r->a.over ? ERR_TOOBIG : ERR_NOMEM, "out of memory");
}

static jinja__val list_val(jinja__list *l) {
  jinja__val v = {.t = JV_LIST};
  v.u.l = l;
  return v;
}

static int finish(jinja__render *r, const jinja__node *at, jinja__buf *b, jinja__val *out) {
  jinja__str *s = jinja__buf_take(r, b);
  int rc = 0;
  if (!s) rc = b->rc == ERR_TOOBIG ? jinja__fail(r, at->pos, ERR_TOOBIG, "string over %u bytes", JINJA_MAX_OUTPUT) : oom(r, at);
  else *out = jinja__v_str(s);
  jinja__buf_deinit(b);
  return rc;
}

/* A new string from bytes, input as a whole when from is tainted. */
static int new_str(jinja__render *r, const jinja__node *at, const char *s, size_t len, int input, jinja__val *out) {
  jinja__str *x = jinja__str_new(r, s, len, input);
  if (!x) return oom(r, at);
  *out = jinja__v_str(x);
  return 0;
}

static int is_js_ws(const jinja__str *s, size_t i) {
  return (int)jinja__ws_at(s->s, i, s->len);
}

/* JavaScript trim / trimStart / trimEnd, or Python strip(chars). which: 1 left, 2 right, 3 both. */
static int strip(jinja__render *r, const jinja__node *at, const jinja__str *s, int which, const jinja__val *chars,
                 jinja__val *out) {
  size_t a = 0, e = s->len, l;
  if (chars && chars->t == JV_STR) {
    const jinja__str *c = chars->u.s;
    if (which & 1)
      while (a < e && memchr(c->s, s->s[a], c->len)) a++;
    if (which & 2)
      while (e > a && memchr(c->s, s->s[e - 1], c->len)) e--;
  } else {
    if (which & 1)
      while (a < e && (l = (size_t)is_js_ws(s, a))) a += l;
    if (which & 2)
      while (e > a && (l = jinja__ws_before(s->s, e))) e -= l;
  }
  jinja__str *x = jinja__str_sub(r, s, a, e - a);
  if (!x) return oom(r, at);
  *out = jinja__v_str(x);
  return 0;
}

static int case_map(jinja__render *r, const jinja__node *at, const jinja__str *s, int mode, jinja__val *out) {
  /* mode: 0 upper, 1 lower, 2 title (word starts), 3 capitalize (first char) */
  char *p = jinja__alloc(&r->a, s->len + 1);
  if (!p) return oom(r, at);
  memcpy(p, s->s, s->len);
  int prev_word = 0;
  for (size_t i = 0; i < s->len; i++) {
    char c = p[i];
    int word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    int up = mode == 0 || (mode == 2 && word && !prev_word) || (mode == 3 && i == 0);
    if (up && c >= 'a' && c <= 'z') p[i] = (char)(c - 32);
    if (mode == 1 && c >= 'A' && c <= 'Z') p[i] = (char)(c + 32);
    prev_word = word;
  }
  return new_str(r, at, p, s->len, jinja__str_tainted(s), out);
}

/* The JavaScript String(x.value) of an element, as Array.join uses it. */
static int join_part(jinja__render *r, const jinja__node *at, jinja__buf *b, const jinja__val *v) {
  if (v->t == JV_UNDEF || v->t == JV_NONE) return 0;
  if (v->t == JV_LIST) {
    for (size_t i = 0; i < v->u.l->n; i++) {
      if (i) jinja__buf_lit(b, ",", 1);
      int rc = join_part(r, at, b, &v->u.l->v[i]);
      if (rc) return rc;
    }
    return 0;
  }
  if (v->t == JV_DICT || v->t == JV_NS || v->t == JV_LOOP) {
    jinja__buf_lit(b, "[object Map]", 12);
    return 0;
  }
  jinja__str *s = jinja__to_str(r, v, at->pos);
  if (!s) return ERR_NOMEM;
  jinja__buf_str(b, s);
  return 0;
}

static size_t utf16_len(const jinja__str *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->len; i++) {
    unsigned char c = (unsigned char)s->s[i];
    if ((c & 0xc0) != 0x80) n += (c >= 0xf0) ? 2 : 1;
  }
  return n;
}

static size_t cp_len(const char *s, size_t i, size_t n) {
  size_t l = 1;
  while (i + l < n && ((unsigned char)s[i + l] & 0xc0) == 0x80) l++;
  return l;
}

static int chars_list(jinja__render *r, const jinja__node *at, const jinja__str *s, jinja__val *out) {
  jinja__list *l = jinja__list_new(r, 0);
  if (!l) return oom(r, at);
  for (size_t i = 0; i < s->len;) {
    size_t cl = cp_len(s->s, i, s->len);
    jinja__str *c = jinja__str_sub(r, s, i, cl);
    if (!c || jinja__list_push(r, l, jinja__v_str(c))) return oom(r, at);
    i += cl;
  }
  *out = list_val(l);
  return 0;
}

/* Dotted attribute path ("a.b", "items.0"), as @huggingface/jinja's getAttributeValue. */
static jinja__val attr_path(const jinja__val *item, const jinja__str *path) {
  jinja__val v = *item;
  size_t a = 0;
  while (a <= path->len) {
    const char *dot = memchr(path->s + a, '.', path->len - a);
    size_t e = dot ? (size_t)(dot - path->s) : path->len;
    if (v.t == JV_DICT || v.t == JV_NS) {
      const jinja__val *x = jinja__dict_get(v.u.d, path->s + a, e - a);
      v = x ? *x : jinja__v_undef();
    } else if (v.t == JV_LIST) {
      char num[24];
      size_t l = e - a < 23 ? e - a : 23;
      memcpy(num, path->s + a, l);
      num[l] = 0;
      char *end;
      long idx = strtol(num, &end, 10);
      if (end == num || idx < 0 || (size_t)idx >= v.u.l->n) return jinja__v_undef();
      v = v.u.l->v[idx];
    } else
      return jinja__v_undef();
    if (!dot) break;
    a = e + 1;
  }
  return v;
}

/* Stable merge sort of vals by cmp; *err set on a comparison error. */
typedef struct sort_ctx {
  int cs, reverse, err;
  const jinja__str *attr;
  int by_value; /* dictsort: compare item [1] */
  int pair;     /* items are [k, v] pairs */
} sort_ctx;

static int sort_cmp(sort_ctx *c, const jinja__val *x, const jinja__val *y) {
  jinja__val a = *x, b = *y;
  if (c->pair) a = a.u.l->v[c->by_value], b = b.u.l->v[c->by_value];
  if (c->attr) a = attr_path(&a, c->attr), b = attr_path(&b, c->attr);
  int d = jinja__compare(&a, &b, c->cs, &c->err);
  return c->reverse ? -d : d;
}

static void merge_sort(sort_ctx *c, jinja__val *v, jinja__val *tmp, size_t n) {
  if (n < 2 || c->err) return;
  size_t h = n / 2;
  merge_sort(c, v, tmp, h);
  merge_sort(c, v + h, tmp, n - h);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = sort_cmp(c, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
  while (i < h) tmp[k++] = v[i++];
  while (j < n) tmp[k++] = v[j++];
  memcpy(v, tmp, n * sizeof *v);
}

static int sorted(jinja__render *r, const jinja__node *at, const jinja__list *in, sort_ctx *c, jinja__val *out) {
  jinja__list *l = jinja__list_new(r, in->n);
  jinja__val *tmp = in->n ? jinja__alloc(&r->a, in->n * sizeof *tmp) : NULL;
  if (!l || (in->n && !tmp)) return oom(r, at);
  if (in->n) memcpy(l->v, in->v, in->n * sizeof *l->v);
  l->n = in->n;
  merge_sort(c, l->v, tmp, l->n);
  if (c->err) return jinja__fail(r, at->pos, ERR_FORMAT, "sort: cannot compare those values");
  *out = list_val(l);
  return 0;
}

static int bool_arg(jinja__render *r, const jinja__node *at, const jinja__args *a, size_t i, const char *name, int def,
                    int *out) {
  const jinja__val *v = jinja__arg(a, i, name);
  if (!v) {
    *out = def;
    return 0;
  }
  if (v->t != JV_BOOL) return jinja__fail(r, at->pos, ERR_FORMAT, "%s must be a boolean", name);
  *out = v->u.b;
  return 0;
}

static int replace(jinja__render *r, const jinja__node *at, const jinja__str *s, const jinja__args *a, jinja__val *out) {
  const jinja__val *o = jinja__arg(a, 0, "old"), *n = jinja__arg(a, 1, "new"), *cnt = jinja__arg(a, 2, "count");
  if (!o || !n || o->t != JV_STR || n->t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "replace() needs two strings");
  int64_t left = cnt && cnt->t == JV_INT && cnt->u.i >= 0 ? cnt->u.i : -1;
  if (cnt && cnt->t != JV_INT && cnt->t != JV_NONE) return jinja__fail(r, at->pos, ERR_FORMAT, "replace() count must be a number");
  int input = jinja__str_tainted(s) || jinja__str_tainted(n->u.s) || jinja__str_tainted(o->u.s);
  jinja__buf b;
  jinja__buf_init(&b);
  const jinja__str *os = o->u.s, *ns = n->u.s;
  size_t i = 0;
  if (!os->len) { /* between every character, and at both ends */
    for (;;) {
      if (left != 0) jinja__buf_lit(&b, ns->s, ns->len), left -= left > 0;
      if (i >= s->len) break;
      size_t cl = cp_len(s->s, i, s->len);
      jinja__buf_lit(&b, s->s + i, cl);
      i += cl;
    }
  } else {
    while (i < s->len) {
      const char *hit = left != 0 ? memmem(s->s + i, s->len - i, os->s, os->len) : NULL;
      if (!hit) break;
      size_t h = (size_t)(hit - s->s);
      jinja__buf_lit(&b, s->s + i, h - i);
      jinja__buf_lit(&b, ns->s, ns->len);
      i = h + os->len;
      if (left > 0) left--;
    }
    jinja__buf_lit(&b, s->s + i, s->len - i);
  }
  if (input) jinja__buf_mark(&b, 0);
  return finish(r, at, &b, out);
}

static int split(jinja__render *r, const jinja__node *at, const jinja__str *s, const jinja__args *a, jinja__val *out) {
  const jinja__val *sep = jinja__arg(a, 0, "sep"), *mx = jinja__arg(a, 1, "maxsplit");
  int64_t maxsplit = mx && mx->t == JV_INT ? mx->u.i : -1;
  jinja__list *l = jinja__list_new(r, 0);
  if (!l) return oom(r, at);
  if (sep && sep->t != JV_STR && sep->t != JV_NONE) return jinja__fail(r, at->pos, ERR_FORMAT, "split() separator must be a string");
  size_t i = 0, ws;
  if (!sep || sep->t == JV_NONE) {
    for (;;) {
      while (i < s->len && (ws = (size_t)is_js_ws(s, i))) i += ws;
      if (i >= s->len) break;
      size_t e = i;
      if (maxsplit >= 0 && (int64_t)l->n >= maxsplit) e = s->len;
      else
        while (e < s->len && !is_js_ws(s, e)) e++;
      jinja__str *p = jinja__str_sub(r, s, i, e - i);
      if (!p || jinja__list_push(r, l, jinja__v_str(p))) return oom(r, at);
      i = e;
    }
  } else {
    const jinja__str *d = sep->u.s;
    if (!d->len) return jinja__fail(r, at->pos, ERR_FORMAT, "split(): empty separator");
    for (;;) {
      const char *hit = (maxsplit < 0 || (int64_t)l->n < maxsplit) && i <= s->len ? memmem(s->s + i, s->len - i, d->s, d->len) : NULL;
      size_t e = hit ? (size_t)(hit - s->s) : s->len;
      jinja__str *p = jinja__str_sub(r, s, i, e - i);
      if (!p || jinja__list_push(r, l, jinja__v_str(p))) return oom(r, at);
      if (!hit) break;
      i = e + d->len;
    }
  }
  *out = list_val(l);
  return 0;
}

/* "{} and {0}".format(...) */
static int str_format(jinja__render *r, const jinja__node *at, const jinja__str *s, const jinja__args *a, jinja__val *out) {
  jinja__buf b;
  jinja__buf_init(&b);
  size_t auto_i = 0, i = 0, run = 0;
  while (i < s->len) {
    char c = s->s[i];
    if ((c == '{' || c == '}') && i + 1 < s->len && s->s[i + 1] == c) {
      jinja__buf_lit(&b, s->s + run, i - run);
      jinja__buf_lit(&b, &c, 1);
      run = i += 2;
      continue;
    }
    if (c != '{') {
      i++;
      continue;
    }
    const char *close = memchr(s->s + i, '}', s->len - i);
    if (!close) break;
    jinja__buf_lit(&b, s->s + run, i - run);
    size_t e = (size_t)(close - s->s);
    const jinja__val *v = NULL;
    if (e == i + 1) v = jinja__arg(a, auto_i++, NULL);
    else {
      char key[64];
      size_t kl = e - i - 1 < 63 ? e - i - 1 : 63;
      memcpy(key, s->s + i + 1, kl);
      key[kl] = 0;
      char *end;
      long idx = strtol(key, &end, 10);
      v = *end ? jinja__arg(a, SIZE_MAX, key) : jinja__arg(a, (size_t)idx, NULL);
    }
    if (!v) {
      jinja__buf_deinit(&b);
      return jinja__fail(r, at->pos, ERR_FORMAT, "format(): missing argument");
    }
    int rc = join_part(r, at, &b, v);
    if (rc) {
      jinja__buf_deinit(&b);
      return rc;
    }
    run = i = e + 1;
  }
  jinja__buf_lit(&b, s->s + run, s->len - run);
  if (jinja__str_tainted(s)) jinja__buf_mark(&b, 0);
  return finish(r, at, &b, out);
}

/* "%s and %d" | format(...) */
static int printf_format(jinja__render *r, const jinja__node *at, const jinja__str *s, const jinja__args *a,
                         jinja__val *out) {
  jinja__buf b;
  jinja__buf_init(&b);
  size_t k = 0, i = 0, run = 0;
  while (i < s->len) {
    if (s->s[i] != '%' || i + 1 >= s->len) {
      i++;
      continue;
    }
    jinja__buf_lit(&b, s->s + run, i - run);
    char f = s->s[i + 1];
    if (f == '%') jinja__buf_lit(&b, "%", 1);
    else {
      const jinja__val *v = jinja__arg(a, k++, NULL);
      if (!v) {
        jinja__buf_deinit(&b);
        return jinja__fail(r, at->pos, ERR_FORMAT, "format: not enough arguments");
      }
      int rc = jinja__print(r, &b, v, at->pos);
      if (rc) {
        jinja__buf_deinit(&b);
        return rc;
      }
    }
    run = i += 2;
  }
  jinja__buf_lit(&b, s->s + run, s->len - run);
  if (jinja__str_tainted(s)) jinja__buf_mark(&b, 0);
  return finish(r, at, &b, out);
}

static int html_escape(jinja__render *r, const jinja__node *at, const jinja__str *s, jinja__val *out) {
  jinja__buf b;
  jinja__buf_init(&b);
  for (size_t i = 0; i < s->len; i++) {
    char c = s->s[i];
    const char *rep = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
    if (rep) jinja__buf_lit(&b, rep, strlen(rep));
    else jinja__buf_lit(&b, &c, 1);
  }
  if (jinja__str_tainted(s)) jinja__buf_mark(&b, 0);
  return finish(r, at, &b, out);
}

static int indent(jinja__render *r, const jinja__node *at, const jinja__str *s, const jinja__args *a, jinja__val *out) {
  const jinja__val *w = jinja__arg(a, 0, "width");
  int first = 0, blank = 0, rc;
  if ((rc = bool_arg(r, at, a, 1, "first", 0, &first)) || (rc = bool_arg(r, at, a, 2, "blank", 0, &blank))) return rc;
  char spaces[256];
  const char *ind = spaces;
  size_t il;
  if (!w || w->t == JV_INT) {
    int64_t n = w ? w->u.i : 4;
    if (n < 0) n = 0;
    if (n > 255) n = 255;
    memset(spaces, ' ', (size_t)n);
    il = (size_t)n;
  } else if (w->t == JV_STR) {
    ind = w->u.s->s, il = w->u.s->len;
  } else
    return jinja__fail(r, at->pos, ERR_FORMAT, "indent: width must be an integer or a string");
  jinja__buf b;
  jinja__buf_init(&b);
  size_t i = 0;
  for (size_t line = 0;; line++) {
    const char *nl = memchr(s->s + i, '\n', s->len - i);
    size_t e = nl ? (size_t)(nl - s->s) : s->len;
    if ((first || line) && (blank || e > i)) jinja__buf_lit(&b, ind, il);
    jinja__str *part = jinja__str_sub(r, s, i, e - i);
    if (!part) break;
    jinja__buf_str(&b, part);
    if (!nl) break;
    jinja__buf_lit(&b, "\n", 1);
    i = e + 1;
  }
  return finish(r, at, &b, out);
}

/* ---- tests ------------------------------------------------------------------------------ */

int jinja__test(jinja__render *r, const jinja__node *at, const char *name, size_t len, const jinja__val *v,
                const jinja__args *a, int *out) {
  char n[32];
  snprintf(n, sizeof n, "%.*s", (int)(len < 31 ? len : 31), name);
  int t = v->t;
  const jinja__val *x = jinja__arg(a, 0, NULL);
  if (!strcmp(n, "boolean")) *out = t == JV_BOOL;
  else if (!strcmp(n, "callable")) *out = t == JV_FUNC;
  else if (!strcmp(n, "odd") || !strcmp(n, "even")) {
    if (t != JV_INT) return jinja__fail(r, at->pos, ERR_FORMAT, "cannot test '%s' on a %s", n, jinja__type_name(v));
    *out = (v->u.i % 2 != 0) == (n[0] == 'o');
  } else if (!strcmp(n, "divisibleby")) {
    if (t != JV_INT || !x || x->t != JV_INT || !x->u.i) return jinja__fail(r, at->pos, ERR_FORMAT, "divisibleby needs integers");
    *out = v->u.i % x->u.i == 0;
  } else if (!strcmp(n, "false")) *out = t == JV_BOOL && !v->u.b;
  else if (!strcmp(n, "true")) *out = t == JV_BOOL && v->u.b;
  else if (!strcmp(n, "none")) *out = t == JV_NONE;
  else if (!strcmp(n, "string")) *out = t == JV_STR;
  else if (!strcmp(n, "number")) *out = t == JV_INT || t == JV_FLOAT;
  else if (!strcmp(n, "integer")) *out = t == JV_INT;
  else if (!strcmp(n, "float")) *out = t == JV_FLOAT;
  else if (!strcmp(n, "iterable")) *out = t == JV_LIST || t == JV_STR;
  else if (!strcmp(n, "mapping")) *out = t == JV_DICT || t == JV_LOOP;
  else if (!strcmp(n, "sequence")) *out = t == JV_LIST || t == JV_DICT || t == JV_STR || t == JV_LOOP;
  else if (!strcmp(n, "lower") || !strcmp(n, "upper")) {
    *out = 0;
    if (t == JV_STR) {
      *out = 1;
      for (size_t i = 0; i < v->u.s->len; i++) {
        char c = v->u.s->s[i];
        if (n[0] == 'l' ? (c >= 'A' && c <= 'Z') : (c >= 'a' && c <= 'z')) *out = 0;
      }
    }
  } else if (!strcmp(n, "defined")) *out = t != JV_UNDEF;
  else if (!strcmp(n, "undefined")) *out = t == JV_UNDEF;
  else if (!strcmp(n, "equalto") || !strcmp(n, "eq") || !strcmp(n, "==") || !strcmp(n, "sameas")) {
    jinja__val u = x ? *x : jinja__v_undef();
    *out = jinja__strict_eq(v, &u);
  } else if (!strcmp(n, "ne") || !strcmp(n, "!=")) {
    jinja__val u = x ? *x : jinja__v_undef();
    *out = !jinja__strict_eq(v, &u);
  } else if (!strcmp(n, "in")) {
    *out = 0;
    if (x && x->t == JV_LIST)
      for (size_t i = 0; i < x->u.l->n && !*out; i++) *out = jinja__strict_eq(&x->u.l->v[i], v);
    else if (x && x->t == JV_STR && t == JV_STR) *out = !v->u.s->len || memmem(x->u.s->s, x->u.s->len, v->u.s->s, v->u.s->len) != NULL;
    else if (x && x->t == JV_DICT && t == JV_STR) *out = jinja__dict_get(x->u.d, v->u.s->s, v->u.s->len) != NULL;
  } else
    return jinja__fail(r, at->pos, ERR_FORMAT, "unknown test '%s'", n);
  return 0;
}

/* select / reject / selectattr / rejectattr */
static int select_items(jinja__render *r, const jinja__node *at, const jinja__list *in, const jinja__args *a, int attr,
                        int keep, jinja__val *out) {
  jinja__list *l = jinja__list_new(r, 0);
  if (!l) return oom(r, at);
  const jinja__val *an = attr ? jinja__arg(a, 0, NULL) : NULL;
  const jinja__val *tn = jinja__arg(a, attr ? 1 : 0, NULL);
  if ((attr && (!an || an->t != JV_STR)) || (tn && tn->t != JV_STR))
    return jinja__fail(r, at->pos, ERR_FORMAT, "the arguments of a select filter must be strings");
  jinja__args rest = {0};
  size_t skip = attr ? 2 : 1;
  if (a->n_pos > skip) rest.pos = a->pos + skip, rest.n_pos = a->n_pos - skip;
  for (size_t i = 0; i < in->n; i++) {
    jinja__val item = in->v[i];
    int res;
    if (attr) {
      if (item.t != JV_DICT && item.t != JV_NS)
        return jinja__fail(r, at->pos, ERR_FORMAT, "selectattr/rejectattr need a list of objects");
      const jinja__val *v = jinja__dict_get(item.u.d, an->u.s->s, an->u.s->len);
      if (!v) res = 0;
      else if (!tn) res = jinja__truthy(v);
      else {
        int rc = jinja__test(r, at, tn->u.s->s, tn->u.s->len, v, &rest, &res);
        if (rc) return rc;
      }
    } else if (!tn) {
      res = jinja__truthy(&item);
    } else {
      int rc = jinja__test(r, at, tn->u.s->s, tn->u.s->len, &item, &rest, &res);
      if (rc) return rc;
    }
    if (!!res == keep && jinja__list_push(r, l, item)) return oom(r, at);
  }
  *out = list_val(l);
  return 0;
}

/* ---- filters ---------------------------------------------------------------------------- */

static int tojson(jinja__render *r, const jinja__node *at, const jinja__val *v, const jinja__args *a, jinja__val *out) {
  jinja__json_opts o = {.indent = -1, .undef_null = 1};
  const jinja__val *ind = jinja__arg(a, SIZE_MAX, "indent"), *seps = jinja__arg(a, SIZE_MAX, "separators");
  int rc;
  if (ind && ind->t != JV_INT && ind->t != JV_NONE) return jinja__fail(r, at->pos, ERR_FORMAT, "tojson: indent must be a number");
  if (ind && ind->t == JV_INT) o.indent = ind->u.i > 64 ? 64 : (int)ind->u.i;
  if ((rc = bool_arg(r, at, a, SIZE_MAX, "ensure_ascii", 0, &o.ensure_ascii)) ||
      (rc = bool_arg(r, at, a, SIZE_MAX, "sort_keys", 0, &o.sort_keys)))
    return rc;
  char *isep = NULL, *ksep = NULL;
  if (seps && seps->t != JV_NONE) {
    if (seps->t != JV_LIST || seps->u.l->n != 2 || seps->u.l->v[0].t != JV_STR || seps->u.l->v[1].t != JV_STR)
      return jinja__fail(r, at->pos, ERR_FORMAT, "tojson: separators must be two strings");
    isep = (char *)seps->u.l->v[0].u.s->s;
    ksep = (char *)seps->u.l->v[1].u.s->s;
    o.item_sep = isep, o.key_sep = ksep;
  }
  jinja__buf b;
  jinja__buf_init(&b);
  if ((rc = jinja__tojson(r, &b, v, &o, 0, at->pos))) {
    jinja__buf_deinit(&b);
    return rc;
  }
  return finish(r, at, &b, out);
}

int jinja__filter(jinja__render *r, const jinja__node *at, const char *name, size_t len, jinja__val in,
                  const jinja__args *a, jinja__val *out) {
  char n[32];
  int rc;
  snprintf(n, sizeof n, "%.*s", (int)(len < 31 ? len : 31), name);
  int t = in.t;
  const jinja__str *s = t == JV_STR ? in.u.s : NULL;
  const jinja__list *l = t == JV_LIST ? in.u.l : NULL;
  if (!strcmp(n, "safe")) {
    *out = in;
    return 0;
  }
  if (!strcmp(n, "tojson")) return tojson(r, at, &in, a, out);
  if (!strcmp(n, "default") || !strcmp(n, "d")) {
    const jinja__val *dv = jinja__arg(a, 0, "default_value");
    int boolean;
    if ((rc = bool_arg(r, at, a, 1, "boolean", 0, &boolean))) return rc;
    if (t == JV_UNDEF || (boolean && !jinja__truthy(&in))) {
      if (dv) *out = *dv;
      else return new_str(r, at, "", 0, 0, out);
    } else
      *out = in;
    return 0;
  }
  if (!strcmp(n, "int") || !strcmp(n, "float")) {
    int is_int = n[0] == 'i';
    const jinja__val *dv = jinja__arg(a, 0, "default");
    if (s) {
      char buf[64];
      size_t k = 0, i = 0, l2;
      while (i < s->len && (l2 = (size_t)is_js_ws(s, i))) i += l2;
      while (i < s->len && k < sizeof buf - 1) buf[k++] = s->s[i++];
      buf[k] = 0;
      char *end;
      if (is_int) {
        long long x = strtoll(buf, &end, 10);
        if (end == buf) *out = dv ? *dv : jinja__v_int(0);
        else *out = jinja__v_int(x);
      } else {
        double x = strtod(buf, &end);
        if (end == buf) *out = dv ? *dv : jinja__v_float(0);
        else *out = jinja__v_float(x);
      }
      return 0;
    }
    if (t == JV_INT || t == JV_FLOAT || t == JV_BOOL) {
      double x = t == JV_INT ? (double)in.u.i : t == JV_FLOAT ? in.u.f : in.u.b;
      if (is_int) *out = t == JV_INT ? in : jinja__v_int(isfinite(x) && fabs(x) < 9e18 ? (int64_t)trunc(x) : 0);
      else *out = jinja__v_float(x);
      return 0;
    }
    return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter '%s' to a %s", n, jinja__type_name(&in));
  }
  if (!strcmp(n, "string")) {
    if (s) *out = in;
    else if (t == JV_NONE || t == JV_UNDEF) return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter 'string' to a %s", jinja__type_name(&in));
    else {
      jinja__buf b;
      jinja__buf_init(&b);
      if ((rc = jinja__print(r, &b, &in, at->pos))) {
        jinja__buf_deinit(&b);
        return rc;
      }
      return finish(r, at, &b, out);
    }
    return 0;
  }
  if (!strcmp(n, "length") || !strcmp(n, "count")) {
    if (l) *out = jinja__v_int((int64_t)l->n);
    else if (s) *out = jinja__v_int((int64_t)utf16_len(s));
    else if (t == JV_DICT) *out = jinja__v_int((int64_t)in.u.d->n);
    else return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter '%s' to a %s", n, jinja__type_name(&in));
    return 0;
  }
  if (!strcmp(n, "list")) {
    if (l) *out = in;
    else if (s) return chars_list(r, at, s, out);
    else if (t == JV_DICT) {
      jinja__list *k = jinja__list_new(r, in.u.d->n);
      if (!k) return oom(r, at);
      for (size_t i = 0; i < in.u.d->n; i++) k->v[k->n++] = jinja__v_str(in.u.d->k[i]);
      *out = list_val(k);
    } else
      return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter 'list' to a %s", jinja__type_name(&in));
    return 0;
  }
  if (!strcmp(n, "items")) {
    if (t != JV_DICT) return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter 'items' to a %s", jinja__type_name(&in));
    jinja__args none = {0};
    return jinja__call_builtin(r, at, &(jinja__func){.kind = JF_METHOD, .self = in, .name = "items", .name_len = 5}, &none, out);
  }
  if (!strcmp(n, "dictsort")) {
    if (t != JV_DICT) return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter 'dictsort' to a %s", jinja__type_name(&in));
    return jinja__call_builtin(r, at, &(jinja__func){.kind = JF_METHOD, .self = in, .name = "dictsort", .name_len = 8}, a, out);
  }
  if (!strcmp(n, "abs")) {
    if (t == JV_INT) *out = jinja__v_int(in.u.i < 0 && in.u.i != INT64_MIN ? -in.u.i : in.u.i);
    else if (t == JV_FLOAT) *out = jinja__v_float(fabs(in.u.f));
    else return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter 'abs' to a %s", jinja__type_name(&in));
    return 0;
  }
  if (!strcmp(n, "round")) {
    if (t != JV_INT && t != JV_FLOAT) return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter 'round' to a %s", jinja__type_name(&in));
    const jinja__val *p = jinja__arg(a, 0, "precision"), *m = jinja__arg(a, 1, "method");
    double x = t == JV_INT ? (double)in.u.i : in.u.f, k = pow(10, p && p->t == JV_INT ? (double)p->u.i : 0);
    const char *meth = m && m->t == JV_STR ? m->u.s->s : "common";
    x = !strcmp(meth, "floor") ? floor(x * k) / k : !strcmp(meth, "ceil") ? ceil(x * k) / k : round(x * k) / k;
    *out = jinja__v_float(x);
    return 0;
  }
  if (s) {
    int tainted = jinja__str_tainted(s);
    if (!strcmp(n, "upper")) return case_map(r, at, s, 0, out);
    if (!strcmp(n, "lower")) return case_map(r, at, s, 1, out);
    if (!strcmp(n, "title")) return case_map(r, at, s, 2, out);
    if (!strcmp(n, "capitalize")) return case_map(r, at, s, 3, out);
    if (!strcmp(n, "trim")) return strip(r, at, s, 3, jinja__arg(a, 0, "chars"), out);
    if (!strcmp(n, "indent")) return indent(r, at, s, a, out);
    if (!strcmp(n, "replace")) return replace(r, at, s, a, out);
    if (!strcmp(n, "escape") || !strcmp(n, "e")) return html_escape(r, at, s, out);
    if (!strcmp(n, "format")) return printf_format(r, at, s, a, out);
    if (!strcmp(n, "first") || !strcmp(n, "last")) {
      if (!s->len) {
        *out = jinja__v_undef();
        return 0;
      }
      size_t i = 0;
      if (n[0] == 'l') {
        i = s->len - 1;
        while (i && ((unsigned char)s->s[i] & 0xc0) == 0x80) i--;
      }
      jinja__str *c = jinja__str_sub(r, s, i, cp_len(s->s, i, s->len));
      if (!c) return oom(r, at);
      *out = jinja__v_str(c);
      return 0;
    }
    if (!strcmp(n, "reverse")) {
      jinja__buf b;
      jinja__buf_init(&b);
      for (size_t e = s->len; e > 0;) {
        size_t i = e - 1;
        while (i && ((unsigned char)s->s[i] & 0xc0) == 0x80) i--;
        jinja__buf_lit(&b, s->s + i, e - i);
        e = i;
      }
      if (tainted) jinja__buf_mark(&b, 0);
      return finish(r, at, &b, out);
    }
    if (!strcmp(n, "wordcount")) {
      int64_t c = 0;
      int in_word = 0;
      for (size_t i = 0; i < s->len; i++) {
        unsigned char ch = (unsigned char)s->s[i];
        int w = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch >= 0x80;
        if (w && !in_word) c++;
        in_word = w;
      }
      *out = jinja__v_int(c);
      return 0;
    }
    if (!strcmp(n, "join")) {
      const jinja__val *sep = jinja__arg(a, 0, "d");
      jinja__val chars;
      if ((rc = chars_list(r, at, s, &chars))) return rc;
      in = chars, l = chars.u.l;
      (void)sep;
    } else
      return jinja__fail(r, at->pos, ERR_FORMAT, "unknown filter '%s' for a string", n);
  }
  if (l) {
    if (!strcmp(n, "first")) {
      *out = l->n ? l->v[0] : jinja__v_undef();
      return 0;
    }
    if (!strcmp(n, "last")) {
      *out = l->n ? l->v[l->n - 1] : jinja__v_undef();
      return 0;
    }
    if (!strcmp(n, "reverse")) {
      jinja__list *o = jinja__list_new(r, l->n);
      if (!o) return oom(r, at);
      for (size_t i = l->n; i-- > 0;) o->v[o->n++] = l->v[i];
      *out = list_val(o);
      return 0;
    }
    if (!strcmp(n, "join")) {
      const jinja__val *sep = jinja__arg(a, 0, "d");
      if (sep && sep->t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "join: the separator must be a string");
      jinja__buf b;
      jinja__buf_init(&b);
      for (size_t i = 0; i < l->n; i++) {
        if (i && sep) jinja__buf_str(&b, sep->u.s);
        if ((rc = join_part(r, at, &b, &l->v[i]))) {
          jinja__buf_deinit(&b);
          return rc;
        }
      }
      return finish(r, at, &b, out);
    }
    if (!strcmp(n, "unique")) {
      jinja__list *o = jinja__list_new(r, 0);
      if (!o) return oom(r, at);
      for (size_t i = 0; i < l->n; i++) {
        int seen = 0;
        for (size_t k = 0; k < o->n && !seen; k++) seen = jinja__strict_eq(&o->v[k], &l->v[i]);
        if (!seen && jinja__list_push(r, o, l->v[i])) return oom(r, at);
      }
      *out = list_val(o);
      return 0;
    }
    if (!strcmp(n, "sort")) {
      sort_ctx c = {0};
      const jinja__val *attr = jinja__arg(a, 2, "attribute");
      if ((rc = bool_arg(r, at, a, 0, "reverse", 0, &c.reverse)) || (rc = bool_arg(r, at, a, 1, "case_sensitive", 0, &c.cs)))
        return rc;
      jinja__str *ap = NULL;
      if (attr && attr->t == JV_INT) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)attr->u.i);
        if (!(ap = jinja__str_new(r, num, strlen(num), 0))) return oom(r, at);
      } else if (attr && attr->t == JV_STR)
        ap = attr->u.s;
      c.attr = ap;
      return sorted(r, at, l, &c, out);
    }
    if (!strcmp(n, "selectattr") || !strcmp(n, "rejectattr")) return select_items(r, at, l, a, 1, n[0] == 's', out);
    if (!strcmp(n, "select") || !strcmp(n, "reject")) return select_items(r, at, l, a, 0, n[0] == 's', out);
    if (!strcmp(n, "map")) {
      const jinja__val *attr = jinja__arg(a, SIZE_MAX, "attribute"), *dv = jinja__arg(a, SIZE_MAX, "default");
      const jinja__val *fname = jinja__arg(a, 0, NULL);
      jinja__list *o = jinja__list_new(r, l->n);
      if (!o) return oom(r, at);
      if (attr) {
        if (attr->t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "map: attribute must be a string");
        for (size_t i = 0; i < l->n; i++) {
          if (l->v[i].t != JV_DICT && l->v[i].t != JV_NS) return jinja__fail(r, at->pos, ERR_FORMAT, "map: items must be objects");
          jinja__val v = attr_path(&l->v[i], attr->u.s);
          o->v[o->n++] = v.t == JV_UNDEF && dv ? *dv : v;
        }
      } else if (fname && fname->t == JV_STR) {
        jinja__args rest = {0};
        if (a->n_pos > 1) rest.pos = a->pos + 1, rest.n_pos = a->n_pos - 1;
        for (size_t i = 0; i < l->n; i++)
          if ((rc = jinja__filter(r, at, fname->u.s->s, fname->u.s->len, l->v[i], &rest, &o->v[o->n++]))) return rc;
      } else
        return jinja__fail(r, at->pos, ERR_FORMAT, "map needs attribute= or a filter name");
      *out = list_val(o);
      return 0;
    }
    if (!strcmp(n, "batch")) {
      const jinja__val *sz = jinja__arg(a, 0, "linecount"), *fill = jinja__arg(a, 1, "fill_with");
      if (!sz || sz->t != JV_INT || sz->u.i <= 0) return jinja__fail(r, at->pos, ERR_FORMAT, "batch needs a positive size");
      jinja__list *o = jinja__list_new(r, 0), *cur = NULL;
      if (!o) return oom(r, at);
      for (size_t i = 0; i < l->n; i++) {
        if (!cur || (int64_t)cur->n == sz->u.i) {
          if (!(cur = jinja__list_new(r, 0)) || jinja__list_push(r, o, list_val(cur))) return oom(r, at);
        }
        if (jinja__list_push(r, cur, l->v[i])) return oom(r, at);
      }
      while (fill && cur && (int64_t)cur->n < sz->u.i)
        if (jinja__list_push(r, cur, *fill)) return oom(r, at);
      *out = list_val(o);
      return 0;
    }
    return jinja__fail(r, at->pos, ERR_FORMAT, "unknown filter '%s' for a list", n);
  }
  return jinja__fail(r, at->pos, ERR_FORMAT, "cannot apply filter '%s' to a %s", n, jinja__type_name(&in));
}

/* ---- methods and globals ---------------------------------------------------------------- */

static const char *const str_methods[] = {"upper", "lower", "strip", "title", "capitalize", "rstrip", "lstrip",
                                          "startswith", "endswith", "split", "replace", "find", "count", "format",
                                          "join", "isdigit", "isalpha", "isspace", NULL};
static const char *const dict_methods[] = {"get", "items", "keys", "values", "dictsort", "update", NULL};
static const char *const list_methods[] = {"append", "pop", "index", "count", "extend", "insert", NULL};

int jinja__method_lookup(jinja__render *r, const jinja__val *self, const char *name, size_t len, jinja__val *out) {
  *out = jinja__v_undef();
  const char *const *m = self->t == JV_STR ? str_methods : self->t == JV_DICT ? dict_methods : self->t == JV_LIST ? list_methods : NULL;
  if ((self->t == JV_STR || self->t == JV_LIST) && len == 6 && !memcmp(name, "length", 6)) {
    *out = jinja__v_int(self->t == JV_LIST ? (int64_t)self->u.l->n : (int64_t)utf16_len(self->u.s));
    return 0;
  }
  for (; m && *m; m++) {
    if (strlen(*m) != len || memcmp(*m, name, len)) continue;
    jinja__func *f = jinja__alloc(&r->a, sizeof *f);
    if (!f) return jinja__fail(r, UINT32_MAX, r->a.over ? ERR_TOOBIG : ERR_NOMEM, "out of memory");
    f->kind = JF_METHOD, f->self = *self, f->name = *m, f->name_len = len;
    out->t = JV_FUNC;
    out->u.fn = f;
    return 0;
  }
  return 0;
}

static int starts_ends(jinja__render *r, const jinja__node *at, const jinja__str *s, const jinja__val *p, int end, int *out) {
  if (!p) return jinja__fail(r, at->pos, ERR_FORMAT, "startswith/endswith need an argument");
  const jinja__val *v = p;
  size_t n = 1;
  if (p->t == JV_LIST) v = p->u.l->v, n = p->u.l->n;
  *out = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i].t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "startswith/endswith need strings");
    const jinja__str *x = v[i].u.s;
    if (x->len <= s->len && !memcmp(end ? s->s + s->len - x->len : s->s, x->s, x->len)) *out = 1;
  }
  return 0;
}

static int dict_items(jinja__render *r, const jinja__node *at, const jinja__dict *d, int what, jinja__val *out) {
  jinja__list *l = jinja__list_new(r, d->n);
  if (!l) return oom(r, at);
  for (size_t i = 0; i < d->n; i++) {
    if (what == 0) {
      jinja__list *p = jinja__list_new(r, 2);
      if (!p) return oom(r, at);
      p->v[0] = jinja__v_str(d->k[i]), p->v[1] = d->v[i], p->n = 2;
      l->v[l->n++] = list_val(p);
    } else
      l->v[l->n++] = what == 1 ? jinja__v_str(d->k[i]) : d->v[i];
  }
  *out = list_val(l);
  return 0;
}

static int method(jinja__render *r, const jinja__node *at, const jinja__func *fn, const jinja__args *a, jinja__val *out) {
  const char *m = fn->name;
  const jinja__val *self = &fn->self, *x = jinja__arg(a, 0, NULL);
  int rc, b = 0;
  *out = jinja__v_none();
  if (self->t == JV_STR) {
    const jinja__str *s = self->u.s;
    if (!strcmp(m, "upper")) return case_map(r, at, s, 0, out);
    if (!strcmp(m, "lower")) return case_map(r, at, s, 1, out);
    if (!strcmp(m, "title")) return case_map(r, at, s, 2, out);
    if (!strcmp(m, "capitalize")) return case_map(r, at, s, 3, out);
    if (!strcmp(m, "strip")) return strip(r, at, s, 3, x, out);
    if (!strcmp(m, "lstrip")) return strip(r, at, s, 1, x, out);
    if (!strcmp(m, "rstrip")) return strip(r, at, s, 2, x, out);
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
      if ((rc = starts_ends(r, at, s, x, m[0] == 'e', &b))) return rc;
      *out = jinja__v_bool(b);
      return 0;
    }
    if (!strcmp(m, "split")) return split(r, at, s, a, out);
    if (!strcmp(m, "replace")) return replace(r, at, s, a, out);
    if (!strcmp(m, "format")) return str_format(r, at, s, a, out);
    if (!strcmp(m, "find") || !strcmp(m, "count")) {
      if (!x || x->t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "%s() needs a string", m);
      const jinja__str *needle = x->u.s;
      if (m[0] == 'f') {
        const char *h = needle->len <= s->len ? memmem(s->s, s->len, needle->s, needle->len) : NULL;
        int64_t off = h ? (int64_t)(h - s->s) : -1;
        if (h) { /* in characters */
          int64_t c = 0;
          for (int64_t i = 0; i < off; i++)
            if (((unsigned char)s->s[i] & 0xc0) != 0x80) c++;
          off = c;
        }
        *out = jinja__v_int(off);
      } else {
        int64_t c = 0;
        if (!needle->len) c = (int64_t)utf16_len(s) + 1;
        else
          for (size_t i = 0; i + needle->len <= s->len;) {
            const char *h = memmem(s->s + i, s->len - i, needle->s, needle->len);
            if (!h) break;
            c++;
            i = (size_t)(h - s->s) + needle->len;
          }
        *out = jinja__v_int(c);
      }
      return 0;
    }
    if (!strcmp(m, "join")) {
      if (!x || x->t != JV_LIST) return jinja__fail(r, at->pos, ERR_FORMAT, "join() needs a list");
      jinja__buf buf;
      jinja__buf_init(&buf);
      for (size_t i = 0; i < x->u.l->n; i++) {
        if (i) jinja__buf_str(&buf, s);
        if ((rc = join_part(r, at, &buf, &x->u.l->v[i]))) {
          jinja__buf_deinit(&buf);
          return rc;
        }
      }
      return finish(r, at, &buf, out);
    }
    if (!strncmp(m, "is", 2)) {
      int ok = s->len > 0;
      for (size_t i = 0; i < s->len; i++) {
        char c = s->s[i];
        if (m[2] == 'd' && !(c >= '0' && c <= '9')) ok = 0;
        if (m[2] == 'a' && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) ok = 0;
        if (m[2] == 's' && !jinja__ws_at(s->s, i, s->len)) ok = 0;
      }
      *out = jinja__v_bool(ok);
      return 0;
    }
  } else if (self->t == JV_DICT) {
    jinja__dict *d = self->u.d;
    if (!strcmp(m, "get")) {
      if (!x || x->t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "get() needs a string key");
      const jinja__val *v = jinja__dict_get(d, x->u.s->s, x->u.s->len), *dv = jinja__arg(a, 1, "default");
      *out = v ? *v : dv ? *dv : jinja__v_none();
      return 0;
    }
    if (!strcmp(m, "items")) return dict_items(r, at, d, 0, out);
    if (!strcmp(m, "keys")) return dict_items(r, at, d, 1, out);
    if (!strcmp(m, "values")) return dict_items(r, at, d, 2, out);
    if (!strcmp(m, "update")) {
      if (x && x->t == JV_DICT)
        for (size_t i = 0; i < x->u.d->n; i++)
          if (jinja__dict_set(r, d, x->u.d->k[i], x->u.d->v[i])) return oom(r, at);
      for (size_t k = 0; k < a->n_kw; k++) {
        jinja__str *ks = jinja__str_new(r, a->kw[k], strlen(a->kw[k]), 0);
        if (!ks || jinja__dict_set(r, d, ks, a->kv[k])) return oom(r, at);
      }
      return 0;
    }
    if (!strcmp(m, "dictsort")) {
      sort_ctx c = {.pair = 1};
      const jinja__val *by = jinja__arg(a, 1, "by");
      if ((rc = bool_arg(r, at, a, 0, "case_sensitive", 0, &c.cs)) || (rc = bool_arg(r, at, a, 2, "reverse", 0, &c.reverse)))
        return rc;
      if (by && (by->t != JV_STR || (strcmp(by->u.s->s, "key") && strcmp(by->u.s->s, "value"))))
        return jinja__fail(r, at->pos, ERR_FORMAT, "dictsort: by must be 'key' or 'value'");
      c.by_value = by && !strcmp(by->u.s->s, "value");
      jinja__val items;
      if ((rc = dict_items(r, at, d, 0, &items))) return rc;
      return sorted(r, at, items.u.l, &c, out);
    }
  } else if (self->t == JV_LIST) {
    jinja__list *l = self->u.l;
    if (!strcmp(m, "append")) {
      if (!x) return jinja__fail(r, at->pos, ERR_FORMAT, "append() needs an argument");
      if (jinja__list_push(r, l, *x)) return jinja__fail(r, at->pos, ERR_TOOBIG, "list too long");
      return 0;
    }
    if (!strcmp(m, "extend")) {
      if (!x || x->t != JV_LIST) return jinja__fail(r, at->pos, ERR_FORMAT, "extend() needs a list");
      size_t n = x->u.l->n;
      for (size_t i = 0; i < n; i++)
        if (jinja__list_push(r, l, x->u.l->v[i])) return jinja__fail(r, at->pos, ERR_TOOBIG, "list too long");
      return 0;
    }
    if (!strcmp(m, "insert")) {
      const jinja__val *v = jinja__arg(a, 1, NULL);
      if (!x || x->t != JV_INT || !v) return jinja__fail(r, at->pos, ERR_FORMAT, "insert() needs an index and a value");
      if (jinja__list_push(r, l, *v)) return jinja__fail(r, at->pos, ERR_TOOBIG, "list too long");
      int64_t i = x->u.i < 0 ? x->u.i + (int64_t)l->n - 1 : x->u.i;
      if (i < 0) i = 0;
      if (i > (int64_t)l->n - 1) i = (int64_t)l->n - 1;
      memmove(l->v + i + 1, l->v + i, (l->n - 1 - (size_t)i) * sizeof *l->v);
      l->v[i] = *v;
      return 0;
    }
    if (!strcmp(m, "pop")) {
      int64_t i = x && x->t == JV_INT ? x->u.i : -1;
      if (i < 0) i += (int64_t)l->n;
      if (i < 0 || i >= (int64_t)l->n) return jinja__fail(r, at->pos, ERR_FORMAT, "pop index out of range");
      *out = l->v[i];
      memmove(l->v + i, l->v + i + 1, (l->n - (size_t)i - 1) * sizeof *l->v);
      l->n--;
      return 0;
    }
    if (!strcmp(m, "index") || !strcmp(m, "count")) {
      int64_t c = 0, idx = -1;
      for (size_t i = 0; x && i < l->n; i++)
        if (jinja__strict_eq(&l->v[i], x)) {
          if (idx < 0) idx = (int64_t)i;
          c++;
        }
      if (m[0] == 'i' && idx < 0) return jinja__fail(r, at->pos, ERR_FORMAT, "index(): value not in list");
      *out = jinja__v_int(m[0] == 'i' ? idx : c);
      return 0;
    }
  }
  return jinja__fail(r, at->pos, ERR_FORMAT, "unknown method '%s'", m);
}

static int strftime_now(jinja__render *r, const jinja__node *at, const jinja__val *f, jinja__val *out) {
  static const char *const mon[] = {"January", "February", "March", "April", "May", "June", "July",
                                    "August", "September", "October", "November", "December"};
  if (!f || f->t != JV_STR) return jinja__fail(r, at->pos, ERR_FORMAT, "strftime_now() needs a format string");
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  jinja__buf b;
  jinja__buf_init(&b);
  const jinja__str *s = f->u.s;
  for (size_t i = 0; i < s->len; i++) {
    char c = s->s[i], num[16];
    if (c != '%' || i + 1 >= s->len || !strchr("YmdbBHM%", s->s[i + 1])) {
      jinja__buf_lit(&b, &c, 1);
      continue;
    }
    switch (s->s[++i]) {
    case 'Y': snprintf(num, sizeof num, "%d", tm.tm_year + 1900); break;
    case 'm': snprintf(num, sizeof num, "%02d", tm.tm_mon + 1); break;
    case 'd': snprintf(num, sizeof num, "%02d", tm.tm_mday); break;
    case 'b': snprintf(num, sizeof num, "%.3s", mon[tm.tm_mon]); break;
    case 'B': snprintf(num, sizeof num, "%s", mon[tm.tm_mon]); break;
    case 'H': snprintf(num, sizeof num, "%02d", tm.tm_hour); break;
    case 'M': snprintf(num, sizeof num, "%02d", tm.tm_min); break;
    default: snprintf(num, sizeof num, "%%"); break;
    }
    jinja__buf_lit(&b, num, strlen(num));
  }
  return finish(r, at, &b, out);
}

int jinja__call_builtin(jinja__render *r, const jinja__node *at, const jinja__func *fn, const jinja__args *a,
                        jinja__val *out) {
  const jinja__val *x = jinja__arg(a, 0, NULL);
  *out = jinja__v_none();
  switch (fn->kind) {
  case JF_METHOD: return method(r, at, fn, a, out);
  case JF_RAISE: {
    jinja__str *s = x ? jinja__to_str(r, x, at->pos) : NULL;
    return jinja__fail(r, at->pos, ERR_FORMAT, "the template raised an error: %.*s", s ? (int)(s->len > 300 ? 300 : s->len) : 0,
                       s ? s->s : "");
  }
  case JF_STRFTIME: return strftime_now(r, at, x, out);
  case JF_RANGE: {
    int64_t v[3] = {0, 0, 1};
    if (a->n_pos < 1 || a->n_pos > 3) return jinja__fail(r, at->pos, ERR_FORMAT, "range() takes 1 to 3 integers");
    for (size_t i = 0; i < a->n_pos; i++) {
      if (a->pos[i].t != JV_INT) return jinja__fail(r, at->pos, ERR_FORMAT, "range() takes integers");
      v[a->n_pos == 1 ? 1 : i] = a->pos[i].u.i;
    }
    if (!v[2]) return jinja__fail(r, at->pos, ERR_FORMAT, "range() step must not be zero");
    double count = ceil(((double)v[1] - (double)v[0]) / (double)v[2]);
    if (count > JINJA_MAX_ITEMS) return jinja__fail(r, at->pos, ERR_TOOBIG, "range() of more than %u items", JINJA_MAX_ITEMS);
    jinja__list *l = jinja__list_new(r, count > 0 ? (size_t)count : 0);
    if (!l) return oom(r, at);
    for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2]) l->v[l->n++] = jinja__v_int(i);
    *out = list_val(l);
    return 0;
  }
  case JF_NAMESPACE:
  case JF_DICT: {
    jinja__dict *d = jinja__dict_new(r, 0);
    if (!d) return oom(r, at);
    if (x) {
      if (x->t == JV_DICT || x->t == JV_NS) {
        for (size_t i = 0; i < x->u.d->n; i++)
          if (jinja__dict_set(r, d, x->u.d->k[i], x->u.d->v[i])) return oom(r, at);
      } else if (x->t == JV_LIST) {
        for (size_t i = 0; i < x->u.l->n; i++) {
          const jinja__val *p = &x->u.l->v[i];
          if (p->t != JV_LIST || p->u.l->n != 2 || p->u.l->v[0].t != JV_STR)
            return jinja__fail(r, at->pos, ERR_FORMAT, "expected [key, value] pairs");
          if (jinja__dict_set(r, d, p->u.l->v[0].u.s, p->u.l->v[1])) return oom(r, at);
        }
      } else
        return jinja__fail(r, at->pos, ERR_FORMAT, "a %s is not iterable", jinja__type_name(x));
    }
    for (size_t k = 0; k < a->n_kw; k++) {
      jinja__str *ks = jinja__str_new(r, a->kw[k], strlen(a->kw[k]), 0);
      if (!ks || jinja__dict_set(r, d, ks, a->kv[k])) return oom(r, at);
    }
    out->t = fn->kind == JF_NAMESPACE ? JV_NS : JV_DICT;
    out->u.d = d;
    return 0;
  }
  default: return jinja__fail(r, at->pos, ERR_FORMAT, "cannot call that");
  }
}
