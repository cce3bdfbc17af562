/* crypto/ident — the node identity: an Ed25519 key pair (libsodium).
 *
 * A node *is* its Ed25519 public key. Its text form, the node id, is
 *     "ap" + base32(pk[32] || check[3])       (58 characters, lowercase RFC 4648 alphabet)
 * where check = the first 3 bytes of BLAKE2b-256("apiary-node-id" || pk). The checksum
 * catches typos when ids are copied by hand; see docs/identity.md. The secret key is kept in
 * libsodium's 64-byte form (seed || pk); only the 32-byte seed is stored on disk.
 * ident_wipe zeroes secrets. Functions are pure or act on caller-owned structs; thread-safe
 * after sodium_init (ident_generate/ident_load call it). */
#ifndef APIARY_CRYPTO_IDENT_H
#define APIARY_CRYPTO_IDENT_H

#include <stddef.h>
#include <stdint.h>

#define IDENT_PK_BYTES 32
#define IDENT_SK_BYTES 64
#define IDENT_SIG_BYTES 64
#define IDENT_ID_LEN 58          /* characters in a node id */
#define IDENT_ID_BUF (IDENT_ID_LEN + 1)
#define IDENT_ID_PREFIX "ap"
#define IDENT_FILE_KIND "ed25519-seed"

typedef struct ident {
  uint8_t pk[IDENT_PK_BYTES]; /* public key */
  uint8_t sk[IDENT_SK_BYTES]; /* secret: seed || pk (libsodium layout) */
} ident;

int ident_generate(ident *out);
/* Deterministic from a 32-byte seed (tests, vectors). */
int ident_from_seed(const uint8_t seed[static 32], ident *out);
/* Saves the seed to path (0600; ERR_EXISTS if present). */
int ident_save(const ident *id, const char *path);
int ident_load(const char *path, ident *out);
void ident_wipe(ident *id);

void ident_sign(const ident *id, const uint8_t *msg, size_t len, uint8_t sig_out[static IDENT_SIG_BYTES]);
/* 0 if valid, ERR_CRYPTO if not. */
int ident_verify(const uint8_t pk[static IDENT_PK_BYTES], const uint8_t *msg, size_t len,
                 const uint8_t sig[static IDENT_SIG_BYTES]);

/* Node id text. */
void ident_id_encode(const uint8_t pk[static IDENT_PK_BYTES], char out[static IDENT_ID_BUF]);
/* Parses a node id (case-insensitive). ERR_FORMAT for wrong length, prefix or alphabet;
 * ERR_CRYPTO for a checksum mismatch (a typo). */
int ident_id_decode(const char *text, size_t len, uint8_t pk_out[static IDENT_PK_BYTES]);
/* Short display form: the prefix and the first 8 base32 characters ("ap" + 8). */
void ident_id_short(const uint8_t pk[static IDENT_PK_BYTES], char out[static 11]);

#endif
