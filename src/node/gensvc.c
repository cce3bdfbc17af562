/* node/gensvc — selling generations to other nodes; see gensvc.h and docs/market.md. */
#include "node/gensvc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "llm/gguf.h"
#include "llm/mstore.h"
#include "market/genreq.h"
#include "market/payflow.h"
#include "market/receipt.h"
#include "p2p/bencode.h"

#define MAX_JOBS 64
#define TIMER_MS 200
#define IDS_CHUNK 256

/* Peer error codes of `generate` (docs/market.md). */
enum { GEN_E_NO_MODEL = -32010, GEN_E_PAYMENT = -32014, GEN_E_PRICE = -32013, GEN_E_CHANNEL_RETRY = -32015,
       GEN_E_UNPAID = -32016, GEN_E_DISK = -32017 };

/* Below this much free space where the database lives, no new work is taken: what is
 * accepted must be recordable (receipts, vouchers) until it ends. */
#define MIN_FREE_BYTES (4u << 20)

typedef struct served {
  uint8_t sha[32];
  char path[1024];
} served;

typedef struct serving {
  int used;
  rpc *r;                 /* the link's RPC endpoint (NULL once the link is gone) */
  uint64_t handle;        /* the request being answered; 0 once answered */
  local_job *job;         /* NULL once the job is done */
  uint8_t request[16];
  uint8_t request_hash[32];
  int has_hash;
  uint8_t client[32];
  uint8_t model[32];
  uint8_t channel[32];
  int has_channel;
  uint64_t pp, gp;        /* prices of this request (per 1k tokens) */
  uint64_t paid;          /* wei credited to this request */
  int pt, gt;             /* prompt and generated tokens so far */
  int finished;           /* the answer was sent (or the request failed) */
  local_finish finish;
  uint64_t last_paid_ms;  /* loop time of the last payment (or start) */
  uint64_t waiting_since; /* loop time the job started waiting for credit, 0 = not waiting */
} serving;

struct gensvc {
  uv_loop_t *loop;
  uv_timer_t timer;
  uv_async_t async;
  int handles;
  uint8_t me[32];
  store *db;
  netsvc *ns;
  paysvc *pay;
  local_svc *local;
  served models[MKT_MAX_OFFERS];
  mkt_offer offers[MKT_MAX_OFFERS];
  size_t n_offers;
  uint32_t credit_tokens;
  uint64_t pay_timeout_ms;
  serving jobs[MAX_JOBS];
  int32_t ids[IDS_CHUNK];
  char text[8192];
  int closing;
};


const mkt_offer *gensvc_offers(const gensvc *g, size_t *n_out) {
  *n_out = g->n_offers;
  return g->offers;
}

const char *gensvc_model_path(const gensvc *g, const uint8_t sha256[32]) {
  /* Fault injection for tests of the verification hook: a provider that advertises the
   * genuine file but runs another one. Never set in production. */
  const char *fake = getenv("APIARY_FAULT_SERVE_FILE");
  if (fake && *fake) return fake;
  for (size_t i = 0; i < g->n_offers; i++)
    if (!memcmp(g->models[i].sha, sha256, 32)) return g->models[i].path;
  return NULL;
}

/* ---- receipts and credit ---------------------------------------------------------------- */

static uint64_t cost_of(const serving *s) {
  uint64_t c = 0;
  if (mkt_cost((uint64_t)s->pt, (uint64_t)s->gt, s->pp, s->gp, &c)) c = UINT64_MAX;
  return c;
}

/* Our receipt for s (tokens and status; the amount moves only with vouchers, in
 * market/payflow). 0 or the store's error (logged). */
