/* llm/jinja_parse — tokens → syntax tree, with @huggingface/jinja's grammar:
 *
 *   expr     := or ("if" or ("else" expr)?)?        (no else: a select, undefined if false)
 *   or       := and ("or" and)*          and := not ("and" not)*      not := "not" not | cmp
 *   cmp      := add (("in" | "not in" | == != < > <= >=) add)*
 *   add      := mul ((+ - ~) mul)*       mul := pow ((* / // %) pow)*  pow := test ("**" test)*
 *   test     := filter ("is" "not"? NAME ("(" args ")")?)*
 *   filter   := sign ("|" NAME ("(" args ")")?)*    sign := (+|-) sign | postfix
 *   postfix  := primary ("." NAME | "[" index-or-slice "]" | "(" args ")")*
 *
 * Statements: set (and block set), if/elif/else, for (tuple targets, "if" filter, else),
 * macro, call (with caller parameters), filter blocks, break, continue. Nodes live in the
 * template's arena; nesting is capped at JINJA_MAX_DEPTH. jinja_parse/jinja_free are the
 * public entry points. Any thread. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/jinja_impl.h"

#define PARSE_ARENA_CAP (256u << 20)

typedef struct parser {
  jinja__arena *a;
  jinja__tok *t;
  size_t n, cur;
  int depth;
  int rc;
  const char *src;
  size_t src_len;
  char *err;
  size_t err_cap;
} parser;

typedef struct nvec {
  jinja__node **v;
  size_t n, cap;
} nvec;

static jinja__node *fail(parser *P, const jinja__tok *at, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static jinja__node *fail(parser *P, const jinja__tok *at, int rc, const char *fmt, ...) {
  if (P->rc) return NULL;
  char w[64], msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jinja__where(P->src, P->src_len, at->pos, w, sizeof w);
  P->rc = err_set(P->err, P->err_cap, rc, "%s: %s", w, msg);
  return NULL;
}

static jinja__node *oom(parser *P) {
  if (!P->rc) P->rc = P->a->over ? err_set(P->err, P->err_cap, ERR_TOOBIG, "template too large to parse") : ERR_NOMEM;
  return NULL;
}

static jinja__node *mk(parser *P, int kind, const jinja__tok *at) {
  jinja__node *n = jinja__alloc(P->a, sizeof *n);
  if (!n) return oom(P);
  n->kind = kind;
  n->pos = at->pos;
  return n;
}

static int push(parser *P, nvec *v, jinja__node *n) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 4;
    jinja__node **nv = jinja__alloc(P->a, nc * sizeof *nv);
    if (!nv) return oom(P), -1;
    if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
    v->v = nv;
    v->cap = nc;
  }
  v->v[v->n++] = n;
  return 0;
}

static const jinja__tok *tk(parser *P) {
  return &P->t[P->cur < P->n ? P->cur : P->n - 1];
}

static int is(parser *P, int type) {
  return tk(P)->type == type;
}

static int is_name(parser *P, size_t ahead, const char *name) {
  size_t i = P->cur + ahead;
  if (i >= P->n || P->t[i].type != JT_NAME) return 0;
  return P->t[i].len == strlen(name) && !memcmp(P->t[i].s, name, P->t[i].len);
}

static const char *tok_desc(const jinja__tok *t) {
  static const char *const names[] = {
      [JT_EOF] = "end of template", [JT_TEXT] = "text",   [JT_NUM] = "number",   [JT_STR] = "string",
      [JT_NAME] = "name",           [JT_EQUALS] = "'='",  [JT_LPAREN] = "'('",   [JT_RPAREN] = "')'",
      [JT_OPEN_STMT] = "'{%'",      [JT_CLOSE_STMT] = "'%}'", [JT_OPEN_EXPR] = "'{{'", [JT_CLOSE_EXPR] = "'}}'",
      [JT_LBRACKET] = "'['",        [JT_RBRACKET] = "']'", [JT_LBRACE] = "'{'",  [JT_RBRACE] = "'}'",
      [JT_COMMA] = "','",           [JT_DOT] = "'.'",     [JT_COLON] = "':'",    [JT_PIPE] = "'|'",
      [JT_ADD] = "operator",        [JT_MUL] = "operator", [JT_POW] = "'**'",    [JT_CMP] = "comparison",
      [JT_UNARY] = "sign",          [JT_COMMENT] = "comment",
  };
  return names[t->type];
}

static int expect(parser *P, int type, const char *what) {
  if (P->rc) return -1;
  if (!is(P, type)) {
    fail(P, tk(P), ERR_FORMAT, "expected %s, got %s", what, tok_desc(tk(P)));
    return -1;
  }
  P->cur++;
  return 0;
}

static int expect_name(parser *P, const char *name) {
  if (P->rc) return -1;
  if (!is_name(P, 0, name)) {
    fail(P, tk(P), ERR_FORMAT, "expected '%s'", name);
    return -1;
  }
  P->cur++;
  return 0;
}

static int enter(parser *P) {
  if (++P->depth > JINJA_MAX_DEPTH) {
    fail(P, tk(P), ERR_TOOBIG, "nested too deeply (more than %d levels)", JINJA_MAX_DEPTH);
    return -1;
  }
  return 0;
}

static jinja__node *parse_expr(parser *P);
static jinja__node *parse_any(parser *P);
static jinja__node *parse_primary(parser *P);

/* Statements until one of stop (NULL-terminated) opens. */
static int parse_body(parser *P, nvec *v, const char *const *stop, const char *want) {
  for (;;) {
    if (P->rc) return -1;
    if (is(P, JT_EOF)) {
      fail(P, tk(P), ERR_FORMAT, "unexpected end of template: missing {%% %s %%}", want);
      return -1;
    }
    if (is(P, JT_OPEN_STMT))
      for (const char *const *s = stop; *s; s++)
        if (is_name(P, 1, *s)) return 0;
    if (is(P, JT_COMMENT)) {
      P->cur++;
      continue;
    }
    jinja__node *n = parse_any(P);
    if (!n || push(P, v, n)) return -1;
  }
}

