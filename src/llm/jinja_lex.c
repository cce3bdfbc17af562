/* llm/jinja_lex — template source → tokens, as @huggingface/jinja tokenizes it.
 *
 * First the source is preprocessed the way transformers renders chat templates
 * (trim_blocks and lstrip_blocks): one trailing newline is dropped; spaces and tabs
 * before "{%", "{#" (and "{-") at the start of a line are removed; the newline right
 * after "%}", "#}" (and "-}") is removed; transformers' {% generation %} tags vanish.
 * Then the text between tags becomes JT_TEXT tokens and the inside of tags becomes
 * names, numbers, strings and operators; "{%-", "-%}", "{{-", "-}}", "{#-", "-#}" trim
 * white space (JavaScript's \s, Unicode-aware) on their side. Every token remembers its
 * byte offset in the original source (deletions are tracked by a position map). Tokens
 * and unescaped strings live in the caller's arena. Any thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/jinja_impl.h"

#define JINJA_MAX_TOKENS (1u << 18)

size_t jinja__ws_at(const char *s, size_t i, size_t n) {
  unsigned char c = (unsigned char)s[i];
  if (c == ' ' || (c >= 9 && c <= 13)) return 1;
  if (c < 0x80) return 0;
  unsigned cp;
  size_t l;
  if (c == 0xc2 && i + 1 < n) {
    if ((unsigned char)s[i + 1] != 0xa0) return 0;
    cp = 0xa0, l = 2;
  } else if ((c & 0xf0) == 0xe0 && i + 2 < n) {
    cp = ((c & 0x0fu) << 12) | (((unsigned char)s[i + 1] & 0x3fu) << 6) | ((unsigned char)s[i + 2] & 0x3fu), l = 3;
  } else {
    return 0;
  }
  if (cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
      cp == 0x202f || cp == 0x205f || cp == 0x3000 || cp == 0xfeff)
    return l;
  return 0;
}

size_t jinja__ws_before(const char *s, size_t i) {
  if (!i) return 0;
  unsigned char c = (unsigned char)s[i - 1];
  if (c < 0x80) return (c == ' ' || (c >= 9 && c <= 13)) ? 1 : 0;
  if (i >= 2 && (unsigned char)s[i - 2] == 0xc2 && c == 0xa0) return 2;
  if (i >= 3 && jinja__ws_at(s, i - 3, i) == 3) return 3;
  return 0;
}

void jinja__where(const char *src, size_t len, uint32_t pos, char *out, size_t cap) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < len; i++) {
    if (src[i] == '\n') line++, col = 1;
    else if (((unsigned char)src[i] & 0xc0) != 0x80) col++;
  }
  snprintf(out, cap, "line %zu, column %zu", line, col);
}

/* ---- preprocessing ---------------------------------------------------------------------- */

typedef struct pp {
  char *s;
  uint32_t *map; /* original offset of each byte */
  size_t n;
} pp;

static int pp_new(pp *o, size_t cap) {
  o->s = malloc(cap + 1);
  o->map = malloc((cap + 1) * sizeof *o->map);
  o->n = 0;
  if (!o->s || !o->map) {
    free(o->s);
    free(o->map);
    return ERR_NOMEM;
  }
  return 0;
}

static void pp_free(pp *o) {
  free(o->s);
  free(o->map);
}

static void pp_copy(pp *o, const pp *in, size_t from, size_t to) {
  memcpy(o->s + o->n, in->s + from, to - from);
  memcpy(o->map + o->n, in->map + from, (to - from) * sizeof *o->map);
  o->n += to - from;
}

static int is_line_start(const pp *in, size_t i) {
  if (!i) return 1;
  char c = in->s[i - 1];
  if (c == '\n' || c == '\r') return 1;
  return i >= 3 && (unsigned char)in->s[i - 3] == 0xe2 && (unsigned char)in->s[i - 2] == 0x80 &&
         ((unsigned char)c == 0xa8 || (unsigned char)c == 0xa9);
}