static int write_receipt(gensvc *g, serving *s, const char *status) {
  mkt_receipt r;
  memset(&r, 0, sizeof r);
  r.role = MKT_PROVIDER;
  memcpy(r.request, s->request, 16);
  memcpy(r.request_hash, s->request_hash, 32);
  r.has_request_hash = s->has_hash;
  memcpy(r.provider, g->me, 32);
  memcpy(r.client, s->client, 32);
  memcpy(r.model, s->model, 32);
  if (s->has_channel) memcpy(r.channel, s->channel, 32), r.has_channel = 1;
  r.prompt_tokens = (uint64_t)s->pt;
  r.gen_tokens = (uint64_t)s->gt;
  r.price_prompt = s->pp;
  r.price_gen = s->gp;
  snprintf(r.status, sizeof r.status, "%s", status);
  int rc = mkt_receipt_put(g->db, &r);
  if (rc) log_error("cannot record a receipt in %s: %s", store_path(g->db), store_errmsg(g->db));
  return rc;
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
static void update_allowance(gensvc *g, serving *s) {
  if (!s->job) return;
  if (!s->pp && !s->gp) { local_job_allow(s->job, -1); return; }
  int64_t covered = s->pt ? mkt_tokens_covered((uint64_t)s->pt, s->paid, s->pp, s->gp) : -1;
  int64_t allow = (covered < 0 ? 0 : covered) + (int64_t)g->credit_tokens;
  local_job_allow(s->job, allow);
}

static void end_slot(serving *s) {
  if (s->job) {
    local_job_cancel(s->job);
    local_job_release(s->job);
  }
  memset(s, 0, sizeof *s);
}

/* The request is over for the client (answer sent, or failed): record it; the slot stays
 * until the final payment arrives (or the pay timeout). */
static void settle(gensvc *g, serving *s, const char *status) {
  s->finished = 1;
  if (s->job) {
    local_job_cancel(s->job);
    local_job_release(s->job);
    s->job = NULL;
  }
  if (!s->pp && !s->gp) {
    write_receipt(g, s, status);
    end_slot(s);
    return;
  }
  write_receipt(g, s, s->paid >= cost_of(s) ? "complete" : status);
  if (s->paid >= cost_of(s)) end_slot(s);
}

/* ---- provider ------------------------------------------------------------------------ */

/* The slot of a request: the running one first (a client may retry a request whose link
 * died before anything came; the old slot only waits for a payment then). */
static serving *find_request(gensvc *g, const uint8_t request[16], int active_only) {
  serving *old = NULL;
  for (int i = 0; i < MAX_JOBS; i++) {
    serving *s = &g->jobs[i];
    if (!s->used || memcmp(s->request, request, 16)) continue;
    if (!s->finished) return s;
    old = s;
  }
  return active_only ? NULL : old;
}

static int active_for(gensvc *g, const uint8_t model[32]) {
  int n = 0;
  for (int i = 0; i < MAX_JOBS; i++)
    if (g->jobs[i].used && g->jobs[i].job && !memcmp(g->jobs[i].model, model, 32)) n++;
  return n;
}

int gensvc_n_active(const gensvc *g) {
  int n = 0;
  for (int i = 0; i < MAX_JOBS; i++)
    if (g->jobs[i].used && g->jobs[i].job) n++;
  return n;
}

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
  const mkt_offer *o = mkt_offer_find(g->offers, g->n_offers, model);
  if (!o) {
    refuse(r, req->handle, GEN_E_NO_MODEL, "this node does not serve that model", NULL);
    return;
  }
  if (find_request(g, request, 1)) {
    refuse(r, req->handle, RPC_INVALID_PARAMS, "request id already in use", NULL);
    return;
  }
  char why_disk[1200];
  if (!disk_ok(g, why_disk, sizeof why_disk)) {
    log_warn("refused a request: %s", why_disk);
    refuse(r, req->handle, GEN_E_DISK, why_disk, NULL);
    return;
  }
  if (active_for(g, model) >= (int)o->max_concurrent) {
    refuse(r, req->handle, RPC_BUSY, "all slots for this model are busy", NULL);
    return;
  }
  serving *slot = NULL;
  for (int i = 0; i < MAX_JOBS && !slot; i++)
    if (!g->jobs[i].used) slot = &g->jobs[i];
  if (!slot) {
    refuse(r, req->handle, RPC_BUSY, "too many generations in progress", NULL);
    return;
  }
  memset(slot, 0, sizeof *slot); /* a refused request may have left fields behind */
  /* Prices: the client states what it agreed to; ours must not be higher. */
  uint64_t cpp = 0, cgp = 0;
  int paid_offer = o->price_prompt || o->price_gen;
  if (paid_offer) {
    json_t *offer = mkt_offers_to_json(o, 1);
    if (parse_u64(json_object_get(p, "price_prompt"), &cpp) || parse_u64(json_object_get(p, "price_gen"), &cgp) ||
        cpp < o->price_prompt || cgp < o->price_gen) {
      refuse(r, req->handle, GEN_E_PRICE, "the price was not agreed: see data for the offer", offer);
      return;
    }
    uint8_t ch[32];
    if (hex_parse(json_string_value(json_object_get(p, "channel")), ch, 32)) {
      refuse(r, req->handle, GEN_E_PAYMENT, "payment required: open a channel to this node", offer);
      return;
    }
    int crc = paysvc_check_channel(g->pay, ch, 1);
    if (crc == ERR_UNKNOWN_CHANNEL) {
      refuse(r, req->handle, GEN_E_CHANNEL_RETRY, "channel not known yet (looking it up on chain; retry)", offer);
      return;
    }
    if (crc) {
      refuse(r, req->handle, GEN_E_PAYMENT, err_str(crc), offer);
      return;
    }
    json_decref(offer);
    memcpy(slot->channel, ch, 32);
    slot->has_channel = 1;
  }
  local_req lr;
  memset(&lr, 0, sizeof lr);
  const char *why = mkt_genreq_parse(p, &lr);
  if (why) {
    local_req_clear(&lr);
    refuse(r, req->handle, RPC_INVALID_PARAMS, why, NULL);
    return;
  }
  snprintf(lr.model_path, sizeof lr.model_path, "%s", gensvc_model_path(g, model));
  lr.notify = wake;
  lr.notify_ud = &g->async;
  slot->has_hash = mkt_request_hash(p, slot->request_hash) == 0;
  memcpy(slot->request, request, 16);
  memcpy(slot->client, client, 32);
  memcpy(slot->model, model, 32);
  slot->pp = o->price_prompt;
  slot->gp = o->price_gen;
  /* The accepted request is on record before any work; what cannot be recorded is not done. */
  if (write_receipt(g, slot, "partial")) {
    char whyr[1400];
    snprintf(whyr, sizeof whyr, "this node cannot record the request (%s: %s): it takes no new work",
             store_path(g->db), store_errmsg(g->db));
    local_req_clear(&lr);
    memset(slot, 0, sizeof *slot);
    refuse(r, req->handle, store_full(g->db) ? GEN_E_DISK : RPC_INTERNAL_ERROR, whyr, NULL);
    return;
  }
  if (local_submit(g->local, &lr, &slot->job)) {
    local_req_clear(&lr);
    memset(slot, 0, sizeof *slot);
    refuse(r, req->handle, RPC_INTERNAL_ERROR, "cannot queue the generation", NULL);
    return;
  }
  slot->used = 1;
  slot->r = r;
  slot->handle = req->handle;
  slot->last_paid_ms = uv_now(g->loop);
  update_allowance(g, slot);
}

