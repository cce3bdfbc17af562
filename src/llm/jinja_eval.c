/* llm/jinja_eval — the interpreter: walks the syntax tree with a scope chain, writing
 * into an output buffer that records which bytes came from the context.
 *
 * Scoping follows @huggingface/jinja: the render context and the globals (true, none,
 * range, namespace, dict, raise_exception, strftime_now) sit below the template's top
 * scope; a for loop gets one scope of its own (so a set inside a loop does not leak);
 * macros see the scope they were defined in, plus their parameters, varargs, kwargs and,
 * inside a call block, caller. Operators behave as there (JavaScript numbers, `~`
 * concatenation with undefined as "", loose ==); break/continue drop the output of the
 * iteration they end, as there. Every node and iteration costs a step; steps, memory,
 * output size and macro depth are capped. Any thread; a render's state is its own. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/jinja_impl.h"

#define JINJA_BREAK 1
#define JINJA_CONTINUE 2
#define JINJA_MAX_EVAL_DEPTH 1000

struct jinja__scope {
  jinja__scope *parent;
  const char **names;
  size_t *lens;
  jinja__val *vals;
  size_t n, cap;
};

int jinja__fail(jinja__render *r, uint32_t pos, int rc, const char *fmt, ...) {
  char msg[512], w[64];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (pos == UINT32_MAX) return err_set(r->err, r->err_cap, rc, "%s", msg);
  jinja__where(r->t->src, r->t->src_len, pos, w, sizeof w);
  return err_set(r->err, r->err_cap, rc, "%s: %s", w, msg);
}

static int oom(jinja__render *r, uint32_t pos) {
  if (r->a.over) return jinja__fail(r, pos, ERR_TOOBIG, "the render needs more than %u bytes of memory", JINJA_MAX_MEMORY);
  return jinja__fail(r, pos, ERR_NOMEM, "out of memory");
}

static int buf_fail(jinja__render *r, jinja__buf *b, uint32_t pos) {
  if (b->rc == ERR_TOOBIG) return jinja__fail(r, pos, ERR_TOOBIG, "output over %u bytes", JINJA_MAX_OUTPUT);
  return oom(r, pos);
}

/* ---- scopes ----------------------------------------------------------------------------- */

static jinja__scope *scope_new(jinja__render *r, jinja__scope *parent) {
  jinja__scope *s = jinja__alloc(&r->a, sizeof *s);
  if (s) s->parent = parent;
  return s;
}

static int scope_set(jinja__render *r, jinja__scope *s, const char *name, size_t len, jinja__val v) {
  for (size_t i = 0; i < s->n; i++)
    if (s->lens[i] == len && !memcmp(s->names[i], name, len)) {
      s->vals[i] = v;
      return 0;
    }
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 8;
    const char **nn = jinja__alloc(&r->a, nc * sizeof *nn);
    size_t *nl = jinja__alloc(&r->a, nc * sizeof *nl);
    jinja__val *nv = jinja__alloc(&r->a, nc * sizeof *nv);
    if (!nn || !nl || !nv) return oom(r, UINT32_MAX);
    if (s->n) {
      memcpy(nn, s->names, s->n * sizeof *nn);
      memcpy(nl, s->lens, s->n * sizeof *nl);
      memcpy(nv, s->vals, s->n * sizeof *nv);
    }
    s->names = nn, s->lens = nl, s->vals = nv, s->cap = nc;
  }
  s->names[s->n] = name;
  s->lens[s->n] = len;
  s->vals[s->n++] = v;
  return 0;
}

static const jinja__val *scope_get(const jinja__scope *s, const char *name, size_t len) {
  for (; s; s = s->parent)
    for (size_t i = s->n; i-- > 0;)
      if (s->lens[i] == len && !memcmp(s->names[i], name, len)) return &s->vals[i];
  return NULL;
}

static jinja__val func_val(jinja__render *r, int kind, const jinja__node *node, jinja__scope *env) {
  jinja__val v = {.t = JV_FUNC};
  jinja__func *f = jinja__alloc(&r->a, sizeof *f);
  if (!f) return jinja__v_undef();
  f->kind = kind, f->node = node, f->env = env;
  v.u.fn = f;
  return v;
}

/* ---- evaluation ------------------------------------------------------------------------- */

static int eval(jinja__render *r, jinja__scope *sc, const jinja__node *n, jinja__val *out);
static int exec_block(jinja__render *r, jinja__scope *sc, jinja__node *const *body, size_t n, jinja__buf *b);

static int step(jinja__render *r, uint32_t pos) {
  if (++r->steps > JINJA_MAX_STEPS)
    return jinja__fail(r, pos, ERR_TOOBIG, "the template takes more than %u steps", JINJA_MAX_STEPS);
  return 0;
}

/* Evaluates call arguments: positional, then keyword. */
static int eval_args(jinja__render *r, jinja__scope *sc, jinja__node *const *args, size_t n, jinja__args *out) {
  int rc;
  memset(out, 0, sizeof *out);
  if (!n) return 0;
  out->pos = jinja__alloc(&r->a, n * sizeof *out->pos);
  out->kw = jinja__alloc(&r->a, n * sizeof *out->kw);
  out->kv = jinja__alloc(&r->a, n * sizeof *out->kv);
  if (!out->pos || !out->kw || !out->kv) return oom(r, args[0]->pos);
  for (size_t i = 0; i < n; i++)
    if (args[i]->kind != JN_KWARG && (rc = eval(r, sc, args[i], &out->pos[out->n_pos++]))) return rc;
  for (size_t i = 0; i < n; i++) {
    if (args[i]->kind != JN_KWARG) continue;
    char *name = jinja__alloc(&r->a, args[i]->len + 1);
    if (!name) return oom(r, args[i]->pos);
    memcpy(name, args[i]->s, args[i]->len);
    for (size_t k = 0; k < out->n_kw; k++)
      if (!strcmp(out->kw[k], name)) return jinja__fail(r, args[i]->pos, ERR_FORMAT, "keyword argument '%s' given twice", name);
    out->kw[out->n_kw] = name;
    if ((rc = eval(r, sc, args[i]->a, &out->kv[out->n_kw++]))) return rc;
  }
  return 0;
}

