/* DHT engine: the routing table against a brute-force reference, bucket replacement, the
 * stores, and an in-memory network of 200 engines on a simulated transport (virtual clock,
 * 10-30 ms latency): bootstrap from one node, find_node convergence to the true closest
 * node from every node, announce + get_peers, BEP 44 immutable and mutable put/get with
 * the seq and cas rules, a forged signature dropped and counted, hostile packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "crypto/ident.h"
#include "p2p/dht.h"
#include "p2p/dht_impl.h"
#include "p2p/krpc.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd64(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static void rnd_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rnd64() >> 24);
}

/* ---- routing table ---- */

static const uint8_t *ref_target;
static int by_dist(const void *a, const void *b) { return dht__cmp_dist(ref_target, a, b); }

static void test_table_reference(void **state) {
  (void)state;
  uint8_t self[20];
  rnd_bytes(self, 20);
  dht__table t;
  dht__table_init(&t, self);
  enum { N = 3000 };
  static uint8_t ids[N][20];
  dht__addr a = {{1, 2, 3, 4}, 0};
  for (int i = 0; i < N; i++) {
    rnd_bytes(ids[i], 20);
    if (i % 3 == 0) { /* a third share a long prefix with us: exercises deep buckets */
      int keep = 1 + (int)(rnd64() % 18);
      memcpy(ids[i], self, (size_t)keep);
    }
    a.port = (uint16_t)(1000 + i);
    int rc = dht__table_heard(&t, ids[i], &a, 1, 1000, NULL);
    assert_true(rc >= 0);
  }
  /* Invariants: every node sits in the bucket of its prefix length, buckets hold <= K. */
  size_t total = 0;
  static uint8_t in_table[N][20];
  for (int b = 0; b < DHT__BUCKETS; b++) {
    if (!t.b[b]) continue;
    assert_true(t.b[b]->count <= DHT_K);
    for (int j = 0; j < t.b[b]->count; j++) {
      assert_int_equal(dht__cpl(self, t.b[b]->n[j].id), b);
      memcpy(in_table[total++], t.b[b]->n[j].id, 20);
    }
  }
  assert_int_equal(total, t.count);
  assert_true(total > 100);
  /* closest() equals a brute-force sort of the table's contents, for many targets. */
  for (int r = 0; r < 200; r++) {
    uint8_t target[20];
    rnd_bytes(target, 20);
    if (r % 2) memcpy(target, self, 1 + (size_t)(rnd64() % 19));
    dht__tnode got[DHT_K];
    size_t n = dht__table_closest(&t, target, 2000, got, DHT_K);
    assert_int_equal(n, DHT_K);
    static uint8_t sorted[N][20];
    memcpy(sorted, in_table, total * 20);
    ref_target = target;
    qsort(sorted, total, 20, by_dist);
    for (size_t i = 0; i < n; i++) assert_memory_equal(got[i].id, sorted[i], 20);
  }
  /* Near ourselves the table is complete: with uniform ids, the buckets that hold our 8
   * closest never overflowed, so those 8 are the 8 closest of everything inserted. */
  dht__table u;
  dht__table_init(&u, self);
  static uint8_t uni[300][20];
  int received[DHT__BUCKETS + 1] = {0};
  for (int i = 0; i < 300; i++) {
    rnd_bytes(uni[i], 20);
    received[dht__cpl(self, uni[i])]++;
    a.port = (uint16_t)(i + 1);
    dht__table_heard(&u, uni[i], &a, 1, 1000, NULL);
  }
  ref_target = self;
  qsort(uni, 300, 20, by_dist);
  for (int i = 0; i < DHT_K; i++) assert_true(received[dht__cpl(self, uni[i])] <= DHT_K);
  dht__tnode got[DHT_K];
  assert_int_equal(dht__table_closest(&u, self, 2000, got, DHT_K), DHT_K);
  for (int i = 0; i < DHT_K; i++) assert_memory_equal(got[i].id, uni[i], 20);
  dht__table_deinit(&u);
  /* Own id is refused. */
  assert_int_equal(dht__table_heard(&t, self, &a, 1, 1000, NULL), ERR_INVAL);
  dht__table_deinit(&t);
}

