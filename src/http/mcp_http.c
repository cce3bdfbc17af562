/* http/mcp_http — MCP's Streamable HTTP transport at /mcp (revision 2025-11-25).
 *
 * POST /mcp carries one JSON-RPC message. initialize opens a session (Mcp-Session-Id on the
 * answer: 32 random bytes in hex); every later message names it (missing → 400, unknown or
 * ended → 404). A notification or a response from the client is accepted with 202. A
 * request is answered with one JSON object, except tools/call, which is answered as a
 * server-sent-event stream: the tool runs on its own thread and what it sends meanwhile
 * (progress, log messages, requests to the client such as sampling or elicitation, whose
 * answers come back as separate POSTs) precedes the result on that stream. GET /mcp is 405
 * (no standalone server stream); DELETE /mcp ends the session.
 *
 * The same bearer tokens as the rest of the API guard it (the server checks them before
 * this handler runs). Against DNS rebinding, when the API listens on loopback a Host other
 * than localhost, 127.0.0.1 or [::1] is refused with 403, and so is an Origin that is not
 * one of those. An MCP-Protocol-Version header, when present, must name a revision we
 * speak (2025-11-25, 2025-06-18, 2025-03-26), else 400.
 *
 * Threads: handlers run on the HTTP pool's threads; a tool runs on a thread of its own and
 * its events wake the suspended stream (http__wake), so a waiting stream holds no pool
 * thread. Sessions are shared under a mutex and reference counted, so one ended while a
 * request of it runs is freed by the last user. */
#include "http/mcp_http.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "http/openai.h"

#define MCP_HTTP_MAX_SESSIONS 64
#define MCP_HTTP_IDLE_S 3600   /* a session unused this long may be dropped for a new one */
#define MCP_HTTP_MAX_MSG (1u << 20)
#define GONE_CHECK_MS 250        /* a stream with no news looks this often whether its client left */

typedef struct ses_slot {
  mcp_session *s;
  int refs;                    /* the table's one + each request using it */
} ses_slot;

