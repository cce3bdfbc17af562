/* http/auth — API bearer tokens; see auth.h. */
#include "http/auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/err.h"

const char auth_schema_v1[] =
    "CREATE TABLE api_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    "  label TEXT NOT NULL DEFAULT '',"
    "  created INTEGER NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0"
    ") STRICT;";

/* A token may carry a privacy level (privacy/policy: 0 none, 1 allow, 2 redact, 3 local-only). */
const char auth_schema_v2[] =
    "ALTER TABLE api_tokens ADD COLUMN privacy INTEGER NOT NULL DEFAULT 0 CHECK (privacy BETWEEN 0 AND 3);";

typedef struct auth_entry {
  uint8_t hash[32];
  int privacy;
} auth_entry;

struct auth {
  pthread_mutex_t mu;
  auth_entry *tokens;       /* active tokens, sorted by hash for bsearch */
  size_t n;
};

static void token_hash(const char *token, size_t len, uint8_t out[32]) {
  crypto_generichash(out, 32, (const uint8_t *)token, len, (const uint8_t *)"apiary-api-token", 16);
}

int auth_new(auth **out) {
  if (sodium_init() < 0) return ERR_CRYPTO;
  auth *a = calloc(1, sizeof *a);
  if (!a) return ERR_NOMEM;
  pthread_mutex_init(&a->mu, NULL);
  *out = a;
  return 0;
}

void auth_free(auth *a) {
  if (!a) return;
  pthread_mutex_destroy(&a->mu);
  free(a->tokens);
  free(a);
}

static int cmp32(const void *x, const void *y) { return memcmp(x, y, 32); }

int auth_load(auth *a, store *s) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT hash, privacy FROM api_tokens WHERE revoked = 0 LIMIT ?", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, AUTH_MAX_TOKENS);
  auth_entry *h = calloc(AUTH_MAX_TOKENS, sizeof *h);
  if (!h) { sqlite3_finalize(st); return ERR_NOMEM; }
  size_t n = 0;
  while (sqlite3_step(st) == SQLITE_ROW)
    if (sqlite3_column_bytes(st, 0) == 32) {
      memcpy(h[n].hash, sqlite3_column_blob(st, 0), 32);
      h[n++].privacy = sqlite3_column_int(st, 1);
    }
  sqlite3_finalize(st);
  qsort(h, n, sizeof *h, cmp32);
  pthread_mutex_lock(&a->mu);
  free(a->tokens);
  a->tokens = h;
  a->n = n;
  pthread_mutex_unlock(&a->mu);
  return 0;
}

/* The active token in header: its entry copied to out, 0; or ERR_PERM. */
static int find(auth *a, const char *header, auth_entry *out) {
  if (!header) return ERR_PERM;
  if (strncasecmp(header, "Bearer ", 7)) return ERR_PERM;
  const char *tok = header + 7;
  while (*tok == ' ') tok++;
  size_t len = strlen(tok);
  while (len && tok[len - 1] == ' ') len--;
  if (len != AUTH_TOKEN_LEN) return ERR_PERM;
  auth_entry key;
  token_hash(tok, len, key.hash);
  pthread_mutex_lock(&a->mu);
  /* Hashes are not secret (only preimages are), so an ordinary search is fine. */
  const auth_entry *e = a->n ? bsearch(&key, a->tokens, a->n, sizeof key, cmp32) : NULL;
  if (e) *out = *e;
  pthread_mutex_unlock(&a->mu);
  return e ? 0 : ERR_PERM;
}

int auth_check(auth *a, const char *header) {
  auth_entry e;
  return find(a, header, &e);
}

int auth_privacy(auth *a, const char *header) {
  auth_entry e;
  return find(a, header, &e) ? 0 : e.privacy;
}

int auth_create(store *s, const char *label, char token_out[static AUTH_TOKEN_BUF], int64_t *id_out) {
  return auth_create_privacy(s, label, 0, token_out, id_out);
}

int auth_create_privacy(store *s, const char *label, int privacy, char token_out[static AUTH_TOKEN_BUF],
                        int64_t *id_out) {
  if (sodium_init() < 0) return ERR_CRYPTO;
  if (label && strlen(label) >= AUTH_LABEL_MAX) return ERR_TOOBIG;
  if (privacy < 0 || privacy > 3) return ERR_INVAL;
  uint8_t raw[32];
  randombytes_buf(raw, sizeof raw);
  memcpy(token_out, "apy_", 4);
  sodium_bin2base64(token_out + 4, AUTH_TOKEN_BUF - 4, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  uint8_t h[32];
  token_hash(token_out, AUTH_TOKEN_LEN, h);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "INSERT INTO api_tokens(hash, label, created, privacy) VALUES (?, ?, ?, ?)", -1,
                         &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, h, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, label ? label : "", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
  sqlite3_bind_int(st, 4, privacy);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc && id_out) *id_out = sqlite3_last_insert_rowid(store_db(s));
  if (rc) sodium_memzero(token_out, AUTH_TOKEN_BUF);
  return rc;
}

int auth_revoke(store *s, int64_t id) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE api_tokens SET revoked = 1 WHERE id = ?", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc && sqlite3_changes(store_db(s)) == 0) rc = ERR_NOTFOUND;
  return rc;
}

int auth_list(store *s, auth_token_info *out, size_t cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT id, label, created, revoked, privacy FROM api_tokens ORDER BY id LIMIT ?", -1,
                         &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)cap);
  size_t n = 0;
  while (n < cap && sqlite3_step(st) == SQLITE_ROW) {
    out[n].id = sqlite3_column_int64(st, 0);
    snprintf(out[n].label, sizeof out[n].label, "%s", (const char *)sqlite3_column_text(st, 1));
    out[n].created_s = sqlite3_column_int64(st, 2);
    out[n].revoked = sqlite3_column_int(st, 3);
    out[n].privacy = sqlite3_column_int(st, 4);
    n++;
  }
  sqlite3_finalize(st);
  return (int)n;
}
