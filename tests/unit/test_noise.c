/* Noise: every vector in shared/testdata/vectors/noise (cacophony and snow files; XX, IK,
 * NN with BLAKE2b and SHA-256) byte for byte, handshake and transport; nonce exhaustion;
 * REKEY; tampering; misuse (wrong turn, writing after failure). */
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
#include "core/hex.h"
#include "p2p/noise.h"

static size_t hexf(json_t *v, const char *key, uint8_t *out, size_t cap) {
  const char *s = json_string_value(json_object_get(v, key));
  if (!s) return (size_t)-1;
  int n = hex_decode_var(s, strlen(s), out, cap);
  assert_true(n >= 0);
  return (size_t)n;
}

/* Runs one vector; returns 1 if it ran (all checks are asserts). */
static int run_vector(json_t *v) {
  const char *name = json_string_value(json_object_get(v, "protocol_name"));
  uint8_t ipro[256], rpro[256], is[32], rs[32], ie[32], re[32], irs[32];
  size_t ipl = hexf(v, "init_prologue", ipro, sizeof ipro);
  size_t rpl = hexf(v, "resp_prologue", rpro, sizeof rpro);
  int has_is = hexf(v, "init_static", is, 32) == 32;
  int has_rs = hexf(v, "resp_static", rs, 32) == 32;
  int has_irs = hexf(v, "init_remote_static", irs, 32) == 32;
  assert_int_equal(hexf(v, "init_ephemeral", ie, 32), 32);
  assert_int_equal(hexf(v, "resp_ephemeral", re, 32), 32);
  noise_hs ini, res;
  assert_int_equal(noise_hs_init_name(&ini, name, 1, has_is ? is : NULL, has_irs ? irs : NULL, ipro, ipl), 0);
  assert_int_equal(noise_hs_init_name(&res, name, 0, has_rs ? rs : NULL, NULL, rpro, rpl), 0);
  assert_int_equal(noise_hs_set_ephemeral(&ini, ie), 0);
  assert_int_equal(noise_hs_set_ephemeral(&res, re), 0);
  noise_cs isend, irecv, rsend, rrecv;
  int split = 0;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(v, "messages"), i, m) {
    static uint8_t pl[NOISE_MAX_MSG], ct[NOISE_MAX_MSG], out[NOISE_MAX_MSG], back[NOISE_MAX_MSG];
    size_t pll = hexf(m, "payload", pl, sizeof pl), ctl = hexf(m, "ciphertext", ct, sizeof ct), outl, backl;
    int from_init = i % 2 == 0;
    if (!split) {
      noise_hs *w = from_init ? &ini : &res, *r = from_init ? &res : &ini;
      assert_true(noise_hs_my_turn(w));
      assert_false(noise_hs_my_turn(r));
      assert_int_equal(noise_hs_write_message(w, pl, pll, out, sizeof out, &outl), 0);
      assert_int_equal(outl, ctl);
      assert_memory_equal(out, ct, ctl);
      assert_int_equal(noise_hs_read_message(r, out, outl, back, sizeof back, &backl), 0);
      assert_int_equal(backl, pll);
      if (pll) assert_memory_equal(back, pl, pll);
      if (noise_hs_done(&ini)) {
        assert_true(noise_hs_done(&res));
        const uint8_t *hi, *hr;
        size_t hl = noise_hs_handshake_hash(&ini, &hi);
        assert_int_equal(noise_hs_handshake_hash(&res, &hr), hl);
        assert_memory_equal(hi, hr, hl);
        uint8_t want[64];
        if (hexf(v, "handshake_hash", want, sizeof want) == hl) assert_memory_equal(hi, want, hl);
        if (has_is && has_rs) {
          assert_memory_equal(noise_hs_remote_static(&res), noise_hs_local_static(&ini), 32);
          assert_memory_equal(noise_hs_remote_static(&ini), noise_hs_local_static(&res), 32);
        }
        assert_int_equal(noise_hs_split(&ini, &isend, &irecv), 0);
        assert_int_equal(noise_hs_split(&res, &rsend, &rrecv), 0);
        split = 1;
      }
    } else {
      noise_cs *w = from_init ? &isend : &rsend, *r = from_init ? &rrecv : &irecv;
      assert_int_equal(noise_cs_encrypt(w, NULL, 0, pl, pll, out, sizeof out, &outl), 0);
      assert_int_equal(outl, ctl);
      assert_memory_equal(out, ct, ctl);
      assert_int_equal(noise_cs_decrypt(r, NULL, 0, out, outl, back, sizeof back, &backl), 0);
      assert_int_equal(backl, pll);
      if (pll) assert_memory_equal(back, pl, pll);
    }
  }
  assert_true(split);
  noise_hs_deinit(&ini);
  noise_hs_deinit(&res);
  return 1;
}

