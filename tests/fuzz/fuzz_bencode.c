/* libFuzzer harness: the bencode decoder on arbitrary bytes, both key-order modes. A value
 * the strict decoder accepts is canonical, so writing its tree back must reproduce the
 * input byte for byte. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/bencode.h"

static const ben_node *emit(ben_w *w, const ben_node *n) {
  switch (n->type) {
  case BEN_INT: ben_w_int(w, n->i); return n + 1;
  case BEN_STR: ben_w_str(w, n->str, n->len); return n + 1;
  case BEN_LIST: {
    ben_w_list(w);
    const ben_node *c = n + 1;
    for (uint32_t i = 0; i < n->count; i++) c = emit(w, c);
    ben_w_end(w);
    return c;
  }
  default: {
    ben_w_dict(w);
    const ben_node *c = n + 1;
    for (uint32_t i = 0; i < n->count; i++) {
      ben_w_keyn(w, c->str, c->len);
      c = emit(w, c + 1);
    }
    ben_w_end(w);
    return c;
  }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static ben_node nodes[1024];
  (void)ben_decode(data, size, nodes, 1024, BEN_LENIENT_ORDER);
  int n = ben_decode(data, size, nodes, 1024, 0);
  if (n <= 0) return 0;
  uint8_t *out = malloc(size + 1);
  ben_w w;
  ben_w_init(&w, out, size + 1);
  emit(&w, &nodes[0]);
  int len = ben_w_finish(&w);
  if (len != (int)size || memcmp(out, data, size)) abort();
  free(out);
  return 0;
}
