/* tests/unit/test_quantize — llm/quantize and llm/synth.
 *
 *   - the tiny F32 model quantized to Q8_0 against llama.cpp's own Q8_0 file of it: the same
 *     type and shape per tensor (ffn_down stays F32: 172 % 32 != 0), F32 tensors
 *     byte-identical, Q8_0 weights within half a quantization step of llama.cpp's (and the
 *     fraction of byte-identical blocks reported); the file loads, and teacher-forced
 *     greedy ids match llama.cpp's Q8_0 reference wherever its margin exceeds 0.3;
 *     the whole Q8_0 file is byte-identical to llama.cpp's;
 *   - Q4_K_M and Q4_0: load and give finite logits; the mix rule on real shapes;
 *   - an unsupported input type fails with ERR_UNSUPPORTED;
 *   - synth of each shape with one block: loads, evaluates a token, finite logits; the same
 *     seed gives the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/engine.h"
#include "llm/gguf.h"
#include "llm/quantize.h"
#include "llm/synth.h"

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

/* Quantizes the tiny F32 model to type into tmp/tiny-TYPE.gguf; path in out. */
static void quantize_tiny(const char *type, char *out, size_t cap) {
  char in[1024], err[512];
  assert_int_equal(tu_shared_path(in, sizeof in, "testdata/tiny-spm4k-F32.gguf"), 0);
  snprintf(out, cap, "%s/tiny-%s.gguf", tmp, type);
  quantize_ftype ft;
  assert_int_equal(quantize_parse_ftype(type, &ft), 0);
  int rc = quantize_file(in, out, &ft, 2, NULL, NULL, NULL, err, sizeof err);
  if (rc) fail_msg("quantize %s: %s", type, err);
}

static engine *new_engine(const model *m) {
  engine_params p = engine_default_params();
  p.n_threads = 2;
  p.n_ctx = 256;
  p.n_batch = 64;
  engine *e;
  char err[256];
  if (engine_new(m, &p, &e, err, sizeof err)) fail_msg("engine_new: %s", err);
  return e;
}

static int argmax(const float *v, int n) {
  int b = 0;
  for (int i = 1; i < n; i++)
    if (v[i] > v[b]) b = i;
  return b;
}

static int json_ids(json_t *a, int32_t *out, int cap) {
  int n = 0;
  for (size_t i = 0; i < json_array_size(a) && n < cap; i++) out[n++] = (int32_t)json_integer_value(json_array_get(a, i));
  return n;
}

/* ---- Q8_0 against llama.cpp ---------------------------------------------------------- */

/* The whole file, not just the weights: llama-quantize's key order (quantization_version
 * and file_type moved to the end) and tensor order, so the bytes are llama.cpp's. */
static void test_q8_file_identical(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char ours[1024], theirs[1024];
  quantize_tiny("Q8_0", ours, sizeof ours);
  assert_int_equal(tu_shared_path(theirs, sizeof theirs, "testdata/tiny-spm4k-Q8_0.gguf"), 0);
  assert_int_equal(tu_sh("cmp -s %s %s", ours, theirs), 0);
}

static void test_q8_tensors_match_llamacpp(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char ours[1024], theirs[1024], err[512];
  quantize_tiny("Q8_0", ours, sizeof ours);
  assert_int_equal(tu_shared_path(theirs, sizeof theirs, "testdata/tiny-spm4k-Q8_0.gguf"), 0);
  gguf_file *a, *b;
  assert_int_equal(gguf_open(ours, &a, err, sizeof err), 0);
  assert_int_equal(gguf_open(theirs, &b, err, sizeof err), 0);
  assert_int_equal(gguf_n_tensors(a), gguf_n_tensors(b));
  int64_t ft;
  assert_int_equal(gguf_get_int(a, "general.file_type", &ft), 0);
  assert_int_equal(ft, 7);
  uint64_t blocks = 0, same_blocks = 0;
  double worst = 0; /* largest |ours - theirs| / d */
  for (size_t i = 0; i < gguf_n_tensors(b); i++) {
    const gguf_tensor *tb = gguf_tensor_at(b, i);
    char name[300];
    snprintf(name, sizeof name, "%.*s", (int)tb->name.len, tb->name.ptr);
    const gguf_tensor *ta = gguf_find_tensor(a, name);
    if (!ta) fail_msg("%s missing from our file", name);
    if (ta->type != tb->type) fail_msg("%s: type %s, llama.cpp %s", name, quant_name(ta->type), quant_name(tb->type));
    assert_memory_equal(ta->ne, tb->ne, sizeof ta->ne);
    assert_int_equal(ta->nbytes, tb->nbytes);
    if (tb->type == QT_F32) {
      assert_memory_equal(ta->data, tb->data, (size_t)tb->nbytes);
      continue;
    }
    assert_int_equal(tb->type, QT_Q8_0);
    const uint8_t *pa = ta->data, *pb = tb->data;
    size_t nb = (size_t)tb->nbytes / 34;
    for (size_t k = 0; k < nb; k++, pa += 34, pb += 34) {
      float fa[32], fb[32];
      quant_dequantize_row(QT_Q8_0, pa, fa, 32);
      quant_dequantize_row(QT_Q8_0, pb, fb, 32);
      uint16_t h;
      memcpy(&h, pb, 2);
      float d = quant_f16_to_f32(h);
      blocks++;
      same_blocks += memcmp(pa, pb, 34) == 0;
      for (int j = 0; j < 32; j++) {
        double diff = fabs((double)fa[j] - fb[j]);
        if (d > 0) worst = fmax(worst, diff / d);
        if (diff > d / 2 + 1e-9) fail_msg("%s block %zu elem %d: %g vs %g (d %g)", name, k, j, fa[j], fb[j], d);
      }
    }
  }
  print_message("Q8_0: %llu of %llu blocks byte-identical to llama.cpp's (%.2f%%); worst difference %.3f d\n",
                (unsigned long long)same_blocks, (unsigned long long)blocks, 100.0 * same_blocks / blocks, worst);
  gguf_close(a);
  gguf_close(b);
}

