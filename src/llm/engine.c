/* llm/engine — KV cache, batched forward pass on a thread pool, generation; see engine.h.
 *
 * The forward pass for a batch of nt tokens is one pool job (forward_job) that every
 * thread runs; the threads meet at a barrier between phases and draw work items from the
 * pool's chunk counter. Per layer:
 *
 *   A  x[t] -> xb[t] = rmsnorm(x[t]) * attn_norm, converted to the q/k/v vec_dot_type
 *                                                             (items: tokens)
 *   B  q/k/v = W xb (+ bias), one head's rows for all tokens per item; then the item's
 *      q/k heads get q/k-norm (qwen3) and RoPE; k goes straight into the key cache, v into
 *      the transposed value cache                               (items: heads)
 *   C  attention of head h for a block of up to 4 tokens, token t over positions
 *      0..pos+t -> xb[t][h]                                    (items: heads x blocks)
 *   D  xb converted for wo (skipped when wo is F32)            (items: tokens)
 *   E  x += wo xb                                              (items: row ranges)
 *   F  xb = rmsnorm(x) * ffn_norm, converted for gate/up        (items: tokens)
 *   G  hb = silu(w_gate xb) * (w_up xb)                         (items: row ranges)
 *   H  hb converted for w_down (skipped when F32)               (items: tokens)
 *   I  x += w_down hb                                           (items: row ranges)
 *
 * then the last token's output norm and logits = output xb. With a single token (decode)
 * every thread does A, D, F, H itself into private buffers (no barrier after them).
 * Matrix products of a batch go through
 * quant_vec_dot_nx_t (token-major outputs: written straight into x, q, hb or the key cache)
 * or quant_vec_dot_nx (the transposed value cache) in tiles of QUANT_NX_MAX weight rows by
 * QUANT_NX_MAX tokens; a range
 * of weight rows small enough for L1 is swept over all tokens of the batch before moving
 * on, so each weight byte comes from memory once per batch. A single token's products go
 * through quant_vec_dot_rows, one weight row after another (one long memory stream, which
 * the hardware prefetcher follows far better than four interleaved rows). Both equal
 * quant_vec_dot bit for bit, and every output element is written by exactly one thread,
 * so neither the thread count nor the batching changes any result.
 *
 * Caches: keys [layer][pos][kv_dim] (a position's keys contiguous), values transposed
 * [layer][kv_dim][pos], so attention's weighted sum of values is again a row dot product
 * over positions, as in llama.cpp's non-flash-attention path. */
#include "llm/engine.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "llm/engine_impl.h"
#include "llm/pool.h"
#include "llm/tok.h"

#define NX QUANT_NX_MAX
#define MAX_ACT_TYPES 4       /* distinct vec_dot_types one model may need */
#define L1_WEIGHT_BYTES 16384 /* weight rows kept hot while sweeping a batch */
#define GU_MAX_SWEEP 256      /* most rows per gate/up sweep (size of the up scratch) */
#define DECODE_ROWS 64        /* rows per quant_vec_dot_rows call of a single-token product */

struct engine {
  const model *m;
  int n_ctx;            /* KV cache positions */
  int n_batch;          /* most tokens per forward job */
  int n_threads;
  pool *pool;
  atomic_int cancel;    /* engine_cancel */

  /* dimensions, copied from the model for brevity */
  int d, q_dim, kv_dim, hd, n_ff, xb_dim;

  /* run state for up to n_batch tokens (allocated once) */
  float *x;             /* [n_batch][d] residual stream */
  float *xb;            /* [n_batch][xb_dim] normed input, then attention output */
  float *q;             /* [n_batch][q_dim] queries */
  float *hb;            /* [n_batch][n_ff] FFN hidden */
  float *att;           /* [n_threads][NX][n_ctx] attention scores, per thread */
  float *up;            /* [n_threads][NX][GU_MAX_SWEEP] ffn_up results before SwiGLU */
  engine__ops ops;      /* SwiGLU and softmax kernels */
  float *rope;          /* [n_batch][n_rot] (cos, sin) per rotated pair */
  int n_act;
  qtype act_type[MAX_ACT_TYPES];   /* vec_dot_types in use (F32 never: rows are used as is) */
  size_t act_stride[MAX_ACT_TYPES];
  struct act_bufs *act;            /* [n_batch][act_stride] converted activations */
  struct act_bufs *act_priv;       /* [n_threads], one row each: single-token path */
  float *xb_priv;                  /* [n_threads][xb_dim] normed input, single-token path */

  /* KV cache */
  qtype kv_type;        /* QT_F32 or QT_F16 */
  size_t kv_es;         /* bytes per cache element */
  uint8_t *kc;          /* [n_layer][n_ctx][kv_dim] keys after RoPE */
  uint8_t *vc;          /* [n_layer][kv_dim][n_ctx] values, transposed */
  float *stage;         /* [n_threads][n_batch * hd] F16 cache: a head's k or v before conversion */
  uint16_t *half;       /* [n_threads][NX * hd + n_ctx] F16 cache: queries and weights as F16 */
  int32_t *cached;      /* [n_ctx] token at each cached position */
  float *logits_buf;    /* [n_vocab] logits for engine_generate */
  int n_cached;         /* positions 0..n_cached-1 are valid */

  /* the current job */
  const int32_t *tok;   /* [nt] */
  int nt;               /* tokens in this job */
  int pos;              /* position of tok[0] */
  float *logits;        /* [n_vocab] or NULL */
  int normed_rows;      /* 1: every token's output-normed hidden state into xb (engine_embed) */
  int stop;             /* latched cancel request, read by all threads after a barrier */
  double *pooled;       /* [d] engine_embed's running sum (allocated once) */
};

/* ---- small helpers -------------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int imin(int a, int b) { return a < b ? a : b; }
static int64_t i64min(int64_t a, int64_t b) { return a < b ? a : b; }

/* A matrix product's input: rows of the weight's vec_dot_type, stride bytes apart. */
typedef struct act_view {
  const uint8_t *p;
  size_t stride;
} act_view;

static int act_slot(const engine *e, qtype t) {
  for (int i = 0; i < e->n_act; i++)
    if (e->act_type[i] == t) return i;
  return -1;
}

static qtype vdt(const model_mat *w) { return quant_traits_of(w->type)->vec_dot_type; }

/* Where converted activations go: one buffer per vec_dot_type slot, rows act_stride[slot]
 * apart. The shared set holds n_batch rows; each thread's private set holds one. */
