/* KRPC and BEP 44: SHA-1 (FIPS 180 examples), the BEP 5 example packets
 * (vectors/bittorrent/bep5_krpc_examples.json) parsed and re-encoded byte for byte, the
 * BEP 44 vectors (signature input, targets, both signatures verify), a libsodium signature
 * from a seed, and malformed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/ident.h"
#include "p2p/bencode.h"
#include "p2p/krpc.h"
#include "p2p/sha1.h"

static void sha1_hex(const void *d, size_t n, char out[41]) {
  uint8_t h[20];
  sha1(d, n, h);
  hex_encode(h, 20, out);
}

static void test_sha1(void **state) {
  (void)state;
  char hex[41];
  sha1_hex("abc", 3, hex);
  assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
  sha1_hex("", 0, hex);
  assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha1_hex(two, strlen(two), hex);
  assert_string_equal(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  /* One million 'a', fed in uneven chunks. */
  sha1_ctx c;
  sha1_init(&c);
  char a[997];
  memset(a, 'a', sizeof a);
  size_t left = 1000000;
  while (left) {
    size_t n = left < sizeof a ? left : sizeof a;
    sha1_update(&c, a, n);
    left -= n;
  }
  uint8_t h[20];
  sha1_final(&c, h);
  hex_encode(h, 20, hex);
  assert_string_equal(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

static void eq_bytes(krpc_bytes b, json_t *j) {
  assert_non_null(j);
  assert_int_equal(b.len, json_string_length(j));
  assert_memory_equal(b.p, json_string_value(j), b.len);
}

static void test_bep5_examples(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/bittorrent/bep5_krpc_examples.json");
  json_t *root = tu_load_json(path);
  json_t *ex = json_object_get(root, "examples");
  assert_int_equal(json_array_size(ex), 10);
  size_t i;
  json_t *c;
  static krpc_msg m;
  json_array_foreach(ex, i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *enc = json_string_value(json_object_get(c, "bencoded"));
    json_t *j = json_object_get(c, "json");
    size_t len = strlen(enc);
    int rc = krpc_parse((const uint8_t *)enc, len, &m);
    if (rc) fail_msg("%s: parse failed (%d)", name, rc);
    eq_bytes(m.t, json_object_get(j, "t"));
    const char *y = json_string_value(json_object_get(j, "y"));
    assert_int_equal(m.kind, y[0] == 'q' ? KRPC_QUERY : y[0] == 'r' ? KRPC_RESPONSE : KRPC_ERROR);
    json_t *body = json_object_get(j, y[0] == 'q' ? "a" : "r");
    if (m.kind == KRPC_QUERY) {
      eq_bytes(m.q, json_object_get(j, "q"));
      assert_string_equal(krpc_method_name(m.method), json_string_value(json_object_get(j, "q")));
    }
    if (m.kind == KRPC_ERROR) {
      json_t *e = json_object_get(j, "e");
      assert_int_equal(m.err_code, json_integer_value(json_array_get(e, 0)));
      eq_bytes(m.err_msg, json_array_get(e, 1));
    } else {
      krpc_bytes id = {m.id, 20};
      eq_bytes(id, json_object_get(body, "id"));
      json_t *v;
      if ((v = json_object_get(body, "target"))) eq_bytes((krpc_bytes){m.target, 20}, v);
      if ((v = json_object_get(body, "info_hash"))) eq_bytes((krpc_bytes){m.info_hash, 20}, v);
      if ((v = json_object_get(body, "token"))) eq_bytes(m.token, v);
      if ((v = json_object_get(body, "nodes"))) eq_bytes(m.nodes, v);
      if ((v = json_object_get(body, "port"))) assert_true(m.has_port && m.port == json_integer_value(v));
      if ((v = json_object_get(body, "implied_port")))
        assert_true(m.has_implied_port && m.implied_port == json_integer_value(v));
      if ((v = json_object_get(body, "values"))) {
        assert_int_equal(m.n_values, json_array_size(v));
        for (size_t k = 0; k < m.n_values; k++) eq_bytes(m.values[k], json_array_get(v, k));
      }
    }
    uint8_t out[512];
    int n = krpc_encode(&m, out, sizeof out);
    if (n != (int)len || memcmp(out, enc, len)) fail_msg("%s: re-encoding differs: %.*s", name, n > 0 ? n : 0, out);
  }
  json_decref(root);
}

static void test_bep44_vectors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/vectors/bittorrent/bep44_vectors.json");
  json_t *root = tu_load_json(path);
  json_t *vecs = json_object_get(root, "vectors");
  assert_int_equal(json_array_size(vecs), 3);
  size_t i;
  json_t *c;
  int verified = 0;
  json_array_foreach(vecs, i, c) {
    const char *v = json_string_value(json_object_get(c, "value_bencoded"));
    uint8_t target[20], want[20];
    assert_int_equal(hex_decode(json_string_value(json_object_get(c, "target_id")), 40, want, 20), 0);
    json_t *pkj = json_object_get(c, "public_key");
    if (!pkj) {
      krpc_target_immutable((const uint8_t *)v, strlen(v), target);
      assert_memory_equal(target, want, 20);
      continue;
    }
    uint8_t pk[32], sig[64];
    assert_int_equal(hex_decode(json_string_value(pkj), 64, pk, 32), 0);
    assert_int_equal(hex_decode(json_string_value(json_object_get(c, "signature")), 128, sig, 64), 0);
    const char *salt = json_string_value(json_object_get(c, "salt"));
    int64_t seq = json_integer_value(json_object_get(c, "seq"));
    krpc_target_mutable(pk, (const uint8_t *)salt, strlen(salt), target);
    assert_memory_equal(target, want, 20);
    uint8_t in[256];
    int n = krpc_sig_input((const uint8_t *)salt, strlen(salt), seq, (const uint8_t *)v, strlen(v), in, sizeof in);
    const char *sin = json_string_value(json_object_get(c, "signature_input"));
    assert_int_equal(n, (int)strlen(sin));
    assert_memory_equal(in, sin, (size_t)n);
    assert_int_equal(ident_verify(pk, in, (size_t)n, sig), 0);
    sig[7] ^= 1;
    assert_int_equal(ident_verify(pk, in, (size_t)n, sig), ERR_CRYPTO);
    verified++;
  }
  assert_int_equal(verified, 2);
  json_decref(root);
}

