/* Model store: catalog pull from an offline mirror (the shared stories15M, checked against
 * the sha256 published in its README), local files, sha256 mismatch, non-GGUF input, and
 * HTTP download with resume from a real libmicrohttpd server on loopback that honours
 * Range requests; the stories15M recipe (llama2.c checkpoint + vocabulary, converted and
 * quantized) from that server as an HTTP mirror, resuming an interrupted checkpoint
 * download, with the published sha256 of each file, and its failures (a corrupt
 * checkpoint, a wrong vocabulary, no server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/gguf.h"
#include "llm/llama2c.h"
#include "llm/mstore.h"
#include "p2p/fetch.h"

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* A fake-but-valid-magic payload of n bytes with a deterministic pattern. */
static uint8_t *make_payload(size_t n) {
  uint8_t *p = malloc(n);
  memcpy(p, "GGUF", 4);
  for (size_t i = 4; i < n; i++) p[i] = (uint8_t)(i * 2654435761u >> 13);
  return p;
}

static void test_mirror_catalog(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], models[300], mirror[1024];
  tu_tmpdir(dir, sizeof dir);
  snprintf(models, sizeof models, "%s/models", dir);
  tu_shared_path(mirror, sizeof mirror, "models");
  mstore_pull_opts o = {.download = fetch_url, .mirror_dir = mirror};
  mstore_model m;
  char err[1024] = "";
  int rc = mstore_pull(models, "stories15M", &o, &m, err, sizeof err);
  if (rc) fail_msg("pull: %s", err);
  /* The sha256 published in shared/models/README.md for stories15M-Q8_0.gguf. */
  assert_string_equal(m.sha256, "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1");
  assert_int_equal(m.size, 26671392);
  /* Listed and resolvable by name, file name and sha prefix. */
  mstore_model list[8];
  assert_int_equal(mstore_list(models, list, 8), 1);
  mstore_model r;
  assert_int_equal(mstore_resolve(models, "stories15M", &r, err, sizeof err), 0);
  assert_string_equal(r.path, m.path);
  assert_int_equal(mstore_resolve(models, "ba30bfbbfef3", &r, err, sizeof err), 0);
  assert_int_equal(mstore_resolve(models, "stories15M-Q8_0.gguf", &r, err, sizeof err), 0);
  assert_int_equal(mstore_resolve(models, "nope", &r, err, sizeof err), ERR_NOTFOUND);
  assert_non_null(strstr(err, "apiary model pull nope"));
  /* Pulling again is a no-op. */
  assert_int_equal(mstore_pull(models, "stories15M", &o, &m, err, sizeof err), 0);
  tu_rm_rf(dir);
}

static void test_local_and_errors(void **state) {
  (void)state;
  char dir[256], models[300], src[300], err[1024];
  tu_tmpdir(dir, sizeof dir);
  snprintf(models, sizeof models, "%s/models", dir);
  snprintf(src, sizeof src, "%s/my-model.gguf", dir);
  uint8_t *p = make_payload(100000);
  write_file(src, p, 100000);
  char sha[MSTORE_SHA256_HEX];
  assert_int_equal(mstore_sha256_file(src, sha, NULL, NULL), 0);
  /* Wrong expected hash: refused, nothing stored. */
  mstore_pull_opts o = {.download = fetch_url, .sha256 = "0000000000000000000000000000000000000000000000000000000000000000"};
  mstore_model m;
  assert_int_equal(mstore_pull(models, src, &o, &m, err, sizeof err), ERR_CRYPTO);
  assert_non_null(strstr(err, "sha256 mismatch"));
  mstore_model list[4];
  assert_int_equal(mstore_list(models, list, 4), 0);
  /* Right hash: stored. */
  o.sha256 = sha;
  assert_int_equal(mstore_pull(models, src, &o, &m, err, sizeof err), 0);
  assert_string_equal(m.sha256, sha);
  assert_int_equal(mstore_list(models, list, 4), 1);
  /* Not a GGUF. */
  snprintf(src, sizeof src, "%s/bad.gguf", dir);
  write_file(src, "NOPE-not-a-model", 16);
  assert_int_equal(mstore_pull(models, src, NULL, &m, err, sizeof err), ERR_FORMAT);
  /* Unknown names, non-gguf names. */
  assert_int_equal(mstore_pull(models, "no-such-model", NULL, &m, err, sizeof err), ERR_NOTFOUND);
  assert_non_null(strstr(err, "not in the catalog"));
  /* A catalog model built from public sources, with none reachable (a closed loopback port
   * stands in for the network): the message says the pull resumes. */
  setenv("APIARY_MODEL_MIRROR", dir, 1);
  mstore_pull_opts dead = {.download = fetch_url, .mirror_url = "http://127.0.0.1:1"};
  assert_int_equal(mstore_pull(models, "stories15M", &dead, &m, err, sizeof err), ERR_NOTFOUND);
  assert_non_null(strstr(err, "http://127.0.0.1:1/stories15M.bin"));
  assert_non_null(strstr(err, "resume"));
  unsetenv("APIARY_MODEL_MIRROR");
  free(p);
  tu_rm_rf(dir);
}

