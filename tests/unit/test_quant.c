/* llm/quant: traits, fp16/bf16 bit patterns, quantize/dequantize error bounds, every SIMD
 * kernel against the scalar reference, vec_dot against a double-precision dot of the
 * dequantized rows, quant_vec_dot_nx, quant_vec_dot_nx_t and quant_vec_dot_rows against quant_vec_dot, and
 * (with shared/ data and llm/gguf.c present) the layout check on a real Q8_0 file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/quant.h"

#include "llm/gguf.h"

static const char *const isas[] = {"scalar", "avx2", "avx512", "neon"};
#define N_ISAS 4

/* Every weight type with a dot product, and every type quant_quantize_row accepts. */
static const qtype dot_types[] = {QT_F32, QT_F16, QT_BF16, QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1,
                                  QT_Q8_0, QT_Q8_1, QT_Q4_K, QT_Q5_K, QT_Q6_K, QT_Q8_K};
#define N_DOT_TYPES (sizeof dot_types / sizeof *dot_types)

static const float U = 1.0f / (1 << 24); /* unit roundoff of float (2^-24) */
static const char *best_isa; /* what quant_init picked; restored after each test */
static void restore_isa(void) { assert_int_equal(quant_force_isa(best_isa), 0); }

/* ---- Helpers ------------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}
static float frand(void) { return (float)((rnd() & 0xffffff) / 8388608.0 - 1.0); } /* [-1,1) */
static float gauss(void) {
  float s = 0;
  for (int i = 0; i < 4; i++) s += frand();
  return s * 0.866f;
}
static int irand(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }

/* Realistic data: gaussian, varying scale per 32, a few outliers, some exact zeros. */
static void fill_real(float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float scale = 0.02f + 0.05f * (float)((i / 32) % 7);
    x[i] = gauss() * scale;
    if (rnd() % 97 == 0) x[i] *= 8;
    if (rnd() % 131 == 0) x[i] = 0;
  }
}

static uint32_t bs(qtype t) { return quant_traits_of(t)->block_size; }
static qtype vdt(qtype t) { return quant_traits_of(t)->vec_dot_type; }

static int use_isa(const char *isa) {
  int rc = quant_force_isa(isa);
  if (rc == ERR_UNSUPPORTED) return 0;
  assert_int_equal(rc, 0);
  return 1;
}

