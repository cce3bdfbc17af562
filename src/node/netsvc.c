/* node/netsvc — links + RPC + DHT + discovery + reconnection; see netsvc.h. */
#include "node/netsvc_impl.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "p2p/bencode.h"
#include "p2p/dht.h"
#include "p2p/dht_udp.h"
#include "core/hex.h"
#include "llm/mstore.h"
#include "p2p/link.h"
#include "p2p/nat.h"
#include "p2p/peers.h"
#include "p2p/sha1.h"

int64_t netsvc__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t netsvc__now_ms(netsvc *ns) { return uv_now(ns->loop); }

static double jitter(void) { return ((double)randombytes_uniform(4001) - 2000.0) / 10000.0; }

plink *netsvc__plink_of(netsvc *ns, const uint8_t pk[32]) {
  for (plink *p = ns->plinks; p; p = p->next)
    if (!memcmp(p->pk, pk, 32)) return p;
  return NULL;
}

/* ---- RPC methods every link offers -------------------------------------------------- */

static void m_hello(void *ud, rpc *r, const rpc_request *req) {
  plink *p = ud;
  (void)r;
  json_t *port = json_object_get(req->params, "port");
  if (!json_is_integer(port) || json_integer_value(port) <= 0 || json_integer_value(port) > 65535) return;
  p->hello_port = (int)json_integer_value(port);
  char addr[PEERS_ADDR_MAX];
  snprintf(addr, sizeof addr, "%s:%d", p->ip, p->hello_port);
  if (peers_seen(p->ns->db, p->pk, addr, p->inbound ? "inbound" : "dial", netsvc__wall_ms()))
    log_warn("cannot record peer: %s", store_errmsg(p->ns->db));
}

static void m_ping(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  json_t *res = json_pack("{s:I}", "t", (json_int_t)netsvc__wall_ms());
  rpc_respond(r, req->handle, res, NULL, 0); /* borrows */
  json_decref(res);
}

static int rpc_send(void *ud, const uint8_t *msg, size_t len) {
  plink *p = ud;
  return link_send(p->l, msg, len);
}

static int attach_methods(plink *p) {
  rpc_method hello = {"hello", RPC_PARAMS_OBJECT, m_hello, p};
  rpc_method ping = {"ping", RPC_PARAMS_ANY, m_ping, p};
  int rc = rpc_register(p->r, &hello);
  if (!rc) rc = rpc_register(p->r, &ping);
  for (int i = 0; !rc && i < p->ns->n_methods; i++) rc = rpc_register(p->r, &p->ns->methods[i]);
  return rc;
}

int netsvc_on_rpc_closed(netsvc *ns, netsvc_closed_cb cb, void *ud) {
  if (ns->n_closed_obs >= 4) return ERR_TOOBIG;
  ns->closed_obs[ns->n_closed_obs].cb = cb;
  ns->closed_obs[ns->n_closed_obs].ud = ud;
  ns->n_closed_obs++;
  return 0;
}

static void rpc_gone(netsvc *ns, rpc *r) {
  for (int i = 0; i < ns->n_closed_obs; i++) ns->closed_obs[i].cb(ns->closed_obs[i].ud, r);
}


int netsvc_on_link_ready(netsvc *ns, netsvc_ready_cb cb, void *ud) {
  if (ns->n_ready_obs >= 4) return ERR_TOOBIG;
  ns->ready_obs[ns->n_ready_obs].cb = cb;
  ns->ready_obs[ns->n_ready_obs++].ud = ud;
  return 0;
}

int netsvc_rpc_peer(netsvc *ns, const rpc *r, uint8_t pk_out[32]) {
  for (plink *p = ns->plinks; p; p = p->next)
    if (p->r == r) {
      memcpy(pk_out, p->pk, 32);
      return 0;
    }
  return ERR_NOTFOUND;
}

int netsvc_linked(netsvc *ns, const uint8_t pk[32]) { return netsvc__plink_of(ns, pk) != NULL; }

int netsvc_set_record_offers(netsvc *ns, const uint8_t *ben, size_t len) {
  if (len > sizeof ns->offers_ben) return ERR_TOOBIG;
  if (len) memcpy(ns->offers_ben, ben, len);
  ns->offers_len = len;
  ns->next_publish = netsvc__now_ms(ns);
  return 0;
}

