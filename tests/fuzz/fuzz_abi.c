/* libFuzzer harness: the ABI decoder, log decoder, revert-reason decoder and signature
 * parser on arbitrary bytes. The first byte picks a type list; whatever decodes must
 * re-encode, and the re-encoding must decode again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chain/abi.h"

static const char *const TYPES[] = {
    "(uint256,uint32[],bytes10,bytes)",
    "(uint256[][],string[])",
    "((uint256,string),address[2],int8)",
    "(bool,address,bytes32,int256)",
    "((bytes,uint8)[],string,(uint64[2],bool)[])",
    "(string)",
    "(int16[3][],bytes[])",
    "()",
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!size) return 0;
  const char *types = TYPES[data[0] % NTYPES];
  const uint8_t *p = data + 1;
  size_t n = size - 1;
  static abi_value pool[ABI_POOL_DEFAULT], pool2[ABI_POOL_DEFAULT];
  const abi_value *t, *t2;
  if (abi_decode(types, p, n, pool, ABI_POOL_DEFAULT, &t) > 0) {
    buf b;
    buf_init(&b);
    if (abi_encode(&b, types, t->items, t->n)) __builtin_trap();
    if (abi_decode(types, b.ptr, b.len, pool2, ABI_POOL_DEFAULT, &t2) <= 0) __builtin_trap();
    buf_deinit(&b);
  }
  char why[ABI_REASON_MAX];
  abi_revert_reason(p, n, why, sizeof why);
  /* Logs: topics from the front of the data. */
  if (n >= 64) {
    uint8_t topics[2][32];
    memcpy(topics, p, 64);
    abi_event_topic("Ev(uint256 indexed a,string b,bytes32[] c)", topics[0]);
    abi_decode_log("Ev(uint256 indexed a,string b,bytes32[] c)", (const uint8_t(*)[32])topics, 2, p + 64, n - 64, pool,
                   ABI_POOL_DEFAULT, &t);
  }
  /* The signature parser on the bytes as text. */
  if (n < 600) {
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    abi_sig *g = malloc(sizeof *g);
    if (!abi_sig_parse(s, g)) {
      abi_sig *g2 = malloc(sizeof *g2);
      if (abi_sig_parse(g->canonical, g2) || strcmp(g->canonical, g2->canonical)) __builtin_trap();
      free(g2);
    }
    free(g);
    free(s);
  }
  return 0;
}
