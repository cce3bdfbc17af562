/* node/mktsvc — buying generations from other nodes; see mktsvc.h and docs/market.md. */
#include "node/mktsvc.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/ethrpc.h"
#include "chain/registry.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "llm/gguf.h"
#include "llm/mstore.h"
#include "market/rank.h"
#include "market/payflow.h"
#include "market/receipt.h"
#include "pay/channel.h"

#define MAX_PEERS 256
#define MAX_REG 64
#define MAX_CANDS 64
#define MAX_TRIED 8
#define MAX_ATTEMPTS 6
#define TIMER_MS 100
#define FIND_WAIT_MS 6000          /* how long to look for a provider before giving up */
#define CHANNEL_RETRIES 20         /* `generate` retries while the provider looks a new channel up */
#define CHANNEL_RETRY_MS 300
#define OFFERS_REFRESH_MS 60000
#define GEN_TIMEOUT_MS (30 * 60 * 1000)
#define MAX_NAMES 256
#define REG_LIST_MS 60000
#define MAX_WAITING 64
#define MAX_INFLIGHT 64
#define RESEND_MS 2000             /* how often unanswered vouchers are sent again */
#define PAY_TIMEOUT_MS 15000

/* Peer error codes of `generate` (node/gensvc.c). */
enum { GEN_E_NO_MODEL = -32010, GEN_E_PRICE = -32013, GEN_E_PAYMENT = -32014, GEN_E_CHANNEL_RETRY = -32015 };

typedef struct peer_offers {
  int used;
  uint8_t pk[32];
  mkt_offer offers[MKT_MAX_OFFERS];
  size_t n;
  uint64_t at;            /* loop ms of the answer; 0 = never */
  int asking;
} peer_offers;

enum { REG_PENDING = 1, REG_LISTED, REG_UNLISTED, REG_OFFLINE };

typedef struct reg_entry {
  uint8_t sha[32];
  int state;
  uint64_t at;
} reg_entry;

typedef struct mreq mreq;

typedef struct attempt {
  mreq *q;                /* NULL once the request is over */
  mktsvc *m;
  uint8_t request[16];    /* copies of the request's, for receipts written after it ended */
  uint8_t model[32];
  int n_cont;             /* ids sent as continuation */
  uint8_t request_hash[32];
  int has_hash;
  uint8_t pk[32];
  char node_id[IDENT_ID_BUF];
  mkt_offer offer;
  uint8_t channel[32];
  int has_channel;
  int pt, gt;             /* prompt (incl. cont) and generated tokens reported */
  uint64_t paid_signed, paid_acked;
  uint64_t started_ms, first_ms, last_ms, retry_at;
  int retries, link_retries;
  int live;               /* a `generate` call is outstanding */
  int pays_live;          /* market.pay calls outstanding, or waiting for the channel */
  int paying;             /* one of ours is unanswered: the next waits (payflow, one per channel) */
  int pay_waiting;        /* in m->waiting: the channel has another attempt's voucher out */
  int done;               /* final result received */
  int final_paid;         /* the last voucher is out */
  char status[16];
} attempt;

enum { Q_NAME = 1, Q_RESOLVE, Q_REGISTRY, Q_FIND, Q_CHANNEL, Q_RUN, Q_DONE };

struct mreq {
  mktsvc *m;
  mkt_stream *stream;     /* HTTP request (reference), or NULL */
  json_t *params;         /* base `generate` params */
  char spec[256];
  uint8_t sha[32];
  uint8_t request[16];
  uint8_t only[32];
  int has_only;
  int max_tokens;
  int32_t *ids;
  int n_ids, cap_ids;
  size_t text_bytes;      /* bytes of generated text received (over all attempts) */
  int orig_pt;
  attempt *cur;
  attempt *hist[MAX_ATTEMPTS];
  int n_hist;
  uint8_t tried[MAX_TRIED][32];
  int n_tried;
  int state;
  uint64_t state_since;
  int found_kicked;
  char last_err[520];     /* why the providers failed, "id: why; id: why" */
  char finish[16];
  const char *code;       /* an OpenAI error code for a failed request (static), or NULL */
  int failovers;
  int verify;             /* a verification re-run of another request */
  uint8_t verify_of[32];
  int32_t *expect;
  int n_expect;
  mreq *next;
};

struct mktsvc {
  uv_loop_t *loop;
  uv_timer_t timer;
  uv_async_t async;
  int handles;
  uint8_t me[32];
  store *db;
  netsvc *ns;
  paysvc *pay;
  gensvc *gen;
  const char *models_dir;
  char wallet_path[1024];
  /* chain */
  char rpc_url[512];
  uint8_t registry[20];
  int registry_on;
  reg_entry reg[MAX_REG];
  /* the Registry's listing, for model names (refreshed every REG_LIST_MS) */
  struct { char name[MKT_NAME_MAX]; uint8_t sha[32]; int verified; uint64_t at; } names[MAX_NAMES];
  int n_names;
  uint64_t names_at;
  int names_busy;
  /* settings */
  uint64_t max_pp, max_gp;
  u256 deposit;
  uint64_t lifetime_s;
  int pay_every;
  uint64_t stall_ms;
  double verify_rate;
  peer_offers peers[MAX_PEERS];
  mreq *reqs;
  attempt *waiting[MAX_WAITING]; /* attempts with tokens to pay whose channel is busy */
  int n_waiting;
  uint8_t inflight[MAX_INFLIGHT][32]; /* channels with a market.pay call outstanding */
  int n_inflight;
  uint64_t resend_at;     /* next look for unanswered vouchers to send again */
  unsigned resend_round;
  int jobs;               /* thread-pool jobs running */
  /* the HTTP threads' inbox, and what the network offers for GET /v1/models */
  pthread_mutex_t mu;
  char *models_json;      /* under mu: a JSON array of network models */
  mreq *inbox;
  int stopped;            /* under mu */
  int closing;
};

static uint64_t now_ms(mktsvc *m) { return uv_now(m->loop); }

static void ignore_reply(void *ud, const rpc_reply *r) { (void)ud, (void)r; }

/* ---- offers ---------------------------------------------------------------------------- */

static peer_offers *peer_slot(mktsvc *m, const uint8_t pk[32], int create) {
  peer_offers *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < MAX_PEERS; i++) {
    peer_offers *p = &m->peers[i];
    if (p->used && !memcmp(p->pk, pk, 32)) return p;
    if (!p->used && !free_slot) free_slot = p;
    if (p->used && (!oldest || p->at < oldest->at)) oldest = p;
  }
  if (!create) return NULL;
  peer_offers *p = free_slot ? free_slot : oldest;
  memset(p, 0, sizeof *p);
  p->used = 1;
  memcpy(p->pk, pk, 32);
  return p;
}

typedef struct offers_ctx {
  mktsvc *m;
  uint8_t pk[32];
} offers_ctx;

/* What the network offers, by model: for GET /v1/models (read on HTTP threads). */
static void update_snapshot(mktsvc *m) {
  json_t *by = json_object();
  for (int i = 0; i < MAX_PEERS; i++) {
    peer_offers *p = &m->peers[i];
    if (!p->used || !p->at) continue;
    for (size_t k = 0; k < p->n; k++) {
      char hex[65];
      hex_encode(p->offers[k].model, 32, hex);
      json_t *e = json_object_get(by, hex);
      if (!e) {
        e = json_pack("{s:s, s:s, s:i, s:I}", "name", p->offers[k].name, "sha256", hex, "providers", 0, "min_price_gen",
                      (json_int_t)(p->offers[k].price_gen > INT64_MAX ? INT64_MAX : p->offers[k].price_gen));
        json_object_set_new(by, hex, e);
      }
      json_object_set_new(e, "providers", json_integer(json_integer_value(json_object_get(e, "providers")) + 1));
      if ((json_int_t)p->offers[k].price_gen < json_integer_value(json_object_get(e, "min_price_gen")))
        json_object_set_new(e, "min_price_gen", json_integer((json_int_t)p->offers[k].price_gen));
    }
  }
  json_t *arr = json_array();
  const char *key;
  json_t *v;
  json_object_foreach(by, key, v) json_array_append(arr, v);
  json_decref(by);
  char *text = json_dumps(arr, JSON_COMPACT);
  json_decref(arr);
  pthread_mutex_lock(&m->mu);
  free(m->models_json);
  m->models_json = text;
  pthread_mutex_unlock(&m->mu);
}

