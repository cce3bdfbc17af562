/* market/route — the buyer's engine; see route.h. */
#include "market/route.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/ident.h"
#include "market/rank.h"
#include "market/serve.h"

#define MAX_REG 64
#define MAX_NAMES 256
#define MAX_CANDS 64
#define FIND_WAIT_MS 6000          /* how long to look for a provider before giving up */
#define CHANNEL_RETRIES 20         /* `generate` retries while the provider looks a new channel up */
#define CHANNEL_RETRY_MS 300
#define REG_LIST_MS 60000
#define NAME_WAIT_MS 5000          /* a name the Registry may list soon */


enum { REG_PENDING = 1, REG_LISTED, REG_UNLISTED, REG_OFFLINE };
enum { Q_NAME = 1, Q_RESOLVE, Q_REGISTRY, Q_FIND, Q_CHANNEL, Q_RUN, Q_DONE };

typedef struct peer {
  int used;
  uint8_t pk[32];
  mkt_offer offers[MKT_MAX_OFFERS];
  size_t n;
  uint64_t at;              /* when the offers came; 0 = never */
  int asking;
} peer;

typedef struct attempt {
  uint32_t aid;
  uint8_t pk[32];
  char node_id[IDENT_ID_BUF];
  mkt_offer offer;
  int has_channel;
  uint8_t channel[32];
  int n_cont;               /* ids sent as continuation */
  int pt, gt;               /* prompt (incl. continuation) and generated tokens */
  uint64_t started_ms, first_ms, last_ms, retry_at;
  int retries, link_retries;
  int live;                 /* a call (or channel opening) is outstanding */
  int done;
} attempt;

typedef struct req {
  struct req *next;
  mkt_stream *stream;       /* a reference, or NULL (verification re-runs) */
  json_t *params;
  char spec[256];
  uint8_t sha[32];
  uint8_t request[16];
  uint8_t only[32];
  int has_only;
  int max_tokens;
  int32_t *ids;
  int n_ids, cap_ids;
  size_t text_bytes;        /* text received over all attempts */
  int orig_pt;
  attempt *cur;
  attempt *hist[MKT_ROUTE_ATTEMPTS];
  int n_hist;
  uint8_t tried[MKT_ROUTE_TRIED][32];
  int n_tried;
  int state;
  uint64_t state_since;
  int found_kicked;
  char last_err[520];       /* every provider's reason: "id: why; id: why" */
  char finish[16];
  const char *code;         /* an OpenAI error code for a failed request, or NULL */
  int failovers;
  int verify;               /* a verification re-run */
  uint8_t verify_of[32];
  int32_t *expect;
  int n_expect;
} req;

struct mkt_route {
  mkt_route_cfg cfg;
  mkt_route_env env;
  peer peers[MKT_ROUTE_PEERS];
  struct { uint8_t sha[32]; int state; uint64_t at; } reg[MAX_REG];
  struct { char name[MKT_NAME_MAX]; uint8_t sha[32]; int verified; int64_t at; } names[MAX_NAMES];
  int n_names;
  uint64_t names_at;
  int names_busy;
  req *reqs;
  uint32_t next_aid;
  uint64_t now;
  mkt_route_action q[MKT_ROUTE_ACTIONS];
  int q_head, q_len;
};

/* ---- actions ----------------------------------------------------------------------------- */

static mkt_route_action *push(mkt_route *rt, mkt_route_act kind) {
  if (rt->q_len >= MKT_ROUTE_ACTIONS) return NULL; /* the glue drains after every call */
  mkt_route_action *a = &rt->q[(rt->q_head + rt->q_len++) % MKT_ROUTE_ACTIONS];
  memset(a, 0, sizeof *a);
  a->kind = kind;
  return a;
}

int mkt_route_poll(mkt_route *rt, mkt_route_action *out) {
  if (!rt->q_len) return 0;
  *out = rt->q[rt->q_head];
  rt->q_head = (rt->q_head + 1) % MKT_ROUTE_ACTIONS;
  rt->q_len--;
  return 1;
}

static void logf_(mkt_route *rt, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void logf_(mkt_route *rt, int level, const char *fmt, ...) {
  mkt_route_action *a = push(rt, MKT_RT_LOG);
  if (!a) return;
  a->level = level;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->message, sizeof a->message, fmt, ap);
  va_end(ap);
}

static void act_pk(mkt_route *rt, mkt_route_act kind, const uint8_t pk[32]) {
  mkt_route_action *a = push(rt, kind);
  if (a) memcpy(a->pk, pk, 32);
}

/* ---- offers ------------------------------------------------------------------------------ */

