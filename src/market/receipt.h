/* market/receipt — the record of one paid generation, kept by both sides, and the
 * provider statistics a client keeps for ranking. SQLite tables (migration owner "market",
 * market_schema_v1):
 *
 *   market_receipts   one row per (request, provider): role (1 client, 2 provider), request
 *                     id (16 random bytes chosen by the client), request hash (sha256 of
 *                     the exact `generate` params this provider got: mkt_request_hash), the provider and client node
 *                     keys, model sha256, channel id (NULL when free), prompt and generated
 *                     token counts, prices per 1k tokens, amount paid in wei (decimal TEXT),
 *                     status ("complete", "partial": the stream ended early, "unpaid": the
 *                     client stopped paying), created (unix seconds).
 *   market_providers  per provider key: successes, failures, last_failure (unix s),
 *                     mismatches, verifications, latency_ms (EWMA, -1 unknown).
 *
 * mkt_receipt_put upserts on (request, provider, role), so both sides can write a receipt
 * as tokens come and update it. The amount is set only when the row is created: after
 * that it moves only through mkt_receipt_add_amount, which market/payflow runs in the same
 * transaction as the voucher it pays with, so the sum of a channel's receipts is always
 * the channel's voucher total. Loop thread (the store's owner). */
#ifndef APIARY_MARKET_RECEIPT_H
#define APIARY_MARKET_RECEIPT_H

#include <jansson.h>
#include <stdint.h>

#include "core/store.h"

extern const char market_schema_v1[];

#define MKT_RECEIPT_MAX_LIST 1000

typedef enum mkt_role { MKT_CLIENT = 1, MKT_PROVIDER = 2 } mkt_role;

typedef struct mkt_receipt {
  mkt_role role;
  uint8_t request[16];
  uint8_t request_hash[32];
  int has_request_hash;
  uint8_t provider[32];
  uint8_t client[32];
  uint8_t model[32];
  uint8_t channel[32];
  int has_channel;
  uint64_t prompt_tokens, gen_tokens;
  uint64_t price_prompt, price_gen; /* wei per 1k tokens */
  uint64_t amount;                  /* wei paid */
  char status[16];                  /* "complete" | "partial" | "unpaid" */
  int64_t created;                  /* unix seconds (set by put when 0) */
} mkt_receipt;

/* sha256 of the JSON text of params with sorted keys, compact (jansson's real format), so
 * client and provider get the same hash from the same request. 0 or ERR_NOMEM. */
int mkt_request_hash(const json_t *params, uint8_t out[32]);

/* Upsert keyed by (request, provider, role); an existing row keeps its amount. Joins the
 * caller's transaction when one is open, else commits its own before it returns 0.
 * ERR_INVAL or ERR_STORE. */
int mkt_receipt_put(store *s, const mkt_receipt *r);
/* One receipt. 0, ERR_NOTFOUND or ERR_STORE. */
int mkt_receipt_get(store *s, mkt_role role, const uint8_t request[16], const uint8_t provider[32],
                    mkt_receipt *out);
/* Adds delta (may be negative) to a receipt's amount; the caller runs it inside the
 * transaction that moves the voucher. 0, ERR_NOTFOUND, ERR_RANGE (under 0 or past 2^64),
 * ERR_STORE. */
int mkt_receipt_add_amount(store *s, mkt_role role, const uint8_t request[16], const uint8_t provider[32],
                           int64_t delta);
/* Newest first; role 0 = both. Returns the count (<= cap) or ERR_STORE. */
int mkt_receipt_list(store *s, mkt_role role, mkt_receipt *out, int cap);
/* Sum of amounts of receipts with this role and channel. 0 or ERR_STORE. */
int mkt_receipt_sum_channel(store *s, mkt_role role, const uint8_t channel[32], uint64_t *sum_out);
/* The sum of the amounts of role's receipts updated at or after since (unix s): what this node
 * paid (client) or earned (provider) lately; saturates at UINT64_MAX. 0 or ERR_STORE. */
int mkt_receipt_sum_since(store *s, mkt_role role, int64_t since, uint64_t *sum_out);
json_t *mkt_receipt_to_json(const mkt_receipt *r); /* owned; ids as hex / node ids */

typedef struct mkt_provider_stats {
  uint8_t node[32];
  uint32_t successes, failures, mismatches, verifications;
  int64_t last_failure;             /* unix seconds, 0 never */
  double latency_ms;                /* EWMA (alpha 0.3), < 0 unknown */
} mkt_provider_stats;

/* Zeroed stats with latency -1 when the provider is unknown. 0 or ERR_STORE. */
int mkt_stats_get(store *s, const uint8_t node[32], mkt_provider_stats *out);
/* Record an outcome: ok (success + latency sample when latency_ms >= 0) or a failure. */
int mkt_stats_record(store *s, const uint8_t node[32], int ok, double latency_ms, int64_t now_s);
/* Record a verification: mismatch 1 adds to mismatches; always adds to verifications. */
int mkt_stats_verify(store *s, const uint8_t node[32], int mismatch);

#endif
