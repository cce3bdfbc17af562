/* llm/sample: greedy and top-k=1 are the argmax, seeds are deterministic, top-k/top-p/
 * min-p/temperature on hand-built distributions with known survivors, penalty formulas and
 * the penalty window, and draw frequencies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/sample.h"

#define NV 1000

static uint64_t rng = 0x243f6a8885a308d3ull;
static float frand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 40) / 16777216.0) * 10.0f - 5.0f;
}

static void random_logits(float *l, int n) {
  for (int i = 0; i < n; i++) l[i] = frand();
}

/* Only the chosen filter on: no top-k/top-p/min-p, no penalties, temperature 1. */
static sample_params plain(void) {
  sample_params p = sample_default_params();
  p.temp = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

static void test_greedy_is_argmax(void **state) {
  (void)state;
  sample_params p = sample_default_params();
  p.temp = 0;
  sampler *s;
  assert_int_equal(sample_new(NV, &p, &s), 0);
  float l[NV], c[NV];
  for (int it = 0; it < 50; it++) {
    random_logits(l, NV);
    int best = 0;
    for (int i = 1; i < NV; i++)
      if (l[i] > l[best]) best = i;
    memcpy(c, l, sizeof l);
    assert_int_equal(sample_next(s, c), best);
    assert_int_equal(sample_argmax(l, NV), best);
  }
  /* ties go to the lower id */
  float t[4] = {1, 3, 3, 2};
  assert_int_equal(sample_argmax(t, 4), 1);
  sample_free(s);
}

static void test_top_k1_is_greedy(void **state) {
  (void)state;
  sample_params p = sample_default_params(); /* temp 0.8, top-p 0.95, min-p 0.05 */
  p.top_k = 1;
  float l[NV], c[NV];
  for (int seed = 0; seed < 20; seed++) {
    p.seed = (uint64_t)seed;
    sampler *s;
    assert_int_equal(sample_new(NV, &p, &s), 0);
    random_logits(l, NV);
    memcpy(c, l, sizeof l);
    assert_int_equal(sample_next(s, c), sample_argmax(l, NV));
    sample_free(s);
  }
}

static void draw_seq(uint64_t seed, int32_t *out, int n) {
  sample_params p = plain();
  p.seed = seed;
  sampler *s;
  assert_int_equal(sample_new(NV, &p, &s), 0);
  float l[NV], c[NV];
  uint64_t keep = rng;
  rng = 0x1234567ull; /* the same logits for every seed */
  random_logits(l, NV);
  rng = keep;
  for (int i = 0; i < NV; i++) l[i] *= 0.3f; /* flat enough that draws vary */
  for (int i = 0; i < n; i++) {
    memcpy(c, l, sizeof l);
    out[i] = sample_next(s, c);
  }
  sample_free(s);
}

static void test_seed_determinism(void **state) {
  (void)state;
  int32_t a[64], b[64], c[64];
  draw_seq(42, a, 64);
  draw_seq(42, b, 64);
  draw_seq(43, c, 64);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
}

static void test_reset_restarts(void **state) {
  (void)state;
  sample_params p = plain();
  p.seed = 7;
  sampler *s;
  assert_int_equal(sample_new(NV, &p, &s), 0);
  double u1 = sample_uniform(s), u2 = sample_uniform(s);
  assert_true(u1 >= 0 && u1 < 1 && u2 >= 0 && u2 < 1 && u1 != u2);
  sample_reset(s);
  assert_true(sample_uniform(s) == u1);
  sample_free(s);
}

/* p = {0.5, 0.2, 0.15, 0.1, 0.05} as logits (log p). */
static void five(float *l) {
  const double p[5] = {0.5, 0.2, 0.15, 0.1, 0.05};
  for (int i = 0; i < 5; i++) l[i] = (float)log(p[i]);
}

/* Runs the filters on five() and copies the survivors out (*c points at a static copy). */
static int survivors(sample_params p, const sample_cand **c) {
  static sample_cand copy[5];
  sampler *s;
  assert_int_equal(sample_new(5, &p, &s), 0);
  float l[5];
  five(l);
  const sample_cand *sc;
  int n = sample_candidates(s, l, &sc);
  assert_true(n >= 1 && n <= 5);
  memcpy(copy, sc, (size_t)n * sizeof *sc);
  sample_free(s);
  *c = copy;
  return n;
}

static void test_top_p(void **state) {
  (void)state;
  const sample_cand *c;
  sample_params p = plain();
  p.top_p = 0.75f; /* cumulative 0.5, 0.7, 0.85: the third crosses 0.75 */
  assert_int_equal(survivors(p, &c), 3);
  assert_int_equal(c[0].id, 0);
  assert_int_equal(c[1].id, 1);
  assert_int_equal(c[2].id, 2);
  assert_float_equal(c[0].p, 0.5 / 0.85, 1e-5);
  assert_float_equal(c[2].p, 0.15 / 0.85, 1e-5);
  p.top_p = 0.45f;
  assert_int_equal(survivors(p, &c), 1);
  assert_float_equal(c[0].p, 1.0, 1e-6);
  p.top_p = 0.9f; /* 0.85 < 0.9 <= 0.95 */
  assert_int_equal(survivors(p, &c), 4);
  p.top_p = 1.0f;
  assert_int_equal(survivors(p, &c), 5);
}

static int cmp_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x > y ? -1 : x < y;
}

