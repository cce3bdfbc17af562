/* node/gensvc — selling generations to other nodes; see gensvc.h and docs/market.md. */
#include "node/gensvc_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "agent/neg_store.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "llm/gguf.h"
#include "llm/mstore.h"
#include "http/metrics.h"
#include "market/genreq.h"
#include "market/payflow.h"
#include "market/receipt.h"
#include "market/serve.h"
#include "p2p/bencode.h"
#include "privacy/redact_testlog.h"

/* ---- carrying out the engine's actions ---------------------------------------------- */

static uint64_t now_ms(gensvc *g) { return uv_now(g->loop); }

static void drop_job(slot_io *io) {
  if (!io->job) return;
  local_job_cancel(io->job);
  local_job_release(io->job);
  io->job = NULL;
}

static void answer(gensvc *g, int slot, const mkt_serve_action *a) {
  slot_io *io = &g->io[slot];
  if (!io->r || !io->handle) return;
  char cost[24], pp[24], gp[24];
  snprintf(cost, sizeof cost, "%llu", (unsigned long long)a->cost);
  snprintf(pp, sizeof pp, "%llu", (unsigned long long)a->price_prompt);
  snprintf(gp, sizeof gp, "%llu", (unsigned long long)a->price_gen);
  json_t *done = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}", "finish", a->finish == LOCAL_LENGTH ? "length" : "stop",
                           "prompt_tokens", a->pt, "completion_tokens", a->gt, "cost", cost, "price_prompt", pp,
                           "price_gen", gp);
  rpc_respond(io->r, io->handle, done, NULL, 0);
  json_decref(done);
  io->handle = 0;
}

static void drain(gensvc *g) {
  mkt_serve_action a;
  while (mkt_serve_poll(&g->sv, &a)) {
    slot_io *io = &g->io[a.slot];
    switch (a.kind) {
    case MKT_SV_ALLOW:
      if (io->job) local_job_allow(io->job, a.tokens);
      break;
    case MKT_SV_CANCEL_JOB: drop_job(io); break;
    case MKT_SV_ANSWER:
      answer(g, a.slot, &a);
      http_metrics_sold((uint64_t)a.gt);
      break;
    case MKT_SV_ERROR:
      if (io->r && io->handle) {
        json_t *data = a.data_code ? json_pack("{s:s}", "code", a.data_code) : NULL;
        rpc_respond_error(io->r, io->handle, a.code, a.message, data);
        json_decref(data);
      }
      io->handle = 0;
      break;
    case MKT_SV_RECEIPT:
      if (mkt_receipt_put(g->db, &a.receipt))
        log_error("cannot record a receipt in %s: %s", store_path(g->db), store_errmsg(g->db));
      break;
    case MKT_SV_FREE:
      if (a.message[0])
        log_warn("request %02x%02x…: %s", a.receipt.request[0], a.receipt.request[1], a.message);
      drop_job(io);
      memset(io, 0, sizeof *io);
      break;
    }
  }
}

/* The disk under the database has room for the work we would accept. Writes the reason. */
static int disk_ok(gensvc *g, char *why, size_t cap) {
  struct statvfs sv;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", store_path(g->db));
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  if (statvfs(slash ? dir : ".", &sv)) return 1; /* cannot tell: the writes will say */
  uint64_t free_b = (uint64_t)sv.f_bavail * sv.f_frsize;
  if (free_b >= MIN_FREE_BYTES) return 1;
  snprintf(why, cap, "this node's disk is full (%llu KiB free where its database %s lives): it takes no new work",
           (unsigned long long)(free_b >> 10), store_path(g->db));
  return 0;
}

/* How many tokens the job may generate: what is paid plus the credit window. */
int gensvc_n_active(const gensvc *g) { return mkt_serve_active(&g->sv, NULL); }

static void wake(void *ud) { uv_async_send(ud); }


