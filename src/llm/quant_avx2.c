/* llm/quant_avx2 — AVX2 + FMA + F16C kernels.
 *
 * Same scheme as quant_avx512.c at 256 bits: each dot is a register tile of NW weight rows
 * x NA activation rows with one accumulator per pair, the single dot being the 1x1 tile, so
 * quant_vec_dot_nx equals quant_vec_dot bit for bit. With 16 ymm registers, tiles are at
 * most 4x2; quant_vec_dot_nx runs 4x4 as two 4x2 tiles (weights decoded twice, still half
 * the weight loads of four matvecs). K-quants have single-row kernels only; their nx
 * falls back to a loop over them.
 *
 * Integer products: vpmaddubsw (u8 x s8 -> s16 pairs, no saturation for our ranges: at most
 * 2*128*127) then vpmaddwd with ones or with int16 scales. Signed x signed (Q8_0) moves the
 * weight's sign onto the activation with vpsignb, exact for activations in [-127, 127].
 *
 * Pure functions, no allocation, thread-safe. Compiled with -mavx2 -mfma -mf16c. */
#include <immintrin.h>
#include <string.h>

#include "llm/quant_impl.h"

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")

INLINE float f16(uint16_t h) { return _cvtsh_ss(h); }

/* Horizontal sum, always in this order (it is part of every result's bits). */
INLINE float hsum(__m256 v) {
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

INLINE int32_t hsum_i32(__m256i v) {
  __m128i b = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, _MM_SHUFFLE(1, 0, 3, 2)));
  b = _mm_add_epi32(b, _mm_shuffle_epi32(b, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(b);
}

INLINE __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Runs an nw x na request as tiles of at most 4 x 2 (16 ymm registers), each with
 * compile-time NW in {4, 2, 1} and NA in {2, 1}. Splitting never changes a result: every
 * pair's accumulator sees the same operations whatever the tile. */
#define NX_TILES(TILE, n, w, ws, nw, a, as, na, out, os)                                   \
  for (int i0 = 0; i0 < (nw);) {                                                           \
    int ti = (nw) - i0 >= 4 ? 4 : (nw) - i0 >= 2 ? 2 : 1;                                  \
    for (int j0 = 0; j0 < (na);) {                                                         \
      int tj = (na) - j0 >= 2 ? 2 : 1;                                                     \
      const uint8_t *tw = (w) + (size_t)i0 * (ws), *ta = (a) + (size_t)j0 * (as);          \
      float *to = (out) + (size_t)i0 * (os) + j0;                                          \
      switch (ti * 8 + tj) {                                                               \
      case 9: TILE(n, tw, ws, 1, ta, as, 1, to, os); break;                                \
      case 10: TILE(n, tw, ws, 1, ta, as, 2, to, os); break;                               \
      case 17: TILE(n, tw, ws, 2, ta, as, 1, to, os); break;                               \
      case 18: TILE(n, tw, ws, 2, ta, as, 2, to, os); break;                               \
      case 33: TILE(n, tw, ws, 4, ta, as, 1, to, os); break;                               \
      default: TILE(n, tw, ws, 4, ta, as, 2, to, os); break;                               \
      }                                                                                    \
      j0 += tj;                                                                            \
    }                                                                                      \
    i0 += ti;                                                                              \
  }

#define DEFINE_DOTS(name)                                                                  \
  static float dot_##name(int64_t n, const void *w, const void *a) {                       \
    float r;                                                                               \
    tile_##name(n, w, 0, 1, a, 0, 1, &r, 0);                                               \
    return r;                                                                              \
  }                                                                                        \
  static void dot_nx_##name(int64_t n, const void *vw, size_t ws, int nw, const void *va,  \
                            size_t as, int na, float *out, size_t os) {                    \
    const uint8_t *w = vw, *a = va;                                                        \
    NX_TILES(tile_##name, n, w, ws, nw, a, as, na, out, os)                                \
  }

/* ---- F32 / F16 / BF16: 8 elements per step, one FMA chain per pair --------------------- */

/* The last n - k (< 8) elements, zero-padded. */
INLINE __m256 tail_f32(const uint8_t *p, int64_t k, int64_t n) {
  float t[8] = {0};
  memcpy(t, (const float *)p + k, (size_t)(n - k) * 4);
  return _mm256_loadu_ps(t);
}
INLINE __m128i tail_u16(const uint8_t *p, int64_t k, int64_t n) {
  uint16_t t[8] = {0};
  memcpy(t, (const uint16_t *)p + k, (size_t)(n - k) * 2);
  return _mm_loadu_si128((const __m128i *)t);
}
INLINE __m256 bf16_widen(__m128i v) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}
INLINE __m256 ld_f32(const uint8_t *p, int64_t k) { return _mm256_loadu_ps((const float *)p + k); }
INLINE __m256 ldt_f32(const uint8_t *p, int64_t k, int64_t n) { return tail_f32(p, k, n); }
INLINE __m256 ld_f16(const uint8_t *p, int64_t k) {
  return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k)));
}
INLINE __m256 ldt_f16(const uint8_t *p, int64_t k, int64_t n) { return _mm256_cvtph_ps(tail_u16(p, k, n)); }
INLINE __m256 ld_bf16(const uint8_t *p, int64_t k) {
  return bf16_widen(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k)));
}
INLINE __m256 ldt_bf16(const uint8_t *p, int64_t k, int64_t n) { return bf16_widen(tail_u16(p, k, n)); }