static void run_file(const char *rel, int *total, int *xx) {
  char path[1024];
  tu_shared_path(path, sizeof path, rel);
  json_t *root = tu_load_json(path);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(root, "vectors"), i, v) {
    const char *name = json_string_value(json_object_get(v, "protocol_name"));
    *total += run_vector(v);
    if (!strcmp(name, NOISE_PROTOCOL_NAME)) (*xx)++;
  }
  json_decref(root);
}

static void test_vectors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  int total = 0, xx = 0;
  run_file("testdata/vectors/noise/cacophony-xx-ik-nn-25519-chachapoly.json", &total, &xx);
  run_file("testdata/vectors/noise/snow-xx-ik-nn-25519-chachapoly.json", &total, &xx);
  print_message("noise vectors: %d passed (%d of them %s)\n", total, xx, NOISE_PROTOCOL_NAME);
  assert_int_equal(total, 12);
  assert_int_equal(xx, 2);
}

/* A fresh XX handshake with random keys; returns the split states. */
static void handshake(noise_cs *isend, noise_cs *irecv, noise_cs *rsend, noise_cs *rrecv) {
  uint8_t is[32], rs[32], buf[256], pl[256];
  size_t n, pn;
  randombytes_buf(is, 32);
  randombytes_buf(rs, 32);
  noise_hs ini, res;
  assert_int_equal(noise_hs_init(&ini, 1, is, (const uint8_t *)"p", 1), 0);
  assert_int_equal(noise_hs_init(&res, 0, rs, (const uint8_t *)"p", 1), 0);
  for (int i = 0; i < 3; i++) {
    noise_hs *w = i % 2 ? &res : &ini, *r = i % 2 ? &ini : &res;
    assert_int_equal(noise_hs_write_message(w, NULL, 0, buf, sizeof buf, &n), 0);
    assert_int_equal(noise_hs_read_message(r, buf, n, pl, sizeof pl, &pn), 0);
    assert_int_equal(pn, 0);
  }
  assert_int_equal(noise_hs_split(&ini, isend, irecv), 0);
  assert_int_equal(noise_hs_split(&res, rsend, rrecv), 0);
}

static void test_nonce_and_rekey(void **state) {
  (void)state;
  noise_cs a, b, c, d;
  handshake(&a, &b, &c, &d);
  uint8_t ct[64], pt[64];
  size_t n, m;
  assert_int_equal(noise_cs_encrypt(&a, NULL, 0, (const uint8_t *)"hello", 5, ct, sizeof ct, &n), 0);
  assert_int_equal(noise_cs_decrypt(&d, NULL, 0, ct, n, pt, sizeof pt, &m), 0);
  /* Replay fails: the nonce moved on. */
  assert_int_equal(noise_cs_decrypt(&d, NULL, 0, ct, n, pt, sizeof pt, &m), ERR_CRYPTO);
  /* Rekey both ends; traffic continues, and the old key no longer works. */
  noise_cs old = a;
  noise_cs_rekey(&a);
  noise_cs_rekey(&d);
  assert_memory_not_equal(old.k, a.k, 32);
  assert_int_equal(a.n, 1);
  assert_int_equal(noise_cs_encrypt(&a, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n), 0);
  assert_int_equal(noise_cs_decrypt(&d, NULL, 0, ct, n, pt, sizeof pt, &m), 0);
  assert_int_equal(noise_cs_encrypt(&old, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n), 0);
  assert_int_equal(noise_cs_decrypt(&d, NULL, 0, ct, n, pt, sizeof pt, &m), ERR_CRYPTO);
  /* REKEY is ENCRYPT(k, 2^64-1, "", zeros)[0..32]. */
  uint8_t k[32], z[32] = {0}, out[48], nonce[12] = {0};
  unsigned long long ol;
  memcpy(k, c.k, 32);
  memset(nonce + 4, 0xff, 8);
  crypto_aead_chacha20poly1305_ietf_encrypt(out, &ol, z, 32, NULL, 0, NULL, nonce, k);
  noise_cs_rekey(&c);
  assert_memory_equal(c.k, out, 32);
  /* Nonce 2^64-1 is reserved. */
  a.n = NOISE_NONCE_MAX - 1;
  assert_int_equal(noise_cs_encrypt(&a, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n), 0);
  assert_int_equal(noise_cs_encrypt(&a, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n), ERR_RANGE);
  d.n = NOISE_NONCE_MAX;
  assert_int_equal(noise_cs_decrypt(&d, NULL, 0, ct, n, pt, sizeof pt, &m), ERR_RANGE);
  /* Size caps. */
  static uint8_t big[NOISE_MAX_MSG + 16];
  b.n = 0;
  assert_int_equal(noise_cs_encrypt(&b, NULL, 0, big, NOISE_MAX_PLAINTEXT + 1, big, sizeof big, &n), ERR_TOOBIG);
  assert_int_equal(noise_cs_encrypt(&b, NULL, 0, big, NOISE_MAX_PLAINTEXT, big, sizeof big, &n), 0);
  assert_int_equal(n, NOISE_MAX_MSG);
  assert_int_equal(noise_cs_decrypt(&c, NULL, 0, ct, 15, pt, sizeof pt, &m), ERR_FORMAT);
  noise_cs_deinit(&a);
  noise_cs_deinit(&b);
  noise_cs_deinit(&c);
  noise_cs_deinit(&d);
}