static void test_table_replace(void **state) {
  (void)state;
  uint8_t self[20] = {0};
  dht__table t;
  dht__table_init(&t, self);
  dht__addr a = {{1, 2, 3, 4}, 1};
  uint8_t id[12][20];
  for (int i = 0; i < 12; i++) {
    memset(id[i], 0, 20);
    id[i][0] = 0x80; /* bucket 0 */
    id[i][19] = (uint8_t)i;
  }
  for (int i = 0; i < DHT_K; i++) {
    a.port = (uint16_t)(i + 1);
    assert_int_equal(dht__table_heard(&t, id[i], &a, 1, 1000, NULL), DHT__ADDED);
  }
  /* Full of good nodes: the newcomer waits in the cache, nothing to ping. */
  dht__tnode *ping = NULL;
  a.port = 100;
  assert_int_equal(dht__table_heard(&t, id[8], &a, 1, 1000, &ping), DHT__FULL);
  assert_null(ping);
  assert_null(dht__table_find(&t, id[8]));
  /* 15 minutes later they are questionable: the least recently seen is named for a ping. */
  a.port = 5;
  dht__table_heard(&t, id[4], &a, 1, 1000 + DHT_GOOD_MS + 10, NULL); /* id 4 answers again */
  a.port = 101;
  assert_int_equal(dht__table_heard(&t, id[9], &a, 1, 1000 + DHT_GOOD_MS + 20, &ping), DHT__FULL);
  assert_non_null(ping);
  assert_memory_equal(ping->id, id[0], 20);
  /* id[2] fails three times: bad, replaced by the newest cached node (id 9). */
  for (int i = 0; i < DHT_BAD_FAILS; i++) dht__table_failed(&t, id[2], 5000);
  assert_null(dht__table_find(&t, id[2]));
  assert_non_null(dht__table_find(&t, id[9]));
  /* id[3] fails: replaced by id 8. Then one more fails with an empty cache: it stays, bad. */
  for (int i = 0; i < DHT_BAD_FAILS; i++) dht__table_failed(&t, id[3], 5000);
  assert_non_null(dht__table_find(&t, id[8]));
  for (int i = 0; i < DHT_BAD_FAILS; i++) dht__table_failed(&t, id[5], 5000);
  dht__tnode *bad = dht__table_find(&t, id[5]);
  assert_non_null(bad);
  assert_int_equal(dht__node_state(bad, 6000), DHT__BAD);
  /* A bad node is replaced outright by a new one, and closest() skips bad nodes. */
  dht__tnode out[16];
  size_t n = dht__table_closest(&t, id[5], 6000, out, 16);
  for (size_t i = 0; i < n; i++) assert_memory_not_equal(out[i].id, id[5], 20);
  a.port = 200;
  assert_int_equal(dht__table_heard(&t, id[10], &a, 1, 6000, NULL), DHT__ADDED);
  assert_null(dht__table_find(&t, id[5]));
  /* An id seen at a new address does not move while the old one answers. */
  dht__tnode *n10 = dht__table_find(&t, id[10]);
  a.port = 201;
  dht__table_heard(&t, id[10], &a, 0, 6001, NULL);
  assert_int_equal(n10->addr.port, 200);
  dht__table_deinit(&t);
}

static void test_store(void **state) {
  (void)state;
  dht__store s;
  dht__store_init(&s, 2, 3, 2);
  uint8_t ih[3][20];
  for (int i = 0; i < 3; i++) memset(ih[i], i + 1, 20);
  dht__addr a = {{8, 8, 8, 8}, 1};
  for (int i = 0; i < 5; i++) {
    a.port = (uint16_t)(i + 1);
    assert_int_equal(dht__store_peer(&s, ih[0], &a, 1000 + (uint64_t)i), 0);
  }
  dht__addr out[8];
  assert_int_equal(dht__store_peers(&s, ih[0], 2000, out, 8), 3); /* capped */
  dht__store_peer(&s, ih[1], &a, 3000);
  dht__store_peer(&s, ih[2], &a, 4000); /* evicts ih[0], the one expiring first */
  assert_int_equal(dht__store_peers(&s, ih[0], 5000, out, 8), 0);
  assert_int_equal(dht__store_peers(&s, ih[2], 5000, out, 8), 1);
  assert_int_equal(dht__store_peers(&s, ih[2], 4000 + DHT_PEER_TTL_MS, out, 8), 0); /* expired */
  dht__store_expire(&s, 4000 + DHT_PEER_TTL_MS);
  assert_int_equal(s.n_hashes, 0);
  assert_int_equal(s.n_peers, 0);
  static dht__item it;
  memset(&it, 0, sizeof it);
  for (int i = 0; i < 3; i++) {
    memset(it.target, i + 1, 20);
    it.expires = 10000 + (uint64_t)i;
    assert_int_equal(dht__store_put(&s, &it), 0);
  }
  assert_int_equal(s.n_items, 2);
  assert_null(dht__store_item(&s, ih[0], 0));
  assert_non_null(dht__store_item(&s, ih[2], 0));
  dht__store_expire(&s, 20000);
  assert_int_equal(s.n_items, 0);
  dht__store_deinit(&s);
}

/* ---- the simulated network ---- */

#define BASE_PORT 20000
#define TICK_MS 10
#define WHEEL 8

typedef struct smsg {
  int from, to;
  size_t len;
  uint8_t *data;
} smsg;

typedef struct sres {
  int done;
  dht_event ev;               /* copied; pointers cleared */
  uint8_t first_node[20];
  size_t n_peers;
  uint16_t peer_port;
  uint8_t v[1000];
  size_t v_len;
} sres;

typedef struct sim {
  int n;
  dht **d;
  uint8_t (*ids)[20];
  int *alive;
  sres *res;                  /* last DONE per node */
  uint64_t now;
  smsg *wheel[WHEEL];
  size_t wn[WHEEL], wcap[WHEEL];
  uint64_t delivered;
} sim;

static struct sockaddr_in addr_of(int i) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  a.sin_port = htons((uint16_t)(BASE_PORT + i));
  return a;
}