static void test_q8_teacher_forcing(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  const double tol = 0.3;
  char path[1024], err[512];
  quantize_tiny("Q8_0", path, sizeof path);
  model *m;
  if (model_load(path, &m, err, sizeof err)) fail_msg("model_load: %s", err);
  char rp[1024];
  tu_shared_path(rp, sizeof rp, "testdata/tiny-spm4k-Q8_0.ref.json");
  json_t *ref = tu_load_json(rp);
  engine *e = new_engine(m);
  int nv = m->hp.n_vocab, checked = 0;
  float *lg = malloc((size_t)nv * sizeof *lg);
  size_t gi;
  json_t *g;
  json_array_foreach(json_object_get(ref, "greedy"), gi, g) {
    int32_t ids[512], want[64];
    int np = json_ids(json_object_get(g, "prompt_ids"), ids, 512);
    int ng = json_ids(json_object_get(g, "greedy_ids"), want, 64);
    engine_truncate(e, 0);
    assert_int_equal(engine_eval(e, ids, np, 0, lg), 0);
    for (int i = 0; i < ng; i++) {
      json_t *st = json_array_get(json_object_get(g, "steps"), (size_t)i);
      double margin = json_number_value(json_object_get(st, "margin"));
      if (margin > tol) {
        checked++;
        if (argmax(lg, nv) != want[i])
          fail_msg("prompt %zu step %d: argmax %d, llama.cpp %d (margin %.3f)", gi, i, argmax(lg, nv), want[i], margin);
      }
      assert_int_equal(engine_eval(e, &want[i], 1, np + i, lg), 0);
    }
  }
  print_message("teacher forcing: %d steps with margin > %.1f agree\n", checked, tol);
  assert_true(checked > 10);
  free(lg);
  engine_free(e);
  json_decref(ref);
  model_free(m);
}

/* ---- other types ---------------------------------------------------------------------- */

static void check_finite_logits(const char *path) {
  char err[512];
  model *m;
  if (model_load(path, &m, err, sizeof err)) fail_msg("model_load %s: %s", path, err);
  engine *e = new_engine(m);
  int nv = m->hp.n_vocab;
  float *lg = malloc((size_t)nv * sizeof *lg);
  int32_t toks[8] = {1, 100, 200, 300, 400, 500, 600, 700};
  for (int i = 0; i < 8; i++) toks[i] %= nv;
  assert_int_equal(engine_eval(e, toks, 8, 0, lg), 0);
  double sum = 0;
  for (int i = 0; i < nv; i++) {
    if (!isfinite(lg[i])) fail_msg("%s: logit %d is %g", path, i, lg[i]);
    sum += fabs(lg[i]);
  }
  assert_true(sum > 0);
  free(lg);
  engine_free(e);
  model_free(m);
}

static void test_q4_types_load(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  static const char *const types[] = {"Q4_K_M", "Q4_0", "Q5_K_M", "Q6_K", "Q4_1", "Q5_1", "F16", "BF16"};
  char path[1024], err[512];
  for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
    quantize_tiny(types[i], path, sizeof path);
    check_finite_logits(path);
  }
  /* The tiny model's rows of 64 do not fit K-quant blocks: Q4_K_M falls back. */
  quantize_tiny("Q4_K_M", path, sizeof path);
  gguf_file *f;
  assert_int_equal(gguf_open(path, &f, err, sizeof err), 0);
  assert_int_equal(gguf_find_tensor(f, "blk.0.attn_q.weight")->type, QT_Q5_0);
  assert_int_equal(gguf_find_tensor(f, "output.weight")->type, QT_Q8_0); /* Q6_K -> Q8_0 */
  assert_int_equal(gguf_find_tensor(f, "blk.0.ffn_down.weight")->type, QT_F32);
  assert_int_equal(gguf_find_tensor(f, "blk.0.attn_norm.weight")->type, QT_F32);
  int64_t ft;
  assert_int_equal(gguf_get_int(f, "general.file_type", &ft), 0);
  assert_int_equal(ft, 15);
  gguf_close(f);
}