json_t *mktsvc_models(mktsvc *m) {
  pthread_mutex_lock(&m->mu);
  json_t *j = m->models_json ? json_loads(m->models_json, 0, NULL) : NULL;
  pthread_mutex_unlock(&m->mu);
  return j ? j : json_array();
}

static void on_offers(void *ud, const rpc_reply *reply) {
  offers_ctx *c = ud;
  mktsvc *m = c->m;
  m->jobs--;
  if (!m->closing) {
    peer_offers *p = peer_slot(m, c->pk, 1);
    p->asking = 0;
    if (reply->kind == RPC_REPLY_RESULT) {
      char err[200];
      size_t n = 0;
      if (mkt_offers_from_json(json_object_get(reply->result, "offers"), p->offers, MKT_MAX_OFFERS, &n, err,
                               sizeof err) == 0) {
        p->n = n;
        p->at = now_ms(m) ? now_ms(m) : 1;
        update_snapshot(m);
      } else {
        log_debug("bad offers from a peer: %s", err);
      }
    }
  }
  free(c);
}

static void ask_offers(mktsvc *m, const uint8_t pk[32]) {
  peer_offers *p = peer_slot(m, pk, 1);
  if (p->asking || m->closing) return;
  offers_ctx *c = malloc(sizeof *c);
  if (!c) return;
  c->m = m;
  memcpy(c->pk, pk, 32);
  p->asking = 1;
  m->jobs++;
  if (netsvc_call(m->ns, pk, "market.offers", json_object(), 10000, on_offers, c)) {
    p->asking = 0;
    m->jobs--;
    free(c);
  }
}

static void resend_unacked(mktsvc *m, int dial);

static void on_link_ready(void *ud, const uint8_t pk[32]) {
  mktsvc *m = ud;
  ask_offers(m, pk);
  if (!m->closing) resend_unacked(m, 0); /* a provider is back: settle what it never answered */
}

/* ---- the Registry (thread pool) ---------------------------------------------------------- */

typedef struct reg_job {
  uv_work_t w;
  mktsvc *m;
  uint8_t sha[32];
  int ensure;             /* register it when missing (our own offers) */
  char name[MKT_NAME_MAX];
  char path[1024];
  int rc;
} reg_job;

static void reg_work(uv_work_t *w) {
  reg_job *j = w->data;
  mktsvc *m = j->m;
  ethrpc *eth;
  if ((j->rc = ethrpc_new(m->rpc_url, 5000, &eth))) return;
  registry_model rm;
  j->rc = registry_get_model(eth, m->registry, j->sha, &rm);
  if (j->rc == ERR_NOTFOUND && j->ensure) {
    wallet wl;
    if (wallet_load(m->wallet_path, &wl) == 0) {
      char license[REGISTRY_LICENSE_MAX] = "unknown", source[REGISTRY_URI_MAX] = "";
      gguf_file *f;
      char e[128];
      if (gguf_open(j->path, &f, e, sizeof e) == 0) {
        gguf_str s;
        if (gguf_get_str(f, "general.license", &s) == 0 && s.len > 0 && s.len < (int)sizeof license)
          snprintf(license, sizeof license, "%.*s", (int)s.len, s.ptr);
        if (gguf_get_str(f, "general.source.url", &s) == 0 && s.len > 0 && s.len < (int)sizeof source)
          snprintf(source, sizeof source, "%.*s", (int)s.len, s.ptr);
        gguf_close(f);
      }
      j->rc = registry_add_model(eth, &wl, m->registry, j->sha, j->name, license, source, NULL);
      wallet_wipe(&wl);
      if (!j->rc) j->rc = 1; /* added */
    }
  }
  ethrpc_free(eth);
}

static void reg_set(mktsvc *m, const uint8_t sha[32], int state);

/* The Registry's models, so a request can name a model the Registry lists. */
typedef struct list_job {
  uv_work_t w;
  mktsvc *m;
  registry_model *list;
  int n;
} list_job;

static void list_work(uv_work_t *w) {
  list_job *j = w->data;
  ethrpc *eth;
  j->n = -1;
  if (ethrpc_new(j->m->rpc_url, 5000, &eth)) return;
  j->n = registry_list_models(eth, j->m->registry, j->list, MAX_NAMES);
  ethrpc_free(eth);
}

static void list_after(uv_work_t *w, int status) {
  list_job *j = w->data;
  mktsvc *m = j->m;
  m->jobs--;
  m->names_busy = 0;
  if (!status && j->n >= 0 && !m->closing) {
    m->n_names = 0;
    for (int i = 0; i < j->n && m->n_names < MAX_NAMES; i++) {
      size_t len = strlen(j->list[i].name);
      if (len >= MKT_NAME_MAX) continue;
      memcpy(m->names[m->n_names].name, j->list[i].name, len + 1);
      memcpy(m->names[m->n_names].sha, j->list[i].hash, 32);
      m->names[m->n_names].verified = j->list[i].verified;
      reg_set(m, j->list[i].hash, REG_LISTED); /* fresher than a cached "not listed" */
      m->names[m->n_names].at = j->list[i].registered_at;
      m->n_names++;
    }
  }
  free(j->list);
  free(j);
}

static void refresh_names(mktsvc *m) {
  if (!m->registry_on || m->names_busy || m->closing) return;
  list_job *j = calloc(1, sizeof *j);
  if (j) j->list = calloc(MAX_NAMES, sizeof *j->list);
  if (!j || !j->list) { if (j) free(j->list); free(j); return; }
  j->m = m;
  j->w.data = j;
  if (uv_queue_work(m->loop, &j->w, list_work, list_after)) { free(j->list); free(j); return; }
  m->jobs++;
  m->names_busy = 1;
  m->names_at = now_ms(m);
}

/* The hash the Registry lists under name: a verified listing first, then the oldest. */
static int registry_name(mktsvc *m, const char *name, uint8_t sha[32]) {
  int best = -1;
  for (int i = 0; i < m->n_names; i++) {
    if (strcmp(m->names[i].name, name)) continue;
    if (best < 0 || (m->names[i].verified && !m->names[best].verified) ||
        (m->names[i].verified == m->names[best].verified && m->names[i].at < m->names[best].at))
      best = i;
  }
  if (best < 0) return ERR_NOTFOUND;
  memcpy(sha, m->names[best].sha, 32);
  return 0;
}

static reg_entry *reg_find(mktsvc *m, const uint8_t sha[32]) {
  for (int i = 0; i < MAX_REG; i++)
    if (m->reg[i].state && !memcmp(m->reg[i].sha, sha, 32)) return &m->reg[i];
  return NULL;
}

static void reg_set(mktsvc *m, const uint8_t sha[32], int state) {
  reg_entry *e = reg_find(m, sha);
  if (!e) {
    e = &m->reg[0];
    for (int i = 0; i < MAX_REG; i++) {
      if (!m->reg[i].state) { e = &m->reg[i]; break; }
      if (m->reg[i].at < e->at) e = &m->reg[i];
    }
  }
  memcpy(e->sha, sha, 32);
  e->state = state;
  e->at = now_ms(m);
}

