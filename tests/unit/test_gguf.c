/* GGUF reader and writer: the four reference models (facts from shared/testdata/README.md
 * and shared/models/README.md), typed getters, a writer round trip over every value type,
 * metadata copy, and hostile input: every truncation of a small file and targeted
 * corruptions of counts, types, shapes, offsets and names, each with its expected error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/fs.h"
#include "llm/gguf.h"
#include "llm/quant.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static gguf_file *open_shared(const char *rel) {
  char path[1024], err[512];
  assert_int_equal(tu_shared_path(path, sizeof path, rel), 0);
  gguf_file *f = NULL;
  int rc = gguf_open(path, &f, err, sizeof err);
  if (rc) fail_msg("%s: %s", rel, err);
  return f;
}

static int64_t get_i(const gguf_file *f, const char *key) {
  int64_t v = -1;
  if (gguf_get_int(f, key, &v)) fail_msg("missing integer %s", key);
  return v;
}

static void assert_str(const gguf_file *f, const char *key, const char *want) {
  gguf_str s;
  assert_int_equal(gguf_get_str(f, key, &s), 0);
  if (!gguf_str_eq(s, want)) fail_msg("%s = '%.*s', want '%s'", key, (int)s.len, s.ptr, want);
}

static const gguf_tensor *tensor(const gguf_file *f, const char *name) {
  const gguf_tensor *t = gguf_find_tensor(f, name);
  if (!t) fail_msg("tensor %s missing", name);
  return t;
}

/* Counts tensors of type t. */
static size_t count_type(const gguf_file *f, uint32_t t) {
  size_t n = 0;
  for (size_t i = 0; i < gguf_n_tensors(f); i++) n += gguf_tensor_at(f, i)->type == t;
  return n;
}

/* Shared llama checks: hyperparameters, vocabulary, tensor names and data layout. */
static void check_llama(const gguf_file *f, int64_t embd, int64_t blocks, int64_t heads, int64_t heads_kv,
                        int64_t ff, uint64_t vocab) {
  assert_int_equal(gguf_version(f), 3);
  assert_int_equal(gguf_alignment(f), 32);
  assert_str(f, "general.architecture", "llama");
  assert_str(f, "tokenizer.ggml.model", "llama");
  assert_int_equal(get_i(f, "llama.embedding_length"), embd);
  assert_int_equal(get_i(f, "llama.block_count"), blocks);
  assert_int_equal(get_i(f, "llama.attention.head_count"), heads);
  assert_int_equal(get_i(f, "llama.attention.head_count_kv"), heads_kv);
  assert_int_equal(get_i(f, "llama.feed_forward_length"), ff);
  assert_int_equal(get_i(f, "tokenizer.ggml.bos_token_id"), 1);
  assert_int_equal(get_i(f, "tokenizer.ggml.eos_token_id"), 2);
  double eps;
  assert_int_equal(gguf_get_float(f, "llama.attention.layer_norm_rms_epsilon", &eps), 0);
  assert_true(eps > 0.9e-5 && eps < 1.1e-5);
  const gguf_kv *toks, *scores, *types;
  assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.tokens", &toks), 0);
  assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.scores", &scores), 0);
  assert_int_equal(gguf_get_arr(f, "tokenizer.ggml.token_type", &types), 0);
  assert_int_equal(toks->arr_type, GGUF_VT_STRING);
  assert_int_equal(toks->arr_n, vocab);
  assert_int_equal(scores->arr_n, vocab);
  assert_int_equal(types->arr_n, vocab);
  assert_true(gguf_str_eq(gguf_arr_str(toks, 1), "<s>"));
  assert_true(gguf_str_eq(gguf_arr_str(toks, 2), "</s>"));
  assert_true(gguf_str_eq(gguf_arr_str(toks, 3 + 0x41), "<0x41>"));
  assert_int_equal(gguf_arr_str(toks, vocab).len, 0); /* out of range: empty, no crash */
  assert_true(gguf_arr_num(types, 1) == 3);             /* control */
  assert_true(gguf_arr_num(types, 3) == 6);             /* byte */
  assert_int_equal(gguf_n_tensors(f), 2 + 9 * (size_t)blocks + 1);
  const gguf_tensor *te = tensor(f, "token_embd.weight");
  assert_int_equal(te->n_dims, 2);
  assert_int_equal(te->ne[0], embd);
  assert_int_equal(te->ne[1], vocab);
  assert_int_equal(tensor(f, "blk.0.ffn_down.weight")->ne[0], ff);
  assert_int_equal(tensor(f, "output_norm.weight")->n_dims, 1);
  assert_null(gguf_find_tensor(f, "blk.99.attn_q.weight"));
  for (size_t i = 0; i < gguf_n_tensors(f); i++) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    assert_int_equal(t->offset % 32, 0);
    assert_ptr_equal(t->data, gguf_base(f) + gguf_data_offset(f) + t->offset);
    assert_true(gguf_data_offset(f) + t->offset + t->nbytes <= gguf_file_size(f));
    assert_ptr_equal(gguf_find_tensor(f, "") , NULL);
  }
  assert_null(gguf_tensor_at(f, gguf_n_tensors(f)));
  assert_null(gguf_kv_at(f, gguf_n_kv(f)));
}

