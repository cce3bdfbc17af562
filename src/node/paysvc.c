/* node/paysvc — payments inside the node daemon; see paysvc.h and docs/payments.md. */
#include "node/paysvc_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/ethrpc.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "pay/channel.h"
#include "pay/escrow.h"
#include "pay/voucher.h"

uint64_t paysvc__now_s(void) { return (uint64_t)time(NULL); }

void paysvc__maybe_free(paysvc *p) {
  if (!p->stopping || p->pending || p->timer_open) return;
  wallet_wipe(&p->w);
  free(p);
}

void paysvc__hex0x(const uint8_t *b, size_t n, char *out) {
  out[0] = '0', out[1] = 'x';
  hex_encode(b, n, out + 2);
}

json_t *paysvc__info_json(paysvc *p) {
  char addr[WALLET_ADDR_BUF] = "";
  if (p->have_wallet) wallet_addr_eip55(p->w.addr, addr);
  return json_pack("{s:s, s:I, s:s, s:s, s:s}", "address", addr, "chain_id", (json_int_t)p->chain_id, "escrow",
                   p->escrow_text, "registry", p->registry_text, "governance", p->governance_text);
}

/* ---- chain jobs (thread pool) --------------------------------------------------------- */

typedef enum { JOB_LOOKUP, JOB_CLAIM, JOB_OPEN } job_kind;

typedef struct job_entry {
  uint8_t id[32];
  u256 amount;                /* claim: the voucher */
  uint8_t sig[65];
  int rc;                     /* claim result */
  int state_rc;               /* getChannel result */
  int already;                /* claim: the chain had it claimed already */
  escrow_channel st;
} job_entry;

typedef struct job {
  uv_work_t w;
  paysvc *p;
  job_kind kind;
  ctl_req *req;               /* control request to answer, or NULL */
  channel_role role;          /* lookup: record as (0: refresh a known channel) */
  uint8_t peer[32];           /* lookup: the other node (client channels) */
  /* open: */
  uint8_t provider[20];
  u256 deposit;
  uint64_t expiry;
  int open_rc;
  paysvc_open_cb open_cb;
  void *open_ud;
  size_t n;
  job_entry e[JOB_MAX];
} job;

static void work_cb(uv_work_t *w) {
  job *j = w->data;
  paysvc *p = j->p;
  ethrpc *eth;
  if (ethrpc_new(p->rpc_url, RPC_TIMEOUT_MS, &eth)) {
    for (size_t i = 0; i < j->n; i++) j->e[i].rc = j->e[i].state_rc = ERR_NOMEM;
    return;
  }
  if (j->kind == JOB_OPEN) {
    j->open_rc = escrow_open(eth, &p->w, p->escrow, j->provider, p->w.addr, j->expiry, &j->deposit, j->e[0].id, NULL);
    if (j->open_rc == ERR_REVERTED) {
      const ethrpc_error *er = ethrpc_last_error(eth);
      log_warn("opening a channel was refused by the chain: %s", er->reason);
    }
    j->e[0].state_rc = j->open_rc ? j->open_rc : escrow_get(eth, p->escrow, j->e[0].id, &j->e[0].st);
    ethrpc_free(eth);
    return;
  }
  for (size_t i = 0; i < j->n; i++) {
    job_entry *e = &j->e[i];
    e->rc = 0;
    if (j->kind == JOB_CLAIM) {
      /* Claimed already (we crashed after the claim was mined, before recording it): record. */
      if (escrow_get(eth, p->escrow, e->id, &e->st) == 0 && u256_cmp(&e->st.claimed, &e->amount) >= 0) {
        e->already = 1;
        e->state_rc = 0;
        continue;
      }
      e->rc = escrow_claim(eth, &p->w, p->escrow, e->id, &e->amount, e->sig, NULL);
      if (e->rc == ERR_REVERTED) {
        const ethrpc_error *er = ethrpc_last_error(eth);
        log_warn("claim of channel %02x%02x%02x%02x… refused by the chain: %s", e->id[0], e->id[1], e->id[2],
                 e->id[3], er->reason);
      }
    }
    e->state_rc = escrow_offline(e->rc) ? e->rc : escrow_get(eth, p->escrow, e->id, &e->st);
  }
  ethrpc_free(eth);
}

