/* Vault envelopes over a link (node/vaultsvc): node A seals an item for B and its node
 * delivers it (`vault share --send`); B's node keeps it sealed in its inbox (no plaintext
 * on B's disk) until B's owner imports it (`vault import --inbox`), after which it is usable
 * there only for the shared purpose. Two real nodes on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"
#include "core/buf.h"
#include "core/fs.h"

#define SECRET "sk-NET-SHARED-PLAINTEXT-91"

static char out[1 << 16], err[1 << 16];
static tu_cluster cl;
static int ready;

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static int setup(void **state) {
  (void)state;
  if (tu_cluster_init_nochain(&cl, 2)) return -1;
  setenv("APIARY_VAULT_PASSPHRASE", "net vault pass", 1);
  if (tu_node_start(&cl, 0) || tu_node_start(&cl, 1)) return -1;
  ready = 1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (ready || cl.dir[0]) tu_cluster_free(&cl);
  return 0;
}

static int tree_contains(const char *dir, const char *needle) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "grep -rqa '%s' '%s'", needle, dir);
  return system(cmd) == 0;
}

static void test_send_and_import(void **state) {
  (void)state;
  const char *a = cl.node[0].home, *b = cl.node[1].home;
  char val[400], env[400];
  snprintf(val, sizeof val, "%s/secret.txt", cl.dir);
  snprintf(env, sizeof env, "%s/api.apve", cl.dir);
  assert_int_equal(fs_write_atomic(val, SECRET, strlen(SECRET), 0600, 0), 0);
  assert_int_equal(apiary("vault --home %s init", a), 0);
  assert_int_equal(apiary("vault --home %s put api --file %s", a, val), 0);
  unlink(val);
  int sent = 0;
  for (int i = 0; i < 40 && !sent; i++) {
    sent = apiary("vault --home %s share api --to %s --purpose ci --until +1h --out %s --send", a, cl.node[1].id, env) == 0;
    if (!sent) usleep(250000);
  }
  assert_true(sent);
  assert_non_null(strstr(out, "delivered"));
  /* B holds it sealed: nothing readable in B's home. */
  assert_false(tree_contains(b, SECRET));
  assert_int_equal(apiary("vault --home %s init", b), 0);
  assert_int_equal(apiary("vault --home %s --json import --inbox", b), 0);
  assert_non_null(strstr(out, "\"name\":\"api\""));
  assert_int_equal(apiary("vault --home %s import --inbox", b), 0);
  assert_non_null(strstr(out, "empty"));
  assert_int_equal(apiary("vault --home %s use api --as agent --purpose ci", b), 0);
  assert_int_equal(apiary("vault --home %s use api --as agent --purpose other", b), 1);
  assert_int_equal(apiary("vault --home %s get api", b), 1);
  assert_false(tree_contains(b, SECRET));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_send_and_import)};
  return cmocka_run_group_tests_name("vault_net", tests, setup, teardown);
}