struct mcp_http {
  mcp_server *srv;             /* borrowed */
  int loopback_only;           /* the API listens on loopback: check Host */
  pthread_mutex_t mu;
  ses_slot slots[MCP_HTTP_MAX_SESSIONS];
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int mcp_http_new(mcp_server *srv, int loopback_only, mcp_http **out) {
  mcp_http *h = calloc(1, sizeof *h);
  if (!h) return ERR_NOMEM;
  h->srv = srv;
  h->loopback_only = loopback_only;
  pthread_mutex_init(&h->mu, NULL);
  *out = h;
  return 0;
}

static void session_free(mcp_session *s) {
  mcp_session_deinit(s);
  free(s);
}

void mcp_http_free(mcp_http *h) {
  if (!h) return;
  for (int i = 0; i < MCP_HTTP_MAX_SESSIONS; i++)
    if (h->slots[i].s) {
      mcp_session_close(h->slots[i].s);
      session_free(h->slots[i].s);
    }
  pthread_mutex_destroy(&h->mu);
  free(h);
}

/* Takes a reference to the session named id; NULL when unknown. */
static mcp_session *session_get(mcp_http *h, const char *id, int *slot_out) {
  mcp_session *s = NULL;
  pthread_mutex_lock(&h->mu);
  for (int i = 0; i < MCP_HTTP_MAX_SESSIONS && !s; i++)
    if (h->slots[i].s && !strcmp(h->slots[i].s->id, id)) {
      s = h->slots[i].s;
      h->slots[i].refs++;
      s->last_used = now_s();
      *slot_out = i;
    }
  pthread_mutex_unlock(&h->mu);
  return s;
}

static void session_put(mcp_http *h, int i) {
  mcp_session *dead = NULL;
  pthread_mutex_lock(&h->mu);
  if (--h->slots[i].refs == 0) {
    dead = h->slots[i].s;
    h->slots[i].s = NULL;
  }
  pthread_mutex_unlock(&h->mu);
  if (dead) session_free(dead);
}

/* Removes the table's reference (DELETE, or evicted): the last user frees it. */
static void session_end(mcp_http *h, int i) {
  mcp_session_close(h->slots[i].s);
  session_put(h, i);
}

/* A new session in the table with one reference for the caller; NULL when every slot is
 * in use by a live, recently used session. */
static mcp_session *session_new(mcp_http *h, int *slot_out) {
  mcp_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  mcp_session_init(s);
  s->last_used = now_s();
  pthread_mutex_lock(&h->mu);
  int free_i = -1, old_i = -1;
  for (int i = 0; i < MCP_HTTP_MAX_SESSIONS; i++) {
    if (!h->slots[i].s) {
      if (free_i < 0) free_i = i;
    } else if (h->slots[i].refs == 1 && s->last_used - h->slots[i].s->last_used > MCP_HTTP_IDLE_S &&
               (old_i < 0 || h->slots[i].s->last_used < h->slots[old_i].s->last_used)) {
      old_i = i;
    }
  }
  if (free_i < 0 && old_i >= 0) {
    mcp_session *old = h->slots[old_i].s;
    h->slots[old_i].s = NULL;
    h->slots[old_i].refs = 0;
    mcp_session_close(old);
    session_free(old);
    free_i = old_i;
  }
  if (free_i >= 0) {
    h->slots[free_i].s = s;
    h->slots[free_i].refs = 2;
    *slot_out = free_i;
  }
  pthread_mutex_unlock(&h->mu);
  if (free_i < 0) {
    session_free(s);
    return NULL;
  }
  return s;
}

/* ---- checks -------------------------------------------------------------------------- */

/* "localhost", "127.0.0.1" or "[::1]", with an optional ":port". */
static int local_host(const char *h, size_t n) {
  static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
  for (size_t i = 0; i < 3; i++) {
    size_t k = strlen(names[i]);
    if (n >= k && !strncasecmp(h, names[i], k) && (n == k || h[k] == ':')) {
      for (size_t j = k + 1; j < n; j++)
        if (h[j] < '0' || h[j] > '9') return 0;
      return 1;
    }
  }
  return 0;
}

static int origin_ok(const char *origin) {
  const char *p = strstr(origin, "://");
  if (!p) return 0;
  p += 3;
  return local_host(p, strcspn(p, "/"));
}

static int send_status(const http_request *req, unsigned status, const char *allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (allow) MHD_add_response_header(r, "Allow", allow);
  http__cors(r);
  http_log *lg = http__log();
  if (lg) lg->status = status;
  int ret = MHD_queue_response(req->conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

/* A JSON-RPC error as an HTTP answer (status 400/403/404/…). */
static int send_rpc_error(const http_request *req, unsigned status, int code, const char *msg) {
  return http__send_json(req->conn, status, mcp_error(NULL, code, msg));
}

static int send_rpc(const http_request *req, json_t *msg /* taken */, const char *session_id) {
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!text) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (session_id) MHD_add_response_header(r, "Mcp-Session-Id", session_id);
  http__cors(r);
  http_log *lg = http__log();
  if (lg) lg->status = 200;
  int ret = MHD_queue_response(req->conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- a tools/call answered as a stream ----------------------------------------------- */

typedef struct stream {
  pthread_mutex_t mu;
  struct MHD_Connection *conn; /* the reader's */
  void *waker;                 /* resumes conn when there is news (http__wake; a reference) */
  buf out;                     /* SSE bytes not yet read */
  size_t pos;
  int done, gone, refs;        /* refs: the reader and the worker */
  unsigned long next_event;
  mcp_http *h;
  mcp_session *ses;            /* the session (a reference held by the worker, in slot) */
  int slot;
  json_t *msg;                 /* the request (owned) */
} stream;

static void stream_unref(stream *s) {
  pthread_mutex_lock(&s->mu);
  int last = --s->refs == 0;
  pthread_mutex_unlock(&s->mu);
  if (!last) return;
  buf_deinit(&s->out);
  json_decref(s->msg);
  http__waker_unref(s->waker);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static void stream_send(void *ud, json_t *m) {
  stream *s = ud;
  char *text = json_dumps(m, JSON_COMPACT);
  json_decref(m);
  if (!text) return;
  pthread_mutex_lock(&s->mu);
  if (!s->gone) {
    char head[64];
    snprintf(head, sizeof head, "event: message\nid: %lu\ndata: ", ++s->next_event);
    buf_append_str(&s->out, head);
    buf_append_str(&s->out, text);
    buf_append_str(&s->out, "\n\n");
    http__wake(s->waker);
  }
  pthread_mutex_unlock(&s->mu);
  free(text);
}

static int stream_gone(void *ud) {
  stream *s = ud;
  pthread_mutex_lock(&s->mu);
  int g = s->gone;
  pthread_mutex_unlock(&s->mu);
  return g;
}

static void *stream_work(void *arg) {
  stream *s = arg;
  mcp_sink sink = {.send = stream_send, .gone = stream_gone, .ud = s};
  json_t *answer = mcp_handle(s->h->srv, s->ses, s->msg, &sink, NULL);
  if (answer) stream_send(s, answer);
  session_put(s->h, s->slot);
  pthread_mutex_lock(&s->mu);
  s->done = 1;
  http__wake(s->waker);
  pthread_mutex_unlock(&s->mu);
  stream_unref(s);
  return NULL;
}

/* MHD's content reader (a pool thread): the events so far, or — with none — the connection
 * suspended until the tool sends one or ends (http__wake), or GONE_CHECK_MS passed (then 0:
 * a client that left ends the stream, and the tool sees it through its sink). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
  stream *s = cls;
  (void)pos;
  pthread_mutex_lock(&s->mu);
  ssize_t n;
  if (s->pos >= s->out.len && !s->done) {
    pthread_mutex_unlock(&s->mu);
    if (http__client_gone(s->conn) || http__suspend(s->conn, GONE_CHECK_MS)) return MHD_CONTENT_READER_END_WITH_ERROR;
    return 0;
  }
  if (s->pos < s->out.len) {
    size_t k = s->out.len - s->pos;
    if (k > max) k = max;
    memcpy(out, s->out.ptr + s->pos, k);
    s->pos += k;
    n = (ssize_t)k;
  } else {
    n = MHD_CONTENT_READER_END_OF_STREAM;
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}

static void stream_free(void *cls) {
  stream *s = cls;
  pthread_mutex_lock(&s->mu);
  s->gone = 1; /* the tool sees it through its sink and stops asking the client */
  pthread_mutex_unlock(&s->mu);
  stream_unref(s);
}

/* Runs msg (taken) on its own thread, answering as an event stream; the session reference
 * in slot passes to the worker. */
static int answer_streamed(const http_request *req, mcp_http *h, mcp_session *ses, int slot, json_t *msg) {
  stream *s = calloc(1, sizeof *s);
  if (!s) {
    json_decref(msg);
    session_put(h, slot);
    return send_rpc_error(req, 503, MCP_INTERNAL, "out of memory");
  }
  pthread_mutex_init(&s->mu, NULL);
  buf_init(&s->out);
  s->conn = req->conn;
  s->waker = http__waker(req->conn);
  s->refs = 2;
  s->h = h;
  s->ses = ses;
  s->slot = slot;
  s->msg = msg;
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&a, 1u << 20);
  int rc = pthread_create(&t, &a, stream_work, s);
  pthread_attr_destroy(&a);
  if (rc) {
    s->refs = 1;
    s->msg = NULL;
    json_decref(msg);
    session_put(h, slot);
    stream_unref(s);
    return send_rpc_error(req, 503, MCP_INTERNAL, "cannot start the tool (out of threads)");
  }
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  MHD_add_response_header(r, "Mcp-Session-Id", ses->id);
  http__cors(r);
  http_log *lg = http__log();
  if (lg) lg->status = 200;
  int ret = MHD_queue_response(req->conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- the route ----------------------------------------------------------------------- */

static const char *header(const http_request *req, const char *name) {
  return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static int version_ok(const char *v) {
  return !v || !strcmp(v, "2025-11-25") || !strcmp(v, "2025-06-18") || !strcmp(v, "2025-03-26");
}

static int on_mcp(const http_request *req, void *data) {
  mcp_http *h = data;
  const char *host = header(req, "Host"), *origin = header(req, "Origin");
  if (h->loopback_only && (!host || !local_host(host, strlen(host))))
    return send_rpc_error(req, 403, MCP_INVALID_REQUEST, "Host must be localhost, 127.0.0.1 or [::1] (DNS rebinding protection)");
  if (origin && !origin_ok(origin))
    return send_rpc_error(req, 403, MCP_INVALID_REQUEST, "this Origin may not use the node's MCP endpoint");
  if (!strcmp(req->method, "GET")) return send_status(req, 405, "POST, DELETE");
  const char *sid = header(req, "Mcp-Session-Id");
  if (!strcmp(req->method, "DELETE")) {
    int i;
    if (!sid) return send_rpc_error(req, 400, MCP_INVALID_REQUEST, "DELETE needs the Mcp-Session-Id header");
    if (!session_get(h, sid, &i)) return send_rpc_error(req, 404, MCP_INVALID_REQUEST, "no such session");
    session_end(h, i);
    session_put(h, i);
    return send_status(req, 200, NULL);
  }
  if (!version_ok(header(req, "MCP-Protocol-Version")))
    return send_rpc_error(req, 400, MCP_INVALID_REQUEST,
                          "unsupported MCP-Protocol-Version (this server speaks 2025-11-25, 2025-06-18, 2025-03-26)");
  const char *accept = header(req, "Accept");
  if (accept && !strstr(accept, "application/json") && !strstr(accept, "text/event-stream") && !strstr(accept, "*/*"))
    return send_rpc_error(req, 406, MCP_INVALID_REQUEST, "Accept must include application/json and text/event-stream");
  if (!req->body || !req->body_len || req->body_len > MCP_HTTP_MAX_MSG)
    return send_rpc_error(req, 400, MCP_INVALID_REQUEST, "the body must be one JSON-RPC message (at most 1 MiB)");
  json_error_t je;
  json_t *msg = json_loadb(req->body, req->body_len, 0, &je);
  if (!msg) return send_rpc_error(req, 400, MCP_PARSE_ERROR, "the body is not JSON");
  char why[200];
  int kind = mcp_kind(msg, why, sizeof why);
  if (!kind) {
    json_decref(msg);
    return send_rpc_error(req, 400, MCP_INVALID_REQUEST, why);
  }
  const char *method = json_string_value(json_object_get(msg, "method"));
  int slot;
  mcp_session *s;
  if (kind == 1 && !strcmp(method, "initialize")) {
    s = session_new(h, &slot);
    if (!s) {
      json_decref(msg);
      return send_rpc_error(req, 503, MCP_INTERNAL, "too many MCP sessions; end one (DELETE /mcp) or retry later");
    }
    int init_ok = 0;
    json_t *answer = mcp_handle(h->srv, s, msg, NULL, &init_ok);
    json_decref(msg);
    int ret = send_rpc(req, answer, init_ok ? s->id : NULL);
    if (!init_ok) session_end(h, slot);
    session_put(h, slot);
    return ret;
  }
  if (!sid) {
    json_decref(msg);
    return send_rpc_error(req, 400, MCP_INVALID_REQUEST, "missing Mcp-Session-Id (send initialize first)");
  }
  if (!(s = session_get(h, sid, &slot))) {
    json_decref(msg);
    return send_rpc_error(req, 404, MCP_INVALID_REQUEST, "session not found or ended; initialize again");
  }
  if (kind != 1) { /* a notification or an answer to one of our requests */
    mcp_handle(h->srv, s, msg, NULL, NULL);
    json_decref(msg);
    session_put(h, slot);
    return send_status(req, 202, NULL);
  }
  if (!strcmp(method, "tools/call")) return answer_streamed(req, h, s, slot, msg);
  json_t *answer = mcp_handle(h->srv, s, msg, NULL, NULL);
  json_decref(msg);
  session_put(h, slot);
  return send_rpc(req, answer, NULL);
}

int mcp_http_routes_add(http_routes *t, mcp_http *h) {
  int rc = http_route_add(t, "POST", "/mcp", on_mcp, h, 0);
  if (!rc) rc = http_route_add(t, "GET", "/mcp", on_mcp, h, 0);
  if (!rc) rc = http_route_add(t, "DELETE", "/mcp", on_mcp, h, 0);
  return rc;
}
