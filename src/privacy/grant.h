/* privacy/grant — who may use which vault item, for what, until when.
 *
 * A grant (table vault_grants) says: subject S (an agent name, a peer's node id, or "*"
 * for any local agent) may use item I for purpose P until time T (unix seconds), unless
 * revoked. Grants are rows, never deleted: revoking sets `revoked` (the time), so the
 * history stays. grant_check finds a live grant for (item, subject, purpose) at `now`;
 * the time always comes from the caller, so tests inject it. Deciding and auditing a use
 * is vault_use's job (privacy/vault); this module only keeps the table. Borrowed store,
 * one thread at a time. */
#ifndef APIARY_PRIVACY_GRANT_H
#define APIARY_PRIVACY_GRANT_H

#include <jansson.h>
#include <stdint.h>

#include "core/store.h"

#define GRANT_TEXT_MAX 256 /* bytes of a subject or purpose */
#define GRANT_ANY "*"      /* subject matching any local agent */

/* Adds a grant; *id_out gets its id. ERR_INVAL for empty or oversized texts or an expiry
 * not after now. */
int grant_add(store *s, const char *item, const char *subject, const char *purpose, int64_t expires,
              int64_t now, int64_t *id_out);
/* Revokes grant id at now: ERR_NOTFOUND when there is none, ERR_EXISTS when already revoked.
 * item_out (GRANT_TEXT_MAX, may be NULL) gets its item for the audit log. */
int grant_revoke(store *s, int64_t id, int64_t now, char *item_out);
/* 0 when a live grant allows it; ERR_EXPIRED when grants exist but all expired or were
 * revoked; ERR_NOTFOUND when none matches. */
int grant_check(store *s, const char *item, const char *subject, const char *purpose, int64_t now);
/* Revokes every grant of item (rm). */
int grant_revoke_item(store *s, const char *item, int64_t now);
/* All grants as a JSON array of {id, item, subject, purpose, expires, revoked, created,
 * live}; returns owned. */
int grant_list(store *s, int64_t now, json_t **out);

#endif
