/* node/control — control socket server (libuv) and blocking client; see control.h. */
#include "node/control.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"

typedef struct ctl_method {
  const char *name;
  ctl_method_fn fn;
  void *ud;
} ctl_method;

typedef struct ctl_conn ctl_conn;

struct ctl_server {
  uv_pipe_t pipe;          /* listening socket */
  ctl_method methods[64];
  size_t n_methods;
  ctl_conn *conns;         /* live connections (list) */
  int n_conns;
  int stopping;
};

struct ctl_conn {
  uv_pipe_t pipe;
  ctl_server *srv;
  buf in;                  /* bytes of an incomplete line */
  ctl_conn *next;
  int refs;                /* 1 for the open connection + 1 per outstanding request */
  int closed;
};

struct ctl_req {
  ctl_conn *conn;
  json_t *id;              /* owned copy of the request id */
};

typedef struct write_req {
  uv_write_t w;
  char *data;
} write_req;

static void conn_unref(ctl_conn *c) {
  if (--c->refs == 0) {
    buf_deinit(&c->in);
    free(c);
  }
}

static void on_conn_closed(uv_handle_t *h) { conn_unref((ctl_conn *)h->data); }

static void conn_close(ctl_conn *c) {
  if (c->closed) return;
  c->closed = 1;
  ctl_server *s = c->srv;
  for (ctl_conn **p = &s->conns; *p; p = &(*p)->next)
    if (*p == c) { *p = c->next; break; }
  s->n_conns--;
  uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static void on_written(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  free(wr->data);
  free(wr);
  (void)status;
}

static void conn_send(ctl_conn *c, json_t *msg) {
  char *s = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!s || c->closed) { free(s); return; }
  size_t n = strlen(s);
  char *line = realloc(s, n + 2);
  if (!line) { free(s); return; }
  line[n] = '\n';
  line[n + 1] = 0;
  write_req *wr = calloc(1, sizeof *wr);
  if (!wr) { free(line); return; }
  wr->data = line;
  uv_buf_t b = uv_buf_init(line, (unsigned)(n + 1));
  if (uv_write(&wr->w, (uv_stream_t *)&c->pipe, &b, 1, on_written)) {
    free(line);
    free(wr);
  }
}

static void finish(ctl_req *req, json_t *body_key_value /* "result"/"error" object */, const char *key) {
  ctl_conn *c = req->conn;
  json_t *msg = json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", req->id ? req->id : json_null(), key,
                          body_key_value);
  if (msg) conn_send(c, msg);
  free(req);
  conn_unref(c);
}

void ctl_reply_ok(ctl_req *req, json_t *result) { finish(req, result ? result : json_null(), "result"); }

void ctl_reply_err(ctl_req *req, int code, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  finish(req, json_pack("{s:i, s:s}", "code", code, "message", msg), "error");
}