static int render_to_str(jinja__render *r, jinja__scope *sc, jinja__node *const *body, size_t n, uint32_t pos,
                         jinja__val *out) {
  jinja__buf b;
  jinja__buf_init(&b);
  int rc = exec_block(r, sc, body, n, &b);
  if (rc > 0) rc = jinja__fail(r, pos, ERR_FORMAT, "break or continue outside a loop");
  if (!rc) {
    jinja__str *s = jinja__buf_take(r, &b);
    if (!s) rc = buf_fail(r, &b, pos);
    else *out = jinja__v_str(s);
  }
  jinja__buf_deinit(&b);
  return rc;
}

/* Binds parameters (macro or caller) in scope s. */
static int bind_params(jinja__render *r, jinja__scope *s, jinja__node *const *params, size_t np, const jinja__args *a,
                       uint32_t pos) {
  int rc;
  char *used = a->n_kw ? jinja__alloc(&r->a, a->n_kw) : NULL;
  if (a->n_kw && !used) return oom(r, pos);
  for (size_t i = 0; i < np; i++) {
    const jinja__node *p = params[i];
    jinja__val v = jinja__v_undef();
    if (i < a->n_pos) v = a->pos[i];
    else
      for (size_t k = 0; k < a->n_kw; k++)
        if (strlen(a->kw[k]) == p->len && !memcmp(a->kw[k], p->s, p->len)) v = a->kv[k], used[k] = 1;
    if ((rc = scope_set(r, s, p->s, p->len, v))) return rc;
  }
  jinja__list *va = jinja__list_new(r, 0);
  jinja__dict *kw = jinja__dict_new(r, 0);
  if (!va || !kw) return oom(r, pos);
  for (size_t i = np; i < a->n_pos; i++)
    if ((rc = jinja__list_push(r, va, a->pos[i]))) return oom(r, pos);
  for (size_t k = 0; k < a->n_kw; k++) {
    if (used[k]) continue;
    jinja__str *ks = jinja__str_new(r, a->kw[k], strlen(a->kw[k]), 0);
    if (!ks || jinja__dict_set(r, kw, ks, a->kv[k])) return oom(r, pos);
  }
  jinja__val vv = {.t = JV_LIST}, kv = {.t = JV_DICT};
  vv.u.l = va, kv.u.d = kw;
  if ((rc = scope_set(r, s, "varargs", 7, vv)) || (rc = scope_set(r, s, "kwargs", 6, kv))) return rc;
  for (size_t i = 0; i < np; i++) { /* defaults, once every name is bound */
    const jinja__node *p = params[i];
    if (p->kind != JN_KWARG) continue;
    const jinja__val *cur = scope_get(s, p->s, p->len);
    if (cur && cur->t != JV_UNDEF) continue;
    int given = i < a->n_pos;
    for (size_t k = 0; k < a->n_kw && !given; k++)
      if (strlen(a->kw[k]) == p->len && !memcmp(a->kw[k], p->s, p->len)) given = 1;
    if (given) continue;
    jinja__val d;
    if ((rc = eval(r, s, p->a, &d)) || (rc = scope_set(r, s, p->s, p->len, d))) return rc;
  }
  return 0;
}

static int call_func(jinja__render *r, const jinja__node *at, const jinja__func *fn, const jinja__args *a,
                     const jinja__val *caller, jinja__val *out) {
  int rc;
  if (fn->kind != JF_MACRO && fn->kind != JF_CALLER) return jinja__call_builtin(r, at, fn, a, out);
  if (++r->call_depth > JINJA_MAX_CALL_DEPTH) {
    r->call_depth--;
    return jinja__fail(r, at->pos, ERR_TOOBIG, "macro calls nested more than %d deep", JINJA_MAX_CALL_DEPTH);
  }
  jinja__scope *parent = fn->env;
  if (caller) {
    if (!(parent = scope_new(r, fn->env)) || (rc = scope_set(r, parent, "caller", 6, *caller))) goto done_oom;
  }
  jinja__scope *s = scope_new(r, parent);
  if (!s) goto done_oom;
  const jinja__node *m = fn->node;
  if (fn->kind == JF_MACRO) {
    if ((rc = bind_params(r, s, m->alt, m->n_alt, a, at->pos)) == 0)
      rc = render_to_str(r, s, m->kids, m->n_kids, m->pos, out);
  } else {
    if ((rc = bind_params(r, s, m->alt, m->n_alt, a, at->pos)) == 0)
      rc = render_to_str(r, s, m->kids, m->n_kids, m->pos, out);
  }
  r->call_depth--;
  return rc;
done_oom:
  r->call_depth--;
  return oom(r, at->pos);
}

static int is_int_or_float(const jinja__val *v) {
  return v->t == JV_INT || v->t == JV_FLOAT;
}

static double num(const jinja__val *v) {
  return v->t == JV_INT ? (double)v->u.i : v->t == JV_FLOAT ? v->u.f : v->t == JV_BOOL ? v->u.b : 0;
}

