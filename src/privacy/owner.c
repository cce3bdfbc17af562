/* privacy/owner — the owner's policy; see owner.h. */
#include "privacy/owner.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "crypto/ident.h"
#include "pay/channel.h"

const config_key owner_config_keys[] = {
    {"policy", "allow_nodes", CONFIG_LIST, "[]", 0, 0,
     "node ids this node trades with (buying and selling); empty = every node not denied"},
    {"policy", "deny_nodes", CONFIG_LIST, "[]", 0, 0,
     "node ids this node never buys from nor sells to (wins over allow_nodes)"},
    {"policy", "daily_spend_cap_wei", CONFIG_STR, "\"0\"", 0, 0,
     "the most this node pays for generations and tasks in any 24 hours (wei, or e.g. \"0.01eth\"; 0 = no cap)"},
    {"policy", "price_floor_prompt", CONFIG_INT, "0", 0, INT64_MAX,
     "the least this node sells for per 1,000 prompt tokens (wei; [market] price_prompt may not be lower)"},
    {"policy", "price_floor_gen", CONFIG_INT, "0", 0, INT64_MAX,
     "the least this node sells for per 1,000 generated tokens (wei; neither [market] price_gen nor a negotiated deal goes lower)"},
};
const size_t owner_config_keys_n = sizeof owner_config_keys / sizeof *owner_config_keys;

static int load_list(const config *cfg, const char *name, uint8_t (*out)[32], size_t *n_out, char *err, size_t cap) {
  const char *const *items;
  size_t n = config_list(cfg, "policy", name, &items);
  *n_out = 0;
  for (size_t i = 0; i < n && i < OWNER_MAX_NODES; i++) {
    if (ident_id_decode(items[i], strlen(items[i]), out[*n_out])) {
      snprintf(err, cap, "config [policy] %s: not a node id: %s", name, items[i]);
      return ERR_CONFIG;
    }
    (*n_out)++;
  }
  return 0;
}

int owner_policy_load(owner_policy *p, const config *cfg, char *err, size_t cap) {
  memset(p, 0, sizeof *p);
  int rc = load_list(cfg, "allow_nodes", p->allow, &p->n_allow, err, cap);
  if (!rc) rc = load_list(cfg, "deny_nodes", p->deny, &p->n_deny, err, cap);
  if (rc) return rc;
  const char *c = config_str(cfg, "policy", "daily_spend_cap_wei");
  u256 v;
  if (channel_amount_parse(c, &v)) {
    snprintf(err, cap, "config [policy] daily_spend_cap_wei: not an amount: %s", c);
    return ERR_CONFIG;
  }
  if (u256_to_u64(&v, &p->daily_cap)) p->daily_cap = UINT64_MAX; /* beyond 64 bits: no real cap */
  p->floor_prompt = (uint64_t)config_int(cfg, "policy", "price_floor_prompt");
  p->floor_gen = (uint64_t)config_int(cfg, "policy", "price_floor_gen");
  return 0;
}

static int in_list(const uint8_t (*l)[32], size_t n, const uint8_t pk[32]) {
  for (size_t i = 0; i < n; i++)
    if (!memcmp(l[i], pk, 32)) return 1;
  return 0;
}

int owner_node_allowed(const owner_policy *p, const uint8_t pk[32]) {
  if (in_list((const uint8_t(*)[32])p->deny, p->n_deny, pk)) return 0;
  return !p->n_allow || in_list((const uint8_t(*)[32])p->allow, p->n_allow, pk);
}

int owner_spend_ok(const owner_policy *p, uint64_t spent, uint64_t add) {
  if (!p->daily_cap) return 1;
  return spent <= p->daily_cap && add <= p->daily_cap - spent;
}

uint64_t owner_floor_gen(const owner_policy *p, uint64_t price_gen) {
  return price_gen < p->floor_gen ? p->floor_gen : price_gen;
}

void owner_cap_message(const owner_policy *p, uint64_t spent, char *out, size_t cap) {
  snprintf(out, cap,
           "daily spending cap reached: this node paid %llu wei in the last 24 h and may pay at most %llu "
           "([policy] daily_spend_cap_wei; raise it, or set 0 for no cap)",
           (unsigned long long)spent, (unsigned long long)p->daily_cap);
}
