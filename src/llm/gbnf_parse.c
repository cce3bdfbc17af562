/* llm/gbnf_parse — GBNF text → struct grammar (grammar.h).
 *
 * A recursive-descent parser over the bytes of the text. Each rule's body is built as a
 * vector of elements with an END after every alternative; groups and repetitions become
 * anonymous helper rules. At the end: every referenced rule must be defined, the root
 * must exist, and no rule may reach itself without consuming a character (left
 * recursion, including x* where x can be empty), since that would never terminate.
 * Then the rules are flattened into one element array. Errors name line:column.
 * Single-threaded; owns nothing after returning but the grammar it returns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar_impl.h"

typedef struct evec {
  grammar__elem *v;
  uint32_t n, cap;
} evec;

typedef struct prule {
  const char *name; /* into the text; NULL for helper rules */
  uint32_t name_len;
  evec body;        /* alternatives, each ending with END */
  int defined;
  size_t pos;       /* definition (or first reference / group) offset */
} prule;

typedef struct pstate {
  const char *s;
  size_t len, pos;
  char *err;
  size_t err_cap;
  prule *rules;
  uint32_t n_rules, cap_rules;
  int32_t *table; /* name hash → rule index + 1 (0: empty) */
  uint32_t table_cap;
  grammar__class *classes;
  uint32_t n_classes, cap_classes;
  uint32_t *ranges; /* pairs */
  uint32_t n_ranges, cap_ranges;
  uint64_t n_elems; /* over all rules */
  uint32_t *tmp;    /* class parsing scratch (pairs) */
  uint32_t n_tmp, cap_tmp;
} pstate;

