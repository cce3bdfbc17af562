/* market/route — the buyer's side of the market as a protocol engine without I/O: which
 * provider serves a request, failover when it dies, stalls or refuses, the Registry check,
 * verification re-runs and when a payment is due. node/mktsvc feeds it (offers, replies,
 * channel and Registry answers, time) and carries out its actions (calls, payments,
 * receipts); market/payflow keeps the money.
 *
 * A request's life: NAME (resolve the model spec: the env's store and catalog, then the
 * Registry's listing, then what peers offer) → RESOLVE (the Registry must list the hash,
 * when a Registry is configured; answers are cached) → FIND (rank the providers that offer
 * it: price, latency, recent failures, verification mismatches; exclude those tried) →
 * CHANNEL (a paid offer needs a channel with room: the env's, or one opened) → RUN (the
 * `generate` call streams chunks; nothing for stall_ms — three times that before the first
 * token — is a stall) → DONE. A failed attempt hands the request to the next provider,
 * which continues from the prompt plus the ids received; the answer is one stream.
 *
 * Reads the engine may make go through the env (synchronous, read-only): the model store,
 * provider statistics, link state, client channels, what a failed attempt was paid,
 * randomness. Everything else is an action. Text goes straight into the request's
 * market/stream (thread-safe memory, not I/O). Single-threaded: the caller serializes calls. */
#ifndef APIARY_MARKET_ROUTE_H
#define APIARY_MARKET_ROUTE_H

#include <jansson.h>
#include <stdint.h>

#include "market/offer.h"
#include "market/receipt.h"
#include "market/stream.h"

#define MKT_ROUTE_PEERS 256
#define MKT_ROUTE_ATTEMPTS 6       /* providers tried for one request, at most */
#define MKT_ROUTE_TRIED 8
#define MKT_ROUTE_ACTIONS 512
#define MKT_RT_E_NO_CALL (-1)      /* mkt_route_error: the glue could not place the call */

typedef struct mkt_route_env {
  void *ud;
  /* a model spec this node can resolve itself (its store, the catalog, 64 hex digits) */
  int (*resolve)(void *ud, const char *spec, uint8_t sha[32]);
  /* a provider's statistics (0, or nonzero when unknown) */
  int (*stats)(void *ud, const uint8_t pk[32], mkt_provider_stats *out);
  int (*linked)(void *ud, const uint8_t pk[32]);
  /* a client channel to pk with need wei of room: 0 and its id, or nonzero */
  int (*client_channel)(void *ud, const uint8_t pk[32], uint64_t need, uint8_t channel_out[32]);
  /* what attempt aid's vouchers signed so far (for the cost of a failed attempt) */
  uint64_t (*paid)(void *ud, uint32_t aid);
  uint32_t (*random)(void *ud);
  int64_t (*wall_s)(void *ud);  /* unix seconds (recent failures) */
  /* optional (NULL: none): the price per 1k generated tokens a signed negotiated deal with
   * pk fixes (0 and the price, or nonzero: none); it replaces the offer's price_gen when lower */
  int (*deal_price)(void *ud, const uint8_t pk[32], uint64_t *price_gen_out);
  /* optional (NULL: everyone): 1 when the owner's policy lets this node buy from pk
   * (privacy/owner); a provider it does not allow is never a candidate */
  int (*allowed)(void *ud, const uint8_t pk[32]);
  /* optional (NULL: no cap): 1 when paying up to need wei more stays within the owner's
   * daily spending cap; else 0 with why (the cap and how to raise it) and the request ends
   * with 402 before any channel is opened or voucher signed */
  int (*spend_ok)(void *ud, uint64_t need, char *why, size_t cap);
} mkt_route_env;

typedef struct mkt_route_cfg {
  uint64_t max_price_prompt, max_price_gen; /* per 1k tokens; 0 = no limit */
  uint64_t stall_ms;
  double verify_rate;           /* fraction of answers re-run elsewhere */
  int registry;                 /* a Registry is configured: names and hashes are checked */
  int payments;                 /* this node can pay (paid offers are usable) */
} mkt_route_cfg;

typedef enum mkt_route_act {
  MKT_RT_ASK_OFFERS = 1,        /* pk: ask for its offers (answer with offers/offers_failed) */
  MKT_RT_FIND_PROVIDERS,        /* sha: look the model's infohash up in the DHT */
  MKT_RT_LIST_NAMES,            /* read the Registry's listing (answer with names) */
  MKT_RT_REG_LOOKUP,            /* sha: is it listed? (answer with registry) */
  MKT_RT_ATTEMPT,               /* aid starts: pk, request, model, offer, channel (if any) */
  MKT_RT_OPEN_CHANNEL,          /* aid: open a channel to pk (answer with channel) */
  MKT_RT_CALL,                  /* aid: call `generate` on pk with params (owned json) */
  MKT_RT_STOP,                  /* tell pk to stop request (no answer needed) */
  MKT_RT_PAY,                   /* aid: the tokens so far (pt, gt) are owed; final at the end */
  MKT_RT_RECEIPT,               /* aid: write its client receipt with status */
  MKT_RT_DROP,                  /* aid: the engine is done with it (the glue frees it when idle) */
  MKT_RT_STATS,                 /* pk: an outcome (ok, latency_ms < 0 unknown) */
  MKT_RT_VERIFIED,              /* pk: a verification (mismatch 1/0) */
  MKT_RT_LOG,                   /* level 0 info, 1 warn: message */
} mkt_route_act;