static int parse_u64(json_t *v, uint64_t *out) {
  const char *s = json_string_value(v);
  if (!s || !*s || strlen(s) > 20) return ERR_FORMAT;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(s, &end, 10);
  if (*end || errno) return ERR_FORMAT;
  *out = x;
  return 0;
}

static void refuse(rpc *r, uint64_t handle, int code, const char *msg, json_t *data) {
  rpc_respond_error(r, handle, code, msg, data);
  json_decref(data);
}

static void m_generate(void *ud, rpc *r, const rpc_request *req) {
  gensvc *g = ud;
  json_t *p = req->params;
  uint8_t model[32], request[16], client[32];
  if (hex_parse(json_string_value(json_object_get(p, "model")), model, 32) ||
      hex_parse(json_string_value(json_object_get(p, "request")), request, 16)) {
    refuse(r, req->handle, RPC_INVALID_PARAMS, "need model (sha256 hex) and request (16 bytes hex)", NULL);
    return;
  }
  if (netsvc_rpc_peer(g->ns, r, client)) {
    refuse(r, req->handle, RPC_INTERNAL_ERROR, "unknown link", NULL);
    return;
  }
  if (!owner_node_allowed(&g->policy, client)) {
    refuse(r, req->handle, MKT_E_DENIED, "this node's owner does not sell to your node ([policy] allow_nodes / deny_nodes)",
           NULL);
    return;
  }
  const mkt_offer *o = mkt_offer_find(g->offers, g->n_offers, model);
  if (!o) {
    refuse(r, req->handle, MKT_E_NO_MODEL, "this node does not serve that model", NULL);
    return;
  }
  char why_disk[1200];
  if (!disk_ok(g, why_disk, sizeof why_disk)) {
    log_warn("refused a request: %s", why_disk);
    refuse(r, req->handle, MKT_E_DISK, why_disk, NULL);
    return;
  }
  mkt_serve_req sr;
  memset(&sr, 0, sizeof sr);
  memcpy(sr.request, request, 16);
  memcpy(sr.client, client, 32);
  memcpy(sr.model, model, 32);
  sr.link = (uint64_t)(uintptr_t)r;
  sr.price_prompt = o->price_prompt;
  sr.price_gen = o->price_gen;
  sr.max_concurrent = o->max_concurrent;
  /* A signed deal this client negotiated with us fixes its price per 1k generated tokens
   * (agent/neg_store: bound to both node keys, verified, unexpired). */
  uint64_t deal_gen;
  if (o->price_gen && neg_store_deal_price(g->db, g->me, client, (uint64_t)time(NULL), &deal_gen) == 0 &&
      deal_gen < o->price_gen)
    sr.price_gen = owner_floor_gen(&g->policy, deal_gen); /* a deal caps the price, never below the floor */
  /* Prices: the client states what it agreed to; ours must not be higher. */
  if (o->price_prompt || o->price_gen) {
    uint64_t cpp = 0, cgp = 0;
    json_t *offer = mkt_offers_to_json(o, 1);
    if (parse_u64(json_object_get(p, "price_prompt"), &cpp) || parse_u64(json_object_get(p, "price_gen"), &cgp) ||
        cpp < o->price_prompt || cgp < sr.price_gen) {
      refuse(r, req->handle, MKT_E_PRICE, "the price was not agreed: see data for the offer", offer);
      return;
    }
    if (hex_parse(json_string_value(json_object_get(p, "channel")), sr.channel, 32)) {
      refuse(r, req->handle, MKT_E_PAYMENT, "payment required: open a channel to this node", offer);
      return;
    }
    int crc = paysvc_check_channel(g->pay, sr.channel, 1);
    if (crc == ERR_UNKNOWN_CHANNEL) {
      refuse(r, req->handle, MKT_E_CHANNEL_RETRY, "channel not known yet (looking it up on chain; retry)", offer);
      return;
    }
    if (crc) {
      refuse(r, req->handle, MKT_E_PAYMENT, err_str(crc), offer);
      return;
    }
    json_decref(offer);
    sr.has_channel = 1;
  }
  local_req lr;
  memset(&lr, 0, sizeof lr);
  redact_testlog_received(p); /* test only: off unless APIARY_TEST_RECEIVED_PROMPTS is set */
  const char *why = mkt_genreq_parse(p, &lr);
  if (why) {
    local_req_clear(&lr);
    refuse(r, req->handle, RPC_INVALID_PARAMS, why, NULL);
    return;
  }
  sr.has_hash = mkt_request_hash(p, sr.request_hash) == 0;
  int slot;
  int code = mkt_serve_admit(&g->sv, &sr, &slot, &why);
  if (code) {
    local_req_clear(&lr);
    refuse(r, req->handle, code, why, NULL);
    return;
  }
  /* The accepted request is on record before any work; what cannot be recorded is not done. */
  mkt_receipt rc0;
  mkt_serve_receipt(&g->sv, slot, "partial", &rc0);
  if (mkt_receipt_put(g->db, &rc0)) {
    char whyr[1400];
    snprintf(whyr, sizeof whyr, "this node cannot record the request (%s: %s): it takes no new work",
             store_path(g->db), store_errmsg(g->db));
    log_error("refused a request: %s", whyr);
    local_req_clear(&lr);
    mkt_serve_abort(&g->sv, slot);
    refuse(r, req->handle, store_full(g->db) ? MKT_E_DISK : RPC_INTERNAL_ERROR, whyr, NULL);
    return;
  }
  snprintf(lr.model_path, sizeof lr.model_path, "%s", gensvc_model_path(g, model));
  lr.notify = wake;
  lr.notify_ud = &g->async;
  slot_io *io = &g->io[slot];
  memset(io, 0, sizeof *io);
  if (local_submit(g->local, &lr, &io->job)) {
    local_req_clear(&lr);
    mkt_serve_abort(&g->sv, slot);
    io->job = NULL;
    refuse(r, req->handle, RPC_INTERNAL_ERROR, "cannot queue the generation", NULL);
    return;
  }
  io->r = r;
  io->handle = req->handle;
  mkt_serve_started(&g->sv, slot, now_ms(g));
  drain(g);
}