static peer *peer_slot(mkt_route *rt, const uint8_t pk[32], int create) {
  peer *free_slot = NULL, *oldest = NULL;
  for (int i = 0; i < MKT_ROUTE_PEERS; i++) {
    peer *p = &rt->peers[i];
    if (p->used && !memcmp(p->pk, pk, 32)) return p;
    if (!p->used && !free_slot) free_slot = p;
    if (p->used && (!oldest || p->at < oldest->at)) oldest = p;
  }
  if (!create) return NULL;
  peer *p = free_slot ? free_slot : oldest;
  memset(p, 0, sizeof *p);
  p->used = 1;
  memcpy(p->pk, pk, 32);
  return p;
}

static void ask_offers(mkt_route *rt, const uint8_t pk[32]) {
  peer *p = peer_slot(rt, pk, 1);
  if (p->asking) return;
  p->asking = 1;
  act_pk(rt, MKT_RT_ASK_OFFERS, pk);
}

void mkt_route_link_up(mkt_route *rt, const uint8_t pk[32]) { ask_offers(rt, pk); }

void mkt_route_offers(mkt_route *rt, uint64_t now, const uint8_t pk[32], const mkt_offer *offers, size_t n) {
  peer *p = peer_slot(rt, pk, 1);
  p->asking = 0;
  if (n > MKT_MAX_OFFERS) n = MKT_MAX_OFFERS;
  if (n) memcpy(p->offers, offers, n * sizeof *offers);
  p->n = n;
  p->at = now ? now : 1;
}

void mkt_route_offers_failed(mkt_route *rt, const uint8_t pk[32]) {
  peer *p = peer_slot(rt, pk, 0);
  if (p) p->asking = 0;
}

void mkt_route_known(const mkt_route *rt, int *providers, int *offers) {
  *providers = *offers = 0;
  for (int i = 0; i < MKT_ROUTE_PEERS; i++)
    if (rt->peers[i].used && rt->peers[i].at && rt->peers[i].n) (*providers)++, *offers += (int)rt->peers[i].n;
}

void mkt_route_each_offer(const mkt_route *rt, void (*fn)(void *ud, const uint8_t pk[32], const mkt_offer *o, size_t n),
                          void *ud) {
  for (int i = 0; i < MKT_ROUTE_PEERS; i++)
    if (rt->peers[i].used && rt->peers[i].at) fn(ud, rt->peers[i].pk, rt->peers[i].offers, rt->peers[i].n);
}

json_t *mkt_route_models_json(const mkt_route *rt) {
  json_t *by = json_object();
  for (int i = 0; i < MKT_ROUTE_PEERS; i++) {
    const peer *p = &rt->peers[i];
    if (!p->used || !p->at) continue;
    for (size_t k = 0; k < p->n; k++) {
      char hex[65];
      hex_encode(p->offers[k].model, 32, hex);
      json_int_t price = (json_int_t)(p->offers[k].price_gen > INT64_MAX ? INT64_MAX : p->offers[k].price_gen);
      json_t *e = json_object_get(by, hex);
      if (!e) {
        e = json_pack("{s:s, s:s, s:i, s:I}", "name", p->offers[k].name, "sha256", hex, "providers", 0,
                      "min_price_gen", price);
        json_object_set_new(by, hex, e);
      }
      json_object_set_new(e, "providers", json_integer(json_integer_value(json_object_get(e, "providers")) + 1));
      if (price < json_integer_value(json_object_get(e, "min_price_gen")))
        json_object_set_new(e, "min_price_gen", json_integer(price));
    }
  }
  json_t *arr = json_array();
  const char *key;
  json_t *v;
  json_object_foreach(by, key, v) json_array_append(arr, v);
  json_decref(by);
  return arr;
}

/* ---- the Registry ------------------------------------------------------------------------ */

static int reg_find(mkt_route *rt, const uint8_t sha[32]) {
  for (int i = 0; i < MAX_REG; i++)
    if (rt->reg[i].state && !memcmp(rt->reg[i].sha, sha, 32)) return i;
  return -1;
}

static void reg_set(mkt_route *rt, const uint8_t sha[32], int state) {
  int i = reg_find(rt, sha);
  if (i < 0) {
    i = 0;
    for (int k = 0; k < MAX_REG; k++) {
      if (!rt->reg[k].state) { i = k; break; }
      if (rt->reg[k].at < rt->reg[i].at) i = k;
    }
  }
  memcpy(rt->reg[i].sha, sha, 32);
  rt->reg[i].state = state;
  rt->reg[i].at = rt->now;
}

void mkt_route_registry(mkt_route *rt, uint64_t now, const uint8_t sha[32], int listed) {
  rt->now = now;
  if (listed < 0) {
    char hex[17];
    hex_encode(sha, 8, hex);
    logf_(rt, 1, "cannot read the Registry: routing model %s… without the check", hex);
  }
  reg_set(rt, sha, listed > 0 ? REG_LISTED : listed == 0 ? REG_UNLISTED : REG_OFFLINE);
}