static int fail_at(pstate *p, size_t at, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail_at(pstate *p, size_t at, int rc, const char *fmt, ...) {
  unsigned line = 1, col = 1;
  for (size_t i = 0; i < at && i < p->len; i++) {
    if (p->s[i] == '\n') line++, col = 1;
    else if (((unsigned char)p->s[i] & 0xC0) != 0x80) col++;
  }
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return err_set(p->err, p->err_cap, rc, "%u:%u: %s", line, col, msg);
}

static int grow(void **v, uint32_t *cap, uint32_t need, size_t size) {
  if (need <= *cap) return 0;
  uint32_t c = *cap ? *cap : 8;
  while (c < need) c *= 2;
  void *n = realloc(*v, (size_t)c * size);
  if (!n) return ERR_NOMEM;
  *v = n;
  *cap = c;
  return 0;
}

static int epush(pstate *p, evec *e, uint8_t type, int32_t val) {
  if (++p->n_elems > GRAMMAR_MAX_ELEMS) return fail_at(p, p->pos, ERR_TOOBIG, "grammar over %d elements", GRAMMAR_MAX_ELEMS);
  if (grow((void **)&e->v, &e->cap, e->n + 1, sizeof *e->v)) return ERR_NOMEM;
  e->v[e->n].type = type;
  e->v[e->n].val = val;
  e->n++;
  return 0;
}

static int new_rule(pstate *p, const char *name, uint32_t name_len, size_t pos) {
  if (p->n_rules >= GRAMMAR_MAX_RULES) return fail_at(p, pos, ERR_TOOBIG, "over %d rules", GRAMMAR_MAX_RULES);
  if (grow((void **)&p->rules, &p->cap_rules, p->n_rules + 1, sizeof *p->rules)) return ERR_NOMEM;
  prule *r = &p->rules[p->n_rules];
  memset(r, 0, sizeof *r);
  r->name = name;
  r->name_len = name_len;
  r->pos = pos;
  return (int)p->n_rules++;
}

static uint32_t hash_name(const char *s, uint32_t n) {
  uint32_t h = 2166136261u;
  for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

/* Finds or creates the named rule. */
static int lookup_rule(pstate *p, const char *name, uint32_t n, size_t pos) {
  if (p->n_rules * 2 + 2 > p->table_cap) {
    uint32_t cap = p->table_cap ? p->table_cap * 2 : 64;
    int32_t *t = calloc(cap, sizeof *t);
    if (!t) return ERR_NOMEM;
    for (uint32_t i = 0; i < p->table_cap; i++) {
      if (!p->table[i]) continue;
      prule *r = &p->rules[p->table[i] - 1];
      uint32_t h = hash_name(r->name, r->name_len) & (cap - 1);
      while (t[h]) h = (h + 1) & (cap - 1);
      t[h] = p->table[i];
    }
    free(p->table);
    p->table = t;
    p->table_cap = cap;
  }
  uint32_t h = hash_name(name, n) & (p->table_cap - 1);
  while (p->table[h]) {
    prule *r = &p->rules[p->table[h] - 1];
    if (r->name_len == n && !memcmp(r->name, name, n)) return p->table[h] - 1;
    h = (h + 1) & (p->table_cap - 1);
  }
  int idx = new_rule(p, name, n, pos);
  if (idx < 0) return idx;
  p->table[h] = idx + 1;
  return idx;
}

/* Adds a class from the scratch pairs (any order); negate complements it. */
static int add_class(pstate *p, int negate) {
  uint32_t *t = p->tmp, n = p->n_tmp / 2;
  for (uint32_t i = 1; i < n; i++) { /* insertion sort by lo: classes are short */
    uint32_t lo = t[2 * i], hi = t[2 * i + 1], j = i;
    while (j > 0 && t[2 * (j - 1)] > lo) {
      t[2 * j] = t[2 * (j - 1)], t[2 * j + 1] = t[2 * (j - 1) + 1];
      j--;
    }
    t[2 * j] = lo, t[2 * j + 1] = hi;
  }
  uint32_t m = 0; /* merge */
  for (uint32_t i = 0; i < n; i++) {
    if (m && t[2 * i] <= t[2 * (m - 1) + 1] + 1) {
      if (t[2 * i + 1] > t[2 * (m - 1) + 1]) t[2 * (m - 1) + 1] = t[2 * i + 1];
    } else {
      t[2 * m] = t[2 * i], t[2 * m + 1] = t[2 * i + 1];
      m++;
    }
  }
  if (grow((void **)&p->ranges, &p->cap_ranges, p->n_ranges + 2 * (m + 1), sizeof *p->ranges)) return ERR_NOMEM;
  if (grow((void **)&p->classes, &p->cap_classes, p->n_classes + 1, sizeof *p->classes)) return ERR_NOMEM;
  uint32_t off = p->n_ranges / 2, k = 0;
  uint32_t *r = p->ranges + p->n_ranges;
  if (!negate) {
    if (m) memcpy(r, t, (size_t)m * 2 * sizeof *t);
    k = m;
  } else {
    uint32_t next = 0;
    for (uint32_t i = 0; i < m; i++) {
      if (t[2 * i] > next) r[2 * k] = next, r[2 * k + 1] = t[2 * i] - 1, k++;
      next = t[2 * i + 1] + 1;
    }
    if (next <= 0x10FFFF) r[2 * k] = next, r[2 * k + 1] = 0x10FFFF, k++;
  }
  p->n_ranges += 2 * k;
  grammar__class *c = &p->classes[p->n_classes];
  memset(c, 0, sizeof *c);
  c->off = off;
  c->n = k;
  for (uint32_t i = 0; i < k; i++) {
    uint32_t lo = r[2 * i], hi = r[2 * i + 1];
    for (uint32_t cp = lo; cp <= hi && cp < 128; cp++) c->ascii[cp >> 5] |= 1u << (cp & 31);
    if (lo <= 0x80 && hi >= 0x10FFFF) c->all_high = 1;
  }
  p->n_tmp = 0;
  return (int)p->n_classes++;
}

static int tmp_pair(pstate *p, uint32_t lo, uint32_t hi) {
  if (grow((void **)&p->tmp, &p->cap_tmp, p->n_tmp + 2, sizeof *p->tmp)) return ERR_NOMEM;
  p->tmp[p->n_tmp++] = lo;
  p->tmp[p->n_tmp++] = hi;
  return 0;
}

static int peek(const pstate *p, size_t k) { return p->pos + k < p->len ? (unsigned char)p->s[p->pos + k] : -1; }

static void skip_ws(pstate *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->pos++;
    else if (c == '#') {
      while (p->pos < p->len && p->s[p->pos] != '\n') p->pos++;
    } else break;
  }
}

static int is_name_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static uint32_t name_len_at(const pstate *p, size_t at) {
  uint32_t n = 0;
  while (at + n < p->len && is_name_char((unsigned char)p->s[at + n])) n++;
  return n;
}

/* Is a rule definition (`name ::=`) at the current position? */
static int at_definition(const pstate *p) {
  uint32_t n = name_len_at(p, p->pos);
  if (!n) return 0;
  size_t i = p->pos + n;
  while (i < p->len && (p->s[i] == ' ' || p->s[i] == '\t' || p->s[i] == '\n' || p->s[i] == '\r')) i++;
  return i + 3 <= p->len && !memcmp(p->s + i, "::=", 3);
}

/* Decodes one UTF-8 code point of the text. */
static int decode_utf8(pstate *p, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)p->s + p->pos;
  size_t left = p->len - p->pos;
  uint32_t c = s[0], need, min;
  if (c < 0x80) need = 0, min = 0;
  else if (c >= 0xC2 && c <= 0xDF) need = 1, c &= 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) need = 2, c &= 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) need = 3, c &= 0x07, min = 0x10000;
  else return fail_at(p, p->pos, ERR_FORMAT, "invalid UTF-8");
  if (left < need + 1) return fail_at(p, p->pos, ERR_FORMAT, "invalid UTF-8");
  for (uint32_t i = 1; i <= need; i++) {
    if ((s[i] & 0xC0) != 0x80) return fail_at(p, p->pos, ERR_FORMAT, "invalid UTF-8");
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return fail_at(p, p->pos, ERR_FORMAT, "invalid UTF-8");
  p->pos += need + 1;
  *cp = c;
  return 0;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* One character of a literal or class, escapes decoded. */
static int parse_char(pstate *p, uint32_t *cp) {
  if (p->pos >= p->len) return fail_at(p, p->pos, ERR_FORMAT, "unexpected end of text");
  if (p->s[p->pos] != '\\') return decode_utf8(p, cp);
  size_t at = p->pos;
  int c = peek(p, 1);
  p->pos += 2;
  int digits = 0;
  switch (c) {
  case 'n': *cp = '\n'; return 0;
  case 't': *cp = '\t'; return 0;
  case 'r': *cp = '\r'; return 0;
  case 'x': digits = 2; break;
  case 'u': digits = 4; break;
  case 'U': digits = 8; break;
  case -1: return fail_at(p, at, ERR_FORMAT, "unexpected end of text after '\\'");
  default:
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80)
      return fail_at(p, at, ERR_FORMAT, "unknown escape '\\%c'", c);
    *cp = (uint32_t)c;
    return 0;
  }
  uint32_t v = 0;
  for (int i = 0; i < digits; i++) {
    int h = hexval(peek(p, 0));
    if (h < 0) return fail_at(p, at, ERR_FORMAT, "escape needs %d hex digits", digits);
    v = v * 16 + (uint32_t)h;
    p->pos++;
  }
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return fail_at(p, at, ERR_FORMAT, "escape is not a code point");
  *cp = v;
  return 0;
}

