/* pay/escrow — typed bindings for the apiary contracts (docs/contracts.md) over
 * chain/ethrpc: deploying Escrow + Registry + Governance, and every Escrow call a payment
 * node makes (open, topUp, extend, claim, claimMany, refund, getChannel).
 *
 * Transactions are signed by the given wallet and waited for (1 confirmation); they block
 * the calling thread, so the node runs them on a worker thread with its own ethrpc handle.
 * Errors: ERR_REVERTED (reason in ethrpc_last_error(rpc)->reason), ERR_CHAIN (JSON-RPC
 * error or malformed answer), or the raw transport -errno (-ECONNREFUSED, -ETIMEDOUT, …:
 * the chain is unreachable, try later). receipt_out (may be NULL) gets the receipt for gas
 * accounting; the caller deinits it. */
#ifndef APIARY_PAY_ESCROW_H
#define APIARY_PAY_ESCROW_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/ethrpc.h"
#include "crypto/u256.h"
#include "crypto/wallet.h"

typedef struct escrow_channel { /* Escrow.getChannel */
  uint8_t client[20];
  uint64_t expiry;
  bool closed;
  uint8_t provider[20];
  uint8_t signer[20];
  u256 deposit;
  u256 claimed;
} escrow_channel;

typedef struct escrow_deployment {
  uint64_t chain_id;
  uint8_t escrow[20];
  uint8_t registry[20];
  uint8_t governance[20];
  uint64_t gas_used;           /* all four transactions */
} escrow_deployment;

typedef struct escrow_gov_params {
  uint32_t quorum;             /* votes needed (> 0) */
  uint64_t voting_period;      /* seconds */
  uint64_t timelock;           /* seconds */
} escrow_gov_params;

/* Is rc a transport failure (chain unreachable) rather than a refusal? */
bool escrow_offline(int rc);

/* Deploys Escrow, Registry, Governance(registry, …) and calls Registry.setGovernance. */
int escrow_deploy_all(ethrpc *rpc, const wallet *w, const escrow_gov_params *gp, escrow_deployment *out);

int escrow_open(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t provider[static 20],
                const uint8_t signer[static 20], uint64_t expiry, const u256 *deposit, uint8_t id_out[static 32],
                ethrpc_receipt *receipt_out);
int escrow_topup(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                 const u256 *value, ethrpc_receipt *receipt_out);
int escrow_extend(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                  uint64_t new_expiry, ethrpc_receipt *receipt_out);
int escrow_claim(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                 const u256 *amount, const uint8_t sig[static 65], ethrpc_receipt *receipt_out);
/* n ≤ 64 entries in one transaction. */
int escrow_claim_many(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], size_t n,
                      const uint8_t (*ids)[32], const u256 *amounts, const uint8_t (*sigs)[65],
                      ethrpc_receipt *receipt_out);
int escrow_refund(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                  ethrpc_receipt *receipt_out);
/* Reads a channel; ERR_UNKNOWN_CHANNEL when the chain has none with that id. */
int escrow_get(ethrpc *rpc, const uint8_t escrow[static 20], const uint8_t id[static 32], escrow_channel *out);

#endif
