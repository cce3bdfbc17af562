/* tests/support/anvil — see anvil.h. */
#include "anvil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain/ethrpc.h"
#include "testutil.h"

static void nap_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

const char *tu_anvil_find(char *out, size_t cap) {
  const char *env = getenv("ANVIL");
  if (env && access(env, X_OK) == 0) return snprintf(out, cap, "%s", env), out;
  const char *dirs[] = {"tools/node_modules/.bin", "../tools/node_modules/.bin"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(out, cap, "%s/anvil", dirs[i]);
    if (access(out, X_OK) == 0) return out;
  }
  out[0] = 0;
  return NULL;
}

int tu_anvil_start(const char *bin, int port, const char *state_path, tu_anvil *a) {
  for (int attempt = 0; attempt < (port ? 3 : 5); attempt++) {
    int p = port ? port : tu_port_block(1);
    if (p < 0) return -1;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", p);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      setpgid(0, 0);
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, 1), dup2(devnull, 2);
      if (state_path)
        execl(bin, bin, "--host", "127.0.0.1", "--port", ps, "--silent", "--state", state_path, (char *)NULL);
      else
        execl(bin, bin, "--host", "127.0.0.1", "--port", ps, "--silent", (char *)NULL);
      _exit(127);
    }
    a->port = p;
    snprintf(a->url, sizeof a->url, "http://127.0.0.1:%d", p);
    ethrpc *rpc;
    if (ethrpc_new(a->url, 2000, &rpc)) return -1;
    for (int i = 0; i < 150; i++) { /* up to 15 s */
      uint64_t id;
      if (!ethrpc_chain_id(rpc, &id)) {
        ethrpc_free(rpc);
        a->pid = pid;
        return 0;
      }
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) break; /* died: port taken? retry */
      nap_ms(100);
    }
    ethrpc_free(rpc);
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    nap_ms(300);
  }
  return -1;
}

void tu_anvil_stop(tu_anvil *a) {
  if (a->pid <= 0) return;
  kill(a->pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
      a->pid = 0;
      return;
    }
    nap_ms(100);
  }
  kill(-a->pid, SIGKILL);
  waitpid(a->pid, NULL, 0);
  a->pid = 0;
}
