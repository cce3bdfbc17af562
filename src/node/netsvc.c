/* node/netsvc — links + RPC + DHT + discovery + reconnection; see netsvc.h. */
#include "node/netsvc.h"

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

#define MAX_METHODS 32
#define MAX_PENDING 64
#define MAX_WAITERS 128
#define MAX_RECENT 128
#define TICK_MS 100
#define MAINT_MS 1000
#define SEEN_REFRESH_MS 15000
#define REDIAL_ADDR_MS 30000       /* an address found in the DHT is dialled at most this often */
#define RECORD_LOOKUP_MS 10000     /* a failing peer's DHT record is looked up at most this often */
#define RECORD_REPUBLISH_MS (5 * 60 * 1000)

typedef enum { W_USER = 1, W_BOOT, W_DISCOVER, W_RECORD } waiter_kind;

typedef struct waiter {
  int used;
  waiter_kind kind;
  uint32_t handle;
  netsvc_dht_cb cb;
  void *ud;
  uint8_t pk[32];        /* W_RECORD: whose record */
} waiter;

typedef struct pending_call {
  int used;
  uint8_t pk[32];
  char method[64];
  json_t *params;        /* owned */
  uint64_t timeout_ms;
  uint64_t deadline;     /* loop time */
  netsvc_reply_cb cb;
  void *ud;
} pending_call;

typedef struct plink {
  netsvc *ns;
  p2p_link *l;
  rpc *r;
  uint8_t pk[32];
  char ip[48];
  int inbound;
  int hello_port;        /* the peer's listen port from `hello`, 0 until then */
  uint64_t last_seen_write;
  struct plink *next;
} plink;

typedef struct call_ctx {  /* an rpc_call made for netsvc_call */
  netsvc_reply_cb cb;
  void *ud;
} call_ctx;

struct netsvc {
  uv_loop_t *loop;
  const ident *me;
  store *db;
  netsvc_opts o;
  link_mgr *links;
  plink *plinks;
  char listen_host[48];
  uint16_t listen_port;
  rpc_method methods[MAX_METHODS];
  int n_methods;
  struct { netsvc_closed_cb cb; void *ud; } closed_obs[4];
  int n_closed_obs;
  struct { netsvc_ready_cb cb; void *ud; } ready_obs[4];
  int n_ready_obs;
  uint8_t offers_ben[DHT_MAX_VALUE];
  size_t offers_len;
  uint8_t served[NETSVC_MAX_ANNOUNCED_MODELS][32];
  int n_served;                /* -1: every model in the store */
  pending_call pending[MAX_PENDING];
  uv_timer_t tick, maint;
  /* DHT */
  dht *dht;
  dht_udp *dhtu;               /* the engine's UDP socket and timer (p2p/dht_udp) */
  int dht_on;
  uint16_t dht_port;
  uint8_t network_hash[20];
  waiter waiters[MAX_WAITERS];
  int bootstrapped;
  uint64_t started, next_discover, next_publish, next_boot;
  struct { char addr[64]; uint64_t at; } recent[MAX_RECENT];
  struct { uint8_t pk[8]; uint64_t at; } lookups[64];
  /* NAT port mapping (thread pool) */
  uv_work_t nat_work;
  int nat_busy;
  nat_result nat;          /* written by the worker, read on the loop after it completes */
  nat_result nat_done;     /* the last completed result */
  uint64_t next_nat;
  int handles;             /* libuv handles still open */
  int stopping;
};

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t now_ms(netsvc *ns) { return uv_now(ns->loop); }

static double jitter(void) { return ((double)randombytes_uniform(4001) - 2000.0) / 10000.0; }

static plink *plink_of(netsvc *ns, const uint8_t pk[32]) {
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
  if (peers_seen(p->ns->db, p->pk, addr, p->inbound ? "inbound" : "dial", wall_ms()))
    log_warn("cannot record peer: %s", store_errmsg(p->ns->db));
}