/* ---- reference models ----------------------------------------------------------------------- */

static void test_tiny_f32(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gguf_file *f = open_shared("testdata/tiny-spm4k-F32.gguf");
  check_llama(f, 64, 2, 4, 2, 172, 4096);
  assert_int_equal(gguf_file_size(f), 2549920);
  assert_int_equal(get_i(f, "llama.context_length"), 512);
  assert_int_equal(get_i(f, "llama.rope.dimension_count"), 16);
  assert_int_equal(get_i(f, "general.file_type"), 0);
  int b = 0;
  assert_int_equal(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b), 0);
  assert_int_equal(b, 1);
  double base;
  assert_int_equal(gguf_get_float(f, "llama.rope.freq_base", &base), 0);
  assert_true(base == 10000.0);
  assert_int_equal(count_type(f, QT_F32), 21);
  /* F32 file order: token_embd first, then blocks, then output_norm and output. */
  assert_true(gguf_str_eq(gguf_tensor_at(f, 0)->name, "token_embd.weight"));
  assert_true(gguf_str_eq(gguf_tensor_at(f, 20)->name, "output.weight"));
  assert_int_equal(tensor(f, "output.weight")->nbytes, 64 * 4096 * 4);
  gguf_close(f);
}

static void test_tiny_q8_0(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gguf_file *f = open_shared("testdata/tiny-spm4k-Q8_0.gguf");
  check_llama(f, 64, 2, 4, 2, 172, 4096);
  assert_int_equal(get_i(f, "general.file_type"), 7);
  assert_true(gguf_str_eq(gguf_tensor_at(f, 0)->name, "output.weight"));
  static const char *const q8[] = {"token_embd.weight", "output.weight", "blk.0.attn_q.weight",
                                   "blk.1.attn_k.weight", "blk.0.attn_v.weight", "blk.1.attn_output.weight",
                                   "blk.0.ffn_gate.weight", "blk.1.ffn_up.weight"};
  for (size_t i = 0; i < sizeof q8 / sizeof *q8; i++) assert_int_equal(tensor(f, q8[i])->type, QT_Q8_0);
  static const char *const f32[] = {"blk.0.ffn_down.weight", "blk.1.ffn_down.weight", "blk.0.attn_norm.weight",
                                    "blk.1.ffn_norm.weight", "output_norm.weight"};
  for (size_t i = 0; i < sizeof f32 / sizeof *f32; i++) assert_int_equal(tensor(f, f32[i])->type, QT_F32);
  assert_int_equal(count_type(f, QT_Q8_0), 2 + 6 * 2);
  assert_int_equal(count_type(f, QT_F32), 1 + 3 * 2);
  assert_int_equal(tensor(f, "token_embd.weight")->nbytes, 4096 * 64 / 32 * 34);
  gguf_close(f);
}

static void test_stories_f32(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gguf_file *f = open_shared("models/stories15M-F32.gguf");
  check_llama(f, 288, 6, 6, 6, 768, 32000);
  assert_int_equal(gguf_file_size(f), 98357952);
  assert_int_equal(count_type(f, QT_F32), 57);
  int64_t v;
  assert_int_equal(gguf_get_int(f, "general.file_type", &v), ERR_NOTFOUND);
  uint64_t u;
  assert_int_equal(gguf_get_uint(f, "tokenizer.ggml.padding_token_id", &u), 0);
  assert_int_equal(u, 4294967295u);
  gguf_close(f);
}

