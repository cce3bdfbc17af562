/* Delegation between owners, end to end on loopback, without a chain (free agents): node A
 * sells agents (the tiny reference model), C and B buy from it over the Noise links.
 *
 *   - A's agent card lists exactly its agents for sale, with their prices, without a token;
 *   - C delegates to A's scribe by node id and by name (--any, found through a2a.agents):
 *     the answer C gets is the result A's task recorded;
 *   - an agent on C hands work to A's scribe with the delegate tool (first call forced);
 *   - B cannot see or cancel C's task; C cancels its own task while it waits on A;
 *   - a price above max_wei, an agent not for sale and an unknown agent are clear errors.
 * Skips without ../shared. */
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
#include "node/control.h"

static char out[1 << 18], err[1 << 16];
static tu_cluster cl;
static int ready;

enum { A = 0, B = 1, C = 2 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define home(n) (cl.node[n].home)
#define ids(n) (cl.node[n].id)

/* A control call on node n: the result (owned) or NULL with *msg (owned) saying why. */
static json_t *ctl(int n, const char *method, json_t *params, char **msg) {
  json_t *res = NULL;
  *msg = NULL;
  if (ctl_call(home(n), method, params, 120000, &res, msg)) return NULL;
  return res;
}

static void add_agent(int n, const char *json) {
  char path[400];
  snprintf(path, sizeof path, "%s/agent.json", cl.dir);
  FILE *f = fopen(path, "w");
  fputs(json, f);
  fclose(f);
  if (apiary("agent --home %s add --file %s", home(n), path)) fail_msg("agent add: %s", err);
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared()) return 0;
  if (tu_cluster_init_nochain(&cl, 3)) return -1;
  char model[1024];
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-Q8_0.gguf");
  for (int n = 0; n < 3; n++) assert_int_equal(apiary("model pull --home %s %s --name tiny", home(n), model), 0);
  assert_int_equal(tu_node_start(&cl, A), 0);
  add_agent(A, "{\"name\": \"scribe\", \"model\": \"tiny\", \"instructions\": \"Write one line.\", \"max_steps\": 1,"
               " \"max_tokens\": 24, \"seed\": 7, \"sell\": {\"price_wei\": 0, \"description\": \"Writes a line.\"}}");
  add_agent(A, "{\"name\": \"waiter\", \"model\": \"tiny\", \"tools\": [\"http_fetch\"], \"approve\": [\"http_fetch\"],"
               " \"fetch_allow\": [\"http://127.0.0.1:9/\"], \"tool_choice\": \"required\", \"max_steps\": 2,"
               " \"max_tokens\": 600, \"seed\": 3,"
               " \"sell\": {\"price_wei\": 0}}");
  add_agent(A, "{\"name\": \"pricey\", \"model\": \"tiny\", \"sell\": {\"price_wei\": 5000}}");
  add_agent(A, "{\"name\": \"private\", \"model\": \"tiny\"}");
  assert_int_equal(tu_node_start(&cl, B), 0);
  assert_int_equal(tu_node_start(&cl, C), 0);
  add_agent(C, "{\"name\": \"boss\", \"model\": \"tiny\", \"tools\": [\"delegate\"], \"delegate_allow\": [\"scribe\"],"
               " \"tool_choice\": \"required\", \"max_steps\": 2, \"max_tokens\": 300, \"seed\": 11}");
  ready = 1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (ready || cl.dir[0]) tu_cluster_free(&cl);
  return 0;
}

#define NEED()                                                                                                     \
  do {                                                                                                             \
    if (!ready) skip();                                                                                            \
  } while (0)

/* A's newest task for agent (owned task object from task show). */
static json_t *a_task_by_input(const char *input) {
  json_t *l = tu_node_json(&cl, A, "task list");
  json_t *found = NULL;
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(l, "tasks"), i, x) {
    if (found || strcmp(json_string_value(json_object_get(x, "input")), input)) continue;
    json_t *t = tu_node_json(&cl, A, "task show %lld", (long long)json_integer_value(json_object_get(x, "id")));
    found = json_incref(json_object_get(t, "task"));
    json_decref(t);
  }
  json_decref(l);
  return found;
}

