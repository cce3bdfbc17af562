/* node/paysvc — the node's payment service: channels, vouchers and automatic claims
 * (docs/payments.md).
 *
 *   peer methods   pay.info (our wallet address, chain id, escrow), pay.channel (a client
 *                  announces a new channel: we read it from the chain), pay.voucher
 *                  (a voucher: checked offline against the cached channel and committed
 *                  to SQLite before the reply is sent);
 *   control        pay.info, pay.peer_info, pay.channel_add, pay.channels, pay.send,
 *                  pay.claim, pay.refresh;
 *   auto-claim     a timer ([pay] claim_interval) claims every provider channel whose
 *                  unclaimed vouchers reach [pay] claim_threshold_wei or that expires
 *                  within [pay] claim_before_expiry; while the chain is unreachable it
 *                  keeps accepting vouchers for known channels and retries on each tick.
 *
 * Chain I/O (eth_call, transactions) runs on the libuv thread pool, each job with its own
 * ethrpc handle; the database is touched only on the loop thread. Loop thread only. */
#ifndef APIARY_NODE_PAYSVC_H
#define APIARY_NODE_PAYSVC_H

#include <stddef.h>
#include <uv.h>

#include "core/config.h"
#include "core/store.h"
#include "node/control.h"
#include "node/netsvc.h"

typedef struct paysvc paysvc;

/* Borrows everything for the service's lifetime. wallet_path is the node's wallet key. */
int paysvc_start(uv_loop_t *loop, const char *wallet_path, const config *cfg, store *db, netsvc *ns,
                 ctl_server *ctl, paysvc **out, char *err, size_t err_cap);
/* Stops timers; jobs still running finish (their results are stored) and then it frees. */
void paysvc_stop(paysvc *p);

#endif
