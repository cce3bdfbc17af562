/* p2p/dht — the DHT engine: transactions, lookups, the server side, timers and the output
 * queue. See dht.h for the model (no I/O: bytes, addresses and time in; packets, events
 * and a deadline out). The routing table is in dht_table.c, the stores in dht_store.c.
 *
 * Transactions: 256 slots; a transaction id is 4 bytes, slot number then 3 random bytes,
 * and a response must come from the address the query went to. Lookups keep up to
 * LK_CANDS candidates sorted by XOR distance to the target; a candidate whose id is not
 * known yet (a bootstrap address) sorts first until it answers. Outputs go to a queue the
 * host drains with dht_poll; finished lookups stay allocated until their event has been
 * handed out and the host calls back in. */
#include "p2p/dht.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "p2p/bencode.h"
#include "p2p/dht_impl.h"
#include "p2p/krpc.h"
#include "p2p/sha1.h"

#define TX_SLOTS 256
#define TID_LEN 4
#define LK_CANDS 32
#define RL_SLOTS 256
#define RL_PROBE 8
#define MAX_BOOT 16
#define MAINT_MS 5000
#define BOOT_RETRY_MS 30000
#define MAX_RESP_PEERS 50
#define SECRET_LEN 16

enum { C_NEW, C_SENT, C_OK, C_FAIL, C_STORE_SENT, C_STORED, C_STORE_FAIL };
enum { PH_SEARCH, PH_STORE, PH_DONE };
enum { TX_PLAIN = 0, TX_PING_CHECK = 1 };

typedef struct tx {
  uint8_t used;
  uint8_t kind;            /* TX_PLAIN or TX_PING_CHECK (table liveness) */
  uint8_t method;          /* krpc_method sent */
  uint8_t has_id;          /* we know whom we asked */
  uint8_t tid[TID_LEN];
  dht__addr to;
  uint8_t id[DHT_ID_LEN];
  uint32_t lookup;         /* handle, 0 = none */
  uint64_t deadline;
} tx;

typedef struct cand {
  uint8_t id[DHT_ID_LEN];  /* == target while !id_known */
  dht__addr addr;
  uint8_t state;           /* C_* */
  uint8_t depth;           /* query generations before we learned of it */
  uint8_t id_known;
  uint8_t token_len;
  uint8_t token[KRPC_MAX_TOKEN];
} cand;

typedef struct lookup {
  struct lookup *next;
  uint32_t handle;
  dht_op op;
  int phase;
  int dirty;
  int internal;            /* bootstrap / refresh: no event */
  uint8_t target[DHT_ID_LEN];
  cand c[LK_CANDS];
  int nc;
  int queries, responses, stored;
  uint16_t port;           /* announce: 0 = implied */
  /* get / put parameters */
  int is_mutable;
  uint8_t k[32], sig[64], salt[DHT_MAX_SALT];
  size_t salt_len;
  int64_t seq;
  int has_cas;
  int64_t cas;
  uint8_t v[DHT_MAX_VALUE];
  size_t v_len;
  /* results */
  dht__addr *peers;        /* DHT_MAX_LOOKUP_PEERS, allocated on first peer */
  size_t n_peers;
  int has_item;
  dht__item best;
  /* event storage */
  dht_node_rec ev_nodes[DHT_K];
  struct sockaddr_storage *ev_peers;
} lookup;

typedef struct qpkt {
  size_t off, len;
  dht__addr to;
} qpkt;

typedef struct rl_slot {
  uint8_t used;
  dht__addr key;
  uint32_t milli;          /* tokens x 1000 */
  uint64_t last;
} rl_slot;

struct dht {
  dht_config cfg;
  uint8_t id[DHT_ID_LEN];
  dht__table table;
  dht__store store;
  tx *tx;                  /* TX_SLOTS */
  int tx_used;
  uint64_t tx_next;        /* earliest deadline, UINT64_MAX when none */
  lookup *lookups;         /* active */
  int n_lookups;
  int any_dirty;
  uint32_t next_handle;
  uint32_t self_lookup;    /* handle of the running bootstrap lookup, 0 = none */
  lookup *zombies;         /* finished, event pending or just handed out */
  buf qbytes;              /* queued packet bytes */
  qpkt *q;
  size_t q_n, q_cap, q_head;
  dht_event *ev;
  size_t ev_n, ev_cap, ev_head;
  uint8_t secret[SECRET_LEN], prev_secret[SECRET_LEN];
  uint64_t secret_at;
  uint8_t pool[64];
  size_t pool_left;
  uint64_t rng_ctr;
  rl_slot *rl;             /* RL_SLOTS, allocated on first use */
  uint32_t rl_salt;
  dht__addr boot[MAX_BOOT];
  int n_boot;
  uint64_t next_maint, last_boot;
  uint64_t refresh_at[DHT__BUCKETS]; /* last refresh lookup per bucket, 0 = never */
  uint64_t now;
  dht_stats st;
  uint8_t pkt[DHT_MAX_PACKET];
};

/* ---- small helpers ---- */

void dht_config_default(dht_config *c) {
  memset(c, 0, sizeof *c);
  c->rate_per_sec = 20;
  c->rate_burst = 40;
  c->query_timeout_ms = 2000;
  c->max_hashes = 4096;
  c->max_peers_per_hash = 64;
  c->max_items = 2048;
  c->max_lookups = 64;
  memcpy(c->version, "AP\0\1", 4);
}

static void rnd(dht *d, void *out, size_t n) {
  uint8_t *o = out;
  while (n) {
    if (!d->pool_left) {
      uint8_t ctr[8];
      for (int i = 0; i < 8; i++) ctr[i] = (uint8_t)(d->rng_ctr >> (8 * i));
      d->rng_ctr++;
      crypto_generichash(d->pool, sizeof d->pool, ctr, sizeof ctr, d->cfg.seed, sizeof d->cfg.seed);
      d->pool_left = sizeof d->pool;
    }
    size_t take = n < d->pool_left ? n : d->pool_left;
    memcpy(o, d->pool + sizeof d->pool - d->pool_left, take);
    d->pool_left -= take;
    o += take;
    n -= take;
  }
}

static int from_sockaddr(const struct sockaddr *sa, dht__addr *out) {
  if (!sa || sa->sa_family != AF_INET) return ERR_UNSUPPORTED;
  const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
  memcpy(out->ip, &in->sin_addr.s_addr, 4);
  out->port = ntohs(in->sin_port);
  return 0;
}

static void to_sockaddr(const dht__addr *a, struct sockaddr_storage *out) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *in = (struct sockaddr_in *)out;
  in->sin_family = AF_INET;
  memcpy(&in->sin_addr.s_addr, a->ip, 4);
  in->sin_port = htons(a->port);
}

