/* CLI tests for `apiary vault` and keys at rest: put/get/list/rm with the passphrase from
 * the environment; a wrong passphrase; grants, uses and revocation; the audit chain
 * verified and then broken by editing a row in SQLite; no plaintext value in the database
 * files (db, -wal, -shm); sharing an item with a second node; identity.key and wallet.key
 * encrypted at rest (no raw key bytes in the files, the node starts only with the
 * passphrase); a world-readable wallet.key refused; wallet import from stdin or a file,
 * never argv. Runs the built binary (APIARY_BIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../support/testutil.h"
#include "core/buf.h"
#include "core/fs.h"

#define SECRET "sk-VAULT-PLAINTEXT-7f3a9c"
#define KEY_HEX "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"

static char out[1 << 16], err[1 << 16];
static char dir[256], home[300], home2[300];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...) {
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "%s %s", tu_apiary_bin(), args);
  return tu_run(cmd, out, sizeof out, err, sizeof err);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  assert_int_equal(fs_write_atomic(path, text, strlen(text), mode, 0), 0);
  chmod(path, mode);
}

/* 1 when any of the database files holds needle. */
static int db_contains(const char *h, const char *needle) {
  static const char *const sfx[] = {"", "-wal", "-shm"};
  int found = 0;
  for (size_t i = 0; i < 3; i++) {
    char p[400];
    snprintf(p, sizeof p, "%s/apiary.db%s", h, sfx[i]);
    buf b;
    buf_init(&b);
    if (fs_read_file(p, 256 << 20, &b) == 0 && memmem(b.ptr, b.len, needle, strlen(needle))) found = 1;
    buf_deinit(&b);
  }
  return found;
}

static int file_contains(const char *path, const char *needle) {
  buf b;
  buf_init(&b);
  int found = fs_read_file(path, 1 << 20, &b) == 0 && memmem(b.ptr, b.len, needle, strlen(needle));
  buf_deinit(&b);
  return found;
}

static int setup(void **state) {
  (void)state;
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/a", dir);
  snprintf(home2, sizeof home2, "%s/b", dir);
  if (run("init --home %s", home) || run("init --home %s", home2)) return -1;
  setenv("APIARY_VAULT_PASSPHRASE", "vault pass one", 1);
  unsetenv("APIARY_PASSPHRASE");
  unsetenv("APIARY_NEW_PASSPHRASE");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tu_rm_rf(dir);
  return 0;
}

static void test_put_get_list_rm(void **state) {
  (void)state;
  char val[400];
  snprintf(val, sizeof val, "%s/value.txt", dir);
  write_file(val, SECRET, 0600);
  assert_int_equal(run("vault --home %s get x < /dev/null", home), 1); /* no vault yet */
  assert_non_null(strstr(err, "vault init"));
  assert_int_equal(run("vault --home %s init < /dev/null", home), 0);
  assert_int_equal(run("vault --home %s init < /dev/null", home), 1);
  assert_int_equal(run("vault --home %s put api --file %s", home, val), 0);
  assert_int_equal(run("vault --home %s put notes < %s", home, val), 0); /* stdin */
  assert_int_equal(run("vault --home %s put api --file %s", home, val), 1);
  assert_int_equal(run("vault --home %s put api --replace --file %s", home, val), 0);
  assert_int_equal(run("vault --home %s get api", home), 0);
  assert_string_equal(out, SECRET);
  assert_null(strstr(err, SECRET));
  assert_int_equal(run("vault --home %s --json list", home), 0);
  assert_non_null(strstr(out, "\"name\":\"api\""));
  assert_non_null(strstr(out, "\"name\":\"notes\""));
  assert_null(strstr(out, SECRET));
  /* The database, its WAL and shared memory never hold the value. */
  assert_false(db_contains(home, SECRET));
  assert_false(db_contains(home, "vault pass one"));
  /* Wrong passphrase: a clear message, exit 1, nothing printed. */
  assert_int_equal(run("vault --home %s get api", home) == 0, 1);
  setenv("APIARY_VAULT_PASSPHRASE", "wrong", 1);
  assert_int_equal(run("vault --home %s get api", home), 1);
  assert_non_null(strstr(err, "wrong vault passphrase"));
  assert_string_equal(out, "");
  setenv("APIARY_VAULT_PASSPHRASE", "vault pass one", 1);
  /* --passphrase-file, which must be private. */
  char pf[400];
  snprintf(pf, sizeof pf, "%s/pass", dir);
  write_file(pf, "vault pass one\n", 0644);
  unsetenv("APIARY_VAULT_PASSPHRASE");
  assert_int_equal(run("vault --home %s --passphrase-file %s get api < /dev/null", home, pf), 1);
  assert_non_null(strstr(err, "chmod 600"));
  chmod(pf, 0600);
  assert_int_equal(run("vault --home %s --passphrase-file %s get api < /dev/null", home, pf), 0);
  assert_string_equal(out, SECRET);
  setenv("APIARY_VAULT_PASSPHRASE", "vault pass one", 1);
  assert_int_equal(run("vault --home %s rm notes", home), 0);
  assert_int_equal(run("vault --home %s get notes", home), 1);
  assert_int_equal(run("vault --home %s rm notes", home), 1);
  assert_int_equal(run("vault --home %s --help", home), 0);
  assert_non_null(strstr(out, "usage: apiary vault"));
  assert_int_equal(run("vault --home %s frobnicate", home), 2);
  assert_int_equal(run("vault --home %s get", home), 2);
  assert_false(db_contains(home, SECRET));
}