static double dot_double(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

static int same_bits(float a, float b) { return !memcmp(&a, &b, sizeof a); }

/* ---- Traits and names ---------------------------------------------------------------- */

static void test_traits(void **state) {
  (void)state;
  static const struct { qtype t; const char *name; uint32_t bs, ts; int sup; } want[] = {
      {QT_F32, "F32", 1, 4, 1},       {QT_F16, "F16", 1, 2, 1},
      {QT_Q4_0, "Q4_0", 32, 18, 1},   {QT_Q4_1, "Q4_1", 32, 20, 1},
      {QT_Q5_0, "Q5_0", 32, 22, 1},   {QT_Q5_1, "Q5_1", 32, 24, 1},
      {QT_Q8_0, "Q8_0", 32, 34, 1},   {QT_Q8_1, "Q8_1", 32, 36, 1},
      {QT_Q2_K, "Q2_K", 256, 84, 0},  {QT_Q3_K, "Q3_K", 256, 110, 0},
      {QT_Q4_K, "Q4_K", 256, 144, 1}, {QT_Q5_K, "Q5_K", 256, 176, 1},
      {QT_Q6_K, "Q6_K", 256, 210, 1}, {QT_Q8_K, "Q8_K", 256, 292, 1},
      {QT_BF16, "BF16", 1, 2, 1},
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    const quant_traits *tr = quant_traits_of(want[i].t);
    assert_non_null(tr);
    assert_string_equal(tr->name, want[i].name);
    assert_string_equal(quant_name(want[i].t), want[i].name);
    assert_int_equal(tr->block_size, want[i].bs);
    assert_int_equal(tr->type_size, want[i].ts);
    assert_int_equal(tr->supported, want[i].sup);
    assert_int_equal(quant_from_name(want[i].name), want[i].t);
    char lower[8];
    size_t k = 0;
    for (; want[i].name[k]; k++) lower[k] = (char)tolower((unsigned char)want[i].name[k]);
    lower[k] = 0;
    assert_int_equal(quant_from_name(lower), want[i].t);
    assert_true(quant_row_ok(want[i].t, 0));
    assert_true(quant_row_ok(want[i].t, 4 * (int64_t)want[i].bs));
    assert_int_equal(quant_row_size(want[i].t, 4096 * (int64_t)want[i].bs), 4096 * (size_t)want[i].ts);
    if (want[i].bs > 1) {
      assert_false(quant_row_ok(want[i].t, want[i].bs + 1));
      assert_false(quant_row_ok(want[i].t, want[i].bs / 2));
    }
    if (want[i].sup) {
      const quant_traits *vt = quant_traits_of(tr->vec_dot_type);
      assert_non_null(vt);
      assert_true(vt->supported);
      assert_int_equal(vt->block_size, tr->block_size == 1 ? 1 : tr->block_size);
    }
  }
  assert_int_equal(quant_traits_of(QT_Q8_0)->vec_dot_type, QT_Q8_0);
  assert_int_equal(quant_traits_of(QT_Q4_0)->vec_dot_type, QT_Q8_0);
  assert_int_equal(quant_traits_of(QT_Q4_K)->vec_dot_type, QT_Q8_K);
  assert_int_equal(quant_traits_of(QT_F16)->vec_dot_type, QT_F16);
  assert_int_equal(quant_traits_of(QT_BF16)->vec_dot_type, QT_BF16);
  assert_null(quant_traits_of(4));
  assert_null(quant_traits_of(1000));
  assert_string_equal(quant_name(5), "unknown");
  assert_int_equal(quant_from_name("Q9_9"), -1);
  assert_int_equal(quant_from_name("Q8"), -1);
  assert_int_equal(quant_from_name(""), -1);
  assert_int_equal(quant_from_name(NULL), -1);
  float x[32] = {0};
  uint8_t y[64];
  assert_int_equal(quant_quantize_row(QT_Q8_0, x, y, 31), ERR_INVAL);
  assert_int_equal(quant_quantize_row(QT_Q2_K, x, y, 256), ERR_UNSUPPORTED);
}

static void test_isa_select(void **state) {
  (void)state;
  quant_init();
  quant_init();
  const char *best = quant_isa();
  print_message("quant kernels: %s\n", best);
  assert_int_equal(quant_force_isa("bogus"), ERR_UNSUPPORTED);
  assert_int_equal(quant_force_isa("scalar"), 0);
  assert_string_equal(quant_isa(), "scalar");
  for (int k = 0; k < N_ISAS; k++)
    if (use_isa(isas[k])) assert_string_equal(quant_isa(), isas[k]);
  assert_int_equal(quant_force_isa(best), 0);
}

/* ---- fp16 / bf16 ------------------------------------------------------------------------ */

static float bits_f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint32_t f_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static void test_f16_known(void **state) {
  (void)state;
  static const struct { float f; uint16_t h; } v[] = {
      {1.0f, 0x3c00},        {-2.0f, 0xc000},       {0.5f, 0x3800},
      {65504.f, 0x7bff},     {0.0f, 0x0000},        {-0.0f, 0x8000},
      {0x1p-24f, 0x0001},    {0x1p-14f, 0x0400},    {0x3ffp-24f, 0x03ff},
      {INFINITY, 0x7c00},    {-INFINITY, 0xfc00},   {0.333251953125f, 0x3555},
      /* rounding */
      {1.0f + 0x1p-11f, 0x3c00},        /* tie -> even (down) */
      {1.0f + 3 * 0x1p-11f, 0x3c02},    /* tie -> even (up) */
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},
      {65519.f, 0x7bff},     {65520.f, 0x7c00},     {1e6f, 0x7c00},   {-1e6f, 0xfc00},
      {0x1p-25f, 0x0000},    /* tie between 0 and 2^-24 -> 0 */
      {0x1.8p-24f, 0x0002},  /* 1.5 * 2^-24: tie -> even 2 */
      {0x1.8p-23f, 0x0003},  /* exact 3 * 2^-24 */
      {0x1p-25f + 0x1p-40f, 0x0001},
      {0x1p-26f, 0x0000},    {-0x1p-26f, 0x8000},
      {0x1.ffcp-15f, 0x0400}, /* 2^-14 - 2^-25: rounds up from subnormal into the normal range */
  };
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
    uint16_t h = quant_f32_to_f16(v[i].f);
    if (h != v[i].h) fail_msg("f32_to_f16(%a) = 0x%04x, want 0x%04x", (double)v[i].f, h, v[i].h);
  }
  assert_true(quant_f16_to_f32(0x3c00) == 1.0f);
  assert_true(quant_f16_to_f32(0x7bff) == 65504.f);
  assert_true(quant_f16_to_f32(0x0001) == 0x1p-24f);
  assert_true(quant_f16_to_f32(0x03ff) == 0x3ffp-24f);
  assert_true(isinf(quant_f16_to_f32(0x7c00)) && quant_f16_to_f32(0x7c00) > 0);
  assert_true(isinf(quant_f16_to_f32(0xfc00)) && quant_f16_to_f32(0xfc00) < 0);
  assert_true(isnan(quant_f16_to_f32(0x7e00)));
  assert_true(isnan(quant_f16_to_f32(0x7c01)));
  assert_int_equal(f_bits(quant_f16_to_f32(0x8000)), 0x80000000u);
  /* nan stays nan (quiet), sign kept */
  assert_int_equal(quant_f32_to_f16(bits_f(0x7fc00000)), 0x7e00);
  assert_int_equal(quant_f32_to_f16(bits_f(0xffc00000)), 0xfe00);
  assert_int_equal(quant_f32_to_f16(bits_f(0x7f800001)) & 0x7e00, 0x7e00);
  /* exhaustive: every non-nan half survives half -> float -> half */
  for (uint32_t h = 0; h < 65536; h++) {
    float f = quant_f16_to_f32((uint16_t)h);
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
      assert_true(isnan(f));
      assert_int_equal(quant_f32_to_f16(f) & 0x7e00, 0x7e00);
      continue;
    }
    if (quant_f32_to_f16(f) != h) fail_msg("half 0x%04x does not round-trip", h);
    /* the midpoint to the next half rounds to the even one of the two */
    if ((h & 0x7fff) < 0x7bff) {
      float g = quant_f16_to_f32((uint16_t)(h + 1));
      uint16_t r = quant_f32_to_f16((float)(((double)f + g) / 2));
      assert_int_equal(r, (h & 1) ? h + 1 : h);
    }
  }
}

