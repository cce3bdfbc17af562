/* llm/quant_neon — AArch64 Advanced SIMD kernels (baseline ARMv8-A: no dotprod needed).
 *
 * Integer dots widen int8 x int8 into int16 pairs (vmull_s8 / vmlal_high_s8, at most
 * 2 * 128 * 127 per lane for Q8_0 since activations are in [-127, 127]), then pairwise-add
 * into int32. Each block's (or sub-block's) integer sum is reduced exactly to one integer,
 * and the float work is then the scalar reference's, op for op: the quantized dots give the
 * same bits as quant_ref.c. F32/F16/BF16 dots sum in f32 over 4 vector accumulators (16
 * elements per step), so they differ from the scalar double sum in the last bits.
 *
 * quant_vec_dot_nx uses the generic loop over these dots (no register tiles yet).
 * The quantizers give the scalar code's bytes: FCVTAS rounds half away from zero like
 * roundf (Q8_0), FCVTNS rounds to nearest even (Q8_K), FCVTN converts to fp16 with RNE.
 *
 * Pure functions, no allocation, thread-safe. Built only on aarch64 (Makefile). */
#include <arm_neon.h>
#include <string.h>

#include "llm/quant_impl.h"

#define F16(h) quant__f16_to_f32(h)

/* ---- F32 / F16 / BF16 -------------------------------------------------------------------- */

static inline float32x4_t ld_f32(const float *p) { return vld1q_f32(p); }
static inline float32x4_t ld_bf16(const uint16_t *p) {
  return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

/* 4 accumulators of 4 lanes over 16-element steps, 4-element steps into acc[0], then a
 * scalar f32 tail; reduced as ((a0 + a1) + (a2 + a3)), lanes summed, plus the tail. */
#define FLOAT_DOT(n, LD4, SCALAR)                                                          \
  do {                                                                                     \
    float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)}; \
    int64_t k = 0;                                                                         \
    for (; k + 16 <= (n); k += 16)                                                         \
      for (int r = 0; r < 4; r++) acc[r] = vfmaq_f32(acc[r], LD4(x, k + 4 * r), LD4(y, k + 4 * r)); \
    for (; k + 4 <= (n); k += 4) acc[0] = vfmaq_f32(acc[0], LD4(x, k), LD4(y, k));         \
    float tail = 0;                                                                        \
    for (; k < (n); k++) tail += SCALAR(x, k) * SCALAR(y, k);                              \
    return vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]))) + tail; \
  } while (0)

#define LD4_F32(p, k) ld_f32((p) + (k))
#define S_F32(p, k) (p)[k]
static float dot_f32(int64_t n, const void *w, const void *a) {
  const float *x = w, *y = a;
  FLOAT_DOT(n, LD4_F32, S_F32);
}

#define LD4_F16(p, k) vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((p) + (k))))
#define S_F16(p, k) F16((p)[k])
static float dot_f16(int64_t n, const void *w, const void *a) {
  const uint16_t *x = w, *y = a;
  FLOAT_DOT(n, LD4_F16, S_F16);
}

static inline float bf16f(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
#define LD4_BF16(p, k) ld_bf16((p) + (k))
#define S_BF16(p, k) bf16f((p)[k])
static float dot_bf16(int64_t n, const void *w, const void *a) {
  const uint16_t *x = w, *y = a;
  FLOAT_DOT(n, LD4_BF16, S_BF16);
}

/* ---- Integer helpers ------------------------------------------------------------------------ */

/* sum(w[i] * a[i]) over 32 int8 pairs (w0/a0: 0..15, w1/a1: 16..31), exact. */
static inline int32_t dot32_s8(int8x16_t w0, int8x16_t w1, int8x16_t a0, int8x16_t a1) {
  int16x8_t p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(a0)), w0, a0);
  int16x8_t p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(a1)), w1, a1);
  return vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1));
}

/* sum over 16 pairs, for small weights (|w * a| * 2 fits int16). */
static inline int32_t dot16_s8(int8x16_t w, int8x16_t a) {
  return vaddlvq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(w), vget_low_s8(a)), w, a));
}

