/* crypto/wallet — the node's Ethereum wallet: a secp256k1 key (libsecp256k1) and its
 * address, keccak256(uncompressed public key without the 0x04 prefix)[12..32].
 *
 * The secret key lives in caller-owned wallet structs (wipe with wallet_wipe) and on disk
 * in a 0600 key file (crypto/keyfile). Addresses print in EIP-55 mixed-case checksum form.
 * One libsecp256k1 context is created lazily (pthread_once) and randomized for side-channel
 * resistance; after that every function is thread-safe. */
#ifndef APIARY_CRYPTO_WALLET_H
#define APIARY_CRYPTO_WALLET_H

#include <stddef.h>
#include <stdint.h>

#define WALLET_SK_BYTES 32
#define WALLET_ADDR_BYTES 20
#define WALLET_ADDR_BUF 43 /* "0x" + 40 hex + NUL */
#define WALLET_FILE_KIND "secp256k1-secret"

typedef struct wallet {
  uint8_t sk[WALLET_SK_BYTES];      /* secret */
  uint8_t pub[64];                  /* uncompressed public key x || y */
  uint8_t addr[WALLET_ADDR_BYTES];  /* Ethereum address */
} wallet;

int wallet_generate(wallet *out);
/* ERR_CRYPTO when sk is zero or not below the curve order. */
int wallet_from_secret(const uint8_t sk[static WALLET_SK_BYTES], wallet *out);
int wallet_save(const wallet *w, const char *path); /* 0600, ERR_EXISTS if present */
int wallet_load(const char *path, wallet *out);
void wallet_wipe(wallet *w);

/* EIP-55 checksummed "0x..." text of an address. */
void wallet_addr_eip55(const uint8_t addr[static WALLET_ADDR_BYTES], char out[static WALLET_ADDR_BUF]);
/* Parses "0x" + 40 hex digits. All-lowercase or all-uppercase is accepted as is; mixed case
 * must be a valid EIP-55 checksum (ERR_CRYPTO otherwise: likely a typo). */
int wallet_addr_parse(const char *text, size_t len, uint8_t addr_out[static WALLET_ADDR_BYTES]);

#endif
