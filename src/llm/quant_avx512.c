/* llm/quant_avx512 — AVX-512 (F/BW/DQ/VL/VNNI) + F16C kernels.
 *
 * Every dot is written as a register tile: NW weight rows x NA activation rows (1, 2 or 4
 * each, compile-time constants after inlining; other counts are split), one accumulator per
 * (row, row) pair. Weight blocks are loaded and decoded once per tile step and reused for
 * all NA activation rows. The single-row dot is the 1x1 tile, and each pair's accumulator
 * sees exactly the same operations in the same order whatever the tile shape, so
 * quant_vec_dot_nx equals quant_vec_dot bit for bit. (For the 32-element block types the
 * 1x1 tile runs at 256 bits, which is faster on CPUs that split 512-bit ops, with the same
 * per-lane values and summation order: see dot32_ymm.)
 *
 * Integer products use VNNI: vpdpbusd (u8 x s8, 4 products summed per int32 lane) and
 * vpdpwssd (s16 x s16 pairs). Signed x signed (Q8_0 x Q8_0): the tiles use (w ^ 0x80) =
 * w + 128 as the unsigned operand and subtract 128 * sum(a), computed once per activation
 * row; the 256-bit single row moves the weight's sign onto the activation (|w| x sign(w)*a,
 * exact because activations are in [-127, 127]). Both give the same exact lane sums.
 * Unsigned 4/5/6-bit weights go straight into vpdpbusd/vpmaddubsw, and their constant
 * offset (-8, -16, -32) is subtracted with an activation-only sum.
 *
 * Pure functions, no allocation, thread-safe. Compiled with -mavx512f -mavx512bw
 * -mavx512dq -mavx512vl -mavx512vnni -mfma -mf16c (Makefile, by file name). */
#include <immintrin.h>
#include <string.h>

#include "llm/quant_impl.h"

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")
#define UNROLL8 _Pragma("GCC unroll 8")

INLINE float f16(uint16_t h) { return _cvtsh_ss(h); }

/* Horizontal sum, always in this order (it is part of every result's bits). */
INLINE float hsum(__m512 v) {
  __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  b = _mm_add_ps(b, _mm_movehl_ps(b, b));
  b = _mm_add_ss(b, _mm_movehdup_ps(b));
  return _mm_cvtss_f32(b);
}

/* hsum of sixteen accumulators at once: out[i*os + j*oa] = hsum(acc[i][j]) for a 4x4 tile,
 * bit for bit. Each stage adds the same lane pairs as hsum does (only which register holds
 * a partial sum differs, and a + b == b + a exactly): 256-bit halves, then 128-bit
 * quarters, then lanes l and l+2, then l and l+1. 45 shuffles and adds instead of 16 x 7.
 * Lane 4c + m of the result is input 4m + c, so feeding acc[i][j] as input 4j + i gives
 * out row i in quarter i (oa == 1), and as input 4i + j token j's four results in quarter
 * j (os == 1); each quarter is one 4-float store. */
