/* llm/llama2c — llama2.c checkpoint <-> GGUF (llama.cpp's convert-llama2c-to-ggml layout);
 * see llama2c.h. */
#include "llm/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "llm/quant.h"

#define TOKENIZER_NAME "llama"
#define ROPE_MAX 64 /* the converter's n_rotmax */

static int32_t rd_i32(const uint8_t *p) {
  uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  int32_t s;
  memcpy(&s, &v, 4);
  return s;
}

/* One header value: 1 <= v <= cap. */
static int check_field(const char *name, int64_t v, int64_t cap, char *err, size_t err_cap) {
  if (v < 1) return err_set(err, err_cap, ERR_FORMAT, "llama2.c header: %s is %lld; it must be positive", name, (long long)v);
  if (v > cap)
    return err_set(err, err_cap, ERR_TOOBIG, "llama2.c header: %s is %lld, over the cap of %lld", name, (long long)v,
                 (long long)cap);
  return 0;
}

int llama2c_parse(const void *data, size_t len, llama2c_weights *out, char *err, size_t err_cap) {
  const uint8_t *b = data;
  memset(out, 0, sizeof *out);
  if (len < LLAMA2C_HEADER_BYTES)
    return err_set(err, err_cap, ERR_FORMAT, "not a llama2.c checkpoint: %zu bytes, shorter than the 28-byte header", len);
  llama2c_config c;
  c.dim = rd_i32(b);
  c.hidden_dim = rd_i32(b + 4);
  c.n_layers = rd_i32(b + 8);
  c.n_heads = rd_i32(b + 12);
  c.n_kv_heads = rd_i32(b + 16);
  int32_t vocab = rd_i32(b + 20);
  c.seq_len = rd_i32(b + 24);
  c.shared_classifier = vocab > 0;
  int64_t v64 = vocab < 0 ? -(int64_t)vocab : vocab;
  int rc;
  if ((rc = check_field("dim", c.dim, LLAMA2C_MAX_DIM, err, err_cap)) ||
      (rc = check_field("hidden_dim", c.hidden_dim, LLAMA2C_MAX_HIDDEN, err, err_cap)) ||
      (rc = check_field("n_layers", c.n_layers, LLAMA2C_MAX_LAYERS, err, err_cap)) ||
      (rc = check_field("n_heads", c.n_heads, LLAMA2C_MAX_HEADS, err, err_cap)) ||
      (rc = check_field("n_kv_heads", c.n_kv_heads, LLAMA2C_MAX_HEADS, err, err_cap)) ||
      (rc = check_field("vocab_size (absolute value)", v64, LLAMA2C_MAX_VOCAB, err, err_cap)) ||
      (rc = check_field("seq_len", c.seq_len, LLAMA2C_MAX_SEQ, err, err_cap)))
    return rc;
  c.vocab_size = (int32_t)v64;
  if (c.dim % c.n_heads || (c.dim / c.n_heads) % 2)
    return err_set(err, err_cap, ERR_FORMAT, "llama2.c header: dim %d is not n_heads %d times an even head size", c.dim,
                 c.n_heads);
  if (c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads)
    return err_set(err, err_cap, ERR_FORMAT, "llama2.c header: n_kv_heads %d does not divide n_heads %d", c.n_kv_heads,
                 c.n_heads);
  /* Sizes in floats; every factor is capped, so none of this can overflow 64 bits. */
  uint64_t dim = (uint64_t)c.dim, hid = (uint64_t)c.hidden_dim, L = (uint64_t)c.n_layers, V = (uint64_t)c.vocab_size;
  uint64_t kv_dim = dim * (uint64_t)c.n_kv_heads / (uint64_t)c.n_heads, hs = dim / (uint64_t)c.n_heads;
  uint64_t n_emb = V * dim, n_norm = L * dim, n_q = L * dim * dim, n_kv = L * kv_dim * dim, n_ffn = L * hid * dim,
           n_freq = (uint64_t)c.seq_len * (hs / 2);
  uint64_t total = n_emb + 2 * n_norm + 2 * n_q + 2 * n_kv + 3 * n_ffn + dim + 2 * n_freq + (c.shared_classifier ? 0 : n_emb);
  uint64_t want = LLAMA2C_HEADER_BYTES + 4 * total;
  if ((uint64_t)len != want)
    return err_set(err, err_cap, ERR_FORMAT,
                 "llama2.c checkpoint is %zu bytes; its header (dim %d, hidden %d, %d layers, %d/%d heads, vocab %d%s, "
                 "seq_len %d) needs exactly %llu (truncated, or not a version-0 checkpoint)",
                 len, c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
                 c.shared_classifier ? "" : " unshared", c.seq_len, (unsigned long long)want);
  const uint8_t *p = b + LLAMA2C_HEADER_BYTES;
#define TAKE(field, n) (out->field = p, p += 4 * (n))
  out->c = c;
  TAKE(token_embedding, n_emb);
  TAKE(rms_att, n_norm);
  TAKE(wq, n_q);
  TAKE(wk, n_kv);
  TAKE(wv, n_kv);
  TAKE(wo, n_q);
  TAKE(rms_ffn, n_norm);
  TAKE(w1, n_ffn);
  TAKE(w2, n_ffn);
  TAKE(w3, n_ffn);
  TAKE(rms_final, dim);
  TAKE(freq_cis_real, n_freq);
  TAKE(freq_cis_imag, n_freq);
#undef TAKE
  out->wcls = c.shared_classifier ? out->token_embedding : p;
  return 0;
}