#define DEFINE_FLOAT_TILE(name)                                                            \
  INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a, \
                          size_t as, int NA, float *out, size_t os) {                      \
    __m256 acc[4][2], av[2];                                                               \
    UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)                \
        acc[i][j] = _mm256_setzero_ps();                                                   \
    int64_t k = 0;                                                                         \
    for (; k + 8 <= n; k += 8) {                                                           \
      UNROLL for (int j = 0; j < NA; j++) av[j] = ld_##name(a + j * as, k);                \
      UNROLL for (int i = 0; i < NW; i++) {                                                \
        __m256 wv = ld_##name(w + i * ws, k);                                              \
        UNROLL for (int j = 0; j < NA; j++) acc[i][j] = _mm256_fmadd_ps(wv, av[j], acc[i][j]); \
      }                                                                                    \
    }                                                                                      \
    if (k < n) {                                                                           \
      UNROLL for (int j = 0; j < NA; j++) av[j] = ldt_##name(a + j * as, k, n);            \
      UNROLL for (int i = 0; i < NW; i++) {                                                \
        __m256 wv = ldt_##name(w + i * ws, k, n);                                          \
        UNROLL for (int j = 0; j < NA; j++) acc[i][j] = _mm256_fmadd_ps(wv, av[j], acc[i][j]); \
      }                                                                                    \
    }                                                                                      \
    UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)                \
        out[i * os + j] = hsum(acc[i][j]);                                                 \
  }

DEFINE_FLOAT_TILE(f32)
DEFINE_FLOAT_TILE(f16)
DEFINE_FLOAT_TILE(bf16)
DEFINE_DOTS(f32)
DEFINE_DOTS(f16)
DEFINE_DOTS(bf16)

/* ---- 32-element blocks against Q8_0: one block per step ------------------------------------ */

/* 4-bit quants of a block as 32 bytes in element order (low nibbles = 0..15). */
INLINE __m256i nibbles32(const uint8_t qs[static 16]) {
  __m128i v = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(v, m)),
                                 _mm_and_si128(_mm_srli_epi16(v, 4), m), 1);
}

/* 0x10 in byte j where bit j of the 32-bit qh is set. */
INLINE __m256i high_bits16(const uint8_t qh[static 4]) {
  uint32_t h;
  memcpy(&h, qh, 4);
  const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
  __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), spread);
  __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/* int32 lanes of sum(u8 x s8) over groups of 4 bytes. */
INLINE __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

typedef struct wstep {
  __m256i q;  /* Q8_0: signed quants; others: unsigned 0..15 / 0..31 */
  __m256 d, m;
} wstep;