INLINE void hsum4x4(__m512 acc[4][4], float *out, size_t os, size_t oa) {
  const int tr = oa != 1; /* compile-time after inlining */
  __m512 p[8], q[4], r[2];
  UNROLL8 for (int k = 0; k < 8; k++) {
    int n0 = 2 * k, n1 = 2 * k + 1;
    __m512 a = tr ? acc[n0 / 4][n0 % 4] : acc[n0 % 4][n0 / 4];
    __m512 b = tr ? acc[n1 / 4][n1 % 4] : acc[n1 % 4][n1 / 4];
    p[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  UNROLL for (int k = 0; k < 4; k++)
    q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(p[2 * k], p[2 * k + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(p[2 * k], p[2 * k + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  UNROLL for (int k = 0; k < 2; k++) {
    __m512d x = _mm512_castps_pd(q[2 * k]), y = _mm512_castps_pd(q[2 * k + 1]);
    r[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  __m512 s = _mm512_add_ps(_mm512_shuffle_ps(r[0], r[1], _MM_SHUFFLE(2, 0, 2, 0)),
                           _mm512_shuffle_ps(r[0], r[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const size_t st = tr ? oa : os;
  _mm_storeu_ps(out, _mm512_castps512_ps128(s));
  _mm_storeu_ps(out + st, _mm512_extractf32x4_ps(s, 1));
  _mm_storeu_ps(out + 2 * st, _mm512_extractf32x4_ps(s, 2));
  _mm_storeu_ps(out + 3 * st, _mm512_extractf32x4_ps(s, 3));
}

/* out[i*os + j*oa] = hsum(acc[i][j]) for an NW x NA tile (the 4x4 one in one go when one
 * of the strides is 1, as for quant_vec_dot_nx and quant_vec_dot_nx_t). */
INLINE void hsum_tile(__m512 acc[4][4], int NW, int NA, float *out, size_t os, size_t oa) {
  if (NW == 4 && NA == 4 && (os == 1 || oa == 1)) {
    hsum4x4(acc, out, os, oa);
    return;
  }
  UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)
      out[i * os + j * oa] = hsum(acc[i][j]);
}

/* Runs an nw x na request as tiles of 4, 2 and 1 rows each way (NAMAX: 4, or 2 where 4x4
 * would not fit the registers), each tile with compile-time NW, NA. Splitting never changes
 * a result: every pair's accumulator sees the same operations whatever the tile. */
#define NX_TILES(TILE, NAMAX, n, w, ws, nw, a, as, na, out, os, oa)                        \
  for (int i0 = 0; i0 < (nw);) {                                                           \
    int ti = (nw) - i0 >= 4 ? 4 : (nw) - i0 >= 2 ? 2 : 1;                                  \
    for (int j0 = 0; j0 < (na);) {                                                         \
      int tj = (na) - j0 >= 4 && (NAMAX) >= 4 ? 4 : (na) - j0 >= 2 ? 2 : 1;                \
      const uint8_t *tw = (w) + (size_t)i0 * (ws), *ta = (a) + (size_t)j0 * (as);          \
      float *to = (out) + (size_t)i0 * (os) + (size_t)j0 * (oa);                           \
      switch (ti * 8 + tj) {                                                               \
      case 9: TILE(n, tw, ws, 1, ta, as, 1, to, os, oa); break;                                \
      case 10: TILE(n, tw, ws, 1, ta, as, 2, to, os, oa); break;                               \
      case 17: TILE(n, tw, ws, 2, ta, as, 1, to, os, oa); break;                               \
      case 18: TILE(n, tw, ws, 2, ta, as, 2, to, os, oa); break;                               \
      case 33: TILE(n, tw, ws, 4, ta, as, 1, to, os, oa); break;                               \
      case 34: TILE(n, tw, ws, 4, ta, as, 2, to, os, oa); break;                               \
      case 12: if ((NAMAX) >= 4) TILE(n, tw, ws, 1, ta, as, (NAMAX), to, os, oa); break;       \
      case 20: if ((NAMAX) >= 4) TILE(n, tw, ws, 2, ta, as, (NAMAX), to, os, oa); break;       \
      case 36: if ((NAMAX) >= 4) TILE(n, tw, ws, 4, ta, as, (NAMAX), to, os, oa); break;       \
      default: assert(0);                                                                  \
      }                                                                                    \
      j0 += tj;                                                                            \
    }                                                                                      \
    i0 += ti;                                                                              \
  }

/* Defines dot_<name> (the 1x1 tile), dot_nx_<name> and dot_nx_t_<name> (tiles writing
 * out[i*os + j] or out[j*os + i]) and dot_rows_<name> (the 1x1 tile inlined in a loop over
 * rows) from an always-inline tile that writes out[i*os + j*oa]. */
#define DEFINE_DOTS_NA(name, NAMAX)                                                        \
  static float dot_##name(int64_t n, const void *w, const void *a) {                       \
    float r;                                                                               \
    tile_##name(n, w, 0, 1, a, 0, 1, &r, 0, 0);                                            \
    return r;                                                                              \
  }                                                                                        \
  static void dot_nx_##name(int64_t n, const void *vw, size_t ws, int nw, const void *va,  \
                            size_t as, int na, float *out, size_t os) {                    \
    const uint8_t *w = vw, *a = va;                                                        \
    NX_TILES(tile_##name, NAMAX, n, w, ws, nw, a, as, na, out, os, 1)                      \
  }                                                                                        \
  static void dot_nx_t_##name(int64_t n, const void *vw, size_t ws, int nw, const void *va, \
                              size_t as, int na, float *out, size_t os) {                  \
    const uint8_t *w = vw, *a = va;                                                        \
    NX_TILES(tile_##name, NAMAX, n, w, ws, nw, a, as, na, out, 1, os)                      \
  }                                                                                        \
  static void dot_rows_##name(int64_t n, const void *vw, size_t ws, int64_t nr,           \
                              const void *a, float *out, size_t os) {                      \
    const uint8_t *w = vw;                                                                 \
    for (int64_t i = 0; i < nr; i++)                                                       \
      tile_##name(n, w + (size_t)i * ws, 0, 1, a, 0, 1, out + (size_t)i * os, 0, 0);       \
  }
#define DEFINE_DOTS(name) DEFINE_DOTS_NA(name, 4)

/* ---- F32 / F16 / BF16: 16 elements per step, one FMA chain per pair ------------------- */

INLINE __m512 ld_f32(const uint8_t *p, int64_t k) { return _mm512_loadu_ps((const float *)p + k); }
INLINE __m512 ldm_f32(const uint8_t *p, int64_t k, __mmask16 m) {
  return _mm512_maskz_loadu_ps(m, (const float *)p + k);
}
INLINE __m512 ld_f16(const uint8_t *p, int64_t k) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k)));
}
INLINE __m512 ldm_f16(const uint8_t *p, int64_t k, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k));
}
INLINE __m512 bf16_widen(__m256i v) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}
INLINE __m512 ld_bf16(const uint8_t *p, int64_t k) {
  return bf16_widen(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k)));
}
INLINE __m512 ldm_bf16(const uint8_t *p, int64_t k, __mmask16 m) {
  return bf16_widen(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k));
}

