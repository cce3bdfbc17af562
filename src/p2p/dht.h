/* p2p/dht — the Mainline DHT engine (BEP 5 + BEP 44), with no I/O.
 *
 * The engine never touches a socket, a clock or the OS random source (STYLE.md rule 8):
 *   - the host passes every received UDP payload to dht_input() with its source address and
 *     the current time;
 *   - the host calls dht_poll() until it returns 0; each call yields one output: a packet to
 *     send (bytes + destination) or an event (a lookup finished, a node was added);
 *   - the host calls dht_poll() again no later than dht_next_deadline();
 *   - randomness comes from dht_config.seed (32 bytes the host draws from randombytes_buf;
 *     tests pass fixed seeds and get reproducible runs).
 *
 * Inside: a flat routing table of 160 buckets of DHT_K nodes indexed by the length of the
 * common prefix with our id (equivalent to the splitting table), each node good /
 * questionable / bad per BEP 5 (good = answered within 15 min; bad = DHT_BAD_FAILS timeouts
 * in a row), a replacement cache per bucket, bucket refresh after 15 min of silence;
 * iterative lookups (DHT_ALPHA queries in flight, done when the DHT_K closest live nodes
 * have all answered) for find_node / get_peers / get, followed by announce_peer / put to
 * the DHT_K closest nodes that gave a token; a server side answering all six queries with
 * tokens = SHA-1(secret || ip) (secret rotated every 5 min, the previous one accepted);
 * a peer store and a BEP 44 item store with caps and expiry; per-source token-bucket rate
 * limiting of incoming queries; counted drop reasons (dht_stats).
 *
 * Joining: while fewer than DHT_K live nodes are known, the engine looks itself up via the
 * table and the bootstrap addresses (again every 30 s while that lasts, e.g. after an
 * outage), then runs one refresh lookup per bucket up to the deepest (Kademlia's join).
 * A node that only queried us is pinged once before we hand it to others; queries marked
 * read-only (BEP 43 "ro") are answered but their senders stay out of the table. Gets start
 * from our own store (we may be one of the nodes holding the item or peers).
 *
 * IPv4 only for now (compact 26-byte nodes, 6-byte peers): packets from IPv6 sources are
 * dropped and counted (drop_unsupported); krpc parses nodes6 but the engine ignores it. Not thread-safe: one owner (the node's loop
 * thread) calls everything. Pointers in a dht_output stay valid until the next call into
 * the engine. */
#ifndef APIARY_P2P_DHT_H
#define APIARY_P2P_DHT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "crypto/ident.h"

#define DHT_ID_LEN 20
#define DHT_K 8                      /* bucket size, nodes per lookup result, store fan-out */
#define DHT_ALPHA 3                  /* parallel queries per lookup */
#define DHT_BAD_FAILS 3              /* consecutive timeouts that make a node bad */
#define DHT_GOOD_MS (15 * 60 * 1000) /* a node that answered this recently is good */
#define DHT_REFRESH_MS (15 * 60 * 1000)
#define DHT_TOKEN_ROTATE_MS (5 * 60 * 1000)
#define DHT_PEER_TTL_MS (30 * 60 * 1000)
#define DHT_ITEM_TTL_MS (2 * 60 * 60 * 1000)
#define DHT_MAX_PACKET 1800          /* largest packet the engine builds */
#define DHT_MAX_LOOKUP_PEERS 256     /* peers collected per get_peers lookup */
#define DHT_MAX_VALUE 1000           /* BEP 44 bencode(v) */
#define DHT_MAX_SALT 64

typedef struct dht dht;

typedef struct dht_config {
  uint8_t seed[32];             /* host randomness: transaction ids, token secrets, refresh targets */
  int allow_private;            /* accept loopback / RFC 1918 / link-local addresses (tests, LANs) */
  int rate_by_port;             /* rate-limit per ip:port instead of per ip (many nodes on one host) */
  uint32_t rate_per_sec;        /* incoming queries per source per second; 0 = no limit */
  uint32_t rate_burst;          /* token bucket depth */
  uint32_t query_timeout_ms;    /* an unanswered query fails after this */
  uint32_t max_hashes;          /* peer store: infohashes */
  uint32_t max_peers_per_hash;  /* peer store: peers per infohash */
  uint32_t max_items;           /* BEP 44 item store */
  uint32_t max_lookups;         /* concurrent lookups */
  int node_events;              /* emit DHT_EV_NODE_ADDED */
  uint8_t version[4];           /* KRPC "v" we send (BEP 20 style); all zero = omit */
} dht_config;

