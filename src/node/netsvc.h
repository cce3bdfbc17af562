/* node/netsvc — the node's network: encrypted links with JSON-RPC, the Mainline DHT,
 * discovery and reconnection.
 *
 *   - links (p2p/link) on the listen address; each ready link gets an RPC endpoint
 *     (p2p/rpc) with the node's methods; both sides exchange a `hello` notification that
 *     carries the TCP port they listen on, so inbound links are recorded at the right
 *     address;
 *   - the DHT (p2p/dht) on a UDP socket: bootstrap, then announce under the network
 *     infohash SHA-1("apiary-network-v1") with our TCP port, and publish our node record,
 *     a BEP 44 mutable item under our Ed25519 key with salt "apiary-node-v1" whose value
 *     lists our TCP endpoints (docs/dht.md);
 *   - discovery: addresses found under the network infohash are dialled (any node that
 *     authenticates); a peer that stops answering is looked up by key in the DHT so a
 *     node that moved (new port, new address) is found again;
 *   - reconnection with exponential backoff from the peer book (p2p/peers).
 * Loop thread only. */
#ifndef APIARY_NODE_NETSVC_H
#define APIARY_NODE_NETSVC_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "core/store.h"
#include "crypto/ident.h"
#include "p2p/rpc.h"

#define NETSVC_MAX_BOOTSTRAP 32
#define NETSVC_NODE_SALT "apiary-node-v1"
#define NETSVC_NETWORK_TAG "apiary-network-v1"
#define NETSVC_MODEL_TAG "apiary-model-v1"
#define NETSVC_MAX_ANNOUNCED_MODELS 16

/* The infohash nodes serving a model announce: SHA-1("apiary-model-v1" || sha256(file)). */
void netsvc_model_infohash(const uint8_t sha256[32], uint8_t out[20]);

typedef struct netsvc netsvc;

typedef struct netsvc_opts {
  const char *listen;                         /* "IPv4:PORT" for links (port 0 = any) */
  int dht_enabled;
  int dht_port;                               /* UDP port (0 = any) */
  const char *bootstrap[NETSVC_MAX_BOOTSTRAP];/* "HOST:PORT" (IPv4 literals or names) */
  int n_bootstrap;
  int allow_private;                          /* DHT accepts loopback/private addresses */
  int fast;                                   /* short discovery intervals (tests, demo) */
  uint32_t keepalive_s, idle_timeout_s;       /* link timing (0 = defaults: 15 s, 60 s) */
  int nat;                                    /* try UPnP-IGD / NAT-PMP port mapping */
  const char *models_dir;                     /* model store: each model is announced (NULL = none) */
} netsvc_opts;

/* me and db are borrowed for the service's lifetime. */
int netsvc_start(uv_loop_t *loop, const ident *me, store *db, const netsvc_opts *o, netsvc **out, char *err,
                 size_t err_cap);
void netsvc_stop(netsvc *ns); /* closes links (CLOSE sent), sockets; frees once libuv is done */

uint16_t netsvc_listen_port(const netsvc *ns);
uint16_t netsvc_dht_port(const netsvc *ns);
/* Figures for `apiary status`. Caller owns the result. */
json_t *netsvc_status(netsvc *ns);

/* Called on the loop thread when a link's RPC endpoint is about to be freed (the link is
 * gone): services serving requests on r must forget it now. At most 4 observers. */
typedef void (*netsvc_closed_cb)(void *ud, rpc *r);
int netsvc_on_rpc_closed(netsvc *ns, netsvc_closed_cb cb, void *ud);

/* Called on the loop thread when a link to node pk is ready (RPC usable). At most 4. */
typedef void (*netsvc_ready_cb)(void *ud, const uint8_t pk[32]);
int netsvc_on_link_ready(netsvc *ns, netsvc_ready_cb cb, void *ud);
/* The node at the other end of RPC endpoint r (a method handler's r). 0 or ERR_NOTFOUND. */
int netsvc_rpc_peer(netsvc *ns, const rpc *r, uint8_t pk_out[32]);
/* Whether a link to pk is up now. */
int netsvc_linked(netsvc *ns, const uint8_t pk[32]);

