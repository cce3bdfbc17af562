/* pay/voucher — voucher signing and the provider's acceptance rules; see voucher.h. */
#include "pay/voucher.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"

static int amount_rules(const channel *ch, const u256 *amount) {
  int c = u256_cmp(amount, &ch->amount);
  if (c == 0) return ERR_REPLAY;
  if (c < 0) return ERR_DECREASE;
  if (u256_cmp(amount, &ch->deposit) > 0) return ERR_OVERSPEND;
  return 0;
}

int voucher_sign(const channel *ch, const wallet *w, const u256 *amount, uint64_t now_s, voucher *out) {
  if (memcmp(w->addr, ch->signer, 20)) return ERR_WRONG_SIGNER;
  if (ch->closed || now_s >= ch->expiry) return ERR_EXPIRED;
  int rc = amount_rules(ch, amount);
  if (rc) return rc;
  memset(out, 0, sizeof *out);
  memcpy(out->channel_id, ch->id, 32);
  out->chain_id = ch->chain_id;
  memcpy(out->escrow, ch->escrow, 20);
  out->amount = *amount;
  return eip712_voucher_sign(w, ch->chain_id, ch->escrow, ch->id, amount, out->sig) ? ERR_CRYPTO : 0;
}

int voucher_check(const channel *ch, const voucher *v, uint64_t now_s, uint64_t margin_s) {
  if (memcmp(ch->id, v->channel_id, 32)) return ERR_UNKNOWN_CHANNEL;
  if (ch->chain_id != v->chain_id || memcmp(ch->escrow, v->escrow, 20)) return ERR_WRONG_CHAIN;
  uint8_t who[20];
  if (eip712_voucher_signer(ch->chain_id, ch->escrow, ch->id, &v->amount, v->sig, who)) return ERR_BAD_SIGNATURE;
  if (memcmp(who, ch->signer, 20)) return ERR_WRONG_SIGNER;
  int rc = amount_rules(ch, &v->amount);
  if (rc) return rc;
  if (ch->closed || now_s + margin_s >= ch->expiry) return ERR_EXPIRED;
  return 0;
}

int voucher_accept(store *s, const voucher *v, uint64_t now_s, uint64_t margin_s, channel *ch_out) {
  channel ch;
  int own = !store_in_txn(s); /* else the caller's transaction holds it with other writes */
  int rc = own ? store_begin(s) : 0;
  if (rc) return rc;
  rc = channel_get(s, v->channel_id, &ch);
  if (rc == ERR_NOTFOUND || (!rc && ch.role != CHANNEL_PROVIDER)) rc = ERR_UNKNOWN_CHANNEL;
  if (!rc) rc = voucher_check(&ch, v, now_s, margin_s);
  if (!rc) rc = channel_set_voucher(s, v->channel_id, &v->amount, v->sig);
  if (!rc && own) rc = store_commit(s); /* durable (synchronous=FULL) before anyone is told */
  if (rc) {
    if (own) store_rollback(s);
    return rc;
  }
  if (ch_out) {
    ch.amount = v->amount;
    memcpy(ch.sig, v->sig, 65);
    *ch_out = ch;
  }
  return 0;
}

json_t *voucher_to_json(const voucher *v) {
  char id[67] = "0x", esc[43] = "0x", sig[133] = "0x", amt[U256_DEC_BUF];
  hex_encode(v->channel_id, 32, id + 2);
  hex_encode(v->escrow, 20, esc + 2);
  hex_encode(v->sig, 65, sig + 2);
  u256_to_dec(&v->amount, amt);
  return json_pack("{s:s, s:I, s:s, s:s, s:s}", "channel", id, "chain_id", (json_int_t)v->chain_id, "escrow", esc,
                   "amount", amt, "sig", sig);
}

int voucher_from_json(const json_t *j, voucher *out) {
  memset(out, 0, sizeof *out);
  const char *amt = json_string_value(json_object_get(j, "amount"));
  json_t *cid = json_object_get(j, "chain_id");
  if (!amt || !json_is_integer(cid) || json_integer_value(cid) <= 0) return ERR_FORMAT;
  out->chain_id = (uint64_t)json_integer_value(cid);
  if (hex_parse(json_string_value(json_object_get(j, "channel")), out->channel_id, 32) ||
      hex_parse(json_string_value(json_object_get(j, "escrow")), out->escrow, 20) ||
      hex_parse(json_string_value(json_object_get(j, "sig")), out->sig, 65))
    return ERR_FORMAT;
  size_t n = strlen(amt);
  if (n == 0 || n > 78 || u256_from_dec(amt, n, &out->amount)) return ERR_FORMAT;
  return 0;
}
