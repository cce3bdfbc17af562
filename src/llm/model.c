/* llm/model — hyperparameters and tensor binding; see model.h.
 *
 * Binding is table-free on purpose: every tensor is looked up by its GGUF name and checked
 * on the spot against the shape the hyperparameters imply, so an inconsistent file fails
 * with a message such as "blk.3.attn_k.weight: shape [288 x 96], expected [288 x 288]"
 * (GGUF order: ne[0] x ne[1]). Architecture differences are a few flags set in
 * read_hparams; optional tensors (biases, q/k norms, rope_freqs) are bound when the flags
 * ask for them. */
#include "llm/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* Hard caps (far above any real model, small enough to keep size arithmetic safe). */
#define MAX_EMBD (1 << 16)
#define MAX_FF (1 << 20)
#define MAX_HEADS 1024
#define MAX_HEAD_DIM 1024
#define MAX_VOCAB (1 << 22)
#define MAX_CTX (1 << 24)

typedef struct binder {
  const gguf_file *f;
  char *err;
  size_t err_cap;
  int64_t n_params;
  size_t n_bytes;
} binder;

static int fail(binder *b, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(binder *b, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  err_vset(b->err, b->err_cap, rc, fmt, ap);
  va_end(ap);
  return rc;
}

/* ---- hyperparameters ------------------------------------------------------------------ */

/* Reads "{arch}.{key}" as an integer in [lo, hi]. Absent: *out = def (or an error when
 * def < 0, meaning required). */
static int hp_int(binder *b, const char *arch, const char *key, int64_t def, int64_t lo, int64_t hi,
                  int *out) {
  char full[160];
  snprintf(full, sizeof full, "%s.%s", arch, key);
  int64_t v;
  int rc = gguf_get_int(b->f, full, &v);
  if (rc == ERR_NOTFOUND) {
    if (def < 0) return fail(b, ERR_FORMAT, "metadata %s is missing", full);
    v = def;
  } else if (rc) {
    return fail(b, ERR_FORMAT, "metadata %s is not an integer", full);
  }
  if (v < lo || v > hi)
    return fail(b, ERR_FORMAT, "metadata %s = %lld is out of range [%lld, %lld]", full, (long long)v,
                (long long)lo, (long long)hi);
  *out = (int)v;
  return 0;
}

static int hp_float(binder *b, const char *arch, const char *key, double def, int required, float *out) {
  char full[160];
  snprintf(full, sizeof full, "%s.%s", arch, key);
  double v;
  int rc = gguf_get_float(b->f, full, &v);
  if (rc == ERR_NOTFOUND) {
    if (required) return fail(b, ERR_FORMAT, "metadata %s is missing", full);
    v = def;
  } else if (rc) {
    return fail(b, ERR_FORMAT, "metadata %s is not a number", full);
  }
  if (!isfinite(v)) return fail(b, ERR_FORMAT, "metadata %s is not finite", full);
  *out = (float)v;
  return 0;
}

static int read_hparams(binder *b, model *m) {
  model_hparams *hp = &m->hp;
  gguf_str a;
  if (gguf_get_str(b->f, "general.architecture", &a))
    return fail(b, ERR_FORMAT, "metadata general.architecture is missing");
  if (a.len == 0 || a.len >= sizeof m->arch_name)
    return fail(b, ERR_UNSUPPORTED, "unsupported architecture (name of %llu bytes)", (unsigned long long)a.len);
  memcpy(m->arch_name, a.ptr, a.len);
  m->arch_name[a.len] = 0;
  const char *arch = m->arch_name;
  if (!strcmp(arch, "llama")) hp->arch = MODEL_ARCH_LLAMA;
  else if (!strcmp(arch, "qwen2")) hp->arch = MODEL_ARCH_QWEN2;
  else if (!strcmp(arch, "qwen3")) hp->arch = MODEL_ARCH_QWEN3;
  else return fail(b, ERR_UNSUPPORTED, "architecture '%s' is not supported (llama, qwen2, qwen3 are)", arch);

  int rc;
  char key[160];
  if ((rc = hp_int(b, arch, "embedding_length", -1, 1, MAX_EMBD, &hp->n_embd)) ||
      (rc = hp_int(b, arch, "block_count", -1, 1, MODEL_MAX_LAYERS, &hp->n_layer)) ||
      (rc = hp_int(b, arch, "attention.head_count", -1, 1, MAX_HEADS, &hp->n_head)) ||
      (rc = hp_int(b, arch, "attention.head_count_kv", hp->n_head, 1, MAX_HEADS, &hp->n_head_kv)) ||
      (rc = hp_int(b, arch, "feed_forward_length", -1, 1, MAX_FF, &hp->n_ff)) ||
      (rc = hp_int(b, arch, "context_length", 2048, 1, MAX_CTX, &hp->n_ctx_train)))
    return rc;
  if (hp->n_head % hp->n_head_kv)
    return fail(b, ERR_FORMAT, "%s.attention.head_count %d is not a multiple of head_count_kv %d", arch,
                hp->n_head, hp->n_head_kv);
  int def_hd = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
  if ((rc = hp_int(b, arch, "attention.key_length", def_hd, 2, MAX_HEAD_DIM, &hp->head_dim))) return rc;
  int vlen;
  if ((rc = hp_int(b, arch, "attention.value_length", hp->head_dim, 2, MAX_HEAD_DIM, &vlen))) return rc;
  if (vlen != hp->head_dim)
    return fail(b, ERR_UNSUPPORTED, "%s.attention.value_length %d differs from key_length %d", arch, vlen,
                hp->head_dim);
  if ((rc = hp_int(b, arch, "rope.dimension_count", hp->head_dim, 2, hp->head_dim, &hp->n_rot))) return rc;
  if (hp->n_rot % 2) return fail(b, ERR_FORMAT, "%s.rope.dimension_count %d is odd", arch, hp->n_rot);
  if ((rc = hp_float(b, arch, "rope.freq_base", 10000.0, 0, &hp->rope_base))) return rc;
  if (hp->rope_base <= 0) return fail(b, ERR_FORMAT, "%s.rope.freq_base must be positive", arch);
  if ((rc = hp_float(b, arch, "attention.layer_norm_rms_epsilon", 1e-5, 1, &hp->rms_eps))) return rc;
  if (hp->rms_eps < 0) return fail(b, ERR_FORMAT, "%s.attention.layer_norm_rms_epsilon is negative", arch);
  snprintf(key, sizeof key, "%s.pooling_type", arch);
  hp->pooling = -1; /* absent */
  if (gguf_find_kv(b->f, key) && (rc = hp_int(b, arch, "pooling_type", 0, 0, 4, &hp->pooling))) return rc;

  /* RoPE scaling: only "none" (or linear with factor 1) is implemented. */
  snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
  gguf_str st;
  if (gguf_get_str(b->f, key, &st) == 0 && !gguf_str_eq(st, "none")) {
    double factor = 1.0;
    snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
    gguf_get_float(b->f, key, &factor);
    if (factor != 1.0 && factor != 0.0)
      return fail(b, ERR_UNSUPPORTED, "RoPE scaling '%.*s' (factor %g) is not supported", (int)st.len, st.ptr,
                  factor);
  }

  hp->rope = hp->arch == MODEL_ARCH_LLAMA ? MODEL_ROPE_NORMAL : MODEL_ROPE_NEOX;
  hp->has_qkv_bias = hp->arch == MODEL_ARCH_QWEN2;
  hp->has_qk_norm = hp->arch == MODEL_ARCH_QWEN3;

  /* Vocabulary size: explicit key, else the token list, else the embedding rows. */
  int nv = 0;
  if ((rc = hp_int(b, arch, "vocab_size", 0, 0, MAX_VOCAB, &nv))) return rc;
  if (nv == 0) {
    const gguf_kv *toks;
    if (gguf_get_arr(b->f, "tokenizer.ggml.tokens", &toks) == 0 && toks->arr_n <= MAX_VOCAB) nv = (int)toks->arr_n;
  }
  if (nv == 0) {
    const gguf_tensor *t = gguf_find_tensor(b->f, "token_embd.weight");
    if (t && t->ne[1] <= MAX_VOCAB) nv = (int)t->ne[1];
  }
  if (nv <= 0) return fail(b, ERR_FORMAT, "cannot tell the vocabulary size (no %s.vocab_size, no token list)", arch);
  hp->n_vocab = nv;
  return 0;
}

/* ---- tensors -------------------------------------------------------------------------- */

static int check_type(binder *b, const char *name, const gguf_tensor *t, int64_t n_in) {
  const quant_traits *qt = quant_traits_of(t->type);
  if (!qt || !qt->supported)
    return fail(b, ERR_UNSUPPORTED, "%s: tensor type %s (%u) is not supported", name, quant_name(t->type), t->type);
  if (!quant_row_ok((qtype)t->type, n_in))
    return fail(b, ERR_FORMAT, "%s: rows of %lld elements are not whole %s blocks", name, (long long)n_in,
                qt->name);
  return 0;
}

/* Binds a matrix of n_out rows by n_in columns (GGUF ne = [n_in, n_out]). */
static int bind_mat(binder *b, const char *name, int64_t n_in, int64_t n_out, model_mat *out) {
  const gguf_tensor *t = gguf_find_tensor(b->f, name);
  if (!t) return fail(b, ERR_FORMAT, "tensor %s is missing", name);
  if ((int64_t)t->ne[0] != n_in || (int64_t)t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1)
    return fail(b, ERR_FORMAT, "%s: shape [%llu x %llu x %llu x %llu], expected [%lld x %lld]", name,
                (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                (unsigned long long)t->ne[3], (long long)n_in, (long long)n_out);
  int rc = check_type(b, name, t, n_in);
  if (rc) return rc;
  const quant_traits *qt = quant_traits_of(t->type);
  const quant_traits *vt = quant_traits_of(qt->vec_dot_type);
  if (!vt || !vt->supported || !quant_row_ok(qt->vec_dot_type, n_in))
    return fail(b, ERR_UNSUPPORTED, "%s: type %s has no usable dot product for rows of %lld", name, qt->name,
                (long long)n_in);
  size_t rb = quant_row_size((qtype)t->type, n_in);
  if (t->nbytes < rb * (uint64_t)n_out)
    return fail(b, ERR_FORMAT, "%s: %llu bytes of data, expected %zu", name, (unsigned long long)t->nbytes,
                rb * (size_t)n_out);
  out->data = t->data;
  out->type = (qtype)t->type;
  out->n_in = n_in;
  out->n_out = n_out;
  out->row_bytes = rb;
  b->n_params += n_in * n_out;
  b->n_bytes += rb * (size_t)n_out;
  return 0;
}

/* Binds a vector of n elements, converted to owned F32. Absent and !required: *out = NULL. */
static int bind_vec(binder *b, const char *name, int64_t n, int required, float **out) {
  *out = NULL;
  const gguf_tensor *t = gguf_find_tensor(b->f, name);
  if (!t) return required ? fail(b, ERR_FORMAT, "tensor %s is missing", name) : 0;
  if ((int64_t)t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
    return fail(b, ERR_FORMAT, "%s: shape [%llu x %llu], expected [%lld]", name, (unsigned long long)t->ne[0],
                (unsigned long long)t->ne[1], (long long)n);
  int rc = check_type(b, name, t, n);
  if (rc) return rc;
  if (t->nbytes < quant_row_size((qtype)t->type, n))
    return fail(b, ERR_FORMAT, "%s: %llu bytes of data, too short", name, (unsigned long long)t->nbytes);
  float *v = malloc((size_t)n * sizeof *v);
  if (!v) return fail(b, ERR_NOMEM, "out of memory for %s", name);
  quant_dequantize_row((qtype)t->type, t->data, v, n);
  for (int64_t i = 0; i < n; i++)
    if (!isfinite(v[i])) {
      free(v);
      return fail(b, ERR_FORMAT, "%s: element %lld is not finite", name, (long long)i);
    }
  *out = v;
  b->n_params += n;
  b->n_bytes += t->nbytes;
  return 0;
}

static int bind_layer(binder *b, const model_hparams *hp, int il, model_layer *L) {
  const int64_t d = hp->n_embd, q_dim = (int64_t)hp->n_head * hp->head_dim,
                kv_dim = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
  char nm[96];
  int rc;
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), nm)
  if ((rc = bind_vec(b, NAME("attn_norm.weight"), d, 1, &L->attn_norm)) ||
      (rc = bind_mat(b, NAME("attn_q.weight"), d, q_dim, &L->wq)) ||
      (rc = bind_mat(b, NAME("attn_k.weight"), d, kv_dim, &L->wk)) ||
      (rc = bind_mat(b, NAME("attn_v.weight"), d, kv_dim, &L->wv)) ||
      (rc = bind_mat(b, NAME("attn_output.weight"), q_dim, d, &L->wo)) ||
      (rc = bind_vec(b, NAME("ffn_norm.weight"), d, 1, &L->ffn_norm)) ||
      (rc = bind_mat(b, NAME("ffn_gate.weight"), d, ff, &L->w_gate)) ||
      (rc = bind_mat(b, NAME("ffn_up.weight"), d, ff, &L->w_up)) ||
      (rc = bind_mat(b, NAME("ffn_down.weight"), ff, d, &L->w_down)))
    return rc;
  /* Biases are required for qwen2 and honoured when present for llama (some fine-tunes). */
  int need_bias = hp->has_qkv_bias;
  if ((rc = bind_vec(b, NAME("attn_q.bias"), q_dim, need_bias, &L->bq)) ||
      (rc = bind_vec(b, NAME("attn_k.bias"), kv_dim, need_bias, &L->bk)) ||
      (rc = bind_vec(b, NAME("attn_v.bias"), kv_dim, need_bias, &L->bv)))
    return rc;
  if (hp->has_qk_norm) {
    if ((rc = bind_vec(b, NAME("attn_q_norm.weight"), hp->head_dim, 1, &L->q_norm)) ||
        (rc = bind_vec(b, NAME("attn_k_norm.weight"), hp->head_dim, 1, &L->k_norm)))
      return rc;
  }
#undef NAME
  return 0;
}

static void free_layer(model_layer *L) {
  free(L->attn_norm);
  free(L->bq);
  free(L->bk);
  free(L->bv);
  free(L->q_norm);
  free(L->k_norm);
  free(L->ffn_norm);
}

void model_free(model *m) {
  if (!m) return;
  if (m->layers)
    for (int i = 0; i < m->hp.n_layer; i++) free_layer(&m->layers[i]);
  free(m->layers);
  free(m->output_norm);
  free(m->rope_freqs);
  gguf_close(m->gguf);
  free(m);
}

int model_from_gguf(gguf_file *f, model **out, char *err, size_t err_cap) {
  *out = NULL;
  if (err && err_cap) err[0] = 0;
  quant_init();
  binder b = {.f = f, .err = err, .err_cap = err_cap};
  model *m = calloc(1, sizeof *m);
  if (!m) {
    gguf_close(f);
    return fail(&b, ERR_NOMEM, "out of memory");
  }
  m->gguf = f;
  int rc = read_hparams(&b, m);
  if (rc) goto fail;
  const model_hparams *hp = &m->hp;
  if ((rc = bind_mat(&b, "token_embd.weight", hp->n_embd, hp->n_vocab, &m->tok_embd))) goto fail;
  m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
  if (!m->layers) {
    rc = fail(&b, ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int il = 0; il < hp->n_layer; il++)
    if ((rc = bind_layer(&b, hp, il, &m->layers[il]))) goto fail;
  if ((rc = bind_vec(&b, "output_norm.weight", hp->n_embd, 1, &m->output_norm))) goto fail;
  if (gguf_find_tensor(f, "output.weight")) {
    if ((rc = bind_mat(&b, "output.weight", hp->n_embd, hp->n_vocab, &m->output))) goto fail;
  } else {
    m->output = m->tok_embd;
    m->output_tied = 1;
  }
  if ((rc = bind_vec(&b, "rope_freqs.weight", hp->n_rot / 2, 0, &m->rope_freqs))) goto fail;
  if (m->rope_freqs)
    for (int i = 0; i < hp->n_rot / 2; i++)
      if (!(m->rope_freqs[i] > 0)) {
        rc = fail(&b, ERR_FORMAT, "rope_freqs.weight: element %d is not positive", i);
        goto fail;
      }
  m->n_params = b.n_params;
  m->weight_bytes = b.n_bytes;
  *out = m;
  return 0;
fail:
  model_free(m);
  return rc;
}

int model_load(const char *path, model **out, char *err, size_t err_cap) {
  *out = NULL;
  gguf_file *f = NULL;
  int rc = gguf_open(path, &f, err, err_cap);
  if (rc) return rc;
  return model_from_gguf(f, out, err, err_cap);
}

void model_describe(const model *m, char *out, size_t cap) {
  const model_hparams *hp = &m->hp;
  snprintf(out, cap, "%s %dL d%d h%d/%d hd%d ff%d v%d %s%s", m->arch_name, hp->n_layer, hp->n_embd, hp->n_head,
           hp->n_head_kv, hp->head_dim, hp->n_ff, hp->n_vocab, quant_name(m->layers[0].wq.type),
           m->output_tied ? " tied" : "");
}
