/* core/store — the node's SQLite database: one file per node home, WAL mode.
 *
 * Opening sets journal_mode=WAL, synchronous=FULL (a commit is on disk before it returns:
 * vouchers and receipts are acknowledged only after commit), foreign_keys=ON and a busy
 * timeout. Schema changes are an append-only list of migrations keyed by PRAGMA
 * user_version: migration i (0-based) takes the database from version i to i+1, inside one
 * transaction together with the user_version bump, so a failed migration leaves the old
 * schema intact. The list is assembled by src/node from each layer's own migrations (each
 * layer owns its tables); entries are only ever appended. A database whose version is
 * higher than the list is refused (ERR_SCHEMA): a newer apiary wrote it.
 *
 * A store handle belongs to one thread at a time (SQLite serialized mode is not relied on);
 * the node process owns it, the CLI asks the node. */
#ifndef APIARY_CORE_STORE_H
#define APIARY_CORE_STORE_H

#include <sqlite3.h>
#include <stddef.h>

#define STORE_BUSY_TIMEOUT_MS 5000

typedef struct store_migration {
  const char *owner; /* layer/module that owns the tables it touches, e.g. "node" */
  const char *sql;   /* one or more statements */
} store_migration;

typedef struct store store;

/* Opens (creating if needed, mode 0600) the database at path. err gets a readable reason. */
int store_open(const char *path, store **out, char *err, size_t err_cap);
void store_close(store *s); /* NULL is a no-op */

/* Applies the migrations the database has not seen yet. Returns the number applied (>= 0),
 * or ERR_SCHEMA (database newer than list) or ERR_STORE (a migration failed; err says which
 * and why; the database stays at the last good version). */
int store_migrate(store *s, const store_migration *list, size_t n, char *err, size_t err_cap);
/* Current PRAGMA user_version. */
int store_version(store *s, int *version_out);

/* Runs SQL with no results. ERR_STORE on failure (see store_errmsg). */
int store_exec(store *s, const char *sql);
/* Transactions: BEGIN IMMEDIATE (takes the write lock up front), COMMIT, ROLLBACK.
 * store_rollback keeps the error that caused it for store_errmsg, and is a no-op when
 * SQLite already rolled back by itself (a full disk). store_in_txn: one is open. */
int store_begin(store *s);
int store_commit(store *s);
int store_rollback(store *s);
int store_in_txn(store *s);

/* The raw handle, for prepared statements in the layers that own tables. Borrowed. */
sqlite3 *store_db(store *s);
/* The last error (kept across the rollback it caused). */
const char *store_errmsg(store *s);
/* The last error was a full disk or an I/O error (the disk, not the data). */
int store_full(store *s);
/* The database file's path (borrowed). */
const char *store_path(const store *s);

#endif