static void dispatch_line(ctl_conn *c, const char *line, size_t len) {
  json_error_t je;
  json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
  ctl_req *req = calloc(1, sizeof *req);
  if (!req) { json_decref(msg); return; }
  req->conn = c;
  c->refs++;
  if (!msg) { ctl_reply_err(req, CTL_PARSE_ERROR, "parse error: %s", je.text); return; }
  json_t *id = json_object_get(msg, "id");
  if (id) req->id = json_deep_copy(id);
  json_t *method = json_object_get(msg, "method");
  json_t *params = json_object_get(msg, "params");
  if (!json_is_object(msg) || !json_is_string(method) || (params && !json_is_object(params) && !json_is_array(params))) {
    ctl_reply_err(req, CTL_INVALID_REQUEST, "invalid request: need {\"jsonrpc\":\"2.0\",\"id\":..,\"method\":\"..\"}");
    json_decref(msg);
    return;
  }
  const char *name = json_string_value(method);
  ctl_server *s = c->srv;
  for (size_t i = 0; i < s->n_methods; i++) {
    if (strcmp(s->methods[i].name, name)) continue;
    s->methods[i].fn(req, params, s->methods[i].ud);
    json_decref(msg);
    return;
  }
  ctl_reply_err(req, CTL_NO_METHOD, "no method '%s'", name);
  json_decref(msg);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  ctl_conn *c = h->data;
  if (buf_reserve(&c->in, 65536)) { *b = uv_buf_init(NULL, 0); return; }
  *b = uv_buf_init((char *)c->in.ptr + c->in.len, (unsigned)(c->in.cap - c->in.len));
  (void)suggested;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  ctl_conn *c = st->data;
  (void)b;
  if (n < 0) { conn_close(c); return; }
  c->in.len += (size_t)n;
  size_t start = 0;
  for (size_t i = c->in.len - (size_t)n; i < c->in.len; i++) {
    if (c->in.ptr[i] != '\n') continue;
    if (i > start) dispatch_line(c, (const char *)c->in.ptr + start, i - start);
    start = i + 1;
    if (c->closed) return;
  }
  memmove(c->in.ptr, c->in.ptr + start, c->in.len - start);
  c->in.len -= start;
  if (c->in.len > CONTROL_MAX_LINE) {
    log_warn("control: dropping a client whose request line exceeds %u bytes", CONTROL_MAX_LINE);
    conn_close(c);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  ctl_server *s = server->data;
  if (status < 0 || s->stopping) return;
  ctl_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->srv = s;
  c->refs = 1;
  buf_init(&c->in);
  uv_pipe_init(server->loop, &c->pipe, 0);
  c->pipe.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
    return;
  }
  c->next = s->conns;
  s->conns = c;
  s->n_conns++;
  if (s->n_conns > CONTROL_MAX_CONNS) {
    log_warn("control: too many clients (%d); closing the newest", s->n_conns);
    conn_close(c);
    return;
  }
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Is a node listening at path? Connect and see. */
static int socket_alive(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t plen = strlen(path);
  if (plen >= sizeof a.sun_path) { close(fd); return 0; }
  memcpy(a.sun_path, path, plen + 1);
  int alive = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return alive;
}

int ctl_server_start(uv_loop_t *loop, const char *path, ctl_server **out) {
  struct sockaddr_un probe;
  if (strlen(path) >= sizeof probe.sun_path) return ERR_TOOBIG;
  if (fs_exists(path) == 1) {
    if (socket_alive(path)) return ERR_EXISTS;
    unlink(path); /* stale socket of a node that died */
  }
  ctl_server *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  uv_pipe_init(loop, &s->pipe, 0);
  s->pipe.data = s;
  mode_t old = umask(0177); /* the socket is created 0600: no window with wider access */
  int rc = uv_pipe_bind(&s->pipe, path);
  umask(old);
  if (!rc) rc = chmod(path, 0600) < 0 ? -errno : 0;
  if (!rc) rc = uv_listen((uv_stream_t *)&s->pipe, 16, on_connection);
  if (rc) {
    uv_close((uv_handle_t *)&s->pipe, (uv_close_cb)free);
    return rc;
  }
  *out = s;
  return 0;
}

void ctl_server_stop(ctl_server *s) {
  if (!s) return;
  s->stopping = 1;
  while (s->conns) conn_close(s->conns);
  uv_close((uv_handle_t *)&s->pipe, (uv_close_cb)free);
}

int ctl_server_add(ctl_server *s, const char *method, ctl_method_fn fn, void *ud) {
  if (s->n_methods >= sizeof s->methods / sizeof *s->methods) return ERR_TOOBIG;
  s->methods[s->n_methods++] = (ctl_method){method, fn, ud};
  return 0;
}

/* ---- client ------------------------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_call(const char *home_dir, const char *method, json_t *params, int timeout_ms, json_t **result_out,
             char **err_msg) {
  char path[1024];
  int rc = fs_join(path, sizeof path, home_dir, CONTROL_SOCKET_NAME);
  json_t *req = json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", 1, "method", method);
  if (params) json_object_set_new(req, "params", params);
  if (rc || !req) { json_decref(req); return rc ? rc : ERR_NOMEM; }
  char *text = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (!text) return ERR_NOMEM;
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  size_t plen = strlen(path);
  if (plen >= sizeof a.sun_path) { free(text); return ERR_TOOBIG; }
  memcpy(a.sun_path, path, plen + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { free(text); return -errno; }
  buf in;
  buf_init(&in);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { rc = -errno; goto done; }
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1) { rc = -errno; goto done; }
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) { rc = -ETIMEDOUT; goto done; }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) { rc = pr == 0 ? -ETIMEDOUT : -errno; goto done; }
    if ((rc = buf_reserve(&in, 65536))) goto done;
    ssize_t n = read(fd, in.ptr + in.len, in.cap - in.len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { rc = n == 0 ? ERR_FORMAT : -errno; goto done; }
    in.len += (size_t)n;
    if (memchr(in.ptr, '\n', in.len)) break;
    if (in.len > CONTROL_MAX_LINE) { rc = ERR_TOOBIG; goto done; }
  }
  json_error_t je;
  json_t *resp = json_loadb((const char *)in.ptr, (size_t)((uint8_t *)memchr(in.ptr, '\n', in.len) - in.ptr), 0, &je);
  if (!resp) { rc = ERR_FORMAT; goto done; }
  json_t *err = json_object_get(resp, "error");
  if (err) {
    if (err_msg) *err_msg = strdup(json_string_value(json_object_get(err, "message")) ?: "error");
    rc = ERR_INVAL;
  } else {
    *result_out = json_incref(json_object_get(resp, "result"));
    rc = *result_out ? 0 : ERR_FORMAT;
  }
  json_decref(resp);
done:
  free(text);
  buf_deinit(&in);
  close(fd);
  return rc;
}