#define DEFINE_FLOAT_TILE(name)                                                            \
  INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a, \
                          size_t as, int NA, float *out, size_t os, size_t oa) {                      \
    __m512 acc[4][4], av[4];                                                               \
    UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)                \
        acc[i][j] = _mm512_setzero_ps();                                                   \
    int64_t k = 0;                                                                         \
    for (; k + 16 <= n; k += 16) {                                                         \
      UNROLL for (int j = 0; j < NA; j++) av[j] = ld_##name(a + j * as, k);                \
      UNROLL for (int i = 0; i < NW; i++) {                                                \
        __m512 wv = ld_##name(w + i * ws, k);                                              \
        UNROLL for (int j = 0; j < NA; j++) acc[i][j] = _mm512_fmadd_ps(wv, av[j], acc[i][j]); \
      }                                                                                    \
    }                                                                                      \
    if (k < n) {                                                                           \
      __mmask16 m = (__mmask16)((1u << (n - k)) - 1);                                      \
      UNROLL for (int j = 0; j < NA; j++) av[j] = ldm_##name(a + j * as, k, m);            \
      UNROLL for (int i = 0; i < NW; i++) {                                                \
        __m512 wv = ldm_##name(w + i * ws, k, m);                                          \
        UNROLL for (int j = 0; j < NA; j++) acc[i][j] = _mm512_fmadd_ps(wv, av[j], acc[i][j]); \
      }                                                                                    \
    }                                                                                      \
    hsum_tile(acc, NW, NA, out, os, oa);                                                   \
  }

DEFINE_FLOAT_TILE(f32)
DEFINE_FLOAT_TILE(f16)
DEFINE_FLOAT_TILE(bf16)
DEFINE_DOTS(f32)
DEFINE_DOTS(f16)
DEFINE_DOTS(bf16)

/* ---- 32-element blocks against Q8_0: two blocks (64 elements) per step ------------------- */

/* A 256-bit value in the low half, zeros above. */
INLINE __m512i zext256(__m256i v) { return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0); }
INLINE __m512i join256(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
/* [d0 x8 | d1 x8], or [d0 x8 | 0 x8] for a lone last block. */
INLINE __m512 dvec(float d0, float d1, int two) {
  return two ? _mm512_insertf32x8(_mm512_set1_ps(d0), _mm256_set1_ps(d1), 1)
             : _mm512_maskz_mov_ps(0x00FF, _mm512_set1_ps(d0));
}
INLINE __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* Activation blocks b (and b+1 when two) of a Q8_0 row. */
INLINE __m512i act_q8(const quant__q8_0 *y, int two) {
  return two ? join256(ld256(y[0].qs), ld256(y[1].qs)) : zext256(ld256(y[0].qs));
}

/* 4-bit quants of a block as 32 bytes in element order (low nibbles = 0..15): the 16 bytes
 * broadcast to both halves, the high half shifted down by 4 (within 64-bit lanes; the mask
 * drops what crosses from the next byte). */
INLINE __m256i nibbles32(const uint8_t qs[static 16]) {
  __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
  return _mm256_and_si256(_mm256_srlv_epi64(v, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0F));
}
/* The same for two blocks: block a in the low 256 bits, block b in the high ones. */
INLINE __m512i nibbles64(const uint8_t a[static 16], const uint8_t b[static 16]) {
  __m512i v = join256(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)a)),
                      _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)b)));
  return _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)), _mm512_set1_epi8(0x0F));
}

/* Weight side of one step: u8 (or, for Q8_0, s8) quants in element order, scale and
 * offset vectors. T is a compile-time constant after inlining. */
typedef struct wstep {
  __m512i q;   /* quants: Q8_0 signed; others unsigned 0..15 / 0..31 */
  __m512 d;    /* fp32 scales, 8 lanes per block */
  __m512 m;    /* Q4_1/Q5_1 offsets, 8 lanes per block */
} wstep;

INLINE uint64_t qh32(const uint8_t qh[static 4]) {
  uint32_t v;
  memcpy(&v, qh, 4);
  return v;
}