typedef struct act_bufs {
  uint8_t *p[MAX_ACT_TYPES];
} act_bufs;

/* The activation rows for w: src itself when w dots with F32, else the converted copy. */
static act_view act_for(const engine *e, const model_mat *w, const float *src, size_t src_stride,
                        const act_bufs *bufs) {
  qtype t = vdt(w);
  if (t == QT_F32) return (act_view){(const uint8_t *)src, src_stride * sizeof(float)};
  int s = act_slot(e, t);
  return (act_view){bufs->p[s], e->act_stride[s]};
}

/* Converts src (n elements) into row t of bufs for each weight in ws (a type once). */
static void convert_row(const engine *e, const float *src, int t, int64_t n, const model_mat *const *ws, int nw,
                        const act_bufs *bufs) {
  qtype done[MAX_ACT_TYPES];
  int nd = 0;
  for (int i = 0; i < nw; i++) {
    qtype ty = vdt(ws[i]);
    if (ty == QT_F32) continue;
    int seen = 0;
    for (int j = 0; j < nd; j++) seen |= done[j] == ty;
    if (seen) continue;
    done[nd++] = ty;
    int s = act_slot(e, ty);
    quant_quantize_row(ty, src, bufs->p[s] + (size_t)t * e->act_stride[s], n);
  }
}

/* y = x * (1/sqrt(mean(x^2) + eps)) * w, accumulating the mean in double like ggml. */
static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
  double sum = 0;
  for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
  float mean = (float)(sum / n);
  float scale = 1.0f / sqrtf(mean + eps);
  for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

/* (cos, sin) of each rotated pair's angle at position p. The angle of pair i is
 * p * base^(-2i/n_rot), advanced by repeated multiplication in float as ggml does. */
static void rope_table(const engine *e, float *cs, int p) {
  const model_hparams *hp = &e->m->hp;
  const float *ff = e->m->rope_freqs;
  float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
  float theta = (float)p;
  for (int i = 0; i < hp->n_rot / 2; i++) {
    float th = ff ? theta / ff[i] : theta;
    cs[2 * i] = cosf(th);
    cs[2 * i + 1] = sinf(th);
    theta *= theta_scale;
  }
}

/* Rotates one head v[hd] in place. */
static void rope_apply(float *v, const float *cs, int n_rot, model_rope mode) {
  int half = n_rot / 2;
  for (int i = 0; i < half; i++) {
    int i0 = mode == MODEL_ROPE_NEOX ? i : 2 * i, i1 = mode == MODEL_ROPE_NEOX ? i + half : 2 * i + 1;
    float c = cs[2 * i], s = cs[2 * i + 1], x0 = v[i0], x1 = v[i1];
    v[i0] = x0 * c - x1 * s;
    v[i1] = x0 * s + x1 * c;
  }
}

/* ---- elementwise kernels (portable; AVX-512 versions in engine_avx512.c) ------------ */

static void swiglu_scalar(float *h, const float *g, const float *u, int64_t n) {
  for (int64_t i = 0; i < n; i++) h[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
}

static void softmax_scalar(float *p, int64_t n, float scale) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; j++) {
    p[j] *= scale;
    if (p[j] > mx) mx = p[j];
  }
  double sum = 0;
  for (int64_t j = 0; j < n; j++) {
    p[j] = expf(p[j] - mx);
    sum += p[j];
  }
  float inv = (float)(1.0 / sum);
  for (int64_t j = 0; j < n; j++) p[j] *= inv;
}

/* ---- matrix products ------------------------------------------------------------------ */

/* Weight rows kept in L1 while a range is swept over the batch (a multiple of NX). */
static int64_t rows_per_sweep(const model_mat *w) {
  int64_t r = (int64_t)(L1_WEIGHT_BYTES / (w->row_bytes ? w->row_bytes : 1));
  r = r / NX * NX;
  return r < NX ? NX : r;
}

/* out[t*ots + (r-r0)*ors] = (acc ? out : 0) + dot(w row r, a row t) + (bias ? bias[r] : 0)
 * for r in [r0, r1), t in [0, nt): out points at row r0's first element. */
static void mm_rows(const model_mat *w, act_view a, int nt, int64_t r0, int64_t r1, float *out, size_t ots,
                    size_t ors, int acc, const float *bias) {
  float tile[NX * NX];
  const uint8_t *wd = w->data;
  if (nt == 1) {
    /* A single token (decode) is bound by memory bandwidth: rows are read one after the
     * other (quant_vec_dot_rows), which streams 2-8x faster than 4-row tiles, whose four
     * interleaved short streams the hardware prefetcher follows badly. */
    float part[DECODE_ROWS];
    for (int64_t rs = r0; rs < r1; rs += DECODE_ROWS) {
      int64_t nr = i64min(DECODE_ROWS, r1 - rs);
      quant_vec_dot_rows(w->type, w->n_in, wd + (size_t)rs * w->row_bytes, w->row_bytes, nr, a.p, part, 1);
      for (int64_t i = 0; i < nr; i++) {
        float v = part[i];
        if (bias) v += bias[rs + i];
        float *dst = out + (size_t)(rs - r0 + i) * ors;
        *dst = acc ? *dst + v : v;
      }
    }
    return;
  }
  int64_t sweep = rows_per_sweep(w);
  for (int64_t rs = r0; rs < r1; rs += sweep) {
    int64_t re = i64min(rs + sweep, r1);
    for (int t = 0; t < nt; t += NX) {
      int na = imin(NX, nt - t);
      for (int64_t r = rs; r < re; r += NX) {
        int nw = (int)i64min(NX, re - r);
        const uint8_t *wr = wd + (size_t)r * w->row_bytes, *ar = a.p + (size_t)t * a.stride;
        if (ors == 1) { /* token-major output: each token's results are contiguous */
          float *o = out + (size_t)t * ots + (size_t)(r - r0);
          if (!acc && !bias) {
            quant_vec_dot_nx_t(w->type, w->n_in, wr, w->row_bytes, nw, ar, a.stride, na, o, ots);
            continue;
          }
          quant_vec_dot_nx_t(w->type, w->n_in, wr, w->row_bytes, nw, ar, a.stride, na, tile, NX);
          for (int j = 0; j < na; j++)
            for (int i = 0; i < nw; i++) {
              float v = tile[j * NX + i];
              if (bias) v += bias[r + i];
              float *dst = o + (size_t)j * ots + (size_t)i;
              *dst = acc ? *dst + v : v;
            }
          continue;
        }
        quant_vec_dot_nx(w->type, w->n_in, wr, w->row_bytes, nw, ar, a.stride, na, tile, NX);
        for (int i = 0; i < nw; i++) {
          float b = bias ? bias[r + i] : 0.0f;
          for (int j = 0; j < na; j++) {
            float v = tile[i * NX + j];
            if (bias) v += b;
            float *dst = out + (size_t)(t + j) * ots + (size_t)(r - r0 + i) * ors;
            *dst = acc ? *dst + v : v;
          }
        }
      }
    }
  }
}