static void m_ping(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  json_t *res = json_pack("{s:I}", "t", (json_int_t)wall_ms());
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

static void dht_pump(netsvc *ns);
static waiter *add_waiter(netsvc *ns, waiter_kind kind, uint32_t handle, netsvc_dht_cb cb, void *ud,
                          const uint8_t *pk);

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

int netsvc_linked(netsvc *ns, const uint8_t pk[32]) { return plink_of(ns, pk) != NULL; }

int netsvc_set_record_offers(netsvc *ns, const uint8_t *ben, size_t len) {
  if (len > sizeof ns->offers_ben) return ERR_TOOBIG;
  if (len) memcpy(ns->offers_ben, ben, len);
  ns->offers_len = len;
  ns->next_publish = now_ms(ns);
  return 0;
}

void netsvc_set_served(netsvc *ns, const uint8_t (*sha256)[32], int n) {
  if (n > NETSVC_MAX_ANNOUNCED_MODELS) n = NETSVC_MAX_ANNOUNCED_MODELS;
  for (int i = 0; i < n; i++) memcpy(ns->served[i], sha256[i], 32);
  ns->n_served = n;
  ns->next_publish = now_ms(ns);
}

int netsvc_find_providers(netsvc *ns, const uint8_t sha256[32]) {
  if (!ns->dht_on) return ERR_INVAL;
  uint8_t ih[20];
  netsvc_model_infohash(sha256, ih);
  uint32_t h;
  int rc = dht_get_peers(ns->dht, ih, &h);
  if (rc) return rc;
  add_waiter(ns, W_DISCOVER, h, NULL, NULL, NULL);
  dht_pump(ns);
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
  int rc = rpc_call(p->r, method, params, NULL, 0, timeout_ms, now_ms(ns), on_call_reply, c, &id);
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

static void lookup_record(netsvc *ns, const uint8_t pk[32]);

int netsvc_call(netsvc *ns, const uint8_t pk[32], const char *method, json_t *params, uint64_t timeout_ms,
                netsvc_reply_cb cb, void *ud) {
  if (!memcmp(pk, ns->me->pk, 32)) { json_decref(params); return ERR_INVAL; }
  plink *p = plink_of(ns, pk);
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
  pc->deadline = now_ms(ns) + timeout_ms;
  pc->cb = cb;
  pc->ud = ud;
  peer_info info;
  if (peers_get(ns->db, pk, wall_ms(), &info) == 0 && info.n_addrs > 0) {
    if (!link_dialling(ns->links, pk, NULL)) link_dial(ns->links, pk, info.addrs[0]);
  }
  lookup_record(ns, pk);
  return 0;
}

static void flush_pending(netsvc *ns, plink *p) {
  for (int i = 0; i < MAX_PENDING; i++) {
    pending_call *pc = &ns->pending[i];
    if (!pc->used || memcmp(pc->pk, p->pk, 32)) continue;
    pc->used = 0;
    uint64_t left = pc->deadline > now_ms(ns) ? pc->deadline - now_ms(ns) : 1;
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
  p->last_seen_write = now_ms(ns);
  /* Outbound: addr is the peer's listen address. Inbound: wait for its hello. */
  peers_seen(ns->db, pk, inbound ? NULL : addr, inbound ? "inbound" : "dial", wall_ms());
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
  rpc_on_message(p->r, data, len, now_ms(ns));
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
    if (!duplicate && !ns->stopping) peers_failed(ns->db, p->pk, wall_ms(), jitter());
    char id[IDENT_ID_BUF];
    ident_id_encode(p->pk, id);
    log_info("link to %s closed: %s", id, why ? why : "closed");
    free(p);
    link_set_data(l, NULL);
  } else if (!was_ready && expected && !ns->stopping) {
    peers_failed(ns->db, expected, wall_ms(), jitter());
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
  uint64_t now = now_ms(ns);
  for (plink *p = ns->plinks; p; p = p->next) rpc_tick(p->r, now);
  for (int i = 0; i < MAX_PENDING; i++) {
    pending_call *pc = &ns->pending[i];
    if (!pc->used || pc->deadline > now) continue;
    pc->used = 0;
    json_decref(pc->params);
    fail_reply(pc->cb, pc->ud, RPC_TIMEOUT, "could not reach the node in time");
  }
}

/* ---- DHT ------------------------------------------------------------------------------ */

static void dht_pump(netsvc *ns);

static waiter *add_waiter(netsvc *ns, waiter_kind kind, uint32_t handle, netsvc_dht_cb cb, void *ud,
                          const uint8_t *pk) {
  for (int i = 0; i < MAX_WAITERS; i++) {
    waiter *w = &ns->waiters[i];
    if (w->used) continue;
    memset(w, 0, sizeof *w);
    w->used = 1;
    w->kind = kind;
    w->handle = handle;
    w->cb = cb;
    w->ud = ud;
    if (pk) memcpy(w->pk, pk, 32);
    return w;
  }
  return NULL;
}

static void sockaddr_str(const struct sockaddr_storage *ss, char *out, size_t cap) {
  out[0] = 0;
  if (ss->ss_family != AF_INET) return;
  const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
  char ip[INET_ADDRSTRLEN];
  uv_ip4_name(a, ip, sizeof ip);
  snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
}

/* Is some link up to the node listening at addr? (Dialling it again would make a duplicate
 * link, and closing the duplicate can cut a generation running on the older one.) */
static int linked_addr(netsvc *ns, const char *addr) {
  for (plink *p = ns->plinks; p; p = p->next) {
    char a[80];
    if (!p->hello_port) continue;
    snprintf(a, sizeof a, "%s:%d", p->ip, p->hello_port);
    if (!strcmp(a, addr)) return 1;
  }
  return 0;
}

static int recently_dialled(netsvc *ns, const char *addr) {
  uint64_t now = now_ms(ns);
  int free_slot = -1, oldest = 0;
  for (int i = 0; i < MAX_RECENT; i++) {
    if (!strcmp(ns->recent[i].addr, addr)) {
      if (now - ns->recent[i].at < REDIAL_ADDR_MS) return 1;
      ns->recent[i].at = now;
      return 0;
    }
    if (!ns->recent[i].addr[0] && free_slot < 0) free_slot = i;
    if (ns->recent[i].at < ns->recent[oldest].at) oldest = i;
  }
  int k = free_slot >= 0 ? free_slot : oldest;
  snprintf(ns->recent[k].addr, sizeof ns->recent[k].addr, "%s", addr);
  ns->recent[k].at = now;
  return 0;
}

/* Our TCP endpoints for the node record. */
static int own_endpoints(netsvc *ns, char eps[][PEERS_ADDR_MAX], int cap) {
  int n = 0;
  if (ns->nat_done.ok && ns->nat_done.external_ip[0])
    snprintf(eps[n++], PEERS_ADDR_MAX, "%s:%u", ns->nat_done.external_ip, ns->nat_done.tcp_port);
  if (strcmp(ns->listen_host, "0.0.0.0")) {
    if (n < cap) snprintf(eps[n++], PEERS_ADDR_MAX, "%s:%u", ns->listen_host, ns->listen_port);
    return n;
  }
  uv_interface_address_t *ifs;
  int count;
  if (uv_interface_addresses(&ifs, &count) == 0) {
    for (int i = 0; i < count && n < cap; i++) {
      if (ifs[i].address.address4.sin_family != AF_INET || ifs[i].is_internal) continue;
      char ip[INET_ADDRSTRLEN];
      uv_ip4_name(&ifs[i].address.address4, ip, sizeof ip);
      snprintf(eps[n++], PEERS_ADDR_MAX, "%s:%u", ip, ns->listen_port);
    }
    uv_free_interface_addresses(ifs, count);
  }
  if (n == 0) snprintf(eps[n++], PEERS_ADDR_MAX, "127.0.0.1:%u", ns->listen_port);
  return n;
}

/* ---- NAT ---------------------------------------------------------------------------- */

static void nat_work_cb(uv_work_t *w) {
  netsvc *ns = w->data;
  nat_map(ns->listen_port, ns->dht_on ? ns->dht_port : 0, 2000, &ns->nat);
}

static void maybe_free(netsvc *ns);

static void nat_after_cb(uv_work_t *w, int status) {
  netsvc *ns = w->data;
  ns->nat_busy = 0;
  if (ns->stopping) { maybe_free(ns); return; }
  if (status) return;
  ns->nat_done = ns->nat;
  if (ns->nat.ok) {
    log_info("%s mapped TCP %u%s on %s", ns->nat.method, ns->nat.tcp_port, ns->nat.udp_port ? " and UDP" : "",
             ns->nat.external_ip[0] ? ns->nat.external_ip : "the router");
    ns->next_publish = now_ms(ns); /* put the external endpoint in our record */
  } else {
    log_debug("no port mapping: %s", ns->nat.err);
  }
}

static void nat_start(netsvc *ns) {
  if (!ns->o.nat || ns->nat_busy || ns->stopping) return;
  ns->nat_busy = 1;
  ns->nat_work.data = ns;
  ns->next_nat = now_ms(ns) + (uint64_t)NAT_LEASE_S * 1000 / 2; /* renew at half the lease */
  if (uv_queue_work(ns->loop, &ns->nat_work, nat_work_cb, nat_after_cb)) ns->nat_busy = 0;
}

static void publish(netsvc *ns) {
  uint8_t v[DHT_MAX_VALUE];
  char eps[8][PEERS_ADDR_MAX];
  int n = own_endpoints(ns, eps, 8);
  ben_w w;
  ben_w_init(&w, v, sizeof v);
  ben_w_dict(&w);
  ben_w_key(&w, "e");
  ben_w_list(&w);
  for (int i = 0; i < n; i++) ben_w_cstr(&w, eps[i]);
  ben_w_end(&w);
  if (ns->offers_len) {
    ben_w_key(&w, "o");
    ben_w_raw(&w, ns->offers_ben, ns->offers_len);
  }
  ben_w_key(&w, "v");
  ben_w_int(&w, 1);
  ben_w_end(&w);
  if (ben_w_finish(&w) < 0) { log_warn("node record does not fit in a DHT item"); return; }
  uint32_t h;
  int rc = dht_put_mutable(ns->dht, ns->me, (const uint8_t *)NETSVC_NODE_SALT, strlen(NETSVC_NODE_SALT), v, w.len,
                           wall_ms(), NULL, &h);
  if (rc) log_warn("cannot publish the node record: %s", err_str(rc));
  if (!dht_announce(ns->dht, ns->network_hash, ns->listen_port, &h)) log_debug("announced on the network infohash");
  /* Every model we serve: "who serves model X?" */
  if (ns->n_served >= 0) {
    for (int i = 0; i < ns->n_served; i++) {
      uint8_t ih[20];
      netsvc_model_infohash(ns->served[i], ih);
      dht_announce(ns->dht, ih, ns->listen_port, &h);
    }
    return;
  }
  if (!ns->o.models_dir) return;
  static mstore_model models[NETSVC_MAX_ANNOUNCED_MODELS];
  int n_models = mstore_list(ns->o.models_dir, models, NETSVC_MAX_ANNOUNCED_MODELS);
  for (int i = 0; i < n_models; i++) {
    uint8_t sha[32], ih[20];
    if (hex_decode(models[i].sha256, 64, sha, 32)) continue;
    netsvc_model_infohash(sha, ih);
    dht_announce(ns->dht, ih, ns->listen_port, &h);
  }
}

void netsvc_model_infohash(const uint8_t sha256[32], uint8_t out[20]) {
  sha1_ctx c;
  sha1_init(&c);
  sha1_update(&c, NETSVC_MODEL_TAG, strlen(NETSVC_MODEL_TAG));
  sha1_update(&c, sha256, 32);
  sha1_final(&c, out);
}

static void discover(netsvc *ns) {
  uint32_t h;
  if (dht_get_peers(ns->dht, ns->network_hash, &h) == 0) add_waiter(ns, W_DISCOVER, h, NULL, NULL, NULL);
}

static void lookup_record(netsvc *ns, const uint8_t pk[32]) {
  if (!ns->dht_on) return;
  uint64_t now = now_ms(ns);
  int slot = (pk[0] | pk[1] << 8) % 64;
  if (!memcmp(ns->lookups[slot].pk, pk, 8) && now - ns->lookups[slot].at < RECORD_LOOKUP_MS) return;
  memcpy(ns->lookups[slot].pk, pk, 8);
  ns->lookups[slot].at = now;
  uint32_t h;
  if (dht_get_mutable(ns->dht, pk, (const uint8_t *)NETSVC_NODE_SALT, strlen(NETSVC_NODE_SALT), &h) == 0)
    add_waiter(ns, W_RECORD, h, NULL, NULL, pk);
  dht_pump(ns);
}

static void on_record(netsvc *ns, const uint8_t pk[32], const dht_event *ev) {
  if (!ev->has_item || !ev->item.is_mutable) return;
  ben_node nodes[64];
  if (ben_decode(ev->item.v, ev->item.v_len, nodes, 64, 0) <= 0 || nodes[0].type != BEN_DICT) return;
  const ben_node *e = ben_dict_get(&nodes[0], "e");
  if (!e || e->type != BEN_LIST) return;
  /* Add in reverse so the record's first endpoint ends up first in the peer book. */
  const ben_node *items[8];
  int n = 0;
  for (size_t i = 0; i < e->count && n < 8; i++) {
    const ben_node *it = ben_list_at(e, i);
    if (it && it->type == BEN_STR && it->len > 0 && it->len < PEERS_ADDR_MAX) items[n++] = it;
  }
  for (int i = n - 1; i >= 0; i--) {
    char addr[PEERS_ADDR_MAX];
    memcpy(addr, items[i]->str, items[i]->len);
    addr[items[i]->len] = 0;
    peers_add_addr(ns->db, pk, addr, "dht", wall_ms());
  }
  peer_info info;
  if (n && !plink_of(ns, pk) && !link_dialling(ns->links, pk, NULL) && peers_get(ns->db, pk, wall_ms(), &info) == 0)
    link_dial(ns->links, pk, info.addrs[0]);
}

static void on_dht_event(netsvc *ns, const dht_event *ev) {
  if (ev->type != DHT_EV_DONE) return;
  for (int i = 0; i < MAX_WAITERS; i++) {
    waiter *w = &ns->waiters[i];
    if (!w->used || w->handle != ev->handle) continue;
    w->used = 0;
    switch (w->kind) {
    case W_USER: w->cb(w->ud, ev); break;
    case W_BOOT:
      ns->bootstrapped = ev->n_nodes > 0;
      log_info("DHT bootstrap %s: %zu nodes", ns->bootstrapped ? "done" : "found nobody yet", ev->n_nodes);
      if (ns->bootstrapped) {
        ns->next_publish = ns->next_discover = now_ms(ns);
      }
      break;
    case W_DISCOVER:
      for (size_t k = 0; k < ev->n_peers; k++) {
        char addr[64];
        sockaddr_str(&ev->peers[k], addr, sizeof addr);
        if (!addr[0] || linked_addr(ns, addr) || link_dialling(ns->links, NULL, addr) || recently_dialled(ns, addr))
          continue;
        link_dial(ns->links, NULL, addr);
      }
      break;
    case W_RECORD: on_record(ns, w->pk, ev); break;
    }
    return;
  }
}

static void dht_pump(netsvc *ns) {
  if (ns->dht_on && !ns->stopping) dht_udp_pump(ns->dhtu);
}

static void on_dht_udp_event(void *ud, const dht_event *ev) { on_dht_event(ud, ev); }

static void bootstrap(netsvc *ns) {
  for (int i = 0; i < ns->o.n_bootstrap; i++) {
    struct sockaddr_in a;
    char host[128];
    const char *c = strrchr(ns->o.bootstrap[i], ':');
    if (!c || (size_t)(c - ns->o.bootstrap[i]) >= sizeof host) continue;
    memcpy(host, ns->o.bootstrap[i], (size_t)(c - ns->o.bootstrap[i]));
    host[c - ns->o.bootstrap[i]] = 0;
    if (uv_ip4_addr(host, atoi(c + 1), &a) == 0) {
      dht_bootstrap_add(ns->dht, (const struct sockaddr *)&a);
    } else {
      /* A host name: resolve synchronously once at start (bootstrap lists are short). */
      uv_getaddrinfo_t req;
      struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
      if (uv_getaddrinfo(ns->loop, &req, NULL, host, c + 1, &hints) == 0) {
        for (struct addrinfo *ai = req.addrinfo; ai; ai = ai->ai_next) dht_bootstrap_add(ns->dht, ai->ai_addr);
        uv_freeaddrinfo(req.addrinfo);
      } else {
        log_warn("cannot resolve DHT bootstrap node %s", ns->o.bootstrap[i]);
      }
    }
  }
  /* Nodes remembered from earlier runs. */
  uint8_t ids[64][20];
  char addrs[64][PEERS_ADDR_MAX];
  int n = peers_dht_cache_load(ns->db, ids, addrs, 64);
  dht_node_rec recs[64];
  int k = 0;
  for (int i = 0; i < n; i++) {
    struct sockaddr_in a;
    char host[64];
    const char *c = strrchr(addrs[i], ':');
    if (!c || (size_t)(c - addrs[i]) >= sizeof host) continue;
    memcpy(host, addrs[i], (size_t)(c - addrs[i]));
    host[c - addrs[i]] = 0;
    if (uv_ip4_addr(host, atoi(c + 1), &a)) continue;
    memcpy(recs[k].id, ids[i], 20);
    memset(&recs[k].addr, 0, sizeof recs[k].addr);
    memcpy(&recs[k].addr, &a, sizeof a);
    k++;
  }
  if (k) dht_nodes_import(ns->dht, recs, (size_t)k);
  uint32_t h;
  if (dht_find_node(ns->dht, dht_id(ns->dht), &h) == 0) add_waiter(ns, W_BOOT, h, NULL, NULL, NULL);
  ns->next_boot = now_ms(ns) + (ns->o.fast ? 3000 : 30000);
}

static void save_dht_cache(netsvc *ns) {
  dht_node_rec recs[64];
  int n = dht_nodes_export(ns->dht, recs, 64);
  for (int i = 0; i < n; i++) {
    char addr[64];
    sockaddr_str(&recs[i].addr, addr, sizeof addr);
    if (addr[0]) peers_dht_cache_put(ns->db, recs[i].id, addr, wall_ms());
  }
}

static int start_dht(netsvc *ns, char *err, size_t cap) {
  dht_config cfg;
  dht_config_default(&cfg);
  randombytes_buf(cfg.seed, sizeof cfg.seed);
  cfg.allow_private = ns->o.allow_private;
  cfg.rate_by_port = ns->o.allow_private; /* many nodes on one host only happens in tests and labs */
  /* A stable DHT id derived from the node key. */
  uint8_t id[20], h[32];
  crypto_generichash(h, sizeof h, ns->me->pk, 32, (const uint8_t *)"apiary-dht-id", 13);
  memcpy(id, h, 20);
  int rc = dht_new(id, &cfg, &ns->dht);
  if (rc) { snprintf(err, cap, "cannot create the DHT: %s", err_str(rc)); return rc; }
  sha1((const uint8_t *)NETSVC_NETWORK_TAG, strlen(NETSVC_NETWORK_TAG), ns->network_hash);
  if ((rc = dht_udp_start(ns->loop, ns->dht, ns->listen_host, ns->o.dht_port, on_dht_udp_event, ns, &ns->dhtu, err,
                          cap)))
    return rc;
  ns->dht_port = dht_udp_port(ns->dhtu);
  ns->dht_on = 1;
  bootstrap(ns);
  dht_pump(ns);
  return 0;
}

/* ---- maintenance ---------------------------------------------------------------------- */

static void on_maint(uv_timer_t *t) {
  netsvc *ns = t->data;
  uint64_t now = now_ms(ns);
  int64_t wall = wall_ms();
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
    if (!memcmp(due[i].pk, ns->me->pk, 32) || plink_of(ns, due[i].pk) || link_dialling(ns->links, due[i].pk, NULL))
      continue;
    if (due[i].failures > 0) lookup_record(ns, due[i].pk);
    link_dial(ns->links, due[i].pk, due[i].addrs[0]);
  }
  if (ns->o.nat && now >= ns->next_nat) nat_start(ns);
  if (!ns->dht_on) return;
  if (!ns->bootstrapped && now >= ns->next_boot) bootstrap(ns);
  if (ns->bootstrapped && now >= ns->next_publish) {
    publish(ns);
    save_dht_cache(ns);
    ns->next_publish = now + (ns->o.fast ? 10000 : RECORD_REPUBLISH_MS);
  }
  if (ns->bootstrapped && now >= ns->next_discover) {
    discover(ns);
    uint64_t age = now - ns->started;
    ns->next_discover = now + (ns->o.fast ? 2000 : age < 120000 ? 5000 : 60000);
  }
  dht_pump(ns);
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
  if (o->dht_enabled && (rc = start_dht(ns, err, cap))) {
    netsvc_stop(ns);
    *out = NULL;
    return rc;
  }
  return 0;
}

static void maybe_free(netsvc *ns) {
  if (ns->handles == 0 && !ns->nat_busy) {
    dht_free(ns->dht);
    free(ns);
  }
}

static void on_handle_closed(uv_handle_t *h) {
  netsvc *ns = h->data;
  --ns->handles;
  maybe_free(ns);
}

void netsvc_stop(netsvc *ns) {
  if (!ns || ns->stopping) return;
  ns->stopping = 1;
  if (ns->dht_on) save_dht_cache(ns);
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

/* ---- DHT operations for the control socket ------------------------------------------- */

static int user_op(netsvc *ns, int rc, uint32_t h, netsvc_dht_cb cb, void *ud) {
  if (rc) return rc;
  if (!add_waiter(ns, W_USER, h, cb, ud, NULL)) {
    dht_cancel(ns->dht, h);
    return ERR_TOOBIG;
  }
  dht_pump(ns);
  return 0;
}

int netsvc_dht_get_mutable(netsvc *ns, const uint8_t pk[32], const char *salt, netsvc_dht_cb cb, void *ud) {
  if (!ns->dht_on) return ERR_UNSUPPORTED;
  uint32_t h;
  int rc = dht_get_mutable(ns->dht, pk, (const uint8_t *)salt, salt ? strlen(salt) : 0, &h);
  return user_op(ns, rc, h, cb, ud);
}

int netsvc_dht_get_immutable(netsvc *ns, const uint8_t target[20], netsvc_dht_cb cb, void *ud) {
  if (!ns->dht_on) return ERR_UNSUPPORTED;
  uint32_t h;
  int rc = dht_get_immutable(ns->dht, target, &h);
  return user_op(ns, rc, h, cb, ud);
}

int netsvc_dht_put_mutable(netsvc *ns, const char *salt, const uint8_t *v, size_t v_len, netsvc_dht_cb cb, void *ud) {
  if (!ns->dht_on) return ERR_UNSUPPORTED;
  if (salt && !strcmp(salt, NETSVC_NODE_SALT)) return ERR_INVAL; /* the node record is ours to manage */
  uint32_t h;
  int rc = dht_put_mutable(ns->dht, ns->me, (const uint8_t *)salt, salt ? strlen(salt) : 0, v, v_len, wall_ms(),
                           NULL, &h);
  return user_op(ns, rc, h, cb, ud);
}

int netsvc_dht_put_immutable(netsvc *ns, const uint8_t *v, size_t v_len, uint8_t target_out[20], netsvc_dht_cb cb,
                             void *ud) {
  if (!ns->dht_on) return ERR_UNSUPPORTED;
  uint32_t h;
  int rc = dht_put_immutable(ns->dht, v, v_len, target_out, &h);
  return user_op(ns, rc, h, cb, ud);
}

int netsvc_dht_get_peers(netsvc *ns, const uint8_t info_hash[20], netsvc_dht_cb cb, void *ud) {
  if (!ns->dht_on) return ERR_UNSUPPORTED;
  uint32_t h;
  int rc = dht_get_peers(ns->dht, info_hash, &h);
  return user_op(ns, rc, h, cb, ud);
}

int netsvc_dht_announce(netsvc *ns, const uint8_t info_hash[20], uint16_t port, netsvc_dht_cb cb, void *ud) {
  if (!ns->dht_on) return ERR_UNSUPPORTED;
  uint32_t h;
  int rc = dht_announce(ns->dht, info_hash, port ? port : ns->listen_port, &h);
  return user_op(ns, rc, h, cb, ud);
}
