/* llm/quant_ref — scalar reference kernels: quantize, dequantize and dot for every
 * supported type. They define the numerics the SIMD kernels are tested against, and they
 * are what runs on CPUs without AVX2 or NEON.
 *
 * Quantizers round the way the format's reference quantizers do (Q8_0: d = amax/127,
 * q = round(x/d); Q4_0: d = signed-max/-8; K-quants: per-sub-block weighted least-squares
 * scale search, then 6/8-bit quantized sub-scales). Dots integer-accumulate inside a block
 * and scale once per block in float, as ggml does; F32/F16/BF16 dots sum in double.
 *
 * Pure functions, no allocation, thread-safe. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "llm/quant_impl.h"

#define F16(h) quant__f16_to_f32(h)
#define TO_F16(f) quant_f32_to_f16(f)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- F32 / F16 / BF16 --------------------------------------------------------------- */

static void quantize_f32(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }
static void dequantize_f32(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }

/* Float dots sum in double, in 4 interleaved partial sums (independent add chains). */
#define DOT_DOUBLE(n, X, Y)                                                                 \
  do {                                                                                     \
    double s_[4] = {0, 0, 0, 0};                                                           \
    int64_t i_ = 0;                                                                        \
    for (; i_ + 4 <= (n); i_ += 4)                                                         \
      for (int k_ = 0; k_ < 4; k_++) s_[k_] += (double)X(i_ + k_) * Y(i_ + k_);            \
    for (; i_ < (n); i_++) s_[0] += (double)X(i_) * Y(i_);                                 \
    return (float)((s_[0] + s_[1]) + (s_[2] + s_[3]));                                     \
  } while (0)

static float dot_f32(int64_t n, const void *w, const void *a) {
  const float *x = w, *y = a;
#define X32(i) x[i]
#define Y32(i) y[i]
  DOT_DOUBLE(n, X32, Y32);
}

static void quantize_f16(const float *x, void *vy, int64_t n) {
  uint16_t *y = vy;
  for (int64_t i = 0; i < n; i++) y[i] = TO_F16(x[i]);
}

static void dequantize_f16(const void *vx, float *y, int64_t n) {
  const uint16_t *x = vx;
  for (int64_t i = 0; i < n; i++) y[i] = F16(x[i]);
}

static float dot_f16(int64_t n, const void *w, const void *a) {
  const uint16_t *x = w, *y = a;
#define XH(i) F16(x[i])
#define YH(i) F16(y[i])
  DOT_DOUBLE(n, XH, YH);
}

static void quantize_bf16(const float *x, void *vy, int64_t n) {
  uint16_t *y = vy;
  for (int64_t i = 0; i < n; i++) y[i] = quant_f32_to_bf16(x[i]);
}

static void dequantize_bf16(const void *vx, float *y, int64_t n) {
  const uint16_t *x = vx;
  for (int64_t i = 0; i < n; i++) y[i] = quant_bf16_to_f32(x[i]);
}

static inline float bf16f(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static float dot_bf16(int64_t n, const void *w, const void *a) {
  const uint16_t *x = w, *y = a;
#define XB(i) bf16f(x[i])
#define YB(i) bf16f(y[i])
  DOT_DOUBLE(n, XB, YB);
}

/* ---- 32-element block types ----------------------------------------------------------- */

/* Value with the largest magnitude (the first one on ties), and that magnitude. */
static float signed_max(const float *x, int n, float *amax_out) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; j++) {
    float v = fabsf(x[j]);
    if (v > amax) amax = v, max = x[j];
  }
  *amax_out = amax;
  return max;
}

static void quantize_q8_0(const float *x, void *vy, int64_t n) {
  quant__q8_0 *y = vy;
  for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; j++) amax = MAX(amax, fabsf(x[j]));
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    y[i].d = TO_F16(d);
    for (int j = 0; j < QK8_0; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
  }
}

static void dequantize_q8_0(const void *vx, float *y, int64_t n) {
  const quant__q8_0 *x = vx;
  for (int64_t i = 0; i < n / QK8_0; i++, y += QK8_0) {
    float d = F16(x[i].d);
    for (int j = 0; j < QK8_0; j++) y[j] = x[i].qs[j] * d;
  }
}