static void lookup_done(paysvc *p, const uint8_t id[32]) {
  for (int i = 0; i < p->n_lookups; i++)
    if (!memcmp(p->lookups[i], id, 32)) {
      memmove(p->lookups[i], p->lookups[i + 1], (size_t)(p->n_lookups - i - 1) * 32);
      p->n_lookups--;
      return;
    }
}

static void note_chain(paysvc *p, int rc) {
  int off = escrow_offline(rc);
  if (off && !p->offline) log_warn("chain %s unreachable (%s); vouchers are still accepted, claims wait", p->rpc_url, err_str(rc));
  if (!off && p->offline) log_info("chain %s reachable again", p->rpc_url);
  p->offline = off;
}

static void ignore_reply(void *ud, const rpc_reply *reply) { (void)ud, (void)reply; }

static void after_lookup(job *j) {
  paysvc *p = j->p;
  job_entry *e = &j->e[0];
  lookup_done(p, e->id);
  note_chain(p, e->state_rc);
  channel ch;
  int rc = e->state_rc;
  if (!rc) {
    memset(&ch, 0, sizeof ch);
    memcpy(ch.id, e->id, 32);
    ch.chain_id = p->chain_id;
    memcpy(ch.escrow, p->escrow, 20);
    memcpy(ch.client, e->st.client, 20);
    memcpy(ch.provider, e->st.provider, 20);
    memcpy(ch.signer, e->st.signer, 20);
    ch.deposit = e->st.deposit;
    ch.expiry = e->st.expiry;
    ch.claimed = e->st.claimed;
    ch.closed = e->st.closed;
    ch.role = j->role;
    memcpy(ch.peer, j->peer, 32);
    if (j->role == CHANNEL_PROVIDER && memcmp(ch.provider, p->w.addr, 20)) rc = ERR_WRONG_SIGNER;
    else if (j->role == CHANNEL_CLIENT && memcmp(ch.client, p->w.addr, 20)) rc = ERR_WRONG_SIGNER;
    else if (j->role) rc = channel_put(p->db, &ch);
    else rc = channel_set_chain(p->db, ch.id, &ch.deposit, ch.expiry, &ch.claimed, ch.closed);
  }
  if (!rc && j->role == CHANNEL_CLIENT && !p->stopping) { /* tell the provider at once */
    char id[67];
    paysvc__hex0x(e->id, 32, id);
    netsvc_call(p->ns, j->peer, "pay.channel", json_pack("{s:s}", "channel", id), 10000, ignore_reply, NULL);
  }
  if (j->open_cb) {
    channel got;
    int grc = rc ? rc : channel_get(p->db, e->id, &got);
    char msg[200] = "";
    if (grc) snprintf(msg, sizeof msg, "cannot open a channel: %s", err_str(j->open_rc ? j->open_rc : grc));
    else log_info("opened a channel %02x%02x%02x%02x… on chain", e->id[0], e->id[1], e->id[2], e->id[3]);
    j->open_cb(j->open_ud, grc, grc ? NULL : &got, msg);
    return;
  }
  if (j->role == CHANNEL_PROVIDER && !j->req) {
    if (rc) log_warn("channel lookup failed: %s", err_str(rc));
    else log_info("learned channel %02x%02x%02x%02x… from the chain", e->id[0], e->id[1], e->id[2], e->id[3]);
  }
  if (!j->req) return;
  if (rc) {
    ctl_reply_err(j->req, CTL_FAILED, "%s", rc == ERR_WRONG_SIGNER ? "that channel is not ours" : err_str(rc));
    return;
  }
  if (channel_get(p->db, e->id, &ch)) ctl_reply_err(j->req, CTL_INTERNAL, "channel vanished");
  else ctl_reply_ok(j->req, channel_to_json(&ch));
}


