/* tests/support/cluster — see cluster.h. */
#include "cluster.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* anvil's well-known dev accounts 1, 2, 0, 3, 4 (its mnemonic is public). */
static const char *const KEYS[TU_MAX_NODES] = {
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
};

static char out[1 << 18], err[1 << 16];

int tu_node_http_port(const tu_cluster *c, int i) { return c->base + 50 + i; }

static int make_homes(tu_cluster *c, int n, int wallets) {
  c->base = tu_port_block(60); /* listen +0.., DHT +10.., HTTP +50.. */
  if (c->base < 0) return -1;
  c->n = n;
  c->boot = n > 2 ? 2 : 0;
  for (int i = 0; i < n; i++) {
    tu_node *nd = &c->node[i];
    char dir[sizeof c->dir];
    memcpy(dir, c->dir, sizeof dir);
    snprintf(nd->home, sizeof nd->home, "%s/%c", dir, 'a' + i);
    json_t *j = tu_apiary_json(out, sizeof out, err, sizeof err, "init --home %s", nd->home);
    if (!j) return -1;
    snprintf(nd->id, sizeof nd->id, "%s", json_string_value(json_object_get(j, "node_id")));
    json_decref(j);
    /* a new node sells nothing: cluster nodes sell whatever their store holds */
    if (tu_apiary(out, sizeof out, err, sizeof err, "sell --home %s --all", nd->home)) return -1;
    if (wallets && tu_wallet_import(nd->home, KEYS[i])) return -1;
  }
  return 0;
}

int tu_cluster_init_nochain(tu_cluster *c, int n) {
  memset(c, 0, sizeof *c);
  if (n < 1 || n > TU_MAX_NODES) return -1;
  tu_tmpdir(c->dir, sizeof c->dir);
  return make_homes(c, n, 0);
}

int tu_cluster_init(tu_cluster *c, int n) {
  memset(c, 0, sizeof *c);
  if (n < 1 || n > TU_MAX_NODES) return -1;
  if (!tu_anvil_find(c->anvil_bin, sizeof c->anvil_bin)) return 1;
  tu_tmpdir(c->dir, sizeof c->dir);
  if (tu_anvil_start(c->anvil_bin, 0, NULL, &c->chain)) return 1;
  if (make_homes(c, n, 1)) return -1;
  json_t *d = tu_apiary_json(out, sizeof out, err, sizeof err, "chain --home %s deploy --rpc %s", c->node[0].home,
                             c->chain.url);
  if (!d) return -1;
  int rc = 0;
  for (int i = 1; i < n && !rc; i++)
    rc = tu_apiary(out, sizeof out, err, sizeof err, "chain --home %s use --rpc %s --escrow %s --registry %s --governance %s",
                   c->node[i].home, c->chain.url, json_string_value(json_object_get(d, "escrow")),
                   json_string_value(json_object_get(d, "registry")),
                   json_string_value(json_object_get(d, "governance")));
  json_decref(d);
  return rc ? -1 : 0;
}

void tu_cluster_free(tu_cluster *c) {
  for (int i = 0; i < c->n; i++) tu_node_stop(c, i);
  if (c->chain.pid) tu_anvil_stop(&c->chain);
  if (c->dir[0] && !getenv("APIARY_KEEP_TEST_DIRS")) tu_rm_rf(c->dir);
}

int tu_node_start(tu_cluster *c, int i) { return tu_node_start_with(c, i, NULL); }

int tu_node_start_with(tu_cluster *c, int i, const char *const extra[]) {
  tu_node *nd = &c->node[i];
  char listen[64], dhtp[16], boot[64], http[64], log[400];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", c->base + i);
  snprintf(dhtp, sizeof dhtp, "%d", c->base + 10 + i);
  snprintf(boot, sizeof boot, "127.0.0.1:%d", c->base + 10 + (i == c->boot ? 0 : c->boot));
  snprintf(http, sizeof http, "127.0.0.1:%d", tu_node_http_port(c, i));
  snprintf(log, sizeof log, "%s.log", nd->home);
  const char *argv[32] = {tu_apiary_bin(), "node", "--home", nd->home, "--listen", listen, "--dht-port", dhtp,
                          "--bootstrap", boot, "--no-lan", "--http", http};
  int k = 13;
  for (int j = 0; extra && extra[j] && k < 31; j++) argv[k++] = extra[j];
  argv[k] = NULL;
  nd->pid = tu_spawn(argv, log);
  for (int t = 0; t < 300; t++) {
    if (tu_apiary(out, sizeof out, NULL, 0, "status --home %s", nd->home) == 0) return 0;
    usleep(50000);
  }
  print_message("node %s did not start (see %s)\n", nd->home, log);
  return -1;
}