/* ---- HTTP server with Range support ----------------------------------------------- */
typedef struct srv_file {
  const char *path;    /* "/m.gguf" */
  const uint8_t *data;
  size_t len;
} srv_file;

typedef struct srv_state {
  const uint8_t *data; /* served as /m.gguf */
  size_t len;
  int saw_range;
  long range_from;
  srv_file more[4];    /* other files */
  int n_get;           /* requests answered */
} srv_state;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  srv_state *s = cls;
  (void)method; (void)version; (void)upload; (void)upload_size; (void)con_cls;
  struct MHD_Response *r;
  enum MHD_Result ret;
  const uint8_t *data = s->data;
  size_t len = s->len;
  for (int i = 0; i < 4; i++)
    if (s->more[i].path && !strcmp(url, s->more[i].path)) {
      data = s->more[i].data;
      len = s->more[i].len;
      url = "/m.gguf";
    }
  s->n_get++;
  if (strcmp(url, "/m.gguf") || !data) {
    r = MHD_create_response_from_buffer(9, (void *)"not found", MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, 404, r);
    MHD_destroy_response(r);
    return ret;
  }
  const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
  size_t from = 0;
  if (range && sscanf(range, "bytes=%zu-", &from) == 1 && from < len) {
    s->saw_range = 1;
    s->range_from = (long)from;
    r = MHD_create_response_from_buffer(len - from, (void *)(data + from), MHD_RESPMEM_PERSISTENT);
    char cr[128];
    snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", from, len - 1, len);
    MHD_add_response_header(r, "Content-Range", cr);
    ret = MHD_queue_response(c, 206, r);
  } else {
    r = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, 200, r);
  }
  MHD_destroy_response(r);
  return ret;
}

/* Starts the server on a free loopback port; *port_out gets it. */
static struct MHD_Daemon *start_server(srv_state *s, int *port_out) {
  /* Port 0 asks the kernel for a free port; bind loopback only. */
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(0x7f000001);
  struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, s,
                                          MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_END);
  assert_non_null(d);
  *port_out = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
  return d;
}

static void test_http_resume(void **state) {
  (void)state;
  size_t n = 3 * 1000 * 1000 + 17;
  uint8_t *p = make_payload(n);
  srv_state s = {.data = p, .len = n};
  int port;
  struct MHD_Daemon *d = start_server(&s, &port);
  char dir[256], models[300], url[128], part[400], err[1024];
  tu_tmpdir(dir, sizeof dir);
  snprintf(models, sizeof models, "%s/models", dir);
  mkdir(models, 0700);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/m.gguf", port);
  /* An interrupted earlier download left the first 1,000,000 bytes. */
  snprintf(part, sizeof part, "%s/m.gguf.part", models);
  write_file(part, p, 1000000);
  char sha[MSTORE_SHA256_HEX];
  char whole[300];
  snprintf(whole, sizeof whole, "%s/whole.gguf", dir);
  write_file(whole, p, n);
  assert_int_equal(mstore_sha256_file(whole, sha, NULL, NULL), 0);
  mstore_pull_opts o = {.download = fetch_url, .sha256 = sha};
  mstore_model m;
  int rc = mstore_pull(models, url, &o, &m, err, sizeof err);
  if (rc) fail_msg("pull: %s", err);
  assert_true(s.saw_range);
  assert_int_equal(s.range_from, 1000000);
  assert_string_equal(m.sha256, sha);
  assert_int_equal(m.size, n);
  struct stat st;
  assert_int_equal(stat(part, &st), -1); /* the part file became the model */
  /* A missing file on the server is a clear error. */
  snprintf(url, sizeof url, "http://127.0.0.1:%d/missing.gguf", port);
  mstore_pull_opts dl = {.download = fetch_url};
  assert_true(mstore_pull(models, url, &dl, &m, err, sizeof err) < 0);
  assert_non_null(strstr(err, "download of"));
  /* without a downloader (llm does no network I/O itself) a URL is refused, clearly */
  assert_int_equal(mstore_pull(models, url, NULL, &m, err, sizeof err), ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "no downloader"));
  MHD_stop_daemon(d);
  free(p);
  tu_rm_rf(dir);
}