static int addr_ok(const dht *d, const dht__addr *a) {
  const uint8_t *ip = a->ip;
  if (a->port == 0) return 0;
  if (ip[0] == 0 || ip[0] >= 224) return 0; /* this-network, multicast, reserved, broadcast */
  int priv = ip[0] == 127 || ip[0] == 10 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
             (ip[0] == 192 && ip[1] == 168) || (ip[0] == 169 && ip[1] == 254) ||
             (ip[0] == 100 && (ip[1] & 0xc0) == 64);
  return !priv || d->cfg.allow_private;
}

static void compact_addr(const dht__addr *a, uint8_t out[6]) {
  memcpy(out, a->ip, 4);
  out[4] = (uint8_t)(a->port >> 8);
  out[5] = (uint8_t)a->port;
}

static void addr_of_compact(const uint8_t in[6], dht__addr *a) {
  memcpy(a->ip, in, 4);
  a->port = (uint16_t)(in[4] << 8 | in[5]);
}

static int addr_eq(const dht__addr *a, const dht__addr *b) { return !memcmp(a->ip, b->ip, 4) && a->port == b->port; }

static void make_token(const uint8_t secret[SECRET_LEN], const dht__addr *a, uint8_t out[SHA1_BYTES]) {
  sha1_ctx c;
  sha1_init(&c);
  sha1_update(&c, secret, SECRET_LEN);
  sha1_update(&c, a->ip, 4);
  sha1_final(&c, out);
}

static int token_ok(const dht *d, const dht__addr *a, const krpc_bytes *t) {
  uint8_t want[SHA1_BYTES];
  if (t->len != SHA1_BYTES) return 0;
  make_token(d->secret, a, want);
  if (!sodium_memcmp(want, t->p, SHA1_BYTES)) return 1;
  make_token(d->prev_secret, a, want);
  return !sodium_memcmp(want, t->p, SHA1_BYTES);
}

/* ---- output queue ---- */

static void begin_call(dht *d) {
  if (d->q_head == d->q_n) {
    d->q_head = d->q_n = 0;
    buf_reset(&d->qbytes);
  }
  if (d->ev_head == d->ev_n) {
    d->ev_head = d->ev_n = 0;
    while (d->zombies) {
      lookup *l = d->zombies;
      d->zombies = l->next;
      free(l->peers);
      free(l->ev_peers);
      free(l);
    }
  }
}

static void send_pkt(dht *d, const uint8_t *p, size_t len, const dht__addr *to) {
  if (d->q_n == d->q_cap) {
    size_t nc = d->q_cap ? d->q_cap * 2 : 16;
    qpkt *nq = realloc(d->q, nc * sizeof *nq);
    if (!nq) return;
    d->q = nq;
    d->q_cap = nc;
  }
  size_t off = d->qbytes.len;
  if (buf_append(&d->qbytes, p, len)) return;
  d->q[d->q_n].off = off;
  d->q[d->q_n].len = len;
  d->q[d->q_n].to = *to;
  d->q_n++;
  d->st.tx_packets++;
}

static dht_event *push_event(dht *d) {
  if (d->ev_n == d->ev_cap) {
    size_t nc = d->ev_cap ? d->ev_cap * 2 : 8;
    dht_event *ne = realloc(d->ev, nc * sizeof *ne);
    if (!ne) return NULL;
    d->ev = ne;
    d->ev_cap = nc;
  }
  dht_event *e = &d->ev[d->ev_n++];
  memset(e, 0, sizeof *e);
  return e;
}

/* ---- messages ---- */

static void msg_init(dht *d, krpc_msg *m, krpc_kind kind, const uint8_t *t, size_t t_len) {
  memset(m, 0, offsetof(krpc_msg, values));
  m->n_values = 0;
  m->values[0].p = NULL;
  memset(&m->k, 0, sizeof *m - offsetof(krpc_msg, k));
  m->kind = kind;
  m->t.p = t;
  m->t.len = t_len;
  m->id = d->id;
  if (d->cfg.version[0] || d->cfg.version[1] || d->cfg.version[2] || d->cfg.version[3]) {
    m->ver.p = d->cfg.version;
    m->ver.len = 4;
  }
}

static void send_msg(dht *d, const krpc_msg *m, const dht__addr *to) {
  int n = krpc_encode(m, d->pkt, sizeof d->pkt);
  if (n > 0) send_pkt(d, d->pkt, (size_t)n, to);
}

static void send_error(dht *d, const krpc_bytes *t, int code, const char *msg, const dht__addr *to) {
  int n = krpc_encode_error(t->p, t->len, code, msg, d->pkt, sizeof d->pkt);
  if (n > 0) {
    send_pkt(d, d->pkt, (size_t)n, to);
    d->st.errors_sent++;
  }
}

/* Compact nodes closest to target; out holds DHT_K * 26 bytes. */
static size_t closest_compact(dht *d, const uint8_t target[20], uint8_t *out) {
  dht__tnode best[DHT_K];
  size_t n = dht__table_closest(&d->table, target, d->now, best, DHT_K);
  for (size_t i = 0; i < n; i++) {
    memcpy(out + i * KRPC_NODE_LEN, best[i].id, 20);
    compact_addr(&best[i].addr, out + i * KRPC_NODE_LEN + 20);
  }
  return n * KRPC_NODE_LEN;
}

/* ---- transactions ---- */

static tx *tx_new(dht *d, const dht__addr *to, const uint8_t *id, uint32_t lookup_handle, krpc_method method) {
  if (d->tx_used >= TX_SLOTS) return NULL;
  uint8_t r[TID_LEN];
  rnd(d, r, sizeof r);
  int start = r[0];
  for (int i = 0; i < TX_SLOTS; i++) {
    int s = (start + i) % TX_SLOTS;
    tx *x = &d->tx[s];
    if (x->used) continue;
    memset(x, 0, sizeof *x);
    x->used = 1;
    x->method = (uint8_t)method;
    x->tid[0] = (uint8_t)s;
    memcpy(x->tid + 1, r + 1, TID_LEN - 1);
    x->to = *to;
    if (id) {
      memcpy(x->id, id, 20);
      x->has_id = 1;
    }
    x->lookup = lookup_handle;
    x->deadline = d->now + d->cfg.query_timeout_ms;
    if (x->deadline < d->tx_next) d->tx_next = x->deadline;
    d->tx_used++;
    return x;
  }
  return NULL;
}

static void tx_free(dht *d, tx *x) {
  x->used = 0;
  d->tx_used--;
}

static void send_ping(dht *d, const dht__addr *to, const uint8_t *id, int kind) {
  tx *x = tx_new(d, to, id, 0, KRPC_PING);
  if (!x) return;
  x->kind = (uint8_t)kind;
  krpc_msg m;
  msg_init(d, &m, KRPC_QUERY, x->tid, TID_LEN);
  m.method = KRPC_PING;
  send_msg(d, &m, to);
}