static void test_grants_and_audit(void **state) {
  (void)state;
  assert_int_equal(run("vault --home %s --json grant api --to bot --purpose search --until +1h", home), 0);
  assert_non_null(strstr(out, "\"id\":1"));
  assert_int_equal(run("vault --home %s use api --as bot --purpose search", home), 0);
  assert_int_equal(run("vault --home %s use api --as bot --purpose mail", home), 1);
  assert_int_equal(run("vault --home %s use api --as eve --purpose search", home), 1);
  assert_int_equal(run("vault --home %s grant api --to bot --purpose x --until 1000", home), 2); /* past */
  assert_int_equal(run("vault --home %s revoke 1", home), 0);
  assert_int_equal(run("vault --home %s revoke 1", home), 1);
  assert_int_equal(run("vault --home %s use api --as bot --purpose search", home), 1);
  assert_int_equal(run("vault --home %s --json grants", home), 0);
  assert_non_null(strstr(out, "\"live\":false"));
  assert_int_equal(run("vault --home %s --json audit", home), 0);
  assert_non_null(strstr(out, "denied: no grant"));
  assert_non_null(strstr(out, "denied: grant expired or revoked"));
  assert_null(strstr(out, SECRET));
  assert_int_equal(run("vault --home %s --json audit --verify", home), 0);
  assert_non_null(strstr(out, "\"ok\":true"));
  /* Turn a denial into an allowance behind the vault's back: the chain says where. */
  char db[400];
  snprintf(db, sizeof db, "%s/apiary.db", home);
  sqlite3 *h;
  assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
  assert_int_equal(sqlite3_exec(h, "UPDATE vault_audit SET outcome = 'ok' WHERE outcome = 'denied: no grant'", NULL,
                                NULL, NULL),
                   SQLITE_OK);
  assert_true(sqlite3_changes(h) > 0);
  sqlite3_close(h);
  assert_int_equal(run("vault --home %s audit --verify", home), 1);
  assert_non_null(strstr(err, "edited"));
  assert_int_equal(run("vault --home %s --json audit --verify", home), 1);
  assert_non_null(strstr(out, "\"bad_entry\""));
}

