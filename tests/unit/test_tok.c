/* Tokenizer: every tokenize[] entry of the four llama.cpp reference files (ids with BOS and
 * special parsing, and without special parsing) must match exactly; the greedy
 * continuations decoded through the stream detokenizer must equal generated_text. Then a
 * small hand-made vocabulary checks merge order, byte fallback, special and user-defined
 * token splitting, pieces, the UTF-8 stream and load errors; a small byte-level BPE one
 * does the same for BPE (merge ranks, pre-tokenizer, malformed merges and pre). The real
 * BPE vocabularies are checked against independent implementations in test_tok_bpe_ref.c. */
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
#include "llm/tok.h"

/* ---- reference files ------------------------------------------------------------------------ */

static tok *load_tok(const char *rel) {
  char path[1024], err[512];
  assert_int_equal(tu_shared_path(path, sizeof path, rel), 0);
  gguf_file *f;
  if (gguf_open(path, &f, err, sizeof err)) fail_msg("%s: %s", rel, err);
  tok *t;
  int rc = tok_new_from_gguf(f, &t, err, sizeof err);
  gguf_close(f); /* the tokenizer keeps its own copies */
  if (rc) fail_msg("%s: %s", rel, err);
  return t;
}

static void check_ids(const tok *t, const char *text, int parse_special, json_t *want, const char *what) {
  int32_t ids[1024];
  int n = tok_encode(t, text, strlen(text), tok_add_bos(t), parse_special, ids, 1024);
  assert_true(n >= 0 && n <= 1024);
  int ok = (size_t)n == json_array_size(want);
  for (int i = 0; ok && i < n; i++) ok = ids[i] == json_integer_value(json_array_get(want, (size_t)i));
  if (ok) return;
  char got[4096] = "";
  for (int i = 0; i < n && strlen(got) < 4000; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", ids[i]);
  char *w = json_dumps(want, JSON_COMPACT);
  fail_msg("%s: '%s'\n got  %s\n want %s", what, text, got, w);
}

/* Decodes ids through the stream detokenizer, flushing at the end. */
static void stream_decode(const tok *t, json_t *ids, char *out, size_t cap) {
  tok_stream s;
  tok_stream_init(&s);
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(ids); i++) {
    int r = tok_stream_feed(t, &s, (int32_t)json_integer_value(json_array_get(ids, i)), out + n, cap - n - 1);
    assert_true(r >= 0);
    n += (size_t)r;
  }
  int r = tok_stream_flush(&s, out + n, cap - n - 1);
  assert_true(r >= 0);
  out[n + (size_t)r] = 0;
}

static void check_reference(const char *model, const char *ref, int32_t n_vocab) {
  TU_REQUIRE_SHARED();
  tok *t = load_tok(model);
  assert_int_equal(tok_n_vocab(t), n_vocab);
  assert_int_equal(tok_bos(t), 1);
  assert_int_equal(tok_eos(t), 2);
  assert_int_equal(tok_add_bos(t), 1);
  assert_true(tok_is_eog(t, 2));
  assert_false(tok_is_eog(t, 1));
  char path[1024];
  assert_int_equal(tu_shared_path(path, sizeof path, ref), 0);
  json_t *j = tu_load_json(path), *e;
  size_t i;
  json_t *list = json_object_get(j, "tokenize");
  assert_int_equal(json_array_size(list), 6);
  json_array_foreach(list, i, e) {
    const char *text = json_string_value(json_object_get(e, "text"));
    check_ids(t, text, 1, json_object_get(e, "ids"), "ids");
    check_ids(t, text, 0, json_object_get(e, "ids_no_parse_special"), "ids_no_parse_special");
  }
  json_array_foreach(json_object_get(j, "greedy"), i, e) {
    char text[8192];
    stream_decode(t, json_object_get(e, "greedy_ids"), text, sizeof text);
    assert_string_equal(text, json_string_value(json_object_get(e, "generated_text")));
    /* The prompt ids (BOS, no special parsing) come from the same tokenizer. */
    const char *prompt = json_string_value(json_object_get(e, "prompt"));
    check_ids(t, prompt, 0, json_object_get(e, "prompt_ids"), "prompt_ids");
  }
  json_decref(j);
  tok_free(t);
}