/* Moves new tokens from the worker to the link; answers jobs that are done. */
static void pump(gensvc *g, serving *s) {
  if (!s->job || !s->handle) return;
  int pt = 0, gt = 0;
  local_job_progress(s->job, &pt, &gt);
  if (pt != s->pt) {
    s->pt = pt;
    update_allowance(g, s);
  }
  for (;;) {
    int n_ids = local_job_read_ids(s->job, g->ids, IDS_CHUNK);
    int n = local_job_read(s->job, g->text, sizeof g->text, 0);
    if (n_ids <= 0 && n <= 0) {
      if (n == -ETIMEDOUT) return; /* still generating */
      break;
    }
    s->gt += n_ids;
    json_t *ids = json_array();
    for (int i = 0; i < n_ids; i++) json_array_append_new(ids, json_integer(g->ids[i]));
    json_t *d = json_pack("{s:s%, s:o, s:i, s:i}", "text", g->text, (size_t)(n > 0 ? n : 0), "ids", ids, "pt", s->pt,
                          "n", s->gt);
    int rc = rpc_stream(s->r, s->handle, d, NULL, 0);
    json_decref(d);
    if (rc) { /* canceled by the caller, or the link is full */
      s->handle = 0;
      settle(g, s, "partial");
      return;
    }
  }
  local_result res;
  if (local_job_wait(s->job, 0, &res)) return;
  s->pt = res.prompt_tokens;
  s->gt = res.completion_tokens;
  s->finish = res.finish;
  if (res.finish == LOCAL_ERROR || res.finish == LOCAL_CANCELED) {
    rpc_respond_error(s->r, s->handle, res.finish == LOCAL_ERROR ? RPC_INTERNAL_ERROR : RPC_REQUEST_CANCELLED,
                      res.finish == LOCAL_ERROR ? res.error : "canceled", NULL);
    s->handle = 0;
    settle(g, s, "partial");
    return;
  }
  char cost[24], pp[24], gp[24];
  snprintf(cost, sizeof cost, "%llu", (unsigned long long)cost_of(s));
  snprintf(pp, sizeof pp, "%llu", (unsigned long long)s->pp);
  snprintf(gp, sizeof gp, "%llu", (unsigned long long)s->gp);
  json_t *done = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s}", "finish", res.finish == LOCAL_LENGTH ? "length" : "stop",
                           "prompt_tokens", s->pt, "completion_tokens", s->gt, "cost", cost, "price_prompt", pp,
                           "price_gen", gp);
  rpc_respond(s->r, s->handle, done, NULL, 0);
  json_decref(done);
  s->handle = 0;
  s->last_paid_ms = uv_now(g->loop); /* the final payment is due from now */
  settle(g, s, "unpaid");
}