/* ---- GGUF writing ------------------------------------------------------------------------ */

static int add2(gguf_writer *g, const char *name, uint64_t ne0, uint64_t ne1, const uint8_t *data) {
  const uint64_t ne[2] = {ne0, ne1};
  return gguf_writer_add_tensor(g, name, ne1 == 1 ? 1 : 2, ne, QT_F32, data, 4 * ne0 * ne1);
}

/* The tokenizer arrays of vocab, checked against the checkpoint's vocabulary size. */
static int vocab_arrays(const gguf_file *vocab, uint64_t n_vocab, const gguf_kv **tokens, const gguf_kv **scores,
                        const gguf_kv **types, char *err, size_t cap) {
  gguf_str model;
  if (gguf_get_str(vocab, "tokenizer.ggml.model", &model) || !gguf_str_eq(model, TOKENIZER_NAME))
    return err_set(err, cap, ERR_FORMAT, "the vocabulary file has no tokenizer.ggml.model \"llama\" (SentencePiece)");
  if (gguf_get_arr(vocab, "tokenizer.ggml.tokens", tokens) || (*tokens)->arr_type != GGUF_VT_STRING)
    return err_set(err, cap, ERR_FORMAT, "the vocabulary file has no tokenizer.ggml.tokens string array");
  if (gguf_get_arr(vocab, "tokenizer.ggml.scores", scores) || (*scores)->arr_type != GGUF_VT_FLOAT32)
    return err_set(err, cap, ERR_FORMAT, "the vocabulary file has no tokenizer.ggml.scores float32 array");
  if (gguf_get_arr(vocab, "tokenizer.ggml.token_type", types) ||
      ((*types)->arr_type != GGUF_VT_INT32 && (*types)->arr_type != GGUF_VT_UINT32))
    return err_set(err, cap, ERR_FORMAT, "the vocabulary file has no tokenizer.ggml.token_type int32 array");
  if ((*tokens)->arr_n != n_vocab || (*scores)->arr_n != n_vocab || (*types)->arr_n != n_vocab)
    return err_set(err, cap, ERR_FORMAT, "vocabulary size mismatch: the vocabulary file has %llu tokens, the checkpoint %llu",
                 (unsigned long long)(*tokens)->arr_n, (unsigned long long)n_vocab);
  return 0;
}

