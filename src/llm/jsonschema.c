/* llm/jsonschema — JSON Schema → GBNF (jsonschema.h).
 *
 * gen() turns one schema into one rule (`prefix-N ::= ...`) and returns its name; rules
 * are appended to the output as they are finished. A schema without `type` is the union
 * of one branch per JSON type, each constrained only by that type's keywords (which is
 * what the keywords mean). $ref targets get one rule each, memoized by pointer, so
 * recursive schemas become recursive rules. allOf is merged into one schema when the
 * parts do not interfere; anyOf is a union; oneOf is a union only when its branches
 * provably cannot overlap (disjoint types or disjoint constants). The result is parsed
 * once with grammar_parse as a check. Owns nothing after returning. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"

typedef struct sb {
  char *p;
  size_t n, cap;
  int oom;
} sb;

static void sb_add(sb *s, const char *t, size_t n) {
  if (s->oom) return;
  if (s->n + n + 1 > s->cap) {
    size_t c = s->cap ? s->cap : 256;
    while (c < s->n + n + 1) c *= 2;
    char *q = realloc(s->p, c);
    if (!q) { s->oom = 1; return; }
    s->p = q, s->cap = c;
  }
  memcpy(s->p + s->n, t, n);
  s->n += n;
  s->p[s->n] = 0;
}
static void sb_puts(sb *s, const char *t) { sb_add(s, t, strlen(t)); }
static void sb_printf(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sb *s, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) { sb_add(s, tmp, (size_t)n); return; }
  char *big = malloc((size_t)n + 1);
  if (!big) { s->oom = 1; return; }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_add(s, big, (size_t)n);
  free(big);
}

/* ---- canonical JSON ---------------------------------------------------------------- */

static void canon_string(sb *s, const char *t, size_t n) {
  sb_add(s, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)t[i];
    if (c == '"') sb_add(s, "\\\"", 2);
    else if (c == '\\') sb_add(s, "\\\\", 2);
    else if (c == '\n') sb_add(s, "\\n", 2);
    else if (c == '\r') sb_add(s, "\\r", 2);
    else if (c == '\t') sb_add(s, "\\t", 2);
    else if (c == '\b') sb_add(s, "\\b", 2);
    else if (c == '\f') sb_add(s, "\\f", 2);
    else if (c < 0x20) sb_printf(s, "\\u%04x", c);
    else sb_add(s, (const char *)&c, 1);
  }
  sb_add(s, "\"", 1);
}

static void canon_real(sb *s, double d) {
  if (d == floor(d) && fabs(d) < 1e15) {
    sb_printf(s, "%lld", (long long)d);
    return;
  }
  char tmp[64];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  sb_puts(s, tmp);
}

static int canon(sb *s, const json_t *v, int depth) {
  if (depth > 512) return ERR_INVAL;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    sb_add(s, "{", 1);
    const char *k;
    json_t *x;
    int first = 1;
    json_object_foreach((json_t *)v, k, x) {
      if (!first) sb_add(s, ",", 1);
      first = 0;
      canon_string(s, k, strlen(k));
      sb_add(s, ":", 1);
      int rc = canon(s, x, depth + 1);
      if (rc) return rc;
    }
    sb_add(s, "}", 1);
    return 0;
  }
  case JSON_ARRAY:
    sb_add(s, "[", 1);
    for (size_t i = 0; i < json_array_size(v); i++) {
      if (i) sb_add(s, ",", 1);
      int rc = canon(s, json_array_get(v, i), depth + 1);
      if (rc) return rc;
    }
    sb_add(s, "]", 1);
    return 0;
  case JSON_STRING: canon_string(s, json_string_value(v), json_string_length(v)); return 0;
  case JSON_INTEGER: sb_printf(s, "%lld", (long long)json_integer_value(v)); return 0;
  case JSON_REAL: canon_real(s, json_real_value(v)); return 0;
  case JSON_TRUE: sb_puts(s, "true"); return 0;
  case JSON_FALSE: sb_puts(s, "false"); return 0;
  case JSON_NULL: sb_puts(s, "null"); return 0;
  }
  return ERR_INVAL;
}

int jsonschema_canonical(const json_t *v, char **out) {
  *out = NULL;
  sb s = {0};
  int rc = canon(&s, v, 0);
  if (!rc && s.oom) rc = ERR_NOMEM;
  if (rc) { free(s.p); return rc; }
  if (!s.p) sb_puts(&s, "");
  *out = s.p;
  return s.oom ? ERR_NOMEM : 0;
}

/* ---- converter ----------------------------------------------------------------------- */

enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_INT = 32, T_NUM = 64, T_ALL = 127 };

typedef struct refmemo {
  char *ptr;  /* the $ref string */
  int rule;   /* rule number */
} refmemo;

typedef struct jctx {
  const json_t *root;
  const char *prefix;
  sb out;
  int n_rules;
  refmemo *refs;
  size_t n_refs, cap_refs;
  json_t *keep;   /* schemas made by merging, freed at the end */
  char *err;
  size_t err_cap;
  int flags;      /* JSONSCHEMA_* */
} jctx;

static int unsup(jctx *c, const char *path, const char *kw, const char *why) {
  return err_set(c->err, c->err_cap, ERR_UNSUPPORTED, "unsupported: '%s' at %s/%s%s%s", kw, path, kw,
                 why ? ": " : "", why ? why : "");
}

static int gen(jctx *c, const json_t *s, const char *path, int depth, char *name, size_t cap);

static void rule_name(jctx *c, int k, char *name, size_t cap) { snprintf(name, cap, "%s-%d", c->prefix, k); }

/* GBNF string literal of raw bytes. */
static void lit(sb *s, const char *t, size_t n) {
  sb_add(s, "\"", 1);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)t[i];
    if (ch == '"' || ch == '\\') sb_printf(s, "\\%c", ch);
    else if (ch < 0x20 || ch == 0x7F) sb_printf(s, "\\x%02X", ch);
    else sb_add(s, (const char *)&ch, 1);
  }
  sb_add(s, "\"", 1);
}

static int is_annotation(const char *k) {
  static const char *const a[] = {"$schema", "$id", "title", "description", "examples", "default", "$comment",
                                  "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
                                  "contentSchema", "$defs", "definitions", "format", NULL};
  for (int i = 0; a[i]; i++)
    if (!strcmp(a[i], k)) return 1;
  return 0;
}

static int types_of_value(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_NULL: return T_NULL;
  case JSON_TRUE:
  case JSON_FALSE: return T_BOOL;
  case JSON_OBJECT: return T_OBJ;
  case JSON_ARRAY: return T_ARR;
  case JSON_STRING: return T_STR;
  case JSON_INTEGER: return T_INT;
  case JSON_REAL: {
    double d = json_real_value(v);
    return d == floor(d) ? T_INT : T_NUM;
  }
  }
  return 0;
}

static int type_bits(const char *t) {
  if (!strcmp(t, "null")) return T_NULL;
  if (!strcmp(t, "boolean")) return T_BOOL;
  if (!strcmp(t, "object")) return T_OBJ;
  if (!strcmp(t, "array")) return T_ARR;
  if (!strcmp(t, "string")) return T_STR;
  if (!strcmp(t, "integer")) return T_INT;
  if (!strcmp(t, "number")) return T_INT | T_NUM;
  return -1;
}

/* The `type` keyword as bits (T_ALL when absent), or <0. */
static int schema_type(jctx *c, const json_t *s, const char *path) {
  const json_t *t = json_object_get(s, "type");
  if (!t) return T_ALL;
  if (json_is_string(t)) {
    int b = type_bits(json_string_value(t));
    return b < 0 ? unsup(c, path, "type", "unknown type") : b;
  }
  if (!json_is_array(t)) return unsup(c, path, "type", "not a string or array");
  int bits = 0;
  for (size_t i = 0; i < json_array_size(t); i++) {
    const json_t *x = json_array_get(t, i);
    int b = json_is_string(x) ? type_bits(json_string_value(x)) : -1;
    if (b < 0) return unsup(c, path, "type", "unknown type");
    bits |= b;
  }
  return bits;
}

/* Resolves a local $ref ("#", "#/a/b" with ~0 ~1 and %XX) in the root document. */
static const json_t *resolve(jctx *c, const char *ref) {
  if (ref[0] != '#') return NULL;
  const json_t *cur = c->root;
  const char *p = ref + 1;
  if (!*p) return cur;
  if (*p != '/') return NULL;
  char seg[512];
  while (*p == '/') {
    p++;
    size_t n = 0;
    while (*p && *p != '/' && n + 1 < sizeof seg) {
      char ch = *p++;
      if (ch == '~' && (*p == '0' || *p == '1')) ch = *p++ == '0' ? '~' : '/';
      else if (ch == '%' && p[0] && p[1]) {
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1) return NULL;
        ch = (char)v;
        p += 2;
      }
      seg[n++] = ch;
    }
    seg[n] = 0;
    if (json_is_object(cur)) cur = json_object_get(cur, seg);
    else if (json_is_array(cur)) {
      char *end;
      unsigned long i = strtoul(seg, &end, 10);
      if (*end || !n) return NULL;
      cur = json_array_get(cur, i);
    } else return NULL;
    if (!cur) return NULL;
  }
  return *p ? NULL : cur;
}