static float dot_q8_0(int64_t n, const void *w, const void *a) {
  const quant__q8_0 *x = w, *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK8_0; i++) {
    int sumi = 0;
    for (int j = 0; j < QK8_0; j++) sumi += x[i].qs[j] * y[i].qs[j];
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

static void quantize_q8_1(const float *x, void *vy, int64_t n) {
  quant__q8_1 *y = vy;
  for (int64_t i = 0; i < n / QK8_1; i++, x += QK8_1) {
    float amax = 0;
    for (int j = 0; j < QK8_1; j++) amax = MAX(amax, fabsf(x[j]));
    float d = amax / 127.f, id = d ? 1.f / d : 0.f;
    int sum = 0;
    for (int j = 0; j < QK8_1; j++) {
      y[i].qs[j] = (int8_t)roundf(x[j] * id);
      sum += y[i].qs[j];
    }
    y[i].d = TO_F16(d);
    y[i].s = TO_F16((float)sum * d);
  }
}

static void dequantize_q8_1(const void *vx, float *y, int64_t n) {
  const quant__q8_1 *x = vx;
  for (int64_t i = 0; i < n / QK8_1; i++, y += QK8_1) {
    float d = F16(x[i].d);
    for (int j = 0; j < QK8_1; j++) y[j] = x[i].qs[j] * d;
  }
}

/* Q8_1 weights (not a real weight type, but dot-able) against Q8_0 activations. */
static float dot_q8_1(int64_t n, const void *w, const void *a) {
  const quant__q8_1 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK8_1; i++) {
    int sumi = 0;
    for (int j = 0; j < QK8_1; j++) sumi += x[i].qs[j] * y[i].qs[j];
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

static void quantize_q4_0(const float *x, void *vy, int64_t n) {
  quant__q4_0 *y = vy;
  for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
    float amax, max = signed_max(x, QK4_0, &amax);
    float d = max / -8, id = d ? 1.f / d : 0.f;
    y[i].d = TO_F16(d);
    for (int j = 0; j < QK4_0 / 2; j++) {
      int q0 = MIN(15, (int8_t)(x[j] * id + 8.5f));
      int q1 = MIN(15, (int8_t)(x[j + QK4_0 / 2] * id + 8.5f));
      y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

static void dequantize_q4_0(const void *vx, float *y, int64_t n) {
  const quant__q4_0 *x = vx;
  for (int64_t i = 0; i < n / QK4_0; i++, y += QK4_0) {
    float d = F16(x[i].d);
    for (int j = 0; j < QK4_0 / 2; j++) {
      y[j] = ((x[i].qs[j] & 0xF) - 8) * d;
      y[j + QK4_0 / 2] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

static float dot_q4_0(int64_t n, const void *w, const void *a) {
  const quant__q4_0 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK4_0; i++) {
    int sumi = 0;
    for (int j = 0; j < QK4_0 / 2; j++)
      sumi += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

static void block_min_max(const float *x, int n, float *min_out, float *max_out) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < n; j++) min = MIN(min, x[j]), max = MAX(max, x[j]);
  *min_out = min, *max_out = max;
}

static void quantize_q4_1(const float *x, void *vy, int64_t n) {
  quant__q4_1 *y = vy;
  for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
    float min, max;
    block_min_max(x, QK4_1, &min, &max);
    float d = (max - min) / 15, id = d ? 1.f / d : 0.f;
    y[i].d = TO_F16(d);
    y[i].m = TO_F16(min);
    for (int j = 0; j < QK4_1 / 2; j++) {
      int q0 = MIN(15, (int8_t)((x[j] - min) * id + 0.5f));
      int q1 = MIN(15, (int8_t)((x[j + QK4_1 / 2] - min) * id + 0.5f));
      y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
  }
}

static void dequantize_q4_1(const void *vx, float *y, int64_t n) {
  const quant__q4_1 *x = vx;
  for (int64_t i = 0; i < n / QK4_1; i++, y += QK4_1) {
    float d = F16(x[i].d), m = F16(x[i].m);
    for (int j = 0; j < QK4_1 / 2; j++) {
      y[j] = (x[i].qs[j] & 0xF) * d + m;
      y[j + QK4_1 / 2] = (x[i].qs[j] >> 4) * d + m;
    }
  }
}

/* sum (q*d + m) * (a*da) = d*da * sum(q*a) + m*da * sum(a): both sums exact integers. */
static float dot_q4_1(int64_t n, const void *w, const void *a) {
  const quant__q4_1 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK4_1; i++) {
    int sumi = 0, suma = 0;
    for (int j = 0; j < QK4_1 / 2; j++) {
      sumi += (x[i].qs[j] & 0xF) * y[i].qs[j] + (x[i].qs[j] >> 4) * y[i].qs[j + 16];
      suma += y[i].qs[j] + y[i].qs[j + 16];
    }
    float da = F16(y[i].d);
    s += (float)sumi * (F16(x[i].d) * da) + (float)suma * (F16(x[i].m) * da);
  }
  return s;
}

static uint32_t load_u32le(const uint8_t p[static 4]) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_u32le(uint8_t p[static 4], uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k));
}

static void quantize_q5_0(const float *x, void *vy, int64_t n) {
  quant__q5_0 *y = vy;
  for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
    float amax, max = signed_max(x, QK5_0, &amax);
    float d = max / -16, id = d ? 1.f / d : 0.f;
    y[i].d = TO_F16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; j++) {
      int q0 = MIN(31, (int8_t)(x[j] * id + 16.5f));
      int q1 = MIN(31, (int8_t)(x[j + QK5_0 / 2] * id + 16.5f));
      y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
    }
    store_u32le(y[i].qh, qh);
  }
}

/* 5-bit quant j of a Q5_0/Q5_1 block, 0..31. */
static inline int q5_at(const uint8_t qs[static 16], uint32_t qh, int j) {
  int lo = j < 16 ? qs[j] & 0xF : qs[j - 16] >> 4;
  return lo | (int)((qh >> j) & 1) << 4;
}

static void dequantize_q5_0(const void *vx, float *y, int64_t n) {
  const quant__q5_0 *x = vx;
  for (int64_t i = 0; i < n / QK5_0; i++, y += QK5_0) {
    float d = F16(x[i].d);
    uint32_t qh = load_u32le(x[i].qh);
    for (int j = 0; j < QK5_0; j++) y[j] = (q5_at(x[i].qs, qh, j) - 16) * d;
  }
}

static float dot_q5_0(int64_t n, const void *w, const void *a) {
  const quant__q5_0 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK5_0; i++) {
    uint32_t qh = load_u32le(x[i].qh);
    int sumi = 0;
    for (int j = 0; j < QK5_0 / 2; j++) {
      int q0 = (x[i].qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
      int q1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
      sumi += (q0 - 16) * y[i].qs[j] + (q1 - 16) * y[i].qs[j + 16];
    }
    s += (float)sumi * (F16(x[i].d) * F16(y[i].d));
  }
  return s;
}

static void quantize_q5_1(const float *x, void *vy, int64_t n) {
  quant__q5_1 *y = vy;
  for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
    float min, max;
    block_min_max(x, QK5_1, &min, &max);
    float d = (max - min) / 31, id = d ? 1.f / d : 0.f;
    y[i].d = TO_F16(d);
    y[i].m = TO_F16(min);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; j++) {
      int q0 = MIN(31, (int8_t)((x[j] - min) * id + 0.5f));
      int q1 = MIN(31, (int8_t)((x[j + QK5_1 / 2] - min) * id + 0.5f));
      y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
      qh |= (uint32_t)(q0 >> 4) << j | (uint32_t)(q1 >> 4) << (j + 16);
    }
    store_u32le(y[i].qh, qh);
  }
}