INLINE wstep wdecode(qtype T, const uint8_t *row, int64_t b, int two) {
  wstep s;
  s.m = _mm512_setzero_ps();
  if (T == QT_Q8_0) {
    const quant__q8_0 *x = (const quant__q8_0 *)row + b;
    s.q = act_q8(x, two);
    s.d = dvec(f16(x[0].d), two ? f16(x[1].d) : 0, two);
  } else if (T == QT_Q4_0) {
    const quant__q4_0 *x = (const quant__q4_0 *)row + b;
    s.q = two ? nibbles64(x[0].qs, x[1].qs) : zext256(nibbles32(x[0].qs));
    s.d = dvec(f16(x[0].d), two ? f16(x[1].d) : 0, two);
  } else if (T == QT_Q4_1) {
    const quant__q4_1 *x = (const quant__q4_1 *)row + b;
    s.q = two ? nibbles64(x[0].qs, x[1].qs) : zext256(nibbles32(x[0].qs));
    s.d = dvec(f16(x[0].d), two ? f16(x[1].d) : 0, two);
    s.m = dvec(f16(x[0].m), two ? f16(x[1].m) : 0, two);
  } else if (T == QT_Q5_0) {
    const quant__q5_0 *x = (const quant__q5_0 *)row + b;
    s.q = two ? nibbles64(x[0].qs, x[1].qs) : zext256(nibbles32(x[0].qs));
    __mmask64 hb = qh32(x[0].qh) | (two ? qh32(x[1].qh) << 32 : 0);
    s.q = _mm512_mask_add_epi8(s.q, hb, s.q, _mm512_set1_epi8(16));
    s.d = dvec(f16(x[0].d), two ? f16(x[1].d) : 0, two);
  } else { /* QT_Q5_1 */
    const quant__q5_1 *x = (const quant__q5_1 *)row + b;
    s.q = two ? nibbles64(x[0].qs, x[1].qs) : zext256(nibbles32(x[0].qs));
    __mmask64 hb = qh32(x[0].qh) | (two ? qh32(x[1].qh) << 32 : 0);
    s.q = _mm512_mask_add_epi8(s.q, hb, s.q, _mm512_set1_epi8(16));
    s.d = dvec(f16(x[0].d), two ? f16(x[1].d) : 0, two);
    s.m = dvec(f16(x[0].m), two ? f16(x[1].m) : 0, two);
  }
  return s;
}

INLINE void step32(qtype T, const uint8_t *w, size_t ws, int NW, const uint8_t *a, size_t as,
                   int NA, int64_t b, int two, __m512 acc[4][4]) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i ax[4], aux[4];
  __m512 da[4], sf[4];
  UNROLL for (int j = 0; j < NA; j++) {
    const quant__q8_0 *y = (const quant__q8_0 *)(a + j * as) + b;
    ax[j] = act_q8(y, two);
    da[j] = dvec(f16(y[0].d), two ? f16(y[1].d) : 0, two);
    if (T == QT_Q8_0 || T == QT_Q4_0 || T == QT_Q5_0) /* -offset * sum(a), per lane */
      aux[j] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8((char)(T == QT_Q8_0 ? 0x80 : T == QT_Q4_0 ? 8 : 16)), ax[j]));
    if (T == QT_Q4_1 || T == QT_Q5_1) /* sum(a) per lane, as float */
      sf[j] = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, _mm512_set1_epi8(1), ax[j]));
  }
  UNROLL for (int i = 0; i < NW; i++) {
    wstep s = wdecode(T, w + i * ws, b, two);
    if (T == QT_Q8_0) { /* (w + 128) as u8, then the -128 * sum(a) in aux: exact */
      __m512i wu = _mm512_xor_si512(s.q, _mm512_set1_epi8((char)0x80));
      UNROLL for (int j = 0; j < NA; j++) {
        __m512i p = _mm512_dpbusd_epi32(aux[j], wu, ax[j]);
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(s.d, da[j]), acc[i][j]);
      }
    } else if (T == QT_Q4_0 || T == QT_Q5_0) {
      UNROLL for (int j = 0; j < NA; j++) {
        __m512i p = _mm512_dpbusd_epi32(aux[j], s.q, ax[j]);
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(s.d, da[j]), acc[i][j]);
      }
    } else {
      UNROLL for (int j = 0; j < NA; j++) {
        __m512i p = _mm512_dpbusd_epi32(zero, s.q, ax[j]);
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(s.d, da[j]), acc[i][j]);
        acc[i][j] = _mm512_fmadd_ps(sf[j], _mm512_mul_ps(s.m, da[j]), acc[i][j]);
      }
    }
  }
}

INLINE void tile32(qtype T, int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a,
                   size_t as, int NA, float *out, size_t os, size_t oa) {
  const int64_t nb = n / 32;
  __m512 acc[4][4];
  UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)
      acc[i][j] = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) step32(T, w, ws, NW, a, as, NA, b, 1, acc);
  if (b < nb) step32(T, w, ws, NW, a, as, NA, b, 0, acc);
  hsum_tile(acc, NW, NA, out, os, oa);
}

/* The 1x1 tile at 256 bits. Zen 4 splits 512-bit ops in two, so for a single row the zmm
 * loop's inserts and scale vectors cost more than they save. The lane values are the same
 * as tile32's: block b's 8 int32 lanes, times the same d_w*d_a product, accumulate into
 * "even" (zmm low half) or "odd" (high half) lanes, and the final sum adds odd to even
 * before the same reduction tree. The result is bit-identical to tile32 with NW = NA = 1. */
