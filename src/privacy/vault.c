/* privacy/vault — encrypted items, grants and their audit; see vault.h. */
#include "privacy/vault.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "privacy/audit.h"
#include "privacy/grant.h"

const char vault_schema_v1[] =
    "CREATE TABLE vault_meta (id INTEGER PRIMARY KEY CHECK (id = 1), salt BLOB NOT NULL, opslimit INTEGER NOT NULL,"
    " memlimit INTEGER NOT NULL, check_nonce BLOB NOT NULL, check_ct BLOB NOT NULL, created INTEGER NOT NULL,"
    " audit_seq INTEGER NOT NULL DEFAULT 0, audit_head BLOB) STRICT;"
    "CREATE TABLE vault_items (name TEXT PRIMARY KEY, nonce BLOB NOT NULL, ct BLOB NOT NULL, size INTEGER NOT NULL,"
    " origin TEXT NOT NULL DEFAULT '', expires INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL) STRICT;"
    "CREATE TABLE vault_grants (id INTEGER PRIMARY KEY, item TEXT NOT NULL, subject TEXT NOT NULL,"
    " purpose TEXT NOT NULL, expires INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL) STRICT;"
    "CREATE INDEX vault_grants_item ON vault_grants(item);"
    "CREATE TABLE vault_audit (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, action TEXT NOT NULL,"
    " item TEXT NOT NULL, subject TEXT NOT NULL, purpose TEXT NOT NULL, outcome TEXT NOT NULL,"
    " prev BLOB NOT NULL, hash BLOB NOT NULL) STRICT;";

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KDF_CTX "apvault_"
#define CHECK_TEXT "apiary-vault-check-v1"
#define MEMLIMIT_CAP ((size_t)1 << 30) /* refuse stored limits above 1 GiB (an edited row) */
#define OPSLIMIT_CAP 16ULL

struct vault {
  store *s;      /* borrowed */
  uint8_t *keys; /* sodium_malloc: item key || audit key (2 * 32), read-only between uses */
};

static uint8_t *item_key(vault *v) { return v->keys; }
static uint8_t *audit_key(vault *v) { return v->keys + KEY_BYTES; }

int vault_exists(store *s) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT 1 FROM vault_meta WHERE id = 1", -1, &st, NULL)) return ERR_STORE;
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  return r == SQLITE_ROW ? 1 : r == SQLITE_DONE ? 0 : ERR_STORE;
}

/* Derives item and audit keys into a new vault and the check key into check (32). */
static int derive(store *s, const char *pass, size_t pass_len, const uint8_t salt[crypto_pwhash_SALTBYTES],
                  unsigned long long ops, size_t mem, vault **out, uint8_t check[KEY_BYTES]) {
  if (!pass || pass_len == 0 || pass_len > VAULT_PASS_MAX) return ERR_INVAL;
  if (sodium_init() < 0) return ERR_CRYPTO;
  if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > OPSLIMIT_CAP || mem < crypto_pwhash_MEMLIMIT_MIN ||
      mem > MEMLIMIT_CAP)
    return ERR_RANGE;
  vault *v = calloc(1, sizeof *v);
  uint8_t *master = sodium_malloc(KEY_BYTES);
  if (!v || !master || !(v->keys = sodium_malloc(2 * KEY_BYTES))) {
    sodium_free(master);
    vault_close(v);
    return ERR_NOMEM;
  }
  v->s = s;
  int rc = crypto_pwhash(master, KEY_BYTES, pass, pass_len, salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13)
               ? ERR_NOMEM
               : 0;
  if (!rc) {
    crypto_kdf_derive_from_key(item_key(v), KEY_BYTES, 1, KDF_CTX, master);
    crypto_kdf_derive_from_key(audit_key(v), KEY_BYTES, 2, KDF_CTX, master);
    crypto_kdf_derive_from_key(check, KEY_BYTES, 3, KDF_CTX, master);
    sodium_mprotect_readonly(v->keys);
  }
  sodium_free(master);
  if (rc) { vault_close(v); return rc; }
  *out = v;
  return 0;
}

