/* Negotiation between two real nodes (issue #15), and the market honouring the deal: real
 * node processes on loopback, a real anvil chain, stories15M.
 *
 *   A (node 0) sells stories15M at PRICE_G wei per 1k generated tokens (prompt free) and
 *   declares an offer intent for generations: price_gen from 2000 to 5000 per 1k, its
 *   mandate accepts down to 2000 and prefers more. C (node 1) declares a seek intent with
 *   the same terms: it prefers low prices and never pays more than 4000 (required terms).
 *
 *   - A's intent is in its signed DHT record (key "n"); C finds it by tag;
 *   - before any deal, C's paid generation from A costs the offer price;
 *   - C negotiates with A over the link; both nodes list the same deal with two valid
 *     signatures (and both wallets' EIP-712 signatures of the payment terms) and the
 *     agreed price is within both mandates;
 *   - C's next paid generation from A costs tokens x the agreed price on both receipts;
 *   - C's copy of the deal tampered with (its price changed): C no longer honours it and
 *     pays the offer price; A's copy tampered with: A no longer accepts the agreed price
 *     from C (the request is refused, nothing paid); restored: the agreed price again.
 *   (Copies are edited in the databases while the nodes run.) A restarted A still
 *   honours the deal.
 * A deal bound to another pair is not honoured: tests/unit/test_neg_store.c.
 * Skips without anvil or ../shared. Nothing leaves the machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

#define PRICE_G 5000ull /* wei per 1k generated tokens in A's offer */
#define TOKENS 24

static char out[1 << 18], err[1 << 16];
static tu_cluster cl;
static int ready;
static char sha[65];

enum { A = 0, C = 1 };

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)
#define home(n) (cl.node[n].home)
#define ids(n) (cl.node[n].id)

static const char issues[] = "\"issues\": [{\"name\": \"price_gen\", \"role\": \"price\","
                             " \"values\": [\"2000\", \"2500\", \"3000\", \"3500\", \"4000\", \"4500\", \"5000\"]}]";

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared()) return 0;
  int rc = tu_cluster_init(&cl, 2);
  if (rc < 0) return -1;
  if (rc) return 0; /* no anvil */
  char mirror[1024], gp[32];
  tu_shared_path(mirror, sizeof mirror, "models");
  if (apiary("model pull --home %s stories15M --from %s", home(A), mirror)) return -1;
  json_t *ml = apiary_json("model list --home %s", home(A));
  snprintf(sha, sizeof sha, "%s", json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")) ?: "");
  json_decref(ml);
  snprintf(gp, sizeof gp, "%llu", PRICE_G);
  if (tu_node_set(&cl, A, "price_prompt", "0") || tu_node_set(&cl, A, "price_gen", gp) ||
      tu_node_set(&cl, A, "claim_threshold_wei", "\"1\"") || tu_node_set(&cl, A, "claim_interval", "1"))
    return -1;
  if (tu_node_start(&cl, A) || tu_node_start(&cl, C)) return -1;
  ready = 1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (cl.n) tu_cluster_free(&cl);
  return 0;
}

#define NEED()                                                                \
  do {                                                                        \
    if (!ready) {                                                             \
      print_message("anvil or ../shared not available; skipping\n");         \
      skip();                                                                 \
    }                                                                         \
  } while (0)

static uint64_t cost(uint64_t price_per_1k) { return (TOKENS * price_per_1k + 999) / 1000; }

static json_t *receipt(int n, const char *req, const char *role) { return tu_node_receipt(&cl, n, req, role, NULL); }

/* Waits until node n's receipt for req holds want wei (both sides settle after the answer). */
static uint64_t settled(int n, const char *req, const char *role, uint64_t want) {
  uint64_t got = 0;
  for (int i = 0; i < 100; i++) {
    json_t *r = receipt(n, req, role);
    got = r ? tu_dec(r, "amount") : 0;
    int done = r && !strcmp(json_string_value(json_object_get(r, "status")) ?: "", "complete");
    json_decref(r);
    if (done && got == want) break;
    usleep(100000);
  }
  return got;
}

/* The newest client receipt's request on C. */
static void newest_request(char *req, size_t cap) {
  json_t *l = apiary_json("receipts --home %s --role client", home(C));
  snprintf(req, cap, "%s", json_string_value(json_object_get(json_array_get(json_object_get(l, "receipts"), 0), "request")) ?: "");
  json_decref(l);
}

/* C buys TOKENS generated tokens from A; returns the cost C's node reports (-1: failed)
 * and checks both receipts hold it. */
