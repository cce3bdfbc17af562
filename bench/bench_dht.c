/* bench_dht — the DHT engine in an in-memory network of 10,000 nodes with churn.
 *
 * Every node is a real dht engine; packets travel through a simulated transport (a timing
 * wheel of 10 ms ticks, 10-30 ms latency, no loss) on a virtual clock, so nothing here
 * touches the network. Nodes join in waves, each bootstrapping from a random node already
 * in; then rounds of LOOKUPS concurrent find_node lookups from random live nodes to random
 * targets are measured against the brute-force closest live node. Between rounds, churn:
 * CHURN_STEP of the live nodes leave silently (their packets vanish: the rest of the
 * network only learns by timeouts) and as many fresh nodes join; three steps replace 30%
 * of the network. A round-0 announce is looked up again after all churn (get_peers).
 *
 * Prints: lookup success rate, mean and 95th percentile hops (query rounds to the closest
 * node), messages per lookup, per round. Usage: bench_dht [nodes] (default 10000). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p2p/dht.h"
#include "p2p/dht_impl.h"

#define BASE_PORT 10000
#define TICK_MS 10
#define WHEEL 8
#define LOOKUPS 300
#define ROUNDS 4
#define CHURN_STEP 0.10

typedef struct smsg {
  int from, to;
  uint32_t len;
  uint8_t *data;
} smsg;

typedef struct slot {
  dht *d;
  uint8_t id[20];
  int alive;
  int done;            /* DONE seen for the current lookup */
  dht_event ev;        /* copy, pointers cleared */
  uint8_t first[20];
  size_t n_peers;
} slot;

static slot *S;
static int n_slots, cap_slots;
static uint64_t now = 1000000;
static smsg *wheel[WHEEL];
static size_t wn[WHEEL], wcap[WHEEL];
static uint64_t packets;

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return rs;
}
static void rnd_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rnd64() >> 32);
}

static struct sockaddr_in addr_of(int i) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001 + (uint32_t)(i / 50000));
  a.sin_port = htons((uint16_t)(BASE_PORT + i % 50000));
  return a;
}

static int index_of(const struct sockaddr_in *a) {
  return (int)(ntohl(a->sin_addr.s_addr) - 0x7f000001) * 50000 + ntohs(a->sin_port) - BASE_PORT;
}

static void enqueue(int from, int to, const uint8_t *p, size_t len) {
  int w = (int)((now / TICK_MS + 1 + rnd64() % 2) % WHEEL);
  if (wn[w] == wcap[w]) {
    wcap[w] = wcap[w] ? wcap[w] * 2 : 1024;
    wheel[w] = realloc(wheel[w], wcap[w] * sizeof(smsg));
  }
  smsg *m = &wheel[w][wn[w]++];
  m->from = from;
  m->to = to;
  m->len = (uint32_t)len;
  m->data = malloc(len);
  memcpy(m->data, p, len);
}

static void drain(int i) {
  dht_output o;
  while (dht_poll(S[i].d, now, &o) > 0) {
    if (o.kind == DHT_OUT_PACKET) {
      int j = index_of((const struct sockaddr_in *)&o.to);
      if (j >= 0 && j < n_slots) enqueue(i, j, o.pkt, o.len);
    } else if (o.ev.type == DHT_EV_DONE) {
      S[i].done = 1;
      S[i].ev = o.ev;
      S[i].n_peers = o.ev.n_peers;
      if (o.ev.n_nodes) memcpy(S[i].first, o.ev.nodes[0].id, 20);
      else memset(S[i].first, 0, 20);
      S[i].ev.nodes = NULL;
      S[i].ev.peers = NULL;
      S[i].ev.item.v = NULL;
    }
  }
}

static void tick(void) {
  now += TICK_MS;
  int w = (int)((now / TICK_MS) % WHEEL);
  size_t n = wn[w];
  smsg *batch = wheel[w];
  wheel[w] = NULL;
  wn[w] = wcap[w] = 0;
  for (size_t k = 0; k < n; k++) {
    smsg *m = &batch[k];
    if (S[m->to].alive) {
      struct sockaddr_in from = addr_of(m->from);
      dht_input(S[m->to].d, m->data, m->len, (const struct sockaddr *)&from, now);
      drain(m->to);
      packets++;
    }
    free(m->data);
  }
  free(batch);
  for (int i = 0; i < n_slots; i++)
    if (S[i].alive && dht_next_deadline(S[i].d) <= now) drain(i);
}

static int random_alive(void) {
  for (;;) {
    int i = (int)(rnd64() % (uint64_t)n_slots);
    if (S[i].alive) return i;
  }
}

static void join(int boot) {
  int i = n_slots++;
  dht_config c;
  dht_config_default(&c);
  rnd_bytes(c.seed, 32);
  c.allow_private = 1;
  c.rate_per_sec = 0;
  c.query_timeout_ms = 1000;
  rnd_bytes(S[i].id, 20);
  if (dht_new(S[i].id, &c, &S[i].d)) {
    fprintf(stderr, "dht_new failed\n");
    exit(1);
  }
  S[i].alive = 1;
  if (boot >= 0) {
    struct sockaddr_in a = addr_of(boot);
    dht_bootstrap_add(S[i].d, (const struct sockaddr *)&a);
  }
  drain(i);
}