static void dequantize_q5_1(const void *vx, float *y, int64_t n) {
  const quant__q5_1 *x = vx;
  for (int64_t i = 0; i < n / QK5_1; i++, y += QK5_1) {
    float d = F16(x[i].d), m = F16(x[i].m);
    uint32_t qh = load_u32le(x[i].qh);
    for (int j = 0; j < QK5_1; j++) y[j] = q5_at(x[i].qs, qh, j) * d + m;
  }
}

static float dot_q5_1(int64_t n, const void *w, const void *a) {
  const quant__q5_1 *x = w;
  const quant__q8_0 *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK5_1; i++) {
    uint32_t qh = load_u32le(x[i].qh);
    int sumi = 0, suma = 0;
    for (int j = 0; j < QK5_1 / 2; j++) {
      int q0 = (x[i].qs[j] & 0xF) | (int)((qh >> j) & 1) << 4;
      int q1 = (x[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
      sumi += q0 * y[i].qs[j] + q1 * y[i].qs[j + 16];
      suma += y[i].qs[j] + y[i].qs[j + 16];
    }
    float da = F16(y[i].d);
    s += (float)sumi * (F16(x[i].d) * da) + (float)suma * (F16(x[i].m) * da);
  }
  return s;
}

/* ---- Q8_K (activations for the K-quants) ------------------------------------------------ */

static void quantize_q8_k(const float *x, void *vy, int64_t n) {
  quant__q8_k *y = vy;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    float amax, max = signed_max(x, QK_K, &amax);
    if (!amax) {
      memset(&y[i], 0, sizeof y[i]);
      continue;
    }
    float iscale = -128.f / max;
    for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)MIN(127, quant__nearest_int(iscale * x[j]));
    for (int g = 0; g < QK_K / 16; g++) {
      int sum = 0;
      for (int j = 0; j < 16; j++) sum += y[i].qs[16 * g + j];
      y[i].bsums[g] = (int16_t)sum;
    }
    y[i].d = 1 / iscale;
  }
}

