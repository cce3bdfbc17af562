/* http/server — libmicrohttpd glue: auth, routing, body caps, OpenAI-style errors, and
 * parking: a request that waits has its connection suspended and is resumed by a
 * producer's notification (http__wake) or by the timer thread (ticker) at its deadline.
 *
 * Each connection has a waker (its socket context, reference counted so a producer may
 * still hold it after the connection, or the whole server, is gone). Its own mutex guards
 * refs and c; c is non-NULL only while the connection (hence the server) lives, so the
 * server is touched only under that mutex with c set, or from MHD's callbacks. suspended,
 * pending, due and the list are under the server's wmu (taken after a waker's mutex). The
 * one who turns suspended from 1 to 0 (a wake, the ticker, the suspender itself when a wake
 * came first) is the one who calls MHD_resume_connection, outside every lock. */
#include "http/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "http/metrics.h"
#include "http/openai.h"

#define MAX_ADDRS 256
#define HTTP_BUSY_HOLD_MS 100 /* how long a 429 is held before it is sent */
#define HTTP_TICK_MS 10       /* deadlines are rounded up to this: the ticker wakes at most 100 times a
                                 second and resumes everything due at once (fewer wake-ups on the
                                 cores the generations use) */

typedef struct http_waker http_waker;
struct http_waker {
  pthread_mutex_t mu;           /* guards refs and c */
  http_server *srv;
  struct MHD_Connection *c;     /* NULL once the connection closed (set to NULL under mu and wmu) */
  int refs;                     /* the connection's + each producer hook's */
  int suspended;                /* suspended by us, in srv->sleeping */
  int pending;                  /* a wake came while it was not suspended */
  uint64_t due_ms;              /* the ticker resumes it then */
  http_waker *prev, *next;      /* in srv->sleeping */
};

struct http_server {
  struct MHD_Daemon *d;
  http_opts o;
  uint16_t port;
  pthread_mutex_t amu;          /* guards addrs (the listener and the connection threads) */
  struct { uint8_t a[16]; int len; unsigned n; } addrs[MAX_ADDRS]; /* open connections per address */
  pthread_mutex_t wmu;          /* guards every waker, sleeping, stopping, tick_due */
  pthread_cond_t wcv;           /* wakes the ticker (monotonic clock) */
  http_waker *sleeping;         /* suspended connections */
  int stopping;
  uint64_t tick_due;            /* when the ticker wakes next */
  int resuming;                 /* wakes between their unlock and MHD_resume_connection */
  pthread_t ticker;
};

uint64_t http__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- wakers (wmu held for the list helpers) ------------------------------------------ */

static void sleep_unlink(http_server *s, http_waker *w) {
  if (w->prev) w->prev->next = w->next;
  else s->sleeping = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = NULL;
  w->suspended = 0;
}

void *http__waker(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  http_waker *w = ci ? ci->socket_context : NULL;
  if (!w) return NULL;
  pthread_mutex_lock(&w->mu);
  w->refs++;
  pthread_mutex_unlock(&w->mu);
  return w;
}

void http__waker_unref(void *arg) {
  http_waker *w = arg;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  int left = --w->refs;
  pthread_mutex_unlock(&w->mu);
  if (left) return;
  pthread_mutex_destroy(&w->mu);
  free(w);
}

void http__wake(void *arg) {
  http_waker *w = arg;
  if (!w) return;
  http_server *s = w->srv; /* (touched only while w->c says it lives, or while resuming holds it) */
  struct MHD_Connection *resume = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->c) { /* the connection, and so the server, is still there */
    pthread_mutex_lock(&s->wmu);
    if (w->suspended) {
      sleep_unlink(s, w);
      resume = w->c;
      s->resuming++; /* http_stop waits for it: the connection stays until resumed */
    } else {
      w->pending = 1;
    }
    pthread_mutex_unlock(&s->wmu);
  }
  pthread_mutex_unlock(&w->mu);
  if (!resume) return;
  MHD_resume_connection(resume);
  pthread_mutex_lock(&s->wmu);
  if (!--s->resuming && s->stopping) pthread_cond_broadcast(&s->wcv); /* (not the ticker's business otherwise) */
  pthread_mutex_unlock(&s->wmu);
}