static void list_names(mkt_route *rt) {
  if (!rt->cfg.registry || rt->names_busy) return;
  rt->names_busy = 1;
  rt->names_at = rt->now;
  push(rt, MKT_RT_LIST_NAMES);
}

void mkt_route_names(mkt_route *rt, uint64_t now, const char *const *names, const uint8_t (*shas)[32],
                     const int *verified, const int64_t *registered_at, int n) {
  rt->now = now;
  rt->names_busy = 0;
  if (n < 0) return;
  rt->n_names = 0;
  for (int i = 0; i < n && rt->n_names < MAX_NAMES; i++) {
    size_t len = strlen(names[i]);
    if (len >= MKT_NAME_MAX) continue;
    memcpy(rt->names[rt->n_names].name, names[i], len + 1);
    memcpy(rt->names[rt->n_names].sha, shas[i], 32);
    rt->names[rt->n_names].verified = verified[i];
    rt->names[rt->n_names].at = registered_at[i];
    reg_set(rt, shas[i], REG_LISTED); /* fresher than a cached "not listed" */
    rt->n_names++;
  }
}

/* The hash the Registry lists under name: a verified listing first, then the oldest. */
static int registry_name(mkt_route *rt, const char *name, uint8_t sha[32]) {
  int best = -1;
  for (int i = 0; i < rt->n_names; i++) {
    if (strcmp(rt->names[i].name, name)) continue;
    if (best < 0 || (rt->names[i].verified && !rt->names[best].verified) ||
        (rt->names[i].verified == rt->names[best].verified && rt->names[i].at < rt->names[best].at))
      best = i;
  }
  if (best < 0) return ERR_NOTFOUND;
  memcpy(sha, rt->names[best].sha, 32);
  return 0;
}

/* Model spec -> sha256: the env (store, catalog, hex), the Registry's names, or (with no
 * Registry) a name some peer offers. */
static int resolve(mkt_route *rt, const char *spec, uint8_t sha[32]) {
  if (rt->env.resolve(rt->env.ud, spec, sha) == 0) return 0;
  if (rt->cfg.registry) return registry_name(rt, spec, sha);
  for (int i = 0; i < MKT_ROUTE_PEERS; i++)
    for (size_t k = 0; rt->peers[i].used && k < rt->peers[i].n; k++)
      if (!strcmp(rt->peers[i].offers[k].name, spec)) {
        memcpy(sha, rt->peers[i].offers[k].model, 32);
        return 0;
      }
  return ERR_NOTFOUND;
}

/* ---- requests ---------------------------------------------------------------------------- */

int mkt_route_new(const mkt_route_cfg *cfg, const mkt_route_env *env, mkt_route **out) {
  mkt_route *rt = calloc(1, sizeof *rt);
  if (!rt) return ERR_NOMEM;
  rt->cfg = *cfg;
  rt->env = *env;
  rt->next_aid = 1;
  *out = rt;
  return 0;
}

static void free_req(req *q) {
  mkt_stream_unref(q->stream);
  json_decref(q->params);
  free(q->ids);
  free(q->expect);
  for (int i = 0; i < q->n_hist; i++) free(q->hist[i]);
  free(q);
}

void mkt_route_free(mkt_route *rt) {
  if (!rt) return;
  while (rt->reqs) {
    req *q = rt->reqs;
    rt->reqs = q->next;
    free_req(q);
  }
  mkt_route_action a;
  while (mkt_route_poll(rt, &a))
    if (a.kind == MKT_RT_CALL) json_decref(a.params);
  free(rt);
}

int mkt_route_n_requests(const mkt_route *rt) {
  int n = 0;
  for (req *q = rt->reqs; q; q = q->next) n++;
  return n;
}

static void set_state(mkt_route *rt, req *q, int st) {
  q->state = st;
  q->state_since = rt->now;
}

static void step(mkt_route *rt, req *q);
static void find_provider(mkt_route *rt, req *q);

static void admit(mkt_route *rt, req *q) {
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rt->env.random(rt->env.ud);
    memcpy(q->request + i, &r, 4);
  }
  q->next = rt->reqs;
  rt->reqs = q;
  set_state(rt, q, Q_NAME);
  step(rt, q);
}

int mkt_route_submit(mkt_route *rt, uint64_t now, const char *spec, json_t *params, int max_tokens,
                     const uint8_t *only, mkt_stream *stream) {
  rt->now = now;
  req *q = calloc(1, sizeof *q);
  if (!q) {
    json_decref(params);
    mkt_stream_unref(stream);
    return ERR_NOMEM;
  }
  snprintf(q->spec, sizeof q->spec, "%s", spec);
  q->params = params;
  q->max_tokens = max_tokens > 0 ? max_tokens : 16;
  if (only) memcpy(q->only, only, 32), q->has_only = 1;
  q->stream = stream;
  admit(rt, q);
  return 0;
}