static void test_pick_type(void **state) {
  (void)state;
  quantize_ftype ft;
  assert_int_equal(quantize_parse_ftype("q4_k_m", &ft), 0);
  assert_int_equal(quantize_parse_ftype("Q9_0", &ft), ERR_INVAL);
  assert_int_equal(quantize_parse_ftype("Q4_K_M", &ft), 0);
  uint64_t d[2] = {2048, 2048}, ff[2] = {8192, 2048}, v1[1] = {2048}, emb[2] = {2048, 128256};
  char nm[64];
  /* 16 layers: Q6_K for blocks 0-1 and 14-15, and 4, 7, 10, 13 in between. */
  for (int il = 0; il < 16; il++) {
    int more = il < 2 || il >= 14 || (il - 2) % 3 == 2;
    snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", il);
    assert_int_equal(quantize_pick_type(&ft, nm, 2, d, 16, 1), more ? QT_Q6_K : QT_Q4_K);
    snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", il);
    assert_int_equal(quantize_pick_type(&ft, nm, 2, ff, 16, 1), more ? QT_Q6_K : QT_Q4_K);
    snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", il);
    assert_int_equal(quantize_pick_type(&ft, nm, 2, d, 16, 1), QT_Q4_K);
  }
  assert_int_equal(quantize_pick_type(&ft, "token_embd.weight", 2, emb, 16, 1), QT_Q6_K);
  assert_int_equal(quantize_pick_type(&ft, "token_embd.weight", 2, emb, 16, 0), QT_Q4_K);
  assert_int_equal(quantize_pick_type(&ft, "output.weight", 2, emb, 16, 0), QT_Q6_K);
  assert_int_equal(quantize_pick_type(&ft, "blk.0.attn_norm.weight", 1, v1, 16, 1), QT_F32);
  assert_int_equal(quantize_pick_type(&ft, "blk.0.attn_q.bias", 1, v1, 16, 1), QT_F32);
  /* Fallbacks: 576 -> Q5_0 (Q4_K), 172 -> F32. */
  uint64_t r576[2] = {576, 576}, r172[2] = {172, 64};
  assert_int_equal(quantize_pick_type(&ft, "blk.3.attn_q.weight", 2, r576, 30, 1), QT_Q5_0);
  assert_int_equal(quantize_pick_type(&ft, "blk.3.ffn_down.weight", 2, r172, 30, 1), QT_F32);
  assert_int_equal(quantize_wanted_type(&ft, "blk.3.ffn_down.weight", 2, 30, 1), QT_Q4_K);
  assert_int_equal(quantize_wanted_type(&ft, "blk.0.ffn_down.weight", 2, 30, 1), QT_Q6_K);
  assert_int_equal(quantize_parse_ftype("Q8_0", &ft), 0);
  assert_int_equal(quantize_pick_type(&ft, "blk.0.ffn_down.weight", 2, r172, 2, 0), QT_F32);
  assert_int_equal(quantize_pick_type(&ft, "output.weight", 2, emb, 16, 0), QT_Q8_0);
  assert_int_equal(ft.file_type, 7);
}

static void test_unsupported_input(void **state) {
  (void)state;
  char in[1024], out[1024], err[512] = "";
  snprintf(in, sizeof in, "%s/q2k.gguf", tmp);
  snprintf(out, sizeof out, "%s/q2k-out.gguf", tmp);
  gguf_writer *w = gguf_writer_new();
  assert_non_null(w);
  assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama", 5), 0);
  uint64_t ne[2] = {256, 2};
  static uint8_t data[2 * 84];
  assert_int_equal(quant_row_size(QT_Q2_K, 256), 84);
  assert_int_equal(gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 2, ne, QT_Q2_K, data, sizeof data), 0);
  assert_int_equal(gguf_writer_write(w, in), 0);
  gguf_writer_free(w);
  quantize_ftype ft;
  quantize_parse_ftype("Q8_0", &ft);
  assert_int_equal(quantize_file(in, out, &ft, 1, NULL, NULL, NULL, err, sizeof err), ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "blk.0.attn_q.weight"));
  assert_non_null(strstr(err, "Q2_K"));
  FILE *f = fopen(out, "rb");
  assert_null(f);
}

