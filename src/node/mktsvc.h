/* node/mktsvc — the client side of the market: answering a request for a model this node
 * does not have by buying the tokens from other nodes (docs/market.md). The decisions
 * (which provider, failover, stalls, the Registry check, verification, when a payment is
 * due) are market/route's, an engine without I/O; this file carries out its actions on
 * the links, the chain and the payment channels, and runs the payment machinery (vouchers
 * through market/payflow, one unanswered voucher per channel, resends).
 *
 *   offers     every linked peer is asked for its offers (`market.offers`) when its link
 *              comes up; `apiary offers` lists them with ours.
 *   routing    a request names a model (store name, catalog name or sha256). The sha256
 *              must be listed in the Registry contract (when a chain is configured); the
 *              providers offering that exact hash (peers' offers, plus nodes found under
 *              the model's DHT infohash) are ranked (market/rank: price, time to first
 *              token, failures, verification mismatches) within [market] max_price_*.
 *   paying     a paid offer needs a channel to the provider: an open one with room is
 *              reused, else one is opened on chain with [market] channel_deposit. As
 *              chunks arrive the node signs cumulative vouchers every [market] pay_every
 *              tokens and sends them with `market.pay`; at the end it pays the rest. Both
 *              sides keep a receipt.
 *   failover   when the provider's link dies, it answers an error, or it sends nothing
 *              for [market] stall_timeout ms, the next provider continues from the prompt
 *              plus the token ids already received (`cont`), so the answer goes on with
 *              no gap or repeat; each provider is paid for its own tokens only.
 *   verifying  with [market] verify_rate R (or `apiary node --verify-rate R`), a fraction R
 *              of answered requests is re-run with the same seed on another provider and
 *              the token ids compared; a mismatch is recorded against the first provider
 *              and lowers its rank.
 *
 * Entry points: mktsvc_submit (any thread: market/gen), the control methods
 * `market.offers`, `market.receipts`. Everything else on the loop thread. */
#ifndef APIARY_NODE_MKTSVC_H
#define APIARY_NODE_MKTSVC_H

#include <uv.h>

#include "core/config.h"
#include "core/store.h"
#include "llm/local.h"
#include "market/receipt.h"
#include "market/stream.h"
#include "node/control.h"
#include "node/gensvc.h"
#include "node/netsvc.h"
#include "node/paysvc.h"

typedef struct mktsvc mktsvc;

typedef struct mktsvc_opts {
  const config *cfg;
  const uint8_t *me;          /* our node key (32 bytes) */
  const char *models_dir;
  const char *wallet_path;    /* for registering our models in the Registry */
  double verify_rate;         /* < 0: from config */
} mktsvc_opts;

/* Everything borrowed for the service's lifetime. */
int mktsvc_start(uv_loop_t *loop, const mktsvc_opts *o, store *db, netsvc *ns, paysvc *pay, gensvc *gen,
                 ctl_server *ctl, mktsvc **out, char *err, size_t cap);
/* Ends every request (their streams finish with an error) and closes the loop handles.
 * mktsvc_submit refuses from then on; the memory lives until mktsvc_free. */
void mktsvc_stop(mktsvc *m);
void mktsvc_free(mktsvc *m); /* after the HTTP server stopped and the loop closed the handles */

/* From any thread (market/gen's network hook): routes a generation for model (name or
 * sha256) to the network, to provider `only` when not NULL (32-byte node key). lr's owned
 * fields are taken (its model_path is ignored). On 0, *out is a stream reference the
 * caller must drop. */
int mktsvc_submit(mktsvc *m, const char *model, const uint8_t *only, local_req *lr, mkt_stream **out);

/* Figures for `apiary status` (loop thread; owned). */
json_t *mktsvc_status(mktsvc *m);

/* From any thread: the models the network offers (an array of {name, sha256, providers,
 * min_price_gen}; owned by the caller). */
json_t *mktsvc_models(mktsvc *m);
/* Who lists the agents for sale (node/a2asvc, above us): market.offers answers
 * {offers, agents: fn(ud)} (fn returns an owned list). One lister; loop thread. */
typedef json_t *(*mktsvc_agents_fn)(void *ud);
void mktsvc_set_agents_lister(mktsvc *m, mktsvc_agents_fn fn, void *ud);

/* Loop thread: pays add wei more for r's request (a client receipt naming the provider
 * and an open channel to it), through market/payflow: the voucher, the receipt's amount
 * and the "unanswered" mark in one commit, then market.pay; the answer is handled as for
 * a generation (a refusal is undone, no answer means it is sent again). 0 (signed; the
 * answer comes later), ERR_BUSY (the channel has a voucher out: try again later),
 * ERR_INVAL (m NULL or stopping), or market/payflow's errors (nothing changed). */
int mktsvc_pay_request(mktsvc *m, const mkt_receipt *r, uint64_t add);

#endif
