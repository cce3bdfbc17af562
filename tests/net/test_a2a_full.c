/* Delegation as issue #14 asks for it, end to end: three real node processes on loopback,
 * a real anvil chain, the tiny reference model, an MCP server written in JavaScript.
 *
 *   A (node 0)  sells the agent "noter" (skill "notes") at PRICE_A per task. Its agent takes
 *               a note with the stdio MCP tool (tests/cli/mcp_notes_server.js, run by
 *               Node) and has no model of its own: its model calls are bought through the
 *               market from B, paid per token.
 *   B (node 1)  serves the model on the market, and sells a "noter" of its own (same
 *               skill, local model) at PRICE_B > PRICE_A.
 *   C (node 2)  buys: by skill, with no node named.
 *
 *   - the agents are in the nodes' signed DHT records and in C's market offers;
 *   - A asking more than it advertised (a fault switch) gets nothing: the task fails clearly;
 *   - C sending someone else's channel (a fault switch) is refused by A;
 *   - C delegates "notes": the cheapest provider (A) is picked, its agent appends a note
 *     with the MCP tool and buys its generations from B; C pays PRICE_A once with a
 *     voucher; C's and A's receipts agree, and A's purchases from B agree on both sides;
 *   - A is SIGKILLed mid-task: C fails over to B, which does the task and is paid PRICE_B;
 *     A's abandoned attempt was paid nothing; when A is back C cancels it there (nothing
 *     paid still);
 *   - C is SIGKILLed mid-task: after C restarts it takes the delegation up again by itself
 *     (a2a.calls shows it completed) and pays once; asked for again by its id, nothing more;
 *   - at the end every channel is settled on chain (claimed, then closed by a refund) and
 *     what the Escrow says each provider got equals both sides' receipts.
 * Skips without anvil, Node or ../shared. Nothing leaves the machine. */
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

#define PRICE_A 1000000007ull
#define PRICE_B 2000000011ull
#define BUDGET "10000000000"

static char out[1 << 18], err[1 << 16];
static tu_cluster cl;
static int ready;
static char sha[65];

enum { A = 0, B = 1, C = 2 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define home(n) (cl.node[n].home)
#define ids(n) (cl.node[n].id)

static void notes_path(int n, char *p, size_t cap) { snprintf(p, cap, "%s/notes-%c.txt", cl.dir, 'a' + n); }

/* Node n's "noter": the MCP notes tool, sold at price (model "tiny": local on B, bought on A). */
static int add_noter(int n, unsigned long long price) {
  char path[400], notes[400], server[1200], cwd[800];
  if (!getcwd(cwd, sizeof cwd)) return -1;
  snprintf(server, sizeof server, "%s/tests/cli/mcp_notes_server.js", cwd); /* tests/run runs from the root */
  notes_path(n, notes, sizeof notes);
  snprintf(path, sizeof path, "%s/noter-%d.json", cl.dir, n);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f,
          "{\"name\":\"noter\",\"model\":\"tiny\",\"instructions\":\"Take a note.\",\"tools\":[\"notes__append_note\"],"
          "\"tool_choice\":\"required\",\"max_steps\":2,\"max_tokens\":200,\"seed\":11,"
          "\"mcp\":[{\"name\":\"notes\",\"command\":\"node\",\"args\":[\"%s\"],\"env\":{\"NOTES_FILE\":\"%s\"}}],"
          "\"sell\":{\"price_wei\":%llu,\"description\":\"Takes notes.\",\"skills\":[\"notes\"]}}",
          server, notes, price);
  fclose(f);
  return apiary("agent --home %s add --file %s", home(n), path) ? -1 : 0;
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared() || tu_run("node --version", out, sizeof out, NULL, 0)) return 0;
  int rc = tu_cluster_init(&cl, 3);
  if (rc < 0) return -1;
  if (rc) return 0; /* no anvil */
  char model[1024];
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-Q8_0.gguf");
  if (apiary("model pull --home %s %s --name tiny", home(B), model)) return -1;
  json_t *ml = tu_node_json(&cl, B, "model list");
  snprintf(sha, sizeof sha, "%s", json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")));
  json_decref(ml);
  for (int n = A; n <= B; n++)
    if (tu_node_set(&cl, n, "claim_threshold_wei", "\"1\"") || tu_node_set(&cl, n, "claim_interval", "1")) return -1;
  if (tu_node_set(&cl, B, "price_prompt", "1000") || tu_node_set(&cl, B, "price_gen", "3000") ||
      tu_node_set(&cl, B, "max_tps", "25"))
    return -1;
  for (int n = A; n <= C; n++)
    if (tu_node_start(&cl, n)) return -1;
  if (add_noter(A, PRICE_A) || add_noter(B, PRICE_B)) return -1;
  if (!tu_node_wait_offer(&cl, A, sha, B)) return -1;
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
      print_message("anvil, node or ../shared not available; skipping\n");                                        \
      skip();                                                                                                      \
    }                                                                                                              \
  } while (0)