int netsvc_set_record_agents(netsvc *ns, const uint8_t *ben, size_t len) {
  if (len > sizeof ns->agents_ben) return ERR_TOOBIG;
  if (len == ns->agents_len && (!len || !memcmp(ns->agents_ben, ben, len))) return 0;
  if (len) memcpy(ns->agents_ben, ben, len);
  ns->agents_len = len;
  ns->next_publish = netsvc__now_ms(ns);
  return 0;
}

int netsvc_set_record_intents(netsvc *ns, const uint8_t *ben, size_t len) {
  if (len > sizeof ns->intents_ben) return ERR_TOOBIG;
  if (len == ns->intents_len && (!len || !memcmp(ns->intents_ben, ben, len))) return 0;
  if (len) memcpy(ns->intents_ben, ben, len);
  ns->intents_len = len;
  ns->next_publish = netsvc__now_ms(ns);
  return 0;
}

void netsvc_on_record(netsvc *ns, netsvc_record_cb cb, void *ud) {
  ns->record_cb = cb;
  ns->record_ud = ud;
}

void netsvc_set_served(netsvc *ns, const uint8_t (*sha256)[32], int n) {
  if (n > NETSVC_MAX_ANNOUNCED_MODELS) n = NETSVC_MAX_ANNOUNCED_MODELS;
  for (int i = 0; i < n; i++) memcpy(ns->served[i], sha256[i], 32);
  ns->n_served = n;
  ns->next_publish = netsvc__now_ms(ns);
}

int netsvc_find_providers(netsvc *ns, const uint8_t sha256[32]) {
  if (!ns->dht_on) return ERR_INVAL;
  uint8_t ih[20];
  netsvc_model_infohash(sha256, ih);
  uint32_t h;
  int rc = dht_get_peers(ns->dht, ih, &h);
  if (rc) return rc;
  netsvc__add_waiter(ns, W_DISCOVER, h, NULL, NULL, NULL);
  netsvc__dht_pump(ns);
  return 0;
}

int netsvc_register(netsvc *ns, const rpc_method *m) {
  if (ns->n_methods >= MAX_METHODS) return ERR_TOOBIG;
  ns->methods[ns->n_methods++] = *m;
  for (plink *p = ns->plinks; p; p = p->next) rpc_register(p->r, m);
  return 0;
}

/* ---- calls ---------------------------------------------------------------------------- */

static void on_call_reply(void *ud, rpc *r, const rpc_reply *reply) {
  call_ctx *c = ud;
  (void)r;
  if (reply->kind == RPC_REPLY_STREAM) {
    c->cb(c->ud, reply);
    return;
  }
  c->cb(c->ud, reply);
  free(c);
}

static int call_now(netsvc *ns, plink *p, const char *method, json_t *params, uint64_t timeout_ms,
                    netsvc_reply_cb cb, void *ud) {
  call_ctx *c = malloc(sizeof *c);
  if (!c) { json_decref(params); return ERR_NOMEM; }
  c->cb = cb;
  c->ud = ud;
  uint64_t id;
  int rc = rpc_call(p->r, method, params, NULL, 0, timeout_ms, netsvc__now_ms(ns), on_call_reply, c, &id);
  json_decref(params); /* rpc_call borrows params */
  if (rc) free(c);
  return rc;
}

static void fail_reply(netsvc_reply_cb cb, void *ud, int code, const char *msg) {
  rpc_reply r;
  memset(&r, 0, sizeof r);
  r.kind = RPC_REPLY_ERROR;
  r.code = code;
  r.message = msg;
  cb(ud, &r);
}


int netsvc_call(netsvc *ns, const uint8_t pk[32], const char *method, json_t *params, uint64_t timeout_ms,
                netsvc_reply_cb cb, void *ud) {
  if (!memcmp(pk, ns->me->pk, 32)) { json_decref(params); return ERR_INVAL; }
  plink *p = netsvc__plink_of(ns, pk);
  if (p) return call_now(ns, p, method, params, timeout_ms, cb, ud);
  /* Not linked: queue, then dial a known address or look the node up. */
  pending_call *pc = NULL;
  for (int i = 0; i < MAX_PENDING && !pc; i++)
    if (!ns->pending[i].used) pc = &ns->pending[i];
  if (!pc) { json_decref(params); return ERR_TOOBIG; }
  memset(pc, 0, sizeof *pc);
  pc->used = 1;
  memcpy(pc->pk, pk, 32);
  snprintf(pc->method, sizeof pc->method, "%s", method);
  pc->params = params;
  pc->timeout_ms = timeout_ms;
  pc->deadline = netsvc__now_ms(ns) + timeout_ms;
  pc->cb = cb;
  pc->ud = ud;
  peer_info info;
  if (peers_get(ns->db, pk, netsvc__wall_ms(), &info) == 0 && info.n_addrs > 0) {
    if (!link_dialling(ns->links, pk, NULL)) link_dial(ns->links, pk, info.addrs[0]);
  }
  netsvc__lookup_record(ns, pk);
  return 0;
}