static void unlink_req(mkt_route *rt, req *q) {
  for (req **pp = &rt->reqs; *pp; pp = &(*pp)->next)
    if (*pp == q) { *pp = q->next; break; }
}

static void receipt(mkt_route *rt, const attempt *a, const char *status) {
  mkt_route_action *x = push(rt, MKT_RT_RECEIPT);
  if (!x) return;
  x->aid = a->aid;
  x->pt = a->pt;
  x->gt = a->gt;
  snprintf(x->status, sizeof x->status, "%s", status);
}

static void stop_call(mkt_route *rt, req *q, const attempt *a) {
  mkt_route_action *x = push(rt, MKT_RT_STOP);
  if (!x) return;
  memcpy(x->pk, a->pk, 32);
  memcpy(x->request, q->request, 16);
}

static void start_verify(mkt_route *rt, req *q);

/* Ends the request: its stream gets the answer or the error; its attempts are dropped. */
static void finish_req(mkt_route *rt, req *q, int ok, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void finish_req(mkt_route *rt, req *q, int ok, int http_status, const char *fmt, ...) {
  if (q->state == Q_DONE) return;
  set_state(rt, q, Q_DONE);
  mkt_result r;
  memset(&r, 0, sizeof r);
  if (fmt) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.error, sizeof r.error, fmt, ap);
    va_end(ap);
  }
  r.finish = ok ? (!strcmp(q->finish, "length") ? LOCAL_LENGTH : LOCAL_STOP) : LOCAL_ERROR;
  r.prompt_tokens = q->orig_pt;
  r.completion_tokens = q->n_ids;
  r.http_status = http_status;
  r.code = ok ? NULL : q->code;
  r.failovers = q->failovers;
  for (int i = 0; i < q->n_hist; i++) {
    attempt *a = q->hist[i];
    if (!a->gt && !a->done) continue;
    uint64_t owed = 0;
    mkt_cost((uint64_t)a->pt, (uint64_t)a->gt, a->offer.price_prompt, a->offer.price_gen, &owed);
    r.cost_wei += a->done ? owed : rt->env.paid(rt->env.ud, a->aid);
    if (r.n_providers < MKT_MAX_PROVIDERS) snprintf(r.providers[r.n_providers++], MKT_NODE_ID_MAX, "%s", a->node_id);
    snprintf(r.node_id, sizeof r.node_id, "%s", a->node_id);
  }
  if (q->stream) mkt_stream_finish(q->stream, &r);
  if (q->verify) {
    int mismatch = !ok ? -1 : (q->n_ids != q->n_expect || memcmp(q->ids, q->expect, (size_t)q->n_ids * sizeof *q->ids));
    if (mismatch >= 0) {
      char id[IDENT_ID_BUF];
      ident_id_encode(q->verify_of, id);
      if (mismatch) logf_(rt, 1, "verification: %s's answer differs from another provider's; its rank drops", id);
      else logf_(rt, 0, "verification: %s's answer matched another provider's", id);
      mkt_route_action *x = push(rt, MKT_RT_VERIFIED);
      if (x) memcpy(x->pk, q->verify_of, 32), x->ok = mismatch;
    }
  } else if (ok && q->n_hist == 1 && rt->cfg.verify_rate > 0 &&
             (double)(rt->env.random(rt->env.ud) % 1000000) / 1e6 < rt->cfg.verify_rate) {
    start_verify(rt, q);
  }
  if (q->cur && q->cur->live && !q->cur->done) stop_call(rt, q, q->cur); /* tell the provider to stop */
  for (int i = 0; i < q->n_hist; i++) {
    mkt_route_action *x = push(rt, MKT_RT_DROP);
    if (x) x->aid = q->hist[i]->aid;
  }
  unlink_req(rt, q);
  free_req(q);
}

static int was_tried(const req *q, const uint8_t pk[32]) {
  for (int i = 0; i < q->n_tried; i++)
    if (!memcmp(q->tried[i], pk, 32)) return 1;
  return 0;
}

static void add_tried(req *q, const uint8_t pk[32]) {
  if (!was_tried(q, pk) && q->n_tried < MKT_ROUTE_TRIED) memcpy(q->tried[q->n_tried++], pk, 32);
}

/* ---- one provider's attempt -------------------------------------------------------------- */

static void call_attempt(mkt_route *rt, req *q, attempt *a) {
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
  a->started_ms = a->last_ms = rt->now;
  a->live = 1;
  mkt_route_action *x = push(rt, MKT_RT_CALL);
  if (!x) { json_decref(p); return; }
  x->aid = a->aid;
  memcpy(x->pk, a->pk, 32);
  memcpy(x->request, q->request, 16);
  x->params = p;
}

