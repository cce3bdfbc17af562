/* node/negctl — the owner's side of negotiation (see negsvc.h): the control methods
 *   neg.intent_add {def, replace?} / neg.intent_list {} / neg.intent_rm {id}
 *   neg.find {tags?, intent?}      other nodes' intents we know, matched by tags
 *   neg.start {node_id, intent, peer_intent?, wait?}
 *   neg.list {} / neg.show {id}    sessions with their deals
 * discovery (we ask each node a link comes up to for `neg.intents`, and the linked ones
 * again every REFRESH_MS) and our intents in the node record (key "n"). Loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "node/negsvc_impl.h"
#include "p2p/bencode.h"

#define REFRESH_MS 10000
#define ASK_TIMEOUT_MS 10000

/* ---- our record ----------------------------------------------------------------------- */

/* {i: id, k: "seek"|"offer", t: [tags]} for as many intents as fit. */
void negsvc__publish(negsvc *n) {
  json_t *l = negsvc__public_intents(n);
  uint8_t b[NETSVC_MAX_RECORD_INTENTS];
  size_t total = json_array_size(l);
  int len = 0;
  for (size_t k = total; k > 0; k--) {
    ben_w w;
    ben_w_init(&w, b, sizeof b);
    ben_w_list(&w);
    for (size_t i = 0; i < k; i++) {
      json_t *x = json_array_get(l, i), *t;
      size_t j;
      ben_w_dict(&w);
      ben_w_key(&w, "i");
      ben_w_cstr(&w, json_string_value(json_object_get(x, "id")));
      ben_w_key(&w, "k");
      ben_w_cstr(&w, json_string_value(json_object_get(x, "kind")));
      ben_w_key(&w, "t");
      ben_w_list(&w);
      json_array_foreach(json_object_get(x, "tags"), j, t) ben_w_cstr(&w, json_string_value(t));
      ben_w_end(&w);
      ben_w_end(&w);
    }
    ben_w_end(&w);
    if ((len = ben_w_finish(&w)) > 0) break;
  }
  json_decref(l);
  netsvc_set_record_intents(n->ns, b, len > 0 ? (size_t)len : 0);
}

/* ---- discovery ----------------------------------------------------------------------------- */

const neg_peer *negsvc__peer(negsvc *n, const uint8_t pk[32]) {
  for (int i = 0; i < n->n_peers; i++)
    if (!memcmp(n->peers[i].pk, pk, 32)) return &n->peers[i];
  return NULL;
}

/* Keeps node pk's answer to neg.intents (unreadable intents are skipped). */
static void keep_intents(negsvc *n, const uint8_t pk[32], const json_t *list) {
  neg_peer *p = (neg_peer *)negsvc__peer(n, pk);
  if (!p) {
    if (n->n_peers >= NEGSVC_MAX_PEERS) return;
    p = &n->peers[n->n_peers++];
  }
  memcpy(p->pk, pk, 32);
  p->n = 0;
  size_t i;
  json_t *x;
  char err[200];
  json_array_foreach(list, i, x) {
    const char *id = json_string_value(json_object_get(x, "id"));
    if (p->n >= NEGSVC_PEER_INTENTS || !neg_owner_id_ok(id)) continue;
    if (neg_intent_from_json(x, &p->intents[p->n], err, sizeof err)) continue;
    snprintf(p->ids[p->n], sizeof p->ids[p->n], "%s", id);
    const char *name = json_string_value(json_object_get(x, "name"));
    snprintf(p->intents[p->n].schema.name, sizeof p->intents[p->n].schema.name, "%s", name ? name : id);
    p->n++;
  }
}

typedef struct ask_ctx {
  negsvc *n;
  uint8_t pk[32];
  ctl_req *req;            /* neg.start waiting for the intents (NULL: discovery) */
  neg_owner_intent *mine;  /* owned (neg.start) */
  char peer_intent[NEG_MAX_NAME];
  int wait;
} ask_ctx;

static void start_with(ask_ctx *c);

