/* Generation over the network: two real nodes on loopback; A has stories15M, C has no
 * model. C asks A over the encrypted link: the text is llama.cpp's greedy continuation of
 * the reference prompt (shared/models/stories15M-Q8_0.ref.json) and the usage counts are
 * right. A sells one generation at a time ([market] max_concurrent = 1): a second request
 * while one runs is refused as busy, and served once the first is done. A model A does
 * not have is a clear error; a dead node fails fast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

static char out[1 << 17], err[65536];
static tu_cluster cl;

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static int teardown(void **state) {
  (void)state;
  if (cl.n) tu_cluster_free(&cl);
  return 0;
}

static void test_ask_over_link(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char mirror[1024], refpath[1100];
  tu_shared_path(mirror, sizeof mirror, "models");
  snprintf(refpath, sizeof refpath, "%s/stories15M-Q8_0.ref.json", mirror);
  json_t *ref = tu_load_json(refpath);
  json_t *g0 = json_array_get(json_object_get(ref, "greedy"), 0);
  const char *prompt = json_string_value(json_object_get(g0, "prompt"));
  const char *want = json_string_value(json_object_get(g0, "generated_text"));
  size_t want_prompt = json_array_size(json_object_get(g0, "prompt_ids"));

  assert_int_equal(tu_cluster_init_nochain(&cl, 2), 0); /* A (0) and C (1), free offers */
  const char *ha = cl.node[0].home, *hc = cl.node[1].home, *ida = cl.node[0].id;
  char dir[256];
  snprintf(dir, sizeof dir, "%s", cl.dir);
  assert_int_equal(apiary("model pull --home %s stories15M --from %s", ha, mirror), 0);
  /* one generation at a time, slowed down (20 tokens/s) so that two can overlap */
  assert_int_equal(tu_sh("sed -i 's|^max_concurrent = .*|max_concurrent = 1|; s|^max_tps = .*|max_tps = 20|' %s/config.toml",
                         ha), 0);
  assert_int_equal(tu_node_start(&cl, 0), 0);
  assert_int_equal(tu_node_start(&cl, 1), 0);

  /* C has no model; A does. Wait until C can reach A, then ask. */
  int ok = 0;
  for (int i = 0; i < 60 && !ok; i++) {
    ok = apiary("ping --home %s %s", hc, ida) == 0;
    if (!ok) usleep(250000);
  }
  assert_true(ok);
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "%s ask --home %s --json stories15M '%s' --node %s -n 24 --temp 0", tu_apiary_bin(), hc,
           prompt, ida);
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  json_t *r = json_loads(out, 0, NULL);
  assert_non_null(r);
  const char *text = json_string_value(json_object_get(r, "text"));
  assert_non_null(text);
  /* llama.cpp's greedy continuation: the first words must agree (Q8_0 may fork late on a
   * tiny margin; see shared/models/README.md). */
  if (strncmp(text, want, 40)) fail_msg("remote text '%.60s' does not follow llama.cpp's '%.60s'", text, want);
  assert_int_equal(json_integer_value(json_object_get(r, "prompt_tokens")), (json_int_t)want_prompt);
  assert_int_equal(json_integer_value(json_object_get(r, "completion_tokens")), 24);
  assert_string_equal(json_string_value(json_object_get(r, "node_id")), ida);
  json_decref(r);

  /* The concurrency limit: a long request holds A's only slot; another one meanwhile is
   * refused as busy (C is told to use A only, so it cannot go elsewhere); afterwards A
   * serves again. */
  char log1[400];
  snprintf(log1, sizeof log1, "%s/long.log", dir);
  const char *long_argv[] = {tu_apiary_bin(), "ask", "--home", hc, "stories15M", prompt, "--node", ida,
                             "-n", "80", "--temp", "0", NULL};
  pid_t lp = tu_spawn(long_argv, log1);
  int selling = 0; /* wait until A is generating it (80 tokens take ~4 s at 20/s) */
  for (int i = 0; i < 200 && !selling; i++) {
    if (apiary("status --home %s --json", ha) == 0) {
      json_t *st = json_loads(out, 0, NULL);
      selling = (int)json_integer_value(json_object_get(json_object_get(st, "market"), "generations_selling"));
      json_decref(st);
    }
    if (!selling) usleep(50000);
  }
  assert_int_equal(selling, 1);
  assert_int_equal(apiary("ask --home %s stories15M 'x' --node %s -n 4", hc, ida), 1);
  if (!strstr(err, "busy")) fail_msg("second request not refused as busy: %s", err);
  assert_int_equal(tu_wait_exit(lp, 60000), 0);
  assert_int_equal(apiary("ask --home %s stories15M 'x' --node %s -n 4", hc, ida), 0);

  /* A model A does not serve. */
  char sha[65];
  memset(sha, 'a', 64);
  sha[64] = 0;
  assert_int_equal(apiary("ask --home %s %s 'x' --node %s", hc, sha, ida), 1);
  assert_non_null(strstr(err, "no node on the network offers"));

  /* A dead node fails fast with a reason. */
  tu_node_kill(&cl, 0);
  time_t t0 = time(NULL);
  assert_int_equal(apiary("ask --home %s stories15M 'x' --node %s", hc, ida), 1);
  assert_true(time(NULL) - t0 < 30);
  if (!strstr(err, ida)) fail_msg("error without the node id: %s", err);

  kill(cl.node[1].pid, SIGTERM); /* a clean stop on SIGTERM */
  assert_int_equal(tu_wait_exit(cl.node[1].pid, 10000), 0);
  cl.node[1].pid = 0;
  json_decref(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_ask_over_link)};
  return cmocka_run_group_tests_name("ask", tests, NULL, teardown);
}