/* A node sent us something: update the table, ping a questionable node if a bucket is full. */
static void heard(dht *d, const uint8_t id[20], const dht__addr *a, int replied) {
  if (!memcmp(id, d->id, 20)) return;
  dht__tnode *ping = NULL;
  int rc = dht__table_heard(&d->table, id, a, replied, d->now, &ping);
  if (rc == DHT__ADDED && d->cfg.node_events) {
    dht_event *e = push_event(d);
    if (e) {
      e->type = DHT_EV_NODE_ADDED;
      memcpy(e->target, id, 20);
      to_sockaddr(a, &e->node_addr);
    }
  }
  if (ping) {
    ping->pinging = 1;
    send_ping(d, &ping->addr, ping->id, TX_PING_CHECK);
  } else if (rc == DHT__ADDED && !replied) {
    /* A new node that only queried us: check it answers before we hand it out. */
    dht__tnode *n = dht__table_find(&d->table, id);
    if (n) {
      n->pinging = 1;
      send_ping(d, a, id, TX_PING_CHECK);
    }
  }
}

/* ---- lookups ---- */

static lookup *find_lookup(dht *d, uint32_t h) {
  for (lookup *l = d->lookups; l; l = l->next)
    if (l->handle == h) return l;
  return NULL;
}

static void cand_insert(lookup *l, const cand *nc) {
  int pos = 0;
  while (pos < l->nc && dht__cmp_dist(l->target, l->c[pos].id, nc->id) <= 0) pos++;
  if (l->nc == LK_CANDS) {
    if (pos >= LK_CANDS) return;
    int drop = -1;
    for (int i = l->nc - 1; i >= pos; i--)
      if (l->c[i].state != C_SENT && l->c[i].state != C_STORE_SENT) { drop = i; break; }
    if (drop < 0) return;
    memmove(&l->c[drop], &l->c[drop + 1], (size_t)(l->nc - drop - 1) * sizeof *l->c);
    l->nc--;
  }
  memmove(&l->c[pos + 1], &l->c[pos], (size_t)(l->nc - pos) * sizeof *l->c);
  l->c[pos] = *nc;
  l->nc++;
}

static void cand_add(dht *d, lookup *l, const uint8_t *id, const dht__addr *a, int depth) {
  if (id && !memcmp(id, d->id, 20)) return;
  for (int i = 0; i < l->nc; i++) {
    if (addr_eq(&l->c[i].addr, a)) return;
    if (id && l->c[i].id_known && !memcmp(l->c[i].id, id, 20)) return;
  }
  cand c;
  memset(&c, 0, sizeof c);
  memcpy(c.id, id ? id : l->target, 20);
  c.id_known = id != NULL;
  c.addr = *a;
  c.depth = (uint8_t)(depth > 255 ? 255 : depth);
  cand_insert(l, &c);
}

static cand *cand_by_addr(lookup *l, const dht__addr *a) {
  for (int i = 0; i < l->nc; i++)
    if (addr_eq(&l->c[i].addr, a)) return &l->c[i];
  return NULL;
}

static int start_lookup(dht *d, dht_op op, const uint8_t target[20], lookup **out) {
  if (d->n_lookups >= (int)d->cfg.max_lookups) return ERR_RANGE;
  lookup *l = calloc(1, sizeof *l);
  if (!l) return ERR_NOMEM;
  l->handle = ++d->next_handle ? d->next_handle : ++d->next_handle;
  l->op = op;
  memcpy(l->target, target, 20);
  dht__tnode seeds[DHT_K * 2];
  size_t n = dht__table_closest(&d->table, target, d->now, seeds, DHT_K * 2);
  for (size_t i = 0; i < n; i++) cand_add(d, l, seeds[i].id, &seeds[i].addr, 0);
  if (n < DHT_K) /* thin or dead table: the bootstrap nodes too */
    for (int i = 0; i < d->n_boot; i++) cand_add(d, l, NULL, &d->boot[i], 0);
  l->dirty = 1;
  d->any_dirty = 1;
  l->next = d->lookups;
  d->lookups = l;
  d->n_lookups++;
  *out = l;
  return 0;
}

static void send_lookup_query(dht *d, lookup *l, cand *c) {
  krpc_method method = l->op == DHT_OP_FIND_NODE ? KRPC_FIND_NODE
                       : (l->op == DHT_OP_GET_PEERS || l->op == DHT_OP_ANNOUNCE) ? KRPC_GET_PEERS
                                                                               : KRPC_GET;
  tx *x = tx_new(d, &c->addr, c->id_known ? c->id : NULL, l->handle, method);
  if (!x) return;
  krpc_msg m;
  msg_init(d, &m, KRPC_QUERY, x->tid, TID_LEN);
  m.method = method;
  if (method == KRPC_GET_PEERS) m.info_hash = l->target;
  else m.target = l->target;
  send_msg(d, &m, &c->addr);
  c->state = C_SENT;
  l->queries++;
}

static void send_store(dht *d, lookup *l, cand *c) {
  krpc_method method = l->op == DHT_OP_ANNOUNCE ? KRPC_ANNOUNCE_PEER : KRPC_PUT;
  tx *x = tx_new(d, &c->addr, c->id, l->handle, method);
  if (!x) {
    c->state = C_STORE_FAIL;
    return;
  }
  krpc_msg m;
  msg_init(d, &m, KRPC_QUERY, x->tid, TID_LEN);
  m.method = method;
  m.token.p = c->token;
  m.token.len = c->token_len;
  if (method == KRPC_ANNOUNCE_PEER) {
    m.info_hash = l->target;
    m.has_port = 1;
    m.port = l->port ? l->port : 1;
    if (!l->port) {
      m.has_implied_port = 1;
      m.implied_port = 1;
    }
  } else {
    m.v.p = l->v;
    m.v.len = l->v_len;
    if (l->is_mutable) {
      m.k = l->k;
      m.sig = l->sig;
      m.has_seq = 1;
      m.seq = l->seq;
      if (l->salt_len) {
        m.salt.p = l->salt;
        m.salt.len = l->salt_len;
      }
      if (l->has_cas) {
        m.has_cas = 1;
        m.cas = l->cas;
      }
    }
  }
  send_msg(d, &m, &c->addr);
  c->state = C_STORE_SENT;
  l->queries++;
}