/* The attempt failed (error, dead link, stall, refused voucher): the next provider. */
static void fail_attempt(mkt_route *rt, req *q, attempt *a, int provider_fault, const char *why) {
  size_t used = strlen(q->last_err);
  if (used + 80 < sizeof q->last_err) /* every provider's reason: a later "unreachable" must not hide a "disk full" */
    snprintf(q->last_err + used, sizeof q->last_err - used, "%s%s: %.150s", used ? "; " : "", a->node_id, why);
  int more = q->n_ids < q->max_tokens && q->n_hist < MKT_ROUTE_ATTEMPTS;
  logf_(rt, 1, "provider %s failed (%s)%s", a->node_id, why,
        q->n_ids && more ? "; continuing the answer with another provider" : "");
  if (provider_fault) {
    mkt_route_action *x = push(rt, MKT_RT_STATS);
    if (x) memcpy(x->pk, a->pk, 32), x->ok = 0, x->latency_ms = -1;
  }
  receipt(rt, a, "partial");
  add_tried(q, a->pk);
  q->cur = NULL;
  if (a->live) stop_call(rt, q, a); /* give up on the call: its replies are ignored from now on */
  a->live = 0;
  if (q->n_ids >= q->max_tokens) {
    snprintf(q->finish, sizeof q->finish, "length");
    finish_req(rt, q, 1, 0, NULL);
    return;
  }
  if (q->n_hist >= MKT_ROUTE_ATTEMPTS) {
    finish_req(rt, q, 0, 502, "gave up after %d providers failed (%s)", q->n_hist, q->last_err);
    return;
  }
  if (q->n_ids && json_object_get(q->params, "logprobs")) { /* another provider could not give the held-back tokens' records */
    finish_req(rt, q, 0, 502, "the provider failed after %d tokens, and an answer with logprobs cannot be continued by another one (%s)",
               q->n_ids, q->last_err);
    return;
  }
  if (q->n_ids) q->failovers++;
  set_state(rt, q, Q_FIND);
  find_provider(rt, q);
}

/* Tells the glue about attempt a (again when its channel is known). */
static void attempt_action(mkt_route *rt, const req *q, const attempt *a) {
  mkt_route_action *x = push(rt, MKT_RT_ATTEMPT);
  if (!x) return;
  x->aid = a->aid;
  memcpy(x->pk, a->pk, 32);
  memcpy(x->sha, q->sha, 32);
  memcpy(x->request, q->request, 16);
  x->offer = a->offer;
  x->has_channel = a->has_channel;
  memcpy(x->channel, a->channel, 32);
}

/* The most a request can cost at offer o (for the channel's room and the spending cap). */
static uint64_t request_need(const req *q, const mkt_offer *o) {
  uint64_t need = 0;
  size_t plen = json_string_length(json_object_get(q->params, "prompt")) +
                64 * json_array_size(json_object_get(q->params, "messages"));
  if (mkt_cost(plen + 16 + (uint64_t)q->n_ids, (uint64_t)(q->max_tokens - q->n_ids), o->price_prompt, o->price_gen,
               &need))
    need = UINT64_MAX;
  return need;
}

static void begin_attempt(mkt_route *rt, req *q, const mkt_candidate *c) {
  int paid = c->offer.price_prompt || c->offer.price_gen;
  char why[300];
  if (paid && rt->env.spend_ok && !rt->env.spend_ok(rt->env.ud, request_need(q, &c->offer), why, sizeof why)) {
    q->code = "spend_cap";
    finish_req(rt, q, 0, 402, "%s", why);
    return;
  }
  attempt *a = calloc(1, sizeof *a);
  if (!a || q->n_hist >= MKT_ROUTE_ATTEMPTS) {
    free(a);
    finish_req(rt, q, 0, 500, "out of memory");
    return;
  }
  a->aid = rt->next_aid++;
  if (!rt->next_aid) rt->next_aid = 1;
  memcpy(a->pk, c->node, 32);
  ident_id_encode(a->pk, a->node_id);
  a->offer = c->offer;
  q->cur = a;
  q->hist[q->n_hist++] = a;
  if (q->stream) mkt_stream_set_node(q->stream, a->node_id);
  int need_open = 0;
  if (paid) {
    uint64_t need = request_need(q, &a->offer);
    if (rt->env.client_channel(rt->env.ud, a->pk, need, a->channel) == 0) a->has_channel = 1;
    else need_open = 1;
  }
  attempt_action(rt, q, a);
  if (need_open) {
    set_state(rt, q, Q_CHANNEL);
    a->live = 1;
    logf_(rt, 0, "opening a payment channel to %s", a->node_id);
    mkt_route_action *x = push(rt, MKT_RT_OPEN_CHANNEL);
    if (x) x->aid = a->aid, memcpy(x->pk, a->pk, 32);
    return;
  }
  set_state(rt, q, Q_RUN);
  call_attempt(rt, q, a);
}