static int parse_alternates(pstate *p, evec *out, int depth);

/* Wraps elements [from, alt->n) into one element (a helper rule when more than one). */
static int unit_of(pstate *p, evec *alt, uint32_t from, size_t at, grammar__elem *unit) {
  if (alt->n - from == 1) {
    *unit = alt->v[from];
    alt->n = from;
    return 0;
  }
  int r = new_rule(p, NULL, 0, at);
  if (r < 0) return r;
  evec *b = &p->rules[r].body;
  for (uint32_t i = from; i < alt->n; i++) {
    int rc = grow((void **)&b->v, &b->cap, b->n + 1, sizeof *b->v);
    if (rc) return rc;
    b->v[b->n++] = alt->v[i];
  }
  int rc = epush(p, b, GRAMMAR__END, 0);
  if (rc) return rc;
  p->rules[r].defined = 1;
  alt->n = from;
  unit->type = GRAMMAR__REF;
  unit->val = r;
  return 0;
}

/* r ::= unit r? | ε  (with_tail: unit followed by a reference to tail). Returns the rule. */
static int opt_rule(pstate *p, grammar__elem unit, int tail, size_t at) {
  int r = new_rule(p, NULL, 0, at);
  if (r < 0) return r;
  evec b = {0};
  int rc = epush(p, &b, unit.type, unit.val);
  if (!rc && tail >= 0) rc = epush(p, &b, GRAMMAR__REF, tail);
  if (!rc) rc = epush(p, &b, GRAMMAR__END, 0);
  if (!rc) rc = epush(p, &b, GRAMMAR__END, 0);
  if (rc) { free(b.v); return rc; }
  p->rules[r].body = b;
  p->rules[r].defined = 1;
  return r;
}