/* ---- synth ------------------------------------------------------------------------------ */

static void test_synth_shapes(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char vocab[1024], path[1024], err[512];
  assert_int_equal(tu_shared_path(vocab, sizeof vocab, "testdata/tiny-spm4k-F32.gguf"), 0);
  for (const synth_shape *s = synth_shapes(); s->name; s++) {
    synth_params p = {.shape = s, .vocab_path = vocab, .seed = 7, .n_layer = 1, .n_threads = 2};
    assert_int_equal(quantize_parse_ftype("Q8_0", &p.ftype), 0);
    snprintf(path, sizeof path, "%s/synth-%s.gguf", tmp, s->name);
    synth_info info;
    int rc = synth_write(&p, path, NULL, NULL, &info, err, sizeof err);
    if (rc) fail_msg("synth %s: %s", s->name, err);
    assert_int_equal(info.n_vocab, 4096);
    assert_true(info.vocab_differs);
    model *m;
    if (model_load(path, &m, err, sizeof err)) fail_msg("model_load %s: %s", s->name, err);
    assert_int_equal(m->hp.n_embd, s->n_embd);
    assert_int_equal(m->hp.n_layer, 1);
    assert_int_equal(m->hp.n_head, s->n_head);
    assert_int_equal(m->hp.n_head_kv, s->n_head_kv);
    assert_int_equal(m->hp.n_ff, s->n_ff);
    assert_int_equal(m->hp.n_vocab, 4096);
    assert_int_equal(m->output_tied, s->tied);
    assert_int_equal(m->hp.has_qkv_bias, s->qkv_bias);
    assert_int_equal(m->rope_freqs != NULL, s->llama3_rope);
    if (m->rope_freqs) {
      /* Llama 3.1's long-context rope scaling as published with the model (config.json
       * rope_scaling: factor 32, low_freq_factor 1, high_freq_factor 4, original context
       * 8192; base 500000): wavelengths under 8192/4 keep their frequency, over 8192/1 are
       * divided by 32, in between a smooth mix. The file stores the divisors. */
      assert_string_equal(s->name, "llama3.2-1b");
      const double pi = 3.14159265358979323846, base = 500000, factor = 32, lo = 1, hi = 4, ctx = 8192;
      int half = m->hp.n_rot / 2, n_kept = 0, n_scaled = 0, n_mixed = 0;
      for (int i = 0; i < half; i++) {
        double freq = pow(base, -2.0 * i / m->hp.n_rot), wavelen = 2 * pi / freq, div;
        if (wavelen < ctx / hi) div = 1, n_kept++;
        else if (wavelen > ctx / lo) div = factor, n_scaled++;
        else {
          double smooth = (ctx / wavelen - lo) / (hi - lo);
          div = freq / ((1 - smooth) * freq / factor + smooth * freq);
          n_mixed++;
        }
        if (fabs(m->rope_freqs[i] - div) > 1e-5 * div) fail_msg("rope_freqs[%d] = %g, want %g", i, m->rope_freqs[i], div);
      }
      assert_true(n_kept > 0 && n_scaled > 0 && n_mixed > 0); /* all three regimes occur */
    }
    model_free(m);
    check_finite_logits(path);
  }
  /* Padding to the real vocabulary, and determinism. */
  const synth_shape *s = synth_find_shape("smollm2-135m");
  assert_non_null(s);
  assert_null(synth_find_shape("gpt-5"));
  char p2[1024];
  synth_params p = {.shape = s, .vocab_path = vocab, .seed = 7, .n_layer = 1, .pad_vocab = 1, .n_threads = 1};
  quantize_parse_ftype("Q4_0", &p.ftype);
  snprintf(path, sizeof path, "%s/pad-a.gguf", tmp);
  snprintf(p2, sizeof p2, "%s/pad-b.gguf", tmp);
  synth_info info;
  assert_int_equal(synth_write(&p, path, NULL, NULL, &info, err, sizeof err), 0);
  assert_int_equal(info.n_vocab, s->n_vocab);
  assert_false(info.vocab_differs);
  p.n_threads = 2;
  assert_int_equal(synth_write(&p, p2, NULL, NULL, NULL, err, sizeof err), 0);
  assert_int_equal(tu_sh("cmp -s '%s' '%s'", path, p2), 0);
  check_finite_logits(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pick_type),
      cmocka_unit_test(test_q8_tensors_match_llamacpp),
      cmocka_unit_test(test_q8_file_identical),
      cmocka_unit_test(test_q8_teacher_forcing),
      cmocka_unit_test(test_q4_types_load),
      cmocka_unit_test(test_unsupported_input),
      cmocka_unit_test(test_synth_shapes),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