INLINE __m256 blk32_ymm(qtype T, const uint8_t *w, const uint8_t *a, int64_t b, __m256 acc) {
  const __m256i zero = _mm256_setzero_si256();
  const quant__q8_0 *y = (const quant__q8_0 *)a + b;
  __m256i ax = ld256(y->qs), p;
  float da = f16(y->d), dw, mw = 0;
  if (T == QT_Q8_0) {
    const quant__q8_0 *x = (const quant__q8_0 *)w + b;
    __m256i q = ld256(x->qs);
    p = _mm256_dpbusd_epi32(zero, _mm256_sign_epi8(q, q), _mm256_sign_epi8(ax, q));
    dw = f16(x->d);
  } else {
    __m256i q;
    const uint8_t *qh = NULL;
    if (T == QT_Q4_0) {
      const quant__q4_0 *x = (const quant__q4_0 *)w + b;
      q = nibbles32(x->qs), dw = f16(x->d);
    } else if (T == QT_Q4_1) {
      const quant__q4_1 *x = (const quant__q4_1 *)w + b;
      q = nibbles32(x->qs), dw = f16(x->d), mw = f16(x->m);
    } else if (T == QT_Q5_0) {
      const quant__q5_0 *x = (const quant__q5_0 *)w + b;
      q = nibbles32(x->qs), dw = f16(x->d), qh = x->qh;
    } else {
      const quant__q5_1 *x = (const quant__q5_1 *)w + b;
      q = nibbles32(x->qs), dw = f16(x->d), mw = f16(x->m), qh = x->qh;
    }
    if (qh) q = _mm256_mask_add_epi8(q, (__mmask32)qh32(qh), q, _mm256_set1_epi8(16));
    __m256i aux = zero;
    if (T == QT_Q4_0 || T == QT_Q5_0)
      aux = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(T == QT_Q4_0 ? 8 : 16), ax));
    p = _mm256_dpbusd_epi32(aux, q, ax);
  }
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * da), acc);
  if (T == QT_Q4_1 || T == QT_Q5_1) {
    __m256 sf = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(zero, _mm256_set1_epi8(1), ax));
    acc = _mm256_fmadd_ps(sf, _mm256_set1_ps(mw * da), acc);
  }
  return acc;
}

INLINE float dot32_ymm(qtype T, int64_t n, const uint8_t *w, const uint8_t *a) {
  const int64_t nb = n / 32;
  __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    even = blk32_ymm(T, w, a, b, even);
    odd = blk32_ymm(T, w, a, b + 1, odd);
  }
  if (b < nb) even = blk32_ymm(T, w, a, b, even);
  __m256 v = _mm256_add_ps(odd, even); /* = hsum's first step on [even | odd] */
  __m128 c = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  c = _mm_add_ps(c, _mm_movehl_ps(c, c));
  c = _mm_add_ss(c, _mm_movehdup_ps(c));
  return _mm_cvtss_f32(c);
}

#define DEFINE_TILE32(name, T)                                                             \
  INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a, \
                          size_t as, int NA, float *out, size_t os, size_t oa) {                      \
    if (NW == 1 && NA == 1) *out = dot32_ymm(T, n, w, a);                                  \
    else tile32(T, n, w, ws, NW, a, as, NA, out, os, oa);                                      \
  }                                                                                        \
  DEFINE_DOTS(name)

DEFINE_TILE32(q8_0, QT_Q8_0)
DEFINE_TILE32(q4_0, QT_Q4_0)
DEFINE_TILE32(q4_1, QT_Q4_1)
DEFINE_TILE32(q5_0, QT_Q5_0)
DEFINE_TILE32(q5_1, QT_Q5_1)

/* Decoding (quant_vec_dot_rows) for the 4- and 5-bit types. blk32_ymm spends part of each
 * block on the activation alone: its scale (fp16) and, for the offset, -8 or -16 times its
 * lane sums (Q4_0/Q5_0) or its lane sums as float (Q4_1/Q5_1). Those are the same for every
 * weight row, so rows32 computes them once per call into a table on the stack and each row
 * does only the weight side.
 * The lane values and the float operations and their order are those of dot32_ymm, so every
 * row's result is bit-identical to quant_vec_dot. Rows longer than the table (more than
 * ROWS32_MAX_BLOCKS blocks) go through dot32_ymm. */
#define ROWS32_MAX_BLOCKS 512