static int end_tag(parser *P, const char *name) {
  if (expect(P, JT_OPEN_STMT, "'{%'") || expect_name(P, name) || expect(P, JT_CLOSE_STMT, "'%}'")) return -1;
  return 0;
}

/* (args): call arguments, or parameters of a macro / caller. */
static int parse_args(parser *P, nvec *v, int params) {
  int saw_kw = 0;
  if (expect(P, JT_LPAREN, "'('")) return -1;
  while (!is(P, JT_RPAREN)) {
    const jinja__tok *at = tk(P);
    jinja__node *arg = parse_expr(P);
    if (!arg) return -1;
    if (is(P, JT_EQUALS)) {
      P->cur++;
      if (arg->kind != JN_NAME) return fail(P, at, ERR_FORMAT, "expected a name before '='"), -1;
      jinja__node *kw = mk(P, JN_KWARG, at);
      if (!kw || !(kw->a = parse_expr(P))) return -1;
      kw->s = arg->s;
      kw->len = arg->len;
      arg = kw;
    }
    if (params) {
      if (arg->kind != JN_NAME && arg->kind != JN_KWARG) return fail(P, at, ERR_FORMAT, "expected a parameter name"), -1;
      for (size_t i = 0; i < v->n; i++)
        if (v->v[i]->len == arg->len && !memcmp(v->v[i]->s, arg->s, arg->len))
          return fail(P, at, ERR_FORMAT, "duplicate parameter '%.*s'", (int)arg->len, arg->s), -1;
    }
    if (arg->kind == JN_KWARG) saw_kw = 1;
    else if (saw_kw)
      return fail(P, at, ERR_FORMAT, params ? "a parameter without default follows one with a default"
                                            : "positional argument after a keyword argument"), -1;
    if (push(P, v, arg)) return -1;
    if (is(P, JT_COMMA)) P->cur++;
  }
  P->cur++;
  return 0;
}

static jinja__node *parse_call(parser *P, jinja__node *callee);