static int concat(jinja__render *r, const jinja__val *x, const jinja__val *y, uint32_t pos, jinja__val *out) {
  jinja__str *a = jinja__to_str(r, x, pos), *b = a ? jinja__to_str(r, y, pos) : NULL;
  if (!a || !b) return ERR_NOMEM;
  jinja__buf buf;
  jinja__buf_init(&buf);
  jinja__buf_str(&buf, a);
  jinja__buf_str(&buf, b);
  jinja__str *s = jinja__buf_take(r, &buf);
  int rc = s ? 0 : buf_fail(r, &buf, pos);
  jinja__buf_deinit(&buf);
  if (!rc) *out = jinja__v_str(s);
  return rc;
}

static int eval_bin(jinja__render *r, jinja__scope *sc, const jinja__node *n, jinja__val *out) {
  jinja__val L, R;
  int rc, op = n->op;
  if ((rc = eval(r, sc, n->a, &L))) return rc;
  if (op == JO_AND || op == JO_OR) {
    int t = jinja__truthy(&L);
    if ((op == JO_AND) != !!t) {
      *out = L;
      return 0;
    }
    return eval(r, sc, n->b, out);
  }
  if ((rc = eval(r, sc, n->b, &R))) return rc;
  if (op == JO_EQ || op == JO_NE) {
    int eq = jinja__loose_eq(&L, &R);
    *out = jinja__v_bool(op == JO_EQ ? eq : !eq);
    return 0;
  }
  if (is_int_or_float(&L) && is_int_or_float(&R) && op != JO_CAT && op != JO_POW) {
    int fl = L.t == JV_FLOAT || R.t == JV_FLOAT;
    double a = num(&L), b = num(&R);
    switch (op) {
    case JO_ADD:
    case JO_SUB:
    case JO_MUL:
      if (!fl) {
        int64_t x;
        int ov = op == JO_ADD ? __builtin_add_overflow(L.u.i, R.u.i, &x)
                 : op == JO_SUB ? __builtin_sub_overflow(L.u.i, R.u.i, &x)
                                : __builtin_mul_overflow(L.u.i, R.u.i, &x);
        if (!ov) {
          *out = jinja__v_int(x);
          return 0;
        }
      }
      *out = jinja__v_float(op == JO_ADD ? a + b : op == JO_SUB ? a - b : a * b);
      return 0;
    case JO_DIV: *out = jinja__v_float(a / b); return 0;
    case JO_FLOORDIV:
    case JO_MOD:
      if (b == 0) return jinja__fail(r, n->pos, ERR_FORMAT, "division by zero");
      if (!fl && op == JO_MOD && !(L.u.i == INT64_MIN && R.u.i == -1)) *out = jinja__v_int(L.u.i % R.u.i);
      else if (op == JO_MOD) *out = jinja__v_float(fmod(a, b));
      else if (!fl && fabs(floor(a / b)) < 9e18) *out = jinja__v_int((int64_t)floor(a / b));
      else *out = jinja__v_float(floor(a / b));
      return 0;
    case JO_LT: *out = jinja__v_bool(a < b); return 0;
    case JO_GT: *out = jinja__v_bool(a > b); return 0;
    case JO_LE: *out = jinja__v_bool(a <= b); return 0;
    case JO_GE: *out = jinja__v_bool(a >= b); return 0;
    default: break;
    }
  } else if (L.t == JV_UNDEF || R.t == JV_UNDEF) {
    if (R.t == JV_UNDEF && (op == JO_IN || op == JO_NOTIN)) {
      *out = jinja__v_bool(op == JO_NOTIN);
      return 0;
    }
    if (op == JO_CAT && L.t != JV_NONE && R.t != JV_NONE) return concat(r, &L, &R, n->pos, out);
    return jinja__fail(r, n->pos, ERR_FORMAT, "cannot apply that operator to an undefined value");
  } else if (L.t == JV_NONE || R.t == JV_NONE) {
    return jinja__fail(r, n->pos, ERR_FORMAT, "cannot apply that operator to none");
  } else if (op == JO_CAT) {
    return concat(r, &L, &R, n->pos, out);
  } else if (op == JO_POW && (is_int_or_float(&L) || L.t == JV_BOOL) && (is_int_or_float(&R) || R.t == JV_BOOL)) {
    double a = num(&L), b = num(&R);
    if (a == 0 && b < 0) return jinja__fail(r, n->pos, ERR_FORMAT, "0 cannot be raised to a negative power");
    double x = pow(a, b);
    if (!isfinite(x)) return jinja__fail(r, n->pos, ERR_FORMAT, "exponentiation result is not a finite number");
    if (L.t == JV_FLOAT || R.t == JV_FLOAT || b < 0 || fabs(x) >= 9e18) *out = jinja__v_float(x);
    else *out = jinja__v_int((int64_t)x);
    return 0;
  } else if (L.t == JV_LIST && R.t == JV_LIST && op == JO_ADD) {
    jinja__list *l = jinja__list_new(r, L.u.l->n + R.u.l->n);
    if (!l) return oom(r, n->pos);
    for (size_t i = 0; i < L.u.l->n; i++) l->v[l->n++] = L.u.l->v[i];
    for (size_t i = 0; i < R.u.l->n; i++) l->v[l->n++] = R.u.l->v[i];
    *out = (jinja__val){.t = JV_LIST};
    out->u.l = l;
    return 0;
  } else if (R.t == JV_LIST && (op == JO_IN || op == JO_NOTIN)) {
    int found = 0;
    for (size_t i = 0; i < R.u.l->n && !found; i++) found = jinja__strict_eq(&R.u.l->v[i], &L);
    *out = jinja__v_bool(op == JO_IN ? found : !found);
    return 0;
  }
  if ((L.t == JV_STR || R.t == JV_STR) && op == JO_ADD) return concat(r, &L, &R, n->pos, out);
  if (L.t == JV_STR && R.t == JV_STR) {
    const jinja__str *a = L.u.s, *b = R.u.s;
    if (op == JO_IN || op == JO_NOTIN) {
      int found = !a->len || (b->len >= a->len && memmem(b->s, b->len, a->s, a->len));
      *out = jinja__v_bool(op == JO_IN ? found : !found);
      return 0;
    }
    if (op == JO_LT || op == JO_GT || op == JO_LE || op == JO_GE) { /* Python's string order */
      int e = 0, c = jinja__compare(&L, &R, 1, &e);
      *out = jinja__v_bool(op == JO_LT ? c < 0 : op == JO_GT ? c > 0 : op == JO_LE ? c <= 0 : c >= 0);
      return 0;
    }
  }
  if (L.t == JV_STR && R.t == JV_DICT && (op == JO_IN || op == JO_NOTIN)) {
    int found = jinja__dict_get(R.u.d, L.u.s->s, L.u.s->len) != NULL;
    *out = jinja__v_bool(op == JO_IN ? found : !found);
    return 0;
  }
  return jinja__fail(r, n->pos, ERR_FORMAT, "unsupported operator between %s and %s", jinja__type_name(&L),
                     jinja__type_name(&R));
}