/* Our own signatures: from a seed with libsodium, round trip through a put message. */
static void test_put_roundtrip(void **state) {
  (void)state;
  uint8_t seed[32];
  for (int i = 0; i < 32; i++) seed[i] = (uint8_t)i;
  ident id;
  assert_int_equal(ident_from_seed(seed, &id), 0);
  const char *v = "d4:porti7447e4:tcpsl12:1.2.3.4:7447ee";
  uint8_t in[256], sig[64];
  int n = krpc_sig_input((const uint8_t *)"apiary-node-v1", 14, 42, (const uint8_t *)v, strlen(v), in, sizeof in);
  assert_true(n > 0);
  ident_sign(&id, in, (size_t)n, sig);
  static krpc_msg m, p;
  memset(&m, 0, sizeof m);
  m.kind = KRPC_QUERY;
  m.method = KRPC_PUT;
  m.t = (krpc_bytes){(const uint8_t *)"tx", 2};
  m.id = (const uint8_t *)"abcdefghij0123456789";
  m.k = id.pk;
  m.sig = sig;
  m.has_seq = 1;
  m.seq = 42;
  m.has_cas = 1;
  m.cas = 41;
  m.salt = (krpc_bytes){(const uint8_t *)"apiary-node-v1", 14};
  m.token = (krpc_bytes){(const uint8_t *)"tok", 3};
  m.v = (krpc_bytes){(const uint8_t *)v, strlen(v)};
  uint8_t out[1024];
  int len = krpc_encode(&m, out, sizeof out);
  assert_true(len > 0);
  assert_int_equal(krpc_parse(out, (size_t)len, &p), 0);
  assert_int_equal(p.method, KRPC_PUT);
  assert_true(p.has_seq && p.seq == 42 && p.has_cas && p.cas == 41);
  assert_memory_equal(p.k, id.pk, 32);
  assert_int_equal(p.v.len, strlen(v));
  n = krpc_sig_input(p.salt.p, p.salt.len, p.seq, p.v.p, p.v.len, in, sizeof in);
  assert_int_equal(ident_verify(p.k, in, (size_t)n, p.sig), 0);
  uint8_t again[1024];
  assert_int_equal(krpc_encode(&p, again, sizeof again), len);
  assert_memory_equal(again, out, (size_t)len);
  ident_wipe(&id);
}

