/* llm/jinja_impl — internals shared by the jinja_*.c files (see jinja.h).
 *
 *   jinja_lex.c      source → tokens (whitespace control as @huggingface/jinja does it)
 *   jinja_parse.c    tokens → syntax tree (in the template's arena); jinja_parse/free
 *   jinja_value.c    arenas, output buffers with provenance runs, values, printing, tojson
 *   jinja_eval.c     the interpreter: statements, expressions, scopes, macros; jinja_render
 *   jinja_filters.c  filters, tests, methods and global functions
 *
 * Everything a render allocates lives in its arena (freed at once); output buffers grow
 * with realloc. No global state. */
#ifndef APIARY_LLM_JINJA_IMPL_H
#define APIARY_LLM_JINJA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/jinja.h"

/* ---- arena ------------------------------------------------------------------------------ */

typedef struct jinja__chunk jinja__chunk;
typedef struct jinja__arena {
  jinja__chunk *head; /* newest chunk first (owned) */
  size_t total, cap;  /* bytes allocated / the most allowed */
  int over;           /* 1 once an allocation went over cap */
} jinja__arena;

void jinja__arena_init(jinja__arena *a, size_t cap);
void jinja__arena_deinit(jinja__arena *a);
void *jinja__alloc(jinja__arena *a, size_t n); /* zeroed, 16-aligned; NULL over cap or OOM */

/* ---- tokens ----------------------------------------------------------------------------- */

enum {
  JT_EOF = 0, JT_TEXT, JT_NUM, JT_STR, JT_NAME, JT_EQUALS, JT_LPAREN, JT_RPAREN, JT_OPEN_STMT,
  JT_CLOSE_STMT, JT_OPEN_EXPR, JT_CLOSE_EXPR, JT_LBRACKET, JT_RBRACKET, JT_LBRACE, JT_RBRACE,
  JT_COMMA, JT_DOT, JT_COLON, JT_PIPE, JT_ADD, JT_MUL, JT_POW, JT_CMP, JT_UNARY, JT_COMMENT
};

typedef struct jinja__tok {
  int type;        /* JT_* */
  const char *s;   /* value: text, name, operator, unescaped string (in the arena / source) */
  size_t len;
  uint32_t pos;    /* byte offset in the original source */
} jinja__tok;

/* Tokenizes src (the preprocessed copy is kept in a). Returns 0 with *toks_out (arena,
 * ended by JT_EOF), or ERR_FORMAT / ERR_NOMEM / ERR_TOOBIG with err filled. */
int jinja__lex(jinja__arena *a, const char *src, size_t len, jinja__tok **toks_out, size_t *n_out, char *err,
               size_t err_cap);
/* "line L, column C" of byte offset pos in src. */
void jinja__where(const char *src, size_t len, uint32_t pos, char *out, size_t cap);

/* JavaScript's \s at s[i] (UTF-8): its byte length, or 0. */
size_t jinja__ws_at(const char *s, size_t i, size_t n);
/* Length of the JavaScript white space character that ends at s[i-1], or 0. */
size_t jinja__ws_before(const char *s, size_t i);

/* ---- syntax tree ------------------------------------------------------------------------ */

enum {
  /* statements */
  JN_TEXT = 1, JN_IF, JN_FOR, JN_SET, JN_MACRO, JN_CALLBLOCK, JN_FILTERBLOCK, JN_BREAK, JN_CONTINUE,
  /* expressions */
  JN_STR, JN_INT, JN_FLOAT, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_BIN, JN_UNARY, JN_MEMBER, JN_SLICE,
  JN_CALL, JN_KWARG, JN_FILTER, JN_TEST, JN_TERNARY, JN_SELECT
};

/* binary/unary operators */
enum {
  JO_ADD = 1, JO_SUB, JO_CAT, JO_MUL, JO_DIV, JO_FLOORDIV, JO_MOD, JO_POW, JO_EQ, JO_NE, JO_LT, JO_GT, JO_LE, JO_GE,
  JO_IN, JO_NOTIN, JO_AND, JO_OR, JO_NOT, JO_NEG, JO_POS
};

