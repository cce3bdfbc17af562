/* libFuzzer harness: the llama2.c checkpoint parser on arbitrary bytes (checkpoints are
 * downloaded). Parses the input; when it is accepted, reads every byte of every array the
 * parser pointed at (so ASan sees any pointer past the input) and checks that the arrays
 * tile the input exactly. Seeds: tests/fuzz/corpus/fuzz_llama2c (small valid checkpoints,
 * shared and unshared classifier, grouped-query attention). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llm/llama2c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void touch(const uint8_t *p, uint64_t n) {
  uint8_t x = 0;
  for (uint64_t i = 0; i < n; i++) x ^= p[i];
  sink ^= x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llama2c_weights w;
  char err[512];
  if (llama2c_parse(data, size, &w, err, sizeof err)) {
    if (!memchr(err, 0, sizeof err)) __builtin_trap();
    return 0;
  }
  const llama2c_config *c = &w.c;
  uint64_t dim = (uint64_t)c->dim, hid = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers,
           V = (uint64_t)c->vocab_size, kv = dim * (uint64_t)c->n_kv_heads / (uint64_t)c->n_heads,
           half = dim / (uint64_t)c->n_heads / 2, seq = (uint64_t)c->seq_len;
  const struct { const uint8_t *p; uint64_t n; } parts[] = {
      {w.token_embedding, V * dim}, {w.rms_att, L * dim}, {w.wq, L * dim * dim}, {w.wk, L * kv * dim},
      {w.wv, L * kv * dim}, {w.wo, L * dim * dim}, {w.rms_ffn, L * dim}, {w.w1, L * hid * dim},
      {w.w2, L * hid * dim}, {w.w3, L * hid * dim}, {w.rms_final, dim}, {w.freq_cis_real, seq * half},
      {w.freq_cis_imag, seq * half},
  };
  const uint8_t *at = data + LLAMA2C_HEADER_BYTES;
  for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
    if (parts[i].p != at) __builtin_trap();
    touch(parts[i].p, 4 * parts[i].n);
    at += 4 * parts[i].n;
  }
  if (c->shared_classifier) {
    if (w.wcls != w.token_embedding) __builtin_trap();
  } else {
    if (w.wcls != at) __builtin_trap();
    touch(w.wcls, 4 * V * dim);
    at += 4 * V * dim;
  }
  if (at != data + size) __builtin_trap();
  return 0;
}
