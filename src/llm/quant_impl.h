/* llm/quant_impl — internals shared by quant.c and its kernel files (quant_ref.c,
 * quant_avx2.c, quant_avx512.c). Not for use outside llm/quant*.
 *
 * Block structs mirror the GGUF/ggml on-disk layouts byte for byte (checked by static
 * asserts). fp16 fields are stored as raw uint16_t. Rows must be 2-byte aligned (4 for
 * Q8_K); GGUF's 32-byte tensor alignment and malloc both give that.
 *
 * Each kernel set is a quant__kernels table. quant_ref.c fills every entry with scalar
 * code; a SIMD file overrides the entries it accelerates. Tables are built once by
 * quant_init and read-only afterwards. */
#ifndef APIARY_LLM_QUANT_IMPL_H
#define APIARY_LLM_QUANT_IMPL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llm/quant.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct quant__q4_0 {
  uint16_t d;             /* fp16 scale */
  uint8_t qs[QK4_0 / 2];  /* element j in low nibble of qs[j], element j+16 in high nibble */
} quant__q4_0;            /* x = (q - 8) * d */

typedef struct quant__q4_1 {
  uint16_t d;             /* fp16 scale */
  uint16_t m;             /* fp16 offset (the block minimum) */
  uint8_t qs[QK4_1 / 2];  /* nibbles as in Q4_0 */
} quant__q4_1;            /* x = q * d + m */

typedef struct quant__q5_0 {
  uint16_t d;             /* fp16 scale */
  uint8_t qh[4];          /* bit j (little-endian u32) = 5th bit of element j */
  uint8_t qs[QK5_0 / 2];  /* low 4 bits, nibbles as in Q4_0 */
} quant__q5_0;            /* x = (q - 16) * d */

typedef struct quant__q5_1 {
  uint16_t d;             /* fp16 scale */
  uint16_t m;             /* fp16 offset */
  uint8_t qh[4];          /* 5th bits as in Q5_0 */
  uint8_t qs[QK5_1 / 2];  /* low 4 bits */
} quant__q5_1;            /* x = q * d + m */

typedef struct quant__q8_0 {
  uint16_t d;             /* fp16 scale */
  int8_t qs[QK8_0];       /* x = q * d */
} quant__q8_0;

typedef struct quant__q8_1 {
  uint16_t d;             /* fp16 scale */
  uint16_t s;             /* fp16 d * sum(qs) */
  int8_t qs[QK8_1];
} quant__q8_1;

typedef struct quant__q2_k {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d;
  uint16_t dmin;
} quant__q2_k;

typedef struct quant__q3_k {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  uint16_t d;
} quant__q3_k;

typedef struct quant__q4_k {
  uint16_t d;                     /* fp16 super-block scale for the 6-bit sub-scales */
  uint16_t dmin;                  /* fp16 super-block scale for the 6-bit sub-mins */
  uint8_t scales[K_SCALE_SIZE];   /* 8 (scale, min) pairs, 6 bits each, packed */
  uint8_t qs[QK_K / 2];           /* 64-element chunk c: qs[32c+l] low nibble = element
                                     64c+l, high nibble = element 64c+32+l */
} quant__q4_k;                    /* x = d*sc[s]*q - dmin*m[s], s = sub-block of 32 */

typedef struct quant__q5_k {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];   /* as Q4_K */
  uint8_t qh[QK_K / 8];           /* element 64c+l: bit 2c of qh[l]; 64c+32+l: bit 2c+1 */
  uint8_t qs[QK_K / 2];           /* low 4 bits, as Q4_K */
} quant__q5_k;

typedef struct quant__q6_k {
  uint8_t ql[QK_K / 2];   /* low 4 bits (see quant_ref.c dequantize_q6_k for the order) */
  uint8_t qh[QK_K / 4];   /* high 2 bits */
  int8_t scales[QK_K / 16]; /* one signed scale per 16 elements */
  uint16_t d;             /* fp16 super scale */
} quant__q6_k;            /* x = d * sc[s] * (q - 32) */

typedef struct quant__q8_k {
  float d;                /* f32 scale */
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16]; /* sum of each group of 16 qs */
} quant__q8_k;