static void reg_after(uv_work_t *w, int status) {
  reg_job *j = w->data;
  mktsvc *m = j->m;
  m->jobs--;
  char hex[17];
  hex_encode(j->sha, 8, hex);
  if (j->ensure) {
    if (j->rc == 1) log_info("listed model %s (%s…) in the Registry", j->name, hex);
    else if (j->rc && j->rc != ERR_NOTFOUND) log_warn("cannot list model %s in the Registry: %s", j->name, err_str(j->rc));
  } else if (!m->closing) {
    int st = status ? REG_OFFLINE
             : j->rc == 0 ? REG_LISTED
             : j->rc == ERR_NOTFOUND ? REG_UNLISTED
                                     : REG_OFFLINE;
    if (st == REG_OFFLINE) log_warn("cannot read the Registry (%s): routing model %s… without the check", err_str(j->rc), hex);
    reg_set(m, j->sha, st);
  }
  free(j);
}

static int reg_start(mktsvc *m, const uint8_t sha[32], int ensure, const char *name, const char *path) {
  reg_job *j = calloc(1, sizeof *j);
  if (!j) return ERR_NOMEM;
  j->m = m;
  memcpy(j->sha, sha, 32);
  j->ensure = ensure;
  if (name) snprintf(j->name, sizeof j->name, "%s", name);
  if (path) snprintf(j->path, sizeof j->path, "%s", path);
  j->w.data = j;
  if (uv_queue_work(m->loop, &j->w, reg_work, reg_after)) { free(j); return ERR_NOMEM; }
  m->jobs++;
  if (!ensure) reg_set(m, sha, REG_PENDING);
  return 0;
}

/* ---- requests ---------------------------------------------------------------------------- */

static void step(mreq *q);
static void find_provider(mreq *q);
static int resolve_sha(mktsvc *m, const char *spec, uint8_t sha[32]);

static void set_state(mreq *q, int st) {
  q->state = st;
  q->state_since = now_ms(q->m);
}

static void free_req(mreq *q) {
  mkt_stream_unref(q->stream);
  json_decref(q->params);
  free(q->ids);
  free(q->expect);
  free(q);
}

static void maybe_free_attempt(attempt *a) {
  if (a->q || a->live || a->pays_live) return;
  free(a);
}

/* Attempts outlive the request while calls to them are outstanding. */
static void release_attempts(mreq *q) {
  for (int i = 0; i < q->n_hist; i++) {
    attempt *a = q->hist[i];
    if (!a) continue;
    q->hist[i] = NULL;
    a->q = NULL;
    maybe_free_attempt(a);
  }
  q->cur = NULL;
}

static void unlink_req(mreq *q) {
  for (mreq **pp = &q->m->reqs; *pp; pp = &(*pp)->next)
    if (*pp == q) { *pp = q->next; break; }
}

/* Our receipt for attempt a (its amount is payflow's: put never changes it). */
static void client_receipt(mktsvc *m, const attempt *a, mkt_receipt *r) {
  memset(r, 0, sizeof *r);
  r->role = MKT_CLIENT;
  memcpy(r->request, a->request, 16);
  memcpy(r->request_hash, a->request_hash, 32);
  r->has_request_hash = a->has_hash;
  memcpy(r->provider, a->pk, 32);
  memcpy(r->client, m->me, 32);
  memcpy(r->model, a->model, 32);
  if (a->has_channel) memcpy(r->channel, a->channel, 32), r->has_channel = 1;
  r->prompt_tokens = (uint64_t)a->pt;
  r->gen_tokens = (uint64_t)a->gt;
  r->price_prompt = a->offer.price_prompt;
  r->price_gen = a->offer.price_gen;
  snprintf(r->status, sizeof r->status, "%s", a->status[0] ? a->status : "partial");
}

static void write_client_receipt(mktsvc *m, attempt *a) {
  if (!a->pt && !a->gt) return;
  mkt_receipt r;
  client_receipt(m, a, &r);
  if (mkt_receipt_put(m->db, &r)) log_error("cannot record a receipt in %s: %s", store_path(m->db), store_errmsg(m->db));
}

static void start_verify(mreq *q);

/* Ends the request: the stream or control request gets the answer (or the error). */
static void finish_req(mreq *q, int ok, int http_status, const char *fmt, ...) {
  mktsvc *m = q->m;
  if (q->state == Q_DONE) return;
  set_state(q, Q_DONE);
  char msg[sizeof ((mkt_result *)0)->error] = "";
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  mkt_result r;
  memset(&r, 0, sizeof r);
  r.finish = ok ? (!strcmp(q->finish, "length") ? LOCAL_LENGTH : LOCAL_STOP) : LOCAL_ERROR;
  r.prompt_tokens = q->orig_pt;
  r.completion_tokens = q->n_ids;
  r.http_status = http_status;
  r.code = ok ? NULL : q->code;
  snprintf(r.error, sizeof r.error, "%s", msg);
  r.failovers = q->failovers;
  for (int i = 0; i < q->n_hist; i++) {
    attempt *a = q->hist[i];
    if (!a || (!a->gt && !a->done)) continue;
    uint64_t owed = 0;
    mkt_cost((uint64_t)a->pt, (uint64_t)a->gt, a->offer.price_prompt, a->offer.price_gen, &owed);
    r.cost_wei += a->done ? owed : a->paid_signed;
    if (r.n_providers < MKT_MAX_PROVIDERS) snprintf(r.providers[r.n_providers++], MKT_NODE_ID_MAX, "%s", a->node_id);
    snprintf(r.node_id, sizeof r.node_id, "%s", a->node_id);
  }
  if (q->stream) mkt_stream_finish(q->stream, &r);
  if (q->verify) {
    int mismatch = !ok ? -1 : (q->n_ids != q->n_expect || memcmp(q->ids, q->expect, (size_t)q->n_ids * sizeof *q->ids));
    if (mismatch >= 0) {
      char id[IDENT_ID_BUF];
      ident_id_encode(q->verify_of, id);
      if (mismatch) log_warn("verification: %s's answer differs from another provider's; its rank drops", id);
      else log_info("verification: %s's answer matched another provider's", id);
      mkt_stats_verify(m->db, q->verify_of, mismatch);
    }
  } else if (ok && q->n_hist == 1 && m->verify_rate > 0 &&
             (double)randombytes_uniform(1000000) / 1e6 < m->verify_rate) {
    start_verify(q);
  }
  if (q->cur && q->cur->live && !q->cur->done) { /* tell the provider to stop */
    char rq[33];
    hex_encode(q->request, 16, rq);
    netsvc_call(m->ns, q->cur->pk, "market.stop", json_pack("{s:s}", "request", rq), 5000, ignore_reply, NULL);
  }
  unlink_req(q);
  release_attempts(q);
  free_req(q);
}

static int exclude(mreq *q, const uint8_t pk[32]) {
  for (int i = 0; i < q->n_tried; i++)
    if (!memcmp(q->tried[i], pk, 32)) return 1;
  return 0;
}

static void add_tried(mreq *q, const uint8_t pk[32]) {
  if (!exclude(q, pk) && q->n_tried < MAX_TRIED) memcpy(q->tried[q->n_tried++], pk, 32);
}

/* ---- paying ---------------------------------------------------------------------------
 * market/payflow keeps the books: a voucher, the receipt it pays and the "unanswered" mark
 * move in one commit; a channel has one unanswered voucher at a time, so others wait here
 * (m->waiting); a refusal is undone; a voucher with no answer is sent again (resend_unacked)
 * until the provider says yes or no. */

enum { PAY_E_REFUSED = -32011 }; /* node/gensvc: the voucher was refused (not recorded) */