static void test_stories_q8_0(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gguf_file *f = open_shared("models/stories15M-Q8_0.gguf");
  check_llama(f, 288, 6, 6, 6, 768, 32000);
  assert_int_equal(get_i(f, "general.file_type"), 7);
  assert_true(gguf_str_eq(gguf_tensor_at(f, 0)->name, "output.weight"));
  assert_int_equal(count_type(f, QT_Q8_0), 2 + 7 * 6);
  assert_int_equal(count_type(f, QT_F32), 1 + 2 * 6);
  gguf_close(f);
}

static void test_getters(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  gguf_file *f = open_shared("testdata/tiny-spm4k-F32.gguf");
  int64_t i;
  uint64_t u;
  double d;
  int b;
  gguf_str s;
  const gguf_kv *a;
  assert_int_equal(gguf_get_int(f, "no.such.key", &i), ERR_NOTFOUND);
  assert_int_equal(gguf_get_str(f, "llama.block_count", &s), ERR_FORMAT);
  assert_int_equal(gguf_get_int(f, "general.architecture", &i), ERR_FORMAT);
  assert_int_equal(gguf_get_int(f, "tokenizer.ggml.tokens", &i), ERR_FORMAT);
  assert_int_equal(gguf_get_bool(f, "llama.block_count", &b), ERR_FORMAT);
  assert_int_equal(gguf_get_arr(f, "llama.block_count", &a), ERR_FORMAT);
  assert_int_equal(gguf_get_float(f, "llama.block_count", &d), 0); /* integers convert */
  assert_true(d == 2.0);
  assert_int_equal(gguf_get_int(f, "llama.rope.freq_base", &i), ERR_FORMAT);
  assert_int_equal(gguf_get_uint(f, "llama.block_count", &u), 0);
  assert_int_equal(u, 2);
  assert_non_null(gguf_find_kv(f, "general.name"));
  assert_null(gguf_find_kv(f, "general.nam"));
  assert_null(gguf_find_kv(f, "general.namex"));
  gguf_close(f);
}

/* ---- writer ----------------------------------------------------------------------------------- */

static void write_and_open(gguf_writer *w, const char *dir, gguf_file **out) {
  char path[512], err[512];
  snprintf(path, sizeof path, "%s/out.gguf", dir);
  int rc = gguf_writer_write(w, path);
  if (rc) fail_msg("write: %s", err_str(rc));
  rc = gguf_open(path, out, err, sizeof err);
  if (rc) fail_msg("reopen: %s", err);
}