INLINE wstep wdecode(qtype T, const uint8_t *row, int64_t b) {
  wstep s;
  s.m = _mm256_setzero_ps();
  if (T == QT_Q8_0) {
    const quant__q8_0 *x = (const quant__q8_0 *)row + b;
    s.q = ld256(x->qs), s.d = _mm256_set1_ps(f16(x->d));
  } else if (T == QT_Q4_0) {
    const quant__q4_0 *x = (const quant__q4_0 *)row + b;
    s.q = nibbles32(x->qs), s.d = _mm256_set1_ps(f16(x->d));
  } else if (T == QT_Q4_1) {
    const quant__q4_1 *x = (const quant__q4_1 *)row + b;
    s.q = nibbles32(x->qs), s.d = _mm256_set1_ps(f16(x->d)), s.m = _mm256_set1_ps(f16(x->m));
  } else if (T == QT_Q5_0) {
    const quant__q5_0 *x = (const quant__q5_0 *)row + b;
    s.q = _mm256_or_si256(nibbles32(x->qs), high_bits16(x->qh)), s.d = _mm256_set1_ps(f16(x->d));
  } else { /* QT_Q5_1 */
    const quant__q5_1 *x = (const quant__q5_1 *)row + b;
    s.q = _mm256_or_si256(nibbles32(x->qs), high_bits16(x->qh));
    s.d = _mm256_set1_ps(f16(x->d)), s.m = _mm256_set1_ps(f16(x->m));
  }
  return s;
}

INLINE void tile32(qtype T, int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a,
                   size_t as, int NA, float *out, size_t os) {
  const int64_t nb = n / 32;
  __m256 acc[4][2];
  UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)
      acc[i][j] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    __m256i ax[2], aux[2];
    __m256 da[2], sf[2];
    UNROLL for (int j = 0; j < NA; j++) {
      const quant__q8_0 *y = (const quant__q8_0 *)(a + j * as) + b;
      ax[j] = ld256(y->qs);
      da[j] = _mm256_set1_ps(f16(y->d));
      if (T == QT_Q4_0 || T == QT_Q5_0) /* -off * sum(a), per lane */
        aux[j] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                  dot_u8s8(_mm256_set1_epi8(T == QT_Q4_0 ? 8 : 16), ax[j]));
      if (T == QT_Q4_1 || T == QT_Q5_1)
        sf[j] = _mm256_cvtepi32_ps(dot_u8s8(_mm256_set1_epi8(1), ax[j]));
    }
    UNROLL for (int i = 0; i < NW; i++) {
      wstep s = wdecode(T, w + i * ws, b);
      if (T == QT_Q8_0) {
        __m256i wa = _mm256_sign_epi8(s.q, s.q);
        UNROLL for (int j = 0; j < NA; j++) {
          __m256i p = dot_u8s8(wa, _mm256_sign_epi8(ax[j], s.q));
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(s.d, da[j]), acc[i][j]);
        }
      } else if (T == QT_Q4_0 || T == QT_Q5_0) {
        UNROLL for (int j = 0; j < NA; j++) {
          __m256i p = _mm256_add_epi32(dot_u8s8(s.q, ax[j]), aux[j]);
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(s.d, da[j]), acc[i][j]);
        }
      } else {
        UNROLL for (int j = 0; j < NA; j++) {
          __m256i p = dot_u8s8(s.q, ax[j]);
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(s.d, da[j]), acc[i][j]);
          acc[i][j] = _mm256_fmadd_ps(sf[j], _mm256_mul_ps(s.m, da[j]), acc[i][j]);
        }
      }
    }
  }
  UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)
      out[i * os + j] = hsum(acc[i][j]);
}

#define DEFINE_TILE32(name, T)                                                             \
  INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a, \
                          size_t as, int NA, float *out, size_t os) {                      \
    tile32(T, n, w, ws, NW, a, as, NA, out, os);                                           \
  }                                                                                        \
  DEFINE_DOTS(name)

