/* crypto/eip712 — EIP-712 typed structured data hashing and signing, personal_sign digests,
 * and the apiary payment voucher.
 *
 * Generic typed data comes as the JSON object of eth_signTypedData_v4
 * ({types, primaryType, domain, message}; jansson, borrowed). Supported member types:
 * uint8..uint256, int8..int256 (JSON integers, decimal strings or 0x hex; "-" for negative
 * ints), bool, address, bytes1..bytes32, bytes, string (hashed), nested structs and arrays
 * T[] / T[n] of any of them (keccak of the concatenated element encodings).
 *
 *   encodeType   Primary(type name,...) followed by referenced structs sorted by name
 *   hashStruct   keccak256(typeHash || encodeData)
 *   digest       keccak256(0x19 0x01 || domainSeparator || hashStruct(message))
 *
 * The voucher is the payment layer's fixed struct, hashed without JSON:
 *   Voucher(bytes32 channelId,uint256 amount)
 *   domain EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)
 *          with name "apiary-escrow", version "1".
 * Signatures are 65 bytes r||s||v with v = 27/28 (what Solidity's ecrecover takes).
 * Pure (no I/O); thread-safe. Caps: EIP712_MAX_DEPTH nesting, EIP712_MAX_TYPES types. */
#ifndef APIARY_CRYPTO_EIP712_H
#define APIARY_CRYPTO_EIP712_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/u256.h"
#include "crypto/wallet.h"

#define EIP712_MAX_DEPTH 16
#define EIP712_MAX_TYPES 64
#define EIP712_VOUCHER_NAME "apiary-escrow"
#define EIP712_VOUCHER_VERSION "1"
#define EIP712_VOUCHER_TYPE "Voucher(bytes32 channelId,uint256 amount)"
#define EIP712_DOMAIN_TYPE "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"

/* Appends encodeType(primary) to out. types is the "types" object. Returns 0, ERR_FORMAT
 * (unknown type, malformed member) or ERR_TOOBIG. */
int eip712_encode_type(const json_t *types, const char *primary, buf *out);
int eip712_type_hash(const json_t *types, const char *primary, uint8_t out[static 32]);
/* Appends encodeData (typeHash followed by one word per member). */
int eip712_encode_data(const json_t *types, const char *primary, const json_t *data, buf *out);
int eip712_hash_struct(const json_t *types, const char *primary, const json_t *data, uint8_t out[static 32]);
/* hashStruct of typed["domain"] as "EIP712Domain" (types["EIP712Domain"] when given, else
 * the present subset of name/version/chainId/verifyingContract/salt in that order). */
int eip712_domain_separator(const json_t *typed, uint8_t out[static 32]);
/* The full digest of an eth_signTypedData_v4 object. */
int eip712_digest_json(const json_t *typed, uint8_t out[static 32]);
/* keccak256(0x19 0x01 || domain || struct_hash). */
void eip712_digest(const uint8_t domain[static 32], const uint8_t struct_hash[static 32], uint8_t out[static 32]);

/* Signs a 32-byte digest: r||s||v, v = 27/28. Returns 0 or ERR_CRYPTO. */
int eip712_sign(const wallet *w, const uint8_t digest[static 32], uint8_t sig_out[static 65]);
/* Recovers the signer of digest (v 27/28 or 0/1; high-s rejected). 0 or ERR_CRYPTO. */
int eip712_recover(const uint8_t digest[static 32], const uint8_t sig[static 65], uint8_t addr_out[static 20]);

/* personal_sign / eth_sign: keccak256("\x19Ethereum Signed Message:\n" || decimal(len) || msg). */
void eth_personal_digest(const void *msg, size_t len, uint8_t out[static 32]);

/* The apiary escrow domain separator for (chain_id, contract). */
void eip712_voucher_domain(uint64_t chain_id, const uint8_t contract[static 20], uint8_t out[static 32]);
void eip712_voucher_digest(uint64_t chain_id, const uint8_t contract[static 20], const uint8_t channel_id[static 32],
                           const u256 *amount, uint8_t out[static 32]);
int eip712_voucher_sign(const wallet *w, uint64_t chain_id, const uint8_t contract[static 20],
                        const uint8_t channel_id[static 32], const u256 *amount, uint8_t sig_out[static 65]);
/* Recovers who signed a voucher. Returns 0 or ERR_CRYPTO (malformed/high-s signature). */
int eip712_voucher_signer(uint64_t chain_id, const uint8_t contract[static 20], const uint8_t channel_id[static 32],
                          const u256 *amount, const uint8_t sig[static 65], uint8_t addr_out[static 20]);

#endif
