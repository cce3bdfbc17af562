/* bench/bench_quant — dot-product kernel throughput per type and ISA.
 *
 * For each weight type: a 4096 x 4096 matrix times one activation row (decode-style
 * matvec, one thread), reported as weight GB/s and GFLOP/s (2 flops per weight), for every
 * kernel set this CPU runs, with the best SIMD / scalar ratio. Then the prefill shape:
 * 4 activation rows through quant_vec_dot_nx (4x4 tiles) against 4 plain matvecs, and the
 * activation quantizers. Best of several repetitions. Usage: bench_quant [dim] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/quant.h"

static const char *const isas[] = {"scalar", "avx2", "avx512", "neon"};
#define N_ISAS 4

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) / 8388608.0 - 1.0);
}

static volatile float sink;

/* Seconds for one matvec (best of reps, at least ~0.2 s of work in total). */
static double time_matvec(qtype t, int dim, const uint8_t *w, size_t rs, const uint8_t *a, float *out) {
  double best = 1e30, spent = 0;
  for (int rep = 0; rep < 20 && (rep < 3 || spent < 0.3); rep++) {
    double t0 = now();
    for (int r = 0; r < dim; r++) out[r] = quant_vec_dot(t, dim, w + (size_t)r * rs, a);
    double dt = now() - t0;
    spent += dt;
    if (dt < best) best = dt;
  }
  sink = out[0];
  return best;
}

/* Seconds for the 4-row prefill shape: either nx tiles or 4 separate matvecs. */
static double time_batch4(qtype t, int dim, const uint8_t *w, size_t rs, const uint8_t *a, size_t as,
                          float *out, int tiled) {
  double best = 1e30, spent = 0;
  for (int rep = 0; rep < 10 && (rep < 2 || spent < 0.3); rep++) {
    double t0 = now();
    if (tiled) {
      for (int r = 0; r < dim; r += 4)
        quant_vec_dot_nx(t, dim, w + (size_t)r * rs, rs, 4, a, as, 4, out + (size_t)r * 4, 4);
    } else {
      for (int j = 0; j < 4; j++)
        for (int r = 0; r < dim; r++)
          out[(size_t)r * 4 + j] = quant_vec_dot(t, dim, w + (size_t)r * rs, a + j * as);
    }
    double dt = now() - t0;
    spent += dt;
    if (dt < best) best = dt;
  }
  sink = out[0];
  return best;
}