static void test_writer_round_trip(void **state) {
  (void)state;
  char dir[256];
  tu_tmpdir(dir, sizeof dir);
  gguf_writer *w = gguf_writer_new();
  assert_non_null(w);
  /* Every scalar type through set_scalar, plus the typed setters. */
  uint8_t u8 = 200, b1 = 1;
  int8_t i8 = -100;
  uint16_t u16 = 60000;
  int16_t i16 = -30000;
  int64_t i64 = -5000000000LL;
  double f64 = 3.25;
  assert_int_equal(gguf_writer_set_scalar(w, "t.u8", GGUF_VT_UINT8, &u8), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.i8", GGUF_VT_INT8, &i8), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.u16", GGUF_VT_UINT16, &u16), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.i16", GGUF_VT_INT16, &i16), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.i64", GGUF_VT_INT64, &i64), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.f64", GGUF_VT_FLOAT64, &f64), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.b8", GGUF_VT_BOOL, &b1), 0);
  assert_int_equal(gguf_writer_set_scalar(w, "t.s", GGUF_VT_STRING, "x"), ERR_INVAL);
  assert_int_equal(gguf_writer_set_u32(w, "t.u32", 4000000000u), 0);
  assert_int_equal(gguf_writer_set_i32(w, "t.i32", -7), 0);
  assert_int_equal(gguf_writer_set_u64(w, "t.u64", 1ull << 40), 0);
  assert_int_equal(gguf_writer_set_f32(w, "t.f32", 0.5f), 0);
  assert_int_equal(gguf_writer_set_bool(w, "t.bool", 0), 0);
  assert_int_equal(gguf_writer_set_str(w, "t.str", "hello", 5), 0);
  assert_int_equal(gguf_writer_set_str(w, "t.empty", "", 0), 0);
  assert_int_equal(gguf_writer_set_u32(w, "t.replaced", 1), 0);
  assert_int_equal(gguf_writer_set_str(w, "t.replaced", "now a string", 12), 0);
  /* Arrays: numeric, empty, strings. */
  int32_t ai[3] = {-1, 0, 7};
  float af[2] = {1.5f, -2.0f};
  assert_int_equal(gguf_writer_set_arr(w, "a.i32", GGUF_VT_INT32, ai, 3), 0);
  assert_int_equal(gguf_writer_set_arr(w, "a.f32", GGUF_VT_FLOAT32, af, 2), 0);
  assert_int_equal(gguf_writer_set_arr(w, "a.empty", GGUF_VT_UINT8, NULL, 0), 0);
  assert_int_equal(gguf_writer_set_arr(w, "a.bad", GGUF_VT_STRING, ai, 1), ERR_INVAL);
  assert_int_equal(gguf_writer_set_arr(w, "a.bad", GGUF_VT_ARRAY, ai, 1), ERR_INVAL);
  gguf_str items[3] = {{"one", 3}, {"", 0}, {"three", 5}};
  assert_int_equal(gguf_writer_set_arr_str(w, "a.str", items, 3), 0);
  assert_int_equal(gguf_writer_set_arr_str(w, "a.nostr", NULL, 0), 0);
  assert_int_equal(gguf_writer_set_u32(w, "", 1), ERR_INVAL);
  /* Tensors: F32 matrix, Q8_0 rows, F16 vector; bad ones refused. */
  float m[12];
  for (int i = 0; i < 12; i++) m[i] = (float)i;
  uint8_t q8[2 * 2 * 34], f16[16];
  for (size_t i = 0; i < sizeof q8; i++) q8[i] = (uint8_t)i;
  for (size_t i = 0; i < sizeof f16; i++) f16[i] = (uint8_t)(255 - i);
  uint64_t ne_m[2] = {4, 3}, ne_q[2] = {64, 2}, ne_h[1] = {8};
  assert_int_equal(gguf_writer_add_tensor(w, "m", 2, ne_m, QT_F32, m, sizeof m), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "q", 2, ne_q, QT_Q8_0, q8, sizeof q8), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "h", 1, ne_h, QT_F16, f16, sizeof f16), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "m", 2, ne_m, QT_F32, m, sizeof m), ERR_EXISTS);
  assert_int_equal(gguf_writer_add_tensor(w, "x", 2, ne_m, QT_F32, m, 4), ERR_INVAL);     /* size */
  assert_int_equal(gguf_writer_add_tensor(w, "x", 2, ne_m, QT_Q8_0, q8, 34), ERR_INVAL);  /* blocks */
  assert_int_equal(gguf_writer_add_tensor(w, "x", 2, ne_m, 99, m, sizeof m), ERR_INVAL);   /* type */
  assert_int_equal(gguf_writer_add_tensor(w, "x", 0, ne_m, QT_F32, m, sizeof m), ERR_INVAL);
  assert_int_equal(gguf_writer_add_tensor(w, "x", 5, ne_m, QT_F32, m, sizeof m), ERR_INVAL);

  gguf_file *f;
  write_and_open(w, dir, &f);
  gguf_writer_free(w);
  int64_t i;
  uint64_t u;
  double d;
  int b;
  gguf_str s;
  assert_int_equal(gguf_n_kv(f), 20);
  assert_int_equal(gguf_get_uint(f, "t.u8", &u), 0); assert_int_equal(u, 200);
  assert_int_equal(gguf_get_int(f, "t.i8", &i), 0); assert_int_equal(i, -100);
  assert_int_equal(gguf_get_uint(f, "t.u16", &u), 0); assert_int_equal(u, 60000);
  assert_int_equal(gguf_get_int(f, "t.i16", &i), 0); assert_int_equal(i, -30000);
  assert_int_equal(gguf_get_int(f, "t.i64", &i), 0); assert_true(i == -5000000000LL);
  assert_int_equal(gguf_get_float(f, "t.f64", &d), 0); assert_true(d == 3.25);
  assert_int_equal(gguf_get_bool(f, "t.b8", &b), 0); assert_int_equal(b, 1);
  assert_int_equal(gguf_get_uint(f, "t.u32", &u), 0); assert_int_equal(u, 4000000000u);
  assert_int_equal(gguf_get_int(f, "t.i32", &i), 0); assert_int_equal(i, -7);
  assert_int_equal(gguf_get_uint(f, "t.i32", &u), ERR_FORMAT); /* negative */
  assert_int_equal(gguf_get_uint(f, "t.u64", &u), 0); assert_true(u == 1ull << 40);
  assert_int_equal(gguf_get_float(f, "t.f32", &d), 0); assert_true(d == 0.5);
  assert_int_equal(gguf_get_bool(f, "t.bool", &b), 0); assert_int_equal(b, 0);
  assert_int_equal(gguf_get_str(f, "t.str", &s), 0); assert_true(gguf_str_eq(s, "hello"));
  assert_int_equal(gguf_get_str(f, "t.empty", &s), 0); assert_int_equal(s.len, 0);
  assert_int_equal(gguf_get_str(f, "t.replaced", &s), 0); assert_true(gguf_str_eq(s, "now a string"));
  const gguf_kv *a;
  assert_int_equal(gguf_get_arr(f, "a.i32", &a), 0);
  assert_int_equal(a->arr_type, GGUF_VT_INT32);
  assert_int_equal(a->arr_n, 3);
  assert_true(gguf_arr_num(a, 0) == -1 && gguf_arr_num(a, 2) == 7 && gguf_arr_num(a, 3) == 0);
  assert_int_equal(gguf_get_arr(f, "a.f32", &a), 0);
  assert_true(gguf_arr_num(a, 0) == 1.5 && gguf_arr_num(a, 1) == -2.0);
  assert_int_equal(gguf_get_arr(f, "a.empty", &a), 0);
  assert_int_equal(a->arr_n, 0);
  assert_int_equal(gguf_get_arr(f, "a.str", &a), 0);
  assert_true(gguf_str_eq(gguf_arr_str(a, 0), "one") && gguf_arr_str(a, 1).len == 0 &&
              gguf_str_eq(gguf_arr_str(a, 2), "three"));
  assert_true(gguf_arr_num(a, 0) == 0); /* not numeric */
  assert_int_equal(gguf_get_arr(f, "a.nostr", &a), 0);
  assert_int_equal(a->arr_n, 0);
  assert_int_equal(gguf_n_tensors(f), 3);
  const gguf_tensor *t = tensor(f, "m");
  assert_int_equal(t->ne[0], 4);
  assert_int_equal(t->ne[1], 3);
  assert_int_equal(t->ne[2], 1);
  assert_memory_equal(t->data, m, sizeof m);
  t = tensor(f, "q");
  assert_int_equal(t->type, QT_Q8_0);
  assert_memory_equal(t->data, q8, sizeof q8);
  assert_int_equal(t->offset % 32, 0);
  t = tensor(f, "h");
  assert_int_equal(t->n_dims, 1);
  assert_memory_equal(t->data, f16, sizeof f16);
  gguf_close(f);
  tu_rm_rf(dir);
}