int http__suspend(struct MHD_Connection *c, unsigned ms) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  http_waker *w = ci ? ci->socket_context : NULL;
  if (!w) return ERR_INVAL;
  http_server *s = w->srv;
  pthread_mutex_lock(&s->wmu);
  int stopping = s->stopping;
  pthread_mutex_unlock(&s->wmu);
  if (stopping) return ERR_CANCELED;
  MHD_suspend_connection(c);
  pthread_mutex_lock(&s->wmu);
  /* news that came since the last wait (or between the two locks): resumed at once, which
   * has MHD call the handler or reader again (returning 0 unsuspended would leave that to
   * its polling) */
  int resume_now = w->pending || s->stopping;
  w->pending = 0;
  if (!resume_now) {
    w->suspended = 1;
    w->due_ms = (http__now_ms() + ms + HTTP_TICK_MS - 1) / HTTP_TICK_MS * HTTP_TICK_MS;
    w->prev = NULL;
    w->next = s->sleeping;
    if (s->sleeping) s->sleeping->prev = w;
    s->sleeping = w;
    if (w->due_ms < s->tick_due) pthread_cond_signal(&s->wcv);
  }
  pthread_mutex_unlock(&s->wmu);
  if (resume_now) MHD_resume_connection(c);
  return 0;
}

/* The timer thread: resumes each suspended connection at its deadline (so it can look
 * whether its client left, or send a keepalive); when stopping, all of them. */
static void *ticker(void *arg) {
  http_server *s = arg;
  enum { BATCH = 64 };
  struct MHD_Connection *due[BATCH];
  pthread_mutex_lock(&s->wmu);
  for (;;) {
    uint64_t now = http__now_ms(), next = now + 1000;
    int n = 0;
    for (http_waker *w = s->sleeping, *nx; w && n < BATCH; w = nx) {
      nx = w->next;
      if (s->stopping || w->due_ms <= now) {
        sleep_unlink(s, w);
        due[n++] = w->c;
      } else if (w->due_ms < next) {
        next = w->due_ms;
      }
    }
    if (n) { /* resume outside the lock, then look again */
      pthread_mutex_unlock(&s->wmu);
      for (int i = 0; i < n; i++) MHD_resume_connection(due[i]);
      pthread_mutex_lock(&s->wmu);
      continue;
    }
    if (s->stopping) break;
    s->tick_due = next;
    struct timespec ts = {.tv_sec = (time_t)(next / 1000), .tv_nsec = (long)(next % 1000) * 1000000L};
    pthread_cond_timedwait(&s->wcv, &s->wmu, &ts);
    s->tick_due = 0;
  }
  pthread_mutex_unlock(&s->wmu);
  return NULL;
}

/* The client address of sa as bytes (4 or 16); 0 for 127.0.0.1 and ::1, which are exempt
 * from the per-address cap (every local client shares them). */
static int addr_bytes(const struct sockaddr *sa, uint8_t out[16]) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    if (ntohl(v4->sin_addr.s_addr) == 0x7f000001) return 0;
    memcpy(out, &v4->sin_addr, 4);
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
    if (IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return 0;
    memcpy(out, &v6->sin6_addr, 16);
    return 16;
  }
  return 0;
}

/* The count slot of an address (created when asked to); NULL when the table is full. */
static unsigned *addr_slot(http_server *s, const uint8_t *a, int len, int create) {
  int free_i = -1;
  for (int i = 0; i < MAX_ADDRS; i++) {
    if (s->addrs[i].len == len && !memcmp(s->addrs[i].a, a, (size_t)len)) return &s->addrs[i].n;
    if (free_i < 0 && (!s->addrs[i].len || !s->addrs[i].n)) free_i = i;
  }
  if (!create || free_i < 0) return NULL;
  memcpy(s->addrs[free_i].a, a, (size_t)len);
  s->addrs[free_i].len = len;
  s->addrs[free_i].n = 0;
  return &s->addrs[free_i].n;
}

