/* CLI tests for `apiary model`: inspect --json fields of the tiny reference model,
 * tokenize --json against llama.cpp's reference ids, --help, usage errors (exit 2) and a
 * missing or invalid file (exit 1 with a message); pull from the shared mirror, and pull
 * stories15M built from public sources served by `python3 -m http.server` on loopback
 * (the upstream llama2.c checkpoint rebuilt from the shared F32 file), through
 * $APIARY_MODEL_MIRROR_URL; convert-llama2c. Runs the built binary (APIARY_BIN). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "llm/gguf.h"
#include "llm/llama2c.h"
#include "llm/quant.h"

static char out[1 << 16], err[1 << 16];

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

/* Single-quotes s for sh into q. */
static void sh_quote(const char *s, char *q, size_t cap) {
  size_t n = 0;
  q[n++] = '\'';
  for (; *s && n + 5 < cap; s++) {
    if (*s == '\'') {
      memcpy(q + n, "'\\''", 4);
      n += 4;
    } else {
      q[n++] = *s;
    }
  }
  q[n++] = '\'';
  q[n] = 0;
}

static json_t *parse_out(void) {
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  if (!j) fail_msg("bad JSON output (%s): %s", je.text, out);
  return j;
}

static void test_inspect_json(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char path[1024];
  tu_shared_path(path, sizeof path, "testdata/tiny-spm4k-Q8_0.gguf");
  assert_int_equal(run("model inspect %s --json", path), 0);
  json_t *j = parse_out();
  assert_string_equal(json_string_value(json_object_get(j, "architecture")), "llama");
  assert_string_equal(json_string_value(json_object_get(j, "name")), "tiny-spm4k");
  assert_string_equal(json_string_value(json_object_get(j, "sha256")),
                      "53fb7ae09941c7fc410681aa06f9f501f409ce51b3ff40f27a7ef9fb6eefd561");
  assert_int_equal(json_integer_value(json_object_get(j, "size")), 808352);
  assert_int_equal(json_integer_value(json_object_get(j, "file_type")), 7);
  assert_int_equal(json_integer_value(json_object_get(j, "tensor_count")), 21);
  json_t *types = json_object_get(j, "tensor_types");
  assert_int_equal(json_integer_value(json_object_get(types, "Q8_0")), 14);
  assert_int_equal(json_integer_value(json_object_get(types, "F32")), 7);
  assert_int_equal(json_integer_value(json_object_get(j, "context_length")), 512);
  assert_int_equal(json_integer_value(json_object_get(j, "embedding_length")), 64);
  assert_int_equal(json_integer_value(json_object_get(j, "block_count")), 2);
  assert_int_equal(json_integer_value(json_object_get(j, "head_count")), 4);
  assert_int_equal(json_integer_value(json_object_get(j, "head_count_kv")), 2);
  assert_int_equal(json_integer_value(json_object_get(j, "vocab_size")), 4096);
  assert_string_equal(json_string_value(json_object_get(j, "tokenizer_model")), "llama");
  /* token_embd + output 64x4096, per block 4 attention + 3 ffn matrices and 2 norms. */
  int64_t params = 2 * 64 * 4096 + 64 + 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 172 + 2 * 64);
  assert_int_equal(json_integer_value(json_object_get(j, "parameters")), params);
  assert_true(json_is_object(json_object_get(j, "provenance")));
  json_decref(j);
  /* The text form names the same facts. */
  assert_int_equal(run("model inspect %s", path), 0);
  assert_non_null(strstr(out, "llama"));
  assert_non_null(strstr(out, "Q8_0 14"));
}