static void test_writer_alignment(void **state) {
  (void)state;
  char dir[256];
  tu_tmpdir(dir, sizeof dir);
  gguf_writer *w = gguf_writer_new();
  uint8_t d[3 * 34] = {0};
  uint64_t ne[1] = {32};
  assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 256), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "a", 1, ne, QT_Q8_0, d, 34), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "b", 1, ne, QT_Q8_0, d + 34, 34), 0);
  gguf_file *f;
  write_and_open(w, dir, &f);
  assert_int_equal(gguf_alignment(f), 256);
  assert_int_equal(gguf_data_offset(f) % 256, 0);
  assert_int_equal(tensor(f, "b")->offset, 256);
  gguf_close(f);
  /* A bad alignment is refused at write time. */
  char path[512];
  snprintf(path, sizeof path, "%s/bad.gguf", dir);
  assert_int_equal(gguf_writer_set_u32(w, "general.alignment", 48), 0);
  assert_int_equal(gguf_writer_write(w, path), ERR_INVAL);
  assert_int_equal(fs_exists(path), 0);
  gguf_writer_free(w);
  tu_rm_rf(dir);
}

/* Copying a real model's metadata reproduces every value byte for byte. */
static void test_writer_copy_kv(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256];
  tu_tmpdir(dir, sizeof dir);
  gguf_file *src = open_shared("testdata/tiny-spm4k-Q8_0.gguf"), *f;
  gguf_writer *w = gguf_writer_new();
  assert_int_equal(gguf_writer_copy_kv(w, src), 0);
  const gguf_tensor *t = tensor(src, "blk.0.ffn_down.weight");
  assert_int_equal(gguf_writer_add_tensor(w, "blk.0.ffn_down.weight", t->n_dims, t->ne, t->type, t->data, t->nbytes), 0);
  write_and_open(w, dir, &f);
  gguf_writer_free(w);
  assert_int_equal(gguf_n_kv(f), gguf_n_kv(src));
  for (size_t i = 0; i < gguf_n_kv(src); i++) {
    const gguf_kv *a = gguf_kv_at(src, i), *b = gguf_kv_at(f, i);
    assert_int_equal(a->key.len, b->key.len);
    assert_memory_equal(a->key.ptr, b->key.ptr, a->key.len);
    assert_int_equal(a->type, b->type);
    if (a->type == GGUF_VT_ARRAY) {
      assert_int_equal(a->arr_type, b->arr_type);
      assert_int_equal(a->arr_n, b->arr_n);
      if (a->arr_type == GGUF_VT_STRING)
        for (uint64_t k = 0; k < a->arr_n; k++) {
          gguf_str x = gguf_arr_str(a, k), y = gguf_arr_str(b, k);
          assert_int_equal(x.len, y.len);
          assert_memory_equal(x.ptr, y.ptr, x.len);
        }
      else
        for (uint64_t k = 0; k < a->arr_n; k++) assert_true(gguf_arr_num(a, k) == gguf_arr_num(b, k));
    }
  }
  const gguf_tensor *t2 = tensor(f, "blk.0.ffn_down.weight");
  assert_memory_equal(t2->data, t->data, t->nbytes);
  gguf_close(f);
  gguf_close(src);
  tu_rm_rf(dir);
}