/* The market's offers, already bencoded (a list), put under key "o" of our node record;
 * the record is republished soon. Copied; NULL/0 removes them. */
int netsvc_set_record_offers(netsvc *ns, const uint8_t *ben, size_t len);
/* The agents we sell, already bencoded (agent/a2a's list), put under key "a" of our node
 * record (at most NETSVC_AGENTS_MAX bytes); republished soon when they changed. Copied;
 * NULL/0 removes them. 0 or ERR_TOOBIG. */
#define NETSVC_AGENTS_MAX 256
int netsvc_set_record_agents(netsvc *ns, const uint8_t *ben, size_t len);
/* Observes the node records we look up (signed by pk; record is the decoded dict, borrowed
 * for the call). One observer. */
#include "p2p/bencode.h"
typedef void (*netsvc_record_cb)(void *ud, const uint8_t pk[32], const ben_node *record);
void netsvc_on_record(netsvc *ns, netsvc_record_cb cb, void *ud);
/* Negotiation intents, already bencoded (a list of {i: id, k: kind, t: [tags]}), put under
 * key "n" of our node record (dropped from the record when it would not fit). Copied;
 * NULL/0 removes them. ERR_TOOBIG over NETSVC_MAX_RECORD_INTENTS bytes. */
#define NETSVC_MAX_RECORD_INTENTS 200
int netsvc_set_record_intents(netsvc *ns, const uint8_t *ben, size_t len);
/* The models we announce under their model infohash (replaces the default: every model in
 * the store). Copied. */
void netsvc_set_served(netsvc *ns, const uint8_t (*sha256)[32], int n);
/* Looks up nodes announced under the model's infohash and dials them (their offers arrive
 * through the link-ready observers). */
int netsvc_find_providers(netsvc *ns, const uint8_t sha256[32]);

/* Registers an RPC method offered to every peer (existing and future links). */
int netsvc_register(netsvc *ns, const rpc_method *m);

/* Calls method on node pk, dialling it (from the peer book or its DHT record) if needed.
 * cb gets exactly one reply (or an RPC_LINK_CLOSED / RPC_TIMEOUT error). params taken. */
typedef void (*netsvc_reply_cb)(void *ud, const rpc_reply *reply);
int netsvc_call(netsvc *ns, const uint8_t pk[32], const char *method, json_t *params, uint64_t timeout_ms,
                netsvc_reply_cb cb, void *ud);

/* DHT operations for `apiary dht get|put`; the callback gets the finished lookup's event
 * (borrowed for the call) or NULL when the DHT is off. */
typedef struct dht_event dht_event;
typedef void (*netsvc_dht_cb)(void *ud, const dht_event *ev);
int netsvc_dht_get_mutable(netsvc *ns, const uint8_t pk[32], const char *salt, netsvc_dht_cb cb, void *ud);
int netsvc_dht_get_immutable(netsvc *ns, const uint8_t target[20], netsvc_dht_cb cb, void *ud);
int netsvc_dht_put_mutable(netsvc *ns, const char *salt, const uint8_t *v, size_t v_len, netsvc_dht_cb cb, void *ud);
int netsvc_dht_get_peers(netsvc *ns, const uint8_t info_hash[20], netsvc_dht_cb cb, void *ud);
/* Announces us under info_hash with port (0 = our link port). */
int netsvc_dht_announce(netsvc *ns, const uint8_t info_hash[20], uint16_t port, netsvc_dht_cb cb, void *ud);
int netsvc_dht_put_immutable(netsvc *ns, const uint8_t *v, size_t v_len, uint8_t target_out[20], netsvc_dht_cb cb,
                             void *ud);

#endif