static int star_rule(pstate *p, grammar__elem unit, size_t at) {
  int r = new_rule(p, NULL, 0, at);
  if (r < 0) return r;
  evec b = {0};
  int rc = epush(p, &b, unit.type, unit.val);
  if (!rc) rc = epush(p, &b, GRAMMAR__REF, r);
  if (!rc) rc = epush(p, &b, GRAMMAR__END, 0);
  if (!rc) rc = epush(p, &b, GRAMMAR__END, 0);
  if (rc) { free(b.v); return rc; }
  p->rules[r].body = b;
  p->rules[r].defined = 1;
  return r;
}

static int parse_uint(pstate *p, long *v) {
  if (peek(p, 0) < '0' || peek(p, 0) > '9') return fail_at(p, p->pos, ERR_FORMAT, "expected a number");
  long x = 0;
  while (peek(p, 0) >= '0' && peek(p, 0) <= '9') {
    x = x * 10 + (peek(p, 0) - '0');
    if (x > GRAMMAR_MAX_REPEAT) return fail_at(p, p->pos, ERR_TOOBIG, "repetition count over %d", GRAMMAR_MAX_REPEAT);
    p->pos++;
  }
  *v = x;
  return 0;
}

/* Applies a postfix operator to the atom in [from, alt->n). */
static int postfix(pstate *p, evec *alt, uint32_t from, size_t at) {
  int op = peek(p, 0);
  long lo = 0, hi = -1; /* hi -1: unbounded */
  size_t op_at = p->pos;
  if (op == '*') lo = 0, hi = -1, p->pos++;
  else if (op == '+') lo = 1, hi = -1, p->pos++;
  else if (op == '?') lo = 0, hi = 1, p->pos++;
  else {
    p->pos++;
    skip_ws(p);
    int rc = parse_uint(p, &lo);
    if (rc) return rc;
    skip_ws(p);
    hi = lo;
    if (peek(p, 0) == ',') {
      p->pos++;
      skip_ws(p);
      hi = -1;
      if (peek(p, 0) != '}' && (rc = parse_uint(p, &hi))) return rc;
      skip_ws(p);
    }
    if (peek(p, 0) != '}') return fail_at(p, p->pos, ERR_FORMAT, "expected '}'");
    p->pos++;
    if (hi >= 0 && hi < lo) return fail_at(p, op_at, ERR_FORMAT, "repetition {%ld,%ld} has max < min", lo, hi);
  }
  grammar__elem unit;
  int rc = unit_of(p, alt, from, at, &unit);
  if (rc) return rc;
  for (long i = 0; i < lo; i++)
    if ((rc = epush(p, alt, unit.type, unit.val))) return rc;
  if (hi < 0) {
    int r = star_rule(p, unit, at);
    if (r < 0) return r;
    return epush(p, alt, GRAMMAR__REF, r);
  }
  int prev = -1;
  for (long i = lo; i < hi; i++) {
    prev = opt_rule(p, unit, prev, at);
    if (prev < 0) return prev;
  }
  return prev >= 0 ? epush(p, alt, GRAMMAR__REF, prev) : 0;
}

static int parse_class(pstate *p) {
  size_t at = p->pos;
  p->pos++; /* [ */
  int negate = 0;
  if (peek(p, 0) == '^') negate = 1, p->pos++;
  p->n_tmp = 0;
  while (peek(p, 0) != ']') {
    if (peek(p, 0) < 0) return fail_at(p, at, ERR_FORMAT, "unterminated character class");
    uint32_t lo, hi;
    int rc = parse_char(p, &lo);
    if (rc) return rc;
    hi = lo;
    if (peek(p, 0) == '-' && peek(p, 1) != ']' && peek(p, 1) >= 0) {
      size_t dash = p->pos;
      p->pos++;
      if ((rc = parse_char(p, &hi))) return rc;
      if (hi < lo) return fail_at(p, dash, ERR_FORMAT, "range end below its start");
    }
    if ((rc = tmp_pair(p, lo, hi))) return rc;
  }
  p->pos++;
  return add_class(p, negate);
}