/* Licence, source and dataset metadata show up under "provenance". */
static void test_inspect_provenance(void **state) {
  (void)state;
  char dir[256], path[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/p.gguf", dir);
  gguf_writer *w = gguf_writer_new();
  gguf_str ds[2] = {{"roneneldan/TinyStories", 22}, {"other", 5}};
  float data[32] = {0};
  uint64_t ne[2] = {8, 4};
  assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama", 5), 0);
  assert_int_equal(gguf_writer_set_str(w, "general.license", "mit", 3), 0);
  assert_int_equal(gguf_writer_set_str(w, "general.source.url", "https://example.org/m", 21), 0);
  assert_int_equal(gguf_writer_set_arr_str(w, "general.datasets", ds, 2), 0);
  assert_int_equal(gguf_writer_set_u32(w, "llama.block_count", 3), 0);
  assert_int_equal(gguf_writer_add_tensor(w, "w", 2, ne, QT_F32, data, sizeof data), 0);
  assert_int_equal(gguf_writer_write(w, path), 0);
  gguf_writer_free(w);
  assert_int_equal(run("model inspect --json %s", path), 0);
  json_t *j = parse_out(), *p = json_object_get(j, "provenance");
  assert_string_equal(json_string_value(json_object_get(p, "general.license")), "mit");
  assert_string_equal(json_string_value(json_object_get(p, "general.source.url")), "https://example.org/m");
  assert_string_equal(json_string_value(json_array_get(json_object_get(p, "general.datasets"), 0)),
                      "roneneldan/TinyStories");
  assert_int_equal(json_integer_value(json_object_get(j, "block_count")), 3);
  assert_int_equal(json_integer_value(json_object_get(j, "parameters")), 32);
  assert_null(json_object_get(j, "vocab_size"));
  json_decref(j);
  assert_int_equal(run("model inspect %s", path), 0);
  assert_non_null(strstr(out, "general.license"));
  /* No tokenizer in it: tokenize fails with a message. */
  assert_int_equal(run("model tokenize %s --text hi", path), 1);
  assert_non_null(strstr(err, "tokenizer"));
  tu_rm_rf(dir);
}

static void test_tokenize_reference(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char model[1024], ref[1024];
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-F32.gguf");
  tu_shared_path(ref, sizeof ref, "testdata/tiny-spm4k-F32.ref.json");
  json_t *r = tu_load_json(ref), *e;
  size_t i;
  json_array_foreach(json_object_get(r, "tokenize"), i, e) {
    char q[2048];
    sh_quote(json_string_value(json_object_get(e, "text")), q, sizeof q);
    assert_int_equal(run("model tokenize %s --text %s --json", model, q), 0);
    json_t *j = parse_out();
    if (!json_equal(json_object_get(j, "ids"), json_object_get(e, "ids"))) fail_msg("text %zu: %s", i, out);
    json_decref(j);
    assert_int_equal(run("model tokenize %s --no-parse-special --text %s --json", model, q), 0);
    j = parse_out();
    assert_true(json_equal(json_object_get(j, "ids"), json_object_get(e, "ids_no_parse_special")));
    json_decref(j);
  }
  json_decref(r);
  /* Special text: one id with parsing, plain text without; plain output is one line. */
  assert_int_equal(run("model tokenize %s --text '</s>'", model), 0);
  assert_string_equal(out, "1 2\n");
  assert_int_equal(run("model tokenize %s --text '</s>' --no-parse-special", model), 0);
  assert_string_not_equal(out, "1 2\n");
}

static void test_help_and_usage(void **state) {
  (void)state;
  assert_int_equal(run("model --help"), 0);
  assert_non_null(strstr(out, "usage: apiary model"));
  assert_non_null(strstr(out, "inspect"));
  assert_non_null(strstr(out, "tokenize"));
  assert_int_equal(run("model inspect --help"), 0);
  assert_non_null(strstr(out, "usage: apiary model inspect"));
  assert_int_equal(run("model tokenize --help"), 0);
  assert_non_null(strstr(out, "usage: apiary model tokenize"));
  assert_int_equal(run("model"), 2);
  assert_int_equal(run("model frobnicate"), 2);
  assert_non_null(strstr(err, "frobnicate"));
  assert_int_equal(run("model inspect --frob x.gguf"), 2);
  assert_int_equal(run("model inspect"), 2);
  assert_int_equal(run("model inspect a.gguf b.gguf"), 2);
  assert_int_equal(run("model tokenize x.gguf"), 2); /* no --text */
  assert_non_null(strstr(err, "--text"));
}

static void test_bad_files(void **state) {
  (void)state;
  char dir[256];
  tu_tmpdir(dir, sizeof dir);
  assert_int_equal(run("model inspect %s/missing.gguf", dir), 1);
  assert_non_null(strstr(err, "missing.gguf"));
  assert_non_null(strstr(err, "No such file"));
  assert_int_equal(run("model tokenize %s/missing.gguf --text hi", dir), 1);
  char path[512];
  snprintf(path, sizeof path, "%s/junk.gguf", dir);
  FILE *f = fopen(path, "w");
  static const char junk[] = "GGUF\x03\x00\x00\x00 not really";
  fwrite(junk, 1, sizeof junk - 1, f);
  fclose(f);
  assert_int_equal(run("model inspect %s", path), 1);
  assert_non_null(strstr(err, "not a valid GGUF file"));
  assert_non_null(strstr(err, "at byte"));
  tu_rm_rf(dir);
}

/* model pull/list: the catalog model from the shared mirror, checked against the sha256
 * published in shared/models/README.md; list; catalog; clear errors. */
static void test_pull_and_list(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], home[300], mirror[1024];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  tu_shared_path(mirror, sizeof mirror, "models");
  assert_int_equal(run("init --home %s", home), 0);
  assert_int_equal(run("model list --home %s --json", home), 0);
  assert_non_null(strstr(out, "\"models\":[]"));
  assert_int_equal(run("model pull --home %s stories15M --from %s --json", home, mirror), 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "sha256")),
                      "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1");
  json_decref(j);
  assert_int_equal(run("model list --home %s --json", home), 0);
  assert_non_null(strstr(out, "stories15M-Q8_0.gguf"));
  assert_int_equal(run("model list --home %s --catalog --json", home), 0);
  assert_non_null(strstr(out, "\"license\":\"MIT\""));
  /* Nothing in the mirror and the public sources unreachable (a closed loopback port
   * stands in for them): a message that says what to do. */
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "APIARY_MODEL_MIRROR_URL=http://127.0.0.1:1 %s model pull --home %s stories15M-f32 "
           "--from %s", tu_apiary_bin(), home, dir);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
  assert_non_null(strstr(err, "http://127.0.0.1:1/stories15M.bin"));
  assert_non_null(strstr(err, "run the same pull again to resume"));
  assert_int_equal(run("model pull --home %s no-such-model", home), 1);
  assert_non_null(strstr(err, "not in the catalog"));
  assert_int_equal(run("model pull --home %s", home), 2);
  tu_rm_rf(dir);
}

