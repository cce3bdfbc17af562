/* chain/ethrpc — a blocking Ethereum JSON-RPC client over HTTP(S) (libcurl + jansson).
 *
 * Covers what a payment node needs: chain id, head, balances, nonces, code, fees
 * (EIP-1559 from eth_feeHistory + eth_maxPriorityFeePerGas, legacy eth_gasPrice fallback),
 * gas estimation, eth_call, logs, raw transaction submission, receipts and waiting for N
 * confirmations, and ethrpc_send_tx which does all of it for one transaction.
 *
 * Error model (every function returns 0 or a negative code; details in ethrpc_last_error):
 *   transport   -ECONNREFUSED, -EHOSTUNREACH, -ETIMEDOUT (per-call timeout), -EIO, or
 *               -EPROTO for an HTTP error status without a JSON-RPC body
 *   JSON-RPC    ETHRPC_ERR_RPC: the node answered with an error object (code + message)
 *   revert      ETHRPC_ERR_REVERT: eth_call / eth_estimateGas reverted, or a mined
 *               transaction has status 0; the revert data is decoded into a reason
 *   malformed   ERR_FORMAT: the answer is not the JSON we expect
 *   waiting     -ETIMEDOUT from ethrpc_wait_receipt when the deadline passes
 * The handle is not thread-safe: use one per thread. This module does I/O and sleeps;
 * everything it encodes comes from the pure modules (rlp, abi, tx). */
#ifndef APIARY_CHAIN_ETHRPC_H
#define APIARY_CHAIN_ETHRPC_H

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain/abi.h"
#include "core/buf.h"
#include "crypto/u256.h"
#include "crypto/wallet.h"

#define ETHRPC_ERR_RPC (-EREMOTEIO)   /* JSON-RPC error object (see ethrpc_error) */
#define ETHRPC_ERR_REVERT (-ECANCELED) /* execution reverted (reason in ethrpc_error) */
#define ETHRPC_MAX_RESPONSE (32u << 20) /* response bytes; more is ERR_TOOBIG */
#define ETHRPC_MAX_LOGS 10000

typedef struct ethrpc ethrpc;

typedef enum ethrpc_errkind {
  ETHRPC_OK = 0,
  ETHRPC_E_NET,     /* connection, timeout, HTTP status */
  ETHRPC_E_RPC,     /* JSON-RPC error object */
  ETHRPC_E_REVERT,  /* execution reverted */
  ETHRPC_E_FORMAT,  /* unexpected response */
} ethrpc_errkind;

typedef struct ethrpc_error {
  ethrpc_errkind kind;
  long code;                   /* JSON-RPC error code, HTTP status or CURLcode */
  char message[256];           /* server or transport message */
  char reason[ABI_REASON_MAX]; /* revert reason (abi_revert_reason) */
  uint8_t revert_data[512];    /* raw revert data (first 512 bytes) */
  size_t revert_len;           /* its full length */
} ethrpc_error;

typedef struct ethrpc_log {
  uint8_t address[20];
  uint8_t topics[4][32];
  size_t ntopics;
  uint8_t *data;               /* owned */
  size_t data_len;
  uint64_t block_number;
  uint8_t tx_hash[32];
  uint64_t log_index;
  bool removed;
} ethrpc_log;

typedef struct ethrpc_receipt {
  uint8_t tx_hash[32];
  uint8_t block_hash[32];
  uint64_t block_number;
  int status;                  /* 1 success, 0 reverted */
  uint64_t gas_used;
  u256 effective_gas_price;
  bool has_contract;
  uint8_t contract_address[20];
  ethrpc_log *logs;            /* owned; ethrpc_receipt_deinit frees */
  size_t nlogs;
  char revert_reason[ABI_REASON_MAX]; /* filled by ethrpc_send_tx when status is 0 */
} ethrpc_receipt;

typedef struct ethrpc_msg {  /* an eth_call / eth_estimateGas message */
  const uint8_t *from;       /* 20 bytes or NULL */
  const uint8_t *to;         /* 20 bytes or NULL (creation) */
  u256 value;
  const uint8_t *data;       /* borrowed */
  size_t data_len;
  uint64_t gas;              /* 0: let the node choose */
} ethrpc_msg;

typedef struct ethrpc_fees {
  bool eip1559;              /* false: the chain has no base fee; use gas_price */
  u256 base_fee;             /* next block's base fee */
  u256 max_priority_fee;
  u256 max_fee;              /* 2 * base_fee + max_priority_fee */
  u256 gas_price;            /* eth_gasPrice */
} ethrpc_fees;

