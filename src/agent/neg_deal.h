/* agent/neg_deal — the deal document both parties sign when a negotiation agrees.
 *
 * Canonical JSON (jansson, keys sorted, compact; integers only, no floats):
 *   {"v":1, "session":"<32 hex>", "domain":"<name>",
 *    "a":"<64 hex Ed25519 pk of the opener>", "b":"<64 hex pk of the responder>",
 *    "terms":{"<issue>":"<value>",...}, "round":N, "created_ms":T,
 *    "payment":{"price_per_1k_wei":"<dec>","volume_tokens":"<dec>","expires_s":"<dec>"}}
 * ("payment" only when the domain has issues with the price role; volume/expiry when
 * present.) Each side signs "apiary-neg-deal-v1\n" || canonical bytes with its node key
 * (Ed25519, crypto_sign_detached); neg_deal_verify checks both. The EIP-712 digest of the
 * payment terms, for a wallet signature the escrow can check, is
 *   NegDeal(bytes32 session,bytes32 partyA,bytes32 partyB,uint256 pricePer1kWei,
 *           uint256 volumeTokens,uint256 expiresS)
 * under the domain {name "apiary-neg", version "1", chainId}. Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_DEAL_H
#define APIARY_AGENT_NEG_DEAL_H

#include <jansson.h>

#include "agent/neg_scenario.h"
#include "agent/neg_seal.h"
#include "crypto/ident.h"

typedef struct neg_deal {
  json_t *doc;                         /* owned: the canonical document */
  uint8_t sig_a[IDENT_SIG_BYTES];      /* the opener's signature */
  uint8_t sig_b[IDENT_SIG_BYTES];
  int have_a, have_b;
} neg_deal;

/* The payment numbers the market needs (from issues with roles). */
typedef struct neg_deal_payment {
  int has_price;
  uint64_t price_per_1k_wei, volume_tokens, expires_s; /* 0 when absent */
} neg_deal_payment;

/* Builds the document for agreed bid. 0 or ERR_NOMEM/ERR_INVAL. */
int neg_deal_init(neg_deal *dl, const neg_domain *d, const neg_bid *bid, const uint8_t session[static NEG_SESSION_BYTES],
                  const uint8_t pk_a[static 32], const uint8_t pk_b[static 32], int round, uint64_t created_ms);
void neg_deal_deinit(neg_deal *dl);
/* Canonical bytes (returns owned NUL-terminated text; free()). */
char *neg_deal_canonical(const neg_deal *dl);
/* Signs as side a (0) or b (1); id's pk must be that side's. 0 or ERR_INVAL. */
int neg_deal_sign(neg_deal *dl, const ident *id, int side);
/* Sets the counterpart's signature as received. */
void neg_deal_set_sig(neg_deal *dl, int side, const uint8_t sig[static IDENT_SIG_BYTES]);
/* 0 when both signatures verify over the document; ERR_CRYPTO otherwise. */
int neg_deal_verify(const neg_deal *dl);
/* Payment terms from the document. */
void neg_deal_payment_terms(const neg_deal *dl, neg_deal_payment *out);
/* The whole signed deal as JSON {"deal":doc,"sig_a":hex,"sig_b":hex} (owned) and back
 * (borrowed j; 0 or ERR_FORMAT; does not verify). */
json_t *neg_deal_to_json(const neg_deal *dl);
int neg_deal_from_json(const json_t *j, neg_deal *out);
/* EIP-712 digest of the payment terms for chain_id. 0, ERR_INVAL (no price) or ERR_FORMAT. */
int neg_deal_eip712_digest(const neg_deal *dl, uint64_t chain_id, uint8_t out[static 32]);

#endif