static int lstrip_blocks(pp *in) {
  pp o;
  if (pp_new(&o, in->n)) return ERR_NOMEM;
  size_t i = 0;
  while (i < in->n) {
    if (is_line_start(in, i)) {
      size_t j = i;
      while (j < in->n && (in->s[j] == ' ' || in->s[j] == '\t')) j++;
      if (j + 1 < in->n && in->s[j] == '{' && (in->s[j + 1] == '#' || in->s[j + 1] == '%' || in->s[j + 1] == '-')) {
        pp_copy(&o, in, j, j + 2);
        i = j + 2;
        continue;
      }
    }
    pp_copy(&o, in, i, i + 1);
    i++;
  }
  pp_free(in);
  *in = o;
  return 0;
}

static int trim_blocks(pp *in) {
  pp o;
  if (pp_new(&o, in->n)) return ERR_NOMEM;
  size_t i = 0;
  while (i < in->n) {
    char c = in->s[i];
    if ((c == '#' || c == '%' || c == '-') && i + 2 < in->n && in->s[i + 1] == '}' && in->s[i + 2] == '\n') {
      pp_copy(&o, in, i, i + 2);
      i += 3;
      continue;
    }
    pp_copy(&o, in, i, i + 1);
    i++;
  }
  pp_free(in);
  *in = o;
  return 0;
}

static size_t skip_ws(const char *s, size_t i, size_t n) {
  size_t l;
  while (i < n && (l = jinja__ws_at(s, i, n))) i += l;
  return i;
}

/* {%(-?)\s*(?:end)?generation\s*(-?)%}(\s*) : the match length at i, 0 if none. */
static size_t gen_tag(const char *s, size_t i, size_t n, int *lstrip, int *rstrip, size_t *after) {
  if (i + 1 >= n || s[i] != '{' || s[i + 1] != '%') return 0;
  size_t j = i + 2;
  *lstrip = j < n && s[j] == '-';
  if (*lstrip) j++;
  j = skip_ws(s, j, n);
  if (j + 3 <= n && !memcmp(s + j, "end", 3) && j + 13 <= n && !memcmp(s + j + 3, "generation", 10)) j += 3;
  if (j + 10 > n || memcmp(s + j, "generation", 10)) return 0;
  j = skip_ws(s, j + 10, n);
  *rstrip = j < n && s[j] == '-';
  if (*rstrip) j++;
  if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return 0;
  j += 2;
  size_t k = skip_ws(s, j, n);
  *after = k - j;
  return k - i;
}

static int generation_tags(pp *in) {
  if (!memmem(in->s, in->n, "generation", 10)) return 0;
  pp o;
  if (pp_new(&o, in->n)) return ERR_NOMEM;
  size_t last = 0, i = 0;
  while (i < in->n) {
    int ls, rs;
    size_t after, m = gen_tag(in->s, i, in->n, &ls, &rs, &after);
    if (!m) {
      i++;
      continue;
    }
    size_t end = i, l;
    while (ls && end > last && (l = jinja__ws_before(in->s, end)) && end - l >= last) end -= l;
    pp_copy(&o, in, last, end);
    if (!rs) pp_copy(&o, in, i + m - after, i + m);
    last = i = i + m;
  }
  pp_copy(&o, in, last, in->n);
  pp_free(in);
  *in = o;
  return 0;
}

/* ---- tokens ----------------------------------------------------------------------------- */

typedef struct lexer {
  jinja__arena *a;
  const char *s; /* preprocessed (in the arena) */
  const uint32_t *map;
  size_t n, cur;
  jinja__tok *t;
  size_t nt, cap;
  const char *orig;
  size_t orig_len;
  char *err;
  size_t err_cap;
} lexer;

static int lex_fail(lexer *L, size_t at, int rc, const char *msg, const char *what) {
  char w[64];
  uint32_t pos = at < L->n ? L->map[at] : (uint32_t)L->orig_len;
  jinja__where(L->orig, L->orig_len, pos, w, sizeof w);
  return err_set(L->err, L->err_cap, rc, "%s: %s%s", w, msg, what ? what : "");
}

