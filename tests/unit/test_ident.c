/* Node identity: RFC 8032 vectors through our seed handling, key file modes and refusal to
 * overwrite, node id text round trip, checksum catching typos. */
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
#include "core/hex.h"
#include "crypto/ident.h"

static void test_rfc8032(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ed25519/rfc8032_ed25519.json");
  json_t *root = tu_load_json(path);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(root, "vectors"), i, v) {
    const char *seed_hex = json_string_value(json_object_get(v, "secret_key_seed"));
    const char *pk_hex = json_string_value(json_object_get(v, "public_key"));
    const char *msg_hex = json_string_value(json_object_get(v, "message"));
    const char *sig_hex = json_string_value(json_object_get(v, "signature"));
    uint8_t seed[32], pk[32], sig[64], msg[2048], got[64];
    assert_int_equal(hex_decode(seed_hex, strlen(seed_hex), seed, 32), 0);
    assert_int_equal(hex_decode(pk_hex, strlen(pk_hex), pk, 32), 0);
    assert_int_equal(hex_decode(sig_hex, strlen(sig_hex), sig, 64), 0);
    int n = hex_decode_var(msg_hex, strlen(msg_hex), msg, sizeof msg);
    assert_true(n >= 0);
    ident id;
    assert_int_equal(ident_from_seed(seed, &id), 0);
    assert_memory_equal(id.pk, pk, 32);
    ident_sign(&id, msg, (size_t)n, got);
    assert_memory_equal(got, sig, 64);
    assert_int_equal(ident_verify(pk, msg, (size_t)n, sig), 0);
    got[0] ^= 1;
    assert_int_equal(ident_verify(pk, msg, (size_t)n, got), ERR_CRYPTO);
  }
  json_decref(root);
}

static void test_id_text(void **state) {
  (void)state;
  for (int k = 0; k < 50; k++) {
    ident id;
    assert_int_equal(ident_generate(&id), 0);
    char text[IDENT_ID_BUF];
    ident_id_encode(id.pk, text);
    assert_int_equal(strlen(text), IDENT_ID_LEN);
    assert_memory_equal(text, "ap", 2);
    uint8_t pk[32];
    assert_int_equal(ident_id_decode(text, strlen(text), pk), 0);
    assert_memory_equal(pk, id.pk, 32);
    /* Upper case is accepted. */
    char up[IDENT_ID_BUF];
    for (int i = 0; i <= IDENT_ID_LEN; i++) up[i] = (text[i] >= 'a' && text[i] <= 'z') ? (char)(text[i] - 32) : text[i];
    assert_int_equal(ident_id_decode(up, strlen(up), pk), 0);
    /* Any single-character substitution is rejected (by the checksum or the alphabet). */
    for (int pos = 2; pos < IDENT_ID_LEN; pos += 5) {
      char typo[IDENT_ID_BUF];
      memcpy(typo, text, sizeof typo);
      typo[pos] = typo[pos] == 'a' ? 'b' : 'a';
      assert_true(ident_id_decode(typo, strlen(typo), pk) < 0);
    }
    /* Transposition of two different adjacent characters is rejected. */
    for (int pos = 2; pos + 1 < IDENT_ID_LEN; pos++) {
      if (text[pos] == text[pos + 1]) continue;
      char swapped[IDENT_ID_BUF];
      memcpy(swapped, text, sizeof swapped);
      swapped[pos] = text[pos + 1];
      swapped[pos + 1] = text[pos];
      assert_true(ident_id_decode(swapped, strlen(swapped), pk) < 0);
      break;
    }
    assert_int_equal(ident_id_decode(text, IDENT_ID_LEN - 1, pk), ERR_FORMAT);
    char bad[IDENT_ID_BUF];
    memcpy(bad, text, sizeof bad);
    bad[10] = '1'; /* not in the base32 alphabet */
    assert_int_equal(ident_id_decode(bad, strlen(bad), pk), ERR_FORMAT);
    bad[10] = text[10];
    bad[0] = 'x';
    assert_int_equal(ident_id_decode(bad, strlen(bad), pk), ERR_FORMAT);
  }
}

static void test_file(void **state) {
  (void)state;
  char dir[256], path[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/identity.key", dir);
  ident a, b;
  assert_int_equal(ident_generate(&a), 0);
  assert_int_equal(ident_save(&a, path), 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(ident_load(path, &b), 0);
  assert_memory_equal(a.pk, b.pk, 32);
  assert_memory_equal(a.sk, b.sk, 64);
  /* Never overwritten. */
  ident c;
  assert_int_equal(ident_generate(&c), 0);
  assert_int_equal(ident_save(&c, path), ERR_EXISTS);
  assert_int_equal(ident_load(path, &b), 0);
  assert_memory_equal(a.pk, b.pk, 32);
  /* A world-readable key file is refused. */
  chmod(path, 0644);
  assert_int_equal(ident_load(path, &b), ERR_PERM);
  chmod(path, 0600);
  /* Malformed content is a format error, not a crash. */
  FILE *f = fopen(path, "w");
  fputs("# x\ned25519-seed: 1234\n", f);
  fclose(f);
  assert_int_equal(ident_load(path, &b), ERR_FORMAT);
  f = fopen(path, "w");
  fputs("# x\nsecp256k1-secret: 00\n", f);
  fclose(f);
  assert_int_equal(ident_load(path, &b), ERR_FORMAT);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_rfc8032), cmocka_unit_test(test_id_text),
                                     cmocka_unit_test(test_file)};
  return cmocka_run_group_tests_name("ident", tests, NULL, NULL);
}