/* Code point boundaries of s: offsets of each code point, plus s->len at the end. */
static size_t *cp_offsets(jinja__render *r, const jinja__str *s, size_t *n_out) {
  size_t n = 0;
  for (size_t i = 0; i < s->len; i++)
    if (((unsigned char)s->s[i] & 0xc0) != 0x80) n++;
  size_t *o = jinja__alloc(&r->a, (n + 1) * sizeof *o);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < s->len; i++)
    if (((unsigned char)s->s[i] & 0xc0) != 0x80 || i == 0) o[k++] = i;
  if (k > n) k = n; /* a leading continuation byte counted once */
  o[k] = s->len;
  *n_out = k;
  return o;
}

static int keq(const jinja__str *s, const char *lit) {
  return s->len == strlen(lit) && !memcmp(s->s, lit, s->len);
}

static int get_member(jinja__render *r, const jinja__node *n, jinja__val obj, jinja__val prop, jinja__val *out) {
  *out = jinja__v_undef();
  if (obj.t == JV_DICT || obj.t == JV_NS) {
    if (prop.t != JV_STR) return jinja__fail(r, n->pos, ERR_FORMAT, "a dict key must be a string, not %s", jinja__type_name(&prop));
    const jinja__val *v = jinja__dict_get(obj.u.d, prop.u.s->s, prop.u.s->len);
    if (v) *out = *v;
    else if (obj.t == JV_DICT) return jinja__method_lookup(r, &obj, prop.u.s->s, prop.u.s->len, out);
    return 0;
  }
  if (obj.t == JV_LOOP) {
    if (prop.t != JV_STR) return 0;
    const jinja__loop *lp = obj.u.lp;
    const jinja__str *k = prop.u.s;
    int64_t i = (int64_t)lp->i, len = (int64_t)lp->n;
    if (keq(k, "index")) *out = jinja__v_int(i + 1);
    else if (keq(k, "index0")) *out = jinja__v_int(i);
    else if (keq(k, "revindex")) *out = jinja__v_int(len - i);
    else if (keq(k, "revindex0")) *out = jinja__v_int(len - i - 1);
    else if (keq(k, "first")) *out = jinja__v_bool(i == 0);
    else if (keq(k, "last")) *out = jinja__v_bool(i == len - 1);
    else if (keq(k, "length")) *out = jinja__v_int(len);
    else if (keq(k, "previtem")) *out = lp->prev;
    else if (keq(k, "nextitem")) *out = lp->next;
    return 0;
  }
  if (obj.t == JV_LIST || obj.t == JV_STR) {
    if (prop.t == JV_INT) {
      if (obj.t == JV_LIST) {
        int64_t i = prop.u.i < 0 ? prop.u.i + (int64_t)obj.u.l->n : prop.u.i;
        if (i >= 0 && i < (int64_t)obj.u.l->n) *out = obj.u.l->v[i];
        return 0;
      }
      size_t nc, *o = cp_offsets(r, obj.u.s, &nc);
      if (!o) return oom(r, n->pos);
      int64_t i = prop.u.i < 0 ? prop.u.i + (int64_t)nc : prop.u.i;
      if (i >= 0 && i < (int64_t)nc) {
        jinja__str *c = jinja__str_sub(r, obj.u.s, o[i], o[i + 1] - o[i]);
        if (!c) return oom(r, n->pos);
        *out = jinja__v_str(c);
      }
      return 0;
    }
    if (prop.t == JV_STR) return jinja__method_lookup(r, &obj, prop.u.s->s, prop.u.s->len, out);
    return jinja__fail(r, n->pos, ERR_FORMAT, "cannot index a %s with a %s", jinja__type_name(&obj), jinja__type_name(&prop));
  }
  if (prop.t != JV_STR) return jinja__fail(r, n->pos, ERR_FORMAT, "cannot index a %s with a %s", jinja__type_name(&obj), jinja__type_name(&prop));
  return 0; /* attribute of undefined, none, numbers, functions: undefined */
}

/* Python slicing as @huggingface/jinja does it (utils.slice). */
static void slice_bounds(int64_t len, const jinja__val *a, const jinja__val *b, int64_t step, int64_t *start, int64_t *stop) {
  if (step > 0) {
    int64_t s = a->t == JV_INT ? a->u.i : 0, e = b->t == JV_INT ? b->u.i : len;
    *start = s < 0 ? (len + s > 0 ? len + s : 0) : (s < len ? s : len);
    *stop = e < 0 ? (len + e > 0 ? len + e : 0) : (e < len ? e : len);
  } else {
    int64_t s = a->t == JV_INT ? a->u.i : len - 1, e = b->t == JV_INT ? b->u.i : -1;
    *start = s < 0 ? (len + s > -1 ? len + s : -1) : (s < len - 1 ? s : len - 1);
    *stop = e < -1 ? (len + e > -1 ? len + e : -1) : (e < len - 1 ? e : len - 1);
  }
}

