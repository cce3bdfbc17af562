/* crypto/keyfile — secret key files: small text files, mode 0600, never overwritten.
 *
 * Format (one key per file, a comment line then "KIND: HEX"):
 *     # apiary node identity (ed25519 seed). Secret: never share or commit this file.
 *     ed25519-seed: 9d61b19d...
 * or, encrypted at rest under the owner's passphrase (format v1, docs/privacy.md):
 *     KIND.enc: v1 argon2id13 OPSLIMIT MEMLIMIT SALT_HEX NONCE_HEX CT_HEX
 * where key = Argon2id(passphrase, salt, opslimit, memlimit) (crypto_pwhash, 32 bytes)
 * and ct = XChaCha20-Poly1305-IETF(secret) with KIND as associated data.
 * Loading refuses files readable or writable by group/others (ERR_PERM, like ssh), files of
 * another kind, and anything malformed. An encrypted file needs the passphrase given to
 * keyfile_unlock (process-wide, kept in sodium_malloc'd memory until keyfile_lock); without
 * it, or with a wrong one, loading fails with ERR_LOCKED. Secret bytes pass through buffers
 * wiped with sodium_memzero before return. Thread-safe (the passphrase is mutex-guarded). */
#ifndef APIARY_CRYPTO_KEYFILE_H
#define APIARY_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define KEYFILE_PASS_MAX 1024

/* Writes a new key file; ERR_EXISTS if path exists (nothing is touched then). */
int keyfile_save(const char *path, const char *comment, const char *kind, const uint8_t *secret,
                 size_t len);
/* Reads exactly len secret bytes of the given kind into secret_out. */
int keyfile_load(const char *path, const char *kind, uint8_t *secret_out, size_t len);
/* 1 when path holds an encrypted key, 0 a plain one, negative on error. */
int keyfile_is_encrypted(const char *path);
/* Rewrites an existing key file (atomically, same comment) encrypted under pass, or plain
 * when pass is NULL. Loading it first needs the current passphrase (keyfile_unlock) when it
 * is encrypted. opslimit/memlimit 0: libsodium's INTERACTIVE limits. */
int keyfile_reseal(const char *path, const char *kind, size_t len, const char *pass, size_t pass_len,
                   unsigned long long opslimit, size_t memlimit);
/* Sets (copies) or forgets the passphrase used to load encrypted key files. */
int keyfile_unlock(const char *pass, size_t pass_len);
void keyfile_lock(void);

#endif