static int push(lexer *L, int type, const char *s, size_t len, size_t at) {
  if (L->nt + 1 >= L->cap) {
    if (L->cap >= JINJA_MAX_TOKENS) return lex_fail(L, at, ERR_TOOBIG, "too many tokens", NULL);
    size_t nc = L->cap ? L->cap * 2 : 256;
    jinja__tok *t = jinja__alloc(L->a, nc * sizeof *t);
    if (!t) return ERR_NOMEM;
    if (L->nt) memcpy(t, L->t, L->nt * sizeof *t);
    L->t = t;
    L->cap = nc;
  }
  L->t[L->nt++] = (jinja__tok){.type = type, .s = s, .len = len, .pos = at < L->n ? L->map[at] : (uint32_t)L->orig_len};
  return 0;
}

static void strip_trailing(lexer *L) {
  if (!L->nt || L->t[L->nt - 1].type != JT_TEXT) return;
  jinja__tok *k = &L->t[L->nt - 1];
  size_t l;
  while (k->len && (l = jinja__ws_before(k->s, k->len))) k->len -= l;
  if (!k->len) L->nt--;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

/* consumeWhile: throws when the input ends while the predicate still holds. */
static int consume_digits(lexer *L) {
  while (L->cur < L->n && is_digit(L->s[L->cur]))
    if (++L->cur >= L->n) return lex_fail(L, L->cur, ERR_FORMAT, "unexpected end of input", NULL);
  return 0;
}

static void put_utf8(char *o, size_t *k, unsigned cp) {
  if (cp < 0x80) o[(*k)++] = (char)cp;
  else if (cp < 0x800) o[(*k)++] = (char)(0xc0 | (cp >> 6)), o[(*k)++] = (char)(0x80 | (cp & 0x3f));
  else {
    o[(*k)++] = (char)(0xe0 | (cp >> 12));
    o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[(*k)++] = (char)(0x80 | (cp & 0x3f));
  }
}

static int lex_string(lexer *L, char quote) {
  size_t start = L->cur;
  char *o = jinja__alloc(L->a, L->n - start + 1);
  size_t k = 0;
  if (!o) return ERR_NOMEM;
  for (;;) {
    if (L->cur >= L->n) return lex_fail(L, start, ERR_FORMAT, "unterminated string", NULL);
    char c = L->s[L->cur];
    if (c == quote) break;
    L->cur++;
    if (c != '\\') {
      o[k++] = c;
      continue;
    }
    if (L->cur >= L->n) return lex_fail(L, start, ERR_FORMAT, "unterminated string", NULL);
    char e = L->s[L->cur++];
    if (e == 'x' || e == 'u') {
      size_t hl = e == 'x' ? 2 : 4;
      unsigned cp = 0;
      if (L->cur + hl > L->n) return lex_fail(L, L->cur, ERR_FORMAT, "bad hexadecimal escape", NULL);
      for (size_t i = 0; i < hl; i++) {
        char h = L->s[L->cur + i];
        int v = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
        if (v < 0) return lex_fail(L, L->cur, ERR_FORMAT, "bad hexadecimal escape", NULL);
        cp = cp * 16 + (unsigned)v;
      }
      L->cur += hl;
      put_utf8(o, &k, cp);
      continue;
    }
    static const char from[] = "ntrbfv'\"\\", to[] = "\n\t\r\b\f\v'\"\\";
    const char *p = e ? strchr(from, e) : NULL;
    if (!p) return lex_fail(L, L->cur - 1, ERR_FORMAT, "unknown escape in a string", NULL);
    o[k++] = to[p - from];
  }
  o[k] = 0;
  L->cur++; /* the closing quote */
  return push(L, JT_STR, o, k, start - 1);
}

typedef struct rule {
  const char *seq;
  int type;
} rule;

static const rule rules[] = {
    {"{%", JT_OPEN_STMT}, {"%}", JT_CLOSE_STMT}, {"{{", JT_OPEN_EXPR}, {"}}", JT_CLOSE_EXPR}, {"(", JT_LPAREN},
    {")", JT_RPAREN},     {"{", JT_LBRACE},      {"}", JT_RBRACE},     {"[", JT_LBRACKET},    {"]", JT_RBRACKET},
    {",", JT_COMMA},      {".", JT_DOT},         {":", JT_COLON},      {"|", JT_PIPE},        {"<=", JT_CMP},
    {">=", JT_CMP},       {"==", JT_CMP},        {"!=", JT_CMP},       {"<", JT_CMP},         {">", JT_CMP},
    {"+", JT_ADD},        {"-", JT_ADD},         {"~", JT_ADD},        {"**", JT_POW},        {"*", JT_MUL},
    {"//", JT_MUL},       {"/", JT_MUL},         {"%", JT_MUL},        {"=", JT_EQUALS},
};

static int lex_main(lexer *L) {
  int depth = 0, rc;
  while (L->cur < L->n) {
    int last = L->nt ? L->t[L->nt - 1].type : JT_EOF;
    const char *s = L->s;
    size_t n = L->n;
    if (!L->nt || last == JT_CLOSE_STMT || last == JT_CLOSE_EXPR || last == JT_COMMENT) {
      size_t end = L->cur;
      for (;;) {
        const char *b = memchr(s + end, '{', n - end);
        if (!b) {
          end = n;
          break;
        }
        end = (size_t)(b - s);
        char nx = end + 1 < n ? s[end + 1] : 0;
        if (nx == '%' || nx == '{' || nx == '#') break;
        end++;
      }
      if (end > L->cur) {
        if ((rc = push(L, JT_TEXT, s + L->cur, end - L->cur, L->cur))) return rc;
        L->cur = end;
        continue;
      }
    }
    if (s[L->cur] == '{') {
      char nx = L->cur + 1 < n ? s[L->cur + 1] : 0;
      if (nx == '#') {
        size_t at = L->cur;
        L->cur += 2;
        int before = L->cur < n && s[L->cur] == '-';
        if (before) L->cur++;
        const char *e = L->cur <= n ? memmem(s + L->cur, n - L->cur, "#}", 2) : NULL;
        if (!e) return lex_fail(L, at, ERR_FORMAT, "comment not closed (missing #})", NULL);
        size_t end = (size_t)(e - s);
        int after = end > L->cur && s[end - 1] == '-';
        if (before) strip_trailing(L);
        if ((rc = push(L, JT_COMMENT, s + L->cur, end - L->cur, at))) return rc;
        L->cur = end + 2;
        if (after) L->cur = skip_ws(s, L->cur, n);
        continue;
      }
      if (L->cur + 2 < n && s[L->cur + 2] == '-' && (nx == '%' || nx == '{')) {
        strip_trailing(L);
        if ((rc = push(L, nx == '%' ? JT_OPEN_STMT : JT_OPEN_EXPR, s + L->cur, 2, L->cur))) return rc;
        if (nx == '{') depth = 0;
        L->cur += 3;
        continue;
      }
    }
    size_t l;
    while (L->cur < n && (l = jinja__ws_at(s, L->cur, n)))
      if ((L->cur += l) >= n) return lex_fail(L, L->cur, ERR_FORMAT, "unexpected end of input inside a tag", NULL);
    char c = s[L->cur];
    if (c == '-' && L->cur + 2 < n && s[L->cur + 2] == '}' && (s[L->cur + 1] == '%' || s[L->cur + 1] == '}')) {
      if ((rc = push(L, s[L->cur + 1] == '%' ? JT_CLOSE_STMT : JT_CLOSE_EXPR, s + L->cur + 1, 2, L->cur))) return rc;
      L->cur = skip_ws(s, L->cur + 3, n);
      continue;
    }
    if (c == '-' || c == '+') {
      if (last == JT_TEXT || last == JT_EOF) return lex_fail(L, L->cur, ERR_FORMAT, "unexpected character ", c == '-' ? "'-'" : "'+'");
      if (last != JT_NAME && last != JT_NUM && last != JT_STR && last != JT_RPAREN && last != JT_RBRACKET) {
        size_t at = L->cur++;
        if ((rc = consume_digits(L))) return rc;
        int has = L->cur > at + 1;
        if (has && L->cur + 1 < n && s[L->cur] == '.' && is_digit(s[L->cur + 1])) {
          L->cur++;
          if ((rc = consume_digits(L))) return rc;
        }
        if ((rc = push(L, has ? JT_NUM : JT_UNARY, s + at, L->cur - at, at))) return rc;
        continue;
      }
    }
    int matched = 0;
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
      size_t sl = strlen(rules[i].seq);
      if (rules[i].seq[0] != c) continue;
      if (rules[i].type == JT_CLOSE_EXPR && depth > 0) continue;
      if (L->cur + sl > n || memcmp(s + L->cur, rules[i].seq, sl)) continue;
      if ((rc = push(L, rules[i].type, s + L->cur, sl, L->cur))) return rc;
      if (rules[i].type == JT_OPEN_EXPR) depth = 0;
      else if (rules[i].type == JT_LBRACE) depth++;
      else if (rules[i].type == JT_RBRACE) depth--;
      L->cur += sl;
      matched = 1;
      break;
    }
    if (matched) continue;
    if (c == '\'' || c == '"') {
      L->cur++;
      if ((rc = lex_string(L, c))) return rc;
      continue;
    }
    if (is_digit(c)) {
      size_t at = L->cur;
      if ((rc = consume_digits(L))) return rc;
      if (last != JT_DOT && L->cur + 1 < n && s[L->cur] == '.' && is_digit(s[L->cur + 1])) {
        L->cur++;
        if ((rc = consume_digits(L))) return rc;
      }
      if ((rc = push(L, JT_NUM, s + at, L->cur - at, at))) return rc;
      continue;
    }
    if (is_word(c)) {
      size_t at = L->cur;
      while (L->cur < n && is_word(s[L->cur]))
        if (++L->cur >= n) return lex_fail(L, L->cur, ERR_FORMAT, "unexpected end of input inside a tag", NULL);
      if ((rc = push(L, JT_NAME, s + at, L->cur - at, at))) return rc;
      continue;
    }
    char what[8];
    snprintf(what, sizeof what, "'%c'", c);
    return lex_fail(L, L->cur, ERR_FORMAT, "unexpected character ", what);
  }
  return push(L, JT_EOF, "", 0, L->n);
}

