/* crypto/keyfile — secret key files: small text files, mode 0600, never overwritten.
 *
 * Format (one key per file, a comment line then "KIND: HEX"):
 *     # apiary node identity (ed25519 seed). Secret: never share or commit this file.
 *     ed25519-seed: 9d61b19d...
 * Loading refuses files readable or writable by group/others (ERR_PERM, like ssh), files of
 * another kind, and anything malformed. Secret bytes pass through stack buffers that are
 * wiped with sodium_memzero before return. Thread-safe (no shared state). */
#ifndef APIARY_CRYPTO_KEYFILE_H
#define APIARY_CRYPTO_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes a new key file; ERR_EXISTS if path exists (nothing is touched then). */
int keyfile_save(const char *path, const char *comment, const char *kind, const uint8_t *secret,
                 size_t len);
/* Reads exactly len secret bytes of the given kind into secret_out. */
int keyfile_load(const char *path, const char *kind, uint8_t *secret_out, size_t len);

#endif
