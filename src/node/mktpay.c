/* node/mktpay — the buyer's payment machinery; see mktsvc_impl.h and docs/market.md. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/ethrpc.h"
#include "chain/registry.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "llm/gguf.h"
#include "llm/mstore.h"
#include "node/mktsvc_impl.h"

/* ---- paying ---------------------------------------------------------------------------
 * market/payflow keeps the books: a voucher, the receipt it pays and the "unanswered" mark
 * move in one commit; a channel has one unanswered voucher at a time, so others wait here
 * (m->waiting); a refusal is undone; a voucher with no answer is sent again (resend_unacked)
 * until the provider says yes or no. */

enum { PAY_E_REFUSED = -32011 }; /* node/gensvc: the voucher was refused (not recorded) */

static int inflight_find(mktsvc *m, const uint8_t ch[32]) {
  for (int i = 0; i < m->n_inflight; i++)
    if (!memcmp(m->inflight[i], ch, 32)) return i;
  return -1;
}

static void inflight_set(mktsvc *m, const uint8_t ch[32], int on) {
  int i = inflight_find(m, ch);
  if (on && i < 0 && m->n_inflight < MAX_INFLIGHT) memcpy(m->inflight[m->n_inflight++], ch, 32);
  if (!on && i >= 0) memcpy(m->inflight[i], m->inflight[--m->n_inflight], 32);
}

typedef struct pay_ctx {
  mktsvc *m;
  attempt *a;             /* NULL: a resend of a voucher found in the store */
  voucher v;
  uint64_t add;
  uint8_t pk[32];
} pay_ctx;


static void wait_channel(mktsvc *m, attempt *a) {
  if (a->pay_waiting || m->n_waiting >= MAX_WAITING) return;
  a->pay_waiting = 1;
  a->pays_live++;
  m->waiting[m->n_waiting++] = a;
}

/* Attempts waiting for a channel try again (all when ch is NULL). */
void mktsvc__wake_waiters(mktsvc *m, const uint8_t *ch) {
  attempt *list[MAX_WAITING];
  int n = 0;
  for (int i = 0; i < m->n_waiting;) {
    attempt *a = m->waiting[i];
    if ((ch && memcmp(a->channel, ch, 32)) || inflight_find(m, a->channel) >= 0) { i++; continue; }
    m->waiting[i] = m->waiting[--m->n_waiting];
    list[n++] = a;
  }
  for (int i = 0; i < n; i++) {
    attempt *a = list[i];
    a->pay_waiting = 0;
    a->pays_live--;
    if (!m->closing) mktsvc__maybe_pay(m, a, a->done);
    mktsvc__maybe_free_attempt(a);
  }
}

static void on_pay_reply(void *ud, const rpc_reply *reply) {
  pay_ctx *c = ud;
  mktsvc *m = c->m;
  attempt *a = c->a;
  char who[IDENT_ID_BUF], why[240] = "";
  ident_id_encode(c->pk, who);
  inflight_set(m, c->v.channel_id, 0);
  int refused = reply->kind == RPC_REPLY_ERROR && (reply->code == PAY_E_REFUSED || reply->code == RPC_INVALID_PARAMS);
  if (m->closing) {
    /* the store is still open (the node closes it after the services), but nobody waits */
  } else if (reply->kind == RPC_REPLY_RESULT) {
    if (mkt_pay_acked(m->db, c->v.channel_id, &c->v.amount))
      log_error("cannot record an accepted voucher in %s: %s", store_path(m->db), store_errmsg(m->db));
    if (a) {
      a->paid_acked += c->add;
      if (a->done && a->paid_acked >= a->paid_signed) snprintf(a->status, sizeof a->status, "complete");
      mktsvc__write_client_receipt(m, a);
    }
  } else if (refused) {
    snprintf(why, sizeof why, "%s", reply->message && *reply->message ? reply->message : "refused");
    int rc = mkt_pay_refused(m->db, c->v.channel_id, &c->v.amount);
    if (rc) log_error("%s refused a voucher (%s) and it cannot be undone here: %s", who, why, err_str(rc));
    else log_warn("%s refused a voucher (%s); it does not count", who, why);
    if (a && !rc) a->paid_signed -= c->add;
  } else {
    log_info("no answer from %s to a voucher (%s): it will be sent again", who,
             reply->message && *reply->message ? reply->message : "timeout");
  }
  free(c);
  if (!a) {
    mktsvc__wake_waiters(m, NULL);
    return;
  }
  a->paying = 0;
  a->pays_live--;
  if (!m->closing) mktsvc__wake_waiters(m, a->channel);
  if (refused) { /* a provider that takes no money is not worked for any more (the engine decides) */
    if (!a->dropped && !m->closing) {
      a->pays_live++; /* hold a while the engine's actions run */
      mkt_route_pay_refused(m->rt, mktsvc__now_ms(m), a->aid, why);
      mktsvc__drain(m);
      a->pays_live--;
    }
    mktsvc__maybe_free_attempt(a);
    return;
  }
  if (!m->closing && reply->kind == RPC_REPLY_RESULT) mktsvc__maybe_pay(m, a, a->done); /* what came meanwhile */
  mktsvc__maybe_free_attempt(a);
}