/* A new connection: refused when its address has [http] max_per_address open already. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *sa, socklen_t len) {
  http_server *s = cls;
  (void)len;
  uint8_t a[16];
  int n = addr_bytes(sa, a);
  if (!n || !s->o.max_per_address) return MHD_YES;
  pthread_mutex_lock(&s->amu);
  unsigned *c = addr_slot(s, a, n, 0);
  int ok = !c || *c < s->o.max_per_address;
  pthread_mutex_unlock(&s->amu);
  return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sctx, enum MHD_ConnectionNotificationCode toe) {
  http_server *s = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    http_waker *w = calloc(1, sizeof *w); /* NULL: this connection cannot park (its waits close it) */
    if (w) pthread_mutex_init(&w->mu, NULL), w->srv = s, w->c = c, w->refs = 1;
    *sctx = w;
  } else if (*sctx) {
    http_waker *w = *sctx;
    pthread_mutex_lock(&w->mu);
    pthread_mutex_lock(&s->wmu);
    if (w->suspended) sleep_unlink(s, w);
    w->c = NULL;
    pthread_mutex_unlock(&s->wmu);
    pthread_mutex_unlock(&w->mu);
    http__waker_unref(w);
    *sctx = NULL;
  }
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  uint8_t a[16];
  int n = ci && ci->client_addr ? addr_bytes(ci->client_addr, a) : 0;
  if (!n) return;
  pthread_mutex_lock(&s->amu);
  unsigned *cnt = addr_slot(s, a, n, toe == MHD_CONNECTION_NOTIFY_STARTED);
  if (cnt && toe == MHD_CONNECTION_NOTIFY_STARTED) (*cnt)++;
  else if (cnt && *cnt) (*cnt)--;
  pthread_mutex_unlock(&s->amu);
}

/* libmicrohttpd's own messages go to our log (debug), never raw to the user. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[300];
  vsnprintf(msg, sizeof msg, fmt, ap);
  msg[strcspn(msg, "\n")] = 0;
  log_debug("libmicrohttpd: %s", msg);
}

typedef struct conn_state {
  buf body;
  int too_big;
  int answered;           /* refused as soon as the headers came: the body is never read */
  char method[8];
  char path[96];
  uint64_t start_ms;
  http_log lg;            /* its log line */
  http_cont_fn cont;      /* parked: called when resumed (http__wait) */
  void *cont_ud;
  void (*cont_free)(void *ud);
  int parked;             /* http__wait was called during this call of the handler */
} conn_state;

static _Thread_local http_log *cur_log; /* the request this pool thread handles now */
static _Thread_local const char *cur_origin; /* its Origin, when allowed (borrowed from the server) */
static _Thread_local conn_state *cur_cs; /* its state */

http_log *http__log(void) { return cur_log; }

void http__cors(struct MHD_Response *r) {
  if (!cur_origin) return;
  MHD_add_response_header(r, "Access-Control-Allow-Origin", cur_origin);
  MHD_add_response_header(r, "Vary", "Origin");
}

/* The allowed origin equal to the request's Origin header (the server's copy), or NULL. */
static const char *allowed_origin(const http_server *s, struct MHD_Connection *c) {
  const char *o = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
  for (size_t i = 0; o && i < s->o.n_cors; i++)
    if (!strcmp(s->o.cors_origins[i], o)) return s->o.cors_origins[i];
  return NULL;
}

/* A browser's preflight (OPTIONS with Access-Control-Request-Method): answered without a
 * token, as browsers send none; an origin not in [http] cors_origins is a 403. */