int vault_create(store *s, const char *pass, size_t pass_len, unsigned long long opslimit, size_t memlimit,
                 int64_t now, vault **out) {
  if (!opslimit) opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  if (!memlimit) memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  int rc = vault_exists(s);
  if (rc) return rc < 0 ? rc : ERR_EXISTS;
  uint8_t salt[crypto_pwhash_SALTBYTES], nonce[NONCE_BYTES], check[KEY_BYTES];
  uint8_t ct[sizeof CHECK_TEXT - 1 + ABYTES];
  randombytes_buf(salt, sizeof salt);
  randombytes_buf(nonce, sizeof nonce);
  vault *v = NULL;
  if ((rc = derive(s, pass, pass_len, salt, opslimit, memlimit, &v, check))) return rc;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, (const uint8_t *)CHECK_TEXT, sizeof CHECK_TEXT - 1, NULL, 0,
                                             NULL, nonce, check);
  sodium_memzero(check, sizeof check);
  sqlite3_stmt *st;
  rc = ERR_STORE;
  if (store_begin(s)) goto fail;
  if (sqlite3_prepare_v2(store_db(s),
                         "INSERT INTO vault_meta(id, salt, opslimit, memlimit, check_nonce, check_ct, created) "
                         "VALUES (1,?,?,?,?,?,?)",
                         -1, &st, NULL))
    goto fail_txn;
  sqlite3_bind_blob(st, 1, salt, sizeof salt, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)opslimit);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)memlimit);
  sqlite3_bind_blob(st, 4, nonce, sizeof nonce, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, ct, sizeof ct, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, now);
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) goto fail_txn;
  if ((rc = audit_append(s, audit_key(v), &(audit_entry){0, now, "init", "", VAULT_OWNER, "", "ok"})))
    goto fail_txn;
  if ((rc = store_commit(s))) goto fail;
  *out = v;
  return 0;
fail_txn:
  store_rollback(s);
fail:
  vault_close(v);
  return rc;
}

int vault_open(store *s, const char *pass, size_t pass_len, vault **out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "SELECT salt, opslimit, memlimit, check_nonce, check_ct FROM vault_meta WHERE id = 1", -1,
                         &st, NULL))
    return ERR_STORE;
  int r = sqlite3_step(st), rc;
  uint8_t salt[crypto_pwhash_SALTBYTES], nonce[NONCE_BYTES], ct[sizeof CHECK_TEXT - 1 + ABYTES];
  uint8_t check[KEY_BYTES], text[sizeof CHECK_TEXT - 1];
  if (r != SQLITE_ROW) { sqlite3_finalize(st); return r == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE; }
  if (sqlite3_column_bytes(st, 0) != sizeof salt || sqlite3_column_bytes(st, 3) != sizeof nonce ||
      sqlite3_column_bytes(st, 4) != sizeof ct) {
    sqlite3_finalize(st);
    return ERR_FORMAT;
  }
  memcpy(salt, sqlite3_column_blob(st, 0), sizeof salt);
  memcpy(nonce, sqlite3_column_blob(st, 3), sizeof nonce);
  memcpy(ct, sqlite3_column_blob(st, 4), sizeof ct);
  sqlite3_int64 ops = sqlite3_column_int64(st, 1), mem = sqlite3_column_int64(st, 2);
  sqlite3_finalize(st);
  if (ops <= 0 || mem <= 0) return ERR_RANGE;
  vault *v;
  if ((rc = derive(s, pass, pass_len, salt, (unsigned long long)ops, (size_t)mem, &v, check))) return rc;
  rc = crypto_aead_xchacha20poly1305_ietf_decrypt(text, NULL, NULL, ct, sizeof ct, NULL, 0, nonce, check) ||
               sodium_memcmp(text, CHECK_TEXT, sizeof text)
           ? ERR_CRYPTO
           : 0;
  sodium_memzero(check, sizeof check);
  if (rc) { vault_close(v); return rc; }
  *out = v;
  return 0;
}

void vault_close(vault *v) {
  if (!v) return;
  sodium_free(v->keys); /* sodium_free wipes */
  free(v);
}

void vault_value_free(uint8_t *value, size_t len) {
  (void)len;
  sodium_free(value);
}

/* Associated data binding a ciphertext to its row. */
static int item_ad(const char *name, const char *origin, int64_t expires, char *ad, size_t cap, size_t *len_out) {
  int n = snprintf(ad, cap, "apiary-vault-item-v1%c%s%c%s%c%lld", 0, name, 0, origin, 0, (long long)expires);
  if (n < 0 || (size_t)n >= cap) return ERR_TOOBIG;
  *len_out = (size_t)n;
  return 0;
}