/* Shared rules, written once at the end. */
static void emit_base(jctx *c) {
  const char *P = c->prefix;
  sb *o = &c->out;
  if (c->flags & JSONSCHEMA_COMPACT) sb_printf(o, "%s-ws ::= \" \"?\n", P);
  else sb_printf(o, "%s-ws ::= [ \\t\\n]? [ \\t]{0,20}\n", P);
  sb_printf(o, "%s-char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n", P);
  sb_printf(o, "%s-string ::= \"\\\"\" %s-char* \"\\\"\"\n", P, P);
  sb_printf(o, "%s-int ::= \"-\"? ( \"0\" | [1-9] [0-9]* )\n", P);
  sb_printf(o, "%s-number ::= %s-int ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )?\n", P, P);
  sb_printf(o, "%s-bool ::= \"true\" | \"false\"\n", P);
  sb_printf(o, "%s-null ::= \"null\"\n", P);
  sb_printf(o, "%s-never ::= [^\\x00-\\U0010FFFF]\n", P);
  sb_printf(o, "%s-value ::= %s-object | %s-array | %s-string | %s-number | %s-bool | %s-null\n", P, P, P, P, P, P, P);
  sb_printf(o, "%s-object ::= \"{\" %s-ws ( %s-string %s-ws \":\" %s-ws %s-value %s-ws ( \",\" %s-ws %s-string %s-ws \":\" %s-ws %s-value %s-ws )* )? \"}\"\n",
            P, P, P, P, P, P, P, P, P, P, P, P, P);
  sb_printf(o, "%s-array ::= \"[\" %s-ws ( %s-value %s-ws ( \",\" %s-ws %s-value %s-ws )* )? \"]\"\n", P, P, P, P, P, P, P);
}

static void append_rule(jctx *c, const char *name, const sb *body) {
  sb_printf(&c->out, "%s ::= ", name);
  sb_add(&c->out, body->p ? body->p : "", body->n);
  sb_add(&c->out, "\n", 1);
}

/* Literal grammar of a JSON value (its canonical text). */
static int gen_const(jctx *c, const json_t *v, const char *path, const char *kw, sb *body) {
  const json_t *x;
  size_t i;
  const char *k;
  if (json_is_object(v) && json_object_size(v) > 1) return unsup(c, path, kw, "an object with several members (any key order)");
  if (json_is_object(v)) json_object_foreach((json_t *)v, k, x) {
      sb tmp = {0};
      int rc = gen_const(c, x, path, kw, &tmp);
      free(tmp.p);
      if (rc) return rc;
    }
  if (json_is_array(v)) json_array_foreach(v, i, x) {
      if (json_is_object(x) && json_object_size(x) > 1) return unsup(c, path, kw, "an object with several members (any key order)");
    }
  char *t;
  if (jsonschema_canonical(v, &t)) return ERR_NOMEM;
  lit(body, t, strlen(t));
  free(t);
  return 0;
}

/* Integers: the decimal strings of [lo, hi] of one length (recursive on the first digit). */
static void same_len(sb *o, const char *lo, const char *hi, size_t n) {
  if (!n) { sb_puts(o, "\"\""); return; }
  size_t z = 1;
  while (z < n && lo[z] == '0' && hi[z] == '9') z++;
  if (z == n) { /* the rest is free */
    if (lo[0] == hi[0]) sb_printf(o, "\"%c\"", lo[0]);
    else sb_printf(o, "[%c-%c]", lo[0], hi[0]);
    if (n > 1) sb_printf(o, " [0-9]{%zu}", n - 1);
    return;
  }
  if (lo[0] == hi[0]) {
    sb_printf(o, "\"%c\" ", lo[0]);
    if (n > 1) { sb_puts(o, "( "); same_len(o, lo + 1, hi + 1, n - 1); sb_puts(o, " )"); }
    return;
  }
  char nines[32], zeros[32];
  memset(nines, '9', sizeof nines), memset(zeros, '0', sizeof zeros);
  sb_printf(o, "( \"%c\" ", lo[0]);
  if (n > 1) { sb_puts(o, "( "); same_len(o, lo + 1, nines, n - 1); sb_puts(o, " )"); }
  if (lo[0] + 1 <= hi[0] - 1) {
    sb_printf(o, " | [%c-%c]", lo[0] + 1, hi[0] - 1);
    if (n > 1) sb_printf(o, " [0-9]{%zu}", n - 1);
  }
  sb_printf(o, " | \"%c\" ", hi[0]);
  if (n > 1) { sb_puts(o, "( "); same_len(o, zeros, hi + 1, n - 1); sb_puts(o, " )"); }
  sb_puts(o, " )");
}

/* Magnitudes in [a, b] (b < 0: unbounded), no leading zeros. */
static void mag_range(sb *o, uint64_t a, int64_t b_or_inf) {
  int first = 1;
  char la[32], hb[32];
  int da = snprintf(la, sizeof la, "%llu", (unsigned long long)a);
  int db = b_or_inf < 0 ? 20 : snprintf(hb, sizeof hb, "%llu", (unsigned long long)b_or_inf);
  sb_puts(o, "( ");
  for (int d = da; d <= db && d <= 19; d++) {
    char lo[32], hi[32];
    if (d == da) memcpy(lo, la, (size_t)d + 1);
    else { memset(lo, '0', (size_t)d); lo[0] = '1'; lo[d] = 0; }
    if (b_or_inf >= 0 && d == db) memcpy(hi, hb, (size_t)d + 1);
    else { memset(hi, '9', (size_t)d); hi[d] = 0; }
    if (!first) sb_puts(o, " | ");
    first = 0;
    same_len(o, lo, hi, (size_t)d);
  }
  if (b_or_inf < 0) sb_printf(o, "%s[1-9] [0-9]{%d,}", first ? "" : " | ", da < 19 ? 19 : da);
  sb_puts(o, " )");
}

