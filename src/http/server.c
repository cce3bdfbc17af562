/* http/server — libmicrohttpd glue: auth, routing, body caps, OpenAI-style errors. */
#include "http/server.h"

#include <arpa/inet.h>
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

struct http_server {
  struct MHD_Daemon *d;
  http_opts o;
  uint16_t port;
  pthread_mutex_t amu;          /* guards addrs (the listener and the connection threads) */
  struct { uint8_t a[16]; int len; unsigned n; } addrs[MAX_ADDRS]; /* open connections per address */
};

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
  (void)sctx;
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
} conn_state;

static _Thread_local http_log *cur_log; /* the request this connection thread handles */
static _Thread_local const char *cur_origin; /* its Origin, when allowed (borrowed from the server) */

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

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

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

int http__send_busy(struct MHD_Connection *c, const char *message) {
  /* A client told to come back is first held a moment (its connection's thread sleeps, no
   * CPU): one that ignores Retry-After and asks again at once cannot turn the door into a
   * loop of refusals that takes the cores from the generations it waits for. */
  struct timespec hold = {.tv_sec = 0, .tv_nsec = HTTP_BUSY_HOLD_MS * 1000000L};
  nanosleep(&hold, NULL);
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
  enum MHD_Result ret = (enum MHD_Result)route->fn(&req, route->data);
  cur_log = NULL;
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
  buf_deinit(&cs->body);
  free(cs);
  *con_cls = NULL;
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
  /* A thread per connection, each with a small stack (handlers only wait on streams: the
   * work is the worker's), many of them, and a short idle limit: a crowd of idle or slow
   * connections cannot lock token holders out (the token is checked as soon as headers
   * arrive, and what fails it is closed at once). */
  pthread_mutex_init(&s->amu, NULL);
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
                          on_accept, s, on_request, s, MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_EXTERNAL_LOGGER,
                          on_mhd_log, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_NOTIFY_COMPLETED,
                          on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
                          o->max_connections ? o->max_connections : 512u, MHD_OPTION_CONNECTION_TIMEOUT,
                          o->idle_timeout_s ? o->idle_timeout_s : 30u, MHD_OPTION_THREAD_STACK_SIZE,
                          (size_t)(1u << 20), MHD_OPTION_END);
  if (!s->d) {
    snprintf(err, cap, "cannot listen for HTTP on %s (in use? set [http] listen in config.toml)", o->listen);
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
  MHD_stop_daemon(s->d);
  pthread_mutex_destroy(&s->amu);
  free(s);
}

uint16_t http_port(const http_server *s) { return s->port; }