typedef struct jinja__node jinja__node;
struct jinja__node {
  int kind;               /* JN_* */
  int op;                 /* JO_* ; JN_MEMBER: 1 computed; JN_TEST: 1 negated; JN_FILTER: 1 has args */
  uint32_t pos;           /* source offset, for messages */
  jinja__node *a, *b, *c, *d;
  jinja__node **kids;     /* body / args / items */
  size_t n_kids;
  jinja__node **alt;      /* else body / macro params */
  size_t n_alt;
  const char *s;          /* text, name, string value */
  size_t len;
  int64_t i;
  double f;
};

struct jinja_tmpl {
  jinja__arena a;         /* nodes, tokens, source copies (owned) */
  char *src;              /* the original source (owned, for positions) */
  size_t src_len;
  jinja__node **body;
  size_t n_body;
};

/* ---- values ----------------------------------------------------------------------------- */

enum { JV_UNDEF = 0, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS, JV_FUNC, JV_LOOP };

typedef struct jinja__str {
  const char *s;          /* len bytes, NUL-terminated */
  size_t len;
  jinja_run *runs;        /* input bytes of s, sorted, disjoint */
  size_t n_runs;
} jinja__str;

typedef struct jinja__val jinja__val;
typedef struct jinja__list jinja__list;
typedef struct jinja__dict jinja__dict;
typedef struct jinja__func jinja__func;
typedef struct jinja__loop jinja__loop;

struct jinja__val {
  int t;                  /* JV_* */
  int tuple;              /* JV_LIST made by a tuple */
  union {
    int b;
    int64_t i;
    double f;
    jinja__str *s;
    jinja__list *l;
    jinja__dict *d;       /* JV_DICT and JV_NS */
    jinja__func *fn;
    jinja__loop *lp;
  } u;
};

struct jinja__list {
  jinja__val *v;
  size_t n, cap;
};

struct jinja__dict {
  jinja__str **k;
  jinja__val *v;
  size_t n, cap;
};

struct jinja__loop {
  size_t i, n;            /* iteration, length */
  jinja__val prev, next;  /* JV_UNDEF at the ends */
};

typedef struct jinja__scope jinja__scope;

/* builtin callables */
enum {
  JF_MACRO = 1, JF_CALLER, JF_RANGE, JF_NAMESPACE, JF_DICT, JF_RAISE, JF_STRFTIME, JF_METHOD
};

struct jinja__func {
  int kind;               /* JF_* */
  const jinja__node *node;/* macro / call block */
  jinja__scope *env;      /* defining scope */
  jinja__val self;        /* JF_METHOD: the receiver */
  const char *name;       /* JF_METHOD: method name */
  size_t name_len;
};

/* ---- render state ----------------------------------------------------------------------- */

typedef struct jinja__buf {
  char *p;                /* owned (malloc) */
  size_t len, cap;
  jinja_run *r;           /* owned (malloc) */
  size_t nr, rcap;
  int rc;                 /* first error (ERR_NOMEM, ERR_TOOBIG) */
} jinja__buf;

typedef struct jinja__render {
  const jinja_tmpl *t;
  jinja__arena a;
  char *err;
  size_t err_cap;
  uint64_t steps;
  int call_depth;
  int eval_depth;
  jinja__scope *globals;
} jinja__render;

