/* market/stream — a generation's text between threads; see stream.h. */
#include "market/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"

struct mkt_stream {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs;
  buf text;
  size_t read_pos;
  logprob_rec *lp;       /* records pushed (their text_end: the text length when pushed) */
  int n_lp, cap_lp, lp_read;
  buf lp_bytes;          /* their pieces */
  int started, done, canceled;
  char node_id[MKT_NODE_ID_MAX];
  mkt_result result;
  void (*cancel_fn)(void *ud);
  void *cancel_ud;
  void (*notify_fn)(void *ud); /* the consumer's news hook (called under mu) */
  void *notify_ud;
  int notify_text;             /* the hook wants text too, not only the start and the end */
};

/* Tells the consumer there is news (mu held); text: only text or records came. */
static void news(mkt_stream *s, int text) {
  pthread_cond_broadcast(&s->cv);
  if (s->notify_fn && (!text || s->notify_text)) s->notify_fn(s->notify_ud);
}

mkt_stream *mkt_stream_new(void) {
  mkt_stream *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  buf_init(&s->text);
  s->refs = 1;
  return s;
}

void mkt_stream_ref(mkt_stream *s) {
  pthread_mutex_lock(&s->mu);
  s->refs++;
  pthread_mutex_unlock(&s->mu);
}