static void test_ref_tiny_f32(void **state) {
  (void)state;
  check_reference("testdata/tiny-spm4k-F32.gguf", "testdata/tiny-spm4k-F32.ref.json", 4096);
}
static void test_ref_tiny_q8_0(void **state) {
  (void)state;
  check_reference("testdata/tiny-spm4k-Q8_0.gguf", "testdata/tiny-spm4k-Q8_0.ref.json", 4096);
}
static void test_ref_stories_f32(void **state) {
  (void)state;
  check_reference("models/stories15M-F32.gguf", "models/stories15M-F32.ref.json", 32000);
}
static void test_ref_stories_q8_0(void **state) {
  (void)state;
  check_reference("models/stories15M-Q8_0.gguf", "models/stories15M-Q8_0.ref.json", 32000);
}

/* Facts of the 32000-piece Llama vocabulary: pieces, specials in text, buffer sizing. */
static void test_llama_vocab(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  tok *t = load_tok("models/stories15M-Q8_0.gguf");
  char p[64];
  assert_int_equal(tok_piece(t, 1, 0, p, sizeof p), 0);           /* <s> hidden */
  assert_int_equal(tok_piece(t, 1, 1, p, sizeof p), 3);           /* rendered */
  assert_memory_equal(p, "<s>", 3);
  assert_int_equal(tok_piece(t, 15043, 0, p, sizeof p), 6);       /* ▁Hello */
  assert_memory_equal(p, " Hello", 6);
  assert_int_equal(tok_piece(t, 3 + 0x41, 0, p, sizeof p), 1);    /* <0x41> */
  assert_int_equal(p[0], 'A');
  assert_int_equal(tok_piece(t, 15043, 0, p, 2), 6);              /* length even when cut */
  assert_int_equal(tok_piece(t, 32000, 0, p, sizeof p), ERR_RANGE);
  assert_int_equal(tok_piece(t, -1, 0, p, sizeof p), ERR_RANGE);
  /* Special text: parsed into ids 1/2 (with the space prefix after them), or plain text. */
  int32_t ids[64];
  const char *s = "<s>Hello</s>";
  int n = tok_encode(t, s, strlen(s), 0, 1, ids, 64);
  assert_int_equal(n, 3);
  assert_int_equal(ids[0], 1);
  assert_int_equal(ids[1], 15043);
  assert_int_equal(ids[2], 2);
  n = tok_encode(t, s, strlen(s), 0, 0, ids, 64);
  assert_true(n > 3);
  for (int i = 0; i < n; i++) assert_true(ids[i] > 2);
  /* Buffer too small: the count still comes back, the first cap ids are written. */
  int full = tok_encode(t, "Hello world", 11, 1, 1, ids, 64);
  assert_int_equal(full, 3);
  assert_int_equal(tok_encode(t, "Hello world", 11, 1, 1, ids, 1), 3);
  assert_int_equal(ids[0], 1);
  assert_int_equal(tok_encode(t, "Hello world", 11, 1, 1, NULL, 0), 3);
  assert_int_equal(tok_encode(t, "", 0, 1, 1, ids, 64), 1);
  assert_int_equal(tok_encode(t, "", 0, 0, 1, ids, 64), 0);
  /* at_start drops the prefix space of the first piece. */
  tok_stream st;
  tok_stream_init(&st);
  st.at_start = 1;
  assert_int_equal(tok_stream_feed(t, &st, 15043, p, sizeof p), 5);
  assert_memory_equal(p, "Hello", 5);
  assert_int_equal(tok_stream_feed(t, &st, 15043, p, sizeof p), 6);
  tok_free(t);
}

/* ---- a hand-made vocabulary ------------------------------------------------------------------ */

static const char *const mini_tokens[] = {
    "<unk>", "<s>", "</s>", "<0x0A>", "\xe2\x96\x81", "a", "b", "c", "ab", "bc", "abc", "\342\226\201ab",
    "<user>", "<0xC3>", "<0xA9>", "<0xE2>", "<0x82>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "<|eot_id|>",
    "ab"};