static void test_bf16_known(void **state) {
  (void)state;
  assert_int_equal(quant_f32_to_bf16(1.0f), 0x3f80);
  assert_int_equal(quant_f32_to_bf16(-2.0f), 0xc000);
  assert_int_equal(quant_f32_to_bf16(INFINITY), 0x7f80);
  assert_int_equal(quant_f32_to_bf16(-INFINITY), 0xff80);
  assert_int_equal(quant_f32_to_bf16(bits_f(0x3f808000)), 0x3f80); /* tie -> even (down) */
  assert_int_equal(quant_f32_to_bf16(bits_f(0x3f818000)), 0x3f82); /* tie -> even (up) */
  assert_int_equal(quant_f32_to_bf16(bits_f(0x3f808001)), 0x3f81);
  assert_int_equal(quant_f32_to_bf16(bits_f(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to inf */
  assert_int_equal(quant_f32_to_bf16(bits_f(0x00018000)), 0x0002); /* subnormal, tie -> even */
  assert_int_equal(quant_f32_to_bf16(bits_f(0x7f800001)), 0x7fc0); /* snan -> qnan */
  assert_int_equal(quant_f32_to_bf16(bits_f(0xffc00000)), 0xffc0);
  assert_true(quant_bf16_to_f32(0x3f80) == 1.0f);
  assert_true(isnan(quant_bf16_to_f32(0x7fc0)));
  for (uint32_t h = 0; h < 65536; h++) {
    float f = quant_bf16_to_f32((uint16_t)h);
    if (isnan(f)) continue;
    assert_int_equal(quant_f32_to_bf16(f), h);
  }
}

/* ---- Quantize -> dequantize error bounds -------------------------------------------------- */

static float f16v(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return quant_f16_to_f32(h);
}

/* Largest magnitude in x[0..n), and the first value having it. */
static float smax(const float *x, int n, float *amax_out) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; j++)
    if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
  *amax_out = amax;
  return max;
}

/* Per-element bound on |x - dequantize(quantize(x))|, derived from the block's stored
 * scales: half a quantization step where x lies inside the block's grid, plus how far x
 * lies outside it (clamping), plus the error from storing the scale (computed in float)
 * as fp16 (|q| * |d_f32 - d_f16|), plus a few float roundings of the dequantization. */
static void check_roundtrip(qtype t, const float *x, const uint8_t *q, const float *y, int64_t n) {
  uint32_t B = bs(t), ts = quant_traits_of(t)->type_size;
  for (int64_t b = 0; b < n / B; b++) {
    const float *xb = x + b * B, *yb = y + b * B;
    const uint8_t *blk = q + b * ts;
    float amax, max = smax(xb, (int)B, &amax);
    for (uint32_t j = 0; j < B; j++) {
      float bound = 0, xv = xb[j], qv;
      switch (t) {
      case QT_F32: bound = 0; break;
      case QT_F16: bound = fabsf(xv) * 0x1p-11f + 0x1p-25f; break; /* half an ulp (11-bit
                                                   mantissa), or half the subnormal step */
      case QT_BF16: bound = fabsf(xv) * 0x1p-8f; break;     /* half an ulp of an 8-bit mantissa */
      case QT_Q8_0:
      case QT_Q8_1: {
        float d = amax / 127, dh = f16v(blk);
        bound = d / 2 + 127 * fabsf(d - dh);
        break;
      }
      case QT_Q4_0:
      case QT_Q5_0: {
        float half = t == QT_Q4_0 ? 8 : 16, d = max / -half, dh = f16v(blk);
        qv = d ? xv / d : 0; /* grid index minus the offset: -half .. half - 1 */
        bound = fabsf(d) * (0.5f + fmaxf(0, qv - (half - 1))) + half * fabsf(d - dh);
        break;
      }
      case QT_Q4_1:
      case QT_Q5_1: {
        float mn = xb[0], mx = xb[0];
        for (uint32_t k = 0; k < B; k++) mn = fminf(mn, xb[k]), mx = fmaxf(mx, xb[k]);
        float top = t == QT_Q4_1 ? 15 : 31, d = (mx - mn) / top;
        bound = d / 2 + top * fabsf(d - f16v(blk)) + fabsf(mn - f16v(blk + 2));
        break;
      }
      case QT_Q8_K: {
        float d;
        memcpy(&d, blk, 4);
        qv = d ? xv / d : 0;
        bound = fabsf(d) * (0.5f + fmaxf(0, qv - 127));
        break;
      }
      case QT_Q4_K:
      case QT_Q5_K: {
        const uint8_t *s = blk + 4;
        int sb = (int)j / 32, sc, m;
        if (sb < 4) sc = s[sb] & 63, m = s[sb + 4] & 63;
        else sc = (s[sb + 4] & 0xF) | ((s[sb - 4] >> 6) << 4), m = (s[sb + 4] >> 4) | ((s[sb] >> 6) << 4);
        float d1 = f16v(blk) * sc, m1 = f16v(blk + 2) * m, top = t == QT_Q4_K ? 15 : 31;
        float lo = -m1, hi = d1 * top - m1;
        bound = d1 / 2 + fmaxf(0, fmaxf(xv - hi, lo - xv));
        break;
      }
      case QT_Q6_K: {
        float d1 = f16v(blk + 208) * (int8_t)blk[192 + j / 16];
        qv = d1 ? xv / d1 : 0; /* d1 = 0: the grid is {0}, the error is |x| */
        bound = d1 ? fabsf(d1) * (0.5f + fmaxf(0, fmaxf(qv - 31, -32 - qv))) : fabsf(xv);
        break;
      }
      default: fail_msg("no bound for %s", quant_name(t));
      }
      bound += 4 * U * (fabsf(xv) + amax) + 1e-30f;
      float err = fabsf(xv - yb[j]);
      if (!(err <= bound))
        fail_msg("%s block %lld elem %u: x=%g y=%g err=%g > bound %g", quant_name(t), (long long)b,
                 j, (double)xv, (double)yb[j], (double)err, (double)bound);
    }
  }
}

static void test_roundtrip(void **state) {
  (void)state;
  enum { N = 4096 };
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
  uint8_t *q = malloc(N * 4 + 1024);
  for (int iter = 0; iter < 8; iter++) {
    fill_real(x, N);
    if (iter == 1) memset(x, 0, 512 * sizeof *x);           /* all-zero blocks */
    if (iter == 2) for (int i = 0; i < N; i++) x[i] = fabsf(x[i]) + 0.1f; /* all positive */
    if (iter == 3) for (int i = 0; i < N; i++) x[i] = -fabsf(x[i]) - 0.1f;
    if (iter == 4) for (int i = 0; i < N; i++) x[i] = (float)irand(-20, 20) * 0.5f; /* ties */
    for (size_t k = 0; k < N_DOT_TYPES; k++) {
      qtype t = dot_types[k];
      for (int s = 0; s < N_ISAS; s++) {
        if (!use_isa(isas[s])) continue;
        assert_int_equal(quant_quantize_row(t, x, q, N), 0);
        quant_dequantize_row(t, q, y, N);
        check_roundtrip(t, x, q, y, N);
      }
    }
  }
  /* Quality (regression guard on the K-quant scale search, not a format property): RMS
   * error relative to RMS(x) on gaussian data, limits ~1.5x what this code achieves. */
  static const struct { qtype t; double limit; } qual[] = {
      {QT_Q4_0, 0.12}, {QT_Q4_1, 0.11}, {QT_Q5_0, 0.06}, {QT_Q5_1, 0.055}, {QT_Q8_0, 0.0075},
      {QT_Q4_K, 0.10}, {QT_Q5_K, 0.05}, {QT_Q6_K, 0.025}, {QT_Q8_K, 0.009},
  };
  for (int i = 0; i < N; i++) x[i] = gauss();
  assert_int_equal(quant_force_isa("scalar"), 0);
  for (size_t k = 0; k < sizeof qual / sizeof *qual; k++) {
    assert_int_equal(quant_quantize_row(qual[k].t, x, q, N), 0);
    quant_dequantize_row(qual[k].t, q, y, N);
    double e2 = 0, x2 = 0;
    for (int i = 0; i < N; i++) e2 += ((double)x[i] - y[i]) * ((double)x[i] - y[i]), x2 += (double)x[i] * x[i];
    double rel = sqrt(e2 / x2);
    print_message("%-5s rms error %.4f\n", quant_name(qual[k].t), rel);
    assert_true(rel < qual[k].limit);
  }
  restore_isa();
  free(x), free(y), free(q);
}

/* SIMD quantizers (Q8_0, Q8_K, F16 fast paths) must produce the scalar code's bytes. */
static void test_quantize_simd_exact(void **state) {
  (void)state;
  enum { N = 2048 };
  float *x = malloc(N * sizeof *x);
  uint8_t *ref = malloc(N * 4), *got = malloc(N * 4);
  for (int iter = 0; iter < 6; iter++) {
    fill_real(x, N);
    if (iter == 1) /* exact .5 ties: block amax 127 gives d = 1, so x*id = x */
      for (int i = 0; i < N; i++) x[i] = i % 32 == 0 ? 127.f : (float)irand(-254, 254) * 0.5f;
    if (iter == 2) /* Q8_K ties: max -128 gives iscale 1 */
      for (int i = 0; i < N; i++) x[i] = i % 256 == 7 ? -128.f : (float)irand(-250, 250) * 0.5f;
    if (iter == 3) memset(x, 0, N * sizeof *x);
    if (iter == 4) /* f16 specials: overflow, subnormals, inf, nan, ties */
      for (int i = 0; i < N; i++) {
        static const float sp[] = {65519.f, 65520.f, 1e9f, 0x1p-25f, 0x1.8p-24f, 0x1p-20f, 1.0f + 0x1p-11f};
        x[i] = i % 9 == 0 ? sp[i % 7] * (i & 1 ? -1 : 1) : gauss() * 1e-5f;
        if (i % 50 == 1) x[i] = bits_f(0x7fc00000 | (uint32_t)i << 8);
        if (i % 50 == 2) x[i] = -INFINITY;
      }
    if (iter == 5) /* same magnitude, both signs, in one block: the first one sets Q8_K's sign */
      for (int i = 0; i < N; i++) x[i] = i % 256 == 3 ? 2.f : i % 256 == 9 ? -2.f : gauss() * 0.5f;
    for (size_t k = 0; k < N_DOT_TYPES; k++) {
      qtype t = dot_types[k];
      if (iter == 4 && t != QT_F16 && t != QT_F32 && t != QT_BF16) continue;
      size_t sz = quant_row_size(t, N);
      assert_int_equal(quant_force_isa("scalar"), 0);
      assert_int_equal(quant_quantize_row(t, x, ref, N), 0);
      for (int s = 1; s < N_ISAS; s++) {
        if (!use_isa(isas[s])) continue;
        memset(got, 0xAA, sz);
        assert_int_equal(quant_quantize_row(t, x, got, N), 0);
        if (memcmp(ref, got, sz)) fail_msg("%s quantize %s differs from scalar (iter %d)", isas[s], quant_name(t), iter);
        /* and the dequantizers agree bit for bit too */
        float *y0 = malloc(N * sizeof *y0), *y1 = malloc(N * sizeof *y1);
        assert_int_equal(quant_force_isa("scalar"), 0);
        quant_dequantize_row(t, ref, y0, N);
        assert_true(use_isa(isas[s]));
        quant_dequantize_row(t, ref, y1, N);
        assert_memory_equal(y0, y1, N * sizeof *y0);
        free(y0), free(y1);
      }
    }
  }
  /* odd lengths through the F16 path (SIMD body + scalar tail) */
  for (int64_t n = 1; n < 70; n++) {
    fill_real(x, n);
    assert_int_equal(quant_force_isa("scalar"), 0);
    assert_int_equal(quant_quantize_row(QT_F16, x, ref, n), 0);
    for (int s = 1; s < N_ISAS; s++) {
      if (!use_isa(isas[s])) continue;
      assert_int_equal(quant_quantize_row(QT_F16, x, got, n), 0);
      assert_memory_equal(ref, got, (size_t)n * 2);
    }
  }
  quant_force_isa("scalar");
  restore_isa();
  free(x), free(ref), free(got);
}

/* ---- Dot products -------------------------------------------------------------------------- */

/* Largest |integer weight contribution| per element for the exact-integer test. */
static int int_weight_max(qtype t) {
  switch (t) {
  case QT_F32: case QT_F16: case QT_BF16: return 64;
  case QT_Q8_0: case QT_Q8_1: case QT_Q8_K: return 128;
  case QT_Q4_0: return 8;
  case QT_Q4_1: return 16;  /* q <= 15, plus the offset m = +-1 */
  case QT_Q5_0: return 16;
  case QT_Q5_1: return 32;
  case QT_Q4_K: return 63 * 15 + 63;
  case QT_Q5_K: return 63 * 31 + 63;
  case QT_Q6_K: return 128 * 32;
  default: return 0;
  }
}

static void put_f16(uint8_t *p, float f) {
  uint16_t h = quant_f32_to_f16(f);
  memcpy(p, &h, 2);
}

/* Random blocks with every scale 1 (or -1 / +-1 offsets) and random quant bits: every
 * product and partial sum is an integer below 2^24, so all kernels must agree exactly. */
static void fill_int_weights(qtype t, uint8_t *q, int64_t n) {
  size_t sz = quant_row_size(t, n);
  for (size_t i = 0; i < sz; i++) q[i] = (uint8_t)rnd();
  uint32_t B = bs(t), ts = quant_traits_of(t)->type_size;
  for (int64_t b = 0; b < n / B; b++) {
    uint8_t *blk = q + b * ts;
    switch (t) {
    case QT_F32: for (uint32_t j = 0; j < 1; j++) { float v = (float)irand(-64, 64); memcpy(blk, &v, 4); } break;
    case QT_F16: put_f16(blk, (float)irand(-64, 64)); break;
    case QT_BF16: { uint16_t h = quant_f32_to_bf16((float)irand(-64, 64)); memcpy(blk, &h, 2); break; }
    case QT_Q8_0: case QT_Q4_0: case QT_Q5_0: put_f16(blk, rnd() & 1 ? 1.f : -1.f); break;
    case QT_Q8_1: case QT_Q4_1: case QT_Q5_1:
      put_f16(blk, rnd() & 1 ? 1.f : -1.f);
      put_f16(blk + 2, rnd() & 1 ? 1.f : -1.f);
      break;
    case QT_Q4_K: case QT_Q5_K: put_f16(blk, 1.f), put_f16(blk + 2, 1.f); break;
    case QT_Q6_K: put_f16(blk + 208, rnd() & 1 ? 1.f : -1.f); break;
    case QT_Q8_K: {
      float one = 1;
      memcpy(blk, &one, 4);
      for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int k = 0; k < 16; k++) s += (int8_t)blk[4 + 16 * g + k];
        int16_t v = (int16_t)s;
        memcpy(blk + 4 + 256 + 2 * g, &v, 2);
      }
      break;
    }
    default: fail();
    }
  }
}