/* hb[t][r] = silu(gate_r . a_t) * (up_r . b_t) for r in [r0, r1): gate results go to hb,
 * up results to the thread's scratch up[NX][GU_MAX_SWEEP], then SwiGLU runs over each
 * token's run of rows. A single token runs up to GU_MAX_SWEEP gate rows, then as many up
 * rows, each as one stream. */
static void mm_gate_up(const engine *e, const model_mat *wg, const model_mat *wu, act_view ag, act_view au, int nt,
                       int64_t r0, int64_t r1, float *hb, size_t ts, float *up) {
  if (nt == 1) { /* decode: each matrix's rows in one stream, as in mm_rows */
    for (int64_t rs = r0; rs < r1; rs += GU_MAX_SWEEP) {
      int64_t nr = i64min(GU_MAX_SWEEP, r1 - rs);
      quant_vec_dot_rows(wg->type, wg->n_in, (const uint8_t *)wg->data + (size_t)rs * wg->row_bytes, wg->row_bytes,
                         nr, ag.p, hb + rs, 1);
      quant_vec_dot_rows(wu->type, wu->n_in, (const uint8_t *)wu->data + (size_t)rs * wu->row_bytes, wu->row_bytes,
                         nr, au.p, up, 1);
      e->ops.swiglu(hb + rs, hb + rs, up, nr);
    }
    return;
  }
  int64_t sweep = rows_per_sweep(wg) / 2 / NX * NX;
  if (sweep < 16) sweep = 16; /* SwiGLU runs over whole 16-float vectors */
  if (sweep > GU_MAX_SWEEP) sweep = GU_MAX_SWEEP;
  for (int64_t rs = r0; rs < r1; rs += sweep) {
    int64_t re = i64min(rs + sweep, r1);
    for (int t = 0; t < nt; t += NX) {
      int na = imin(NX, nt - t);
      for (int64_t r = rs; r < re; r += NX) {
        int nw = (int)i64min(NX, re - r);
        quant_vec_dot_nx_t(wg->type, wg->n_in, (const uint8_t *)wg->data + (size_t)r * wg->row_bytes,
                           wg->row_bytes, nw, ag.p + (size_t)t * ag.stride, ag.stride, na,
                           hb + (size_t)t * ts + (size_t)r, ts);
        quant_vec_dot_nx_t(wu->type, wu->n_in, (const uint8_t *)wu->data + (size_t)r * wu->row_bytes,
                           wu->row_bytes, nw, au.p + (size_t)t * au.stride, au.stride, na,
                           up + (size_t)(r - rs), GU_MAX_SWEEP);
      }
      for (int j = 0; j < na; j++) {
        float *h = hb + (size_t)(t + j) * ts + (size_t)rs;
        e->ops.swiglu(h, h, up + (size_t)j * GU_MAX_SWEEP, re - rs);
      }
    }
  }
}

/* Rows per work chunk of a matrix product: about CHUNK_BYTES of weights, so that threads
 * finish within a few microseconds of each other, and at least 16 chunks per thread; for a
 * single token, whose rows stream from memory one after another, DECODE_CHUNK_BYTES and at
 * least 2 chunks per thread (the hardware prefetcher ramps up again after each jump, so
 * longer runs stream faster). Multiples of 16 rows. The split never changes results (each
 * element is one whole dot product). */
#define CHUNK_BYTES 65536
#define DECODE_CHUNK_BYTES 524288
static int64_t chunk_rows(const model_mat *w, int nth, int nt) {
  int per_thread = nt > 1 ? 16 : 2;
  int64_t by_bytes = (int64_t)((nt > 1 ? CHUNK_BYTES : DECODE_CHUNK_BYTES) / (w->row_bytes ? w->row_bytes : 1));
  int64_t by_threads = (w->n_out + per_thread * nth - 1) / (per_thread * nth);
  int64_t c = by_bytes < by_threads ? by_bytes : by_threads;
  c = (c + 15) / 16 * 16;
  return c < 16 ? 16 : c;
}

/* Runs rows of w over the batch, chunks drawn from the pool. */
static void mm_par(engine *e, const model_mat *w, act_view a, int nt, float *out, size_t ots, size_t ors, int acc,
                   int nth, int rev) {
  int64_t cr = chunk_rows(w, nth, nt), nch = (w->n_out + cr - 1) / cr;
  for (int64_t c; (c = pool_chunk(e->pool)) < nch;) {
    int64_t r0 = (rev ? nch - 1 - c : c) * cr;
    mm_rows(w, a, nt, r0, i64min(r0 + cr, w->n_out), out + (size_t)r0 * ors, ots, ors, acc, NULL);
  }
}

/* ---- the forward pass ----------------------------------------------------------------- */