/* Moves new tokens from the worker to the link; tells the engine how far the job is and
 * when it ended. */
static void pump(gensvc *g, int slot) {
  slot_io *io = &g->io[slot];
  if (!io->job) return;
  uint64_t now = now_ms(g);
  int pt = 0, gt = 0;
  local_job_progress(io->job, &pt, &gt);
  for (;;) {
    int n_ids = io->handle ? local_job_read_ids(io->job, g->ids, IDS_CHUNK) : 0;
    int n = io->handle ? local_job_read(io->job, g->text, sizeof g->text, 0) : -ETIMEDOUT;
    buf_reset(&g->lp_bytes);
    int n_lp = io->handle ? local_job_read_logprobs(io->job, g->lp, MKT_LP_MAX_RECS, &g->lp_bytes) : 0;
    if (n_ids <= 0 && n <= 0 && n_lp <= 0) {
      if (n == -ETIMEDOUT) { /* still generating */
        mkt_serve_progress(&g->sv, slot, pt, io->sent, now);
        return;
      }
      break;
    }
    io->sent += n_ids;
    json_t *ids = json_array();
    for (int i = 0; i < n_ids; i++) json_array_append_new(ids, json_integer(g->ids[i]));
    json_t *d = json_pack("{s:s%, s:o, s:i, s:i}", "text", g->text, (size_t)(n > 0 ? n : 0), "ids", ids, "pt", pt,
                          "n", io->sent);
    if (n_lp > 0) json_object_set_new(d, "lp", mkt_lp_encode(g->lp, n_lp, g->lp_bytes.ptr)); /* the records of this text */
    int rc = rpc_stream(io->r, io->handle, d, NULL, 0);
    json_decref(d);
    if (rc) { /* canceled by the caller, or the link is full */
      io->handle = 0;
      mkt_serve_progress(&g->sv, slot, pt, io->sent, now);
      mkt_serve_stream_failed(&g->sv, slot, now);
      return;
    }
  }
  local_result res;
  if (local_job_wait(io->job, 0, &res)) return;
  mkt_serve_job_end(&g->sv, slot, res.finish, res.prompt_tokens, res.completion_tokens, res.error, res.kind, now);
}

