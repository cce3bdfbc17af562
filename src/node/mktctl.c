/* node/mktctl — the buyer's view of the network's offers (asked of every peer whose link
 * comes up; the snapshot GET /v1/models reads) and its control methods (`market.offers`,
 * `market.receipts`, the status); see mktsvc.h. */
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


/* ---- offers ------------------------------------------------------------------------------ */

/* What the network offers, by model: for GET /v1/models (read on HTTP threads). */
static void update_snapshot(mktsvc *m) {
  json_t *arr = mkt_route_models_json(m->rt);
  char *text = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  pthread_mutex_lock(&m->mu);
  free(m->models_json);
  m->models_json = text;
  pthread_mutex_unlock(&m->mu);
}

json_t *mktsvc_models(mktsvc *m) {
  pthread_mutex_lock(&m->mu);
  json_t *j = m->models_json ? json_loads(m->models_json, 0, NULL) : NULL;
  pthread_mutex_unlock(&m->mu);
  return j ? j : json_array();
}

typedef struct offers_ctx {
  mktsvc *m;
  uint8_t pk[32];
} offers_ctx;

static void on_offers(void *ud, const rpc_reply *reply) {
  offers_ctx *c = ud;
  mktsvc *m = c->m;
  m->jobs--;
  if (!m->closing) {
    mkt_offer offers[MKT_MAX_OFFERS];
    char err[200];
    size_t n = 0;
    if (reply->kind == RPC_REPLY_RESULT &&
        mkt_offers_from_json(json_object_get(reply->result, "offers"), offers, MKT_MAX_OFFERS, &n, err, sizeof err) ==
            0) {
      mkt_route_offers(m->rt, mktsvc__now_ms(m), c->pk, offers, n);
      update_snapshot(m);
    } else {
      if (reply->kind == RPC_REPLY_RESULT) log_debug("bad offers from a peer: %s", err);
      mkt_route_offers_failed(m->rt, c->pk);
    }
    mktsvc__drain(m);
  }
  free(c);
}

void mktsvc__ask_offers(mktsvc *m, const uint8_t pk[32]) {
  offers_ctx *c = malloc(sizeof *c);
  if (!c) { mkt_route_offers_failed(m->rt, pk); return; }
  c->m = m;
  memcpy(c->pk, pk, 32);
  m->jobs++;
  if (netsvc_call(m->ns, pk, "market.offers", json_object(), 10000, on_offers, c)) {
    m->jobs--;
    free(c);
    mkt_route_offers_failed(m->rt, pk);
  }
}


void mktsvc__on_link_ready(void *ud, const uint8_t pk[32]) {
  mktsvc *m = ud;
  if (m->closing) return;
  mkt_route_link_up(m->rt, pk);
  mktsvc__drain(m);
  mktsvc__resend_unacked(m, 0); /* a provider is back: settle what it never answered */
}

typedef struct offers_list {
  mktsvc *m;
  json_t *arr;
} offers_list;

static void list_peer(void *ud, const uint8_t pk[32], const mkt_offer *offers, size_t n) {
  offers_list *l = ud;
  char id[IDENT_ID_BUF];
  ident_id_encode(pk, id);
  json_t *o = mkt_offers_to_json(offers, n);
  mkt_provider_stats st;
  int have = mkt_stats_get(l->m->db, pk, &st) == 0;
  size_t i;
  json_t *x;
  json_array_foreach(o, i, x) {
    json_object_set_new(x, "node", json_string(id));
    json_object_set_new(x, "linked", json_boolean(netsvc_linked(l->m->ns, pk)));
    if (have && st.latency_ms >= 0) json_object_set_new(x, "latency_ms", json_real(st.latency_ms));
    if (have) json_object_set_new(x, "failures", json_integer(st.failures));
    if (have) json_object_set_new(x, "mismatches", json_integer(st.mismatches));
    if (have) json_object_set_new(x, "verifications", json_integer(st.verifications));
    json_array_append(l->arr, x);
  }
  json_decref(o);
}

void mktsvc__c_offers(ctl_req *req, json_t *params, void *ud) {
  (void)params;
  mktsvc *m = ud;
  json_t *arr = json_array();
  char id[IDENT_ID_BUF];
  size_t n;
  const mkt_offer *own = m->gen ? gensvc_offers(m->gen, &n) : (n = 0, NULL);
  ident_id_encode(m->me, id);
  json_t *o = mkt_offers_to_json(own, n);
  size_t i;
  json_t *x;
  json_array_foreach(o, i, x) {
    json_object_set_new(x, "node", json_string(id));
    json_object_set_new(x, "self", json_true());
    json_array_append(arr, x);
  }
  json_decref(o);
  offers_list l = {m, arr};
  mkt_route_each_offer(m->rt, list_peer, &l);
  json_t *agents = m->agents_fn ? m->agents_fn(m->agents_ud) : NULL;
  ctl_reply_ok(req, json_pack("{s:o, s:o}", "offers", arr, "agents", agents ? agents : json_array()));
}

void mktsvc_set_agents_lister(mktsvc *m, mktsvc_agents_fn fn, void *ud) {
  m->agents_fn = fn;
  m->agents_ud = ud;
}

void mktsvc__c_receipts(ctl_req *req, json_t *params, void *ud) {
  mktsvc *m = ud;
  int role = (int)json_integer_value(json_object_get(params, "role"));
  static mkt_receipt list[MKT_RECEIPT_MAX_LIST];
  int n = mkt_receipt_list(m->db, role == 1 || role == 2 ? (mkt_role)role : 0, list, MKT_RECEIPT_MAX_LIST);
  if (n < 0) { ctl_reply_err(req, CTL_INTERNAL, "%s", store_errmsg(m->db)); return; }
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(arr, mkt_receipt_to_json(&list[i]));
  ctl_reply_ok(req, json_pack("{s:o}", "receipts", arr));
}

json_t *mktsvc_status(mktsvc *m) {
  int providers, offers;
  mkt_route_known(m->rt, &providers, &offers);
  size_t own = 0;
  if (m->gen) gensvc_offers(m->gen, &own);
  static mkt_unacked unacked[MKT_UNACKED_MAX];
  int n_unacked = mkt_pay_unacked_list(m->db, unacked, MKT_UNACKED_MAX);
  return json_pack("{s:i, s:i, s:i, s:i, s:i, s:f, s:b, s:i}", "requests_routing", mkt_route_n_requests(m->rt),
                   "providers_known", providers, "offers_known", offers, "offers_own", (int)own,
                   "generations_selling", m->gen ? gensvc_n_active(m->gen) : 0, "verify_rate", m->verify_rate,
                   "registry_check", m->registry_on, "vouchers_unanswered", n_unacked < 0 ? 0 : n_unacked);
}

