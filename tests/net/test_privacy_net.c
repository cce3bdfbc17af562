/* The privacy policy over a real link: two nodes on loopback, A with stories15M, C with no
 * model. A runs with APIARY_TEST_RECEIVED_PROMPTS (privacy/redact_testlog: a test-only
 * record of every `generate` request a provider receives, as it arrived), which is how the
 * test sees what left C.
 *
 *   local-only: `apiary ask --privacy local-only`, an API request with
 *     `X-Apiary-Privacy: local-only`, and one with a token created `--privacy local-only`
 *     (its header saying allow) are refused (403 privacy_local_only), and A received
 *     nothing.
 *   redact: `apiary ask --privacy redact`, API requests with `X-Apiary-Privacy: redact`
 *     (whole and streamed) and with the body field under an `allow` header are answered,
 *     and A received the prompt with placeholders only: no email, card or phone number.
 *   allow (the control): the same prompt reaches A as written, so the record does show
 *     what arrives.
 *   capture: tcpdump records all loopback traffic during the local-only and redact requests
 *     except the client's own requests to C's API; none of the values appears in it (a
 *     marker sent in clear during the capture does, so the capture sees plaintext). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

static char out[1 << 17], err[65536];
static tu_cluster cl;

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

#define SECRET "Write to bob.smith@example.com or call +1 415 555 0132, card 4111 1111 1111 1111."

static int teardown(void **state) {
  (void)state;
  if (cl.n) tu_cluster_free(&cl);
  return 0;
}

/* The lines A received so far (the file's text; "" when none). */
static void received(const char *path, char *buf, size_t cap) {
  buf[0] = 0;
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = 0;
  fclose(f);
}

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void no_secrets(const char *s) {
  if (strstr(s, "bob.smith") || strstr(s, "example.com") || strstr(s, "4111") || strstr(s, "415 555"))
    fail_msg("a value left C unredacted: %s", s);
}

/* tcpdump on lo into path, leaving out TCP port skip (the client's leg to C's API); its pid,
 * or 0 when it cannot run here (the capture check is then skipped, with a message). */
static pid_t capture_start(const char *path, const char *log, int skip) {
  if (tu_sh("command -v tcpdump >/dev/null")) {
    print_message("tcpdump not installed (scripts/setup installs it): no loopback capture\n");
    return 0;
  }
  char filter[64];
  snprintf(filter, sizeof filter, "not tcp port %d", skip);
  const char *argv[] = {"tcpdump", "--immediate-mode", "-i", "lo", "-U", "-s", "0", "-w", path, filter, NULL};
  pid_t pid = tu_spawn(argv, log);
  for (int i = 0; i < 100; i++) { /* until it says it is listening */
    char buf[4096];
    received(log, buf, sizeof buf);
    if (strstr(buf, "listening on")) return pid;
    usleep(50000);
  }
  kill(pid, SIGKILL);
  tu_wait_exit(pid, 5000);
  print_message("tcpdump did not start (not root?): no loopback capture\n");
  return 0;
}

/* Stops the capture and checks it: the marker is there, none of the values is. */
static void capture_check(pid_t pid, const char *path) {
  if (!pid) return;
  usleep(300000);
  kill(pid, SIGINT);
  tu_wait_exit(pid, 10000);
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[64 << 20];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  static const char *const values[] = {"bob.smith", "example.com", "4111 1111", "415 555"};
  if (!memmem(buf, n, "apiary-capture-marker", 21)) fail_msg("the capture missed the clear marker (%zu bytes)", n);
  for (size_t i = 0; i < sizeof values / sizeof *values; i++)
    if (memmem(buf, n, values[i], strlen(values[i]))) fail_msg("'%s' is in the loopback capture", values[i]);
  print_message("loopback capture: %zu bytes, none of the values in it\n", n);
}

