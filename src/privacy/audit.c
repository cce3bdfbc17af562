/* privacy/audit — the hash-chained audit log; see audit.h. */
#include "privacy/audit.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static void put_u64(uint8_t b[8], uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
}

static void put_field(crypto_generichash_state *st, const char *s) {
  size_t n = s ? strlen(s) : 0;
  uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
  crypto_generichash_update(st, l, 4);
  if (n) crypto_generichash_update(st, (const uint8_t *)s, n);
}

int audit_hash(const uint8_t key[static AUDIT_KEY_BYTES], const uint8_t prev[static AUDIT_HASH_BYTES],
               const audit_entry *e, uint8_t hash_out[static AUDIT_HASH_BYTES]) {
  crypto_generichash_state st;
  if (crypto_generichash_init(&st, key, AUDIT_KEY_BYTES, AUDIT_HASH_BYTES)) return ERR_CRYPTO;
  static const char tag[] = "apiary-audit-v1";
  uint8_t n[8];
  crypto_generichash_update(&st, prev, AUDIT_HASH_BYTES);
  crypto_generichash_update(&st, (const uint8_t *)tag, sizeof tag - 1);
  put_u64(n, (uint64_t)e->seq);
  crypto_generichash_update(&st, n, 8);
  put_u64(n, (uint64_t)e->time);
  crypto_generichash_update(&st, n, 8);
  put_field(&st, e->action);
  put_field(&st, e->item);
  put_field(&st, e->subject);
  put_field(&st, e->purpose);
  put_field(&st, e->outcome);
  crypto_generichash_final(&st, hash_out, AUDIT_HASH_BYTES);
  return 0;
}

static int check_len(const char *s) { return s && strlen(s) > AUDIT_FIELD_MAX ? ERR_TOOBIG : 0; }

int audit_append(store *s, const uint8_t key[static AUDIT_KEY_BYTES], const audit_entry *e) {
  if (check_len(e->action) || check_len(e->item) || check_len(e->subject) || check_len(e->purpose) ||
      check_len(e->outcome))
    return ERR_TOOBIG;
  sqlite3 *db = store_db(s);
  int own = !store_in_txn(s), rc;
  if (own && (rc = store_begin(s))) return rc;
  audit_entry x = *e;
  uint8_t prev[AUDIT_HASH_BYTES] = {0}, h[AUDIT_HASH_BYTES];
  sqlite3_stmt *st = NULL;
  rc = ERR_STORE;
  if (sqlite3_prepare_v2(db, "SELECT seq, hash FROM vault_audit ORDER BY seq DESC LIMIT 1", -1, &st, NULL)) goto fail;
  x.seq = 1;
  int r = sqlite3_step(st);
  if (r == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 1) != AUDIT_HASH_BYTES) { rc = ERR_FORMAT; goto fail; }
    x.seq = sqlite3_column_int64(st, 0) + 1;
    memcpy(prev, sqlite3_column_blob(st, 1), AUDIT_HASH_BYTES);
  } else if (r != SQLITE_DONE) {
    goto fail;
  }
  sqlite3_finalize(st);
  st = NULL;
  if ((rc = audit_hash(key, prev, &x, h))) goto fail;
  rc = ERR_STORE;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO vault_audit(seq, time, action, item, subject, purpose, outcome, prev, hash) "
                         "VALUES (?,?,?,?,?,?,?,?,?)",
                         -1, &st, NULL))
    goto fail;
  sqlite3_bind_int64(st, 1, x.seq);
  sqlite3_bind_int64(st, 2, x.time);
  sqlite3_bind_text(st, 3, x.action ? x.action : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, x.item ? x.item : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, x.subject ? x.subject : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, x.purpose ? x.purpose : "", -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 7, x.outcome ? x.outcome : "", -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 8, prev, AUDIT_HASH_BYTES, SQLITE_STATIC);
  sqlite3_bind_blob(st, 9, h, AUDIT_HASH_BYTES, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) goto fail;
  sqlite3_finalize(st);
  st = NULL;
  if (sqlite3_prepare_v2(db, "UPDATE vault_meta SET audit_seq = ?, audit_head = ? WHERE id = 1", -1, &st, NULL))
    goto fail;
  sqlite3_bind_int64(st, 1, x.seq);
  sqlite3_bind_blob(st, 2, h, AUDIT_HASH_BYTES, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) goto fail;
  sqlite3_finalize(st);
  st = NULL;
  if (own && (rc = store_commit(s))) return rc;
  return 0;
