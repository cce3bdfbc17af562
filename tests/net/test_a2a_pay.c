/* Paid delegation end to end: real node processes on loopback, a real anvil chain, the
 * tiny reference model. A (node 0, which deployed the contracts) sells the agent "scribe"
 * at PRICE wei per task; C buys it.
 *
 *   - C delegates with no channel to A: it opens one by itself ([market] channel_deposit),
 *     the task runs, C pays the price once with a voucher, and gets the result. C's client
 *     receipt, A's provider receipt, the channel's voucher total on both sides and, after
 *     A's auto-claim, the amount claimed on chain all equal PRICE;
 *   - a second task on the same channel: the totals are 2 x PRICE everywhere;
 *   - an agent priced per task and per token: C pays the base and the tokens used at the
 *     advertised rate, or its budget when that is less; receipts agree;
 *   - a task C's node does not stay to pay for: A completes it and holds the result back
 *     (payment_due, no artifact), its receipt at 0;
 *   - an agent on C delegates with the delegate tool: its step and its task count PRICE;
 *     one whose max_wei_task leaves less than PRICE is refused and pays nothing;
 *   - A is SIGKILLed while a task runs: A restarts, the task resumes, C's delegation keeps
 *     asking, pays once and gets the result;
 *   - C is SIGKILLed while its delegation waits: after C restarts, a2a.delegate with the
 *     same id takes it up again (the same task on A), pays once and gets the result; a
 *     third time pays nothing more.
 * Skips without anvil or ../shared. Nothing leaves the machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"
#include "node/control.h"

#define PRICE 12345678901ull
#define BASE 1000ull          /* the per-token agent "meter": per task, */
#define PER_1K 1000000000ull  /* and per 1,000 tokens (1e6 wei a token) */

static char out[1 << 18], err[1 << 16];
static tu_cluster cl;
static int ready;
static char chan[80]; /* C's channel to A, once the first task opened it */

enum { A = 0, C = 1 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define home(n) (cl.node[n].home)
#define ids(n) (cl.node[n].id)

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
  int rc = tu_cluster_init(&cl, 2);
  if (rc < 0) return -1;
  if (rc) return 0; /* no anvil */
  char model[1024];
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-Q8_0.gguf");
  for (int n = 0; n < 2; n++)
    if (apiary("model pull --home %s %s --name tiny", home(n), model)) return -1;
  if (tu_node_set(&cl, A, "claim_threshold_wei", "\"1\"") || tu_node_set(&cl, A, "claim_interval", "1") ||
      tu_node_set(&cl, A, "max_tps", "40"))
    return -1;
  if (tu_node_start(&cl, A) || tu_node_start(&cl, C)) return -1;
  char def[600];
  snprintf(def, sizeof def,
           "{\"name\": \"scribe\", \"model\": \"tiny\", \"instructions\": \"Write one line.\", \"max_steps\": 1,"
           " \"max_tokens\": 24, \"seed\": 7, \"sell\": {\"price_wei\": %llu}}", PRICE);
  add_agent(A, def);
  snprintf(def, sizeof def,
           "{\"name\": \"meter\", \"model\": \"tiny\", \"instructions\": \"Write one line.\", \"max_steps\": 1,"
           " \"max_tokens\": 24, \"seed\": 7, \"sell\": {\"price_wei\": %llu, \"price_per_1k\": %llu}}", BASE, PER_1K);
  add_agent(A, def);
  snprintf(def, sizeof def,
           "{\"name\": \"slow\", \"model\": \"tiny\", \"instructions\": \"Write a long story.\", \"max_steps\": 1,"
           " \"max_tokens\": 240, \"seed\": 5, \"sell\": {\"price_wei\": %llu}}", PRICE);
  add_agent(A, def);
  snprintf(def, sizeof def,
           "{\"name\": \"boss\", \"model\": \"tiny\", \"tools\": [\"delegate\"], \"delegate_allow\": [\"scribe\"],"
           " \"tool_choice\": \"required\", \"max_steps\": 2, \"max_tokens\": 300, \"seed\": 11,"
           " \"max_wei_task\": %llu}", 2 * PRICE);
  add_agent(C, def);
  snprintf(def, sizeof def,
           "{\"name\": \"cheap\", \"model\": \"tiny\", \"tools\": [\"delegate\"], \"delegate_allow\": [\"scribe\"],"
           " \"tool_choice\": \"required\", \"max_steps\": 2, \"max_tokens\": 300, \"seed\": 11,"
           " \"max_wei_task\": %llu}", PRICE - 1);
  add_agent(C, def);
  ready = 1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (cl.n) tu_cluster_free(&cl);
  return 0;
}

