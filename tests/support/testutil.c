/* tests/support/testutil — see testutil.h. */
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

const char *tu_shared(void) {
  static char path[1024];
  static int done;
  if (done) return path[0] ? path : NULL;
  done = 1;
  const char *env = getenv("APIARY_SHARED");
  const char *cands[] = {env, "../shared", "../../shared"};
  for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
    if (!cands[i]) continue;
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/testdata", cands[i]);
    struct stat st;
    if (stat(probe, &st) == 0 && S_ISDIR(st.st_mode)) {
      if (!realpath(cands[i], path)) snprintf(path, sizeof path, "%s", cands[i]);
      return path;
    }
  }
  path[0] = 0;
  return NULL;
}

int tu_shared_path(char *out, size_t cap, const char *rel) {
  const char *s = tu_shared();
  if (!s) return -1;
  snprintf(out, cap, "%s/%s", s, rel);
  return 0;
}

json_t *tu_load_json(const char *path) {
  json_error_t e;
  json_t *j = json_load_file(path, 0, &e);
  if (!j) fail_msg("cannot load %s: %s (line %d)", path, e.text, e.line);
  return j;
}

void tu_tmpdir(char *out, size_t cap) {
  const char *base = getenv("TMPDIR");
  snprintf(out, cap, "%s/apiary-test-XXXXXX", base ? base : "/tmp");
  if (!mkdtemp(out)) fail_msg("mkdtemp failed");
}

void tu_rm_rf(const char *path) {
  if (!strstr(path, "apiary-test-")) return; /* only ever remove our own temp dirs */
  if (getenv("APIARY_KEEP_TEST_DIRS")) { /* for a look at the nodes' logs afterwards */
    print_message("kept %s (APIARY_KEEP_TEST_DIRS)\n", path);
    return;
  }
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) print_message("warning: could not remove %s\n", path);
}

const char *tu_apiary_bin(void) {
  const char *b = getenv("APIARY_BIN");
  return b ? b : "build/apiary";
}

static void read_fd_into(FILE *f, char *out, size_t cap) {
  size_t n = 0;
  if (!out || cap == 0) {
    char sink[4096];
    while (fread(sink, 1, sizeof sink, f) > 0) {}
    return;
  }
  while (n + 1 < cap) {
    size_t r = fread(out + n, 1, cap - 1 - n, f);
    if (r == 0) break;
    n += r;
  }
  out[n] = 0;
}

int tu_run(const char *cmd, char *out, size_t cap, char *err, size_t err_cap) {
  char errfile[] = "/tmp/apiary-test-err-XXXXXX";
  int efd = mkstemp(errfile);
  if (efd < 0) return -1;
  close(efd);
  char full[8192];
  snprintf(full, sizeof full, "%s 2>%s", cmd, errfile);
  FILE *p = popen(full, "r");
  if (!p) return -1;
  read_fd_into(p, out, cap);
  int st = pclose(p);
  FILE *ef = fopen(errfile, "r");
  if (ef) {
    read_fd_into(ef, err, err_cap);
    fclose(ef);
  }
  unlink(errfile);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  return -1;
}

pid_t tu_spawn(const char *const argv[], const char *log_path) {
  pid_t pid = fork();
  if (pid == 0) {
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0);
    dup2(nul, 1);
    if (log_path) {
      int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) dup2(fd, 2);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

int tu_wait_exit(pid_t pid, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    usleep(20000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return -1;
}

int tu_sh(const char *fmt, ...) {
  char cmd[4096], full[4200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  snprintf(full, sizeof full, "(%s) >/dev/null 2>&1", cmd);
  int st = system(full);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int apiary_v(char *out, size_t cap, char *err, size_t err_cap, const char *suffix, const char *fmt,
                    va_list ap) {
  char args[8192], cmd[9216];
  vsnprintf(args, sizeof args, fmt, ap);
  snprintf(cmd, sizeof cmd, "%s %s%s", tu_apiary_bin(), args, suffix);
  int rc = tu_run(cmd, out, cap, err, err_cap);
  if (rc) print_message("apiary %s%s -> exit %d: %.2000s\n", args, suffix, rc, err ? err : "");
  return rc;
}

int tu_apiary(char *out, size_t cap, char *err, size_t err_cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = apiary_v(out, cap, err, err_cap, "", fmt, ap);
  va_end(ap);
  return rc;
}

json_t *tu_apiary_json(char *out, size_t cap, char *err, size_t err_cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = apiary_v(out, cap, err, err_cap, " --json", fmt, ap);
  va_end(ap);
  return rc ? NULL : json_loads(out, 0, NULL);
}

/* 1 when port is free for both TCP and UDP on loopback right now. */
static int port_free(int port) {
  int types[2] = {SOCK_STREAM, SOCK_DGRAM};
  for (int t = 0; t < 2; t++) {
    int fd = socket(AF_INET, types[t], 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (!ok) return 0;
  }
  return 1;
}

int tu_port_block(int span) {
  enum { LO = 20000, HI = 32700, BLOCK = 100 };
  if (span < 1 || span > BLOCK) return -1;
  const char *ls = getenv("APIARY_TEST_LANES"), *l = getenv("APIARY_TEST_LANE");
  int lanes = ls ? atoi(ls) : 1, lane = l ? atoi(l) : 0;
  if (lanes < 1 || lanes > 8) lanes = 1;
  if (lane < 0 || lane >= lanes) lane = 0;
  int blocks = (HI - LO) / BLOCK / lanes, first = LO + lane * blocks * BLOCK;
  static unsigned seed;
  if (!seed) seed = (unsigned)getpid() ^ (unsigned)time(NULL);
  for (int tries = 0; tries < 4 * blocks; tries++) {
    int base = first + (int)(rand_r(&seed) % (unsigned)blocks) * BLOCK, ok = 1;
    for (int p = base; p < base + span && ok; p++) ok = port_free(p);
    if (ok) return base;
  }
  return -1;
}

int tu_wallet_import(const char *home, const char *hex_key) {
  char path[1200], out[4096], err[4096];
  snprintf(path, sizeof path, "%s/wallet.import", home);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  size_t n = strlen(hex_key);
  int ok = write(fd, hex_key, n) == (ssize_t)n;
  close(fd);
  int rc = ok ? tu_apiary(out, sizeof out, err, sizeof err, "wallet --home %s --force import --file %s", home, path) : -1;
  unlink(path);
  return rc;
}
