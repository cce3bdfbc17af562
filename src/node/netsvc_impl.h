/* node/netsvc_impl — what the network service's files share (netsvc.c: links, RPC, calls,
 * maintenance, lifecycle; netdht.c: the DHT, node records, discovery, NAT mapping).
 * Internal to node/netsvc*; loop thread. */
#ifndef APIARY_NODE_NETSVC_IMPL_H
#define APIARY_NODE_NETSVC_IMPL_H

#include <sys/socket.h>

#include "node/netsvc.h"
#include "p2p/dht.h"
#include "p2p/dht_udp.h"
#include "p2p/link.h"
#include "p2p/nat.h"
#include "p2p/peers.h"

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
  uint8_t agents_ben[NETSVC_AGENTS_MAX]; /* the "a" key of our record (agents for sale) */
  size_t agents_len;
  netsvc_record_cb record_cb;  /* observer of the records we look up */
  void *record_ud;
  uint8_t intents_ben[NETSVC_MAX_RECORD_INTENTS]; /* key "n": negotiation intents (node/negsvc) */
  size_t intents_len;
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


/* netsvc.c */
int64_t netsvc__wall_ms(void);                                  /* unix ms (peer book times) */
uint64_t netsvc__now_ms(netsvc *ns);                            /* loop ms */
plink *netsvc__plink_of(netsvc *ns, const uint8_t pk[32]);      /* the link to pk, or NULL */
void netsvc__maybe_free(netsvc *ns);                            /* frees once stopped and idle */

/* netdht.c */
int netsvc__start_dht(netsvc *ns, char *err, size_t cap);       /* engine, socket, bootstrap */
void netsvc__dht_pump(netsvc *ns);                              /* flush what was asked of it */
/* Waits for lookup handle's end (kind says what to do with it). */
waiter *netsvc__add_waiter(netsvc *ns, waiter_kind kind, uint32_t handle, netsvc_dht_cb cb, void *ud,
                          const uint8_t *pk);
void netsvc__bootstrap(netsvc *ns);                             /* (again) from the configured nodes and the cache */
void netsvc__save_dht_cache(netsvc *ns);                        /* good DHT nodes into the store */
void netsvc__publish(netsvc *ns);                               /* our signed record and model announces */
void netsvc__discover(netsvc *ns);                              /* peers under the network's infohash */
void netsvc__lookup_record(netsvc *ns, const uint8_t pk[32]);   /* pk's record (its endpoints), rate-limited */
void netsvc__nat_start(netsvc *ns);                             /* router port mapping (thread pool) */

#endif