static jinja__node *parse_member(parser *P, jinja__node *obj) {
  while (obj && (is(P, JT_DOT) || is(P, JT_LBRACKET))) {
    const jinja__tok *at = tk(P);
    P->cur++;
    if (at->type == JT_DOT) {
      jinja__node *prop = parse_primary(P);
      if (!prop) return NULL;
      if (prop->kind != JN_NAME && prop->kind != JN_INT) return fail(P, at, ERR_FORMAT, "expected a name after '.'");
      jinja__node *m = mk(P, JN_MEMBER, at);
      if (!m) return NULL;
      m->a = obj, m->b = prop;
      obj = m;
      continue;
    }
    jinja__node *sl[4] = {0};
    int n = 0, is_slice = 0;
    while (!is(P, JT_RBRACKET)) {
      if (P->rc) return NULL;
      if (n >= 3) return fail(P, at, ERR_FORMAT, "a slice takes at most 3 parts");
      if (is(P, JT_COLON)) {
        sl[n++] = NULL;
        P->cur++;
        is_slice = 1;
      } else {
        if (!(sl[n++] = parse_expr(P))) return NULL;
        if (is(P, JT_COLON)) {
          P->cur++;
          is_slice = 1;
        }
      }
    }
    if (!n) return fail(P, at, ERR_FORMAT, "expected an index in []");
    P->cur++;
    jinja__node *m = mk(P, is_slice ? JN_SLICE : JN_MEMBER, at);
    if (!m) return NULL;
    m->a = obj;
    if (is_slice) m->b = sl[0], m->c = sl[1], m->d = sl[2];
    else m->b = sl[0], m->op = 1;
    obj = m;
  }
  return obj;
}

static jinja__node *parse_call(parser *P, jinja__node *callee) {
  if (enter(P)) return NULL;
  jinja__node *c = mk(P, JN_CALL, tk(P));
  nvec args = {0};
  if (!c || parse_args(P, &args, 0)) return NULL;
  c->a = callee, c->kids = args.v, c->n_kids = args.n;
  jinja__node *e = parse_member(P, c);
  if (e && is(P, JT_LPAREN)) e = parse_call(P, e);
  P->depth--;
  return e;
}

static jinja__node *parse_seq(parser *P, int primary) {
  const jinja__tok *at = tk(P);
  jinja__node *first = primary ? parse_primary(P) : parse_expr(P);
  if (!first || !is(P, JT_COMMA)) return first;
  nvec v = {0};
  if (push(P, &v, first)) return NULL;
  while (is(P, JT_COMMA)) {
    P->cur++;
    jinja__node *e = primary ? parse_primary(P) : parse_expr(P);
    if (!e || push(P, &v, e)) return NULL;
  }
  jinja__node *t = mk(P, JN_TUPLE, at);
  if (!t) return NULL;
  t->kids = v.v, t->n_kids = v.n;
  return t;
}

static jinja__node *parse_primary(parser *P) {
  const jinja__tok *at = tk(P);
  jinja__node *n;
  if (P->rc) return NULL;
  switch (at->type) {
  case JT_NUM: {
    P->cur++;
    char buf[64];
    size_t l = at->len < sizeof buf - 1 ? at->len : sizeof buf - 1;
    memcpy(buf, at->s, l);
    buf[l] = 0;
    if (memchr(at->s, '.', at->len)) {
      if (!(n = mk(P, JN_FLOAT, at))) return NULL;
      n->f = strtod(buf, NULL);
    } else {
      double d = strtod(buf, NULL);
      if (d >= 9.2e18 || d <= -9.2e18) {
        if (!(n = mk(P, JN_FLOAT, at))) return NULL; /* beyond int64: a number as JavaScript keeps it */
        n->f = d;
      } else {
        if (!(n = mk(P, JN_INT, at))) return NULL;
        n->i = strtoll(buf, NULL, 10);
      }
    }
    return n;
  }
  case JT_STR: {
    P->cur++;
    if (!(n = mk(P, JN_STR, at))) return NULL;
    n->s = at->s, n->len = at->len;
    if (is(P, JT_STR)) { /* adjacent literals concatenate */
      size_t total = n->len, i = P->cur;
      while (i < P->n && P->t[i].type == JT_STR) total += P->t[i++].len;
      char *s = jinja__alloc(P->a, total + 1);
      if (!s) return oom(P);
      memcpy(s, n->s, n->len);
      size_t k = n->len;
      while (is(P, JT_STR)) {
        memcpy(s + k, tk(P)->s, tk(P)->len);
        k += tk(P)->len;
        P->cur++;
      }
      n->s = s, n->len = k;
    }
    return n;
  }
  case JT_NAME:
    P->cur++;
    if (!(n = mk(P, JN_NAME, at))) return NULL;
    n->s = at->s, n->len = at->len;
    return n;
  case JT_LPAREN:
    P->cur++;
    if (!(n = parse_seq(P, 0)) || expect(P, JT_RPAREN, "')'")) return NULL;
    return n;
  case JT_LBRACKET:
  case JT_LBRACE: {
    int dict = at->type == JT_LBRACE;
    int close = dict ? JT_RBRACE : JT_RBRACKET;
    nvec v = {0};
    P->cur++;
    while (!is(P, close)) {
      jinja__node *e = parse_expr(P);
      if (!e || push(P, &v, e)) return NULL;
      if (dict) {
        if (expect(P, JT_COLON, "':' in a dict")) return NULL;
        if (!(e = parse_expr(P)) || push(P, &v, e)) return NULL;
      }
      if (is(P, JT_COMMA)) P->cur++;
    }
    P->cur++;
    if (!(n = mk(P, dict ? JN_DICT : JN_LIST, at))) return NULL;
    n->kids = v.v, n->n_kids = v.n;
    return n;
  }
  default:
    return fail(P, at, ERR_FORMAT, "unexpected %s", tok_desc(at));
  }
}