/* Integer bounds from the numeric keywords; 1 when bounded at all. */
static int int_bounds(jctx *c, const json_t *s, const char *path, int64_t *lo, int64_t *hi, int *has_lo, int *has_hi) {
  *has_lo = *has_hi = 0;
  static const char *const kws[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
  for (int i = 0; i < 4; i++) {
    const json_t *v = json_object_get(s, kws[i]);
    if (!v) continue;
    if (!json_is_number(v)) return unsup(c, path, kws[i], "not a number");
    double d = json_number_value(v);
    if (fabs(d) > 9e17) return unsup(c, path, kws[i], "bound beyond 9e17");
    int64_t b;
    if (i < 2) {
      b = (int64_t)ceil(d);
      if (i == 1 && (double)b == d) b++;
      if (!*has_lo || b > *lo) *lo = b;
      *has_lo = 1;
    } else {
      b = (int64_t)floor(d);
      if (i == 3 && (double)b == d) b--;
      if (!*has_hi || b < *hi) *hi = b;
      *has_hi = 1;
    }
  }
  return *has_lo || *has_hi;
}

static int gen_integer(jctx *c, const json_t *s, const char *path, sb *o) {
  int64_t lo = 0, hi = 0;
  int hl, hh;
  int rc = int_bounds(c, s, path, &lo, &hi, &hl, &hh);
  if (rc < 0) return rc;
  if (!rc) { sb_printf(o, "%s-int", c->prefix); return 0; }
  if (hl && hh && lo > hi) { sb_printf(o, "%s-never", c->prefix); return 0; }
  int alts = 0;
  sb_puts(o, "( ");
  if (!hh || hi >= 0) { /* non-negative part */
    uint64_t a = hl && lo > 0 ? (uint64_t)lo : 0;
    mag_range(o, a, hh ? hi : -1);
    alts++;
  }
  if (!hl || lo < 0) { /* negative part: -[max(1,-hi), -lo] */
    uint64_t a = hh && hi < 0 ? (uint64_t)(-hi) : 1;
    sb_printf(o, "%s\"-\" ", alts ? " | " : "");
    mag_range(o, a, hl ? -lo : -1);
    alts++;
  }
  if ((!hl || lo <= 0) && (!hh || hi >= 0)) sb_puts(o, " | \"-0\"");
  sb_puts(o, " )");
  return 0;
}

/* ---- numbers with bounds: decimal comparison as a grammar ----------------------------
 * A bounded number is written without an exponent: "-"? int ("." digits)?. Its magnitude
 * splits into an integer part (mag_range) and a fraction compared digit by digit with the
 * bound's fraction (trailing zeros stripped). In the fraction helpers a digit string d
 * stands for the value 0.d; ne = 1 excludes the empty string. Each writes one
 * parenthesized alternative list, or the never rule when the set is empty. */

typedef struct frac_out { sb *o; const char *P; int first; } frac_out;

static void fr_alt(frac_out *f, const char *text) {
  sb_puts(f->o, f->first ? "" : " | ");
  f->first = 0;
  sb_puts(f->o, text);
}

static void fr_open(frac_out *f, sb *o, const char *P) { f->o = o, f->P = P, f->first = 1; sb_puts(o, "( "); }
static void fr_close(frac_out *f) {
  if (f->first) sb_printf(f->o, "%s-never", f->P);
  sb_puts(f->o, " )");
}

static void fr_ge(sb *o, const char *P, const char *F, int strict, int ne);
static void fr_le(sb *o, const char *P, const char *F, int strict, int ne);

/* d with 0.d >= 0.F (> when strict). */
static void fr_ge(sb *o, const char *P, const char *F, int strict, int ne) {
  frac_out f;
  fr_open(&f, o, P);
  if (!*F) {
    if (!strict) fr_alt(&f, ne ? "[0-9]+" : "[0-9]*");
    else fr_alt(&f, "[0-9]* [1-9] [0-9]*");
  } else {
    char t[32];
    if (F[0] < '9') snprintf(t, sizeof t, "[%c-9] [0-9]*", F[0] + 1), fr_alt(&f, t);
    snprintf(t, sizeof t, "\"%c\" ", F[0]);
    fr_alt(&f, t);
    fr_ge(o, P, F + 1, strict, 0);
  }
  fr_close(&f);
}

/* d with 0.d <= 0.F (< when strict). */
static void fr_le(sb *o, const char *P, const char *F, int strict, int ne) {
  frac_out f;
  fr_open(&f, o, P);
  if (!*F) {
    if (!strict) fr_alt(&f, ne ? "\"0\"+" : "\"0\"*");
  } else {
    char t[32];
    if (!ne) fr_alt(&f, "\"\""); /* 0 < F (F has no trailing zeros) */
    if (F[0] > '0') snprintf(t, sizeof t, "[0-%c] [0-9]*", F[0] - 1), fr_alt(&f, t);
    snprintf(t, sizeof t, "\"%c\" ", F[0]);
    fr_alt(&f, t);
    fr_le(o, P, F + 1, strict, 0);
  }
  fr_close(&f);
}

/* d with A <= 0.d <= B (each end strict or not); 0.A <= 0.B. */
static void fr_bt(sb *o, const char *P, const char *A, const char *B, int sa, int sb_, int ne) {
  frac_out f;
  fr_open(&f, o, P);
  if (!*A && !*B) { /* both ends 0: only zeros, when neither is strict */
    if (!sa && !sb_) fr_alt(&f, ne ? "\"0\"+" : "\"0\"*");
    fr_close(&f);
    return;
  }
  if (!ne && !*A && !sa && !(!*B && sb_)) fr_alt(&f, "\"\"");
  char a1 = *A ? A[0] : '0', b1 = *B ? B[0] : '0', t[32];
  const char *Ar = *A ? A + 1 : A, *Br = *B ? B + 1 : B;
  if (a1 + 1 <= b1 - 1) snprintf(t, sizeof t, "[%c-%c] [0-9]*", a1 + 1, b1 - 1), fr_alt(&f, t);
  if (a1 == b1) {
    snprintf(t, sizeof t, "\"%c\" ", a1);
    fr_alt(&f, t);
    fr_bt(o, P, Ar, Br, sa, sb_, 0);
  } else {
    snprintf(t, sizeof t, "\"%c\" ", a1);
    fr_alt(&f, t);
    fr_ge(o, P, Ar, sa, 0);
    snprintf(t, sizeof t, "\"%c\" ", b1);
    fr_alt(&f, t);
    fr_le(o, P, Br, sb_, 0);
  }
  fr_close(&f);
}

/* A bound as a decimal: magnitude integer part and fraction digits (no trailing zeros). */
typedef struct dec_bound { int present, strict, neg; uint64_t ip; char frac[24]; double v; } dec_bound;

static int dec_parse(double d, dec_bound *b) {
  char t[64];
  for (int prec = 1; prec <= 17; prec++) { /* the shortest text that reads back */
    snprintf(t, sizeof t, "%.*g", prec, d);
    if (strtod(t, NULL) == d) break;
  }
  if (strchr(t, 'e') || strchr(t, 'E')) { /* write it out in full when it fits */
    snprintf(t, sizeof t, "%.17f", d);
    if (strtod(t, NULL) != d || strlen(t) > 40) return -1;
  }
  const char *p = t;
  b->neg = *p == '-';
  if (b->neg) p++;
  char *end;
  b->ip = strtoull(p, &end, 10);
  size_t n = 0;
  if (*end == '.') {
    const char *q = end + 1;
    while (q[n] >= '0' && q[n] <= '9' && n < sizeof b->frac - 1) n++;
    if (q[n] >= '0' && q[n] <= '9') return -1;
    memcpy(b->frac, q, n);
  }
  while (n && b->frac[n - 1] == '0') n--;
  b->frac[n] = 0;
  if (!b->ip && !n) b->neg = 0; /* -0 is 0 */
  b->v = d;
  return 0;
}

/* Fraction text ("" or "." digits) allowed with the integer part at a bound. */
static void frac_text(sb *o, const char *P, int kind, const dec_bound *lo, const dec_bound *hi) {
  /* kind 0: >= lo; 1: <= hi; 2: both; 3: any */
  if (kind == 3) { sb_puts(o, "( \".\" [0-9]+ )?"); return; }
  int zero_ok = kind == 0 ? (!lo->frac[0] && !lo->strict)
                : kind == 1 ? !(!hi->frac[0] && hi->strict)
                            : (!lo->frac[0] && !lo->strict) && !(!hi->frac[0] && hi->strict);
  sb_printf(o, "( %s\".\" ", zero_ok ? "\"\" | " : "");
  if (kind == 0) fr_ge(o, P, lo->frac, lo->strict, 1);
  else if (kind == 1) fr_le(o, P, hi->frac, hi->strict, 1);
  else fr_bt(o, P, lo->frac, hi->frac, lo->strict, hi->strict, 1);
  sb_puts(o, " )");
}

/* Magnitudes m with lo <= m <= hi (hi->present 0: unbounded; lo is >= 0). */
static void mag_dec(sb *o, const char *P, const dec_bound *lo, const dec_bound *hi, int *first) {
  if (hi->present && (hi->v < lo->v || (hi->v == lo->v && (hi->strict || lo->strict)))) return;
  sb_puts(o, *first ? "( " : " | ( ");
  *first = 0;
  if (hi->present && hi->ip == lo->ip) {
    sb_printf(o, "\"%llu\" ", (unsigned long long)lo->ip);
    frac_text(o, P, 2, lo, hi);
  } else {
    sb_printf(o, "\"%llu\" ", (unsigned long long)lo->ip);
    frac_text(o, P, 0, lo, hi);
    if (!hi->present || hi->ip > lo->ip + 1) {
      sb_puts(o, " | ");
      mag_range(o, lo->ip + 1, hi->present ? (int64_t)hi->ip - 1 : -1);
      sb_puts(o, " ");
      frac_text(o, P, 3, lo, hi);
    }
    if (hi->present) {
      sb_printf(o, " | \"%llu\" ", (unsigned long long)hi->ip);
      frac_text(o, P, 1, lo, hi);
    }
  }
  sb_puts(o, " )");
}

static int gen_number_bounded(jctx *c, const json_t *s, const char *path, sb *o) {
  dec_bound lo = {0}, hi = {0};
  static const char *const kws[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
  for (int i = 0; i < 4; i++) {
    const json_t *v = json_object_get(s, kws[i]);
    if (!v) continue;
    if (!json_is_number(v)) return unsup(c, path, kws[i], "not a number");
    double d = json_number_value(v);
    if (fabs(d) > 9e17) return unsup(c, path, kws[i], "bound beyond 9e17");
    dec_bound b = {.present = 1, .strict = i == 1 || i == 3};
    if (dec_parse(d, &b)) return unsup(c, path, kws[i], "a bound with more than 23 decimals");
    dec_bound *t = i < 2 ? &lo : &hi;
    int tighter = !t->present || (i < 2 ? d > t->v : d < t->v) || (d == t->v && b.strict);
    if (tighter) *t = b;
  }
  int first = 1;
  dec_bound zero = {.present = 1, .v = 0};
  /* x >= 0: magnitudes from max(lo, 0) */
  if (!hi.present || hi.v > 0 || (hi.v == 0 && !hi.strict)) {
    const dec_bound *a = lo.present && lo.v >= 0 ? &lo : &zero;
    dec_bound h = hi;
    mag_dec(o, c->prefix, a, &h, &first);
  }
  /* x < 0: magnitudes in (max(-hi, 0), -lo] */
  if (!lo.present || lo.v < 0) {
    dec_bound a, h = {0};
    if (hi.present && hi.v < 0) a = hi, a.neg = 0, a.v = -hi.v;
    else a = zero, a.strict = 1;
    if (lo.present) h = lo, h.neg = 0, h.v = -lo.v;
    int f2 = 1;
    sb neg = {0};
    mag_dec(&neg, c->prefix, &a, &h, &f2);
    if (!f2) {
      sb_puts(o, first ? "\"-\" " : " | \"-\" ");
      first = 0;
      sb_puts(o, neg.p);
    }
    free(neg.p);
  }
  if (first) sb_printf(o, "%s-never", c->prefix);
  return 0;
}

/* One unit of string content for code points in [lo, hi] (canonical escapes). */
static void unit_range(jctx *c, sb *o, uint32_t lo, uint32_t hi, int *first) {
  for (uint32_t cp = lo; cp <= hi && cp < 0x20; cp++) {
    sb_puts(o, *first ? "" : " | ");
    *first = 0;
    const char *e = cp == '\n' ? "\\n" : cp == '\r' ? "\\r" : cp == '\t' ? "\\t" : cp == '\b' ? "\\b" : cp == '\f' ? "\\f" : NULL;
    char tmp[8];
    if (!e) snprintf(tmp, sizeof tmp, "\\u%04x", cp), e = tmp;
    lit(o, e, strlen(e));
  }
  if (lo <= '"' && hi >= '"') { sb_puts(o, *first ? "" : " | "); *first = 0; lit(o, "\\\"", 2); }
  if (lo <= '\\' && hi >= '\\') { sb_puts(o, *first ? "" : " | "); *first = 0; lit(o, "\\\\", 2); }
  /* the rest as a class */
  uint32_t parts[3][2];
  int np = 0;
  uint32_t a = lo < 0x20 ? 0x20 : lo;
  uint32_t cuts[2] = {'"', '\\'};
  for (int k = 0; k < 2 && a <= hi; k++) {
    if (cuts[k] < a) continue;
    if (cuts[k] > hi) break;
    if (cuts[k] > a) parts[np][0] = a, parts[np][1] = cuts[k] - 1, np++;
    a = cuts[k] + 1;
  }
  if (a <= hi) parts[np][0] = a, parts[np][1] = hi, np++;
  for (int k = 0; k < np; k++) {
    sb_puts(o, *first ? "" : " | ");
    *first = 0;
    sb_printf(o, "[\\U%08X-\\U%08X]", parts[k][0], parts[k][1]);
  }
  (void)c;
}

/* ---- regex (ECMA subset) → string content ------------------------------------------ */

typedef struct rx {
  jctx *c;
  const char *s;
  size_t pos, len;
  const char *path;
  int depth;
} rx;

static int rx_fail(rx *r, const char *why) { return unsup(r->c, r->path, "pattern", why); }

/* Emits a set of ranges (sorted, merged pairs; up to 64) as alternatives of units. */
static void rx_set(rx *r, sb *o, const uint32_t *rg, int n) {
  int first = 1;
  sb_puts(o, "( ");
  for (int i = 0; i < n; i++) unit_range(r->c, o, rg[2 * i], rg[2 * i + 1], &first);
  if (first) sb_printf(o, "%s-never", r->c->prefix);
  sb_puts(o, " )");
}

static int rx_norm(uint32_t *rg, int n, int negate) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && rg[2 * (j - 1)] > rg[2 * j]; j--) {
      uint32_t a = rg[2 * j], b = rg[2 * j + 1];
      rg[2 * j] = rg[2 * (j - 1)], rg[2 * j + 1] = rg[2 * (j - 1) + 1];
      rg[2 * (j - 1)] = a, rg[2 * (j - 1) + 1] = b;
    }
  int m = 0;
  for (int i = 0; i < n; i++) {
    if (m && rg[2 * i] <= rg[2 * (m - 1) + 1] + 1) {
      if (rg[2 * i + 1] > rg[2 * (m - 1) + 1]) rg[2 * (m - 1) + 1] = rg[2 * i + 1];
    } else rg[2 * m] = rg[2 * i], rg[2 * m + 1] = rg[2 * i + 1], m++;
  }
  if (!negate) return m;
  uint32_t out[2 * 70];
  int k = 0;
  uint32_t next = 0;
  for (int i = 0; i < m; i++) {
    if (rg[2 * i] > next) out[2 * k] = next, out[2 * k + 1] = rg[2 * i] - 1, k++;
    next = rg[2 * i + 1] + 1;
  }
  if (next <= 0x10FFFF) out[2 * k] = next, out[2 * k + 1] = 0x10FFFF, k++;
  memcpy(rg, out, (size_t)k * 2 * sizeof *rg);
  return k;
}