static void test_privacy_over_link(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char mirror[1024];
  tu_shared_path(mirror, sizeof mirror, "models");
  assert_int_equal(tu_cluster_init_nochain(&cl, 2), 0); /* A (0) and C (1), free offers */
  const char *ha = cl.node[0].home, *hc = cl.node[1].home, *ida = cl.node[0].id;
  char log[400], got[1 << 15];
  snprintf(log, sizeof log, "%s/received.jsonl", cl.dir);
  assert_int_equal(apiary("model pull --home %s stories15M --from %s", ha, mirror), 0);
  setenv("APIARY_TEST_RECEIVED_PROMPTS", log, 1); /* A only */
  assert_int_equal(tu_node_start(&cl, 0), 0);
  unsetenv("APIARY_TEST_RECEIVED_PROMPTS");
  assert_int_equal(tu_node_start(&cl, 1), 0);
  int ok = 0;
  for (int i = 0; i < 60 && !ok; i++) {
    ok = apiary("ping --home %s %s", hc, ida) == 0;
    if (!ok) usleep(250000);
  }
  assert_true(ok);
  char token[128];
  assert_int_equal(tu_node_token(&cl, 1, token, sizeof token), 0);

  /* From here to the allow control, everything on loopback but the client's own requests
   * to C's API is captured. */
  char pcap[400], pcap_log[400];
  snprintf(pcap, sizeof pcap, "%s/lo.pcap", cl.dir);
  snprintf(pcap_log, sizeof pcap_log, "%s/tcpdump.log", cl.dir);
  pid_t cap = capture_start(pcap, pcap_log, tu_node_http_port(&cl, 1));
  if (cap) tu_sh("bash -c 'printf apiary-capture-marker >/dev/udp/127.0.0.1/9'");

  /* local-only: refused on C, nothing reaches A */
  assert_int_equal(apiary("ask --home %s stories15M '%s' --node %s -n 4 --privacy local-only", hc, SECRET, ida), 1);
  if (!strstr(err, "local-only")) fail_msg("ask not refused as local-only: %s", err);
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "curl -s -w '\\n%%{http_code}' -H 'Authorization: Bearer %s' -H 'X-Apiary-Privacy: local-only' "
           "-H 'Content-Type: application/json' http://127.0.0.1:%d/v1/completions "
           "-d '{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":4}'",
           token, tu_node_http_port(&cl, 1), SECRET);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  if (!strstr(out, "privacy_local_only") || !strstr(out, "\n403")) fail_msg("API not refused: %s", out);
  /* a bad value is refused, not ignored */
  snprintf(cmd, sizeof cmd,
           "curl -s -w '\\n%%{http_code}' -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' "
           "http://127.0.0.1:%d/v1/completions -d '{\"model\":\"stories15M\",\"prompt\":\"x\",\"privacy\":\"nope\"}'",
           token, tu_node_http_port(&cl, 1));
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  if (!strstr(out, "invalid_privacy") || !strstr(out, "\n400")) fail_msg("bad privacy not refused: %s", out);
  /* a token made local-only: refused with no header, and a header cannot loosen it */
  assert_int_equal(apiary("token create --home %s --json --privacy local-only", hc), 0);
  json_t *tk = json_loads(out, 0, NULL);
  assert_non_null(tk);
  assert_string_equal(json_string_value(json_object_get(tk, "privacy")), "local-only");
  char lotok[128];
  snprintf(lotok, sizeof lotok, "%s", json_string_value(json_object_get(tk, "token")));
  json_decref(tk);
  snprintf(cmd, sizeof cmd,
           "curl -s -w '\\n%%{http_code}' -H 'Authorization: Bearer %s' -H 'X-Apiary-Privacy: allow' "
           "-H 'Content-Type: application/json' http://127.0.0.1:%d/v1/completions "
           "-d '{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":4}'",
           lotok, tu_node_http_port(&cl, 1), SECRET);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  if (!strstr(out, "privacy_local_only") || !strstr(out, "\n403")) fail_msg("local-only token not enforced: %s", out);
  received(log, got, sizeof got);
  if (got[0]) fail_msg("A received a prompt of a refused local-only request: %s", got);

  /* redact: answered, A sees placeholders only */
  assert_int_equal(apiary("ask --home %s --json stories15M '%s' --node %s -n 8 --temp 0 --privacy redact", hc, SECRET,
                          ida),
                   0);
  json_t *r = json_loads(out, 0, NULL);
  assert_non_null(r);
  assert_string_equal(json_string_value(json_object_get(r, "node_id")), ida);
  json_decref(r);
  received(log, got, sizeof got);
  assert_int_equal(lines(got), 1);
  no_secrets(got);
  if (!strstr(got, "[EMAIL_1]") || !strstr(got, "[PHONE_1]") || !strstr(got, "[CARD_1]"))
    fail_msg("placeholders missing in what A received: %s", got);

  snprintf(cmd, sizeof cmd,
           "curl -s -w '\\n%%{http_code}' -H 'Authorization: Bearer %s' -H 'X-Apiary-Privacy: redact' "
           "-H 'Content-Type: application/json' http://127.0.0.1:%d/v1/completions "
           "-d '{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":4,\"temperature\":0}'",
           token, tu_node_http_port(&cl, 1), SECRET);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  if (!strstr(out, "\n200")) fail_msg("redacted API request failed: %s", out);
  received(log, got, sizeof got);
  assert_int_equal(lines(got), 2);
  no_secrets(got);

  /* the body field tightens too, and the header cannot loosen it */
  snprintf(cmd, sizeof cmd,
           "curl -s -w '\\n%%{http_code}' -H 'Authorization: Bearer %s' -H 'X-Apiary-Privacy: allow' "
           "-H 'Content-Type: application/json' http://127.0.0.1:%d/v1/completions "
           "-d '{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":4,\"privacy\":\"redact\"}'",
           token, tu_node_http_port(&cl, 1), SECRET);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  if (!strstr(out, "\n200")) fail_msg("redacted API request failed: %s", out);
  received(log, got, sizeof got);
  assert_int_equal(lines(got), 3);
  no_secrets(got);

  /* streamed: the answer comes through the restorer chunk by chunk and ends with [DONE] */
  snprintf(cmd, sizeof cmd,
           "curl -s -N -H 'Authorization: Bearer %s' -H 'X-Apiary-Privacy: redact' "
           "-H 'Content-Type: application/json' http://127.0.0.1:%d/v1/completions "
           "-d '{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":8,\"stream\":true}'",
           token, tu_node_http_port(&cl, 1), SECRET);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  if (!strstr(out, "data: [DONE]") || !strstr(out, "\"text\"")) fail_msg("redacted stream failed: %s", out);
  received(log, got, sizeof got);
  assert_int_equal(lines(got), 4);
  no_secrets(got);

  capture_check(cap, pcap);

  /* allow (the control): the record shows the prompt as written */
  assert_int_equal(apiary("ask --home %s stories15M '%s' --node %s -n 4", hc, SECRET, ida), 0);
  received(log, got, sizeof got);
  assert_int_equal(lines(got), 5);
  assert_non_null(strstr(strrchr(got, '{'), "bob.smith@example.com"));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_privacy_over_link)};
  return cmocka_run_group_tests_name("privacy_net", tests, NULL, teardown);
}