static void enqueue(sim *s, int from, int to, const uint8_t *p, size_t len) {
  int slot = (int)((s->now / TICK_MS + 1 + rnd64() % 2) % WHEEL);
  if (s->wn[slot] == s->wcap[slot]) {
    s->wcap[slot] = s->wcap[slot] ? s->wcap[slot] * 2 : 64;
    s->wheel[slot] = realloc(s->wheel[slot], s->wcap[slot] * sizeof(smsg));
  }
  smsg *m = &s->wheel[slot][s->wn[slot]++];
  m->from = from;
  m->to = to;
  m->len = len;
  m->data = malloc(len);
  memcpy(m->data, p, len);
}

static void drain(sim *s, int i) {
  dht_output o;
  while (dht_poll(s->d[i], s->now, &o) > 0) {
    if (o.kind == DHT_OUT_PACKET) {
      const struct sockaddr_in *to = (const struct sockaddr_in *)&o.to;
      int j = ntohs(to->sin_port) - BASE_PORT;
      assert_int_equal(to->sin_family, AF_INET);
      if (j >= 0 && j < s->n) enqueue(s, i, j, o.pkt, o.len);
    } else if (o.ev.type == DHT_EV_DONE) {
      sres *r = &s->res[i];
      r->done = 1;
      r->ev = o.ev;
      r->n_peers = o.ev.n_peers;
      if (o.ev.n_nodes) memcpy(r->first_node, o.ev.nodes[0].id, 20);
      if (o.ev.n_peers) r->peer_port = ntohs(((const struct sockaddr_in *)&o.ev.peers[0])->sin_port);
      if (o.ev.has_item) {
        memcpy(r->v, o.ev.item.v, o.ev.item.v_len);
        r->v_len = o.ev.item.v_len;
      }
      r->ev.peers = NULL;
      r->ev.nodes = NULL;
      r->ev.item.v = NULL;
    }
  }
}

static void tick(sim *s) {
  s->now += TICK_MS;
  int slot = (int)((s->now / TICK_MS) % WHEEL);
  /* Deliver this slot; new sends land in later slots. */
  size_t n = s->wn[slot];
  smsg *batch = s->wheel[slot];
  s->wheel[slot] = NULL;
  s->wn[slot] = s->wcap[slot] = 0;
  for (size_t k = 0; k < n; k++) {
    smsg *m = &batch[k];
    if (s->alive[m->to]) {
      struct sockaddr_in from = addr_of(m->from);
      dht_input(s->d[m->to], m->data, m->len, (const struct sockaddr *)&from, s->now);
      drain(s, m->to);
      s->delivered++;
    }
    free(m->data);
  }
  free(batch);
  for (int i = 0; i < s->n; i++)
    if (s->alive[i] && dht_next_deadline(s->d[i]) <= s->now) drain(s, i);
}

static void sim_init(sim *s, int n) {
  memset(s, 0, sizeof *s);
  s->n = n;
  s->d = calloc((size_t)n, sizeof *s->d);
  s->ids = calloc((size_t)n, 20);
  s->alive = calloc((size_t)n, sizeof *s->alive);
  s->res = calloc((size_t)n, sizeof *s->res);
  s->now = 1000000;
  for (int i = 0; i < n; i++) {
    dht_config c;
    dht_config_default(&c);
    rnd_bytes(c.seed, 32);
    c.allow_private = 1;
    c.rate_by_port = 1;
    c.query_timeout_ms = 1000;
    rnd_bytes(s->ids[i], 20);
    assert_int_equal(dht_new(s->ids[i], &c, &s->d[i]), 0);
    s->alive[i] = 1;
  }
  /* Everyone bootstraps from node 0, joining a few at a time. */
  struct sockaddr_in a0 = addr_of(0);
  for (int i = 1; i < n; i++) {
    assert_int_equal(dht_bootstrap_add(s->d[i], (const struct sockaddr *)&a0), 0);
    drain(s, i);
    if (i % 10 == 0) for (int k = 0; k < 20; k++) tick(s);
  }
  for (int k = 0; k < 1000; k++) tick(s); /* 10 s */
}

static void sim_free(sim *s) {
  for (int i = 0; i < s->n; i++) dht_free(s->d[i]);
  for (int w = 0; w < WHEEL; w++) {
    for (size_t k = 0; k < s->wn[w]; k++) free(s->wheel[w][k].data);
    free(s->wheel[w]);
  }
  free(s->d);
  free(s->ids);
  free(s->alive);
  free(s->res);
}

static void run_until_done(sim *s, const int *who, int n_who, int max_ticks) {
  for (int t = 0; t < max_ticks; t++) {
    int all = 1;
    for (int k = 0; k < n_who; k++) all &= s->res[who[k]].done;
    if (all) return;
    tick(s);
  }
  fail_msg("lookups did not finish in %d ticks", max_ticks);
}

static int closest_alive(const sim *s, const uint8_t target[20]) {
  int best = -1;
  for (int i = 0; i < s->n; i++)
    if (s->alive[i] && (best < 0 || dht__cmp_dist(target, s->ids[i], s->ids[best]) < 0)) best = i;
  return best;
}