static jinja__node *parse_sign(parser *P) {
  const jinja__tok *at = tk(P);
  if ((at->type == JT_UNARY || at->type == JT_ADD) && at->len == 1 && (at->s[0] == '-' || at->s[0] == '+')) {
    if (enter(P)) return NULL;
    P->cur++;
    jinja__node *n = mk(P, JN_UNARY, at);
    if (!n || !(n->a = parse_sign(P))) return NULL;
    n->op = at->s[0] == '-' ? JO_NEG : JO_POS;
    P->depth--;
    return n;
  }
  jinja__node *m = parse_member(P, parse_primary(P));
  if (m && is(P, JT_LPAREN)) m = parse_call(P, m);
  return m;
}

static jinja__node *parse_filter(parser *P) {
  jinja__node *x = parse_sign(P);
  while (x && is(P, JT_PIPE)) {
    const jinja__tok *at = tk(P);
    P->cur++;
    if (!is(P, JT_NAME)) return fail(P, tk(P), ERR_FORMAT, "expected a filter name after '|'");
    jinja__node *f = mk(P, JN_FILTER, at);
    if (!f) return NULL;
    f->s = tk(P)->s, f->len = tk(P)->len;
    P->cur++;
    f->a = x;
    if (is(P, JT_LPAREN)) {
      nvec args = {0};
      if (parse_args(P, &args, 0)) return NULL;
      f->kids = args.v, f->n_kids = args.n, f->op = 1;
    }
    x = f;
  }
  return x;
}

static jinja__node *parse_test(parser *P) {
  jinja__node *x = parse_filter(P);
  while (x && is_name(P, 0, "is")) {
    const jinja__tok *at = tk(P);
    P->cur++;
    jinja__node *t = mk(P, JN_TEST, at);
    if (!t) return NULL;
    if (is_name(P, 0, "not")) t->op = 1, P->cur++;
    if (!is(P, JT_NAME)) return fail(P, tk(P), ERR_FORMAT, "expected a test name after 'is'");
    t->s = tk(P)->s, t->len = tk(P)->len;
    P->cur++;
    t->a = x;
    if (is(P, JT_LPAREN)) {
      nvec args = {0};
      if (parse_args(P, &args, 0)) return NULL;
      t->kids = args.v, t->n_kids = args.n;
    }
    x = t;
  }
  return x;
}

static jinja__node *binary(parser *P, const jinja__tok *at, int op, jinja__node *l, jinja__node *r) {
  if (!l || !r) return NULL;
  jinja__node *n = mk(P, JN_BIN, at);
  if (!n) return NULL;
  n->op = op, n->a = l, n->b = r;
  return n;
}

static jinja__node *parse_pow(parser *P) {
  jinja__node *x = parse_test(P);
  while (x && is(P, JT_POW)) {
    const jinja__tok *at = &P->t[P->cur++];
    x = binary(P, at, JO_POW, x, parse_test(P));
  }
  return x;
}