/* ---- hostile input ---------------------------------------------------------------------------- */

/* A small writer-made file: kvs of several kinds and three tensors "t.a", "t.b", "t.c"; the
 * last tensor's data is a whole number of alignment units so every proper prefix is
 * invalid. Returns malloc'd bytes. */
static uint8_t *sample(size_t *len) {
  char dir[256], path[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/s.gguf", dir);
  gguf_writer *w = gguf_writer_new();
  gguf_str items[2] = {{"<s>", 3}, {"hi", 2}};
  float vals[2] = {0.5f, 1.5f};
  static float data[8 + 8 + 32];
  uint64_t ne8[1] = {8}, ne32[2] = {32, 1};
  assert_int_equal(gguf_writer_set_str(w, "k.a", "llama", 5), 0);
  assert_int_equal(gguf_writer_set_arr_str(w, "k.b", items, 2), 0);
  assert_int_equal(gguf_writer_set_arr(w, "k.c", GGUF_VT_FLOAT32, vals, 2), 0);
  assert_int_equal(gguf_writer_set_u32(w, "k.d", 64), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "t.a", 1, ne8, QT_F32, data, 32), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "t.b", 1, ne8, QT_F32, data + 8, 32), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "t.c", 2, ne32, QT_F32, data + 16, 128), 0);
  assert_int_equal(gguf_writer_write(w, path), 0);
  gguf_writer_free(w);
  buf b;
  buf_init(&b);
  assert_int_equal(fs_read_file(path, 1 << 20, &b), 0);
  tu_rm_rf(dir);
  *len = b.len;
  return b.ptr;
}