static int parse_sequence(pstate *p, evec *alt, int depth) {
  for (;;) {
    skip_ws(p);
    int c = peek(p, 0);
    if (c < 0 || c == '|' || c == ')' || at_definition(p)) return 0;
    uint32_t from = alt->n;
    size_t at = p->pos;
    int rc;
    if (c == '"') {
      p->pos++;
      while (peek(p, 0) != '"') {
        if (peek(p, 0) < 0) return fail_at(p, at, ERR_FORMAT, "unterminated string literal");
        uint32_t cp;
        if ((rc = parse_char(p, &cp)) || (rc = tmp_pair(p, cp, cp))) return rc;
        int k = add_class(p, 0);
        if (k < 0) return k;
        if ((rc = epush(p, alt, GRAMMAR__CHAR, k))) return rc;
      }
      p->pos++;
      if (alt->n == from) continue; /* "" matches the empty string: nothing to add */
    } else if (c == '[') {
      int k = parse_class(p);
      if (k < 0) return k;
      if ((rc = epush(p, alt, GRAMMAR__CHAR, k))) return rc;
    } else if (c == '.') {
      p->pos++;
      p->n_tmp = 0;
      if ((rc = tmp_pair(p, 0, 0x10FFFF))) return rc;
      int k = add_class(p, 0);
      if (k < 0) return k;
      if ((rc = epush(p, alt, GRAMMAR__CHAR, k))) return rc;
    } else if (c == '(') {
      if (depth >= GRAMMAR_MAX_NESTING) return fail_at(p, at, ERR_TOOBIG, "groups nested over %d deep", GRAMMAR_MAX_NESTING);
      p->pos++;
      evec body = {0};
      rc = parse_alternates(p, &body, depth + 1);
      if (!rc && peek(p, 0) != ')') rc = fail_at(p, p->pos, ERR_FORMAT, "expected ')' for the '(' at %zu", at);
      if (rc) { free(body.v); return rc; }
      p->pos++;
      int r = new_rule(p, NULL, 0, at);
      if (r < 0) { free(body.v); return r; }
      p->rules[r].body = body;
      p->rules[r].defined = 1;
      if ((rc = epush(p, alt, GRAMMAR__REF, r))) return rc;
    } else if (is_name_char(c)) {
      uint32_t n = name_len_at(p, p->pos);
      int r = lookup_rule(p, p->s + p->pos, n, p->pos);
      if (r < 0) return r;
      p->pos += n;
      if ((rc = epush(p, alt, GRAMMAR__REF, r))) return rc;
    } else {
      return fail_at(p, at, ERR_FORMAT, "unexpected '%c'", c);
    }
    for (;;) {
      skip_ws(p);
      c = peek(p, 0);
      if (c != '*' && c != '+' && c != '?' && c != '{') break;
      if ((rc = postfix(p, alt, from, at))) return rc;
    }
  }
}

static int parse_alternates(pstate *p, evec *out, int depth) {
  for (;;) {
    int rc = parse_sequence(p, out, depth);
    if (!rc) rc = epush(p, out, GRAMMAR__END, 0);
    if (rc) return rc;
    skip_ws(p);
    if (peek(p, 0) != '|') return 0;
    p->pos++;
  }
}

static void pstate_free(pstate *p) {
  for (uint32_t i = 0; i < p->n_rules; i++) free(p->rules[i].body.v);
  free(p->rules);
  free(p->table);
  free(p->classes);
  free(p->ranges);
  free(p->tmp);
}

static int rule_label(const pstate *p, uint32_t r, char *out, size_t cap) {
  const prule *x = &p->rules[r];
  if (x->name) return snprintf(out, cap, "rule '%.*s'", (int)(x->name_len > 60 ? 60 : x->name_len), x->name);
  return snprintf(out, cap, "a group or repetition");
}

