/* core/store — SQLite store with user_version migrations; see store.h. */
#include "core/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

struct store {
  sqlite3 *db;     /* owned connection */
  char path[512];  /* the database file, for messages that name the disk */
  char last[256];  /* the error that made a transaction roll back (SQLite forgets it) */
  int last_code;   /* its SQLite result code */
};

static int set_err(char *err, size_t cap, const char *fmt, const char *a, const char *b) {
  if (err && cap) snprintf(err, cap, fmt, a, b);
  return ERR_STORE;
}

int store_open(const char *path, store **out, char *err, size_t err_cap) {
  /* Create the file 0600 ourselves: SQLite would use the umask. Only when it does not
   * exist: closing a descriptor of a file drops every POSIX lock this process holds on it,
   * so an open()/close() of a database another connection in this process already uses
   * would silently unlock that connection (other processes then think nobody has it open,
   * may reset the WAL under it, and it stops seeing their writes). */
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  else if (errno != EEXIST) {
    if (err && err_cap) snprintf(err, err_cap, "cannot open database %s: %m", path);
    return ERR_STORE;
  }
  store *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  snprintf(s->path, sizeof s->path, "%s", path);
  int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    set_err(err, err_cap, "cannot open database %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
    goto fail;
  }
  sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
  static const char setup[] =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
  char *msg = NULL;
  if (sqlite3_exec(s->db, setup, NULL, NULL, &msg) != SQLITE_OK) {
    set_err(err, err_cap, "cannot set up database %s: %s", path, msg ? msg : "unknown error");
    sqlite3_free(msg);
    goto fail;
  }
  /* A quick read proves the file is a database (not some other file at that path). */
  int v;
  if (store_version(s, &v)) {
    set_err(err, err_cap, "%s is not a usable SQLite database: %s", path, sqlite3_errmsg(s->db));
    goto fail;
  }
  *out = s;
  return 0;
fail:
  sqlite3_close(s->db);
  free(s);
  return ERR_STORE;
}

void store_close(store *s) {
  if (!s) return;
  sqlite3_close(s->db);
  free(s);
}

sqlite3 *store_db(store *s) { return s->db; }
const char *store_path(const store *s) { return s->path; }

const char *store_errmsg(store *s) {
  if (sqlite3_errcode(s->db) == SQLITE_OK && s->last[0]) return s->last;
  return sqlite3_errmsg(s->db);
}

int store_full(store *s) {
  int c = sqlite3_errcode(s->db) != SQLITE_OK ? sqlite3_errcode(s->db) : s->last_code;
  return (c & 0xff) == SQLITE_FULL || (c & 0xff) == SQLITE_IOERR;
}

int store_exec(store *s, const char *sql) {
  return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : ERR_STORE;
}

int store_begin(store *s) {
  s->last[0] = 0;
  s->last_code = 0;
  return store_exec(s, "BEGIN IMMEDIATE");
}
int store_commit(store *s) { return store_exec(s, "COMMIT"); }

/* SQLite rolls a transaction back by itself after some errors (a full disk, I/O errors); a
 * second ROLLBACK would then fail with "no transaction is active" and replace the real
 * reason. Keep the reason, and roll back only what is still open. */
int store_rollback(store *s) {
  if (sqlite3_errcode(s->db) != SQLITE_OK) {
    s->last_code = sqlite3_extended_errcode(s->db);
    snprintf(s->last, sizeof s->last, "%s", sqlite3_errmsg(s->db));
  }
  if (sqlite3_get_autocommit(s->db)) return 0;
  return store_exec(s, "ROLLBACK");
}

int store_in_txn(store *s) { return !sqlite3_get_autocommit(s->db); }

int store_version(store *s, int *version_out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK) return ERR_STORE;
  int rc = ERR_STORE;
  if (sqlite3_step(st) == SQLITE_ROW) {
    *version_out = sqlite3_column_int(st, 0);
    rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

int store_migrate(store *s, const store_migration *list, size_t n, char *err, size_t err_cap) {
  int v;
  if (store_version(s, &v)) return set_err(err, err_cap, "cannot read schema version: %s%s", store_errmsg(s), "");
  if (v < 0 || (size_t)v > n) {
    if (err && err_cap)
      snprintf(err, err_cap,
               "the database is at schema version %d but this apiary knows only %zu: it was written "
               "by a newer apiary; upgrade apiary to open it",
               v, n);
    return ERR_SCHEMA;
  }
  int applied = 0;
  for (size_t i = (size_t)v; i < n; i++) {
    char bump[64];
    snprintf(bump, sizeof bump, "PRAGMA user_version=%zu", i + 1);
    char *msg = NULL;
    if (store_begin(s)) return set_err(err, err_cap, "cannot start migration: %s%s", store_errmsg(s), "");
    if (sqlite3_exec(s->db, list[i].sql, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(s->db, bump, NULL, NULL, &msg) != SQLITE_OK || store_commit(s)) {
      char what[96];
      snprintf(what, sizeof what, "%zu (%s)", i + 1, list[i].owner);
      set_err(err, err_cap, "schema migration %s failed: %s", what, msg ? msg : store_errmsg(s));
      sqlite3_free(msg);
      store_rollback(s);
      return ERR_STORE;
    }
    applied++;
  }
  return applied;
}