static const uint32_t RX_SPACE[] = {9, 13, 32, 32, 0xA0, 0xA0, 0x1680, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029,
                                    0x202F, 0x202F, 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF};

/* A class escape (\d \w \s and negations) into rg; returns pairs added or -1. */
static int rx_class_escape(char e, uint32_t *rg, int *neg) {
  *neg = e == 'D' || e == 'W' || e == 'S';
  switch (e) {
  case 'd': case 'D': rg[0] = '0', rg[1] = '9'; return 1;
  case 'w': case 'W':
    rg[0] = '0', rg[1] = '9', rg[2] = 'A', rg[3] = 'Z', rg[4] = '_', rg[5] = '_', rg[6] = 'a', rg[7] = 'z';
    return 4;
  case 's': case 'S': memcpy(rg, RX_SPACE, sizeof RX_SPACE); return 10;
  }
  return -1;
}

/* One character (literal or escape) in a regex; 0 ok, -1 unsupported. */
static int rx_char(rx *r, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)r->s;
  if (r->pos >= r->len) return -1;
  if (s[r->pos] != '\\') {
    uint32_t c = s[r->pos], need = c < 0x80 ? 0 : c < 0xE0 ? 1 : c < 0xF0 ? 2 : 3;
    if (need) c &= 0x3F >> need;
    r->pos++;
    for (uint32_t i = 0; i < need && r->pos < r->len; i++) c = (c << 6) | (s[r->pos++] & 0x3F);
    *cp = c;
    return 0;
  }
  r->pos++;
  if (r->pos >= r->len) return -1;
  char e = (char)s[r->pos++];
  switch (e) {
  case 'n': *cp = '\n'; return 0;
  case 'r': *cp = '\r'; return 0;
  case 't': *cp = '\t'; return 0;
  case 'f': *cp = '\f'; return 0;
  case 'v': *cp = '\v'; return 0;
  case '0': *cp = 0; return 0;
  case 'x': case 'u': {
    int nd = e == 'x' ? 2 : 4;
    uint32_t v = 0;
    for (int i = 0; i < nd; i++) {
      if (r->pos >= r->len) return -1;
      char h = (char)s[r->pos++];
      int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) return -1;
      v = v * 16 + (uint32_t)d;
    }
    if (v >= 0xD800 && v <= 0xDFFF) return -1;
    *cp = v;
    return 0;
  }
  }
  if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) return -1;
  *cp = (uint32_t)(unsigned char)e;
  return 0;
}

static int rx_alt(rx *r, sb *o);

static int rx_atom(rx *r, sb *o) {
  char ch = r->s[r->pos];
  uint32_t rg[2 * 70];
  int n = 0, neg = 0;
  if (ch == '(') {
    r->pos++;
    if (r->pos + 1 < r->len && r->s[r->pos] == '?') {
      if (r->s[r->pos + 1] != ':') return rx_fail(r, "lookaround or named group");
      r->pos += 2;
    }
    if (++r->depth > 64) return rx_fail(r, "nesting");
    sb_puts(o, "( ");
    int rc = rx_alt(r, o);
    if (rc) return rc;
    r->depth--;
    if (r->pos >= r->len || r->s[r->pos] != ')') return rx_fail(r, "unbalanced parentheses");
    r->pos++;
    sb_puts(o, " )");
    return 0;
  }
  if (ch == '.') {
    r->pos++;
    rg[0] = 0, rg[1] = 0x10FFFF, rg[2] = '\n', rg[3] = '\n', rg[4] = '\r', rg[5] = '\r', rg[6] = 0x2028, rg[7] = 0x2029;
    n = rx_norm(rg + 2, 3, 1);
    rx_set(r, o, rg + 2, n);
    return 0;
  }
  if (ch == '[') {
    r->pos++;
    if (r->pos < r->len && r->s[r->pos] == '^') neg = 1, r->pos++;
    while (r->pos < r->len && r->s[r->pos] != ']') {
      if (n > 60) return rx_fail(r, "character class too large");
      if (r->s[r->pos] == '\\' && r->pos + 1 < r->len && strchr("dDwWsS", r->s[r->pos + 1]) && r->s[r->pos + 1]) {
        int sub_neg;
        uint32_t sub[2 * 70];
        int k = rx_class_escape(r->s[r->pos + 1], sub, &sub_neg);
        r->pos += 2;
        if (sub_neg) k = rx_norm(sub, k, 1);
        if (n + k > 64) return rx_fail(r, "character class too large");
        memcpy(rg + 2 * n, sub, (size_t)k * 2 * sizeof *rg);
        n += k;
        continue;
      }
      if (r->s[r->pos] == '\\' && r->pos + 1 < r->len && r->s[r->pos + 1] == 'b') return rx_fail(r, "\\b in a class");
      uint32_t lo, hi;
      if (rx_char(r, &lo)) return rx_fail(r, "escape");
      hi = lo;
      if (r->pos + 1 < r->len && r->s[r->pos] == '-' && r->s[r->pos + 1] != ']') {
        r->pos++;
        if (rx_char(r, &hi) || hi < lo) return rx_fail(r, "class range");
      }
      rg[2 * n] = lo, rg[2 * n + 1] = hi, n++;
    }
    if (r->pos >= r->len) return rx_fail(r, "unterminated class");
    r->pos++;
    n = rx_norm(rg, n, neg);
    rx_set(r, o, rg, n);
    return 0;
  }
  if (ch == '\\' && r->pos + 1 < r->len && strchr("dDwWsS", r->s[r->pos + 1]) && r->s[r->pos + 1]) {
    n = rx_class_escape(r->s[r->pos + 1], rg, &neg);
    r->pos += 2;
    n = rx_norm(rg, n, neg);
    rx_set(r, o, rg, n);
    return 0;
  }
  if (ch == '\\' && r->pos + 1 < r->len && strchr("bBpPkc123456789", r->s[r->pos + 1]))
    return rx_fail(r, "word boundaries, backreferences and property escapes");
  if (ch == '^' || ch == '$') return rx_fail(r, "anchors inside the pattern");
  if (ch == '*' || ch == '+' || ch == '?' || ch == '{' || ch == ')' || ch == '|') return rx_fail(r, "syntax");
  uint32_t cp;
  if (rx_char(r, &cp)) return rx_fail(r, "escape");
  rg[0] = rg[1] = cp;
  rx_set(r, o, rg, 1);
  return 0;
}