/* ---- books ---------------------------------------------------------------------------- */

static json_t *receipt(int n, const char *req, const char *role) { return tu_node_receipt(&cl, n, req, role, NULL); }

static uint64_t receipt_amount(int n, const char *req, const char *role) {
  json_t *r = receipt(n, req, role);
  uint64_t a = r ? tu_dec(r, "amount") : 0;
  json_decref(r);
  return a;
}

/* Sum of node n's receipts in role with the other node other (any channel). */
static uint64_t receipts_with(int n, const char *role, int other) {
  json_t *l = tu_node_json(&cl, n, "receipts --role %s", role);
  uint64_t sum = 0;
  size_t k;
  json_t *x;
  const char *key = !strcmp(role, "client") ? "provider" : "client";
  json_array_foreach(json_object_get(l, "receipts"), k, x) {
    if (!strcmp(json_string_value(json_object_get(x, key)) ?: "", ids(other))) sum += tu_dec(x, "amount");
  }
  json_decref(l);
  return sum;
}

/* Waits until node n's receipt for req in role holds want. */
static int receipt_reaches(int n, const char *req, const char *role, uint64_t want) {
  for (int i = 0; i < 100; i++) {
    if (receipt_amount(n, req, role) == want) return 1;
    usleep(100000);
  }
  return 0;
}

static int lines_in(int n) {
  char p[400];
  notes_path(n, p, sizeof p);
  FILE *f = fopen(p, "r");
  int k = 0, ch;
  if (!f) return 0;
  while ((ch = fgetc(f)) != EOF) k += ch == '\n';
  fclose(f);
  return k;
}

/* The attempt of delegation result r on node n (owned, NULL when none). */
static json_t *attempt_on(json_t *r, int n) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(r, "attempts"), i, x) {
    if (!strcmp(json_string_value(json_object_get(x, "node_id")) ?: "", ids(n))) return json_incref(x);
  }
  return NULL;
}

static char why[2048]; /* the last delegation's error */

/* a2a.delegate on C; NULL with its error in why (and *msg, owned, when msg). */
static json_t *delegate(json_t *p, char **msg) {
  json_t *r = NULL;
  char *m = NULL;
  ctl_call(home(C), "a2a.delegate", p, 300000, &r, &m);
  snprintf(why, sizeof why, "%s", m ? m : "?");
  if (msg) *msg = m;
  else free(m);
  return r;
}

/* ---- tests ---------------------------------------------------------------------------- */

/* The agents for sale are in the nodes' signed DHT records and in C's market offers. */
static void test_offers(void **state) {
  (void)state;
  NEED();
  /* the record is printed as hex: "1:ald1:n5:noter1:pi1000000007e1:sl5:notese" (key "a") */
  const char *want = "313a616c64313a6e353a6e6f746572313a70693130303030303030303765313a736c353a6e6f74657365";
  int in_record = 0;
  for (int i = 0; i < 40 && !in_record; i++) {
    if (!apiary("dht --home %s get %s --salt apiary-node-v1", home(C), ids(A)) && strstr(out, want))
      in_record = 1;
    else
      usleep(250000);
  }
  if (!in_record) fail_msg("A's DHT record does not list its agent: %s%s", out, err);
  int seen = 0;
  for (int i = 0; i < 100 && seen != 3; i++) {
    json_t *o = tu_node_json(&cl, C, "offers");
    size_t k;
    json_t *x;
    seen = 0;
    json_array_foreach(json_object_get(o, "agents"), k, x) {
      const char *node = json_string_value(json_object_get(x, "node")) ?: "";
      int notes = !strcmp(json_string_value(json_array_get(json_object_get(x, "skills"), 0)) ?: "", "notes");
      if (!strcmp(node, ids(A)) && notes && tu_dec(x, "price_wei") == PRICE_A) seen |= 1;
      if (!strcmp(node, ids(B)) && notes && tu_dec(x, "price_wei") == PRICE_B) seen |= 2;
    }
    json_decref(o);
    if (seen != 3) usleep(100000);
  }
  assert_int_equal(seen, 3);
}

