/* privacy/owner — the owner's policy over who this node trades with and for how much
 * ([policy] in the config, docs/config.md and docs/privacy.md):
 *
 *   allow_nodes / deny_nodes   node ids; deny wins; a non-empty allow list means only those.
 *                              Applied when buying (market/route never picks a provider
 *                              that is not allowed) and selling (node/gensvc refuses
 *                              `generate` from a buyer that is not allowed).
 *   daily_spend_cap_wei        the most this node pays in any 24 hours (0 = no cap): a
 *                              purchase that could go past it is refused before anything is
 *                              signed, and no voucher is ever signed past it.
 *   price_floor_prompt / _gen  the least this node sells for (wei per 1,000 tokens): offers
 *                              below are a config error, and a negotiated deal cannot take
 *                              the price below the floor.
 *
 * Pure: owner_policy_load reads the config once; the checks are lookups. Any thread once
 * loaded (read-only). The struct is caller-owned storage (no deinit needed). */
#ifndef APIARY_PRIVACY_OWNER_H
#define APIARY_PRIVACY_OWNER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define OWNER_MAX_NODES 256 /* CONFIG_MAX_LIST */

typedef struct owner_policy {
  uint8_t allow[OWNER_MAX_NODES][32]; /* node keys; n_allow 0 = everyone not denied */
  size_t n_allow;
  uint8_t deny[OWNER_MAX_NODES][32];
  size_t n_deny;
  uint64_t daily_cap;                 /* wei per 24 h; 0 = no cap */
  uint64_t floor_prompt, floor_gen;   /* wei per 1,000 tokens; 0 = none */
} owner_policy;

extern const config_key owner_config_keys[];
extern const size_t owner_config_keys_n;

#define OWNER_DAY_S 86400

/* Fills p from [policy]. 0, or ERR_CONFIG with err naming the key and the bad value. */
int owner_policy_load(owner_policy *p, const config *cfg, char *err, size_t cap);
/* 1 when this node may trade with pk (not denied; in the allow list when there is one). */
int owner_node_allowed(const owner_policy *p, const uint8_t pk[32]);
/* Whether paying add more wei is within the cap, given spent in the last 24 h: 1 yes, 0 no. */
int owner_spend_ok(const owner_policy *p, uint64_t spent, uint64_t add);
/* The price per 1k generated tokens a deal may set: max(deal, floor_gen). */
uint64_t owner_floor_gen(const owner_policy *p, uint64_t price_gen);
/* Writes the message a refused purchase carries (the cap, what was spent, how to raise it). */
void owner_cap_message(const owner_policy *p, uint64_t spent, char *out, size_t cap);

#endif