static void find_provider(mkt_route *rt, req *q) {
  static mkt_candidate c[MAX_CANDS];
  size_t n = 0;
  int64_t wall = rt->env.wall_s(rt->env.ud);
  for (int i = 0; i < MKT_ROUTE_PEERS && n < MAX_CANDS; i++) {
    peer *p = &rt->peers[i];
    if (!p->used || !p->at) continue;
    if (q->has_only && memcmp(p->pk, q->only, 32)) continue;
    if (rt->env.allowed && !rt->env.allowed(rt->env.ud, p->pk)) continue; /* the owner's deny/allow lists */
    const mkt_offer *o = mkt_offer_find(p->offers, p->n, q->sha);
    if (!o) continue;
    memset(&c[n], 0, sizeof c[n]);
    memcpy(c[n].node, p->pk, 32);
    c[n].offer = *o;
    uint64_t dp;
    if (rt->env.deal_price && o->price_gen && rt->env.deal_price(rt->env.ud, p->pk, &dp) == 0 && dp < o->price_gen)
      c[n].offer.price_gen = dp; /* a deal caps the price: an offer that fell below it wins */
    mkt_provider_stats st;
    if (rt->env.stats(rt->env.ud, p->pk, &st) == 0) {
      c[n].latency_ms = st.latency_ms;
      c[n].recent_failures = st.last_failure && wall - st.last_failure < 600 ? st.failures : 0;
      c[n].mismatches = st.mismatches;
    } else {
      c[n].latency_ms = -1;
    }
    if (!rt->env.linked(rt->env.ud, p->pk)) c[n].latency_ms = c[n].latency_ms < 0 ? 2000 : c[n].latency_ms + 1000;
    c[n].excluded = was_tried(q, p->pk) || (!rt->cfg.payments && (o->price_prompt || o->price_gen));
    n++;
  }
  mkt_rank_params rp = {.prompt_est = 64, .gen_est = (uint64_t)(q->max_tokens - q->n_ids),
                        .max_price_prompt = rt->cfg.max_price_prompt, .max_price_gen = rt->cfg.max_price_gen};
  if (mkt_rank(c, n, &rp) > 0) {
    begin_attempt(rt, q, &c[0]);
    return;
  }
  if (!q->found_kicked) { /* look further: the model's DHT infohash, fresh offers from every link */
    q->found_kicked = 1;
    mkt_route_action *x = push(rt, MKT_RT_FIND_PROVIDERS);
    if (x) memcpy(x->sha, q->sha, 32);
    for (int i = 0; i < MKT_ROUTE_PEERS; i++)
      if (rt->peers[i].used && rt->env.linked(rt->env.ud, rt->peers[i].pk)) ask_offers(rt, rt->peers[i].pk);
  }
  if (q->state != Q_FIND) set_state(rt, q, Q_FIND); /* the timer tries again */
}

/* Advances a request that is not waiting for an answer. */
static void step(mkt_route *rt, req *q) {
  if (q->state == Q_NAME) {
    if (resolve(rt, q->spec, q->sha) == 0) {
      set_state(rt, q, Q_RESOLVE);
    } else if (rt->cfg.registry && rt->now - q->state_since < NAME_WAIT_MS) {
      if (rt->now - rt->names_at > 2000) list_names(rt); /* maybe listed since */
      return;
    } else {
      finish_req(rt, q, 0, 404, "unknown model '%s': give a model name from the catalog%s, or a sha256", q->spec,
                 rt->cfg.registry ? " or the Registry" : " or the network");
      return;
    }
  }
  if (q->state == Q_RESOLVE) {
    if (rt->cfg.registry) {
      int i = reg_find(rt, q->sha);
      uint64_t age = i >= 0 ? rt->now - rt->reg[i].at : 0;
      int st = i >= 0 ? rt->reg[i].state : 0;
      int stale = i < 0 || (st == REG_LISTED && age > 300000) || (st == REG_UNLISTED && age > 30000) ||
                  (st == REG_OFFLINE && age > 10000);
      if (stale) {
        reg_set(rt, q->sha, REG_PENDING);
        mkt_route_action *x = push(rt, MKT_RT_REG_LOOKUP);
        if (x) memcpy(x->sha, q->sha, 32);
        set_state(rt, q, Q_REGISTRY);
        return;
      }
      if (st == REG_PENDING) { set_state(rt, q, Q_REGISTRY); return; }
      if (st == REG_UNLISTED) {
        char hex[65];
        hex_encode(q->sha, 32, hex);
        finish_req(rt, q, 0, 404, "model %s (%s) is not listed in the Registry: no provider is trusted to serve it",
                   q->spec, hex);
        return;
      }
    }
    set_state(rt, q, Q_FIND);
    q->found_kicked = 0;
    find_provider(rt, q);
    return;
  }
  if (q->state == Q_REGISTRY) {
    int i = reg_find(rt, q->sha);
    if (i >= 0 && rt->reg[i].state != REG_PENDING) {
      q->state = Q_RESOLVE;
      step(rt, q);
    }
    return;
  }
  if (q->state == Q_FIND) {
    if (rt->now - q->state_since > FIND_WAIT_MS) {
      if (q->n_ids) {
        finish_req(rt, q, 0, 502, "the provider failed after %d tokens and no other provider is available (%s)",
                   q->n_ids, q->last_err);
      } else if (q->last_err[0]) {
        finish_req(rt, q, 0, 502, "no provider could serve model %s (%s)", q->spec, q->last_err);
      } else {
        char hex[65];
        hex_encode(q->sha, 32, hex);
        finish_req(rt, q, 0, 404, "no node on the network offers model %s (%.16s…) within this node's price limits",
                   q->spec, hex);
      }
      return;
    }
    find_provider(rt, q);
  }
}

