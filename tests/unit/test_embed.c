/* llm/engine embeddings (engine_embed, engine_embd_pooling) against llama.cpp's
 * llama-embedding (the JSON files in tests/data/embeddings, see its README): for stories15M F32 and
 * Q8_0 and the tiny SentencePiece model, five texts (short, non-ASCII, one of 75-87
 * tokens) under mean, cls and last pooling, L2-normalized: token counts equal; F32: cosine
 * >= 0.9999 and every element within 1e-4; Q8_0: cosine >= 0.999 and within 5e-3 (its
 * activations are quantized, and llama.cpp's batched Q8_0 kernels sum in another order:
 * the Q8_0 logits tests allow 0.3 for the same reason). The long text also
 * runs in batches of 16 and 1 token and on 1 and 3 threads. The pooling comes from the
 * GGUF key "{arch}.pooling_type" (copies of the tiny model written here with it set; none
 * and rank are refused, absent means mean), and bad arguments are errors. The shared
 * models come from ../shared (skipped without it). */
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
#include "llm/tok.h"

#define DATA "tests/data/embeddings"

static const char *const pool_names[] = {"mean", "cls", "last"};
static const engine_pooling pools[] = {ENGINE_POOL_MEAN, ENGINE_POOL_CLS, ENGINE_POOL_LAST};

typedef struct loaded {
  model *m;
  tok *t;
  json_t *ref;
} loaded;

static void load(const char *name, loaded *l) {
  char path[1024], rel[256], err[512];
  snprintf(path, sizeof path, DATA "/%s.json", name);
  l->ref = tu_load_json(path);
  snprintf(rel, sizeof rel, "%s", json_string_value(json_object_get(l->ref, "model")));
  assert_int_equal(tu_shared_path(path, sizeof path, rel), 0);
  if (model_load(path, &l->m, err, sizeof err)) fail_msg("model_load %s: %s", path, err);
  if (tok_new_from_gguf(l->m->gguf, &l->t, err, sizeof err)) fail_msg("tokenizer of %s: %s", path, err);
}

static void unload(loaded *l) {
  tok_free(l->t);
  model_free(l->m);
  json_decref(l->ref);
}

static engine *new_engine(const model *m, int n_ctx, int n_batch, int n_threads) {
  engine_params p = engine_default_params();
  p.n_ctx = n_ctx;
  p.n_batch = n_batch;
  p.n_threads = n_threads;
  engine *e;
  char err[256];
  if (engine_new(m, &p, &e, err, sizeof err)) fail_msg("engine_new: %s", err);
  return e;
}

static int text_ids(const tok *t, const char *text, int32_t *ids, int cap) {
  return tok_encode(t, text, strlen(text), tok_add_bos(t), 0, ids, (size_t)cap);
}

static double g_min_cos = 0.9999; /* the cosine a vector must reach */

/* Fails unless v is within tol of llama.cpp's ref and their cosine >= g_min_cos. */
static void check_vec(const float *v, int n, json_t *ref, double tol, const char *what) {
  assert_int_equal((int)json_array_size(ref), n);
  double dot = 0, na = 0, nb = 0, worst = 0;
  for (int i = 0; i < n; i++) {
    double r = json_number_value(json_array_get(ref, (size_t)i)), x = v[i];
    dot += x * r;
    na += x * x;
    nb += r * r;
    if (fabs(x - r) > worst) worst = fabs(x - r);
  }
  double cos = dot / sqrt(na * nb);
  if (!(cos >= g_min_cos) || !(worst <= tol)) fail_msg("%s: cosine %.7f, max |diff| %.2e (tolerance %.0e)", what, cos, worst, tol);
}

/* Every text under every pooling, on an engine of (n_batch, n_threads). */
static void check_model(const char *name, double tol, int n_batch, int n_threads) {
  TU_REQUIRE_SHARED();
  loaded l;
  load(name, &l);
  int n_ctx = (int)json_integer_value(json_object_get(l.ref, "n_ctx"));
  engine *e = new_engine(l.m, n_ctx, n_batch, n_threads);
  int dim = engine_n_embd(e);
  assert_int_equal(dim, l.m->hp.n_embd);
  int32_t *ids = malloc((size_t)n_ctx * sizeof *ids);
  float *v = malloc((size_t)dim * sizeof *v);
  size_t i;
  json_t *in;
  json_array_foreach(json_object_get(l.ref, "inputs"), i, in) {
    const char *text = json_string_value(json_object_get(in, "text"));
    int n = text_ids(l.t, text, ids, n_ctx);
    assert_int_equal(n, (int)json_integer_value(json_object_get(in, "n_tokens")));
    for (int p = 0; p < 3; p++) {
      assert_int_equal(engine_embed(e, ids, n, pools[p], v), 0);
      engine_embd_normalize(v, dim);
      char what[160];
      snprintf(what, sizeof what, "%s, text %zu, %s pooling, batch %d, %d threads", name, i, pool_names[p], n_batch,
               n_threads);
      check_vec(v, dim, json_object_get(in, pool_names[p]), tol, what);
    }
  }
  free(ids);
  free(v);
  engine_free(e);
  unload(&l);
}

static void test_stories_f32(void **state) {
  (void)state;
  check_model("stories15M-F32", 1e-4, 0, 2);
}

static void test_stories_q8(void **state) {
  (void)state;
  g_min_cos = 0.999;
  check_model("stories15M-Q8_0", 5e-3, 0, 2);
  g_min_cos = 0.9999;
}

static void test_tiny_f32(void **state) {
  (void)state;
  check_model("tiny-spm4k-F32", 1e-4, 0, 2);
}

