/* market/offer — what a provider sells: a model (by the sha256 of its GGUF) at a price per
 * 1,000 prompt tokens and per 1,000 generated tokens, with a concurrency limit.
 *
 * Offers travel in two forms, both parsed from untrusted bytes with hard caps
 * (MKT_MAX_OFFERS offers, names of at most MKT_NAME_MAX-1 bytes, prices in wei below 2^64):
 *   JSON     the `market.offers` peer method and the control socket:
 *            [{"model":"<64 hex>","name":"stories15M","price_prompt":"1000","price_gen":"2000",
 *              "max_concurrent":2}, ...]     (prices are decimal strings of wei per 1k tokens)
 *   bencode  the "o" key of the signed DHT node record (docs/market.md):
 *            l d 1:c i<conc>e 1:g i<gen>e 1:m 32:<sha256> 1:n <name> 1:p i<prompt>e e ... e
 *            (keys sorted as bencode requires: c g m n p)
 *
 * Cost of a request: ceil((prompt_tokens * price_prompt + gen_tokens * price_gen) / 1000)
 * wei, computed exactly (128-bit intermediate); ERR_RANGE when it does not fit 64 bits.
 * Pure functions; no I/O. */
#ifndef APIARY_MARKET_OFFER_H
#define APIARY_MARKET_OFFER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "p2p/bencode.h"

#define MKT_MAX_OFFERS 16
#define MKT_NAME_MAX 65

typedef struct mkt_offer {
  uint8_t model[32];          /* sha256 of the GGUF file */
  char name[MKT_NAME_MAX];    /* the provider's name for it (informational; routing uses model) */
  uint64_t price_prompt;      /* wei per 1,000 prompt tokens */
  uint64_t price_gen;         /* wei per 1,000 generated tokens */
  uint32_t max_concurrent;    /* generations served at once (>= 1) */
} mkt_offer;

/* ceil((pt * price_prompt + gt * price_gen) / 1000). 0 or ERR_RANGE. */
int mkt_cost(uint64_t prompt_tokens, uint64_t gen_tokens, uint64_t price_prompt, uint64_t price_gen,
             uint64_t *wei_out);

/* The largest n such that mkt_cost(prompt_tokens, n, ...) <= paid (n capped at 1<<30; with
 * price_gen == 0 that cap). Returns -1 when even the prompt is not covered. */
int64_t mkt_tokens_covered(uint64_t prompt_tokens, uint64_t paid, uint64_t price_prompt, uint64_t price_gen);

/* JSON (returns owned; NULL on OOM) and back. from_json: 0, ERR_FORMAT (names the problem
 * in err) or ERR_TOOBIG (more than cap or MKT_MAX_OFFERS). */
json_t *mkt_offers_to_json(const mkt_offer *o, size_t n);
int mkt_offers_from_json(const json_t *j, mkt_offer *out, size_t cap, size_t *n_out, char *err, size_t err_cap);

/* bencode: writes a list into w (the caller opened the enclosing dict and key). Bencode
 * integers are int64: an offer priced above INT64_MAX (or with max_concurrent outside
 * 1..1024) cannot be written and is skipped, never clamped; at most MKT_MAX_OFFERS are
 * written. Errors stick in w->err. */
void mkt_offers_to_ben(ben_w *w, const mkt_offer *o, size_t n);
/* Parses a decoded bencode list (from a node record). Same returns as from_json. */
int mkt_offers_from_ben(const ben_node *list, mkt_offer *out, size_t cap, size_t *n_out);

/* Finds the offer for model in o[0..n). NULL when absent. */
const mkt_offer *mkt_offer_find(const mkt_offer *o, size_t n, const uint8_t model[32]);

#endif