/* Re-runs q's request with the same seed on another provider and compares the ids. */
static void start_verify(mkt_route *rt, req *q) {
  attempt *a = q->hist[0];
  if (!a || !q->n_ids) return;
  req *v = calloc(1, sizeof *v);
  if (!v) return;
  v->params = json_deep_copy(q->params);
  json_object_del(v->params, "logprobs"); /* the text is compared, not the records */
  v->expect = malloc((size_t)q->n_ids * sizeof *v->expect);
  if (!v->params || !v->expect) { json_decref(v->params); free(v->expect); free(v); return; }
  memcpy(v->expect, q->ids, (size_t)q->n_ids * sizeof *v->expect);
  v->n_expect = q->n_ids;
  v->max_tokens = q->n_ids;
  v->verify = 1;
  memcpy(v->verify_of, a->pk, 32);
  add_tried(v, a->pk);
  hex_encode(q->sha, 32, v->spec);
  logf_(rt, 0, "verifying %s's answer on another provider", a->node_id);
  admit(rt, v);
}

/* ---- events from the calls --------------------------------------------------------------- */

/* The request whose current attempt is aid (replies to anything else are stale). */
static req *req_of(mkt_route *rt, uint32_t aid, attempt **a_out) {
  for (req *q = rt->reqs; q; q = q->next)
    if (q->cur && q->cur->aid == aid) {
      *a_out = q->cur;
      return q;
    }
  return NULL;
}

static void append_ids(req *q, const int32_t *ids, int n) {
  if (n <= 0 || !ids) return; /* a chunk with text or usage only */
  if (q->n_ids + n > q->cap_ids) {
    int nc = q->cap_ids ? q->cap_ids : 256;
    while (nc < q->n_ids + n) nc *= 2;
    int32_t *p = realloc(q->ids, (size_t)nc * sizeof *p);
    if (!p) return;
    q->ids = p;
    q->cap_ids = nc;
  }
  memcpy(q->ids + q->n_ids, ids, (size_t)n * sizeof *ids);
  q->n_ids += n;
}

static void pay(mkt_route *rt, const attempt *a, int final) {
  mkt_route_action *x = push(rt, MKT_RT_PAY);
  if (!x) return;
  x->aid = a->aid;
  x->pt = a->pt;
  x->gt = a->gt;
  x->final = final;
}

void mkt_route_channel(mkt_route *rt, uint64_t now, uint32_t aid, int rc, const uint8_t channel[32], const char *msg) {
  rt->now = now;
  attempt *a;
  req *q = req_of(rt, aid, &a);
  if (!q || q->state != Q_CHANNEL) return;
  a->live = 0;
  if (rc) {
    fail_attempt(rt, q, a, 0, msg && *msg ? msg : "cannot open a channel");
    return;
  }
  memcpy(a->channel, channel, 32);
  a->has_channel = 1;
  attempt_action(rt, q, a); /* the glue learns the channel */
  set_state(rt, q, Q_RUN);
  call_attempt(rt, q, a);
}

void mkt_route_chunk(mkt_route *rt, uint64_t now, uint32_t aid, const int32_t *ids, int n_ids, const char *text,
                     size_t len, int pt) {
  rt->now = now;
  attempt *a;
  req *q = req_of(rt, aid, &a);
  if (!q || n_ids < 0) return;
  if (!a->first_ms) a->first_ms = now;
  if (!q->orig_pt) q->orig_pt = pt - a->n_cont;
  a->last_ms = now;
  a->pt = pt;
  a->gt += n_ids;
  append_ids(q, ids, n_ids);
  if (text && len) {
    q->text_bytes += len;
    if (q->stream) mkt_stream_push(q->stream, text, len);
  }
  pay(rt, a, 0);
}

