/* Model store: catalog pull from an offline mirror (the shared stories15M, checked against
 * the sha256 published in its README), local files, sha256 mismatch, non-GGUF input, and
 * HTTP download with resume from a real libmicrohttpd server on loopback that honours
 * Range requests. */
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
#include "llm/mstore.h"

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
  mstore_pull_opts o = {.mirror_dir = mirror};
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
  mstore_pull_opts o = {.sha256 = "0000000000000000000000000000000000000000000000000000000000000000"};
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
  /* A catalog model with no mirror says how to get it. */
  setenv("APIARY_MODEL_MIRROR", dir, 1);
  assert_int_equal(mstore_pull(models, "stories15M", NULL, &m, err, sizeof err), ERR_NOTFOUND);
  assert_non_null(strstr(err, "--from DIR"));
  unsetenv("APIARY_MODEL_MIRROR");
  free(p);
  tu_rm_rf(dir);
}

/* ---- HTTP server with Range support ----------------------------------------------- */
typedef struct srv_state {
  const uint8_t *data;
  size_t len;
  int saw_range;
  long range_from;
} srv_state;

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  srv_state *s = cls;
  (void)method; (void)version; (void)upload; (void)upload_size; (void)con_cls;
  struct MHD_Response *r;
  enum MHD_Result ret;
  if (strcmp(url, "/m.gguf")) {
    r = MHD_create_response_from_buffer(9, (void *)"not found", MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, 404, r);
    MHD_destroy_response(r);
    return ret;
  }
  const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
  size_t from = 0;
  if (range && sscanf(range, "bytes=%zu-", &from) == 1 && from < s->len) {
    s->saw_range = 1;
    s->range_from = (long)from;
    r = MHD_create_response_from_buffer(s->len - from, (void *)(s->data + from), MHD_RESPMEM_PERSISTENT);
    char cr[128];
    snprintf(cr, sizeof cr, "bytes %zu-%zu/%zu", from, s->len - 1, s->len);
    MHD_add_response_header(r, "Content-Range", cr);
    ret = MHD_queue_response(c, 206, r);
  } else {
    r = MHD_create_response_from_buffer(s->len, (void *)s->data, MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, 200, r);
  }
  MHD_destroy_response(r);
  return ret;
}

static void test_http_resume(void **state) {
  (void)state;
  size_t n = 3 * 1000 * 1000 + 17;
  uint8_t *p = make_payload(n);
  srv_state s = {p, n, 0, 0};
  /* Port 0 asks the kernel for a free port; bind loopback only. */
  struct MHD_Daemon *d;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
  a.sin_addr.s_addr = htonl(0x7f000001);
  d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler, &s, MHD_OPTION_SOCK_ADDR, &a,
                       MHD_OPTION_END);
  assert_non_null(d);
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  int port = info->port;
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
  mstore_pull_opts o = {.sha256 = sha};
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
  assert_true(mstore_pull(models, url, NULL, &m, err, sizeof err) < 0);
  assert_non_null(strstr(err, "download of"));
  MHD_stop_daemon(d);
  free(p);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_mirror_catalog), cmocka_unit_test(test_local_and_errors),
                                     cmocka_unit_test(test_http_resume)};
  return cmocka_run_group_tests_name("mstore", tests, NULL, NULL);
}