/* A free loopback TCP port (bound and released; the race is harmless in tests). */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(0x7f000001);
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* model pull stories15M with no mirror directory: the recipe downloads the llama2.c
 * checkpoint and the vocabulary from an HTTP server standing in for Hugging Face and
 * GitHub, converts, quantizes, and gets llama.cpp's exact file. Also convert-llama2c. */
static void test_pull_recipe_http(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  if (tu_sh("command -v python3 >/dev/null 2>&1")) {
    print_message("python3 not found; skipping\n");
    skip();
  }
  char dir[256], home[300], srv[300], ref[1024], bin[400], vocab[400], e[512], log[400];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  snprintf(srv, sizeof srv, "%s/srv", dir);
  snprintf(bin, sizeof bin, "%s/stories15M.bin", srv);
  snprintf(vocab, sizeof vocab, "%s/ggml-vocab-llama-spm.gguf", srv);
  snprintf(log, sizeof log, "%s/http.log", dir);
  assert_int_equal(tu_shared_path(ref, sizeof ref, "models/stories15M-F32.gguf"), 0);
  assert_int_equal(tu_sh("mkdir -p %s && cp %s %s", srv, ref, vocab), 0);
  gguf_file *g;
  assert_int_equal(gguf_open(ref, &g, e, sizeof e), 0);
  assert_int_equal(llama2c_write_checkpoint(g, 256, bin, e, sizeof e), 0);
  gguf_close(g);
  int port = free_port();
  char port_s[16];
  snprintf(port_s, sizeof port_s, "%d", port);
  const char *argv[] = {"/usr/bin/env", "python3", "-m", "http.server", port_s, "--bind", "127.0.0.1",
                        "--directory", srv, NULL};
  pid_t pid = tu_spawn(argv, log);
  int up = 0;
  for (int i = 0; i < 100 && !up; i++) {
    up = tu_sh("python3 -c \"import socket; socket.create_connection(('127.0.0.1', %d), 1)\" 2>/dev/null",
               port) == 0;
    if (!up) usleep(100000);
  }
  assert_true(up);
  assert_int_equal(run("init --home %s", home), 0);
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "APIARY_MODEL_MIRROR_URL=http://127.0.0.1:%d %s model pull --home %s stories15M --json",
           port, tu_apiary_bin(), home);
  int rc = tu_run(cmd, out, sizeof out, err, sizeof err);
  if (rc) fail_msg("pull exited %d: %s", rc, err);
  json_t *j = parse_out();
  assert_string_equal(json_string_value(json_object_get(j, "sha256")),
                      "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1");
  json_decref(j);
  assert_non_null(strstr(err, "downloading"));
  assert_non_null(strstr(err, "converting"));
  assert_non_null(strstr(err, "quantizing"));
  kill(pid, SIGTERM);
  tu_wait_exit(pid, 5000);
  /* The converter on its own. */
  char conv[400];
  snprintf(conv, sizeof conv, "%s/out.gguf", dir);
  assert_int_equal(run("model convert-llama2c %s %s %s --json", bin, ref, conv), 0);
  j = parse_out();
  assert_string_equal(json_string_value(json_object_get(j, "sha256")),
                      "a4a429f2a6527275de0d53ffa5e3e8eabe320f618004120d51e1b1faae8bb567");
  json_decref(j);
  assert_int_equal(run("model convert-llama2c %s %s %s", ref, ref, conv), 1);
  assert_non_null(strstr(err, "llama2.c"));
  assert_int_equal(run("model convert-llama2c %s", bin), 2);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inspect_json),
      cmocka_unit_test(test_inspect_provenance),
      cmocka_unit_test(test_tokenize_reference),
      cmocka_unit_test(test_help_and_usage),
      cmocka_unit_test(test_bad_files),
      cmocka_unit_test(test_pull_and_list),
      cmocka_unit_test(test_pull_recipe_http),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