int llama2c_write_gguf(const llama2c_weights *w, const gguf_file *vocab, const char *out_path,
                       llama2c_progress_fn progress, void *ud, char *err, size_t err_cap) {
  const llama2c_config *c = &w->c;
  const gguf_kv *tokens, *scores, *types;
  int rc = vocab_arrays(vocab, (uint64_t)c->vocab_size, &tokens, &scores, &types, err, err_cap);
  if (rc) return rc;
  gguf_str *items = malloc((size_t)c->vocab_size * sizeof *items);
  gguf_writer *g = gguf_writer_new();
  if (!items || !g) {
    rc = err_set(err, err_cap, ERR_NOMEM, "out of memory");
    goto done;
  }
  for (uint64_t i = 0; i < (uint64_t)c->vocab_size; i++) {
    items[i] = gguf_arr_str(tokens, i);
    /* llama.cpp copies tokens as C strings: a NUL ends one. */
    const char *nul = memchr(items[i].ptr, 0, (size_t)items[i].len);
    if (nul) items[i].len = (uint64_t)(nul - items[i].ptr);
  }
  uint32_t head = (uint32_t)(c->dim / c->n_heads), n_rot = head < ROPE_MAX ? head : ROPE_MAX;
  /* Keys in the converter's order. */
  if ((rc = gguf_writer_set_arr_str(g, "tokenizer.ggml.tokens", items, (uint64_t)c->vocab_size)) ||
      (rc = gguf_writer_set_arr(g, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores->data, scores->arr_n)) ||
      (rc = gguf_writer_set_arr(g, "tokenizer.ggml.token_type", GGUF_VT_INT32, types->data, types->arr_n)) ||
      (rc = gguf_writer_set_str(g, "tokenizer.ggml.model", TOKENIZER_NAME, strlen(TOKENIZER_NAME))) ||
      (rc = gguf_writer_set_str(g, "general.architecture", "llama", 5)) ||
      (rc = gguf_writer_set_str(g, "general.name", "llama", 5)) ||
      (rc = gguf_writer_set_u32(g, "tokenizer.ggml.unknown_token_id", 0)) ||
      (rc = gguf_writer_set_u32(g, "tokenizer.ggml.bos_token_id", 1)) ||
      (rc = gguf_writer_set_u32(g, "tokenizer.ggml.eos_token_id", 2)) ||
      (rc = gguf_writer_set_u32(g, "tokenizer.ggml.seperator_token_id", UINT32_MAX)) || /* sic: llama.cpp's key */
      (rc = gguf_writer_set_u32(g, "tokenizer.ggml.padding_token_id", UINT32_MAX)) ||
      (rc = gguf_writer_set_u32(g, "llama.context_length", LLAMA2C_GGUF_CTX)) ||
      (rc = gguf_writer_set_u32(g, "llama.embedding_length", (uint32_t)c->dim)) ||
      (rc = gguf_writer_set_u32(g, "llama.feed_forward_length", (uint32_t)c->hidden_dim)) ||
      (rc = gguf_writer_set_u32(g, "llama.attention.head_count", (uint32_t)c->n_heads)) ||
      (rc = gguf_writer_set_u32(g, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads)) ||
      (rc = gguf_writer_set_u32(g, "llama.block_count", (uint32_t)c->n_layers)) ||
      (rc = gguf_writer_set_u32(g, "llama.rope.dimension_count", n_rot)) ||
      (rc = gguf_writer_set_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f))) {
    err_set(err, err_cap, rc, "cannot build the GGUF metadata: %s", err_str(rc));
    goto done;
  }
  uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size;
  uint64_t kv_dim = dim * (uint64_t)c->n_kv_heads / (uint64_t)c->n_heads;
  if ((rc = add2(g, "token_embd.weight", dim, V, w->token_embedding)) ||
      (rc = add2(g, "output_norm.weight", dim, 1, w->rms_final)) || (rc = add2(g, "output.weight", dim, V, w->wcls))) {
    err_set(err, err_cap, rc, "cannot add tensors: %s", err_str(rc));
    goto done;
  }
  for (uint64_t l = 0; l < (uint64_t)c->n_layers; l++) {
    char name[64];
#define ADD(fmt, ne0, ne1, base)                                                           \
  do {                                                                                     \
    snprintf(name, sizeof name, "blk.%llu." fmt, (unsigned long long)l);                   \
    if ((rc = add2(g, name, ne0, ne1, (base) + 4 * l * (ne0) * (ne1)))) goto add_failed;   \
  } while (0)
    ADD("attn_q.weight", dim, dim, w->wq);
    ADD("attn_k.weight", dim, kv_dim, w->wk);
    ADD("attn_v.weight", dim, kv_dim, w->wv);
    ADD("attn_output.weight", dim, dim, w->wo);
    ADD("attn_norm.weight", dim, 1, w->rms_att);
    ADD("ffn_gate.weight", dim, hid, w->w1);
    ADD("ffn_down.weight", hid, dim, w->w2);
    ADD("ffn_up.weight", dim, hid, w->w3);
    ADD("ffn_norm.weight", dim, 1, w->rms_ffn);
#undef ADD
  }
  if (progress) progress("converting", 0, 1, ud);
  if ((rc = gguf_writer_write(g, out_path))) {
    err_set(err, err_cap, rc, "cannot write %s: %s%s", out_path, err_str(rc), rc == -ENOSPC ? " (disk full)" : "");
    goto done;
  }
  if (progress) progress("converting", 1, 1, ud);
  goto done;