static_assert(sizeof(quant__q4_0) == 18, "q4_0 layout");
static_assert(sizeof(quant__q4_1) == 20, "q4_1 layout");
static_assert(sizeof(quant__q5_0) == 22, "q5_0 layout");
static_assert(sizeof(quant__q5_1) == 24, "q5_1 layout");
static_assert(sizeof(quant__q8_0) == 34, "q8_0 layout");
static_assert(sizeof(quant__q8_1) == 36, "q8_1 layout");
static_assert(sizeof(quant__q2_k) == 84, "q2_k layout");
static_assert(sizeof(quant__q3_k) == 110, "q3_k layout");
static_assert(sizeof(quant__q4_k) == 144, "q4_k layout");
static_assert(sizeof(quant__q5_k) == 176, "q5_k layout");
static_assert(sizeof(quant__q6_k) == 210, "q6_k layout");
static_assert(sizeof(quant__q8_k) == 292, "q8_k layout");

/* Kernel signatures. n is a whole number of blocks (checked by the public wrappers). */
typedef float (*quant__dot_fn)(int64_t n, const void *w, const void *a);
typedef void (*quant__dot_nx_fn)(int64_t n, const void *w, size_t w_stride, int nw,
                                 const void *a, size_t a_stride, int na, float *out,
                                 size_t out_stride);
typedef void (*quant__dot_rows_fn)(int64_t n, const void *w, size_t w_stride, int64_t nrows,
                                   const void *a, float *out, size_t out_stride);
typedef void (*quant__quant_fn)(const float *src, void *dst, int64_t n);
typedef void (*quant__dequant_fn)(const void *src, float *dst, int64_t n);

typedef struct quant__kernels {
  const char *isa;                     /* "scalar", "avx2", "avx512", "neon" */
  quant__dot_fn dot[QT_COUNT];         /* weight type -> dot with its vec_dot_type */
  quant__dot_nx_fn dot_nx[QT_COUNT];   /* NULL: quant_vec_dot_nx loops over dot */
  quant__dot_nx_fn dot_nx_t[QT_COUNT]; /* NULL: quant_vec_dot_nx_t transposes a dot_nx tile */
  quant__dot_rows_fn dot_rows[QT_COUNT]; /* NULL: quant_vec_dot_rows loops over dot */
  quant__quant_fn quantize[QT_COUNT];
  quant__dequant_fn dequantize[QT_COUNT];
} quant__kernels;

/* Fill a table: quant__fill_scalar sets every entry; the SIMD ones override. */
void quant__fill_scalar(quant__kernels *k);
void quant__fill_avx2(quant__kernels *k);
void quant__fill_avx512(quant__kernels *k);
void quant__fill_neon(quant__kernels *k);

/* Decodes the 12 packed Q4_K/Q5_K bytes into 8 scales and 8 mins (6 bits each). */
static inline void quant__k4_scales(const uint8_t s[static 12], uint8_t sc[static 8],
                                    uint8_t mn[static 8]) {
  for (int j = 0; j < 4; j++) {
    sc[j] = s[j] & 63;
    mn[j] = s[j + 4] & 63;
    sc[j + 4] = (uint8_t)((s[j + 8] & 0xF) | ((s[j] >> 6) << 4));
    mn[j + 4] = (uint8_t)((s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4));
  }
}

/* fp16 -> f32, exact (inf/nan/subnormals). Inline so scalar loops can use it cheaply;
 * quant_f16_to_f32 is the public wrapper. */
static inline float quant__f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
  if (e == 0x1f) u = sign | 0x7f800000 | (m << 13); /* inf / nan (payload kept) */
  else if (e) u = sign | ((e + 112) << 23) | (m << 13); /* rebias 15 -> 127 */
  else if (!m) u = sign;
  else { /* subnormal m * 2^-24: normalize so bit 10 is the implicit one */
    e = 113;
    while (!(m & 0x400)) m <<= 1, e--;
    u = sign | (e << 23) | ((m & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* Round-to-nearest-even float -> int for |x| < 2^22 (the magic-number trick; matches
 * the SIMD cvtps under the default rounding mode). */
static inline int quant__nearest_int(float x) {
  float v = x + 12582912.f;
  union { float f; int32_t i; } u = {v};
  return (u.i & 0x007fffff) - 0x00400000;
}

#endif