/* Left recursion: a rule reaching itself through references each preceded only by
 * nullable elements. */
static int check_left_recursion(pstate *p) {
  uint32_t n = p->n_rules;
  uint8_t *nullable = calloc(n ? n : 1, 1), *color = calloc(n ? n : 1, 1);
  uint32_t *stack = malloc((n ? n : 1) * sizeof *stack), *it = malloc((n ? n : 1) * sizeof *it);
  int rc = 0;
  if (!nullable || !color || !stack || !it) { rc = ERR_NOMEM; goto done; }
  for (int changed = 1; changed;) {
    changed = 0;
    for (uint32_t r = 0; r < n; r++) {
      if (nullable[r]) continue;
      const evec *b = &p->rules[r].body;
      int ok = 1;
      for (uint32_t i = 0; i < b->n; i++) {
        const grammar__elem *e = &b->v[i];
        if (e->type == GRAMMAR__END) {
          if (ok) { nullable[r] = 1, changed = 1; break; }
          ok = 1;
        } else if (e->type == GRAMMAR__CHAR || !nullable[e->val]) ok = 0;
      }
    }
  }
  /* Depth-first search over "leftmost" edges; it[] is the element cursor per frame. */
  for (uint32_t s = 0; s < n && !rc; s++) {
    if (color[s]) continue;
    uint32_t sp = 0;
    stack[sp] = s, it[sp] = 0, sp++;
    color[s] = 1;
    while (sp) {
      uint32_t r = stack[sp - 1];
      const evec *b = &p->rules[r].body;
      int pushed = 0;
      while (it[sp - 1] < b->n) {
        uint32_t i = it[sp - 1]++;
        /* leftmost if every element since the alternative's start is nullable */
        int left = 1;
        for (uint32_t j = i; j > 0; j--) {
          const grammar__elem *e = &b->v[j - 1];
          if (e->type == GRAMMAR__END) break;
          if (e->type == GRAMMAR__CHAR || !nullable[e->val]) { left = 0; break; }
        }
        const grammar__elem *e = &b->v[i];
        if (!left || e->type != GRAMMAR__REF) continue;
        uint32_t t = (uint32_t)e->val;
        if (color[t] == 1) {
          char what[96];
          rule_label(p, t, what, sizeof what);
          rc = fail_at(p, p->rules[t].pos, ERR_FORMAT,
                       "left recursion: %s can reach itself without consuming a character", what);
          goto done;
        }
        if (color[t] == 0) {
          color[t] = 1;
          stack[sp] = t, it[sp] = 0, sp++;
          pushed = 1;
          break;
        }
      }
      if (!pushed) color[r] = 2, sp--;
    }
  }
done:
  free(nullable);
  free(color);
  free(stack);
  free(it);
  return rc;
}

int grammar__class_has(const grammar *g, const grammar__class *c, uint32_t cp) {
  if (cp < 128) return (c->ascii[cp >> 5] >> (cp & 31)) & 1;
  if (c->all_high) return 1;
  const uint32_t *r = g->ranges + 2 * c->off;
  uint32_t lo = 0, hi = c->n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (r[2 * mid + 1] < cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < c->n && r[2 * lo] <= cp;
}

int grammar__class_meets(const grammar *g, const grammar__class *c, uint32_t lo_cp, uint32_t hi_cp) {
  const uint32_t *r = g->ranges + 2 * c->off;
  uint32_t lo = 0, hi = c->n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (r[2 * mid + 1] < lo_cp) lo = mid + 1;
    else hi = mid;
  }
  return lo < c->n && r[2 * lo] <= hi_cp;
}

