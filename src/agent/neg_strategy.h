/* agent/neg_strategy — bidding strategies for the alternating-offers engine.
 *
 * Every strategy keeps this side's acceptable bids (the required terms hold and the utility
 * is at or above the reservation) sorted by its own utility, and a concession curve from the
 * best of them down to the reservation at the deadline:
 *     target(t) = r + (u_max - r) * (1 - t^(1/e)),   t = round / (deadline - 1)
 * boulware (e = 0.2, holds firm then concedes late), linear (e = 1), conceder (e = 2).
 * The bid sent is, among the bids whose utility lies in a band just above the target, the
 * one the opponent is estimated to like best:
 *   - time-based strategies (boulware, linear, conceder) estimate by similarity to the
 *     opponent's last offer (band 0.02);
 *   - pareto models the opponent from its moves (frequency model: an issue whose value the
 *     opponent rarely changes weighs more, a value it offers often scores higher), searches
 *     the iso-utility band (0.05) for the bid best for that estimate, concedes on a e = 0.5
 *     curve, and re-offers the opponent's best offer so far once that meets its target;
 *     it also accepts any offer at least as good for it as the Nash point estimated by a
 *     cautious variant of the model (neg_strategy_accept_level).
 * Strategies propose bids and an acceptance level; the engine decides acceptance, and
 * every bid and accept still passes neg_mandate_check. Deterministic for a seed (ties). Opaque handle; one thread at a time;
 * no allocation after neg_strategy_new. */
#ifndef APIARY_AGENT_NEG_STRATEGY_H
#define APIARY_AGENT_NEG_STRATEGY_H

#include "agent/neg_scenario.h"

typedef enum neg_strategy_kind {
  NEG_STRAT_BOULWARE = 1,
  NEG_STRAT_LINEAR,
  NEG_STRAT_CONCEDER,
  NEG_STRAT_PARETO,
} neg_strategy_kind;

typedef struct neg_strategy neg_strategy;

/* "boulware", "linear", "conceder", "pareto" -> kind; 0 or ERR_INVAL. */
int neg_strategy_parse(const char *name, neg_strategy_kind *out);
const char *neg_strategy_name(neg_strategy_kind k);

/* Borrows d and m (they must outlive the strategy). Returns 0, ERR_TOOBIG (outcome space
 * over NEG_MAX_BIDS), ERR_NOMEM, or ERR_RANGE when no bid is acceptable to the mandate. */
int neg_strategy_new(neg_strategy_kind k, const neg_domain *d, const neg_mandate *m, uint64_t seed, neg_strategy **out);
void neg_strategy_free(neg_strategy *s);
/* Tells the strategy the opponent offered b. */
void neg_strategy_observe(neg_strategy *s, const neg_bid *b);
/* The bid to offer at round (this side's clock). Never fails: at worst the best bid. */
void neg_strategy_propose(neg_strategy *s, int round, neg_bid *out);
/* The counterpart announced it stops after rounds: concede over min(own deadline, rounds). */
void neg_strategy_set_horizon(neg_strategy *s, int rounds);
/* The concession target at round. */
double neg_strategy_target(const neg_strategy *s, int round);
/* Pareto: accept any offer worth at least this much to us, whatever we would bid next: our
 * own utility at the Nash point as a cautious model estimates it (a value the opponent has
 * not offered yet counts as middling for it, not as worthless). INFINITY for the time-based
 * strategies and before the opponent's second offer. */
double neg_strategy_accept_level(const neg_strategy *s);
/* The strategy's estimate of the opponent's utility of b, in [0,1]. */
double neg_strategy_estimate(const neg_strategy *s, const neg_bid *b);

#endif
