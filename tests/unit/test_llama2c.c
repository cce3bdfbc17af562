/* tests/unit/test_llama2c — llm/llama2c: llama2.c checkpoints to GGUF and back.
 *
 *   - stories15M round trip (shared/): the reference F32 GGUF turned back into a llama2.c
 *     checkpoint hashes to the sha256 Hugging Face publishes for karpathy/tinyllamas
 *     stories15M.bin; converting that checkpoint (vocabulary from the same GGUF) gives the
 *     reference F32 file byte for byte, and quantizing it to Q8_0 llama-quantize's file;
 *   - a small synthetic model with grouped-query attention and an unshared classifier:
 *     shapes, values, metadata, and checkpoint -> GGUF -> checkpoint identity;
 *   - malformed checkpoints (every truncation of the header, bad and huge header values,
 *     wrong lengths) and vocabularies (wrong size, no tokenizer) fail with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/gguf.h"
#include "llm/llama2c.h"
#include "llm/mstore.h"
#include "llm/quant.h"
#include "llm/quantize.h"

#define SHA_BIN "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a"
#define SHA_F32 "a4a429f2a6527275de0d53ffa5e3e8eabe320f618004120d51e1b1faae8bb567"
#define SHA_Q8 "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1"

static char tmp[512];

static int setup_all(void **state) {
  (void)state;
  quant_init();
  tu_tmpdir(tmp, sizeof tmp);
  return 0;
}

static int teardown_all(void **state) {
  (void)state;
  tu_rm_rf(tmp);
  return 0;
}

static void assert_sha(const char *path, const char *want) {
  char hex[MSTORE_SHA256_HEX];
  assert_int_equal(mstore_sha256_file(path, hex, NULL, NULL), 0);
  if (strcmp(hex, want)) fail_msg("%s: sha256 %s, want %s", path, hex, want);
}

static void test_stories15m_round_trip(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char ref[1024], bin[600], f32[600], q8[600], err[512];
  assert_int_equal(tu_shared_path(ref, sizeof ref, "models/stories15M-F32.gguf"), 0);
  snprintf(bin, sizeof bin, "%s/stories15M.bin", tmp);
  snprintf(f32, sizeof f32, "%s/stories15M-F32.gguf", tmp);
  snprintf(q8, sizeof q8, "%s/stories15M-Q8_0.gguf", tmp);
  gguf_file *g;
  assert_int_equal(gguf_open(ref, &g, err, sizeof err), 0);
  int rc = llama2c_write_checkpoint(g, 256, bin, err, sizeof err);
  if (rc) fail_msg("write_checkpoint: %s", err);
  gguf_close(g);
  assert_sha(bin, SHA_BIN); /* Hugging Face's published hash of the upstream file */
  rc = llama2c_convert(bin, ref, f32, NULL, NULL, err, sizeof err);
  if (rc) fail_msg("convert: %s", err);
  assert_sha(f32, SHA_F32);
  quantize_ftype ft;
  assert_int_equal(quantize_parse_ftype("Q8_0", &ft), 0);
  rc = quantize_file(f32, q8, &ft, 2, NULL, NULL, NULL, err, sizeof err);
  if (rc) fail_msg("quantize: %s", err);
  assert_sha(q8, SHA_Q8);
  unlink(bin);
  unlink(f32);
  unlink(q8);
}

/* ---- a small synthetic model ------------------------------------------------------------ */

enum { DIM = 16, HID = 40, LAYERS = 2, HEADS = 4, KV_HEADS = 2, VOCAB = 10, SEQ = 8 };

/* A checkpoint in memory (caller frees): values are their own float index, so every tensor
 * can be traced; vocab < 0 writes an unshared classifier. */