static int rx_seq(rx *r, sb *o) {
  int any = 0;
  while (r->pos < r->len && r->s[r->pos] != '|' && r->s[r->pos] != ')') {
    if (r->s[r->pos] == '$' && r->depth == 0 && (r->pos + 1 == r->len || r->s[r->pos + 1] == '|')) break;
    sb_puts(o, " ( ");
    int rc = rx_atom(r, o);
    if (rc) return rc;
    sb_puts(o, " )");
    any = 1;
    if (r->pos < r->len) {
      char q = r->s[r->pos];
      if (q == '*' || q == '+' || q == '?') {
        sb_printf(o, "%c", q);
        r->pos++;
      } else if (q == '{') {
        unsigned a, b;
        int k = 0;
        char tail;
        if (sscanf(r->s + r->pos, "{%u,%u%c%n", &a, &b, &tail, &k) == 3 && tail == '}' && k) sb_printf(o, "{%u,%u}", a, b);
        else if (sscanf(r->s + r->pos, "{%u,%c%n", &a, &tail, &k) == 2 && tail == '}' && k) sb_printf(o, "{%u,}", a);
        else if (sscanf(r->s + r->pos, "{%u%c%n", &a, &tail, &k) == 2 && tail == '}' && k) sb_printf(o, "{%u}", a);
        else return rx_fail(r, "quantifier");
        if (a > GRAMMAR_MAX_REPEAT || (k && b > GRAMMAR_MAX_REPEAT && strchr(r->s + r->pos, ',') < r->s + r->pos + k)) return rx_fail(r, "large count");
        r->pos += (size_t)k;
      }
      if (r->pos < r->len && r->s[r->pos] == '?') r->pos++; /* lazy: same language */
      if (r->pos < r->len && strchr("*+?{", r->s[r->pos])) return rx_fail(r, "stacked quantifiers");
    }
  }
  if (!any) sb_puts(o, " \"\"");
  return 0;
}

static int rx_alt(rx *r, sb *o) {
  for (;;) {
    int rc = rx_seq(r, o);
    if (rc) return rc;
    if (r->pos < r->len && r->s[r->pos] == '|') { r->pos++; sb_puts(o, " |"); continue; }
    return 0;
  }
}

/* A top-level branch with its anchors. */
static int gen_pattern(jctx *c, const char *pat, size_t len, const char *path, sb *o) {
  rx r = {c, pat, 0, len, path, 0};
  sb_puts(o, "( ");
  for (int first = 1;; first = 0) {
    if (!first) sb_puts(o, " | ");
    int start = r.pos < r.len && pat[r.pos] == '^';
    if (start) r.pos++;
    sb_puts(o, "( ");
    if (!start) sb_printf(o, "%s-char* ", c->prefix);
    int rc = rx_seq(&r, o);
    if (rc) return rc;
    int end = r.pos < r.len && pat[r.pos] == '$';
    if (end) r.pos++;
    if (!end) sb_printf(o, " %s-char*", c->prefix);
    sb_puts(o, " )");
    if (r.pos >= r.len) break;
    if (pat[r.pos] != '|') return rx_fail(&r, "syntax");
    r.pos++;
  }
  sb_puts(o, " )");
  return 0;
}

/* A count keyword (integer, or a real with no fraction); -1 when absent, -2 when bad. */
static long long count_kw(const json_t *s, const char *k) {
  const json_t *v = json_object_get(s, k);
  if (!v) return -1;
  if (json_is_integer(v)) return json_integer_value(v) < 0 ? -2 : json_integer_value(v);
  if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && json_real_value(v) >= 0 && json_real_value(v) < 1e9)
    return (long long)json_real_value(v);
  return -2;
}

static int gen_string(jctx *c, const json_t *s, const char *path, sb *o) {
  const json_t *mn = json_object_get(s, "minLength"), *mx = json_object_get(s, "maxLength"),
               *pat = json_object_get(s, "pattern");
  long long a = count_kw(s, "minLength"), b = count_kw(s, "maxLength");
  if (a == -2 || b == -2) return unsup(c, path, a == -2 ? "minLength" : "maxLength", "not a non-negative integer");
  if (a < 0) a = 0;
  if (a > GRAMMAR_MAX_REPEAT || b > GRAMMAR_MAX_REPEAT) return unsup(c, path, a > GRAMMAR_MAX_REPEAT ? "minLength" : "maxLength", "over 10000");
  if (pat) {
    if (!json_is_string(pat)) return unsup(c, path, "pattern", "not a string");
    if (mn || mx) return unsup(c, path, "pattern", "together with minLength/maxLength");
    sb_puts(o, "\"\\\"\" ");
    int rc = gen_pattern(c, json_string_value(pat), json_string_length(pat), path, o);
    if (rc) return rc;
    sb_puts(o, " \"\\\"\"");
    return 0;
  }
  if (!mn && !mx) { sb_printf(o, "%s-string", c->prefix); return 0; }
  if (b >= 0 && b < a) { sb_printf(o, "%s-never", c->prefix); return 0; }
  if (a < 0) a = 0;
  if (b >= 0) sb_printf(o, "\"\\\"\" %s-char{%lld,%lld} \"\\\"\"", c->prefix, a, b);
  else sb_printf(o, "\"\\\"\" %s-char{%lld,} \"\\\"\"", c->prefix, a);
  return 0;
}

static int gen_array(jctx *c, const json_t *s, const char *path, int depth, sb *o) {
  const char *P = c->prefix;
  if (json_is_true(json_object_get(s, "uniqueItems"))) {
    const json_t *mx = json_object_get(s, "maxItems");
    if (!mx || count_kw(s, "maxItems") > 1 || count_kw(s, "maxItems") < 0) return unsup(c, path, "uniqueItems", NULL);
  }
  static const char *const no[] = {"contains", "minContains", "maxContains", "unevaluatedItems", NULL};
  for (int i = 0; no[i]; i++)
    if (json_object_get(s, no[i])) return unsup(c, path, no[i], NULL);
  const json_t *prefix = json_object_get(s, "prefixItems"), *items = json_object_get(s, "items");
  const json_t *mn = json_object_get(s, "minItems"), *mx = json_object_get(s, "maxItems");
  long long lo = count_kw(s, "minItems"), hi = count_kw(s, "maxItems");
  if (lo == -2 || hi == -2) return unsup(c, path, lo == -2 ? "minItems" : "maxItems", "not a non-negative integer");
  (void)mn, (void)mx;
  if (lo > GRAMMAR_MAX_REPEAT || hi > GRAMMAR_MAX_REPEAT) return unsup(c, path, "maxItems", "over 10000");
  if (lo < 0) lo = 0;
  if (prefix && !json_is_array(prefix)) return unsup(c, path, "prefixItems", "not an array");
  size_t k = prefix ? json_array_size(prefix) : 0;
  if (k > 256) return unsup(c, path, "prefixItems", "over 256 items");
  char rest[128];
  int rest_never = json_is_false(items);
  char ipath[1024];
  if (items && !rest_never) {
    snprintf(ipath, sizeof ipath, "%s/items", path);
    int rc = gen(c, items, ipath, depth + 1, rest, sizeof rest);
    if (rc) return rc;
  } else snprintf(rest, sizeof rest, "%s-value", P);
  char (*pn)[128] = k ? calloc(k, sizeof *pn) : NULL;
  if (k && !pn) return ERR_NOMEM;
  for (size_t i = 0; i < k; i++) {
    snprintf(ipath, sizeof ipath, "%s/prefixItems/%zu", path, i);
    int rc = gen(c, json_array_get(prefix, i), ipath, depth + 1, pn[i], sizeof pn[i]);
    if (rc) { free(pn); return rc; }
  }
  /* item i (0-based) is pn[i] for i < k, else rest. Chain rules A_i = after i items. */
  if (hi >= 0 && lo > hi) { free(pn); sb_printf(o, "%s-never", P); return 0; }
  int base = c->n_rules;
  size_t chain = k + 1; /* A_1 .. A_k (indexes 1..k), A_k handles the rest */
  c->n_rules += (int)chain + 1;
  for (size_t i = 1; i <= k; i++) {
    sb b = {0};
    int first = 1;
    if (hi < 0 || (long long)i < hi) {
      if (i < k) sb_printf(&b, "\",\" %s-ws %s %s-ws %s-%d", P, pn[i], P, P, base + (int)i + 1);
      else {
        /* rest items: count in [max(lo-k,0), hi-k] */
        long long a = lo - (long long)k > 0 ? lo - (long long)k : 0, z = hi < 0 ? -1 : hi - (long long)k;
        if (rest_never) z = 0;
        if (z != 0 && !(z > 0 && a > z)) {
          if (z < 0) sb_printf(&b, "( \",\" %s-ws %s %s-ws ){%lld,}", P, rest, P, a);
          else sb_printf(&b, "( \",\" %s-ws %s %s-ws ){%lld,%lld}", P, rest, P, a, z);
          first = 0;
          if (a > 0) { /* no ε alternative below: a > 0 makes it required */ }
        }
        if (first && (long long)i >= lo) sb_puts(&b, "\"\"");
        else if (first) sb_printf(&b, "%s-never", P);
        first = 0;
        char nm[128];
        rule_name(c, base + (int)i, nm, sizeof nm);
        append_rule(c, nm, &b);
        free(b.p);
        continue;
      }
      first = 0;
    }
    if ((long long)i >= lo) sb_printf(&b, "%s\"\"", first ? "" : " | ");
    else if (first) sb_printf(&b, "%s-never", P);
    char nm[128];
    rule_name(c, base + (int)i, nm, sizeof nm);
    append_rule(c, nm, &b);
    free(b.p);
  }
  sb_puts(o, "\"[\" ");
  sb_printf(o, "%s-ws ", P);
  if (k) {
    if (hi == 0) { if (lo > 0) sb_printf(o, "%s-never ", P); }
    else {
      sb_printf(o, "( %s %s-ws %s-%d )", pn[0], P, P, base + 1);
      if (lo == 0) sb_puts(o, "?");
    }
  } else if (!rest_never && hi != 0) {
    long long a = lo > 1 ? lo - 1 : 0;
    if (hi < 0) sb_printf(o, "( %s %s-ws ( \",\" %s-ws %s %s-ws ){%lld,} )", rest, P, P, rest, P, a);
    else sb_printf(o, "( %s %s-ws ( \",\" %s-ws %s %s-ws ){%lld,%lld} )", rest, P, P, rest, P, a, hi - 1);
    if (lo == 0) sb_puts(o, "?");
  } else if (lo > 0) sb_printf(o, "%s-never ", P);
  sb_puts(o, " \"]\"");
  free(pn);
  return 0;
}

