/* privacy/audit — the vault's audit log: an append-only, hash-chained table.
 *
 * Every vault action (put, get, rm, grant, revoke, use allowed or denied, share, import)
 * appends one row of vault_audit: seq (1, 2, ...), time, action, item, subject, purpose,
 * outcome, prev (the previous row's hash; 32 zero bytes for seq 1) and hash, where
 *     hash = BLAKE2b-256 keyed with the audit key (crypto_generichash),
 *            over prev || canonical(entry)
 *     canonical = "apiary-audit-v1" || u64be(seq) || u64be(time) || for each of action,
 *                 item, subject, purpose, outcome: u32be(len) || bytes
 * The audit key is derived from the vault key (privacy/vault), so a chain can only be
 * written or re-written by someone holding the passphrase. vault_meta keeps the head
 * (last seq and hash) so a truncated tail is detected too. audit_verify recomputes the
 * whole chain and names the first row that does not match: an edited, deleted, inserted
 * or reordered row breaks it. Functions act on a borrowed store; one thread at a time. */
#ifndef APIARY_PRIVACY_AUDIT_H
#define APIARY_PRIVACY_AUDIT_H

#include <stdint.h>

#include "core/store.h"

#define AUDIT_HASH_BYTES 32
#define AUDIT_KEY_BYTES 32
#define AUDIT_FIELD_MAX 1024 /* bytes per text field */

typedef struct audit_entry {
  int64_t seq;
  int64_t time;
  const char *action;  /* put, get, rm, grant, revoke, use, share, import */
  const char *item;
  const char *subject; /* "owner", an agent name or a node id */
  const char *purpose;
  const char *outcome; /* "ok", "denied: ...", ... */
} audit_entry;

/* Appends e (seq is assigned) in the caller's transaction or its own. Borrows all. */
int audit_append(store *s, const uint8_t key[static AUDIT_KEY_BYTES], const audit_entry *e);
/* Recomputes the chain. Returns 0 when intact with *count_out rows; ERR_CRYPTO when broken
 * with *bad_seq_out the first bad row's seq (or the head's seq + 1 for a cut tail) and a
 * reason in err. */
int audit_verify(store *s, const uint8_t key[static AUDIT_KEY_BYTES], int64_t *count_out,
                 int64_t *bad_seq_out, char *err, size_t err_cap);
/* The canonical hash of one entry after prev (exposed for tests). */
int audit_hash(const uint8_t key[static AUDIT_KEY_BYTES], const uint8_t prev[static AUDIT_HASH_BYTES],
               const audit_entry *e, uint8_t hash_out[static AUDIT_HASH_BYTES]);

#endif