int grammar_parse(const char *gbnf, size_t len, const char *root, grammar **out, char *err, size_t err_cap) {
  *out = NULL;
  pstate p = {.s = gbnf, .len = len, .err = err, .err_cap = err_cap};
  grammar *g = NULL;
  int rc = 0;
  if (!gbnf && len) return err_set(err, err_cap, ERR_INVAL, "no grammar text");
  if (len > GRAMMAR_MAX_TEXT) return err_set(err, err_cap, ERR_TOOBIG, "1:1: grammar text over %u bytes", GRAMMAR_MAX_TEXT);
  if (!root) root = "root";
  for (;;) {
    skip_ws(&p);
    if (p.pos >= p.len) break;
    size_t at = p.pos;
    uint32_t n = name_len_at(&p, p.pos);
    if (!n) { rc = fail_at(&p, at, ERR_FORMAT, "expected a rule name"); goto fail; }
    int r = lookup_rule(&p, p.s + p.pos, n, at);
    if (r < 0) { rc = r; goto fail; }
    p.pos += n;
    skip_ws(&p);
    if (p.pos + 3 > p.len || memcmp(p.s + p.pos, "::=", 3)) { rc = fail_at(&p, p.pos, ERR_FORMAT, "expected '::='"); goto fail; }
    p.pos += 3;
    if (p.rules[r].defined) { rc = fail_at(&p, at, ERR_FORMAT, "rule '%.*s' defined twice", (int)n, p.s + at); goto fail; }
    evec body = {0};
    rc = parse_alternates(&p, &body, 0);
    if (!rc && p.pos < p.len && !at_definition(&p)) rc = fail_at(&p, p.pos, ERR_FORMAT, "unexpected '%c'", p.s[p.pos]);
    if (rc) { free(body.v); goto fail; }
    p.rules[r].body = body;
    p.rules[r].defined = 1;
    p.rules[r].pos = at;
  }
  for (uint32_t r = 0; r < p.n_rules; r++)
    if (!p.rules[r].defined) {
      rc = fail_at(&p, p.rules[r].pos, ERR_FORMAT, "unknown rule '%.*s'", (int)p.rules[r].name_len, p.rules[r].name);
      goto fail;
    }
  int root_idx = -1;
  for (uint32_t r = 0; r < p.n_rules; r++)
    if (p.rules[r].name && p.rules[r].name_len == strlen(root) && !memcmp(p.rules[r].name, root, p.rules[r].name_len))
      root_idx = (int)r;
  if (root_idx < 0) { rc = err_set(err, err_cap, ERR_FORMAT, "1:1: no rule named '%s'", root); goto fail; }
  if ((rc = check_left_recursion(&p))) goto fail;

  g = calloc(1, sizeof *g);
  if (!g) { rc = ERR_NOMEM; goto fail; }
  uint32_t n_alts = 0;
  for (uint32_t r = 0; r < p.n_rules; r++)
    for (uint32_t i = 0; i < p.rules[r].body.n; i++) n_alts += p.rules[r].body.v[i].type == GRAMMAR__END;
  g->n_elems = (uint32_t)p.n_elems;
  g->elems = malloc(((size_t)g->n_elems + 1) * sizeof *g->elems);
  g->alts = malloc(((size_t)n_alts + 1) * sizeof *g->alts);
  g->rule_alt = malloc(((size_t)p.n_rules + 1) * sizeof *g->rule_alt);
  if (!g->elems || !g->alts || !g->rule_alt ) { rc = ERR_NOMEM; goto fail; }
  uint32_t ne = 0, na = 0;
  for (uint32_t r = 0; r < p.n_rules; r++) {
    g->rule_alt[r] = na;
    const evec *b = &p.rules[r].body;
    int start = 1;
    for (uint32_t i = 0; i < b->n; i++) {
      if (start) g->alts[na++] = ne, start = 0;
      g->elems[ne++] = b->v[i];
      if (b->v[i].type == GRAMMAR__END) start = 1;
    }
  }
  g->rule_alt[p.n_rules] = na;
  g->n_elems = ne;
  g->n_rules = p.n_rules;
  g->root = root_idx;
  g->classes = p.classes, p.classes = NULL;
  g->n_classes = p.n_classes;
  g->ranges = p.ranges, p.ranges = NULL;
  pstate_free(&p);
  *out = g;
  return 0;
fail:
  pstate_free(&p);
  grammar_free(g);
  return rc == ERR_NOMEM ? err_set(err, err_cap, ERR_NOMEM, "out of memory") : rc;
}

void grammar_free(grammar *g) {
  if (!g) return;
  free(g->elems);
  free(g->alts);
  free(g->rule_alt);
  free(g->classes);
  free(g->ranges);
  free(g);
}