static void on_intents(void *ud, const rpc_reply *reply) {
  ask_ctx *c = ud;
  if (!c->n->closing && reply->kind == RPC_REPLY_RESULT) keep_intents(c->n, c->pk, json_object_get(reply->result, "intents"));
  if (c->req) {
    if (c->n->closing) ctl_reply_err(c->req, CTL_FAILED, "the node is stopping");
    else if (reply->kind != RPC_REPLY_RESULT)
      ctl_reply_err(c->req, CTL_FAILED, "that node did not list its intents: %s (code %d)",
                    reply->message ? reply->message : "", reply->code);
    else start_with(c);
  }
  free(c->mine);
  free(c);
}

static int ask(negsvc *n, const uint8_t pk[32], ask_ctx *c) {
  if (!c && !(c = calloc(1, sizeof *c))) return ERR_NOMEM;
  c->n = n;
  memcpy(c->pk, pk, 32);
  int rc = netsvc_call(n->ns, pk, "neg.intents", json_object(), ASK_TIMEOUT_MS, on_intents, c);
  if (rc) {
    free(c->mine);
    free(c);
  }
  return rc;
}

static void on_link_ready(void *ud, const uint8_t pk[32]) {
  negsvc *n = ud;
  if (!n->closing) ask(n, pk, NULL);
}

static void on_refresh(uv_timer_t *t) {
  negsvc *n = t->data;
  for (int i = 0; i < n->n_peers && !n->closing; i++)
    if (netsvc_linked(n->ns, n->peers[i].pk)) ask(n, n->peers[i].pk, NULL);
}

/* ---- control ----------------------------------------------------------------------------- */

static void c_intent_add(ctl_req *req, json_t *params, void *ud) {
  negsvc *n = ud;
  json_t *def = json_object_get(params, "def");
  neg_owner_intent *o = malloc(sizeof *o);
  char err[400];
  if (!o) { ctl_reply_err(req, CTL_INTERNAL, "out of memory"); return; }
  if (neg_owner_from_json(def, o, err, sizeof err)) {
    free(o);
    { ctl_reply_err(req, CTL_INVALID_PARAMS, "%s", err); return; }
  }
  char *text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
  int rc = text ? neg_store_intent_put(n->db, o->id, o->intent.seek ? "seek" : "offer", text,
                                       json_is_true(json_object_get(params, "replace")))
                : ERR_NOMEM;
  free(text);
  if (rc == ERR_EXISTS) ctl_reply_err(req, CTL_FAILED, "an intent %s exists (add --replace to replace it)", o->id);
  else if (rc) ctl_reply_err(req, CTL_FAILED, "cannot record the intent: %s", err_str(rc));
  else {
    ctl_reply_ok(req, neg_owner_public(o));
    negsvc__publish(n);
  }
  free(o);
}

static void c_intent_list(ctl_req *req, json_t *params, void *ud) {
  (void)params;
  negsvc *n = ud;
  json_t *l = neg_store_intent_list(n->db);
  if (!l) { ctl_reply_err(req, CTL_FAILED, "cannot read the intents"); return; }
  ctl_reply_ok(req, json_pack("{s:o}", "intents", l));
}

static void c_intent_rm(ctl_req *req, json_t *params, void *ud) {
  negsvc *n = ud;
  const char *id = json_string_value(json_object_get(params, "id"));
  int rc = neg_owner_id_ok(id) ? neg_store_intent_rm(n->db, id) : ERR_NOTFOUND;
  if (rc == ERR_NOTFOUND) { ctl_reply_err(req, CTL_FAILED, "no intent %s", id ? id : ""); return; }
  if (rc) { ctl_reply_err(req, CTL_FAILED, "cannot remove the intent: %s", err_str(rc)); return; }
  negsvc__publish(n);
  ctl_reply_ok(req, json_pack("{s:s}", "removed", id));
}

/* Shared tags of x with the tags array (NULL: 1). */
static int shared_tags(const neg_intent *x, const json_t *tags) {
  if (!json_array_size(tags)) return 1;
  int k = 0;
  for (int i = 0; i < x->n_tags; i++)
    for (size_t j = 0; j < json_array_size(tags); j++)
      if (!strcmp(x->tags[i], json_string_value(json_array_get(tags, j)) ?: "")) k++;
  return k;
}

