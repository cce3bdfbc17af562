/* chain/tx — Ethereum transactions: legacy with EIP-155 replay protection (type 0) and
 * EIP-1559 dynamic-fee transactions (type 2, EIP-2718 envelope).
 *
 *   legacy   signing payload RLP([nonce, gasPrice, gas, to, value, data, chainId, 0, 0]),
 *            signed RLP([nonce, gasPrice, gas, to, value, data, v, r, s]),
 *            v = chainId*2 + 35 + yParity (27 + yParity when chain_id is 0: pre-EIP-155)
 *   type 2   0x02 || RLP([chainId, nonce, maxPriorityFee, maxFee, gas, to, value, data,
 *            accessList]) and the signed form adds yParity, r, s
 *
 * signing hash = keccak256(signing payload), tx hash = keccak256(raw signed bytes).
 * Pure (no I/O). A tx borrows its data and access list; tx_decode makes the tx borrow the
 * raw input. Thread-safe. */
#ifndef APIARY_CHAIN_TX_H
#define APIARY_CHAIN_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/u256.h"
#include "crypto/wallet.h"

#define TX_LEGACY 0
#define TX_EIP1559 2
#define TX_MAX_RAW (128u * 1024u) /* the txpool limit of geth; larger raw txs are ERR_TOOBIG */

typedef struct tx_access {
  uint8_t addr[20];              /* contract address */
  const uint8_t (*keys)[32];     /* storage keys (borrowed) */
  size_t nkeys;
} tx_access;

typedef struct tx {
  int type;                      /* TX_LEGACY or TX_EIP1559 */
  uint64_t chain_id;             /* 0 on a legacy tx means pre-EIP-155 (unprotected) */
  uint64_t nonce;
  u256 gas_price;                /* legacy only */
  u256 max_priority_fee;         /* type 2: maxPriorityFeePerGas */
  u256 max_fee;                  /* type 2: maxFeePerGas */
  uint64_t gas_limit;
  bool has_to;                   /* false: contract creation */
  uint8_t to[20];
  u256 value;                    /* wei */
  const uint8_t *data;           /* calldata / init code (borrowed) */
  size_t data_len;
  const tx_access *access;       /* type 2 access list entries (borrowed) ... */
  size_t naccess;
  const uint8_t *access_rlp;     /* ... or an already-encoded list (set by tx_decode) */
  size_t access_rlp_len;
  /* signature (filled by tx_sign / tx_decode) */
  uint8_t y_parity;              /* 0/1 */
  uint8_t r[32], s[32];          /* big-endian */
} tx;

/* Zeroes *t and sets type and chain id. */
void tx_init(tx *t, int type, uint64_t chain_id);
/* Appends the signing payload (the bytes that are hashed). ERR_INVAL on a bad type. */
int tx_encode_unsigned(const tx *t, buf *out);
int tx_signing_hash(const tx *t, uint8_t hash_out[static 32]);
/* Appends the signed raw transaction using t's signature fields. */
int tx_encode_signed(const tx *t, buf *out);
/* Signs t with w (fills y_parity/r/s), appends the raw signed bytes to raw_out and writes
 * the tx hash. Borrows w. Returns 0, ERR_CRYPTO or ERR_NOMEM. */
int tx_sign(tx *t, const wallet *w, buf *raw_out, uint8_t hash_out[static 32]);
/* Parses a raw signed transaction (legacy or type 2). t borrows raw. Returns 0,
 * ERR_FORMAT, ERR_TOOBIG or ERR_UNSUPPORTED (other typed envelopes). */
int tx_decode(const uint8_t *raw, size_t len, tx *out);
/* Recovers the sender of a signed (decoded or signed) tx. Returns 0 or ERR_CRYPTO. */
int tx_sender(const tx *t, uint8_t addr_out[static 20]);
/* The address a contract created by sender's transaction number nonce gets (CREATE):
 * keccak256(RLP([sender, nonce]))[12..32]. */
void tx_create_address(const uint8_t sender[static 20], uint64_t nonce, uint8_t addr_out[static 20]);
/* keccak256 of the raw bytes. */
void tx_hash(const uint8_t *raw, size_t len, uint8_t hash_out[static 32]);

#endif
