/* llm/grammar: GBNF parsing (errors with line:col, caps), matching (literals, classes,
 * repetition bounds, UTF-8 split across tokens), can_end/must_end, and masks compared with
 * a brute-force check (a second matcher replays the text, then tries each token's bytes)
 * on a hand-made vocabulary and on stories15M's real 32k vocabulary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/gguf.h"
#include "llm/grammar.h"

static const char json_gbnf[] =
    "# JSON, whitespace bounded\n"
    "root   ::= value\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\") ws\n"
    "object ::= \"{\" ws ( string \":\" ws value ( \",\" ws string \":\" ws value )* )? \"}\" ws\n"
    "array  ::= \"[\" ws ( value ( \",\" ws value )* )? \"]\" ws\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} ) )* \"\\\"\" ws\n"
    "number ::= \"-\"? ( \"0\" | [1-9] [0-9]* ) ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )? ws\n"
    "ws     ::= [ \\t\\n]{0,20}\n";

static grammar *parse_ok(const char *text) {
  grammar *g = NULL;
  char err[256] = "";
  int rc = grammar_parse(text, strlen(text), NULL, &g, err, sizeof err);
  if (rc) fprintf(stderr, "parse failed: %s\n", err);
  assert_int_equal(rc, 0);
  return g;
}

static void parse_err(const char *text, int want_rc, const char *want) {
  grammar *g = NULL;
  char err[256] = "";
  int rc = grammar_parse(text, strlen(text), NULL, &g, err, sizeof err);
  if (rc != want_rc || !strstr(err, want)) fprintf(stderr, "for %s: rc %d err '%s' (want '%s')\n", text, rc, err, want);
  assert_int_equal(rc, want_rc);
  assert_non_null(strstr(err, want));
  assert_null(g);
}

static grammar_vocab *tiny_vocab(void) {
  const char *p[] = {"a"};
  size_t l[] = {1};
  grammar_vocab *v;
  assert_int_equal(grammar_vocab_new(1, p, l, NULL, NULL, &v), 0);
  return v;
}

/* 1: the whole text is a sentence; 0: a prefix only; -1: rejected. */
static int match(const grammar *g, const char *text, size_t len) {
  grammar_vocab *v = tiny_vocab();
  grammar_matcher *m;
  assert_int_equal(grammar_matcher_new(g, v, &m), 0);
  int rc = grammar_matcher_accept_bytes(m, text, len);
  int r = rc ? -1 : grammar_matcher_can_end(m);
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  return r;
}
#define M(g, s) match(g, s, strlen(s))

static void test_parse_errors(void **state) {
  (void)state;
  parse_err("root ::= foo", ERR_FORMAT, "1:10: unknown rule 'foo'");
  parse_err("root ::= \"a\"\nx ::= \"b\" )", ERR_FORMAT, "2:11:");
  parse_err("root ::= \"abc", ERR_FORMAT, "1:10: unterminated string");
  parse_err("root ::= [a-", ERR_FORMAT, "unterminated character class");
  parse_err("root ::= [z-a]", ERR_FORMAT, "range end below");
  parse_err("root ::= \"\\q\"", ERR_FORMAT, "unknown escape");
  parse_err("root ::= \"\\x4\"", ERR_FORMAT, "hex digits");
  parse_err("root ::= root \"a\" | \"b\"", ERR_FORMAT, "left recursion");
  parse_err("root ::= x\nx ::= y? \"a\"\ny ::= x", ERR_FORMAT, "left recursion");
  parse_err("root ::= (\"a\"?)*", ERR_FORMAT, "left recursion");
  parse_err("root ::= \"a\"{3,2}", ERR_FORMAT, "max < min");
  parse_err("root ::= \"a\"{10001}", ERR_TOOBIG, "repetition count");
  parse_err("main ::= \"a\"", ERR_FORMAT, "no rule named 'root'");
  parse_err("root ::= \"a\"\nroot ::= \"b\"", ERR_FORMAT, "2:1: rule 'root' defined twice");
  parse_err("root ::= \"\xff\"", ERR_FORMAT, "invalid UTF-8");
  parse_err("root ::= \"a\" ::=", ERR_FORMAT, "unexpected");
  /* nesting cap */
  char deep[2 * GRAMMAR_MAX_NESTING + 64];
  int n = snprintf(deep, sizeof deep, "root ::= ");
  for (int i = 0; i < GRAMMAR_MAX_NESTING + 1; i++) deep[n++] = '(';
  deep[n++] = '"', deep[n++] = 'a', deep[n++] = '"';
  for (int i = 0; i < GRAMMAR_MAX_NESTING + 1; i++) deep[n++] = ')';
  deep[n] = 0;
  parse_err(deep, ERR_TOOBIG, "nested");
  /* text cap */
  grammar *g = NULL;
  char err[128];
  assert_int_equal(grammar_parse("x", (size_t)GRAMMAR_MAX_TEXT + 1, NULL, &g, err, sizeof err), ERR_TOOBIG);
  /* a named root */
  assert_int_equal(grammar_parse("a ::= \"x\"\nb ::= a a", 19, "b", &g, err, sizeof err), 0);
  assert_int_equal(M(g, "xx"), 1);
  grammar_free(g);
}