/* The content of a string not equal to any key in keys (raw bytes, all plain text). */
static int gen_other_key(jctx *c, const char **keys, size_t n, size_t at, char *name, size_t cap) {
  /* Units here are bytes of plain ASCII keys or whole UTF-8 characters; for simplicity the
   * trie is over bytes and non-ASCII keys are refused by the caller. */
  int me = c->n_rules++;
  rule_name(c, me, name, cap);
  sb b = {0};
  int is_end = 0;
  char seen[128] = {0};
  for (size_t i = 0; i < n; i++) {
    if (strlen(keys[i]) == at) is_end = 1;
    else seen[(unsigned char)keys[i][at]] = 1;
  }
  const char *P = c->prefix;
  int first = 1;
  if (!is_end) sb_puts(&b, "\"\""), first = 0;
  /* any unit other than the next key bytes, then anything */
  sb_printf(&b, "%s( [^\"\\\\\\x00-\\x1F", first ? "" : " | ");
  for (int ch = 0x20; ch < 128; ch++)
    if (seen[ch]) {
      if (ch == ']' || ch == '^' || ch == '-' || ch == '\\') sb_printf(&b, "\\%c", ch);
      else sb_printf(&b, "%c", ch);
    }
  sb_printf(&b, "] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) ) %s-char*", P);
  for (int ch = 0x20; ch < 128; ch++) {
    if (!seen[ch]) continue;
    const char **sub = malloc(n * sizeof *sub);
    if (!sub) { free(b.p); return ERR_NOMEM; }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
      if (strlen(keys[i]) > at && (unsigned char)keys[i][at] == ch) sub[m++] = keys[i];
    char child[128];
    int rc = gen_other_key(c, sub, m, at + 1, child, sizeof child);
    free(sub);
    if (rc) { free(b.p); return rc; }
    char cs[2] = {(char)ch, 0};
    sb_puts(&b, " | ");
    lit(&b, cs, 1);
    sb_printf(&b, " %s", child);
  }
  append_rule(c, name, &b);
  free(b.p);
  return 0;
}

static int gen_object(jctx *c, const json_t *s, const char *path, int depth, sb *o) {
  const char *P = c->prefix;
  static const char *const no[] = {"patternProperties", "propertyNames", "unevaluatedProperties", "dependentSchemas",
                                   "dependentRequired", "minProperties", "maxProperties", NULL};
  for (int i = 0; no[i]; i++)
    if (json_object_get(s, no[i])) return unsup(c, path, no[i], NULL);
  const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required"),
               *add = json_object_get(s, "additionalProperties");
  if (!json_object_size(props) && !json_array_size(req) && (!add || json_is_true(add))) {
    sb_printf(o, "%s-object", P); /* any object */
    return 0;
  }
  if (props && !json_is_object(props)) return unsup(c, path, "properties", "not an object");
  if (req && !json_is_array(req)) return unsup(c, path, "required", "not an array");
  /* known keys: properties in order, then required names not among them */
  size_t np = json_object_size(props), nr = json_array_size(req), nk = 0;
  const char **keys = calloc(np + nr + 1, sizeof *keys);
  char (*kv)[128] = calloc(np + nr + 1, sizeof *kv);
  uint8_t *isreq = calloc(np + nr + 1, 1), *forbid = calloc(np + nr + 1, 1);
  int rc = 0;
  if (!keys || !kv || !isreq || !forbid) { rc = ERR_NOMEM; goto done; }
  const char *k;
  json_t *x;
  if (props) json_object_foreach((json_t *)props, k, x) keys[nk++] = k;
  for (size_t i = 0; i < nr; i++) {
    const char *r = json_string_value(json_array_get(req, i));
    if (!r) { rc = unsup(c, path, "required", "not strings"); goto done; }
    size_t j = 0;
    while (j < nk && strcmp(keys[j], r)) j++;
    if (j == nk) keys[nk++] = r;
    isreq[j] = 1;
  }
  int add_ok = !json_is_false(add);
  char addv[128];
  char sub[1024];
  if (add && add_ok && !json_is_true(add)) {
    snprintf(sub, sizeof sub, "%s/additionalProperties", path);
    if ((rc = gen(c, add, sub, depth + 1, addv, sizeof addv))) goto done;
  } else snprintf(addv, sizeof addv, "%s-value", P);
  for (size_t i = 0; i < nk; i++) {
    for (const char *q = keys[i]; *q; q++)
      if ((unsigned char)*q < 0x20 || *q == '"' || *q == '\\' || ((unsigned char)*q >= 0x80 && add_ok)) {
        rc = unsup(c, path, "properties", "a key with escapes (or non-ASCII with additional properties)");
        goto done;
      }
    const json_t *ps = props ? json_object_get(props, keys[i]) : NULL;
    char vname[128];
    if (!ps) {
      if (!add_ok) { forbid[i] = 1; continue; }
      snprintf(vname, sizeof vname, "%s", addv);
    } else if (json_is_false(ps)) {
      forbid[i] = 1;
      continue;
    } else {
      snprintf(sub, sizeof sub, "%s/properties/%s", path, keys[i]);
      if ((rc = gen(c, ps, sub, depth + 1, vname, sizeof vname))) goto done;
    }
    int r = c->n_rules++;
    rule_name(c, r, kv[i], sizeof kv[i]);
    sb b = {0};
    canon_string(&b, keys[i], strlen(keys[i]));
    char *keylit = b.p;
    b = (sb){0};
    lit(&b, keylit, strlen(keylit));
    free(keylit);
    sb_printf(&b, " %s-ws \":\" %s-ws %s", P, P, vname);
    append_rule(c, kv[i], &b);
    free(b.p);
  }
  for (size_t i = 0; i < nk; i++)
    if (forbid[i] && isreq[i]) { sb_printf(o, "%s-never", P); goto done; }
  char addkv[160] = "";
  if (add_ok) {
    char other[128];
    if ((rc = gen_other_key(c, keys, nk, 0, other, sizeof other))) goto done;
    int r = c->n_rules++;
    rule_name(c, r, addkv, sizeof addkv);
    sb b = {0};
    sb_printf(&b, "\"\\\"\" %s \"\\\"\" %s-ws \":\" %s-ws %s", other, P, P, addv);
    append_rule(c, addkv, &b);
    free(b.p);
  }
  size_t live = 0;
  for (size_t i = 0; i < nk; i++) live += !forbid[i];
  if (live <= JSONSCHEMA_MAX_ANY_ORDER && nk <= 12) {
    /* R_mask: after the members in mask (at least one member written) */
    uint32_t full = 1u << nk, need = 0;
    for (size_t i = 0; i < nk; i++)
      if (isreq[i]) need |= 1u << i;
    int base = c->n_rules;
    c->n_rules += (int)full + 1;
    for (uint32_t mask = 0; mask <= full; mask++) { /* mask == full: the first member (F) */
      int is_first = mask == full;
      uint32_t used = is_first ? 0 : mask;
      int skip = 0;
      for (size_t i = 0; i < nk; i++)
        if (forbid[i] && (used >> i & 1)) skip = 1;
      if (skip) continue;
      sb b = {0};
      int first = 1;
      char sep[96];
      if (is_first) sep[0] = 0;
      else snprintf(sep, sizeof sep, "\",\" %s-ws ", P);
      for (size_t i = 0; i < nk; i++) {
        if (forbid[i] || (used >> i & 1)) continue;
        sb_printf(&b, "%s%s%s %s-ws %s-%d", first ? "" : " | ", sep, kv[i], P, P, base + (int)(used | 1u << i));
        first = 0;
      }
      if (add_ok) {
        sb_printf(&b, "%s%s%s %s-ws %s-%d", first ? "" : " | ", sep, addkv, P, P, base + (int)used);
        first = 0;
      }
      if ((used & need) == need) sb_printf(&b, "%s\"\"", first ? "" : " | "), first = 0;
      if (first) sb_printf(&b, "%s-never", P);
      char nm[128];
      rule_name(c, base + (int)mask, nm, sizeof nm);
      append_rule(c, nm, &b);
      free(b.p);
    }
    sb_printf(o, "\"{\" %s-ws %s-%d \"}\"", P, P, base + (int)full);
  } else {
    /* fixed order: F_i (nothing written yet, at property i), R_i (something written) */
    int base = c->n_rules;
    c->n_rules += 2 * ((int)nk + 1);
    for (size_t i = 0; i <= nk; i++)
      for (int f = 0; f < 2; f++) {
        sb b = {0};
        int me = base + 2 * (int)i + f;
        if (i == nk) {
          if (add_ok) {
            if (f) sb_printf(&b, "%s %s-ws %s-%d | \"\"", addkv, P, P, base + 2 * (int)nk);
            else sb_printf(&b, "\",\" %s-ws %s %s-ws %s-%d | \"\"", P, addkv, P, P, base + 2 * (int)nk);
          } else sb_puts(&b, "\"\"");
        } else if (forbid[i]) {
          sb_printf(&b, "%s-%d", P, base + 2 * (int)(i + 1) + f);
        } else {
          if (f) sb_printf(&b, "%s %s-ws %s-%d", kv[i], P, P, base + 2 * (int)(i + 1));
          else sb_printf(&b, "\",\" %s-ws %s %s-ws %s-%d", P, kv[i], P, P, base + 2 * (int)(i + 1));
          if (!isreq[i]) sb_printf(&b, " | %s-%d", P, base + 2 * (int)(i + 1) + f);
        }
        char nm[128];
        rule_name(c, me, nm, sizeof nm);
        append_rule(c, nm, &b);
        free(b.p);
      }
    sb_printf(o, "\"{\" %s-ws %s-%d \"}\"", P, P, base + 1);
  }
done:
  free(keys);
  free(kv);
  free(isreq);
  free(forbid);
  return rc;
}

