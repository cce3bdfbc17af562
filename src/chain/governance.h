/* chain/governance — bindings for node registration (Registry.registerNode) and the
 * Governance contract: propose, vote, execute, read proposals (docs/contracts.md).
 *
 * gov_register_node builds both signatures locally: the owner's EIP-712 NodeBinding
 * (domain "apiary-registry" v1, chain id, Registry address, nonce = bindingNonces(owner))
 * with the wallet, and the node's Ed25519 signature over the endpoint-hint message
 * ("apiary-endpoint-hint-v1" ‖ chainId ‖ registry ‖ nodeKey ‖ owner ‖ hint). Nothing to be
 * signed is taken from the RPC endpoint. Blocking JSON-RPC; errors as in pay/escrow.h. */
#ifndef APIARY_CHAIN_GOVERNANCE_H
#define APIARY_CHAIN_GOVERNANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/ethrpc.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"

enum { GOV_SET_VERIFIED = 0, GOV_DELIST_NODE = 1 };
enum { GOV_ACTIVE = 0, GOV_DEFEATED, GOV_QUEUED, GOV_READY, GOV_EXECUTED };

typedef struct gov_proposal {
  uint64_t id;
  uint8_t target[32];
  uint8_t proposer[20];
  int action;                 /* GOV_SET_VERIFIED / GOV_DELIST_NODE */
  bool value;
  bool executed;
  uint64_t start_block, vote_end, eta;
  uint32_t for_votes, against_votes;
  int state;                  /* GOV_ACTIVE … */
} gov_proposal;

/* Registers id's key with w as owner. */
int gov_register_node(ethrpc *rpc, const wallet *w, const uint8_t registry[static 20], uint64_t chain_id,
                      const ident *id, const char *hint);
/* id_out gets the new proposal id (from proposalCount after the transaction). */
int gov_propose(ethrpc *rpc, const wallet *w, const uint8_t gov[static 20], int action, const uint8_t target[static 32],
                bool value, uint64_t *id_out);
int gov_vote(ethrpc *rpc, const wallet *w, const uint8_t gov[static 20], uint64_t id, const uint8_t node_key[static 32],
             bool support);
int gov_execute(ethrpc *rpc, const wallet *w, const uint8_t gov[static 20], uint64_t id);
int gov_count(ethrpc *rpc, const uint8_t gov[static 20], uint64_t *out);
int gov_get(ethrpc *rpc, const uint8_t gov[static 20], uint64_t id, gov_proposal *out);

#endif