/* Phase B item: one head of q, k or v for every token of the batch. */
static void qkv_head(engine *e, int il, int item, act_view aq, act_view ak, act_view av, int ith) {
  const model *m = e->m;
  const model_hparams *hp = &m->hp;
  const model_layer *L = &m->layers[il];
  const int nt = e->nt, hd = e->hd, kv_dim = e->kv_dim;
  const size_t n_ctx = (size_t)e->n_ctx, es = e->kv_es;
  const int f16 = e->kv_type == QT_F16;
  float *stage = e->stage ? e->stage + (size_t)ith * e->n_batch * hd : NULL;
  if (item < hp->n_head) { /* query head */
    int64_t r0 = (int64_t)item * hd;
    mm_rows(&L->wq, aq, nt, r0, r0 + hd, e->q + r0, (size_t)e->q_dim, 1, 0, L->bq);
    for (int t = 0; t < nt; t++) {
      float *v = e->q + (size_t)t * e->q_dim + r0;
      if (L->q_norm) rmsnorm(v, v, L->q_norm, hd, hp->rms_eps);
      rope_apply(v, e->rope + (size_t)t * hp->n_rot, hp->n_rot, hp->rope);
    }
  } else if (item < hp->n_head + hp->n_head_kv) { /* key head, into the cache */
    int64_t r0 = (int64_t)(item - hp->n_head) * hd;
    uint8_t *kc = e->kc + (((size_t)il * n_ctx + (size_t)e->pos) * kv_dim + (size_t)r0) * es;
    float *out = f16 ? stage : (float *)kc;
    size_t ots = f16 ? (size_t)hd : (size_t)kv_dim;
    mm_rows(&L->wk, ak, nt, r0, r0 + hd, out, ots, 1, 0, L->bk);
    for (int t = 0; t < nt; t++) {
      float *v = out + (size_t)t * ots;
      if (L->k_norm) rmsnorm(v, v, L->k_norm, hd, hp->rms_eps);
      rope_apply(v, e->rope + (size_t)t * hp->n_rot, hp->n_rot, hp->rope);
      if (f16) quant_quantize_row(QT_F16, v, kc + (size_t)t * kv_dim * es, hd);
    }
  } else { /* value head, transposed into the cache */
    int64_t r0 = (int64_t)(item - hp->n_head - hp->n_head_kv) * hd;
    uint8_t *vc = e->vc + (((size_t)il * kv_dim + (size_t)r0) * n_ctx + (size_t)e->pos) * es;
    if (!f16) {
      mm_rows(&L->wv, av, nt, r0, r0 + hd, (float *)vc, 1, n_ctx, 0, L->bv);
    } else {
      mm_rows(&L->wv, av, nt, r0, r0 + hd, stage, 1, (size_t)nt, 0, L->bv);
      for (int dd = 0; dd < hd; dd++)
        quant_quantize_row(QT_F16, stage + (size_t)dd * nt, vc + (size_t)dd * n_ctx * es, nt);
    }
  }
}

/* Phase C item: query head h of tokens t0..t0+nq-1 (nq <= NX); token t attends to
 * positions 0..pos+t. The scores of the nq queries come from one sweep over the keys
 * (nq queries x NX keys per call, written query-major; scores past a query's own last
 * position are computed and ignored), then each query gets its softmax and its weighted
 * sum of values. Every number is the same dot product as for a single query (a dot
 * product is symmetric bit for bit), so batching changes nothing. */
static void attend(engine *e, int il, int t0, int nq, int h, float *att, int ith) {
  const model_hparams *hp = &e->m->hp;
  const int hd = e->hd, kv_dim = e->kv_dim, n_last = e->pos + t0 + nq; /* positions of the last query */
  const size_t n_ctx = (size_t)e->n_ctx, es = e->kv_es;
  const int kvh = h / (hp->n_head / hp->n_head_kv);
  const qtype kt = e->kv_type;
  const float *qf = e->q + (size_t)t0 * e->q_dim + (size_t)h * hd;
  const uint8_t *k = e->kc + ((size_t)il * n_ctx * kv_dim + (size_t)kvh * hd) * es;
  const uint8_t *vt = e->vc + ((size_t)il * kv_dim + (size_t)kvh * hd) * n_ctx * es;
  const float scale = 1.0f / sqrtf((float)hd);
  /* with an F16 cache, queries and weights are converted to F16 too (as llama.cpp does) */
  const void *q = qf;
  size_t q_stride = (size_t)e->q_dim * sizeof(float);
  uint16_t *qh = NULL, *ph = NULL;
  if (kt == QT_F16) {
    qh = e->half + (size_t)ith * (NX * (size_t)hd + n_ctx);
    ph = qh + NX * (size_t)hd;
    for (int i = 0; i < nq; i++) quant_quantize_row(QT_F16, qf + (size_t)i * e->q_dim, qh + (size_t)i * hd, hd);
    q = qh;
    q_stride = (size_t)hd * sizeof *qh;
  }
  for (int j = 0; j < n_last; j += NX) { /* att[i][j] = q_i . k_j */
    int na = imin(NX, n_last - j);
    quant_vec_dot_nx(kt, hd, q, q_stride, nq, k + (size_t)j * kv_dim * es, (size_t)kv_dim * es, na, att + j, n_ctx);
  }
  for (int i = 0; i < nq; i++) {
    const int n_pos = e->pos + t0 + i + 1;
    float *p = att + (size_t)i * n_ctx;
    e->ops.softmax(p, n_pos, scale);
    const void *pw = p;
    if (kt == QT_F16) {
      quant_quantize_row(QT_F16, p, ph, n_pos);
      pw = ph;
    }
    /* out[d] = sum_j p[j] * v_j[d]: a dot product with row d of the transposed cache */
    float *out = e->xb + (size_t)(t0 + i) * e->xb_dim + (size_t)h * hd;
    for (int dd = 0; dd < hd; dd += NX) {
      int na = imin(NX, hd - dd);
      quant_vec_dot_nx(kt, n_pos, pw, 0, 1, vt + (size_t)dd * n_ctx * es, n_ctx * es, na, out + dd, 1);
    }
  }
}

/* The forward pass of e->nt tokens, run by every thread of the pool.
 *
 * With one token (decode) the norms and conversions are cheap, so every thread computes
 * them itself into its private buffers instead of one thread computing them while the
 * others wait: that removes the barriers after phases A, D, F and H, leaving five per
 * layer. Every thread computes the same bits, so results are unchanged. */
