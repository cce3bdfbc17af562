/* node/mktsvc — buying generations from other nodes; see mktsvc.h and docs/market.md. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/neg_store.h"
#include "chain/ethrpc.h"
#include "chain/registry.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "llm/gguf.h"
#include "llm/mstore.h"
#include "market/lpwire.h"
#include "node/mktsvc_impl.h"

uint64_t mktsvc__now_ms(mktsvc *m) { return uv_now(m->loop); }

void mktsvc__ignore_reply(void *ud, const rpc_reply *r) { (void)ud, (void)r; }


attempt *mktsvc__attempt_of(mktsvc *m, uint32_t aid) {
  for (attempt *a = m->attempts; a; a = a->next)
    if (a->aid == aid) return a;
  return NULL;
}

void mktsvc__maybe_free_attempt(attempt *a) {
  if (!a->dropped || a->calls_live || a->pays_live) return;
  mktsvc *m = a->m;
  for (attempt **pp = &m->attempts; *pp; pp = &(*pp)->next)
    if (*pp == a) { *pp = a->next; break; }
  free(a);
}

/* Our receipt for attempt a (its amount is payflow's: put never changes it). */
void mktsvc__client_receipt(mktsvc *m, const attempt *a, mkt_receipt *r) {
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

void mktsvc__write_client_receipt(mktsvc *m, attempt *a) {
  if (!a->pt && !a->gt) return;
  mkt_receipt r;
  mktsvc__client_receipt(m, a, &r);
  if (mkt_receipt_put(m->db, &r)) log_error("cannot record a receipt in %s: %s", store_path(m->db), store_errmsg(m->db));
}

/* ---- the engine's reads (market/route's env) --------------------------------------------- */

/* Model spec -> sha256 from what this node knows itself: 64 hex digits, its store, the
 * catalog. (The Registry's names and peers' offers are the engine's.) */
static int env_resolve(void *ud, const char *spec, uint8_t sha[32]) {
  mktsvc *m = ud;
  mstore_model mm;
  char err[512];
  const mstore_catalog_entry *e;
  if (strlen(spec) == 64 && hex_decode(spec, 64, sha, 32) == 0) return 0;
  if (m->models_dir && mstore_resolve(m->models_dir, spec, &mm, err, sizeof err) == 0 && mm.sha256[0])
    return hex_decode(mm.sha256, 64, sha, 32);
  if ((e = mstore_catalog_find(spec))) return hex_decode(e->sha256, 64, sha, 32);
  return ERR_NOTFOUND;
}

static int env_stats(void *ud, const uint8_t pk[32], mkt_provider_stats *out) {
  return mkt_stats_get(((mktsvc *)ud)->db, pk, out);
}

static int env_linked(void *ud, const uint8_t pk[32]) { return netsvc_linked(((mktsvc *)ud)->ns, pk); }

static int env_client_channel(void *ud, const uint8_t pk[32], uint64_t need, uint8_t out[32]) {
  channel ch;
  int rc = paysvc_client_channel(((mktsvc *)ud)->pay, pk, need, &ch);
  if (!rc) memcpy(out, ch.id, 32);
  return rc;
}

static uint64_t env_paid(void *ud, uint32_t aid) {
  attempt *a = mktsvc__attempt_of(ud, aid);
  return a ? a->paid_signed : 0;
}

static uint32_t env_random(void *ud) {
  (void)ud;
  return randombytes_random();
}

static int64_t env_wall(void *ud) {
  (void)ud;
  return (int64_t)time(NULL);
}

/* A signed deal we negotiated as the buyer with seller pk (agent/neg_store). */
static int env_deal_price(void *ud, const uint8_t pk[32], uint64_t *price_gen_out) {
  mktsvc *m = ud;
  return neg_store_deal_price(m->db, pk, m->me, (uint64_t)time(NULL), price_gen_out);
}

/* The owner's policy (privacy/owner): providers we may buy from, the daily spending cap. */
static int env_allowed(void *ud, const uint8_t pk[32]) {
  mktsvc *m = ud;
  return owner_node_allowed(&m->policy, pk);
}

static int env_spend_ok(void *ud, uint64_t need, char *why, size_t cap) {
  return mktsvc__spend_ok(ud, need, why, cap);
}

/* ---- calls ------------------------------------------------------------------------------- */

/* A chunk's `lp` records (market/lpwire) to the route engine; a malformed list is the
 * provider's fault like a bad chunk: the records are dropped and the request fails. */
static void chunk_logprobs(mktsvc *m, uint64_t now, uint32_t aid, const json_t *lp, size_t text_len) {
  logprob_rec *recs = malloc(MKT_LP_MAX_RECS * sizeof *recs);
  buf b;
  buf_init(&b);
  int n = recs ? mkt_lp_decode(lp, LOGPROB_MAX_TOP, recs, MKT_LP_MAX_RECS, &b) : ERR_NOMEM;
  mkt_route_logprobs(m->rt, now, aid, n >= 0 ? recs : NULL, n, b.ptr ? b.ptr : (const uint8_t *)"", text_len);
  buf_deinit(&b);
  free(recs);
}

static void on_gen_reply(void *ud, const rpc_reply *reply) {
  attempt *a = ud;
  mktsvc *m = a->m;
  if (reply->kind != RPC_REPLY_STREAM) a->calls_live--;
  if (m->closing || a->dropped) {
    mktsvc__maybe_free_attempt(a);
    return;
  }
  uint64_t now = mktsvc__now_ms(m);
  a->pays_live++; /* held while the engine's actions run */
  if (reply->kind == RPC_REPLY_STREAM) {
    json_t *d = reply->result;
    json_t *ids = json_object_get(d, "ids");
    size_t n = json_array_size(ids);
    if (json_is_array(ids) && n <= 100000) {
      int32_t stack[256], *v = n <= 256 ? stack : malloc(n * sizeof *v);
      if (v) {
        for (size_t i = 0; i < n; i++) v[i] = (int32_t)json_integer_value(json_array_get(ids, i));
        json_t *lp = json_object_get(d, "lp");
        if (lp) /* the records of this chunk's text, before it: a reader never takes the text without them */
          chunk_logprobs(m, now, a->aid, lp, json_string_length(json_object_get(d, "text")));
        mkt_route_chunk(m->rt, now, a->aid, v, (int)n, json_string_value(json_object_get(d, "text")),
                        json_string_length(json_object_get(d, "text")),
                        (int)json_integer_value(json_object_get(d, "pt")));
        if (v != stack) free(v);
      }
    }
  } else if (reply->kind == RPC_REPLY_ERROR) {
    mkt_route_error(m->rt, now, a->aid, reply->code, reply->message,
                    json_string_value(json_object_get(reply->data, "code")));
  } else {
    json_t *res = reply->result;
    const char *fin = json_string_value(json_object_get(res, "finish"));
    mkt_route_done(m->rt, now, a->aid, (int)json_integer_value(json_object_get(res, "prompt_tokens")),
                   (int)json_integer_value(json_object_get(res, "completion_tokens")), fin && !strcmp(fin, "length"));
  }
  mktsvc__drain(m);
  a->pays_live--;
  mktsvc__maybe_free_attempt(a);
}

static void on_channel(void *ud, int rc, const channel *ch, const char *msg) {
  attempt *a = ud;
  mktsvc *m = a->m;
  a->calls_live--;
  if (!m->closing && !a->dropped) {
    a->pays_live++;
    mkt_route_channel(m->rt, mktsvc__now_ms(m), a->aid, rc, rc ? NULL : ch->id, msg);
    mktsvc__drain(m);
    a->pays_live--;
  }
  mktsvc__maybe_free_attempt(a);
}

/* Carries out the engine's actions. */
void mktsvc__drain(mktsvc *m) {
  mkt_route_action x;
  while (mkt_route_poll(m->rt, &x)) {
    attempt *a = x.aid ? mktsvc__attempt_of(m, x.aid) : NULL;
    char rq[33];
    switch (x.kind) {
    case MKT_RT_ASK_OFFERS: mktsvc__ask_offers(m, x.pk); break;
    case MKT_RT_FIND_PROVIDERS: netsvc_find_providers(m->ns, x.sha); break;
    case MKT_RT_LIST_NAMES: mktsvc__list_names(m); break;
    case MKT_RT_REG_LOOKUP:
      if (mktsvc__reg_start(m, x.sha, 0, NULL, NULL)) mkt_route_registry(m->rt, mktsvc__now_ms(m), x.sha, -1);
      break;
    case MKT_RT_ATTEMPT:
      if (!a) {
        if (!(a = calloc(1, sizeof *a))) break; /* its calls then find no attempt: failed below */
        a->m = m;
        a->aid = x.aid;
        memcpy(a->pk, x.pk, 32);
        ident_id_encode(a->pk, a->node_id);
        memcpy(a->request, x.request, 16);
        memcpy(a->model, x.sha, 32);
        a->offer = x.offer;
        a->next = m->attempts;
        m->attempts = a;
      }
      if (x.has_channel) memcpy(a->channel, x.channel, 32), a->has_channel = 1;
      break;
    case MKT_RT_OPEN_CHANNEL:
      if (a && !paysvc_open_channel(m->pay, x.pk, &m->deposit, m->lifetime_s, on_channel, a)) {
        a->calls_live++;
        break;
      }
      mkt_route_channel(m->rt, mktsvc__now_ms(m), x.aid, ERR_INVAL, NULL, "cannot open a payment channel");
      break;
    case MKT_RT_CALL:
      if (a) {
        a->has_hash = mkt_request_hash(x.params, a->request_hash) == 0;
        a->calls_live++;
        if (!netsvc_call(m->ns, x.pk, "generate", x.params, GEN_TIMEOUT_MS, on_gen_reply, a)) break;
        a->calls_live--;
      } else {
        json_decref(x.params);
      }
      mkt_route_error(m->rt, mktsvc__now_ms(m), x.aid, MKT_RT_E_NO_CALL, "cannot call the provider", NULL);
      break;
    case MKT_RT_STOP:
      hex_encode(x.request, 16, rq);
      netsvc_call(m->ns, x.pk, "market.stop", json_pack("{s:s}", "request", rq), 5000, mktsvc__ignore_reply, NULL);
      break;
    case MKT_RT_PAY:
      if (!a) break;
      a->pt = x.pt;
      a->gt = x.gt;
      if (x.final) a->done = 1;
      mktsvc__maybe_pay(m, a, x.final);
      break;
    case MKT_RT_RECEIPT:
      if (!a) break;
      a->pt = x.pt;
      a->gt = x.gt;
      snprintf(a->status, sizeof a->status, "%s",
               strcmp(x.status, "done") ? x.status : a->paid_acked >= a->paid_signed ? "complete" : "partial");
      mktsvc__write_client_receipt(m, a);
      break;
    case MKT_RT_DROP:
      if (!a) break;
      a->dropped = 1;
      mktsvc__maybe_free_attempt(a);
      break;
    case MKT_RT_STATS: mkt_stats_record(m->db, x.pk, x.ok, x.latency_ms, (int64_t)time(NULL)); break;
    case MKT_RT_VERIFIED: mkt_stats_verify(m->db, x.pk, x.ok); break;
    case MKT_RT_LOG:
      if (x.level) log_warn("%s", x.message);
      else log_info("%s", x.message);
      break;
    }
  }
}

/* ---- entry points ------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  mktsvc *m = t->data;
  uint64_t now = mktsvc__now_ms(m);
  if (now >= m->resend_at) {
    m->resend_at = now + RESEND_MS;
    mktsvc__resend_unacked(m, ++m->resend_round % 8 == 0); /* unlinked providers are dialled now and then */
  }
  mktsvc__wake_waiters(m, NULL);
  mkt_route_tick(m->rt, now); /* stalls, retries, waits, canceled streams */
  mktsvc__drain(m);
}

