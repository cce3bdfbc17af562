/* market/gen — the one generation path; see gen.h. */
#include "market/gen.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/mstore.h"
#include "privacy/policy.h"
#include "privacy/redact_req.h"

struct gen {
  pthread_mutex_t mu;       /* guards live and stopping */
  gen_stream *live;         /* streams not released yet */
  int stopping;
  gen_opts o;
  char models_dir[1024];
  char self_id[MKT_NODE_ID_MAX];
  gen_policy_fn policy;
  void *policy_ud;
};

/* A local job's news hook: shared by the stream and the job (which may outlive it: the
 * worker drops its reference when it lets the job go). */
typedef struct gen_hook {
  pthread_mutex_t mu;       /* guards fn, ud, refs; held while fn runs */
  int refs;
  void (*fn)(void *ud);
  void *ud;
  int text;                 /* fn wants every token, not only the end */
  local_job *job;           /* the job (alive whenever it fires the hook) */
} gen_hook;

static void hook_fire(void *arg) {
  gen_hook *h = arg;
  pthread_mutex_lock(&h->mu);
  if (h->fn && (h->text || local_job_done(h->job))) h->fn(h->ud);
  pthread_mutex_unlock(&h->mu);
}

static void hook_unref(void *arg) {
  gen_hook *h = arg;
  if (!h) return;
  pthread_mutex_lock(&h->mu);
  int left = --h->refs;
  pthread_mutex_unlock(&h->mu);
  if (left) return;
  pthread_mutex_destroy(&h->mu);
  free(h);
}

struct gen_stream {
  gen_hook *hook;           /* local: the job's news hook (NULL when the caller set its own) */
  local_job *job;           /* a local generation, or */
  mkt_stream *ms;           /* one bought from the network */
  char self_id[MKT_NODE_ID_MAX];
  gen *g;
  gen_stream *prev, *next;  /* in g->live */
  redact_map *map;          /* owned: a redacted request's values (NULL: not redacted) */
  redact_restorer rs;       /* restores map's placeholders in the text read */
  buf restored;             /* restored text not given to the reader yet */
  size_t restored_at;       /* bytes of restored given already */
  int ended;                /* the router's stream ended (rc_end: how) */
  int rc_end;
};

int gen_new(const gen_opts *o, gen **out) {
  gen *g = calloc(1, sizeof *g);
  if (!g) return ERR_NOMEM;
  g->o = *o;
  snprintf(g->models_dir, sizeof g->models_dir, "%s", o->models_dir ? o->models_dir : "");
  snprintf(g->self_id, sizeof g->self_id, "%s", o->self_id ? o->self_id : "");
  g->o.models_dir = g->models_dir;
  pthread_mutex_init(&g->mu, NULL);
  *out = g;
  return 0;
}

void gen_free(gen *g) {
  if (!g) return;
  pthread_mutex_destroy(&g->mu);
  free(g);
}

void gen_shutdown(gen *g) {
  if (!g) return;
  pthread_mutex_lock(&g->mu);
  g->stopping = 1;
  for (gen_stream *s = g->live; s; s = s->next) gen_cancel(s);
  pthread_mutex_unlock(&g->mu);
}

void gen_set_policy(gen *g, gen_policy_fn fn, void *ud) {
  g->policy = fn;
  g->policy_ud = ud;
}

static int refuse(gen_error *e, local_req *lr, int status, const char *code, const char *fmt, const char *arg) {
  local_req_clear(lr);
  e->status = status;
  e->code = code;
  snprintf(e->message, sizeof e->message, fmt, arg);
  return status == 404 ? ERR_NOTFOUND : status == 403 ? ERR_PERM : status == 400 ? ERR_UNSUPPORTED : ERR_BUSY; /* 429, 503: busy */
}

