/* p2p/lan_udp — LAN discovery service on libuv; see lan_udp.h. */
#include "p2p/lan_udp.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"

#define SEEN_SLOTS 256          /* recently answered nodes (per-node reply rate limit) */
#define REPLY_INTERVAL_MS 2000  /* at most one unicast reply per node per interval */
#define SRC_SLOTS 64            /* per-source-IP packet budget */
#define SRC_BUDGET 20           /* packets per source per second */

typedef struct seen_slot { uint8_t pk[8]; uint64_t replied_ms; } seen_slot;
typedef struct src_slot { uint32_t ip; uint64_t window_ms; int count; } src_slot;

struct lan_udp {
  uv_udp_t sock;
  uv_timer_t timer;
  const ident *id;
  struct sockaddr_in group;
  lan_udp_opts o;
  lan_udp_found_fn found;
  void *ud;
  lan_udp_stats stats;
  seen_slot seen[SEEN_SLOTS];
  src_slot srcs[SRC_SLOTS];
  uint8_t rx[2048];
  int closing;
};

typedef struct send_req { uv_udp_send_t req; uint8_t pkt[LAN_BEACON_LEN]; } send_req;

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_sent(uv_udp_send_t *r, int status) {
  (void)status;
  free(r);
}

static void send_beacon(lan_udp *l, const struct sockaddr_in *to) {
  send_req *r = malloc(sizeof *r);
  if (!r) return;
  lan_beacon_encode(l->id, l->o.tcp_port, l->o.dht_port, wall_ms(), r->pkt);
  uv_buf_t b = uv_buf_init((char *)r->pkt, LAN_BEACON_LEN);
  if (uv_udp_send(&r->req, &l->sock, &b, 1, (const struct sockaddr *)to, on_sent)) free(r);
  else l->stats.sent++;
}

static void on_timer(uv_timer_t *t) {
  lan_udp *l = t->data;
  send_beacon(l, &l->group);
}

/* Per-source token budget: SRC_BUDGET packets per second per IP (a flood from one host
 * cannot make us verify signatures at line rate). */
static int rate_ok(lan_udp *l, uint32_t ip, uint64_t now) {
  src_slot *s = &l->srcs[(ip * 2654435761u) % SRC_SLOTS];
  if (s->ip != ip || now - s->window_ms >= 1000) {
    s->ip = ip;
    s->window_ms = now;
    s->count = 0;
  }
  return ++s->count <= SRC_BUDGET;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  lan_udp *l = h->data;
  (void)suggested;
  *b = uv_buf_init((char *)l->rx, sizeof l->rx);
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *addr, unsigned flags) {
  lan_udp *l = h->data;
  (void)flags;
  if (n <= 0 || !addr || addr->sa_family != AF_INET) return;
  l->stats.received++;
  const struct sockaddr_in *from = (const struct sockaddr_in *)addr;
  uint64_t now = uv_now(h->loop);
  if (!rate_ok(l, from->sin_addr.s_addr, now)) { l->stats.dropped_rate++; return; }
  lan_beacon bc;
  int rc = lan_beacon_decode((const uint8_t *)b->base, (size_t)n, wall_ms(), &bc);
  if (rc == ERR_FORMAT) { l->stats.dropped_format++; return; }
  if (rc == ERR_CRYPTO) { l->stats.dropped_sig++; return; }
  if (rc) { l->stats.dropped_skew++; return; }
  if (!memcmp(bc.pk, l->id->pk, 32)) { l->stats.dropped_self++; return; }
  l->stats.accepted++;
  /* Answer a node we have not answered recently, straight to its address. */
  seen_slot *s = &l->seen[(bc.pk[0] | bc.pk[1] << 8) % SEEN_SLOTS];
  if (memcmp(s->pk, bc.pk, 8) || now - s->replied_ms >= REPLY_INTERVAL_MS) {
    memcpy(s->pk, bc.pk, 8);
    s->replied_ms = now;
    struct sockaddr_in to = *from;
    to.sin_port = htons((uint16_t)l->o.port);
    send_beacon(l, &to);
  }
  l->found(&bc, from, l->ud);
}

int lan_udp_start(uv_loop_t *loop, const ident *id, const lan_udp_opts *o, lan_udp_found_fn found, void *ud,
                  lan_udp **out) {
  lan_udp *l = calloc(1, sizeof *l);
  if (!l) return ERR_NOMEM;
  l->id = id;
  l->o = *o;
  if (!l->o.group) l->o.group = LAN_DEFAULT_GROUP;
  if (!l->o.port) l->o.port = LAN_DEFAULT_PORT;
  if (!l->o.interval_ms) l->o.interval_ms = LAN_INTERVAL_MS;
  l->found = found;
  l->ud = ud;
  int rc = uv_ip4_addr(l->o.group, l->o.port, &l->group);
  if (rc) { free(l); return rc; }
  uv_udp_init(loop, &l->sock);
  uv_timer_init(loop, &l->timer);
  l->sock.data = l->timer.data = l;
  struct sockaddr_in any;
  uv_ip4_addr("0.0.0.0", l->o.port, &any);
  if ((rc = uv_udp_bind(&l->sock, (const struct sockaddr *)&any, UV_UDP_REUSEADDR)) ||
      (rc = uv_udp_set_membership(&l->sock, l->o.group, l->o.iface_addr, UV_JOIN_GROUP)) ||
      (rc = uv_udp_set_multicast_loop(&l->sock, 1)) || (rc = uv_udp_set_multicast_ttl(&l->sock, 1)) ||
      (l->o.iface_addr && (rc = uv_udp_set_multicast_interface(&l->sock, l->o.iface_addr))) ||
      (rc = uv_udp_recv_start(&l->sock, on_alloc, on_recv))) {
    lan_udp_stop(l);
    return rc;
  }
  uv_timer_start(&l->timer, on_timer, 0, (uint64_t)l->o.interval_ms);
  *out = l;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  lan_udp *l = h->data;
  if (--l->closing == 0) free(l);
}

void lan_udp_stop(lan_udp *l) {
  if (!l) return;
  l->closing = 2;
  uv_close((uv_handle_t *)&l->sock, on_closed);
  uv_close((uv_handle_t *)&l->timer, on_closed);
}

void lan_udp_get_stats(const lan_udp *l, lan_udp_stats *out) { *out = l->stats; }