/* Claims everything unclaimed now for a pay.claim request. */
void paysvc__start_forced(paysvc *p, ctl_req *req) {
  p->force_wait = NULL;
  int n = p->stopping ? ERR_CANCELED : paysvc__claim_due(p, 1);
  if (n < 0) ctl_reply_err(req, CTL_FAILED, "%s", err_str(n));
  else if (n == 0) ctl_reply_ok(req, json_pack("{s:[]}", "claims"));
  else p->force_req = req;
}

static void after_claim(job *j) {
  paysvc *p = j->p;
  p->claiming = 0;
  json_t *arr = json_array();
  for (size_t i = 0; i < j->n; i++) {
    job_entry *e = &j->e[i];
    note_chain(p, e->state_rc);
    channel cur;
    int rc = 0;
    if (!e->state_rc)
      rc = channel_set_chain(p->db, e->id, &e->st.deposit, e->st.expiry, &e->st.claimed, e->st.closed);
    else if (!e->rc && !channel_get(p->db, e->id, &cur)) /* mined, but not read back: claimed >= amount */
      rc = channel_set_chain(p->db, e->id, &cur.deposit, cur.expiry, &e->amount, cur.closed);
    if (rc) log_error("cannot record a claim: %s", store_errmsg(p->db));
    char id[67], amt[U256_DEC_BUF];
    paysvc__hex0x(e->id, 32, id);
    u256_to_dec(&e->amount, amt);
    if (e->already) log_info("channel %.10s… was claimed on chain already (voucher total %s wei): recorded", id, amt);
    else if (!e->rc) log_info("claimed channel %.10s…: voucher total %s wei", id, amt);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:s}", "channel", id, "amount", amt, "ok", !e->rc,
                                         "error", e->rc ? err_str(e->rc) : ""));
  }
  if (p->force_req) {
    ctl_reply_ok(p->force_req, json_pack("{s:o}", "claims", arr));
    p->force_req = NULL;
  } else {
    json_decref(arr);
  }
  if (p->force_wait) paysvc__start_forced(p, p->force_wait);
}

static void after_work_cb(uv_work_t *w, int status) {
  job *j = w->data;
  paysvc *p = j->p;
  if (status == 0) {
    if (j->kind == JOB_LOOKUP || j->kind == JOB_OPEN) after_lookup(j);
    else after_claim(j);
  } else {
    if (j->kind == JOB_CLAIM) p->claiming = 0;
    if (j->open_cb) j->open_cb(j->open_ud, ERR_CANCELED, NULL, "canceled");
    if (j->req) ctl_reply_err(j->req, CTL_FAILED, "canceled");
  }
  free(j);
  p->pending--;
  paysvc__maybe_free(p);
}

static int queue_job(paysvc *p, job *j) {
  j->p = p;
  j->w.data = j;
  int rc = uv_queue_work(p->loop, &j->w, work_cb, after_work_cb);
  if (rc) { free(j); return ERR_NOMEM; }
  p->pending++;
  return 0;
}

int paysvc__start_lookup(paysvc *p, const uint8_t id[32], channel_role role, const uint8_t *peer, ctl_req *req) {
  if (!req) {
    for (int i = 0; i < p->n_lookups; i++)
      if (!memcmp(p->lookups[i], id, 32)) return 0;
    if (p->n_lookups >= LOOKUPS_MAX) return ERR_TOOBIG;
  }
  job *j = calloc(1, sizeof *j);
  if (!j) return ERR_NOMEM;
  j->kind = JOB_LOOKUP;
  j->req = req;
  j->role = role;
  if (peer) memcpy(j->peer, peer, 32);
  j->n = 1;
  memcpy(j->e[0].id, id, 32);
  int rc = queue_job(p, j);
  if (!rc && !req) memcpy(p->lookups[p->n_lookups++], id, 32);
  return rc;
}

/* Starts a claim job for the provider channels that are due (all with anything unclaimed
 * when force). Returns the number of channels, 0 when none is due. */
