/* node/paymkt — what the market asks of the payment service: whether payments are on, a
 * client channel with room, the provider's channel checks and what became of a voucher;
 * see paysvc.h and docs/payments.md. */
#include "node/paysvc_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/ethrpc.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "pay/channel.h"
#include "pay/escrow.h"
#include "pay/voucher.h"


int paysvc_enabled(const paysvc *p) { return p && p->have_wallet && p->chain_id; }

static int room_at_least(const channel *ch, uint64_t need, uint64_t margin_s) {
  u256 room, want;
  if (ch->closed || ch->expiry <= paysvc__now_s() + margin_s) return 0;
  if (u256_sub(&room, &ch->deposit, &ch->amount)) return 0;
  want = u256_from_u64(need);
  return u256_cmp(&room, &want) >= 0;
}

int paysvc_client_channel(paysvc *p, const uint8_t pk[32], uint64_t need, channel *out) {
  if (!paysvc_enabled(p)) return ERR_NOTFOUND;
  channel ch;
  int rc = channel_find_client(p->db, pk, p->chain_id, p->escrow, &ch);
  if (rc) return rc;
  if (!room_at_least(&ch, need, p->margin_s + 60)) return ERR_NOTFOUND;
  *out = ch;
  return 0;
}

const wallet *paysvc_wallet(const paysvc *p) { return paysvc_enabled(p) ? &p->w : NULL; }

uint64_t paysvc_margin_s(const paysvc *p) { return p->margin_s; }

int paysvc_voucher_ours(const paysvc *p, const voucher *v) {
  return paysvc_enabled(p) && v->chain_id == p->chain_id && !memcmp(v->escrow, p->escrow, 20);
}

void paysvc_voucher_result(paysvc *p, const voucher *v, int rc) {
  if (!paysvc_enabled(p)) return;
  if (rc == ERR_UNKNOWN_CHANNEL) {
    channel ch;
    if (channel_get(p->db, v->channel_id, &ch) == ERR_NOTFOUND) paysvc__start_lookup(p, v->channel_id, CHANNEL_PROVIDER, NULL, NULL);
  } else if (rc == ERR_OVERSPEND || rc == ERR_EXPIRED) { /* the cache may be stale (topUp, extend) */
    paysvc__start_lookup(p, v->channel_id, 0, NULL, NULL);
  } else if (rc == 0) {
    paysvc__claim_due(p, 0);
  }
}

int paysvc_check_channel(paysvc *p, const uint8_t id[32], uint64_t room) {
  if (!paysvc_enabled(p)) return ERR_INVAL;
  channel ch;
  int rc = channel_get(p->db, id, &ch);
  if (rc == ERR_NOTFOUND) {
    paysvc__start_lookup(p, id, CHANNEL_PROVIDER, NULL, NULL);
    return ERR_UNKNOWN_CHANNEL;
  }
  if (rc) return rc;
  if (ch.role != CHANNEL_PROVIDER || memcmp(ch.provider, p->w.addr, 20)) return ERR_WRONG_SIGNER;
  if (!room_at_least(&ch, room, p->margin_s)) {
    paysvc__start_lookup(p, id, 0, NULL, NULL); /* maybe topped up or extended */
    return ERR_OVERSPEND;
  }
  return 0;
}