static void test_share(void **state) {
  (void)state;
  assert_int_equal(run("--quiet id --home %s --json", home2), 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  char to[80], env[400];
  snprintf(to, sizeof to, "%s", json_string_value(json_object_get(j, "node_id")));
  json_decref(j);
  snprintf(env, sizeof env, "%s/api.apve", dir);
  assert_int_equal(run("vault --home %s share api --to %s --purpose ci --until +1h --out %s", home, to, env), 0);
  assert_false(file_contains(env, SECRET));
  assert_int_equal(run("vault --home %s import %s", home, env), 1); /* sealed for b, not a */
  assert_non_null(strstr(err, "another node"));
  setenv("APIARY_VAULT_PASSPHRASE", "vault pass two", 1);
  assert_int_equal(run("vault --home %s init", home2), 0);
  assert_int_equal(run("vault --home %s --json import %s", home2, env), 0);
  assert_non_null(strstr(out, "\"purpose\":\"ci\""));
  assert_int_equal(run("vault --home %s get api", home2), 1); /* only under its grant */
  assert_int_equal(run("vault --home %s use api --as agent1 --purpose ci", home2), 0);
  assert_int_equal(run("vault --home %s use api --as agent1 --purpose other", home2), 1);
  assert_int_equal(run("vault --home %s grant api --to agent1 --purpose other --until +1d", home2), 1);
  assert_false(db_contains(home2, SECRET));
  setenv("APIARY_VAULT_PASSPHRASE", "vault pass one", 1);
}

static void test_keys_at_rest(void **state) {
  (void)state;
  char idk[400], wk[400], seed[65] = "", pf[400];
  snprintf(idk, sizeof idk, "%s/identity.key", home2);
  snprintf(wk, sizeof wk, "%s/wallet.key", home2);
  snprintf(pf, sizeof pf, "%s/keypass", dir);
  write_file(pf, "key pass\n", 0600);
  /* Remember the raw seed and wallet secret to look for them afterwards. */
  buf b;
  buf_init(&b);
  assert_int_equal(fs_read_file(idk, 4096, &b), 0);
  const char *h = memmem(b.ptr, b.len, "ed25519-seed: ", 14);
  assert_non_null(h);
  memcpy(seed, h + 14, 64);
  buf_deinit(&b);
  assert_int_equal(run("--quiet id --home %s --json", home2), 0);
  static char id_plain[sizeof out];
  memcpy(id_plain, out, sizeof out);
  setenv("APIARY_NEW_PASSPHRASE", "key pass", 1);
  assert_int_equal(run("id --home %s passphrase set", home2), 0);
  unsetenv("APIARY_NEW_PASSPHRASE");
  assert_false(file_contains(idk, seed));
  assert_true(file_contains(idk, "ed25519-seed.enc: v1 argon2id13"));
  assert_true(file_contains(wk, "secp256k1-secret.enc: v1 argon2id13"));
  /* Without the passphrase nothing loads; with it, the same identity. */
  assert_int_equal(run("id --home %s < /dev/null", home2), 1);
  assert_non_null(strstr(err, "passphrase"));
  setenv("APIARY_PASSPHRASE", "nope", 1);
  assert_int_equal(run("id --home %s", home2), 1);
  assert_non_null(strstr(err, "wrong key passphrase"));
  setenv("APIARY_PASSPHRASE", "key pass", 1);
  assert_int_equal(run("--quiet id --home %s --json", home2), 0);
  assert_string_equal(out, id_plain);
  /* A wallet import keeps the wallet encrypted. */
  char kf[400];
  snprintf(kf, sizeof kf, "%s/k.hex", dir);
  write_file(kf, "0x" KEY_HEX "\n", 0600);
  assert_int_equal(run("wallet --home %s --force import < %s", home2, kf), 0);
  assert_false(file_contains(wk, KEY_HEX));
  assert_true(file_contains(wk, ".enc: v1"));
  assert_int_equal(run("wallet --home %s address", home2), 0);
  assert_non_null(strstr(out, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"));
  unsetenv("APIARY_PASSPHRASE");
  /* The node: refused without the passphrase, starts with --passphrase-file. */
  int port = tu_port_block(2);
  assert_true(port > 0);
  assert_int_equal(run("node --home %s --no-dht --no-nat --no-lan --listen 127.0.0.1:%d --http 127.0.0.1:%d "
                       "< /dev/null",
                       home2, port, port + 1),
                   1);
  assert_non_null(strstr(err, "APIARY_PASSPHRASE"));
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "timeout -s TERM 8 %s node --home %s --passphrase-file %s --no-dht --no-nat --no-lan "
           "--listen 127.0.0.1:%d --http 127.0.0.1:%d < /dev/null",
           tu_apiary_bin(), home2, pf, port, port + 1);
  tu_run(cmd, out, sizeof out, err, sizeof err);
  assert_non_null(strstr(out, "ready "));
  /* Clear: plain again. */
  setenv("APIARY_PASSPHRASE", "key pass", 1);
  assert_int_equal(run("id --home %s passphrase clear", home2), 0);
  unsetenv("APIARY_PASSPHRASE");
  assert_true(file_contains(idk, seed));
  assert_int_equal(run("id --home %s", home2), 0);
}

static void test_wallet_key_checks(void **state) {
  (void)state;
  char wk[400], kf[400];
  snprintf(wk, sizeof wk, "%s/wallet.key", home);
  snprintf(kf, sizeof kf, "%s/k2.hex", dir);
  /* The key is never taken from argv. */
  assert_int_equal(run("wallet --home %s --force import 0x%s", home, KEY_HEX), 2);
  assert_non_null(strstr(err, "--file"));
  write_file(kf, KEY_HEX, 0600);
  assert_int_equal(run("wallet --home %s --force import --file %s", home, kf), 0);
  assert_non_null(strstr(out, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"));
  assert_int_equal(run("wallet --home %s --force import < /dev/null", home), 1);
  /* World-readable wallet.key: refused, like identity.key, not taken for "no wallet". */
  chmod(wk, 0644);
  assert_int_equal(run("wallet --home %s address", home), 1);
  assert_non_null(strstr(err, "readable by other users"));
  int port = tu_port_block(2);
  assert_true(port > 0);
  assert_int_equal(run("node --home %s --no-dht --no-nat --no-lan --listen 127.0.0.1:%d --http 127.0.0.1:%d "
                       "< /dev/null",
                       home, port, port + 1),
                   1);
  assert_non_null(strstr(err, "readable by other users"));
  chmod(wk, 0600);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_list_rm), cmocka_unit_test(test_grants_and_audit), cmocka_unit_test(test_share),
      cmocka_unit_test(test_keys_at_rest),    cmocka_unit_test(test_wallet_key_checks),
  };
  return cmocka_run_group_tests_name("cli_vault", tests, setup, teardown);
}