static int bad_name(const char *name) {
  if (!name || !*name || strlen(name) > VAULT_NAME_MAX) return 1;
  for (const char *p = name; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) return 1;
  return 0;
}

int vault_audit(vault *v, int64_t now, const char *action, const char *item, const char *subject,
                const char *purpose, const char *outcome) {
  return audit_append(v->s, audit_key(v), &(audit_entry){0, now, action, item, subject, purpose, outcome});
}

static int put_row(vault *v, const char *name, const uint8_t *value, size_t len, int replace, const char *origin,
                   int64_t expires, int64_t now) {
  if (bad_name(name)) return ERR_INVAL;
  if (len > VAULT_VALUE_MAX) return ERR_TOOBIG;
  char ad[VAULT_NAME_MAX + 256];
  size_t ad_len;
  int rc = item_ad(name, origin, expires, ad, sizeof ad, &ad_len);
  if (rc) return rc;
  uint8_t nonce[NONCE_BYTES];
  uint8_t *ct = malloc(len + ABYTES);
  if (!ct) return ERR_NOMEM;
  randombytes_buf(nonce, sizeof nonce);
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, value, len, (const uint8_t *)ad, ad_len, NULL, nonce,
                                             item_key(v));
  sqlite3_stmt *st = NULL;
  if ((rc = store_begin(v->s))) { free(ct); return rc; }
  rc = ERR_STORE;
  const char *sql = replace ? "INSERT INTO vault_items(name, nonce, ct, size, origin, expires, created, updated) "
                              "VALUES (?1,?2,?3,?4,?5,?6,?7,?7) ON CONFLICT(name) DO UPDATE SET nonce = ?2, ct = ?3,"
                              " size = ?4, origin = ?5, expires = ?6, updated = ?7"
                            : "INSERT INTO vault_items(name, nonce, ct, size, origin, expires, created, updated) "
                              "VALUES (?1,?2,?3,?4,?5,?6,?7,?7)";
  if (sqlite3_prepare_v2(store_db(v->s), sql, -1, &st, NULL)) goto fail;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, nonce, sizeof nonce, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, ct, (int)(len + ABYTES), SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
  sqlite3_bind_text(st, 5, origin, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, expires);
  sqlite3_bind_int64(st, 7, now);
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  if (r == SQLITE_CONSTRAINT) { rc = ERR_EXISTS; goto fail; }
  if (r != SQLITE_DONE) goto fail;
  if ((rc = vault_audit(v, now, *origin ? "import" : "put", name, *origin ? origin : VAULT_OWNER, "", "ok")))
    goto fail;
  rc = store_commit(v->s);
  free(ct);
  return rc;
fail:
  store_rollback(v->s);
  free(ct);
  return rc;
}

int vault_put(vault *v, const char *name, const uint8_t *value, size_t len, int replace, int64_t now) {
  return put_row(v, name, value, len, replace, "", 0, now);
}

/* Reads and decrypts an item; origin/expires out (origin cap VAULT_NAME_MAX+1). */
static int read_item(vault *v, const char *name, char *origin, int64_t *expires, uint8_t **value_out,
                     size_t *len_out) {
  if (bad_name(name)) return ERR_INVAL;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(v->s), "SELECT nonce, ct, origin, expires FROM vault_items WHERE name = ?", -1, &st,
                         NULL))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int r = sqlite3_step(st), rc = 0;
  uint8_t *pt = NULL;
  size_t ct_len = 0;
  if (r != SQLITE_ROW) { rc = r == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE; goto done; }
  ct_len = (size_t)sqlite3_column_bytes(st, 1);
  const char *o = (const char *)sqlite3_column_text(st, 2);
  snprintf(origin, VAULT_NAME_MAX + 1, "%s", o ? o : "");
  *expires = sqlite3_column_int64(st, 3);
  if (sqlite3_column_bytes(st, 0) != NONCE_BYTES || ct_len < ABYTES || ct_len > VAULT_VALUE_MAX + ABYTES) {
    rc = ERR_FORMAT;
    goto done;
  }
  if (!value_out) goto done;
  char ad[VAULT_NAME_MAX + 256];
  size_t ad_len;
  if ((rc = item_ad(name, origin, *expires, ad, sizeof ad, &ad_len))) goto done;
  if (!(pt = sodium_malloc(ct_len - ABYTES + 1))) { rc = ERR_NOMEM; goto done; }
  unsigned long long n;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &n, NULL, sqlite3_column_blob(st, 1), ct_len,
                                                 (const uint8_t *)ad, ad_len, sqlite3_column_blob(st, 0),
                                                 item_key(v))) {
    sodium_free(pt);
    rc = ERR_CRYPTO;
    goto done;
  }
  pt[n] = 0; /* a NUL after the value, for text callers; not counted */
  *value_out = pt;
  *len_out = (size_t)n;
