/* agent/neg_engine — the alternating-offers session engine (see neg_engine.h). */
#include "agent/neg_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct neg_engine {
  neg_engine_cfg cfg;      /* copy; pointers inside are borrowed */
  neg_strategy *strat;     /* owned */
  neg_outcome out;
  int last_round;          /* round of the last message sent or received; -1 before any */
  int have_offer;          /* we have an offer out */
  neg_bid my_offer;
  uint64_t my_expiry;
  int refusals;
};

int neg_engine_new(const neg_engine_cfg *cfg, neg_engine **out) {
  *out = NULL;
  if (!cfg->dom || !cfg->mandate || (cfg->mandate->confidential && !cfg->peer_xpk)) return ERR_INVAL;
  neg_engine *e = calloc(1, sizeof *e);
  if (!e) return ERR_NOMEM;
  e->cfg = *cfg;
  if (!e->cfg.ttl_ms) e->cfg.ttl_ms = 30000;
  e->last_round = -1;
  int rc = neg_strategy_new(cfg->strategy, cfg->dom, cfg->mandate, cfg->seed, &e->strat);
  if (rc) {
    free(e);
    return rc;
  }
  *out = e;
  return 0;
}

void neg_engine_free(neg_engine *e) {
  if (!e) return;
  neg_strategy_free(e->strat);
  free(e);
}

const neg_outcome *neg_engine_outcome(const neg_engine *e) { return &e->out; }
int neg_engine_refusals(const neg_engine *e) { return e->refusals; }

json_t *neg_engine_encode(const neg_engine *e, const neg_msg *m) {
  return neg_msg_encode(e->cfg.dom, m, e->cfg.mandate->confidential, e->cfg.peer_xpk);
}

int neg_engine_decode(const neg_engine *e, const json_t *j, neg_msg *out, char *err, size_t cap) {
  return neg_msg_decode(e->cfg.dom, j, e->cfg.keys, out, err, cap);
}

static void finish(neg_engine *e, neg_status st, int round, const neg_bid *bid, const char *reason, neg_action *a) {
  e->out.status = st;
  e->out.round = round;
  if (bid) {
    e->out.bid = *bid;
    e->out.utility = neg_utility(e->cfg.dom, &e->cfg.mandate->prefs, bid);
  }
  snprintf(e->out.reason, sizeof e->out.reason, "%s", reason);
  a->done = 1;
  a->wake_ms = 0;
}

/* Fills a's message (type, round; bid for bid-carrying types) and asks the argue hook. */
static void compose(neg_engine *e, neg_action *a, neg_msg_type t, int round, const neg_bid *bid, uint64_t now) {
  neg_msg *m = &a->msg;
  memset(m, 0, sizeof *m);
  m->type = t;
  memcpy(m->session, e->cfg.session, NEG_SESSION_BYTES);
  m->round = round;
  if (bid) {
    m->has_bid = 1;
    m->bid = *bid;
  }
  if (t == NEG_MSG_OFFER || t == NEG_MSG_COUNTER) {
    m->expiry_ms = now + e->cfg.ttl_ms;
    m->deadline = e->cfg.mandate->deadline;
  }
  if (e->cfg.argue_cb && t != NEG_MSG_WITHDRAW) {
    char text[NEG_MAX_ARG + 1] = "";
    e->cfg.argue_cb(e->cfg.argue_ud, m, text, sizeof text);
    text[NEG_MAX_ARG] = 0;
    memcpy(m->argument, text, sizeof text);
  }
  a->send = 1;
  e->last_round = round;
}

static int send_end(neg_engine *e, neg_msg_type t, int round, const char *reason, uint64_t now, neg_action *a) {
  compose(e, a, t, round, NULL, now);
  finish(e, NEG_NO_DEAL, round, NULL, reason, a);
  return 0;
}

/* The bid to offer at round: the hook's suggestion if the mandate allows it, else the
 * strategy's. Returns the mandate verdict of the chosen bid. */
static neg_refusal choose(neg_engine *e, int round, uint64_t now, neg_bid *out) {
  const neg_domain *d = e->cfg.dom;
  const neg_mandate *m = e->cfg.mandate;
  neg_bid mine, hook;
  neg_strategy_propose(e->strat, round, &mine);
  if (e->cfg.propose_cb && e->cfg.propose_cb(e->cfg.propose_ud, round, &mine, &hook)) {
    if (neg_mandate_check(d, m, NEG_MSG_COUNTER, &hook, round, now) == NEG_MANDATE_OK) {
      *out = hook;
      return NEG_MANDATE_OK;
    }
    e->refusals++;
  }
  *out = mine;
  neg_refusal r = neg_mandate_check(d, m, NEG_MSG_COUNTER, &mine, round, now);
  if (r) e->refusals++;
  return r;
}

static int send_offer(neg_engine *e, neg_msg_type t, int round, uint64_t now, neg_action *a) {
  neg_bid b;
  neg_refusal r = choose(e, round, now, &b);
  if (r) return send_end(e, NEG_MSG_REJECT, round, neg_refusal_str(r), now, a);
  compose(e, a, t, round, &b, now);
  e->have_offer = 1;
  e->my_offer = b;
  e->my_expiry = a->msg.expiry_ms;
  a->wake_ms = e->my_expiry;
  return 0;
}

