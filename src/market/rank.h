/* market/rank — choosing a provider.
 *
 * A candidate is a provider offering the wanted model, with what this node has measured of
 * it. Ranking (best first) orders candidates by an expected price per request, inflated by
 * the provider's record:
 *
 *   base    = mkt_cost(prompt_est, gen_est, price_prompt, price_gen)       (wei)
 *   penalty = 1 + 0.5 * recent_failures + 2 * mismatches
 *   score   = (base + 1) * penalty * (1 + latency_ms / 1000)
 *
 * lower is better; ties go to fewer failures, then lower latency, then the smaller node key
 * (so the order is deterministic). Candidates over the client's price limits
 * (max_price_prompt / max_price_gen per 1k tokens; 0 = no limit) and candidates marked
 * excluded (already tried for this request, or failed the Registry check) are dropped.
 * latency_ms < 0 means never measured: counted as 1000 ms. recent_failures decays: the
 * caller passes failures seen in the last 10 minutes.
 * Pure functions. */
#ifndef APIARY_MARKET_RANK_H
#define APIARY_MARKET_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "market/offer.h"

typedef struct mkt_candidate {
  uint8_t node[32];           /* provider's Ed25519 key */
  mkt_offer offer;
  double latency_ms;          /* EWMA of time to first token (or ping RTT); < 0 unknown */
  uint32_t recent_failures;
  uint32_t mismatches;        /* verification mismatches ever recorded */
  int excluded;               /* 1: do not use */
  double score;               /* set by mkt_rank */
} mkt_candidate;

typedef struct mkt_rank_params {
  uint64_t prompt_est, gen_est;        /* expected token counts of the request */
  uint64_t max_price_prompt, max_price_gen; /* 0 = no limit */
} mkt_rank_params;

/* Sorts c in place, best first, moving dropped candidates to the end. Returns how many are
 * usable (the first k). */
size_t mkt_rank(mkt_candidate *c, size_t n, const mkt_rank_params *p);

#endif