/* One block of one row: blk32_ymm with the activation terms taken from the table. */
INLINE __m256 blk32_rows(qtype T, const uint8_t *row, const quant__q8_0 *y, int64_t b, const __m256i *ta,
                         const float *da, __m256 acc) {
  const int off = T == QT_Q4_0 || T == QT_Q5_0, bits5 = T == QT_Q5_0 || T == QT_Q5_1;
  const size_t bsz = T == QT_Q4_0 ? sizeof(quant__q4_0) : T == QT_Q4_1 ? sizeof(quant__q4_1)
                     : T == QT_Q5_0 ? sizeof(quant__q5_0) : sizeof(quant__q5_1);
  const uint8_t *x = row + (size_t)b * bsz;
  uint16_t dh, mh = 0;
  memcpy(&dh, x, 2);
  if (!off) memcpy(&mh, x + 2, 2);
  const uint8_t *qh = x + (off ? 2 : 4), *qs = qh + (bits5 ? 4 : 0);
  __m256i q = nibbles32(qs);
  if (bits5) q = _mm256_mask_add_epi8(q, (__mmask32)qh32(qh), q, _mm256_set1_epi8(16));
  __m256i p = _mm256_dpbusd_epi32(off ? ta[b] : _mm256_setzero_si256(), q, ld256(y[b].qs));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16(dh) * da[b]), acc);
  if (!off) acc = _mm256_fmadd_ps(_mm256_castsi256_ps(ta[b]), _mm256_set1_ps(f16(mh) * da[b]), acc);
  return acc;
}

INLINE void rows32(qtype T, int64_t n, const uint8_t *w, size_t ws, int64_t nr, const uint8_t *a,
                   float *out, size_t os) {
  const int64_t nb = n / 32;
  if (nb > ROWS32_MAX_BLOCKS) {
    for (int64_t i = 0; i < nr; i++) out[(size_t)i * os] = dot32_ymm(T, n, w + (size_t)i * ws, a);
    return;
  }
  const int off = T == QT_Q4_0 || T == QT_Q5_0;
  const __m256i zero = _mm256_setzero_si256();
  __m256i ta[ROWS32_MAX_BLOCKS]; /* -offset * lane sums (int32), or lane sums (float) */
  float da[ROWS32_MAX_BLOCKS];
  const quant__q8_0 *y = (const quant__q8_0 *)a;
  for (int64_t b = 0; b < nb; b++) {
    __m256i ax = ld256(y[b].qs);
    da[b] = f16(y[b].d);
    if (off)
      ta[b] = _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, _mm256_set1_epi8(T == QT_Q4_0 ? 8 : 16), ax));
    else
      ta[b] = _mm256_castps_si256(_mm256_cvtepi32_ps(_mm256_dpbusd_epi32(zero, _mm256_set1_epi8(1), ax)));
  }
  for (int64_t i = 0; i < nr; i++) {
    const uint8_t *row = w + (size_t)i * ws;
    __m256 even = _mm256_setzero_ps(), odd = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
      even = blk32_rows(T, row, y, b, ta, da, even);
      odd = blk32_rows(T, row, y, b + 1, ta, da, odd);
    }
    if (b < nb) even = blk32_rows(T, row, y, b, ta, da, even);
    __m256 v = _mm256_add_ps(odd, even); /* the reduction of dot32_ymm */
    __m128 c = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    c = _mm_add_ps(c, _mm_movehl_ps(c, c));
    c = _mm_add_ss(c, _mm_movehdup_ps(c));
    out[(size_t)i * os] = _mm_cvtss_f32(c);
  }
}

#define DEFINE_ROWS32(name, T)                                                             \
  static void rows32_##name(int64_t n, const void *w, size_t ws, int64_t nr, const void *a, \
                            float *out, size_t os) {                                       \
    rows32(T, n, w, ws, nr, a, out, os);                                                   \
  }
DEFINE_ROWS32(q4_0, QT_Q4_0)
DEFINE_ROWS32(q4_1, QT_Q4_1)
DEFINE_ROWS32(q5_0, QT_Q5_0)
DEFINE_ROWS32(q5_1, QT_Q5_1)

/* ---- K-quants against Q8_K: one super-block (256) per step ------------------------------ */

/* Index vectors for vpermw: which scale each int16 pair-sum lane of a 64-element chunk
 * takes. K4: chunk c covers sub-blocks 2c, 2c+1 (32 each); K6: 4c..4c+3 (16 each). */
static const int16_t k4_idx[4][32] = {
#define R(c) {c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c,                              \
    c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1}
    R(0), R(2), R(4), R(6)
#undef R
};
static const int16_t k6_idx[4][32] = {
#define R(c) {c, c, c, c, c, c, c, c, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1, c + 1,  \
    c + 2, c + 2, c + 2, c + 2, c + 2, c + 2, c + 2, c + 2, c + 3, c + 3, c + 3, c + 3, c + 3, c + 3, c + 3, c + 3}
    R(0), R(4), R(8), R(12)
#undef R
};
/* Mins pair with bsums 2s and 2s+1: lane t takes min t/2 (mins sit at 8..15). */
static const int16_t k4_min_idx[16] = {8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15};

INLINE __m512i ld512(const void *p) { return _mm512_loadu_si512(p); }

/* Decoded weight super-block. */
typedef struct ksb {
  __m512i q[4];   /* unsigned quants, elements 64c..64c+63 */
  __m512i sc[4];  /* int16 scale per pair-sum lane of chunk c */
  __m256i mn;     /* Q4_K/Q5_K: int16 mins per bsum; Q6_K: int16 scales per bsum */
  float d, dmin;
} ksb;