int neg_engine_start(neg_engine *e, uint64_t now_ms, neg_action *out) {
  memset(out, 0, sizeof *out);
  if (e->out.status != NEG_RUNNING || e->last_round >= 0) return ERR_INVAL;
  if (!e->cfg.opener) return 0;
  return send_offer(e, NEG_MSG_OFFER, 0, now_ms, out);
}

/* The counterpart offered theirs at round r - 1: accept, counter or give up at round r. */
static int respond(neg_engine *e, const neg_msg *in, uint64_t now, neg_action *a) {
  const neg_domain *d = e->cfg.dom;
  const neg_mandate *m = e->cfg.mandate;
  int r = in->round + 1;
  e->have_offer = 0;
  if (r >= m->deadline) return send_end(e, NEG_MSG_REJECT, r, "deadline reached", now, a);
  if (m->expires_ms && now >= m->expires_ms) return send_end(e, NEG_MSG_WITHDRAW, r, "mandate expired", now, a);
  neg_bid next;
  neg_refusal ref = choose(e, r, now, &next);
  double u_theirs = neg_utility(d, &m->prefs, &in->bid);
  int last_chance = r == m->deadline - 1;
  /* AC_next, or (pareto) at least our share at the estimated Nash point. */
  int want = ref != NEG_MANDATE_OK || last_chance || u_theirs >= neg_utility(d, &m->prefs, &next) ||
             u_theirs >= neg_strategy_accept_level(e->strat);
  if (want && now <= in->expiry_ms) {
    neg_refusal ok = neg_mandate_check(d, m, NEG_MSG_ACCEPT, &in->bid, r, now);
    if (ok == NEG_MANDATE_OK) {
      compose(e, a, NEG_MSG_ACCEPT, r, &in->bid, now);
      finish(e, NEG_AGREED, r, &in->bid, "", a);
      return 0;
    }
  }
  if (ref) return send_end(e, NEG_MSG_REJECT, r, neg_refusal_str(ref), now, a);
  compose(e, a, NEG_MSG_COUNTER, r, &next, now);
  e->have_offer = 1;
  e->my_offer = next;
  e->my_expiry = a->msg.expiry_ms;
  a->wake_ms = e->my_expiry;
  return 0;
}

int neg_engine_on_message(neg_engine *e, const neg_msg *in, uint64_t now_ms, neg_action *out) {
  memset(out, 0, sizeof *out);
  if (e->out.status != NEG_RUNNING) return ERR_FORMAT;
  if (memcmp(in->session, e->cfg.session, NEG_SESSION_BYTES) || in->round != e->last_round + 1) return ERR_FORMAT;
  /* Rounds alternate: the opener speaks at even rounds. */
  if ((in->round % 2 == 0) == (e->cfg.opener != 0)) return ERR_FORMAT;
  if ((in->type == NEG_MSG_OFFER) != (in->round == 0)) return ERR_FORMAT;
  switch (in->type) {
  case NEG_MSG_OFFER:
  case NEG_MSG_COUNTER:
    if (!in->has_bid || !neg_bid_valid(e->cfg.dom, &in->bid)) return ERR_FORMAT;
    e->last_round = in->round;
    neg_strategy_observe(e->strat, &in->bid);
    if (in->deadline) neg_strategy_set_horizon(e->strat, in->deadline);
    return respond(e, in, now_ms, out);
  case NEG_MSG_ACCEPT:
    if (!e->have_offer || !in->has_bid || memcmp(&in->bid, &e->my_offer, sizeof in->bid)) return ERR_FORMAT;
    e->last_round = in->round;
    if (now_ms > e->my_expiry) return send_end(e, NEG_MSG_WITHDRAW, in->round + 1, "accepted after expiry", now_ms, out);
    if (neg_mandate_check(e->cfg.dom, e->cfg.mandate, NEG_MSG_ACCEPT, &in->bid, in->round - 1, 0) != NEG_MANDATE_OK) {
      e->refusals++;
      return send_end(e, NEG_MSG_WITHDRAW, in->round + 1, "accepted bid outside the mandate", now_ms, out);
    }
    finish(e, NEG_AGREED, in->round, &in->bid, "", out);
    return 0;
  case NEG_MSG_REJECT:
  case NEG_MSG_WITHDRAW:
    e->last_round = in->round;
    finish(e, NEG_NO_DEAL, in->round, NULL, in->type == NEG_MSG_REJECT ? "rejected by the counterpart" : "withdrawn by the counterpart",
           out);
    return 0;
  }
  return ERR_FORMAT;
}

int neg_engine_tick(neg_engine *e, uint64_t now_ms, neg_action *out) {
  memset(out, 0, sizeof *out);
  if (e->out.status != NEG_RUNNING) return 0;
  const neg_mandate *m = e->cfg.mandate;
  if (m->expires_ms && now_ms >= m->expires_ms)
    return send_end(e, NEG_MSG_WITHDRAW, e->last_round + 1, "mandate expired", now_ms, out);
  if (e->have_offer && now_ms > e->my_expiry)
    return send_end(e, NEG_MSG_WITHDRAW, e->last_round + 1, "timeout: no answer before our offer expired", now_ms, out);
  out->wake_ms = e->have_offer ? e->my_expiry + 1 : 0;
  return 0;
}

int neg_engine_withdraw(neg_engine *e, const char *reason, neg_action *out) {
  memset(out, 0, sizeof *out);
  if (e->out.status != NEG_RUNNING) return ERR_INVAL;
  return send_end(e, NEG_MSG_WITHDRAW, e->last_round + 1, reason ? reason : "withdrawn by the owner", 0, out);
}