static void test_match_basics(void **state) {
  (void)state;
  grammar *g = parse_ok("root ::= \"ab\" [c-e]+ x? # comment\nx ::= \"!\" | \"?\"\n");
  assert_int_equal(M(g, "abc"), 1);
  assert_int_equal(M(g, "abdde!"), 1);
  assert_int_equal(M(g, "ab"), 0);
  assert_int_equal(M(g, "abf"), -1);
  assert_int_equal(M(g, "abc!!"), -1);
  grammar_free(g);

  g = parse_ok("root ::= \"a\"{2,4} \"b\"{2} \"c\"{1,}");
  assert_int_equal(M(g, "abbc"), -1);
  assert_int_equal(M(g, "aabbc"), 1);
  assert_int_equal(M(g, "aaaabbccc"), 1);
  assert_int_equal(M(g, "aaaaabbc"), -1);
  assert_int_equal(M(g, "aabbb"), -1);
  assert_int_equal(M(g, "aabb"), 0);
  grammar_free(g);

  g = parse_ok("root ::= [^a-c\\n] \"\\x41\\u00e9\\U0001F600\" . \"\\\"\\\\\"");
  assert_int_equal(M(g, "dAé😀\n\"\\"), 1);
  assert_int_equal(M(g, "bAé😀x\"\\"), -1);
  assert_int_equal(M(g, "\nAé😀x\"\\"), -1);
  assert_int_equal(M(g, "ÿAé😀😀\"\\"), 1);
  grammar_free(g);

  /* empty alternatives, "" literal, rules across lines */
  g = parse_ok("root ::= \"\" | \"x\"\n  \"y\"\n  | z\nz ::= \"z\"");
  assert_int_equal(M(g, ""), 1);
  assert_int_equal(M(g, "xy"), 1);
  assert_int_equal(M(g, "z"), 1);
  assert_int_equal(M(g, "x"), 0);
  grammar_free(g);
}