static void finish(dht *d, lookup *l) {
  l->phase = PH_DONE;
  lookup **pp = &d->lookups;
  while (*pp && *pp != l) pp = &(*pp)->next;
  if (*pp) *pp = l->next;
  d->n_lookups--;
  if (d->self_lookup == l->handle) d->self_lookup = 0;
  l->next = d->zombies;
  d->zombies = l;
  if (l->internal) return; /* bootstrap and refresh lookups report nothing */
  dht_event *e = push_event(d);
  if (!e) return;
  e->type = DHT_EV_DONE;
  e->handle = l->handle;
  e->op = l->op;
  memcpy(e->target, l->target, 20);
  size_t nn = 0;
  int hops = 0;
  for (int i = 0; i < l->nc && nn < DHT_K; i++) {
    cand *c = &l->c[i];
    if (c->state == C_FAIL || c->state == C_NEW || c->state == C_SENT || !c->id_known) continue;
    if (nn == 0) hops = c->depth + 1;
    memcpy(l->ev_nodes[nn].id, c->id, 20);
    to_sockaddr(&c->addr, &l->ev_nodes[nn].addr);
    nn++;
  }
  e->nodes = l->ev_nodes;
  e->n_nodes = nn;
  if (l->n_peers) {
    l->ev_peers = calloc(l->n_peers, sizeof *l->ev_peers);
    if (l->ev_peers) {
      for (size_t i = 0; i < l->n_peers; i++) to_sockaddr(&l->peers[i], &l->ev_peers[i]);
      e->peers = l->ev_peers;
      e->n_peers = l->n_peers;
    }
  }
  if (l->has_item) {
    e->has_item = 1;
    e->item.is_mutable = l->best.is_mutable;
    e->item.v = l->best.v;
    e->item.v_len = l->best.v_len;
    e->item.seq = l->best.seq;
    memcpy(e->item.k, l->best.k, 32);
    memcpy(e->item.sig, l->best.sig, 64);
  }
  e->stored = l->stored;
  e->hops = hops;
  e->queries = l->queries;
  e->responses = l->responses;
  switch (l->op) {
  case DHT_OP_GET: e->status = l->has_item ? 0 : ERR_NOTFOUND; break;
  case DHT_OP_ANNOUNCE:
  case DHT_OP_PUT: e->status = l->stored ? 0 : ERR_NOTFOUND; break;
  default: e->status = l->responses ? 0 : ERR_NOTFOUND; break;
  }
}

static void step(dht *d, lookup *l) {
  l->dirty = 0;
  if (l->phase == PH_SEARCH) {
    int inflight = 0;
    for (int i = 0; i < l->nc; i++) inflight += l->c[i].state == C_SENT;
    int considered = 0, pending = 0;
    for (int i = 0; i < l->nc && considered < DHT_K; i++) {
      cand *c = &l->c[i];
      if (c->state == C_FAIL) continue;
      considered++;
      if (c->state == C_NEW) {
        pending++;
        if (inflight < DHT_ALPHA) {
          send_lookup_query(d, l, c);
          if (c->state == C_SENT) inflight++;
        }
      } else if (c->state == C_SENT) {
        pending++;
      }
    }
    if (pending) return;
    if (l->op != DHT_OP_ANNOUNCE && l->op != DHT_OP_PUT) {
      finish(d, l);
      return;
    }
    l->phase = PH_STORE;
    int n = 0;
    for (int i = 0; i < l->nc && n < DHT_K; i++) {
      cand *c = &l->c[i];
      if (c->state != C_OK || !c->id_known || !c->token_len) continue;
      send_store(d, l, c);
      n++;
    }
  }
  if (l->phase == PH_STORE) {
    for (int i = 0; i < l->nc; i++)
      if (l->c[i].state == C_STORE_SENT) return;
    finish(d, l);
  }
}

static void add_peer(lookup *l, const dht__addr *a) {
  for (size_t i = 0; i < l->n_peers; i++)
    if (addr_eq(&l->peers[i], a)) return;
  if (l->n_peers >= DHT_MAX_LOOKUP_PEERS) return;
  if (!l->peers) {
    l->peers = calloc(DHT_MAX_LOOKUP_PEERS, sizeof *l->peers);
    if (!l->peers) return;
  }
  l->peers[l->n_peers++] = *a;
}

static int verify_mutable(const uint8_t k[32], const uint8_t sig[64], const uint8_t *salt, size_t salt_len, int64_t seq,
                          const uint8_t *v, size_t v_len) {
  uint8_t in[DHT_MAX_VALUE + DHT_MAX_SALT + 64];
  int n = krpc_sig_input(salt, salt_len, seq, v, v_len, in, sizeof in);
  if (n < 0) return 0;
  return crypto_sign_verify_detached(sig, in, (unsigned long long)n, k) == 0;
}

/* An item in a get response. */
static void lookup_item(dht *d, lookup *l, const krpc_msg *m) {
  if (!m->v.p || m->v.len > DHT_MAX_VALUE) return;
  if (!l->is_mutable) {
    uint8_t t[20];
    krpc_target_immutable(m->v.p, m->v.len, t);
    if (memcmp(t, l->target, 20)) { d->st.drop_bad_sig++; return; }
    if (l->has_item) return;
  } else {
    if (!m->k || !m->sig || !m->has_seq || memcmp(m->k, l->k, 32)) { d->st.drop_bad_sig++; return; }
    if (!verify_mutable(m->k, m->sig, l->salt, l->salt_len, m->seq, m->v.p, m->v.len)) {
      d->st.drop_bad_sig++;
      return;
    }
    if (l->has_item && m->seq <= l->best.seq) return;
    memcpy(l->best.k, m->k, 32);
    memcpy(l->best.sig, m->sig, 64);
    l->best.seq = m->seq;
  }
  l->has_item = 1;
  l->best.is_mutable = (uint8_t)l->is_mutable;
  memcpy(l->best.v, m->v.p, m->v.len);
  l->best.v_len = m->v.len;
}

static void lookup_response(dht *d, lookup *l, const tx *x, const krpc_msg *m, int is_error) {
  cand *c = cand_by_addr(l, &x->to);
  if (!c) return;
  l->dirty = 1;
  d->any_dirty = 1;
  if (c->state == C_STORE_SENT) {
    if (is_error) {
      c->state = C_STORE_FAIL;
    } else {
      c->state = C_STORED;
      l->stored++;
    }
    return;
  }
  if (c->state != C_SENT) return;
  if (is_error) {
    c->state = C_FAIL;
    return;
  }
  l->responses++;
  cand got = *c;
  got.state = C_OK;
  if (m->token.p && m->token.len <= KRPC_MAX_TOKEN) {
    memcpy(got.token, m->token.p, m->token.len);
    got.token_len = (uint8_t)m->token.len;
  }
  if (!got.id_known || memcmp(got.id, m->id, 20)) {
    /* First answer from a bootstrap address (or an id change): re-sort. */
    int idx = (int)(c - l->c);
    memmove(&l->c[idx], &l->c[idx + 1], (size_t)(l->nc - idx - 1) * sizeof *l->c);
    l->nc--;
    memcpy(got.id, m->id, 20);
    got.id_known = 1;
    if (memcmp(got.id, d->id, 20)) cand_insert(l, &got);
  } else {
    *c = got;
  }
  if (m->nodes.p && m->nodes.len % KRPC_NODE_LEN == 0) {
    for (size_t off = 0; off + KRPC_NODE_LEN <= m->nodes.len; off += KRPC_NODE_LEN) {
      dht__addr a;
      addr_of_compact(m->nodes.p + off + 20, &a);
      if (!addr_ok(d, &a)) { d->st.drop_bad_addr++; continue; }
      cand_add(d, l, m->nodes.p + off, &a, got.depth + 1);
    }
  }
  if (l->op == DHT_OP_GET_PEERS || l->op == DHT_OP_ANNOUNCE) {
    for (size_t i = 0; i < m->n_values; i++) {
      if (m->values[i].len != KRPC_PEER_LEN) continue;
      dht__addr a;
      addr_of_compact(m->values[i].p, &a);
      if (addr_ok(d, &a)) add_peer(l, &a);
    }
  }
  /* A put searches with get: it also reports the newest item already out there. */
  if (l->op == DHT_OP_GET || l->op == DHT_OP_PUT) lookup_item(d, l, m);
}