static jinja__node *parse_mul(parser *P) {
  jinja__node *x = parse_pow(P);
  while (x && is(P, JT_MUL)) {
    const jinja__tok *at = &P->t[P->cur++];
    int op = at->len == 2 ? JO_FLOORDIV : at->s[0] == '*' ? JO_MUL : at->s[0] == '/' ? JO_DIV : JO_MOD;
    x = binary(P, at, op, x, parse_pow(P));
  }
  return x;
}

static jinja__node *parse_add(parser *P) {
  jinja__node *x = parse_mul(P);
  while (x && is(P, JT_ADD)) {
    const jinja__tok *at = &P->t[P->cur++];
    int op = at->s[0] == '+' ? JO_ADD : at->s[0] == '-' ? JO_SUB : JO_CAT;
    x = binary(P, at, op, x, parse_mul(P));
  }
  return x;
}

static jinja__node *parse_cmp(parser *P) {
  jinja__node *x = parse_add(P);
  while (x) {
    const jinja__tok *at = tk(P);
    int op;
    if (is_name(P, 0, "not") && is_name(P, 1, "in")) op = JO_NOTIN, P->cur += 2;
    else if (is_name(P, 0, "in")) op = JO_IN, P->cur++;
    else if (is(P, JT_CMP)) {
      const char *s = at->s;
      op = s[0] == '=' ? JO_EQ : s[0] == '!' ? JO_NE : s[0] == '<' ? (at->len == 2 ? JO_LE : JO_LT) : (at->len == 2 ? JO_GE : JO_GT);
      P->cur++;
    } else
      break;
    x = binary(P, at, op, x, parse_add(P));
  }
  return x;
}

static jinja__node *parse_not(parser *P) {
  if (is_name(P, 0, "not")) {
    const jinja__tok *at = tk(P);
    if (enter(P)) return NULL;
    P->cur++;
    jinja__node *n = mk(P, JN_UNARY, at);
    if (!n || !(n->a = parse_not(P))) return NULL;
    n->op = JO_NOT;
    P->depth--;
    return n;
  }
  return parse_cmp(P);
}

static jinja__node *parse_and(parser *P) {
  jinja__node *x = parse_not(P);
  while (x && is_name(P, 0, "and")) {
    const jinja__tok *at = &P->t[P->cur++];
    x = binary(P, at, JO_AND, x, parse_not(P));
  }
  return x;
}

static jinja__node *parse_or(parser *P) {
  jinja__node *x = parse_and(P);
  while (x && is_name(P, 0, "or")) {
    const jinja__tok *at = &P->t[P->cur++];
    x = binary(P, at, JO_OR, x, parse_and(P));
  }
  return x;
}

static jinja__node *parse_expr(parser *P) {
  if (enter(P)) return NULL;
  jinja__node *x = parse_or(P);
  if (x && is_name(P, 0, "if")) {
    const jinja__tok *at = &P->t[P->cur++];
    jinja__node *test = parse_or(P);
    if (!test) return NULL;
    if (is_name(P, 0, "else")) {
      P->cur++;
      jinja__node *t = mk(P, JN_TERNARY, at);
      if (!t || !(t->c = parse_expr(P))) return NULL;
      t->a = test, t->b = x;
      x = t;
    } else {
      jinja__node *s = mk(P, JN_SELECT, at);
      if (!s) return NULL;
      s->a = x, s->b = test;
      x = s;
    }
  }
  P->depth--;
  return x;
}

/* ---- statements ------------------------------------------------------------------------- */

static jinja__node *parse_if(parser *P, const jinja__tok *at) {
  jinja__node *n = mk(P, JN_IF, at);
  nvec body = {0}, alt = {0};
  static const char *const stop[] = {"elif", "else", "endif", NULL}, *const stop_end[] = {"endif", NULL};
  if (!n || !(n->a = parse_expr(P)) || expect(P, JT_CLOSE_STMT, "'%}'")) return NULL;
  if (parse_body(P, &body, stop, "endif")) return NULL;
  if (is_name(P, 1, "elif")) {
    const jinja__tok *e = &P->t[P->cur + 1];
    P->cur += 2;
    jinja__node *nested = parse_if(P, e);
    if (!nested || push(P, &alt, nested)) return NULL;
  } else if (is_name(P, 1, "else")) {
    P->cur += 2;
    if (expect(P, JT_CLOSE_STMT, "'%}'") || parse_body(P, &alt, stop_end, "endif")) return NULL;
  }
  n->kids = body.v, n->n_kids = body.n, n->alt = alt.v, n->n_alt = alt.n;
  return n;
}