static inline int32_t sum32_s8(int8x16_t a0, int8x16_t a1) {
  return vaddlvq_s16(vaddq_s16(vpaddlq_s8(a0), vpaddlq_s8(a1)));
}

/* ---- 32-element blocks against Q8_0 (float steps exactly as quant_ref.c) ------------------- */

static float dot_q8_0(int64_t n, const void *w, const void *a) {
  const quant__q8_0 *x = w, *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK8_0; i++) {
    int sumi = dot32_s8(vld1q_s8(x[i].qs), vld1q_s8(x[i].qs + 16), vld1q_s8(y[i].qs), vld1q_s8(y[i].qs + 16));
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

/* Low and high nibbles of 16 bytes as two vectors of unsigned 0..15. */
static inline void nibbles(const uint8_t qs[static 16], int8x16_t *lo, int8x16_t *hi) {
  uint8x16_t v = vld1q_u8(qs);
  *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
  *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/* Bit 4 of each element from a 32-bit qh: 16 in the bytes whose bit is set (h0: elements
 * 0..15, h1: 16..31). */
static inline void high16(const uint8_t qh[static 4], int8x16_t *h0, int8x16_t *h1) {
  static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
  static const uint8_t sel[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  uint32_t v;
  memcpy(&v, qh, 4);
  uint8x16_t hv = vreinterpretq_u8_u32(vdupq_n_u32(v)), s = vld1q_u8(sel), b = vld1q_u8(bit);
  uint8x16_t s0 = vqtbl1q_u8(hv, s), s1 = vqtbl1q_u8(hv, vaddq_u8(s, vdupq_n_u8(2)));
  *h0 = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(s0, b), vdupq_n_u8(16)));
  *h1 = vreinterpretq_s8_u8(vandq_u8(vtstq_u8(s1, b), vdupq_n_u8(16)));
}

static float dot_q4_0(int64_t n, const void *w, const void *a) {
  const quant__q4_0 *x = w;
  const quant__q8_0 *y = a;
  const int8x16_t eight = vdupq_n_s8(8);
  float s = 0;
  for (int64_t i = 0; i < n / QK4_0; i++) {
    int8x16_t lo, hi;
    nibbles(x[i].qs, &lo, &hi);
    int sumi = dot32_s8(vsubq_s8(lo, eight), vsubq_s8(hi, eight), vld1q_s8(y[i].qs), vld1q_s8(y[i].qs + 16));
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

static float dot_q4_1(int64_t n, const void *w, const void *a) {
  const quant__q4_1 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK4_1; i++) {
    int8x16_t lo, hi, a0 = vld1q_s8(y[i].qs), a1 = vld1q_s8(y[i].qs + 16);
    nibbles(x[i].qs, &lo, &hi);
    int sumi = dot32_s8(lo, hi, a0, a1), suma = sum32_s8(a0, a1);
    float da = F16(y[i].d);
    s += (float)sumi * (F16(x[i].d) * da) + (float)suma * (F16(x[i].m) * da);
  }
  return s;
}

static float dot_q5_0(int64_t n, const void *w, const void *a) {
  const quant__q5_0 *x = w;
  const quant__q8_0 *y = a;
  const int8x16_t sixteen = vdupq_n_s8(16);
  float s = 0;
  for (int64_t i = 0; i < n / QK5_0; i++) {
    int8x16_t lo, hi, h0, h1;
    nibbles(x[i].qs, &lo, &hi);
    high16(x[i].qh, &h0, &h1);
    int sumi = dot32_s8(vsubq_s8(vorrq_s8(lo, h0), sixteen), vsubq_s8(vorrq_s8(hi, h1), sixteen),
                        vld1q_s8(y[i].qs), vld1q_s8(y[i].qs + 16));
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

static float dot_q5_1(int64_t n, const void *w, const void *a) {
  const quant__q5_1 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK5_1; i++) {
    int8x16_t lo, hi, h0, h1, a0 = vld1q_s8(y[i].qs), a1 = vld1q_s8(y[i].qs + 16);
    nibbles(x[i].qs, &lo, &hi);
    high16(x[i].qh, &h0, &h1);
    int sumi = dot32_s8(vorrq_s8(lo, h0), vorrq_s8(hi, h1), a0, a1), suma = sum32_s8(a0, a1);
    float da = F16(y[i].d);
    s += (float)sumi * (F16(x[i].d) * da) + (float)suma * (F16(x[i].m) * da);
  }
  return s;
}

/* ---- K-quants against Q8_K (integer sums per sub-block, float steps as quant_ref.c) -------- */

static int k4_min_sum(const uint8_t mn[static 8], const int16_t bsums[static 16]) {
  int s = 0;
  for (int j = 0; j < 8; j++) s += mn[j] * (bsums[2 * j] + bsums[2 * j + 1]);
  return s;
}

static inline float dot_k45(int is5, int64_t n, const void *w, const void *a) {
  const quant__q8_k *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; i++, y++) {
    const uint8_t *qs, *scales, *qh = NULL;
    uint16_t d, dmin;
    if (!is5) {
      const quant__q4_k *x = (const quant__q4_k *)w + i;
      qs = x->qs, scales = x->scales, d = x->d, dmin = x->dmin;
    } else {
      const quant__q5_k *x = (const quant__q5_k *)w + i;
      qs = x->qs, scales = x->scales, qh = x->qh, d = x->d, dmin = x->dmin;
    }
    uint8_t sc[8], mn[8];
    quant__k4_scales(scales, sc, mn);
    uint8x16_t h[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
    if (is5) h[0] = vld1q_u8(qh), h[1] = vld1q_u8(qh + 16);
    int sumi = 0;
    for (int c = 0; c < 4; c++) {
      int s0 = 0, s1 = 0;
      for (int half = 0; half < 2; half++) { /* elements 16*half .. +15 of each 32 */
        uint8x16_t v = vld1q_u8(qs + 32 * c + 16 * half);
        uint8x16_t lo = vandq_u8(v, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(v, 4);
        if (is5) {
          uint8x16_t b0 = vdupq_n_u8((uint8_t)(1 << (2 * c))), b1 = vdupq_n_u8((uint8_t)(2 << (2 * c)));
          lo = vorrq_u8(lo, vandq_u8(vtstq_u8(h[half], b0), vdupq_n_u8(16)));
          hi = vorrq_u8(hi, vandq_u8(vtstq_u8(h[half], b1), vdupq_n_u8(16)));
        }
        s0 += dot16_s8(vreinterpretq_s8_u8(lo), vld1q_s8(y->qs + 64 * c + 16 * half));
        s1 += dot16_s8(vreinterpretq_s8_u8(hi), vld1q_s8(y->qs + 64 * c + 32 + 16 * half));
      }
      sumi += sc[2 * c] * s0 + sc[2 * c + 1] * s1;
    }
    int summ = k4_min_sum(mn, y->bsums);
    s += (float)sumi * (F16(d) * y->d) - (float)summ * (F16(dmin) * y->d);
  }
  return s;
}

static float dot_q4_k(int64_t n, const void *w, const void *a) { return dot_k45(0, n, w, a); }
static float dot_q5_k(int64_t n, const void *w, const void *a) { return dot_k45(1, n, w, a); }

static float dot_q6_k(int64_t n, const void *w, const void *a) {
  const quant__q6_k *x = w;
  const quant__q8_k *y = a;
  const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
  const int8x16_t off = vdupq_n_s8(32);
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; i++, x++, y++) {
    int sg[16];
    for (int h = 0; h < 2; h++)
      for (int part = 0; part < 2; part++) { /* l in 16*part .. +15 */
        int l = 16 * part;
        uint8x16_t ql0 = vld1q_u8(x->ql + 64 * h + l), ql1 = vld1q_u8(x->ql + 64 * h + 32 + l);
        uint8x16_t qh = vld1q_u8(x->qh + 32 * h + l);
        int8x16_t q[4];
        q[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(ql0, m4), vshlq_n_u8(vandq_u8(qh, m3), 4)));
        q[1] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(ql1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 2), m3), 4)));
        q[2] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(ql0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(qh, 4), m3), 4)));
        q[3] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(ql1, 4), vshlq_n_u8(vshrq_n_u8(qh, 6), 4)));
        for (int k = 0; k < 4; k++) { /* element 128h + 32k + l .. +15 = group 8h + 2k + part */
          int e = 128 * h + 32 * k + l;
          sg[e / 16] = dot16_s8(vsubq_s8(q[k], off), vld1q_s8(y->qs + e));
        }
      }
    int sumi = 0;
    for (int g = 0; g < 16; g++) sumi += x->scales[g] * sg[g];
    s += (float)sumi * (F16(x->d) * y->d);
  }
  return s;
}

