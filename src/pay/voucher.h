/* pay/voucher — signing and accepting payment-channel vouchers (docs/payments.md).
 *
 * A voucher is the EIP-712 struct Voucher(bytes32 channelId,uint256 amount) under the
 * domain {"apiary-escrow", "1", chainId, escrow}: the channel's signer promises the
 * provider a CUMULATIVE amount, redeemable on chain with Escrow.claim.
 *
 *   client    voucher_sign: checks the new amount against the cached channel, signs it
 *             with the wallet (which must be the channel's signer);
 *   provider  voucher_check: the offline rules (pure), and voucher_accept: the same rules
 *             against the cached channel inside BEGIN IMMEDIATE, then the new highest
 *             voucher is COMMITTED (synchronous=FULL) before it returns 0. The caller
 *             acknowledges the voucher to the peer only after that.
 *
 * Rules, each with its own error (core/err.h): the channel is known (ERR_UNKNOWN_CHANNEL),
 * the voucher names its chain and escrow (ERR_WRONG_CHAIN), the signature parses
 * (ERR_BAD_SIGNATURE) and recovers to the channel's signer (ERR_WRONG_SIGNER), the amount
 * is above the last accepted one (ERR_REPLAY when equal, ERR_DECREASE when below) and not
 * above the deposit (ERR_OVERSPEND), and the channel is open and not within margin_s of
 * its expiry (ERR_EXPIRED). No chain access; the clock comes from the caller. */
#ifndef APIARY_PAY_VOUCHER_H
#define APIARY_PAY_VOUCHER_H

#include <jansson.h>
#include <stdint.h>

#include "core/store.h"
#include "crypto/u256.h"
#include "crypto/wallet.h"
#include "pay/channel.h"

typedef struct voucher {
  uint8_t channel_id[32];
  uint64_t chain_id;
  uint8_t escrow[20];
  u256 amount;          /* cumulative wei */
  uint8_t sig[65];      /* r||s||v, v = 27/28 */
} voucher;

/* Signs amount for ch with w (must be ch's signer: ERR_WRONG_SIGNER). amount must exceed
 * the last signed amount (ERR_REPLAY / ERR_DECREASE) and not pass the deposit
 * (ERR_OVERSPEND); the channel must be open (ERR_EXPIRED when past expiry at now_s). */
int voucher_sign(const channel *ch, const wallet *w, const u256 *amount, uint64_t now_s, voucher *out);

/* The provider's rules against a cached channel (pure). 0 or the rule's error. */
int voucher_check(const channel *ch, const voucher *v, uint64_t now_s, uint64_t margin_s);

/* Checks v against the cached channel and commits it as the channel's highest voucher.
 * 0 only once the commit is durable. Inside a caller's open transaction it joins that one
 * (the caller commits, e.g. together with the receipt the voucher pays). ch_out (may be
 * NULL) gets the updated channel. */
int voucher_accept(store *s, const voucher *v, uint64_t now_s, uint64_t margin_s, channel *ch_out);

/* Wire form: {"channel":"0x…","chain_id":N,"escrow":"0x…","amount":"dec","sig":"0x…"}. */
json_t *voucher_to_json(const voucher *v);
int voucher_from_json(const json_t *j, voucher *out); /* 0 or ERR_FORMAT */


#endif
