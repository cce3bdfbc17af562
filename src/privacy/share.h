/* privacy/share — a vault item sealed for one other node, with its grant.
 *
 * Envelope (a file, or bytes on a link):
 *     "APVE" | version (1 byte, 1) | recipient Ed25519 pk (32) | sealed
 * where sealed = crypto_box_seal(body) to the recipient's X25519 key, derived from its
 * node id's Ed25519 key (crypto_sign_ed25519_pk_to_curve25519), and
 *     body = sender pk (32) | recipient pk (32) | u64be created | u64be expires |
 *            u16be name_len | name | u16be purpose_len | purpose | u32be value_len | value |
 *            sig (64)
 *     sig  = Ed25519 by the sender over "apiary-vault-share-v1" || body without sig
 * Only the recipient can open it, the signature proves the sender and binds the recipient
 * (it cannot be re-sealed to a third node as if from the sender), and share_open refuses
 * it at or after `expires`. The receiving node imports the value into its own vault under
 * the embedded grant (privacy/vault: vault_put_shared). Parsers take untrusted bytes with
 * hard caps (SHARE_ENVELOPE_MAX, the vault's name/value caps) and are fuzzed
 * (tests/fuzz/fuzz_vault_envelope.c). No I/O; pure functions, thread-safe. */
#ifndef APIARY_PRIVACY_SHARE_H
#define APIARY_PRIVACY_SHARE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/ident.h"
#include "privacy/grant.h"
#include "privacy/vault.h"

#define SHARE_MAGIC "APVE"
#define SHARE_VERSION 1
#define SHARE_HEADER_BYTES (4 + 1 + 32)
#define SHARE_BODY_MAX (32 + 32 + 8 + 8 + 2 + VAULT_NAME_MAX + 2 + GRANT_TEXT_MAX + 4 + VAULT_VALUE_MAX + 64)
#define SHARE_ENVELOPE_MAX (SHARE_HEADER_BYTES + 48 + SHARE_BODY_MAX)

typedef struct share_item {
  uint8_t sender[IDENT_PK_BYTES];           /* who sealed it (verified) */
  uint8_t recipient[IDENT_PK_BYTES];        /* who may open it */
  int64_t created, expires;                 /* unix seconds */
  char name[VAULT_NAME_MAX + 1];            /* item name */
  char purpose[GRANT_TEXT_MAX + 1];         /* the grant's purpose */
  uint8_t *value;                           /* sodium_malloc'd, owned; share_item_deinit wipes */
  size_t value_len;
} share_item;

/* Seals value for the node `to` (its Ed25519 pk). out gets the envelope (appended). */
int share_seal(const ident *from, const uint8_t to[static IDENT_PK_BYTES], const char *name, const char *purpose,
               int64_t expires, int64_t now, const uint8_t *value, size_t len, buf *out);
/* Checks the header: ERR_FORMAT / ERR_UNSUPPORTED / ERR_TOOBIG; recipient_out (32 bytes)
 * may be NULL. */
int share_parse_header(const uint8_t *env, size_t len, uint8_t *recipient_out);
/* Parses and verifies a body (after unsealing). out owned on success. */
int share_parse_body(const uint8_t *body, size_t len, share_item *out);
/* Opens an envelope with this node's identity at now: ERR_PERM when it is for another
 * node, ERR_CRYPTO when it does not open or verify, ERR_EXPIRED at or after its expiry. */
int share_open(const ident *me, const uint8_t *env, size_t len, int64_t now, share_item *out);
void share_item_deinit(share_item *it); /* wipes; safe on a zeroed item */

#endif