#define NEED()                                                                                                     \
  do {                                                                                                             \
    if (!ready) {                                                                                                  \
      print_message("anvil or ../shared not available; skipping\n");                                              \
      skip();                                                                                                      \
    }                                                                                                              \
  } while (0)

static json_t *receipt(int n, const char *req, const char *role) { return tu_node_receipt(&cl, n, req, role, NULL); }

/* Sum of node n's receipts in role on channel ch. */
static uint64_t receipts_sum(int n, const char *role, const char *ch) {
  json_t *l = tu_node_json(&cl, n, "receipts --role %s", role);
  uint64_t sum = 0;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(l, "receipts"), k, x) {
    if (!strcmp(json_string_value(json_object_get(x, "channel")) ?: "", ch)) sum += tu_dec(x, "amount");
  }
  json_decref(l);
  return sum;
}

/* Channel ch as node n records it (owned, NULL when unknown). */
static json_t *channel_of(int n, const char *ch) {
  json_t *l = tu_node_json(&cl, n, "channel list");
  json_t *found = NULL;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(l, "channels"), k, x) {
    if (!strcmp(json_string_value(json_object_get(x, "id")) ?: "", ch)) found = json_incref(x);
  }
  json_decref(l);
  return found;
}

/* Waits until node n's channel ch has field key equal to want. */
static int channel_reaches(int n, const char *ch, const char *key, uint64_t want) {
  for (int i = 0; i < 300; i++) {
    json_t *c = channel_of(n, ch);
    int ok = c && tu_dec(c, key) == want;
    json_decref(c);
    if (ok) return 1;
    usleep(100000);
  }
  return 0;
}

/* Both sides agree: C's client receipts on the channel, C's voucher total, A's provider
 * receipts and A's highest voucher all equal total. */
static void books_equal(uint64_t total) {
  assert_true(channel_reaches(C, chan, "signed", total));
  assert_true(channel_reaches(A, chan, "signed", total));
  assert_int_equal(receipts_sum(C, "client", chan), total);
  assert_int_equal(receipts_sum(A, "provider", chan), total);
}

/* A's task for this input (owned task object). */
static json_t *a_task(const char *input) {
  json_t *l = tu_node_json(&cl, A, "task list");
  json_t *found = NULL;
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(l, "tasks"), i, x) {
    if (found || strcmp(json_string_value(json_object_get(x, "input")) ?: "", input)) continue;
    json_t *t = tu_node_json(&cl, A, "task show %lld", (long long)json_integer_value(json_object_get(x, "id")));
    found = json_incref(json_object_get(t, "task"));
    json_decref(t);
  }
  json_decref(l);
  return found;
}