static void test_end_and_utf8(void **state) {
  (void)state;
  grammar *g = parse_ok("root ::= \"é\" [α-ω]* \"!\"");
  const char *p[] = {"\xc3", "\xa9", "\xce", "\xb1", "!", "\xc3\xa9\xce", "x", ""};
  size_t l[] = {1, 1, 1, 1, 1, 3, 1, 0};
  uint8_t eog[] = {0, 0, 0, 0, 0, 0, 0, 1};
  grammar_vocab *v;
  assert_int_equal(grammar_vocab_new(8, p, l, eog, NULL, &v), 0);
  grammar_matcher *m;
  assert_int_equal(grammar_matcher_new(g, v, &m), 0);
  uint32_t mask[1];
  assert_int_equal(grammar_matcher_mask(m, mask), 2); /* "\xc3" and "\xc3\xa9\xce" */
  assert_int_equal(mask[0], (1u << 0) | (1u << 5));
  assert_int_equal(grammar_matcher_accept(m, 0), 0);
  assert_int_equal(grammar_matcher_allows(m, 1), 1);
  assert_int_equal(grammar_matcher_allows(m, 3), 0);
  assert_int_equal(grammar_matcher_accept(m, 3), ERR_INVAL);
  assert_int_equal(grammar_matcher_accept(m, 1), 0);
  assert_int_equal(grammar_matcher_mask(m, mask), 2); /* "\xce" (α..ω lead) and "!" */
  assert_int_equal(grammar_matcher_accept(m, 2), 0);
  assert_int_equal(grammar_matcher_can_end(m), 0);
  assert_int_equal(grammar_matcher_mask(m, mask), 1);
  assert_int_equal(mask[0], 1u << 3);
  assert_int_equal(grammar_matcher_accept(m, 3), 0);
  assert_int_equal(grammar_matcher_accept(m, 7), ERR_INVAL); /* eog before the end */
  assert_int_equal(grammar_matcher_accept(m, 4), 0);
  assert_int_equal(grammar_matcher_can_end(m), 1);
  assert_int_equal(grammar_matcher_must_end(m), 1);
  assert_int_equal(grammar_matcher_mask(m, mask), 1);
  assert_int_equal(mask[0], 1u << 7); /* only eog */
  assert_int_equal(grammar_matcher_accept(m, 7), 0);
  grammar_matcher_reset(m);
  assert_int_equal(grammar_matcher_accept_bytes(m, "\xc3\x28", 2), ERR_INVAL); /* malformed */
  assert_int_equal(grammar_matcher_accept_bytes(m, "\xc3", 1), 0);
  assert_int_equal(grammar_matcher_accept_bytes(m, "\xa8", 1), ERR_INVAL); /* è, not é */
  assert_int_equal(grammar_matcher_accept_bytes(m, "\xa9\xce\xb1\xce\xb2!", 6), 0);
  assert_int_equal(grammar_matcher_must_end(m), 1);
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  grammar_free(g);
  /* overlong and surrogate encodings never match, even under "." */
  g = parse_ok("root ::= .*");
  assert_int_equal(match(g, "\xc0\x80", 2), -1);
  assert_int_equal(match(g, "\xed\xa0\x80", 3), -1);
  assert_int_equal(match(g, "\xf4\x90\x80\x80", 4), -1);
  assert_int_equal(match(g, "\xf0\x9f\x98", 3), 0);
  grammar_free(g);
}

/* Brute force: a fresh matcher replays text, then tries the token's bytes. */
static void check_mask(const grammar *g, const grammar_vocab *v, int32_t n, const char *const *pieces,
                       const size_t *lens, const uint8_t *eog, const uint8_t *special, grammar_matcher *m,
                       const char *text, size_t tlen) {
  size_t words = ((size_t)n + 31) / 32;
  uint32_t *mask = calloc(words, sizeof *mask);
  int count = grammar_matcher_mask(m, mask);
  assert_true(count >= 0);
  grammar_matcher *b;
  assert_int_equal(grammar_matcher_new(g, v, &b), 0);
  assert_int_equal(grammar_matcher_accept_bytes(b, text, tlen), 0);
  int can_end = grammar_matcher_can_end(b), want_count = 0;
  for (int32_t i = 0; i < n; i++) {
    int want;
    if (eog && eog[i]) want = can_end;
    else if ((special && special[i]) || !lens[i]) want = 0;
    else {
      want = grammar_matcher_accept_bytes(b, pieces[i], lens[i]) == 0;
      if (want) { /* back to the state */
        grammar_matcher_reset(b);
        assert_int_equal(grammar_matcher_accept_bytes(b, text, tlen), 0);
      }
    }
    int got = (mask[i >> 5] >> (i & 31)) & 1;
    if (got != want)
      fprintf(stderr, "after '%.*s': token %d '%.*s' mask %d brute %d\n", (int)tlen, text, i, (int)lens[i],
              pieces[i] ? pieces[i] : "", got, want);
    assert_int_equal(got, want);
    assert_int_equal(grammar_matcher_allows(m, i), want);
    want_count += want;
  }
  assert_int_equal(count, want_count);
  grammar_matcher_free(b);
  free(mask);
}