/* Defaults: public addresses only, 20 queries/s with a burst of 40 per IP, 2 s timeout,
 * 4096 infohashes x 64 peers, 2048 items, 64 lookups, version "AP\0\1". seed is zero: the
 * host must fill it. */
void dht_config_default(dht_config *c);

/* Lookup operations. */
typedef enum dht_op {
  DHT_OP_FIND_NODE = 1, DHT_OP_GET_PEERS, DHT_OP_ANNOUNCE, DHT_OP_GET, DHT_OP_PUT
} dht_op;

typedef struct dht_node_rec {
  uint8_t id[DHT_ID_LEN];
  struct sockaddr_storage addr;
} dht_node_rec;

/* A BEP 44 item as found by a get lookup. */
typedef struct dht_item {
  int is_mutable;
  const uint8_t *v;             /* raw bencoded value */
  size_t v_len;
  int64_t seq;                  /* mutable only */
  uint8_t k[32];                /* mutable only */
  uint8_t sig[64];              /* mutable only */
} dht_item;

typedef enum dht_event_type { DHT_EV_DONE = 1, DHT_EV_NODE_ADDED = 2 } dht_event_type;

typedef struct dht_event {
  dht_event_type type;
  uint32_t handle;              /* DONE: the lookup's handle */
  dht_op op;                    /* DONE: what it was */
  int status;                   /* DONE: 0, ERR_NOTFOUND (get found no item / no live node) */
  uint8_t target[DHT_ID_LEN];   /* DONE: lookup target; NODE_ADDED: the node id */
  struct sockaddr_storage node_addr; /* NODE_ADDED: its address */
  /* DONE, get_peers/announce: unique peers found */
  const struct sockaddr_storage *peers;
  size_t n_peers;
  /* DONE, find_node and all lookups: the closest live nodes, nearest first */
  const dht_node_rec *nodes;
  size_t n_nodes;
  /* DONE, get: the item (mutable: highest valid seq). DONE, put: the newest item the
   * search saw already stored (compare its seq with yours after a refused put) */
  int has_item;
  dht_item item;
  /* DONE, announce/put: nodes that acknowledged the store */
  int stored;
  /* DONE, all: figures */
  int hops;                     /* query rounds to reach the closest node */
  int queries;                  /* messages sent by this lookup */
  int responses;
} dht_event;

typedef enum dht_out_kind { DHT_OUT_PACKET = 1, DHT_OUT_EVENT = 2 } dht_out_kind;

typedef struct dht_output {
  dht_out_kind kind;
  const uint8_t *pkt;           /* PACKET: bytes to send (borrowed until the next call) */
  size_t len;
  struct sockaddr_storage to;   /* PACKET: destination */
  socklen_t to_len;
  dht_event ev;                 /* EVENT */
} dht_output;

typedef struct dht_stats {
  uint64_t rx_packets, tx_packets, rx_queries, rx_responses, rx_errors;
  uint64_t drop_malformed;      /* not bencode / not KRPC */
  uint64_t drop_bad_sig;        /* BEP 44 put or get response with a bad signature */
  uint64_t drop_rate_limited;   /* per-source token bucket empty */
  uint64_t drop_bad_addr;       /* source or node address refused (port 0, private, ...) */
  uint64_t drop_unexpected;     /* response with no matching transaction */
  uint64_t drop_bad_token;      /* announce_peer / put with a wrong token */
  uint64_t drop_too_big;        /* packet over KRPC_MAX_PACKET, value over 1000, salt over 64 */
  uint64_t drop_unsupported;    /* IPv6 source */
  uint64_t drop_store_rule;     /* put refused by seq / cas rules */
  uint64_t timeouts;            /* our queries that went unanswered */
  uint64_t errors_sent;         /* KRPC error replies */
  size_t nodes, nodes_good;     /* routing table */
  size_t hashes, peers, items;  /* stores */
  size_t lookups;               /* active */
} dht_stats;