done:
  sqlite3_finalize(st);
  return rc;
}

int vault_get(vault *v, const char *name, int64_t now, uint8_t **value_out, size_t *len_out) {
  char origin[VAULT_NAME_MAX + 1] = "";
  int64_t expires = 0;
  uint8_t *val = NULL;
  size_t len = 0;
  int rc = read_item(v, name, origin, &expires, &val, &len);
  if (!rc && *origin) {
    vault_value_free(val, len);
    rc = ERR_PERM;
  }
  int arc = vault_audit(v, now, "get", bad_name(name) ? "" : name, VAULT_OWNER, "",
                        rc ? (rc == ERR_PERM ? "denied: shared item (use it under its grant)" : err_str(rc)) : "ok");
  if (!rc && arc) {
    vault_value_free(val, len); /* no value without its audit entry */
    return arc;
  }
  if (rc) return rc;
  *value_out = val;
  *len_out = len;
  return 0;
}

int vault_use(vault *v, const char *item, const char *subject, const char *purpose, int64_t now,
              uint8_t **value_out, size_t *len_out) {
  if (bad_name(item) || !subject || !*subject || strlen(subject) > GRANT_TEXT_MAX || !purpose || !*purpose ||
      strlen(purpose) > GRANT_TEXT_MAX)
    return ERR_INVAL;
  char origin[VAULT_NAME_MAX + 1] = "";
  int64_t expires = 0;
  uint8_t *val = NULL;
  size_t len = 0;
  const char *why = "ok";
  int rc = grant_check(v->s, item, subject, purpose, now);
  if (rc == ERR_NOTFOUND) why = "denied: no grant";
  else if (rc == ERR_EXPIRED) why = "denied: grant expired or revoked";
  else if (rc) why = "error";
  if (!rc) {
    rc = read_item(v, item, origin, &expires, value_out ? &val : NULL, &len);
    if (rc == ERR_NOTFOUND) why = "denied: no such item";
    else if (rc) why = "error: item unreadable";
    else if (expires && now >= expires) {
      rc = ERR_EXPIRED;
      why = "denied: shared item expired";
    }
  }
  int arc = vault_audit(v, now, "use", item, subject, purpose, why);
  if (rc || arc) {
    if (val) vault_value_free(val, len);
    return rc ? rc : arc;
  }
  if (value_out) {
    *value_out = val;
    *len_out = len;
  }
  return 0;
}

int vault_rm(vault *v, const char *name, int64_t now) {
  if (bad_name(name)) return ERR_INVAL;
  int rc = store_begin(v->s);
  if (rc) return rc;
  sqlite3_stmt *st;
  rc = ERR_STORE;
  if (sqlite3_prepare_v2(store_db(v->s), "DELETE FROM vault_items WHERE name = ?", -1, &st, NULL)) goto fail;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int r = sqlite3_step(st);
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) goto fail;
  if (sqlite3_changes(store_db(v->s)) == 0) { rc = ERR_NOTFOUND; goto fail; }
  if ((rc = grant_revoke_item(v->s, name, now))) goto fail;
  if ((rc = vault_audit(v, now, "rm", name, VAULT_OWNER, "", "ok"))) goto fail;
  return store_commit(v->s);
fail:
  store_rollback(v->s);
  return rc;
}