static void flush_pending(netsvc *ns, plink *p) {
  for (int i = 0; i < MAX_PENDING; i++) {
    pending_call *pc = &ns->pending[i];
    if (!pc->used || memcmp(pc->pk, p->pk, 32)) continue;
    pc->used = 0;
    uint64_t left = pc->deadline > netsvc__now_ms(ns) ? pc->deadline - netsvc__now_ms(ns) : 1;
    if (call_now(ns, p, pc->method, pc->params, left, pc->cb, pc->ud))
      fail_reply(pc->cb, pc->ud, RPC_INTERNAL_ERROR, "cannot send the request");
    pc->params = NULL;
  }
}

/* ---- links ---------------------------------------------------------------------------- */

static void on_ready(p2p_link *l, const uint8_t pk[32], const char *addr, int inbound, void *ud) {
  netsvc *ns = ud;
  if (!memcmp(pk, ns->me->pk, 32)) { /* we dialled ourselves (our own DHT announce) */
    link_close(l, "self");
    return;
  }
  plink *p = calloc(1, sizeof *p);
  if (!p || rpc_new(rpc_send, p, &p->r)) {
    free(p);
    link_close(l, "out of memory");
    return;
  }
  p->ns = ns;
  p->l = l;
  p->inbound = inbound;
  memcpy(p->pk, pk, 32);
  snprintf(p->ip, sizeof p->ip, "%s", addr);
  char *colon = strrchr(p->ip, ':');
  if (colon) *colon = 0;
  attach_methods(p);
  link_set_data(l, p);
  p->next = ns->plinks;
  ns->plinks = p;
  p->last_seen_write = netsvc__now_ms(ns);
  /* Outbound: addr is the peer's listen address. Inbound: wait for its hello. */
  peers_seen(ns->db, pk, inbound ? NULL : addr, inbound ? "inbound" : "dial", netsvc__wall_ms());
  json_t *hello = json_pack("{s:i, s:i}", "port", ns->listen_port, "v", 1);
  rpc_notify(p->r, "hello", hello, NULL, 0); /* borrows */
  json_decref(hello);
  char id[IDENT_ID_BUF];
  ident_id_encode(pk, id);
  log_info("link %s %s (%s)", inbound ? "from" : "to", id, addr);
  flush_pending(ns, p);
  for (int i = 0; i < ns->n_ready_obs; i++) ns->ready_obs[i].cb(ns->ready_obs[i].ud, pk);
}

static void on_message(p2p_link *l, const uint8_t *data, size_t len, void *ud) {
  netsvc *ns = ud;
  plink *p = link_get_data(l);
  if (!p) return;
  rpc_on_message(p->r, data, len, netsvc__now_ms(ns));
}

static void on_closed(p2p_link *l, const uint8_t *expected, int was_ready, int err, const char *why, void *ud) {
  netsvc *ns = ud;
  plink *p = link_get_data(l);
  if (p) {
    for (plink **pp = &ns->plinks; *pp; pp = &(*pp)->next)
      if (*pp == p) { *pp = p->next; break; }
    rpc_fail_all(p->r, RPC_LINK_CLOSED, "link closed");
    rpc_gone(ns, p->r);
    rpc_free(p->r);
    int duplicate = why && !strcmp(why, "duplicate link");
    if (!duplicate && !ns->stopping) peers_failed(ns->db, p->pk, netsvc__wall_ms(), jitter());
    char id[IDENT_ID_BUF];
    ident_id_encode(p->pk, id);
    log_info("link to %s closed: %s", id, why ? why : "closed");
    free(p);
    link_set_data(l, NULL);
  } else if (!was_ready && expected && !ns->stopping) {
    peers_failed(ns->db, expected, netsvc__wall_ms(), jitter());
    /* Calls waiting for this node fail now, not at their deadline. */
    for (int i = 0; i < MAX_PENDING; i++) {
      pending_call *pc = &ns->pending[i];
      if (!pc->used || memcmp(pc->pk, expected, 32)) continue;
      pc->used = 0;
      json_decref(pc->params);
      pc->params = NULL;
      char msg[160];
      snprintf(msg, sizeof msg, "cannot reach the node: %s", why ? why : "connection failed");
      fail_reply(pc->cb, pc->ud, RPC_LINK_CLOSED, msg);
    }
    char id[IDENT_ID_BUF];
    ident_id_encode(expected, id);
    log_debug("dial to %s failed: %s (%d)", id, why ? why : "", err);
  }
}

