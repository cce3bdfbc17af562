/* Keccak-256 against ../shared/testdata/vectors/ethereum/keccak256.json (digests computed by
 * two independent implementations), plus streaming equivalence and the SHA3 negative check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/hex.h"
#include "crypto/keccak.h"

/* Inputs are text, or "a*N" meaning byte 0x61 repeated N times. */
static size_t expand_input(const char *in, uint8_t **out) {
  size_t n;
  if (!strncmp(in, "a*", 2) && in[2] >= '0' && in[2] <= '9') {
    n = (size_t)atol(in + 2);
    *out = malloc(n ? n : 1);
    memset(*out, 'a', n);
  } else {
    n = strlen(in);
    *out = malloc(n + 1);
    memcpy(*out, in, n);
  }
  return n;
}

static void test_vectors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/ethereum/keccak256.json");
  json_t *root = tu_load_json(path);
  json_t *vecs = json_object_get(root, "vectors");
  assert_true(json_array_size(vecs) >= 5);
  size_t i;
  json_t *v;
  json_array_foreach(vecs, i, v) {
    const char *in = json_string_value(json_object_get(v, "input"));
    const char *want = json_string_value(json_object_get(v, "keccak256"));
    const char *sha3 = json_string_value(json_object_get(v, "sha3_256"));
    assert_non_null(in);
    assert_non_null(want);
    uint8_t *data;
    size_t n = expand_input(in, &data);
    uint8_t h[32];
    char hex[65];
    keccak256(data, n, h);
    hex_encode(h, 32, hex);
    if (strcmp(hex, want)) fail_msg("keccak256(%s) = %s, want %s", in, hex, want);
    if (sha3) assert_string_not_equal(hex, sha3);
    /* Streaming in uneven chunks gives the same digest. */
    for (size_t step = 1; step < 200; step += 37) {
      keccak256_ctx c;
      keccak256_init(&c);
      for (size_t off = 0; off < n; off += step) keccak256_update(&c, data + off, n - off < step ? n - off : step);
      uint8_t h2[32];
      keccak256_final(&c, h2);
      assert_memory_equal(h, h2, 32);
    }
    free(data);
  }
  json_decref(root);
}

/* Anchor quoted in specs: the ERC-20 transfer selector. */
static void test_selector(void **state) {
  (void)state;
  const char *sig = "transfer(address,uint256)";
  uint8_t h[32];
  keccak256(sig, strlen(sig), h);
  assert_int_equal(h[0], 0xa9);
  assert_int_equal(h[1], 0x05);
  assert_int_equal(h[2], 0x9c);
  assert_int_equal(h[3], 0xbb);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors), cmocka_unit_test(test_selector)};
  return cmocka_run_group_tests_name("keccak", tests, NULL, NULL);
}
