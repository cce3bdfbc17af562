/* llm/synth — random-weight models at real shapes; see synth.h. */
#include "llm/synth.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* Published hyperparameters (the models' config.json files). Head size is 64 in all three.
 * smollm2-135m has SmolLM2-135M's blocks with the Llama-3 vocabulary (128,256 tokens, 180M
 * parameters; the real model has 49,152): the shape the reference llama.cpp figures of the
 * benchmark were measured at. */
static const synth_shape shapes[] = {
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 128256, 8192, 100000.0f, 1e-5f, 1, 0, 0, 0, 0, 0, 0},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f, 1, 1, 0, 0, 0, 0, 0},
    {"llama3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 500000.0f, 1e-5f, 1, 0, 1, 32.0f, 1.0f, 4.0f,
     8192},
    {0},
};

const synth_shape *synth_shapes(void) { return shapes; }

const synth_shape *synth_find_shape(const char *name) {
  for (const synth_shape *s = shapes; name && s->name; s++)
    if (!strcmp(s->name, name)) return s;
  return NULL;
}

/* ---- random numbers: xoshiro256** seeded through splitmix64 ------------------------------- */

typedef struct rng {
  uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(rng *r) {
  uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return out;
}

static void rng_seed(rng *r, uint64_t seed, const char *name) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the name */
  for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
  uint64_t x = seed ^ h;
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

/* Approximately N(0, 1): the sum of four 16-bit uniforms from one draw, centred and scaled
 * (Irwin-Hall, variance 4/12). */
static float rng_normal(rng *r) {
  uint64_t v = rng_next(r);
  uint32_t sum = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) + (uint32_t)((v >> 32) & 0xffff) +
                 (uint32_t)(v >> 48);
  return ((float)sum * (1.0f / 65536.0f) - 2.0f + 2.0f / 65536.0f) * 1.7320508f;
}

/* ---- writing ---------------------------------------------------------------------------- */

