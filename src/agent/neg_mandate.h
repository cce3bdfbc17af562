/* agent/neg_mandate — the one choke point between a negotiating agent and the wire.
 *
 * Every offer, counter and accept the engine sends passes neg_mandate_check first; a bid
 * it refuses is never sent, whoever proposed it (a strategy, or a model through the
 * engine's propose hook). A bid is refused when: it is malformed (a value out of range),
 * any issue takes a value the owner did not allow (required terms), its utility under the
 * owner's preferences is below the reservation value, the round is at or past the
 * deadline, or the wall-clock mandate has expired. reject and withdraw are always allowed.
 * Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_MANDATE_H
#define APIARY_AGENT_NEG_MANDATE_H

#include "agent/neg_msg.h"
#include "agent/neg_scenario.h"

typedef enum neg_refusal {
  NEG_MANDATE_OK = 0,
  NEG_REFUSE_INVALID,      /* malformed bid or unknown message type */
  NEG_REFUSE_REQUIRED,     /* a value outside the required terms */
  NEG_REFUSE_RESERVATION,  /* utility below the reservation value */
  NEG_REFUSE_DEADLINE,     /* round >= deadline */
  NEG_REFUSE_EXPIRED,      /* now >= expires_ms */
} neg_refusal;

/* 0 (NEG_MANDATE_OK) when m allows sending a message of type t with bid b at round and
 * now_ms, else the first reason it does not. b may be NULL for reject/withdraw. */
neg_refusal neg_mandate_check(const neg_domain *d, const neg_mandate *m, neg_msg_type t, const neg_bid *b, int round,
                              uint64_t now_ms);
const char *neg_refusal_str(neg_refusal r);

#endif