DEFINE_TILE32(q8_0, QT_Q8_0)
DEFINE_TILE32(q4_0, QT_Q4_0)
DEFINE_TILE32(q4_1, QT_Q4_1)
DEFINE_TILE32(q5_0, QT_Q5_0)
DEFINE_TILE32(q5_1, QT_Q5_1)

/* ---- K-quants against Q8_K (single row) ---------------------------------------------------- */

/* Q4_K/Q5_K: per super-block, int32 lanes of sum(sc * q * a) and the min term. */
INLINE float dot_k45(qtype T, int64_t n, const void *w, const void *a) {
  const quant__q8_k *y = a;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; b++, y++) {
    const uint8_t *qs, *scales, *qh = NULL;
    float d, dmin;
    if (T == QT_Q4_K) {
      const quant__q4_k *x = (const quant__q4_k *)w + b;
      qs = x->qs, scales = x->scales, d = f16(x->d), dmin = f16(x->dmin);
    } else {
      const quant__q5_k *x = (const quant__q5_k *)w + b;
      qs = x->qs, scales = x->scales, qh = x->qh, d = f16(x->d), dmin = f16(x->dmin);
    }
    uint8_t sc[8], mn[8];
    quant__k4_scales(scales, sc, mn);
    __m256i hv = T == QT_Q5_K ? ld256(qh) : _mm256_setzero_si256();
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      __m256i v = ld256(qs + 32 * c);
      __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
      if (T == QT_Q5_K) {
        __m256i b0 = _mm256_set1_epi8((char)(1 << (2 * c))), b1 = _mm256_set1_epi8((char)(2 << (2 * c)));
        const __m256i h16 = _mm256_set1_epi8(16);
        lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b0), b0), h16));
        hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hv, b1), b1), h16));
      }
      __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, ld256(y->qs + 64 * c)), _mm256_set1_epi16(sc[2 * c]));
      __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, ld256(y->qs + 64 * c + 32)), _mm256_set1_epi16(sc[2 * c + 1]));
      isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
    }
    /* min term: lane t = mn[t] * (bsums[2t] + bsums[2t+1]) */
    __m256i bp = _mm256_madd_epi16(ld256(y->bsums), _mm256_set1_epi16(1));
    __m256i mp = _mm256_mullo_epi32(bp, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)mn)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(d * y->d), acc);
    acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mp), _mm256_set1_ps(dmin * y->d), acc);
  }
  return hsum(acc);
}

static float dot_q4_k(int64_t n, const void *w, const void *a) { return dot_k45(QT_Q4_K, n, w, a); }
static float dot_q5_k(int64_t n, const void *w, const void *a) { return dot_k45(QT_Q5_K, n, w, a); }

static float dot_q6_k(int64_t n, const void *w, const void *a) {
  const quant__q6_k *x = w;
  const quant__q8_k *y = a;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / QK_K; b++, x++, y++) {
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++) {
      __m256i l0 = ld256(x->ql + 64 * h), l1 = ld256(x->ql + 64 * h + 32), hv = ld256(x->qh + 32 * h);
      __m256i q[4];
      q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hv, m2), 4));
      q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2), m2), 4));
      q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 4), m2), 4));
      q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 6), m2), 4));
      for (int k = 0; k < 4; k++) {
        int g = 8 * h + 2 * k; /* sub-blocks g (elements 0..15 of the chunk) and g+1 */
        __m256i scv = _mm256_set_m128i(_mm_set1_epi16(x->scales[g + 1]), _mm_set1_epi16(x->scales[g]));
        __m256i t = _mm256_maddubs_epi16(q[k], ld256(y->qs + 128 * h + 32 * k));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(t, scv));
      }
    }
    /* -32 * sum(sc[g] * bsums[g]) */
    __m256i mp = _mm256_madd_epi16(ld256(y->bsums), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales)));
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(mp, 5));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(f16(x->d) * y->d), acc);
  }
  return hsum(acc);
}

