/* node/gensvc_impl — what the seller's glue files share (gensvc.c: calls, the worker, the
 * engine's actions; genoffers.c: the offers, loaded, published and answered). Internal to
 * node/gensvc*; loop thread. */
#ifndef APIARY_NODE_GENSVC_IMPL_H
#define APIARY_NODE_GENSVC_IMPL_H

#include "market/lpwire.h"
#include "market/serve.h"
#include "node/gensvc.h"
#include "privacy/owner.h"

#define TIMER_MS 200
#define IDS_CHUNK 256

/* Below this much free space where the database lives, no new work is taken: what is
 * accepted must be recordable (receipts, vouchers) until it ends. */
#define MIN_FREE_BYTES (4u << 20)

typedef struct served {
  uint8_t sha[32];
  char path[1024];
} served;

/* What the glue holds for an engine slot (market/serve decides; this carries out). */
typedef struct slot_io {
  rpc *r;                 /* the link's RPC endpoint (NULL once the link is gone) */
  uint64_t handle;        /* the call being answered; 0 once answered */
  local_job *job;         /* NULL once the job is done or canceled */
  int sent;               /* tokens streamed to the client */
} slot_io;

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
  owner_policy policy;    /* [policy]: who we sell to, price floors */
  mkt_serve sv;           /* the seller's engine */
  slot_io io[MKT_SERVE_SLOTS];
  int32_t ids[IDS_CHUNK];
  char text[8192];
  logprob_rec lp[MKT_LP_MAX_RECS]; /* a chunk's log-probability records (requests asking for them) */
  buf lp_bytes;           /* their pieces */
  int closing;
};


/* genoffers.c: the offers from [market] serve (or the whole store), at the configured prices. */
int gensvc__load_offers(gensvc *g, const config *cfg, const char *models_dir, char *err, size_t cap);
/* Puts them in the DHT (infohash announces, the signed node record). */
void gensvc__publish_offers(gensvc *g);
/* The peer method market.offers. */
void gensvc__m_offers(void *ud, rpc *r, const rpc_request *req);

#endif
