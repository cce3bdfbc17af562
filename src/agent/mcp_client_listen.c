/* agent/mcp_client_listen — the Streamable HTTP client's standalone stream.
 * After initialize, a listener thread holds a GET open on the URL, so that requests and
 * notifications the server sends outside any request of ours (an elicitation a tool asks
 * for through the server object, say) reach the client; a 405 (or any answer that is not an
 * event stream) means the server offers none, and the thread ends. A stream that ends is
 * resumed after its retry: delay with Last-Event-ID; three failures in a row end it. Close
 * (and re-initialization) stops the thread: a flag, and a shutdown of its socket so a read
 * in progress returns at once. */
#include <curl/curl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/mcp_client_http.h"
#include "core/log.h"

static curl_socket_t listen_open_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  mcp_client_http *t = ud;
  (void)purpose;
  pthread_mutex_lock(&t->lmu);
  curl_socket_t fd = t->lstop ? CURL_SOCKET_BAD : socket(a->family, a->socktype, a->protocol);
  if (fd != CURL_SOCKET_BAD) t->lsock = fd;
  pthread_mutex_unlock(&t->lmu);
  return fd;
}

static int listen_close_cb(void *ud, curl_socket_t fd) {
  mcp_client_http *t = ud;
  pthread_mutex_lock(&t->lmu);
  if (t->lsock == fd) t->lsock = CURL_SOCKET_BAD;
  pthread_mutex_unlock(&t->lmu);
  return close(fd);
}

static int listen_progress_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d) {
  mcp_client_http *t = ud;
  (void)a, (void)b, (void)c2, (void)d;
  pthread_mutex_lock(&t->lmu);
  int stop = t->lstop;
  pthread_mutex_unlock(&t->lmu);
  return stop;
}

void mcp_client__listen_hooks(mcp_client_http *t, CURL *c) {
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, listen_open_cb);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, t);
  curl_easy_setopt(c, CURLOPT_CLOSESOCKETFUNCTION, listen_close_cb);
  curl_easy_setopt(c, CURLOPT_CLOSESOCKETDATA, t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, listen_progress_cb);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L); /* the socket is ours to shut down: never a cached one */
}

/* Waits ms or until asked to stop; 1 when asked. */
static int listen_wait(mcp_client_http *t, long ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&t->lmu);
  while (!t->lstop && pthread_cond_timedwait(&t->lcv, &t->lmu, &ts) == 0) {
  }
  int stop = t->lstop;
  pthread_mutex_unlock(&t->lmu);
  return stop;
}

static void *listen_main(void *arg) {
  mcp_client_http *t = arg;
  mcp_client_sse parser;
  mcp_client__sse_init(&parser, MCP_CLIENT_MAX_MSG);
  int failures = 0;
  for (;;) {
    mcp_client_exch x;
    mcp_client__http_exch_init(&x, t, &parser, 0, 0);
    x.h = t->lcurl;
    x.side = &t->lside;
    CURLcode cc = mcp_client__http_perform(t, &x, MCP_HTTP_GET, NULL, parser.last_id, -1);
    buf_deinit(&x.body);
    pthread_mutex_lock(&t->lmu);
    t->lready = 1;
    pthread_cond_broadcast(&t->lcv);
    pthread_mutex_unlock(&t->lmu);
    if (listen_wait(t, 0)) break;
    if (x.status && (x.status / 100 != 2 || !x.sse)) {
      log_debug("MCP server '%s' offers no standalone event stream (GET: HTTP %ld)", t->c->name, x.status);
      break;
    }
    failures = x.status ? 0 : failures + 1;
    if (failures == 3) {
      log_debug("MCP server '%s': the standalone event stream failed 3 times (%s); given up", t->c->name,
                curl_easy_strerror(cc));
      break;
    }
    if (listen_wait(t, parser.retry_ms >= 0 ? parser.retry_ms : MCP_CLIENT_RETRY_DEFAULT_MS)) break;
    mcp_client_sse next;
    mcp_client__sse_init(&next, MCP_CLIENT_MAX_MSG);
    memcpy(next.last_id, parser.last_id, sizeof next.last_id);
    next.retry_ms = parser.retry_ms;
    mcp_client__sse_deinit(&parser);
    parser = next;
  }
  mcp_client__sse_deinit(&parser);
  return NULL;
}

void mcp_client__listen_start(mcp_client_http *t) {
  if (t->listening) return;
  if (!t->lcurl && !(t->lcurl = curl_easy_init())) return;
  t->lstop = t->lready = 0;
  t->lsock = CURL_SOCKET_BAD;
  if (pthread_create(&t->listener, NULL, listen_main, t)) {
    log_warn("MCP server '%s': no thread for its event stream; requests it sends on its own will go unanswered",
             t->c->name);
    return;
  }
  t->listening = 1;
  /* Wait until the stream is open (or refused), so that nothing the server sends on it
   * after our next request is lost; a server that keeps the GET's headers back costs
   * MCP_CLIENT_LISTEN_READY_MS once. */
  long long deadline = mcp_client__now_ms() + MCP_CLIENT_LISTEN_READY_MS;
  pthread_mutex_lock(&t->lmu);
  while (!t->lready && mcp_client__now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&t->lcv, &t->lmu, &ts);
  }
  pthread_mutex_unlock(&t->lmu);
}

void mcp_client__listen_stop(mcp_client_http *t) {
  if (!t->listening) return;
  pthread_mutex_lock(&t->lmu);
  t->lstop = 1;
  if (t->lsock != CURL_SOCKET_BAD) shutdown(t->lsock, SHUT_RDWR);
  pthread_cond_broadcast(&t->lcv);
  pthread_mutex_unlock(&t->lmu);
  pthread_join(t->listener, NULL);
  t->listening = 0;
}