static void c_find(ctl_req *req, json_t *params, void *ud) {
  negsvc *n = ud;
  json_t *tags = json_object_get(params, "tags");
  const char *iid = json_string_value(json_object_get(params, "intent"));
  neg_owner_intent *mine = iid ? negsvc__load_intent(n, iid) : NULL;
  if (iid && !mine) { ctl_reply_err(req, CTL_FAILED, "no intent %s on this node", iid); return; }
  json_t *l = json_array();
  uint64_t now = (uint64_t)time(NULL);
  for (int i = 0; i < n->n_peers; i++)
    for (int k = 0; k < n->peers[i].n; k++) {
      const neg_intent *x = &n->peers[i].intents[k];
      int score = shared_tags(x, tags);
      if (mine) {
        int m = x->seek != mine->intent.seek
                    ? neg_intent_match(x->seek ? x : &mine->intent, x->seek ? &mine->intent : x, now)
                    : 0;
        score = m && neg_owner_same_schema(&x->schema, &mine->intent.schema) ? (score ? m : 0) : 0;
      }
      if (!score) continue;
      char who[IDENT_ID_BUF];
      ident_id_encode(n->peers[i].pk, who);
      json_t *o = neg_intent_to_json(x);
      json_object_set_new(o, "node_id", json_string(who));
      json_object_set_new(o, "id", json_string(n->peers[i].ids[k]));
      json_object_set_new(o, "name", json_string(x->schema.name));
      json_object_set_new(o, "score", json_integer(score));
      json_array_append_new(l, o);
    }
  free(mine);
  for (int i = 0; i < n->n_peers; i++) /* fresher answers for the next find */
    if (netsvc_linked(n->ns, n->peers[i].pk)) ask(n, n->peers[i].pk, NULL);
  ctl_reply_ok(req, json_pack("{s:o}", "intents", l));
}

/* neg.start, once the peer's intents are known: picks its intent, opens the session. */
static void start_with(ask_ctx *c) {
  negsvc *n = c->n;
  const neg_peer *p = negsvc__peer(n, c->pk);
  const neg_owner_intent *mine = c->mine;
  int best = -1, best_score = 0;
  for (int k = 0; p && k < p->n; k++) {
    const neg_intent *x = &p->intents[k];
    if (c->peer_intent[0] && strcmp(p->ids[k], c->peer_intent)) continue;
    int m = x->seek != mine->intent.seek
                ? neg_intent_match(x->seek ? x : &mine->intent, x->seek ? &mine->intent : x, (uint64_t)time(NULL))
                : 0;
    if (m && neg_owner_same_schema(&x->schema, &mine->intent.schema) && m > best_score) best = k, best_score = m;
  }
  if (best < 0) {
    ctl_reply_err(c->req, CTL_FAILED, "%s", c->peer_intent[0] ? "that node has no such intent matching ours (kind, tags, terms schema)"
                                                              : "that node has no intent matching ours (kind, tags, terms schema)");
    return;
  }
  char why[300], id[33];
  neg_owner_intent *m = c->mine;
  c->mine = NULL; /* taken */
  if (negsvc__open(n, c->pk, m, p->ids[best], c->wait ? c->req : NULL, id, why, sizeof why)) {
    ctl_reply_err(c->req, CTL_FAILED, "%s", why);
    return;
  }
  if (!c->wait) ctl_reply_ok(c->req, json_pack("{s:s, s:s}", "id", id, "state", "running"));
}

static void c_start(ctl_req *req, json_t *params, void *ud) {
  negsvc *n = ud;
  const char *nid = json_string_value(json_object_get(params, "node_id"));
  const char *iid = json_string_value(json_object_get(params, "intent"));
  const char *pid = json_string_value(json_object_get(params, "peer_intent"));
  uint8_t pk[32];
  if (!nid || ident_id_decode(nid, strlen(nid), pk) || !neg_owner_id_ok(iid) || (pid && !neg_owner_id_ok(pid)))
    { ctl_reply_err(req, CTL_INVALID_PARAMS, "need node_id, intent (ours) and optionally peer_intent"); return; }
  if (!memcmp(pk, n->id->pk, 32)) { ctl_reply_err(req, CTL_FAILED, "that is this node"); return; }
  ask_ctx *c = calloc(1, sizeof *c);
  if (!c) { ctl_reply_err(req, CTL_INTERNAL, "out of memory"); return; }
  if (!(c->mine = negsvc__load_intent(n, iid))) {
    free(c);
    { ctl_reply_err(req, CTL_FAILED, "no intent %s on this node (apiary negotiate intent add)", iid); return; }
  }
  c->req = req;
  c->wait = json_is_true(json_object_get(params, "wait"));
  snprintf(c->peer_intent, sizeof c->peer_intent, "%s", pid ? pid : "");
  if (ask(n, pk, c)) ctl_reply_err(req, CTL_FAILED, "cannot reach that node"); /* c is freed */
}

