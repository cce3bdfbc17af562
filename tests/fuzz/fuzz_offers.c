/* libFuzzer harness: market offers from untrusted bytes, in both forms. The input goes to
 * the JSON loader + mkt_offers_from_json and to ben_decode + mkt_offers_from_ben. Whatever
 * parses must survive its writer and parse back identically; for each parsed offer the
 * cost and tokens-covered functions must agree (cost(covered) <= paid < cost(covered+1)). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "market/offer.h"

static void same(const mkt_offer *a, const mkt_offer *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (memcmp(a[i].model, b[i].model, 32) || strcmp(a[i].name, b[i].name) ||
        a[i].price_prompt != b[i].price_prompt || a[i].price_gen != b[i].price_gen ||
        a[i].max_concurrent != b[i].max_concurrent)
      abort();
}

static void arithmetic(const mkt_offer *o, const uint8_t *data, size_t size) {
  uint64_t pt = 0, paid = 0;
  memcpy(&pt, data, size < 4 ? size : 4);            /* small-ish token counts */
  if (size > 4) memcpy(&paid, data + 4, size - 4 < 8 ? size - 4 : 8);
  int64_t c = mkt_tokens_covered(pt, paid, o->price_prompt, o->price_gen);
  uint64_t cost;
  if (c < 0) {
    if (c != -1 || (!mkt_cost(pt, 0, o->price_prompt, o->price_gen, &cost) && cost <= paid)) abort();
    return;
  }
  if (c > (int64_t)1 << 30) abort();
  if (mkt_cost(pt, (uint64_t)c, o->price_prompt, o->price_gen, &cost) || cost > paid) abort();
  if (c < (int64_t)1 << 30 && !mkt_cost(pt, (uint64_t)c + 1, o->price_prompt, o->price_gen, &cost) &&
      cost <= paid)
    abort();
}

static void try_json(const uint8_t *data, size_t size) {
  json_error_t je;
  json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!j) return;
  mkt_offer a[MKT_MAX_OFFERS], b[MKT_MAX_OFFERS];
  size_t n, m;
  char err[256];
  if (!mkt_offers_from_json(j, a, MKT_MAX_OFFERS, &n, err, sizeof err)) {
    json_t *back = mkt_offers_to_json(a, n);
    if (!back || mkt_offers_from_json(back, b, MKT_MAX_OFFERS, &m, err, sizeof err) || m != n) abort();
    same(a, b, n);
    json_decref(back);
    for (size_t i = 0; i < n; i++) arithmetic(&a[i], data, size);
  }
  json_decref(j);
}

static void try_ben(const uint8_t *data, size_t size) {
  static ben_node nodes[512], nodes2[512];
  if (ben_decode(data, size, nodes, 512, 0) <= 0) return;
  mkt_offer a[MKT_MAX_OFFERS], b[MKT_MAX_OFFERS];
  size_t n, m;
  if (mkt_offers_from_ben(&nodes[0], a, MKT_MAX_OFFERS, &n)) return;
  static uint8_t buf[MKT_MAX_OFFERS * 256];
  ben_w w;
  ben_w_init(&w, buf, sizeof buf);
  mkt_offers_to_ben(&w, a, n);
  int len = ben_w_finish(&w);
  if (len <= 0 || ben_decode(buf, (size_t)len, nodes2, 512, 0) <= 0) abort();
  if (mkt_offers_from_ben(&nodes2[0], b, MKT_MAX_OFFERS, &m) || m != n) abort();
  same(a, b, n);
  for (size_t i = 0; i < n; i++) arithmetic(&a[i], data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try_json(data, size);
  try_ben(data, size);
  return 0;
}
