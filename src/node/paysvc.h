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
/* ---- for the market (loop thread) ---- */
#include "pay/voucher.h"

/* Payments are possible: a wallet and a chain deployment. */
int paysvc_enabled(const paysvc *p);
/* Client: the open channel to provider pk with at least need wei of room left (deposit
 * minus the highest voucher signed) and not expiring within the margin. 0 or ERR_NOTFOUND. */
int paysvc_client_channel(paysvc *p, const uint8_t pk[32], uint64_t need, channel *out);
/* Client: opens a channel to pk on chain (its address from pay.info), records it and tells
 * pk. cb runs once on the loop: rc 0 with the channel, or an error and a message. */
typedef void (*paysvc_open_cb)(void *ud, int rc, const channel *ch, const char *msg);
int paysvc_open_channel(paysvc *p, const uint8_t pk[32], const u256 *deposit, uint64_t lifetime_s,
                        paysvc_open_cb cb, void *ud);
/* The node wallet, for signing client vouchers (market/payflow). Borrowed; NULL when
 * payments are off. */
const wallet *paysvc_wallet(const paysvc *p);
/* Seconds before a channel's expiry within which vouchers are refused. */
uint64_t paysvc_margin_s(const paysvc *p);
/* v names our chain and escrow. */
int paysvc_voucher_ours(const paysvc *p, const voucher *v);
/* Provider: what became of a voucher (rc of market/payflow's accept): an unknown channel
 * starts a chain lookup; an overspend or expiry refreshes the cached channel; an accepted
 * one may trigger a claim. */
void paysvc_voucher_result(paysvc *p, const voucher *v, int rc);
/* Provider: the channel is known, ours, open beyond the margin, with at least room wei not
 * yet vouched. Unknown: starts a lookup and returns ERR_UNKNOWN_CHANNEL. */
int paysvc_check_channel(paysvc *p, const uint8_t id[32], uint64_t room);

/* Stops timers; jobs still running finish (their results are stored) and then it frees. */
void paysvc_stop(paysvc *p);

#endif