static void forward_job(void *arg, int ith, int nth) {
  engine *e = arg;
  const model *m = e->m;
  const model_hparams *hp = &m->hp;
  const int nt = e->nt, d = e->d, priv = nt == 1;
  pool *P = e->pool;
  /* normed input and its conversions: shared rows, or this thread's own single row */
  float *xn = priv ? e->xb_priv + (size_t)ith * e->xb_dim : e->xb;
  const act_bufs *ab = priv ? &e->act_priv[ith] : e->act;
  const size_t xs = (size_t)e->xb_dim;

  /* embeddings and RoPE angles, per token */
  for (int t = ith; t < nt; t += nth) {
    const model_mat *te = &m->tok_embd;
    quant_dequantize_row(te->type, (const uint8_t *)te->data + (size_t)e->tok[t] * te->row_bytes,
                         e->x + (size_t)t * d, d);
    rope_table(e, e->rope + (size_t)t * hp->n_rot, e->pos + t);
  }
  if (ith == 0) e->stop = atomic_load_explicit(&e->cancel, memory_order_relaxed);
  pool_barrier(P);

  for (int il = 0; il < hp->n_layer; il++) {
    const model_layer *L = &m->layers[il];
    const model_mat *qkv[3] = {&L->wq, &L->wk, &L->wv}, *gu[2] = {&L->w_gate, &L->w_up};
    const model_mat *wo[1] = {&L->wo}, *wd[1] = {&L->w_down};
    if (e->stop) return; /* latched by thread 0 before the last barrier: all agree */

    /* A: attention norm */
    if (priv) {
      rmsnorm(xn, e->x, L->attn_norm, d, hp->rms_eps);
      convert_row(e, xn, 0, d, qkv, 3, ab);
    } else {
      for (int t = ith; t < nt; t += nth) {
        rmsnorm(xn + t * xs, e->x + (size_t)t * d, L->attn_norm, d, hp->rms_eps);
        convert_row(e, xn + t * xs, t, d, qkv, 3, ab);
      }
      pool_barrier(P);
    }

    /* B: q, k, v by heads, with RoPE */
    act_view aq = act_for(e, &L->wq, xn, xs, ab), ak = act_for(e, &L->wk, xn, xs, ab),
             av = act_for(e, &L->wv, xn, xs, ab);
    const int n_items = hp->n_head + 2 * hp->n_head_kv;
    for (int c; (c = pool_chunk(P)) < n_items;) qkv_head(e, il, c, aq, ak, av, ith);
    pool_barrier(P);

    /* C: attention -> e->xb */
    float *att = e->att + (size_t)ith * e->n_ctx * NX;
    const int n_qb = (nt + NX - 1) / NX; /* blocks of NX queries */
    for (int c; (c = pool_chunk(P)) < n_qb * hp->n_head;) {
      int t0 = c / hp->n_head * NX;
      attend(e, il, t0, imin(NX, nt - t0), c % hp->n_head, att, ith);
    }
    pool_barrier(P);

    /* D, E: output projection into the residual stream */
    if (vdt(&L->wo) != QT_F32) {
      if (priv) {
        convert_row(e, e->xb, 0, e->q_dim, wo, 1, ab);
      } else {
        for (int t = ith; t < nt; t += nth) convert_row(e, e->xb + t * xs, t, e->q_dim, wo, 1, ab);
        pool_barrier(P);
      }
    }
    mm_par(e, &L->wo, act_for(e, &L->wo, e->xb, xs, ab), nt, e->x, (size_t)d, 1, 1, nth, 0);
    pool_barrier(P);

    /* F: FFN norm */
    if (priv) {
      rmsnorm(xn, e->x, L->ffn_norm, d, hp->rms_eps);
      convert_row(e, xn, 0, d, gu, 2, ab);
    } else {
      for (int t = ith; t < nt; t += nth) {
        rmsnorm(xn + t * xs, e->x + (size_t)t * d, L->ffn_norm, d, hp->rms_eps);
        convert_row(e, xn + t * xs, t, d, gu, 2, ab);
      }
      pool_barrier(P);
    }

    /* G: gate and up, SwiGLU -> e->hb */
    {
      act_view ag = act_for(e, &L->w_gate, xn, xs, ab), au = act_for(e, &L->w_up, xn, xs, ab);
      int64_t cr = chunk_rows(&L->w_gate, nth, nt);
      for (int64_t c; (c = pool_chunk(P)) * cr < e->n_ff;) {
        int64_t r0 = c * cr;
        mm_gate_up(e, &L->w_gate, &L->w_up, ag, au, nt, r0, i64min(r0 + cr, e->n_ff), e->hb, (size_t)e->n_ff,
                   e->up + (size_t)ith * NX * GU_MAX_SWEEP);
      }
    }
    pool_barrier(P);

    /* H, I: down projection into the residual stream */
    if (vdt(&L->w_down) != QT_F32) {
      if (priv) {
        convert_row(e, e->hb, 0, e->n_ff, wd, 1, ab);
      } else {
        for (int t = ith; t < nt; t += nth) convert_row(e, e->hb + (size_t)t * e->n_ff, t, e->n_ff, wd, 1, ab);
        pool_barrier(P);
      }
    }
    mm_par(e, &L->w_down, act_for(e, &L->w_down, e->hb, (size_t)e->n_ff, ab), nt, e->x, (size_t)d, 1, 1, nth, 0);
    if (ith == 0) e->stop = atomic_load_explicit(&e->cancel, memory_order_relaxed);
    pool_barrier(P);
  }

  if (e->stop) return;
  if (e->normed_rows) { /* engine_embed: each token's hidden state after the output norm */
    for (int t = ith; t < nt; t += nth) rmsnorm(e->xb + t * xs, e->x + (size_t)t * d, m->output_norm, d, hp->rms_eps);
    return;
  }
  if (!e->logits) return;
  /* output norm of the last token, then the logits */
  const model_mat *out[1] = {&m->output};
  if (priv) {
    rmsnorm(xn, e->x, m->output_norm, d, hp->rms_eps);
    convert_row(e, xn, 0, d, out, 1, ab);
  } else {
    if (ith == 0) {
      rmsnorm(xn, e->x + (size_t)(nt - 1) * d, m->output_norm, d, hp->rms_eps);
      convert_row(e, xn, 0, d, out, 1, ab);
    }
    pool_barrier(P);
  }
  /* The output matrix is read last, and the next token reads the layers first. Going
   * through its chunks backwards every other token starts each pass with the rows read
   * most recently, those that may still be in the last-level cache after the layers. */
  mm_par(e, &m->output, act_for(e, &m->output, xn, xs, ab), 1, e->logits, 0, 1, 0, nth, (e->pos + nt) & 1);
}

/* ---- public API ----------------------------------------------------------------------- */

engine_params engine_default_params(void) { return (engine_params){0, 0, 0, 0}; }

static int default_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > 8) n = 8;
  return (int)n;
}

static int add_act_type(engine *e, const model_mat *w) {
  qtype t = vdt(w);
  if (t == QT_F32 || act_slot(e, t) >= 0) return 0;
  if (e->n_act == MAX_ACT_TYPES) return ERR_UNSUPPORTED;
  e->act_type[e->n_act++] = t;
  return 0;
}

static void *alloc_floats(size_t n, size_t *total) {
  *total += n * sizeof(float);
  return calloc(n ? n : 1, sizeof(float));
}

