/* node/genoffers — what this node sells: offers from [market] serve (nothing when empty;
 * "*" = every model in the store) at the configured prices, announced in the DHT and answered to `market.offers`;
 * see gensvc.h and docs/market.md. */
#include "node/gensvc_impl.h"

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
#include "market/serve.h"
#include "p2p/bencode.h"

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

void gensvc__m_offers(void *ud, rpc *r, const rpc_request *req) {
  gensvc *g = ud;
  json_t *res = json_pack("{s:o, s:i}", "offers", mkt_offers_to_json(g->offers, g->n_offers), "v", 1);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
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

int gensvc__load_offers(gensvc *g, const config *cfg, const char *models_dir, char *err, size_t cap) {
  /* The owner's price floors ([policy]): offers below them are not made. */
  if ((uint64_t)config_int(cfg, "market", "price_prompt") < g->policy.floor_prompt ||
      (uint64_t)config_int(cfg, "market", "price_gen") < g->policy.floor_gen) {
    snprintf(err, cap,
             "config [market] price_prompt / price_gen (%lld / %lld wei) are below [policy] price_floor_prompt / "
             "price_floor_gen (%llu / %llu): raise the prices or lower the floors",
             (long long)config_int(cfg, "market", "price_prompt"), (long long)config_int(cfg, "market", "price_gen"),
             (unsigned long long)g->policy.floor_prompt, (unsigned long long)g->policy.floor_gen);
    return ERR_CONFIG;
  }
  const char *const *items;
  size_t n = config_list(cfg, "market", "serve", &items);
  static mstore_model list[MKT_MAX_OFFERS];
  /* Nothing is sold until the owner says what: [] sells nothing, "*" every model in the store. */
  for (size_t i = 0; i < n; i++) {
    if (strcmp(items[i], "*")) continue;
    int k = models_dir ? mstore_list(models_dir, list, MKT_MAX_OFFERS) : 0;
    for (int j = 0; j < k; j++) add_offer(g, list[j].path, list[j].sha256, list[j].name, cfg);
  }
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(items[i], "*")) continue;
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

void gensvc__publish_offers(gensvc *g) {
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

