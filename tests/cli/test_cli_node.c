/* The node daemon as a user runs it: real `apiary node` processes in temporary homes,
 * driven through the CLI over the control socket. Startup, status, one node per home,
 * clean stop by request and by SIGTERM, and recovery after SIGKILL (stale socket). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/testutil.h"

static char out[65536], err[65536];

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

/* Starts `apiary node --home home` with stderr to home/node.log; returns its pid once its
 * control socket answers (fails the test after 10 s). */
static pid_t start_node(const char *home) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    char log[600];
    snprintf(log, sizeof log, "%s.log", home);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 2);
    int nul = open("/dev/null", O_WRONLY);
    dup2(nul, 1);
    execl(tu_apiary_bin(), "apiary", "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
          "--http", "127.0.0.1:0", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 200; i++) {
    if (run("status --home %s --json", home) == 0) return pid;
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) fail_msg("node exited early: %s", err);
    usleep(50000);
  }
  fail_msg("node did not come up: %s", err);
  return -1;
}

/* Waits for pid to exit; returns its exit status (or 128+signal). */
static int wait_exit(pid_t pid) {
  for (int i = 0; i < 200; i++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(50000);
  }
  kill(pid, SIGKILL);
  fail_msg("node %d did not exit", (int)pid);
  return -1;
}

static void test_lifecycle(void **state) {
  (void)state;
  char dir[256], home[300], sock[400];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  snprintf(sock, sizeof sock, "%s/control.sock", home);
  /* No node yet: a clear message. */
  assert_int_equal(run("init --home %s", home), 0);
  assert_int_equal(run("status --home %s", home), 1);
  assert_non_null(strstr(err, "no node is running"));

  pid_t pid = start_node(home);
  assert_int_equal(run("id --home %s --json", home), 0);
  json_t *id = json_loads(out, 0, NULL);
  assert_int_equal(run("status --home %s --json", home), 0);
  json_t *st = json_loads(out, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(id, "node_id")),
                      json_string_value(json_object_get(st, "node_id")));
  assert_int_equal(json_integer_value(json_object_get(st, "pid")), pid);
  json_decref(id);
  json_decref(st);
  struct stat sst;
  assert_int_equal(stat(sock, &sst), 0);
  assert_int_equal(sst.st_mode & 0777, 0600);

  /* The peer book starts empty and is served over the control socket. */
  assert_int_equal(run("peers --home %s --json", home), 0);
  assert_non_null(strstr(out, "\"peers\":[]"));
  assert_int_equal(run("peers --home %s", home), 0);
  assert_non_null(strstr(out, "no peers yet"));

  /* One node per home. */
  assert_int_equal(run("node --home %s --no-lan --no-dht --listen 127.0.0.1:0", home), 1);
  assert_non_null(strstr(err, "already running"));

  /* Stop by request: exit 0, socket removed. */
  assert_int_equal(run("stop --home %s", home), 0);
  assert_int_equal(wait_exit(pid), 0);
  assert_int_equal(stat(sock, &sst), -1);

  /* Stop by SIGTERM: exit 0. */
  pid = start_node(home);
  kill(pid, SIGTERM);
  assert_int_equal(wait_exit(pid), 0);

  /* SIGKILL leaves a stale socket; the next start recovers. */
  pid = start_node(home);
  kill(pid, SIGKILL);
  assert_int_equal(wait_exit(pid), 128 + SIGKILL);
  assert_int_equal(stat(sock, &sst), 0);
  pid = start_node(home);
  kill(pid, SIGINT);
  assert_int_equal(wait_exit(pid), 0);

  /* The ports notice: once, on the home's first start, with the way to turn each off. */
  char log[400];
  snprintf(log, sizeof log, "%s.log", home);
  static char text[1 << 18];
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  const char *p = strstr(text, "what this node opens");
  if (!p) fail_msg("no ports notice in %s", log);
  assert_null(strstr(p + 1, "what this node opens")); /* not again on the next starts */
  assert_non_null(strstr(p, "--listen ADDR:PORT"));
  assert_non_null(strstr(p, "DHT off"));    /* --no-dht */
  assert_non_null(strstr(p, "LAN beacons off"));
  assert_non_null(strstr(p, "no router port mapping")); /* links on 127.0.0.1 */
  assert_non_null(strstr(p, "selling: nothing"));
  tu_rm_rf(dir);
}

static void test_control_garbage(void **state) {
  (void)state;
  char dir[256], home[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  assert_int_equal(run("init --home %s", home), 0);
  pid_t pid = start_node(home);
  /* Garbage, a bad request and an unknown method get JSON-RPC errors; the node lives on. */
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "cd %s && printf 'not json\\n{\"id\":1}\\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}\\n' | "
           "timeout 5 python3 -c \"import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect('control.sock'); "
           "s.sendall(sys.stdin.buffer.read()); import time; time.sleep(0.5); print(s.recv(65536).decode())\"",
           home);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  assert_non_null(strstr(out, "-32700"));
  assert_non_null(strstr(out, "-32600"));
  assert_non_null(strstr(out, "-32601"));
  assert_int_equal(run("status --home %s", home), 0);
  kill(pid, SIGTERM);
  assert_int_equal(wait_exit(pid), 0);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_lifecycle), cmocka_unit_test(test_control_garbage)};
  return cmocka_run_group_tests_name("cli_node", tests, NULL, NULL);
}