/* 16 int16: 8 sub-block scales then 8 mins, from the 12 packed bytes. */
INLINE __m256i k4_scales16(const uint8_t s[static 12]) {
  uint32_t u[3];
  memcpy(u, s, 12);
  uint32_t sc_lo = u[0] & 0x3f3f3f3f, mn_lo = u[1] & 0x3f3f3f3f;
  uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | ((u[0] >> 6) & 0x03030303) << 4;
  uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 6) & 0x03030303) << 4;
  return _mm256_cvtepu8_epi16(_mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo));
}

INLINE ksb kdecode(qtype T, const uint8_t *row, int64_t b) {
  ksb k;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  if (T == QT_Q4_K || T == QT_Q5_K) {
    const uint8_t *qs, *scales;
    if (T == QT_Q4_K) {
      const quant__q4_k *x = (const quant__q4_k *)row + b;
      qs = x->qs, scales = x->scales, k.d = f16(x->d), k.dmin = f16(x->dmin);
    } else {
      const quant__q5_k *x = (const quant__q5_k *)row + b;
      qs = x->qs, scales = x->scales, k.d = f16(x->d), k.dmin = f16(x->dmin);
    }
    __m256i s16 = k4_scales16(scales);
    __m512i s16z = _mm512_castsi256_si512(s16);
    k.mn = _mm256_permutexvar_epi16(_mm256_loadu_si256((const __m256i *)k4_min_idx), s16);
    UNROLL for (int c = 0; c < 4; c++) {
      __m256i v = ld256(qs + 32 * c);
      k.q[c] = join256(_mm256_and_si256(v, m4), _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
      k.sc[c] = _mm512_permutexvar_epi16(ld512(k4_idx[c]), s16z);
    }
    if (T == QT_Q5_K) {
      const quant__q5_k *x = (const quant__q5_k *)row + b;
      __m512i h = _mm512_broadcast_i64x4(ld256(x->qh));
      UNROLL for (int c = 0; c < 4; c++) {
        __m512i sel = join256(_mm256_set1_epi8((char)(1 << (2 * c))), _mm256_set1_epi8((char)(2 << (2 * c))));
        __mmask64 hb = _mm512_test_epi8_mask(h, sel);
        k.q[c] = _mm512_mask_add_epi8(k.q[c], hb, k.q[c], _mm512_set1_epi8(16));
      }
    }
  } else { /* QT_Q6_K */
    const quant__q6_k *x = (const quant__q6_k *)row + b;
    k.d = f16(x->d), k.dmin = 0;
    __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    __m512i s16z = _mm512_castsi256_si512(s16);
    k.mn = s16;
    const __m512i m4z = _mm512_set1_epi8(0x0F), m2z = _mm512_set1_epi8(3);
    UNROLL for (int h = 0; h < 2; h++) {
      __m512i lq = ld512(x->ql + 64 * h);
      __m256i hv = ld256(x->qh + 32 * h);
      __m512i hq = join256(hv, _mm256_srli_epi16(hv, 2));
      k.q[2 * h] = _mm512_or_si512(_mm512_and_si512(lq, m4z),
                                   _mm512_slli_epi16(_mm512_and_si512(hq, m2z), 4));
      k.q[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lq, 4), m4z),
                                       _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hq, 4), m2z), 4));
    }
    UNROLL for (int c = 0; c < 4; c++) k.sc[c] = _mm512_permutexvar_epi16(ld512(k6_idx[c]), s16z);
  }
  return k;
}

INLINE void tilek(qtype T, int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a,
                  size_t as, int NA, float *out, size_t os, size_t oa) {
  const int64_t nb = n / QK_K;
  __m512 acc[4][4];
  UNROLL for (int i = 0; i < NW; i++) UNROLL for (int j = 0; j < NA; j++)
      acc[i][j] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    UNROLL for (int i = 0; i < NW; i++) {
      ksb k = kdecode(T, w + i * ws, b);
      UNROLL for (int j = 0; j < NA; j++) {
        const quant__q8_k *y = (const quant__q8_k *)(a + j * as) + b;
        __m512i isum = _mm512_setzero_si512();
        UNROLL for (int c = 0; c < 4; c++) {
          __m512i t = _mm512_maddubs_epi16(k.q[c], ld512(y->qs + 64 * c));
          isum = _mm512_dpwssd_epi32(isum, t, k.sc[c]);
        }
        __m256i mp = _mm256_madd_epi16(ld256(y->bsums), k.mn); /* 8 int32 */
        if (T == QT_Q6_K) {
          isum = _mm512_sub_epi32(isum, zext256(_mm256_slli_epi32(mp, 5)));
          acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(k.d * y->d), acc[i][j]);
        } else {
          acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(k.d * y->d), acc[i][j]);
          acc[i][j] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(zext256(mp)), _mm512_set1_ps(k.dmin * y->d),
                                       acc[i][j]);
        }
      }
    }
  }
  hsum_tile(acc, NW, NA, out, os, oa);
}

