/* p2p/link — libuv TCP glue for session engines; see link.h. */
#include "p2p/link.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "p2p/session.h"

#define READ_CHUNK 65536

struct p2p_link {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t conn_req;
  link_mgr *m;
  session *s;
  p2p_link *next;
  uint8_t expected[32];
  int has_expected;
  int inbound;
  int ready;
  int reading_paused;
  int closing;          /* handles are being closed */
  int handles_open;     /* tcp + timer */
  char addr[64];
  void *data;           /* for the layer above */
  uint8_t rx[READ_CHUNK];
};

#define RATE_SLOTS 256
typedef struct rate_slot {
  uint32_t ip;        /* IPv4 source address, network order (0 = free) */
  double tokens;
  uint64_t at;        /* last refill, loop ms */
} rate_slot;

struct link_mgr {
  double accept_rate, accept_burst; /* per-source limits (LINK_ACCEPT_RATE/BURST) */
  rate_slot rate[RATE_SLOTS]; /* per-source token buckets (hashed, collisions share one) */
  session_params params;  /* for every new session */
  uint64_t connect_timeout_ms;
  uv_loop_t *loop;
  const ident *me;
  link_callbacks cb;
  void *ud;
  uv_tcp_t listener;
  int listening;
  uint16_t port;
  p2p_link *links;
  link_stats stats;
  int closing;
};

typedef struct write_req {
  uv_write_t w;
  buf data;
} write_req;

static void link_destroy(p2p_link *l, int err, const char *why);

static uint64_t now_ms(link_mgr *m) { return uv_now(m->loop); }

static void unlink_from_mgr(p2p_link *l) {
  for (p2p_link **p = &l->m->links; *p; p = &(*p)->next)
    if (*p == l) { *p = l->next; return; }
}

static void on_handle_closed(uv_handle_t *h) {
  p2p_link *l = h->data;
  if (--l->handles_open == 0) {
    session_free(l->s);
    free(l);
  }
}

static size_t queued(p2p_link *l) {
  return session_output_pending(l->s) + uv_stream_get_write_queue_size((uv_stream_t *)&l->tcp);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);
static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  p2p_link *l = h->data;
  (void)sz;
  *b = uv_buf_init((char *)l->rx, sizeof l->rx);
}

static void on_written(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  p2p_link *l = w->data;
  buf_deinit(&wr->data);
  free(wr);
  if (status < 0 || l->closing) return;
  if (l->reading_paused && queued(l) < SESSION_LOW_WATER) {
    l->reading_paused = 0;
    uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
    if (l->ready && l->m->cb.writable) l->m->cb.writable(l, l->m->ud);
  }
  /* A link we closed ourselves goes once its CLOSE record is on the wire. */
  if (session_get_state(l->s) == SESSION_CLOSING && queued(l) == 0) link_destroy(l, 0, "closed");
}

static void flush(p2p_link *l) {
  if (l->closing || session_output_pending(l->s) == 0) return;
  write_req *wr = calloc(1, sizeof *wr);
  if (!wr) { link_destroy(l, ERR_NOMEM, "out of memory"); return; }
  session_take_output(l->s, &wr->data);
  wr->w.data = l;
  uv_buf_t b = uv_buf_init((char *)wr->data.ptr, (unsigned)wr->data.len);
  int rc = uv_write(&wr->w, (uv_stream_t *)&l->tcp, &b, 1, on_written);
  if (rc) {
    buf_deinit(&wr->data);
    free(wr);
    link_destroy(l, rc, uv_strerror(rc));
    return;
  }
  if (!l->reading_paused && queued(l) > SESSION_HIGH_WATER) {
    l->reading_paused = 1;
    uv_read_stop((uv_stream_t *)&l->tcp);
  }
}

static void on_timer(uv_timer_t *t);

static void arm_timer(p2p_link *l) {
  if (l->closing) return;
  uint64_t d = session_deadline(l->s), now = now_ms(l->m);
  if (d == UINT64_MAX) { uv_timer_stop(&l->timer); return; }
  uv_timer_start(&l->timer, on_timer, d > now ? d - now : 0, 0);
}