static void on_async(uv_async_t *a) {
  gensvc *g = a->data;
  for (int i = 0; i < MAX_JOBS; i++)
    if (g->jobs[i].used) pump(g, &g->jobs[i]);
}

static void on_timer(uv_timer_t *t) {
  gensvc *g = t->data;
  uint64_t now = uv_now(g->loop);
  for (int i = 0; i < MAX_JOBS; i++) {
    serving *s = &g->jobs[i];
    if (!s->used) continue;
    pump(g, s);
    if (!s->used) continue;
    if (s->finished) { /* waiting for the last payment */
      if (now - s->last_paid_ms > g->pay_timeout_ms) {
        log_warn("request %02x%02x…: unpaid after the answer (%llu of %llu wei)", s->request[0], s->request[1],
                 (unsigned long long)s->paid, (unsigned long long)cost_of(s));
        end_slot(s);
      }
      continue;
    }
    if (s->job && local_job_waiting_credit(s->job)) {
      if (!s->waiting_since) s->waiting_since = now;
      if (now - s->waiting_since > g->pay_timeout_ms && now - s->last_paid_ms > g->pay_timeout_ms) {
        log_warn("request %02x%02x…: the client stopped paying; stopping after %d tokens", s->request[0],
                 s->request[1], s->gt);
        rpc_respond_error(s->r, s->handle, GEN_E_UNPAID, "unpaid tokens passed the credit window", NULL);
        s->handle = 0;
        settle(g, s, "unpaid");
      }
    } else {
      s->waiting_since = 0;
    }
  }
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
  /* The voucher and the receipt it pays for: one commit, before the answer. */
  int rc = !paysvc_voucher_ours(g->pay, &v) ? ERR_WRONG_CHAIN
           : mkt_pay_accept(g->db, &v, request, g->me, (uint64_t)time(NULL), paysvc_margin_s(g->pay), &delta);
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
    refuse(r, req->handle, rc == ERR_UNKNOWN_CHANNEL ? GEN_E_CHANNEL_RETRY : -32011, msg, data);
    return;
  }
  serving *s = find_request(g, request, 0);
  if (s && (!s->has_channel || memcmp(s->channel, v.channel_id, 32))) s = NULL;
  if (s) {
    s->paid += delta;
    s->last_paid_ms = uv_now(g->loop);
    update_allowance(g, s);
    if (s->finished) settle(g, s, "unpaid");
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
  serving *s = NULL;
  if (!hex_parse(json_string_value(json_object_get(req->params, "request")), request, 16))
    s = find_request(g, request, 1);
  if (s && !netsvc_rpc_peer(g->ns, r, client) && !memcmp(client, s->client, 32)) {
    if (s->handle) rpc_respond_error(s->r, s->handle, RPC_REQUEST_CANCELLED, "stopped by the client", NULL);
    s->handle = 0;
    if (!s->finished) settle(g, s, "partial");
  }
  if (req->handle) { /* sent as a request: always answered, so nothing waits on it */
    json_t *ok = json_pack("{s:b}", "ok", 1);
    rpc_respond(r, req->handle, ok, NULL, 0);
    json_decref(ok);
  }
}

