/* node/netdht — the network service's DHT side: the engine on its socket (p2p/dht_udp),
 * bootstrap and the node cache, signed node records (publish, look up), model infohash
 * announces, discovery, NAT mapping, and the DHT operations of the control socket; see
 * netsvc.h and netsvc_impl.h. */
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

/* ---- DHT ------------------------------------------------------------------------------ */


waiter *netsvc__add_waiter(netsvc *ns, waiter_kind kind, uint32_t handle, netsvc_dht_cb cb, void *ud,
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
  uint64_t now = netsvc__now_ms(ns);
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


static void nat_after_cb(uv_work_t *w, int status) {
  netsvc *ns = w->data;
  ns->nat_busy = 0;
  if (ns->stopping) { netsvc__maybe_free(ns); return; }
  if (status) return;
  ns->nat_done = ns->nat;
  if (ns->nat.ok) {
    log_info("%s mapped TCP %u%s on %s", ns->nat.method, ns->nat.tcp_port, ns->nat.udp_port ? " and UDP" : "",
             ns->nat.external_ip[0] ? ns->nat.external_ip : "the router");
    ns->next_publish = netsvc__now_ms(ns); /* put the external endpoint in our record */
  } else {
    log_debug("no port mapping: %s", ns->nat.err);
  }
}

void netsvc__nat_start(netsvc *ns) {
  if (!ns->o.nat || ns->nat_busy || ns->stopping) return;
  ns->nat_busy = 1;
  ns->nat_work.data = ns;
  ns->next_nat = netsvc__now_ms(ns) + (uint64_t)NAT_LEASE_S * 1000 / 2; /* renew at half the lease */
  if (uv_queue_work(ns->loop, &ns->nat_work, nat_work_cb, nat_after_cb)) ns->nat_busy = 0;
}

/* Our node record into v: {a?: agents, e: endpoints, n?: intents, o?: offers, v: 1} (keys
 * in bencode's sorted order). The length, or ERR_TOOBIG when it does not fit a DHT item. */
static int record(netsvc *ns, uint8_t v[DHT_MAX_VALUE], int with_agents, int with_intents) {
  char eps[8][PEERS_ADDR_MAX];
  int n = own_endpoints(ns, eps, 8);
  ben_w w;
  ben_w_init(&w, v, DHT_MAX_VALUE);
  ben_w_dict(&w);
  if (with_agents && ns->agents_len) {
    ben_w_key(&w, "a");
    ben_w_raw(&w, ns->agents_ben, ns->agents_len);
  }
  ben_w_key(&w, "e");
  ben_w_list(&w);
  for (int i = 0; i < n; i++) ben_w_cstr(&w, eps[i]);
  ben_w_end(&w);
  if (with_intents && ns->intents_len) {
    ben_w_key(&w, "n");
    ben_w_raw(&w, ns->intents_ben, ns->intents_len);
  }
  if (ns->offers_len) {
    ben_w_key(&w, "o");
    ben_w_raw(&w, ns->offers_ben, ns->offers_len);
  }
  ben_w_key(&w, "v");
  ben_w_int(&w, 1);
  ben_w_end(&w);
  return ben_w_finish(&w) < 0 ? ERR_TOOBIG : (int)w.len;
}

void netsvc__publish(netsvc *ns) {
  uint8_t v[DHT_MAX_VALUE];
  /* Endpoints and model offers come first (they route generations), then the agents for
   * sale, then the negotiation intents (peers also answer neg.intents over a link). */
  int len = record(ns, v, 1, 1);
  if (len < 0 && ns->intents_len) {
    log_debug("node record: no room for the negotiation intents");
    len = record(ns, v, 1, 0);
  }
  if (len < 0 && ns->agents_len) {
    log_debug("node record: no room for the agents for sale next to the offers");
    len = record(ns, v, 0, 0);
  }
  if (len < 0) { log_warn("node record does not fit in a DHT item"); return; }
  uint32_t h;
  int rc = dht_put_mutable(ns->dht, ns->me, (const uint8_t *)NETSVC_NODE_SALT, strlen(NETSVC_NODE_SALT), v, (size_t)len,
                           netsvc__wall_ms(), NULL, &h);
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

void netsvc__discover(netsvc *ns) {
  uint32_t h;
  if (dht_get_peers(ns->dht, ns->network_hash, &h) == 0) netsvc__add_waiter(ns, W_DISCOVER, h, NULL, NULL, NULL);
}

void netsvc__lookup_record(netsvc *ns, const uint8_t pk[32]) {
  if (!ns->dht_on) return;
  uint64_t now = netsvc__now_ms(ns);
  int slot = (pk[0] | pk[1] << 8) % 64;
  if (!memcmp(ns->lookups[slot].pk, pk, 8) && now - ns->lookups[slot].at < RECORD_LOOKUP_MS) return;
  memcpy(ns->lookups[slot].pk, pk, 8);
  ns->lookups[slot].at = now;
  uint32_t h;
  if (dht_get_mutable(ns->dht, pk, (const uint8_t *)NETSVC_NODE_SALT, strlen(NETSVC_NODE_SALT), &h) == 0)
    netsvc__add_waiter(ns, W_RECORD, h, NULL, NULL, pk);
  netsvc__dht_pump(ns);
}

static void on_record(netsvc *ns, const uint8_t pk[32], const dht_event *ev) {
  if (!ev->has_item || !ev->item.is_mutable) return;
  static ben_node nodes[256]; /* loop thread; a full record (offers, agents) needs more than 64 */
  if (ben_decode(ev->item.v, ev->item.v_len, nodes, 256, 0) <= 0 || nodes[0].type != BEN_DICT) return;
  if (ns->record_cb) ns->record_cb(ns->record_ud, pk, &nodes[0]);
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
    peers_add_addr(ns->db, pk, addr, "dht", netsvc__wall_ms());
  }
  peer_info info;
  if (n && !netsvc__plink_of(ns, pk) && !link_dialling(ns->links, pk, NULL) && peers_get(ns->db, pk, netsvc__wall_ms(), &info) == 0)
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
        ns->next_publish = ns->next_discover = netsvc__now_ms(ns);
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

void netsvc__dht_pump(netsvc *ns) {
  if (ns->dht_on && !ns->stopping) dht_udp_pump(ns->dhtu);
}

static void on_dht_udp_event(void *ud, const dht_event *ev) { on_dht_event(ud, ev); }

void netsvc__bootstrap(netsvc *ns) {
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
  if (dht_find_node(ns->dht, dht_id(ns->dht), &h) == 0) netsvc__add_waiter(ns, W_BOOT, h, NULL, NULL, NULL);
  ns->next_boot = netsvc__now_ms(ns) + (ns->o.fast ? 3000 : 30000);
}

void netsvc__save_dht_cache(netsvc *ns) {
  dht_node_rec recs[64];
  int n = dht_nodes_export(ns->dht, recs, 64);
  for (int i = 0; i < n; i++) {
    char addr[64];
    sockaddr_str(&recs[i].addr, addr, sizeof addr);
    if (addr[0]) peers_dht_cache_put(ns->db, recs[i].id, addr, netsvc__wall_ms());
  }
}

int netsvc__start_dht(netsvc *ns, char *err, size_t cap) {
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
  netsvc__bootstrap(ns);
  netsvc__dht_pump(ns);
  return 0;
}

/* ---- DHT operations for the control socket ------------------------------------------- */

static int user_op(netsvc *ns, int rc, uint32_t h, netsvc_dht_cb cb, void *ud) {
  if (rc) return rc;
  if (!netsvc__add_waiter(ns, W_USER, h, cb, ud, NULL)) {
    dht_cancel(ns->dht, h);
    return ERR_TOOBIG;
  }
  netsvc__dht_pump(ns);
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
  int rc = dht_put_mutable(ns->dht, ns->me, (const uint8_t *)salt, salt ? strlen(salt) : 0, v, v_len, netsvc__wall_ms(),
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