/* The smaller public key's outgoing connection wins a duplicate. */
static int keep_new_over_old(link_mgr *m, p2p_link *newer, p2p_link *older) {
  int me_smaller = memcmp(m->me->pk, session_remote_pk(newer->s), 32) < 0;
  /* The connection initiated by the smaller key: ours if we are smaller (outbound), else
   * theirs (inbound). */
  int newer_wins = me_smaller ? !newer->inbound : newer->inbound;
  int older_wins = me_smaller ? !older->inbound : older->inbound;
  if (newer_wins != older_wins) return newer_wins;
  return 0; /* same direction twice: keep the established one */
}

static void process_events(p2p_link *l) {
  session_event ev;
  while (!l->closing && session_next_event(l->s, &ev)) {
    link_mgr *m = l->m;
    switch (ev.type) {
    case SESSION_EV_READY: {
      p2p_link *dup = link_find(m, ev.remote_pk);
      if (dup && dup != l) {
        m->stats.duplicates_closed++;
        if (keep_new_over_old(m, l, dup)) {
          link_close(dup, "duplicate link");
        } else {
          session_close(l->s, SESSION_CLOSE_NORMAL, "duplicate link", now_ms(m));
          flush(l);
          return;
        }
      }
      l->ready = 1;
      m->stats.ready++;
      if (m->cb.ready) m->cb.ready(l, ev.remote_pk, l->addr, l->inbound, m->ud);
      break;
    }
    case SESSION_EV_MESSAGE:
      if (m->cb.message) m->cb.message(l, ev.data, ev.len, m->ud);
      break;
    case SESSION_EV_CLOSED:
      link_destroy(l, 0, "closed by peer");
      return;
    case SESSION_EV_ERROR:
      if (!l->ready) m->stats.failed_handshake++;
      link_destroy(l, ev.err, ev.why);
      return;
    }
  }
}

static void after_engine(p2p_link *l) {
  if (l->closing) return;
  process_events(l);
  if (l->closing) return;
  flush(l);
  arm_timer(l);
}

static void on_timer(uv_timer_t *t) {
  p2p_link *l = t->data;
  session_tick(l->s, now_ms(l->m));
  after_engine(l);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  p2p_link *l = st->data;
  if (n == 0) return;
  if (n < 0) {
    link_destroy(l, (int)n, n == UV_EOF ? "connection closed" : uv_strerror((int)n));
    return;
  }
  session_feed(l->s, (const uint8_t *)b->base, (size_t)n, now_ms(l->m));
  after_engine(l);
}

/* Ends a link: callbacks, then handles closed; memory freed once libuv is done. */
static void link_destroy(p2p_link *l, int err, const char *why) {
  if (l->closing) return;
  l->closing = 1;
  unlink_from_mgr(l);
  link_mgr *m = l->m;
  if (!m->closing && m->cb.closed)
    m->cb.closed(l, l->has_expected ? l->expected : NULL, l->ready, err, why, m->ud);
  uv_close((uv_handle_t *)&l->timer, on_handle_closed);
  uv_close((uv_handle_t *)&l->tcp, on_handle_closed);
}

static p2p_link *link_alloc(link_mgr *m, int inbound) {
  p2p_link *l = calloc(1, sizeof *l);
  if (!l) return NULL;
  l->m = m;
  l->inbound = inbound;
  uv_tcp_init(m->loop, &l->tcp);
  uv_timer_init(m->loop, &l->timer);
  l->tcp.data = l->timer.data = l;
  l->handles_open = 2;
  l->next = m->links;
  m->links = l;
  return l;
}

static int start_session(p2p_link *l) {
  int rc = session_new(!l->inbound, l->m->me, l->has_expected ? l->expected : NULL, &l->m->params, now_ms(l->m),
                       &l->s);
  if (rc) return rc;
  uv_tcp_nodelay(&l->tcp, 1);
  uv_tcp_keepalive(&l->tcp, 1, 60);
  rc = uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
  if (rc) return rc;
  after_engine(l);
  return 0;
}

static int handshakes_in_progress(const link_mgr *m) {
  int n = 0;
  for (p2p_link *l = m->links; l; l = l->next) n += l->inbound && !l->ready && !l->closing;
  return n;
}

