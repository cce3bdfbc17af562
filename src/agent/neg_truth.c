/* agent/neg_truth — ground truth by enumeration (see neg_truth.h). */
#include "agent/neg_truth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

typedef struct pt {
  double ua, ub;
} pt;

static int by_ua_desc(const void *x, const void *y) {
  const pt *a = x, *b = y;
  if (a->ua != b->ua) return a->ua > b->ua ? -1 : 1;
  return a->ub > b->ub ? -1 : a->ub < b->ub;
}

double neg_nash_product(double ua, double ra, double ub, double rb) {
  if (ua < ra || ub < rb) return 0;
  return (ua - ra) * (ub - rb);
}

int neg_truth_compute(const neg_domain *d, const neg_prefs *a, const neg_prefs *b, neg_truth *out) {
  memset(out, 0, sizeof *out);
  size_t n = neg_domain_n_bids(d);
  if (n > NEG_MAX_BIDS) return ERR_TOOBIG;
  pt *p = malloc(n * sizeof *p);
  if (!p) return ERR_NOMEM;
  out->n_bids = n;
  out->nash_product = -1;
  for (size_t i = 0; i < n; i++) {
    neg_bid bid;
    neg_bid_from_index(d, i, &bid);
    p[i].ua = neg_utility(d, a, &bid);
    p[i].ub = neg_utility(d, b, &bid);
    if (p[i].ua >= a->reservation && p[i].ub >= b->reservation) {
      out->zopa = 1;
      double np = (p[i].ua - a->reservation) * (p[i].ub - b->reservation);
      if (np > out->nash_product) {
        out->nash_product = np;
        out->nash = bid;
        out->nash_ua = p[i].ua;
        out->nash_ub = p[i].ub;
      }
    }
  }
  if (!out->zopa) out->nash_product = 0;
  qsort(p, n, sizeof *p, by_ua_desc);
  out->pareto_ua = malloc(n * sizeof(double));
  out->pareto_ub = malloc(n * sizeof(double));
  if (!out->pareto_ua || !out->pareto_ub) {
    free(p);
    neg_truth_deinit(out);
    return ERR_NOMEM;
  }
  /* Sweep by u_a descending: a point is on the frontier when its u_b beats every point
   * with a larger (or equal) u_a seen so far. */
  double best_ub = -1;
  for (size_t i = 0; i < n; i++)
    if (p[i].ub > best_ub) {
      best_ub = p[i].ub;
      out->pareto_ua[out->n_pareto] = p[i].ua;
      out->pareto_ub[out->n_pareto++] = p[i].ub;
    }
  free(p);
  return 0;
}

void neg_truth_deinit(neg_truth *t) {
  free(t->pareto_ua);
  free(t->pareto_ub);
  t->pareto_ua = t->pareto_ub = NULL;
  t->n_pareto = 0;
}

double neg_truth_pareto_distance(const neg_truth *t, double ua, double ub) {
  double best = INFINITY;
  for (size_t i = 0; i < t->n_pareto; i++) {
    double dx = t->pareto_ua[i] - ua, dy = t->pareto_ub[i] - ub;
    double dd = sqrt(dx * dx + dy * dy);
    if (dd < best) best = dd;
  }
  return t->n_pareto ? best : 0;
}