static void test_card(void **state) {
  (void)state;
  NEED();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "curl -s http://127.0.0.1:%d/.well-known/agent-card.json", tu_node_http_port(&cl, A));
  assert_int_equal(tu_run(cmd, out, sizeof out, err, sizeof err), 0);
  json_t *card = json_loads(out, 0, NULL);
  assert_non_null(card);
  char url[120];
  snprintf(url, sizeof url, "apiary:%s", ids(A));
  assert_string_equal(json_string_value(json_object_get(card, "url")), url);
  json_t *skills = json_object_get(card, "skills");
  assert_int_equal(json_array_size(skills), 3); /* pricey, scribe, waiter: not "private" */
  int seen = 0;
  size_t i;
  json_t *s;
  json_array_foreach(skills, i, s) {
    const char *id = json_string_value(json_object_get(s, "id"));
    const char *price = json_string_value(json_object_get(json_object_get(json_object_get(s, "metadata"), "apiary"), "price_wei"));
    assert_non_null(price);
    if (!strcmp(id, "scribe")) {
      seen++;
      assert_string_equal(price, "0");
      assert_string_equal(json_string_value(json_object_get(s, "description")), "Writes a line.");
    }
    if (!strcmp(id, "pricey")) assert_string_equal(price, "5000");
    assert_string_not_equal(id, "private");
  }
  assert_int_equal(seen, 1);
  json_decref(card);
}

static void test_delegate_by_id(void **state) {
  (void)state;
  NEED();
  json_t *r = tu_node_json(&cl, C, "task delegate %s scribe 'Say hello to the bees.'", ids(A));
  if (!r) fail_msg("delegate: %s", err);
  assert_string_equal(json_string_value(json_object_get(r, "state")), "completed");
  assert_string_equal(json_string_value(json_object_get(r, "node_id")), ids(A));
  assert_string_equal(json_string_value(json_object_get(r, "wei")), "0");
  json_t *t = a_task_by_input("Say hello to the bees.");
  assert_non_null(t);
  assert_string_equal(json_string_value(json_object_get(t, "state")), "done");
  assert_string_equal(json_string_value(json_object_get(r, "text")), json_string_value(json_object_get(t, "result")));
  json_decref(t);
  json_decref(r);
}

static void test_delegate_any(void **state) {
  (void)state;
  NEED();
  /* C learns A's agents when their link comes up (and every 10 s) */
  int known = 0;
  for (int i = 0; i < 300 && !known; i++) {
    char *msg;
    json_t *k = ctl(C, "a2a.known", json_object(), &msg);
    free(msg);
    char *txt = k ? json_dumps(k, 0) : NULL;
    known = txt && strstr(txt, "\"scribe\"") != NULL;
    free(txt);
    json_decref(k);
    if (!known) usleep(100000);
  }
  assert_true(known);
  json_t *r = tu_node_json(&cl, C, "task delegate --any scribe 'Count the flowers.'");
  if (!r) fail_msg("delegate --any: %s", err);
  assert_string_equal(json_string_value(json_object_get(r, "node_id")), ids(A));
  json_t *t = a_task_by_input("Count the flowers.");
  assert_non_null(t);
  assert_string_equal(json_string_value(json_object_get(r, "text")), json_string_value(json_object_get(t, "result")));
  json_decref(t);
  json_decref(r);
  /* by name, an agent nobody sells */
  assert_int_not_equal(apiary("task --home %s delegate --any nobody 'x'", home(C)), 0);
  assert_non_null(strstr(err, "no known node sells an agent named nobody"));
}

static void test_agent_tool(void **state) {
  (void)state;
  NEED();
  json_t *r = tu_node_json(&cl, C, "task run boss 'Get a line written.' --wait");
  if (!r) fail_msg("task run: %s", err);
  json_t *steps = json_object_get(json_object_get(r, "task"), "steps");
  assert_true(json_array_size(steps) >= 2);
  json_t *tool = json_array_get(steps, 1);
  assert_string_equal(json_string_value(json_object_get(tool, "tool")), "delegate");
  assert_string_equal(json_string_value(json_object_get(tool, "state")), "done");
  assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "args"), "agent")), "scribe");
  const char *input = json_string_value(json_object_get(json_object_get(tool, "args"), "task"));
  json_t *t = a_task_by_input(input);
  assert_non_null(t);
  assert_string_equal(json_string_value(json_object_get(t, "agent")), "scribe");
  assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "output"), "text")),
                      json_string_value(json_object_get(t, "result")));
  json_decref(t);
  json_decref(r);
}