int paysvc__claim_due(paysvc *p, int force) {
  if (p->claiming || !p->have_wallet || !p->chain_id) return 0;
  static channel list[CHANNEL_MAX_LIST];
  int n = channel_list(p->db, CHANNEL_PROVIDER, list, CHANNEL_MAX_LIST);
  if (n < 0) { log_error("cannot list channels: %s", store_errmsg(p->db)); return n; }
  job *j = calloc(1, sizeof *j);
  if (!j) return ERR_NOMEM;
  j->kind = JOB_CLAIM;
  uint64_t now = paysvc__now_s();
  for (int i = 0; i < n && j->n < JOB_MAX; i++) {
    channel *c = &list[i];
    u256 unclaimed;
    if (c->closed || c->chain_id != p->chain_id || memcmp(c->escrow, p->escrow, 20)) continue;
    if (u256_sub(&unclaimed, &c->amount, &c->claimed) || u256_is_zero(&unclaimed)) continue;
    int due = force || u256_cmp(&unclaimed, &p->threshold) >= 0 || c->expiry <= now + p->before_expiry_s;
    if (!due) continue;
    job_entry *e = &j->e[j->n++];
    memcpy(e->id, c->id, 32);
    e->amount = c->amount;
    memcpy(e->sig, c->sig, 65);
  }
  if (!j->n) { free(j); return 0; }
  int cnt = (int)j->n;
  int rc = queue_job(p, j);
  if (rc) return rc;
  p->claiming = 1;
  return cnt;
}

static void on_timer(uv_timer_t *t) {
  paysvc *p = t->data;
  if (!p->stopping) paysvc__claim_due(p, 0);
}

/* ---- for the market ---------------------------------------------------------------------
 * (the checks and accessors are in node/paymkt.c) */

typedef struct open_ctx {
  paysvc *p;
  uint8_t pk[32];
  u256 deposit;
  uint64_t lifetime_s;
  paysvc_open_cb cb;
  void *ud;
} open_ctx;

static void on_open_info(void *ud, const rpc_reply *reply) {
  open_ctx *c = ud;
  paysvc *p = c->p;
  char msg[300];
  uint8_t provider[20], esc[20];
  const char *pa = reply->kind == RPC_REPLY_RESULT ? json_string_value(json_object_get(reply->result, "address")) : NULL;
  const char *pe = reply->kind == RPC_REPLY_RESULT ? json_string_value(json_object_get(reply->result, "escrow")) : NULL;
  uint64_t pc = reply->kind == RPC_REPLY_RESULT ? (uint64_t)json_integer_value(json_object_get(reply->result, "chain_id")) : 0;
  int rc = 0;
  if (reply->kind != RPC_REPLY_RESULT) {
    snprintf(msg, sizeof msg, "provider unreachable: %s", reply->message ? reply->message : "no answer");
    rc = -EHOSTUNREACH;
  } else if (!pa || wallet_addr_parse(pa, strlen(pa), provider)) {
    snprintf(msg, sizeof msg, "the provider has no wallet");
    rc = ERR_INVAL;
  } else if (pc != p->chain_id || !pe || wallet_addr_parse(pe, strlen(pe), esc) || memcmp(esc, p->escrow, 20)) {
    snprintf(msg, sizeof msg, "the provider takes payments on another chain or escrow");
    rc = ERR_WRONG_CHAIN;
  }
  job *j = rc || p->stopping ? NULL : calloc(1, sizeof *j);
  if (!rc && !j) {
    snprintf(msg, sizeof msg, "%s", p->stopping ? "node stopping" : "out of memory");
    rc = ERR_NOMEM;
  }
  if (!rc) {
    j->kind = JOB_OPEN;
    j->role = CHANNEL_CLIENT;
    memcpy(j->peer, c->pk, 32);
    memcpy(j->provider, provider, 20);
    j->deposit = c->deposit;
    j->expiry = paysvc__now_s() + c->lifetime_s;
    j->open_cb = c->cb;
    j->open_ud = c->ud;
    j->n = 1;
    rc = queue_job(p, j);
    if (rc) snprintf(msg, sizeof msg, "cannot start the chain job");
  }
  if (rc) c->cb(c->ud, rc, NULL, msg);
  free(c);
  p->pending--;
  paysvc__maybe_free(p);
}

