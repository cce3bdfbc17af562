/* agent/mcp_client_http — the MCP client's Streamable HTTP transport (libcurl).
 *
 * Each message is one POST to the server's URL with `Accept: application/json,
 * text/event-stream`, `Content-Type: application/json`, after initialize
 * `MCP-Protocol-Version: <negotiated>` and the `Mcp-Session-Id` the initialize answer
 * carried (a visible-ASCII id of at most 256 bytes), and `Authorization: Bearer` when
 * configured. A request's answer is one JSON object or an SSE stream
 * (agent/mcp_client_frame) carrying notifications, requests from the server (answered by
 * POSTs on a second handle while the stream stays open) and finally the response; the
 * stream is dropped as soon as the response is in. A stream that ends before the response
 * is resumed: after the server's `retry:` delay (1 s when it gave none), a GET with
 * `Last-Event-ID`, up to MAX_RESUMES times; a stream without any event id cannot be
 * resumed and is an error. After initialize, agent/mcp_client_listen holds the standalone
 * GET stream for what the server sends outside our requests. A 404 while holding a session
 * means the server forgot it: the client initializes again (once per request) and resends.
 * Notifications expect 202 (any 2xx is taken). Close sends DELETE with the session id.
 *
 * Caps: a JSON body or an SSE event at most MCP_CLIENT_MAX_MSG bytes; an error body is
 * kept to ERR_BODY_MAX bytes for the message. Only http and https; redirects are not
 * followed. The bearer token is never logged and is wiped on close. Caller thread (the
 * core's mutex serializes requests); the callbacks run inside curl_easy_perform, on the
 * caller's thread or the listener's. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/mcp_client_http.h"
#include "agent/mcp_client_int.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define ERR_BODY_MAX 300
#define MAX_RESUMES 10
#define CLOSE_TIMEOUT_MS 3000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- answering the server while a stream is open ---------------------------------------- */
static struct curl_slist *base_headers(mcp_client_http *t, const char *accept) {
  struct curl_slist *h = NULL, *n;
  char line[MCP_CLIENT_SESSION_MAX + 64];
#define ADD(s)                                 \
  do {                                         \
    if (!(n = curl_slist_append(h, (s)))) {    \
      curl_slist_free_all(h);                  \
      return NULL;                             \
    }                                          \
    h = n;                                     \
  } while (0)
  ADD("Content-Type: application/json");
  snprintf(line, sizeof line, "Accept: %s", accept);
  ADD(line);
  if (t->c->version[0]) {
    snprintf(line, sizeof line, "MCP-Protocol-Version: %s", t->c->version);
    ADD(line);
  }
  if (t->session[0]) {
    snprintf(line, sizeof line, "Mcp-Session-Id: %s", t->session);
    ADD(line);
  }
  if (t->bearer) {
    size_t len = strlen(t->bearer) + 32;
    char *auth = malloc(len);
    if (!auth) {
      curl_slist_free_all(h);
      return NULL;
    }
    snprintf(auth, len, "Authorization: Bearer %s", t->bearer);
    n = curl_slist_append(h, auth);
    sodium_memzero(auth, len);
    free(auth);
    if (!n) {
      curl_slist_free_all(h);
      return NULL;
    }
    h = n;
  }
  ADD("Expect:"); /* no 100-continue round trip */
#undef ADD
  return h;
}

static size_t discard_cb(char *p, size_t size, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return size * n;
}

/* timeout_ms < 0: none (the standalone stream). */
static void common_opts(CURL *h, const char *url, long timeout_ms) {
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms < 0 ? 0L : timeout_ms > 0 ? timeout_ms : 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 && timeout_ms > 0 ? timeout_ms : 10000L);
}

/* POSTs a message (taken) on the side handle; 2xx expected. Logged, not returned: the
 * server notices a missing answer itself. */