static void on_tick(uv_timer_t *t) {
  netsvc *ns = t->data;
  uint64_t now = netsvc__now_ms(ns);
  for (plink *p = ns->plinks; p; p = p->next) rpc_tick(p->r, now);
  for (int i = 0; i < MAX_PENDING; i++) {
    pending_call *pc = &ns->pending[i];
    if (!pc->used || pc->deadline > now) continue;
    pc->used = 0;
    json_decref(pc->params);
    fail_reply(pc->cb, pc->ud, RPC_TIMEOUT, "could not reach the node in time");
  }
}

/* ---- maintenance ---------------------------------------------------------------------- */

static void on_maint(uv_timer_t *t) {
  netsvc *ns = t->data;
  uint64_t now = netsvc__now_ms(ns);
  int64_t wall = netsvc__wall_ms();
  /* Keep last_seen fresh for live links. */
  for (plink *p = ns->plinks; p; p = p->next) {
    if (now - p->last_seen_write < SEEN_REFRESH_MS) continue;
    p->last_seen_write = now;
    peers_seen(ns->db, p->pk, NULL, "dial", wall);
  }
  /* Reconnect peers whose backoff has passed. */
  static peer_info due[256];
  int n = peers_due(ns->db, wall, due, 256);
  for (int i = 0; i < n; i++) {
    if (!memcmp(due[i].pk, ns->me->pk, 32) || netsvc__plink_of(ns, due[i].pk) || link_dialling(ns->links, due[i].pk, NULL))
      continue;
    if (due[i].failures > 0) netsvc__lookup_record(ns, due[i].pk);
    link_dial(ns->links, due[i].pk, due[i].addrs[0]);
  }
  if (ns->o.nat && now >= ns->next_nat) netsvc__nat_start(ns);
  if (!ns->dht_on) return;
  if (!ns->bootstrapped && now >= ns->next_boot) netsvc__bootstrap(ns);
  if (ns->bootstrapped && now >= ns->next_publish) {
    netsvc__publish(ns);
    netsvc__save_dht_cache(ns);
    ns->next_publish = now + (ns->o.fast ? 10000 : RECORD_REPUBLISH_MS);
  }
  if (ns->bootstrapped && now >= ns->next_discover) {
    netsvc__discover(ns);
    uint64_t age = now - ns->started;
    ns->next_discover = now + (ns->o.fast ? 2000 : age < 120000 ? 5000 : 60000);
  }
  netsvc__dht_pump(ns);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int netsvc_start(uv_loop_t *loop, const ident *me, store *db, const netsvc_opts *o, netsvc **out, char *err,
                 size_t cap) {
  netsvc *ns = calloc(1, sizeof *ns);
  if (!ns) return ERR_NOMEM;
  ns->loop = loop;
  ns->me = me;
  ns->db = db;
  ns->o = *o;
  ns->n_served = -1;
  ns->started = uv_now(loop);
  const char *c = strrchr(o->listen, ':');
  if (!c || (size_t)(c - o->listen) >= sizeof ns->listen_host) {
    snprintf(err, cap, "bad listen address '%s': expected IPv4:PORT", o->listen);
    free(ns);
    return ERR_INVAL;
  }
  memcpy(ns->listen_host, o->listen, (size_t)(c - o->listen));
  ns->listen_host[c - o->listen] = 0;
  link_callbacks cb = {on_ready, on_message, on_closed, NULL};
  int rc = link_mgr_new(loop, me, &cb, ns, &ns->links);
  if (rc) { free(ns); return rc; }
  link_mgr_set_timing(ns->links, (uint64_t)o->keepalive_s * 1000, (uint64_t)o->idle_timeout_s * 1000, 0);
  if ((rc = link_mgr_listen(ns->links, o->listen))) {
    snprintf(err, cap, "cannot listen for peer links on %s: %s (change [net] listen or pass --listen)", o->listen,
             uv_strerror(rc));
    link_mgr_close(ns->links);
    free(ns);
    return rc;
  }
  ns->listen_port = link_mgr_port(ns->links);
  uv_timer_init(loop, &ns->tick);
  uv_timer_init(loop, &ns->maint);
  ns->tick.data = ns->maint.data = ns;
  ns->handles += 2;
  uv_timer_start(&ns->tick, on_tick, TICK_MS, TICK_MS);
  uv_timer_start(&ns->maint, on_maint, 0, MAINT_MS);
  *out = ns;
  if (o->dht_enabled && (rc = netsvc__start_dht(ns, err, cap))) {
    netsvc_stop(ns);
    *out = NULL;
    return rc;
  }
  return 0;
}

void netsvc__maybe_free(netsvc *ns) {
  if (ns->handles == 0 && !ns->nat_busy) {
    dht_free(ns->dht);
    free(ns);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  netsvc *ns = h->data;
  --ns->handles;
  netsvc__maybe_free(ns);
}

void netsvc_stop(netsvc *ns) {
  if (!ns || ns->stopping) return;
  ns->stopping = 1;
  if (ns->dht_on) netsvc__save_dht_cache(ns);
  for (int i = 0; i < MAX_PENDING; i++) {
    pending_call *pc = &ns->pending[i];
    if (!pc->used) continue;
    pc->used = 0;
    json_decref(pc->params);
    fail_reply(pc->cb, pc->ud, RPC_LINK_CLOSED, "node stopping");
  }
  while (ns->plinks) {
    plink *p = ns->plinks;
    ns->plinks = p->next;
    rpc_fail_all(p->r, RPC_LINK_CLOSED, "node stopping");
    rpc_gone(ns, p->r);
    rpc_free(p->r);
    link_set_data(p->l, NULL);
    free(p);
  }
  link_mgr_close(ns->links);
  uv_close((uv_handle_t *)&ns->tick, on_handle_closed);
  uv_close((uv_handle_t *)&ns->maint, on_handle_closed);
  dht_udp_stop(ns->dhtu); /* no DHT events after this; it frees itself */
  ns->dhtu = NULL;
}

uint16_t netsvc_listen_port(const netsvc *ns) { return ns->listen_port; }
uint16_t netsvc_dht_port(const netsvc *ns) { return ns->dht_port; }

json_t *netsvc_status(netsvc *ns) {
  link_stats ls;
  link_mgr_stats(ns->links, &ls);
  json_t *j = json_pack("{s:i, s:i, s:{s:I, s:I, s:I, s:I, s:I}}", "listen_port", ns->listen_port, "links",
                        link_count(ns->links), "link_stats", "accepted", (json_int_t)ls.accepted, "dialled",
                        (json_int_t)ls.dialled, "ready", (json_int_t)ls.ready, "failed_handshake",
                        (json_int_t)ls.failed_handshake, "duplicates_closed", (json_int_t)ls.duplicates_closed);
  if (ns->o.nat)
    json_object_set_new(j, "nat", json_pack("{s:b, s:s, s:s, s:i, s:i, s:s}", "mapped", ns->nat_done.ok, "method",
                                            ns->nat_done.method, "external_ip", ns->nat_done.external_ip, "tcp_port",
                                            ns->nat_done.tcp_port, "udp_port", ns->nat_done.udp_port, "error",
                                            ns->nat_done.err));
  if (ns->dht_on) {
    dht_stats st;
    dht_get_stats(ns->dht, &st);
    json_object_set_new(
        j, "dht",
        json_pack("{s:i, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "port", ns->dht_port, "bootstrapped",
                  ns->bootstrapped, "nodes", (json_int_t)st.nodes, "nodes_good", (json_int_t)st.nodes_good, "rx",
                  (json_int_t)st.rx_packets, "tx", (json_int_t)st.tx_packets, "drop_malformed",
                  (json_int_t)st.drop_malformed, "drop_bad_sig", (json_int_t)st.drop_bad_sig, "drop_rate_limited",
                  (json_int_t)st.drop_rate_limited, "drop_bad_token", (json_int_t)st.drop_bad_token, "items",
                  (json_int_t)st.items, "peers", (json_int_t)st.peers));
  }
  return j;
}