static void lookup_timeout(dht *d, lookup *l, const tx *x) {
  cand *c = cand_by_addr(l, &x->to);
  if (!c) return;
  if (c->state == C_SENT) c->state = C_FAIL;
  else if (c->state == C_STORE_SENT) c->state = C_STORE_FAIL;
  else return;
  l->dirty = 1;
  d->any_dirty = 1;
}

/* ---- server side ---- */

static void serve(dht *d, const krpc_msg *m, const dht__addr *from) {
  krpc_msg r;
  uint8_t nodes[DHT_K * KRPC_NODE_LEN];
  uint8_t tok[SHA1_BYTES];
  msg_init(d, &r, KRPC_RESPONSE, m->t.p, m->t.len);
  switch (m->method) {
  case KRPC_PING:
    break;
  case KRPC_FIND_NODE:
    r.nodes.p = nodes;
    r.nodes.len = closest_compact(d, m->target, nodes);
    break;
  case KRPC_GET_PEERS: {
    dht__addr peers[MAX_RESP_PEERS];
    uint8_t compact[MAX_RESP_PEERS][6];
    size_t n = dht__store_peers(&d->store, m->info_hash, d->now, peers, MAX_RESP_PEERS);
    for (size_t i = 0; i < n; i++) {
      compact_addr(&peers[i], compact[i]);
      r.values[i].p = compact[i];
      r.values[i].len = 6;
    }
    r.n_values = n;
    make_token(d->secret, from, tok);
    r.token.p = tok;
    r.token.len = sizeof tok;
    r.nodes.p = nodes;
    r.nodes.len = closest_compact(d, m->info_hash, nodes);
    send_msg(d, &r, from);
    return;
  }
  case KRPC_ANNOUNCE_PEER: {
    if (!token_ok(d, from, &m->token)) {
      d->st.drop_bad_token++;
      send_error(d, &m->t, KRPC_ERR_PROTOCOL, "bad token", from);
      return;
    }
    dht__addr p = *from;
    if (!(m->has_implied_port && m->implied_port == 1)) {
      if (m->port < 1 || m->port > 65535) {
        send_error(d, &m->t, KRPC_ERR_PROTOCOL, "bad port", from);
        return;
      }
      p.port = (uint16_t)m->port;
    }
    dht__store_peer(&d->store, m->info_hash, &p, d->now);
    break;
  }
  case KRPC_GET: {
    make_token(d->secret, from, tok);
    r.token.p = tok;
    r.token.len = sizeof tok;
    r.nodes.p = nodes;
    r.nodes.len = closest_compact(d, m->target, nodes);
    dht__item *it = dht__store_item(&d->store, m->target, d->now);
    if (it && !(it->is_mutable && m->has_seq && it->seq <= m->seq)) {
      r.v.p = it->v;
      r.v.len = it->v_len;
      if (it->is_mutable) {
        r.k = it->k;
        r.sig = it->sig;
        r.has_seq = 1;
        r.seq = it->seq;
      }
    }
    break;
  }
  case KRPC_PUT: {
    if (!token_ok(d, from, &m->token)) {
      d->st.drop_bad_token++;
      send_error(d, &m->t, KRPC_ERR_PROTOCOL, "bad token", from);
      return;
    }
    if (m->v.len > DHT_MAX_VALUE) {
      d->st.drop_too_big++;
      send_error(d, &m->t, KRPC_ERR_TOO_BIG, "v too big", from);
      return;
    }
    dht__item it;
    memset(&it, 0, offsetof(dht__item, v));
    memcpy(it.v, m->v.p, m->v.len);
    it.v_len = m->v.len;
    it.expires = d->now + DHT_ITEM_TTL_MS;
    if (!m->k) {
      krpc_target_immutable(m->v.p, m->v.len, it.target);
    } else {
      if (m->salt.len > DHT_MAX_SALT) {
        d->st.drop_too_big++;
        send_error(d, &m->t, KRPC_ERR_SALT_TOO_BIG, "salt too big", from);
        return;
      }
      if (m->seq < 0 || !verify_mutable(m->k, m->sig, m->salt.p, m->salt.len, m->seq, m->v.p, m->v.len)) {
        d->st.drop_bad_sig++;
        send_error(d, &m->t, KRPC_ERR_BAD_SIG, "invalid signature", from);
        return;
      }
      krpc_target_mutable(m->k, m->salt.p, m->salt.len, it.target);
      dht__item *old = dht__store_item(&d->store, it.target, d->now);
      if (old) {
        if (m->has_cas && m->cas != old->seq) {
          d->st.drop_store_rule++;
          send_error(d, &m->t, KRPC_ERR_CAS, "cas mismatch", from);
          return;
        }
        if (m->seq < old->seq || (m->seq == old->seq && (old->v_len != m->v.len || memcmp(old->v, m->v.p, m->v.len)))) {
          d->st.drop_store_rule++;
          send_error(d, &m->t, KRPC_ERR_SEQ, "sequence number less than current", from);
          return;
        }
      }
      it.is_mutable = 1;
      memcpy(it.k, m->k, 32);
      memcpy(it.sig, m->sig, 64);
      if (m->salt.len) memcpy(it.salt, m->salt.p, m->salt.len);
      it.salt_len = m->salt.len;
      it.seq = m->seq;
    }
    dht__store_put(&d->store, &it);
    break;
  }
  default:
    send_error(d, &m->t, KRPC_ERR_METHOD, "method unknown", from);
    return;
  }
  send_msg(d, &r, from);
}

static int rate_ok(dht *d, const dht__addr *from) {
  if (!d->cfg.rate_per_sec) return 1;
  if (!d->rl) {
    d->rl = calloc(RL_SLOTS, sizeof *d->rl);
    if (!d->rl) return 1;
  }
  dht__addr key = *from;
  if (!d->cfg.rate_by_port) key.port = 0;
  uint32_t h = d->rl_salt;
  for (int i = 0; i < 4; i++) h = (h ^ key.ip[i]) * 16777619u;
  h = (h ^ (key.port & 0xff)) * 16777619u;
  h = (h ^ (key.port >> 8)) * 16777619u;
  rl_slot *victim = NULL;
  uint32_t cap = d->cfg.rate_burst * 1000u;
  for (int i = 0; i < RL_PROBE; i++) {
    rl_slot *s = &d->rl[(h + (uint32_t)i) % RL_SLOTS];
    if (s->used && addr_eq(&s->key, &key)) {
      uint64_t el = d->now > s->last ? d->now - s->last : 0;
      uint64_t add = el * d->cfg.rate_per_sec; /* ms x per-second = milli-tokens */
      s->milli = (uint32_t)((uint64_t)s->milli + add > cap ? cap : s->milli + add);
      s->last = d->now;
      if (s->milli < 1000) return 0;
      s->milli -= 1000;
      return 1;
    }
    if (!s->used) { if (!victim || victim->used) victim = s; }
    else if (!victim || (victim->used && s->last < victim->last)) victim = s;
  }
  victim->used = 1;
  victim->key = key;
  victim->milli = cap - 1000;
  victim->last = d->now;
  return 1;
}