/* Activation rows of type at with integer values in [-amp, amp] and scale 1. */
static void fill_int_acts(qtype at, uint8_t *q, int64_t n, int amp) {
  float *x = malloc((size_t)n * sizeof *x);
  for (int64_t i = 0; i < n; i++) x[i] = (float)irand(-amp, amp);
  if (at == QT_Q8_0) {
    for (int64_t b = 0; b < n / 32; b++) {
      put_f16(q + 34 * b, 1.f);
      for (int j = 0; j < 32; j++) q[34 * b + 2 + j] = (uint8_t)(int8_t)x[32 * b + j];
    }
  } else if (at == QT_Q8_K) {
    for (int64_t b = 0; b < n / 256; b++) {
      uint8_t *blk = q + 292 * b;
      float one = 1;
      memcpy(blk, &one, 4);
      for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int k = 0; k < 16; k++) {
          int v = (int)x[256 * b + 16 * g + k];
          blk[4 + 16 * g + k] = (uint8_t)(int8_t)v, s += v;
        }
        int16_t v16 = (int16_t)s;
        memcpy(blk + 260 + 2 * g, &v16, 2);
      }
    }
  } else {
    assert_int_equal(quant_quantize_row(at, x, q, n), 0); /* small ints are exact in f16/bf16 */
  }
  free(x);
}

