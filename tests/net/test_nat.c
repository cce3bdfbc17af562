/* NAT port mapping where there is no router: a network namespace with only loopback. The
 * probe must fail quickly with a reason (no UPnP gateway answered, no NAT-PMP gateway), and
 * a node listening on 0.0.0.0 there must start, keep working and report the mapping as not
 * made. (Mapping on a real router cannot be tested here: nothing may leave the machine.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/testutil.h"

static char ns[32], dir[256];
static int have_ns;

static int setup(void **state) {
  (void)state;
  snprintf(ns, sizeof ns, "apy-nat-%d", (int)getpid());
  if (tu_sh("ip netns add %s", ns)) return 0;
  have_ns = 1;
  return tu_sh("ip -n %s link set lo up", ns);
}

static int teardown(void **state) {
  (void)state;
  if (have_ns) tu_sh("ip netns del %s", ns);
  if (dir[0]) tu_rm_rf(dir);
  return 0;
}

static void test_no_router(void **state) {
  (void)state;
  if (!have_ns) {
    print_message("network namespaces are not available here; skipping\n");
    skip();
  }
  char cmd[1024], out[8192], err[8192];
  snprintf(cmd, sizeof cmd, "ip netns exec %s %s nat probe --json --timeout 500", ns, tu_apiary_bin());
  time_t t0 = time(NULL);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 1);
  assert_true(time(NULL) - t0 < 10);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  assert_false(json_is_true(json_object_get(j, "mapped")));
  assert_true(strlen(json_string_value(json_object_get(j, "error"))) > 0);
  json_decref(j);

  char home[300], log[400];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  snprintf(cmd, sizeof cmd, "%s init --home %s", tu_apiary_bin(), home);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {"ip", "netns", "exec", ns, tu_apiary_bin(), "node", "--home", home, "--listen", "0.0.0.0:7440",
                        "--no-lan", "--no-dht", "--http", "127.0.0.1:0", NULL};
  pid_t pid = tu_spawn(argv, log);
  int seen = 0;
  snprintf(cmd, sizeof cmd, "%s status --home %s --json", tu_apiary_bin(), home);
  for (int i = 0; i < 100 && !seen; i++) {
    if (tu_run(cmd, out, sizeof out, NULL, 0) == 0) {
      json_t *st = json_loads(out, 0, NULL);
      json_t *nat = json_object_get(st, "nat");
      seen = nat && json_is_false(json_object_get(nat, "mapped")) &&
             strlen(json_string_value(json_object_get(nat, "error"))) > 0;
      json_decref(st);
    }
    if (!seen) usleep(100000);
  }
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  assert_true(seen);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_router)};
  return cmocka_run_group_tests_name("nat", tests, setup, teardown);
}
