/* market/rank — ordering provider candidates by expected price and record; see rank.h.
 *
 * Each candidate gets its score from the formula in rank.h; the usable ones are moved to the
 * front, and each part is sorted by a total order: score, recent failures, effective
 * latency, node key and finally the model, so equal inputs always give the same order.
 * Dropped candidates are scored too and ordered the same way among themselves. A cost that
 * overflows 64 bits counts as UINT64_MAX wei. No allocation; pure; thread-safe. */
#include "market/rank.h"

#include <stdlib.h>
#include <string.h>

#define UNKNOWN_LATENCY_MS 1000.0

/* Unknown (negative or NaN) latency counts as 1000 ms. */
static double eff_latency(const mkt_candidate *c) {
  return c->latency_ms >= 0 ? c->latency_ms : UNKNOWN_LATENCY_MS;
}

static int dropped(const mkt_candidate *c, const mkt_rank_params *p) {
  if (c->excluded) return 1;
  if (p->max_price_prompt && c->offer.price_prompt > p->max_price_prompt) return 1;
  if (p->max_price_gen && c->offer.price_gen > p->max_price_gen) return 1;
  return 0;
}

static double score(const mkt_candidate *c, const mkt_rank_params *p) {
  uint64_t base;
  if (mkt_cost(p->prompt_est, p->gen_est, c->offer.price_prompt, c->offer.price_gen, &base))
    base = UINT64_MAX; /* beyond 64 bits: as expensive as can be expressed */
  double penalty = 1.0 + 0.5 * (double)c->recent_failures + 2.0 * (double)c->mismatches;
  return ((double)base + 1.0) * penalty * (1.0 + eff_latency(c) / 1000.0);
}

static int cmp(const void *pa, const void *pb) {
  const mkt_candidate *a = pa, *b = pb;
  if (a->score != b->score) return a->score < b->score ? -1 : 1;
  if (a->recent_failures != b->recent_failures) return a->recent_failures < b->recent_failures ? -1 : 1;
  double la = eff_latency(a), lb = eff_latency(b);
  if (la != lb) return la < lb ? -1 : 1;
  int k = memcmp(a->node, b->node, 32);
  if (k) return k;
  return memcmp(a->offer.model, b->offer.model, 32);
}

size_t mkt_rank(mkt_candidate *c, size_t n, const mkt_rank_params *p) {
  size_t usable = 0;
  for (size_t i = 0; i < n; i++) {
    c[i].score = score(&c[i], p);
    if (!dropped(&c[i], p)) {
      mkt_candidate t = c[i];
      c[i] = c[usable];
      c[usable++] = t;
    }
  }
  if (usable > 1) qsort(c, usable, sizeof *c, cmp);
  if (n - usable > 1) qsort(c + usable, n - usable, sizeof *c, cmp);
  return usable;
}