static void dequantize_q8_k(const void *vx, float *y, int64_t n) {
  const quant__q8_k *x = vx;
  for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
    for (int j = 0; j < QK_K; j++) y[j] = x[i].d * x[i].qs[j];
}

static float dot_q8_k(int64_t n, const void *w, const void *a) {
  const quant__q8_k *x = w, *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; i++) {
    int sumi = 0;
    for (int j = 0; j < QK_K; j++) sumi += x[i].qs[j] * y[i].qs[j];
    s += (float)sumi * (x[i].d * y[i].d);
  }
  return s;
}

/* ---- K-quant scale search ------------------------------------------------------------------ */

/* Fits x[i] ~ scale * L[i] - min with L in [0, nmax], scale >= 0, min >= 0, minimizing
 * sum w[i] * err^2: tries a range of grid spacings around (max - min) / nmax, and for each
 * quantization solves the weighted least-squares (scale, offset). Returns scale. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *min_out) {
  float xmin = x[0], xmax = x[0], sw = 0, sx = 0;
  for (int i = 0; i < n; i++) {
    xmin = MIN(xmin, x[i]), xmax = MAX(xmax, x[i]);
    sw += w[i], sx += w[i] * x[i];
  }
  if (xmin > 0) xmin = 0; /* an offset only ever lowers the grid */
  if (xmax == xmin) {
    memset(L, 0, (size_t)n);
    *min_out = -xmin;
    return 0;
  }
  float iscale = nmax / (xmax - xmin), scale = 1 / iscale, best = 0;
  for (int i = 0; i < n; i++) {
    int l = MAX(0, MIN(nmax, quant__nearest_int(iscale * (x[i] - xmin))));
    L[i] = (uint8_t)l;
    float e = scale * l + xmin - x[i];
    best += w[i] * e * e;
  }
  uint8_t aux[32];
  for (int step = 0; step <= 20; step++) {
    iscale = (nmax - 1.f + 0.1f * step) / (xmax - xmin);
    float sl = 0, sl2 = 0, sxl = 0;
    for (int i = 0; i < n; i++) {
      int l = MAX(0, MIN(nmax, quant__nearest_int(iscale * (x[i] - xmin))));
      aux[i] = (uint8_t)l;
      sl += w[i] * l, sl2 += w[i] * l * l, sxl += w[i] * l * x[i];
    }
    float det = sw * sl2 - sl * sl;
    if (det <= 0) continue;
    float s = (sw * sxl - sx * sl) / det, m = (sl2 * sx - sl * sxl) / det;
    if (m > 0) m = 0, s = sxl / sl2;
    float err = 0;
    for (int i = 0; i < n; i++) {
      float e = s * aux[i] + m - x[i];
      err += w[i] * e * e;
    }
    if (err < best) {
      best = err, scale = s, xmin = m;
      memcpy(L, aux, (size_t)n);
    }
  }
  *min_out = -xmin;
  return scale;
}

/* Fits x[i] ~ scale * l[i] with l in [-nmax, nmax-1], weights x^2 (large values matter
 * most): tries grid spacings around max/nmax and keeps the one whose least-squares scale
 * explains the most weighted energy. Returns the (signed) scale. */