static enum MHD_Result preflight(const http_server *s, struct MHD_Connection *c) {
  const char *o = allowed_origin(s, c);
  if (!o) {
    if (cur_log) cur_log->status = 403;
    return (enum MHD_Result)http__send_error(c, 403, "permission_error", "origin_not_allowed",
                                             "this origin may not call the API: add it to [http] cors_origins");
  }
  struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(r, "Access-Control-Allow-Origin", o);
  MHD_add_response_header(r, "Vary", "Origin");
  MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  MHD_add_response_header(r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
  MHD_add_response_header(r, "Access-Control-Max-Age", "600");
  if (cur_log) cur_log->status = 204;
  enum MHD_Result ret = MHD_queue_response(c, 204, r);
  MHD_destroy_response(r);
  return ret;
}

#define mono_ms http__now_ms

static int unauthorized(struct MHD_Connection *c, const char *authz) {
  return http__send_error(c, 401, "authentication_error", "invalid_api_key",
                          authz ? "invalid or revoked API token"
                                : "missing bearer token: send 'Authorization: Bearer <token>' (create one with 'apiary "
                                  "token create')");
}

/* The client closed its end (a hang-up or a reset): nobody will read an answer. */
int http__client_gone(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci) return 0;
  struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
  if (poll(&p, 1, 0) <= 0) return 0;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return 1;
  char b;
  return (p.revents & POLLIN) && recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int http__send_json(struct MHD_Connection *c, unsigned status, json_t *j) {
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!text) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  http__cors(r);
  if (cur_log) cur_log->status = status;
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

int http__wait(struct MHD_Connection *c, http_cont_fn fn, void *ud, void (*free_fn)(void *ud), unsigned ms) {
  conn_state *cs = cur_cs;
  assert(cs); /* only from a handler or its continuation */
  if (cs->cont && cs->cont_ud != ud && cs->cont_free) cs->cont_free(cs->cont_ud);
  cs->cont = fn;
  cs->cont_ud = ud;
  cs->cont_free = free_fn;
  cs->parked = 1;
  if (http__suspend(c, ms)) return MHD_NO; /* stopping, or no waker: close (cont_free runs at the end) */
  return MHD_YES;
}

int http__run(const http_request *req, http_cont_fn fn, void *ud, void (*free_fn)(void *ud)) {
  conn_state *cs = cur_cs;
  if (cs) cs->parked = 0;
  int ret = fn(req, ud);
  if (!cs || !cs->parked) free_fn(ud);
  return ret;
}

typedef struct busy_hold {
  uint64_t until_ms;
  char message[];
} busy_hold;

static int send_busy_now(struct MHD_Connection *c, const char *message) {
  json_t *j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", message, "type", "rate_limit_error", "param",
                        "code", "rate_limit_exceeded");
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!text) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "Retry-After", "1");
  http__cors(r);
  if (cur_log) cur_log->status = 429;
  enum MHD_Result ret = MHD_queue_response(c, 429, r);
  MHD_destroy_response(r);
  return ret;
}

static int busy_step(const http_request *req, void *ud) {
  busy_hold *h = ud;
  uint64_t now = http__now_ms();
  if (now < h->until_ms) return http__wait(req->conn, busy_step, h, free, (unsigned)(h->until_ms - now));
  return send_busy_now(req->conn, h->message);
}

int http__send_busy(struct MHD_Connection *c, const char *message) {
  /* A client told to come back is first held a moment (parked: no thread, no CPU): one
   * that ignores Retry-After and asks again at once cannot turn the door into a loop of
   * refusals that takes the cores from the generations it waits for. */
  size_t len = strlen(message);
  busy_hold *h = malloc(sizeof *h + len + 1);
  if (!h || !cur_cs) {
    free(h);
    return send_busy_now(c, message);
  }
  h->until_ms = http__now_ms() + HTTP_BUSY_HOLD_MS;
  memcpy(h->message, message, len + 1);
  return http__wait(c, busy_step, h, free, HTTP_BUSY_HOLD_MS);
}

void http__gen_watch(struct MHD_Connection *c, gen_stream *src, int text) {
  void *w = http__waker(c);
  if (w) http__waker_unref(gen_set_notify(src, http__wake, w, text));
}

void http__gen_release(gen_stream *src) {
  if (!src) return;
  void *w = gen_set_notify(src, NULL, NULL, 0);
  gen_release(src);
  http__waker_unref(w);
}