/* ---- Activation quantizers (bit-identical to quant_ref.c) ---------------------------------- */

static void quantize_q8_0(const float *x, void *vy, int64_t n) {
  quant__q8_0 *y = vy;
  for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
    float32x4_t v[8], m = vdupq_n_f32(0);
    for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + 4 * k), m = vmaxq_f32(m, vabsq_f32(v[k]));
    float amax = vmaxvq_f32(m), d = amax / 127.f, id = d ? 1.f / d : 0.f;
    y[i].d = quant_f32_to_f16(d);
    for (int k = 0; k < 8; k += 2) {
      int32x4_t q0 = vcvtaq_s32_f32(vmulq_n_f32(v[k], id)), q1 = vcvtaq_s32_f32(vmulq_n_f32(v[k + 1], id));
      int16x8_t q16 = vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1));
      vst1_s8(y[i].qs + 4 * k, vqmovn_s16(q16));
    }
  }
}

static void quantize_q8_k(const float *x, void *vy, int64_t n) {
  quant__q8_k *y = vy;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    float32x4_t m = vdupq_n_f32(0);
    for (int k = 0; k < QK_K; k += 4) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + k)));
    float amax = vmaxvq_f32(m);
    if (!(amax > 0)) {
      memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    float max = 0; /* the first element with that magnitude (the scalar code's choice) */
    for (int k = 0; k < QK_K; k++)
      if (x[k] == amax || x[k] == -amax) {
        max = x[k];
        break;
      }
    float iscale = -128.f / max;
    for (int g = 0; g < QK_K / 16; g++) {
      int32x4_t q[4];
      for (int k = 0; k < 4; k++)
        q[k] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + 16 * g + 4 * k), iscale)), vdupq_n_s32(127));
      int16x8_t a0 = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
      int16x8_t a1 = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
      vst1q_s8(y[i].qs + 16 * g, vcombine_s8(vqmovn_s16(a0), vqmovn_s16(a1)));
      y[i].bsums[g] = (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3])));
    }
    y[i].d = 1 / iscale;
  }
}