static int closest_alive(const uint8_t t[20], int except) {
  int best = -1;
  for (int i = 0; i < n_slots; i++)
    if (S[i].alive && i != except && (best < 0 || dht__cmp_dist(t, S[i].id, S[best].id) < 0)) best = i;
  return best;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void run_until(const int *who, int n, int max_ticks) {
  for (int t = 0; t < max_ticks; t++) {
    int all = 1;
    for (int k = 0; k < n && all; k++) all = S[who[k]].done || !S[who[k]].alive;
    if (all) return;
    tick();
  }
}

static void round_lookups(int r, const char *label) {
  static int who[LOOKUPS], want[LOOKUPS], hops[LOOKUPS];
  static uint8_t targets[LOOKUPS][20];
  for (int k = 0; k < LOOKUPS; k++) {
    int i;
    do i = random_alive(); while (S[i].done == 2);
    who[k] = i;
    S[i].done = 2; /* reserved for this round */
  }
  for (int k = 0; k < LOOKUPS; k++) {
    int i = who[k];
    S[i].done = 0;
    rnd_bytes(targets[k], 20);
    want[k] = closest_alive(targets[k], i);
    dht_find_node(S[i].d, targets[k], NULL);
    drain(i);
  }
  uint64_t t0 = now;
  run_until(who, LOOKUPS, 6000);
  int ok = 0, done = 0;
  double msgs = 0, hsum = 0;
  for (int k = 0; k < LOOKUPS; k++) {
    slot *s = &S[who[k]];
    if (!s->done) continue;
    done++;
    ok += !memcmp(s->first, S[want[k]].id, 20);
    hops[k] = s->ev.hops;
    hsum += s->ev.hops;
    msgs += s->ev.queries;
  }
  qsort(hops, (size_t)done, sizeof *hops, cmp_int);
  int p95 = done ? hops[(int)(0.95 * (done - 1))] : 0;
  int alive = 0;
  for (int i = 0; i < n_slots; i++) alive += S[i].alive;
  printf("  round %d %-22s live %5d  success %5.1f%%  hops mean %.2f p95 %d  msgs/lookup %.1f  (%.1f s virtual)\n", r,
         label, alive, 100.0 * ok / LOOKUPS, done ? hsum / done : 0, p95, done ? msgs / done : 0,
         (double)(now - t0) / 1000);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  if (n < 100) n = 100;
  clock_t c0 = clock();
  int churn_total = (int)(n * CHURN_STEP) * (ROUNDS - 1);
  cap_slots = n + churn_total + 1;
  S = calloc((size_t)cap_slots, sizeof *S);
  printf("DHT simulation: %d nodes, k=%d alpha=%d, 10-30 ms latency, 1 s query timeout\n", n, DHT_K, DHT_ALPHA);
  join(-1);
  /* Joins in waves of 1% of the network, 200 ms apart. */
  int wave = n / 100 > 1 ? n / 100 : 1;
  while (n_slots < n) {
    for (int k = 0; k < wave && n_slots < n; k++) join(random_alive());
    for (int t = 0; t < 20; t++) tick();
  }
  for (int t = 0; t < 1500; t++) tick(); /* settle: 15 s */
  size_t tsum = 0;
  for (int i = 0; i < n_slots; i++) {
    dht_stats st;
    dht_get_stats(S[i].d, &st);
    tsum += st.nodes;
  }
  printf("  joined: mean routing table %.1f nodes, %.1f packets per node so far\n", (double)tsum / n_slots,
         (double)packets / n_slots);
  /* An announce to find again after all the churn. */
  uint8_t ih[20];
  rnd_bytes(ih, 20);
  int ann = random_alive();
  S[ann].done = 0;
  dht_announce(S[ann].d, ih, 4242, NULL);
  drain(ann);
  run_until(&ann, 1, 3000);
  int stored = S[ann].ev.stored;

  round_lookups(0, "(no churn)");
  for (int r = 1; r < ROUNDS; r++) {
    int step = (int)(n * CHURN_STEP);
    for (int k = 0; k < step; k++) {
      int i = random_alive();
      if (i == ann) { k--; continue; }
      S[i].alive = 0;
    }
    for (int k = 0; k < step; k++) join(random_alive());
    for (int t = 0; t < 500; t++) tick(); /* 5 s: joins finish, nothing refreshed yet */
    char label[64];
    snprintf(label, sizeof label, "(after %d%% churn)", (int)(r * CHURN_STEP * 100 + 0.5));
    round_lookups(r, label);
  }
  int getter = random_alive();
  S[getter].done = 0;
  dht_get_peers(S[getter].d, ih, NULL);
  drain(getter);
  run_until(&getter, 1, 3000);
  printf("  announce stored on %d nodes before churn; get_peers after 30%% churn found %zu peer(s)\n", stored,
         S[getter].n_peers);
  uint64_t timeouts = 0;
  for (int i = 0; i < n_slots; i++) {
    dht_stats st;
    dht_get_stats(S[i].d, &st);
    timeouts += st.timeouts;
  }
  printf("  total packets %llu, timeouts %llu, virtual time %.0f s, wall %.1f s\n", (unsigned long long)packets,
         (unsigned long long)timeouts, (double)(now - 1000000) / 1000, (double)(clock() - c0) / CLOCKS_PER_SEC);
  for (int i = 0; i < n_slots; i++) dht_free(S[i].d);
  for (int w = 0; w < WHEEL; w++) {
    for (size_t k = 0; k < wn[w]; k++) free(wheel[w][k].data);
    free(wheel[w]);
  }
  free(S);
  return 0;
}