static int failf(char *err, size_t cap, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int failf(char *err, size_t cap, int rc, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* Copies one kv of src into w (key as a C string). */
static int copy_kv(gguf_writer *w, const gguf_file *src, const gguf_kv *kv, const char *key) {
  if (kv->type == GGUF_VT_STRING) {
    gguf_str str;
    int rc = gguf_get_str(src, key, &str);
    return rc ? rc : gguf_writer_set_str(w, key, str.ptr, (size_t)str.len);
  }
  if (kv->type != GGUF_VT_ARRAY) return gguf_writer_set_scalar(w, key, kv->type, kv->data);
  if (kv->arr_type == GGUF_VT_STRING) {
    gguf_str *items = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *items);
    if (!items) return ERR_NOMEM;
    for (uint64_t i = 0; i < kv->arr_n; i++) items[i] = gguf_arr_str(kv, i);
    int rc = gguf_writer_set_arr_str(w, key, items, kv->arr_n);
    free(items);
    return rc;
  }
  return gguf_writer_set_arr(w, key, kv->arr_type, kv->data, kv->arr_n);
}

/* Pads tokens/scores/token_type of the vocabulary file v up to n entries. */
static int pad_vocab(gguf_writer *w, const gguf_file *v, const gguf_kv *toks, uint64_t n) {
  uint64_t n0 = toks->arr_n;
  gguf_str *items = malloc(n * sizeof *items);
  char *names = malloc((size_t)(n - n0) * 24 + 1);
  float *scores = calloc(n, sizeof *scores);
  int32_t *types = calloc(n, sizeof *types);
  int rc = ERR_NOMEM;
  if (!items || !names || !scores || !types) goto done;
  for (uint64_t i = 0; i < n0; i++) items[i] = gguf_arr_str(toks, i);
  char *p = names;
  for (uint64_t i = n0; i < n; i++) {
    int k = snprintf(p, 24, "<synth_pad_%llu>", (unsigned long long)(i - n0));
    items[i] = (gguf_str){p, (uint64_t)k};
    p += k;
  }
  const gguf_kv *sc = NULL, *ty = NULL;
  gguf_get_arr(v, "tokenizer.ggml.scores", &sc);
  gguf_get_arr(v, "tokenizer.ggml.token_type", &ty);
  for (uint64_t i = 0; i < n; i++) {
    scores[i] = sc && i < sc->arr_n && sc->arr_type != GGUF_VT_STRING ? (float)gguf_arr_num(sc, i) : -1000.0f;
    types[i] = ty && i < ty->arr_n && ty->arr_type != GGUF_VT_STRING ? (int32_t)gguf_arr_num(ty, i) : 5;
  }
  if ((rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", items, n))) goto done;
  if (sc && (rc = gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, n))) goto done;
  if (ty && (rc = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, n))) goto done;
done:
  free(items);
  free(names);
  free(scores);
  free(types);
  return rc;
}

typedef struct gen {
  const synth_params *p;
  quantize_sink *sink;
  int n_layer;
  size_t i, n;          /* tensor counter for progress */
  quantize_progress_cb cb;
  void *user;
  int64_t n_params;
  uint64_t bytes;
  float *buf;           /* chunk of F32 rows (owned) */
  size_t buf_cap;       /* floats */
} gen;

enum { FILL_NORMAL, FILL_NORM, FILL_BIAS };

/* Generates and writes one tensor of ne[0] x ne[1] (ne[1] = 1 for vectors). */
static int put_tensor(gen *g, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1, int fill) {
  uint64_t ne[2] = {(uint64_t)ne0, (uint64_t)ne1};
  qtype t = quantize_pick_type(&g->p->ftype, name, n_dims, ne, g->n_layer, g->p->shape->tied);
  qtype want = quantize_wanted_type(&g->p->ftype, name, n_dims, g->n_layer, g->p->shape->tied);
  uint64_t nbytes = quant_row_size(t, ne0) * (uint64_t)ne1;
  if (g->cb) g->cb(g->user, g->i, g->n, name, ne0, QT_F32, want, t);
  g->i++;
  int rc = quantize_sink_begin(g->sink, name, n_dims, ne, t, nbytes);
  if (rc) return rc;
  rng r;
  rng_seed(&r, g->p->seed, name);
  float scale = fill == FILL_NORMAL ? 1.0f / sqrtf((float)ne0) : 0.02f;
  int64_t chunk = (int64_t)(g->buf_cap / (size_t)ne0);
  if (chunk < 1) return ERR_INVAL;
  for (int64_t r0 = 0; r0 < ne1 && !rc; r0 += chunk) {
    int64_t nr = ne1 - r0 < chunk ? ne1 - r0 : chunk;
    size_t n = (size_t)(nr * ne0);
    for (size_t k = 0; k < n; k++) g->buf[k] = (fill == FILL_NORM ? 1.0f : 0.0f) + scale * rng_normal(&r);
    rc = quantize_sink_rows(g->sink, QT_F32, g->buf, t, ne0, nr, g->p->n_threads);
  }
  g->n_params += ne0 * ne1;
  g->bytes += nbytes;
  return rc;
}

/* Writes rope_freqs.weight: Llama 3's per-frequency divisors for a long context. */
static int put_rope_freqs(gen *g, int n_rot) {
  const synth_shape *s = g->p->shape;
  int n = n_rot / 2;
  uint64_t ne[1] = {(uint64_t)n};
  if (g->cb) g->cb(g->user, g->i, g->n, "rope_freqs.weight", n, QT_F32, QT_F32, QT_F32);
  g->i++;
  int rc = quantize_sink_begin(g->sink, "rope_freqs.weight", 1, ne, QT_F32, (uint64_t)n * 4);
  if (rc) return rc;
  const double pi = 3.14159265358979323846;
  double low_wl = s->rope_orig_ctx / s->rope_low, high_wl = s->rope_orig_ctx / s->rope_high;
  for (int i = 0; i < n; i++) {
    double freq = pow(s->rope_base, -2.0 * i / n_rot), wl = 2 * pi / freq, div;
    if (wl < high_wl) div = 1.0;
    else if (wl > low_wl) div = s->rope_factor;
    else {
      double smooth = (s->rope_orig_ctx / wl - s->rope_low) / (s->rope_high - s->rope_low);
      div = 1.0 / ((1 - smooth) / s->rope_factor + smooth);
    }
    g->buf[i] = (float)div;
  }
  g->n_params += n;
  g->bytes += (uint64_t)n * 4;
  return quantize_sink_rows(g->sink, QT_F32, g->buf, QT_F32, n, 1, 1);
}

int synth_write(const synth_params *p, const char *out_path, quantize_progress_cb cb, void *user,
                synth_info *info_out, char *err, size_t err_cap) {
  const synth_shape *s = p->shape;
  gguf_file *v = NULL;
  gguf_writer *w = NULL;
  gen g = {.p = p, .cb = cb, .user = user};
  char key[160], name[96];
  int rc;
  if (!s || !p->vocab_path) return failf(err, err_cap, ERR_INVAL, "no shape or vocabulary file");
  g.n_layer = p->n_layer > 0 ? p->n_layer : s->n_layer;
  if ((rc = gguf_open(p->vocab_path, &v, err, err_cap))) return rc;
  const gguf_kv *toks;
  if (gguf_get_arr(v, "tokenizer.ggml.tokens", &toks) || toks->arr_type != GGUF_VT_STRING || toks->arr_n == 0) {
    rc = failf(err, err_cap, ERR_FORMAT, "%s has no tokenizer.ggml.tokens list", p->vocab_path);
    goto done;
  }
  int n_vocab = (int)toks->arr_n;
  int differs = n_vocab != s->n_vocab;
  if (differs && p->pad_vocab && n_vocab < s->n_vocab) n_vocab = s->n_vocab, differs = 0;
  if (!(w = gguf_writer_new())) {
    rc = ERR_NOMEM;
    goto done;
  }
  for (size_t i = 0; i < gguf_n_kv(v) && !rc; i++) {
    const gguf_kv *kv = gguf_kv_at(v, i);
    if (kv->key.len < 10 || kv->key.len >= sizeof key || memcmp(kv->key.ptr, "tokenizer.", 10)) continue;
    memcpy(key, kv->key.ptr, kv->key.len);
    key[kv->key.len] = 0;
    rc = copy_kv(w, v, kv, key);
  }
  if (!rc && n_vocab > (int)toks->arr_n) rc = pad_vocab(w, v, toks, (uint64_t)n_vocab);
  const char *a = s->arch;
  char gname[96];
  snprintf(gname, sizeof gname, "synth %s", s->name);
  int hd = s->n_embd / s->n_head;
#define SETU(k, val) (snprintf(key, sizeof key, "%s." k, a), gguf_writer_set_u32(w, key, (uint32_t)(val)))
#define SETF(k, val) (snprintf(key, sizeof key, "%s." k, a), gguf_writer_set_f32(w, key, (float)(val)))
  if (rc || (rc = gguf_writer_set_str(w, "general.architecture", a, strlen(a))) ||
      (rc = gguf_writer_set_str(w, "general.name", gname, strlen(gname))) ||
      (rc = gguf_writer_set_u32(w, "general.file_type", p->ftype.file_type)) ||
      (rc = gguf_writer_set_u32(w, "general.quantization_version", 2)) || (rc = SETU("vocab_size", n_vocab)) ||
      (rc = SETU("context_length", s->n_ctx)) || (rc = SETU("embedding_length", s->n_embd)) ||
      (rc = SETU("block_count", g.n_layer)) || (rc = SETU("feed_forward_length", s->n_ff)) ||
      (rc = SETU("attention.head_count", s->n_head)) || (rc = SETU("attention.head_count_kv", s->n_head_kv)) ||
      (rc = SETU("rope.dimension_count", hd)) || (rc = SETF("rope.freq_base", s->rope_base)) ||
      (rc = SETF("attention.layer_norm_rms_epsilon", s->rms_eps))) {
    failf(err, err_cap, rc, "cannot build metadata: %s", err_str(rc));
    goto done;
  }
#undef SETU
#undef SETF
  gguf_close(v);
  v = NULL;
  if ((rc = quantize_sink_new(out_path, &g.sink))) {
    failf(err, err_cap, rc, "cannot create a scratch file next to %s: %s", out_path, err_str(rc));
    goto done;
  }
  g.buf_cap = (size_t)4 << 20;
  if ((size_t)s->n_ff > g.buf_cap || (size_t)s->n_embd > g.buf_cap || !(g.buf = malloc(g.buf_cap * sizeof *g.buf))) {
    rc = ERR_NOMEM;
    goto done;
  }
  g.n = 2 + (size_t)g.n_layer * (9 + (s->qkv_bias ? 3 : 0)) + !s->tied + (s->llama3_rope ? 1 : 0);
  int64_t d = s->n_embd, q = (int64_t)s->n_head * hd, kv = (int64_t)s->n_head_kv * hd, ff = s->n_ff;
  if ((rc = put_tensor(&g, "token_embd.weight", 2, d, n_vocab, FILL_NORMAL))) goto tfail;
  for (int il = 0; il < g.n_layer; il++) {
#define T(suffix, nd, a0, a1, fill)                                                      \
  (snprintf(name, sizeof name, "blk.%d." suffix, il), put_tensor(&g, name, nd, a0, a1, fill))
    if ((rc = T("attn_norm.weight", 1, d, 1, FILL_NORM)) || (rc = T("attn_q.weight", 2, d, q, FILL_NORMAL)) ||
        (rc = T("attn_k.weight", 2, d, kv, FILL_NORMAL)) || (rc = T("attn_v.weight", 2, d, kv, FILL_NORMAL)) ||
        (s->qkv_bias && ((rc = T("attn_q.bias", 1, q, 1, FILL_BIAS)) || (rc = T("attn_k.bias", 1, kv, 1, FILL_BIAS)) ||
                         (rc = T("attn_v.bias", 1, kv, 1, FILL_BIAS)))) ||
        (rc = T("attn_output.weight", 2, q, d, FILL_NORMAL)) || (rc = T("ffn_norm.weight", 1, d, 1, FILL_NORM)) ||
        (rc = T("ffn_gate.weight", 2, d, ff, FILL_NORMAL)) || (rc = T("ffn_up.weight", 2, d, ff, FILL_NORMAL)) ||
        (rc = T("ffn_down.weight", 2, ff, d, FILL_NORMAL)))
      goto tfail;
#undef T
  }
  if ((rc = put_tensor(&g, "output_norm.weight", 1, d, 1, FILL_NORM))) goto tfail;
  if (!s->tied && (rc = put_tensor(&g, "output.weight", 2, d, n_vocab, FILL_NORMAL))) goto tfail;
  if (s->llama3_rope && (rc = put_rope_freqs(&g, hd))) goto tfail;
  if ((rc = quantize_sink_finish(g.sink, w, out_path))) {
    failf(err, err_cap, rc, "cannot write %s: %s", out_path, err_str(rc));
    goto done;
  }
  if (info_out) *info_out = (synth_info){n_vocab, differs, g.n_params, g.bytes};
  goto done;
tfail:
  failf(err, err_cap, rc, "generating tensor %zu: %s", g.i, err_str(rc));
done:
  free(g.buf);
  quantize_sink_free(g.sink);
  gguf_writer_free(w);
  gguf_close(v);
  return rc;
}
