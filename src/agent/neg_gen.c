/* agent/neg_gen — seeded scenario generator (see neg_gen.h). */
#include "agent/neg_gen.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

uint64_t neg_rand_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double neg_rand_unit(uint64_t *s) { return (double)(neg_rand_next(s) >> 11) * (1.0 / 9007199254740992.0); }

static int rand_int(uint64_t *s, int lo, int hi) { return lo + (int)(neg_rand_next(s) % (uint64_t)(hi - lo + 1)); }

/* Random weights summing to 1, none tiny. */
static void weights(uint64_t *s, int n, double *w) {
  double sum = 0;
  for (int i = 0; i < n; i++) sum += (w[i] = 0.2 + neg_rand_unit(s));
  for (int i = 0; i < n; i++) w[i] /= sum;
}

int neg_gen_scenario(uint64_t seed, int want_zopa, neg_scenario *out) {
  uint64_t s = seed * 0x2545f4914f6cdd1dull + 1;
  memset(out, 0, sizeof *out);
  neg_domain *d = &out->dom;
  snprintf(d->name, sizeof d->name, "gen-%llu", (unsigned long long)seed);
  d->n_issues = rand_int(&s, 2, 5);
  snprintf(out->side_name[0], NEG_MAX_NAME, "a");
  snprintf(out->side_name[1], NEG_MAX_NAME, "b");
  for (int k = 0; k < 2; k++) neg_mandate_default(d, 1, &out->side[k]);
  for (int i = 0; i < d->n_issues; i++) {
    neg_issue *is = &d->issues[i];
    snprintf(is->name, sizeof is->name, "issue%d", i);
    is->n_values = rand_int(&s, 3, 7);
    for (int v = 0; v < is->n_values; v++) snprintf(is->values[v], NEG_MAX_NAME, "v%d", v);
    out->side[0].allowed[i] = out->side[1].allowed[i] = (1ull << is->n_values) - 1;
    int opposed = neg_rand_unit(&s) < 0.5;
    for (int v = 0; v < is->n_values; v++) {
      double x = (double)v / (is->n_values - 1);
      if (opposed) {
        out->side[0].prefs.score[i][v] = x;
        out->side[1].prefs.score[i][v] = 1 - x;
      } else {
        out->side[0].prefs.score[i][v] = neg_rand_unit(&s);
        out->side[1].prefs.score[i][v] = neg_rand_unit(&s);
      }
    }
    /* Every side has a best value scored 1 (normalised preferences). */
    for (int k = 0; k < 2; k++) {
      double mx = 0;
      for (int v = 0; v < is->n_values; v++)
        if (out->side[k].prefs.score[i][v] > mx) mx = out->side[k].prefs.score[i][v];
      for (int v = 0; v < is->n_values; v++) out->side[k].prefs.score[i][v] = mx > 0 ? out->side[k].prefs.score[i][v] / mx : 1;
    }
  }
  for (int k = 0; k < 2; k++) {
    weights(&s, d->n_issues, out->side[k].prefs.weight);
    out->side[k].deadline = rand_int(&s, 20, 100);
  }
  /* Reservations: r_a first, then the best u_b among bids r_a allows (M). A zone exists
   * when r_b <= M; none when r_b > M. */
  double ra = 0.15 + 0.4 * neg_rand_unit(&s), m = -1;
  size_t n = neg_domain_n_bids(d);
  for (size_t i = 0; i < n; i++) {
    neg_bid b;
    neg_bid_from_index(d, i, &b);
    if (neg_utility(d, &out->side[0].prefs, &b) >= ra) {
      double ub = neg_utility(d, &out->side[1].prefs, &b);
      if (ub > m) m = ub;
    }
  }
  double rb;
  if (want_zopa) rb = m * (0.15 + 0.6 * neg_rand_unit(&s));
  else {
    rb = m + 0.02 + 0.15 * neg_rand_unit(&s);
    if (rb > 0.98) return ERR_RANGE;
  }
  out->side[0].prefs.reservation = ra;
  out->side[1].prefs.reservation = rb;
  return 0;
}