static int eval_slice(jinja__render *r, jinja__scope *sc, const jinja__node *n, jinja__val *out) {
  jinja__val obj, a = jinja__v_undef(), b = jinja__v_undef(), c = jinja__v_undef();
  int rc;
  if ((rc = eval(r, sc, n->a, &obj))) return rc;
  if (obj.t != JV_LIST && obj.t != JV_STR) return jinja__fail(r, n->pos, ERR_FORMAT, "cannot slice a %s", jinja__type_name(&obj));
  if ((n->b && (rc = eval(r, sc, n->b, &a))) || (n->c && (rc = eval(r, sc, n->c, &b))) ||
      (n->d && (rc = eval(r, sc, n->d, &c))))
    return rc;
  if ((a.t != JV_INT && a.t != JV_UNDEF) || (b.t != JV_INT && b.t != JV_UNDEF) || (c.t != JV_INT && c.t != JV_UNDEF))
    return jinja__fail(r, n->pos, ERR_FORMAT, "slice bounds must be integers");
  int64_t st = c.t == JV_INT ? c.u.i : 1, start, stop;
  if (st == 0) st = 1; /* Math.sign(0) = 0 walks forward once per index, as step 1 would not: keep it simple */
  if (obj.t == JV_LIST) {
    slice_bounds((int64_t)obj.u.l->n, &a, &b, st, &start, &stop);
    jinja__list *l = jinja__list_new(r, 0);
    if (!l) return oom(r, n->pos);
    for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st)
      if ((rc = jinja__list_push(r, l, obj.u.l->v[i]))) return oom(r, n->pos);
    *out = (jinja__val){.t = JV_LIST};
    out->u.l = l;
    return 0;
  }
  size_t nc, *o = cp_offsets(r, obj.u.s, &nc);
  if (!o) return oom(r, n->pos);
  slice_bounds((int64_t)nc, &a, &b, st, &start, &stop);
  if (st == 1) {
    size_t from = start < stop ? o[start] : 0, to = start < stop ? o[stop] : 0;
    jinja__str *s = jinja__str_sub(r, obj.u.s, from, to - from);
    if (!s) return oom(r, n->pos);
    *out = jinja__v_str(s);
    return 0;
  }
  jinja__buf buf;
  jinja__buf_init(&buf);
  for (int64_t i = start; st > 0 ? i < stop : i > stop; i += st) {
    jinja__str *ch = jinja__str_sub(r, obj.u.s, o[i], o[i + 1] - o[i]);
    if (!ch) break;
    jinja__buf_str(&buf, ch);
  }
  jinja__str *s = jinja__buf_take(r, &buf);
  rc = s ? 0 : buf_fail(r, &buf, n->pos);
  jinja__buf_deinit(&buf);
  if (!rc) *out = jinja__v_str(s);
  return rc;
}

