/* crypto/secp — recoverable secp256k1 ECDSA over 32-byte digests, as Ethereum uses it
 * (libsecp256k1 with the recovery module; RFC 6979 deterministic nonces, low-s).
 *
 * Signatures are r(32) || s(32) || recid(1) with recid 0/1 ("yParity"); callers add 27 or
 * the EIP-155 offset themselves. Recovery rejects high-s (EIP-2) and returns the signer's
 * address. One randomized context is created lazily (pthread_once); thread-safe after. */
#ifndef APIARY_CRYPTO_SECP_H
#define APIARY_CRYPTO_SECP_H

#include <stdint.h>

#define SECP_SIG_BYTES 65

/* Signs digest with sk. Returns 0 or ERR_CRYPTO. */
/* The process's one libsecp256k1 context, created on first use (pthread_once) and
 * randomized against side channels; NULL if that failed. Shared by the wallet and the
 * signing helpers; thread-safe to use after creation. */
typedef struct secp256k1_context_struct secp256k1_context;
secp256k1_context *secp_context(void);

int secp_sign(const uint8_t sk[static 32], const uint8_t digest[static 32], uint8_t sig_out[static SECP_SIG_BYTES]);
/* Recovers the 64-byte public key (x||y) and the address that signed digest.
 * sig = r||s (64 bytes), recid 0..1 (2..3 are rejected: r overflow never happens in
 * practice and Ethereum forbids it). Rejects s > n/2 and r or s zero: ERR_CRYPTO. */
int secp_recover(const uint8_t digest[static 32], const uint8_t sig[static 64], int recid,
                 uint8_t pub_out[static 64], uint8_t addr_out[static 20]);
/* Convenience for 65-byte r||s||v signatures with v 0/1 or 27/28 (ERR_CRYPTO otherwise). */
int secp_recover_rsv(const uint8_t digest[static 32], const uint8_t sig65[static 65], uint8_t addr_out[static 20]);

#endif
