/* agent/neg_strategy — concession curves and opponent models (see neg_strategy.h). */
#include "agent/neg_strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/neg_gen.h"
#include "core/err.h"

typedef struct scored {
  neg_bid b;
  double u;      /* own utility */
} scored;

struct neg_strategy {
  neg_strategy_kind kind;
  const neg_domain *d;     /* borrowed */
  const neg_mandate *m;    /* borrowed */
  uint64_t rng;
  scored *bids;            /* owned: acceptable bids, own utility descending */
  size_t n;
  double e, band;
  int horizon;             /* rounds the concession curve spans: min(deadline, counterpart's) */
  int n_seen;              /* opponent offers observed */
  neg_bid last;            /* the opponent's last offer */
  neg_bid best_theirs;     /* the opponent's offer best for us so far */
  double best_theirs_u;
  double nash_u;           /* pareto: own utility at the cautiously estimated Nash point */
  double w_est[NEG_MAX_ISSUES];                 /* frequency model: issue weights */
  uint32_t count[NEG_MAX_ISSUES][NEG_MAX_VALUES];
  uint32_t count_max[NEG_MAX_ISSUES];
};

/* Pareto explores the iso-utility band (teaching its model) for this share of the time,
 * then seeks the estimated Nash bid. */
#ifndef NEG_EXPLORE
#define NEG_EXPLORE 0.3
#endif
/* The cautious model (acceptance only) scores a value the opponent has not offered yet as
 * middling for it, not near 0 as the bidding model does: it may still concede it. 0.55 sits
 * in the middle of the range (about 0.49-0.6) over which ANAC Laptop self-play reaches its
 * Nash point whichever side opens; the bench does not move across that range. */
#ifndef NEG_UNSEEN
#define NEG_UNSEEN 0.55
#endif

static const char *names[] = {"", "boulware", "linear", "conceder", "pareto"};

int neg_strategy_parse(const char *name, neg_strategy_kind *out) {
  for (int k = 1; k <= NEG_STRAT_PARETO; k++)
    if (!strcmp(name, names[k])) {
      *out = (neg_strategy_kind)k;
      return 0;
    }
  return ERR_INVAL;
}

const char *neg_strategy_name(neg_strategy_kind k) { return k >= 1 && k <= NEG_STRAT_PARETO ? names[k] : "?"; }

static int by_u_desc(const void *x, const void *y) {
  const scored *a = x, *b = y;
  if (a->u != b->u) return a->u > b->u ? -1 : 1;
  return memcmp(a->b.v, b->b.v, sizeof a->b.v);
}

static int allowed(const neg_domain *d, const neg_mandate *m, const neg_bid *b) {
  for (int i = 0; i < d->n_issues; i++)
    if (!(m->allowed[i] >> b->v[i] & 1)) return 0;
  return 1;
}

int neg_strategy_new(neg_strategy_kind k, const neg_domain *d, const neg_mandate *m, uint64_t seed, neg_strategy **out) {
  *out = NULL;
  size_t total = neg_domain_n_bids(d);
  if (total > NEG_MAX_BIDS) return ERR_TOOBIG;
  if (k < NEG_STRAT_BOULWARE || k > NEG_STRAT_PARETO) return ERR_INVAL;
  neg_strategy *s = calloc(1, sizeof *s);
  if (!s || !(s->bids = malloc(total * sizeof *s->bids))) {
    free(s);
    return ERR_NOMEM;
  }
  s->kind = k;
  s->d = d;
  s->m = m;
  s->rng = seed ^ 0x6e65676f74696174ull;
  for (size_t i = 0; i < total; i++) {
    neg_bid b;
    neg_bid_from_index(d, i, &b);
    double u = neg_utility(d, &m->prefs, &b);
    if (u >= m->prefs.reservation && allowed(d, m, &b)) s->bids[s->n++] = (scored){b, u};
  }
  if (!s->n) {
    neg_strategy_free(s);
    return ERR_RANGE;
  }
  qsort(s->bids, s->n, sizeof *s->bids, by_u_desc);
  s->e = k == NEG_STRAT_BOULWARE ? 0.2 : k == NEG_STRAT_CONCEDER ? 2.0 : k == NEG_STRAT_PARETO ? 0.5 : 1.0;
  s->band = k == NEG_STRAT_PARETO ? 0.05 : 0.02;
  for (int i = 0; i < d->n_issues; i++) s->w_est[i] = 1.0 / d->n_issues;
  s->best_theirs_u = -1;
  s->horizon = m->deadline;
  *out = s;
  return 0;
}

void neg_strategy_free(neg_strategy *s) {
  if (!s) return;
  free(s->bids);
  free(s);
}

/* The cautious estimate: like neg_strategy_estimate, but an unseen value scores
 * NEG_UNSEEN and a seen one NEG_UNSEEN + (1 - NEG_UNSEEN) * sqrt(count / most offered). */
static double estimate_cautious(const neg_strategy *s, const neg_bid *b) {
  double e = 0;
  for (int i = 0; i < s->d->n_issues; i++)
    e += s->w_est[i] * (NEG_UNSEEN + (1 - NEG_UNSEEN) * sqrt((double)s->count[i][b->v[i]] / s->count_max[i]));
  return e;
}

