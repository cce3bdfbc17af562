/* agent/neg_engine — one side of an alternating-offers negotiation, with no I/O.
 *
 * Events in: start, a decoded message from the counterpart, a clock tick, the owner's
 * withdraw. Actions out: at most one message to send, the time to call tick again, and the
 * outcome when the session ends. The host (the node glue, or neg_sim in-process) owns the
 * link, the clock and storage: it encodes the action's message with neg_engine_encode
 * (which seals the mandate's confidential issues to the counterpart), sends it as the
 * params of neg.message, and feeds what arrives through neg_engine_decode and
 * neg_engine_on_message.
 *
 * Decisions are code: the strategy proposes a bid (a propose hook, e.g. a model, may
 * suggest another), every outgoing offer, counter and accept passes neg_mandate_check and
 * a refused one is never sent (counted in refusals; the strategy's own bid is tried next,
 * and if that too is refused the engine rejects). Acceptance is AC_next: accept the
 * counterpart's offer when it is worth at least the bid we would send next (or, at our
 * last round, at least the reservation) and the mandate allows it. The argue hook may only
 * write the message's argument text.
 *
 * Opaque handle (neg_engine_new/free); borrows the domain and mandate; one thread at a time. */
#ifndef APIARY_AGENT_NEG_ENGINE_H
#define APIARY_AGENT_NEG_ENGINE_H

#include "agent/neg_mandate.h"
#include "agent/neg_msg.h"
#include "agent/neg_strategy.h"

/* May suggest a bid for round instead of the strategy's (return 1 and fill out). */
typedef int (*neg_propose_cb)(void *ud, int round, const neg_bid *strategy_bid, neg_bid *out);
/* Writes human-readable argument text for m (about to be sent) into text (cap bytes). */
typedef void (*neg_argue_cb)(void *ud, const neg_msg *m, char *text, size_t cap);

typedef struct neg_engine_cfg {
  const neg_domain *dom;          /* borrowed */
  const neg_mandate *mandate;     /* borrowed */
  neg_strategy_kind strategy;
  uint64_t seed;
  int opener;                     /* 1: this side sends round 0 */
  uint8_t session[NEG_SESSION_BYTES];
  uint64_t ttl_ms;                /* our offers expire ttl after sending (0: 30 s) */
  const neg_seal_keys *keys;      /* ours, to open sealed values (NULL: none accepted) */
  const uint8_t *peer_xpk;        /* the counterpart's X25519 key (needed when the mandate has confidential issues) */
  neg_propose_cb propose_cb;
  void *propose_ud;
  neg_argue_cb argue_cb;
  void *argue_ud;
} neg_engine_cfg;

typedef enum neg_status { NEG_RUNNING = 0, NEG_AGREED, NEG_NO_DEAL } neg_status;

typedef struct neg_outcome {
  neg_status status;
  neg_bid bid;          /* AGREED: the terms */
  int round;            /* the round of the final message */
  double utility;       /* AGREED: ours */
  char reason[96];      /* NO_DEAL: why (rejected, withdrawn, timeout, ...) */
} neg_outcome;

typedef struct neg_action {
  int send;             /* 1: send msg */
  neg_msg msg;
  int done;             /* 1: the session ended (see neg_engine_outcome) */
  uint64_t wake_ms;     /* call tick at this time (0: no timer) */
} neg_action;

typedef struct neg_engine neg_engine;

/* 0, ERR_INVAL (bad config), or the strategy's errors (ERR_TOOBIG, ERR_RANGE, ERR_NOMEM). */
int neg_engine_new(const neg_engine_cfg *cfg, neg_engine **out);
void neg_engine_free(neg_engine *e);
int neg_engine_start(neg_engine *e, uint64_t now_ms, neg_action *out);
/* A message from the counterpart. ERR_FORMAT (wrong session, round or bid; state
 * unchanged, nothing to send) or 0. */
int neg_engine_on_message(neg_engine *e, const neg_msg *in, uint64_t now_ms, neg_action *out);
int neg_engine_tick(neg_engine *e, uint64_t now_ms, neg_action *out);
/* The owner walks away: a withdraw to send, session over. */
int neg_engine_withdraw(neg_engine *e, const char *reason, neg_action *out);
const neg_outcome *neg_engine_outcome(const neg_engine *e);
/* Bids the mandate refused (from the strategy or the propose hook) so far. */
int neg_engine_refusals(const neg_engine *e);
/* Wire codec with this session's keys: encode seals the mandate's confidential issues. */
json_t *neg_engine_encode(const neg_engine *e, const neg_msg *m);
int neg_engine_decode(const neg_engine *e, const json_t *j, neg_msg *out, char *err, size_t cap);

#endif
