/* agent/neg_store — the negotiation tables in the node's database (docs/negotiation.md
 * "On the network"): the owner's intents (the whole file, mandate included: it never
 * leaves the node), sessions (one row per negotiation, updated as it goes) and signed deals
 * (both signatures; the market looks the agreed price up here, counting a deal's volume
 * from market/receipt's rows).
 *
 * Migration neg_schema_v1 (append-only, node/home). Every function borrows its arguments;
 * returned JSON is owned by the caller. Loop thread (one store connection). */
#ifndef APIARY_AGENT_NEG_STORE_H
#define APIARY_AGENT_NEG_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "core/store.h"

extern const char neg_schema_v1[];

/* Intents: def is the intent file's JSON text. 0, ERR_EXISTS (same id, replace 0) or ERR_STORE. */
int neg_store_intent_put(store *s, const char *id, const char *kind, const char *def, int replace);
/* The file of intent id (owned text, free()) or NULL when there is none. */
char *neg_store_intent_get(store *s, const char *id);
/* 0, ERR_NOTFOUND or ERR_STORE. */
int neg_store_intent_rm(store *s, const char *id);
/* Every intent's file, parsed, in id order (owned array; NULL on a store error). */
json_t *neg_store_intent_list(store *s);

/* A session as stored. */
typedef struct neg_session_row {
  char id[33];             /* session, hex */
  uint8_t peer[32];        /* the counterpart's node key */
  int opener;              /* 1: we opened it */
  char my_intent[64], peer_intent[64];
  char state[16];          /* running, agreed, no_deal, failed */
  int rounds;
  double my_utility;       /* of the agreed terms under our mandate (agreed) */
  char reason[200];        /* why it ended (no_deal, failed) */
} neg_session_row;

/* Inserts or updates the row. 0 or ERR_STORE. */
int neg_store_session_put(store *s, const neg_session_row *r);
/* Marks sessions still running as failed ("the node restarted"): engines do not survive a
 * restart. Returns how many, or ERR_STORE. */
int neg_store_sessions_abandon(store *s);
/* Sessions, newest first, each with its deal when there is one (owned array). */
json_t *neg_store_session_list(store *s);

/* The signed deal of session (deal_json: {"deal","sig_a","sig_b"}), with who sells and
 * who buys (node keys) and the payment terms. 0 or ERR_STORE. */
int neg_store_deal_put(store *s, const char *session, const uint8_t seller[32], const uint8_t buyer[32],
                       uint64_t price_per_1k, uint64_t volume, uint64_t expires_at_s, const char *deal_json);
/* The price per 1k generated tokens that seller and buyer agreed: the newest deal between
 * them that verifies now (both signatures over the stored document, the document's parties
 * are exactly seller and buyer, a price term, not expired at now_s, and, when it has a
 * volume, fewer generated tokens sold at that price between the two since it was signed
 * (market_receipts) than the volume). 0 with the price, or ERR_NOTFOUND. */
int neg_store_deal_price(store *s, const uint8_t seller[32], const uint8_t buyer[32], uint64_t now_s, uint64_t *price_out);

#endif
