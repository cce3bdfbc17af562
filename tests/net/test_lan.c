/* LAN discovery between real nodes on two hosts of our own: two network namespaces joined
 * by a veth pair (10.77.0.1 and 10.77.0.2), multicast routed over the veth. Each node must
 * find the other through signed beacons and list it with the right address; a forged
 * beacon is dropped and counted. Skips with a message where namespaces are not allowed. */
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

static char ns_a[32], ns_b[32], dir[256];
static int have_ns;

static int setup(void **state) {
  (void)state;
  snprintf(ns_a, sizeof ns_a, "apy-lan-a-%d", (int)getpid());
  snprintf(ns_b, sizeof ns_b, "apy-lan-b-%d", (int)getpid());
  if (tu_sh("ip netns add %s", ns_a)) return 0;
  have_ns = 1;
  int rc = tu_sh("ip netns add %s", ns_b) ||
           tu_sh("ip link add apyva%d type veth peer name apyvb%d", (int)getpid() % 100000, (int)getpid() % 100000) ||
           tu_sh("ip link set apyva%d netns %s && ip link set apyvb%d netns %s", (int)getpid() % 100000, ns_a,
                 (int)getpid() % 100000, ns_b) ||
           tu_sh("ip -n %s link set lo up && ip -n %s addr add 10.77.0.1/24 dev apyva%d && ip -n %s link set "
                 "apyva%d up && ip -n %s route add 224.0.0.0/4 dev apyva%d",
                 ns_a, ns_a, (int)getpid() % 100000, ns_a, (int)getpid() % 100000, ns_a, (int)getpid() % 100000) ||
           tu_sh("ip -n %s link set lo up && ip -n %s addr add 10.77.0.2/24 dev apyvb%d && ip -n %s link set "
                 "apyvb%d up && ip -n %s route add 224.0.0.0/4 dev apyvb%d",
                 ns_b, ns_b, (int)getpid() % 100000, ns_b, (int)getpid() % 100000, ns_b, (int)getpid() % 100000);
  if (rc) fprintf(stderr, "namespace setup failed\n");
  return rc;
}

static int teardown(void **state) {
  (void)state;
  if (have_ns) {
    tu_sh("ip netns del %s", ns_a);
    tu_sh("ip netns del %s", ns_b);
  }
  if (dir[0]) tu_rm_rf(dir);
  return 0;
}

static char out[65536], err[65536];

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static pid_t start_in_ns(const char *ns, const char *home, const char *listen) {
  char log[400];
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {"ip", "netns", "exec", ns, tu_apiary_bin(), "node", "--home", home, "--listen", listen,
                        "--no-dht", "--no-nat", "--http", "127.0.0.1:0", NULL};
  pid_t pid = tu_spawn(argv, log);
  for (int i = 0; i < 200; i++) {
    if (apiary("status --home %s", home) == 0) return pid;
    usleep(50000);
  }
  fail_msg("node in %s did not start (see %s)", ns, log);
  return -1;
}

/* Waits until home's peer list contains id at addr. */
static int wait_peer(const char *home, const char *id, const char *addr) {
  char want[256];
  snprintf(want, sizeof want, "\"addr\":\"%s\"", addr);
  for (int i = 0; i < 150; i++) {
    if (apiary("peers --home %s --json", home) == 0 && strstr(out, id) && strstr(out, want)) return 1;
    usleep(100000);
  }
  return 0;
}

static void test_two_hosts_find_each_other(void **state) {
  (void)state;
  if (!have_ns) {
    print_message("network namespaces are not available here (ip netns add failed); skipping\n");
    skip();
  }
  char ha[300], hb[300], ida[128], idb[128];
  tu_tmpdir(dir, sizeof dir);
  snprintf(ha, sizeof ha, "%s/a", dir);
  snprintf(hb, sizeof hb, "%s/b", dir);
  assert_int_equal(apiary("init --home %s", ha), 0);
  assert_int_equal(apiary("init --home %s", hb), 0);
  assert_int_equal(apiary("id --home %s --json", ha), 0);
  json_t *j = json_loads(out, 0, NULL);
  snprintf(ida, sizeof ida, "%s", json_string_value(json_object_get(j, "node_id")));
  json_decref(j);
  assert_int_equal(apiary("id --home %s --json", hb), 0);
  j = json_loads(out, 0, NULL);
  snprintf(idb, sizeof idb, "%s", json_string_value(json_object_get(j, "node_id")));
  json_decref(j);

  pid_t pa = start_in_ns(ns_a, ha, "10.77.0.1:7440");
  pid_t pb = start_in_ns(ns_b, hb, "10.77.0.2:7450");
  int ok_a = wait_peer(ha, idb, "10.77.0.2:7450");
  int ok_b = wait_peer(hb, ida, "10.77.0.1:7440");

  /* A forged beacon (right magic and version, garbage signature) from host B is dropped. */
  tu_sh("ip netns exec %s /usr/bin/python3 -c \"import socket,os; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); "
        "s.sendto(b'APIARYL1\\x01'+os.urandom(111), ('10.77.0.1', 7447))\"", ns_b);
  int dropped = 0;
  for (int i = 0; i < 50 && !dropped; i++) {
    if (apiary("status --home %s --json", ha) == 0) {
      json_t *st = json_loads(out, 0, NULL);
      dropped = json_integer_value(json_object_get(json_object_get(st, "lan"), "dropped_signature")) >= 1;
      json_decref(st);
    }
    if (!dropped) usleep(100000);
  }
  kill(pa, SIGTERM);
  kill(pb, SIGTERM);
  assert_int_equal(tu_wait_exit(pa, 5000), 0);
  assert_int_equal(tu_wait_exit(pb, 5000), 0);
  if (!ok_a) fail_msg("node A never listed B at 10.77.0.2:7450");
  if (!ok_b) fail_msg("node B never listed A at 10.77.0.1:7440");
  assert_true(dropped);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_two_hosts_find_each_other)};
  return cmocka_run_group_tests_name("lan", tests, setup, teardown);
}