static int eval(jinja__render *r, jinja__scope *sc, const jinja__node *n, jinja__val *out) {
  int rc;
  if ((rc = step(r, n->pos))) return rc;
  if (++r->eval_depth > JINJA_MAX_EVAL_DEPTH) {
    r->eval_depth--;
    return jinja__fail(r, n->pos, ERR_TOOBIG, "evaluation nested too deeply");
  }
  *out = jinja__v_undef();
  switch (n->kind) {
  case JN_STR: {
    jinja__str *s = jinja__alloc(&r->a, sizeof *s);
    if (!s) {
      rc = oom(r, n->pos);
      break;
    }
    s->s = n->s, s->len = n->len;
    *out = jinja__v_str(s);
    break;
  }
  case JN_INT: *out = jinja__v_int(n->i); break;
  case JN_FLOAT: *out = jinja__v_float(n->f); break;
  case JN_NAME: {
    const jinja__val *v = scope_get(sc, n->s, n->len);
    if (v) *out = *v;
    break;
  }
  case JN_LIST:
  case JN_TUPLE: {
    jinja__list *l = jinja__list_new(r, n->n_kids);
    if (!l) {
      rc = oom(r, n->pos);
      break;
    }
    for (size_t i = 0; i < n->n_kids && !rc; i++) rc = eval(r, sc, n->kids[i], &l->v[l->n++]);
    out->t = JV_LIST, out->u.l = l, out->tuple = n->kind == JN_TUPLE;
    break;
  }
  case JN_DICT: {
    jinja__dict *d = jinja__dict_new(r, n->n_kids / 2);
    if (!d) {
      rc = oom(r, n->pos);
      break;
    }
    for (size_t i = 0; i + 1 < n->n_kids && !rc; i += 2) {
      jinja__val k, v;
      if ((rc = eval(r, sc, n->kids[i], &k))) break;
      if (k.t != JV_STR) {
        rc = jinja__fail(r, n->kids[i]->pos, ERR_FORMAT, "dict keys must be strings, not %s", jinja__type_name(&k));
        break;
      }
      if (!(rc = eval(r, sc, n->kids[i + 1], &v)) && jinja__dict_set(r, d, k.u.s, v)) rc = oom(r, n->pos);
    }
    out->t = JV_DICT, out->u.d = d;
    break;
  }
  case JN_BIN: rc = eval_bin(r, sc, n, out); break;
  case JN_UNARY: {
    jinja__val v;
    if ((rc = eval(r, sc, n->a, &v))) break;
    if (n->op == JO_NOT) *out = jinja__v_bool(!jinja__truthy(&v));
    else if (v.t == JV_INT || v.t == JV_BOOL) {
      int64_t x = v.t == JV_INT ? v.u.i : v.u.b;
      *out = jinja__v_int(n->op == JO_NEG && x != INT64_MIN ? -x : x);
    } else if (v.t == JV_FLOAT) *out = jinja__v_float(n->op == JO_NEG ? -v.u.f : v.u.f);
    else rc = jinja__fail(r, n->pos, ERR_FORMAT, "unary %c on a %s", n->op == JO_NEG ? '-' : '+', jinja__type_name(&v));
    break;
  }
  case JN_MEMBER: {
    jinja__val obj, prop;
    if ((rc = eval(r, sc, n->a, &obj))) break;
    if (n->op) {
      if ((rc = eval(r, sc, n->b, &prop))) break;
    } else if (n->b->kind == JN_INT) {
      prop = jinja__v_int(n->b->i);
    } else {
      jinja__str *s = jinja__alloc(&r->a, sizeof *s);
      if (!s) {
        rc = oom(r, n->pos);
        break;
      }
      s->s = n->b->s, s->len = n->b->len;
      prop = jinja__v_str(s);
    }
    rc = get_member(r, n, obj, prop, out);
    break;
  }
  case JN_SLICE: rc = eval_slice(r, sc, n, out); break;
  case JN_CALL: {
    jinja__args a;
    jinja__val fn;
    if ((rc = eval_args(r, sc, n->kids, n->n_kids, &a)) || (rc = eval(r, sc, n->a, &fn))) break;
    if (fn.t != JV_FUNC) {
      rc = jinja__fail(r, n->pos, ERR_FORMAT, "cannot call a %s", jinja__type_name(&fn));
      break;
    }
    rc = call_func(r, n, fn.u.fn, &a, NULL, out);
    break;
  }
  case JN_FILTER: {
    jinja__val v;
    jinja__args a;
    if ((rc = eval(r, sc, n->a, &v)) || (rc = eval_args(r, sc, n->kids, n->n_kids, &a))) break;
    rc = jinja__filter(r, n, n->s, n->len, v, &a, out);
    break;
  }
  case JN_TEST: {
    jinja__val v;
    jinja__args a;
    int t = 0;
    if ((rc = eval(r, sc, n->a, &v)) || (rc = eval_args(r, sc, n->kids, n->n_kids, &a))) break;
    if ((rc = jinja__test(r, n, n->s, n->len, &v, &a, &t))) break;
    *out = jinja__v_bool(n->op ? !t : t);
    break;
  }
  case JN_TERNARY: {
    jinja__val c;
    if ((rc = eval(r, sc, n->a, &c))) break;
    rc = eval(r, sc, jinja__truthy(&c) ? n->b : n->c, out);
    break;
  }
  case JN_SELECT: {
    jinja__val c;
    if ((rc = eval(r, sc, n->b, &c))) break;
    if (jinja__truthy(&c)) rc = eval(r, sc, n->a, out);
    break;
  }
  case JN_KWARG: rc = jinja__fail(r, n->pos, ERR_FORMAT, "a keyword argument outside a call"); break;
  default: rc = jinja__fail(r, n->pos, ERR_FORMAT, "a statement where a value was expected"); break;
  }
  r->eval_depth--;
  return rc;
}

/* ---- statements ------------------------------------------------------------------------- */

static int assign(jinja__render *r, jinja__scope *sc, const jinja__node *target, jinja__val v) {
  if (target->kind == JN_NAME) return scope_set(r, sc, target->s, target->len, v);
  if (target->kind == JN_TUPLE) {
    if (v.t != JV_LIST) return jinja__fail(r, target->pos, ERR_FORMAT, "cannot unpack a %s", jinja__type_name(&v));
    if (v.u.l->n != target->n_kids)
      return jinja__fail(r, target->pos, ERR_FORMAT, "too %s values to unpack", v.u.l->n < target->n_kids ? "few" : "many");
    for (size_t i = 0; i < target->n_kids; i++) {
      if (target->kids[i]->kind != JN_NAME) return jinja__fail(r, target->pos, ERR_FORMAT, "can only unpack into names");
      int rc = scope_set(r, sc, target->kids[i]->s, target->kids[i]->len, v.u.l->v[i]);
      if (rc) return rc;
    }
    return 0;
  }
  /* ns.attr = v */
  jinja__val obj;
  int rc = eval(r, sc, target->a, &obj);
  if (rc) return rc;
  if (obj.t != JV_NS) return jinja__fail(r, target->pos, ERR_FORMAT, "can only assign attributes of a namespace");
  if (target->op || target->b->kind != JN_NAME) return jinja__fail(r, target->pos, ERR_FORMAT, "cannot assign to that");
  jinja__str *k = jinja__str_new(r, target->b->s, target->b->len, 0);
  if (!k || jinja__dict_set(r, obj.u.d, k, v)) return oom(r, target->pos);
  return 0;
}

static void truncate_buf(jinja__buf *b, size_t len) {
  if (b->rc) return;
  b->len = len;
  if (b->p) b->p[len] = 0;
  while (b->nr && b->r[b->nr - 1].off >= len) b->nr--;
  if (b->nr && b->r[b->nr - 1].off + b->r[b->nr - 1].len > len) b->r[b->nr - 1].len = len - b->r[b->nr - 1].off;
}