static uint8_t *make_ckpt(int32_t vocab, size_t *len_out) {
  int32_t V = vocab < 0 ? -vocab : vocab, kv = DIM * KV_HEADS / HEADS, hs = DIM / HEADS;
  size_t n = (size_t)V * DIM + 2 * LAYERS * DIM + 2 * LAYERS * DIM * DIM + 2 * LAYERS * kv * DIM +
             3 * LAYERS * HID * DIM + DIM + (size_t)SEQ * hs + (vocab < 0 ? (size_t)V * DIM : 0);
  uint8_t *b = malloc(28 + 4 * n);
  assert_non_null(b);
  int32_t hdr[7] = {DIM, HID, LAYERS, HEADS, KV_HEADS, vocab, SEQ};
  memcpy(b, hdr, 28);
  float *f = (float *)(void *)(b + 28);
  for (size_t i = 0; i < n; i++) f[i] = (float)i;
  /* freq_cis as llama2c_freq_cis makes them, so the reverse gives the same bytes */
  size_t off = n - (size_t)SEQ * hs - (vocab < 0 ? (size_t)V * DIM : 0);
  llama2c_freq_cis(hs, SEQ, f + off, f + off + (size_t)SEQ * hs / 2);
  *len_out = 28 + 4 * n;
  return b;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

/* A vocabulary GGUF with n tokens (and no tensors), optionally without the model key. */
static void make_vocab(const char *path, int n, int with_model) {
  gguf_writer *w = gguf_writer_new();
  gguf_str items[64];
  char text[64][16];
  float scores[64];
  int32_t types[64];
  for (int i = 0; i < n; i++) {
    snprintf(text[i], sizeof text[i], "t%d", i);
    items[i] = (gguf_str){text[i], strlen(text[i])};
    scores[i] = -(float)i;
    types[i] = i < 3 ? 3 : 1;
  }
  if (with_model) assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5), 0);
  assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", items, (uint64_t)n), 0);
  assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, (uint64_t)n), 0);
  assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, (uint64_t)n), 0);
  assert_int_equal(gguf_writer_write(w, path), 0);
  gguf_writer_free(w);
}

static void check_tensor(const gguf_file *g, const char *name, uint64_t ne0, uint64_t ne1, float first) {
  const gguf_tensor *t = gguf_find_tensor(g, name);
  if (!t) fail_msg("%s missing", name);
  assert_int_equal(t->type, QT_F32);
  assert_int_equal(t->ne[0], ne0);
  assert_int_equal(t->ne[1], ne1);
  float v;
  memcpy(&v, t->data, 4);
  if (v != first) fail_msg("%s starts with %g, want %g", name, (double)v, (double)first);
}