/* Merges b's keywords into a (owned, new object) for allOf. */
static int merge_into(jctx *c, json_t *a, const json_t *b, const char *path, int depth) {
  const char *k;
  json_t *v;
  if (json_is_true(b)) return 0;
  if (json_is_false(b)) return json_object_set_new(a, "$never", json_true()) ? ERR_NOMEM : 0;
  if (!json_is_object(b)) return unsup(c, path, "allOf", "a non-schema branch");
  if (json_object_get(b, "$ref")) {
    const char *ref = json_string_value(json_object_get(b, "$ref"));
    const json_t *t = ref ? resolve(c, ref) : NULL;
    if (!t) return unsup(c, path, "$ref", "not a local reference");
    if (depth > 16) return unsup(c, path, "$ref", "recursive inside allOf");
    json_t *rest = json_deep_copy(b);
    if (!rest) return ERR_NOMEM;
    json_object_del(rest, "$ref");
    int rc = merge_into(c, a, t, path, depth + 1);
    if (!rc) rc = merge_into(c, a, rest, path, depth + 1);
    json_decref(rest);
    return rc;
  }
  if (json_object_get(b, "allOf")) {
    json_t *rest = json_deep_copy(b);
    if (!rest) return ERR_NOMEM;
    json_t *parts = json_incref(json_object_get(rest, "allOf"));
    json_object_del(rest, "allOf");
    int rc = merge_into(c, a, rest, path, depth + 1);
    for (size_t i = 0; !rc && i < json_array_size(parts); i++) rc = merge_into(c, a, json_array_get(parts, i), path, depth + 1);
    json_decref(parts);
    json_decref(rest);
    return rc;
  }
  int a_props = json_object_get(a, "properties") || json_object_get(a, "additionalProperties");
  int b_props = json_object_get(b, "properties") || json_object_get(b, "additionalProperties");
  if (a_props && b_props && (json_object_get(a, "additionalProperties") || json_object_get(b, "additionalProperties")))
    return unsup(c, path, "allOf", "additionalProperties next to properties of another branch");
  if ((json_object_get(a, "items") || json_object_get(a, "prefixItems")) && (json_object_get(b, "items") || json_object_get(b, "prefixItems")))
    return unsup(c, path, "allOf", "items in several branches");
  json_object_foreach((json_t *)b, k, v) {
    json_t *old = json_object_get(a, k);
    if (is_annotation(k) && strcmp(k, "$defs") && strcmp(k, "definitions")) continue;
    if (!old) { json_object_set(a, k, v); continue; }
    if (json_equal(old, v)) continue;
    if (!strcmp(k, "required")) {
      json_t *u = json_deep_copy(old);
      json_array_extend(u, v);
      json_object_set_new(a, k, u);
    } else if (!strcmp(k, "properties")) {
      json_t *u = json_deep_copy(old);
      const char *pk;
      json_t *pv;
      json_object_foreach(v, pk, pv) {
        json_t *ov = json_object_get(u, pk);
        if (ov) json_object_set_new(u, pk, json_pack("{s:[O,O]}", "allOf", ov, pv));
        else json_object_set(u, pk, pv);
      }
      json_object_set_new(a, k, u);
    } else if (!strcmp(k, "type")) {
      int ta = schema_type(c, a, path), tb = schema_type(c, b, path);
      if (ta < 0 || tb < 0) return ta < 0 ? ta : tb;
      int t = ta & tb;
      json_t *arr = json_array();
      static const char *const names[] = {"null", "boolean", "object", "array", "string", "integer", "number"};
      if (t & T_NUM) t &= ~T_INT, json_array_append_new(arr, json_string("number"));
      for (int i = 0; i < 6; i++)
        if (t & (1 << i)) json_array_append_new(arr, json_string(names[i]));
      json_object_set_new(a, k, arr);
    } else if (!strcmp(k, "minimum") || !strcmp(k, "minLength") || !strcmp(k, "minItems") || !strcmp(k, "exclusiveMinimum")) {
      if (json_number_value(v) > json_number_value(old)) json_object_set(a, k, v);
    } else if (!strcmp(k, "maximum") || !strcmp(k, "maxLength") || !strcmp(k, "maxItems") || !strcmp(k, "exclusiveMaximum")) {
      if (json_number_value(v) < json_number_value(old)) json_object_set(a, k, v);
    } else {
      return unsup(c, path, k, "in several allOf branches");
    }
  }
  return 0;
}

static int check_keywords(jctx *c, const json_t *s, const char *path, int depth) {
  static const char *const no[] = {"not", "if", "then", "else", "$anchor", "$dynamicRef", "$dynamicAnchor",
                                   "$recursiveRef", "$recursiveAnchor", "$vocabulary", "multipleOf", "dependencies", NULL};
  for (int i = 0; no[i]; i++)
    if (json_object_get(s, no[i])) return unsup(c, path, no[i], NULL);
  if (depth > 0 && json_object_get(s, "$id")) return unsup(c, path, "$id", "nested resources");
  return 0;
}

/* Type sets a schema can match (for oneOf disjointness); T_ALL when unsure. */
static int reach_types(jctx *c, const json_t *s, int depth) {
  if (json_is_false(s)) return 0;
  if (!json_is_object(s) || depth > 16) return T_ALL;
  const json_t *r = json_object_get(s, "$ref");
  int t = T_ALL;
  if (r && json_is_string(r)) {
    const json_t *x = resolve(c, json_string_value(r));
    if (x) t &= reach_types(c, x, depth + 1);
  }
  const json_t *ty = json_object_get(s, "type");
  if (ty) {
    int b = schema_type(c, s, "");
    if (b >= 0) t &= b;
  }
  const json_t *cv = json_object_get(s, "const"), *en = json_object_get(s, "enum");
  if (cv) t &= types_of_value(cv);
  if (json_is_array(en)) {
    int u = 0;
    for (size_t i = 0; i < json_array_size(en); i++) u |= types_of_value(json_array_get(en, i));
    t &= u;
  }
  if (t & T_NUM) t |= T_INT; /* number includes integers */
  return t;
}

static int gen_body(jctx *c, const json_t *s, const char *path, int depth, sb *o);

static int gen(jctx *c, const json_t *s, const char *path, int depth, char *name, size_t cap) {
  if (depth > JSONSCHEMA_MAX_DEPTH) return unsup(c, path, "", "nesting over 64");
  const json_t *ref = json_is_object(s) ? json_object_get(s, "$ref") : NULL;
  if (ref && json_object_size(s) > 0) {
    /* a $ref alone (annotations aside) is memoized */
    const char *k;
    json_t *v;
    int alone = 1;
    json_object_foreach((json_t *)s, k, v) if (strcmp(k, "$ref") && !is_annotation(k)) alone = 0;
    if (alone) {
      if (!json_is_string(ref)) return unsup(c, path, "$ref", "not a string");
      const char *r = json_string_value(ref);
      for (size_t i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ptr, r)) { rule_name(c, c->refs[i].rule, name, cap); return 0; }
      const json_t *t = resolve(c, r);
      if (!t) return unsup(c, path, "$ref", "not a local JSON pointer into this document");
      if (c->n_refs == c->cap_refs) {
        size_t nc = c->cap_refs ? c->cap_refs * 2 : 8;
        refmemo *m = realloc(c->refs, nc * sizeof *m);
        if (!m) return ERR_NOMEM;
        c->refs = m, c->cap_refs = nc;
      }
      int me = c->n_rules++;
      c->refs[c->n_refs].ptr = strdup(r);
      if (!c->refs[c->n_refs].ptr) return ERR_NOMEM;
      c->refs[c->n_refs++].rule = me;
      rule_name(c, me, name, cap);
      char rname[128];
      char rpath[1024];
      snprintf(rpath, sizeof rpath, "%s", r + 1);
      int rc = gen(c, t, rpath, depth + 1, rname, sizeof rname);
      if (rc) return rc;
      sb b = {0};
      sb_puts(&b, rname);
      append_rule(c, name, &b);
      free(b.p);
      return 0;
    }
  }
  int me = depth == 0 ? -1 : c->n_rules++;
  if (me < 0) snprintf(name, cap, "%s", c->prefix);
  else rule_name(c, me, name, cap);
  char myname[128];
  snprintf(myname, sizeof myname, "%s", name);
  sb b = {0};
  int rc = gen_body(c, s, path, depth, &b);
  if (!rc && b.oom) rc = ERR_NOMEM;
  if (!rc) append_rule(c, myname, &b);
  free(b.p);
  return rc;
}

