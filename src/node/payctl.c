/* node/payctl — the payment service's peer methods (pay.info, pay.channel, pay.voucher)
 * and control methods (pay.*); see paysvc.h and docs/payments.md. */
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

/* ---- peer methods --------------------------------------------------------------------- */

static void m_peer_info(void *ud, rpc *r, const rpc_request *req) {
  paysvc *p = ud;
  json_t *res = paysvc__info_json(p);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

static void m_peer_channel(void *ud, rpc *r, const rpc_request *req) {
  paysvc *p = ud;
  uint8_t id[32];
  if (hex_parse(json_string_value(json_object_get(req->params, "channel")), id, 32)) {
    rpc_respond_error(r, req->handle, -32602, "need a channel id", NULL);
    return;
  }
  channel ch;
  if (p->chain_id && p->have_wallet && channel_get(p->db, id, &ch) == ERR_NOTFOUND)
    paysvc__start_lookup(p, id, CHANNEL_PROVIDER, NULL, NULL);
  json_t *res = json_pack("{s:b}", "ok", 1);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

static void m_peer_voucher(void *ud, rpc *r, const rpc_request *req) {
  paysvc *p = ud;
  voucher v;
  if (!p->have_wallet || !p->chain_id) {
    rpc_respond_error(r, req->handle, PAY_E_DISABLED, "this node takes no payments (no chain deployment)", NULL);
    return;
  }
  if (voucher_from_json(req->params, &v)) {
    rpc_respond_error(r, req->handle, -32602, "malformed voucher", NULL);
    return;
  }
  int rc = (v.chain_id != p->chain_id || memcmp(v.escrow, p->escrow, 20)) ? ERR_WRONG_CHAIN
           : voucher_accept(p->db, &v, paysvc__now_s(), p->margin_s, NULL);
  if (rc == ERR_UNKNOWN_CHANNEL) {
    channel ch;
    if (channel_get(p->db, v.channel_id, &ch) == ERR_NOTFOUND) paysvc__start_lookup(p, v.channel_id, CHANNEL_PROVIDER, NULL, NULL);
    rpc_respond_error(r, req->handle, PAY_E_UNKNOWN, "unknown channel (looking it up on chain; retry)", NULL);
    return;
  }
  if (rc == ERR_OVERSPEND || rc == ERR_EXPIRED) /* the cache may be stale (topUp, extend): re-read it */
    paysvc__start_lookup(p, v.channel_id, 0, NULL, NULL);
  if (rc) {
    json_t *data = json_pack("{s:i}", "code", rc);
    rpc_respond_error(r, req->handle, PAY_E_REFUSED, err_str(rc), data);
    json_decref(data);
    return;
  }
  /* committed: only now is the voucher acknowledged */
  char amt[U256_DEC_BUF];
  u256_to_dec(&v.amount, amt);
  json_t *res = json_pack("{s:s}", "accepted", amt);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
  paysvc__claim_due(p, 0);
}

/* ---- control methods ------------------------------------------------------------------ */

static void c_info(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  json_t *o = paysvc__info_json(p);
  json_object_set_new(o, "rpc", json_string(p->rpc_url));
  json_object_set_new(o, "chain_reachable", json_boolean(!p->offline));
  ctl_reply_ok(req, o);
}

typedef struct peer_ctx {
  ctl_req *req;
} peer_ctx;

static void on_peer_info(void *ud, const rpc_reply *reply) {
  peer_ctx *c = ud;
  if (reply->kind == RPC_REPLY_RESULT) ctl_reply_ok(c->req, json_incref(reply->result));
  else ctl_reply_err(c->req, CTL_FAILED, "peer: %s", reply->message && *reply->message ? reply->message : "no answer");
  free(c);
}

static int node_param(json_t *params, uint8_t pk[32]) {
  const char *s = json_string_value(json_object_get(params, "node_id"));
  return s ? ident_id_decode(s, strlen(s), pk) : ERR_INVAL;
}

static void c_peer_info(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  uint8_t pk[32];
  if (node_param(params, pk)) { ctl_reply_err(req, CTL_INVALID_PARAMS, "need a valid node id"); return; }
  peer_ctx *c = calloc(1, sizeof *c);
  if (!c) { ctl_reply_err(req, CTL_INTERNAL, "out of memory"); return; }
  c->req = req;
  int rc = netsvc_call(p->ns, pk, "pay.info", json_object(), 10000, on_peer_info, c);
  if (rc) {
    ctl_reply_err(req, CTL_FAILED, rc == ERR_INVAL ? "that is this node" : "cannot reach it: %s", err_str(rc));
    free(c);
  }
}

static void c_channel_add(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  uint8_t id[32], pk[32];
  if (!p->chain_id) { ctl_reply_err(req, CTL_FAILED, "no chain deployment configured"); return; }
  if (hex_parse(json_string_value(json_object_get(params, "channel")), id, 32) || node_param(params, pk)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need channel and node_id");
    return;
  }
  int rc = paysvc__start_lookup(p, id, CHANNEL_CLIENT, pk, req);
  if (rc) ctl_reply_err(req, CTL_FAILED, "%s", err_str(rc));
}

static void c_refresh(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  uint8_t id[32];
  channel ch;
  if (hex_parse(json_string_value(json_object_get(params, "channel")), id, 32)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need a channel id");
    return;
  }
  if (channel_get(p->db, id, &ch)) { ctl_reply_err(req, CTL_FAILED, "unknown channel"); return; }
  int rc = paysvc__start_lookup(p, id, 0, NULL, req);
  if (rc) ctl_reply_err(req, CTL_FAILED, "%s", err_str(rc));
}

static void c_channels(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  static channel list[CHANNEL_MAX_LIST];
  int n = channel_list(p->db, 0, list, CHANNEL_MAX_LIST);
  if (n < 0) { ctl_reply_err(req, CTL_INTERNAL, "%s", store_errmsg(p->db)); return; }
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(arr, channel_to_json(&list[i]));
  ctl_reply_ok(req, json_pack("{s:o}", "channels", arr));
}

static void c_claim(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  if (p->force_req || p->force_wait) { ctl_reply_err(req, CTL_FAILED, "a claim is already running; try again"); return; }
  if (p->claiming) { p->force_wait = req; return; } /* after the automatic claim */
  paysvc__start_forced(p, req);
}

/* pay.send: sign the next cumulative voucher and hand it to the provider. */
typedef struct send_ctx {
  paysvc *p;
  ctl_req *req;
  uint8_t pk[32];
  voucher v;
  u256 added;
  int tries;
  uv_timer_t t;
} send_ctx;

static void send_closed(uv_handle_t *h) {
  send_ctx *c = h->data;
  paysvc *p = c->p;
  free(c);
  p->pending--;
  paysvc__maybe_free(p);
}

static void send_now(send_ctx *c);

static void send_retry(uv_timer_t *t) {
  send_ctx *c = t->data;
  if (c->p->stopping) {
    ctl_reply_err(c->req, CTL_FAILED, "node stopping");
    uv_close((uv_handle_t *)&c->t, send_closed);
    return;
  }
  send_now(c);
}

static void on_voucher_reply(void *ud, const rpc_reply *reply) {
  send_ctx *c = ud;
  if (reply->kind == RPC_REPLY_ERROR && reply->code == PAY_E_UNKNOWN && ++c->tries < SEND_RETRIES && !c->p->stopping) {
    uv_timer_start(&c->t, send_retry, SEND_RETRY_MS, 0);
    return;
  }
  char id[67], total[U256_DEC_BUF], added[U256_DEC_BUF];
  paysvc__hex0x(c->v.channel_id, 32, id);
  u256_to_dec(&c->v.amount, total);
  u256_to_dec(&c->added, added);
  if (reply->kind == RPC_REPLY_RESULT)
    ctl_reply_ok(c->req, json_pack("{s:s, s:s, s:s, s:b}", "channel", id, "total", total, "paid", added, "accepted", 1));
  else
    ctl_reply_err(c->req, CTL_FAILED, "provider refused the voucher: %s",
                  reply->message && *reply->message ? reply->message : "no answer");
  uv_close((uv_handle_t *)&c->t, send_closed);
}

static void send_now(send_ctx *c) {
  int rc = netsvc_call(c->p->ns, c->pk, "pay.voucher", voucher_to_json(&c->v), 15000, on_voucher_reply, c);
  if (rc) {
    ctl_reply_err(c->req, CTL_FAILED, "cannot reach the provider: %s", err_str(rc));
    uv_close((uv_handle_t *)&c->t, send_closed);
  }
}

static void c_send(ctl_req *req, json_t *params, void *ud) {
  paysvc *p = ud;
  uint8_t pk[32];
  u256 add;
  const char *amt = json_string_value(json_object_get(params, "amount"));
  if (node_param(params, pk) || !amt || channel_amount_parse(amt, &add) || u256_is_zero(&add)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need node_id and a positive amount");
    return;
  }
  if (!p->have_wallet || !p->chain_id) { ctl_reply_err(req, CTL_FAILED, "no wallet or chain deployment"); return; }
  channel ch;
  int rc = channel_find_client(p->db, pk, p->chain_id, p->escrow, &ch);
  if (rc) {
    ctl_reply_err(req, CTL_FAILED, rc == ERR_NOTFOUND ? "no open channel to that node; run 'apiary channel open'" : "%s",
                  err_str(rc));
    return;
  }
  send_ctx *c = calloc(1, sizeof *c);
  if (!c) { ctl_reply_err(req, CTL_INTERNAL, "out of memory"); return; }
  u256 total;
  rc = u256_add(&total, &ch.amount, &add);
  if (!rc) rc = voucher_sign(&ch, &p->w, &total, paysvc__now_s(), &c->v);
  /* Record what we signed before it leaves: we never sign two vouchers for one amount. */
  if (!rc) rc = store_begin(p->db);
  if (!rc) {
    rc = channel_set_voucher(p->db, ch.id, &total, c->v.sig);
    if (!rc) rc = store_commit(p->db);
    if (rc) store_rollback(p->db);
  }
  if (rc) {
    ctl_reply_err(req, CTL_FAILED, "cannot sign: %s", err_str(rc));
    free(c);
    return;
  }
  c->p = p;
  c->req = req;
  c->added = add;
  memcpy(c->pk, pk, 32);
  uv_timer_init(p->loop, &c->t);
  c->t.data = c;
  p->pending++;
  send_now(c);
}


void paysvc__register_methods(paysvc *p, netsvc *ns, ctl_server *ctl) {
  rpc_method pm[] = {{"pay.info", RPC_PARAMS_ANY, m_peer_info, p},
                     {"pay.channel", RPC_PARAMS_OBJECT, m_peer_channel, p},
                     {"pay.voucher", RPC_PARAMS_OBJECT, m_peer_voucher, p}};
  for (size_t i = 0; i < sizeof pm / sizeof *pm; i++) netsvc_register(ns, &pm[i]);
  ctl_server_add(ctl, "pay.info", c_info, p);
  ctl_server_add(ctl, "pay.peer_info", c_peer_info, p);
  ctl_server_add(ctl, "pay.channel_add", c_channel_add, p);
  ctl_server_add(ctl, "pay.channels", c_channels, p);
  ctl_server_add(ctl, "pay.refresh", c_refresh, p);
  ctl_server_add(ctl, "pay.send", c_send, p);
  ctl_server_add(ctl, "pay.claim", c_claim, p);
}