static long long buy(void) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s ask --home %s --json stories15M 'Once upon a time' --node %s -n %d --temp 0",
           tu_apiary_bin(), home(C), ids(A), TOKENS);
  if (tu_run(cmd, out, sizeof out, err, sizeof err)) return -1;
  json_t *r = json_loads(out, 0, NULL);
  assert_non_null(r);
  assert_int_equal(json_integer_value(json_object_get(r, "completion_tokens")), TOKENS);
  long long c = (long long)tu_dec(r, "cost_wei");
  json_decref(r);
  char req[40];
  newest_request(req, sizeof req);
  assert_int_equal(settled(C, req, "client", (uint64_t)c), (uint64_t)c);
  assert_int_equal(settled(A, req, "provider", (uint64_t)c), (uint64_t)c);
  return c;
}

/* Node n's one session (owned). */
static json_t *only_session(int n) {
  json_t *l = apiary_json("negotiate list --home %s", home(n));
  assert_non_null(l);
  json_t *ss = json_object_get(l, "sessions");
  assert_int_equal(json_array_size(ss), 1);
  json_t *s = json_incref(json_array_get(ss, 0));
  json_decref(l);
  return s;
}

/* Replaces text `from` with `to` in node n's stored deal while the node runs (this test
 * process writing its database: the node must see it). */