static float fit_scale_sym(int n, int nmax, const float *x) {
  float amax, max = signed_max(x, n, &amax);
  if (amax < 1e-30f) return 0;
  float scale = 0, best = -1;
  for (int step = -9; step <= 9; step++) {
    float iscale = -(nmax + 0.1f * step) / max, sxl = 0, sl2 = 0;
    for (int i = 0; i < n; i++) {
      int l = MAX(-nmax, MIN(nmax - 1, quant__nearest_int(iscale * x[i])));
      float w = x[i] * x[i];
      sxl += w * x[i] * l, sl2 += w * l * l;
    }
    if (sl2 > 0 && (best < 0 || sxl * sxl > best * sl2)) {
      scale = sxl / sl2;
      best = scale * sxl;
    }
  }
  return scale;
}

/* Quantizes 8 sub-block (scale, min) pairs to 6 bits and packs them (Q4_K/Q5_K). */
static void pack_k4_scales(const float sc[static 8], const float mn[static 8],
                           uint8_t out[static 12], uint16_t *d_out, uint16_t *dmin_out) {
  float max_sc = 0, max_mn = 0;
  for (int j = 0; j < 8; j++) max_sc = MAX(max_sc, sc[j]), max_mn = MAX(max_mn, mn[j]);
  float isc = max_sc > 0 ? 63.f / max_sc : 0, imn = max_mn > 0 ? 63.f / max_mn : 0;
  memset(out, 0, 12);
  for (int j = 0; j < 8; j++) {
    int ls = MIN(63, quant__nearest_int(isc * sc[j]));
    int lm = MIN(63, quant__nearest_int(imn * mn[j]));
    if (j < 4) {
      out[j] = (uint8_t)ls;
      out[j + 4] = (uint8_t)lm;
    } else {
      out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
      out[j - 4] |= (uint8_t)((ls >> 4) << 6);
      out[j] |= (uint8_t)((lm >> 4) << 6);
    }
  }
  *d_out = TO_F16(max_sc / 63.f);
  *dmin_out = TO_F16(max_mn / 63.f);
}

/* Q4_K/Q5_K common part: fills L[256] (0..nmax) plus the packed scales of one super-block. */
static void quantize_k4_block(const float *x, int nmax, uint8_t L[static QK_K],
                              uint8_t scales[static 12], uint16_t *d, uint16_t *dmin) {
  float sum_x2 = 0, w[32], sc[8], mn[8];
  for (int j = 0; j < QK_K; j++) sum_x2 += x[j] * x[j];
  float av_x = sqrtf(sum_x2 / QK_K);
  for (int s = 0; s < 8; s++) {
    for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * s + l]);
    sc[s] = fit_scale_min(32, nmax, x + 32 * s, w, L + 32 * s, &mn[s]);
  }
  pack_k4_scales(sc, mn, scales, d, dmin);
  uint8_t qsc[8], qmn[8];
  quant__k4_scales(scales, qsc, qmn);
  float fd = F16(*d), fmin = F16(*dmin);
  for (int s = 0; s < 8; s++) {
    float d1 = fd * qsc[s], m1 = fmin * qmn[s];
    for (int l = 0; l < 32; l++) {
      int q = d1 ? quant__nearest_int((x[32 * s + l] + m1) / d1) : 0;
      L[32 * s + l] = (uint8_t)MAX(0, MIN(nmax, q));
    }
  }
}

static void quantize_q4_k(const float *x, void *vy, int64_t n) {
  quant__q4_k *y = vy;
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    quantize_k4_block(x, 15, L, y[i].scales, &y[i].d, &y[i].dmin);
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++)
        y[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
  }
}

static void dequantize_q4_k(const void *vx, float *y, int64_t n) {
  const quant__q4_k *x = vx;
  for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
    float d = F16(x[i].d), dmin = F16(x[i].dmin);
    uint8_t sc[8], mn[8];
    quant__k4_scales(x[i].scales, sc, mn);
    for (int c = 0; c < 4; c++) {
      float d0 = d * sc[2 * c], m0 = dmin * mn[2 * c];
      float d1 = d * sc[2 * c + 1], m1 = dmin * mn[2 * c + 1];
      for (int l = 0; l < 32; l++) {
        y[64 * c + l] = d0 * (x[i].qs[32 * c + l] & 0xF) - m0;
        y[64 * c + 32 + l] = d1 * (x[i].qs[32 * c + l] >> 4) - m1;
      }
    }
  }
}

/* Sum over sub-blocks s of min[s] * (sum of the 32 activations of s), from bsums. */
static int k4_min_sum(const uint8_t mn[static 8], const int16_t bsums[static 16]) {
  int s = 0;
  for (int j = 0; j < 8; j++) s += mn[j] * (bsums[2 * j] + bsums[2 * j + 1]);
  return s;
}