int vault_list(vault *v, json_t **out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(v->s),
                         "SELECT name, size, origin, expires, created, updated FROM vault_items ORDER BY name", -1,
                         &st, NULL))
    return ERR_STORE;
  json_t *a = json_array();
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW)
    json_array_append_new(a, json_pack("{s:s, s:I, s:s, s:I, s:I, s:I}", "name", (const char *)sqlite3_column_text(st, 0),
                                       "size", (json_int_t)sqlite3_column_int64(st, 1), "origin",
                                       (const char *)sqlite3_column_text(st, 2), "expires",
                                       (json_int_t)sqlite3_column_int64(st, 3), "created",
                                       (json_int_t)sqlite3_column_int64(st, 4), "updated",
                                       (json_int_t)sqlite3_column_int64(st, 5)));
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) { json_decref(a); return ERR_STORE; }
  *out = a;
  return 0;
}

static int do_grant(vault *v, const char *item, const char *subject, const char *purpose, int64_t expires,
                    int64_t now, int64_t *id_out) {
  int rc = store_begin(v->s);
  if (rc) return rc;
  int64_t id = 0;
  char outcome[48];
  if ((rc = grant_add(v->s, item, subject, purpose, expires, now, &id))) goto fail;
  snprintf(outcome, sizeof outcome, "ok: grant %lld until %lld", (long long)id, (long long)expires);
  if ((rc = vault_audit(v, now, "grant", item, subject, purpose, outcome))) goto fail;
  if ((rc = store_commit(v->s))) return rc;
  if (id_out) *id_out = id;
  return 0;
fail:
  store_rollback(v->s);
  return rc;
}

int vault_grant(vault *v, const char *item, const char *subject, const char *purpose, int64_t expires, int64_t now,
                int64_t *id_out) {
  char origin[VAULT_NAME_MAX + 1] = "";
  int64_t e = 0;
  int rc = read_item(v, item, origin, &e, NULL, NULL);
  if (rc) return rc;
  if (*origin) return ERR_PERM; /* a shared item is used only under the grant it came with */
  return do_grant(v, item, subject, purpose, expires, now, id_out);
}

int vault_revoke(vault *v, int64_t grant_id, int64_t now) {
  int rc = store_begin(v->s);
  if (rc) return rc;
  char item[GRANT_TEXT_MAX + 1] = "", outcome[48];
  if ((rc = grant_revoke(v->s, grant_id, now, item))) goto fail;
  snprintf(outcome, sizeof outcome, "ok: grant %lld", (long long)grant_id);
  if ((rc = vault_audit(v, now, "revoke", item, VAULT_OWNER, "", outcome))) goto fail;
  return store_commit(v->s);
fail:
  store_rollback(v->s);
  return rc;
}

int vault_put_shared(vault *v, const char *name, const uint8_t *value, size_t len, const char *origin,
                     const char *purpose, int64_t expires, int64_t now) {
  if (!origin || !*origin || expires <= now) return ERR_INVAL;
  int rc = put_row(v, name, value, len, 0, origin, expires, now);
  if (rc) return rc;
  /* The embedded grant: any local agent, that purpose, until the sender's expiry. */
  if ((rc = do_grant(v, name, GRANT_ANY, purpose, expires, now, NULL))) {
    char o[VAULT_NAME_MAX + 1];
    int64_t e;
    if (read_item(v, name, o, &e, NULL, NULL) == 0) vault_rm(v, name, now); /* no item without its grant */
  }
  return rc;
}

int vault_audit_verify(vault *v, int64_t *count_out, int64_t *bad_seq_out, char *err, size_t err_cap) {
  return audit_verify(v->s, audit_key(v), count_out, bad_seq_out, err, err_cap);
}

int vault_audit_list(store *s, json_t **out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "SELECT seq, time, action, item, subject, purpose, outcome FROM vault_audit ORDER BY seq",
                         -1, &st, NULL))
    return ERR_STORE;
  json_t *a = json_array();
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW)
    json_array_append_new(
        a, json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)sqlite3_column_int64(st, 0), "time",
                     (json_int_t)sqlite3_column_int64(st, 1), "action", (const char *)sqlite3_column_text(st, 2),
                     "item", (const char *)sqlite3_column_text(st, 3), "subject",
                     (const char *)sqlite3_column_text(st, 4), "purpose", (const char *)sqlite3_column_text(st, 5),
                     "outcome", (const char *)sqlite3_column_text(st, 6)));
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) { json_decref(a); return ERR_STORE; }
  *out = a;
  return 0;
}
