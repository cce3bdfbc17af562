/* node/negsvc — negotiation sessions over the links: the peer methods neg.intents,
 * neg.open, neg.message and neg.deal, and one agent/neg_engine per session driven on the
 * loop (see negsvc.h; wire format in docs/protocol.md). Loop thread. */
#include "node/negsvc_impl.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/eip712.h"
#include "p2p/rpc.h"

#define CALL_TIMEOUT_MS 15000
#define DEAL_WAIT_MS 60000     /* a responder that agreed waits this long for the deal */
#define DEAL_CLOCK_SKEW_MS 600000
#define IDLE_MS 60000          /* a running session with no message either way for this long ends */

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define REFUSE(r, handle, code, msg)                      \
  do {                                                   \
    rpc_respond_error((r), (handle), (code), (msg), NULL); \
    return;                                              \
  } while (0)

neg_owner_intent *negsvc__load_intent(negsvc *n, const char *id) {
  char *def = neg_store_intent_get(n->db, id);
  if (!def) return NULL;
  neg_owner_intent *o = malloc(sizeof *o);
  char err[300];
  if (o && neg_owner_parse(def, strlen(def), o, err, sizeof err)) {
    log_warn("negotiation intent %s in the store cannot be read: %s", id, err);
    free(o);
    o = NULL;
  }
  free(def);
  return o;
}

json_t *negsvc__public_intents(negsvc *n) {
  json_t *l = neg_store_intent_list(n->db), *out = json_array();
  neg_owner_intent *o = malloc(sizeof *o);
  size_t i;
  json_t *d;
  char err[300];
  json_array_foreach(l, i, d) {
    if (o && !neg_owner_from_json(d, o, err, sizeof err)) json_array_append_new(out, neg_owner_public(o));
  }
  free(o);
  json_decref(l);
  return out;
}

json_t *negsvc__session_json(negsvc *n, const char *id) {
  json_t *l = neg_store_session_list(n->db), *found = NULL;
  size_t i;
  json_t *x;
  json_array_foreach(l, i, x) {
    if (!found && !strcmp(json_string_value(json_object_get(x, "id")) ?: "", id)) found = json_incref(x);
  }
  json_decref(l);
  return found ? found : json_null();
}

/* ---- sessions ---------------------------------------------------------------------------- */

static neg_sess *find_sess(negsvc *n, const uint8_t id[NEG_SESSION_BYTES], const uint8_t peer[32]) {
  for (neg_sess *s = n->sessions; s; s = s->next)
    if (!memcmp(s->id, id, NEG_SESSION_BYTES) && !memcmp(s->peer, peer, 32)) return s;
  return NULL;
}

static void on_closed(uv_handle_t *h) {
  neg_sess *s = h->data;
  neg_engine_free(s->eng);
  neg_deal_deinit(&s->deal);
  free(s->mine);
  free(s);
}

