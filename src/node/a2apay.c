/* node/a2apay — the caller paying for a delegated task (see a2asvc.h, docs/agents.md
 * "Selling at a price"). The price is per task and fixed by the seller; the money moves
 * like a generation's: the task's id is the request id, our client receipt, the voucher
 * and its "unanswered" mark go in one commit (market/payflow through mktsvc_pay_request),
 * the provider's market.pay adds it to its receipt for the task. What we owe is always
 * price − what our receipt holds, so polling again, a resend or a restart never pays
 * twice. A channel is the open one to the provider with room for the price, or one opened
 * for the task with [market] channel_deposit (at least the price); it travels with our
 * wallet's signature that it is ours (a2a_channel_digest), which the provider checks
 * against the channel's client or signer. The price paid is never above the cap
 * (a2asvc__cap: the advertised price, within the budget). Loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "market/receipt.h"
#include "node/a2asvc_impl.h"
#include "pay/channel.h"

#define MAX_SIGNINGS 4 /* vouchers for one task; more means the provider refuses them */

int a2asvc__find_channel(a2a_call *c, uint64_t need) {
  a2asvc *a = c->a;
  /* Fault injection for the tests of the provider's check: a caller that sends someone
   * else's channel (64 hex digits) with its tasks. Never set in production. */
  const char *fault = getenv("APIARY_FAULT_A2A_CHANNEL");
  if (fault && strlen(fault) == 64 && !hex_decode(fault, 64, c->chan, 32)) {
    c->has_chan = 1;
    return 0;
  }
  mkt_receipt r;
  if (!mkt_receipt_get(a->db, MKT_CLIENT, c->id, c->pk, &r) && r.has_channel) { /* taken up again: its channel */
    memcpy(c->chan, r.channel, 32);
    c->has_chan = 1;
    return 0;
  }
  channel ch;
  if (!a->pay || !paysvc_enabled(a->pay) || paysvc_client_channel(a->pay, c->pk, need ? need : 1, &ch))
    return ERR_NOTFOUND;
  memcpy(c->chan, ch.id, 32);
  c->has_chan = 1;
  return 0;
}

int a2asvc__channel_sig(a2a_call *c, uint8_t sig[65]) {
  const wallet *w = c->a->pay ? paysvc_wallet(c->a->pay) : NULL;
  if (!w) return ERR_INVAL;
  uint8_t d[32];
  a2a_channel_digest(c->chan, c->a->me, c->pk, d);
  return eip712_sign(w, d, sig);
}

static void on_open(void *ud, int rc, const channel *ch, const char *msg) {
  a2a_call *c = ud;
  c->opening = 0;
  if (c->a->closing || c->done) {
    a2asvc__maybe_free(c);
    return;
  }
  if (rc) {
    char who[IDENT_ID_BUF], m[400];
    ident_id_encode(c->pk, who);
    snprintf(m, sizeof m, "cannot open a payment channel to %s: %s", who, msg && *msg ? msg : err_str(rc));
    a2asvc__fail(c, m);
    a2asvc__maybe_free(c);
    return;
  }
  memcpy(c->chan, ch->id, 32);
  c->has_chan = 1;
  a2asvc__step(c);
}

int a2asvc__open_channel(a2a_call *c, uint64_t price, char *why, size_t cap) {
  a2asvc *a = c->a;
  if (!a->pay || !paysvc_enabled(a->pay) || !a->mkt) {
    snprintf(why, cap, "agent %s costs %llu wei per task and this node has no payments (a wallet and a chain)",
             c->agent, (unsigned long long)price);
    return ERR_INVAL;
  }
  if (!a2asvc__find_channel(c, price)) return 0; /* one has room now */
  if (c->opened) {
    snprintf(why, cap, "the channel opened for this task is not usable by the provider");
    return ERR_INVAL;
  }
  u256 dep = a->deposit, p = u256_from_u64(price);
  if (u256_cmp(&dep, &p) < 0) dep = p;
  c->opened = c->opening = 1;
  int rc = paysvc_open_channel(a->pay, c->pk, &dep, a->lifetime_s, on_open, c);
  if (rc) {
    c->opening = 0;
    snprintf(why, cap, "cannot open a payment channel (%s): open one first with 'apiary channel open NODE_ID AMOUNT'",
             err_str(rc));
    return rc;
  }
  log_info("opening a payment channel for a task of agent %s", c->agent);
  return 0;
}

static void client_receipt(const a2a_call *c, mkt_receipt *r) {
  memset(r, 0, sizeof *r);
  r->role = MKT_CLIENT;
  memcpy(r->request, c->id, 16);
  memcpy(r->provider, c->pk, 32);
  memcpy(r->client, c->a->me, 32);
  a2a_agent_model(c->agent, r->model);
  memcpy(r->channel, c->chan, 32);
  r->has_channel = 1;
  snprintf(r->status, sizeof r->status, "complete");
}

uint64_t a2asvc__paid_for(a2asvc *a, const uint8_t pk[32], const uint8_t id[16]) {
  mkt_receipt r;
  return mkt_receipt_get(a->db, MKT_CLIENT, id, pk, &r) ? 0 : r.amount;
}

uint64_t a2asvc__paid(a2a_call *c) { return a2asvc__paid_for(c->a, c->pk, c->id); }

uint64_t a2asvc__cap(const a2a_call *c) {
  return c->has_adv && !c->adv_1k && c->advertised < c->max_wei ? c->advertised : c->max_wei;
}

int a2asvc__pay(a2a_call *c, uint64_t price, int64_t tokens, char *why, size_t cap) {
  uint64_t limit = c->has_adv ? a2a_cost(c->advertised, c->adv_1k, tokens, c->max_wei) : c->max_wei;
  if (price > limit) { /* a seller asking more than it advertised gets nothing */
    if (c->has_adv && limit < c->max_wei)
      snprintf(why, cap, "the provider asks %llu wei for the task, above the %llu wei it advertised: refused, nothing paid",
               (unsigned long long)price, (unsigned long long)limit);
    else
      snprintf(why, cap, "the provider asks %llu wei for the task, above max_wei %llu: refused, nothing paid",
               (unsigned long long)price, (unsigned long long)c->max_wei);
    log_warn("agent %s: %s", c->agent, why);
    return ERR_RANGE;
  }
  if (!c->has_chan) a2asvc__find_channel(c, price); /* the one our receipt names, when taken up again */
  if (!c->has_chan || !c->a->mkt) {
    snprintf(why, cap, "the provider asks to be paid but the task was sent without a channel");
    return ERR_INVAL;
  }
  mkt_receipt cur;
  int rc = mkt_receipt_get(c->a->db, MKT_CLIENT, c->id, c->pk, &cur);
  if (rc && rc != ERR_NOTFOUND) {
    snprintf(why, cap, "cannot read the task's receipt: %s", store_errmsg(c->a->db));
    return rc;
  }
  uint64_t paid = rc ? 0 : cur.amount;
  if (paid >= price) return 0; /* signed: its answer (or the resend) is on its way */
  if (c->signings >= MAX_SIGNINGS) {
    snprintf(why, cap, "the provider does not accept our vouchers for the task (see the node's log)");
    return ERR_INVAL;
  }
  mkt_receipt r;
  client_receipt(c, &r);
  rc = mktsvc_pay_request(c->a->mkt, &r, price - paid);
  if (rc == ERR_BUSY) return 0; /* the channel has another voucher out: next time */
  if (rc) {
    snprintf(why, cap, "cannot pay for the task: %s", err_str(rc));
    return rc;
  }
  c->signings++;
  return 0;
}