/* K tiles are at most 4x2: 4x4 would need 16 accumulators plus 8 decoded vectors per
 * weight row, more than the 32 registers. */
#define DEFINE_TILEK(name, T)                                                              \
  INLINE void tile_##name(int64_t n, const uint8_t *w, size_t ws, int NW, const uint8_t *a, \
                          size_t as, int NA, float *out, size_t os, size_t oa) {                      \
    tilek(T, n, w, ws, NW, a, as, NA, out, os, oa);                                            \
  }                                                                                        \
  DEFINE_DOTS_NA(name, 2)

DEFINE_TILEK(q4_k, QT_Q4_K)
DEFINE_TILEK(q5_k, QT_Q5_K)
DEFINE_TILEK(q6_k, QT_Q6_K)

/* ---- Activation quantizers (bit-identical to quant_ref.c) -------------------------------- */

/* roundf (half away from zero), exactly: trunc, then step away when |frac| >= 0.5. */
INLINE __m512 round_away(__m512 p) {
  __m512 t = _mm512_roundscale_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  __m512 frac = _mm512_abs_ps(_mm512_sub_ps(p, t));
  __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_and_si512(_mm512_castps_si512(p), _mm512_set1_epi32((int)0x80000000u)),
      _mm512_castps_si512(_mm512_set1_ps(1.f))));
  return _mm512_mask_add_ps(t, up, t, one);
}

static void quantize_q8_0(const float *x, void *vy, int64_t n) {
  quant__q8_0 *y = vy;
  for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
    __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    y[i].d = quant_f32_to_f16(d);
    __m512 vid = _mm512_set1_ps(id);
    __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, vid))));
    __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, vid))));
    _mm_storeu_si128((__m128i *)y[i].qs, q0);
    _mm_storeu_si128((__m128i *)(y[i].qs + 16), q1);
  }
}

static void quantize_q8_k(const float *x, void *vy, int64_t n) {
  quant__q8_k *y = vy;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    __m512 m = _mm512_setzero_ps();
    for (int k = 0; k < QK_K; k += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + k)));
    float amax = _mm512_reduce_max_ps(m);
    if (!(amax > 0)) {
      memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    float max = 0; /* first element with that magnitude (the scalar code's choice) */
    for (int k = 0; k < QK_K; k += 16) {
      __mmask16 eq = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + k)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (eq) {
        max = x[k + __builtin_ctz(eq)];
        break;
      }
    }
    float iscale = -128.f / max;
    __m512 vis = _mm512_set1_ps(iscale);
    for (int g = 0; g < QK_K / 16; g++) {
      __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), vis));
      q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
      _mm_storeu_si128((__m128i *)(y[i].qs + 16 * g), _mm512_cvtsepi32_epi8(q));
      y[i].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
    }
    y[i].d = 1 / iscale;
  }
}

static void quantize_f16(const float *x, void *vy, int64_t n) {
  uint16_t *y = vy;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    _mm256_storeu_si256((__m256i *)(y + k),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + k), _MM_FROUND_TO_NEAREST_INT));
  for (; k < n; k++) y[k] = quant_f32_to_f16(x[k]);
}

static void dequantize_f16(const void *vx, float *y, int64_t n) {
  const uint16_t *x = vx;
  int64_t k = 0;
  for (; k + 16 <= n; k += 16)
    _mm512_storeu_ps(y + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + k))));
  for (; k < n; k++) y[k] = quant_f16_to_f32(x[k]);
}

void quant__fill_avx512(quant__kernels *k) {
  k->isa = "avx512";
#define SET(T, name)                 \
  k->dot[T] = dot_##name;            \
  k->dot_nx[T] = dot_nx_##name;      \
  k->dot_nx_t[T] = dot_nx_t_##name;  \
  k->dot_rows[T] = dot_rows_##name;
  SET(QT_F32, f32)
  SET(QT_F16, f16)
  SET(QT_BF16, bf16)
  SET(QT_Q8_0, q8_0)
  SET(QT_Q4_0, q4_0)
  SET(QT_Q4_1, q4_1)
  SET(QT_Q5_0, q5_0)
  SET(QT_Q5_1, q5_1)
  SET(QT_Q4_K, q4_k)
  SET(QT_Q5_K, q5_k)
  SET(QT_Q6_K, q6_k)
#undef SET
  k->dot_rows[QT_Q4_0] = rows32_q4_0;
  k->dot_rows[QT_Q4_1] = rows32_q4_1;
  k->dot_rows[QT_Q5_0] = rows32_q5_0;
  k->dot_rows[QT_Q5_1] = rows32_q5_1;
  k->quantize[QT_Q8_0] = quantize_q8_0;
  k->quantize[QT_Q8_K] = quantize_q8_k;
  k->quantize[QT_F16] = quantize_f16;
  k->dequantize[QT_F16] = dequantize_f16;
}