int engine_new(const model *m, const engine_params *p, engine **out, char *err, size_t err_cap) {
  *out = NULL;
  if (err && err_cap) err[0] = 0;
  const model_hparams *hp = &m->hp;
  engine_params ep = p ? *p : engine_default_params();
  if (ep.n_ctx < 0 || ep.n_batch < 0 || ep.n_threads < 0 || ep.n_threads > POOL_MAX_THREADS)
    return err_set(err, err_cap, ERR_INVAL, "invalid engine parameters");
  if (ep.n_ctx == 0) ep.n_ctx = imin(hp->n_ctx_train, ENGINE_DEFAULT_CTX);
  if (ep.n_ctx > (1 << 22)) return err_set(err, err_cap, ERR_INVAL, "context of %d positions is too large", ep.n_ctx);
  if (ep.n_batch == 0) ep.n_batch = ENGINE_DEFAULT_BATCH;
  ep.n_batch = imin(ep.n_batch, ep.n_ctx);
  if (ep.n_threads == 0) ep.n_threads = default_threads();
  quant_init();

  engine *e = calloc(1, sizeof *e);
  if (!e) return err_set(err, err_cap, ERR_NOMEM, "out of memory");
  e->m = m;
  e->ops = (engine__ops){swiglu_scalar, softmax_scalar};
#if defined(__x86_64__)
  if (!strcmp(quant_isa(), "avx512")) e->ops = (engine__ops){engine__swiglu_avx512, engine__softmax_avx512};
#endif
  e->n_ctx = ep.n_ctx;
  e->n_batch = ep.n_batch;
  e->n_threads = ep.n_threads;
  e->d = hp->n_embd;
  e->hd = hp->head_dim;
  e->q_dim = hp->n_head * hp->head_dim;
  e->kv_dim = hp->n_head_kv * hp->head_dim;
  e->n_ff = hp->n_ff;
  e->xb_dim = e->d > e->q_dim ? e->d : e->q_dim;
  atomic_init(&e->cancel, 0);

  int rc = ERR_NOMEM;
  size_t total = 0, nb = (size_t)e->n_batch;
  e->x = alloc_floats(nb * e->d, &total);
  e->xb = alloc_floats(nb * e->xb_dim, &total);
  e->q = alloc_floats(nb * e->q_dim, &total);
  e->hb = alloc_floats(nb * e->n_ff, &total);
  e->att = alloc_floats((size_t)e->n_threads * e->n_ctx * NX, &total);
  e->up = alloc_floats((size_t)e->n_threads * NX * GU_MAX_SWEEP, &total);
  e->rope = alloc_floats(nb * hp->n_rot, &total);
  e->kv_type = ep.kv_f16 ? QT_F16 : QT_F32;
  e->kv_es = ep.kv_f16 ? 2 : 4;
  size_t kv_elems = (size_t)hp->n_layer * e->n_ctx * e->kv_dim;
  total += 2 * kv_elems * e->kv_es;
  e->kc = calloc(kv_elems, e->kv_es);
  e->vc = calloc(kv_elems, e->kv_es);
  if (ep.kv_f16) {
    e->stage = alloc_floats((size_t)e->n_threads * e->n_batch * e->hd, &total);
    e->half = calloc((size_t)e->n_threads * (NX * (size_t)e->hd + (size_t)e->n_ctx), sizeof *e->half);
    if (!e->stage || !e->half) {
      rc = err_set(err, err_cap, ERR_NOMEM, "out of memory for the F16 cache buffers");
      goto fail;
    }
  }
  e->cached = calloc((size_t)e->n_ctx, sizeof *e->cached);
  e->logits_buf = alloc_floats((size_t)hp->n_vocab, &total);
  e->pooled = calloc((size_t)e->d, sizeof *e->pooled);
  if (!e->pooled || !e->x || !e->xb || !e->q || !e->hb || !e->att || !e->up || !e->rope || !e->kc || !e->vc || !e->cached ||
      !e->logits_buf) {
    rc = err_set(err, err_cap, ERR_NOMEM, "out of memory for a %d-position context (%.1f MiB)", e->n_ctx,
              (double)total / (1 << 20));
    goto fail;
  }
  for (int il = 0; il < hp->n_layer; il++) {
    const model_layer *L = &m->layers[il];
    const model_mat *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++)
      if (add_act_type(e, ws[i])) {
        rc = err_set(err, err_cap, ERR_UNSUPPORTED, "too many different weight types in one model");
        goto fail;
      }
  }
  if (add_act_type(e, &m->output)) {
    rc = err_set(err, err_cap, ERR_UNSUPPORTED, "too many different weight types in one model");
    goto fail;
  }
  int64_t max_in = e->xb_dim > e->n_ff ? e->xb_dim : e->n_ff;
  e->act = calloc(1, sizeof *e->act);
  e->act_priv = calloc((size_t)e->n_threads, sizeof *e->act_priv);
  e->xb_priv = alloc_floats((size_t)e->n_threads * e->xb_dim, &total);
  if (!e->act || !e->act_priv || !e->xb_priv) {
    rc = err_set(err, err_cap, ERR_NOMEM, "out of memory for activations");
    goto fail;
  }
  for (int i = 0; i < e->n_act; i++) {
    /* rows of max_in elements; inputs shorter than that use a prefix of each row */
    int64_t n = max_in;
    const quant_traits *tr = quant_traits_of(e->act_type[i]);
    n = (n + tr->block_size - 1) / tr->block_size * tr->block_size;
    e->act_stride[i] = (quant_row_size(e->act_type[i], n) + 63) / 64 * 64;
    e->act->p[i] = aligned_alloc(64, nb * e->act_stride[i]);
    if (!e->act->p[i]) {
      rc = err_set(err, err_cap, ERR_NOMEM, "out of memory for activations");
      goto fail;
    }
    for (int th = 0; th < e->n_threads; th++)
      if (!(e->act_priv[th].p[i] = aligned_alloc(64, e->act_stride[i]))) {
        rc = err_set(err, err_cap, ERR_NOMEM, "out of memory for activations");
        goto fail;
      }
  }
  rc = pool_new(e->n_threads, &e->pool);
  if (rc) {
    err_set(err, err_cap, rc, "cannot start %d threads: %s", e->n_threads, err_str(rc));
    goto fail;
  }
  *out = e;
  return 0;
fail:
  engine_free(e);
  return rc;
}

void engine_free(engine *e) {
  if (!e) return;
  pool_free(e->pool);
  free(e->x);
  free(e->xb);
  free(e->q);
  free(e->hb);
  free(e->att);
  free(e->up);
  free(e->rope);
  for (int i = 0; i < e->n_act; i++) {
    if (e->act) free(e->act->p[i]);
    for (int th = 0; e->act_priv && th < e->n_threads; th++) free(e->act_priv[th].p[i]);
  }
  free(e->act);
  free(e->act_priv);
  free(e->xb_priv);
  free(e->kc);
  free(e->vc);
  free(e->stage);
  free(e->half);
  free(e->cached);
  free(e->logits_buf);
  free(e->pooled);
  free(e);
}