static void m_offers(void *ud, rpc *r, const rpc_request *req) {
  gensvc *g = ud;
  json_t *res = json_pack("{s:o, s:i}", "offers", mkt_offers_to_json(g->offers, g->n_offers), "v", 1);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

static void on_rpc_closed(void *ud, rpc *r) {
  gensvc *g = ud;
  for (int i = 0; i < MAX_JOBS; i++) {
    serving *s = &g->jobs[i];
    if (!s->used || s->r != r) continue;
    s->r = NULL;
    s->handle = 0;
    if (!s->finished) settle(g, s, "partial");
    else end_slot(s); /* the final payment cannot come any more */
  }
}

/* ---- offers ------------------------------------------------------------------------------ */

static void add_offer(gensvc *g, const char *path, const char *sha_hex, const char *name, const config *cfg) {
  if (g->n_offers >= MKT_MAX_OFFERS) return;
  mkt_offer *o = &g->offers[g->n_offers];
  served *m = &g->models[g->n_offers];
  memset(o, 0, sizeof *o);
  if (hex_decode(sha_hex, 64, o->model, 32)) return;
  for (size_t i = 0; i < g->n_offers; i++)
    if (!memcmp(g->offers[i].model, o->model, 32)) return;
  memcpy(m->sha, o->model, 32);
  snprintf(m->path, sizeof m->path, "%s", path);
  snprintf(o->name, sizeof o->name, "%s", name);
  o->price_prompt = (uint64_t)config_int(cfg, "market", "price_prompt");
  o->price_gen = (uint64_t)config_int(cfg, "market", "price_gen");
  o->max_concurrent = (uint32_t)config_int(cfg, "market", "max_concurrent");
  g->n_offers++;
}

static int load_offers(gensvc *g, const config *cfg, const char *models_dir, char *err, size_t cap) {
  const char *const *items;
  size_t n = config_list(cfg, "market", "serve", &items);
  static mstore_model list[MKT_MAX_OFFERS];
  if (n == 0) {
    int k = models_dir ? mstore_list(models_dir, list, MKT_MAX_OFFERS) : 0;
    for (int i = 0; i < k; i++) add_offer(g, list[i].path, list[i].sha256, list[i].name, cfg);
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    mstore_model m;
    char e[512];
    if (mstore_resolve(models_dir, items[i], &m, e, sizeof e)) {
      snprintf(err, cap, "config [market] serve: %s: %s", items[i], e);
      return ERR_CONFIG;
    }
    if (!m.sha256[0]) {
      log_info("hashing %s (served models are known by their sha256)", m.path);
      if (mstore_sha256_file(m.path, m.sha256, NULL, NULL)) {
        snprintf(err, cap, "config [market] serve: cannot read %s", m.path);
        return ERR_CONFIG;
      }
    }
    add_offer(g, m.path, m.sha256, m.name, cfg);
  }
  return 0;
}

static void publish_offers(gensvc *g) {
  uint8_t shas[MKT_MAX_OFFERS][32];
  for (size_t i = 0; i < g->n_offers; i++) memcpy(shas[i], g->offers[i].model, 32);
  netsvc_set_served(g->ns, (const uint8_t(*)[32])shas, (int)g->n_offers);
  /* As many offers as fit next to the endpoints in a 1000-byte DHT item. */
  uint8_t b[600];
  for (size_t k = g->n_offers; k > 0; k--) {
    ben_w w;
    ben_w_init(&w, b, sizeof b);
    mkt_offers_to_ben(&w, g->offers, k);
    int len = ben_w_finish(&w);
    if (len > 0) {
      netsvc_set_record_offers(g->ns, b, (size_t)len);
      return;
    }
  }
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
  g->credit_tokens = (uint32_t)config_int(cfg, "market", "credit_tokens");
  g->pay_timeout_ms = (uint64_t)config_int(cfg, "market", "pay_timeout") * 1000;
  int rc = load_offers(g, cfg, models_dir, err, cap);
  if (rc) { free(g); return rc; }
  if (g->n_offers && (g->offers[0].price_prompt || g->offers[0].price_gen) && !paysvc_enabled(pay))
    log_warn("[market] prices are set but payments are off (no wallet or chain deployment): paid offers will be refused");
  rpc_method ms[] = {{"generate", RPC_PARAMS_OBJECT, m_generate, g},
                     {"market.pay", RPC_PARAMS_OBJECT, m_pay, g},
                     {"market.stop", RPC_PARAMS_OBJECT, m_stop, g},
                     {"market.offers", RPC_PARAMS_ANY, m_offers, g}};
  for (size_t i = 0; i < sizeof ms / sizeof *ms && !rc; i++) rc = netsvc_register(ns, &ms[i]);
  if (!rc) rc = netsvc_on_rpc_closed(ns, on_rpc_closed, g);
  if (rc) { free(g); snprintf(err, cap, "cannot register the market methods"); return rc; }
  publish_offers(g);
  uv_timer_init(loop, &g->timer);
  uv_async_init(loop, &g->async, on_async);
  g->timer.data = g->async.data = g;
  g->handles = 2;
  uv_timer_start(&g->timer, on_timer, TIMER_MS, TIMER_MS);
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
  if (--g->handles == 0) free(g);
}

void gensvc_stop(gensvc *g) {
  if (!g || g->closing) return;
  g->closing = 1;
  for (int i = 0; i < MAX_JOBS; i++)
    if (g->jobs[i].used) {
      if (!g->jobs[i].finished && g->jobs[i].used) write_receipt(g, &g->jobs[i], "partial");
      end_slot(&g->jobs[i]);
    }
  uv_close((uv_handle_t *)&g->timer, on_closed);
  uv_close((uv_handle_t *)&g->async, on_closed);
}
