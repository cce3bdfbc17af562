/* agent/neg_mandate — the mandate choke point (see neg_mandate.h). */
#include "agent/neg_mandate.h"

static const char *why[] = {"ok", "malformed bid", "outside the required terms", "below the reservation value",
                            "past the deadline", "mandate expired"};

const char *neg_refusal_str(neg_refusal r) { return (unsigned)r < sizeof why / sizeof *why ? why[r] : "?"; }

neg_refusal neg_mandate_check(const neg_domain *d, const neg_mandate *m, neg_msg_type t, const neg_bid *b, int round,
                              uint64_t now_ms) {
  if (t == NEG_MSG_REJECT || t == NEG_MSG_WITHDRAW) return NEG_MANDATE_OK;
  if (t != NEG_MSG_OFFER && t != NEG_MSG_COUNTER && t != NEG_MSG_ACCEPT) return NEG_REFUSE_INVALID;
  if (!b || !neg_bid_valid(d, b) || round < 0) return NEG_REFUSE_INVALID;
  for (int i = 0; i < d->n_issues; i++)
    if (!(m->allowed[i] >> b->v[i] & 1)) return NEG_REFUSE_REQUIRED;
  if (neg_utility(d, &m->prefs, b) < m->prefs.reservation) return NEG_REFUSE_RESERVATION;
  if (round >= m->deadline) return NEG_REFUSE_DEADLINE;
  if (m->expires_ms && now_ms >= m->expires_ms) return NEG_REFUSE_EXPIRED;
  return NEG_MANDATE_OK;
}