static void side_post(mcp_client_http *t, CURL **side, json_t *msg) {
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  struct curl_slist *h = base_headers(t, "application/json, text/event-stream");
  if (!text || !h || (!*side && !(*side = curl_easy_init()))) {
    free(text);
    curl_slist_free_all(h);
    log_warn("MCP server '%s': out of memory answering its request", t->c->name);
    return;
  }
  CURL *sh = *side;
  curl_easy_reset(sh);
  common_opts(sh, t->url, t->c->timeout_ms);
  curl_easy_setopt(sh, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(sh, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(sh, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
  curl_easy_setopt(sh, CURLOPT_WRITEFUNCTION, discard_cb);
  CURLcode cc = curl_easy_perform(sh);
  long status = 0;
  curl_easy_getinfo(sh, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK || status / 100 != 2)
    log_warn("MCP server '%s' did not take the client's answer (%s, HTTP %ld)", t->c->name,
             cc ? curl_easy_strerror(cc) : "sent", status);
  curl_slist_free_all(h);
  free(text);
}

/* ---- one exchange's callbacks ----------------------------------------------------------- */
/* A message from the server (any kind); 1 when it is the awaited response. */
static int on_message(mcp_client_exch *x, const char *text, size_t len) {
  json_t *msg = NULL;
  char why[300];
  int kind = mcp_client__parse(text, len, &msg, why, sizeof why);
  if (kind < 0) {
    json_t *m = json_loadb(text, len, 0, NULL); /* an error with a null id: the answer to our POST */
    if (x->want && m && json_is_null(json_object_get(m, "id")) && json_is_object(json_object_get(m, "error"))) {
      x->resp = m;
      return 1;
    }
    json_decref(m);
    log_warn("MCP server '%s' sent a message that is %s; ignored", x->t->c->name, why);
    return 0;
  }
  if (kind == MCP_CLIENT_MSG_REQUEST) {
    json_t *answer = mcp_client__answer(msg);
    json_decref(msg);
    if (answer) side_post(x->t, x->side, answer);
    return 0;
  }
  if (kind == MCP_CLIENT_MSG_NOTIFICATION) {
    mcp_client__notified(x->t->c, msg);
    json_decref(msg);
    return 0;
  }
  json_t *id = json_object_get(msg, "id");
  if (x->want && !x->resp && json_is_integer(id) && json_integer_value(id) == x->want_id) {
    x->resp = msg;
    return 1;
  }
  log_debug("MCP server '%s': a response nobody waits for; ignored", x->t->c->name);
  json_decref(msg);
  return 0;
}

static int on_event(void *ud, const char *event, const char *data, size_t len) {
  mcp_client_exch *x = ud;
  size_t i = 0;
  while (i < len && isspace((unsigned char)data[i])) i++;
  if (i == len) return 0; /* a priming event, or a keep-alive */
  if (event[0] && strcmp(event, "message")) return 0;
  return on_message(x, data, len);
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud) {
  mcp_client_exch *x = ud;
  size_t len = size * n;
  if (len <= 2 && x->h == x->t->lcurl && x->status / 100 != 1) { /* the listener's stream is open */
    pthread_mutex_lock(&x->t->lmu);
    x->t->lready = 1;
    pthread_cond_broadcast(&x->t->lcv);
    pthread_mutex_unlock(&x->t->lmu);
  }
  if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after a 100, say): forget the last */
    const char *sp = memchr(p, ' ', len);
    x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    x->sse = x->www_auth = 0;
    return len;
  }
  const char *colon = memchr(p, ':', len);
  if (!colon) return len;
  size_t nlen = (size_t)(colon - p);
  const char *v = colon + 1;
  size_t vlen = len - nlen - 1;
  while (vlen && (*v == ' ' || *v == '\t')) v++, vlen--;
  while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ')) vlen--;
  if (nlen == 12 && !strncasecmp(p, "content-type", 12)) {
    x->sse = vlen >= 17 && !strncasecmp(v, "text/event-stream", 17);
  } else if (nlen == 14 && !strncasecmp(p, "mcp-session-id", 14)) {
    x->session_bad = vlen == 0 || vlen > MCP_CLIENT_SESSION_MAX;
    for (size_t i = 0; i < vlen && !x->session_bad; i++) x->session_bad = v[i] < 0x21 || v[i] > 0x7e;
    if (!x->session_bad) {
      memcpy(x->session, v, vlen);
      x->session[vlen] = 0;
    }
  } else if (nlen == 16 && !strncasecmp(p, "www-authenticate", 16)) {
    x->www_auth = 1;
  }
  return len;
}

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
  mcp_client_exch *x = ud;
  size_t len = size * n;
  if (x->status / 100 == 2 && x->sse) {
    int rc = mcp_client__sse_feed(x->parser, p, len, on_event, x);
    if (rc == ERR_TOOBIG) x->sse_too_big = 1;
    else if (rc == ERR_NOMEM) return 0;
    return x->resp ? 0 : len; /* the answer is in: stop reading the stream */
  }
  size_t cap = x->status / 100 == 2 ? MCP_CLIENT_MAX_MSG : ERR_BODY_MAX;
  if (x->body.len + len > cap) {
    if (x->status / 100 == 2) {
      x->body_too_big = 1;
      return 0;
    }
    len = cap - x->body.len; /* keep the start of an error body */
    if (len && buf_append(&x->body, p, len)) return 0;
    return size * n;
  }
  if (buf_append(&x->body, p, len)) return 0;
  return len;
}