static int send_voucher(mktsvc *m, attempt *a, const uint8_t pk[32], const uint8_t request[16], const voucher *v,
                        uint64_t add) {
  pay_ctx *c = calloc(1, sizeof *c);
  if (!c) return ERR_NOMEM;
  c->m = m;
  c->a = a;
  c->v = *v;
  c->add = add;
  memcpy(c->pk, pk, 32);
  char rq[33];
  hex_encode(request, 16, rq);
  inflight_set(m, v->channel_id, 1);
  if (a) a->paying = 1, a->pays_live++;
  int rc = netsvc_call(m->ns, pk, "market.pay", json_pack("{s:s, s:o}", "request", rq, "voucher", voucher_to_json(v)),
                       PAY_TIMEOUT_MS, on_pay_reply, c);
  if (rc) { /* it stays unanswered in the store: resent later */
    inflight_set(m, v->channel_id, 0);
    if (a) a->paying = 0, a->pays_live--;
    free(c);
  }
  return rc;
}

int mktsvc__spend_ok(mktsvc *m, uint64_t add, char *why, size_t cap) {
  if (!m->policy.daily_cap) return 1;
  uint64_t spent = 0;
  if (mkt_receipt_sum_since(m->db, MKT_CLIENT, (int64_t)time(NULL) - OWNER_DAY_S, &spent)) {
    snprintf(why, cap, "cannot read what this node paid in the last 24 h (%s): [policy] daily_spend_cap_wei cannot be checked",
             store_errmsg(m->db));
    return 0;
  }
  if (owner_spend_ok(&m->policy, spent, add)) return 1;
  owner_cap_message(&m->policy, spent, why, cap);
  return 0;
}

/* Pays what is owed for the tokens received so far, in steps of pay_every tokens (all of it
 * when final). */
void mktsvc__maybe_pay(mktsvc *m, attempt *a, int final) {
  if (!a->has_channel || a->paying || a->pay_waiting || m->closing) return;
  uint64_t owed = 0, step_wei = 0;
  if (mkt_cost((uint64_t)a->pt, (uint64_t)a->gt, a->offer.price_prompt, a->offer.price_gen, &owed)) return;
  mkt_cost(0, (uint64_t)m->pay_every, 0, a->offer.price_gen, &step_wei);
  if (owed <= a->paid_signed) return;
  if (!final && owed - a->paid_signed < (step_wei ? step_wei : 1)) return;
  if (inflight_find(m, a->channel) >= 0) { wait_channel(m, a); return; }
  uint64_t add = owed - a->paid_signed;
  char why[300];
  if (!mktsvc__spend_ok(m, add, why, sizeof why)) { /* the backstop: nothing is signed past the cap */
    if (!a->cap_logged) log_error("not paying %s: %s", a->node_id, why);
    a->cap_logged = 1;
    return;
  }
  mkt_receipt r;
  mktsvc__client_receipt(m, a, &r);
  voucher v;
  int rc = mkt_pay_sign(m->db, paysvc_wallet(m->pay), &r, add, (uint64_t)time(NULL), &v);
  if (rc == ERR_BUSY) { wait_channel(m, a); return; } /* an older voucher awaits its answer */
  if (rc) {
    log_error("cannot sign a voucher for %s: %s%s%s", a->node_id, err_str(rc), rc == ERR_STORE ? ": " : "",
              rc == ERR_STORE ? store_errmsg(m->db) : "");
    return;
  }
  a->paid_signed = owed;
  send_voucher(m, a, a->pk, a->request, &v, add);
}

/* Vouchers signed earlier (this run or before a crash) that got no answer go out again:
 * the provider accepts each once (a second time changes nothing) or refuses it (undone). */
void mktsvc__resend_unacked(mktsvc *m, int dial) {
  static mkt_unacked list[MKT_UNACKED_MAX];
  int n = mkt_pay_unacked_list(m->db, list, MKT_UNACKED_MAX);
  for (int i = 0; i < n; i++) {
    if (inflight_find(m, list[i].v.channel_id) >= 0) continue;
    if (!dial && !netsvc_linked(m->ns, list[i].provider)) continue;
    send_voucher(m, NULL, list[i].provider, list[i].request, &list[i].v, list[i].add);
  }
}

/* Pays add wei more on r's request (a delegated task: node/a2acall): signed through
 * market/payflow like a generation's voucher and answered like a resend (accepted: the
 * row goes; refused: undone; no answer: sent again by resend_unacked). */
int mktsvc_pay_request(mktsvc *m, const mkt_receipt *r, uint64_t add) {
  if (!m || m->closing) return ERR_INVAL;
  if (!r->has_channel || !add) return ERR_INVAL;
  if (inflight_find(m, r->channel) >= 0) return ERR_BUSY;
  char why[300];
  if (!mktsvc__spend_ok(m, add, why, sizeof why)) {
    log_error("not paying for a task: %s", why);
    return ERR_RANGE;
  }
  voucher v;
  int rc = mkt_pay_sign(m->db, paysvc_wallet(m->pay), r, add, (uint64_t)time(NULL), &v);
  if (rc) return rc;
  send_voucher(m, NULL, r->provider, r->request, &v, add); /* when it cannot go now: resent later */
  return 0;
}