/* Pareto: own utility at the bid with the largest cautiously estimated Nash product. */
static double nash_utility(const neg_strategy *s) {
  double r = s->m->prefs.reservation, best = -1, u = INFINITY;
  for (size_t j = 0; j < s->n; j++) {
    double np = (s->bids[j].u - r) * estimate_cautious(s, &s->bids[j].b);
    if (np > best) best = np, u = s->bids[j].u;
  }
  return u;
}

void neg_strategy_observe(neg_strategy *s, const neg_bid *b) {
  const neg_domain *d = s->d;
  if (s->n_seen) {
    /* Issues the opponent keeps fixed matter to it: raise their weight, then normalise. */
    double sum = 0;
    for (int i = 0; i < d->n_issues; i++) {
      if (b->v[i] == s->last.v[i]) s->w_est[i] += 0.1 / d->n_issues;
      sum += s->w_est[i];
    }
    for (int i = 0; i < d->n_issues; i++) s->w_est[i] /= sum;
  }
  for (int i = 0; i < d->n_issues; i++) {
    uint32_t c = ++s->count[i][b->v[i]];
    if (c > s->count_max[i]) s->count_max[i] = c;
  }
  s->last = *b;
  s->n_seen++;
  if (s->kind == NEG_STRAT_PARETO) s->nash_u = nash_utility(s);
  double u = neg_utility(d, &s->m->prefs, b);
  if (u > s->best_theirs_u && allowed(d, s->m, b)) {
    s->best_theirs_u = u;
    s->best_theirs = *b;
  }
}

double neg_strategy_estimate(const neg_strategy *s, const neg_bid *b) {
  const neg_domain *d = s->d;
  if (!s->n_seen) return 0;
  double e = 0;
  if (s->kind != NEG_STRAT_PARETO) {
    for (int i = 0; i < d->n_issues; i++) e += b->v[i] == s->last.v[i];
    return e / d->n_issues;
  }
  for (int i = 0; i < d->n_issues; i++) e += s->w_est[i] * sqrt((s->count[i][b->v[i]] + 1.0) / (s->count_max[i] + 1.0));
  return e;
}

double neg_strategy_target(const neg_strategy *s, int round) {
  double r = s->m->prefs.reservation, umax = s->bids[0].u;
  double t = s->horizon > 1 ? (double)round / (s->horizon - 1) : 1;
  if (t < 0) t = 0;
  if (t > 1) t = 1;
  return r + (umax - r) * (1 - pow(t, 1 / s->e));
}

double neg_strategy_accept_level(const neg_strategy *s) {
  /* The weights are learnt from consecutive offers: one offer alone says too little. */
  return s->kind == NEG_STRAT_PARETO && s->n_seen >= 2 ? s->nash_u : INFINITY;
}

void neg_strategy_set_horizon(neg_strategy *s, int rounds) {
  if (rounds >= 1 && rounds < s->horizon) s->horizon = rounds;
}

/* Pareto: among all bids at or above the target, the one with the largest estimated Nash
 * product (own utility over the reservation, times the opponent estimate). */
static void propose_nash(neg_strategy *s, int round, double target, neg_bid *out) {
  double r = s->m->prefs.reservation, best = -1;
  double t = s->horizon > 1 ? (double)round / (s->horizon - 1) : 1;
  double top = target + (t < 1 ? 1 - t : 0) * (s->bids[0].u - r) + s->band;
  size_t pick = (size_t)-1;
  for (size_t j = 0; j < s->n && s->bids[j].u >= target; j++) {
    if (s->bids[j].u > top) continue;
    double est = neg_strategy_estimate(s, &s->bids[j].b);
    double score = (s->bids[j].u - r + 1e-3) * (est + 1e-3) + 1e-12 * neg_rand_unit(&s->rng);
    if (score > best) {
      best = score;
      pick = j;
    }
  }
  if (pick == (size_t)-1) { /* nothing in the window: the lowest bid at or above the target */
    pick = 0;
    while (pick + 1 < s->n && s->bids[pick + 1].u >= target) pick++;
  }
  *out = s->bids[pick].b;
}

void neg_strategy_propose(neg_strategy *s, int round, neg_bid *out) {
  double target = neg_strategy_target(s, round);
  if (s->kind == NEG_STRAT_PARETO && s->best_theirs_u >= target) {
    *out = s->best_theirs;
    return;
  }
  double t = s->horizon > 1 ? (double)round / (s->horizon - 1) : 1;
  if (s->kind == NEG_STRAT_PARETO && s->n_seen && t >= NEG_EXPLORE) {
    propose_nash(s, round, target, out);
    return;
  }
  /* k: the last bid at or above the target (bids are sorted descending). */
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->bids[mid].u >= target) lo = mid + 1;
    else hi = mid;
  }
  size_t k = lo ? lo - 1 : 0;
  double top = s->bids[k].u + s->band, best = -1;
  size_t pick = k;
  for (size_t j = k + 1; j-- > 0 && s->bids[j].u <= top;) {
    double est = neg_strategy_estimate(s, &s->bids[j].b) + 1e-9 * neg_rand_unit(&s->rng);
    if (est > best) {
      best = est;
      pick = j;
    }
  }
  *out = s->bids[pick].b;
}