/* ---- exchanges -------------------------------------------------------------------------- */

/* Performs one exchange; returns the curl code (CURLE_WRITE_ERROR when the write callback
 * stopped the transfer on purpose: check x->resp). body may be NULL. */
CURLcode mcp_client__http_perform(mcp_client_http *t, mcp_client_exch *x, mcp_client_http_method m, const char *body, const char *last_id, long timeout_ms) {
  struct curl_slist *h = base_headers(t, m == MCP_HTTP_GET ? "text/event-stream" : "application/json, text/event-stream");
  if (!h) return CURLE_OUT_OF_MEMORY;
  if (last_id && *last_id) {
    char line[MCP_CLIENT_SSE_ID_MAX + 32];
    snprintf(line, sizeof line, "Last-Event-ID: %s", last_id);
    struct curl_slist *n = curl_slist_append(h, line);
    if (!n) {
      curl_slist_free_all(h);
      return CURLE_OUT_OF_MEMORY;
    }
    h = n;
  }
  CURL *c = x->h;
  curl_easy_reset(c);
  common_opts(c, t->url, timeout_ms);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
  if (m == MCP_HTTP_POST) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
  } else if (m == MCP_HTTP_DELETE) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  if (c == t->lcurl) mcp_client__listen_hooks(t, c);
  CURLcode cc = curl_easy_perform(c);
  curl_slist_free_all(h);
  return cc;
}

/* An exchange on the caller's handles. */
void mcp_client__http_exch_init(mcp_client_exch *x, mcp_client_http *t, mcp_client_sse *parser, int want, json_int_t id) {
  memset(x, 0, sizeof *x);
  x->t = t;
  x->h = t->curl;
  x->side = &t->side;
  x->parser = parser;
  x->want = want;
  x->want_id = id;
  buf_init(&x->body);
}

/* An error for an exchange that did not work (transport or status), into err. */
static int exch_error(mcp_client_http *t, mcp_client_exch *x, CURLcode cc, int timeout_ms, char *err, size_t cap) {
  if (cc == CURLE_OPERATION_TIMEDOUT) return err_set(err, cap, -ETIMEDOUT, "no answer within %d ms", timeout_ms);
  if (cc == CURLE_WRITE_ERROR && (x->body_too_big))
    return err_set(err, cap, ERR_TOOBIG, "the server's answer is over %u bytes (the cap)", MCP_CLIENT_MAX_MSG);
  if (cc != CURLE_OK && cc != CURLE_WRITE_ERROR)
    return err_set(err, cap, -ECONNREFUSED, "cannot reach %s: %s", t->url, curl_easy_strerror(cc));
  if (x->status == 401 || x->status == 403)
    return err_set(err, cap, -EACCES, "the server refused access (HTTP %ld): %s", x->status,
                   !t->bearer     ? "it needs a token; pass one with --bearer TOKEN (or bearer in the config)"
                   : x->www_auth  ? "the token was not accepted; the server may want OAuth, which apiary's MCP client "
                                    "does not do: get a token another way and pass it with --bearer"
                                  : "the token was not accepted; check it");
  char snippet[ERR_BODY_MAX + 1];
  size_t k = x->body.len < ERR_BODY_MAX ? x->body.len : ERR_BODY_MAX;
  for (size_t i = 0; i < k; i++) snippet[i] = isprint(x->body.ptr[i]) ? (char)x->body.ptr[i] : ' ';
  snippet[k] = 0;
  return err_set(err, cap, -EPROTO, "the server answered HTTP %ld%s%s", x->status, k ? ": " : "", snippet);
}

