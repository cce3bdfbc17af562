/* p2p/dht_impl — internals shared by dht.c, dht_table.c and dht_store.c (and the unit
 * tests, which check the routing table against a brute-force reference). Not a public
 * API: names carry the dht__ prefix. Same threading rule as dht.h: one owner. */
#ifndef APIARY_P2P_DHT_IMPL_H
#define APIARY_P2P_DHT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "p2p/dht.h"

#define DHT__REPL 8      /* replacement cache entries per bucket */
#define DHT__BUCKETS 160

/* An IPv4 endpoint, as on the wire. */
typedef struct dht__addr {
  uint8_t ip[4];
  uint16_t port;
} dht__addr;

typedef struct dht__tnode {
  uint8_t id[DHT_ID_LEN];
  dht__addr addr;
  uint8_t fails;         /* consecutive timeouts */
  uint8_t pinging;       /* a liveness ping is in flight */
  uint64_t last_reply;   /* last answer to one of our queries; 0 = never */
  uint64_t last_seen;    /* last message of any kind */
} dht__tnode;

typedef struct dht__bucket {
  dht__tnode n[DHT_K];
  int count;
  dht__tnode repl[DHT__REPL]; /* candidates waiting for a slot, newest last */
  int n_repl;
  uint64_t last_changed;      /* last time a node here answered or was added */
} dht__bucket;

typedef struct dht__table {
  uint8_t self[DHT_ID_LEN];
  dht__bucket *b[DHT__BUCKETS]; /* b[i]: ids sharing exactly i leading bits with self; lazily allocated */
  size_t count;
} dht__table;

typedef enum dht__heard {
  DHT__UPDATED = 0, DHT__ADDED = 1, DHT__FULL = 2 /* kept in the replacement cache */
} dht__heard;

/* XOR distance comparison: <0 when a is closer to target than b. */
int dht__cmp_dist(const uint8_t target[static 20], const uint8_t a[static 20], const uint8_t b[static 20]);
/* Common prefix length of two ids (0..160). */
int dht__cpl(const uint8_t a[static 20], const uint8_t b[static 20]);
/* State of a table node at now. */
enum { DHT__GOOD = 0, DHT__QUESTIONABLE = 1, DHT__BAD = 2 };
int dht__node_state(const dht__tnode *n, uint64_t now);

void dht__table_init(dht__table *t, const uint8_t self[static 20]);
void dht__table_deinit(dht__table *t);
/* Records a message from (id, addr). replied: it answered our query. When the bucket is
 * full of live nodes the newcomer goes to the replacement cache and *ping_out (may be NULL)
 * names the most questionable node to check, if any. Returns dht__heard, or ERR_NOMEM /
 * ERR_INVAL (own id). */
int dht__table_heard(dht__table *t, const uint8_t id[static 20], const dht__addr *addr, int replied, uint64_t now,
                     dht__tnode **ping_out);
/* A query to id timed out: one more failure; a bad node is replaced from the cache. */
void dht__table_failed(dht__table *t, const uint8_t id[static 20], uint64_t now);
dht__tnode *dht__table_find(dht__table *t, const uint8_t id[static 20]);
/* Up to cap nodes closest to target that have answered us and are not bad, nearest
 * first. Returns the count. */
size_t dht__table_closest(const dht__table *t, const uint8_t target[static 20], uint64_t now, dht__tnode *out,
                          size_t cap);

/* Stores. */
typedef struct dht__peer {
  dht__addr addr;
  uint64_t expires;
} dht__peer;

typedef struct dht__hash {
  uint8_t ih[DHT_ID_LEN];
  uint32_t n;
  dht__peer *peers;   /* max_peers_per_hash entries */
} dht__hash;

typedef struct dht__item {
  uint8_t target[DHT_ID_LEN];
  uint8_t is_mutable;
  uint8_t k[32];
  uint8_t sig[64];
  uint8_t salt[DHT_MAX_SALT];
  size_t salt_len;
  int64_t seq;
  uint8_t v[DHT_MAX_VALUE];
  size_t v_len;
  uint64_t expires;
} dht__item;

typedef struct dht__store {
  dht__hash *hashes;   /* max_hashes slots, n_hashes used */
  uint32_t n_hashes, max_hashes, max_peers;
  dht__item **items;   /* max_items slots */
  uint32_t n_items, max_items;
  size_t n_peers;      /* total peers */
} dht__store;

void dht__store_init(dht__store *s, uint32_t max_hashes, uint32_t max_peers, uint32_t max_items);
void dht__store_deinit(dht__store *s);
/* Adds or refreshes a peer. When full, the entry expiring first is replaced. */
int dht__store_peer(dht__store *s, const uint8_t ih[static 20], const dht__addr *a, uint64_t now);
/* Up to cap peers for ih (not expired). */
size_t dht__store_peers(const dht__store *s, const uint8_t ih[static 20], uint64_t now, dht__addr *out, size_t cap);
dht__item *dht__store_item(dht__store *s, const uint8_t target[static 20], uint64_t now);
/* Inserts or replaces the item for it->target (copied); evicts the one expiring first
 * when full. */
int dht__store_put(dht__store *s, const dht__item *it);
void dht__store_expire(dht__store *s, uint64_t now);

#endif