static int inflight_find(mktsvc *m, const uint8_t ch[32]) {
  for (int i = 0; i < m->n_inflight; i++)
    if (!memcmp(m->inflight[i], ch, 32)) return i;
  return -1;
}

static void inflight_set(mktsvc *m, const uint8_t ch[32], int on) {
  int i = inflight_find(m, ch);
  if (on && i < 0 && m->n_inflight < MAX_INFLIGHT) memcpy(m->inflight[m->n_inflight++], ch, 32);
  if (!on && i >= 0) memcpy(m->inflight[i], m->inflight[--m->n_inflight], 32);
}

typedef struct pay_ctx {
  mktsvc *m;
  attempt *a;             /* NULL: a resend of a voucher found in the store */
  voucher v;
  uint64_t add;
  uint8_t pk[32];
} pay_ctx;

static void fail_attempt(mreq *q, attempt *a, int provider_fault, const char *why);
static void maybe_pay(mktsvc *m, attempt *a, int final);

static void wait_channel(mktsvc *m, attempt *a) {
  if (a->pay_waiting || m->n_waiting >= MAX_WAITING) return;
  a->pay_waiting = 1;
  a->pays_live++;
  m->waiting[m->n_waiting++] = a;
}

/* Attempts waiting for a channel try again (all when ch is NULL). */
static void wake_waiters(mktsvc *m, const uint8_t *ch) {
  attempt *list[MAX_WAITING];
  int n = 0;
  for (int i = 0; i < m->n_waiting;) {
    attempt *a = m->waiting[i];
    if ((ch && memcmp(a->channel, ch, 32)) || inflight_find(m, a->channel) >= 0) { i++; continue; }
    m->waiting[i] = m->waiting[--m->n_waiting];
    list[n++] = a;
  }
  for (int i = 0; i < n; i++) {
    attempt *a = list[i];
    a->pay_waiting = 0;
    a->pays_live--;
    if (!m->closing) maybe_pay(m, a, a->done);
    maybe_free_attempt(a);
  }
}

static void on_pay_reply(void *ud, const rpc_reply *reply) {
  pay_ctx *c = ud;
  mktsvc *m = c->m;
  attempt *a = c->a;
  char who[IDENT_ID_BUF], why[240] = "";
  ident_id_encode(c->pk, who);
  inflight_set(m, c->v.channel_id, 0);
  int refused = reply->kind == RPC_REPLY_ERROR && (reply->code == PAY_E_REFUSED || reply->code == RPC_INVALID_PARAMS);
  if (m->closing) {
    /* the store is still open (the node closes it after the services), but nobody waits */
  } else if (reply->kind == RPC_REPLY_RESULT) {
    if (mkt_pay_acked(m->db, c->v.channel_id, &c->v.amount))
      log_error("cannot record an accepted voucher in %s: %s", store_path(m->db), store_errmsg(m->db));
    if (a) {
      a->paid_acked += c->add;
      if (a->done && a->paid_acked >= a->paid_signed) snprintf(a->status, sizeof a->status, "complete");
      write_client_receipt(m, a);
    }
  } else if (refused) {
    snprintf(why, sizeof why, "%s", reply->message && *reply->message ? reply->message : "refused");
    int rc = mkt_pay_refused(m->db, c->v.channel_id, &c->v.amount);
    if (rc) log_error("%s refused a voucher (%s) and it cannot be undone here: %s", who, why, err_str(rc));
    else log_warn("%s refused a voucher (%s); it does not count", who, why);
    if (a && !rc) a->paid_signed -= c->add;
  } else {
    log_info("no answer from %s to a voucher (%s): it will be sent again", who,
             reply->message && *reply->message ? reply->message : "timeout");
  }
  free(c);
  if (!a) {
    wake_waiters(m, NULL);
    return;
  }
  a->paying = 0;
  a->pays_live--;
  if (!m->closing) wake_waiters(m, a->channel);
  if (refused) { /* a provider that takes no money is not worked for any more */
    if (a->q && a->q->cur == a && !m->closing) {
      char msg[300];
      snprintf(msg, sizeof msg, "refused our voucher: %.200s", why);
      fail_attempt(a->q, a, 1, msg); /* last use of a */
      return;
    }
    maybe_free_attempt(a);
    return;
  }
  if (!m->closing && reply->kind == RPC_REPLY_RESULT) maybe_pay(m, a, a->done); /* what came meanwhile */
  maybe_free_attempt(a);
}

static int send_voucher(mktsvc *m, attempt *a, const uint8_t pk[32], const uint8_t request[16], const voucher *v,
                        uint64_t add) {
  pay_ctx *c = calloc(1, sizeof *c);
  if (!c) return ERR_NOMEM;
  c->m = m;
  c->a = a;
  c->v = *v;
  c->add = add;
  memcpy(c->pk, pk, 32);
  char rq[33];
  hex_encode(request, 16, rq);
  inflight_set(m, v->channel_id, 1);
  if (a) a->paying = 1, a->pays_live++;
  int rc = netsvc_call(m->ns, pk, "market.pay", json_pack("{s:s, s:o}", "request", rq, "voucher", voucher_to_json(v)),
                       PAY_TIMEOUT_MS, on_pay_reply, c);
  if (rc) { /* it stays unanswered in the store: resent later */
    inflight_set(m, v->channel_id, 0);
    if (a) a->paying = 0, a->pays_live--;
    free(c);
  }
  return rc;
}

/* Pays what is owed for the tokens received so far, in steps of pay_every tokens (all of it
 * when final). */
static void maybe_pay(mktsvc *m, attempt *a, int final) {
  if (!a->has_channel || a->paying || a->pay_waiting || m->closing) return;
  uint64_t owed = 0, step_wei = 0;
  if (mkt_cost((uint64_t)a->pt, (uint64_t)a->gt, a->offer.price_prompt, a->offer.price_gen, &owed)) return;
  mkt_cost(0, (uint64_t)m->pay_every, 0, a->offer.price_gen, &step_wei);
  if (owed <= a->paid_signed) return;
  if (!final && owed - a->paid_signed < (step_wei ? step_wei : 1)) return;
  if (inflight_find(m, a->channel) >= 0) { wait_channel(m, a); return; }
  uint64_t add = owed - a->paid_signed;
  mkt_receipt r;
  client_receipt(m, a, &r);
  voucher v;
  int rc = mkt_pay_sign(m->db, paysvc_wallet(m->pay), &r, add, (uint64_t)time(NULL), &v);
  if (rc == ERR_BUSY) { wait_channel(m, a); return; } /* an older voucher awaits its answer */
  if (rc) {
    log_error("cannot sign a voucher for %s: %s%s%s", a->node_id, err_str(rc), rc == ERR_STORE ? ": " : "",
              rc == ERR_STORE ? store_errmsg(m->db) : "");
    return;
  }
  a->paid_signed = owed;
  send_voucher(m, a, a->pk, a->request, &v, add);
}

/* Vouchers signed earlier (this run or before a crash) that got no answer go out again:
 * the provider accepts each once (a second time changes nothing) or refuses it (undone). */
static void resend_unacked(mktsvc *m, int dial) {
  static mkt_unacked list[MKT_UNACKED_MAX];
  int n = mkt_pay_unacked_list(m->db, list, MKT_UNACKED_MAX);
  for (int i = 0; i < n; i++) {
    if (inflight_find(m, list[i].v.channel_id) >= 0) continue;
    if (!dial && !netsvc_linked(m->ns, list[i].provider)) continue;
    send_voucher(m, NULL, list[i].provider, list[i].request, &list[i].v, list[i].add);
  }
}

/* ---- one provider's attempt ------------------------------------------------------------- */

static void on_gen_reply(void *ud, const rpc_reply *reply);