static const int32_t mini_types[] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1, 1, 4, 6, 6, 6, 6, 6, 6, 6, 6, 3, 1};
static const float mini_scores[] = {0, 0, 0, 0, -10, -11, -12, -13, -1, -0.5f, -3, -2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1};
#define MINI_N ((int)(sizeof mini_tokens / sizeof *mini_tokens))
enum { ID_UNK, ID_BOS, ID_EOS, ID_NL, ID_MARK, ID_A, ID_B, ID_C, ID_AB, ID_BC, ID_ABC, ID_MAB, ID_USER, ID_C3,
       ID_A9, ID_E2, ID_82, ID_F0, ID_9F, ID_98, ID_80, ID_EOT, ID_AB2 };

/* Writes a GGUF with the mini vocabulary (model name and extra tweaks by the caller). */
static tok *mini(const char *model, int scores_n, int add_bos, char *err, size_t err_cap, int *rc_out) {
  char dir[256], path[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/v.gguf", dir);
  gguf_writer *w = gguf_writer_new();
  gguf_str items[MINI_N];
  for (int i = 0; i < MINI_N; i++) items[i] = (gguf_str){mini_tokens[i], strlen(mini_tokens[i])};
  if (model) assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", model, strlen(model)), 0);
  assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", items, MINI_N), 0);
  assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, mini_scores, (uint64_t)scores_n), 0);
  assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, mini_types, MINI_N), 0);
  assert_int_equal(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos), 0);
  assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0xffffffffu), 0);
  assert_int_equal(gguf_writer_write(w, path), 0);
  gguf_writer_free(w);
  gguf_file *f;
  assert_int_equal(gguf_open(path, &f, err, err_cap), 0);
  tok *t = NULL;
  *rc_out = tok_new_from_gguf(f, &t, err, err_cap);
  gguf_close(f);
  tu_rm_rf(dir);
  return t;
}

static tok *mini_ok(void) {
  char err[256];
  int rc;
  tok *t = mini("llama", MINI_N, 0, err, sizeof err, &rc);
  if (rc) fail_msg("mini vocab: %s", err);
  return t;
}

#define EXPECT_IDS(t, text, parse_special, ...)                                                  \
  do {                                                                                          \
    const int32_t want_[] = {__VA_ARGS__};                                                      \
    int32_t got_[64];                                                                           \
    int n_ = tok_encode(t, text, sizeof text - 1, 0, parse_special, got_, 64);                  \
    assert_int_equal(n_, sizeof want_ / sizeof *want_);                                         \
    assert_memory_equal(got_, want_, sizeof want_);                                             \
  } while (0)

static void test_mini_merges(void **state) {
  (void)state;
  tok *t = mini_ok();
  assert_int_equal(tok_add_bos(t), 0);
  assert_true(tok_is_eog(t, ID_EOS) && tok_is_eog(t, ID_EOT) && !tok_is_eog(t, ID_BOS));
  /* "▁abc": bc (-0.5) beats ab (-1); then a+bc = abc. The duplicate "ab" resolves to the
   * later id (as llama.cpp's map does). */
  EXPECT_IDS(t, "abc", 1, ID_MARK, ID_ABC);
  EXPECT_IDS(t, "ab", 1, ID_MAB);
  EXPECT_IDS(t, "ab ab", 1, ID_MAB, ID_MAB);
  EXPECT_IDS(t, "cab", 1, ID_MARK, ID_C, ID_AB2);
  /* Byte fallback: missing characters become <0xNN> tokens, or unk without one. */
  EXPECT_IDS(t, "\n", 1, ID_MARK, ID_NL);
  EXPECT_IDS(t, "\xc3\xa9", 1, ID_MARK, ID_C3, ID_A9);
  EXPECT_IDS(t, "z", 1, ID_MARK, ID_UNK);
  EXPECT_IDS(t, "\xc3", 1, ID_MARK, ID_C3); /* truncated character */
  /* Specials: control tokens only with parse_special; user-defined always; a space prefix
   * after each special token. */
  EXPECT_IDS(t, "a</s>a", 1, ID_MARK, ID_A, ID_EOS, ID_MARK, ID_A);
  EXPECT_IDS(t, "a<user>a", 0, ID_MARK, ID_A, ID_USER, ID_MARK, ID_A);
  EXPECT_IDS(t, "<s><s>", 1, ID_BOS, ID_BOS);
  int32_t ids[64];
  int n = tok_encode(t, "a</s>", 5, 0, 0, ids, 64);
  for (int i = 0; i < n; i++) assert_true(ids[i] != ID_EOS);
  assert_int_equal(tok_encode(t, "a", 1, 1, 0, ids, 64), 3); /* explicit BOS */
  assert_int_equal(ids[0], ID_BOS);
  size_t len;
  assert_memory_equal(tok_text(t, ID_USER, &len), "<user>", 6);
  assert_null(tok_text(t, MINI_N, &len));
  assert_int_equal(tok_attr(t, ID_EOT), TOK_ATTR_CONTROL);
  assert_int_equal(tok_attr(t, -5), 0);
  assert_string_equal(tok_model(t), "llama");
  tok_free(t);
}