static int exec_for(jinja__render *r, jinja__scope *outer, const jinja__node *n, jinja__buf *b) {
  int rc;
  jinja__scope *sc = scope_new(r, outer);
  if (!sc) return oom(r, n->pos);
  const jinja__node *iter = n->b, *test = NULL;
  if (iter->kind == JN_SELECT) test = iter->b, iter = iter->a;
  jinja__val it;
  if ((rc = eval(r, sc, iter, &it))) return rc;
  jinja__list *src;
  if (it.t == JV_LIST) src = it.u.l;
  else if (it.t == JV_DICT) {
    if (!(src = jinja__list_new(r, it.u.d->n))) return oom(r, n->pos);
    for (size_t i = 0; i < it.u.d->n; i++) src->v[src->n++] = jinja__v_str(it.u.d->k[i]);
  } else
    return jinja__fail(r, n->pos, ERR_FORMAT, "cannot loop over a %s", jinja__type_name(&it));
  jinja__list *items = src;
  if (n->a->kind == JN_TUPLE || test) {
    if (!(items = jinja__list_new(r, src->n))) return oom(r, n->pos);
    for (size_t i = 0; i < src->n; i++) {
      jinja__val cur = src->v[i];
      if ((rc = step(r, n->pos))) return rc;
      if (n->a->kind == JN_TUPLE) {
        if (cur.t != JV_LIST) return jinja__fail(r, n->pos, ERR_FORMAT, "cannot unpack a %s", jinja__type_name(&cur));
        if (cur.u.l->n != n->a->n_kids)
          return jinja__fail(r, n->pos, ERR_FORMAT, "too %s values to unpack", cur.u.l->n < n->a->n_kids ? "few" : "many");
      }
      if (test) {
        jinja__scope *ts = scope_new(r, sc);
        jinja__val t;
        if (!ts) return oom(r, n->pos);
        if ((rc = assign(r, ts, n->a, cur)) || (rc = eval(r, ts, test, &t))) return rc;
        if (!jinja__truthy(&t)) continue;
      }
      items->v[items->n++] = cur;
    }
  } else {
    jinja__list *copy = jinja__list_new(r, src->n);
    if (!copy) return oom(r, n->pos);
    if (src->n) memcpy(copy->v, src->v, src->n * sizeof *src->v);
    copy->n = src->n;
    items = copy;
  }
  int none = 1;
  for (size_t i = 0; i < items->n; i++) {
    if ((rc = step(r, n->pos))) return rc;
    jinja__loop *lp = jinja__alloc(&r->a, sizeof *lp);
    if (!lp) return oom(r, n->pos);
    lp->i = i, lp->n = items->n;
    lp->prev = i ? items->v[i - 1] : jinja__v_undef();
    lp->next = i + 1 < items->n ? items->v[i + 1] : jinja__v_undef();
    jinja__val lv = {.t = JV_LOOP};
    lv.u.lp = lp;
    if ((rc = scope_set(r, sc, "loop", 4, lv)) || (rc = assign(r, sc, n->a, items->v[i]))) return rc;
    size_t mark = b->len;
    rc = exec_block(r, sc, n->kids, n->n_kids, b);
    if (rc < 0) return rc;
    if (rc == JINJA_CONTINUE) {
      truncate_buf(b, mark);
      continue;
    }
    if (rc == JINJA_BREAK) {
      truncate_buf(b, mark);
      break;
    }
    none = 0;
  }
  if (none) {
    rc = exec_block(r, sc, n->alt, n->n_alt, b);
    if (rc) return rc;
  }
  return 0;
}

static int exec_stmt(jinja__render *r, jinja__scope *sc, const jinja__node *n, jinja__buf *b) {
  int rc;
  if ((rc = step(r, n->pos))) return rc;
  switch (n->kind) {
  case JN_TEXT: jinja__buf_lit(b, n->s, n->len); break;
  case JN_IF: {
    jinja__val t;
    if ((rc = eval(r, sc, n->a, &t))) return rc;
    rc = jinja__truthy(&t) ? exec_block(r, sc, n->kids, n->n_kids, b) : exec_block(r, sc, n->alt, n->n_alt, b);
    if (rc) return rc;
    break;
  }
  case JN_FOR:
    if (++r->eval_depth > JINJA_MAX_EVAL_DEPTH) {
      r->eval_depth--;
      return jinja__fail(r, n->pos, ERR_TOOBIG, "evaluation nested too deeply");
    }
    rc = exec_for(r, sc, n, b);
    r->eval_depth--;
    if (rc) return rc;
    break;
  case JN_SET: {
    jinja__val v;
    if (n->b) rc = eval(r, sc, n->b, &v);
    else rc = render_to_str(r, sc, n->kids, n->n_kids, n->pos, &v);
    if (rc || (rc = assign(r, sc, n->a, v))) return rc;
    break;
  }
  case JN_MACRO: {
    jinja__val f = func_val(r, JF_MACRO, n, sc);
    if (f.t != JV_FUNC) return oom(r, n->pos);
    if ((rc = scope_set(r, sc, n->s, n->len, f))) return rc;
    break;
  }
  case JN_CALLBLOCK: {
    jinja__val caller = func_val(r, JF_CALLER, n, sc), fn, v;
    jinja__args a;
    if (caller.t != JV_FUNC) return oom(r, n->pos);
    if ((rc = eval_args(r, sc, n->a->kids, n->a->n_kids, &a)) || (rc = eval(r, sc, n->a->a, &fn))) return rc;
    if (fn.t != JV_FUNC) return jinja__fail(r, n->pos, ERR_FORMAT, "cannot call a %s", jinja__type_name(&fn));
    if ((rc = call_func(r, n->a, fn.u.fn, &a, &caller, &v)) || (rc = jinja__print(r, b, &v, n->pos))) return rc;
    break;
  }
  case JN_FILTERBLOCK: {
    jinja__val v, res;
    jinja__args a;
    if ((rc = render_to_str(r, sc, n->kids, n->n_kids, n->pos, &v)) ||
        (rc = eval_args(r, sc, n->alt, n->n_alt, &a)) || (rc = jinja__filter(r, n, n->s, n->len, v, &a, &res)) ||
        (rc = jinja__print(r, b, &res, n->pos)))
      return rc;
    break;
  }
  case JN_BREAK: return JINJA_BREAK;
  case JN_CONTINUE: return JINJA_CONTINUE;
  default: {
    jinja__val v;
    if ((rc = eval(r, sc, n, &v)) || (rc = jinja__print(r, b, &v, n->pos))) return rc;
  }
  }
  if (b->rc) return buf_fail(r, b, n->pos);
  return 0;
}