/* A asks more than it advertised (APIARY_FAULT_A2A_PRICE, and it ignores max_wei): C
 * refuses, the task fails saying so, nothing is paid. */
static void test_overcharge(void **state) {
  (void)state;
  NEED();
  char twice[32];
  snprintf(twice, sizeof twice, "%llu", 2 * PRICE_A);
  tu_node_stop(&cl, A);
  setenv("APIARY_FAULT_A2A_PRICE", twice, 1);
  int rc = tu_node_start(&cl, A);
  unsetenv("APIARY_FAULT_A2A_PRICE");
  assert_int_equal(rc, 0);
  json_t *r = delegate(json_pack("{s:s, s:s, s:s, s:s}", "node_id", ids(A), "agent", "notes", "input", "Note the price.",
                                 "max_wei", BUDGET), NULL);
  tu_node_stop(&cl, A); /* A without the fault from here on */
  assert_int_equal(tu_node_start(&cl, A), 0);
  assert_null(r);
  if (!strstr(why, "above the 1000000007 wei it advertised")) fail_msg("delegate: %s", why);
  assert_int_equal(receipts_with(C, "client", A), 0);
  assert_int_equal(receipts_with(A, "provider", C), 0);
}

/* The done-when path: C asks for the skill, A is picked (cheapest), its agent takes a note
 * with the MCP tool and buys its model calls from B; C pays PRICE_A once. */
static void test_paid_full(void **state) {
  (void)state;
  NEED();
  int notes_before = lines_in(A);
  uint64_t a_bought = receipts_with(A, "client", B);
  json_t *r = delegate(json_pack("{s:s, s:s, s:s}", "agent", "notes", "input", "Note that the hive moved.", "max_wei",
                                 BUDGET), NULL);
  if (!r) fail_msg("delegate: %s", why);
  assert_string_equal(json_string_value(json_object_get(r, "state")), "completed");
  assert_string_equal(json_string_value(json_object_get(r, "node_id")), ids(A));
  assert_int_equal(tu_dec(r, "wei"), PRICE_A);
  const char *id = json_string_value(json_object_get(r, "id"));
  /* the MCP tool wrote the note, through Node */
  assert_true(lines_in(A) > notes_before);
  /* both sides' receipts of the task */
  assert_int_equal(receipt_amount(C, id, "client"), PRICE_A);
  assert_true(receipt_reaches(A, id, "provider", PRICE_A));
  /* A paid B for the generations, and both agree */
  uint64_t bought = receipts_with(A, "client", B);
  assert_true(bought > a_bought);
  for (int i = 0; i < 100 && receipts_with(B, "provider", A) != bought; i++) usleep(100000);
  assert_int_equal(receipts_with(B, "provider", A), bought);
  json_decref(r);
}

/* C sends a channel that is not its own (B's channel to A; APIARY_FAULT_A2A_CHANNEL): A
 * refuses the task; nothing is recorded or paid. */