static long remaining(long long deadline) {
  long long left = deadline - mcp_client__now_ms();
  return left > 0 ? (long)left : 0;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

/* One try of a request: POST, then resumptions. 0 with *resp_out; 1 when the server forgot
 * the session (404); or an error. */
static int try_request(mcp_client_http *t, const char *text, json_int_t id, int is_init, int timeout_ms, json_t **resp_out,
                       char *err, size_t cap) {
  long long deadline = mcp_client__now_ms() + timeout_ms;
  mcp_client_sse parser;
  mcp_client__sse_init(&parser, MCP_CLIENT_MAX_MSG);
  mcp_client_exch x;
  mcp_client__http_exch_init(&x, t, &parser, 1, id);
  int rc = 0;
  CURLcode cc = mcp_client__http_perform(t, &x, MCP_HTTP_POST, text, NULL, remaining(deadline));
  if (!x.resp && x.status == 404 && t->session[0] && !is_init) {
    rc = 1;
    goto done;
  }
  int stream_ended = x.sse && x.status / 100 == 2 && cc != CURLE_OPERATION_TIMEDOUT; /* resumable */
  if (!x.resp && !stream_ended && (cc != CURLE_OK || x.status / 100 != 2)) {
    rc = exch_error(t, &x, cc, timeout_ms, err, cap);
    goto done;
  }
  if (is_init && x.status / 100 == 2) {
    if (x.session_bad) {
      rc = err_set(err, cap, -EPROTO, "the server's Mcp-Session-Id is not 1-%d visible ASCII characters", MCP_CLIENT_SESSION_MAX);
      goto done;
    }
    memcpy(t->session, x.session, sizeof t->session);
  }
  if (!x.resp && !x.sse) { /* one JSON object */
    if (x.status == 202 || !x.body.len) {
      rc = err_set(err, cap, -EPROTO, "the server answered a request with HTTP %ld and no body", x.status);
      goto done;
    }
    on_message(&x, (const char *)x.body.ptr, x.body.len);
    if (!x.resp) {
      rc = err_set(err, cap, -EPROTO, "the server's JSON answer is not the response to the request");
      goto done;
    }
  }
  for (int resumes = 0; !x.resp; resumes++) { /* the stream ended before the response */
    if (x.sse_too_big) {
      rc = err_set(err, cap, ERR_TOOBIG, "the server sent an event over %u bytes (the cap)", MCP_CLIENT_MAX_MSG);
      goto done;
    }
    if (!parser.last_id[0]) {
      rc = err_set(err, cap, -EPROTO, "the server closed its event stream before answering, with no event id to resume from");
      goto done;
    }
    if (resumes == MAX_RESUMES) {
      rc = err_set(err, cap, -EPROTO, "the server closed its event stream %d times without answering", MAX_RESUMES);
      goto done;
    }
    long wait = parser.retry_ms >= 0 ? parser.retry_ms : MCP_CLIENT_RETRY_DEFAULT_MS;
    if (wait >= remaining(deadline)) {
      rc = err_set(err, cap, -ETIMEDOUT, "no answer within %d ms", timeout_ms);
      goto done;
    }
    sleep_ms(wait);
    mcp_client_sse next; /* a new stream: no partial line or event, the same last id and retry */
    mcp_client__sse_init(&next, MCP_CLIENT_MAX_MSG);
    memcpy(next.last_id, parser.last_id, sizeof next.last_id);
    next.retry_ms = parser.retry_ms;
    mcp_client__sse_deinit(&parser);
    parser = next;
    buf_deinit(&x.body);
    mcp_client__http_exch_init(&x, t, &parser, 1, id);
    log_debug("MCP server '%s': resuming its event stream after event %s", t->c->name, parser.last_id);
    cc = mcp_client__http_perform(t, &x, MCP_HTTP_GET, NULL, parser.last_id, remaining(deadline));
    if (x.resp) break;
    if (cc != CURLE_OK && !(x.sse && x.status / 100 == 2 && cc != CURLE_OPERATION_TIMEDOUT)) {
      rc = exch_error(t, &x, cc, timeout_ms, err, cap);
      goto done;
    }
    if (x.status == 405) {
      rc = err_set(err, cap, -EPROTO, "the server closed its event stream before answering and does not allow resuming it (GET is 405)");
      goto done;
    }
    if (x.status / 100 != 2 || !x.sse) {
      rc = exch_error(t, &x, cc, timeout_ms, err, cap);
      if (x.status / 100 == 2) rc = err_set(err, cap, -EPROTO, "the server answered the resumption with no event stream");
      goto done;
    }
  }
  *resp_out = x.resp;
  x.resp = NULL;
done:
  json_decref(x.resp);
  buf_deinit(&x.body);
  mcp_client__sse_deinit(&parser);
  return rc;
}

static int http_request(mcp_client *c, json_t *msg, json_int_t id, int timeout_ms, json_t **resp_out, char *err,
                        size_t cap) {
  mcp_client_http *t = c->tr;
  *resp_out = NULL;
  int is_init = !strcmp(json_string_value(json_object_get(msg, "method")), "initialize");
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!text) return err_set(err, cap, ERR_NOMEM, "out of memory");
  if (is_init) t->session[0] = 0;
  int rc = try_request(t, text, id, is_init, timeout_ms, resp_out, err, cap);
  if (rc == 1 && !t->reinit) { /* the session is gone: a new one, and the request again */
    log_info("MCP server '%s' forgot the session; initializing again", c->name);
    mcp_client__listen_stop(t);
    t->session[0] = 0;
    t->reinit = 1;
    rc = mcp_client__initialize(c, err, cap);
    t->reinit = 0;
    if (!rc) rc = try_request(t, text, id, 0, timeout_ms, resp_out, err, cap);
  }
  if (rc == 1) rc = err_set(err, cap, -EPROTO, "the server does not know the session (HTTP 404), even after initializing again");
  free(text);
  return rc;
}