static int exec_block(jinja__render *r, jinja__scope *sc, jinja__node *const *body, size_t n, jinja__buf *b) {
  for (size_t i = 0; i < n; i++) {
    int rc = exec_stmt(r, sc, body[i], b);
    if (rc) return rc;
  }
  return 0;
}

/* ---- entry ------------------------------------------------------------------------------ */

static int add_globals(jinja__render *r, jinja__scope *g) {
  static const struct {
    const char *name;
    int kind;
  } fns[] = {{"range", JF_RANGE}, {"namespace", JF_NAMESPACE}, {"dict", JF_DICT},
             {"raise_exception", JF_RAISE}, {"strftime_now", JF_STRFTIME}};
  int rc;
  for (size_t i = 0; i < sizeof fns / sizeof *fns; i++) {
    jinja__val f = func_val(r, fns[i].kind, NULL, NULL);
    if (f.t != JV_FUNC || (rc = scope_set(r, g, fns[i].name, strlen(fns[i].name), f))) return oom(r, UINT32_MAX);
  }
  if ((rc = scope_set(r, g, "true", 4, jinja__v_bool(1))) || (rc = scope_set(r, g, "false", 5, jinja__v_bool(0))) ||
      (rc = scope_set(r, g, "none", 4, jinja__v_none())) || (rc = scope_set(r, g, "True", 4, jinja__v_bool(1))) ||
      (rc = scope_set(r, g, "False", 5, jinja__v_bool(0))) || (rc = scope_set(r, g, "None", 4, jinja__v_none())))
    return rc;
  return 0;
}

static int add_vars(jinja__render *r, jinja__scope *s, const json_t *obj, int input) {
  const char *k;
  json_t *v;
  int rc;
  json_object_foreach((json_t *)obj, k, v) {
    jinja__val x;
    size_t kl = strlen(k);
    char *name = jinja__alloc(&r->a, kl + 1);
    if (!name) return oom(r, UINT32_MAX);
    memcpy(name, k, kl);
    if ((rc = jinja__from_json(r, v, input, 0, &x)) || (rc = scope_set(r, s, name, kl, x))) return rc;
  }
  return 0;
}

int jinja_render_trusted(const jinja_tmpl *t, const json_t *ctx, const json_t *trusted, jinja_out *out, char *err,
                         size_t err_cap) {
  memset(out, 0, sizeof *out);
  if (!t || (ctx && !json_is_object(ctx)) || (trusted && !json_is_object(trusted)))
    return err_set(err, err_cap, ERR_INVAL, "render needs a template and a JSON object of variables");
  jinja__render r = {.t = t, .err = err, .err_cap = err_cap};
  jinja__arena_init(&r.a, JINJA_MAX_MEMORY);
  jinja__buf b;
  jinja__buf_init(&b);
  int rc;
  jinja__scope *g = scope_new(&r, NULL), *vars = g ? scope_new(&r, g) : NULL, *top = vars ? scope_new(&r, vars) : NULL;
  if (!top) {
    rc = oom(&r, UINT32_MAX);
    goto done;
  }
  r.globals = g;
  if ((rc = add_globals(&r, g))) goto done;
  if (trusted && (rc = add_vars(&r, vars, trusted, 0))) goto done;
  if (ctx && (rc = add_vars(&r, vars, ctx, 1))) goto done;
  rc = exec_block(&r, top, t->body, t->n_body, &b);
  if (rc > 0) rc = jinja__fail(&r, UINT32_MAX, ERR_FORMAT, "break or continue outside a loop");
  if (!rc && b.rc) rc = buf_fail(&r, &b, UINT32_MAX);
  if (!rc && !b.p) {
    jinja__buf_lit(&b, "", 0);
    if (!(b.p = malloc(1))) rc = ERR_NOMEM;
    else b.p[0] = 0;
  }
  if (!rc) {
    out->text = b.p;
    out->len = b.len;
    out->input = b.r;
    out->n_input = b.nr;
    memset(&b, 0, sizeof b);
  }
done:
  jinja__buf_deinit(&b);
  jinja__arena_deinit(&r.a);
  return rc;
}

int jinja_render(const jinja_tmpl *t, const json_t *ctx, jinja_out *out, char *err, size_t err_cap) {
  return jinja_render_trusted(t, ctx, NULL, out, err, err_cap);
}

void jinja_out_deinit(jinja_out *o) {
  if (!o) return;
  free(o->text);
  free(o->input);
  memset(o, 0, sizeof *o);
}

/* for jinja_filters.c: calling macros passed to map() and such is not supported; callers
 * use call_func through this hook */
int jinja__call_value(jinja__render *r, const jinja__node *at, const jinja__val *fn, const jinja__args *a, jinja__val *out);
int jinja__call_value(jinja__render *r, const jinja__node *at, const jinja__val *fn, const jinja__args *a, jinja__val *out) {
  if (fn->t != JV_FUNC) return jinja__fail(r, at->pos, ERR_FORMAT, "cannot call a %s", jinja__type_name(fn));
  return call_func(r, at, fn->u.fn, a, NULL, out);
}