typedef struct mkt_route_action {
  mkt_route_act kind;
  uint32_t aid;
  uint8_t pk[32];
  uint8_t sha[32];
  uint8_t request[16];
  mkt_offer offer;              /* ATTEMPT */
  int has_channel;              /* ATTEMPT */
  uint8_t channel[32];          /* ATTEMPT */
  json_t *params;               /* CALL: owned by the action's reader */
  int pt, gt;                   /* PAY, RECEIPT */
  int final;                    /* PAY */
  char status[16];              /* RECEIPT */
  int ok;                       /* STATS; VERIFIED: mismatch */
  double latency_ms;            /* STATS */
  int level;                    /* LOG */
  char message[400];            /* LOG */
} mkt_route_action;

typedef struct mkt_route mkt_route;

int mkt_route_new(const mkt_route_cfg *cfg, const mkt_route_env *env, mkt_route **out);
void mkt_route_free(mkt_route *rt); /* pending CALL params in the queue are freed */

/* A request: spec (name or sha256), params (the `generate` params without request/model/
 * max_tokens; taken), max_tokens, only (a provider key or NULL), stream (a reference
 * taken). 0 or ERR_NOMEM (params and the reference are dropped). */
int mkt_route_submit(mkt_route *rt, uint64_t now, const char *spec, json_t *params, int max_tokens,
                     const uint8_t *only, mkt_stream *stream);

/* Offers of pk (NULL/0: it has none). */
void mkt_route_offers(mkt_route *rt, uint64_t now, const uint8_t pk[32], const mkt_offer *offers, size_t n);
void mkt_route_offers_failed(mkt_route *rt, const uint8_t pk[32]);
void mkt_route_link_up(mkt_route *rt, const uint8_t pk[32]);

/* Registry: sha is listed (1), not listed (0), or the chain could not be read (-1). */
void mkt_route_registry(mkt_route *rt, uint64_t now, const uint8_t sha[32], int listed);
/* The Registry's listing (n < 0: it could not be read). */
void mkt_route_names(mkt_route *rt, uint64_t now, const char *const *names, const uint8_t (*shas)[32],
                     const int *verified, const int64_t *registered_at, int n);

/* A channel for aid: rc 0 with its id, else a reason. */
void mkt_route_channel(mkt_route *rt, uint64_t now, uint32_t aid, int rc, const uint8_t channel[32], const char *msg);
/* The log-probability records of the text_len bytes of text in aid's next chunk (given just
 * before mkt_route_chunk; recs NULL, n < 0: the provider sent malformed ones: the attempt
 * fails as the provider's fault). */
void mkt_route_logprobs(mkt_route *rt, uint64_t now, uint32_t aid, const logprob_rec *recs, int n, const uint8_t *bytes,
                        size_t text_len);
/* A chunk of aid's stream: ids, text, the prompt size pt (with the continuation). */
void mkt_route_chunk(mkt_route *rt, uint64_t now, uint32_t aid, const int32_t *ids, int n_ids, const char *text,
                     size_t len, int pt);
/* aid's call failed: a JSON-RPC error (code, message, data code or NULL). */
void mkt_route_error(mkt_route *rt, uint64_t now, uint32_t aid, int code, const char *msg, const char *data_code);
/* aid's answer. */
void mkt_route_done(mkt_route *rt, uint64_t now, uint32_t aid, int pt, int gt, int length);
/* aid's provider refused a voucher (it is left for another). */
void mkt_route_pay_refused(mkt_route *rt, uint64_t now, uint32_t aid, const char *why);

/* Time passes: stalls, retries, waits run out; canceled streams end. */
void mkt_route_tick(mkt_route *rt, uint64_t now);
/* Every request ends with "the node is stopping". */
void mkt_route_shutdown(mkt_route *rt, uint64_t now);

int mkt_route_poll(mkt_route *rt, mkt_route_action *out); /* 1 filled, 0 none */

/* For status and the API's model list. */
int mkt_route_n_requests(const mkt_route *rt);
void mkt_route_known(const mkt_route *rt, int *providers, int *offers);
/* The offers of the peers (for `apiary offers`): calls fn for each. */
void mkt_route_each_offer(const mkt_route *rt, void (*fn)(void *ud, const uint8_t pk[32], const mkt_offer *o, size_t n),
                          void *ud);
/* What the network offers, by model: [{name, sha256, providers, min_price_gen}] (owned). */
json_t *mkt_route_models_json(const mkt_route *rt);

#endif
