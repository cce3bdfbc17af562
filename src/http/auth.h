/* http/auth — bearer tokens for the local API ("no unauthenticated port, ever").
 *
 * A token is "apy_" + 43 base64url characters (32 random bytes). It is shown once, at
 * creation; the database keeps only BLAKE2b-256(token) with an id, a label and a
 * revoked flag, so a copy of the database does not leak working tokens.
 *
 * The node's loop thread owns the table (auth_create / auth_revoke / auth_load). HTTP
 * threads check requests against an in-memory snapshot (auth_check), guarded by a mutex
 * and refreshed by the loop thread after every change. */
#ifndef APIARY_HTTP_AUTH_H
#define APIARY_HTTP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

#define AUTH_TOKEN_LEN 47 /* "apy_" + 43 */
#define AUTH_TOKEN_BUF (AUTH_TOKEN_LEN + 1)
#define AUTH_MAX_TOKENS 1024
#define AUTH_LABEL_MAX 64

extern const char auth_schema_v1[];
extern const char auth_schema_v2[]; /* api_tokens.privacy */

typedef struct auth_token_info {
  int64_t id;
  char label[AUTH_LABEL_MAX];
  int64_t created_s;
  int revoked;
  int privacy;              /* privacy/policy's level of requests with this token (0: none set) */
} auth_token_info;

typedef struct auth auth;

int auth_new(auth **out);
void auth_free(auth *a);
/* (Re)loads the snapshot of active token hashes from the database. */
int auth_load(auth *a, store *s);
/* 0 when header (the Authorization header value, may be NULL) carries an active token;
 * ERR_PERM otherwise. Thread-safe. */
int auth_check(auth *a, const char *header);
/* The privacy level (privacy/policy) of the active token in header: 1..3, or 0 when the
 * token has none or is not active. Thread-safe. */
int auth_privacy(auth *a, const char *header);

/* Database operations (loop thread, or the CLI when no node runs). */
int auth_create(store *s, const char *label, char token_out[static AUTH_TOKEN_BUF], int64_t *id_out);
/* The same with a privacy level (0..3) every request with the token gets at least. */
int auth_create_privacy(store *s, const char *label, int privacy, char token_out[static AUTH_TOKEN_BUF],
                        int64_t *id_out);
int auth_revoke(store *s, int64_t id);
int auth_list(store *s, auth_token_info *out, size_t cap);

#endif