/* Feeds ids; returns the concatenated output. */
static size_t feed(const tok *t, tok_stream *s, const int32_t *ids, size_t n, char *out) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int r = tok_stream_feed(t, s, ids[i], out + k, 64);
    assert_true(r >= 0);
    k += (size_t)r;
  }
  return k;
}

static void test_mini_stream(void **state) {
  (void)state;
  tok *t = mini_ok();
  tok_stream s;
  char out[256];
  tok_stream_init(&s);
  /* A 4-byte character split over four tokens comes out whole at the end. */
  int32_t emoji[] = {ID_F0, ID_9F, ID_98, ID_80};
  assert_int_equal(tok_stream_feed(t, &s, ID_F0, out, 64), 0);
  assert_int_equal(tok_stream_feed(t, &s, ID_9F, out, 64), 0);
  assert_int_equal(tok_stream_feed(t, &s, ID_98, out, 64), 0);
  assert_int_equal(tok_stream_feed(t, &s, ID_80, out, 64), 4);
  assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
  /* Invalid: a prefix cut by a non-continuation gives one U+FFFD, then the byte. */
  int32_t bad1[] = {ID_E2, ID_82, ID_A};
  assert_int_equal(feed(t, &s, bad1, 3, out), 4);
  assert_memory_equal(out, "\357\277\275a", 4);
  /* A stray continuation byte and a bad second byte (F0 80) are each their own U+FFFD. */
  int32_t bad2[] = {ID_80, ID_F0, ID_80, ID_MAB};
  assert_int_equal(feed(t, &s, bad2, 4, out), 9 + 3);
  assert_memory_equal(out, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd ab", 12);
  /* Control tokens print nothing; user-defined ones print their text. */
  int32_t ctl[] = {ID_BOS, ID_EOS, ID_USER};
  assert_int_equal(feed(t, &s, ctl, 3, out), 6);
  /* Leftover bytes at the end: flushed as one U+FFFD. */
  assert_int_equal(feed(t, &s, emoji, 3, out), 0);
  assert_int_equal(tok_stream_flush(&s, out, 2), ERR_TOOBIG);
  assert_int_equal(tok_stream_flush(&s, out, 3), 3);
  assert_memory_equal(out, "\xef\xbf\xbd", 3);
  assert_int_equal(tok_stream_flush(&s, out, 3), 0);
  /* Too small a buffer: error, state unchanged, then it works. */
  assert_int_equal(tok_stream_feed(t, &s, ID_E2, out, 0), 0);
  assert_int_equal(tok_stream_feed(t, &s, ID_MAB, out, 3), ERR_TOOBIG);
  assert_int_equal(s.n_pending, 1);
  assert_int_equal(tok_stream_feed(t, &s, ID_MAB, out, 64), 6);
  assert_memory_equal(out, "\xef\xbf\xbd ab", 6);
  assert_int_equal(tok_stream_feed(t, &s, MINI_N, out, 64), ERR_RANGE);
  tok_free(t);
}

static void test_load_errors(void **state) {
  (void)state;
  char err[256] = "";
  int rc;
  assert_null(mini(NULL, MINI_N, 1, err, sizeof err, &rc));
  assert_int_equal(rc, ERR_NOTFOUND);
  assert_null(mini("bert", MINI_N, 1, err, sizeof err, &rc));
  assert_int_equal(rc, ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "bert"));
  assert_null(mini("gpt2", MINI_N, 1, err, sizeof err, &rc)); /* BPE without merges */
  assert_int_equal(rc, ERR_FORMAT);
  assert_non_null(strstr(err, "merges"));
  assert_null(mini("llama", 3, 1, err, sizeof err, &rc));
  assert_int_equal(rc, ERR_FORMAT);
  assert_non_null(strstr(err, "scores"));
  tok *t = mini("llama", MINI_N, 1, err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  assert_int_equal(tok_add_bos(t), 1);
  assert_int_equal(tok_unk(t), 0);
  tok_free(t);
  tok_free(NULL);
}


/* ---- a hand-made byte-level BPE vocabulary ------------------------------------------------ */

/* GPT-2's byte characters: Ġ is the space (U+0120), Ċ the newline (U+010A). */
static const char *const bpe_tokens[] = {"a",  "b",      "c",           "ab",      "abc",     "\xc4\xa0",
                                         "bc", "\xc4\xa0" "ab", "<|end|>",     "<tool>",  "\xc4\x8a", "1",
                                         "2",  "12",     "<|begin|>",   "\xc4\xa0\xc4\xa0"};
static const int32_t bpe_types[] = {1, 1, 1, 1, 1, 1, 1, 1, 3, 4, 1, 1, 1, 1, 3, 1};
enum { B_A, B_B, B_C, B_AB, B_ABC, B_SP, B_BC, B_SPAB, B_END, B_TOOL, B_NL, B_1, B_2, B_12, B_BEGIN, B_SPSP, B_N };
static const char *const bpe_merges[] = {"a b", "ab c", "\xc4\xa0 ab", "b c", "1 2", "\xc4\xa0 \xc4\xa0"};

typedef struct bpe_opts {
  const char *pre;                 /* NULL: no tokenizer.ggml.pre */
  const char *const *merges;       /* NULL: no tokenizer.ggml.merges */
  size_t n_merges;
  int merges_as_ints;              /* write merges as an array of numbers */
  int pre_as_int;                  /* write tokenizer.ggml.pre as a number */
} bpe_opts;

static tok *bpe_vocab(const bpe_opts *o, char *err, size_t err_cap, int *rc_out) {
  char dir[256], path[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/v.gguf", dir);
  gguf_writer *w = gguf_writer_new();
  gguf_str items[B_N];
  for (int i = 0; i < B_N; i++) items[i] = (gguf_str){bpe_tokens[i], strlen(bpe_tokens[i])};
  assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4), 0);
  if (o->pre_as_int) assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.pre", 7), 0);
  else if (o->pre) assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", o->pre, strlen(o->pre)), 0);
  assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", items, B_N), 0);
  assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, bpe_types, B_N), 0);
  if (o->merges_as_ints) {
    assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.merges", GGUF_VT_INT32, bpe_types, 3), 0);
  } else if (o->merges) {
    gguf_str *m = malloc(o->n_merges * sizeof *m);
    assert_non_null(m);
    for (size_t i = 0; i < o->n_merges; i++) m[i] = (gguf_str){o->merges[i], strlen(o->merges[i])};
    assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, o->n_merges), 0);
    free(m);
  }
  assert_int_equal(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", B_END), 0);
  assert_int_equal(gguf_writer_write(w, path), 0);
  gguf_writer_free(w);
  gguf_file *f;
  assert_int_equal(gguf_open(path, &f, err, err_cap), 0);
  tok *t = NULL;
  *rc_out = tok_new_from_gguf(f, &t, err, err_cap);
  gguf_close(f);
  tu_rm_rf(dir);
  return t;
}