static void c_list(ctl_req *req, json_t *params, void *ud) {
  (void)params;
  negsvc *n = ud;
  json_t *l = neg_store_session_list(n->db);
  if (!l) { ctl_reply_err(req, CTL_FAILED, "cannot read the sessions"); return; }
  ctl_reply_ok(req, json_pack("{s:o}", "sessions", l));
}

static void c_show(ctl_req *req, json_t *params, void *ud) {
  negsvc *n = ud;
  const char *id = json_string_value(json_object_get(params, "id"));
  json_t *s = id ? negsvc__session_json(n, id) : json_null();
  if (json_is_null(s)) { ctl_reply_err(req, CTL_FAILED, "no negotiation %s", id ? id : ""); return; }
  ctl_reply_ok(req, s);
}

int negsvc__ctl_register(negsvc *n) {
  if (!(n->peers = calloc(NEGSVC_MAX_PEERS, sizeof *n->peers))) return ERR_NOMEM;
  int rc = netsvc_on_link_ready(n->ns, on_link_ready, n);
  static const struct { const char *m; ctl_method_fn fn; } methods[] = {
      {"neg.intent_add", c_intent_add}, {"neg.intent_list", c_intent_list}, {"neg.intent_rm", c_intent_rm},
      {"neg.find", c_find},             {"neg.start", c_start},             {"neg.list", c_list},
      {"neg.show", c_show}};
  for (size_t i = 0; !rc && i < sizeof methods / sizeof *methods; i++) rc = ctl_server_add(n->ctl, methods[i].m, methods[i].fn, n);
  if (rc) return rc;
  uv_timer_init(n->loop, &n->refresh);
  n->refresh.data = n;
  n->has_refresh = 1;
  uv_timer_start(&n->refresh, on_refresh, REFRESH_MS, REFRESH_MS);
  negsvc__publish(n);
  return 0;
}

void negsvc__ctl_stop(negsvc *n) {
  if (n->has_refresh) uv_close((uv_handle_t *)&n->refresh, NULL);
  n->has_refresh = 0;
}

/* ---- the service ------------------------------------------------------------------------- */

int negsvc_start(const negsvc_opts *o, negsvc **out, char *err, size_t cap) {
  negsvc *n = calloc(1, sizeof *n);
  if (!n) return ERR_NOMEM;
  n->loop = o->loop;
  n->db = o->db;
  n->ns = o->ns;
  n->ctl = o->ctl;
  n->id = o->id;
  n->w = o->w;
  n->chain_id = o->chain_id;
  n->policy = o->policy;
  int rc = neg_seal_keys_from_ident(o->id, &n->keys);
  if (neg_store_sessions_abandon(n->db) < 0) log_warn("cannot mark interrupted negotiations: %s", store_errmsg(n->db));
  if (!rc) rc = negsvc__sess_register(n);
  if (!rc) rc = negsvc__ctl_register(n);
  if (rc) {
    snprintf(err, cap, "cannot start negotiation: %s", err_str(rc));
    neg_seal_keys_wipe(&n->keys);
    free(n->peers);
    free(n);
    return rc;
  }
  *out = n;
  return 0;
}

void negsvc_stop(negsvc *n) {
  if (!n || n->closing) return;
  n->closing = 1;
  negsvc__ctl_stop(n);
  negsvc__sess_stop(n);
}

void negsvc_free(negsvc *n) {
  if (!n) return;
  neg_seal_keys_wipe(&n->keys);
  free(n->peers);
  free(n);
}