static sim net; /* built once, shared by the network tests in order */

static int net_setup(void **state) {
  (void)state;
  sim_init(&net, 200);
  return 0;
}

static int net_teardown(void **state) {
  (void)state;
  sim_free(&net);
  return 0;
}

static void test_net_bootstrap(void **state) {
  (void)state;
  size_t min_nodes = SIZE_MAX, total = 0;
  for (int i = 0; i < net.n; i++) {
    dht_stats st;
    dht_get_stats(net.d[i], &st);
    if (st.nodes < min_nodes) min_nodes = st.nodes;
    total += st.nodes;
  }
  print_message("bootstrap: mean table %zu nodes, min %zu\n", total / (size_t)net.n, min_nodes);
  assert_true(min_nodes >= DHT_K);
}

static void test_net_find_node(void **state) {
  (void)state;
  uint8_t target[20];
  rnd_bytes(target, 20);
  int want = closest_alive(&net, target);
  int who[200];
  for (int i = 0; i < net.n; i++) {
    net.res[i].done = 0;
    assert_int_equal(dht_find_node(net.d[i], target, NULL), 0);
    drain(&net, i);
    who[i] = i;
  }
  run_until_done(&net, who, net.n, 3000);
  int ok = 0, hops = 0, queries = 0;
  for (int i = 0; i < net.n; i++) {
    if (i == want) { ok++; continue; } /* a node never lists itself */
    ok += !memcmp(net.res[i].first_node, net.ids[want], 20);
    hops += net.res[i].ev.hops;
    queries += net.res[i].ev.queries;
  }
  print_message("find_node: %d/%d found the closest node; mean %.1f hops, %.1f queries\n", ok, net.n,
                (double)hops / net.n, (double)queries / net.n);
  assert_int_equal(ok, net.n);
}

static void test_net_announce(void **state) {
  (void)state;
  uint8_t ih[20];
  rnd_bytes(ih, 20);
  net.res[5].done = 0;
  assert_int_equal(dht_announce(net.d[5], ih, 7777, NULL), 0);
  drain(&net, 5);
  int who[2] = {5, 17};
  run_until_done(&net, who, 1, 2000);
  assert_int_equal(net.res[5].ev.status, 0);
  assert_true(net.res[5].ev.stored >= DHT_K / 2);
  net.res[17].done = 0;
  assert_int_equal(dht_get_peers(net.d[17], ih, NULL), 0);
  drain(&net, 17);
  run_until_done(&net, who + 1, 1, 2000);
  assert_int_equal(net.res[17].n_peers, 1);
  assert_int_equal(net.res[17].peer_port, 7777);
  /* Implied port: the peer is the announcer's UDP port. */
  net.res[6].done = 0;
  assert_int_equal(dht_announce(net.d[6], ih, 0, NULL), 0);
  drain(&net, 6);
  who[0] = 6;
  run_until_done(&net, who, 1, 2000);
  net.res[17].done = 0;
  assert_int_equal(dht_get_peers(net.d[17], ih, NULL), 0);
  drain(&net, 17);
  run_until_done(&net, who + 1, 1, 2000);
  assert_int_equal(net.res[17].n_peers, 2);
}

static void do_and_wait(int node) {
  drain(&net, node);
  int who[1] = {node};
  run_until_done(&net, who, 1, 2000);
}

static void test_net_immutable(void **state) {
  (void)state;
  const char *v = "d4:name6:apiarye";
  uint8_t target[20];
  net.res[30].done = 0;
  assert_int_equal(dht_put_immutable(net.d[30], (const uint8_t *)v, strlen(v), target, NULL), 0);
  do_and_wait(30);
  assert_true(net.res[30].ev.stored >= DHT_K / 2);
  net.res[90].done = 0;
  assert_int_equal(dht_get_immutable(net.d[90], target, NULL), 0);
  do_and_wait(90);
  assert_int_equal(net.res[90].ev.status, 0);
  assert_int_equal(net.res[90].v_len, strlen(v));
  assert_memory_equal(net.res[90].v, v, strlen(v));
  /* Unsorted keys are refused before anything is sent. */
  assert_int_equal(dht_put_immutable(net.d[30], (const uint8_t *)"d1:bi1e1:ai1ee", 14, NULL, NULL), ERR_FORMAT);
}

