/* bencode: the BEP 3 vectors (../shared/testdata/vectors/bittorrent/bencode_cases.json) in
 * both directions, the derived invalid cases, hostile inputs (depth, sizes, counts,
 * overflow) and the writer's own checks (sorted keys, balanced containers, room). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "p2p/bencode.h"

/* Encodes a JSON value as bencoding with sorted keys (the reference for the vectors). */
static int cmp_keys(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void enc_json(ben_w *w, json_t *j) {
  switch (json_typeof(j)) {
  case JSON_INTEGER: ben_w_int(w, json_integer_value(j)); break;
  case JSON_STRING: ben_w_str(w, json_string_value(j), json_string_length(j)); break;
  case JSON_ARRAY: {
    ben_w_list(w);
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) enc_json(w, v);
    ben_w_end(w);
    break;
  }
  case JSON_OBJECT: {
    size_t n = json_object_size(j), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_keys);
    ben_w_dict(w);
    for (i = 0; i < n; i++) {
      ben_w_key(w, keys[i]);
      enc_json(w, json_object_get(j, keys[i]));
    }
    ben_w_end(w);
    free(keys);
    break;
  }
  default: fail_msg("unexpected JSON type");
  }
}

/* Checks a decoded node against the JSON it should equal. */
static void match_json(const ben_node *n, json_t *j) {
  switch (json_typeof(j)) {
  case JSON_INTEGER:
    assert_int_equal(n->type, BEN_INT);
    assert_true(n->i == json_integer_value(j));
    break;
  case JSON_STRING:
    assert_int_equal(n->type, BEN_STR);
    assert_int_equal(n->len, json_string_length(j));
    if (n->len) assert_memory_equal(n->str, json_string_value(j), n->len);
    break;
  case JSON_ARRAY: {
    assert_int_equal(n->type, BEN_LIST);
    assert_int_equal(n->count, json_array_size(j));
    for (size_t i = 0; i < n->count; i++) match_json(ben_list_at(n, i), json_array_get(j, i));
    break;
  }
  case JSON_OBJECT: {
    assert_int_equal(n->type, BEN_DICT);
    assert_int_equal(n->count, json_object_size(j));
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
      const ben_node *got = ben_dict_get(n, k);
      assert_non_null(got);
      match_json(got, v);
    }
    break;
  }
  default: fail();
  }
}

static void test_vectors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/bittorrent/bencode_cases.json");
  json_t *root = tu_load_json(path);
  json_t *valid = json_object_get(root, "valid"), *invalid = json_object_get(root, "invalid");
  assert_true(json_array_size(valid) >= 13);
  assert_true(json_array_size(invalid) >= 13);
  size_t i;
  json_t *c;
  ben_node nodes[64];
  json_array_foreach(valid, i, c) {
    const char *enc = json_string_value(json_object_get(c, "bencoded"));
    size_t len = strlen(enc);
    int n = ben_decode((const uint8_t *)enc, len, nodes, 64, 0);
    if (n <= 0) fail_msg("valid case %s rejected (%d)", enc, n);
    assert_int_equal(nodes[0].span, (uint32_t)n);
    assert_int_equal(nodes[0].raw_len, len);
    match_json(&nodes[0], json_object_get(c, "json"));
    uint8_t out[256];
    ben_w w;
    ben_w_init(&w, out, sizeof out);
    enc_json(&w, json_object_get(c, "json"));
    assert_int_equal(ben_w_finish(&w), (int)len);
    assert_memory_equal(out, enc, len);
  }
  json_array_foreach(invalid, i, c) {
    const char *enc = json_string_value(json_object_get(c, "bencoded"));
    int n = ben_decode((const uint8_t *)enc, strlen(enc), nodes, 64, 0);
    if (n >= 0) fail_msg("invalid case %s accepted", enc);
    /* Lenient order only relaxes key order. */
    n = ben_decode((const uint8_t *)enc, strlen(enc), nodes, 64, BEN_LENIENT_ORDER);
    if (strcmp(enc, "d4:spam4:eggs3:cow3:mooe")) {
      if (n >= 0) fail_msg("invalid case %s accepted by the lenient decoder", enc);
    } else {
      assert_int_equal(n, 5);
      assert_non_null(ben_dict_get(&nodes[0], "cow"));
    }
  }
  json_decref(root);
}

static int dec(const char *s, unsigned flags) {
  ben_node nodes[64];
  return ben_decode((const uint8_t *)s, strlen(s), nodes, 64, flags);
}