int main(int argc, char **argv) {
  int dim = argc > 1 ? atoi(argv[1]) : 4096;
  if (dim < 256 || dim % 256) {
    fprintf(stderr, "usage: bench_quant [dim, a multiple of 256]\n");
    return 2;
  }
  quant_init();
  const char *best_isa = quant_isa();
  static const qtype types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_1, QT_Q5_0,
                                QT_Q5_1, QT_Q4_K, QT_Q5_K, QT_Q6_K};
  int have[N_ISAS];
  for (int s = 0; s < N_ISAS; s++) have[s] = quant_force_isa(isas[s]) == 0;

  /* 64 distinct quantized rows, repeated to fill the matrix (quantizing 16M values with
   * the K-quant search would dominate the run); memory traffic is that of the full matrix. */
  enum { DISTINCT = 64 };
  float *src = malloc((size_t)dim * DISTINCT * sizeof *src);
  for (size_t i = 0; i < (size_t)dim * DISTINCT; i++) src[i] = frand() * (0.5f + (i % 7) * 0.1f);
  float *act = malloc((size_t)dim * 4 * sizeof *act);
  for (size_t i = 0; i < (size_t)dim * 4; i++) act[i] = frand();
  float *out = malloc((size_t)dim * 4 * sizeof *out);

  printf("quant dot kernels: %d x %d matvec, 1 thread, best kernel set here: %s\n", dim, dim, best_isa);
  printf("%-5s %9s", "type", "MB");
  for (int s = 0; s < N_ISAS; s++)
    if (have[s]) printf("  %8s GB/s %6s", isas[s], "GFLOP");
  printf("  %9s\n", "simd/scal");

  for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
    qtype t = types[k], at = quant_traits_of(t)->vec_dot_type;
    size_t rs = quant_row_size(t, dim), as = quant_row_size(at, dim);
    uint8_t *w = malloc(rs * (size_t)dim), *a = malloc(as * 4);
    quant_force_isa(best_isa);
    for (int r = 0; r < DISTINCT; r++) quant_quantize_row(t, src + (size_t)r * dim, w + (size_t)r * rs, dim);
    for (int r = DISTINCT; r < dim; r++) memcpy(w + (size_t)r * rs, w + (size_t)(r % DISTINCT) * rs, rs);
    for (int j = 0; j < 4; j++) quant_quantize_row(at, act + (size_t)j * dim, a + (size_t)j * as, dim);
    double mb = (double)rs * dim / 1e6, gbs[N_ISAS] = {0};
    printf("%-5s %9.1f", quant_name(t), mb);
    for (int s = 0; s < N_ISAS; s++) {
      if (!have[s]) continue;
      quant_force_isa(isas[s]);
      double sec = time_matvec(t, dim, w, rs, a, out);
      gbs[s] = mb / 1e3 / sec;
      printf("  %13.2f %6.1f", gbs[s], 2.0 * dim * dim / sec / 1e9);
      fflush(stdout);
    }
    double bestsimd = 0;
    for (int s = 1; s < N_ISAS; s++) bestsimd = gbs[s] > bestsimd ? gbs[s] : bestsimd;
    printf("  %8.1fx\n", bestsimd / gbs[0]);
    free(w), free(a);
  }

  printf("\nprefill shape (%s): 4 activation rows, GFLOP/s\n", best_isa);
  printf("%-5s %12s %12s %8s\n", "type", "4x matvec", "nx 4x4", "speedup");
  quant_force_isa(best_isa);
  for (size_t k = 0; k < sizeof types / sizeof *types; k++) {
    qtype t = types[k], at = quant_traits_of(t)->vec_dot_type;
    size_t rs = quant_row_size(t, dim), as = quant_row_size(at, dim);
    uint8_t *w = malloc(rs * (size_t)dim), *a = malloc(as * 4);
    for (int r = 0; r < DISTINCT; r++) quant_quantize_row(t, src + (size_t)r * dim, w + (size_t)r * rs, dim);
    for (int r = DISTINCT; r < dim; r++) memcpy(w + (size_t)r * rs, w + (size_t)(r % DISTINCT) * rs, rs);
    for (int j = 0; j < 4; j++) quant_quantize_row(at, act + (size_t)j * dim, a + (size_t)j * as, dim);
    double flop = 2.0 * dim * dim * 4;
    double t1 = time_batch4(t, dim, w, rs, a, as, out, 0), t4 = time_batch4(t, dim, w, rs, a, as, out, 1);
    printf("%-5s %12.1f %12.1f %7.2fx\n", quant_name(t), flop / t1 / 1e9, flop / t4 / 1e9, t1 / t4);
    free(w), free(a);
  }

  printf("\nactivation quantize (M values/s)\n%-5s", "type");
  for (int s = 0; s < N_ISAS; s++)
    if (have[s]) printf(" %10s", isas[s]);
  printf("\n");
  static const qtype aq[] = {QT_Q8_0, QT_Q8_K, QT_F16};
  uint8_t *buf = malloc((size_t)dim * 4 * 4);
  for (size_t k = 0; k < sizeof aq / sizeof *aq; k++) {
    printf("%-5s", quant_name(aq[k]));
    for (int s = 0; s < N_ISAS; s++) {
      if (!have[s]) continue;
      quant_force_isa(isas[s]);
      double best = 1e30;
      for (int rep = 0; rep < 200; rep++) {
        double t0 = now();
        quant_quantize_row(aq[k], act, buf, (int64_t)dim * 4);
        double dt = now() - t0;
        if (dt < best) best = dt;
      }
      printf(" %10.0f", dim * 4 / best / 1e6);
    }
    printf("\n");
  }
  free(buf), free(src), free(act), free(out);
  return 0;
}