static void test_dot_exact_integer(void **state) {
  (void)state;
  static const int nblocks[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33};
  static const int nfloat[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 1000};
  uint8_t *w = malloc(1 << 16), *a = malloc(1 << 16);
  int checked = 0;
  for (size_t k = 0; k < N_DOT_TYPES; k++) {
    qtype t = dot_types[k];
    int isf = bs(t) == 1;
    int cnt = isf ? (int)(sizeof nfloat / sizeof *nfloat) : (int)(sizeof nblocks / sizeof *nblocks);
    for (int c = 0; c < cnt; c++) {
      int64_t n = isf ? nfloat[c] : (int64_t)nblocks[c] * bs(t);
      int64_t amp = ((1 << 24) - 1) / (n * int_weight_max(t));
      if (amp > 127) amp = 127;
      if (amp < 1) continue;
      for (int rep = 0; rep < 4; rep++) {
        fill_int_weights(t, w, n);
        fill_int_acts(vdt(t), a, n, (int)amp);
        assert_int_equal(quant_force_isa("scalar"), 0);
        float ref = quant_vec_dot(t, n, w, a);
        /* the reference itself against an exact double dot of the dequantized rows */
        float *wd = malloc((size_t)n * 4), *ad = malloc((size_t)n * 4);
        quant_dequantize_row(t, w, wd, n);
        quant_dequantize_row(vdt(t), a, ad, n);
        double exact = dot_double(wd, ad, n);
        free(wd), free(ad);
        if ((double)ref != exact) fail_msg("scalar %s n=%lld: %.1f != exact %.1f", quant_name(t), (long long)n, (double)ref, exact);
        for (int s = 1; s < N_ISAS; s++) {
          if (!use_isa(isas[s])) continue;
          float got = quant_vec_dot(t, n, w, a);
          if (!same_bits(got, ref))
            fail_msg("%s %s n=%lld: %.1f != scalar %.1f", isas[s], quant_name(t), (long long)n, (double)got, (double)ref);
          checked++;
        }
      }
    }
  }
  print_message("%d exact SIMD dot checks\n", checked);
  restore_isa();
  free(w), free(a);
}