int http__send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *code,
                     const char *message) {
  return http__send_json(c, status,
                         json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", message, "type", type, "param",
                                   "code", code));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  http_server *s = cls;
  (void)version;
  conn_state *cs = *con_cls;
  if (!cs) {
    cs = calloc(1, sizeof *cs);
    if (!cs) return MHD_NO;
    buf_init(&cs->body);
    *con_cls = cs;
    snprintf(cs->method, sizeof cs->method, "%s", method);
    snprintf(cs->path, sizeof cs->path, "%s", url);
    cs->start_ms = mono_ms();
    cur_log = &cs->lg;
    cur_origin = allowed_origin(s, c);
    if (!strcmp(method, "OPTIONS") && MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Method")) {
      cs->answered = 1;
      enum MHD_Result pre = preflight(s, c);
      cur_log = NULL;
      return pre;
    }
    /* The headers are here: refuse what cannot be served before reading any body (a
     * stranger's 1 GB upload costs us nothing). */
    const http_route *rt0 = NULL;
    char allow0[64];
    http_match m0 = http_route_find(s->o.routes, method, url, &rt0, allow0, sizeof allow0);
    const char *authz0 = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    enum MHD_Result early = MHD_YES;
    if (!(m0 == HTTP_MATCH_OK && (rt0->flags & HTTP_ROUTE_PUBLIC)) && auth_check(s->o.auth, authz0)) {
      cs->answered = 1;
      early = (enum MHD_Result)unauthorized(c, authz0);
    } else {
      const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
      if (clen && strtoull(clen, NULL, 10) > HTTP_MAX_BODY) {
        cs->answered = 1;
        early = (enum MHD_Result)http__send_error(c, 413, "invalid_request_error", "request_too_large",
                                                  "request body is larger than 4 MiB");
      }
    }
    cur_log = NULL;
    return early;
  }
  if (cs->cont && !*upload_size) { /* resumed: go on where the handler parked */
    cur_log = &cs->lg;
    cur_origin = allowed_origin(s, c);
    cur_cs = cs;
    http_request req = {.conn = c, .method = method, .path = url, .body = (const char *)cs->body.ptr,
                        .body_len = cs->body.len, .models_dir = s->o.models_dir, .node_id = s->o.node_id,
                        .gen = s->o.gen, .remote_models = s->o.remote_models, .remote_ud = s->o.remote_ud};
    cs->parked = 0;
    enum MHD_Result ret = (enum MHD_Result)cs->cont(&req, cs->cont_ud);
    if (!cs->parked) { /* answered (or gave up): the state is no longer needed */
      void (*f)(void *) = cs->cont_free;
      void *ud = cs->cont_ud;
      cs->cont = NULL, cs->cont_ud = NULL, cs->cont_free = NULL;
      if (f) f(ud);
    }
    cur_log = NULL;
    cur_cs = NULL;
    return ret;
  }
  if (cs->answered) { /* refused already: whatever else comes is dropped */
    *upload_size = 0;
    return MHD_YES;
  }
  if (*upload_size) {
    if (cs->body.len + *upload_size > HTTP_MAX_BODY) cs->too_big = 1;
    else if (buf_append(&cs->body, upload, *upload_size)) cs->too_big = 1;
    *upload_size = 0;
    return MHD_YES;
  }
  const http_route *route = NULL;
  char allow[64];
  cur_log = &cs->lg; /* (left set on the early returns below: this thread serves only this request) */
  cur_origin = allowed_origin(s, c);
  http_match m = http_route_find(s->o.routes, method, url, &route, allow, sizeof allow);
  const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (!(m == HTTP_MATCH_OK && (route->flags & HTTP_ROUTE_PUBLIC)) && auth_check(s->o.auth, authz))
    return (enum MHD_Result)unauthorized(c, authz); /* (revoked while the body came) */
  if (cs->too_big)
    return (enum MHD_Result)http__send_error(c, 413, "invalid_request_error", "request_too_large",
                                             "request body is larger than 4 MiB");
  if (m == HTTP_MATCH_NONE)
    return (enum MHD_Result)http__send_error(c, 404, "invalid_request_error", "unknown_url", "no such endpoint");
  if (m == HTTP_MATCH_METHOD) {
    char msg[200];
    snprintf(msg, sizeof msg, "use %s %s", allow, url);
    json_t *j = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", msg, "type", "invalid_request_error",
                          "param", "code", "method_not_allowed");
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Allow", allow);
    http__cors(r);
    cs->lg.status = 405;
    enum MHD_Result ret = MHD_queue_response(c, 405, r);
    MHD_destroy_response(r);
    return ret;
  }
  http_request req = {.conn = c, .method = method, .path = url, .body = (const char *)cs->body.ptr,
                      .body_len = cs->body.len, .models_dir = s->o.models_dir, .node_id = s->o.node_id,
                      .gen = s->o.gen, .remote_models = s->o.remote_models, .remote_ud = s->o.remote_ud,
                      .privacy = auth_privacy(s->o.auth, authz)};
  cur_log = &cs->lg;
  cur_cs = cs;
  cs->parked = 0;
  enum MHD_Result ret = (enum MHD_Result)route->fn(&req, route->data);
  cur_log = NULL;
  cur_cs = NULL;
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  conn_state *cs = *con_cls;
  if (!cs) return;
  /* One line per request: who served what for how much, never the prompt. */
  const http_log *l = &cs->lg;
  char extra[300] = "";
  if (l->model[0])
    snprintf(extra, sizeof extra, " model=%s served=%s%s%.24s prompt_tokens=%d completion_tokens=%d wei=%llu", l->model,
             l->served[0] ? l->served : "-", l->node[0] ? " by=" : "", l->node, l->prompt_tokens, l->completion_tokens,
             (unsigned long long)l->wei);
  uint64_t ms = mono_ms() - cs->start_ms;
  log_info("api %s %s %u%s%s %llu ms", cs->method, cs->path, l->status,
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client gone)", extra, (unsigned long long)ms);
  http_metrics_request(cs->method, l->status, l->model[0] && l->status == 200 ? (double)ms / 1000.0 : -1);
  if (l->model[0] && l->status == 200)
    http_metrics_generation(!strcmp(l->served, "network"), (uint64_t)l->prompt_tokens, (uint64_t)l->completion_tokens,
                            l->wei);
  if (cur_log == &cs->lg) cur_log = NULL;
  if (cur_cs == cs) cur_cs = NULL;
  if (cs->cont_free) cs->cont_free(cs->cont_ud); /* parked when the connection ended */
  buf_deinit(&cs->body);
  free(cs);
  *con_cls = NULL;
}

