/* libFuzzer harness: vault share envelopes (privacy/share), which arrive from other nodes.
 * The first byte picks a path: the header parser and share_open with a fixed identity on
 * arbitrary bytes (must refuse, never crash, never accept a forged envelope); the body
 * parser on arbitrary bytes (after unsealing, a body must carry a valid signature, so
 * nothing made up passes); or a round trip: the input becomes an item sealed from a fixed
 * sender to the fixed recipient, which must open to the same fields, and with one byte
 * flipped must not open. Inputs are capped (SHARE_ENVELOPE_MAX). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/ident.h"
#include "privacy/share.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > SHARE_ENVELOPE_MAX) return 0;
  static ident alice, bob;
  static int ready;
  if (!ready) {
    uint8_t seed[32] = {1};
    ident_from_seed(seed, &alice);
    seed[0] = 2;
    ident_from_seed(seed, &bob);
    ready = 1;
  }
  uint8_t mode = data[0] % 3;
  data++, size--;
  share_item it;
  if (mode == 0) {
    uint8_t to[32];
    share_parse_header(data, size, to);
    if (share_open(&bob, data, size, 1700000000, &it) == 0) __builtin_trap(); /* nobody sealed these */
    return 0;
  }
  if (mode == 1) {
    if (share_parse_body(data, size, &it) == 0) {
      if (it.value_len > VAULT_VALUE_MAX || strlen(it.name) > VAULT_NAME_MAX) __builtin_trap();
      share_item_deinit(&it);
    }
    return 0;
  }
  /* Round trip: name and purpose from the first bytes (printable), the rest as the value. */
  if (size < 4) return 0;
  char name[17], purpose[17];
  size_t nl = 1 + data[0] % 16, pl = 1 + data[1] % 16;
  for (size_t i = 0; i < nl; i++) name[i] = (char)('a' + (data[(i + 2) % size] % 26));
  for (size_t i = 0; i < pl; i++) purpose[i] = (char)('a' + (data[(i + 3) % size] % 26));
  name[nl] = purpose[pl] = 0;
  const uint8_t *val = data + 2;
  size_t vl = size - 2;
  if (vl > VAULT_VALUE_MAX) vl = VAULT_VALUE_MAX;
  buf env;
  buf_init(&env);
  if (share_seal(&alice, bob.pk, name, purpose, 1700000100, 1700000000, val, vl, &env)) __builtin_trap();
  if (share_open(&bob, env.ptr, env.len, 1700000000, &it)) __builtin_trap();
  if (strcmp(it.name, name) || strcmp(it.purpose, purpose) || it.value_len != vl ||
      (vl && memcmp(it.value, val, vl)) || memcmp(it.sender, alice.pk, 32))
    __builtin_trap();
  share_item_deinit(&it);
  if (share_open(&alice, env.ptr, env.len, 1700000000, &it) == 0) __builtin_trap();
  if (share_open(&bob, env.ptr, env.len, 1700000100, &it) != ERR_EXPIRED) __builtin_trap();
  env.ptr[SHARE_HEADER_BYTES + data[2] % (env.len - SHARE_HEADER_BYTES)] ^= (uint8_t)(1 + data[3] % 255);
  if (share_open(&bob, env.ptr, env.len, 1700000000, &it) == 0) __builtin_trap();
  buf_deinit(&env);
  return 0;
}