/* ---- public API ---- */

int dht_new(const uint8_t id[static DHT_ID_LEN], const dht_config *cfg, dht **out) {
  if (!id || !out) return ERR_INVAL;
  if (sodium_init() < 0) return ERR_CRYPTO;
  dht *d = calloc(1, sizeof *d);
  if (!d) return ERR_NOMEM;
  if (cfg) d->cfg = *cfg;
  else dht_config_default(&d->cfg);
  if (!d->cfg.query_timeout_ms) d->cfg.query_timeout_ms = 2000;
  if (!d->cfg.max_lookups) d->cfg.max_lookups = 64;
  if (d->cfg.rate_burst < 1) d->cfg.rate_burst = 1;
  memcpy(d->id, id, 20);
  dht__table_init(&d->table, id);
  dht__store_init(&d->store, d->cfg.max_hashes, d->cfg.max_peers_per_hash, d->cfg.max_items);
  d->tx = calloc(TX_SLOTS, sizeof *d->tx);
  if (!d->tx) {
    free(d);
    return ERR_NOMEM;
  }
  d->tx_next = UINT64_MAX;
  buf_init(&d->qbytes);
  rnd(d, d->secret, SECRET_LEN);
  rnd(d, d->prev_secret, SECRET_LEN);
  rnd(d, &d->rl_salt, sizeof d->rl_salt);
  d->secret_at = UINT64_MAX; /* set at the first maintenance */
  *out = d;
  return 0;
}

void dht_free(dht *d) {
  if (!d) return;
  while (d->lookups) {
    lookup *l = d->lookups;
    d->lookups = l->next;
    free(l->peers);
    free(l->ev_peers);
    free(l);
  }
  d->ev_head = d->ev_n;
  begin_call(d);
  dht__table_deinit(&d->table);
  dht__store_deinit(&d->store);
  buf_deinit(&d->qbytes);
  free(d->q);
  free(d->ev);
  free(d->tx);
  free(d->rl);
  sodium_memzero(d->secret, sizeof d->secret);
  sodium_memzero(d->prev_secret, sizeof d->prev_secret);
  sodium_memzero(d->cfg.seed, sizeof d->cfg.seed);
  sodium_memzero(d->pool, sizeof d->pool);
  free(d);
}

const uint8_t *dht_id(const dht *d) { return d->id; }

int dht_input(dht *d, const uint8_t *pkt, size_t len, const struct sockaddr *from, uint64_t now_ms) {
  if (!d || !pkt || !from) return ERR_INVAL;
  begin_call(d);
  if (now_ms > d->now) d->now = now_ms;
  d->st.rx_packets++;
  dht__addr a;
  if (from_sockaddr(from, &a)) { d->st.drop_unsupported++; return 0; }
  if (!addr_ok(d, &a)) { d->st.drop_bad_addr++; return 0; }
  if (len > KRPC_MAX_PACKET) { d->st.drop_too_big++; return 0; }
  krpc_msg *m = malloc(sizeof *m);
  if (!m) return ERR_NOMEM;
  int rc = krpc_parse(pkt, len, m);
  if (rc) {
    d->st.drop_malformed++;
    if (m->kind == KRPC_QUERY && m->t.p && rate_ok(d, &a))
      send_error(d, &m->t, KRPC_ERR_PROTOCOL, "malformed", &a);
    goto done;
  }
  if (m->kind == KRPC_QUERY) {
    if (!rate_ok(d, &a)) { d->st.drop_rate_limited++; goto done; }
    d->st.rx_queries++;
    if (!m->ro) heard(d, m->id, &a, 0); /* BEP 43: read-only nodes stay out of the table */
    serve(d, m, &a);
    goto done;
  }
  /* A response or an error: it must match one of our transactions. */
  tx *x = NULL;
  if (m->t.len == TID_LEN) {
    tx *c = &d->tx[m->t.p[0]];
    if (c->used && !memcmp(c->tid, m->t.p, TID_LEN) && addr_eq(&c->to, &a)) x = c;
  }
  if (!x) { d->st.drop_unexpected++; goto done; }
  tx t = *x;
  tx_free(d, x);
  int is_error = m->kind == KRPC_ERROR;
  if (is_error) {
    d->st.rx_errors++;
    if (t.has_id) heard(d, t.id, &a, 1); /* it answered: alive */
  } else {
    d->st.rx_responses++;
    heard(d, m->id, &a, 1);
  }
  if (t.lookup) {
    lookup *l = find_lookup(d, t.lookup);
    if (l) lookup_response(d, l, &t, m, is_error);
  }
done:
  free(m);
  return 0;
}

static void maintenance(dht *d) {
  uint64_t now = d->now;
  d->next_maint = now + MAINT_MS;
  if (d->secret_at == UINT64_MAX) d->secret_at = now;
  if (now - d->secret_at >= DHT_TOKEN_ROTATE_MS) {
    memcpy(d->prev_secret, d->secret, SECRET_LEN);
    rnd(d, d->secret, SECRET_LEN);
    d->secret_at = now;
  }
  dht__store_expire(&d->store, now);
  /* Bootstrap: look ourselves up while the table has fewer than K live nodes (also after
   * an outage has made every node bad). */
  dht__tnode live[DHT_K];
  size_t n_live = dht__table_closest(&d->table, d->id, now, live, DHT_K);
  if (n_live < DHT_K && !d->self_lookup && (d->n_boot || n_live) &&
      (!d->last_boot || now - d->last_boot >= BOOT_RETRY_MS)) {
    lookup *l;
    if (!start_lookup(d, DHT_OP_FIND_NODE, d->id, &l)) {
      d->self_lookup = l->handle;
      l->internal = 1;
      d->last_boot = now ? now : 1;
    }
  }
  /* Refresh: once joined (no bootstrap lookup running), look up a random id in every
   * bucket up to one past the deepest that is not full (Kademlia's join step; this is how
   * we learn the far half of the space), and in every bucket quiet for 15 minutes. */
  if (d->self_lookup || !d->table.count) return;
  int deepest = -1;
  for (int i = 0; i < DHT__BUCKETS; i++)
    if (d->table.b[i] && d->table.b[i]->count) deepest = i;
  for (int i = 0; i <= deepest + 1 && i < DHT__BUCKETS; i++) {
    dht__bucket *b = d->table.b[i];
    int full = b && b->count == DHT_K;
    uint64_t last = d->refresh_at[i];
    if (b && b->last_changed > last) last = b->last_changed;
    if (full ? now - last < DHT_REFRESH_MS : (d->refresh_at[i] && now - d->refresh_at[i] < DHT_REFRESH_MS)) continue;
    if (d->n_lookups >= (int)d->cfg.max_lookups / 2) break;
    uint8_t t[20];
    memcpy(t, d->id, 20);
    uint8_t r[20];
    rnd(d, r, 20);
    int byte = i / 8, bit = 7 - i % 8;
    t[byte] ^= (uint8_t)(1 << bit);
    uint8_t keep = (uint8_t)(0xff << bit); /* bits up to and including i */
    t[byte] = (uint8_t)((t[byte] & keep) | (r[byte] & ~keep));
    for (int j = byte + 1; j < 20; j++) t[j] = r[j];
    lookup *l;
    if (!start_lookup(d, DHT_OP_FIND_NODE, t, &l)) l->internal = 1;
    d->refresh_at[i] = now ? now : 1;
  }
}