typedef struct ethrpc_filter {
  uint64_t from_block, to_block; /* to_block UINT64_MAX = "latest" */
  const uint8_t *address;        /* 20 bytes or NULL */
  const uint8_t (*topic0)[32];   /* NULL = any */
  const uint8_t (*topic1)[32];
  const uint8_t (*topic2)[32];
} ethrpc_filter;

typedef struct ethrpc_send_opts {
  uint64_t gas_limit;          /* 0: estimate and add 20% */
  unsigned confirmations;      /* blocks on top of the inclusion block, 1 = mined */
  int timeout_ms;              /* wait deadline (default 120 s) */
  int poll_ms;                 /* receipt polling period (default 1000 ms) */
  bool legacy;                 /* force a type-0 EIP-155 transaction */
  u256 max_fee_cap;            /* refuse when the suggested max fee is above (0 = no cap) */
} ethrpc_send_opts;

/* Creates a client for url with a per-request timeout. Returns 0, ERR_NOMEM or ERR_INVAL. */
int ethrpc_new(const char *url, int timeout_ms, ethrpc **out);
void ethrpc_free(ethrpc *rpc);
const ethrpc_error *ethrpc_last_error(const ethrpc *rpc);

/* Generic request. Takes params (a JSON array, may be NULL); *result_out is owned. */
int ethrpc_request(ethrpc *rpc, const char *method, json_t *params, json_t **result_out);

int ethrpc_chain_id(ethrpc *rpc, uint64_t *out);
int ethrpc_block_number(ethrpc *rpc, uint64_t *out);
/* block: "latest", "pending", "0x…" (NULL = "latest"). */
int ethrpc_get_balance(ethrpc *rpc, const uint8_t addr[static 20], const char *block, u256 *out);
int ethrpc_get_nonce(ethrpc *rpc, const uint8_t addr[static 20], uint64_t *out); /* "pending" */
int ethrpc_get_code(ethrpc *rpc, const uint8_t addr[static 20], const char *block, buf *out);
int ethrpc_gas_price(ethrpc *rpc, u256 *out);
int ethrpc_max_priority_fee(ethrpc *rpc, u256 *out);
/* eth_feeHistory(1, latest, [50]) + eth_maxPriorityFeePerGas (fallback: the reward
 * percentile, then 1 gwei); max_fee = 2*base + tip. Legacy chains: eip1559 false. */
int ethrpc_suggest_fees(ethrpc *rpc, ethrpc_fees *out);
int ethrpc_estimate_gas(ethrpc *rpc, const ethrpc_msg *m, uint64_t *out);
/* eth_call at block (NULL = "latest"); appends the return data to out. */
int ethrpc_call(ethrpc *rpc, const ethrpc_msg *m, const char *block, buf *out);
int ethrpc_send_raw(ethrpc *rpc, const uint8_t *raw, size_t len, uint8_t hash_out[static 32]);
/* 0 and the receipt, ERR_NOTFOUND while pending. */
int ethrpc_get_receipt(ethrpc *rpc, const uint8_t hash[static 32], ethrpc_receipt *out);
/* Polls until the tx is mined with confirmations blocks (≥1) or timeout_ms passes (-ETIMEDOUT). */
int ethrpc_wait_receipt(ethrpc *rpc, const uint8_t hash[static 32], unsigned confirmations, int timeout_ms,
                        int poll_ms, ethrpc_receipt *out);
void ethrpc_receipt_deinit(ethrpc_receipt *r);
/* eth_getLogs; *logs_out is owned (ethrpc_logs_free). */
int ethrpc_get_logs(ethrpc *rpc, const ethrpc_filter *f, ethrpc_log **logs_out, size_t *n_out);
void ethrpc_logs_free(ethrpc_log *logs, size_t n);

/* Fills nonce (pending), gas (estimate + 20% unless given) and fees, signs with w, sends,
 * waits for opts->confirmations and fills *receipt_out. to NULL deploys data as init code.
 * A mined transaction with status 0 returns ETHRPC_ERR_REVERT with the reason (replayed
 * with eth_call at its block) in receipt_out->revert_reason and the last error. opts may
 * be NULL (defaults). hash_out (may be NULL) gets the tx hash as soon as it is sent. */
int ethrpc_send_tx(ethrpc *rpc, const wallet *w, const uint8_t *to, const u256 *value, const uint8_t *data,
                   size_t data_len, const ethrpc_send_opts *opts, uint8_t *hash_out, ethrpc_receipt *receipt_out);

#endif