/* A paid delegation completed: the result is A's, the receipts of its id hold the price. */
static void check_paid(json_t *r, const char *input) {
  assert_string_equal(json_string_value(json_object_get(r, "state")), "completed");
  assert_int_equal(tu_dec(r, "wei"), PRICE);
  json_t *t = a_task(input);
  assert_non_null(t);
  assert_string_equal(json_string_value(json_object_get(t, "state")), "done");
  assert_string_equal(json_string_value(json_object_get(r, "text")), json_string_value(json_object_get(t, "result")));
  json_decref(t);
  const char *id = json_string_value(json_object_get(r, "id"));
  json_t *cr = receipt(C, id, "client"), *pr = NULL;
  assert_non_null(cr);
  assert_int_equal(tu_dec(cr, "amount"), PRICE);
  for (int i = 0; i < 100; i++) { /* A marks it complete on the tasks/get that hands the result over */
    json_decref(pr);
    pr = receipt(A, id, "provider");
    if (pr && !strcmp(json_string_value(json_object_get(pr, "status")), "complete")) break;
    usleep(100000);
  }
  assert_non_null(pr);
  assert_int_equal(tu_dec(pr, "amount"), PRICE);
  assert_string_equal(json_string_value(json_object_get(pr, "channel")), json_string_value(json_object_get(cr, "channel")));
  if (!chan[0]) snprintf(chan, sizeof chan, "%s", json_string_value(json_object_get(cr, "channel")));
  assert_string_equal(json_string_value(json_object_get(cr, "channel")), chan);
  json_decref(cr);
  json_decref(pr);
}

static void test_paid(void **state) {
  (void)state;
  NEED();
  /* a budget under the price: refused before anything moves */
  assert_int_not_equal(apiary("task --home %s delegate %s scribe 'x' --max-wei %llu", home(C), ids(A), PRICE - 1), 0);
  assert_non_null(strstr(err, "above your max_wei"));
  json_t *r = tu_node_json(&cl, C, "task delegate %s scribe 'Thank the bees.' --max-wei %llu", ids(A), PRICE * 3);
  if (!r) fail_msg("delegate: %s", err);
  check_paid(r, "Thank the bees.");
  json_decref(r);
  books_equal(PRICE);
  /* A claims what it was paid (auto-claim at 1 wei): the chain agrees */
  assert_true(channel_reaches(A, chan, "claimed", PRICE));

  r = tu_node_json(&cl, C, "task delegate %s scribe 'Thank the flowers.' --max-wei %llu", ids(A), PRICE);
  if (!r) fail_msg("delegate: %s", err);
  check_paid(r, "Thank the flowers.");
  json_decref(r);
  books_equal(2 * PRICE);
  assert_true(channel_reaches(A, chan, "claimed", 2 * PRICE));
}

/* An agent priced per task and per token: C pays BASE + the tokens the task used at the
 * advertised rate, both receipts agree; with a budget under that, the budget is what is
 * paid (the price is capped by it) and the result is handed over all the same. */
static void test_per_token(void **state) {
  (void)state;
  NEED();
  uint64_t before = receipts_sum(C, "client", chan);
  for (int k = 0; k < 2; k++) {
    unsigned long long budget = k ? BASE + 3 * 1000000ull : PRICE;
    json_t *r = tu_node_json(&cl, C, "task delegate %s meter 'Count the bees.' --max-wei %llu", ids(A), budget);
    if (!r) fail_msg("delegate: %s", err);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "completed");
    uint64_t tokens = (uint64_t)json_integer_value(json_object_get(r, "tokens"));
    assert_true(tokens > 3);
    uint64_t want = k ? budget : BASE + tokens * (PER_1K / 1000);
    assert_int_equal(tu_dec(r, "wei"), want);
    const char *id = json_string_value(json_object_get(r, "id"));
    json_t *cr = receipt(C, id, "client"), *pr = NULL;
    assert_non_null(cr);
    assert_int_equal(tu_dec(cr, "amount"), want);
    for (int i = 0; i < 100; i++) {
      json_decref(pr);
      pr = receipt(A, id, "provider");
      if (pr && tu_dec(pr, "amount") == want) break;
      usleep(100000);
    }
    assert_non_null(pr);
    assert_int_equal(tu_dec(pr, "amount"), want);
    assert_non_null(json_string_value(json_object_get(r, "text")));
    before += want;
    json_decref(cr);
    json_decref(pr);
    json_decref(r);
  }
  books_equal(before);
}

/* A task nobody pays for (wait: false, so C's node does not stay to pay): A completes it
 * and holds the result back (payment_due, no artifact); its receipt stays at 0. */