static void test_net_mutable(void **state) {
  (void)state;
  uint8_t seed[32];
  memset(seed, 7, 32);
  ident key;
  assert_int_equal(ident_from_seed(seed, &key), 0);
  const uint8_t *salt = (const uint8_t *)"apiary-node-v1";
  const char *v1 = "d5:addrsl14:127.0.0.1:7000ee", *v2 = "d5:addrsl14:127.0.0.1:7001ee";
  net.res[3].done = 0;
  assert_int_equal(dht_put_mutable(net.d[3], &key, salt, 14, (const uint8_t *)v1, strlen(v1), 1, NULL, NULL), 0);
  do_and_wait(3);
  assert_true(net.res[3].ev.stored >= DHT_K / 2);
  net.res[50].done = 0;
  assert_int_equal(dht_get_mutable(net.d[50], key.pk, salt, 14, NULL), 0);
  do_and_wait(50);
  assert_int_equal(net.res[50].ev.status, 0);
  assert_true(net.res[50].ev.item.is_mutable);
  assert_true(net.res[50].ev.item.seq == 1);
  assert_memory_equal(net.res[50].v, v1, strlen(v1));
  /* seq 2 with cas 1 replaces it. */
  int64_t cas = 1;
  net.res[3].done = 0;
  assert_int_equal(dht_put_mutable(net.d[3], &key, salt, 14, (const uint8_t *)v2, strlen(v2), 2, &cas, NULL), 0);
  do_and_wait(3);
  assert_true(net.res[3].ev.stored >= DHT_K / 2);
  /* An older seq is refused everywhere (302), and so is a stale cas (301). */
  uint64_t rule_before = 0, rule_after = 0;
  dht_stats st;
  for (int i = 0; i < net.n; i++) { dht_get_stats(net.d[i], &st); rule_before += st.drop_store_rule; }
  net.res[3].done = 0;
  assert_int_equal(dht_put_mutable(net.d[3], &key, salt, 14, (const uint8_t *)v1, strlen(v1), 1, NULL, NULL), 0);
  do_and_wait(3);
  assert_int_equal(net.res[3].ev.stored, 0);
  assert_int_equal(net.res[3].ev.status, ERR_NOTFOUND);
  assert_true(net.res[3].ev.has_item && net.res[3].ev.item.seq == 2); /* what beat us */
  net.res[3].done = 0;
  cas = 1;
  assert_int_equal(dht_put_mutable(net.d[3], &key, salt, 14, (const uint8_t *)v1, strlen(v1), 3, &cas, NULL), 0);
  do_and_wait(3);
  assert_int_equal(net.res[3].ev.stored, 0);
  for (int i = 0; i < net.n; i++) { dht_get_stats(net.d[i], &st); rule_after += st.drop_store_rule; }
  assert_true(rule_after - rule_before >= DHT_K);
  /* A get from elsewhere sees seq 2. */
  net.res[120].done = 0;
  assert_int_equal(dht_get_mutable(net.d[120], key.pk, salt, 14, NULL), 0);
  do_and_wait(120);
  assert_true(net.res[120].ev.item.seq == 2);
  assert_memory_equal(net.res[120].v, v2, strlen(v2));
  /* Without the salt it is another target: not found. */
  net.res[120].done = 0;
  assert_int_equal(dht_get_mutable(net.d[120], key.pk, NULL, 0, NULL), 0);
  do_and_wait(120);
  assert_int_equal(net.res[120].ev.status, ERR_NOTFOUND);
  ident_wipe(&key);
}

static void test_net_bad_signature(void **state) {
  (void)state;
  uint8_t seed[32];
  memset(seed, 9, 32);
  ident key;
  assert_int_equal(ident_from_seed(seed, &key), 0);
  const char *v = "i1e";
  uint8_t in[64], sig[64];
  int n = krpc_sig_input(NULL, 0, 5, (const uint8_t *)v, 3, in, sizeof in);
  ident_sign(&key, in, (size_t)n, sig);
  sig[10] ^= 0x40;
  uint64_t before = 0, after = 0;
  dht_stats st;
  for (int i = 0; i < net.n; i++) { dht_get_stats(net.d[i], &st); before += st.drop_bad_sig; }
  net.res[8].done = 0;
  assert_int_equal(dht_put_signed(net.d[8], key.pk, sig, NULL, 0, (const uint8_t *)v, 3, 5, NULL, NULL), 0);
  do_and_wait(8);
  assert_int_equal(net.res[8].ev.stored, 0);
  for (int i = 0; i < net.n; i++) { dht_get_stats(net.d[i], &st); after += st.drop_bad_sig; }
  assert_true(after - before >= DHT_K);
  ident_wipe(&key);
}


/* Sends one packet to d and returns the first response or error it answers with (parsed into m;
 * raw bytes copied to raw). Returns the packet length, 0 when nothing came back. */
static size_t ask(dht *d, const uint8_t *pkt, size_t len, const struct sockaddr_in *from, uint64_t now,
                  uint8_t *raw, krpc_msg *m) {
  dht_input(d, pkt, len, (const struct sockaddr *)from, now);
  dht_output o;
  size_t got = 0;
  while (dht_poll(d, now, &o) > 0) {
    if (o.kind != DHT_OUT_PACKET || got) continue;
    assert_int_equal(krpc_parse(o.pkt, o.len, m), 0);
    if (m->kind == KRPC_QUERY) continue; /* the engine checking on us */
    memcpy(raw, o.pkt, o.len);
    got = o.len;
  }
  if (got) assert_int_equal(krpc_parse(raw, got, m), 0);
  return got;
}

static size_t build(krpc_msg *m, uint8_t *out) {
  int n = krpc_encode(m, out, 1500);
  assert_true(n > 0);
  return (size_t)n;
}

