/* p2p/dht_udp — the DHT engine on a libuv UDP socket; see dht_udp.h. */
#include "p2p/dht_udp.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/err.h"

struct dht_udp {
  uv_loop_t *loop;
  dht *engine;               /* borrowed */
  uv_udp_t udp;
  uv_timer_t timer;
  int open;                  /* handles not closed yet */
  int stopped;
  uint16_t port;
  dht_udp_event_fn on_event;
  void *ud;
  uint8_t rx[2048];          /* one datagram (the engine caps what it accepts) */
};

static void on_timer(uv_timer_t *t) { dht_udp_pump(t->data); }

void dht_udp_pump(dht_udp *d) {
  if (!d || d->stopped) return;
  dht_output out;
  uint64_t now = uv_now(d->loop);
  while (dht_poll(d->engine, now, &out) > 0) {
    if (out.kind == DHT_OUT_PACKET) {
      uv_buf_t b = uv_buf_init((char *)out.pkt, (unsigned)out.len);
      uv_udp_try_send(&d->udp, &b, 1, (const struct sockaddr *)&out.to);
    } else {
      d->on_event(d->ud, &out.ev);
      if (d->stopped) return; /* the callback stopped us */
    }
  }
  uint64_t next = dht_next_deadline(d->engine);
  uv_timer_start(&d->timer, on_timer, next > now ? next - now : 0, 0);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  dht_udp *d = h->data;
  (void)sz;
  *b = uv_buf_init((char *)d->rx, sizeof d->rx);
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *addr, unsigned flags) {
  dht_udp *d = h->data;
  (void)flags;
  if (n <= 0 || !addr || d->stopped) return;
  dht_input(d->engine, (const uint8_t *)b->base, (size_t)n, addr, uv_now(d->loop));
  dht_udp_pump(d);
}

static void on_closed(uv_handle_t *h) {
  dht_udp *d = h->data;
  if (--d->open == 0) free(d);
}

int dht_udp_start(uv_loop_t *loop, dht *engine, const char *host, int port, dht_udp_event_fn on_event, void *ud,
                  dht_udp **out, char *err, size_t cap) {
  dht_udp *d = calloc(1, sizeof *d);
  if (!d) return ERR_NOMEM;
  d->loop = loop;
  d->engine = engine;
  d->on_event = on_event;
  d->ud = ud;
  uv_udp_init(loop, &d->udp);
  uv_timer_init(loop, &d->timer);
  d->udp.data = d->timer.data = d;
  d->open = 2;
  struct sockaddr_in a;
  int rc;
  if ((rc = uv_ip4_addr(host, port, &a)) || (rc = uv_udp_bind(&d->udp, (const struct sockaddr *)&a, 0)) ||
      (rc = uv_udp_recv_start(&d->udp, on_alloc, on_recv))) {
    snprintf(err, cap, "cannot open the DHT socket on %s:%d: %s (change [dht] port or pass --dht-port)", host, port,
             uv_strerror(rc));
    dht_udp_stop(d);
    return rc;
  }
  struct sockaddr_in got;
  int len = sizeof got;
  uv_udp_getsockname(&d->udp, (struct sockaddr *)&got, &len);
  d->port = ntohs(got.sin_port);
  *out = d;
  return 0;
}

uint16_t dht_udp_port(const dht_udp *d) { return d->port; }

void dht_udp_stop(dht_udp *d) {
  if (!d || d->stopped) return;
  d->stopped = 1;
  uv_close((uv_handle_t *)&d->udp, on_closed);
  uv_close((uv_handle_t *)&d->timer, on_closed);
}