void mkt_route_logprobs(mkt_route *rt, uint64_t now, uint32_t aid, const logprob_rec *recs, int n, const uint8_t *bytes,
                        size_t text_len) {
  rt->now = now;
  attempt *a;
  req *q = req_of(rt, aid, &a);
  if (!q) return;
  if (n < 0 || !json_object_get(q->params, "logprobs")) { /* malformed, or not asked for */
    fail_attempt(rt, q, a, 1, "malformed logprobs in its stream");
    return;
  }
  if (q->stream && n) mkt_stream_push_logprobs(q->stream, recs, n, bytes, text_len);
}

void mkt_route_error(mkt_route *rt, uint64_t now, uint32_t aid, int code, const char *msg, const char *data_code) {
  rt->now = now;
  attempt *a;
  req *q = req_of(rt, aid, &a);
  if (!q) return;
  a->live = 0;
  if (code == MKT_E_CHANNEL_RETRY && ++a->retries < CHANNEL_RETRIES) {
    a->retry_at = now + CHANNEL_RETRY_MS;
    return;
  }
  /* A link can close before anything came for a reason that is not the provider's (two
   * nodes dialled each other at once and one link was dropped): try it again. */
  if (code == RPC_LINK_CLOSED && !a->gt && ++a->link_retries <= 2) {
    a->retry_at = now + 200;
    return;
  }
  if (code == RPC_INVALID_PARAMS) { /* the request's fault: no other provider would take it */
    q->code = data_code && !strcmp(data_code, "context_length_exceeded") ? "context_length_exceeded" : "invalid_request";
    finish_req(rt, q, 0, 400, "the provider refused the request: %s", msg ? msg : "");
    return;
  }
  fail_attempt(rt, q, a, code != MKT_E_PRICE && code != MKT_E_PAYMENT && code != MKT_E_DENIED && code != MKT_RT_E_NO_CALL,
               msg && *msg ? msg : "error");
}

void mkt_route_done(mkt_route *rt, uint64_t now, uint32_t aid, int pt, int gt, int length) {
  rt->now = now;
  attempt *a;
  req *q = req_of(rt, aid, &a);
  if (!q) return;
  a->live = 0;
  if (!q->orig_pt) q->orig_pt = pt - a->n_cont;
  if (gt != a->gt) logf_(rt, 1, "%s reported %d tokens but sent %d", a->node_id, gt, a->gt);
  a->pt = pt;
  a->done = 1;
  snprintf(q->finish, sizeof q->finish, "%s", length ? "length" : "stop");
  pay(rt, a, 1);
  receipt(rt, a, "done");
  mkt_route_action *x = push(rt, MKT_RT_STATS);
  if (x) {
    memcpy(x->pk, a->pk, 32);
    x->ok = 1;
    x->latency_ms = a->first_ms ? (double)(a->first_ms - a->started_ms) : -1;
  }
  q->cur = NULL;
  finish_req(rt, q, 1, 0, NULL);
}

void mkt_route_pay_refused(mkt_route *rt, uint64_t now, uint32_t aid, const char *why) {
  rt->now = now;
  attempt *a;
  req *q = req_of(rt, aid, &a);
  if (!q) return;
  char msg[300];
  snprintf(msg, sizeof msg, "refused our voucher: %.200s", why ? why : "refused");
  fail_attempt(rt, q, a, 1, msg); /* a provider that takes no money is not worked for any more */
}

/* ---- time -------------------------------------------------------------------------------- */

void mkt_route_tick(mkt_route *rt, uint64_t now) {
  rt->now = now;
  if (rt->cfg.registry && (!rt->names_at || now - rt->names_at > REG_LIST_MS)) list_names(rt);
  req *next;
  for (req *q = rt->reqs; q; q = next) {
    next = q->next;
    if (q->stream && mkt_stream_canceled(q->stream)) {
      finish_req(rt, q, 0, 499, "canceled by the client");
      continue;
    }
    attempt *a = q->cur;
    if (q->state == Q_RUN && a) {
      if (a->retry_at && now >= a->retry_at) {
        a->retry_at = 0;
        call_attempt(rt, q, a);
        continue;
      }
      uint64_t limit = a->first_ms ? rt->cfg.stall_ms : rt->cfg.stall_ms * 3; /* the prompt takes time */
      if (a->live && !a->retry_at && now - a->last_ms > limit) fail_attempt(rt, q, a, 1, "stalled");
    } else if (q->state == Q_FIND || q->state == Q_REGISTRY || q->state == Q_RESOLVE || q->state == Q_NAME) {
      step(rt, q);
    }
  }
}

void mkt_route_shutdown(mkt_route *rt, uint64_t now) {
  rt->now = now;
  while (rt->reqs) finish_req(rt, rt->reqs, 0, 503, "the node is stopping");
}
