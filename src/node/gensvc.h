/* node/gensvc — generation over the network.
 *
 * Provider side: the RPC method `generate` {model (sha256 hex), prompt, max_tokens,
 * temperature, seed} runs a job on the local inference worker (market/local) and streams
 * its text back as `$/stream` notifications {text}, then answers {finish, prompt_tokens,
 * completion_tokens}. A 20 ms loop timer moves text from the worker to the links, so the
 * RPC layer is only ever touched on the loop thread; a job whose link goes away is
 * canceled. Client side: the control method `ask` {node_id, model, prompt, ...} calls
 * `generate` on that node and answers with the whole text and the usage.
 *
 * Not yet (the market layer): choosing providers from the DHT, per-token vouchers,
 * failover. Loop thread only. */
#ifndef APIARY_NODE_GENSVC_H
#define APIARY_NODE_GENSVC_H

#include <uv.h>

#include "market/local.h"
#include "node/control.h"
#include "node/netsvc.h"

typedef struct gensvc gensvc;

/* All borrowed for the service's lifetime. */
int gensvc_start(uv_loop_t *loop, netsvc *ns, ctl_server *ctl, local_svc *local, const char *models_dir,
                 gensvc **out);
void gensvc_stop(gensvc *g); /* cancels running jobs; frees once libuv is done */

#endif
