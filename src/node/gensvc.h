/* node/gensvc — the provider side of the market: selling generations to other nodes. The
 * decisions (admission, credit window, pay timeout, settling, receipts) are market/serve's,
 * an engine without I/O; this file carries them out on the links and the worker.
 *
 *   offers      the models this node serves ([market] serve: store names or GGUF paths;
 *               empty = every model in the store), each at [market] price_prompt /
 *               price_gen wei per 1,000 tokens with [market] max_concurrent generations
 *               at once. They are announced under each model's DHT infohash, put in the
 *               signed node record, and answered by the peer method `market.offers`.
 *   generate    {request, model, prompt | messages, max_tokens, temperature, top_p, seed,
 *               stop, presence_penalty, frequency_penalty, cont (token ids to resume
 *               after), channel, price_prompt, price_gen} runs a job on the local worker
 *               and streams {text, ids, pt, n} chunks; the answer is {finish,
 *               prompt_tokens, completion_tokens, cost, price_prompt, price_gen}.
 *   billing     a paid offer needs a channel the provider knows (or finds on chain). The
 *               client sends `market.pay` {request, voucher} as tokens arrive; each
 *               voucher is committed together with its request's receipt
 *               (market/payflow) before it is acknowledged. The job may run at most
 *               [market] credit_tokens tokens ahead of what is paid; past that it pauses,
 *               and after [market] pay_timeout seconds without payment it is canceled.
 *               The receipt is written before any work (a request that cannot be
 *               recorded, e.g. on a full disk, is refused) and when the request ends.
 *   market.stop {request}: the client gave up on this request; the job is canceled.
 * The worker thread wakes the loop (uv_async) when a job has new tokens, so chunks go out
 * as soon as they are made. Loop thread only. */
#ifndef APIARY_NODE_GENSVC_H
#define APIARY_NODE_GENSVC_H

#include <uv.h>

#include "core/config.h"
#include "core/store.h"
#include "llm/local.h"
#include "market/offer.h"
#include "node/control.h"
#include "node/netsvc.h"
#include "node/paysvc.h"

typedef struct gensvc gensvc;

/* All borrowed for the service's lifetime. me: our node key. */
int gensvc_start(uv_loop_t *loop, const config *cfg, const uint8_t me[32], store *db, netsvc *ns, paysvc *pay,
                 ctl_server *ctl, local_svc *local, const char *models_dir, gensvc **out, char *err, size_t cap);
void gensvc_stop(gensvc *g); /* cancels running jobs; frees once libuv is done */

/* Our offers (borrowed; valid while g lives) and the GGUF path of a served model. */
const mkt_offer *gensvc_offers(const gensvc *g, size_t *n_out);
const char *gensvc_model_path(const gensvc *g, const uint8_t sha256[32]);
/* Generations being sold right now (each holds one of its model's max_concurrent slots). */
int gensvc_n_active(const gensvc *g);

#endif