static int call_attempt(mreq *q, attempt *a) {
  mktsvc *m = q->m;
  json_t *p = json_deep_copy(q->params);
  char rq[33], model[65];
  hex_encode(q->request, 16, rq);
  hex_encode(q->sha, 32, model);
  json_object_set_new(p, "request", json_string(rq));
  json_object_set_new(p, "model", json_string(model));
  json_object_set_new(p, "max_tokens", json_integer(q->max_tokens - q->n_ids));
  a->n_cont = q->n_ids;
  a->gt = 0;
  if (q->n_ids) {
    json_t *cont = json_array();
    for (int i = 0; i < q->n_ids; i++) json_array_append_new(cont, json_integer(q->ids[i]));
    json_object_set_new(p, "cont", cont);
    /* what we have of their text: the provider sends what the last one still held back */
    json_object_set_new(p, "cont_bytes", json_integer((json_int_t)q->text_bytes));
  }
  if (a->has_channel) {
    char ch[67] = "0x", pp[24], gp[24];
    hex_encode(a->channel, 32, ch + 2);
    snprintf(pp, sizeof pp, "%llu", (unsigned long long)a->offer.price_prompt);
    snprintf(gp, sizeof gp, "%llu", (unsigned long long)a->offer.price_gen);
    json_object_set_new(p, "channel", json_string(ch));
    json_object_set_new(p, "price_prompt", json_string(pp));
    json_object_set_new(p, "price_gen", json_string(gp));
  }
  a->has_hash = mkt_request_hash(p, a->request_hash) == 0;
  a->started_ms = a->last_ms = now_ms(m);
  a->live = 1;
  int rc = netsvc_call(m->ns, a->pk, "generate", p, GEN_TIMEOUT_MS, on_gen_reply, a);
  if (rc) a->live = 0;
  return rc;
}

/* The attempt failed (error, dead link or stall): go on with the next provider. */
static void fail_attempt(mreq *q, attempt *a, int provider_fault, const char *why) {
  mktsvc *m = q->m;
  size_t used = strlen(q->last_err);
  if (used + 80 < sizeof q->last_err) /* every provider's reason: a later "unreachable" must not hide a "disk full" */
    snprintf(q->last_err + used, sizeof q->last_err - used, "%s%s: %.150s", used ? "; " : "", a->node_id, why);
  int more = q->n_ids < q->max_tokens && q->n_hist < MAX_ATTEMPTS;
  log_warn("provider %s failed (%s)%s", a->node_id, why,
           q->n_ids && more ? "; continuing the answer with another provider" : "");
  if (provider_fault) mkt_stats_record(m->db, a->pk, 0, -1, (int64_t)time(NULL));
  snprintf(a->status, sizeof a->status, "partial");
  write_client_receipt(m, a);
  add_tried(q, a->pk);
  q->cur = NULL;
  if (a->live) { /* give up on the call: replies to it are ignored from now on */
    char rq[33];
    hex_encode(q->request, 16, rq);
    netsvc_call(m->ns, a->pk, "market.stop", json_pack("{s:s}", "request", rq), 5000, ignore_reply, NULL);
  }
  if (!a->gt) /* produced nothing: forget it (a may be freed here) */
    for (int i = 0; i < q->n_hist; i++)
      if (q->hist[i] == a) {
        q->hist[i] = NULL;
        a->q = NULL;
        maybe_free_attempt(a);
        break;
      }
  if (q->n_ids >= q->max_tokens) {
    snprintf(q->finish, sizeof q->finish, "length");
    finish_req(q, 1, 0, NULL);
    return;
  }
  if (q->n_hist >= MAX_ATTEMPTS) {
    finish_req(q, 0, 502, "gave up after %d providers failed (%s)", q->n_hist, q->last_err);
    return;
  }
  if (q->n_ids) q->failovers++;
  set_state(q, Q_FIND);
  find_provider(q);
}

static void append_ids(mreq *q, json_t *ids) {
  size_t n = json_array_size(ids);
  if (q->n_ids + (int)n > q->cap_ids) {
    int nc = q->cap_ids ? q->cap_ids : 256;
    while (nc < q->n_ids + (int)n) nc *= 2;
    int32_t *p = realloc(q->ids, (size_t)nc * sizeof *p);
    if (!p) return;
    q->ids = p;
    q->cap_ids = nc;
  }
  for (size_t i = 0; i < n; i++) q->ids[q->n_ids++] = (int32_t)json_integer_value(json_array_get(ids, i));
}

static void on_gen_reply(void *ud, const rpc_reply *reply) {
  attempt *a = ud;
  mktsvc *m = a->m;
  mreq *q = a->q;
  if (reply->kind != RPC_REPLY_STREAM) a->live = 0;
  if (!q || q->cur != a || m->closing) { /* abandoned */
    maybe_free_attempt(a);
    return;
  }
  uint64_t now = now_ms(m);
  if (reply->kind == RPC_REPLY_STREAM) {
    json_t *d = reply->result;
    json_t *ids = json_object_get(d, "ids");
    const char *text = json_string_value(json_object_get(d, "text"));
    size_t len = json_string_length(json_object_get(d, "text"));
    if (!json_is_array(ids) || json_array_size(ids) > 100000) return;
    if (!a->first_ms) a->first_ms = now;
    if (!q->orig_pt) q->orig_pt = (int)json_integer_value(json_object_get(d, "pt")) - a->n_cont;
    a->last_ms = now;
    a->pt = (int)json_integer_value(json_object_get(d, "pt"));
    a->gt += (int)json_array_size(ids);
    append_ids(q, ids);
    if (text && len) {
      q->text_bytes += len;
      if (q->stream) mkt_stream_push(q->stream, text, len);
    }
    maybe_pay(m, a, 0);
    return;
  }
  if (reply->kind == RPC_REPLY_ERROR) {
    if (reply->code == GEN_E_CHANNEL_RETRY && ++a->retries < CHANNEL_RETRIES) {
      a->retry_at = now + CHANNEL_RETRY_MS;
      return;
    }
    /* A link can close before anything came for a reason that is not the provider's (two
     * nodes dialled each other at once and one link was dropped): try it again. */
    if (reply->code == RPC_LINK_CLOSED && !a->gt && ++a->link_retries <= 2) {
      a->retry_at = now + 200;
      return;
    }
    if (reply->code == RPC_INVALID_PARAMS) { /* the request's fault: no other provider would take it */
      const char *code = json_string_value(json_object_get(reply->data, "code"));
      q->code = code && !strcmp(code, "context_length_exceeded") ? "context_length_exceeded" : "invalid_request";
      finish_req(q, 0, 400, "the provider refused the request: %s", reply->message);
      return;
    }
    char why[200];
    snprintf(why, sizeof why, "%s", reply->message && *reply->message ? reply->message : "error");
    int fault = reply->code != GEN_E_PRICE && reply->code != GEN_E_PAYMENT;
    fail_attempt(q, a, fault, why);
    return;
  }
  /* The answer. */
  json_t *res = reply->result;
  int pt = (int)json_integer_value(json_object_get(res, "prompt_tokens"));
  int gt = (int)json_integer_value(json_object_get(res, "completion_tokens"));
  if (!q->orig_pt) q->orig_pt = pt - a->n_cont;
  if (gt != a->gt) log_warn("%s reported %d tokens but sent %d", a->node_id, gt, a->gt);
  a->pt = pt;
  a->done = 1;
  const char *fin = json_string_value(json_object_get(res, "finish"));
  snprintf(q->finish, sizeof q->finish, "%s", fin && !strcmp(fin, "length") ? "length" : "stop");
  maybe_pay(m, a, 1);
  if (a->paid_acked >= a->paid_signed) snprintf(a->status, sizeof a->status, "complete");
  write_client_receipt(m, a);
  mkt_stats_record(m->db, a->pk, 1, a->first_ms ? (double)(a->first_ms - a->started_ms) : -1, (int64_t)time(NULL));
  q->cur = NULL;
  finish_req(q, 1, 0, NULL);
}