static void expire_tx(dht *d) {
  uint64_t next = UINT64_MAX;
  for (int i = 0; i < TX_SLOTS; i++) {
    tx *x = &d->tx[i];
    if (!x->used) continue;
    if (x->deadline > d->now) {
      if (x->deadline < next) next = x->deadline;
      continue;
    }
    tx t = *x;
    tx_free(d, x);
    d->st.timeouts++;
    if (t.has_id) dht__table_failed(&d->table, t.id, d->now);
    if (t.lookup) {
      lookup *l = find_lookup(d, t.lookup);
      if (l) lookup_timeout(d, l, &t);
    }
  }
  d->tx_next = next;
}

int dht_poll(dht *d, uint64_t now_ms, dht_output *out) {
  if (!d || !out) return ERR_INVAL;
  begin_call(d);
  if (now_ms > d->now) d->now = now_ms;
  if (d->now >= d->next_maint) maintenance(d);
  if (d->now >= d->tx_next) expire_tx(d);
  while (d->any_dirty) {
    d->any_dirty = 0;
    lookup *next;
    for (lookup *l = d->lookups; l; l = next) {
      next = l->next;
      if (l->dirty) step(d, l);
    }
  }
  memset(out, 0, sizeof *out);
  if (d->q_head < d->q_n) {
    qpkt *p = &d->q[d->q_head++];
    out->kind = DHT_OUT_PACKET;
    out->pkt = d->qbytes.ptr + p->off;
    out->len = p->len;
    to_sockaddr(&p->to, &out->to);
    out->to_len = sizeof(struct sockaddr_in);
    return 1;
  }
  if (d->ev_head < d->ev_n) {
    out->kind = DHT_OUT_EVENT;
    out->ev = d->ev[d->ev_head++];
    return 1;
  }
  return 0;
}

uint64_t dht_next_deadline(const dht *d) {
  if (d->q_head < d->q_n || d->ev_head < d->ev_n || d->any_dirty) return 0;
  return d->next_maint < d->tx_next ? d->next_maint : d->tx_next;
}

int dht_bootstrap_add(dht *d, const struct sockaddr *addr) {
  dht__addr a;
  if (!d || from_sockaddr(addr, &a) || !addr_ok(d, &a)) return ERR_INVAL;
  for (int i = 0; i < d->n_boot; i++)
    if (addr_eq(&d->boot[i], &a)) return 0;
  if (d->n_boot == MAX_BOOT) return ERR_RANGE;
  d->boot[d->n_boot++] = a;
  d->last_boot = 0;
  d->next_maint = 0;
  return 0;
}

static int user_lookup(dht *d, dht_op op, const uint8_t target[20], lookup **l, uint32_t *handle_out) {
  if (!d || !target) return ERR_INVAL;
  int rc = start_lookup(d, op, target, l);
  if (rc) return rc;
  if (handle_out) *handle_out = (*l)->handle;
  return 0;
}

/* We may be one of the nodes that store what we look for: start from our own copy. */
static void local_item(dht *d, lookup *l) {
  const dht__item *it = dht__store_item(&d->store, l->target, d->now);
  if (!it || it->is_mutable != l->is_mutable) return;
  if (it->is_mutable && memcmp(it->k, l->k, 32)) return;
  l->best = *it;
  l->has_item = 1;
}

static void local_peers(dht *d, lookup *l) {
  dht__addr p[MAX_RESP_PEERS];
  size_t n = dht__store_peers(&d->store, l->target, d->now, p, MAX_RESP_PEERS);
  for (size_t i = 0; i < n; i++) add_peer(l, &p[i]);
}

int dht_find_node(dht *d, const uint8_t target[static DHT_ID_LEN], uint32_t *handle_out) {
  lookup *l;
  return user_lookup(d, DHT_OP_FIND_NODE, target, &l, handle_out);
}

int dht_get_peers(dht *d, const uint8_t info_hash[static DHT_ID_LEN], uint32_t *handle_out) {
  lookup *l;
  int rc = user_lookup(d, DHT_OP_GET_PEERS, info_hash, &l, handle_out);
  if (!rc) local_peers(d, l);
  return rc;
}

int dht_announce(dht *d, const uint8_t info_hash[static DHT_ID_LEN], uint16_t port, uint32_t *handle_out) {
  lookup *l;
  int rc = user_lookup(d, DHT_OP_ANNOUNCE, info_hash, &l, handle_out);
  if (!rc) l->port = port;
  return rc;
}

int dht_get_immutable(dht *d, const uint8_t target[static DHT_ID_LEN], uint32_t *handle_out) {
  lookup *l;
  int rc = user_lookup(d, DHT_OP_GET, target, &l, handle_out);
  if (!rc) local_item(d, l);
  return rc;
}

int dht_get_mutable(dht *d, const uint8_t pk[static 32], const uint8_t *salt, size_t salt_len, uint32_t *handle_out) {
  if (!d || !pk || salt_len > DHT_MAX_SALT || (salt_len && !salt)) return salt_len > DHT_MAX_SALT ? ERR_TOOBIG : ERR_INVAL;
  uint8_t t[20];
  krpc_target_mutable(pk, salt, salt_len, t);
  lookup *l;
  int rc = user_lookup(d, DHT_OP_GET, t, &l, handle_out);
  if (rc) return rc;
  l->is_mutable = 1;
  memcpy(l->k, pk, 32);
  if (salt_len) memcpy(l->salt, salt, salt_len);
  l->salt_len = salt_len;
  local_item(d, l);
  return 0;
}

static int value_ok(const uint8_t *v, size_t v_len) {
  if (!v || !v_len) return ERR_INVAL;
  if (v_len > DHT_MAX_VALUE) return ERR_TOOBIG;
  ben_node *nodes = malloc(DHT_MAX_VALUE * sizeof *nodes);
  if (!nodes) return ERR_NOMEM;
  int rc = ben_decode(v, v_len, nodes, DHT_MAX_VALUE, 0);
  free(nodes);
  return rc < 0 ? ERR_FORMAT : 0;
}

