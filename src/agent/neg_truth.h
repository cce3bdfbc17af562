/* agent/neg_truth — the ground truth of a two-sided negotiation by enumeration: every bid's
 * utility to both sides, whether a zone of agreement exists (a bid at or above both
 * reservations), the Nash point (the bid maximising (u_a - r_a)(u_b - r_b) over that zone),
 * the Pareto frontier, and an outcome's distance to that frontier.
 *
 * Outcome spaces up to NEG_MAX_BIDS bids; larger ones return ERR_TOOBIG. The struct owns its
 * frontier arrays (neg_truth_deinit). Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_TRUTH_H
#define APIARY_AGENT_NEG_TRUTH_H

#include "agent/neg_scenario.h"

typedef struct neg_truth {
  size_t n_bids;        /* outcome space size */
  int zopa;             /* 1 if some bid has u_a >= r_a and u_b >= r_b */
  neg_bid nash;         /* the Nash bid (valid when zopa) */
  double nash_ua, nash_ub, nash_product;
  size_t n_pareto;      /* frontier points, sorted by u_a descending */
  double *pareto_ua;    /* owned, n_pareto entries */
  double *pareto_ub;    /* owned */
} neg_truth;

/* Computes the truth for prefs a and b over d. 0, ERR_TOOBIG or ERR_NOMEM. */
int neg_truth_compute(const neg_domain *d, const neg_prefs *a, const neg_prefs *b, neg_truth *out);
void neg_truth_deinit(neg_truth *t);
/* Euclidean distance in utility space from (ua, ub) to the nearest frontier point. */
double neg_truth_pareto_distance(const neg_truth *t, double ua, double ub);
/* (ua - ra)(ub - rb) for an outcome, 0 when either side is under its reservation. */
double neg_nash_product(double ua, double ra, double ub, double rb);

#endif
