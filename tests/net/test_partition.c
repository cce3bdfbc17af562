/* A network partition between real nodes on five hosts of our own: five network namespaces
 * (10.78.i.2) wired to a router namespace. All five find each other over the DHT; then the
 * router splits them 3/2 (ip rules answering "unreachable" between the groups): each side
 * marks the other side down and keeps working within its group; the partition heals and
 * every node sees every other node up again. Skips where namespaces are not allowed. */
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

#define N 5
static char out[1 << 17], err[65536];
static char dir[256], homes[N][300], ids[N][64], ns[N + 1][32];
static pid_t pids[N];
static int have_ns, tag;

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static int setup(void **state) {
  (void)state;
  tag = (int)(getpid() % 10000);
  snprintf(ns[N], sizeof ns[N], "apy-r-%d", tag);
  if (tu_sh("ip netns add %s", ns[N])) return 0; /* no namespaces here: the test skips */
  have_ns = 1;
  if (tu_sh("ip -n %s link set lo up && ip netns exec %s sysctl -qw net.ipv4.ip_forward=1", ns[N], ns[N])) return -1;
  for (int i = 0; i < N; i++) {
    snprintf(ns[i], sizeof ns[i], "apy-h%d-%d", i, tag);
    if (tu_sh("ip netns add %s", ns[i]) ||
        tu_sh("ip link add ap%dr%d type veth peer name ap%dh%d", tag, i, tag, i) ||
        tu_sh("ip link set ap%dr%d netns %s && ip link set ap%dh%d netns %s", tag, i, ns[N], tag, i, ns[i]) ||
        tu_sh("ip -n %s addr add 10.78.%d.1/24 dev ap%dr%d && ip -n %s link set ap%dr%d up", ns[N], i, tag, i, ns[N],
              tag, i) ||
        tu_sh("ip -n %s link set lo up && ip -n %s addr add 10.78.%d.2/24 dev ap%dh%d && ip -n %s link set ap%dh%d up "
              "&& ip -n %s route add default via 10.78.%d.1",
              ns[i], ns[i], i, tag, i, ns[i], tag, i, ns[i], i))
      return -1;
  }
  tu_tmpdir(dir, sizeof dir);
  for (int i = 0; i < N; i++) {
    snprintf(homes[i], sizeof homes[i], "%s/h%d", dir, i);
    if (apiary("init --home %s --json", homes[i])) return -1;
    json_t *j = json_loads(out, 0, NULL);
    snprintf(ids[i], sizeof ids[i], "%s", json_string_value(json_object_get(j, "node_id")));
    json_decref(j);
    /* Short link timing so the test sees a dead link in seconds, not a minute. */
    if (tu_sh("sed -i 's/^keepalive = .*/keepalive = 1/; s/^idle_timeout = .*/idle_timeout = 3/' %s/config.toml",
              homes[i]))
      return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < N; i++)
    if (pids[i] > 0) { kill(pids[i], SIGKILL); tu_wait_exit(pids[i], 2000); }
  if (have_ns)
    for (int i = 0; i <= N; i++) tu_sh("ip netns del %s", ns[i]);
  if (dir[0]) tu_rm_rf(dir);
  return 0;
}

static const char *state_of(int i, int j) {
  static char st[16];
  st[0] = 0;
  if (apiary("peers --home %s --json", homes[i])) return st;
  json_t *r = json_loads(out, 0, NULL);
  size_t k;
  json_t *p;
  json_array_foreach(json_object_get(r, "peers"), k, p)
    if (!strcmp(json_string_value(json_object_get(p, "id")), ids[j]))
      snprintf(st, sizeof st, "%s", json_string_value(json_object_get(p, "state")));
  json_decref(r);
  return st;
}

static int group(int i) { return i < 3 ? 0 : 1; }

/* Waits until every pair (i, j) satisfies: state == (same group or !split ? "up" : "down"). */
static int wait_view(int split, int seconds) {
  for (int t = 0; t < seconds * 2; t++) {
    int ok = 1;
    for (int i = 0; i < N && ok; i++)
      for (int j = 0; j < N && ok; j++) {
        if (i == j) continue;
        const char *want = (!split || group(i) == group(j)) ? "up" : "down";
        if (strcmp(state_of(i, j), want)) ok = 0;
      }
    if (ok) return 1;
    usleep(500000);
  }
  return 0;
}

static void partition(int on) {
  for (int a = 0; a < 3; a++)
    for (int b = 3; b < N; b++) {
      tu_sh("ip -n %s rule %s from 10.78.%d.0/24 to 10.78.%d.0/24 unreachable", ns[N], on ? "add" : "del", a, b);
      tu_sh("ip -n %s rule %s from 10.78.%d.0/24 to 10.78.%d.0/24 unreachable", ns[N], on ? "add" : "del", b, a);
    }
}

static void test_partition_heals(void **state) {
  (void)state;
  if (!have_ns) {
    print_message("network namespaces are not available here (ip netns add failed); skipping\n");
    skip();
  }
  for (int i = 0; i < N; i++) {
    char listen[64], boot[64], log[400];
    snprintf(listen, sizeof listen, "10.78.%d.2:7440", i);
    snprintf(boot, sizeof boot, "10.78.%d.2:7441", i == 0 ? 1 : 0);
    snprintf(log, sizeof log, "%s.log", homes[i]);
    const char *argv[] = {"ip", "netns", "exec", ns[i], tu_apiary_bin(), "node", "--home", homes[i], "--listen",
                          listen, "--dht-port", "7441", "--bootstrap", boot, "--no-lan", "--no-nat", "--http", "127.0.0.1:0",
                          NULL};
    pids[i] = tu_spawn(argv, log);
  }
  if (!wait_view(0, 60)) fail_msg("the five nodes did not all find each other");
  partition(1);
  if (!wait_view(1, 60)) fail_msg("the 3/2 partition was not seen as such by every node");
  /* Within a group, links still carry RPC. */
  assert_int_equal(apiary("ping --home %s %s", homes[0], ids[2]), 0);
  assert_int_equal(apiary("ping --home %s %s", homes[3], ids[4]), 0);
  partition(0);
  if (!wait_view(0, 90)) fail_msg("after healing, not every node sees every other node up");
  assert_int_equal(apiary("ping --home %s %s", homes[0], ids[4]), 0);
  for (int i = 0; i < N; i++) {
    kill(pids[i], SIGTERM);
    assert_int_equal(tu_wait_exit(pids[i], 10000), 0);
    pids[i] = 0;
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_partition_heals)};
  return cmocka_run_group_tests_name("partition", tests, setup, teardown);
}