int dht_put_immutable(dht *d, const uint8_t *v, size_t v_len, uint8_t target_out[DHT_ID_LEN], uint32_t *handle_out) {
  if (!d) return ERR_INVAL;
  int rc = value_ok(v, v_len);
  if (rc) return rc;
  uint8_t t[20];
  krpc_target_immutable(v, v_len, t);
  if (target_out) memcpy(target_out, t, 20);
  lookup *l;
  if ((rc = user_lookup(d, DHT_OP_PUT, t, &l, handle_out))) return rc;
  memcpy(l->v, v, v_len);
  l->v_len = v_len;
  /* Keep a copy ourselves too: we answer gets for what we published. */
  dht__item it;
  memset(&it, 0, offsetof(dht__item, v));
  memcpy(it.target, t, 20);
  memcpy(it.v, v, v_len);
  it.v_len = v_len;
  it.expires = d->now + DHT_ITEM_TTL_MS;
  dht__store_put(&d->store, &it);
  return 0;
}

int dht_put_signed(dht *d, const uint8_t pk[static 32], const uint8_t sig[static 64], const uint8_t *salt,
                   size_t salt_len, const uint8_t *v, size_t v_len, int64_t seq, const int64_t *cas, uint32_t *handle_out) {
  if (!d || !pk || !sig || seq < 0 || (salt_len && !salt)) return ERR_INVAL;
  if (salt_len > DHT_MAX_SALT) return ERR_TOOBIG;
  int rc = value_ok(v, v_len);
  if (rc) return rc;
  uint8_t t[20];
  krpc_target_mutable(pk, salt, salt_len, t);
  lookup *l;
  if ((rc = user_lookup(d, DHT_OP_PUT, t, &l, handle_out))) return rc;
  l->is_mutable = 1;
  memcpy(l->k, pk, 32);
  memcpy(l->sig, sig, 64);
  if (salt_len) memcpy(l->salt, salt, salt_len);
  l->salt_len = salt_len;
  memcpy(l->v, v, v_len);
  l->v_len = v_len;
  l->seq = seq;
  if (cas) {
    l->has_cas = 1;
    l->cas = *cas;
  }
  /* Keep a copy ourselves when it is valid and newer than what we hold. */
  dht__item *old = dht__store_item(&d->store, t, d->now);
  if ((!old || old->seq < seq) && verify_mutable(pk, sig, salt, salt_len, seq, v, v_len)) {
    dht__item it;
    memset(&it, 0, offsetof(dht__item, v));
    memcpy(it.target, t, 20);
    it.is_mutable = 1;
    memcpy(it.k, pk, 32);
    memcpy(it.sig, sig, 64);
    if (salt_len) memcpy(it.salt, salt, salt_len);
    it.salt_len = salt_len;
    it.seq = seq;
    memcpy(it.v, v, v_len);
    it.v_len = v_len;
    it.expires = d->now + DHT_ITEM_TTL_MS;
    dht__store_put(&d->store, &it);
  }
  return 0;
}

int dht_put_mutable(dht *d, const ident *key, const uint8_t *salt, size_t salt_len, const uint8_t *v, size_t v_len,
                    int64_t seq, const int64_t *cas, uint32_t *handle_out) {
  if (!d || !key) return ERR_INVAL;
  if (salt_len > DHT_MAX_SALT) return ERR_TOOBIG;
  int rc = value_ok(v, v_len);
  if (rc) return rc;
  uint8_t in[DHT_MAX_VALUE + DHT_MAX_SALT + 64];
  int n = krpc_sig_input(salt, salt_len, seq, v, v_len, in, sizeof in);
  if (n < 0) return n;
  uint8_t sig[64];
  crypto_sign_detached(sig, NULL, in, (unsigned long long)n, key->sk);
  return dht_put_signed(d, key->pk, sig, salt, salt_len, v, v_len, seq, cas, handle_out);
}

void dht_cancel(dht *d, uint32_t handle) {
  if (!d || !handle) return;
  lookup **pp = &d->lookups;
  while (*pp && (*pp)->handle != handle) pp = &(*pp)->next;
  lookup *l = *pp;
  if (!l) return;
  *pp = l->next;
  d->n_lookups--;
  if (d->self_lookup == handle) d->self_lookup = 0;
  free(l->peers);
  free(l);
}

int dht_nodes_export(const dht *d, dht_node_rec *out, size_t cap) {
  if (!d || (!out && cap)) return ERR_INVAL;
  size_t n = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < DHT__BUCKETS && n < cap; i++) {
      const dht__bucket *b = d->table.b[i];
      if (!b) continue;
      for (int j = 0; j < b->count && n < cap; j++) {
        int st = dht__node_state(&b->n[j], d->now);
        if ((pass == 0) != (st == DHT__GOOD) || st == DHT__BAD) continue;
        memcpy(out[n].id, b->n[j].id, 20);
        to_sockaddr(&b->n[j].addr, &out[n].addr);
        n++;
      }
    }
  }
  return (int)n;
}

int dht_nodes_import(dht *d, const dht_node_rec *in, size_t n) {
  if (!d || (!in && n)) return ERR_INVAL;
  int ok = 0;
  for (size_t i = 0; i < n; i++) {
    dht__addr a;
    if (from_sockaddr((const struct sockaddr *)&in[i].addr, &a) || !addr_ok(d, &a)) continue;
    if (!memcmp(in[i].id, d->id, 20)) continue;
    send_ping(d, &a, in[i].id, TX_PLAIN);
    ok++;
  }
  if (ok) d->last_boot = 0;
  return ok;
}

void dht_get_stats(const dht *d, dht_stats *out) {
  *out = d->st;
  out->nodes = d->table.count;
  out->nodes_good = 0;
  for (int i = 0; i < DHT__BUCKETS; i++) {
    const dht__bucket *b = d->table.b[i];
    if (!b) continue;
    for (int j = 0; j < b->count; j++) out->nodes_good += dht__node_state(&b->n[j], d->now) == DHT__GOOD;
  }
  out->hashes = d->store.n_hashes;
  out->peers = d->store.n_peers;
  out->items = d->store.n_items;
  out->lookups = (size_t)d->n_lookups;
}

int dht_table_closest(const dht *d, const uint8_t target[static DHT_ID_LEN], dht_node_rec *out, size_t cap) {
  if (!d || !target || (!out && cap)) return ERR_INVAL;
  dht__tnode tmp[64];
  if (cap > 64) cap = 64;
  size_t n = dht__table_closest(&d->table, target, d->now, tmp, cap);
  for (size_t i = 0; i < n; i++) {
    memcpy(out[i].id, tmp[i].id, 20);
    to_sockaddr(&tmp[i].addr, &out[i].addr);
  }
  return (int)n;
}