static void test_channel_not_yours(void **state) {
  (void)state;
  NEED();
  json_t *o = tu_node_json(&cl, B, "channel open %s 1000000000000000", ids(A));
  if (!o) fail_msg("channel open: %s", err);
  char bch[80];
  snprintf(bch, sizeof bch, "%s", json_string_value(json_object_get(o, "id")) ?: "");
  json_decref(o);
  const char *hexpart = !strncmp(bch, "0x", 2) ? bch + 2 : bch;
  assert_int_equal(strlen(hexpart), 64);
  uint64_t a_before = receipts_with(A, "provider", C);
  tu_node_stop(&cl, C);
  setenv("APIARY_FAULT_A2A_CHANNEL", hexpart, 1);
  int rc = tu_node_start(&cl, C);
  unsetenv("APIARY_FAULT_A2A_CHANNEL");
  assert_int_equal(rc, 0);
  json_t *r = delegate(json_pack("{s:s, s:s, s:s, s:s, s:i}", "node_id", ids(A), "agent", "noter", "input",
                                 "Note the thief.", "max_wei", BUDGET, "timeout_s", 30), NULL);
  tu_node_stop(&cl, C); /* C without the fault from here on */
  assert_int_equal(tu_node_start(&cl, C), 0);
  assert_null(r);
  if (!strstr(why, "not yours")) fail_msg("delegate: %s", why);
  assert_int_equal(receipts_with(A, "provider", C), a_before);
}

/* Waits until node n has a task whose input is input running (1) or ended (0). */
static int task_running(int n, const char *input) {
  for (int i = 0; i < 600; i++) {
    json_t *l = tu_node_json(&cl, n, "task list");
    size_t k;
    json_t *x;
    const char *st = "";
    json_array_foreach(json_object_get(l, "tasks"), k, x) {
      if (!strcmp(json_string_value(json_object_get(x, "input")) ?: "", input))
        st = json_string_value(json_object_get(x, "state")) ?: "";
    }
    int running = !strcmp(st, "running"), ended = !strcmp(st, "done") || !strcmp(st, "failed");
    json_decref(l);
    if (running) return 1;
    if (ended) return 0;
    usleep(50000);
  }
  return 0;
}

typedef struct bg {
  pthread_t th;
  json_t *p;
  json_t *res;
} bg;

static void *bg_run(void *ud) {
  bg *b = ud;
  b->res = delegate(b->p, NULL);
  return NULL;
}

/* A dies while it has the task: C leaves it after failover_s and gives the task to B (the
 * next cheapest selling "notes"), pays B's price; A's attempt cost nothing, even after A
 * restarts and finishes it. */
static void test_failover(void **state) {
  (void)state;
  NEED();
  const char *input = "Note that the queen left.";
  /* C must know both again after its restart */
  for (int i = 0; i < 100; i++) {
    json_t *o = tu_node_json(&cl, C, "offers");
    size_t n = json_array_size(json_object_get(o, "agents"));
    json_decref(o);
    if (n >= 2) break;
    usleep(100000);
  }
  bg b = {.p = json_pack("{s:s, s:s, s:s, s:i}", "agent", "notes", "input", input, "max_wei", BUDGET, "failover_s", 3)};
  pthread_create(&b.th, NULL, bg_run, &b);
  if (!task_running(A, input)) fail_msg("A's task did not run");
  tu_node_kill(&cl, A);
  pthread_join(b.th, NULL);
  if (!b.res) fail_msg("delegate: %s", why);
  json_t *r = b.res;
  assert_string_equal(json_string_value(json_object_get(r, "state")), "completed");
  assert_string_equal(json_string_value(json_object_get(r, "node_id")), ids(B));
  assert_int_equal(tu_dec(r, "wei"), PRICE_B);
  json_t *ta = attempt_on(r, A), *tb = attempt_on(r, B);
  assert_non_null(ta);
  assert_non_null(tb);
  assert_string_equal(json_string_value(json_object_get(ta, "state")), "lost");
  assert_int_equal(tu_dec(ta, "wei"), 0);
  assert_int_equal(tu_dec(tb, "wei"), PRICE_B);
  const char *ida = json_string_value(json_object_get(ta, "id")), *idb = json_string_value(json_object_get(tb, "id"));
  assert_int_equal(receipt_amount(C, idb, "client"), PRICE_B);
  assert_true(receipt_reaches(B, idb, "provider", PRICE_B));
  assert_int_equal(receipt_amount(C, ida, "client"), 0);
  /* A comes back: C cancels the task it left there (A may have finished it first); it is
   * never paid */
  assert_int_equal(tu_node_start(&cl, A), 0);
  int abandoned = 0;
  for (int i = 0; i < 100 && !abandoned; i++) {
    json_t *l = tu_node_json(&cl, C, "task delegations");
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(l, "calls"), k, x) {
      if (!strcmp(json_string_value(json_object_get(x, "id")) ?: "", ida) &&
          !strcmp(json_string_value(json_object_get(x, "state")) ?: "", "abandoned"))
        abandoned = 1;
    }
    json_decref(l);
    if (!abandoned) usleep(100000);
  }
  assert_true(abandoned);
  int ended = 0;
  for (int i = 0; i < 100 && !ended; i++) {
    json_t *l = tu_node_json(&cl, A, "task list");
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(l, "tasks"), k, x) {
      const char *st = json_string_value(json_object_get(x, "state")) ?: "";
      if (!strcmp(json_string_value(json_object_get(x, "input")) ?: "", input) &&
          (!strcmp(st, "canceled") || !strcmp(st, "done")))
        ended = 1;
    }
    json_decref(l);
    if (!ended) usleep(100000);
  }
  assert_true(ended);
  assert_int_equal(receipt_amount(A, ida, "provider"), 0);
  assert_int_equal(receipt_amount(C, ida, "client"), 0);
  json_decref(ta);
  json_decref(tb);
  json_decref(r);
}