add_failed:
  err_set(err, err_cap, rc, "cannot add tensors: %s", err_str(rc));
done:
  gguf_writer_free(g);
  free(items);
  return rc;
}

int llama2c_convert(const char *ckpt_path, const char *vocab_path, const char *out_path,
                    llama2c_progress_fn progress, void *ud, char *err, size_t err_cap) {
  int fd = open(ckpt_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return err_set(err, err_cap, -errno, "cannot open %s: %s", ckpt_path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    close(fd);
    return err_set(err, err_cap, -e, "cannot stat %s: %s", ckpt_path, strerror(e));
  }
  size_t len = (size_t)st.st_size;
  void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
  int e = errno;
  close(fd);
  if (map == MAP_FAILED) return err_set(err, err_cap, -e, "cannot map %s: %s", ckpt_path, strerror(e));
  gguf_file *vocab = NULL;
  llama2c_weights w;
  char sub[512] = "";
  int rc = llama2c_parse(map, len, &w, sub, sizeof sub);
  if (rc) {
    err_set(err, err_cap, rc, "%s: %s", ckpt_path, sub);
    goto done;
  }
  if ((rc = gguf_open(vocab_path, &vocab, sub, sizeof sub))) {
    err_set(err, err_cap, rc, "vocabulary %s: %s", vocab_path, sub);
    goto done;
  }
  if (map) madvise(map, len, MADV_SEQUENTIAL);
  rc = llama2c_write_gguf(&w, vocab, out_path, progress, ud, err, err_cap);
done:
  gguf_close(vocab);
  if (map) munmap(map, len);
  return rc;
}

/* ---- the reverse ------------------------------------------------------------------------- */

void llama2c_freq_cis(int head_size, int seq_len, float *re, float *im) {
  int half = head_size / 2;
  for (int i = 0; i < half; i++) {
    float e = (float)(2 * i) / (float)head_size;
    float p = powf(10000.0f, e);
    if (head_size == 48 && i == 10) p = nextafterf(p, 0.0f); /* SLEEF's lane; see llama2c.h */
    float f = 1.0f / p;
    for (int t = 0; t < seq_len; t++) {
      float v = (float)t * f;
      re[(size_t)t * (size_t)half + (size_t)i] = cosf(v);
      im[(size_t)t * (size_t)half + (size_t)i] = sinf(v);
    }
  }
}

/* An F32 tensor of exactly ne0 x ne1 elements, or NULL. */
static const gguf_tensor *want_f32(const gguf_file *g, const char *name, uint64_t ne0, uint64_t ne1) {
  const gguf_tensor *t = gguf_find_tensor(g, name);
  if (!t || t->type != QT_F32 || t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) return NULL;
  return t;
}

int llama2c_write_checkpoint(const gguf_file *g, int32_t seq_len, const char *out_path, char *err, size_t err_cap) {
  int64_t dim, hid, L, H, KV;
  if (gguf_get_int(g, "llama.embedding_length", &dim) || gguf_get_int(g, "llama.feed_forward_length", &hid) ||
      gguf_get_int(g, "llama.block_count", &L) || gguf_get_int(g, "llama.attention.head_count", &H) ||
      gguf_get_int(g, "llama.attention.head_count_kv", &KV))
    return err_set(err, err_cap, ERR_FORMAT, "not a llama GGUF (llama.* hyperparameters missing)");
  if (dim < 1 || dim > LLAMA2C_MAX_DIM || hid < 1 || hid > LLAMA2C_MAX_HIDDEN || L < 1 || L > LLAMA2C_MAX_LAYERS ||
      H < 1 || H > LLAMA2C_MAX_HEADS || KV < 1 || KV > H || H % KV || dim % H || (dim / H) % 2 || seq_len < 1 ||
      seq_len > LLAMA2C_MAX_SEQ)
    return err_set(err, err_cap, ERR_FORMAT, "hyperparameters out of range for a llama2.c checkpoint");
  const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
  if (!emb || emb->ne[1] < 1 || emb->ne[1] > LLAMA2C_MAX_VOCAB)
    return err_set(err, err_cap, ERR_FORMAT, "token_embd.weight missing or of a bad size");
  uint64_t V = emb->ne[1], kv_dim = (uint64_t)(dim * KV / H);
  const gguf_tensor *out = want_f32(g, "output.weight", (uint64_t)dim, V);
  if (!want_f32(g, "token_embd.weight", (uint64_t)dim, V) || !out || !want_f32(g, "output_norm.weight", (uint64_t)dim, 1))
    return err_set(err, err_cap, ERR_FORMAT, "token_embd/output/output_norm missing, not F32 or of another shape");
  int shared = !memcmp(out->data, emb->data, (size_t)out->nbytes);
  static const struct { const char *name; int kind; } parts[] = {
      {"attn_norm", 0}, {"attn_q", 1}, {"attn_k", 2}, {"attn_v", 2}, {"attn_output", 1},
      {"ffn_norm", 0},  {"ffn_gate", 3}, {"ffn_down", 4}, {"ffn_up", 3},
  };
  FILE *f = fopen(out_path, "wb");
  if (!f) return err_set(err, err_cap, -errno, "cannot write %s: %s", out_path, strerror(errno));
  int rc = 0;
  int32_t hdr[7] = {(int32_t)dim, (int32_t)hid, (int32_t)L, (int32_t)H, (int32_t)KV, shared ? (int32_t)V : -(int32_t)V,
                    seq_len};
  fwrite(hdr, 4, 7, f);
  fwrite(emb->data, 1, (size_t)emb->nbytes, f);
  for (size_t k = 0; k < sizeof parts / sizeof *parts && !rc; k++) {
    for (int64_t l = 0; l < L; l++) {
      char name[64];
      snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l, parts[k].name);
      uint64_t ne0 = parts[k].kind == 4 ? (uint64_t)hid : (uint64_t)dim;
      uint64_t ne1 = parts[k].kind == 0 ? 1 : parts[k].kind == 1 ? (uint64_t)dim : parts[k].kind == 2 ? kv_dim
                     : parts[k].kind == 3 ? (uint64_t)hid : (uint64_t)dim;
      const gguf_tensor *t = want_f32(g, name, ne0, ne1);
      if (!t) {
        rc = err_set(err, err_cap, ERR_FORMAT, "%s missing, not F32 or of another shape", name);
        break;
      }
      fwrite(t->data, 1, (size_t)t->nbytes, f);
    }
  }
  if (!rc) {
    fwrite(gguf_find_tensor(g, "output_norm.weight")->data, 4, (size_t)dim, f);
    size_t half = (size_t)(dim / H / 2), n = (size_t)seq_len * half;
    float *re = malloc(n * sizeof *re), *im = malloc(n * sizeof *im);
    if (!re || !im) rc = err_set(err, err_cap, ERR_NOMEM, "out of memory");
    else {
      llama2c_freq_cis((int)(dim / H), seq_len, re, im);
      fwrite(re, sizeof *re, n, f);
      fwrite(im, sizeof *im, n, f);
    }
    free(re);
    free(im);
    if (!rc && !shared) fwrite(out->data, 1, (size_t)out->nbytes, f);
  }
  if (!rc && (ferror(f) || fflush(f))) rc = err_set(err, err_cap, -EIO, "writing %s failed", out_path);
  if (fclose(f) && !rc) rc = err_set(err, err_cap, -errno, "writing %s failed: %s", out_path, strerror(errno));
  if (rc) unlink(out_path);
  return rc;
}