static void test_mask_small_vocab(void **state) {
  (void)state;
  const char *p[] = {"{",  "}",   "\"", "a",     "ab",   "\"a",  "\":",    ",",  " ",       "  ",     "\n",  "1",
                     "12", "-",   ".",  "e",     "true", "tr",   "null",   "\xc3", "\xa9", "\xc3\xa9", "\"}", "\\",
                     "\\n", "\\u00", "x\"", "\xf0\x9f", "\x98\x80", "\x80", "",  "<s>",  "\":\"",   "0",  "01",    "[",  "]",
                     "\t\t", "ab\"", "\"\"", "1e", "e+5", "\x01", "},", "{\""};
  int32_t n = (int32_t)(sizeof p / sizeof *p);
  size_t l[64];
  uint8_t eog[64] = {0}, special[64] = {0};
  for (int32_t i = 0; i < n; i++) l[i] = strlen(p[i]);
  eog[30] = 1;     /* "" */
  special[31] = 1; /* "<s>" */
  grammar *g = parse_ok(json_gbnf);
  grammar_vocab *v;
  assert_int_equal(grammar_vocab_new(n, p, l, eog, special, &v), 0);
  grammar_matcher *m;
  assert_int_equal(grammar_matcher_new(g, v, &m), 0);
  const char *text = "{\"ab\xc3\xa9\xf0\x9f\x98\x80\\n\\u00e9\": [1, -12.5e+5, true, null, \"x\"],\n\t\"\": {}}";
  size_t len = strlen(text);
  for (int pass = 0; pass < 2; pass++) { /* the second pass meets every state again: masks from the cache */
    grammar_matcher_reset(m);
    for (size_t i = 0; i <= len; i++) {
      check_mask(g, v, n, p, l, eog, special, m, text, i);
      if (i < len) assert_int_equal(grammar_matcher_accept_bytes(m, text + i, 1), 0);
    }
  }
  assert_int_equal(grammar_matcher_can_end(m), 1);
  assert_int_equal(grammar_matcher_must_end(m), 0); /* trailing whitespace may follow */
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  grammar_free(g);
}

static void test_mask_stories15m(void **state) {
  (void)state;
  char path[1024];
  if (tu_shared_path(path, sizeof path, "models/stories15M-Q8_0.gguf")) {
    skip();
    return;
  }
  gguf_file *f;
  char err[256];
  if (gguf_open(path, &f, err, sizeof err)) {
    fprintf(stderr, "skip: %s\n", err);
    skip();
    return;
  }
  tok *t;
  assert_int_equal(tok_new_from_gguf(f, &t, err, sizeof err), 0);
  gguf_close(f);
  int32_t n = tok_n_vocab(t);
  char **pieces = calloc((size_t)n, sizeof *pieces);
  size_t *lens = calloc((size_t)n, sizeof *lens);
  uint8_t *eog = calloc((size_t)n, 1), *special = calloc((size_t)n, 1);
  char buf[1024];
  for (int32_t i = 0; i < n; i++) {
    int k = tok_piece(t, i, 0, buf, sizeof buf);
    assert_true(k >= 0 && k < (int)sizeof buf);
    pieces[i] = malloc((size_t)k + 1);
    memcpy(pieces[i], buf, (size_t)k);
    lens[i] = (size_t)k;
    eog[i] = tok_is_eog(t, i) != 0;
    special[i] = (tok_attr(t, i) & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_UNUSED)) != 0;
  }
  grammar_vocab *v;
  assert_int_equal(grammar_vocab_from_tok(t, &v), 0);
  grammar *g = parse_ok(json_gbnf);
  grammar_matcher *m;
  assert_int_equal(grammar_matcher_new(g, v, &m), 0);
  const char *text = "{\"name\": \"Tom \xc3\xa9t\xc3\xa9\", \"age\": 3, \"tags\": [\"a\", 1.5]}";
  size_t len = strlen(text);
  const size_t at[] = {0, 1, 3, 9, 13, 16, 28, 40, 47, 50, len};
  size_t done = 0;
  for (size_t k = 0; k < sizeof at / sizeof *at; k++) {
    assert_int_equal(grammar_matcher_accept_bytes(m, text + done, at[k] - done), 0);
    done = at[k];
    check_mask(g, v, n, (const char *const *)pieces, lens, eog, special, m, text, done);
  }
  grammar_matcher_free(m);
  grammar_free(g);
  grammar_vocab_free(v);
  for (int32_t i = 0; i < n; i++) free(pieces[i]);
  free(pieces);
  free(lens);
  free(eog);
  free(special);
  tok_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_errors),     cmocka_unit_test(test_match_basics),
      cmocka_unit_test(test_end_and_utf8),     cmocka_unit_test(test_mask_small_vocab),
      cmocka_unit_test(test_mask_stories15m),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
