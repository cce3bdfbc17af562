/* privacy/vault — the owner's secrets, encrypted in the node database.
 *
 * Key: master = Argon2id (crypto_pwhash, ALG_ARGON2ID13) of the owner's passphrase with a
 * random 16-byte salt; the limits are stored with the salt (vault_meta), default
 * libsodium's INTERACTIVE (2 passes, 64 MiB: about 0.1-0.3 s, paid once per command or
 * node start). From master, crypto_kdf derives the item key (id 1), the audit key (id 2,
 * privacy/audit) and the check key (id 3); master is wiped at once. The check value, an
 * AEAD of a fixed text under the check key, tells a wrong passphrase apart (ERR_CRYPTO)
 * without touching any item.
 *
 * Items (vault_items): name (plain, for listing), nonce (24 random bytes), ct =
 * XChaCha20-Poly1305-IETF(value) with associated data
 *     "apiary-vault-item-v1" 0 name 0 origin 0 decimal(expires)
 * so a ciphertext cannot be moved to another name and a shared item's origin and expiry
 * cannot be edited. Values are at most VAULT_VALUE_MAX bytes. Plaintext only ever exists
 * in sodium_malloc'd buffers handed to the caller (vault_value_free wipes them); nothing
 * here logs. Shared items (origin = the sending node, expires > 0) are used only through
 * vault_use under their grant, never read by vault_get.
 *
 * Every action appends to the audit chain (privacy/audit) in the same transaction; uses
 * that a grant does not allow are audited as denied. The time is always the caller's
 * (tests inject it). A vault handle borrows its store and belongs to one thread. */
#ifndef APIARY_PRIVACY_VAULT_H
#define APIARY_PRIVACY_VAULT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

#define VAULT_NAME_MAX 128           /* bytes of an item name */
#define VAULT_VALUE_MAX (64 * 1024)  /* bytes of an item value */
#define VAULT_PASS_MAX 1024          /* bytes of a passphrase */
#define VAULT_OWNER "owner"          /* the audit subject of the owner's own commands */

typedef struct vault vault;

/* Migration (append to node/home's list; never edit). */
extern const char vault_schema_v1[];

/* 1 when the store holds a vault, 0 when not, negative on error. */
int vault_exists(store *s);
/* Creates the vault (ERR_EXISTS if one is there) with the given Argon2id limits (0, 0 for
 * the defaults) and opens it. pass borrowed. *out owned (vault_close). */
int vault_create(store *s, const char *pass, size_t pass_len, unsigned long long opslimit, size_t memlimit,
                 int64_t now, vault **out);
/* Opens the vault: ERR_NOTFOUND when there is none, ERR_CRYPTO for a wrong passphrase. */
int vault_open(store *s, const char *pass, size_t pass_len, vault **out);
void vault_close(vault *v); /* wipes the keys; NULL is a no-op */

/* Stores (replace=1: or replaces) an item of the owner. */
int vault_put(vault *v, const char *name, const uint8_t *value, size_t len, int replace, int64_t now);
/* Reads the owner's item into *value_out (owned: vault_value_free). ERR_NOTFOUND, or
 * ERR_PERM for a shared item (only vault_use opens those). */
int vault_get(vault *v, const char *name, int64_t now, uint8_t **value_out, size_t *len_out);
/* Uses item on behalf of subject for purpose: allowed only under a live grant (and, for a
 * shared item, before its expiry). Audited either way. value_out may be NULL (a check).
 * ERR_NOTFOUND / ERR_EXPIRED / ERR_PERM when refused. */
int vault_use(vault *v, const char *item, const char *subject, const char *purpose, int64_t now,
              uint8_t **value_out, size_t *len_out);
/* Removes an item and revokes its grants. */
int vault_rm(vault *v, const char *name, int64_t now);
/* Items as a JSON array of {name, size, origin, expires, created, updated}. Owned. */
int vault_list(vault *v, json_t **out);
/* Grants (audited): item must exist. */
int vault_grant(vault *v, const char *item, const char *subject, const char *purpose, int64_t expires, int64_t now,
                int64_t *id_out);
int vault_revoke(vault *v, int64_t grant_id, int64_t now);
/* Imports a shared item from node origin (text id) under its embedded grant. */
int vault_put_shared(vault *v, const char *name, const uint8_t *value, size_t len, const char *origin,
                     const char *purpose, int64_t expires, int64_t now);
/* Appends an audit entry (for actions done outside this module, like share). */
int vault_audit(vault *v, int64_t now, const char *action, const char *item, const char *subject,
                const char *purpose, const char *outcome);
/* Verifies the audit chain (privacy/audit). */
int vault_audit_verify(vault *v, int64_t *count_out, int64_t *bad_seq_out, char *err, size_t err_cap);
/* The audit log as a JSON array (no secrets in it). Owned. */
int vault_audit_list(store *s, json_t **out);
void vault_value_free(uint8_t *value, size_t len);

#endif