/* ---- Activation quantizers (bit-identical to quant_ref.c) ------------------------------------ */

/* roundf (half away from zero), exactly: trunc, then step away when |frac| >= 0.5. */
INLINE __m256 round_away(__m256 p) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(p, t));
  __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  __m256 one = _mm256_or_ps(_mm256_and_ps(p, sign), _mm256_set1_ps(1.f));
  return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

/* 32 int32 (in [-128, 127]) to 32 int8 in order. */
INLINE __m256i pack32(__m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

INLINE float hmax(__m256 v) {
  __m128 b = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  b = _mm_max_ps(b, _mm_movehl_ps(b, b));
  b = _mm_max_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

static void quantize_q8_0(const float *x, void *vy, int64_t n) {
  quant__q8_0 *y = vy;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k), m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[k]));
    float amax = hmax(m), d = amax / 127.f, id = d ? 1.f / d : 0.f;
    y[i].d = quant_f32_to_f16(d);
    __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[k], vid)));
    _mm256_storeu_si256((__m256i *)y[i].qs, pack32(q[0], q[1], q[2], q[3]));
  }
}

static void quantize_q8_k(const float *x, void *vy, int64_t n) {
  quant__q8_k *y = vy;
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < QK_K; k += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)));
    float amax = hmax(m);
    if (!(amax > 0)) {
      memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    float max = 0; /* first element with that magnitude (the scalar code's choice) */
    __m256 va = _mm256_set1_ps(amax);
    for (int k = 0; k < QK_K; k += 8) {
      int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), va, _CMP_EQ_OQ));
      if (eq) {
        max = x[k + __builtin_ctz((unsigned)eq)];
        break;
      }
    }
    float iscale = -128.f / max;
    __m256 vis = _mm256_set1_ps(iscale);
    const __m256i lim = _mm256_set1_epi32(127);
    for (int g = 0; g < QK_K / 32; g++) {
      __m256i q[4];
      for (int k = 0; k < 4; k++)
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * k), vis)), lim);
      _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * g), pack32(q[0], q[1], q[2], q[3]));
      y[i].bsums[2 * g] = (int16_t)hsum_i32(_mm256_add_epi32(q[0], q[1]));
      y[i].bsums[2 * g + 1] = (int16_t)hsum_i32(_mm256_add_epi32(q[2], q[3]));
    }
    y[i].d = 1 / iscale;
  }
}

static void quantize_f16(const float *x, void *vy, int64_t n) {
  uint16_t *y = vy;
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    _mm_storeu_si128((__m128i *)(y + k), _mm256_cvtps_ph(_mm256_loadu_ps(x + k), _MM_FROUND_TO_NEAREST_INT));
  for (; k < n; k++) y[k] = quant_f32_to_f16(x[k]);
}

static void dequantize_f16(const void *vx, float *y, int64_t n) {
  const uint16_t *x = vx;
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) _mm256_storeu_ps(y + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + k))));
  for (; k < n; k++) y[k] = quant_f16_to_f32(x[k]);
}

void quant__fill_avx2(quant__kernels *k) {
  k->isa = "avx2";
#define SET(T, name)                 \
  k->dot[T] = dot_##name;            \
  k->dot_nx[T] = dot_nx_##name;
  SET(QT_F32, f32)
  SET(QT_F16, f16)
  SET(QT_BF16, bf16)
  SET(QT_Q8_0, q8_0)
  SET(QT_Q4_0, q4_0)
  SET(QT_Q4_1, q4_1)
  SET(QT_Q5_0, q5_0)
  SET(QT_Q5_1, q5_1)
#undef SET
  k->dot[QT_Q4_K] = dot_q4_k;
  k->dot[QT_Q5_K] = dot_q5_k;
  k->dot[QT_Q6_K] = dot_q6_k;
  k->quantize[QT_Q8_0] = quantize_q8_0;
  k->quantize[QT_Q8_K] = quantize_q8_k;
  k->quantize[QT_F16] = quantize_f16;
  k->dequantize[QT_F16] = dequantize_f16;
}