/* top-p without top-k on a large vocabulary (selected progressively, not fully sorted)
 * keeps exactly the brute-force prefix. */
static void test_top_p_large(void **state) {
  (void)state;
  float l[NV], sorted[NV], work[NV];
  for (int it = 0; it < 6; it++) {
    random_logits(l, NV);
    for (int i = 0; i < NV; i++) l[i] *= (float)(it + 1) * 0.4f; /* flat to peaked */
    memcpy(sorted, l, sizeof l);
    qsort(sorted, NV, sizeof *sorted, cmp_desc);
    double sum = 0, cum = 0;
    for (int i = 0; i < NV; i++) sum += exp((double)sorted[i] - sorted[0]);
    const float top_p = 0.9f;
    int want = NV;
    for (int i = 0; i < NV; i++) {
      cum += exp((double)sorted[i] - sorted[0]) / sum;
      if (cum >= top_p) {
        want = i + 1;
        break;
      }
    }
    sample_params p = plain();
    p.top_p = top_p;
    sampler *s;
    assert_int_equal(sample_new(NV, &p, &s), 0);
    memcpy(work, l, sizeof l);
    const sample_cand *c;
    int n = sample_candidates(s, work, &c);
    if (abs(n - want) > 1) fail_msg("top-p kept %d, brute force %d", n, want); /* float vs double cumsum */
    for (int i = 0; i < n; i++) assert_float_equal(c[i].logit, sorted[i], 0);
    sample_free(s);
  }
}

static void test_min_p(void **state) {
  (void)state;
  const sample_cand *c;
  sample_params p = plain();
  p.min_p = 0.35f; /* keep p >= 0.175: 0.5, 0.2 */
  assert_int_equal(survivors(p, &c), 2);
  assert_int_equal(c[0].id, 0);
  assert_int_equal(c[1].id, 1);
  assert_float_equal(c[0].p, 0.5 / 0.7, 1e-5);
  p.min_p = 0.25f; /* keep p >= 0.125: three */
  assert_int_equal(survivors(p, &c), 3);
  p.min_p = 0.05f; /* 0.025: all */
  assert_int_equal(survivors(p, &c), 5);
}

static void test_top_k_and_temp(void **state) {
  (void)state;
  const sample_cand *c;
  sample_params p = plain();
  p.top_k = 2;
  assert_int_equal(survivors(p, &c), 2);
  assert_int_equal(c[0].id, 0);
  assert_int_equal(c[1].id, 1);
  assert_float_equal(c[0].p, 0.5 / 0.7, 1e-5);
  /* temperature 2: p proportional to sqrt(p) */
  p = plain();
  p.temp = 2.0f;
  assert_int_equal(survivors(p, &c), 5);
  double z = sqrt(0.5) + sqrt(0.2) + sqrt(0.15) + sqrt(0.1) + sqrt(0.05);
  assert_float_equal(c[0].p, sqrt(0.5) / z, 1e-5);
  assert_float_equal(c[4].p, sqrt(0.05) / z, 1e-5);
  /* combined, in chain order: top-k 4, top-p 0.75 over those (renormalized 0.5/0.95...) */
  p = plain();
  p.top_k = 4;
  p.top_p = 0.75f; /* 0.526, 0.737, 0.895: three */
  assert_int_equal(survivors(p, &c), 3);
}