/* ---- choosing a provider ---------------------------------------------------------------- */

static void on_channel(void *ud, int rc, const channel *ch, const char *msg) {
  attempt *a = ud;
  mreq *q = a->q;
  a->live = 0;
  if (!q || q->cur != a || a->m->closing) { maybe_free_attempt(a); return; }
  if (rc) {
    fail_attempt(q, a, 0, msg && *msg ? msg : "cannot open a channel");
    return;
  }
  memcpy(a->channel, ch->id, 32);
  a->has_channel = 1;
  set_state(q, Q_RUN);
  if (call_attempt(q, a)) fail_attempt(q, a, 0, "cannot call the provider");
}

static void begin_attempt(mreq *q, const mkt_candidate *c) {
  mktsvc *m = q->m;
  attempt *a = calloc(1, sizeof *a);
  if (!a) { finish_req(q, 0, 500, "out of memory"); return; }
  a->q = q;
  a->m = m;
  memcpy(a->request, q->request, 16);
  memcpy(a->model, q->sha, 32);
  memcpy(a->pk, c->node, 32);
  ident_id_encode(a->pk, a->node_id);
  a->offer = c->offer;
  q->cur = a;
  if (q->n_hist < MAX_ATTEMPTS) q->hist[q->n_hist++] = a;
  mkt_stream *s = q->stream;
  if (s) mkt_stream_set_node(s, a->node_id);
  int paid = a->offer.price_prompt || a->offer.price_gen;
  if (paid) {
    uint64_t need = 0;
    size_t plen = json_string_length(json_object_get(q->params, "prompt")) + 64 * json_array_size(json_object_get(q->params, "messages"));
    mkt_cost(plen + 16 + (uint64_t)q->n_ids, (uint64_t)(q->max_tokens - q->n_ids), a->offer.price_prompt,
             a->offer.price_gen, &need);
    channel ch;
    if (paysvc_client_channel(m->pay, a->pk, need, &ch) == 0) {
      memcpy(a->channel, ch.id, 32);
      a->has_channel = 1;
    } else {
      set_state(q, Q_CHANNEL);
      a->live = 1;
      log_info("opening a payment channel to %s", a->node_id);
      if (paysvc_open_channel(m->pay, a->pk, &m->deposit, m->lifetime_s, on_channel, a)) {
        a->live = 0;
        fail_attempt(q, a, 0, "cannot open a payment channel");
      }
      return;
    }
  }
  set_state(q, Q_RUN);
  if (call_attempt(q, a)) fail_attempt(q, a, 0, "cannot call the provider");
}

static void find_provider(mreq *q) {
  mktsvc *m = q->m;
  static mkt_candidate c[MAX_CANDS];
  size_t n = 0;
  int64_t now_wall = (int64_t)time(NULL);
  for (int i = 0; i < MAX_PEERS && n < MAX_CANDS; i++) {
    peer_offers *p = &m->peers[i];
    if (!p->used || !p->at) continue;
    if (q->has_only && memcmp(p->pk, q->only, 32)) continue;
    const mkt_offer *o = mkt_offer_find(p->offers, p->n, q->sha);
    if (!o) continue;
    memset(&c[n], 0, sizeof c[n]);
    memcpy(c[n].node, p->pk, 32);
    c[n].offer = *o;
    mkt_provider_stats st;
    if (mkt_stats_get(m->db, p->pk, &st) == 0) {
      c[n].latency_ms = st.latency_ms;
      c[n].recent_failures = st.last_failure && now_wall - st.last_failure < 600 ? st.failures : 0;
      c[n].mismatches = st.mismatches;
    } else {
      c[n].latency_ms = -1;
    }
    if (!netsvc_linked(m->ns, p->pk)) c[n].latency_ms = c[n].latency_ms < 0 ? 2000 : c[n].latency_ms + 1000;
    c[n].excluded = exclude(q, p->pk) || (!paysvc_enabled(m->pay) && (o->price_prompt || o->price_gen));
    n++;
  }
  mkt_rank_params rp = {.prompt_est = 64, .gen_est = (uint64_t)(q->max_tokens - q->n_ids),
                        .max_price_prompt = m->max_pp, .max_price_gen = m->max_gp};
  size_t k = mkt_rank(c, n, &rp);
  if (k > 0) {
    begin_attempt(q, &c[0]);
    return;
  }
  if (!q->found_kicked) { /* look further: the model's DHT infohash, fresh offers from every link */
    q->found_kicked = 1;
    netsvc_find_providers(m->ns, q->sha);
    for (int i = 0; i < MAX_PEERS; i++)
      if (m->peers[i].used && netsvc_linked(m->ns, m->peers[i].pk)) ask_offers(m, m->peers[i].pk);
  }
  set_state(q, Q_FIND); /* the timer tries again */
  q->state_since = q->state_since; /* keep the original start */
}

/* Advances a request that is not waiting on a callback. */
static void step(mreq *q) {
  mktsvc *m = q->m;
  if (q->state == Q_NAME) {
    if (resolve_sha(m, q->spec, q->sha) == 0) {
      set_state(q, Q_RESOLVE);
    } else if (m->registry_on && now_ms(m) - q->state_since < 5000) {
      if (now_ms(m) - m->names_at > 2000) refresh_names(m); /* maybe listed since */
      return; /* the timer tries again */
    } else {
      finish_req(q, 0, 404, "unknown model '%s': give a model name from the catalog%s, or a sha256", q->spec,
                 m->registry_on ? " or the Registry" : " or the network");
      return;
    }
  }
  if (q->state == Q_RESOLVE) {
    if (m->registry_on) {
      reg_entry *e = reg_find(m, q->sha);
      uint64_t age = e ? now_ms(m) - e->at : 0;
      int stale = !e || (e->state == REG_LISTED && age > 300000) || (e->state == REG_UNLISTED && age > 30000) ||
                  (e->state == REG_OFFLINE && age > 10000);
      if (stale) {
        if (reg_start(m, q->sha, 0, NULL, NULL)) { finish_req(q, 0, 500, "out of memory"); return; }
        set_state(q, Q_REGISTRY);
        return;
      }
      if (e->state == REG_PENDING) { set_state(q, Q_REGISTRY); return; }
      if (e->state == REG_UNLISTED) {
        char hex[65];
        hex_encode(q->sha, 32, hex);
        finish_req(q, 0, 404, "model %s (%s) is not listed in the Registry: no provider is trusted to serve it",
                   q->spec, hex);
        return;
      }
    }
    set_state(q, Q_FIND);
    q->found_kicked = 0;
    find_provider(q);
    return;
  }
  if (q->state == Q_REGISTRY) {
    reg_entry *e = reg_find(m, q->sha);
    if (e && e->state != REG_PENDING) {
      q->state = Q_RESOLVE;
      step(q);
    }
    return;
  }
  if (q->state == Q_FIND) {
    uint64_t waited = now_ms(m) - q->state_since;
    if (waited > FIND_WAIT_MS) {
      if (q->n_ids) {
        finish_req(q, 0, 502, "the provider failed after %d tokens and no other provider is available (%s)", q->n_ids,
                   q->last_err);
      } else if (q->last_err[0]) {
        finish_req(q, 0, 502, "no provider could serve model %s (%s)", q->spec, q->last_err);
      } else {
        char hex[65];
        hex_encode(q->sha, 32, hex);
        finish_req(q, 0, 404, "no node on the network offers model %s (%.16s…) within this node's price limits",
                   q->spec, hex);
      }
      return;
    }
    uint64_t since = q->state_since;
    find_provider(q);
    if (q->state == Q_FIND) q->state_since = since;
  }
}