static void synthetic_round_trip(int32_t vocab) {
  char bin[600], voc[600], out[600], back[600], err[512];
  snprintf(bin, sizeof bin, "%s/syn.bin", tmp);
  snprintf(voc, sizeof voc, "%s/vocab.gguf", tmp);
  snprintf(out, sizeof out, "%s/syn.gguf", tmp);
  snprintf(back, sizeof back, "%s/syn-back.bin", tmp);
  size_t len;
  uint8_t *b = make_ckpt(vocab, &len);
  write_file(bin, b, len);
  make_vocab(voc, VOCAB, 1);
  int rc = llama2c_convert(bin, voc, out, NULL, NULL, err, sizeof err);
  if (rc) fail_msg("convert: %s", err);
  gguf_file *g;
  assert_int_equal(gguf_open(out, &g, err, sizeof err), 0);
  int64_t v;
  assert_int_equal(gguf_get_int(g, "llama.context_length", &v), 0);
  assert_int_equal(v, LLAMA2C_GGUF_CTX);
  assert_int_equal(gguf_get_int(g, "llama.attention.head_count_kv", &v), 0);
  assert_int_equal(v, KV_HEADS);
  assert_int_equal(gguf_get_int(g, "llama.rope.dimension_count", &v), 0);
  assert_int_equal(v, DIM / HEADS);
  gguf_str s;
  assert_int_equal(gguf_get_str(g, "general.architecture", &s), 0);
  assert_true(gguf_str_eq(s, "llama"));
  const gguf_kv *toks;
  assert_int_equal(gguf_get_arr(g, "tokenizer.ggml.tokens", &toks), 0);
  assert_true(gguf_str_eq(gguf_arr_str(toks, 7), "t7"));
  assert_int_equal(gguf_n_tensors(g), 3 + 9 * LAYERS);
  /* Element offsets of each array in the checkpoint (values are their own index). */
  const int kv = DIM * KV_HEADS / HEADS;
  float o_emb = 0, o_att = VOCAB * DIM, o_q = o_att + LAYERS * DIM, o_k = o_q + LAYERS * DIM * DIM,
        o_v = o_k + LAYERS * kv * DIM, o_o = o_v + LAYERS * kv * DIM, o_ffn = o_o + LAYERS * DIM * DIM,
        o_w1 = o_ffn + LAYERS * DIM, o_w2 = o_w1 + LAYERS * HID * DIM, o_w3 = o_w2 + LAYERS * HID * DIM,
        o_fin = o_w3 + LAYERS * HID * DIM, o_cls = o_fin + DIM + SEQ * (DIM / HEADS);
  check_tensor(g, "token_embd.weight", DIM, VOCAB, o_emb);
  check_tensor(g, "output.weight", DIM, VOCAB, vocab < 0 ? o_cls : o_emb);
  check_tensor(g, "output_norm.weight", DIM, 1, o_fin);
  check_tensor(g, "blk.1.attn_q.weight", DIM, DIM, o_q + DIM * DIM);
  check_tensor(g, "blk.1.attn_k.weight", DIM, kv, o_k + kv * DIM);
  check_tensor(g, "blk.1.attn_v.weight", DIM, kv, o_v + kv * DIM);
  check_tensor(g, "blk.1.attn_output.weight", DIM, DIM, o_o + DIM * DIM);
  check_tensor(g, "blk.1.attn_norm.weight", DIM, 1, o_att + DIM);
  check_tensor(g, "blk.1.ffn_norm.weight", DIM, 1, o_ffn + DIM);
  check_tensor(g, "blk.1.ffn_gate.weight", DIM, HID, o_w1 + HID * DIM);
  check_tensor(g, "blk.1.ffn_down.weight", HID, DIM, o_w2 + HID * DIM);
  check_tensor(g, "blk.1.ffn_up.weight", DIM, HID, o_w3 + HID * DIM);
  rc = llama2c_write_checkpoint(g, SEQ, back, err, sizeof err);
  if (rc) fail_msg("write_checkpoint: %s", err);
  gguf_close(g);
  FILE *f = fopen(back, "rb");
  assert_non_null(f);
  uint8_t *r = malloc(len + 1);
  assert_int_equal(fread(r, 1, len + 1, f), len);
  fclose(f);
  assert_memory_equal(r, b, len);
  free(r);
  free(b);
}

static void test_synthetic_shared(void **state) {
  (void)state;
  synthetic_round_trip(VOCAB);
}

static void test_synthetic_unshared(void **state) {
  (void)state;
  synthetic_round_trip(-VOCAB);
}

/* ---- malformed input ------------------------------------------------------------------- */

static void expect_bad(const void *data, size_t len, int want_rc, const char *needle) {
  llama2c_weights w;
  char err[512] = "";
  int rc = llama2c_parse(data, len, &w, err, sizeof err);
  if (rc != want_rc) fail_msg("parse gave %d (%s), want %d", rc, err, want_rc);
  if (needle && !strstr(err, needle)) fail_msg("message '%s' lacks '%s'", err, needle);
}

static void with_header(uint8_t *b, int field, int32_t v) { memcpy(b + 4 * field, &v, 4); }

