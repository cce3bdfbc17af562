/* p2p/peers — the peer book: every node this node knows, in SQLite.
 *
 * A peer is keyed by its Ed25519 public key. Each row keeps its last known addresses (a
 * small JSON list of "host:port"), where it was learned (dht, lan, bootstrap, inbound),
 * when it was last seen alive, consecutive failures and the time before which no reconnect
 * is tried (exponential backoff: 1 s doubling to 10 min, with ±20% jitter supplied by the
 * caller so tests are deterministic). State is derived: "up" if seen within
 * PEERS_UP_WINDOW_MS, "down" after PEERS_DOWN_FAILURES consecutive failures, otherwise
 * "unknown". The book also keeps the DHT's persistent node cache.
 * The node's loop thread owns the store; these functions run there. */
#ifndef APIARY_P2P_PEERS_H
#define APIARY_P2P_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

#define PEERS_MAX_ADDRS 8
#define PEERS_ADDR_MAX 64
#define PEERS_UP_WINDOW_MS (90 * 1000)
#define PEERS_DOWN_FAILURES 3
#define PEERS_BACKOFF_MIN_MS 1000
#define PEERS_BACKOFF_MAX_MS (10 * 60 * 1000)

/* The p2p layer's migrations (appended to the node's list in src/node/home.c). */
extern const char peers_schema_v1[];

typedef enum { PEER_UNKNOWN = 0, PEER_UP = 1, PEER_DOWN = 2 } peer_state;

typedef struct peer_info {
  uint8_t pk[32];
  char addrs[PEERS_MAX_ADDRS][PEERS_ADDR_MAX]; /* most recent first */
  int n_addrs;
  char source[16];
  int64_t last_seen_ms;    /* 0 = never */
  int failures;            /* consecutive */
  int64_t retry_after_ms;  /* no reconnect before this */
  peer_state state;        /* derived at read time */
} peer_info;

/* Records that pk was seen alive at addr (NULL keeps the addresses) at now_ms: failures
 * reset, addr moves to the front of the list. Inserts unknown peers. */
int peers_seen(store *s, const uint8_t pk[static 32], const char *addr, const char *source, int64_t now_ms);
/* Adds a candidate address without marking the peer alive (from DHT records, LAN). */
int peers_add_addr(store *s, const uint8_t pk[static 32], const char *addr, const char *source, int64_t now_ms);
/* Records a failed connect or health check; jitter in [-0.2, 0.2] scales the backoff. */
int peers_failed(store *s, const uint8_t pk[static 32], int64_t now_ms, double jitter);
/* Reads one peer; ERR_NOTFOUND if unknown. */
int peers_get(store *s, const uint8_t pk[static 32], int64_t now_ms, peer_info *out);
/* Lists up to cap peers, most recently seen first. Returns the count. */
int peers_list(store *s, int64_t now_ms, peer_info *out, size_t cap);
/* Lists up to cap peers that are due for a (re)connect attempt at now_ms. */
int peers_due(store *s, int64_t now_ms, peer_info *out, size_t cap);
int peers_remove(store *s, const uint8_t pk[static 32]);
const char *peers_state_name(peer_state st);
/* Backoff after n consecutive failures, before jitter. */
int64_t peers_backoff_ms(int failures);

/* DHT node cache: (20-byte id, "host:port") pairs kept across restarts. */
int peers_dht_cache_put(store *s, const uint8_t id[static 20], const char *addr, int64_t now_ms);
int peers_dht_cache_load(store *s, uint8_t (*ids)[20], char (*addrs)[PEERS_ADDR_MAX], size_t cap);

#endif