/* C dies while its delegation waits on A; after C restarts, C takes the delegation up by
 * itself, pays PRICE_A once and records the answer; asked for again by its id: nothing more. */
static void test_kill_caller(void **state) {
  (void)state;
  NEED();
  const char *input = "Note that the drones returned.";
  json_t *r = delegate(json_pack("{s:s, s:s, s:s, s:s, s:b}", "node_id", ids(A), "agent", "notes", "input", input,
                                 "max_wei", BUDGET, "wait", 0), NULL);
  if (!r) fail_msg("delegate: %s", why);
  char id[40];
  snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r, "id")));
  json_decref(r);
  bg b = {.p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "node_id", ids(A), "agent", "notes", "input", input, "max_wei",
                         BUDGET, "id", id)};
  pthread_create(&b.th, NULL, bg_run, &b);
  if (!task_running(A, input)) fail_msg("A's task did not run");
  tu_node_kill(&cl, C);
  pthread_join(b.th, NULL);
  assert_null(b.res);
  assert_int_equal(tu_node_start(&cl, C), 0);
  /* C takes the delegation up again by itself: it pays and records the answer, no call needed */
  int ended = 0;
  for (int i = 0; i < 300 && !ended; i++) {
    json_t *l = tu_node_json(&cl, C, "task delegations"); /* a2a.calls */
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(l, "calls"), k, x) {
      if (!strcmp(json_string_value(json_object_get(x, "id")) ?: "", id) &&
          !strcmp(json_string_value(json_object_get(x, "state")) ?: "", "completed"))
        ended = 1;
    }
    json_decref(l);
    if (!ended) usleep(100000);
  }
  assert_true(ended);
  assert_int_equal(receipt_amount(C, id, "client"), PRICE_A);
  for (int k = 0; k < 2; k++) { /* asked for again, twice: the same task, paid once */
    r = delegate(json_pack("{s:s, s:s, s:s, s:s, s:s}", "node_id", ids(A), "agent", "notes", "input", input, "max_wei",
                           BUDGET, "id", id), NULL);
    if (!r) fail_msg("delegate again: %s", why);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "completed");
    assert_string_equal(json_string_value(json_object_get(r, "id")), id);
    assert_int_equal(tu_dec(r, "wei"), PRICE_A);
    json_decref(r);
  }
  assert_int_equal(receipt_amount(C, id, "client"), PRICE_A);
  assert_true(receipt_reaches(A, id, "provider", PRICE_A));
}

/* ---- settlement ------------------------------------------------------------------------ */

