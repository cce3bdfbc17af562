/* Five real `apiary node` processes on loopback: they bootstrap from one another over the
 * Mainline DHT and all list each other as up; one is killed with SIGKILL and everyone marks
 * it down; it restarts on new ports and is found again through the DHT (network announce
 * and its signed node record); links carry pings end to end; all stop cleanly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "core/hex.h"
#include "node/netsvc.h"

#define N 5

static char out[1 << 17], err[65536];
static char dir[256], homes[N][300], ids[N][64];
static pid_t pids[N];
static int base;

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static pid_t start(int i, int listen_port, int dht_port, int boot_port) {
  char listen[64], dhtp[16], boot[64], log[400];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", listen_port);
  snprintf(dhtp, sizeof dhtp, "%d", dht_port);
  snprintf(boot, sizeof boot, "127.0.0.1:%d", boot_port);
  snprintf(log, sizeof log, "%s.log", homes[i]);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", homes[i], "--listen", listen, "--dht-port", dhtp,
                        "--bootstrap", boot, "--no-lan", "--http", "127.0.0.1:0", NULL};
  pid_t pid = tu_spawn(argv, log);
  for (int k = 0; k < 200; k++) {
    if (apiary("status --home %s", homes[i]) == 0) return pid;
    usleep(50000);
  }
  fail_msg("node %d did not start (see %s)", i, log);
  return -1;
}

/* The state home i reports for node j ("" if unknown), and its address into addr. */
static const char *state_of(int i, int j, char *addr, size_t cap) {
  static char st[16];
  st[0] = 0;
  if (addr) addr[0] = 0;
  if (apiary("peers --home %s --json", homes[i])) return st;
  json_t *r = json_loads(out, 0, NULL);
  size_t k;
  json_t *p;
  json_array_foreach(json_object_get(r, "peers"), k, p) {
    if (strcmp(json_string_value(json_object_get(p, "id")), ids[j])) continue;
    snprintf(st, sizeof st, "%s", json_string_value(json_object_get(p, "state")));
    const char *a = json_string_value(json_object_get(p, "addr"));
    if (addr && a) snprintf(addr, cap, "%s", a);
  }
  json_decref(r);
  return st;
}

/* Waits until every live node i != j sees j in state want (and at want_addr if given). */
static int wait_all_see(int j, const char *want, const char *want_addr, int seconds, int skip) {
  for (int t = 0; t < seconds * 4; t++) {
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
      if (i == j || i == skip) continue;
      char addr[64];
      const char *st = state_of(i, j, addr, sizeof addr);
      if (strcmp(st, want) || (want_addr && strcmp(addr, want_addr))) ok = 0;
    }
    if (ok) return 1;
    usleep(250000);
  }
  return 0;
}

static int setup(void **state) {
  (void)state;
  tu_tmpdir(dir, sizeof dir);
  base = tu_port_block(70); /* listen base+i, DHT base+50+i */
  if (base < 0) return -1;
  for (int i = 0; i < N; i++) {
    snprintf(homes[i], sizeof homes[i], "%s/n%d", dir, i);
    if (apiary("init --home %s --json", homes[i])) return -1;
    json_t *j = json_loads(out, 0, NULL);
    snprintf(ids[i], sizeof ids[i], "%s", json_string_value(json_object_get(j, "node_id")));
    json_decref(j);
  }
  /* Node 4 serves a model: a small file with GGUF magic, pulled into its store. */
  char src[400];
  snprintf(src, sizeof src, "%s/served.gguf", dir);
  FILE *f = fopen(src, "wb");
  fputs("GGUF-a-model-for-the-announce-test", f);
  fclose(f);
  if (apiary("model pull --home %s %s", homes[4], src)) return -1;
  if (apiary("sell --home %s --all", homes[4])) return -1; /* a new node sells nothing */
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < N; i++)
    if (pids[i] > 0) { kill(pids[i], SIGKILL); tu_wait_exit(pids[i], 2000); }
  tu_rm_rf(dir);
  return 0;
}

static void test_five_nodes(void **state) {
  (void)state;
  /* Node 0 bootstraps from node 1, everyone else from node 0. */
  for (int i = 0; i < N; i++) pids[i] = start(i, base + i, base + 50 + i, base + 50 + (i == 0 ? 1 : 0));
  for (int j = 0; j < N; j++)
    if (!wait_all_see(j, "up", NULL, 40, -1)) fail_msg("not every node lists node %d as up", j);

  /* Node 4 announced the model in its store: "who serves this model?" finds it. */
  assert_int_equal(apiary("model list --home %s --json", homes[4]), 0);
  json_t *ml = json_loads(out, 0, NULL);
  const char *sha_hex = json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256"));
  uint8_t sha[32], ih[20];
  assert_int_equal(hex_decode(sha_hex, 64, sha, 32), 0);
  json_decref(ml);
  netsvc_model_infohash(sha, ih);
  char ih_hex[41], want4[64];
  hex_encode(ih, 20, ih_hex);
  snprintf(want4, sizeof want4, "\"127.0.0.1:%d\"", base + 4);
  int found = 0;
  for (int t = 0; t < 40 && !found; t++) {
    found = apiary("dht peers %s --home %s --json", ih_hex, homes[0]) == 0 && strstr(out, want4);
    if (!found) usleep(500000);
  }
  if (!found) fail_msg("get_peers on the model infohash did not find node 4: %s", out);

  /* Links carry RPC end to end. */
  assert_int_equal(apiary("ping --home %s %s --json", homes[0], ids[4]), 0);
  assert_non_null(strstr(out, "rtt_ms"));

  /* SIGKILL node 2: everyone marks it down. */
  kill(pids[2], SIGKILL);
  assert_int_equal(tu_wait_exit(pids[2], 5000), 128 + SIGKILL);
  pids[2] = 0;
  if (!wait_all_see(2, "down", NULL, 60, 2)) fail_msg("node 2 was not marked down by everyone");
  assert_int_not_equal(apiary("ping --home %s %s", homes[0], ids[2]), 0);

  /* Restart it on new ports: found again at the new address. */
  char want[64];
  snprintf(want, sizeof want, "127.0.0.1:%d", base + 10);
  pids[2] = start(2, base + 10, base + 60, base + 50);
  if (!wait_all_see(2, "up", want, 60, -1)) fail_msg("node 2 was not found again at %s", want);
  assert_int_equal(apiary("ping --home %s %s", homes[4], ids[2]), 0);

  /* DHT items travel between nodes. */
  if (apiary("dht --home %s put 'hello from node 1' --salt test", homes[1]))
    fail_msg("dht put failed: %s %s", out, err);
  if (apiary("dht --home %s get %s --salt test --json", homes[3], ids[1]))
    fail_msg("dht get failed: %s %s", out, err);
  assert_non_null(strstr(out, "hello from node 1"));

  for (int i = 0; i < N; i++) {
    kill(pids[i], SIGTERM);
    int st = tu_wait_exit(pids[i], 10000);
    pids[i] = 0;
    if (st != 0) {
      char cmd[600];
      snprintf(cmd, sizeof cmd, "grep -E -A8 'Sanitizer|runtime error|SUMMARY' %s.log | head -30", homes[i]);
      tu_run(cmd, out, sizeof out, NULL, 0);
      fail_msg("node %d exited with %d on SIGTERM; its log ends:\n%s", i, st, out);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_five_nodes)};
  return cmocka_run_group_tests_name("p2p", tests, setup, teardown);
}