int gen_submit(gen *g, const gen_request *r, local_req *lr, gen_stream **out, char *name_out, size_t name_cap,
               gen_error *e) {
  memset(e, 0, sizeof *e);
  const char *model = r->model ? r->model : "";
  if (!*model || strlen(model) > 200)
    return refuse(e, lr, 404, "model_not_found", "model '%.200s' is not a model name or sha256", model);
  /* Local when this node has the model and nobody named another provider. */
  mstore_model m;
  char err[512];
  int local = !r->only && g->o.local && !strchr(model, '/') &&
              mstore_resolve(g->models_dir, model, &m, err, sizeof err) == 0;
  if (!local && lr->n_embed > 0) /* the market sells generations only */
    return refuse(e, lr, 404, "model_not_found",
                  "model '%.200s' is not on this node; embeddings are served by this node's own models only "
                  "(see GET /v1/models: those owned by this node)", model);
  if (!local && !g->o.network)
    return refuse(e, lr, 404, "model_not_found", "model '%.200s' is not on this node (see GET /v1/models)", model);
  if (!local && lr->echo_logprobs) /* providers send the generated tokens' records only (docs/api.md) */
    return refuse(e, lr, 400, "unsupported_parameter",
                  "echo with logprobs (the prompt's logprobs) is given only for models this node runs itself, and "
                  "'%.200s' would be bought from another node",
                  model);
  policy_level privacy = policy_strictest((policy_level)g->o.privacy, (policy_level)lr->privacy);
  if (!local && privacy == POLICY_LOCAL_ONLY)
    return refuse(e, lr, 403, "privacy_local_only",
                  "the privacy policy of this request is local-only and model '%.200s' is not on this node: the "
                  "prompt was not sent anywhere (pull the model, or use a token, agent or request allowing "
                  "'redact' or 'allow')",
                  model);
  redact_map *map = NULL;
  if (!local && privacy == POLICY_REDACT) {
    int rrc = redact_map_new(REDACT_ALL, &map);
    if (!rrc) rrc = redact_req_apply(map, lr);
    if (rrc) {
      redact_map_free(map);
      return refuse(e, lr, rrc == ERR_NOMEM ? 503 : 400, "privacy_redact_failed",
                    "the privacy policy of this request is redact and its text could not be redacted (%s): the "
                    "prompt was not sent anywhere",
                    rrc == ERR_TOOBIG ? "over 4 MiB in one text, or more than 4096 values to replace"
                                      : err_str(rrc));
    }
  }
  gen_where where = local ? GEN_LOCAL : GEN_NETWORK;
  if (g->policy) {
    char why[600] = "";
    if (g->policy(g->policy_ud, model, where, lr, why, sizeof why)) {
      redact_map_free(map);
      return refuse(e, lr, 403, "policy", "%s", why[0] ? why : "refused by this node's policy");
    }
  }
  gen_stream *s = calloc(1, sizeof *s);
  if (!s) {
    redact_map_free(map);
    return refuse(e, lr, 503, "overloaded", "%s", "out of memory");
  }
  s->map = map; /* the stream owns it from here */
  if (map) redact_restorer_init(&s->rs, map);
  snprintf(s->self_id, sizeof s->self_id, "%s", g->self_id);
  s->g = g;
  pthread_mutex_lock(&g->mu);
  int stopping = g->stopping, n_live = 0;
  for (gen_stream *x = g->live; x && g->o.max_live; x = x->next) n_live++;
  int full = !stopping && g->o.max_live && n_live >= g->o.max_live;
  if (!stopping && !full) {
    s->next = g->live;
    if (g->live) g->live->prev = s;
    g->live = s;
  }
  pthread_mutex_unlock(&g->mu);
  if (stopping || full) {
    free(s);
    if (full)
      return refuse(e, lr, 429, "rate_limit_exceeded", "%s",
                    "too many generations at once on this node; retry in a moment ([http] max_generations)");
    return refuse(e, lr, 503, "overloaded", "%s", "the node is stopping");
  }
  int rc;
  if (local) {
    snprintf(lr->model_path, sizeof lr->model_path, "%s", m.path);
    snprintf(name_out, name_cap, "%s", m.name);
    if (!lr->notify && (s->hook = calloc(1, sizeof *s->hook))) {
      pthread_mutex_init(&s->hook->mu, NULL);
      s->hook->refs = 2; /* the stream's and the job's */
      lr->notify = hook_fire;
      lr->notify_ud = s->hook;
      lr->notify_free = hook_unref;
    }
    rc = local_submit(g->o.local, lr, &s->job);
    if (!rc && s->hook) {
      pthread_mutex_lock(&s->hook->mu);
      s->hook->job = s->job;
      pthread_mutex_unlock(&s->hook->mu);
    }
    if (rc && s->hook) { /* never became a job: its reference is ours to drop */
      lr->notify = NULL, lr->notify_ud = NULL, lr->notify_free = NULL;
      hook_unref(s->hook);
    }
  } else {
    snprintf(name_out, name_cap, "%s", model);
    rc = g->o.network(g->o.network_ud, model, r->only, lr, &s->ms); /* takes lr */
  }
  if (rc) {
    gen_release(s);
    return refuse(e, lr, 503, "overloaded", "%s", "cannot queue the request (the node may be stopping)");
  }
  *out = s;
  return 0;
}

/* A redacted stream: gives restored text, reading the router's as needed. */
static int read_restored(gen_stream *s, char *out, size_t cap, int timeout_ms) {
  for (;;) {
    if (s->restored_at < s->restored.len) {
      size_t n = s->restored.len - s->restored_at;
      if (n > cap) n = cap;
      memcpy(out, s->restored.ptr + s->restored_at, n);
      s->restored_at += n;
      if (s->restored_at == s->restored.len) buf_reset(&s->restored), s->restored_at = 0;
      return (int)n;
    }
    if (s->ended) return s->rc_end;
    if (cap == 0) return mkt_stream_read(s->ms, out, 0, timeout_ms);
    char tmp[4096];
    int n = mkt_stream_read(s->ms, tmp, sizeof tmp, timeout_ms);
    if (n > 0) {
      if (redact_restorer_push(&s->rs, tmp, (size_t)n, &s->restored)) return ERR_NOMEM;
      continue; /* all of it may be held back: read on */
    }
    if (n == 0 || n == ERR_INVAL) { /* the end: give what was held back first */
      s->ended = 1;
      s->rc_end = n;
      if (redact_restorer_flush(&s->rs, &s->restored)) return ERR_NOMEM;
      continue;
    }
    return n;
  }
}