static tok *bpe_ok(const char *pre) {
  char err[256];
  int rc;
  bpe_opts o = {pre, bpe_merges, sizeof bpe_merges / sizeof *bpe_merges, 0, 0};
  tok *t = bpe_vocab(&o, err, sizeof err, &rc);
  if (rc) fail_msg("bpe vocab: %s", err);
  return t;
}

static void test_bpe_merges(void **state) {
  (void)state;
  tok *t = bpe_ok("gpt-2");
  assert_string_equal(tok_model(t), "gpt2");
  assert_string_equal(tok_pre(t), "gpt2");
  assert_int_equal(tok_add_bos(t), 0);      /* BPE default: no BOS, no space prefix */
  assert_int_equal(tok_bos(t), 11);         /* llama.cpp's default id, present here */
  assert_int_equal(tok_unk(t), -1);
  assert_true(tok_is_eog(t, B_END));
  /* Merge order by rank: a b (0) then ab c (1); b c (3) never gets its turn. */
  EXPECT_IDS(t, "abc", 1, B_ABC);
  EXPECT_IDS(t, "bc", 1, B_BC);
  EXPECT_IDS(t, "abab", 1, B_AB, B_AB);
  EXPECT_IDS(t, "ab ab", 1, B_AB, B_SPAB);
  /* GPT-2 pre-tokenizer: " ?\p{N}+" keeps digits together, then 1 2 merges. */
  EXPECT_IDS(t, "12a", 1, B_12, B_A);
  /* Whitespace: "\s+(?!\S)" leaves the last space to the next word. */
  EXPECT_IDS(t, "a   ab", 1, B_A, B_SPSP, B_SPAB);
  EXPECT_IDS(t, "a\n", 1, B_A, B_NL);
  /* A character the vocabulary lacks is dropped (llama.cpp's byte fallback finds nothing). */
  EXPECT_IDS(t, "zab", 1, B_AB);
  /* Specials: control only with parse_special, user-defined always; no space prefix. */
  EXPECT_IDS(t, "a<|end|>b", 1, B_A, B_END, B_B);
  EXPECT_IDS(t, "<|begin|><|begin|>", 1, B_BEGIN, B_BEGIN);
  EXPECT_IDS(t, "a<tool>b", 0, B_A, B_TOOL, B_B);
  int32_t ids[64];
  int n = tok_encode(t, "a<|end|>", 8, 0, 0, ids, 64);
  for (int i = 0; i < n; i++) assert_true(ids[i] != B_END);
  /* Pieces: GPT-2 characters back to bytes; control tokens hidden unless rendered. */
  char p[32];
  assert_int_equal(tok_piece(t, B_SPAB, 0, p, sizeof p), 3);
  assert_memory_equal(p, " ab", 3);
  assert_int_equal(tok_piece(t, B_NL, 0, p, sizeof p), 1);
  assert_int_equal(p[0], '\n');
  assert_int_equal(tok_piece(t, B_END, 0, p, sizeof p), 0);
  assert_int_equal(tok_piece(t, B_END, 1, p, sizeof p), 7);
  assert_int_equal(tok_piece(t, B_TOOL, 0, p, sizeof p), 6);
  /* The stream keeps the leading space even with at_start (no space prefix to undo). */
  tok_stream st;
  tok_stream_init(&st);
  st.at_start = 1;
  assert_int_equal(tok_stream_feed(t, &st, B_SPAB, p, sizeof p), 3);
  assert_memory_equal(p, " ab", 3);
  tok_free(t);
  /* No tokenizer.ggml.pre: llama.cpp's 'default' pre-tokenizer. */
  t = bpe_ok(NULL);
  assert_string_equal(tok_pre(t), "default");
  EXPECT_IDS(t, "abc", 1, B_ABC);
  tok_free(t);
  /* Every pre-tokenizer name llama.cpp knows loads (its regexes compile) and splits. */
  static const char *const all_pres[] = {
      "default",    "llama3",       "llama-v3",     "llama-bpe",  "falcon3",     "dbrx",         "smaug-bpe",
      "chatglm-bpe", "qwen2",       "deepseek-r1-qwen", "megrez", "stablelm2",   "gpt-2",        "phi-2",
      "jina-es",    "jina-de",      "gigachat",     "jina-v1-en", "jina-v2-es",  "jina-v2-de",   "jina-v2-code",
      "roberta-bpe", "mpt",         "olmo",         "jais",       "starcoder",   "refact",       "command-r",
      "smollm",     "codeshell",    "exaone",       "minerva-7b", "falcon",      "deepseek-llm", "deepseek-coder",
      "deepseek-v3", "poro-chat",   "bloom",        "gpt3-finnish", "viking",    "tekken"};
  for (size_t i = 0; i < sizeof all_pres / sizeof *all_pres; i++) {
    t = bpe_ok(all_pres[i]);
    int32_t got[16];
    int n2 = tok_encode(t, "ab  12\n", 7, 0, 1, got, 16);
    if (n2 < 3) fail_msg("pre '%s': %d ids", all_pres[i], n2);
    tok_free(t);
  }
  /* llama-bpe: BOS by default (id 11 is out of range here: none), ignore_merges. */
  t = bpe_ok("llama-bpe");
  assert_string_equal(tok_pre(t), "llama3");
  EXPECT_IDS(t, "abc", 1, B_ABC);
  EXPECT_IDS(t, "  ab", 1, B_SP, B_SPAB);
  tok_free(t);
}