static int http_notify(mcp_client *c, json_t *msg, char *err, size_t cap) {
  mcp_client_http *t = c->tr;
  const char *method = json_string_value(json_object_get(msg, "method"));
  int is_initialized = method && !strcmp(method, "notifications/initialized");
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!text) return err_set(err, cap, ERR_NOMEM, "out of memory");
  mcp_client_sse parser;
  mcp_client__sse_init(&parser, MCP_CLIENT_MAX_MSG);
  mcp_client_exch x;
  mcp_client__http_exch_init(&x, t, &parser, 0, 0);
  CURLcode cc = mcp_client__http_perform(t, &x, MCP_HTTP_POST, text, NULL, c->timeout_ms);
  int rc = 0;
  if ((cc != CURLE_OK && cc != CURLE_WRITE_ERROR) || x.status / 100 != 2) rc = exch_error(t, &x, cc, c->timeout_ms, err, cap);
  else if (is_initialized) mcp_client__listen_start(t);
  buf_deinit(&x.body);
  mcp_client__sse_deinit(&parser);
  free(text);
  return rc;
}

static void http_close(mcp_client *c) {
  mcp_client_http *t = c->tr;
  if (!t) return;
  mcp_client__listen_stop(t);
  if (t->session[0] && t->curl) {
    mcp_client_sse parser;
    mcp_client__sse_init(&parser, 4096);
    mcp_client_exch x;
    mcp_client__http_exch_init(&x, t, &parser, 0, 0);
    CURLcode cc = mcp_client__http_perform(t, &x, MCP_HTTP_DELETE, NULL, NULL, CLOSE_TIMEOUT_MS);
    log_debug("MCP server '%s': session ended (DELETE: %s, HTTP %ld)", c->name, curl_easy_strerror(cc), x.status);
    buf_deinit(&x.body);
    mcp_client__sse_deinit(&parser);
  }
  if (t->curl) curl_easy_cleanup(t->curl);
  if (t->side) curl_easy_cleanup(t->side);
  if (t->lcurl) curl_easy_cleanup(t->lcurl);
  if (t->lside) curl_easy_cleanup(t->lside);
  pthread_mutex_destroy(&t->lmu);
  pthread_cond_destroy(&t->lcv);
  if (t->bearer) {
    sodium_memzero(t->bearer, strlen(t->bearer));
    free(t->bearer);
  }
  free(t->url);
  free(t);
  c->tr = NULL;
}

static const mcp_client_transport http_transport = {http_request, http_notify, http_close};

int mcp_client__http_open(mcp_client *c, const mcp_client_cfg *cfg, char *err, size_t cap) {
  if (strncasecmp(cfg->url, "http://", 7) && strncasecmp(cfg->url, "https://", 8))
    return err_set(err, cap, ERR_INVAL, "'%s' is not an http:// or https:// URL", cfg->url);
  if (strpbrk(cfg->url, " \r\n")) return err_set(err, cap, ERR_INVAL, "the URL holds a space or a line break");
  if (cfg->bearer && (!*cfg->bearer || strpbrk(cfg->bearer, "\r\n")))
    return err_set(err, cap, ERR_INVAL, "the bearer token is empty or holds a line break");
  pthread_once(&curl_once, curl_init_once);
  mcp_client_http *t = calloc(1, sizeof *t);
  if (!t) return err_set(err, cap, ERR_NOMEM, "out of memory");
  t->c = c;
  pthread_mutex_init(&t->lmu, NULL);
  pthread_cond_init(&t->lcv, NULL);
  t->lsock = CURL_SOCKET_BAD;
  t->url = strdup(cfg->url);
  t->bearer = cfg->bearer ? strdup(cfg->bearer) : NULL;
  t->curl = curl_easy_init();
  if (!t->url || (cfg->bearer && !t->bearer) || !t->curl) {
    c->tr = t;
    http_close(c);
    return err_set(err, cap, ERR_NOMEM, "out of memory");
  }
  c->t = &http_transport;
  c->tr = t;
  return 0;
}
