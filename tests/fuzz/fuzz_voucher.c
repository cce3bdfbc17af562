/* libFuzzer harness: the voucher wire form (pay.voucher params from a peer) and the
 * provider's offline checks. Arbitrary bytes are parsed as JSON; whatever voucher_from_json
 * accepts must re-serialize to an equal voucher, and voucher_check must return a defined
 * verdict against a fixed channel (never crash, never accept a signature by anyone but
 * the channel's signer). Amount text is also fed to channel_amount_parse. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "pay/channel.h"
#include "pay/voucher.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char text[4097];
  memcpy(text, data, size);
  text[size] = 0;
  u256 amt;
  channel_amount_parse(text, &amt);
  json_t *j = json_loadb((const char *)data, size, 0, NULL);
  if (!j) return 0;
  voucher v, w;
  if (voucher_from_json(j, &v) == 0) {
    json_t *again = voucher_to_json(&v);
    if (!again || voucher_from_json(again, &w) || memcmp(&v, &w, sizeof v)) __builtin_trap();
    json_decref(again);
    channel ch;
    memset(&ch, 0, sizeof ch);
    memcpy(ch.id, v.channel_id, 32);
    ch.chain_id = v.chain_id;
    memcpy(ch.escrow, v.escrow, 20);
    memset(ch.signer, 0x5a, 20); /* nobody can sign for this address */
    ch.deposit = u256_from_u64(UINT64_MAX);
    ch.expiry = UINT64_MAX;
    ch.role = CHANNEL_PROVIDER;
    int rc = voucher_check(&ch, &v, 1700000000, 600);
    if (rc == 0) __builtin_trap();
    if (rc != ERR_BAD_SIGNATURE && rc != ERR_WRONG_SIGNER) __builtin_trap();
  }
  json_decref(j);
  return 0;
}
