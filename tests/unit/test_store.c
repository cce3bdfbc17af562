/* Store: WAL and file mode, migrations from an old schema, refusal of a newer schema,
 * rollback of a failed migration, and the node's own migration list applying cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/store.h"
#include "node/home.h"

static const store_migration v1[] = {
    {"test", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
};
static const store_migration v2[] = {
    {"test", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {"test", "ALTER TABLE t ADD COLUMN amount INTEGER NOT NULL DEFAULT 7;"
             "CREATE TABLE u (k TEXT PRIMARY KEY);"},
};
static const store_migration v3_bad[] = {
    {"test", "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {"test", "ALTER TABLE t ADD COLUMN amount INTEGER NOT NULL DEFAULT 7;"
             "CREATE TABLE u (k TEXT PRIMARY KEY);"},
    {"test", "CREATE TABLE w (x INTEGER); INSERT INTO nowhere VALUES (1);"},
};

static int query_int(store *s, const char *sql) {
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL), SQLITE_OK);
  int v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  return v;
}

static void test_migrations(void **state) {
  (void)state;
  char dir[256], path[300], err[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/a.db", dir);
  store *s;
  /* An old binary creates schema v1 and writes data. */
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(store_migrate(s, v1, 1, err, sizeof err), 1);
  assert_int_equal(store_exec(s, "INSERT INTO t(name) VALUES ('kept')"), 0);
  store_close(s);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* A newer binary migrates it; data survives; the new column has its default. */
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(store_migrate(s, v2, 2, err, sizeof err), 1);
  int v;
  assert_int_equal(store_version(s, &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(query_int(s, "SELECT amount FROM t WHERE name = 'kept'"), 7);
  assert_int_equal(query_int(s, "SELECT count(*) FROM u"), 0);
  store_close(s);
  /* Reopening is idempotent. */
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(store_migrate(s, v2, 2, err, sizeof err), 0);
  /* A failing migration rolls back entirely and reports which one failed. */
  assert_int_equal(store_migrate(s, v3_bad, 3, err, sizeof err), ERR_STORE);
  assert_non_null(strstr(err, "migration 3"));
  assert_int_equal(store_version(s, &v), 0);
  assert_int_equal(v, 2);
  assert_int_equal(query_int(s, "SELECT count(*) FROM sqlite_master WHERE name = 'w'"), 0);
  store_close(s);
  /* The old binary refuses the newer database instead of corrupting it. */
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(store_migrate(s, v1, 1, err, sizeof err), ERR_SCHEMA);
  assert_non_null(strstr(err, "newer apiary"));
  store_close(s);
  tu_rm_rf(dir);
}

static void test_wal_and_garbage(void **state) {
  (void)state;
  char dir[256], path[300], err[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/b.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  assert_int_equal(query_int(s, "PRAGMA synchronous"), 2); /* FULL */
  assert_int_equal(query_int(s, "PRAGMA foreign_keys"), 1);
  store_close(s);
  /* A file that is not a database gives a clear error. */
  snprintf(path, sizeof path, "%s/junk.db", dir);
  FILE *f = fopen(path, "w");
  for (int i = 0; i < 200; i++) fputs("this is not a database\n", f);
  fclose(f);
  assert_int_equal(store_open(path, &s, err, sizeof err), ERR_STORE);
  assert_non_null(strstr(err, "junk.db"));
  tu_rm_rf(dir);
}

static void test_node_migrations(void **state) {
  (void)state;
  char dir[256], path[300], err[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/n.db", dir);
  store *s;
  size_t n;
  const store_migration *m = home_migrations(&n);
  assert_true(n >= 1);
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_int_equal(store_migrate(s, m, n, err, sizeof err), (int)n);
  /* Every migration up to k applied, then the rest: same final version. */
  store_close(s);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_migrations), cmocka_unit_test(test_wal_and_garbage),
                                     cmocka_unit_test(test_node_migrations)};
  return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
