/* market/payflow — moving money for a generation so that the books always add up.
 *
 * Every change of a channel's voucher total happens in ONE SQLite transaction together
 * with the receipt it pays for, on both sides:
 *
 *   client    mkt_pay_sign: signs the channel's next cumulative voucher, raises the
 *             request's client receipt by the same amount and records the voucher as
 *             "unacknowledged" (table market_vouchers_out), all in one commit, before the
 *             voucher leaves. A channel has at most one unacknowledged voucher: the next
 *             one is signed only after the provider answered (mkt_pay_sign returns
 *             ERR_BUSY meanwhile), so a refusal can be undone exactly.
 *             mkt_pay_acked: the provider accepted it (the row goes).
 *             mkt_pay_refused: the provider refused it (its answer said so): the channel
 *             total and the receipt go back to what they were, so a refused voucher never
 *             advances the cumulative amount.
 *             No answer (a dead link, a timeout, our own crash): the row stays; the node
 *             sends the same voucher again when it can (mkt_pay_unacked_list) until the
 *             provider answers either way.
 *   provider  mkt_pay_accept: checks the voucher (pay/voucher rules), records it as the
 *             channel's highest and adds the increase to the request's provider receipt,
 *             in one commit, before the answer. The same voucher again (a resend after a
 *             lost answer) is accepted with a delta of 0. A voucher for a request this
 *             node has no receipt for on that channel is refused (ERR_NOTFOUND): money is
 *             never taken without a receipt.
 *
 * What a refusal cannot undo: the refused voucher is still a valid signature. An honest
 * provider refused it because it could not record it and so does not have it; one that
 * kept it anyway could claim it on chain, at most one payment step ([market] pay_every
 * tokens) above the books. The client then sees the channel claimed past its total.
 *
 * So, for every channel, whatever is killed when: client total = sum of the client's
 * receipts; provider total = sum of the provider's receipts; and once every sent voucher
 * got an answer, the client's total = the provider's (= what it can claim on chain).
 *
 * Tables: market_vouchers_out (market_schema_v2). Loop thread (the store's owner). */
#ifndef APIARY_MARKET_PAYFLOW_H
#define APIARY_MARKET_PAYFLOW_H

#include <stdint.h>

#include "core/store.h"
#include "crypto/wallet.h"
#include "market/receipt.h"
#include "pay/voucher.h"

extern const char market_schema_v2[];

#define MKT_UNACKED_MAX 64

/* A voucher the client signed that the provider has not answered yet. */
typedef struct mkt_unacked {
  voucher v;                /* the voucher as sent */
  uint8_t request[16];      /* the request it pays for */
  uint8_t provider[32];     /* provider node key */
  u256 prev_amount;         /* the channel's total before it */
  uint8_t prev_sig[65];     /* and that voucher's signature (zero when prev_amount is 0) */
  uint64_t add;             /* wei it adds */
  int64_t created;          /* unix seconds */
} mkt_unacked;

/* Client: signs cumulative (channel total + add) for r's request on r->channel with w, in
 * one transaction with r's receipt (upserted; amount += add) and the unacknowledged row.
 * ERR_BUSY when the channel already has an unacknowledged voucher, ERR_NOTFOUND for an
 * unknown channel, the signing rules' errors, ERR_STORE (nothing changed). */
int mkt_pay_sign(store *s, const wallet *w, const mkt_receipt *r, uint64_t add, uint64_t now_s, voucher *out);
/* Client: the provider accepted the channel's voucher of this amount. 0 (also when there
 * is no such row any more) or ERR_STORE. */
int mkt_pay_acked(store *s, const uint8_t chan[32], const u256 *amount);
/* Client: the provider refused it: channel total and receipt go back. 0, ERR_NOTFOUND
 * (no such unacknowledged voucher: nothing to undo) or ERR_STORE. */
int mkt_pay_refused(store *s, const uint8_t chan[32], const u256 *amount);
/* Client: the unacknowledged vouchers (oldest first). Count or ERR_STORE. */
int mkt_pay_unacked_list(store *s, mkt_unacked *out, int cap);
/* Client: the channel's unacknowledged voucher. 0, ERR_NOTFOUND, ERR_STORE. */
int mkt_pay_unacked_get(store *s, const uint8_t chan[32], mkt_unacked *out);

/* Provider: accepts v for request (our receipt as provider me must exist with v's
 * channel) and adds the increase to that receipt, one transaction; counts (may be NULL)
 * is the same receipt with the token counts so far, written in that transaction too.
 * delta_out gets the increase (0 for a resend of the voucher already accepted). The
 * voucher rules' errors, ERR_NOTFOUND (no receipt for that request and channel),
 * ERR_STORE. */
int mkt_pay_accept(store *s, const voucher *v, const uint8_t request[16], const uint8_t me[32], uint64_t now_s,
                   uint64_t margin_s, const mkt_receipt *counts, uint64_t *delta_out);

#endif