const model *engine_model(const engine *e) { return e->m; }
int engine_n_ctx(const engine *e) { return e->n_ctx; }
int engine_n_batch(const engine *e) { return e->n_batch; }
int engine_n_threads(const engine *e) { return e->n_threads; }
int engine_n_vocab(const engine *e) { return e->m->hp.n_vocab; }
int engine_n_cached(const engine *e) { return e->n_cached; }
const int32_t *engine_cached_tokens(const engine *e) { return e->cached; }

void engine_truncate(engine *e, int n) {
  if (n < 0) n = 0;
  if (n < e->n_cached) e->n_cached = n;
}

void engine_cancel(engine *e) { atomic_store(&e->cancel, 1); }
void engine_cancel_reset(engine *e) { atomic_store(&e->cancel, 0); }
int engine_canceled(const engine *e) { return atomic_load((atomic_int *)&e->cancel); }

/* Runs tokens[0..n) at pos.. in batches of n_batch. With pool set (engine_embed), each
 * batch's output-normed rows are added into e->pooled as that pooling needs them. */
static int run_batches(engine *e, const int32_t *tokens, int n, int pos, float *logits_out, engine_pooling pooling) {
  if (n <= 0 || !tokens) return ERR_INVAL;
  if (pos < 0 || pos > e->n_cached || n > e->n_ctx - pos) return ERR_RANGE;
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= e->m->hp.n_vocab) return ERR_INVAL;
  e->n_cached = pos;
  for (int done = 0; done < n;) {
    if (atomic_load(&e->cancel)) return ERR_CANCELED;
    int nt = imin(e->n_batch, n - done);
    e->tok = tokens + done;
    e->nt = nt;
    e->pos = pos + done;
    e->logits = done + nt == n ? logits_out : NULL;
    e->normed_rows = pooling != ENGINE_POOL_NONE;
    e->stop = 0;
    pool_run(e->pool, forward_job, e);
    e->normed_rows = 0;
    if (e->stop) return ERR_CANCELED;
    for (int t = 0; t < nt && pooling != ENGINE_POOL_NONE; t++) { /* in token order: deterministic */
      int at = done + t;
      int want = pooling == ENGINE_POOL_MEAN || (pooling == ENGINE_POOL_CLS && at == 0) ||
                 (pooling == ENGINE_POOL_LAST && at == n - 1);
      const float *row = e->xb + (size_t)t * e->xb_dim;
      for (int i = 0; want && i < e->d; i++) e->pooled[i] += row[i];
    }
    memcpy(e->cached + pos + done, tokens + done, (size_t)nt * sizeof *tokens);
    done += nt;
    e->n_cached = pos + done;
  }
  return 0;
}

int engine_eval(engine *e, const int32_t *tokens, int n, int pos, float *logits_out) {
  return run_batches(e, tokens, n, pos, logits_out, ENGINE_POOL_NONE);
}

int engine_embed(engine *e, const int32_t *tokens, int n, engine_pooling pooling, float *out) {
  if (pooling != ENGINE_POOL_MEAN && pooling != ENGINE_POOL_CLS && pooling != ENGINE_POOL_LAST) return ERR_UNSUPPORTED;
  for (int i = 0; i < e->d; i++) e->pooled[i] = 0;
  int rc = run_batches(e, tokens, n, 0, NULL, pooling);
  if (rc) return rc;
  double scale = pooling == ENGINE_POOL_MEAN ? 1.0 / n : 1.0;
  for (int i = 0; i < e->d; i++) out[i] = (float)(e->pooled[i] * scale);
  return 0;
}

int engine_n_embd(const engine *e) { return e->d; }

int engine_embd_pooling(const model *m, engine_pooling *out, char *err, size_t cap) {
  *out = ENGINE_POOL_MEAN;
  switch (m->hp.pooling) {
  case -1: return 0;
  case ENGINE_POOL_MEAN: case ENGINE_POOL_CLS: case ENGINE_POOL_LAST:
    *out = (engine_pooling)m->hp.pooling;
    return 0;
  case ENGINE_POOL_NONE:
    return err_set(err, cap, ERR_UNSUPPORTED,
                   "this model's metadata asks for no pooling (%s.pooling_type = 0: a vector per token), "
                   "which cannot be answered as one embedding per input", m->arch_name);
  default:
    return err_set(err, cap, ERR_UNSUPPORTED,
                   "this model is a reranker (%s.pooling_type = 4), not an embedding model", m->arch_name);
  }
}

void engine_embd_normalize(float *v, int n) {
  double sum = 0;
  for (int i = 0; i < n; i++) sum += (double)v[i] * v[i];
  float scale = sum > 0 ? (float)(1.0 / sqrt(sum)) : 0.0f;
  for (int i = 0; i < n; i++) v[i] *= scale;
}

/* ---- generation ----------------------------------------------------------------------- */

engine_gen_params engine_default_gen_params(void) {
  return (engine_gen_params){.max_tokens = 128, .stop_at_eog = 1};
}

/* Text not yet given to the callback: whole UTF-8 characters, held back while they could
 * be the start of a stop string. */
typedef struct gen_text {
  char *buf;
  size_t len, cap;
} gen_text;

/* Length of the longest suffix of s[0..n) that is a proper prefix of a stop string. */
static size_t stop_prefix_tail(const engine_gen_params *gp, const char *s, size_t n) {
  size_t best = 0;
  for (int i = 0; i < gp->n_stop; i++) {
    size_t sl = strlen(gp->stop[i]);
    for (size_t k = sl - 1 < n ? sl - 1 : n; k > best; k--)
      if (!memcmp(s + n - k, gp->stop[i], k)) {
        best = k;
        break;
      }
  }
  return best;
}

/* Offset of the earliest stop string match in s[0..n), or -1. */
static long stop_match(const engine_gen_params *gp, const char *s, size_t n) {
  long first = -1;
  for (int i = 0; i < gp->n_stop; i++) {
    const char *hit = memmem(s, n, gp->stop[i], strlen(gp->stop[i]));
    if (hit && (first < 0 || hit - s < first)) first = hit - s;
  }
  return first;
}