/* The escrow's (claimed, closed) of channel ch, read from anvil with cast. 0 or -1. */
static int onchain(const char *ch, uint64_t *claimed, int *closed) {
  char cfg[400], cast[600], escrow[64] = "";
  snprintf(cfg, sizeof cfg, "%s/config.toml", home(A));
  FILE *f = fopen(cfg, "r");
  char line[512];
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "escrow = \"", 10)) sscanf(line + 10, "%63[^\"]", escrow);
  if (f) fclose(f);
  snprintf(cast, sizeof cast, "%s", cl.anvil_bin);
  char *slash = strrchr(cast, '/');
  if (!slash || !escrow[0]) return -1;
  snprintf(slash + 1, sizeof cast - (size_t)(slash + 1 - cast), "cast");
  char cmd[1400];
  snprintf(cmd, sizeof cmd,
           "%s call %s 'getChannel(bytes32)((address,uint64,bool,address,address,uint128,uint128))' %s --rpc-url %s", cast,
           escrow, ch, cl.chain.url);
  if (tu_run(cmd, out, sizeof out, err, sizeof err)) return -1;
  /* (client, expiry, closed, provider, signer, deposit, claimed) */
  char *p = out;
  for (int i = 0; i < 2 && p; i++) p = strstr(p, ", ") ? strstr(p, ", ") + 2 : NULL;
  if (!p) return -1;
  *closed = !strncmp(p, "true", 4);
  for (int i = 0; i < 4 && p; i++) p = strstr(p, ", ") ? strstr(p, ", ") + 2 : NULL;
  if (!p) return -1;
  *claimed = strtoull(p, NULL, 10);
  return 0;
}

/* Sum of all of node n's receipts in role. */
static uint64_t receipts_all(int n, const char *role) {
  json_t *l = tu_node_json(&cl, n, "receipts --role %s", role);
  uint64_t sum = 0;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(l, "receipts"), k, x) sum += tu_dec(x, "amount");
  json_decref(l);
  return sum;
}

/* Node n's provider channels: each one's claim lands on chain at what n accepted, then n
 * closes it (a refund) and the chain says so, the claim unchanged. Returns the total the
 * Escrow paid n. */
static uint64_t settle(int n) {
  json_t *l = tu_node_json(&cl, n, "channel list");
  size_t k;
  json_t *x;
  uint64_t total = 0;
  json_array_foreach(json_object_get(l, "channels"), k, x) {
    if (strcmp(json_string_value(json_object_get(x, "role")) ?: "", "provider")) continue;
    const char *ch = json_string_value(json_object_get(x, "id"));
    uint64_t claimed = 0;
    int closed = 0;
    for (int i = 0; i < 100; i++) { /* the auto-claim (threshold 1 wei) lands */
      if (!onchain(ch, &claimed, &closed) && claimed == tu_dec(x, "signed")) break;
      usleep(100000);
    }
    assert_int_equal(claimed, tu_dec(x, "signed"));
    if (apiary("channel --home %s refund %s", home(n), ch)) fail_msg("refund: %s", err);
    assert_int_equal(onchain(ch, &claimed, &closed), 0);
    assert_true(closed);
    assert_int_equal(claimed, tu_dec(x, "signed"));
    total += claimed;
  }
  json_decref(l);
  return total;
}

/* The books of every pair agree, and with the chain. */
static void test_settle(void **state) {
  (void)state;
  NEED();
  uint64_t a_bought = receipts_with(A, "client", B);
  assert_true(a_bought > 0);
  assert_int_equal(receipts_with(B, "provider", A), a_bought);
  assert_int_equal(receipts_with(A, "provider", C), 2 * PRICE_A);
  assert_int_equal(receipts_with(C, "client", A), 2 * PRICE_A);
  assert_int_equal(receipts_with(B, "provider", C), PRICE_B);
  assert_int_equal(receipts_with(C, "client", B), PRICE_B);
  assert_int_equal(receipts_all(A, "provider"), 2 * PRICE_A);
  assert_int_equal(receipts_all(B, "provider"), PRICE_B + a_bought);
  assert_int_equal(settle(A), 2 * PRICE_A);
  assert_int_equal(settle(B), PRICE_B + a_bought);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_offers),          cmocka_unit_test(test_overcharge), cmocka_unit_test(test_paid_full),
      cmocka_unit_test(test_channel_not_yours), cmocka_unit_test(test_failover), cmocka_unit_test(test_kill_caller),
      cmocka_unit_test(test_settle)};
  return cmocka_run_group_tests_name("a2a_full", tests, setup, teardown);
}