/* Summation-error scale for a dot: sum |a_i| * M_i, where M_i bounds every float term the
 * kernels form for element i. For float types M_i = |w_i|. For block types it is 4x the
 * largest dequantized weight magnitude in the (super-)block: that bounds |d*q| plus |m| for
 * offset types (|d*q| <= max - min <= 2 amax, |m| <= amax) with slack for scale rounding. */
static double err_scale(qtype t, const float *wd, const float *ad, int64_t n) {
  uint32_t B = bs(t);
  double A = 0;
  for (int64_t b = 0; b < n / B; b++) {
    float m = 0;
    for (uint32_t j = 0; j < B; j++) m = fmaxf(m, fabsf(wd[b * B + j]));
    for (uint32_t j = 0; j < B; j++)
      A += fabs((double)ad[b * B + j]) * (B == 1 ? fabsf(wd[b * B + j]) : 4 * m);
  }
  return A;
}

/* Tolerance for |kernel - exact|: each float term carries up to ~3 roundings (scale product,
 * int-to-float product, dequantization), and a sum of m terms in any order (recursive,
 * per-lane, then a tree) has error <= (m - 1) * u * sum|terms|. m is at most the number of
 * blocks (or elements, for float types) per accumulator lane plus the lane tree, so
 * (blocks + 16) * 2u * A is a rigorous first-order bound for every ISA's order. */
static double dot_tol(qtype t, int64_t n, double A) {
  double m = (double)(n / bs(t)) + 16;
  return m * 2 * U * A + 1e-30;
}

static void test_dot_vs_dequant(void **state) {
  (void)state;
  static const int nblocks[] = {1, 2, 3, 8, 16, 17};
  static const int nfloat[] = {1, 7, 16, 33, 100, 1024, 4096};
  enum { NMAX = 17 * 256 };
  float *x = malloc(NMAX * 4), *y = malloc(NMAX * 4), *wd = malloc(NMAX * 4), *ad = malloc(NMAX * 4);
  uint8_t *w = malloc(NMAX * 4), *a = malloc(NMAX * 4);
  int checked = 0;
  for (size_t k = 0; k < N_DOT_TYPES; k++) {
    qtype t = dot_types[k];
    int isf = bs(t) == 1;
    int cnt = isf ? (int)(sizeof nfloat / sizeof *nfloat) : (int)(sizeof nblocks / sizeof *nblocks);
    for (int c = 0; c < cnt; c++) {
      int64_t n = isf ? nfloat[c] : (int64_t)nblocks[c] * bs(t);
      for (int rep = 0; rep < 3; rep++) {
        fill_real(x, n);
        fill_real(y, n);
        if (rep == 2) for (int64_t i = 0; i < n; i++) y[i] = fabsf(y[i]); /* no cancellation */
        assert_int_equal(quant_force_isa("scalar"), 0);
        assert_int_equal(quant_quantize_row(t, x, w, n), 0);
        assert_int_equal(quant_quantize_row(vdt(t), y, a, n), 0);
        quant_dequantize_row(t, w, wd, n);
        quant_dequantize_row(vdt(t), a, ad, n);
        double exact = dot_double(wd, ad, n), tol = dot_tol(t, n, err_scale(t, wd, ad, n));
        float ref = quant_vec_dot(t, n, w, a);
        for (int s = 0; s < N_ISAS; s++) {
          if (!use_isa(isas[s])) continue;
          float got = quant_vec_dot(t, n, w, a);
          if (!(fabs((double)got - exact) <= tol))
            fail_msg("%s %s n=%lld: %.9g vs exact %.9g (tol %.3g)", isas[s], quant_name(t), (long long)n,
                     (double)got, exact, tol);
          /* SIMD vs scalar: both within tol of the exact value */
          assert_true(fabs((double)got - ref) <= 2 * tol);
          /* NEON block-type dots reduce each block to an exact integer and then do the
           * scalar code's float steps, so they match it exactly */
          if (!strcmp(isas[s], "neon") && bs(t) > 1 && !same_bits(got, ref))
            fail_msg("neon %s n=%lld: %.9g != scalar %.9g", quant_name(t), (long long)n, (double)got, (double)ref);
          checked++;
        }
      }
    }
  }
  print_message("%d dot-vs-dequant checks\n", checked);
  restore_isa();
  free(x), free(y), free(wd), free(ad), free(w), free(a);
}

/* The engine's use: a real weight row against a quantized activation row, compared with
 * the float dot of the original (unquantized) data. Loose by nature (quantization noise);
 * checks that nothing is grossly wrong: relative error of Q8_0 well under 2%. */