static void test_visibility_and_cancel(void **state) {
  (void)state;
  NEED();
  char *msg;
  /* waiter's first call needs A's owner's approval: the task waits there */
  json_t *r = ctl(C, "a2a.delegate", json_pack("{s:s, s:s, s:s, s:b}", "node_id", ids(A), "agent", "waiter", "input",
                                               "Write it down.", "wait", 0), &msg);
  if (!r) fail_msg("delegate: %s", msg);
  const char *id = json_string_value(json_object_get(r, "id"));
  assert_non_null(id);
  char tid[40];
  snprintf(tid, sizeof tid, "%s", id);
  json_decref(r);
  const char *st = "";
  json_t *g = NULL;
  for (int i = 0; i < 300; i++) {
    json_decref(g);
    g = ctl(C, "a2a.get", json_pack("{s:s, s:s}", "node_id", ids(A), "id", tid), &msg);
    if (!g) fail_msg("a2a.get: %s", msg);
    st = json_string_value(json_object_get(json_object_get(g, "status"), "state"));
    if (!strcmp(st, "input-required")) break;
    usleep(100000);
  }
  assert_string_equal(st, "input-required");
  json_decref(g);
  /* B sees nothing of it, and cannot cancel it */
  json_t *x = ctl(B, "a2a.get", json_pack("{s:s, s:s}", "node_id", ids(A), "id", tid), &msg);
  assert_null(x);
  assert_non_null(strstr(msg, "no task of yours"));
  free(msg);
  x = ctl(B, "a2a.cancel", json_pack("{s:s, s:s}", "node_id", ids(A), "id", tid), &msg);
  assert_null(x);
  assert_non_null(strstr(msg, "no task of yours"));
  free(msg);
  /* C cancels its own */
  x = ctl(C, "a2a.cancel", json_pack("{s:s, s:s}", "node_id", ids(A), "id", tid), &msg);
  if (!x) fail_msg("a2a.cancel: %s", msg);
  json_decref(x);
  for (int i = 0; i < 300; i++) {
    g = ctl(C, "a2a.get", json_pack("{s:s, s:s}", "node_id", ids(A), "id", tid), &msg);
    assert_non_null(g);
    int done = !strcmp(json_string_value(json_object_get(json_object_get(g, "status"), "state")), "canceled");
    json_decref(g);
    if (done) break;
    assert_true(i < 299);
    usleep(100000);
  }
  /* a second cancel: it has ended */
  x = ctl(C, "a2a.cancel", json_pack("{s:s, s:s}", "node_id", ids(A), "id", tid), &msg);
  assert_null(x);
  assert_non_null(strstr(msg, "already ended"));
  free(msg);
}

static void test_refusals(void **state) {
  (void)state;
  NEED();
  assert_int_not_equal(apiary("task --home %s delegate %s pricey 'x' --max-wei 4999", home(C), ids(A)), 0);
  assert_non_null(strstr(err, "costs 5000 wei per task, above your max_wei 4999"));
  assert_int_not_equal(apiary("task --home %s delegate %s private 'x'", home(C), ids(A)), 0);
  /* the caller asks A what it sells first (the price it will hold A to): nothing is sent */
  assert_non_null(strstr(err, "sells no agent by that name or skill (nothing was spent)"));
  assert_int_not_equal(apiary("task --home %s delegate %s ghost 'x'", home(C), ids(A)), 0);
  assert_non_null(strstr(err, "sells no agent by that name or skill"));
  assert_int_not_equal(apiary("task --home %s delegate %s", home(C), ids(A)), 0);
  /* A raises the price it advertised: C still holds it to the advertised 5000, and A (its
   * max_wei is that cap) refuses; nothing moves. (Should C have asked A again in between,
   * the new price is what it knows, and the refusal is for want of a channel.) */
  char path[400];
  snprintf(path, sizeof path, "%s/agent.json", cl.dir);
  FILE *f = fopen(path, "w");
  fputs("{\"name\": \"pricey\", \"model\": \"tiny\", \"sell\": {\"price_wei\": 6000}}", f);
  fclose(f);
  assert_int_equal(apiary("agent --home %s add --replace --file %s", home(A), path), 0);
  assert_int_not_equal(apiary("task --home %s delegate %s pricey 'x' --max-wei 10000", home(C), ids(A)), 0);
  if (!strstr(err, "now asks more than the 5000 wei it advertised") && !strstr(err, "6000 wei per task"))
    fail_msg("delegate: %s", err);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_card), cmocka_unit_test(test_delegate_by_id),
                                     cmocka_unit_test(test_delegate_any), cmocka_unit_test(test_agent_tool),
                                     cmocka_unit_test(test_visibility_and_cancel), cmocka_unit_test(test_refusals)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