void tu_node_stop(tu_cluster *c, int i) {
  tu_node *nd = &c->node[i];
  if (nd->pid <= 0) return;
  tu_apiary(out, sizeof out, err, sizeof err, "stop --home %s", nd->home);
  if (tu_wait_exit(nd->pid, 15000) < 0) kill(nd->pid, SIGKILL);
  nd->pid = 0;
}

void tu_node_kill(tu_cluster *c, int i) {
  tu_node *nd = &c->node[i];
  if (nd->pid <= 0) return;
  kill(nd->pid, SIGKILL);
  tu_wait_exit(nd->pid, 10000);
  nd->pid = 0;
}

int tu_node_set(tu_cluster *c, int i, const char *key, const char *value) {
  char cfg[400];
  snprintf(cfg, sizeof cfg, "%s/config.toml", c->node[i].home);
  return tu_sh("grep -q '^%s = ' %s && sed -i 's|^%s = .*|%s = %s|' %s", key, cfg, key, key, value, cfg) ? -1 : 0;
}

/* A node that was running and is gone (not stopped by the test): print the end of its log
 * once, so a crash shows its reason (a sanitizer report, an error) in the test's output. */
static void tell_if_dead(tu_cluster *c, int i) {
  tu_node *nd = &c->node[i];
  int st;
  if (nd->pid <= 0 || waitpid(nd->pid, &st, WNOHANG) != nd->pid) return;
  nd->pid = 0;
  print_message("node %s died (%s %d); the end of its log:\n", nd->home, WIFSIGNALED(st) ? "signal" : "exit status",
                WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  char cmd[600];
  snprintf(cmd, sizeof cmd, "tail -n 60 '%s.log' >&2", nd->home);
  if (system(cmd) != 0) print_message("(no log)\n");
}

json_t *tu_node_json(tu_cluster *c, int i, const char *fmt, ...) {
  char args[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  json_t *j = tu_apiary_json(out, sizeof out, err, sizeof err, "%s --home %s", args, c->node[i].home);
  if (!j) tell_if_dead(c, i);
  return j;
}

int tu_node_wait_offer(tu_cluster *c, int i, const char *sha, int from) {
  for (int k = 0; k < 120; k++) {
    json_t *o = tu_node_json(c, i, "offers");
    size_t n;
    json_t *x;
    int found = 0;
    json_array_foreach(json_object_get(o, "offers"), n, x) {
      const char *m = json_string_value(json_object_get(x, "model"));
      const char *nd = json_string_value(json_object_get(x, "node"));
      if (m && !strcmp(m, sha) && (from < 0 || (nd && !strcmp(nd, c->node[from].id)))) found = 1;
    }
    json_decref(o);
    if (found) return 1;
    usleep(250000);
  }
  return 0;
}

int tu_node_token(tu_cluster *c, int i, char *tok, size_t cap) {
  json_t *t = tu_node_json(c, i, "token create");
  const char *s = json_string_value(json_object_get(t, "token"));
  int rc = s ? 0 : -1;
  if (s) snprintf(tok, cap, "%s", s);
  json_decref(t);
  return rc;
}

uint64_t tu_dec(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? strtoull(s, NULL, 10) : 0;
}

json_t *tu_node_receipt(tu_cluster *c, int i, const char *req, const char *role, const char *provider) {
  json_t *l = tu_node_json(c, i, "receipts");
  json_t *found = NULL, *x;
  size_t k;
  json_array_foreach(json_object_get(l, "receipts"), k, x) {
    if (strcmp(json_string_value(json_object_get(x, "request")) ?: "", req)) continue;
    if (strcmp(json_string_value(json_object_get(x, "role")) ?: "", role)) continue;
    if (provider && strcmp(json_string_value(json_object_get(x, "provider")) ?: "", provider)) continue;
    json_decref(found);
    found = json_incref(x);
  }
  json_decref(l);
  return found;
}