static void new_query(krpc_msg *q, krpc_method method, const uint8_t *id) {
  memset(q, 0, sizeof *q);
  q->kind = KRPC_QUERY;
  q->method = method;
  q->t = (krpc_bytes){(const uint8_t *)"qq", 2};
  q->id = id;
}

/* Tokens: issued by get_peers / get, bound to the IP, valid for one rotation after the
 * one they were made in (5-10 minutes), refused from another IP. */
static void test_tokens(void **state) {
  (void)state;
  dht_config c;
  dht_config_default(&c);
  c.rate_per_sec = 0;
  uint8_t sid[20] = {0xaa}, cid[20] = {0x55}, ih[20] = {0x42};
  dht *d;
  assert_int_equal(dht_new(sid, &c, &d), 0);
  struct sockaddr_in cli;
  memset(&cli, 0, sizeof cli);
  cli.sin_family = AF_INET;
  cli.sin_addr.s_addr = htonl(0x01020304);
  cli.sin_port = htons(5555);
  static krpc_msg q, r;
  uint8_t pkt[1500], raw[1500], token[64];
  uint64_t t0 = 10 * 60 * 1000;
  dht_output o;
  while (dht_poll(d, t0, &o) > 0) {
  }
  new_query(&q, KRPC_GET_PEERS, cid);
  q.info_hash = ih;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t0, raw, &r) > 0);
  assert_int_equal(r.kind, KRPC_RESPONSE);
  assert_int_equal(r.token.len, 20);
  memcpy(token, r.token.p, 20);
  assert_int_equal(r.n_values, 0);
  /* announce with the token 6 minutes later: still good. */
  new_query(&q, KRPC_ANNOUNCE_PEER, cid);
  q.info_hash = ih;
  q.has_port = 1;
  q.port = 6881;
  q.token = (krpc_bytes){token, 20};
  uint64_t t = t0 + 6 * 60 * 1000;
  while (dht_poll(d, t, &o) > 0) {
  }
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.kind, KRPC_RESPONSE);
  /* The peer is served. */
  new_query(&q, KRPC_GET_PEERS, cid);
  q.info_hash = ih;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.n_values, 1);
  assert_memory_equal(r.values[0].p, "\x01\x02\x03\x04\x1a\xe1", 6);
  /* From another IP: refused. */
  struct sockaddr_in other = cli;
  other.sin_addr.s_addr = htonl(0x01020305);
  new_query(&q, KRPC_ANNOUNCE_PEER, cid);
  q.info_hash = ih;
  q.has_port = 1;
  q.port = 6881;
  q.token = (krpc_bytes){token, 20};
  assert_true(ask(d, pkt, build(&q, pkt), &other, t, raw, &r) > 0);
  assert_int_equal(r.kind, KRPC_ERROR);
  assert_int_equal(r.err_code, KRPC_ERR_PROTOCOL);
  /* Two rotations later: refused. */
  t = t0 + 11 * 60 * 1000;
  while (dht_poll(d, t, &o) > 0) {
  }
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.kind, KRPC_ERROR);
  dht_stats st;
  dht_get_stats(d, &st);
  assert_int_equal(st.drop_bad_token, 2);
  /* BEP 44 on the server: an immutable put, then get with and without the value. */
  new_query(&q, KRPC_GET, cid);
  uint8_t target[20];
  krpc_target_immutable((const uint8_t *)"12:Hello World!", 15, target);
  q.target = target;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_null(r.v.p);
  memcpy(token, r.token.p, 20);
  new_query(&q, KRPC_PUT, cid);
  q.token = (krpc_bytes){token, 20};
  q.v = (krpc_bytes){(const uint8_t *)"12:Hello World!", 15};
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.kind, KRPC_RESPONSE);
  new_query(&q, KRPC_GET, cid);
  q.target = target;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.v.len, 15);
  /* A value over 1000 bytes: 205. */
  static uint8_t bigv[1100];
  memcpy(bigv, "1095:", 5);
  memset(bigv + 5, 'x', 1095);
  new_query(&q, KRPC_PUT, cid);
  q.token = (krpc_bytes){token, 20};
  q.v = (krpc_bytes){bigv, 1100};
  uint8_t bigpkt[1500];
  int n = krpc_encode(&q, bigpkt, sizeof bigpkt);
  assert_true(n > 0);
  assert_true(ask(d, bigpkt, (size_t)n, &cli, t, raw, &r) > 0);
  assert_int_equal(r.err_code, KRPC_ERR_TOO_BIG);
  /* Mutable: seq rules on the server, and get with seq omits an item that is not newer. */
  uint8_t seed[32] = {3};
  ident key;
  ident_from_seed(seed, &key);
  uint8_t in[128], sig[64];
  int sl = krpc_sig_input(NULL, 0, 5, (const uint8_t *)"i7e", 3, in, sizeof in);
  ident_sign(&key, in, (size_t)sl, sig);
  new_query(&q, KRPC_PUT, cid);
  q.token = (krpc_bytes){token, 20};
  q.v = (krpc_bytes){(const uint8_t *)"i7e", 3};
  q.k = key.pk;
  q.sig = sig;
  q.has_seq = 1;
  q.seq = 5;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.kind, KRPC_RESPONSE);
  q.v = (krpc_bytes){(const uint8_t *)"i8e", 3}; /* same seq, other value, signature now wrong */
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.err_code, KRPC_ERR_BAD_SIG);
  sl = krpc_sig_input(NULL, 0, 5, (const uint8_t *)"i8e", 3, in, sizeof in);
  ident_sign(&key, in, (size_t)sl, sig);
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.err_code, KRPC_ERR_SEQ);
  q.has_cas = 1;
  q.cas = 4;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.err_code, KRPC_ERR_CAS);
  krpc_target_mutable(key.pk, NULL, 0, target);
  new_query(&q, KRPC_GET, cid);
  q.target = target;
  q.has_seq = 1;
  q.seq = 5;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_null(r.v.p);
  q.seq = 4;
  assert_true(ask(d, pkt, build(&q, pkt), &cli, t, raw, &r) > 0);
  assert_int_equal(r.v.len, 3);
  assert_true(r.has_seq && r.seq == 5);
  assert_memory_equal(r.k, key.pk, 32);
  ident_wipe(&key);
  dht_free(d);
}