static void maybe_free(neg_sess *s) {
  if (!s->ended || s->rpc_live || s->req || s->closed) return;
  negsvc *n = s->n;
  for (neg_sess **p = &n->sessions; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  n->n_sessions--;
  s->closed = 1;
  uv_close((uv_handle_t *)&s->timer, on_closed);
}

static void save(neg_sess *s) {
  if (neg_store_session_put(s->n->db, &s->row)) log_warn("cannot record negotiation %s: %s", s->row.id, store_errmsg(s->n->db));
}

/* The session ended in state (agreed, no_deal, failed): recorded, the owner answered. */
static void finish(neg_sess *s, const char *state, const char *reason) {
  if (s->ended) return;
  snprintf(s->row.state, sizeof s->row.state, "%s", state);
  snprintf(s->row.reason, sizeof s->row.reason, "%s", reason ? reason : "");
  save(s);
  s->ended = 1;
  uv_timer_stop(&s->timer);
  char who[IDENT_ID_BUF];
  ident_id_encode(s->peer, who);
  log_info("negotiation %s with %s: %s%s%s", s->row.id, who, state, reason && *reason ? ": " : "", reason ? reason : "");
  if (s->req) ctl_reply_ok(s->req, negsvc__session_json(s->n, s->row.id));
  s->req = NULL;
  maybe_free(s);
}

/* ---- wallet signatures of the payment terms ------------------------------------------- */

/* Signs dl's EIP-712 digest as side (0 a, 1 b) into e: chain_id, addr_<side>, sig_<side>
 * (0x hex). 0, or nonzero when there is nothing to sign (no wallet, no price term). */
static int wallet_sign(negsvc *n, const neg_deal *dl, int side, json_t *e) {
  uint8_t dg[32], sig[65];
  if (!n->w || neg_deal_eip712_digest(dl, n->chain_id, dg) || eip712_sign(n->w, dg, sig)) return -1;
  char addr[WALLET_ADDR_BUF], hex[2 + 130 + 1] = "0x";
  wallet_addr_eip55(n->w->addr, addr);
  hex_encode(sig, 65, hex + 2);
  json_object_set_new(e, "chain_id", json_integer((json_int_t)n->chain_id));
  json_object_set_new(e, side ? "addr_b" : "addr_a", json_string(addr));
  json_object_set_new(e, side ? "sig_b" : "sig_a", json_string(hex));
  return 0;
}

/* Side's wallet signature in e recovers to its addr over dl's digest on our chain. */
static int wallet_check(negsvc *n, const neg_deal *dl, int side, const json_t *e) {
  const char *a = json_string_value(json_object_get(e, side ? "addr_b" : "addr_a"));
  const char *h = json_string_value(json_object_get(e, side ? "sig_b" : "sig_a"));
  uint8_t addr[WALLET_ADDR_BYTES], sig[65], dg[32], got[WALLET_ADDR_BYTES];
  if (!a || !h || strlen(h) != 132 || strncmp(h, "0x", 2) || wallet_addr_parse(a, strlen(a), addr) ||
      hex_parse(h + 2, sig, 65))
    return -1;
  if ((uint64_t)json_integer_value(json_object_get(e, "chain_id")) != n->chain_id) return -1;
  if (neg_deal_eip712_digest(dl, n->chain_id, dg) || eip712_recover(dg, sig, got)) return -1;
  return sodium_memcmp(got, addr, sizeof addr) ? -1 : 0;
}

/* Stores the signed deal (both signatures verified by the caller; eip712: the checked
 * wallet signatures, or NULL) and the session row in one commit. 0 or ERR_STORE. */
static int store_deal(neg_sess *s, const neg_deal *dl, json_t *eip712) {
  negsvc *n = s->n;
  neg_deal_payment pay;
  neg_deal_payment_terms(dl, &pay);
  const uint8_t *seller = s->mine->intent.seek ? s->peer : n->id->pk;
  const uint8_t *buyer = s->mine->intent.seek ? n->id->pk : s->peer;
  uint64_t created_s = (uint64_t)json_integer_value(json_object_get(dl->doc, "created_ms")) / 1000;
  json_t *j = neg_deal_to_json(dl);
  if (j && eip712) json_object_set(j, "eip712", eip712);
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  if (!text) return ERR_NOMEM;
  snprintf(s->row.state, sizeof s->row.state, "agreed");
  int rc = store_begin(n->db);
  if (!rc) rc = neg_store_deal_put(n->db, s->row.id, seller, buyer, pay.has_price ? pay.price_per_1k_wei : 0,
                                   pay.volume_tokens, pay.expires_s ? created_s + pay.expires_s : 0, text);
  if (!rc) rc = neg_store_session_put(n->db, &s->row);
  if (rc) store_rollback(n->db);
  else rc = store_commit(n->db);
  free(text);
  return rc;
}

static void act(neg_sess *s, const neg_action *a);

static void on_tick(uv_timer_t *t) {
  neg_sess *s = t->data;
  if (s->ended || s->n->closing) return;
  const neg_outcome *o = neg_engine_outcome(s->eng);
  if (o->status == NEG_AGREED) { /* a responder still waiting for the deal */
    finish(s, "failed", "agreed, but the opener sent no deal document in time");
    return;
  }
  if (uv_now(s->n->loop) - s->last_ms >= IDLE_MS) {
    finish(s, "failed", "no message either way for 60 s");
    return;
  }
  neg_action a;
  if (neg_engine_tick(s->eng, wall_ms(), &a) == 0) act(s, &a);
}

static void on_message_reply(void *ud, const rpc_reply *reply);
static void send_deal(neg_sess *s);

static void send_msg(neg_sess *s, const neg_msg *m) {
  json_t *p = neg_engine_encode(s->eng, m);
  if (!p) {
    finish(s, "failed", "cannot encode our message");
    return;
  }
  s->rpc_live++;
  if (netsvc_call(s->n->ns, s->peer, "neg.message", p, CALL_TIMEOUT_MS, on_message_reply, s)) {
    s->rpc_live--;
    finish(s, "failed", "cannot reach the counterpart");
  }
}

/* What the engine wants done: send, end, or be woken later. */
static void act(neg_sess *s, const neg_action *a) {
  s->last_ms = uv_now(s->n->loop);
  if (a->send) {
    if (a->msg.round + 1 > s->row.rounds) s->row.rounds = a->msg.round + 1;
    send_msg(s, &a->msg);
    if (s->ended) return;
  }
  if (a->done) {
    const neg_outcome *o = neg_engine_outcome(s->eng);
    if (o->status != NEG_AGREED) {
      finish(s, "no_deal", o->reason);
      return;
    }
    s->row.my_utility = o->utility;
    s->row.rounds = o->round + 1;
    save(s); /* still "running": agreed once the deal is signed by both */
    if (s->opener && !a->send) send_deal(s);  /* they accepted ours (else: after our accept's reply) */
    if (!s->opener) uv_timer_start(&s->timer, on_tick, DEAL_WAIT_MS, 0);
    return;
  }
  uint64_t now = wall_ms(), delay = a->wake_ms ? (a->wake_ms > now ? a->wake_ms - now : 0) : IDLE_MS;
  uv_timer_start(&s->timer, on_tick, delay < IDLE_MS ? delay : IDLE_MS, 0); /* the engine's wake, or the idle check */
}

static void on_message_reply(void *ud, const rpc_reply *reply) {
  neg_sess *s = ud;
  s->rpc_live--;
  if (s->ended || s->n->closing) {
    maybe_free(s);
    return;
  }
  if (reply->kind == RPC_REPLY_ERROR) {
    char why[200];
    snprintf(why, sizeof why, "the counterpart refused our message: %s (code %d)", reply->message ? reply->message : "",
             reply->code);
    finish(s, "failed", why);
    return;
  }
  if (s->opener && !s->deal_sent && neg_engine_outcome(s->eng)->status == NEG_AGREED) send_deal(s); /* we accepted */
}

static void on_deal_reply(void *ud, const rpc_reply *reply) {
  neg_sess *s = ud;
  s->rpc_live--;
  if (s->ended || s->n->closing) {
    maybe_free(s);
    return;
  }
  uint8_t sig[IDENT_SIG_BYTES];
  const char *h = reply->kind == RPC_REPLY_RESULT ? json_string_value(json_object_get(reply->result, "sig_b")) : NULL;
  if (!h || hex_parse(h, sig, sizeof sig)) {
    char why[200];
    snprintf(why, sizeof why, "the counterpart did not countersign the deal: %s",
             reply->kind == RPC_REPLY_ERROR && reply->message ? reply->message : "no signature");
    finish(s, "failed", why);
    return;
  }
  neg_deal_set_sig(&s->deal, 1, sig);
  if (neg_deal_verify(&s->deal)) {
    finish(s, "failed", "the counterpart's signature on the deal does not verify");
    return;
  }
  /* Wallet signatures: ours as sent, theirs when they gave one (it must verify). */
  json_t *mine = json_object(), *theirs = json_object_get(reply->result, "eip712");
  int signed_a = !wallet_sign(s->n, &s->deal, 0, mine);
  if (theirs && (!json_is_object(theirs) || wallet_check(s->n, &s->deal, 1, theirs) ||
                 (signed_a && !json_equal(json_object_get(theirs, "sig_a"), json_object_get(mine, "sig_a"))))) {
    json_decref(mine);
    finish(s, "failed", "the counterpart's wallet signature on the payment terms does not verify");
    return;
  }
  if (theirs && signed_a) {
    json_object_set(mine, "addr_b", json_object_get(theirs, "addr_b"));
    json_object_set(mine, "sig_b", json_object_get(theirs, "sig_b"));
  }
  int rc = store_deal(s, &s->deal, signed_a ? mine : NULL);
  json_decref(mine);
  if (rc) {
    finish(s, "failed", "cannot record the deal");
    return;
  }
  finish(s, "agreed", "");
}

/* The opener: the deal document for the agreed terms, signed as side a, to the responder. */
static void send_deal(neg_sess *s) {
  negsvc *n = s->n;
  const neg_outcome *o = neg_engine_outcome(s->eng);
  s->deal_sent = 1;
  if (neg_deal_init(&s->deal, &s->mine->intent.schema, &o->bid, s->id, n->id->pk, s->peer, o->round, wall_ms()) ||
      neg_deal_sign(&s->deal, n->id, 0)) {
    finish(s, "failed", "cannot sign the deal");
    return;
  }
  json_t *p = neg_deal_to_json(&s->deal), *e = json_object();
  json_object_set_new(p, "session", json_string(s->row.id));
  if (!wallet_sign(n, &s->deal, 0, e)) json_object_set(p, "eip712", e);
  json_decref(e);
  s->rpc_live++;
  if (netsvc_call(n->ns, s->peer, "neg.deal", p, CALL_TIMEOUT_MS, on_deal_reply, s)) {
    s->rpc_live--;
    finish(s, "failed", "cannot reach the counterpart with the deal");
  }
}

/* A new session (not started). Takes mine. NULL with why written. */
static neg_sess *sess_new(negsvc *n, const uint8_t id[NEG_SESSION_BYTES], const uint8_t peer[32], int opener,
                          neg_owner_intent *mine, const char *peer_intent, char *why, size_t cap) {
  neg_sess *s = calloc(1, sizeof *s);
  if (!s) {
    free(mine);
    snprintf(why, cap, "out of memory");
    return NULL;
  }
  s->n = n;
  s->mine = mine;
  memcpy(s->id, id, NEG_SESSION_BYTES);
  memcpy(s->peer, peer, 32);
  s->opener = opener;
  if (neg_seal_peer_key(peer, s->peer_xpk)) {
    snprintf(why, cap, "the counterpart's key has no X25519 form");
    goto fail;
  }
  neg_engine_cfg cfg = {.dom = &mine->intent.schema, .mandate = &mine->mandate, .strategy = mine->strategy,
                        .seed = randombytes_random(), .opener = opener, .keys = &n->keys, .peer_xpk = s->peer_xpk};
  memcpy(cfg.session, id, NEG_SESSION_BYTES);
  int rc = neg_engine_new(&cfg, &s->eng);
  if (rc) {
    snprintf(why, cap, "cannot run our mandate: %s", err_str(rc));
    goto fail;
  }
  hex_encode(id, NEG_SESSION_BYTES, s->row.id);
  memcpy(s->row.peer, peer, 32);
  s->row.opener = opener;
  snprintf(s->row.my_intent, sizeof s->row.my_intent, "%s", mine->id);
  snprintf(s->row.peer_intent, sizeof s->row.peer_intent, "%s", peer_intent);
  snprintf(s->row.state, sizeof s->row.state, "running");
  uv_timer_init(n->loop, &s->timer);
  s->last_ms = uv_now(n->loop);
  s->timer.data = s;
  s->next = n->sessions;
  n->sessions = s;
  n->n_sessions++;
  save(s);
  return s;
fail:
  neg_engine_free(s->eng);
  free(s->mine);
  free(s);
  return NULL;
}

/* ---- the opener ---------------------------------------------------------------------- */

static void on_open_reply(void *ud, const rpc_reply *reply) {
  neg_sess *s = ud;
  s->rpc_live--;
  if (s->ended || s->n->closing) {
    maybe_free(s);
    return;
  }
  if (reply->kind != RPC_REPLY_RESULT) {
    char why[200];
    snprintf(why, sizeof why, "the counterpart refused to negotiate: %s (code %d)", reply->message ? reply->message : "",
             reply->code);
    finish(s, "failed", why);
    return;
  }
  neg_action a;
  int rc = neg_engine_start(s->eng, wall_ms(), &a);
  if (rc) {
    finish(s, "failed", err_str(rc));
    return;
  }
  act(s, &a);
}

int negsvc__open(negsvc *n, const uint8_t peer[32], neg_owner_intent *mine, const char *peer_intent, ctl_req *req,
                 char id_out[33], char *why, size_t cap) {
  if (n->n_sessions >= NEGSVC_MAX_SESSIONS) {
    free(mine);
    snprintf(why, cap, "too many negotiations in flight");
    return ERR_BUSY;
  }
  uint8_t id[NEG_SESSION_BYTES];
  randombytes_buf(id, sizeof id);
  json_t *pub = neg_owner_public(mine);
  neg_sess *s = sess_new(n, id, peer, 1, mine, peer_intent, why, cap);
  if (!s) {
    json_decref(pub);
    return ERR_INVAL;
  }
  s->req = req;
  memcpy(id_out, s->row.id, 33);
  json_t *p = json_pack("{s:s, s:s, s:o}", "session", s->row.id, "intent", peer_intent, "opener_intent", pub);
  s->rpc_live++;
  if (netsvc_call(n->ns, peer, "neg.open", p, CALL_TIMEOUT_MS, on_open_reply, s)) {
    s->rpc_live--;
    s->req = NULL;
    finish(s, "failed", "cannot reach the counterpart");
    snprintf(why, cap, "cannot reach that node");
    return ERR_NOTFOUND;
  }
  return 0;
}

/* ---- peer methods ---------------------------------------------------------------------- */

static void m_intents(void *ud, rpc *r, const rpc_request *req) {
  negsvc *n = ud;
  json_t *res = json_pack("{s:o, s:i}", "intents", negsvc__public_intents(n), "v", 1);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

static int session_param(const json_t *params, uint8_t id[NEG_SESSION_BYTES]) {
  const char *h = json_string_value(json_object_get(params, "session"));
  return h && strlen(h) == 2 * NEG_SESSION_BYTES && !hex_parse(h, id, NEG_SESSION_BYTES) ? 0 : ERR_FORMAT;
}

static void m_open(void *ud, rpc *r, const rpc_request *req) {
  negsvc *n = ud;
  uint8_t caller[32], id[NEG_SESSION_BYTES];
  if (netsvc_rpc_peer(n->ns, r, caller)) REFUSE(r, req->handle, RPC_INTERNAL_ERROR, "unknown link");
  if (n->policy && !owner_node_allowed(n->policy, caller))
    REFUSE(r, req->handle, NEG_E_NO_INTENT, "this node's owner does not trade with your node ([policy] allow_nodes / deny_nodes)");
  const char *iid = json_string_value(json_object_get(req->params, "intent"));
  if (session_param(req->params, id) || !neg_owner_id_ok(iid))
    REFUSE(r, req->handle, RPC_INVALID_PARAMS, "need session (32 hex digits), intent (one of ours) and opener_intent");
  if (find_sess(n, id, caller)) REFUSE(r, req->handle, RPC_INVALID_PARAMS, "that session is already open");
  if (n->n_sessions >= NEGSVC_MAX_SESSIONS) REFUSE(r, req->handle, NEG_E_BUSY, "too many negotiations in flight");
  neg_owner_intent *mine = negsvc__load_intent(n, iid);
  if (!mine) REFUSE(r, req->handle, NEG_E_NO_INTENT, "no intent of that id here");
  neg_intent *theirs = malloc(sizeof *theirs);
  char err[300];
  const char *why = NULL;
  if (!theirs || neg_intent_from_json(json_object_get(req->params, "opener_intent"), theirs, err, sizeof err))
    why = "opener_intent is not an intent";
  else if (theirs->seek == mine->intent.seek) why = "both intents are of the same kind (one seeks, the other offers)";
  else if (!neg_intent_match(theirs->seek ? theirs : &mine->intent, theirs->seek ? &mine->intent : theirs,
                             (uint64_t)time(NULL)))
    why = "the intents do not match (tags, issues or expiry)";
  else if (!neg_owner_same_schema(&theirs->schema, &mine->intent.schema))
    why = "the intents' terms schemas differ (issues and values must be the same)";
  const char *their_id = json_string_value(json_object_get(json_object_get(req->params, "opener_intent"), "id"));
  free(theirs);
  if (why) {
    free(mine);
    REFUSE(r, req->handle, NEG_E_MISMATCH, why);
  }
  neg_sess *s = sess_new(n, id, caller, 0, mine, neg_owner_id_ok(their_id) ? their_id : "", err, sizeof err);
  if (!s) REFUSE(r, req->handle, NEG_E_STORE, err);
  neg_action a;
  if (neg_engine_start(s->eng, wall_ms(), &a)) {
    finish(s, "failed", "cannot start");
    REFUSE(r, req->handle, NEG_E_STORE, "cannot start the session");
  }
  json_t *res = json_pack("{s:s}", "session", s->row.id);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
  char who[IDENT_ID_BUF];
  ident_id_encode(caller, who);
  log_info("negotiation %s: %s opened it on intent %s", s->row.id, who, iid);
  act(s, &a);
}

static void m_message(void *ud, rpc *r, const rpc_request *req) {
  negsvc *n = ud;
  uint8_t caller[32], id[NEG_SESSION_BYTES];
  if (netsvc_rpc_peer(n->ns, r, caller)) REFUSE(r, req->handle, RPC_INTERNAL_ERROR, "unknown link");
  if (session_param(req->params, id)) REFUSE(r, req->handle, RPC_INVALID_PARAMS, "need session (32 hex digits)");
  neg_sess *s = find_sess(n, id, caller);
  if (!s || s->ended) REFUSE(r, req->handle, NEG_E_NO_SESSION, "no session of yours with that id");
  neg_msg *m = malloc(sizeof *m);
  char err[300];
  if (!m) REFUSE(r, req->handle, RPC_INTERNAL_ERROR, "out of memory");
  if (neg_engine_decode(s->eng, req->params, m, err, sizeof err)) {
    free(m);
    REFUSE(r, req->handle, RPC_INVALID_PARAMS, err);
  }
  neg_action a;
  if (neg_engine_on_message(s->eng, m, wall_ms(), &a)) {
    free(m);
    REFUSE(r, req->handle, RPC_INVALID_PARAMS, "out of turn, or a bid we did not offer");
  }
  if (m->round + 1 > s->row.rounds) s->row.rounds = m->round + 1;
  free(m);
  json_t *res = json_object();
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
  act(s, &a);
  if (!s->ended) save(s);
}

static void m_deal(void *ud, rpc *r, const rpc_request *req) {
  negsvc *n = ud;
  uint8_t caller[32], id[NEG_SESSION_BYTES];
  if (netsvc_rpc_peer(n->ns, r, caller)) REFUSE(r, req->handle, RPC_INTERNAL_ERROR, "unknown link");
  if (session_param(req->params, id)) REFUSE(r, req->handle, RPC_INVALID_PARAMS, "need session (32 hex digits)");
  neg_sess *s = find_sess(n, id, caller);
  if (!s || s->ended || s->opener) REFUSE(r, req->handle, NEG_E_NO_SESSION, "no session of yours with that id");
  const neg_outcome *o = neg_engine_outcome(s->eng);
  if (o->status != NEG_AGREED) REFUSE(r, req->handle, NEG_E_DEAL, "we have not agreed (yet)");
  neg_deal got, want;
  memset(&want, 0, sizeof want);
  if (neg_deal_from_json(req->params, &got) || !got.have_a) {
    neg_deal_deinit(&got);
    REFUSE(r, req->handle, NEG_E_DEAL, "need deal (the document) and sig_a (hex)");
  }
  json_t *cm = json_object_get(got.doc, "created_ms");
  uint64_t now = wall_ms(), created = json_is_integer(cm) && json_integer_value(cm) > 0 ? (uint64_t)json_integer_value(cm) : 0;
  const char *why = NULL;
  char *a = NULL, *b = NULL;
  if (!created || created + DEAL_CLOCK_SKEW_MS < now || created > now + DEAL_CLOCK_SKEW_MS)
    why = "the deal's created_ms is not now";
  else if (neg_deal_init(&want, &s->mine->intent.schema, &o->bid, s->id, caller, n->id->pk, o->round, created))
    why = "cannot build the deal";
  else if (!(a = neg_deal_canonical(&got)) || !(b = neg_deal_canonical(&want)) || strcmp(a, b))
    why = "the deal is not what we agreed (terms, parties, session or round differ)";
  if (!why && n->policy && n->policy->floor_gen && !s->mine->intent.seek) { /* we sell: never below the floor */
    neg_deal_payment pay;
    neg_deal_payment_terms(&want, &pay);
    if (pay.has_price && pay.price_per_1k_wei < n->policy->floor_gen)
      why = "the price is below this node's floor ([policy] price_floor_gen)";
  }
  if (!why) {
    neg_deal_set_sig(&want, 0, got.sig_a);
    if (neg_deal_sign(&want, n->id, 1) || neg_deal_verify(&want)) why = "sig_a does not verify";
  }
  free(a);
  free(b);
  neg_deal_deinit(&got);
  if (why) {
    neg_deal_deinit(&want);
    REFUSE(r, req->handle, NEG_E_DEAL, why);
  }
  /* Wallet signatures of the payment terms: theirs must verify when given; ours when we can. */
  const json_t *theirs = json_object_get(req->params, "eip712");
  if (theirs && (!json_is_object(theirs) || wallet_check(n, &want, 0, theirs))) {
    neg_deal_deinit(&want);
    REFUSE(r, req->handle, NEG_E_DEAL, "eip712.sig_a does not verify for addr_a on our chain");
  }
  json_t *e = theirs ? json_deep_copy(theirs) : json_object();
  int signed_b = !wallet_sign(n, &want, 1, e);
  int rc = store_deal(s, &want, signed_b || theirs ? e : NULL);
  if (rc) { /* on record before we countersign */
    json_decref(e);
    neg_deal_deinit(&want);
    finish(s, "failed", "cannot record the deal");
    REFUSE(r, req->handle, NEG_E_STORE, "this node cannot record the deal");
  }
  char sig[2 * IDENT_SIG_BYTES + 1];
  hex_encode(want.sig_b, IDENT_SIG_BYTES, sig);
  json_t *res = json_pack("{s:s}", "sig_b", sig);
  if (signed_b) json_object_set(res, "eip712", e);
  json_decref(e);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
  neg_deal_deinit(&want);
  finish(s, "agreed", "");
}

int negsvc__sess_register(negsvc *n) {
  rpc_method ms[] = {{"neg.intents", RPC_PARAMS_ANY, m_intents, n},
                     {"neg.open", RPC_PARAMS_OBJECT, m_open, n},
                     {"neg.message", RPC_PARAMS_OBJECT, m_message, n},
                     {"neg.deal", RPC_PARAMS_OBJECT, m_deal, n}};
  int rc = 0;
  for (size_t i = 0; i < sizeof ms / sizeof *ms && !rc; i++) rc = netsvc_register(n->ns, &ms[i]);
  return rc;
}

void negsvc__sess_stop(negsvc *n) {
  for (neg_sess *s = n->sessions, *next; s; s = next) {
    next = s->next;
    if (s->req) ctl_reply_err(s->req, CTL_FAILED, "the node is stopping");
    s->req = NULL;
    finish(s, "failed", "the node stopped"); /* freed once the calls in flight are answered */
  }
}