static float dot_q4_k(int64_t n, const void *w, const void *a) {
  const quant__q4_k *x = w;
  const quant__q8_k *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; i++) {
    uint8_t sc[8], mn[8];
    quant__k4_scales(x[i].scales, sc, mn);
    const uint8_t *q = x[i].qs;
    const int8_t *a8 = y[i].qs;
    int sumi = 0;
    for (int c = 0; c < 4; c++) {
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; l++) {
        s0 += (q[32 * c + l] & 0xF) * a8[64 * c + l];
        s1 += (q[32 * c + l] >> 4) * a8[64 * c + 32 + l];
      }
      sumi += sc[2 * c] * s0 + sc[2 * c + 1] * s1;
    }
    int summ = k4_min_sum(mn, y[i].bsums);
    s += (float)sumi * (F16(x[i].d) * y[i].d) - (float)summ * (F16(x[i].dmin) * y[i].d);
  }
  return s;
}

static void quantize_q5_k(const float *x, void *vy, int64_t n) {
  quant__q5_k *y = vy;
  uint8_t L[QK_K];
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    quantize_k4_block(x, 31, L, y[i].scales, &y[i].d, &y[i].dmin);
    memset(y[i].qh, 0, sizeof y[i].qh);
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) {
        int q0 = L[64 * c + l], q1 = L[64 * c + 32 + l];
        y[i].qs[32 * c + l] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
        y[i].qh[l] |= (uint8_t)((q0 >> 4) << (2 * c) | (q1 >> 4) << (2 * c + 1));
      }
  }
}

static void dequantize_q5_k(const void *vx, float *y, int64_t n) {
  const quant__q5_k *x = vx;
  for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
    float d = F16(x[i].d), dmin = F16(x[i].dmin);
    uint8_t sc[8], mn[8];
    quant__k4_scales(x[i].scales, sc, mn);
    for (int c = 0; c < 4; c++) {
      float d0 = d * sc[2 * c], m0 = dmin * mn[2 * c];
      float d1 = d * sc[2 * c + 1], m1 = dmin * mn[2 * c + 1];
      for (int l = 0; l < 32; l++) {
        int h = x[i].qh[l] >> (2 * c);
        y[64 * c + l] = d0 * ((x[i].qs[32 * c + l] & 0xF) | (h & 1) << 4) - m0;
        y[64 * c + 32 + l] = d1 * ((x[i].qs[32 * c + l] >> 4) | (h & 2) << 3) - m1;
      }
    }
  }
}

static float dot_q5_k(int64_t n, const void *w, const void *a) {
  const quant__q5_k *x = w;
  const quant__q8_k *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; i++) {
    uint8_t sc[8], mn[8];
    quant__k4_scales(x[i].scales, sc, mn);
    const uint8_t *q = x[i].qs;
    const int8_t *a8 = y[i].qs;
    int sumi = 0;
    for (int c = 0; c < 4; c++) {
      int s0 = 0, s1 = 0;
      for (int l = 0; l < 32; l++) {
        int h = x[i].qh[l] >> (2 * c);
        s0 += ((q[32 * c + l] & 0xF) | (h & 1) << 4) * a8[64 * c + l];
        s1 += ((q[32 * c + l] >> 4) | (h & 2) << 3) * a8[64 * c + 32 + l];
      }
      sumi += sc[2 * c] * s0 + sc[2 * c + 1] * s1;
    }
    int summ = k4_min_sum(mn, y[i].bsums);
    s += (float)sumi * (F16(x[i].d) * y[i].d) - (float)summ * (F16(x[i].dmin) * y[i].d);
  }
  return s;
}

/* Q6_K: calls F(e, q) for the 256 elements of a super-block, q unsigned 0..63. Each half
 * (128 elements) h uses ql[64h..64h+63] and qh[32h..32h+31]: for l < 32, elements l, l+32,
 * l+64, l+96 of the half take the low nibble of ql[l], of ql[l+32], the high nibble of
 * ql[l], of ql[l+32], and bit pairs 0-1, 2-3, 4-5, 6-7 of qh[l]. */
