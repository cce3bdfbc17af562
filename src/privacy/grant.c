/* privacy/grant — vault grants; see grant.h. */
#include "privacy/grant.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

static int bad_text(const char *s) { return !s || !*s || strlen(s) > GRANT_TEXT_MAX; }

int grant_add(store *s, const char *item, const char *subject, const char *purpose, int64_t expires,
              int64_t now, int64_t *id_out) {
  if (bad_text(item) || bad_text(subject) || bad_text(purpose) || expires <= now) return ERR_INVAL;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "INSERT INTO vault_grants(item, subject, purpose, expires, revoked, created) "
                         "VALUES (?,?,?,?,0,?)",
                         -1, &st, NULL))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, item, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, purpose, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, expires);
  sqlite3_bind_int64(st, 5, now);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc && id_out) *id_out = sqlite3_last_insert_rowid(store_db(s));
  return rc;
}

int grant_revoke(store *s, int64_t id, int64_t now, char *item_out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT item, revoked FROM vault_grants WHERE id = ?", -1, &st, NULL))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, id);
  int r = sqlite3_step(st), rc = 0;
  if (r != SQLITE_ROW) rc = r == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE;
  else if (sqlite3_column_int64(st, 1)) rc = ERR_EXISTS;
  else if (item_out) {
    const char *t = (const char *)sqlite3_column_text(st, 0);
    snprintf(item_out, GRANT_TEXT_MAX + 1, "%s", t ? t : "");
  }
  sqlite3_finalize(st);
  if (rc) return rc;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE vault_grants SET revoked = ? WHERE id = ?", -1, &st, NULL))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, now > 0 ? now : 1);
  sqlite3_bind_int64(st, 2, id);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int grant_revoke_item(store *s, const char *item, int64_t now) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE vault_grants SET revoked = ? WHERE item = ? AND revoked = 0", -1,
                         &st, NULL))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, now > 0 ? now : 1);
  sqlite3_bind_text(st, 2, item, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int grant_check(store *s, const char *item, const char *subject, const char *purpose, int64_t now) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "SELECT expires, revoked FROM vault_grants WHERE item = ? AND purpose = ? AND "
                         "(subject = ? OR subject = '" GRANT_ANY "')",
                         -1, &st, NULL))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, item, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, purpose, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, subject, -1, SQLITE_STATIC);
  int rc = ERR_NOTFOUND, r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    if (!sqlite3_column_int64(st, 1) && now < sqlite3_column_int64(st, 0)) { rc = 0; break; }
    rc = ERR_EXPIRED;
  }
  if (r != SQLITE_ROW && r != SQLITE_DONE) rc = ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int grant_list(store *s, int64_t now, json_t **out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "SELECT id, item, subject, purpose, expires, revoked, created FROM vault_grants ORDER BY id",
                         -1, &st, NULL))
    return ERR_STORE;
  json_t *a = json_array();
  int r;
  while ((r = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t exp = sqlite3_column_int64(st, 4), rev = sqlite3_column_int64(st, 5);
    json_array_append_new(
        a, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:b}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                     "item", (const char *)sqlite3_column_text(st, 1), "subject",
                     (const char *)sqlite3_column_text(st, 2), "purpose", (const char *)sqlite3_column_text(st, 3),
                     "expires", (json_int_t)exp, "revoked", (json_int_t)rev, "created",
                     (json_int_t)sqlite3_column_int64(st, 6), "live", !rev && now < exp));
  }
  sqlite3_finalize(st);
  if (r != SQLITE_DONE) { json_decref(a); return ERR_STORE; }
  *out = a;
  return 0;
}