static void test_held_back(void **state) {
  (void)state;
  NEED();
  uint64_t before = receipts_sum(C, "client", chan);
  char mw[24], *msg = NULL;
  snprintf(mw, sizeof mw, "%llu", PRICE);
  json_t *r = NULL;
  if (ctl_call(home(C), "a2a.delegate", json_pack("{s:s, s:s, s:s, s:s, s:b}", "node_id", ids(A), "agent", "scribe",
                                                   "input", "Count the cells.", "max_wei", mw, "wait", 0), 120000, &r, &msg))
    fail_msg("delegate: %s", msg);
  char id[40];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r, "id")));
  json_decref(r);
  json_t *g = NULL;
  const char *st = "";
  for (int i = 0; i < 600 && strcmp(st, "completed"); i++) {
    json_decref(g);
    if (ctl_call(home(C), "a2a.get", json_pack("{s:s, s:s}", "node_id", ids(A), "id", id), 120000, &g, &msg))
      fail_msg("a2a.get: %s", msg);
    st = json_string_value(json_object_get(json_object_get(g, "status"), "state"));
    if (strcmp(st, "completed")) usleep(100000);
  }
  assert_string_equal(st, "completed");
  assert_true(json_is_true(json_object_get(json_object_get(g, "metadata"), "payment_due")));
  assert_null(json_object_get(g, "artifacts"));
  json_decref(g);
  json_t *pr = receipt(A, id, "provider");
  assert_non_null(pr);
  assert_int_equal(tu_dec(pr, "amount"), 0);
  assert_string_equal(json_string_value(json_object_get(pr, "status")), "unpaid");
  json_decref(pr);
  json_t *cr = receipt(C, id, "client");
  assert_null(cr);
  books_equal(before);
}

/* An agent on C hands work to A's paid scribe with the delegate tool: the tool step and the
 * task count the price as spent, and the books still add up. */
static void test_agent_pays(void **state) {
  (void)state;
  NEED();
  uint64_t before = receipts_sum(C, "client", chan);
  json_t *r = tu_node_json(&cl, C, "task run boss 'Get a line written.' --wait");
  if (!r) fail_msg("task run: %s", err);
  json_t *task = json_object_get(r, "task");
  json_t *tool = json_array_get(json_object_get(task, "steps"), 1);
  assert_string_equal(json_string_value(json_object_get(tool, "tool")), "delegate");
  assert_string_equal(json_string_value(json_object_get(tool, "state")), "done");
  assert_int_equal((uint64_t)json_integer_value(json_object_get(tool, "wei")), PRICE);
  assert_true((uint64_t)json_integer_value(json_object_get(task, "wei")) >= PRICE);
  const char *input = json_string_value(json_object_get(json_object_get(tool, "args"), "task"));
  json_t *t = a_task(input);
  assert_non_null(t);
  assert_string_equal(json_string_value(json_object_get(json_object_get(tool, "output"), "text")),
                      json_string_value(json_object_get(t, "result")));
  json_decref(t);
  json_decref(r);
  books_equal(before + PRICE);
  /* a task whose cap leaves less than the price: the delegation is refused, nothing moves */
  r = tu_node_json(&cl, C, "task run cheap 'Get a line written.' --wait");
  if (!r) fail_msg("task run: %s", err);
  tool = json_array_get(json_object_get(json_object_get(r, "task"), "steps"), 1);
  assert_string_equal(json_string_value(json_object_get(tool, "tool")), "delegate");
  assert_string_equal(json_string_value(json_object_get(tool, "state")), "failed");
  const char *why = json_string_value(json_object_get(json_object_get(tool, "output"), "text"));
  if (!why || !strstr(why, "above max_wei")) fail_msg("the delegate step: %s", why ? why : "(no text)");
  assert_int_equal(json_integer_value(json_object_get(tool, "wei")), 0);
  json_decref(r);
  books_equal(before + PRICE);
}

/* ---- SIGKILL ---------------------------------------------------------------------------- */