int paysvc_open_channel(paysvc *p, const uint8_t pk[32], const u256 *deposit, uint64_t lifetime_s,
                        paysvc_open_cb cb, void *ud) {
  if (!paysvc_enabled(p)) return ERR_INVAL;
  open_ctx *c = calloc(1, sizeof *c);
  if (!c) return ERR_NOMEM;
  c->p = p;
  memcpy(c->pk, pk, 32);
  c->deposit = *deposit;
  c->lifetime_s = lifetime_s;
  c->cb = cb;
  c->ud = ud;
  p->pending++;
  int rc = netsvc_call(p->ns, pk, "pay.info", json_object(), 10000, on_open_info, c);
  if (rc) {
    p->pending--;
    free(c);
  }
  return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int paysvc_start(uv_loop_t *loop, const char *wallet_path, const config *cfg, store *db, netsvc *ns,
                 ctl_server *ctl, paysvc **out, char *err, size_t err_cap) {
  /* No wallet file turns payments off; a wallet that is there but cannot be used (readable
   * by others, encrypted without the passphrase, malformed) stops the node instead. */
  wallet w;
  int wrc = wallet_load(wallet_path, &w);
  if (wrc && wrc != -ENOENT) {
    if (wrc == ERR_PERM)
      snprintf(err, err_cap, "%s is readable by other users; fix it with: chmod 600 %s", wallet_path, wallet_path);
    else if (wrc == ERR_LOCKED)
      snprintf(err, err_cap, "%s is encrypted: give its passphrase ($APIARY_PASSPHRASE or --passphrase-file F)",
               wallet_path);
    else
      snprintf(err, err_cap, "cannot load the wallet %s: %s", wallet_path, err_str(wrc));
    return wrc;
  }
  paysvc *p = calloc(1, sizeof *p);
  if (!p) { wallet_wipe(&w); snprintf(err, err_cap, "out of memory"); return ERR_NOMEM; }
  p->loop = loop;
  p->db = db;
  p->ns = ns;
  p->have_wallet = wrc == 0;
  if (p->have_wallet) p->w = w;
  wallet_wipe(&w);
  if (!p->have_wallet) log_warn("no wallet at %s: payments are off", wallet_path);
  snprintf(p->rpc_url, sizeof p->rpc_url, "%s", config_str(cfg, "chain", "rpc"));
  snprintf(p->escrow_text, sizeof p->escrow_text, "%s", config_str(cfg, "chain", "escrow"));
  snprintf(p->registry_text, sizeof p->registry_text, "%s", config_str(cfg, "chain", "registry"));
  snprintf(p->governance_text, sizeof p->governance_text, "%s", config_str(cfg, "chain", "governance"));
  p->chain_id = (uint64_t)config_int(cfg, "chain", "chain_id");
  if (p->chain_id && (!p->escrow_text[0] || wallet_addr_parse(p->escrow_text, strlen(p->escrow_text), p->escrow))) {
    log_warn("config [chain] escrow is not a valid address: payments are off");
    p->chain_id = 0;
  }
  const char *th = config_str(cfg, "pay", "claim_threshold_wei");
  if (channel_amount_parse(th, &p->threshold)) {
    snprintf(err, err_cap, "config [pay] claim_threshold_wei: not an amount: %s", th);
    free(p);
    return ERR_CONFIG;
  }
  p->before_expiry_s = (uint64_t)config_int(cfg, "pay", "claim_before_expiry");
  p->margin_s = (uint64_t)config_int(cfg, "pay", "expiry_margin");
  p->interval_s = (uint64_t)config_int(cfg, "pay", "claim_interval");

  paysvc__register_methods(p, ns, ctl); /* node/payctl.c */

  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  p->timer_open = 1;
  uint64_t ms = p->interval_s * 1000;
  uv_timer_start(&p->timer, on_timer, ms < 2000 ? ms : 2000, ms); /* first check soon after start */
  if (p->chain_id) log_info("payments on chain %llu, escrow %s", (unsigned long long)p->chain_id, p->escrow_text);
  *out = p;
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  paysvc *p = h->data;
  p->timer_open = 0;
  paysvc__maybe_free(p);
}

void paysvc_stop(paysvc *p) {
  if (!p || p->stopping) return;
  p->stopping = 1;
  uv_close((uv_handle_t *)&p->timer, timer_closed);
}