/* Position just past the first occurrence of the length-prefixed string s. */
static size_t after(const uint8_t *p, size_t n, const char *s) {
  size_t k = strlen(s);
  for (size_t i = 8; i + k <= n; i++)
    if (p[i - 8] == k && !memcmp(p + i, s, k)) return i + k;
  fail_msg("'%s' not in sample", s);
  return 0;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Opens a corrupted copy and checks the error code and that the message names a byte. */
static void expect(const uint8_t *p, size_t n, int want, const char *what) {
  gguf_file *f = NULL;
  char err[512] = "";
  int rc = gguf_open_mem(p, n, &f, err, sizeof err);
  if (rc != want) fail_msg("%s: got %d (%s) want %d; err: %s", what, rc, err_str(rc), want, err);
  assert_null(f);
  if (!strstr(err, "at byte") || strchr(err, '\n')) fail_msg("%s: message '%s'", what, err);
  if (getenv("GGUF_TEST_VERBOSE")) print_message("%s: %s\n", what, err);
}

static void test_truncation(void **state) {
  (void)state;
  size_t n;
  uint8_t *s = sample(&n);
  gguf_file *f;
  char err[512];
  assert_int_equal(gguf_open_mem(s, n, &f, err, sizeof err), 0);
  gguf_close(f);
  for (size_t len = 0; len < n; len++) {
    /* A fresh heap copy of exactly len bytes, so ASan sees any read past the end. */
    uint8_t *p = malloc(len ? len : 1);
    memcpy(p, s, len);
    char what[48];
    snprintf(what, sizeof what, "truncated at %zu", len);
    expect(p, len, ERR_FORMAT, what);
    free(p);
  }
  free(s);
}

/* GGUF v2 (64-bit counts, like v3; v3 only added the big-endian variant) opens the same:
 * the sample with its version field set to 2 gives the same keys and tensors. */
static void test_version_2(void **state) {
  (void)state;
  size_t n;
  uint8_t *s = sample(&n);
  uint8_t *p2 = malloc(n);
  memcpy(p2, s, n);
  put_le(p2 + 4, 2, 4);
  gguf_file *a, *b;
  char err[512];
  assert_int_equal(gguf_open_mem(s, n, &a, err, sizeof err), 0);
  if (gguf_open_mem(p2, n, &b, err, sizeof err)) fail_msg("v2: %s", err);
  assert_int_equal(gguf_version(b), 2);
  assert_int_equal(gguf_n_kv(b), gguf_n_kv(a));
  assert_int_equal(gguf_n_tensors(b), gguf_n_tensors(a));
  for (size_t i = 0; i < gguf_n_tensors(a); i++) {
    const gguf_tensor *x = gguf_tensor_at(a, i), *y = gguf_tensor_at(b, i);
    assert_int_equal(x->name.len, y->name.len);
    assert_memory_equal(x->name.ptr, y->name.ptr, x->name.len);
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->offset, y->offset);
    assert_int_equal(x->nbytes, y->nbytes);
    assert_memory_equal(x->data, y->data, x->nbytes);
  }
  gguf_close(a);
  gguf_close(b);
  free(p2);
  free(s);
}

/* Applies one corruption to a copy of the sample and checks the outcome. */
typedef struct corruption {
  const char *what;
  const char *anchor; /* a string in the sample (NULL: absolute offset) */
  long delta;         /* bytes after the anchor's end */
  uint64_t value;
  int width;          /* bytes written little-endian */
  int want;
} corruption;

static void test_corruptions(void **state) {
  (void)state;
  size_t n;
  uint8_t *s = sample(&n);
  /* After a key: type u32; after an array key: type, elem type u32, count u64. After a
   * tensor name: n_dims u32, ne u64 x n_dims, type u32, offset u64. */
  static const corruption cases[] = {
      {"bad magic", NULL, 0, 0x46554746, 4, ERR_FORMAT},
      {"version 1", NULL, 4, 1, 4, ERR_UNSUPPORTED},
      {"version 4", NULL, 4, 4, 4, ERR_UNSUPPORTED},
      {"version big-endian", NULL, 4, 0x03000000, 4, ERR_UNSUPPORTED},
      {"huge tensor count", NULL, 8, 1ull << 40, 8, ERR_TOOBIG},
      {"tensor count past file", NULL, 8, 60000, 8, ERR_FORMAT},
      {"huge kv count", NULL, 16, ~0ull, 8, ERR_TOOBIG},
      {"kv count past file", NULL, 16, 1000, 8, ERR_FORMAT},
      {"huge key length", NULL, 24, 1ull << 62, 8, ERR_TOOBIG},
      {"key length past file", NULL, 24, 4000, 8, ERR_FORMAT},
      {"empty key", NULL, 24, 0, 8, ERR_FORMAT},
      {"unknown value type", "k.a", 0, 99, 4, ERR_FORMAT},
      {"huge string length", "k.a", 4, 1ull << 40, 8, ERR_TOOBIG},
      {"string past file", "k.a", 4, 1ull << 20, 8, ERR_FORMAT},
      {"nested array", "k.b", 4, GGUF_VT_ARRAY, 4, ERR_FORMAT},
      {"unknown element type", "k.b", 4, 77, 4, ERR_FORMAT},
      {"huge array count", "k.b", 8, ~0ull, 8, ERR_TOOBIG},
      {"string array past file", "k.b", 8, 1u << 20, 8, ERR_FORMAT},
      {"float array past file", "k.c", 8, 1u << 20, 8, ERR_FORMAT},
      {"duplicate key", "k.d", -1, 'c', 1, ERR_FORMAT},
      {"n_dims 0", "t.a", 0, 0, 4, ERR_FORMAT},
      {"n_dims 5", "t.a", 0, 5, 4, ERR_FORMAT},
      {"ne 0", "t.a", 4, 0, 8, ERR_FORMAT},
      {"ne overflow", "t.c", 12, 1ull << 62, 8, ERR_FORMAT},
      {"unknown tensor type", "t.a", 12, 99, 4, ERR_UNSUPPORTED},
      {"not whole blocks", "t.a", 12, QT_Q8_0, 4, ERR_FORMAT},
      {"misaligned offset", "t.b", 16, 33, 8, ERR_FORMAT},
      {"overlapping tensors", "t.b", 16, 0, 8, ERR_FORMAT},
      {"partial overlap", "t.c", 24, 32, 8, ERR_FORMAT},
      {"data past EOF", "t.c", 24, 1u << 20, 8, ERR_FORMAT},
      {"offset huge", "t.c", 24, ~0ull << 6, 8, ERR_FORMAT},
      {"duplicate tensor name", "t.b", -1, 'a', 1, ERR_FORMAT},
      {"tensor name huge", "t.a", -11, 1ull << 40, 8, ERR_TOOBIG},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const corruption *c = &cases[i];
    uint8_t *p = malloc(n);
    memcpy(p, s, n);
    size_t at = (c->anchor ? after(s, n, c->anchor) : 0) + (size_t)c->delta;
    put_le(p + at, c->value, c->width);
    expect(p, n, c->want, c->what);
    free(p);
  }
  free(s);
}