static void test_dot_quantization_noise(void **state) {
  (void)state;
  enum { N = 4096 };
  float *x = malloc(N * 4), *y = malloc(N * 4);
  uint8_t *w = malloc(N * 4), *a = malloc(N * 4);
  for (int i = 0; i < N; i++) x[i] = gauss(), y[i] = gauss() + 0.3f * x[i];
  double exact = dot_double(x, y, N);
  static const struct { qtype t; double rel; } lim[] = {
      {QT_F32, 1e-6}, {QT_F16, 1e-3}, {QT_BF16, 1e-2}, {QT_Q8_0, 0.01}, {QT_Q4_0, 0.08},
      {QT_Q4_1, 0.08}, {QT_Q5_0, 0.04}, {QT_Q5_1, 0.04}, {QT_Q4_K, 0.08}, {QT_Q5_K, 0.04},
      {QT_Q6_K, 0.02}, {QT_Q8_K, 0.01}};
  for (size_t k = 0; k < sizeof lim / sizeof *lim; k++)
    for (int s = 0; s < N_ISAS; s++) {
      if (!use_isa(isas[s])) continue;
      assert_int_equal(quant_quantize_row(lim[k].t, x, w, N), 0);
      assert_int_equal(quant_quantize_row(vdt(lim[k].t), y, a, N), 0);
      double got = quant_vec_dot(lim[k].t, N, w, a);
      assert_true(fabs(got - exact) <= lim[k].rel * fabs(exact));
    }
  restore_isa();
  free(x), free(y), free(w), free(a);
}

static void test_dot_nx(void **state) {
  (void)state;
  static const int nblocks[] = {1, 2, 3, 5, 16};
  static const int nfloat[] = {1, 15, 16, 17, 64, 100};
  enum { NMAX = 16 * 256, PAD = 96 };
  float *x = malloc(NMAX * 4);
  uint8_t *w = malloc(4 * (NMAX * 4 + PAD)), *a = malloc(4 * (NMAX * 4 + PAD));
  float out[4 * 7];
  int checked = 0;
  for (size_t k = 0; k < N_DOT_TYPES; k++) {
    qtype t = dot_types[k];
    int isf = bs(t) == 1;
    int cnt = isf ? (int)(sizeof nfloat / sizeof *nfloat) : (int)(sizeof nblocks / sizeof *nblocks);
    for (int c = 0; c < cnt; c++) {
      int64_t n = isf ? nfloat[c] : (int64_t)nblocks[c] * bs(t);
      /* strides: tight, and padded (keeping 4-byte alignment for Q8_K/F32) */
      size_t ws = quant_row_size(t, n) + (c & 1 ? 0 : 36), as = quant_row_size(vdt(t), n) + (c & 1 ? 4 : 0);
      assert_int_equal(quant_force_isa("scalar"), 0);
      for (int r = 0; r < 4; r++) {
        fill_real(x, n);
        assert_int_equal(quant_quantize_row(t, x, w + r * ws, n), 0);
        fill_real(x, n);
        assert_int_equal(quant_quantize_row(vdt(t), x, a + r * as, n), 0);
      }
      for (int s = 0; s < N_ISAS; s++) {
        if (!use_isa(isas[s])) continue;
        float single[4][4];
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++) single[i][j] = quant_vec_dot(t, n, w + i * ws, a + j * as);
        for (int nw = 1; nw <= 4; nw++)
          for (int na = 1; na <= 4; na++) {
            int last = 4 - (nw > na ? nw : na); /* first rows, and the last rows */
            for (int off = 0;; off = last) {
              size_t os = 7;
              for (size_t q = 0; q < sizeof out / sizeof *out; q++) out[q] = -12345.f;
              quant_vec_dot_nx(t, n, w + off * ws, ws, nw, a + off * as, as, na, out, os);
              for (int q = 0; q < 28; q++) {
                int i = q / 7, j = q % 7;
                if (i >= nw || j >= na) { /* nothing written outside the tile */
                  assert_true(out[q] == -12345.f);
                  continue;
                }
                if (!same_bits(out[q], single[off + i][off + j]))
                  fail_msg("%s %s n=%lld nx %dx%d [%d][%d]: %.9g != %.9g", isas[s], quant_name(t),
                           (long long)n, nw, na, i, j, (double)out[q], (double)single[off + i][off + j]);
              }
              /* the transposed form: out[j*os + i] */
              for (size_t q = 0; q < sizeof out / sizeof *out; q++) out[q] = -12345.f;
              quant_vec_dot_nx_t(t, n, w + off * ws, ws, nw, a + off * as, as, na, out, os);
              for (int q = 0; q < 28; q++) {
                int j = q / 7, i = q % 7;
                if (i >= nw || j >= na) {
                  assert_true(out[q] == -12345.f);
                  continue;
                }
                if (!same_bits(out[q], single[off + i][off + j]))
                  fail_msg("%s %s n=%lld nx_t %dx%d [%d][%d]: %.9g != %.9g", isas[s], quant_name(t),
                           (long long)n, nw, na, i, j, (double)out[q], (double)single[off + i][off + j]);
              }
              checked++;
              if (off == last) break;
            }
          }
        /* quant_vec_dot_rows (decode): every row count, strided output, bit-exact */
        for (int nr = 0; nr <= 4; nr++)
          for (int j = 0; j < 4; j++) {
            for (size_t q = 0; q < sizeof out / sizeof *out; q++) out[q] = -12345.f;
            quant_vec_dot_rows(t, n, w, ws, nr, a + j * as, out, 7);
            for (int q = 0; q < 28; q++) {
              if (q % 7 || q / 7 >= nr) { /* nothing written outside the rows */
                assert_true(out[q] == -12345.f);
                continue;
              }
              if (!same_bits(out[q], single[q / 7][j]))
                fail_msg("%s %s n=%lld rows %d [%d][%d]: %.9g != %.9g", isas[s], quant_name(t), (long long)n, nr,
                         q / 7, j, (double)out[q], (double)single[q / 7][j]);
            }
            checked++;
          }
      }
    }
  }
  print_message("%d nx tiles and row runs checked bit-exact\n", checked);
  restore_isa();
  free(x), free(w), free(a);
}