fail:
  sqlite3_finalize(st);
  if (own) store_rollback(s);
  return rc;
}

static const char *col_text(sqlite3_stmt *st, int i) {
  const char *t = (const char *)sqlite3_column_text(st, i);
  return t ? t : "";
}

int audit_verify(store *s, const uint8_t key[static AUDIT_KEY_BYTES], int64_t *count_out,
                 int64_t *bad_seq_out, char *err, size_t err_cap) {
  sqlite3 *db = store_db(s);
  sqlite3_stmt *st = NULL;
  uint8_t prev[AUDIT_HASH_BYTES] = {0}, h[AUDIT_HASH_BYTES];
  int64_t expect = 1, head_seq = 0;
  uint8_t head[AUDIT_HASH_BYTES] = {0};
  int rc = ERR_STORE;
  *count_out = 0;
  *bad_seq_out = 0;
  if (sqlite3_prepare_v2(db, "SELECT audit_seq, audit_head FROM vault_meta WHERE id = 1", -1, &st, NULL)) goto done;
  if (sqlite3_step(st) == SQLITE_ROW) {
    head_seq = sqlite3_column_int64(st, 0);
    if (sqlite3_column_bytes(st, 1) == AUDIT_HASH_BYTES) memcpy(head, sqlite3_column_blob(st, 1), AUDIT_HASH_BYTES);
  }
  sqlite3_finalize(st);
  if (sqlite3_prepare_v2(db,
                         "SELECT seq, time, action, item, subject, purpose, outcome, prev, hash FROM vault_audit "
                         "ORDER BY rowid",
                         -1, &st, NULL))
    goto done;
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    audit_entry e = {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), col_text(st, 2), col_text(st, 3),
                     col_text(st, 4), col_text(st, 5), col_text(st, 6)};
    rc = ERR_CRYPTO;
    *bad_seq_out = e.seq;
    if (e.seq != expect) {
      err_set(err, err_cap, rc, "entry %lld: expected seq %lld (a row was deleted, inserted or moved)",
              (long long)e.seq, (long long)expect);
      goto done;
    }
    if (sqlite3_column_bytes(st, 7) != AUDIT_HASH_BYTES || sqlite3_column_bytes(st, 8) != AUDIT_HASH_BYTES ||
        sodium_memcmp(sqlite3_column_blob(st, 7), prev, AUDIT_HASH_BYTES)) {
      err_set(err, err_cap, rc, "entry %lld: does not link to the entry before it", (long long)e.seq);
      goto done;
    }
    audit_hash(key, prev, &e, h);
    if (sodium_memcmp(sqlite3_column_blob(st, 8), h, AUDIT_HASH_BYTES)) {
      err_set(err, err_cap, rc, "entry %lld: its hash does not match its contents (edited)", (long long)e.seq);
      goto done;
    }
    memcpy(prev, h, AUDIT_HASH_BYTES);
    expect++;
  }
  if (r != SQLITE_DONE) { rc = ERR_STORE; goto done; }
  *count_out = expect - 1;
  if (head_seq != expect - 1 || (head_seq && sodium_memcmp(head, prev, AUDIT_HASH_BYTES))) {
    rc = ERR_CRYPTO;
    *bad_seq_out = expect;
    err_set(err, err_cap, rc, "the log ends at entry %lld but the recorded head is entry %lld (entries were cut)",
            (long long)(expect - 1), (long long)head_seq);
    goto done;
  }
  *bad_seq_out = 0;
  rc = 0;
done:
  sqlite3_finalize(st);
  return rc;
}