/* Stops the timer thread after it resumed every suspended connection; from now on nothing
 * parks (http__suspend says ERR_CANCELED). */
static void stop_ticker(http_server *s) {
  pthread_mutex_lock(&s->wmu);
  s->stopping = 1;
  pthread_cond_signal(&s->wcv);
  pthread_mutex_unlock(&s->wmu);
  pthread_join(s->ticker, NULL);
  pthread_mutex_lock(&s->wmu);
  while (s->resuming) pthread_cond_wait(&s->wcv, &s->wmu);
  pthread_mutex_unlock(&s->wmu);
}

int http_start(const http_opts *o, http_server **out, char *err, size_t cap) {
  char host[64];
  const char *colon = strrchr(o->listen, ':');
  if (!colon || (size_t)(colon - o->listen) >= sizeof host) {
    snprintf(err, cap, "bad HTTP listen address '%s': expected ADDR:PORT", o->listen);
    return ERR_INVAL;
  }
  memcpy(host, o->listen, (size_t)(colon - o->listen));
  host[colon - o->listen] = 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    snprintf(err, cap, "bad HTTP listen address '%s': expected an IPv4 ADDR:PORT", o->listen);
    return ERR_INVAL;
  }
  if (!o->routes) {
    snprintf(err, cap, "no HTTP routes");
    return ERR_INVAL;
  }
  http_server *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  s->o = *o;
  /* A small pool of threads, each polling many connections (epoll): a handler never blocks
   * one (waits park the request, see http__wait), so a crowd of idle, slow or waiting
   * connections costs memory, not threads. A short idle limit, and the token checked as soon
   * as headers arrive (what fails it is closed at once): such a crowd cannot lock token
   * holders out. */
  pthread_mutex_init(&s->amu, NULL);
  pthread_mutex_init(&s->wmu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->wcv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&s->ticker, NULL, ticker, s)) {
    snprintf(err, cap, "cannot start the HTTP timer thread");
    pthread_cond_destroy(&s->wcv);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->amu);
    free(s);
    return ERR_NOMEM;
  }
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                              MHD_USE_ERROR_LOG,
                          0, on_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_EXTERNAL_LOGGER,
                          on_mhd_log, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_NOTIFY_COMPLETED,
                          on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                          o->max_connections ? o->max_connections : 512u, MHD_OPTION_CONNECTION_TIMEOUT,
                          o->idle_timeout_s ? o->idle_timeout_s : 30u, MHD_OPTION_THREAD_POOL_SIZE,
                          o->threads ? o->threads : 4u, MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20),
                          MHD_OPTION_END);
  if (!s->d) {
    snprintf(err, cap, "cannot listen for HTTP on %s (in use? set [http] listen in config.toml)", o->listen);
    stop_ticker(s);
    pthread_cond_destroy(&s->wcv);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->amu);
    free(s);
    return ERR_EXISTS;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : (uint16_t)port;
  *out = s;
  return 0;
}

void http_stop(http_server *s) {
  if (!s) return;
  stop_ticker(s); /* every parked request is resumed and closes (none may stay suspended) */
  MHD_stop_daemon(s->d);
  pthread_cond_destroy(&s->wcv);
  pthread_mutex_destroy(&s->wmu);
  pthread_mutex_destroy(&s->amu);
  free(s);
}

uint16_t http_port(const http_server *s) { return s->port; }
