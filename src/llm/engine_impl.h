/* llm/engine_impl — internals shared by engine.c and its SIMD file (engine_avx512.c).
 * Not for use outside llm/engine*.
 *
 * The elementwise loops built on exp (SwiGLU, the attention softmax) have a portable
 * version in engine.c and an AVX-512 one; engine_new picks one set per engine (the
 * AVX-512 set when quant_isa() is "avx512"). Both are deterministic, so results stay
 * independent of thread count and batching; the two sets differ from each other only by
 * exp rounding (about one ulp). */
#ifndef APIARY_LLM_ENGINE_IMPL_H
#define APIARY_LLM_ENGINE_IMPL_H

#include <stdint.h>

typedef struct engine__ops {
  /* h[i] = silu(g[i]) * u[i] for i < n, silu(x) = x / (1 + exp(-x)); h may alias g. */
  void (*swiglu)(float *h, const float *g, const float *u, int64_t n);
  /* p[i] = exp(p[i] * scale - max) / sum, max and sum over i < n (sum in double). */
  void (*softmax)(float *p, int64_t n, float scale);
} engine__ops;

#if defined(__x86_64__)
void engine__swiglu_avx512(float *h, const float *g, const float *u, int64_t n);
void engine__softmax_avx512(float *p, int64_t n, float scale);
#endif

#endif