static void quantize_f16(const float *x, void *vy, int64_t n) {
  uint16_t *y = vy;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) vst1_u16(y + k, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + k))));
  for (; k < n; k++) y[k] = quant_f32_to_f16(x[k]);
}

static void dequantize_f16(const void *vx, float *y, int64_t n) {
  const uint16_t *x = vx;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) vst1q_f32(y + k, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + k))));
  for (; k < n; k++) y[k] = quant_f16_to_f32(x[k]);
}

void quant__fill_neon(quant__kernels *k) {
  k->isa = "neon";
  k->dot[QT_F32] = dot_f32;
  k->dot[QT_F16] = dot_f16;
  k->dot[QT_BF16] = dot_bf16;
  k->dot[QT_Q8_0] = dot_q8_0;
  k->dot[QT_Q4_0] = dot_q4_0;
  k->dot[QT_Q4_1] = dot_q4_1;
  k->dot[QT_Q5_0] = dot_q5_0;
  k->dot[QT_Q5_1] = dot_q5_1;
  k->dot[QT_Q4_K] = dot_q4_k;
  k->dot[QT_Q5_K] = dot_q5_k;
  k->dot[QT_Q6_K] = dot_q6_k;
  k->quantize[QT_Q8_0] = quantize_q8_0;
  k->quantize[QT_Q8_K] = quantize_q8_k;
  k->quantize[QT_F16] = quantize_f16;
  k->dequantize[QT_F16] = dequantize_f16;
}