static void test_hostile(void **state) {
  (void)state;
  /* Integers at and past the int64 edges. */
  assert_true(dec("i9223372036854775807e", 0) == 1);
  assert_true(dec("i-9223372036854775808e", 0) == 1);
  assert_true(dec("i9223372036854775808e", 0) < 0);
  assert_true(dec("i-9223372036854775809e", 0) < 0);
  assert_true(dec("i99999999999999999999999e", 0) < 0);
  assert_true(dec("i-e", 0) < 0);
  assert_true(dec("i+1e", 0) < 0);
  assert_true(dec("i1.5e", 0) < 0);
  assert_true(dec("", 0) < 0);
  assert_true(dec("e", 0) < 0);
  assert_true(dec("x", 0) < 0);
  assert_true(dec("4294967296:a", 0) < 0);
  assert_true(dec("99999999999999999999:a", 0) < 0);
  assert_true(dec("1:", 0) < 0);
  assert_true(dec(":", 0) < 0);
  assert_true(dec("d1:ae", 0) < 0);        /* key without value */
  assert_true(dec("d1:a", 0) < 0);
  assert_true(dec("l", 0) < 0);
  assert_true(dec("dle1:ae", 0) < 0);      /* list as key */
  assert_true(dec("d1:b0:1:a0:1:b0:e", BEN_LENIENT_ORDER) < 0); /* duplicate after disorder */
  assert_true(dec("d1:c0:1:a0:1:b0:1:c0:e", BEN_LENIENT_ORDER) < 0);
  /* Depth: 32 levels decode, 33 do not. */
  char deep[200];
  memset(deep, 'l', 32);
  memset(deep + 32, 'e', 32);
  deep[64] = 0;
  assert_true(dec(deep, 0) == 32);
  memset(deep, 'l', 33);
  memset(deep + 33, 'e', 33);
  deep[66] = 0;
  assert_int_equal(dec(deep, 0), ERR_TOOBIG);
  /* Node cap. */
  char many[256] = "l";
  for (int i = 0; i < 70; i++) strcat(many, "i1e");
  strcat(many, "e");
  assert_int_equal(dec(many, 0), ERR_TOOBIG);
  /* Embedded NULs and binary strings are fine. */
  const uint8_t bin[] = {'3', ':', 0, 0xff, 0};
  ben_node n[2];
  assert_int_equal(ben_decode(bin, sizeof bin, n, 2, 0), 1);
  assert_int_equal(n[0].len, 3);
  /* Random garbage never crashes (sanitizers watch). */
  uint32_t x = 12345;
  uint8_t junk[64];
  ben_node big[64];
  for (int r = 0; r < 20000; r++) {
    size_t len = (size_t)(r % 64);
    for (size_t i = 0; i < len; i++) {
      x = x * 1103515245u + 12345u;
      static const char alpha[] = "ldie0123456789:-x";
      junk[i] = (uint8_t)alpha[(x >> 16) % (sizeof alpha - 1)];
    }
    (void)ben_decode(junk, len, big, 64, (unsigned)(r & 1));
  }
}

static void test_accessors(void **state) {
  (void)state;
  const char *s = "d1:ai-7e1:bl1:x1:ye1:cd1:di1eee";
  ben_node n[16];
  assert_int_equal(ben_decode((const uint8_t *)s, strlen(s), n, 16, 0), 11);
  int64_t v = 0;
  assert_true(ben_dict_int(&n[0], "a", &v));
  assert_true(v == -7);
  const ben_node *b = ben_dict_get(&n[0], "b");
  assert_non_null(b);
  assert_int_equal(b->count, 2);
  assert_memory_equal(ben_list_at(b, 1)->str, "y", 1);
  assert_null(ben_list_at(b, 2));
  const ben_node *c = ben_dict_get(&n[0], "c");
  assert_true(ben_dict_int(c, "d", &v) && v == 1);
  assert_null(ben_dict_get(&n[0], "z"));
  assert_null(ben_dict_str(&n[0], "a", 0));
  assert_int_equal(c->raw_len, 8);
}

static void test_writer(void **state) {
  (void)state;
  uint8_t out[64];
  ben_w w;
  ben_w_init(&w, out, sizeof out);
  ben_w_dict(&w);
  ben_w_key(&w, "b");
  ben_w_int(&w, INT64_MIN);
  ben_w_key(&w, "a"); /* out of order */
  assert_int_equal(w.err, ERR_FORMAT);
  ben_w_init(&w, out, sizeof out);
  ben_w_dict(&w);
  ben_w_key(&w, "a");
  ben_w_int(&w, 1);
  ben_w_key(&w, "a"); /* duplicate */
  assert_int_equal(w.err, ERR_FORMAT);
  ben_w_init(&w, out, sizeof out);
  ben_w_dict(&w);
  ben_w_int(&w, 1); /* value where a key belongs */
  assert_int_equal(w.err, ERR_FORMAT);
  ben_w_init(&w, out, sizeof out);
  ben_w_list(&w);
  assert_int_equal(ben_w_finish(&w), ERR_FORMAT); /* unbalanced */
  ben_w_init(&w, out, 4);
  ben_w_cstr(&w, "spam");
  assert_int_equal(ben_w_finish(&w), ERR_TOOBIG);
  ben_w_init(&w, out, sizeof out);
  ben_w_dict(&w);
  ben_w_key(&w, "a");
  ben_w_int(&w, INT64_MIN);
  ben_w_key(&w, "aa");
  ben_w_list(&w);
  ben_w_end(&w);
  ben_w_end(&w);
  int n = ben_w_finish(&w);
  const char *want = "d1:ai-9223372036854775808e2:aalee";
  assert_int_equal(n, (int)strlen(want));
  assert_memory_equal(out, want, (size_t)n);
  ben_node nd[8];
  assert_int_equal(ben_decode(out, (size_t)n, nd, 8, 0), 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_vectors),
      cmocka_unit_test(test_hostile),
      cmocka_unit_test(test_accessors),
      cmocka_unit_test(test_writer),
  };
  return cmocka_run_group_tests_name("bencode", tests, NULL, NULL);
}
