/* agent/neg_gen — seeded generator of negotiation scenarios for the simulator and the
 * benchmark: 2-5 issues of 3-7 values, about half of the issues opposed (what one side likes
 * the other dislikes, as a price is) and the rest random, random weights, deadlines of 20-100
 * rounds, and reservations chosen from the enumerated outcome space so that a requested
 * share of scenarios has no zone of agreement (the label is then checked by enumeration).
 *
 * Deterministic: the same seed gives the same scenario on every platform (splitmix64).
 * Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_GEN_H
#define APIARY_AGENT_NEG_GEN_H

#include "agent/neg_scenario.h"

/* A small deterministic PRNG (splitmix64) the strategies use too. */
uint64_t neg_rand_next(uint64_t *state);
/* Uniform in [0,1). */
double neg_rand_unit(uint64_t *state);

/* Generates scenario number seed. want_zopa: 1 = a zone of agreement exists, 0 = none.
 * Returns 0, or ERR_RANGE when the drawn preferences cannot give the wanted label (the
 * caller tries the next seed). */
int neg_gen_scenario(uint64_t seed, int want_zopa, neg_scenario *out);

#endif
