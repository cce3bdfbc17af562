/* Vault (privacy/vault, grant, audit, share): round trip; wrong passphrase; tampered,
 * moved and re-dated ciphertexts fail; grants expire (injected time) and revoke; the audit
 * chain catches an edited, deleted, reordered or cut row (edited in SQLite directly); a
 * share envelope opens only for the right node and before its expiry; no plaintext in the
 * database files. On a real migrated node database, with the cheapest Argon2id limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/fs.h"
#include "node/home.h"
#include "privacy/audit.h"
#include "privacy/grant.h"
#include "privacy/share.h"
#include "privacy/vault.h"

#define PASS "correct horse battery staple"
#define SECRET "sk-live-THE-PLAINTEXT-SECRET-42"
#define T0 1700000000

static char dir[256], dbpath[300];

static store *open_db(void) {
  char err[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(dbpath, sizeof dbpath, "%s/v.db", dir);
  store *s;
  assert_int_equal(store_open(dbpath, &s, err, sizeof err), 0);
  size_t n;
  const store_migration *m = home_migrations(&n);
  assert_int_equal(store_migrate(s, m, n, err, sizeof err), (int)n);
  return s;
}

static vault *new_vault(store *s) {
  vault *v;
  assert_int_equal(vault_create(s, PASS, strlen(PASS), crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN, T0, &v), 0);
  return v;
}

static void exec(store *s, const char *sql) { assert_int_equal(store_exec(s, sql), 0); }

/* Flips one bit of item name's ciphertext, in SQLite directly. */
static void flip_ct(store *s, const char *name, int at) {
  sqlite3_stmt *st;
  uint8_t ct[256];
  assert_int_equal(sqlite3_prepare_v2(store_db(s), "SELECT ct FROM vault_items WHERE name = ?", -1, &st, NULL), 0);
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int n = sqlite3_column_bytes(st, 0);
  assert_true(n > at && n <= (int)sizeof ct);
  memcpy(ct, sqlite3_column_blob(st, 0), (size_t)n);
  sqlite3_finalize(st);
  ct[at] ^= 1;
  assert_int_equal(sqlite3_prepare_v2(store_db(s), "UPDATE vault_items SET ct = ? WHERE name = ?", -1, &st, NULL), 0);
  sqlite3_bind_blob(st, 1, ct, n, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
}

static void test_round_trip(void **state) {
  (void)state;
  store *s = open_db();
  vault *v = new_vault(s);
  assert_int_equal(vault_exists(s), 1);
  assert_int_equal(vault_put(v, "api", (const uint8_t *)SECRET, strlen(SECRET), 0, T0), 0);
  assert_int_equal(vault_put(v, "api", (const uint8_t *)"x", 1, 0, T0), ERR_EXISTS);
  assert_int_equal(vault_put(v, "empty", (const uint8_t *)"", 0, 0, T0), 0);
  uint8_t *val;
  size_t len;
  assert_int_equal(vault_get(v, "api", T0, &val, &len), 0);
  assert_int_equal(len, strlen(SECRET));
  assert_memory_equal(val, SECRET, len);
  vault_value_free(val, len);
  assert_int_equal(vault_get(v, "empty", T0, &val, &len), 0);
  assert_int_equal(len, 0);
  vault_value_free(val, len);
  assert_int_equal(vault_get(v, "none", T0, &val, &len), ERR_NOTFOUND);
  static uint8_t big[VAULT_VALUE_MAX + 1];
  assert_int_equal(vault_put(v, "big", big, sizeof big, 0, T0), ERR_TOOBIG);
  assert_int_equal(vault_put(v, "max", big, VAULT_VALUE_MAX, 0, T0), 0);
  assert_int_equal(vault_put(v, "bad\nname", big, 1, 0, T0), ERR_INVAL);
  json_t *l;
  assert_int_equal(vault_list(v, &l), 0);
  assert_int_equal(json_array_size(l), 3);
  json_decref(l);
  assert_int_equal(vault_rm(v, "api", T0), 0);
  assert_int_equal(vault_rm(v, "api", T0), ERR_NOTFOUND);
  vault_close(v);
  /* Reopen: right passphrase works, a wrong one is told apart. */
  assert_int_equal(vault_open(s, "wrong", 5, &v), ERR_CRYPTO);
  assert_int_equal(vault_open(s, PASS, strlen(PASS), &v), 0);
  assert_int_equal(vault_get(v, "empty", T0, &val, &len), 0);
  vault_value_free(val, len);
  vault_close(v);
  vault *v2;
  assert_int_equal(vault_create(s, PASS, strlen(PASS), 0, 0, T0, &v2), ERR_EXISTS);
  store_close(s);
  tu_rm_rf(dir);
}

static void test_tamper(void **state) {
  (void)state;
  store *s = open_db();
  vault *v = new_vault(s);
  uint8_t *val;
  size_t len;
  assert_int_equal(vault_put(v, "a", (const uint8_t *)SECRET, strlen(SECRET), 0, T0), 0);
  assert_int_equal(vault_put(v, "b", (const uint8_t *)"other", 5, 0, T0), 0);
  /* A flipped ciphertext byte. */
  flip_ct(s, "a", 0);
  assert_int_equal(vault_get(v, "a", T0, &val, &len), ERR_CRYPTO);
  flip_ct(s, "a", 0);
  assert_int_equal(vault_get(v, "a", T0, &val, &len), 0);
  vault_value_free(val, len);
  flip_ct(s, "a", (int)strlen(SECRET) + 3); /* in the tag */
  assert_int_equal(vault_get(v, "a", T0, &val, &len), ERR_CRYPTO);
  /* b's ciphertext moved under another name. */
  exec(s, "INSERT INTO vault_items(name, nonce, ct, size, created, updated) SELECT 'c', nonce, ct, size, 0, 0 "
          "FROM vault_items WHERE name = 'b'");
  assert_int_equal(vault_get(v, "c", T0, &val, &len), ERR_CRYPTO);
  assert_int_equal(vault_get(v, "b", T0, &val, &len), 0);
  vault_value_free(val, len);
  /* The KDF limits in the meta row are bounded. */
  exec(s, "UPDATE vault_meta SET memlimit = 1099511627776");
  vault_close(v);
  assert_int_equal(vault_open(s, PASS, strlen(PASS), &v), ERR_RANGE);
  store_close(s);
  tu_rm_rf(dir);
}

static void test_grants(void **state) {
  (void)state;
  store *s = open_db();
  vault *v = new_vault(s);
  uint8_t *val;
  size_t len;
  int64_t id, id2;
  assert_int_equal(vault_put(v, "key", (const uint8_t *)SECRET, strlen(SECRET), 0, T0), 0);
  assert_int_equal(vault_grant(v, "nokey", "bot", "search", T0 + 100, T0, &id), ERR_NOTFOUND);
  assert_int_equal(vault_grant(v, "key", "bot", "search", T0, T0, &id), ERR_INVAL); /* not in the future */
  assert_int_equal(vault_grant(v, "key", "bot", "search", T0 + 100, T0, &id), 0);
  assert_int_equal(vault_use(v, "key", "bot", "search", T0 + 1, &val, &len), 0);
  assert_memory_equal(val, SECRET, len);
  vault_value_free(val, len);
  assert_int_equal(vault_use(v, "key", "bot", "mail", T0 + 1, NULL, NULL), ERR_NOTFOUND);    /* purpose */
  assert_int_equal(vault_use(v, "key", "eve", "search", T0 + 1, NULL, NULL), ERR_NOTFOUND);  /* subject */
  assert_int_equal(vault_use(v, "key", "bot", "search", T0 + 100, NULL, NULL), ERR_EXPIRED); /* expiry */
  assert_int_equal(vault_use(v, "key", "bot", "search", T0 + 99, NULL, NULL), 0);
  assert_int_equal(vault_grant(v, "key", "bot2", "search", T0 + 1000, T0, &id2), 0);
  assert_int_equal(vault_revoke(v, id2, T0 + 2), 0);
  assert_int_equal(vault_revoke(v, id2, T0 + 3), ERR_EXISTS);
  assert_int_equal(vault_revoke(v, 999, T0 + 3), ERR_NOTFOUND);
  assert_int_equal(vault_use(v, "key", "bot2", "search", T0 + 4, NULL, NULL), ERR_EXPIRED);
  json_t *g;
  assert_int_equal(grant_list(s, T0 + 4, &g), 0);
  assert_int_equal(json_array_size(g), 2);
  assert_true(json_is_true(json_object_get(json_array_get(g, 0), "live")));
  assert_false(json_is_true(json_object_get(json_array_get(g, 1), "live")));
  json_decref(g);
  /* rm revokes the item's grants; a new item of that name does not inherit them. */
  assert_int_equal(vault_rm(v, "key", T0 + 5), 0);
  assert_int_equal(vault_put(v, "key", (const uint8_t *)"new", 3, 0, T0 + 6), 0);
  assert_int_equal(vault_use(v, "key", "bot", "search", T0 + 7, NULL, NULL), ERR_EXPIRED);
  /* Denied uses are in the audit log too. */
  json_t *a;
  assert_int_equal(vault_audit_list(s, &a), 0);
  size_t i, denied = 0, used = 0;
  json_t *e;
  json_array_foreach(a, i, e) {
    if (strcmp(json_string_value(json_object_get(e, "action")), "use")) continue;
    if (!strncmp(json_string_value(json_object_get(e, "outcome")), "denied", 6)) denied++;
    else used++;
  }
  assert_int_equal(denied, 5);
  assert_int_equal(used, 2);
  json_decref(a);
  int64_t n, bad;
  assert_int_equal(vault_audit_verify(v, &n, &bad, NULL, 0), 0);
  vault_close(v);
  store_close(s);
  tu_rm_rf(dir);
}

/* Builds a vault with a few audit entries; returns it open. */
static vault *audited(store *s) {
  vault *v = new_vault(s);
  assert_int_equal(vault_put(v, "k", (const uint8_t *)"v", 1, 0, T0), 0);
  assert_int_equal(vault_grant(v, "k", "bot", "p", T0 + 10, T0, NULL), 0);
  assert_int_equal(vault_use(v, "k", "bot", "p", T0 + 1, NULL, NULL), 0);
  assert_int_equal(vault_use(v, "k", "eve", "p", T0 + 2, NULL, NULL), ERR_NOTFOUND);
  int64_t n, bad;
  assert_int_equal(vault_audit_verify(v, &n, &bad, NULL, 0), 0);
  assert_int_equal(n, 5); /* init, put, grant, use, use */
  return v;
}

static void expect_broken(vault *v, int64_t want_bad) {
  int64_t n, bad;
  char err[256];
  assert_int_equal(vault_audit_verify(v, &n, &bad, err, sizeof err), ERR_CRYPTO);
  assert_int_equal(bad, want_bad);
}

static void test_audit_chain(void **state) {
  (void)state;
  static const struct { const char *sql; int64_t bad; } cases[] = {
      {"UPDATE vault_audit SET outcome = 'ok' WHERE seq = 5", 5},            /* a denial made to look allowed */
      {"UPDATE vault_audit SET subject = 'mallory' WHERE seq = 4", 4},       /* edited subject */
      {"UPDATE vault_audit SET time = time + 1 WHERE seq = 2", 2},           /* edited time */
      {"DELETE FROM vault_audit WHERE seq = 3", 4},                          /* deleted row */
      {"DELETE FROM vault_audit WHERE seq = 5", 5},                          /* cut tail */
      {"UPDATE vault_audit SET seq = -seq WHERE seq IN (3, 4);"              /* swapped rows */
       "UPDATE vault_audit SET seq = 4 WHERE seq = -3; UPDATE vault_audit SET seq = 3 WHERE seq = -4", 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    store *s = open_db();
    vault *v = audited(s);
    exec(s, cases[i].sql);
    expect_broken(v, cases[i].bad);
    vault_close(v);
    store_close(s);
    tu_rm_rf(dir);
  }
  /* A chain re-hashed without the key (plain BLAKE2b) does not pass either. */
  store *s = open_db();
  vault *v = audited(s);
  uint8_t zero[AUDIT_KEY_BYTES] = {0};
  int64_t n, bad;
  assert_int_equal(audit_verify(s, zero, &n, &bad, NULL, 0), ERR_CRYPTO);
  assert_int_equal(bad, 1);
  vault_close(v);
  store_close(s);
  tu_rm_rf(dir);
}

static void test_share(void **state) {
  (void)state;
  ident alice, bob, carol;
  uint8_t seed[32] = {1};
  ident_from_seed(seed, &alice);
  seed[0] = 2;
  ident_from_seed(seed, &bob);
  seed[0] = 3;
  ident_from_seed(seed, &carol);
  buf env;
  buf_init(&env);
  assert_int_equal(share_seal(&alice, bob.pk, "api", "ci", T0 + 100, T0, (const uint8_t *)SECRET, strlen(SECRET), &env), 0);
  assert_null(memmem(env.ptr, env.len, SECRET, strlen(SECRET)));
  share_item it;
  assert_int_equal(share_open(&carol, env.ptr, env.len, T0, &it), ERR_PERM);
  /* Carol rewriting the recipient in the header still cannot open it. */
  memcpy(env.ptr + 5, carol.pk, 32);
  assert_int_equal(share_open(&carol, env.ptr, env.len, T0, &it), ERR_CRYPTO);
  memcpy(env.ptr + 5, bob.pk, 32);
  assert_int_equal(share_open(&bob, env.ptr, env.len, T0 + 100, &it), ERR_EXPIRED);
  assert_int_equal(share_open(&bob, env.ptr, env.len, T0 + 1, &it), 0);
  assert_memory_equal(it.sender, alice.pk, 32);
  assert_string_equal(it.name, "api");
  assert_string_equal(it.purpose, "ci");
  assert_int_equal(it.expires, T0 + 100);
  assert_int_equal(it.value_len, strlen(SECRET));
  assert_memory_equal(it.value, SECRET, it.value_len);
  /* Into Bob's vault under the embedded grant. */
  store *s = open_db();
  vault *v = new_vault(s);
  char from[IDENT_ID_BUF];
  ident_id_encode(it.sender, from);
  assert_int_equal(vault_put_shared(v, it.name, it.value, it.value_len, from, it.purpose, it.expires, T0 + 1), 0);
  share_item_deinit(&it);
  uint8_t *val;
  size_t len;
  assert_int_equal(vault_get(v, "api", T0 + 2, &val, &len), ERR_PERM);
  assert_int_equal(vault_grant(v, "api", "bot", "other", T0 + 50, T0 + 2, NULL), ERR_PERM);
  assert_int_equal(vault_use(v, "api", "bot", "other", T0 + 2, NULL, NULL), ERR_NOTFOUND);
  assert_int_equal(vault_use(v, "api", "bot", "ci", T0 + 2, &val, &len), 0);
  assert_memory_equal(val, SECRET, len);
  vault_value_free(val, len);
  assert_int_equal(vault_use(v, "api", "bot", "ci", T0 + 100, NULL, NULL), ERR_EXPIRED);
  /* Extending the grant row does not help: the item's own expiry is bound to its ciphertext. */
  exec(s, "UPDATE vault_grants SET expires = expires + 1000");
  assert_int_equal(vault_use(v, "api", "bot", "ci", T0 + 200, NULL, NULL), ERR_EXPIRED);
  exec(s, "UPDATE vault_items SET expires = expires + 1000");
  assert_int_equal(vault_use(v, "api", "bot", "ci", T0 + 200, &val, &len), ERR_CRYPTO);
  vault_close(v);
  store_close(s);
  tu_rm_rf(dir);
  /* A flipped byte anywhere after the header breaks it. */
  env.ptr[SHARE_HEADER_BYTES + 40] ^= 1;
  assert_int_equal(share_open(&bob, env.ptr, env.len, T0 + 1, &it), ERR_CRYPTO);
  assert_int_equal(share_parse_header(env.ptr, 10, NULL), ERR_FORMAT);
  env.ptr[4] = 9;
  assert_int_equal(share_parse_header(env.ptr, env.len, NULL), ERR_UNSUPPORTED);
  buf_deinit(&env);
  ident_wipe(&alice);
  ident_wipe(&bob);
  ident_wipe(&carol);
}

static void test_no_plaintext_on_disk(void **state) {
  (void)state;
  store *s = open_db();
  vault *v = new_vault(s);
  for (int i = 0; i < 20; i++) {
    char name[16];
    snprintf(name, sizeof name, "k%d", i);
    assert_int_equal(vault_put(v, name, (const uint8_t *)SECRET, strlen(SECRET), 0, T0), 0);
  }
  assert_int_equal(vault_grant(v, "k1", "bot", "p", T0 + 10, T0, NULL), 0);
  assert_int_equal(vault_use(v, "k1", "bot", "p", T0 + 1, NULL, NULL), 0);
  static const char *const sfx[] = {"", "-wal", "-shm"};
  for (int k = 0; k < 2; k++) { /* with the WAL live, then after close */
    for (size_t i = 0; i < 3; i++) {
      char p[400];
      snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
      buf b;
      buf_init(&b);
      if (fs_read_file(p, 64 << 20, &b) == 0) {
        assert_null(memmem(b.ptr, b.len, SECRET, strlen(SECRET)));
        assert_null(memmem(b.ptr, b.len, PASS, strlen(PASS)));
      }
      buf_deinit(&b);
    }
    if (k == 0) {
      vault_close(v);
      store_close(s);
    }
  }
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),   cmocka_unit_test(test_tamper), cmocka_unit_test(test_grants),
      cmocka_unit_test(test_audit_chain),  cmocka_unit_test(test_share),
      cmocka_unit_test(test_no_plaintext_on_disk),
  };
  return cmocka_run_group_tests_name("vault", tests, NULL, NULL);
}