static void test_penalties(void **state) {
  (void)state;
  sample_params p = plain();
  p.repeat_penalty = 1.5f;
  p.freq_penalty = 0.1f;
  p.presence_penalty = 0.2f;
  p.penalty_last_n = 8;
  sampler *s;
  assert_int_equal(sample_new(10, &p, &s), 0);
  sample_accept(s, 3);
  sample_accept(s, 3);
  sample_accept(s, 5);
  float l[10] = {1, 1, 1, 2.0f, 1, -1.0f, 1, 1, 1, 1};
  sample_apply_penalties(s, l);
  assert_float_equal(l[3], 2.0f / 1.5f - 2 * 0.1f - 0.2f, 1e-6); /* positive: divided */
  assert_float_equal(l[5], -1.0f * 1.5f - 1 * 0.1f - 0.2f, 1e-6); /* negative: multiplied */
  for (int i = 0; i < 10; i++)
    if (i != 3 && i != 5) assert_float_equal(l[i], 1.0f, 0);
  sample_free(s);

  /* the window: only the last 2 accepted tokens count */
  p.penalty_last_n = 2;
  assert_int_equal(sample_new(10, &p, &s), 0);
  sample_accept(s, 3);
  sample_accept(s, 3);
  sample_accept(s, 5); /* window now [3, 5] */
  float m[10] = {0};
  m[3] = 2.0f;
  m[7] = 2.0f;
  sample_apply_penalties(s, m);
  assert_float_equal(m[3], 2.0f / 1.5f - 0.1f - 0.2f, 1e-6);
  assert_float_equal(m[7], 2.0f, 0);
  assert_float_equal(m[5], 0.0f * 1.5f - 0.1f - 0.2f, 1e-6); /* 0 counts as non-positive */
  sample_reset(s);
  float r[10] = {0};
  r[3] = 2.0f;
  sample_apply_penalties(s, r);
  assert_float_equal(r[3], 2.0f, 0);
  sample_free(s);

  /* greedy honours penalties: the repeated favourite loses to the runner-up */
  p = plain();
  p.temp = 0;
  p.repeat_penalty = 2.0f;
  assert_int_equal(sample_new(4, &p, &s), 0);
  float g[4] = {0, 3.0f, 2.0f, 0};
  sample_accept(s, 1);
  assert_int_equal(sample_next(s, g), 2);
  sample_free(s);
}

static void test_draw_frequencies(void **state) {
  (void)state;
  sample_params p = plain();
  p.seed = 99;
  sampler *s;
  assert_int_equal(sample_new(3, &p, &s), 0);
  int cnt[3] = {0};
  const int n = 30000;
  for (int i = 0; i < n; i++) {
    float l[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    cnt[sample_next(s, l)]++;
  }
  assert_float_equal(cnt[0] / (double)n, 0.5, 0.015);
  assert_float_equal(cnt[1] / (double)n, 0.3, 0.015);
  assert_float_equal(cnt[2] / (double)n, 0.2, 0.015);
  sample_free(s);
}

static void test_bad_params(void **state) {
  (void)state;
  sampler *s;
  sample_params p = plain();
  assert_int_equal(sample_new(0, &p, &s), ERR_INVAL);
  p.repeat_penalty = 0;
  assert_int_equal(sample_new(10, &p, &s), ERR_INVAL);
  p = plain();
  p.penalty_last_n = SAMPLE_MAX_LAST_N + 1;
  assert_int_equal(sample_new(10, &p, &s), ERR_INVAL);
  p.temp = NAN;
  p.penalty_last_n = 4;
  assert_int_equal(sample_new(10, &p, &s), ERR_INVAL);
  sample_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_greedy_is_argmax), cmocka_unit_test(test_top_k1_is_greedy),
      cmocka_unit_test(test_seed_determinism), cmocka_unit_test(test_reset_restarts),
      cmocka_unit_test(test_top_p),            cmocka_unit_test(test_top_p_large),
      cmocka_unit_test(test_min_p),
      cmocka_unit_test(test_top_k_and_temp),   cmocka_unit_test(test_penalties),
      cmocka_unit_test(test_draw_frequencies), cmocka_unit_test(test_bad_params),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