/* Two engines: B learns A from an imported cache record (pinged before use), A learns B
 * from B's query; read-only queriers (BEP 43) stay out of the table. */
static void test_import_ping(void **state) {
  (void)state;
  dht_config c;
  dht_config_default(&c);
  c.allow_private = 1;
  uint8_t ida[20] = {0x10}, idb[20] = {0x90};
  dht *a, *b;
  assert_int_equal(dht_new(ida, &c, &a), 0);
  assert_int_equal(dht_new(idb, &c, &b), 0);
  struct sockaddr_in aa = addr_of(1), ab = addr_of(2);
  dht_node_rec rec;
  memcpy(rec.id, ida, 20);
  memset(&rec.addr, 0, sizeof rec.addr);
  memcpy(&rec.addr, &aa, sizeof aa);
  assert_int_equal(dht_nodes_import(b, &rec, 1), 1);
  uint64_t now = 5000;
  for (int round = 0; round < 6; round++) {
    dht_output o;
    while (dht_poll(b, now, &o) > 0)
      if (o.kind == DHT_OUT_PACKET) dht_input(a, o.pkt, o.len, (const struct sockaddr *)&ab, now);
    while (dht_poll(a, now, &o) > 0)
      if (o.kind == DHT_OUT_PACKET) dht_input(b, o.pkt, o.len, (const struct sockaddr *)&aa, now);
    now += 10;
  }
  dht_stats st;
  dht_get_stats(b, &st);
  assert_int_equal(st.nodes, 1);
  assert_int_equal(st.nodes_good, 1);
  dht_get_stats(a, &st);
  assert_int_equal(st.nodes, 1);
  assert_int_equal(st.nodes_good, 1); /* a pinged b back */
  dht_node_rec out[4];
  assert_int_equal(dht_nodes_export(b, out, 4), 1);
  assert_memory_equal(out[0].id, ida, 20);
  assert_int_equal(dht_table_closest(a, idb, out, 4), 1);
  assert_memory_equal(out[0].id, idb, 20);
  /* A read-only node's ping is answered but not remembered. */
  const char *ro = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe";
  struct sockaddr_in ac = addr_of(3);
  dht_input(a, (const uint8_t *)ro, strlen(ro), (const struct sockaddr *)&ac, now);
  dht_output o;
  int answered = 0;
  while (dht_poll(a, now, &o) > 0) answered += o.kind == DHT_OUT_PACKET;
  assert_int_equal(answered, 1);
  dht_get_stats(a, &st);
  assert_int_equal(st.nodes, 1);
  dht_free(a);
  dht_free(b);
}


/* Outage: every known node stops answering and goes bad; the engine falls back to its
 * bootstrap address and recovers once the network answers again. */
static void pump_pair(dht *a, dht *b, const struct sockaddr_in *aa, const struct sockaddr_in *ab, int b_up,
                      uint64_t *now, int ms) {
  for (int t = 0; t < ms; t += 10) {
    dht_output o;
    while (dht_poll(a, *now, &o) > 0)
      if (o.kind == DHT_OUT_PACKET && b_up) dht_input(b, o.pkt, o.len, (const struct sockaddr *)aa, *now);
    while (dht_poll(b, *now, &o) > 0)
      if (o.kind == DHT_OUT_PACKET && b_up) dht_input(a, o.pkt, o.len, (const struct sockaddr *)ab, *now);
    *now += 10;
  }
}