#define Q6_FOR_EACH(b, F)                                                                  \
  for (int h_ = 0; h_ < 2; h_++)                                                           \
    for (int l_ = 0; l_ < 32; l_++) {                                                      \
      const uint8_t *ql_ = (b)->ql + 64 * h_, qh_ = (b)->qh[32 * h_ + l_];                  \
      F(128 * h_ + l_, (ql_[l_] & 0xF) | (qh_ & 3) << 4);                                   \
      F(128 * h_ + l_ + 32, (ql_[l_ + 32] & 0xF) | (qh_ >> 2 & 3) << 4);                    \
      F(128 * h_ + l_ + 64, (ql_[l_] >> 4) | (qh_ >> 4 & 3) << 4);                          \
      F(128 * h_ + l_ + 96, (ql_[l_ + 32] >> 4) | (qh_ >> 6 & 3) << 4);                     \
    }

static void quantize_q6_k(const float *x, void *vy, int64_t n) {
  quant__q6_k *y = vy;
  for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
    float sc[16], max_sc = 0, amax_sc = 0;
    for (int s = 0; s < 16; s++) {
      sc[s] = fit_scale_sym(16, 32, x + 16 * s);
      if (fabsf(sc[s]) > amax_sc) amax_sc = fabsf(sc[s]), max_sc = sc[s];
    }
    memset(&y[i], 0, sizeof y[i]);
    if (!amax_sc) continue; /* all zero: q = 0 would mean -32; d = 0 makes it 0 anyway */
    float iscale = -128.f / max_sc;
    y[i].d = TO_F16(1 / iscale);
    for (int s = 0; s < 16; s++) y[i].scales[s] = (int8_t)MIN(127, quant__nearest_int(iscale * sc[s]));
    float d = F16(y[i].d);
    uint8_t L[QK_K];
    for (int s = 0; s < 16; s++) {
      float d1 = d * y[i].scales[s];
      for (int l = 0; l < 16; l++) {
        int q = d1 ? quant__nearest_int(x[16 * s + l] / d1) : 0;
        L[16 * s + l] = (uint8_t)(MAX(-32, MIN(31, q)) + 32);
      }
    }
    for (int h = 0; h < 2; h++) {
      const uint8_t *Lh = L + 128 * h;
      for (int l = 0; l < 32; l++) {
        y[i].ql[64 * h + l] = (uint8_t)((Lh[l] & 0xF) | (Lh[l + 64] & 0xF) << 4);
        y[i].ql[64 * h + l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | (Lh[l + 96] & 0xF) << 4);
        y[i].qh[32 * h + l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 |
                                        (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
      }
    }
  }
}

static void dequantize_q6_k(const void *vx, float *y, int64_t n) {
  const quant__q6_k *x = vx;
  for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
    float d = F16(x[i].d);
#define DEQ(e, q) y[e] = d * x[i].scales[(e) / 16] * ((q) - 32)
    Q6_FOR_EACH(&x[i], DEQ)
#undef DEQ
  }
}

static float dot_q6_k(int64_t n, const void *w, const void *a) {
  const quant__q6_k *x = w;
  const quant__q8_k *y = a;
  float s = 0;
  for (int64_t i = 0; i < n / QK_K; i++) {
    int sg[16] = {0}, sumi = 0;
#define ACC(e, q) sg[(e) / 16] += ((q) - 32) * y[i].qs[e]
    Q6_FOR_EACH(&x[i], ACC)
#undef ACC
    for (int g = 0; g < 16; g++) sumi += x[i].scales[g] * sg[g];
    s += (float)sumi * (F16(x[i].d) * y[i].d);
  }
  return s;
}

/* ---- Table ------------------------------------------------------------------------------ */

void quant__fill_scalar(quant__kernels *k) {
  memset(k, 0, sizeof *k);
  k->isa = "scalar";
#define SET(T, name)                 \
  k->dot[T] = dot_##name;            \
  k->quantize[T] = quantize_##name;  \
  k->dequantize[T] = dequantize_##name;
  SET(QT_F32, f32)
  SET(QT_F16, f16)
  SET(QT_BF16, bf16)
  SET(QT_Q4_0, q4_0)
  SET(QT_Q4_1, q4_1)
  SET(QT_Q5_0, q5_0)
  SET(QT_Q5_1, q5_1)
  SET(QT_Q8_0, q8_0)
  SET(QT_Q8_1, q8_1)
  SET(QT_Q4_K, q4_k)
  SET(QT_Q5_K, q5_k)
  SET(QT_Q6_K, q6_k)
  SET(QT_Q8_K, q8_k)
#undef SET
}