static void test_malformed(void **state) {
  (void)state;
  size_t len;
  uint8_t *b = make_ckpt(VOCAB, &len);
  llama2c_weights w;
  assert_int_equal(llama2c_parse(b, len, &w, NULL, 0), 0);
  assert_int_equal(w.c.dim, DIM);
  assert_true(w.c.shared_classifier);
  assert_ptr_equal(w.wcls, w.token_embedding);
  for (size_t n = 0; n < 28; n++) expect_bad(b, n, ERR_FORMAT, "header");
  expect_bad(b, len - 1, ERR_FORMAT, "needs exactly");
  expect_bad(b, 28, ERR_FORMAT, "needs exactly");
  uint8_t *big = calloc(1, len + 8);
  memcpy(big, b, len);
  expect_bad(big, len + 4, ERR_FORMAT, "needs exactly");
  free(big);
  static const struct { int field; int32_t v; int rc; const char *needle; } cases[] = {
      {0, 0, ERR_FORMAT, "dim is 0"},
      {0, -16, ERR_FORMAT, "dim is -16"},
      {0, INT32_MAX, ERR_TOOBIG, "over the cap"},
      {1, INT32_MAX, ERR_TOOBIG, "hidden_dim"},
      {2, INT32_MAX, ERR_TOOBIG, "n_layers"},
      {2, 0, ERR_FORMAT, "n_layers"},
      {3, INT32_MAX, ERR_TOOBIG, "n_heads"},
      {3, 5, ERR_FORMAT, "head size"},     /* 16 % 5 */
      {3, 16, ERR_FORMAT, "head size"},    /* head size 1: odd */
      {4, 3, ERR_FORMAT, "n_kv_heads"},    /* 4 % 3 */
      {4, 8, ERR_FORMAT, "n_kv_heads"},    /* more kv heads than heads */
      {4, -1, ERR_FORMAT, "n_kv_heads"},
      {5, 0, ERR_FORMAT, "vocab_size"},
      {5, INT32_MIN, ERR_TOOBIG, "vocab_size"},
      {5, -VOCAB, ERR_FORMAT, "needs exactly"}, /* unshared: wcls missing */
      {5, VOCAB + 1, ERR_FORMAT, "needs exactly"},
      {6, 0, ERR_FORMAT, "seq_len"},
      {6, INT32_MAX, ERR_TOOBIG, "seq_len"},
      {6, SEQ * 2, ERR_FORMAT, "needs exactly"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    uint8_t *copy = malloc(len);
    memcpy(copy, b, len);
    with_header(copy, cases[i].field, cases[i].v);
    expect_bad(copy, len, cases[i].rc, cases[i].needle);
    free(copy);
  }
  /* Every header value at its cap at once: the size computation must not overflow. */
  uint8_t hdr[28];
  int32_t caps[7] = {LLAMA2C_MAX_DIM, LLAMA2C_MAX_HIDDEN, LLAMA2C_MAX_LAYERS, 1024, 1024, -LLAMA2C_MAX_VOCAB,
                     LLAMA2C_MAX_SEQ};
  memcpy(hdr, caps, 28);
  expect_bad(hdr, 28, ERR_FORMAT, "needs exactly");
  free(b);
}

static void test_bad_vocab(void **state) {
  (void)state;
  char bin[600], voc[600], out[600], err[512];
  snprintf(bin, sizeof bin, "%s/syn.bin", tmp);
  snprintf(voc, sizeof voc, "%s/vocab-bad.gguf", tmp);
  snprintf(out, sizeof out, "%s/never.gguf", tmp);
  size_t len;
  uint8_t *b = make_ckpt(VOCAB, &len);
  write_file(bin, b, len);
  free(b);
  make_vocab(voc, VOCAB + 1, 1);
  assert_int_equal(llama2c_convert(bin, voc, out, NULL, NULL, err, sizeof err), ERR_FORMAT);
  assert_non_null(strstr(err, "vocabulary size mismatch"));
  make_vocab(voc, VOCAB, 0);
  assert_int_equal(llama2c_convert(bin, voc, out, NULL, NULL, err, sizeof err), ERR_FORMAT);
  assert_non_null(strstr(err, "tokenizer.ggml.model"));
  assert_int_equal(llama2c_convert(bin, bin, out, NULL, NULL, err, sizeof err), ERR_FORMAT); /* not a GGUF */
  assert_int_equal(fopen(out, "rb") == NULL, 1);
  char missing[600];
  snprintf(missing, sizeof missing, "%s/nope.bin", tmp);
  assert_true(llama2c_convert(missing, voc, out, NULL, NULL, err, sizeof err) < 0);
  assert_non_null(strstr(err, "cannot open"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stories15m_round_trip),
      cmocka_unit_test(test_synthetic_shared),
      cmocka_unit_test(test_synthetic_unshared),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_bad_vocab),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