/* Token bucket per source IP: LINK_ACCEPT_BURST deep, refilled at LINK_ACCEPT_RATE/s. */
static int rate_ok(link_mgr *m, uint32_t ip) {
  rate_slot *r = &m->rate[((ip * 2654435761u) >> 24) % RATE_SLOTS];
  uint64_t now = now_ms(m);
  if (r->ip != ip) {
    r->ip = ip;
    r->tokens = m->accept_burst;
    r->at = now;
  }
  r->tokens += (double)(now - r->at) * m->accept_rate / 1000.0;
  if (r->tokens > m->accept_burst) r->tokens = m->accept_burst;
  r->at = now;
  if (r->tokens < 1.0) return 0;
  r->tokens -= 1.0;
  return 1;
}

static void on_connection(uv_stream_t *server, int status) {
  link_mgr *m = server->data;
  if (status < 0 || m->closing) return;
  p2p_link *l = link_alloc(m, 1);
  if (!l) return;
  if (uv_accept(server, (uv_stream_t *)&l->tcp)) { link_destroy(l, ERR_INVAL, "accept failed"); return; }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int len = sizeof ss;
  if (uv_tcp_getpeername(&l->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
    char ip[INET_ADDRSTRLEN];
    uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
    snprintf(l->addr, sizeof l->addr, "%s:%u", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  }
  uint32_t ip = ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_addr.s_addr : 0;
  if (!rate_ok(m, ip)) {
    m->stats.refused_rate++;
    link_destroy(l, ERR_TOOBIG, "connection rate limit");
    return;
  }
  if (handshakes_in_progress(m) > LINK_MAX_HANDSHAKES) {
    m->stats.refused_handshakes++;
    link_destroy(l, ERR_TOOBIG, "too many handshakes in progress");
    return;
  }
  m->stats.accepted++;
  int rc = start_session(l);
  if (rc) link_destroy(l, rc, "cannot start a session");
}

static void on_connect_timeout(uv_timer_t *t) {
  p2p_link *l = t->data;
  if (!l->s) link_destroy(l, UV_ETIMEDOUT, "connect timed out");
}

static void on_connect(uv_connect_t *req, int status) {
  p2p_link *l = req->data;
  if (l->closing) return;
  uv_timer_stop(&l->timer);
  if (status < 0) { link_destroy(l, status, uv_strerror(status)); return; }
  int rc = start_session(l);
  if (rc) link_destroy(l, rc, "cannot start a session");
}

int link_mgr_new(uv_loop_t *loop, const ident *me, const link_callbacks *cb, void *ud, link_mgr **out) {
  link_mgr *m = calloc(1, sizeof *m);
  if (!m) return ERR_NOMEM;
  m->loop = loop;
  m->me = me;
  session_default_params(&m->params);
  m->connect_timeout_ms = LINK_CONNECT_TIMEOUT_MS;
  m->accept_rate = LINK_ACCEPT_RATE;
  m->accept_burst = LINK_ACCEPT_BURST;
  m->cb = *cb;
  m->ud = ud;
  *out = m;
  return 0;
}

static int parse_addr(const char *addr, struct sockaddr_in *out) {
  char host[64];
  const char *c = strrchr(addr, ':');
  if (!c || (size_t)(c - addr) >= sizeof host) return UV_EINVAL;
  memcpy(host, addr, (size_t)(c - addr));
  host[c - addr] = 0;
  char *end;
  long port = strtol(c + 1, &end, 10);
  if (*end || port < 0 || port > 65535) return UV_EINVAL;
  return uv_ip4_addr(host, (int)port, out);
}

int link_mgr_listen(link_mgr *m, const char *addr) {
  struct sockaddr_in a;
  int rc = parse_addr(addr, &a);
  if (rc) return rc;
  uv_tcp_init(m->loop, &m->listener);
  m->listener.data = m;
  m->listening = 1;
  if ((rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&a, 0)) ||
      (rc = uv_listen((uv_stream_t *)&m->listener, 128, on_connection)))
    return rc;
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(&m->listener, (struct sockaddr *)&got, &len);
  m->port = ntohs(got.sin_port);
  return 0;
}

uint16_t link_mgr_port(const link_mgr *m) { return m->port; }

static void on_mgr_closed(uv_handle_t *h) { free(h->data); }

void link_mgr_close(link_mgr *m) {
  if (!m) return;
  m->closing = 1;
  while (m->links) {
    p2p_link *l = m->links;
    if (l->s && session_get_state(l->s) == SESSION_OPEN) {
      session_close(l->s, SESSION_CLOSE_SHUTDOWN, "node stopping", now_ms(m));
      flush(l);
    }
    link_destroy(l, 0, "shutdown");
  }
  if (m->listening) uv_close((uv_handle_t *)&m->listener, on_mgr_closed);
  else free(m);
}

void link_mgr_stats(const link_mgr *m, link_stats *out) { *out = m->stats; }

void link_mgr_set_accept_limits(link_mgr *m, double per_second, double burst) {
  m->accept_rate = per_second;
  m->accept_burst = burst;
}

void link_mgr_set_timing(link_mgr *m, uint64_t keepalive_ms, uint64_t idle_timeout_ms, uint64_t connect_timeout_ms) {
  if (keepalive_ms) m->params.keepalive_ms = keepalive_ms;
  if (idle_timeout_ms) m->params.idle_timeout_ms = idle_timeout_ms;
  if (connect_timeout_ms) m->connect_timeout_ms = connect_timeout_ms;
}

p2p_link *link_find(link_mgr *m, const uint8_t pk[32]) {
  for (p2p_link *l = m->links; l; l = l->next)
    if (l->ready && !l->closing && !memcmp(session_remote_pk(l->s), pk, 32)) return l;
  return NULL;
}

int link_dial(link_mgr *m, const uint8_t *pk, const char *addr) {
  if (pk && link_find(m, pk)) return 1;
  struct sockaddr_in a;
  int rc = parse_addr(addr, &a);
  if (rc) return rc;
  p2p_link *l = link_alloc(m, 0);
  if (!l) return ERR_NOMEM;
  if (pk) {
    memcpy(l->expected, pk, 32);
    l->has_expected = 1;
  }
  snprintf(l->addr, sizeof l->addr, "%s", addr);
  l->conn_req.data = l;
  m->stats.dialled++;
  rc = uv_tcp_connect(&l->conn_req, &l->tcp, (const struct sockaddr *)&a, on_connect);
  if (rc) link_destroy(l, rc, uv_strerror(rc));
  else uv_timer_start(&l->timer, on_connect_timeout, m->connect_timeout_ms, 0);
  return 0;
}

int link_send(p2p_link *l, const uint8_t *data, size_t len) {
  if (!l->ready || l->closing) return ERR_INVAL;
  if (queued(l) > SESSION_HIGH_WATER) return ERR_TOOBIG;
  int rc = session_send(l->s, data, len, now_ms(l->m));
  if (rc) return rc;
  flush(l);
  arm_timer(l);
  return 0;
}

void link_close(p2p_link *l, const char *reason) {
  if (l->closing) return;
  if (session_get_state(l->s) == SESSION_OPEN) {
    session_close(l->s, SESSION_CLOSE_NORMAL, reason, now_ms(l->m));
    flush(l);
    if (queued(l) > 0) { l->ready = 0; return; } /* on_written finishes it once CLOSE is out */
  }
  link_destroy(l, 0, reason);
}

const uint8_t *link_remote_pk(const p2p_link *l) { return session_remote_pk(l->s); }
int link_is_inbound(const p2p_link *l) { return l->inbound; }
void link_set_data(p2p_link *l, void *data) { l->data = data; }
void *link_get_data(const p2p_link *l) { return l->data; }

int link_dialling(const link_mgr *m, const uint8_t *pk, const char *addr) {
  for (p2p_link *l = m->links; l; l = l->next) {
    if (l->ready || l->closing || l->inbound) continue;
    if (pk && l->has_expected && !memcmp(l->expected, pk, 32)) return 1;
    if (addr && !strcmp(l->addr, addr)) return 1;
  }
  return 0;
}

int link_count(const link_mgr *m) {
  int n = 0;
  for (p2p_link *l = m->links; l; l = l->next) n += l->ready && !l->closing;
  return n;
}