/* `ask` for a model this node has: answered by the local worker. */
static void on_timer(uv_timer_t *t) {
  mktsvc *m = t->data;
  uint64_t now = now_ms(m);
  if (m->registry_on && (!m->names_at || now - m->names_at > REG_LIST_MS)) refresh_names(m);
  if (now >= m->resend_at) {
    m->resend_at = now + RESEND_MS;
    resend_unacked(m, ++m->resend_round % 8 == 0); /* unlinked providers are dialled now and then */
  }
  wake_waiters(m, NULL);
  mreq *next;
  for (mreq *q = m->reqs; q; q = next) {
    next = q->next;
    if (q->stream && mkt_stream_canceled(q->stream)) {
      finish_req(q, 0, 499, "canceled by the client");
      continue;
    }
    attempt *a = q->cur;
    if (q->state == Q_RUN && a) {
      if (a->retry_at && now >= a->retry_at) {
        a->retry_at = 0;
        if (call_attempt(q, a)) fail_attempt(q, a, 0, "cannot call the provider");
        continue;
      }
      uint64_t limit = a->first_ms ? m->stall_ms : m->stall_ms * 3; /* the prompt takes time */
      if (a->live && !a->retry_at && now - a->last_ms > limit) {
        fail_attempt(q, a, 1, "stalled");
        continue;
      }
    } else if (q->state == Q_FIND || q->state == Q_REGISTRY || q->state == Q_RESOLVE || q->state == Q_NAME) {
      step(q);
    }
  }
}

/* ---- entry points ------------------------------------------------------------------------- */

/* Model spec -> sha256: the store, the catalog, or 64 hex digits. */
static int resolve_sha(mktsvc *m, const char *spec, uint8_t sha[32]) {
  mstore_model mm;
  char err[512];
  const mstore_catalog_entry *e;
  if (strlen(spec) == 64 && hex_decode(spec, 64, sha, 32) == 0) return 0;
  if (m->models_dir && mstore_resolve(m->models_dir, spec, &mm, err, sizeof err) == 0 && mm.sha256[0])
    return hex_decode(mm.sha256, 64, sha, 32);
  if ((e = mstore_catalog_find(spec))) return hex_decode(e->sha256, 64, sha, 32);
  if (m->registry_on) return registry_name(m, spec, sha); /* names are the Registry's */
  /* No chain: a name some peer offers. */
  for (int i = 0; i < MAX_PEERS; i++)
    for (size_t k = 0; m->peers[i].used && k < m->peers[i].n; k++)
      if (!strcmp(m->peers[i].offers[k].name, spec)) {
        memcpy(sha, m->peers[i].offers[k].model, 32);
        return 0;
      }
  return ERR_NOTFOUND;
}

static void admit(mktsvc *m, mreq *q) {
  q->m = m;
  randombytes_buf(q->request, sizeof q->request);
  q->next = m->reqs;
  m->reqs = q;
  set_state(q, Q_NAME);
  step(q);
}

static void on_async(uv_async_t *h) {
  mktsvc *m = h->data;
  pthread_mutex_lock(&m->mu);
  mreq *list = m->inbox;
  m->inbox = NULL;
  pthread_mutex_unlock(&m->mu);
  while (list) {
    mreq *q = list;
    list = q->next;
    q->next = NULL;
    admit(m, q);
  }
  on_timer(&m->timer); /* cancellations */
}

static void wake(void *ud) { uv_async_send(ud); }

/* The `generate` params of a local request (any thread). */
static json_t *params_of(const local_req *lr) {
  json_t *p = json_object();
  if (lr->n_msgs > 0) {
    json_t *msgs = json_array();
    for (int i = 0; i < lr->n_msgs; i++)
      json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", lr->msgs[i].role, "content", lr->msgs[i].content));
    json_object_set_new(p, "messages", msgs);
  } else {
    json_object_set_new(p, "prompt", json_stringn(lr->prompt ? lr->prompt : "", lr->prompt_len));
  }
  json_object_set_new(p, "temperature", json_real(lr->sp.temp));
  json_object_set_new(p, "top_p", json_real(lr->sp.top_p));
  if (lr->sp.top_k > 0) json_object_set_new(p, "top_k", json_integer(lr->sp.top_k));
  if (lr->sp.presence_penalty != 0) json_object_set_new(p, "presence_penalty", json_real(lr->sp.presence_penalty));
  if (lr->sp.freq_penalty != 0) json_object_set_new(p, "frequency_penalty", json_real(lr->sp.freq_penalty));
  json_object_set_new(p, "seed", json_integer((json_int_t)(lr->sp.seed & 0x7fffffffffffffffull)));
  if (lr->n_stop) {
    json_t *st = json_array();
    for (int i = 0; i < lr->n_stop; i++) json_array_append_new(st, json_string(lr->stop[i]));
    json_object_set_new(p, "stop", st);
  }
  return p;
}

int mktsvc_submit(mktsvc *m, const char *model, const uint8_t *only, local_req *lr, mkt_stream **out) {
  mreq *q = calloc(1, sizeof *q);
  mkt_stream *s = mkt_stream_new();
  json_t *p = q && s ? params_of(lr) : NULL;
  if (!p) {
    free(q);
    mkt_stream_unref(s);
    local_req_clear(lr);
    return ERR_NOMEM;
  }
  snprintf(q->spec, sizeof q->spec, "%s", model);
  if (only) memcpy(q->only, only, 32), q->has_only = 1;
  q->params = p;
  q->max_tokens = lr->max_tokens > 0 ? lr->max_tokens : 16;
  local_req_clear(lr);
  mkt_stream_ref(s); /* one for the request, one for the caller */
  q->stream = s;
  mkt_stream_on_cancel(s, wake, &m->async);
  pthread_mutex_lock(&m->mu);
  int stopped = m->stopped;
  if (!stopped) {
    q->next = m->inbox;
    m->inbox = q;
    uv_async_send(&m->async);
  }
  pthread_mutex_unlock(&m->mu);
  if (stopped) {
    mkt_stream_unref(s);
    mkt_stream_unref(s);
    json_decref(p);
    free(q);
    return ERR_CANCELED;
  }
  *out = s;
  return 0;
}

/* Re-runs q's request with the same seed on another provider and compares the ids. */
static void start_verify(mreq *q) {
  mktsvc *m = q->m;
  attempt *a = q->hist[0];
  if (!a || !q->n_ids) return;
  mreq *v = calloc(1, sizeof *v);
  if (!v) return;
  v->params = json_deep_copy(q->params);
  v->expect = malloc((size_t)q->n_ids * sizeof *v->expect);
  if (!v->params || !v->expect) { json_decref(v->params); free(v->expect); free(v); return; }
  memcpy(v->expect, q->ids, (size_t)q->n_ids * sizeof *v->expect);
  v->n_expect = q->n_ids;
  v->max_tokens = q->n_ids;
  v->verify = 1;
  memcpy(v->verify_of, a->pk, 32);
  add_tried(v, a->pk);
  char hex[65];
  hex_encode(q->sha, 32, hex);
  snprintf(v->spec, sizeof v->spec, "%s", hex);
  log_info("verifying %s's answer on another provider", a->node_id);
  admit(m, v);
}