static int gen_body(jctx *c, const json_t *s, const char *path, int depth, sb *o) {
  const char *P = c->prefix;
  if (json_is_true(s)) { sb_printf(o, "%s-value", P); return 0; }
  if (json_is_false(s)) { sb_printf(o, "%s-never", P); return 0; }
  if (!json_is_object(s)) return err_set(c->err, c->err_cap, ERR_INVAL, "not a schema at %s", path[0] ? path : "/");
  if (json_object_get(s, "$never")) { sb_printf(o, "%s-never", P); return 0; } /* made by merging a false branch */
  int rc = check_keywords(c, s, path, depth);
  if (rc) return rc;
  /* $ref with siblings, allOf: merge into one schema */
  if (json_object_get(s, "allOf") || json_object_get(s, "$ref")) {
    json_t *m = json_object();
    if (!m) return ERR_NOMEM;
    json_array_append_new(c->keep, m);
    const json_t *all = json_object_get(s, "allOf");
    if (all && !json_is_array(all)) return unsup(c, path, "allOf", "not an array");
    json_t *rest = json_deep_copy(s);
    json_object_del(rest, "allOf");
    json_t *ref = json_incref(json_object_get(rest, "$ref"));
    json_object_del(rest, "$ref");
    rc = merge_into(c, m, rest, path, 0);
    json_decref(rest);
    if (!rc && ref) {
      json_t *w = json_pack("{s:O}", "$ref", ref);
      rc = merge_into(c, m, w, path, 0);
      json_decref(w);
    }
    json_decref(ref);
    for (size_t i = 0; !rc && i < json_array_size(all); i++) rc = merge_into(c, m, json_array_get(all, i), path, 0);
    if (rc) return rc;
    return gen_body(c, m, path, depth + 1, o);
  }
  const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
  if (any || one) {
    if (any && one) return unsup(c, path, "oneOf", "together with anyOf");
    const json_t *br = any ? any : one;
    const char *kw = any ? "anyOf" : "oneOf";
    if (!json_is_array(br) || !json_array_size(br)) return unsup(c, path, kw, "not a non-empty array");
    if (one) {
      for (size_t i = 0; i < json_array_size(br); i++)
        for (size_t j = i + 1; j < json_array_size(br); j++)
          if (reach_types(c, json_array_get(br, i), 0) & reach_types(c, json_array_get(br, j), 0))
            return unsup(c, path, "oneOf", "branches that may overlap (only disjoint types are exact)");
    }
    /* siblings constrain every branch: merge them into each */
    json_t *sib = json_deep_copy(s);
    json_object_del(sib, kw);
    sb_puts(o, "( ");
    for (size_t i = 0; i < json_array_size(br); i++) {
      json_t *m = json_object();
      json_array_append_new(c->keep, m);
      rc = merge_into(c, m, sib, path, 0);
      if (!rc) rc = merge_into(c, m, json_array_get(br, i), path, 0);
      if (rc) { json_decref(sib); return rc; }
      char nm[128], bp[1024];
      snprintf(bp, sizeof bp, "%s/%s/%zu", path, kw, i);
      int is_false = json_is_false(json_array_get(br, i));
      if (is_false) snprintf(nm, sizeof nm, "%s-never", P);
      else if ((rc = gen(c, m, bp, depth + 1, nm, sizeof nm))) { json_decref(sib); return rc; }
      sb_printf(o, "%s%s", i ? " | " : "", nm);
    }
    json_decref(sib);
    sb_puts(o, " )");
    return 0;
  }
  int types = schema_type(c, s, path);
  if (types < 0) return types;
  const json_t *cv = json_object_get(s, "const"), *en = json_object_get(s, "enum");
  if (cv || en) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
      if (is_annotation(k) || !strcmp(k, "type") || !strcmp(k, "enum") || !strcmp(k, "const")) continue;
      static const char *const kws[] = {"properties", "required", "additionalProperties", "items", "prefixItems",
                                        "minItems", "maxItems", "minLength", "maxLength", "pattern", "minimum",
                                        "maximum", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems", NULL};
      for (int i = 0; kws[i]; i++)
        if (!strcmp(kws[i], k)) return unsup(c, path, k, "next to enum/const");
    }
    if (en && !json_is_array(en)) return unsup(c, path, "enum", "not an array");
    int first = 1;
    sb_puts(o, "( ");
    for (size_t i = 0; i < (cv ? 1 : json_array_size(en)); i++) {
      const json_t *val = cv ? cv : json_array_get(en, i);
      if (!(types_of_value(val) & types)) continue;
      if (cv && en) { /* both: keep const only if it is in enum */
        int in = 0;
        for (size_t j = 0; j < json_array_size(en); j++) {
          char *a, *b2;
          if (jsonschema_canonical(val, &a) || jsonschema_canonical(json_array_get(en, j), &b2)) return ERR_NOMEM;
          in |= !strcmp(a, b2);
          free(a), free(b2);
        }
        if (!in) continue;
      }
      if (!first) sb_puts(o, " | ");
      first = 0;
      if ((rc = gen_const(c, val, path, cv ? "const" : "enum", o))) return rc;
    }
    if (first) sb_printf(o, "%s-never", P);
    sb_puts(o, " )");
    return 0;
  }
  int first = 1;
  sb_puts(o, "( ");
#define ALT() (first ? (first = 0, "") : " | ")
  if (types & T_NULL) sb_printf(o, "%s%s-null", ALT(), P);
  if (types & T_BOOL) sb_printf(o, "%s%s-bool", ALT(), P);
  if (types & T_STR) {
    sb_puts(o, ALT());
    if ((rc = gen_string(c, s, path, o))) return rc;
  }
  if (types & (T_INT | T_NUM)) {
    int bounded = json_object_get(s, "minimum") || json_object_get(s, "maximum") ||
                  json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum");
    sb_puts(o, ALT());
    if ((types & T_NUM) && bounded) {
      sb_puts(o, "( ");
      if ((rc = gen_number_bounded(c, s, path, o))) return rc;
      sb_puts(o, " )");
    } else if (types & T_NUM) sb_printf(o, "%s-number", P);
    else if ((rc = gen_integer(c, s, path, o))) return rc;
  }
  if (types & T_ARR) {
    sb_puts(o, ALT());
    if ((rc = gen_array(c, s, path, depth, o))) return rc;
  }
  if (types & T_OBJ) {
    sb_puts(o, ALT());
    if ((rc = gen_object(c, s, path, depth, o))) return rc;
  }
#undef ALT
  if (first) sb_printf(o, "%s-never", P);
  sb_puts(o, " )");
  return 0;
}

int jsonschema_to_gbnf(const json_t *schema, const char *prefix, char **gbnf_out, char *err, size_t err_cap) {
  return jsonschema_to_gbnf_ex(schema, prefix, 0, gbnf_out, err, err_cap);
}

int jsonschema_to_gbnf_ex(const json_t *schema, const char *prefix, int flags, char **gbnf_out, char *err,
                          size_t err_cap) {
  *gbnf_out = NULL;
  if (!schema) return err_set(err, err_cap, ERR_INVAL, "no schema");
  if (!prefix) prefix = "root";
  for (const char *q = prefix; *q; q++)
    if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '-' || *q == '_'))
      return err_set(err, err_cap, ERR_INVAL, "prefix '%s' is not a rule name", prefix);
  if (!*prefix || strlen(prefix) > 64) return err_set(err, err_cap, ERR_INVAL, "prefix must have 1..64 characters");
  /* Another metaschema may switch vocabularies off (or on): only the standard ones are known. */
  const char *ms = json_string_value(json_object_get(schema, "$schema"));
  if (ms && strcmp(ms, "https://json-schema.org/draft/2020-12/schema") && strcmp(ms, "https://json-schema.org/draft/2020-12/schema#") &&
      strcmp(ms, "http://json-schema.org/draft-07/schema#") && strcmp(ms, "http://json-schema.org/draft-07/schema"))
    return err_set(err, err_cap, ERR_UNSUPPORTED, "unsupported: $schema '%.200s' (a metaschema apiary does not know; its vocabularies may differ)", ms);
  jctx c = {.root = schema, .prefix = prefix, .err = err, .err_cap = err_cap, .keep = json_array(), .flags = flags};
  if (!c.keep) return ERR_NOMEM;
  char name[128];
  int rc = gen(&c, schema, "", 0, name, sizeof name);
  if (!rc && strcmp(name, prefix)) sb_printf(&c.out, "%s ::= %s\n", prefix, name); /* a root that is a $ref */
  if (!rc) emit_base(&c);
  if (!rc && c.out.oom) rc = ERR_NOMEM;
  if (!rc) {
    grammar *g;
    char perr[256];
    int prc = grammar_parse(c.out.p, c.out.n, prefix, &g, perr, sizeof perr);
    if (prc == ERR_FORMAT) rc = err_set(err, err_cap, ERR_UNSUPPORTED, "unsupported: the schema gives a grammar that cannot work (%s), e.g. a $ref cycle", perr);
    else if (prc) rc = err_set(err, err_cap, prc, "grammar check: %s", perr);
    else grammar_free(g);
  }
  for (size_t i = 0; i < c.n_refs; i++) free(c.refs[i].ptr);
  free(c.refs);
  json_decref(c.keep);
  if (rc) {
    free(c.out.p);
    if (rc == ERR_NOMEM) err_set(err, err_cap, ERR_NOMEM, "out of memory");
    return rc;
  }
  *gbnf_out = c.out.p;
  return 0;
}