static void edit_deal(int n, const char *from, const char *to) {
  char path[400];
  snprintf(path, sizeof path, "%s/apiary.db", home(n));
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt *st;
  assert_int_equal(sqlite3_prepare_v2(db, "UPDATE neg_deals SET deal = replace(deal, ?1, ?2)", -1, &st, NULL), SQLITE_OK);
  sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
  assert_int_equal(sqlite3_step(st), SQLITE_DONE);
  assert_int_equal(sqlite3_changes(db), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
}

/* Starts node n again and waits until C knows A's offer. */
static void restart(int n) {
  if (tu_node_start(&cl, n)) fail_msg("node %s did not start again", home(n));
  if (cl.node[C].pid) assert_true(tu_node_wait_offer(&cl, C, sha, A));
}

static void test_negotiate_and_buy(void **state) {
  (void)state;
  NEED();
  char path[400], text[2000];
  /* A offers generations: prefers high prices, accepts anything down to 2000. */
  snprintf(path, sizeof path, "%s/sell.json", cl.dir);
  snprintf(text, sizeof text,
           "{\"id\": \"gen-sell\", \"kind\": \"offer\", \"tags\": [\"llm\", \"gen\", \"stories\"], \"name\": \"gen-price\", %s,"
           " \"strategy\": \"linear\", \"mandate\": {\"weights\": [1], \"scores\": [[0, 0.17, 0.33, 0.5, 0.67, 0.83, 1]],"
           " \"reservation\": 0, \"deadline\": 20}}", issues);
  write_file(path, text);
  assert_int_equal(apiary("negotiate intent add --home %s %s", home(A), path), 0);
  /* C seeks them: prefers low prices, never above 4000. */
  snprintf(path, sizeof path, "%s/buy.json", cl.dir);
  snprintf(text, sizeof text,
           "{\"id\": \"gen-buy\", \"kind\": \"seek\", \"tags\": [\"gen\"], \"name\": \"gen-price\", %s,"
           " \"strategy\": \"linear\", \"mandate\": {\"weights\": [1], \"scores\": [[1, 0.83, 0.67, 0.5, 0.33, 0.17, 0]],"
           " \"reservation\": 0.2, \"deadline\": 20, \"required\": {\"price_gen\": [\"2000\", \"2500\", \"3000\", \"3500\","
           " \"4000\"]}}}", issues);
  write_file(path, text);
  assert_int_equal(apiary("negotiate intent add --home %s %s", home(C), path), 0);
  assert_int_not_equal(apiary("negotiate intent add --home %s %s", home(C), path), 0); /* the id exists */
  json_t *il = apiary_json("negotiate intent list --home %s", home(C));
  assert_int_equal(json_array_size(json_object_get(il, "intents")), 1);
  json_decref(il);

  /* A's intent is in its signed DHT record: key "n" ("1:nl" in bencode). */
  int in_record = 0;
  for (int i = 0; i < 100 && !in_record; i++) {
    json_t *rec = apiary_json("dht --home %s get %s --salt apiary-node-v1", home(C), ids(A));
    const char *raw = json_string_value(json_object_get(rec, "raw_hex"));
    in_record = raw && strstr(raw, "313a6e6c") && strstr(raw, "67656e2d73656c6c") /* gen-sell */;
    json_decref(rec);
    if (!in_record) usleep(100000);
  }
  assert_true(in_record);

  /* C finds it by tag (and against its own intent); a tag nobody has finds nothing. */
  int found = 0;
  for (int i = 0; i < 150 && !found; i++) {
    json_t *f = apiary_json("negotiate find --home %s gen --intent gen-buy", home(C));
    json_t *x = json_array_get(json_object_get(f, "intents"), 0);
    found = x && !strcmp(json_string_value(json_object_get(x, "node_id")) ?: "", ids(A)) &&
            !strcmp(json_string_value(json_object_get(x, "id")) ?: "", "gen-sell");
    json_decref(f);
    if (!found) usleep(100000);
  }
  assert_true(found);
  json_t *none = apiary_json("negotiate find --home %s image", home(C));
  assert_int_equal(json_array_size(json_object_get(none, "intents")), 0);
  json_decref(none);

  /* Without a deal: the offer price. */
  assert_true(tu_node_wait_offer(&cl, C, sha, A));
  assert_int_equal(buy(), (long long)cost(PRICE_G));

  /* The negotiation, over the link. */
  json_t *res = apiary_json("negotiate start --home %s %s/gen-sell --intent gen-buy --wait", home(C), ids(A));
  if (!res) fail_msg("negotiate start: %s", err);
  assert_string_equal(json_string_value(json_object_get(res, "state")), "agreed");
  assert_true(json_is_true(json_object_get(res, "verified")));
  const char *sid = json_string_value(json_object_get(res, "id"));
  uint64_t price = tu_dec(res, "price_per_1k_wei");
  print_message("agreed on %llu wei per 1k in %lld rounds\n", (unsigned long long)price,
                (long long)json_integer_value(json_object_get(res, "rounds")));
  assert_true(price >= 2000 && price <= 4000); /* A's reservation, C's required terms */
  json_t *ca = only_session(A), *cc = only_session(C);
  assert_string_equal(json_string_value(json_object_get(ca, "id")), sid);
  assert_string_equal(json_string_value(json_object_get(ca, "state")), "agreed");
  assert_true(json_is_true(json_object_get(ca, "verified")));
  assert_true(json_is_true(json_object_get(cc, "verified")));
  assert_true(json_equal(json_object_get(ca, "deal"), json_object_get(cc, "deal"))); /* document and both signatures */
  assert_string_equal(json_string_value(json_object_get(ca, "seller")), json_string_value(json_object_get(cc, "seller")));
  assert_string_equal(json_string_value(json_object_get(ca, "buyer")), json_string_value(json_object_get(cc, "buyer")));
  assert_false(json_is_true(json_object_get(ca, "opener")));
  assert_true(json_is_true(json_object_get(cc, "opener")));
  char pstr[24];
  snprintf(pstr, sizeof pstr, "%llu", (unsigned long long)price);
  json_t *terms = json_object_get(json_object_get(json_object_get(ca, "deal"), "deal"), "terms");
  assert_string_equal(json_string_value(json_object_get(terms, "price_gen")), pstr);
  /* With payments on, both wallets signed the EIP-712 digest of the payment terms: C (the
   * opener) is side a, A side b. */
  json_t *e = json_object_get(json_object_get(ca, "deal"), "eip712");
  assert_non_null(e);
  json_t *wa = apiary_json("wallet --home %s address", home(A)), *wc = apiary_json("wallet --home %s address", home(C));
  assert_string_equal(json_string_value(json_object_get(e, "addr_a")), json_string_value(json_object_get(wc, "address")));
  assert_string_equal(json_string_value(json_object_get(e, "addr_b")), json_string_value(json_object_get(wa, "address")));
  assert_int_equal(strlen(json_string_value(json_object_get(e, "sig_a")) ?: ""), 132);
  assert_int_equal(strlen(json_string_value(json_object_get(e, "sig_b")) ?: ""), 132);
  assert_int_equal(json_integer_value(json_object_get(e, "chain_id")), 31337);
  json_decref(wa);
  json_decref(wc);
  json_t *shown = apiary_json("negotiate show --home %s %s", home(A), sid);
  assert_non_null(shown);
  json_decref(shown);
  json_decref(ca);
  json_decref(cc);
  json_decref(res);

  /* The market honours it: tokens x the agreed price, on both receipts. */
  assert_int_equal(buy(), (long long)cost(price));

  /* C's copy tampered with (edited in its database while it runs): C does not honour it
   * and pays the offer price. */
  char from[64], to[64];
  snprintf(from, sizeof from, "\"price_gen\":\"%llu\"", (unsigned long long)price);
  snprintf(to, sizeof to, "\"price_gen\":\"%llu\"", (unsigned long long)(price == 2000 ? 2500 : 2000));
  edit_deal(C, from, to);
  assert_int_equal(buy(), (long long)cost(PRICE_G));
  json_t *bad = only_session(C);
  assert_false(json_is_true(json_object_get(bad, "verified")));
  json_decref(bad);
  edit_deal(C, to, from);
  /* A's copy tampered with: A wants its offer price again and refuses C's agreed price
   * (MKT_E_PRICE); C does not pay more than it agreed: the request fails, nothing spent. */
  edit_deal(A, from, to);
  assert_int_equal(buy(), -1);
  if (!strstr(err, "price was not agreed")) fail_msg("unexpected error: %s", err);
  /* Both restored: the agreed price again. Then A restarts: the deal is still honoured. */
  edit_deal(A, to, from);
  assert_int_equal(buy(), (long long)cost(price));
  tu_node_stop(&cl, A);
  restart(A);
  assert_int_equal(buy(), (long long)cost(price));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_negotiate_and_buy)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