/* Reads a whole file (caller frees). */
static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*len ? *len : 1);
  assert_int_equal(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

/* The stories15M recipe over HTTP: the server plays Hugging Face and llama.cpp's repository
 * (the checkpoint rebuilt from the shared F32 file, which also serves as the vocabulary). */
static void test_recipe_http(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char dir[256], models[300], ref[1024], bin[400], err[1024];
  tu_tmpdir(dir, sizeof dir);
  snprintf(models, sizeof models, "%s/models", dir);
  snprintf(bin, sizeof bin, "%s/stories15M.bin", dir);
  assert_int_equal(tu_shared_path(ref, sizeof ref, "models/stories15M-F32.gguf"), 0);
  gguf_file *g;
  assert_int_equal(gguf_open(ref, &g, err, sizeof err), 0);
  assert_int_equal(llama2c_write_checkpoint(g, 256, bin, err, sizeof err), 0);
  gguf_close(g);
  size_t bin_len, voc_len;
  uint8_t *bin_data = slurp(bin, &bin_len), *voc_data = slurp(ref, &voc_len);
  uint8_t *bad_bin = malloc(bin_len);
  memcpy(bad_bin, bin_data, bin_len);
  bad_bin[bin_len / 2] ^= 1;
  srv_state s = {.more = {{"/stories15M.bin", bin_data, bin_len}, {"/ggml-vocab-llama-spm.gguf", voc_data, voc_len}}};
  int port;
  struct MHD_Daemon *d = start_server(&s, &port);
  char base[128];
  snprintf(base, sizeof base, "http://127.0.0.1:%d/", port);
  /* An interrupted earlier pull left part of the checkpoint. */
  char work[400], part[500];
  snprintf(work, sizeof work, "%s/.build-stories15M-f32", models);
  assert_int_equal(tu_sh("mkdir -p %s", work), 0);
  snprintf(part, sizeof part, "%s/stories15M.bin.part", work);
  write_file(part, bin_data, 12345678);
  mstore_pull_opts o = {.download = fetch_url, .mirror_url = base};
  mstore_model m;
  int rc = mstore_pull(models, "stories15M", &o, &m, err, sizeof err);
  if (rc) fail_msg("pull: %s", err);
  assert_string_equal(m.sha256, "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1");
  assert_int_equal(m.size, 26671392);
  assert_true(s.saw_range);
  assert_int_equal(s.range_from, 12345678);
  struct stat st;
  assert_int_equal(stat(work, &st), -1); /* inputs removed once the model is in place */
  snprintf(work, sizeof work, "%s/.build-stories15M", models);
  assert_int_equal(stat(work, &st), -1);
  /* The F32 model on its own, through the environment variable. */
  setenv("APIARY_MODEL_MIRROR_URL", base, 1);
  mstore_pull_opts env_only = {.download = fetch_url};
  rc = mstore_pull(models, "stories15M-f32", &env_only, &m, err, sizeof err);
  unsetenv("APIARY_MODEL_MIRROR_URL");
  if (rc) fail_msg("pull f32: %s", err);
  assert_string_equal(m.sha256, "a4a429f2a6527275de0d53ffa5e3e8eabe320f618004120d51e1b1faae8bb567");
  /* With the F32 model in the store, the Q8_0 recipe quantizes it without downloading. */
  snprintf(part, sizeof part, "%s/stories15M-Q8_0.json", models);
  unlink(part);
  int gets = s.n_get;
  assert_int_equal(mstore_pull(models, "stories15M", &o, &m, err, sizeof err), 0);
  assert_int_equal(s.n_get, gets);
  assert_string_equal(m.sha256, "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1");
  /* A corrupt checkpoint is refused by its pinned sha256. */
  char models2[300];
  snprintf(models2, sizeof models2, "%s/models2", dir);
  s.more[0].data = bad_bin;
  assert_int_equal(mstore_pull(models2, "stories15M", &o, &m, err, sizeof err), ERR_CRYPTO);
  assert_non_null(strstr(err, "sha256 mismatch"));
  assert_non_null(strstr(err, "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a"));
  /* A vocabulary of the wrong size: the conversion says so. */
  s.more[0].data = bin_data;
  s.more[1].data = bin_data; /* not even a GGUF */
  s.more[1].len = bin_len;
  assert_true(mstore_pull(models2, "stories15M", &o, &m, err, sizeof err) < 0);
  assert_non_null(strstr(err, "vocabulary"));
  assert_int_equal(mstore_list(models2, (mstore_model[4]){0}, 4), 0);
  MHD_stop_daemon(d);
  free(bin_data);
  free(voc_data);
  free(bad_bin);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_mirror_catalog), cmocka_unit_test(test_local_and_errors),
                                     cmocka_unit_test(test_http_resume), cmocka_unit_test(test_recipe_http)};
  return cmocka_run_group_tests_name("mstore", tests, NULL, NULL);
}