static jinja__node *parse_stmt(parser *P) {
  const jinja__tok *open = tk(P);
  P->cur++;
  if (!is(P, JT_NAME)) return fail(P, tk(P), ERR_FORMAT, "expected a statement name after '{%%'");
  const jinja__tok *at = tk(P);
  char name[16];
  snprintf(name, sizeof name, "%.*s", (int)(at->len < 15 ? at->len : 15), at->s);
  P->cur++;
  jinja__node *n = NULL;
  nvec body = {0}, alt = {0};
  (void)open;
  if (!strcmp(name, "set") && at->len == 3) {
    static const char *const stop[] = {"endset", NULL};
    if (!(n = mk(P, JN_SET, at)) || !(n->a = parse_seq(P, 0))) return NULL;
    if (is(P, JT_EQUALS)) {
      P->cur++;
      if (!(n->b = parse_seq(P, 0))) return NULL;
    } else {
      if (expect(P, JT_CLOSE_STMT, "'%}' or '='") || parse_body(P, &body, stop, "endset")) return NULL;
      P->cur++;
      if (expect_name(P, "endset")) return NULL;
      n->kids = body.v, n->n_kids = body.n;
    }
    if (expect(P, JT_CLOSE_STMT, "'%}'")) return NULL;
    if (n->a->kind != JN_NAME && n->a->kind != JN_TUPLE && n->a->kind != JN_MEMBER)
      return fail(P, at, ERR_FORMAT, "cannot assign to that");
    return n;
  }
  if (!strcmp(name, "if") && at->len == 2) {
    if (!(n = parse_if(P, at)) || end_tag(P, "endif")) return NULL;
    return n;
  }
  if (!strcmp(name, "for") && at->len == 3) {
    static const char *const stop[] = {"endfor", "else", NULL}, *const stop_end[] = {"endfor", NULL};
    if (!(n = mk(P, JN_FOR, at)) || !(n->a = parse_seq(P, 1))) return NULL;
    if (n->a->kind != JN_NAME && n->a->kind != JN_TUPLE)
      return fail(P, at, ERR_FORMAT, "expected a name or names after 'for'");
    if (expect_name(P, "in") || !(n->b = parse_expr(P)) || expect(P, JT_CLOSE_STMT, "'%}'")) return NULL;
    if (parse_body(P, &body, stop, "endfor")) return NULL;
    if (is_name(P, 1, "else")) {
      P->cur += 2;
      if (expect(P, JT_CLOSE_STMT, "'%}'") || parse_body(P, &alt, stop_end, "endfor")) return NULL;
    }
    if (end_tag(P, "endfor")) return NULL;
    n->kids = body.v, n->n_kids = body.n, n->alt = alt.v, n->n_alt = alt.n;
    return n;
  }
  if (!strcmp(name, "macro") && at->len == 5) {
    static const char *const stop[] = {"endmacro", NULL};
    if (!is(P, JT_NAME)) return fail(P, tk(P), ERR_FORMAT, "expected a macro name");
    if (!(n = mk(P, JN_MACRO, at))) return NULL;
    n->s = tk(P)->s, n->len = tk(P)->len;
    P->cur++;
    if (parse_args(P, &alt, 1) || expect(P, JT_CLOSE_STMT, "'%}'") || parse_body(P, &body, stop, "endmacro") ||
        end_tag(P, "endmacro"))
      return NULL;
    n->kids = body.v, n->n_kids = body.n, n->alt = alt.v, n->n_alt = alt.n;
    return n;
  }
  if (!strcmp(name, "call") && at->len == 4) {
    static const char *const stop[] = {"endcall", NULL};
    if (!(n = mk(P, JN_CALLBLOCK, at))) return NULL;
    if (is(P, JT_LPAREN) && parse_args(P, &alt, 1)) return NULL;
    const jinja__tok *ct = tk(P);
    jinja__node *callee = parse_primary(P);
    if (!callee) return NULL;
    if (callee->kind != JN_NAME) return fail(P, ct, ERR_FORMAT, "expected a macro name after 'call'");
    jinja__node *c = mk(P, JN_CALL, ct);
    nvec args = {0};
    if (!c || parse_args(P, &args, 0) || expect(P, JT_CLOSE_STMT, "'%}'") || parse_body(P, &body, stop, "endcall") ||
        end_tag(P, "endcall"))
      return NULL;
    c->a = callee, c->kids = args.v, c->n_kids = args.n;
    n->a = c, n->kids = body.v, n->n_kids = body.n, n->alt = alt.v, n->n_alt = alt.n;
    return n;
  }
  if (!strcmp(name, "filter") && at->len == 6) {
    static const char *const stop[] = {"endfilter", NULL};
    if (!(n = mk(P, JN_FILTERBLOCK, at))) return NULL;
    if (!is(P, JT_NAME)) return fail(P, tk(P), ERR_FORMAT, "expected a filter name");
    n->s = tk(P)->s, n->len = tk(P)->len;
    P->cur++;
    if (is(P, JT_LPAREN)) {
      if (parse_args(P, &alt, 0)) return NULL;
      n->op = 1;
    }
    if (expect(P, JT_CLOSE_STMT, "'%}'") || parse_body(P, &body, stop, "endfilter") || end_tag(P, "endfilter"))
      return NULL;
    n->kids = body.v, n->n_kids = body.n, n->alt = alt.v, n->n_alt = alt.n;
    return n;
  }
  if ((!strcmp(name, "break") && at->len == 5) || (!strcmp(name, "continue") && at->len == 8)) {
    if (!(n = mk(P, name[0] == 'b' ? JN_BREAK : JN_CONTINUE, at)) || expect(P, JT_CLOSE_STMT, "'%}'")) return NULL;
    return n;
  }
  return fail(P, at, ERR_FORMAT, "unknown statement '%.*s'", (int)(at->len > 40 ? 40 : at->len), at->s);
}

