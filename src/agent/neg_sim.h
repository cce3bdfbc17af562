/* agent/neg_sim — both sides of a scenario negotiating in-process: two engines, a simulated
 * clock (10 ms per message), and every message passed through the wire codec when asked (so
 * the simulator exercises what the network would carry, confidential issues sealed between
 * two fixed simulated identities). Side 0 opens.
 *
 * Each sent message can be reported to a callback (the benchmark re-verifies every one
 * against the sender's mandate independently). Pure apart from the callback; thread-safe. */
#ifndef APIARY_AGENT_NEG_SIM_H
#define APIARY_AGENT_NEG_SIM_H

#include "agent/neg_engine.h"

typedef void (*neg_sim_sent_cb)(void *ud, int side, const neg_msg *m, uint64_t now_ms);

typedef struct neg_sim_cfg {
  neg_strategy_kind strategy[2];
  uint64_t seed;
  int wire;                    /* 1: encode/decode every message as JSON */
  neg_sim_sent_cb sent_cb;
  void *sent_ud;
  neg_propose_cb propose_cb[2];  /* optional hooks (tests: a "model" proposing bids) */
  void *propose_ud[2];
} neg_sim_cfg;

typedef struct neg_sim_result {
  int agreed;
  neg_bid bid;                 /* agreed terms */
  double u[2];                 /* each side's utility of them (0 when no deal) */
  int rounds;                  /* messages exchanged */
  int refusals[2];             /* bids each side's mandate refused */
  char reason[192];            /* no deal: why (the side that ended it) */
} neg_sim_result;

/* Runs s to the end. 0, or an engine error (ERR_TOOBIG, ERR_RANGE: a side has no
 * acceptable bid at all, which the caller reports as no deal) or ERR_FORMAT (a wire
 * failure, a bug). */
int neg_sim_run(const neg_scenario *s, const neg_sim_cfg *cfg, neg_sim_result *out);

#endif