int jinja__lex(jinja__arena *a, const char *src, size_t len, jinja__tok **toks_out, size_t *n_out, char *err,
               size_t err_cap) {
  pp p;
  int rc;
  if (pp_new(&p, len)) return ERR_NOMEM;
  memcpy(p.s, src, len);
  for (size_t i = 0; i < len; i++) p.map[i] = (uint32_t)i;
  p.n = len;
  if (p.n && p.s[p.n - 1] == '\n') p.n--;
  if ((rc = lstrip_blocks(&p)) || (rc = trim_blocks(&p)) || (rc = generation_tags(&p))) {
    pp_free(&p);
    return rc;
  }
  lexer L = {.a = a, .n = p.n, .orig = src, .orig_len = len, .err = err, .err_cap = err_cap};
  char *s = jinja__alloc(a, p.n + 1);
  uint32_t *map = jinja__alloc(a, (p.n + 1) * sizeof *map);
  if (!s || !map) {
    pp_free(&p);
    return ERR_NOMEM;
  }
  memcpy(s, p.s, p.n);
  memcpy(map, p.map, p.n * sizeof *map);
  pp_free(&p);
  L.s = s;
  L.map = map;
  if ((rc = lex_main(&L))) return rc;
  *toks_out = L.t;
  *n_out = L.nt;
  return 0;
}