static jinja__node *parse_any(parser *P) {
  const jinja__tok *at = tk(P);
  jinja__node *n = NULL;
  if (enter(P)) return NULL;
  switch (at->type) {
  case JT_TEXT:
    if ((n = mk(P, JN_TEXT, at))) n->s = at->s, n->len = at->len;
    P->cur++;
    break;
  case JT_OPEN_STMT: n = parse_stmt(P); break;
  case JT_OPEN_EXPR:
    P->cur++;
    if (!(n = parse_expr(P)) || expect(P, JT_CLOSE_EXPR, "'}}'")) n = NULL;
    break;
  default: n = fail(P, at, ERR_FORMAT, "unexpected %s", tok_desc(at));
  }
  P->depth--;
  return n;
}

int jinja_parse(const char *src, size_t len, jinja_tmpl **out, char *err, size_t err_cap) {
  *out = NULL;
  if (!src && len) return err_set(err, err_cap, ERR_INVAL, "no template");
  if (len > JINJA_MAX_SOURCE)
    return err_set(err, err_cap, ERR_TOOBIG, "template is %zu bytes; the most is %u", len, JINJA_MAX_SOURCE);
  jinja_tmpl *t = calloc(1, sizeof *t);
  if (!t) return ERR_NOMEM;
  jinja__arena_init(&t->a, PARSE_ARENA_CAP);
  t->src = malloc(len + 1);
  if (!t->src) {
    jinja_free(t);
    return ERR_NOMEM;
  }
  if (len) memcpy(t->src, src, len);
  t->src[len] = 0;
  t->src_len = len;
  jinja__tok *toks;
  size_t nt;
  int rc = jinja__lex(&t->a, t->src, len, &toks, &nt, err, err_cap);
  if (rc) {
    jinja_free(t);
    return rc;
  }
  parser P = {.a = &t->a, .t = toks, .n = nt, .src = t->src, .src_len = len, .err = err, .err_cap = err_cap};
  nvec body = {0};
  while (!P.rc && !is(&P, JT_EOF)) {
    if (is(&P, JT_COMMENT)) {
      P.cur++;
      continue;
    }
    jinja__node *n = parse_any(&P);
    if (n) push(&P, &body, n);
  }
  if (P.rc) {
    jinja_free(t);
    return P.rc;
  }
  t->body = body.v;
  t->n_body = body.n;
  *out = t;
  return 0;
}

void jinja_free(jinja_tmpl *t) {
  if (!t) return;
  jinja__arena_deinit(&t->a);
  free(t->src);
  free(t);
}
