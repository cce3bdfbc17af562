/* llm/quant — tensor element types: block layouts, (de)quantization, dot products.
 *
 * Type ids are ggml's (they are what GGUF files store). Each supported type has a scalar
 * reference implementation and, where it pays, SIMD kernels (quant_avx2.c, quant_avx512.c,
 * quant_neon.c) picked once at run time from CPUID (quant_init; idempotent, thread-safe).
 *
 * Dot products follow ggml's scheme: a weight row of type t is dotted with an activation row
 * already converted (quant_quantize_row) to quant_traits_of(t)->vec_dot_type: F32 for F32,
 * F16 for F16, BF16 for BF16, Q8_0 for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q8_1, Q8_K for the K-quants.
 * A matmul quantizes each activation row once and reuses it for every weight row. This is
 * also what makes Q8_0 logits match llama.cpp's. (ggml pairs Q4_1/Q5_1 with Q8_1; we use
 * Q8_0 and an exact integer block sum for the offset term, which is the same sum.)
 *
 * Q8_0 activation rows must come from quant_quantize_row (quants in [-127, 127]); the SIMD
 * kernels rely on that (weights may hold any int8). Q8_K quants may be -128.
 *
 * Results are deterministic for a given kernel set: the same inputs give the same bits,
 * whatever the caller's threading or batching (quant_vec_dot_nx equals quant_vec_dot). The
 * kernel sets differ from each other in float summation order (last bits).
 *
 * All functions are pure (no allocation, no global state after quant_init) and safe to call
 * from any thread. n is the row length in elements and must be a multiple of the block
 * size (callers check with quant_row_ok). */
#ifndef APIARY_LLM_QUANT_H
#define APIARY_LLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

typedef enum qtype {
  QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7,
  QT_Q8_0 = 8, QT_Q8_1 = 9, QT_Q2_K = 10, QT_Q3_K = 11, QT_Q4_K = 12, QT_Q5_K = 13,
  QT_Q6_K = 14, QT_Q8_K = 15, QT_BF16 = 30,
  QT_COUNT = 40
} qtype;

typedef struct quant_traits {
  const char *name;      /* "Q8_0" */
  uint32_t block_size;   /* elements per block */
  uint32_t type_size;    /* bytes per block */
  qtype vec_dot_type;    /* activation type for quant_vec_dot */
  int supported;         /* 1 when this build can dequantize and dot it */
} quant_traits;

/* Traits for a ggml type id, or NULL for ids that are not known at all. */
const quant_traits *quant_traits_of(uint32_t type);
/* Name for a type id ("F32", "Q4_K", ...) or "unknown". */
const char *quant_name(uint32_t type);
/* Parses a name (case-insensitive); returns the id or -1. */
int quant_from_name(const char *name);
/* 1 if n elements form whole blocks of type t. */
int quant_row_ok(qtype t, int64_t n);
/* Bytes in a row of n elements (whole blocks; any known type, supported or not). */
size_t quant_row_size(qtype t, int64_t n);

/* Picks the best kernels for this CPU. Called by the engine before use; idempotent. */
void quant_init(void);
/* Name of the kernel set in use: "scalar", "avx2", "avx512", "neon". */
const char *quant_isa(void);
/* Forces a kernel set (tests/bench): "scalar", "avx2", "avx512", "neon". Returns 0, or
 * ERR_UNSUPPORTED when this CPU or build lacks it. Not thread-safe against concurrent use. */
int quant_force_isa(const char *isa);

/* Converts n floats to type t (reference quantization, as llama.cpp rounds). Works for
 * every supported type (F32/F16/BF16/Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/Q8_1/Q4_K/Q5_K/Q6_K/Q8_K).
 * Returns 0, ERR_INVAL when n is not whole blocks, ERR_UNSUPPORTED for other types. SIMD
 * fast paths (Q8_0, Q8_K, F16) give the same bytes as the scalar code. */
int quant_quantize_row(qtype t, const float *src, void *dst, int64_t n);
/* Converts n elements of type t back to floats. n must be whole blocks of a supported
 * type (asserted). */
void quant_dequantize_row(qtype t, const void *src, float *dst, int64_t n);
/* Dot product of a weight row (type t) and an activation row of vec_dot_type(t). */
float quant_vec_dot(qtype t, int64_t n, const void *w_row, const void *act_row);

/* Register-blocked dot products for prefill: for i < nw and j < na (both 1..QUANT_NX_MAX)
 *   out[i*out_stride + j] = quant_vec_dot(t, n, w_row + i*w_stride, act_rows + j*act_stride)
 * bit for bit (strides in bytes, out_stride in floats). Each weight block is loaded once
 * for all na activation rows. Every type works; F32 and Q8_0 (and others, see
 * docs/quant.md) have blocked SIMD kernels, the rest loop over quant_vec_dot. */
#define QUANT_NX_MAX 4
void quant_vec_dot_nx(qtype t, int64_t n, const void *w_row, size_t w_stride, int nw,
                      const void *act_rows, size_t act_stride, int na, float *out,
                      size_t out_stride);

/* The same products with the output transposed: for i < nw and j < na
 *   out[j*out_stride + i] = quant_vec_dot(t, n, w_row + i*w_stride, act_rows + j*act_stride)
 * bit for bit: each activation row's results contiguous, as a token-major output matrix
 * wants them (AVX-512 stores each 4x4 tile's results as four 4-float rows; the other
 * kernel sets compute a quant_vec_dot_nx tile and transpose it). */
void quant_vec_dot_nx_t(qtype t, int64_t n, const void *w_row, size_t w_stride, int nw,
                        const void *act_rows, size_t act_stride, int na, float *out,
                        size_t out_stride);

/* Matrix-vector product for decoding: for i < nrows
 *   out[i*out_stride] = quant_vec_dot(t, n, w_row + i*w_stride, act_row)
 * bit for bit (w_stride in bytes, out_stride in floats). Rows are read one after another:
 * a single long stream is what the hardware prefetcher follows best, so for one activation
 * row this is 2-8x faster than 4-row tiles of quant_vec_dot_nx once the weights come from
 * memory. */
void quant_vec_dot_rows(qtype t, int64_t n, const void *w_row, size_t w_stride, int64_t nrows,
                        const void *act_row, float *out, size_t out_stride);

/* fp16 / bf16 conversions (round to nearest even). */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

#endif