static int parse_str(const char *s) {
  static krpc_msg m;
  return krpc_parse((const uint8_t *)s, strlen(s), &m);
}

static void test_malformed(void **state) {
  (void)state;
  static krpc_msg m;
  /* Not a dict, missing keys, wrong sizes. */
  assert_true(parse_str("le") < 0);
  assert_true(parse_str("d1:t2:aa1:y1:qe") < 0);                                   /* no q / a */
  assert_true(parse_str("d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe") < 0);             /* short id */
  assert_true(parse_str("d1:ade1:q4:ping1:t2:aa1:y1:qe") < 0);                      /* no id */
  assert_true(parse_str("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t0:1:y1:qe") < 0); /* empty t */
  assert_true(parse_str("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe") < 0);
  assert_true(parse_str("d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe") < 0); /* no target */
  assert_true(parse_str("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1ee"
                        "1:q13:announce_peer1:t2:aa1:y1:qe") < 0);                  /* no token */
  assert_true(parse_str("d1:eli201ee1:t2:aa1:y1:ee") == 0);                         /* error without message */
  assert_true(parse_str("d1:ele1:t2:aa1:y1:ee") < 0);
  assert_true(parse_str("d1:rd2:id20:abcdefghij01234567896:valuesl3:abcee1:t2:aa1:y1:re") < 0); /* bad peer */
  /* put: v must be strict bencoding (unsorted dict -> reject, BEP 44 203). */
  assert_true(parse_str("d1:ad2:id20:abcdefghij01234567895:token1:x1:vd1:bi1e1:ai2eee1:q3:put1:t2:aa1:y1:qe") < 0);
  assert_true(parse_str("d1:ad2:id20:abcdefghij01234567895:token1:x1:vd1:ai1e1:bi2eee1:q3:put1:t2:aa1:y1:qe") == 0);
  /* put: k without sig/seq. */
  char buf[256];
  snprintf(buf, sizeof buf, "d1:ad2:id20:abcdefghij01234567891:k32:%s5:token1:x1:vi1ee1:q3:put1:t2:aa1:y1:qe",
           "0123456789abcdef0123456789abcdef");
  assert_true(parse_str(buf) < 0);
  /* Unknown methods parse (the DHT answers 204); unsorted packet keys are tolerated. */
  const char *vote = "d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe";
  assert_int_equal(krpc_parse((const uint8_t *)vote, strlen(vote), &m), 0);
  assert_int_equal(m.method, KRPC_UNKNOWN);
  const char *unsorted = "d1:y1:q1:t2:aa1:q4:ping1:ad2:id20:abcdefghij0123456789ee";
  assert_int_equal(krpc_parse((const uint8_t *)unsorted, strlen(unsorted), &m), 0);
  assert_int_equal(m.method, KRPC_PING);
  /* Errors build. */
  uint8_t out[128];
  int n = krpc_encode_error((const uint8_t *)"aa", 2, 201, "A Generic Error Ocurred", out, sizeof out);
  const char *want = "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee";
  assert_int_equal(n, (int)strlen(want));
  assert_memory_equal(out, want, (size_t)n);
  assert_int_equal(krpc_encode_error((const uint8_t *)"aa", 2, 201, "x", out, 8), ERR_TOOBIG);
  /* Oversized packet. */
  uint8_t *big = calloc(1, KRPC_MAX_PACKET + 1);
  assert_int_equal(krpc_parse(big, KRPC_MAX_PACKET + 1, &m), ERR_TOOBIG);
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sha1),
      cmocka_unit_test(test_bep5_examples),
      cmocka_unit_test(test_bep44_vectors),
      cmocka_unit_test(test_put_roundtrip),
      cmocka_unit_test(test_malformed),
  };
  return cmocka_run_group_tests_name("krpc", tests, NULL, NULL);
}