/* general.alignment must be a u32 power of two. */
static void test_bad_alignment(void **state) {
  (void)state;
  char dir[256], path[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/a.gguf", dir);
  static const struct { gguf_vtype t; uint32_t v; } cases[] = {{GGUF_VT_UINT32, 3}, {GGUF_VT_UINT32, 0},
                                                               {GGUF_VT_INT32, 32}, {GGUF_VT_UINT16, 32}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    /* Written as another key, then renamed in the bytes (the writer refuses bad values). */
    gguf_writer *w = gguf_writer_new();
    uint8_t v[4] = {(uint8_t)cases[i].v, 0, 0, 0};
    assert_int_equal(gguf_writer_set_scalar(w, "general.alignmenX", cases[i].t, v), 0);
    assert_int_equal(gguf_writer_write(w, path), 0);
    gguf_writer_free(w);
    buf b;
    buf_init(&b);
    assert_int_equal(fs_read_file(path, 1 << 20, &b), 0);
    uint8_t *k = memmem(b.ptr, b.len, "alignmenX", 9);
    assert_non_null(k);
    k[8] = 't';
    expect(b.ptr, b.len, ERR_FORMAT, "bad alignment");
    buf_deinit(&b);
  }
  tu_rm_rf(dir);
}

static void test_open_errors(void **state) {
  (void)state;
  gguf_file *f = (gguf_file *)1;
  char err[512];
  assert_int_equal(gguf_open("/nonexistent/x.gguf", &f, err, sizeof err), -ENOENT);
  assert_null(f);
  assert_non_null(strstr(err, "/nonexistent/x.gguf"));
  assert_true(gguf_open("/", &f, err, sizeof err) < 0);
  assert_int_equal(gguf_open_mem("", 0, &f, err, sizeof err), ERR_FORMAT);
  assert_int_equal(gguf_open_mem("GGUF", 4, &f, NULL, 0), ERR_FORMAT); /* err may be NULL */
  gguf_close(NULL);
  gguf_writer_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiny_f32),         cmocka_unit_test(test_tiny_q8_0),
      cmocka_unit_test(test_stories_f32),      cmocka_unit_test(test_stories_q8_0),
      cmocka_unit_test(test_getters),          cmocka_unit_test(test_writer_round_trip),
      cmocka_unit_test(test_writer_alignment), cmocka_unit_test(test_writer_copy_kv),
      cmocka_unit_test(test_truncation),       cmocka_unit_test(test_version_2),
      cmocka_unit_test(test_corruptions),
      cmocka_unit_test(test_bad_alignment),    cmocka_unit_test(test_open_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
