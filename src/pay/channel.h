/* pay/channel — the payment channels a node takes part in, cached in its SQLite store.
 *
 * A channel lives on chain in the Escrow contract (docs/contracts.md); both ends keep a
 * copy here so vouchers can be signed (client) and checked (provider) with no chain
 * access. The row holds what the chain said when we last looked (client, provider,
 * signer, deposit, expiry, claimed, closed) plus the off-chain state: the highest voucher
 * amount signed (client) or accepted (provider) and its signature.
 *
 * Amounts are u256 wei stored as decimal TEXT. Tables: pay_channels, pay_receipts
 * (pay_schema_v1, migration owner "pay"). No I/O other than the store; the caller owns the
 * store handle and its thread. */
#ifndef APIARY_PAY_CHANNEL_H
#define APIARY_PAY_CHANNEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store.h"
#include "crypto/u256.h"

#define CHANNEL_MAX_LIST 1024

extern const char pay_schema_v1[];

typedef enum channel_role { CHANNEL_CLIENT = 1, CHANNEL_PROVIDER = 2 } channel_role;

typedef struct channel {
  uint8_t id[32];         /* channel id (bytes32 from the Opened event) */
  uint64_t chain_id;      /* EIP-155 chain id */
  uint8_t escrow[20];     /* Escrow contract address */
  uint8_t client[20];     /* funded the channel */
  uint8_t provider[20];   /* receives claims */
  uint8_t signer[20];     /* key whose vouchers count */
  u256 deposit;           /* total deposited (wei), as last seen */
  uint64_t expiry;        /* unix seconds */
  u256 claimed;           /* paid out on chain (wei), as last seen */
  bool closed;            /* refunded */
  u256 amount;            /* highest voucher signed (client) / accepted (provider) */
  uint8_t sig[65];        /* its signature (r||s||v); valid when amount > 0 */
  channel_role role;      /* our side */
  uint8_t peer[32];       /* the other node's Ed25519 key (zero when unknown) */
  int64_t updated_s;      /* last local change, unix seconds */
} channel;

/* Inserts a channel, or refreshes the on-chain fields of a known one (deposit, expiry,
 * closed; claimed only upwards; the voucher state and role are kept). 0 or ERR_STORE. */
int channel_put(store *s, const channel *ch);
/* 0, ERR_NOTFOUND or ERR_STORE. */
int channel_get(store *s, const uint8_t id[static 32], channel *out);
/* Fills up to cap channels (newest first; role 0 = both). Returns the count or ERR_STORE. */
int channel_list(store *s, channel_role role, channel *out, size_t cap);
/* The open client channel to peer on (chain_id, escrow) with the most room left. */
int channel_find_client(store *s, const uint8_t peer[static 32], uint64_t chain_id,
                        const uint8_t escrow[static 20], channel *out);
/* Records the voucher state (amount, sig) of a channel. Caller runs it in a transaction. */
int channel_set_voucher(store *s, const uint8_t id[static 32], const u256 *amount, const uint8_t sig[static 65]);
/* Records what the chain says was claimed (never lowers it), plus deposit/expiry/closed. */
int channel_set_chain(store *s, const uint8_t id[static 32], const u256 *deposit, uint64_t expiry,
                      const u256 *claimed, bool closed);

/* The channel as JSON for the CLI and control socket (returns owned, NULL on OOM). */
json_t *channel_to_json(const channel *ch);

/* A receipt for billing: written by both sides per request. */
typedef struct pay_receipt {
  uint8_t channel_id[32];
  channel_role role;
  uint8_t model_hash[32];   /* sha256 of the GGUF */
  uint8_t request_hash[32]; /* hash of the request */
  uint64_t tokens;          /* tokens billed */
  u256 amount;              /* wei for those tokens */
  uint8_t provider[32];     /* provider node key */
  uint8_t client[32];       /* client node key */
} pay_receipt;
int channel_receipt_add(store *s, const pay_receipt *r, int64_t now_s);

/* Parses an amount: wei digits, "0x…" hex, or a decimal with a unit suffix "eth", "gwei",
 * "wei" ("0.5eth", "1gwei"). 0, ERR_FORMAT or ERR_RANGE. */
int channel_amount_parse(const char *text, u256 *out);

#endif