static void test_outage_recovery(void **state) {
  (void)state;
  dht_config c;
  dht_config_default(&c);
  c.allow_private = 1;
  uint8_t ida[20] = {0x10}, idb[20] = {0x90};
  dht *a, *b;
  assert_int_equal(dht_new(ida, &c, &a), 0);
  assert_int_equal(dht_new(idb, &c, &b), 0);
  struct sockaddr_in aa = addr_of(1), ab = addr_of(2);
  assert_int_equal(dht_bootstrap_add(a, (const struct sockaddr *)&ab), 0);
  uint64_t now = 1000;
  pump_pair(a, b, &aa, &ab, 1, &now, 1000);
  dht_stats st;
  dht_get_stats(a, &st);
  assert_int_equal(st.nodes_good, 1);
  /* b vanishes; a keeps looking itself up (30 s apart) and b turns bad. */
  pump_pair(a, b, &aa, &ab, 0, &now, 4 * 60 * 1000);
  dht_get_stats(a, &st);
  assert_int_equal(st.nodes_good, 0);
  assert_true(st.timeouts >= DHT_BAD_FAILS);
  dht_node_rec rec[2];
  assert_int_equal(dht_table_closest(a, idb, rec, 2), 0);
  /* b is back: the next bootstrap round finds it. */
  pump_pair(a, b, &aa, &ab, 1, &now, 40 * 1000);
  dht_get_stats(a, &st);
  assert_int_equal(st.nodes_good, 1);
  dht_free(a);
  dht_free(b);
}

/* Hostile input straight into one engine: counted, never fatal. */
static void test_hostile_input(void **state) {
  (void)state;
  dht_config c;
  dht_config_default(&c);
  c.allow_private = 0;
  c.rate_per_sec = 5;
  c.rate_burst = 5;
  uint8_t id[20] = {1};
  dht *d;
  assert_int_equal(dht_new(id, &c, &d), 0);
  struct sockaddr_in pub;
  memset(&pub, 0, sizeof pub);
  pub.sin_family = AF_INET;
  pub.sin_addr.s_addr = htonl(0x08080808);
  pub.sin_port = htons(6881);
  struct sockaddr_in lo = addr_of(1);
  const char *ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
  dht_output o;
  dht_input(d, (const uint8_t *)ping, strlen(ping), (const struct sockaddr *)&lo, 1000);
  dht_stats st;
  dht_get_stats(d, &st);
  assert_int_equal(st.drop_bad_addr, 1); /* loopback refused without allow_private */
  /* Rate limit: a burst of 5, then drops. */
  int answered = 0;
  for (int i = 0; i < 20; i++) {
    dht_input(d, (const uint8_t *)ping, strlen(ping), (const struct sockaddr *)&pub, 1000);
    while (dht_poll(d, 1000, &o) > 0)
      if (o.kind == DHT_OUT_PACKET && o.len > 30 && memmem(o.pkt, o.len, "1:y1:r", 6)) answered++;
  }
  assert_int_equal(answered, 5);
  dht_get_stats(d, &st);
  assert_int_equal(st.drop_rate_limited, 15);
  /* ...and refills with time. */
  dht_input(d, (const uint8_t *)ping, strlen(ping), (const struct sockaddr *)&pub, 3000);
  dht_get_stats(d, &st);
  assert_int_equal(st.drop_rate_limited, 15);
  /* Garbage, unknown methods, unexpected responses. */
  pub.sin_addr.s_addr = htonl(0x08080809);
  const char *bad[] = {"", "d", "le", "d1:t2:aa1:y1:re", "d1:rd2:id20:abcdefghij0123456789e1:t4:zzzz1:y1:re",
                       "d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe",
                       "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    dht_input(d, (const uint8_t *)bad[i], strlen(bad[i]), (const struct sockaddr *)&pub, 4000);
  int errors = 0;
  while (dht_poll(d, 4000, &o) > 0)
    if (o.kind == DHT_OUT_PACKET && memmem(o.pkt, o.len, "1:y1:e", 6)) errors++;
  assert_int_equal(errors, 2); /* 204 for "vote", 203 for the short id */
  dht_get_stats(d, &st);
  assert_int_equal(st.drop_malformed, 5);
  assert_int_equal(st.drop_unexpected, 1);
  /* IPv6 sources are counted as unsupported. */
  struct sockaddr_in6 v6;
  memset(&v6, 0, sizeof v6);
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(1);
  dht_input(d, (const uint8_t *)ping, strlen(ping), (const struct sockaddr *)&v6, 5000);
  dht_get_stats(d, &st);
  assert_int_equal(st.drop_unsupported, 1);
  /* Export / import round trip. */
  dht_node_rec recs[4];
  int n = dht_nodes_export(d, recs, 4);
  assert_true(n >= 0);
  assert_true(dht_nodes_import(d, recs, (size_t)n) >= 0);
  dht_free(d);
  dht_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table_reference),
      cmocka_unit_test(test_table_replace),
      cmocka_unit_test(test_store),
      cmocka_unit_test(test_hostile_input),
      cmocka_unit_test(test_tokens),
      cmocka_unit_test(test_import_ping),
      cmocka_unit_test(test_outage_recovery),
  };
  const struct CMUnitTest net_tests[] = {
      cmocka_unit_test(test_net_bootstrap),
      cmocka_unit_test(test_net_find_node),
      cmocka_unit_test(test_net_announce),
      cmocka_unit_test(test_net_immutable),
      cmocka_unit_test(test_net_mutable),
      cmocka_unit_test(test_net_bad_signature),
  };
  int fails = cmocka_run_group_tests_name("dht", tests, NULL, NULL);
  fails += cmocka_run_group_tests_name("dht_net", net_tests, net_setup, net_teardown);
  return fails;
}