static void on_async(uv_async_t *h) {
  mktsvc *m = h->data;
  pthread_mutex_lock(&m->mu);
  submission *list = m->inbox;
  m->inbox = NULL;
  pthread_mutex_unlock(&m->mu);
  while (list) {
    submission *s = list;
    list = s->next;
    mkt_route_submit(m->rt, mktsvc__now_ms(m), s->spec, s->params, s->max_tokens, s->has_only ? s->only : NULL, s->stream);
    free(s);
    mktsvc__drain(m);
  }
  on_timer(&m->timer); /* cancellations */
}

static void wake(void *ud) { uv_async_send(ud); }

/* The `generate` params of a local request (any thread). */
static json_t *params_of(const local_req *lr) {
  json_t *p = json_object();
  if (lr->messages) {
    json_object_set_new(p, "messages", json_deep_copy(lr->messages));
    if (lr->tools) json_object_set_new(p, "tools", json_deep_copy(lr->tools));
    if (lr->tool_choice[0]) json_object_set_new(p, "tool_choice", json_string(lr->tool_choice));
    if (!lr->parallel_tools) json_object_set_new(p, "parallel_tool_calls", json_false());
  } else {
    json_object_set_new(p, "prompt", json_stringn(lr->prompt ? lr->prompt : "", lr->prompt_len));
  }
  if (lr->grammar) json_object_set_new(p, "grammar", json_string(lr->grammar));
  if (lr->logprobs) json_object_set_new(p, "logprobs", json_integer(lr->top_logprobs));
  json_object_set_new(p, "temperature", json_real(lr->sp.temp));
  json_object_set_new(p, "top_p", json_real(lr->sp.top_p));
  /* every sampling knob, so the provider samples exactly as this node would (same seed, same text) */
  json_object_set_new(p, "top_k", json_integer(lr->sp.top_k > 0 ? lr->sp.top_k : 0));
  json_object_set_new(p, "min_p", json_real(lr->sp.min_p));
  json_object_set_new(p, "repeat_penalty", json_real(lr->sp.repeat_penalty));
  json_object_set_new(p, "penalty_last_n", json_integer(lr->sp.penalty_last_n));
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
  submission *s = calloc(1, sizeof *s);
  mkt_stream *st = mkt_stream_new();
  json_t *p = s && st ? params_of(lr) : NULL;
  if (!p) {
    free(s);
    mkt_stream_unref(st);
    local_req_clear(lr);
    return ERR_NOMEM;
  }
  snprintf(s->spec, sizeof s->spec, "%s", model);
  if (only) memcpy(s->only, only, 32), s->has_only = 1;
  s->params = p;
  s->max_tokens = lr->max_tokens > 0 ? lr->max_tokens : 16;
  local_req_clear(lr);
  mkt_stream_ref(st); /* one for the engine, one for the caller */
  s->stream = st;
  mkt_stream_on_cancel(st, wake, &m->async);
  pthread_mutex_lock(&m->mu);
  int stopped = m->stopped;
  if (!stopped) {
    s->next = m->inbox;
    m->inbox = s;
    uv_async_send(&m->async);
  }
  pthread_mutex_unlock(&m->mu);
  if (stopped) {
    mkt_stream_unref(st);
    mkt_stream_unref(st);
    json_decref(p);
    free(s);
    return ERR_CANCELED;
  }
  *out = st;
  return 0;
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
  m->lifetime_s = (uint64_t)config_int(cfg, "market", "channel_lifetime");
  m->pay_every = (int)config_int(cfg, "market", "pay_every");
  const char *dep = config_str(cfg, "market", "channel_deposit");
  if (channel_amount_parse(dep, &m->deposit) || u256_is_zero(&m->deposit)) {
    snprintf(err, cap, "config [market] channel_deposit: not a positive amount: %s", dep);
    free(m);
    return ERR_CONFIG;
  }
  if (owner_policy_load(&m->policy, cfg, err, cap)) {
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
  mkt_route_cfg rc = {.max_price_prompt = (uint64_t)config_int(cfg, "market", "max_price_prompt"),
                      .max_price_gen = (uint64_t)config_int(cfg, "market", "max_price_gen"),
                      .stall_ms = (uint64_t)config_int(cfg, "market", "stall_timeout"),
                      .verify_rate = m->verify_rate, .registry = m->registry_on, .payments = paysvc_enabled(pay)};
  mkt_route_env env = {m, env_resolve, env_stats, env_linked, env_client_channel, env_paid, env_random, env_wall,
                       env_deal_price, env_allowed, env_spend_ok};
  if (mkt_route_new(&rc, &env, &m->rt)) {
    free(m);
    return ERR_NOMEM;
  }
  pthread_mutex_init(&m->mu, NULL);
  int rcode = netsvc_on_link_ready(ns, mktsvc__on_link_ready, m);
  rcode = rcode ? rcode : ctl_server_add(ctl, "market.offers", mktsvc__c_offers, m);
  rcode = rcode ? rcode : ctl_server_add(ctl, "market.receipts", mktsvc__c_receipts, m);
  if (rcode) {
    pthread_mutex_destroy(&m->mu);
    mkt_route_free(m->rt);
    free(m);
    snprintf(err, cap, "cannot register the market's methods");
    return rcode;
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
    for (size_t i = 0; i < n; i++) mktsvc__reg_start(m, own[i].model, 1, own[i].name, gensvc_model_path(gen, own[i].model));
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
  submission *list = m->inbox;
  m->inbox = NULL;
  pthread_mutex_unlock(&m->mu);
  while (list) { /* never admitted: they end like the rest */
    submission *s = list;
    list = s->next;
    mkt_route_submit(m->rt, mktsvc__now_ms(m), s->spec, s->params, s->max_tokens, NULL, s->stream);
    free(s);
  }
  mkt_route_shutdown(m->rt, mktsvc__now_ms(m)); /* every request ends; its calls are told to stop */
  mktsvc__drain(m);
  m->closing = 1;
  while (m->n_waiting) { /* their vouchers were never signed: nothing is owed in the books */
    attempt *a = m->waiting[--m->n_waiting];
    a->pay_waiting = 0;
    a->pays_live--;
    mktsvc__maybe_free_attempt(a);
  }
  uv_close((uv_handle_t *)&m->timer, on_closed);
  uv_close((uv_handle_t *)&m->async, on_closed);
}

void mktsvc_free(mktsvc *m) {
  if (!m) return;
  free(m->models_json);
  mkt_route_free(m->rt);
  while (m->attempts) { /* calls that never answered (the loop is gone) */
    attempt *a = m->attempts;
    m->attempts = a->next;
    free(a);
  }
  pthread_mutex_destroy(&m->mu);
  free(m);
}