static void test_tamper_and_misuse(void **state) {
  (void)state;
  uint8_t is[32], rs[32], m1[256], m2[256], pl[256];
  size_t n1, n2, pn;
  randombytes_buf(is, 32);
  randombytes_buf(rs, 32);
  /* Flip every byte of message 2 in turn: the initiator must reject each. */
  noise_hs ini, res;
  assert_int_equal(noise_hs_init(&ini, 1, is, NULL, 0), 0);
  assert_int_equal(noise_hs_init(&res, 0, rs, NULL, 0), 0);
  assert_int_equal(noise_hs_read_message(&ini, m1, 32, pl, sizeof pl, &pn), ERR_INVAL); /* not its turn */
  assert_int_equal(noise_hs_write_message(&ini, (const uint8_t *)"hi", 2, m1, sizeof m1, &n1), 0);
  assert_int_equal(n1, 34);
  assert_int_equal(noise_hs_write_message(&ini, NULL, 0, m1, sizeof m1, &n1), ERR_INVAL); /* twice */
  n1 = 34;
  assert_int_equal(noise_hs_read_message(&res, m1, n1, pl, sizeof pl, &pn), 0);
  assert_int_equal(noise_hs_write_message(&res, (const uint8_t *)"yo", 2, m2, sizeof m2, &n2), 0);
  assert_int_equal(n2, 32 + 48 + 2 + 16);
  for (size_t i = 0; i < n2; i++) {
    noise_hs copy = ini;
    m2[i] ^= 0x01;
    int rc = noise_hs_read_message(&copy, m2, n2, pl, sizeof pl, &pn);
    assert_true(rc == ERR_CRYPTO);
    assert_true(copy.failed);
    m2[i] ^= 0x01;
  }
  /* Truncated at every length. */
  for (size_t len = 0; len < n2; len++) {
    noise_hs copy = ini;
    assert_true(noise_hs_read_message(&copy, m2, len, pl, sizeof pl, &pn) < 0);
  }
  /* Payload larger than cap. */
  {
    noise_hs copy = ini;
    assert_int_equal(noise_hs_read_message(&copy, m2, n2, pl, 1, &pn), ERR_TOOBIG);
  }
  assert_int_equal(noise_hs_read_message(&ini, m2, n2, pl, sizeof pl, &pn), 0);
  assert_int_equal(pn, 2);
  assert_memory_equal(pl, "yo", 2);
  /* Split before done is refused. */
  noise_cs a, b;
  assert_int_equal(noise_hs_split(&ini, &a, &b), ERR_INVAL);
  /* Unknown names. */
  assert_int_equal(noise_hs_init_name(&res, "Noise_XK_25519_ChaChaPoly_BLAKE2b", 1, is, NULL, NULL, 0), ERR_UNSUPPORTED);
  assert_int_equal(noise_hs_init_name(&res, "Noise_XX_448_ChaChaPoly_BLAKE2b", 1, is, NULL, NULL, 0), ERR_UNSUPPORTED);
  assert_int_equal(noise_hs_init_name(&res, "Noise_XX_25519_AESGCM_SHA256", 1, is, NULL, NULL, 0), ERR_UNSUPPORTED);
  assert_int_equal(noise_hs_init_name(&res, "Noise_XX_25519_ChaChaPoly_BLAKE2s", 1, is, NULL, NULL, 0), ERR_UNSUPPORTED);
  assert_int_equal(noise_hs_init_name(&res, "Noise_XX_25519_ChaChaPoly_BLAKE2b", 1, NULL, NULL, NULL, 0), ERR_INVAL);
  /* A low-order ephemeral (all zeros) from the peer makes ee fail. */
  noise_hs r2;
  assert_int_equal(noise_hs_init(&r2, 0, rs, NULL, 0), 0);
  memset(m1, 0, 32);
  assert_int_equal(noise_hs_read_message(&r2, m1, 32, pl, sizeof pl, &pn), 0);
  assert_int_equal(noise_hs_write_message(&r2, NULL, 0, m2, sizeof m2, &n2), ERR_CRYPTO);
  assert_int_equal(noise_hs_write_message(&r2, NULL, 0, m2, sizeof m2, &n2), ERR_INVAL);
  noise_hs_deinit(&ini);
  noise_hs_deinit(&res);
  noise_hs_deinit(&r2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_vectors),
    cmocka_unit_test(test_nonce_and_rekey),
    cmocka_unit_test(test_tamper_and_misuse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