void mkt_stream_unref(mkt_stream *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  int left = --s->refs;
  pthread_mutex_unlock(&s->mu);
  if (left) return;
  buf_deinit(&s->text);
  buf_deinit(&s->lp_bytes);
  free(s->lp);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

int mkt_stream_push(mkt_stream *s, const char *text, size_t len) {
  pthread_mutex_lock(&s->mu);
  int rc = buf_append(&s->text, text, len);
  s->started = 1;
  news(s, 1);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void mkt_stream_set_node(mkt_stream *s, const char *node_id) {
  pthread_mutex_lock(&s->mu);
  snprintf(s->node_id, sizeof s->node_id, "%s", node_id);
  s->started = 1;
  news(s, 0);
  pthread_mutex_unlock(&s->mu);
}

void mkt_stream_finish(mkt_stream *s, const mkt_result *r) {
  pthread_mutex_lock(&s->mu);
  if (!s->done) {
    s->result = *r;
    if (s->result.finish == LOCAL_RUNNING) s->result.finish = LOCAL_ERROR;
    s->done = s->started = 1;
  }
  news(s, 0);
  pthread_mutex_unlock(&s->mu);
}

void mkt_stream_on_cancel(mkt_stream *s, void (*fn)(void *ud), void *ud) {
  pthread_mutex_lock(&s->mu);
  s->cancel_fn = fn;
  s->cancel_ud = ud;
  pthread_mutex_unlock(&s->mu);
}

void *mkt_stream_on_notify(mkt_stream *s, void (*fn)(void *ud), void *ud, int text) {
  pthread_mutex_lock(&s->mu);
  void *old = s->notify_ud;
  s->notify_fn = fn;
  s->notify_ud = ud;
  s->notify_text = text;
  pthread_mutex_unlock(&s->mu);
  return old;
}

int mkt_stream_canceled(mkt_stream *s) {
  pthread_mutex_lock(&s->mu);
  int c = s->canceled;
  pthread_mutex_unlock(&s->mu);
  return c;
}

int mkt_stream_done(mkt_stream *s) {
  pthread_mutex_lock(&s->mu);
  int d = s->done;
  pthread_mutex_unlock(&s->mu);
  return d;
}

static void deadline_in(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

int mkt_stream_push_logprobs(mkt_stream *s, const logprob_rec *recs, int n, const uint8_t *bytes, size_t text_to_come) {
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  if (s->n_lp + n > s->cap_lp) {
    int nc = s->cap_lp ? s->cap_lp : 64;
    while (nc < s->n_lp + n) nc *= 2;
    logprob_rec *p = realloc(s->lp, (size_t)nc * sizeof *p);
    if (!p) rc = ERR_NOMEM;
    else s->lp = p, s->cap_lp = nc;
  }
  for (int i = 0; !rc && i < n; i++) {
    logprob_rec r = recs[i];
    logprob_tok *ts[1 + LOGPROB_MAX_TOP];
    ts[0] = &r.tok;
    for (int k = 0; k < r.n_top; k++) ts[1 + k] = &r.top[k];
    for (int k = 0; !rc && k < 1 + r.n_top; k++) {
      uint32_t off = ts[k]->off;
      ts[k]->off = (uint32_t)s->lp_bytes.len;
      rc = buf_append(&s->lp_bytes, bytes + off, ts[k]->len);
    }
    r.text_end = s->text.len + text_to_come;
    if (!rc) s->lp[s->n_lp++] = r;
  }
  news(s, 1);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int mkt_stream_read_logprobs(mkt_stream *s, logprob_rec *out, int cap, buf *bytes) {
  pthread_mutex_lock(&s->mu);
  int n = 0, rc = 0;
  while (n < cap && s->lp_read < s->n_lp && s->lp[s->lp_read].text_end <= s->read_pos) {
    logprob_rec *o = &out[n];
    *o = s->lp[s->lp_read];
    logprob_tok *ts[1 + LOGPROB_MAX_TOP];
    ts[0] = &o->tok;
    for (int k = 0; k < o->n_top; k++) ts[1 + k] = &o->top[k];
    for (int k = 0; !rc && k < 1 + o->n_top; k++) {
      uint32_t off = ts[k]->off;
      ts[k]->off = (uint32_t)bytes->len;
      rc = buf_append(bytes, s->lp_bytes.ptr + off, ts[k]->len);
    }
    if (rc) break;
    n++;
    s->lp_read++;
  }
  pthread_mutex_unlock(&s->mu);
  return rc ? rc : n;
}

int mkt_stream_read(mkt_stream *s, char *out, size_t cap, int timeout_ms) {
  struct timespec dl;
  deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  while (s->read_pos == s->text.len && !s->done)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) break;
  int rc;
  if (s->read_pos < s->text.len) {
    size_t n = s->text.len - s->read_pos;
    if (n > cap) n = cap;
    memcpy(out, s->text.ptr + s->read_pos, n);
    s->read_pos += n;
    rc = (int)n;
  } else if (s->done) {
    rc = s->result.finish == LOCAL_ERROR ? ERR_INVAL : 0;
  } else {
    rc = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int mkt_stream_wait(mkt_stream *s, int timeout_ms, mkt_result *r) {
  struct timespec dl;
  deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  while (!s->done)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) { rc = -ETIMEDOUT; break; }
  if (r) *r = s->result;
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int mkt_stream_wait_started(mkt_stream *s, int timeout_ms, char node_id[MKT_NODE_ID_MAX]) {
  struct timespec dl;
  deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&s->mu);
  int rc = 0;
  while (!s->started)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) { rc = -ETIMEDOUT; break; }
  memcpy(node_id, s->node_id, MKT_NODE_ID_MAX);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void mkt_stream_cancel(mkt_stream *s) {
  pthread_mutex_lock(&s->mu);
  int first = !s->canceled && !s->done;
  s->canceled = 1;
  if (!s->done) { /* the reader is done with it now: waits end at once (the producer's finish is ignored) */
    memset(&s->result, 0, sizeof s->result);
    s->result.finish = LOCAL_CANCELED;
    snprintf(s->result.error, sizeof s->result.error, "canceled");
    s->done = s->started = 1;
    news(s, 0);
  }
  void (*fn)(void *) = s->cancel_fn;
  void *ud = s->cancel_ud;
  pthread_mutex_unlock(&s->mu);
  if (first && fn) fn(ud);
}

void mkt_stream_node(mkt_stream *s, char node_id[MKT_NODE_ID_MAX]) {
  pthread_mutex_lock(&s->mu);
  memcpy(node_id, s->node_id, MKT_NODE_ID_MAX);
  pthread_mutex_unlock(&s->mu);
}
