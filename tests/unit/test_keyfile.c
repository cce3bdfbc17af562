/* Key files (crypto/keyfile): plain and encrypted at rest (format v1), the passphrase kept
 * by keyfile_unlock; a locked, wrong or tampered file fails with ERR_LOCKED, never with
 * the wrong key; a world-readable file is refused; reseal round trips both ways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../support/testutil.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/hex.h"
#include "crypto/ident.h"
#include "crypto/keyfile.h"

static void read_text(const char *path, char *out, size_t cap) {
  buf b;
  buf_init(&b);
  assert_int_equal(fs_read_file(path, cap - 1, &b), 0);
  memcpy(out, b.ptr, b.len);
  out[b.len] = 0;
  buf_deinit(&b);
}

static void test_encrypted_round_trip(void **state) {
  (void)state;
  char dir[256], path[300], text[4096], hex[65];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/identity.key", dir);
  uint8_t seed[32], got[32];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(0xa0 + i);
  hex_encode(seed, 32, hex);
  ident id;
  assert_int_equal(ident_from_seed(seed, &id), 0);
  assert_int_equal(ident_save(&id, path), 0);
  assert_int_equal(keyfile_is_encrypted(path), 0);
  keyfile_lock();
  assert_int_equal(keyfile_reseal(path, IDENT_FILE_KIND, 32, "pw", 2, crypto_pwhash_OPSLIMIT_MIN,
                                  crypto_pwhash_MEMLIMIT_MIN),
                   0);
  assert_int_equal(keyfile_is_encrypted(path), 1);
  read_text(path, text, sizeof text);
  assert_null(strstr(text, hex));
  assert_non_null(strstr(text, "ed25519-seed.enc: v1 argon2id13 1 8192 "));
  assert_non_null(strstr(text, "# apiary node identity")); /* the comment is kept */
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* Locked, wrong, right. */
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), ERR_LOCKED);
  assert_int_equal(keyfile_unlock("wrong", 5), 0);
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), ERR_LOCKED);
  assert_int_equal(keyfile_unlock("pw", 2), 0);
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), 0);
  assert_memory_equal(got, seed, 32);
  ident back;
  assert_int_equal(ident_load(path, &back), 0);
  assert_memory_equal(back.pk, id.pk, 32);
  /* Another kind does not open it (the kind is associated data and the line's name). */
  assert_int_equal(keyfile_load(path, "secp256k1-secret", got, 32), ERR_FORMAT);
  /* A flipped ciphertext digit. */
  char *ct = strrchr(text, ' ') + 1, was = ct[0];
  ct[0] = was == '0' ? '1' : '0';
  assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600, 0), 0);
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), ERR_LOCKED);
  ct[0] = was;
  assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600, 0), 0);
  /* Limits out of range (an edited file) are refused before any work. */
  char *ops = strstr(text, "argon2id13 1 8192");
  char bad[4096];
  snprintf(bad, sizeof bad, "%.*sargon2id13 1 99999999999999%s", (int)(ops - text), text, ops + 17);
  assert_int_equal(fs_write_atomic(path, bad, strlen(bad), 0600, 0), 0);
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), ERR_RANGE);
  assert_int_equal(fs_write_atomic(path, text, strlen(text), 0600, 0), 0);
  /* World-readable: refused, encrypted or not. */
  chmod(path, 0644);
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), ERR_PERM);
  chmod(path, 0600);
  /* Clear: plain again, loads without a passphrase. */
  assert_int_equal(keyfile_reseal(path, IDENT_FILE_KIND, 32, NULL, 0, 0, 0), 0);
  keyfile_lock();
  assert_int_equal(keyfile_is_encrypted(path), 0);
  read_text(path, text, sizeof text);
  assert_non_null(strstr(text, hex));
  assert_int_equal(keyfile_load(path, IDENT_FILE_KIND, got, 32), 0);
  assert_memory_equal(got, seed, 32);
  ident_wipe(&id);
  ident_wipe(&back);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_encrypted_round_trip)};
  return cmocka_run_group_tests_name("keyfile", tests, NULL, NULL);
}