typedef struct bg {
  pthread_t th;
  const char *input;
  const char *id;   /* an earlier delegation's id to take up (NULL: a new one) */
  int wait;
  json_t *res;
  char *msg;
} bg;

static void delegate_slow(bg *b) {
  char mw[24];
  snprintf(mw, sizeof mw, "%llu", PRICE);
  json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:b}", "node_id", ids(A), "agent", "slow", "input", b->input, "max_wei", mw,
                        "wait", b->wait);
  if (b->id) json_object_set_new(p, "id", json_string(b->id));
  ctl_call(home(C), "a2a.delegate", p, 300000, &b->res, &b->msg);
}

static void *bg_run(void *ud) {
  delegate_slow(ud);
  return NULL;
}

/* Waits until A's task for input is running with some tokens (1) or has ended (0). */
static int a_task_running(const char *input) {
  for (int i = 0; i < 600; i++) {
    json_t *t = a_task(input);
    const char *st = t ? json_string_value(json_object_get(t, "state")) : "";
    int running = st && !strcmp(st, "running"), ended = st && (!strcmp(st, "done") || !strcmp(st, "failed"));
    json_decref(t);
    if (running) return 1;
    if (ended) return 0;
    usleep(50000);
  }
  return 0;
}

static void test_kill_provider(void **state) {
  (void)state;
  NEED();
  uint64_t before = receipts_sum(C, "client", chan);
  bg b = {.input = "Tell the story of the hive.", .wait = 1};
  pthread_create(&b.th, NULL, bg_run, &b);
  if (!a_task_running(b.input)) fail_msg("A's task did not run");
  tu_node_kill(&cl, A);
  assert_int_equal(tu_node_start(&cl, A), 0);
  pthread_join(b.th, NULL);
  if (!b.res) fail_msg("delegate: %s", b.msg ? b.msg : "?");
  check_paid(b.res, b.input);
  json_decref(b.res);
  books_equal(before + PRICE);
}

/* C is killed while its delegation waits on A's task; after C restarts, the delegation
 * taken up again by its id (the same task on A) completes and pays the price once. */
static void test_kill_caller(void **state) {
  (void)state;
  NEED();
  uint64_t before = receipts_sum(C, "client", chan);
  bg first = {.input = "Tell the story of the queen.", .wait = 0};
  delegate_slow(&first);
  if (!first.res) fail_msg("delegate: %s", first.msg ? first.msg : "?");
  char id[40];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(first.res, "id")));
  json_decref(first.res);
  bg b = {.input = first.input, .id = id, .wait = 1};
  pthread_create(&b.th, NULL, bg_run, &b);
  if (!a_task_running(b.input)) fail_msg("A's task did not run");
  tu_node_kill(&cl, C);
  pthread_join(b.th, NULL); /* its control link is gone: an error */
  assert_null(b.res);
  free(b.msg);
  assert_int_equal(tu_node_start(&cl, C), 0);
  bg again = {.input = first.input, .id = id, .wait = 1};
  delegate_slow(&again);
  if (!again.res) fail_msg("delegate again: %s", again.msg ? again.msg : "?");
  assert_string_equal(json_string_value(json_object_get(again.res, "id")), id);
  check_paid(again.res, again.input);
  json_decref(again.res);
  books_equal(before + PRICE);
  /* and once more: the task is paid, nothing more is signed */
  bg third = {.input = first.input, .id = id, .wait = 1};
  delegate_slow(&third);
  if (!third.res) fail_msg("delegate a third time: %s", third.msg ? third.msg : "?");
  check_paid(third.res, third.input);
  json_decref(third.res);
  books_equal(before + PRICE);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_paid), cmocka_unit_test(test_per_token),
                                     cmocka_unit_test(test_held_back),
                                     cmocka_unit_test(test_agent_pays),
                                     cmocka_unit_test(test_kill_provider),
                                     cmocka_unit_test(test_kill_caller)};
  return cmocka_run_group_tests_name("a2a_pay", tests, setup, teardown);
}
