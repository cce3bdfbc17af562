/* libFuzzer harness: the strict RLP decoder and the transaction decoder on arbitrary bytes.
 * Invariants: accepted RLP re-encodes to exactly the input (the decoder only accepts
 * canonical encodings), and an accepted raw transaction re-encodes to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chain/rlp.h"
#include "chain/tx.h"

static int reencode(buf *b, const rlp_item *it, unsigned depth) {
  if (depth > RLP_MAX_DEPTH + 1) __builtin_trap();
  if (it->kind == RLP_BYTES) return rlp_put_bytes(b, it->ptr, it->len);
  size_t at = rlp_list_begin(b);
  rlp_iter r;
  rlp_iter_init(&r, it);
  rlp_item x;
  int rc;
  while ((rc = rlp_iter_next(&r, &x)) == 1) {
    if (reencode(b, &x, depth + 1)) return -1;
  }
  if (rc < 0) __builtin_trap(); /* rlp_decode validated the whole tree */
  return rlp_list_end(b, at);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rlp_item it;
  buf b;
  buf_init(&b);
  if (!rlp_decode(data, size, &it)) {
    if (reencode(&b, &it, 0) || b.len != size || memcmp(b.ptr, data, size)) __builtin_trap();
    uint64_t v;
    u256 w;
    (void)rlp_get_u64(&it, &v);
    (void)rlp_get_u256(&it, &w);
    (void)rlp_list_count(&it);
  }
  tx t;
  if (!tx_decode(data, size, &t)) {
    buf_reset(&b);
    if (tx_encode_signed(&t, &b) || b.len != size || memcmp(b.ptr, data, size)) __builtin_trap();
    uint8_t h[32];
    (void)tx_signing_hash(&t, h);
  }
  buf_deinit(&b);
  return 0;
}