/* Row runs over rows longer than the AVX-512 activation table (512 blocks), which take
 * the kernel's other path, still equal single dots bit for bit. */
static void test_dot_rows_long(void **state) {
  (void)state;
  static const qtype ts[] = {QT_Q4_0, QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q8_0};
  const int64_t n = 520 * 32;
  float *x = malloc((size_t)n * 4), out[3];
  uint8_t *w = malloc(3 * quant_row_size(QT_Q8_0, n)), *a = malloc(quant_row_size(QT_Q8_0, n));
  for (size_t k = 0; k < sizeof ts / sizeof *ts; k++) {
    qtype t = ts[k];
    size_t ws = quant_row_size(t, n);
    assert_int_equal(quant_force_isa("scalar"), 0);
    for (int r = 0; r < 3; r++) {
      fill_real(x, n);
      assert_int_equal(quant_quantize_row(t, x, w + r * ws, n), 0);
    }
    fill_real(x, n);
    assert_int_equal(quant_quantize_row(QT_Q8_0, x, a, n), 0);
    for (int s = 0; s < N_ISAS; s++) {
      if (!use_isa(isas[s])) continue;
      quant_vec_dot_rows(t, n, w, ws, 3, a, out, 1);
      for (int r = 0; r < 3; r++)
        if (!same_bits(out[r], quant_vec_dot(t, n, w + r * ws, a)))
          fail_msg("%s %s n=%lld row %d", isas[s], quant_name(t), (long long)n, r);
    }
  }
  restore_isa();
  free(x), free(w), free(a);
}

/* ---- Real data: a Q8_0 GGUF against the same model in F32 --------------------------------- */

static void test_real_q8_0_layout(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char pq[1024], pf[1024], err[256] = "";
  assert_int_equal(tu_shared_path(pq, sizeof pq, "testdata/tiny-spm4k-Q8_0.gguf"), 0);
  assert_int_equal(tu_shared_path(pf, sizeof pf, "testdata/tiny-spm4k-F32.gguf"), 0);
  gguf_file *fq = NULL, *ff = NULL;
  if (gguf_open(pq, &fq, err, sizeof err) < 0) fail_msg("%s: %s", pq, err);
  if (gguf_open(pf, &ff, err, sizeof err) < 0) fail_msg("%s: %s", pf, err);
  int n_q8 = 0;
  for (size_t i = 0; i < gguf_n_tensors(fq); i++) {
    const gguf_tensor *tq = gguf_tensor_at(fq, i);
    if (tq->type != QT_Q8_0) continue;
    char name[GGUF_MAX_NAME + 1];
    memcpy(name, tq->name.ptr, tq->name.len);
    name[tq->name.len] = 0;
    const gguf_tensor *tf = gguf_find_tensor(ff, name);
    assert_non_null(tf);
    assert_int_equal(tf->type, QT_F32);
    int64_t ne = 1;
    for (uint32_t d = 0; d < tq->n_dims; d++) ne *= (int64_t)tq->ne[d];
    assert_int_equal(tq->nbytes, quant_row_size(QT_Q8_0, ne));
    float *y = malloc((size_t)ne * sizeof *y);
    quant_dequantize_row(QT_Q8_0, tq->data, y, ne);
    const float *x = tf->data;
    const uint8_t *blk = tq->data;
    for (int64_t b = 0; b < ne / 32; b++) {
      float d = f16v(blk + 34 * b), amax = 0;
      for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * b + j]));
      /* llama.cpp rounds x / (amax/127) and stores d as fp16: error <= d/2 plus |q| times
       * the fp16 rounding of d (<= 127 * d * 2^-11), plus float slack. */
      float bound = fabsf(d) * (0.5f + 127 * 0x1p-11f) + 4 * U * amax + 1e-30f;
      for (int j = 0; j < 32; j++) {
        float e = fabsf(x[32 * b + j] - y[32 * b + j]);
        if (!(e <= bound)) fail_msg("%s block %lld elem %d: err %g > %g", name, (long long)b, j, (double)e, (double)bound);
      }
    }
    /* and our quantizer reproduces the file's block scales (amax/127 rounded to fp16) */
    uint8_t *q = malloc(quant_row_size(QT_Q8_0, ne));
    assert_int_equal(quant_quantize_row(QT_Q8_0, x, q, ne), 0);
    int64_t same = 0;
    for (int64_t b = 0; b < ne / 32; b++) same += !memcmp(q + 34 * b, blk + 34 * b, 34);
    assert_true(same >= (ne / 32) * 99 / 100); /* identical bytes (ties may differ) */
    free(q);
    free(y);
    n_q8++;
  }
  print_message("%d Q8_0 tensors checked against F32\n", n_q8);
  assert_true(n_q8 > 0);
  gguf_close(fq);
  gguf_close(ff);
}

int main(void) {
  quant_init();
  best_isa = quant_isa();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_traits),
      cmocka_unit_test(test_isa_select),
      cmocka_unit_test(test_f16_known),
      cmocka_unit_test(test_bf16_known),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_quantize_simd_exact),
      cmocka_unit_test(test_dot_exact_integer),
      cmocka_unit_test(test_dot_vs_dequant),
      cmocka_unit_test(test_dot_quantization_noise),
      cmocka_unit_test(test_dot_nx),
      cmocka_unit_test(test_dot_rows_long),
      cmocka_unit_test(test_real_q8_0_layout),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