int engine_generate(engine *e, const tok *t, sampler *s, const int32_t *prompt, int n_prompt,
                    const engine_gen_params *gp_in, engine_token_cb cb, void *user, engine_gen_stats *st_out) {
  engine_gen_params gp = gp_in ? *gp_in : engine_default_gen_params();
  engine_gen_stats st = {.n_prompt = n_prompt};
  if (st_out) *st_out = st;
  if (!prompt || n_prompt < 1 || gp.max_tokens < 0 || gp.n_stop < 0 || gp.n_stop > ENGINE_MAX_STOP ||
      gp.n_resume < 0 || gp.n_resume > n_prompt)
    return ERR_INVAL;
  if (n_prompt > e->n_ctx) return ERR_RANGE;
  size_t max_stop = 0;
  for (int i = 0; i < gp.n_stop; i++) {
    if (!gp.stop[i] || !gp.stop[i][0] || strlen(gp.stop[i]) > ENGINE_MAX_STOP_LEN) return ERR_INVAL;
    if (strlen(gp.stop[i]) > max_stop) max_stop = strlen(gp.stop[i]);
  }
  gen_text tx = {.cap = max_stop + 3 * (TOK_MAX_PIECE + 3) + 8};
  tx.buf = malloc(tx.cap);
  if (!tx.buf) return ERR_NOMEM;
  int n_vocab = e->m->hp.n_vocab;
  uint32_t *mask = gp.grammar ? calloc(((size_t)n_vocab + 31) / 32, sizeof *mask) : NULL;
  if (gp.grammar && !mask) {
    free(tx.buf);
    return ERR_NOMEM;
  }

  /* prompt: reuse the cached prefix, evaluate at least the last token for its logits */
  int keep = 0;
  while (keep < n_prompt - 1 && keep < e->n_cached && e->cached[keep] == prompt[keep]) keep++;
  if (gp.penalize_prompt)
    for (int i = 0; i < n_prompt; i++) sample_accept(s, prompt[i]);
  double t0 = now_ms();
  int rc = engine_eval(e, prompt + keep, n_prompt - keep, keep, e->logits_buf);
  st.n_prompt_eval = n_prompt - keep;
  st.prompt_ms = now_ms() - t0;
  if (rc == ERR_CANCELED) {
    st.stop = ENGINE_STOP_CANCELED;
    rc = 0;
    goto done;
  }
  if (rc) goto done;

  tok_stream ts;
  tok_stream_init(&ts);
  /* Resume: replay the earlier tokens through the detokenizer, keep only their text past
   * what was delivered. Held-back text is at most the longest stop string minus one byte
   * (an incomplete character stays in ts), so anything older is dropped as delivered. */
  size_t skip = gp.resume_sent;
  for (int i = n_prompt - gp.n_resume; i < n_prompt; i++) {
    if (!gp.penalize_prompt) sample_accept(s, prompt[i]);
    int n = tok_stream_feed(t, &ts, prompt[i], tx.buf + tx.len, tx.cap - tx.len);
    if (n < 0) {
      rc = n;
      goto done;
    }
    tx.len += (size_t)n;
    size_t d = skip < tx.len ? skip : tx.len;
    skip -= d;
    if (tx.len - d > max_stop) d = tx.len - max_stop;
    memmove(tx.buf, tx.buf + d, tx.len - d);
    tx.len -= d;
  }
  int pos = n_prompt;
  t0 = now_ms();
  for (;;) {
    if (st.n_gen >= gp.max_tokens) {
      st.stop = ENGINE_STOP_MAX_TOKENS;
      break;
    }
    if (atomic_load(&e->cancel)) {
      st.stop = ENGINE_STOP_CANCELED;
      break;
    }
    if (gp.on_logits) gp.on_logits(user, e->logits_buf, n_vocab);
    if (gp.grammar) { /* only tokens the grammar allows can be drawn */
      if (grammar_matcher_mask(gp.grammar, mask) <= 0) {
        st.stop = ENGINE_STOP_GRAMMAR;
        break;
      }
      for (int i = 0; i < n_vocab; i++)
        if (!(mask[i >> 5] >> (i & 31) & 1)) e->logits_buf[i] = -INFINITY;
    }
    int32_t id = sample_next(s, e->logits_buf);
    if (gp.grammar && !(mask[id >> 5] >> (id & 31) & 1)) id = sample_argmax(e->logits_buf, n_vocab); /* rounding */
    if (gp.stop_at_eog && tok_is_eog(t, id)) {
      st.stop = ENGINE_STOP_EOG;
      break;
    }
    if (gp.grammar && grammar_matcher_accept(gp.grammar, id)) {
      st.stop = ENGINE_STOP_GRAMMAR;
      break;
    }
    st.n_gen++;
    int n = tok_stream_feed(t, &ts, id, tx.buf + tx.len, tx.cap - tx.len);
    if (n > 0) tx.len += (size_t)n;
    long hit = stop_match(&gp, tx.buf, tx.len);
    size_t emit = hit >= 0 ? (size_t)hit : tx.len - stop_prefix_tail(&gp, tx.buf, tx.len);
    int want_stop = cb ? cb(user, id, tx.buf, emit) : 0;
    memmove(tx.buf, tx.buf + emit, tx.len - emit);
    tx.len -= emit;
    if (hit >= 0) {
      tx.len = 0; /* the stop string and what follows are dropped */
      st.stop = ENGINE_STOP_STRING;
      break;
    }
    if (want_stop) {
      st.stop = ENGINE_STOP_CALLBACK;
      break;
    }
    if (gp.grammar && grammar_matcher_must_end(gp.grammar)) {
      st.stop = ENGINE_STOP_GRAMMAR;
      break;
    }
    if (st.n_gen >= gp.max_tokens) {
      st.stop = ENGINE_STOP_MAX_TOKENS;
      break;
    }
    if (pos >= e->n_ctx) {
      st.stop = ENGINE_STOP_CTX;
      break;
    }
    rc = engine_eval(e, &id, 1, pos++, e->logits_buf);
    if (rc == ERR_CANCELED) {
      st.stop = ENGINE_STOP_CANCELED;
      rc = 0;
      break;
    }
    if (rc) break;
  }
  st.gen_ms = now_ms() - t0;
  /* the held-back tail and an incomplete character, as a last callback with id -1 */
  if (st.stop != ENGINE_STOP_STRING && rc == 0) {
    int n = tok_stream_flush(&ts, tx.buf + tx.len, tx.cap - tx.len);
    if (n > 0) tx.len += (size_t)n;
    if (tx.len && cb) cb(user, -1, tx.buf, tx.len);
  }
done:
  free(tx.buf);
  free(mask);
  if (st_out) *st_out = st;
  return rc;
}