static void c_offers(ctl_req *req, json_t *params, void *ud) {
  (void)params;
  mktsvc *m = ud;
  json_t *arr = json_array();
  char id[IDENT_ID_BUF];
  size_t n;
  const mkt_offer *own = m->gen ? gensvc_offers(m->gen, &n) : (n = 0, NULL);
  ident_id_encode(m->me, id);
  json_t *o = mkt_offers_to_json(own, n);
  size_t i;
  json_t *x;
  json_array_foreach(o, i, x) {
    json_object_set_new(x, "node", json_string(id));
    json_object_set_new(x, "self", json_true());
    json_array_append(arr, x);
  }
  json_decref(o);
  for (int k = 0; k < MAX_PEERS; k++) {
    peer_offers *p = &m->peers[k];
    if (!p->used || !p->at) continue;
    ident_id_encode(p->pk, id);
    o = mkt_offers_to_json(p->offers, p->n);
    mkt_provider_stats st;
    int have = mkt_stats_get(m->db, p->pk, &st) == 0;
    json_array_foreach(o, i, x) {
      json_object_set_new(x, "node", json_string(id));
      json_object_set_new(x, "linked", json_boolean(netsvc_linked(m->ns, p->pk)));
      if (have && st.latency_ms >= 0) json_object_set_new(x, "latency_ms", json_real(st.latency_ms));
      if (have) json_object_set_new(x, "failures", json_integer(st.failures));
      if (have) json_object_set_new(x, "mismatches", json_integer(st.mismatches));
      if (have) json_object_set_new(x, "verifications", json_integer(st.verifications));
      json_array_append(arr, x);
    }
    json_decref(o);
  }
  ctl_reply_ok(req, json_pack("{s:o}", "offers", arr));
}

static void c_receipts(ctl_req *req, json_t *params, void *ud) {
  mktsvc *m = ud;
  int role = (int)json_integer_value(json_object_get(params, "role"));
  static mkt_receipt list[MKT_RECEIPT_MAX_LIST];
  int n = mkt_receipt_list(m->db, role == 1 || role == 2 ? (mkt_role)role : 0, list, MKT_RECEIPT_MAX_LIST);
  if (n < 0) { ctl_reply_err(req, CTL_INTERNAL, "%s", store_errmsg(m->db)); return; }
  json_t *arr = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(arr, mkt_receipt_to_json(&list[i]));
  ctl_reply_ok(req, json_pack("{s:o}", "receipts", arr));
}

json_t *mktsvc_status(mktsvc *m) {
  int active = 0, providers = 0, offers = 0;
  for (mreq *q = m->reqs; q; q = q->next) active++;
  for (int i = 0; i < MAX_PEERS; i++)
    if (m->peers[i].used && m->peers[i].at && m->peers[i].n) providers++, offers += (int)m->peers[i].n;
  size_t own = 0;
  if (m->gen) gensvc_offers(m->gen, &own);
  static mkt_unacked unacked[MKT_UNACKED_MAX];
  int n_unacked = mkt_pay_unacked_list(m->db, unacked, MKT_UNACKED_MAX);
  return json_pack("{s:i, s:i, s:i, s:i, s:i, s:f, s:b, s:i}", "requests_routing", active, "providers_known", providers,
                   "offers_known", offers, "offers_own", (int)own, "generations_selling",
                   m->gen ? gensvc_n_active(m->gen) : 0, "verify_rate", m->verify_rate, "registry_check",
                   m->registry_on, "vouchers_unanswered", n_unacked < 0 ? 0 : n_unacked);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int mktsvc_start(uv_loop_t *loop, const mktsvc_opts *o, store *db, netsvc *ns, paysvc *pay, gensvc *gen,
                 ctl_server *ctl, mktsvc **out, char *err, size_t cap) {
  mktsvc *m = calloc(1, sizeof *m);
  if (!m) return ERR_NOMEM;
  const config *cfg = o->cfg;
  m->loop = loop;
  memcpy(m->me, o->me, 32);
  m->db = db;
  m->ns = ns;
  m->pay = pay;
  m->gen = gen;
  m->models_dir = o->models_dir;
  snprintf(m->wallet_path, sizeof m->wallet_path, "%s", o->wallet_path ? o->wallet_path : "");
  m->max_pp = (uint64_t)config_int(cfg, "market", "max_price_prompt");
  m->max_gp = (uint64_t)config_int(cfg, "market", "max_price_gen");
  m->lifetime_s = (uint64_t)config_int(cfg, "market", "channel_lifetime");
  m->pay_every = (int)config_int(cfg, "market", "pay_every");
  m->stall_ms = (uint64_t)config_int(cfg, "market", "stall_timeout");
  const char *dep = config_str(cfg, "market", "channel_deposit");
  if (channel_amount_parse(dep, &m->deposit) || u256_is_zero(&m->deposit)) {
    snprintf(err, cap, "config [market] channel_deposit: not a positive amount: %s", dep);
    free(m);
    return ERR_CONFIG;
  }
  m->verify_rate = o->verify_rate;
  if (m->verify_rate < 0) {
    const char *vr = config_str(cfg, "market", "verify_rate");
    char *end;
    m->verify_rate = strtod(vr, &end);
    if (*end || m->verify_rate < 0 || m->verify_rate > 1) {
      snprintf(err, cap, "config [market] verify_rate: need a fraction from 0 to 1, got %s", vr);
      free(m);
      return ERR_CONFIG;
    }
  }
  snprintf(m->rpc_url, sizeof m->rpc_url, "%s", config_str(cfg, "chain", "rpc"));
  const char *reg = config_str(cfg, "chain", "registry");
  m->registry_on = config_int(cfg, "chain", "chain_id") && reg[0] && wallet_addr_parse(reg, strlen(reg), m->registry) == 0;
  pthread_mutex_init(&m->mu, NULL);
  int rc = netsvc_on_link_ready(ns, on_link_ready, m);
  rc = rc ? rc : ctl_server_add(ctl, "market.offers", c_offers, m);
  rc = rc ? rc : ctl_server_add(ctl, "market.receipts", c_receipts, m);
  if (rc) {
    pthread_mutex_destroy(&m->mu);
    free(m);
    snprintf(err, cap, "cannot register the market's methods");
    return rc;
  }
  uv_timer_init(loop, &m->timer);
  uv_async_init(loop, &m->async, on_async);
  m->timer.data = m->async.data = m;
  m->handles = 2;
  uv_timer_start(&m->timer, on_timer, TIMER_MS, TIMER_MS);
  /* Our own offers go into the Registry (first publisher of a hash lists it). */
  if (m->registry_on && gen && paysvc_enabled(pay) && config_bool(cfg, "market", "register_models")) {
    size_t n;
    const mkt_offer *own = gensvc_offers(gen, &n);
    for (size_t i = 0; i < n; i++) reg_start(m, own[i].model, 1, own[i].name, gensvc_model_path(gen, own[i].model));
  }
  if (m->verify_rate > 0) log_info("verifying %.0f%% of remote answers on a second provider", m->verify_rate * 100);
  *out = m;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  mktsvc *m = h->data;
  m->handles--;
}

void mktsvc_stop(mktsvc *m) {
  if (!m || m->closing) return;
  pthread_mutex_lock(&m->mu);
  m->stopped = 1;
  mreq *list = m->inbox;
  m->inbox = NULL;
  pthread_mutex_unlock(&m->mu);
  while (list) { /* never admitted */
    mreq *q = list;
    list = q->next;
    q->m = m;
      q->next = m->reqs;
    m->reqs = q;
  }
  while (m->reqs) finish_req(m->reqs, 0, 503, "the node is stopping");
  m->closing = 1;
  while (m->n_waiting) { /* their vouchers were never signed: nothing is owed in the books */
    attempt *a = m->waiting[--m->n_waiting];
    a->pay_waiting = 0;
    a->pays_live--;
    maybe_free_attempt(a);
  }
  uv_close((uv_handle_t *)&m->timer, on_closed);
  uv_close((uv_handle_t *)&m->async, on_closed);
}

void mktsvc_free(mktsvc *m) {
  if (!m) return;
  free(m->models_json);
  pthread_mutex_destroy(&m->mu);
  free(m);
}