/* Pieces of 16 tokens, one token at a time, other thread counts: the same vectors. */
static void test_batches_and_threads(void **state) {
  (void)state;
  check_model("stories15M-F32", 1e-4, 16, 3);
  check_model("tiny-spm4k-F32", 1e-4, 1, 1);
}

/* A copy of the tiny model with llama.pooling_type = value (-1: the key left out). */
static void write_pooled(const char *dst, int value) {
  char src[1024], err[256];
  tu_shared_path(src, sizeof src, "testdata/tiny-spm4k-F32.gguf");
  gguf_file *f;
  assert_int_equal(gguf_open(src, &f, err, sizeof err), 0);
  gguf_writer *w = gguf_writer_new();
  assert_non_null(w);
  assert_int_equal(gguf_writer_copy_kv(w, f), 0);
  if (value >= 0) assert_int_equal(gguf_writer_set_u32(w, "llama.pooling_type", (uint32_t)value), 0);
  for (size_t i = 0; i < gguf_n_tensors(f); i++) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    char name[GGUF_MAX_NAME + 1];
    snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
    assert_int_equal(gguf_writer_add_tensor(w, name, t->n_dims, t->ne, t->type, t->data, t->nbytes), 0);
  }
  assert_int_equal(gguf_writer_write(w, dst), 0);
  gguf_writer_free(w);
  gguf_close(f);
}

/* The pooling named in the file is the one used; its vectors are llama.cpp's for that
 * --pooling (which overrides the file, so the reference is the same). */
static void test_pooling_from_metadata(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  loaded l;
  load("tiny-spm4k-F32", &l);
  json_t *in = json_array_get(json_object_get(l.ref, "inputs"), 2);
  const char *text = json_string_value(json_object_get(in, "text"));
  char dir[512], path[600], err[256];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/pooled.gguf", dir);
  static const struct { int value; const char *ref; } cases[] = {{-1, "mean"}, {1, "mean"}, {2, "cls"}, {3, "last"}};
  int32_t ids[64];
  float v[1024];
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    write_pooled(path, cases[c].value);
    model *m;
    if (model_load(path, &m, err, sizeof err)) fail_msg("model_load: %s", err);
    assert_int_equal(m->hp.pooling, cases[c].value);
    engine_pooling p;
    assert_int_equal(engine_embd_pooling(m, &p, err, sizeof err), 0);
    engine *e = new_engine(m, 512, 0, 2);
    assert_true(engine_n_embd(e) <= 1024);
    int n = text_ids(l.t, text, ids, 64);
    assert_int_equal(engine_embed(e, ids, n, p, v), 0);
    engine_embd_normalize(v, engine_n_embd(e));
    char what[80];
    snprintf(what, sizeof what, "pooling_type %d", cases[c].value);
    check_vec(v, engine_n_embd(e), json_object_get(in, cases[c].ref), 1e-4, what);
    engine_free(e);
    model_free(m);
  }
  /* none (a vector per token) and rank (a reranker) are refused, saying why */
  for (int value = 0; value <= 4; value += 4) {
    write_pooled(path, value);
    model *m;
    if (model_load(path, &m, err, sizeof err)) fail_msg("model_load: %s", err);
    engine_pooling p;
    assert_int_equal(engine_embd_pooling(m, &p, err, sizeof err), ERR_UNSUPPORTED);
    assert_non_null(strstr(err, value ? "reranker" : "no pooling"));
    model_free(m);
  }
  /* a value outside llama.cpp's enum is a malformed file */
  write_pooled(path, 7);
  model *bad = NULL;
  assert_int_equal(model_load(path, &bad, err, sizeof err), ERR_FORMAT);
  assert_non_null(strstr(err, "pooling_type"));
  tu_rm_rf(dir);
  unload(&l);
}

static void test_errors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  loaded l;
  load("tiny-spm4k-F32", &l);
  engine *e = new_engine(l.m, 8, 0, 1);
  int32_t ids[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  float v[1024];
  assert_int_equal(engine_embed(e, ids, 9, ENGINE_POOL_MEAN, v), ERR_RANGE); /* past the context */
  assert_int_equal(engine_embed(e, ids, 0, ENGINE_POOL_MEAN, v), ERR_INVAL);
  assert_int_equal(engine_embed(e, ids, 3, ENGINE_POOL_NONE, v), ERR_UNSUPPORTED);
  assert_int_equal(engine_embed(e, ids, 3, ENGINE_POOL_RANK, v), ERR_UNSUPPORTED);
  ids[1] = l.m->hp.n_vocab;
  assert_int_equal(engine_embed(e, ids, 3, ENGINE_POOL_MEAN, v), ERR_INVAL);
  ids[1] = 2;
  assert_int_equal(engine_embed(e, ids, 8, ENGINE_POOL_LAST, v), 0); /* exactly the context */
  /* the zero vector stays zero; others get unit length */
  float z[3] = {0, 0, 0}, u[2] = {3, 4};
  engine_embd_normalize(z, 3);
  engine_embd_normalize(u, 2);
  assert_true(z[0] == 0 && z[1] == 0 && z[2] == 0);
  assert_true(fabsf(u[0] - 0.6f) < 1e-7f && fabsf(u[1] - 0.8f) < 1e-7f);
  engine_free(e);
  unload(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stories_f32),
      cmocka_unit_test(test_stories_q8),
      cmocka_unit_test(test_tiny_f32),
      cmocka_unit_test(test_batches_and_threads),
      cmocka_unit_test(test_pooling_from_metadata),
      cmocka_unit_test(test_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