static void pump_all(gensvc *g) {
  for (int i = 0; i < MKT_SERVE_SLOTS; i++)
    if (g->io[i].job) {
      pump(g, i);
      drain(g);
    }
}

static void on_async(uv_async_t *a) { pump_all(a->data); }

/* Every TIMER_MS: the engine's deadlines (pay timeouts, seconds) are far coarser. */
static void on_timer(uv_timer_t *t) {
  gensvc *g = t->data;
  pump_all(g);
  mkt_serve_tick(&g->sv, now_ms(g));
  drain(g);
}

static void m_pay(void *ud, rpc *r, const rpc_request *req) {
  gensvc *g = ud;
  uint8_t request[16];
  voucher v;
  if (hex_parse(json_string_value(json_object_get(req->params, "request")), request, 16) ||
      voucher_from_json(json_object_get(req->params, "voucher"), &v)) {
    refuse(r, req->handle, RPC_INVALID_PARAMS, "need request and voucher", NULL);
    return;
  }
  uint64_t delta = 0;
  /* The voucher and the receipt it pays for (with the tokens so far): one commit, before
   * the answer. */
  int running = mkt_serve_find(&g->sv, request, 1);
  mkt_receipt counts;
  if (running >= 0) mkt_serve_receipt(&g->sv, running, "partial", &counts);
  int rc = !paysvc_voucher_ours(g->pay, &v) ? ERR_WRONG_CHAIN
           : mkt_pay_accept(g->db, &v, request, g->me, (uint64_t)time(NULL), paysvc_margin_s(g->pay),
                            running >= 0 ? &counts : NULL, &delta);
  paysvc_voucher_result(g->pay, &v, rc);
  if (rc) {
    char msg[1200];
    if (rc == ERR_STORE)
      snprintf(msg, sizeof msg, "cannot record the voucher (%s: %s)", store_path(g->db), store_errmsg(g->db));
    else if (rc == ERR_NOTFOUND)
      snprintf(msg, sizeof msg, "no request of yours with that id on that channel");
    else
      snprintf(msg, sizeof msg, "%s", err_str(rc));
    if (rc == ERR_STORE) log_error("refused a voucher: %s", msg);
    else log_warn("refused a voucher: %s", msg);
    json_t *data = json_pack("{s:i}", "code", rc);
    refuse(r, req->handle, rc == ERR_UNKNOWN_CHANNEL ? MKT_E_CHANNEL_RETRY : -32011, msg, data);
    return;
  }
  http_metrics_earned(delta);
  if (mkt_serve_paid(&g->sv, request, v.channel_id, delta, now_ms(g)) >= 0) {
    drain(g);
  } else if (delta) {
    log_info("a payment of %llu wei for a request that is over was accepted (its receipt has it)",
             (unsigned long long)delta);
  }
  char amt[U256_DEC_BUF];
  u256_to_dec(&v.amount, amt);
  json_t *res = json_pack("{s:s}", "accepted", amt);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

static void m_stop(void *ud, rpc *r, const rpc_request *req) {
  gensvc *g = ud;
  uint8_t request[16], client[32];
  if (!hex_parse(json_string_value(json_object_get(req->params, "request")), request, 16) &&
      !netsvc_rpc_peer(g->ns, r, client)) {
    mkt_serve_stop(&g->sv, request, client, now_ms(g));
    drain(g);
  }
  if (req->handle) { /* sent as a request: always answered, so nothing waits on it */
    json_t *ok = json_pack("{s:b}", "ok", 1);
    rpc_respond(r, req->handle, ok, NULL, 0);
    json_decref(ok);
  }
}

static void on_rpc_closed(void *ud, rpc *r) {
  gensvc *g = ud;
  for (int i = 0; i < MKT_SERVE_SLOTS; i++)
    if (g->io[i].r == r) g->io[i].r = NULL, g->io[i].handle = 0;
  mkt_serve_link_closed(&g->sv, (uint64_t)(uintptr_t)r, now_ms(g));
  drain(g);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int gensvc_start(uv_loop_t *loop, const config *cfg, const uint8_t me[32], store *db, netsvc *ns, paysvc *pay,
                 ctl_server *ctl, local_svc *local, const char *models_dir, gensvc **out, char *err, size_t cap) {
  (void)ctl;
  gensvc *g = calloc(1, sizeof *g);
  if (!g) return ERR_NOMEM;
  g->loop = loop;
  memcpy(g->me, me, 32);
  g->db = db;
  g->ns = ns;
  g->pay = pay;
  g->local = local;
  mkt_serve_init(&g->sv, me, (uint32_t)config_int(cfg, "market", "credit_tokens"),
                 (uint64_t)config_int(cfg, "market", "pay_timeout") * 1000);
  int rc = owner_policy_load(&g->policy, cfg, err, cap);
  if (rc) { free(g); return rc; }
  rc = gensvc__load_offers(g, cfg, models_dir, err, cap);
  if (rc) { free(g); return rc; }
  if (g->n_offers && (g->offers[0].price_prompt || g->offers[0].price_gen) && !paysvc_enabled(pay))
    log_warn("[market] prices are set but payments are off (no wallet or chain deployment): paid offers will be refused");
  rpc_method ms[] = {{"generate", RPC_PARAMS_OBJECT, m_generate, g},
                     {"market.pay", RPC_PARAMS_OBJECT, m_pay, g},
                     {"market.stop", RPC_PARAMS_OBJECT, m_stop, g},
                     {"market.offers", RPC_PARAMS_ANY, gensvc__m_offers, g}};
  for (size_t i = 0; i < sizeof ms / sizeof *ms && !rc; i++) rc = netsvc_register(ns, &ms[i]);
  if (!rc) rc = netsvc_on_rpc_closed(ns, on_rpc_closed, g);
  if (rc) { free(g); snprintf(err, cap, "cannot register the market methods"); return rc; }
  gensvc__publish_offers(g);
  uv_timer_init(loop, &g->timer);
  uv_async_init(loop, &g->async, on_async);
  g->timer.data = g->async.data = g;
  g->handles = 2;
  uv_timer_start(&g->timer, on_timer, TIMER_MS, TIMER_MS);
  if (!g->n_offers)
    log_info("this node sells no model: 'apiary sell MODEL --price-gen WEI' (or [market] serve = [\"*\"] for every "
             "model in the store) to sell");
  for (size_t i = 0; i < g->n_offers; i++) {
    char hex[65];
    hex_encode(g->offers[i].model, 32, hex);
    log_info("serving %s (%.16s…) at %llu / %llu wei per 1k prompt / generated tokens", g->offers[i].name, hex,
             (unsigned long long)g->offers[i].price_prompt, (unsigned long long)g->offers[i].price_gen);
  }
  *out = g;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  gensvc *g = h->data;
  if (--g->handles == 0) {
    buf_deinit(&g->lp_bytes);
    free(g);
  }
}

void gensvc_stop(gensvc *g) {
  if (!g || g->closing) return;
  g->closing = 1;
  mkt_serve_shutdown(&g->sv); /* receipts of what was running, jobs canceled */
  drain(g);
  uv_close((uv_handle_t *)&g->timer, on_closed);
  uv_close((uv_handle_t *)&g->async, on_closed);
}