static void test_bpe_load_errors(void **state) {
  (void)state;
  char err[256] = "";
  int rc;
  const size_t nm = sizeof bpe_merges / sizeof *bpe_merges;
  struct {
    bpe_opts o;
    int rc;
    const char *in_err;
  } cases[] = {
      {{"gpt-2", NULL, 0, 0, 0}, ERR_FORMAT, "merges: missing"},
      {{"gpt-2", NULL, 0, 1, 0}, ERR_FORMAT, "not an array of strings"},
      {{"gpt-2", (const char *const[]){"a b", "a z"}, 2, 0, 0}, ERR_FORMAT, "merges[1] 'a z': its right side"},
      {{"gpt-2", (const char *const[]){"q b"}, 1, 0, 0}, ERR_FORMAT, "its left side"},
      {{"gpt-2", (const char *const[]){"b a"}, 1, 0, 0}, ERR_FORMAT, "the merged text"},
      {{"gpt-2", (const char *const[]){"ab"}, 1, 0, 0}, ERR_FORMAT, "not two tokens"},
      {{"gpt-2", (const char *const[]){" ab"}, 1, 0, 0}, ERR_FORMAT, "not two tokens"},
      {{"gpt-2", (const char *const[]){""}, 1, 0, 0}, ERR_FORMAT, "not two tokens"},
      {{"no-such-pre", bpe_merges, nm, 0, 0}, ERR_UNSUPPORTED, "unknown pre-tokenizer type 'no-such-pre'"},
      {{"gpt-2", bpe_merges, nm, 0, 1}, ERR_FORMAT, "tokenizer.ggml.pre is not a string"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    err[0] = 0;
    assert_null(bpe_vocab(&cases[i].o, err, sizeof err, &rc));
    if (rc != cases[i].rc || !strstr(err, cases[i].in_err))
      fail_msg("case %zu: rc %d, err '%s'; want %d, '%s'", i, rc, err, cases[i].rc, cases[i].in_err);
  }
  /* Duplicate merges keep their first rank; an empty merge list is allowed. */
  tok *t = bpe_vocab(&(bpe_opts){"gpt-2", (const char *const[]){"b c", "a b", "b c"}, 3, 0, 0}, err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  EXPECT_IDS(t, "abc", 1, B_A, B_BC);
  tok_free(t);
  t = bpe_vocab(&(bpe_opts){"gpt-2", bpe_merges, 0, 0, 0}, err, sizeof err, &rc);
  assert_int_equal(rc, 0);
  EXPECT_IDS(t, "abc", 1, B_A, B_B, B_C);
  tok_free(t);
}

/* More merge rules than TOK_MAX_MERGES: refused with a clear error before any work. */
static void test_bpe_too_many_merges(void **state) {
  (void)state;
  size_t n = (size_t)TOK_MAX_MERGES + 1;
  const char **m = malloc(n * sizeof *m);
  assert_non_null(m);
  for (size_t i = 0; i < n; i++) m[i] = "a b";
  char err[256];
  int rc;
  bpe_opts o = {"gpt-2", m, n, 0, 0};
  assert_null(bpe_vocab(&o, err, sizeof err, &rc));
  assert_int_equal(rc, ERR_TOOBIG);
  assert_non_null(strstr(err, "over the cap"));
  free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_tiny_f32),    cmocka_unit_test(test_ref_tiny_q8_0),
      cmocka_unit_test(test_ref_stories_f32), cmocka_unit_test(test_ref_stories_q8_0),
      cmocka_unit_test(test_llama_vocab),     cmocka_unit_test(test_mini_merges),
      cmocka_unit_test(test_mini_stream),     cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_bpe_merges),      cmocka_unit_test(test_bpe_load_errors),
      cmocka_unit_test(test_bpe_too_many_merges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