/* Creates an engine with node id id (20 bytes, borrowed). cfg NULL = defaults (seed zero:
 * fine for tests only). Returns 0, ERR_NOMEM or ERR_INVAL. */
int dht_new(const uint8_t id[static DHT_ID_LEN], const dht_config *cfg, dht **out);
void dht_free(dht *d); /* NULL is a no-op */
const uint8_t *dht_id(const dht *d);

/* Feeds one received UDP payload. Borrows pkt and from. Never fails on bad input: drops are
 * counted in dht_stats. Returns 0, or ERR_INVAL for a NULL argument. */
int dht_input(dht *d, const uint8_t *pkt, size_t len, const struct sockaddr *from, uint64_t now_ms);

/* Runs due timers and yields one output. Returns 1 with *out filled, 0 when nothing is
 * pending. Call until 0 after every dht_input / lookup start and at the deadline. */
int dht_poll(dht *d, uint64_t now_ms, dht_output *out);

/* Absolute time (ms) of the next timer; 0 when output is pending (call dht_poll now). */
uint64_t dht_next_deadline(const dht *d);

/* A node to start from (unknown id): queried with find_node(self) when the table is
 * nearly empty. Up to 16 are kept. ERR_INVAL for a bad or refused address. */
int dht_bootstrap_add(dht *d, const struct sockaddr *addr);

/* Lookups. Each returns 0 and a handle (> 0) in *handle_out; the result comes as a
 * DHT_EV_DONE event with that handle. ERR_RANGE when max_lookups are running. */
int dht_find_node(dht *d, const uint8_t target[static DHT_ID_LEN], uint32_t *handle_out);
int dht_get_peers(dht *d, const uint8_t info_hash[static DHT_ID_LEN], uint32_t *handle_out);
/* get_peers then announce_peer to the DHT_K closest nodes that gave a token; port 0 asks
 * them to use our UDP source port (implied_port). */
int dht_announce(dht *d, const uint8_t info_hash[static DHT_ID_LEN], uint16_t port, uint32_t *handle_out);
/* BEP 44 immutable get by target. */
int dht_get_immutable(dht *d, const uint8_t target[static DHT_ID_LEN], uint32_t *handle_out);
/* BEP 44 mutable get (pk, salt borrowed); the DONE event carries the highest-seq item whose
 * signature verifies. */
int dht_get_mutable(dht *d, const uint8_t pk[static 32], const uint8_t *salt, size_t salt_len, uint32_t *handle_out);
/* BEP 44 immutable put; v is raw strict bencoding (copied). target_out may be NULL. */
int dht_put_immutable(dht *d, const uint8_t *v, size_t v_len, uint8_t target_out[DHT_ID_LEN], uint32_t *handle_out);
/* BEP 44 mutable put signed with key (borrowed; only used during the call). cas NULL = no
 * compare-and-swap. Returns ERR_TOOBIG for v over 1000 or salt over 64, ERR_FORMAT when v
 * is not strict bencoding. */
int dht_put_mutable(dht *d, const ident *key, const uint8_t *salt, size_t salt_len, const uint8_t *v, size_t v_len,
                    int64_t seq, const int64_t *cas, uint32_t *handle_out);
/* Same, with a signature made elsewhere (over krpc_sig_input). */
int dht_put_signed(dht *d, const uint8_t pk[static 32], const uint8_t sig[static 64], const uint8_t *salt,
                   size_t salt_len, const uint8_t *v, size_t v_len, int64_t seq, const int64_t *cas, uint32_t *handle_out);
/* Cancels a lookup: no DONE event follows. */
void dht_cancel(dht *d, uint32_t handle);

/* Persistent node cache: exports up to cap table nodes, good ones first; imports records
 * as candidates (pinged before they enter the table). Return counts. */
int dht_nodes_export(const dht *d, dht_node_rec *out, size_t cap);
int dht_nodes_import(dht *d, const dht_node_rec *in, size_t n);

void dht_get_stats(const dht *d, dht_stats *out);

/* Closest nodes to target in the routing table (not bad), nearest first. For tests and
 * diagnostics. */
int dht_table_closest(const dht *d, const uint8_t target[static DHT_ID_LEN], dht_node_rec *out, size_t cap);

#endif