int gen_read(gen_stream *s, char *out, size_t cap, int timeout_ms) {
  if (s->job) return local_job_read(s->job, out, cap, timeout_ms);
  return s->map ? read_restored(s, out, cap, timeout_ms) : mkt_stream_read(s->ms, out, cap, timeout_ms);
}

int gen_n_redacted(const gen_stream *s) { return s->map ? redact_map_count(s->map) : 0; }

int gen_read_logprobs(gen_stream *s, logprob_rec *out, int cap, buf *bytes) {
  return s->job ? local_job_read_logprobs(s->job, out, cap, bytes) : mkt_stream_read_logprobs(s->ms, out, cap, bytes);
}

int gen_wait(gen_stream *s, int timeout_ms, mkt_result *r) {
  memset(r, 0, sizeof *r);
  if (!s->job) return mkt_stream_wait(s->ms, timeout_ms, r);
  local_result lr;
  int rc = local_job_wait(s->job, timeout_ms, &lr);
  if (rc) return rc;
  r->finish = lr.finish;
  r->prompt_tokens = lr.prompt_tokens;
  r->completion_tokens = lr.completion_tokens;
  snprintf(r->error, sizeof r->error, "%s", lr.error);
  if (lr.finish == LOCAL_ERROR && lr.kind == LOCAL_E_CONTEXT) r->http_status = 400, r->code = "context_length_exceeded";
  if (lr.finish == LOCAL_ERROR && lr.kind == LOCAL_E_REQUEST) r->http_status = 400, r->code = "invalid_request";
  snprintf(r->node_id, sizeof r->node_id, "%s", s->self_id);
  r->n_providers = 1;
  snprintf(r->providers[0], sizeof r->providers[0], "%s", s->self_id);
  return 0;
}

int gen_wait_started(gen_stream *s, int timeout_ms, char node_id[MKT_NODE_ID_MAX]) {
  if (s->job) {
    snprintf(node_id, MKT_NODE_ID_MAX, "%s", s->self_id);
    return 0;
  }
  return mkt_stream_wait_started(s->ms, timeout_ms, node_id);
}

int gen_failed_early(gen_stream *s) {
  if (s->job || !mkt_stream_done(s->ms)) return 0;
  mkt_result r;
  if (mkt_stream_wait(s->ms, 0, &r) || r.finish != LOCAL_ERROR) return 0;
  return mkt_stream_read(s->ms, (char[1]){0}, 0, 0) == ERR_INVAL;
}

void gen_node(gen_stream *s, char node_id[MKT_NODE_ID_MAX]) {
  if (s->job) snprintf(node_id, MKT_NODE_ID_MAX, "%s", s->self_id);
  else mkt_stream_node(s->ms, node_id);
}

int gen_embeddings(gen_stream *s, const float **out, int *dim) {
  *out = NULL;
  *dim = 0;
  return s->job ? local_job_embeddings(s->job, out, dim) : 0;
}

int gen_is_remote(const gen_stream *s) { return s->ms != NULL; }

void *gen_set_notify(gen_stream *s, void (*fn)(void *ud), void *ud, int text) {
  if (s->ms) return mkt_stream_on_notify(s->ms, fn, ud, text);
  if (!s->hook) return ud; /* cannot notify: the caller keeps ud */
  pthread_mutex_lock(&s->hook->mu);
  void *old = s->hook->ud;
  s->hook->fn = fn;
  s->hook->ud = ud;
  s->hook->text = text;
  pthread_mutex_unlock(&s->hook->mu);
  return old;
}

void gen_cancel(gen_stream *s) {
  if (s->job) local_job_cancel(s->job);
  else if (s->ms) mkt_stream_cancel(s->ms);
}

void gen_release(gen_stream *s) {
  if (!s) return;
  pthread_mutex_lock(&s->g->mu);
  if (s->prev) s->prev->next = s->next;
  else s->g->live = s->next;
  if (s->next) s->next->prev = s->prev;
  pthread_mutex_unlock(&s->g->mu);
  gen_set_notify(s, NULL, NULL, 0); /* no news after this: the hook's ud may go */
  hook_unref(s->hook);
  local_job_release(s->job);
  mkt_stream_unref(s->ms);
  redact_map_free(s->map);
  buf_deinit(&s->restored);
  free(s);
}

int gen_n_live(gen *g) {
  int n = 0;
  pthread_mutex_lock(&g->mu);
  for (gen_stream *s = g->live; s; s = s->next) n++;
  pthread_mutex_unlock(&g->mu);
  return n;
}