/* Sets the error (with the node's position when pos is not UINT32_MAX); returns rc. */
int jinja__fail(jinja__render *r, uint32_t pos, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

void jinja__buf_init(jinja__buf *b);
void jinja__buf_deinit(jinja__buf *b);
void jinja__buf_lit(jinja__buf *b, const char *s, size_t len);   /* template text */
void jinja__buf_in(jinja__buf *b, const char *s, size_t len);    /* input text */
void jinja__buf_str(jinja__buf *b, const jinja__str *s);         /* with its runs */
void jinja__buf_mark(jinja__buf *b, size_t from);                /* bytes [from, len) become input */
/* The buffer as an arena string (NULL on OOM; sets b->rc). */
jinja__str *jinja__buf_take(jinja__render *r, jinja__buf *b);

jinja__str *jinja__str_new(jinja__render *r, const char *s, size_t len, int input); /* copies */
jinja__str *jinja__str_sub(jinja__render *r, const jinja__str *s, size_t off, size_t len); /* keeps runs */
int jinja__str_tainted(const jinja__str *s);

jinja__val jinja__v_str(jinja__str *s);
jinja__val jinja__v_int(int64_t i);
jinja__val jinja__v_float(double f);
jinja__val jinja__v_bool(int b);
jinja__val jinja__v_none(void);
jinja__val jinja__v_undef(void);
jinja__list *jinja__list_new(jinja__render *r, size_t cap);
int jinja__list_push(jinja__render *r, jinja__list *l, jinja__val v);
jinja__dict *jinja__dict_new(jinja__render *r, size_t cap);
int jinja__dict_set(jinja__render *r, jinja__dict *d, jinja__str *k, jinja__val v);
jinja__val *jinja__dict_get(const jinja__dict *d, const char *k, size_t len);

/* JSON → value; strings are input when input is 1. */
int jinja__from_json(jinja__render *r, const json_t *j, int input, int depth, jinja__val *out);

int jinja__truthy(const jinja__val *v);
/* Appends the printed form of v ({{ v }}): nothing for none/undefined. */
int jinja__print(jinja__render *r, jinja__buf *b, const jinja__val *v, uint32_t pos);
/* JavaScript's String(number) for a double. */
void jinja__fmt_js_number(double f, char *out, size_t cap);
/* tojson: indent < 0 compact; item_sep/key_sep NULL for the defaults; undef_null prints
 * undefined as null (else "undefined", as value printing does). */
typedef struct jinja__json_opts {
  int indent;
  int ensure_ascii, sort_keys, undef_null;
  const char *item_sep, *key_sep;
} jinja__json_opts;
int jinja__tojson(jinja__render *r, jinja__buf *b, const jinja__val *v, const jinja__json_opts *o, int depth,
                  uint32_t pos);
/* == as JavaScript's loose equality on the values; === for `in`, unique, equalto. */
int jinja__loose_eq(const jinja__val *a, const jinja__val *b);
int jinja__strict_eq(const jinja__val *a, const jinja__val *b);
/* Sort order as @huggingface/jinja's compareRuntimeValues; sets *err_out on a type clash. */
int jinja__compare(const jinja__val *a, const jinja__val *b, int case_sensitive, int *err_out);
const char *jinja__type_name(const jinja__val *v);
/* A value as a string value: strings as they are, others printed. */
jinja__str *jinja__to_str(jinja__render *r, const jinja__val *v, uint32_t pos);

/* ---- calls (jinja_filters.c) ------------------------------------------------------------ */

typedef struct jinja__args {
  jinja__val *pos;        /* positional arguments */
  size_t n_pos;
  const char **kw;        /* keyword names (NUL-terminated) */
  jinja__val *kv;
  size_t n_kw;
} jinja__args;

/* A keyword or positional argument: positional index i, else keyword name; NULL if absent. */
const jinja__val *jinja__arg(const jinja__args *a, size_t i, const char *name);

int jinja__filter(jinja__render *r, const jinja__node *at, const char *name, size_t name_len, jinja__val in,
                  const jinja__args *args, jinja__val *out);
int jinja__test(jinja__render *r, const jinja__node *at, const char *name, size_t name_len, const jinja__val *v,
                const jinja__args *args, int *out);
/* Attribute lookup of a method name on strings, dicts and lists: a bound JF_METHOD, or undefined. */
int jinja__method_lookup(jinja__render *r, const jinja__val *self, const char *name, size_t len, jinja__val *out);
int jinja__call_builtin(jinja__render *r, const jinja__node *at, const jinja__func *fn, const jinja__args *args,
                        jinja__val *out);

#endif
