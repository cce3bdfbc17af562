/* agent/neg_owner and agent/neg_store: intent files (public part vs. mandate, errors that
 * name the field) and the deal price the market honours (both signatures, bound to
 * exactly the two parties, a price term, unexpired); a deal for another pair, a tampered
 * document, an expired deal or one whose volume is used up is not honoured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "agent/neg_deal.h"
#include "agent/neg_owner.h"
#include "agent/neg_store.h"
#include "core/err.h"
#include "market/receipt.h"
#include "node/home.h"

static const char sell[] =
    "{\"id\": \"gen-sell\", \"kind\": \"offer\", \"tags\": [\"llm\", \"gen\"], \"name\": \"gen-price\","
    " \"issues\": [{\"name\": \"price_gen\", \"role\": \"price\", \"values\": [\"2000\", \"3000\", \"4000\"]},"
    "             {\"name\": \"expiry\", \"role\": \"expiry\", \"values\": [\"60\", \"3600\"]}],"
    " \"strategy\": \"boulware\","
    " \"mandate\": {\"weights\": [0.8, 0.2], \"scores\": [[0, 0.5, 1], [1, 0]], \"reservation\": 0.3,"
    "             \"deadline\": 30, \"confidential\": [\"expiry\"]}}";

static void test_owner_file(void **state) {
  (void)state;
  neg_owner_intent *o = malloc(sizeof *o);
  char err[400];
  assert_int_equal(neg_owner_parse(sell, strlen(sell), o, err, sizeof err), 0);
  assert_string_equal(o->id, "gen-sell");
  assert_false(o->intent.seek);
  assert_int_equal(o->intent.n_tags, 2);
  assert_string_equal(o->intent.schema.name, "gen-price");
  assert_int_equal(o->intent.schema.n_issues, 2);
  assert_int_equal(o->strategy, NEG_STRAT_BOULWARE);
  assert_int_equal(o->mandate.deadline, 30);
  assert_int_equal(o->mandate.confidential, 2u);
  assert_true(o->mandate.prefs.reservation > 0.29 && o->mandate.prefs.reservation < 0.31);
  /* the public part has no mandate, and parses back as the same intent */
  json_t *pub = neg_owner_public(o);
  assert_null(json_object_get(pub, "mandate"));
  assert_null(json_object_get(pub, "strategy"));
  assert_string_equal(json_string_value(json_object_get(pub, "id")), "gen-sell");
  neg_intent back;
  assert_int_equal(neg_intent_from_json(pub, &back, err, sizeof err), 0);
  assert_true(neg_owner_same_schema(&back.schema, &o->intent.schema));
  json_decref(pub);
  /* errors name the field */
  static const struct { const char *text, *want; } bad[] = {
      {"{\"kind\": \"offer\"}", "id"},
      {"{\"id\": \"Bad Id\", \"kind\": \"offer\"}", "id"},
      {"{\"id\": \"x\", \"kind\": \"sell\", \"tags\": [\"a\"]}", "kind"},
      {"{\"id\": \"x\", \"kind\": \"seek\", \"tags\": [\"a\"], \"issues\": [{\"name\": \"p\", \"values\": [\"1\"]}]}", "mandate"},
      {"{\"id\": \"x\", \"kind\": \"seek\", \"tags\": [\"a\"], \"issues\": [{\"name\": \"p\", \"values\": [\"1\", \"2\"]}],"
       " \"mandate\": {\"weights\": [0.5], \"scores\": [[1, 0]], \"reservation\": 0, \"deadline\": 5}}", "weights"},
      {"{\"id\": \"x\", \"kind\": \"seek\", \"tags\": [\"a\"], \"issues\": [{\"name\": \"p\", \"values\": [\"1\"]}],"
       " \"strategy\": \"greedy\", \"mandate\": {}}", "strategy"},
      {"[1, 2", "line"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_not_equal(neg_owner_parse(bad[i].text, strlen(bad[i].text), o, err, sizeof err), 0);
    if (!strstr(err, bad[i].want)) fail_msg("case %zu: '%s' does not name %s", i, err, bad[i].want);
  }
  char *big = calloc(1, NEG_OWNER_MAX + 2);
  memset(big, ' ', NEG_OWNER_MAX + 1);
  assert_int_equal(neg_owner_parse(big, NEG_OWNER_MAX + 1, o, err, sizeof err), ERR_TOOBIG);
  free(big);
  free(o);
}

/* A signed deal between a (opener) and b at price_idx (0..2) lasting expiry_idx, as text. */
static char *signed_deal(const neg_owner_intent *o, const ident *a, const ident *b, int price_idx, int expiry_idx,
                         uint64_t created_ms, int tamper) {
  neg_bid bid = {{(uint8_t)price_idx, (uint8_t)expiry_idx}};
  uint8_t sess[16] = {1, 2, 3};
  sess[15] = (uint8_t)(price_idx * 3 + expiry_idx);
  neg_deal d;
  assert_int_equal(neg_deal_init(&d, &o->intent.schema, &bid, sess, a->pk, b->pk, 5, created_ms), 0);
  assert_int_equal(neg_deal_sign(&d, a, 0), 0);
  assert_int_equal(neg_deal_sign(&d, b, 1), 0);
  if (tamper) json_object_set_new(json_object_get(d.doc, "payment"), "price_per_1k_wei", json_string("1"));
  json_t *j = neg_deal_to_json(&d);
  char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  neg_deal_deinit(&d);
  return t;
}

static void test_deal_price(void **state) {
  (void)state;
  char dir[256], path[300], err[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/neg.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  store_migration m = {"agent", neg_schema_v1};
  assert_int_equal(store_migrate(s, &m, 1, err, sizeof err), 1);
  neg_owner_intent *o = malloc(sizeof *o);
  assert_int_equal(neg_owner_parse(sell, strlen(sell), o, err, sizeof err), 0);
  uint8_t sa[32] = {1}, sb[32] = {2}, sx[32] = {3};
  ident seller, buyer, other;
  ident_from_seed(sa, &seller), ident_from_seed(sb, &buyer), ident_from_seed(sx, &other);
  uint64_t now_s = 1800000000, created = now_s * 1000 - 10000; /* 10 s ago */
  uint64_t price;
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), ERR_NOTFOUND);

  /* valid, lasting an hour (the buyer opened it): honoured for that pair, in that role only */
  char *t = signed_deal(o, &buyer, &seller, 1, 1, created, 0);
  assert_int_equal(neg_store_deal_put(s, "s1", seller.pk, buyer.pk, 3000, 0, now_s + 3590, t), 0);
  free(t);
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), 0);
  assert_int_equal(price, 3000);
  assert_int_equal(neg_store_deal_price(s, buyer.pk, seller.pk, now_s, &price), ERR_NOTFOUND);
  assert_int_equal(neg_store_deal_price(s, seller.pk, other.pk, now_s, &price), ERR_NOTFOUND);
  /* expired an hour later */
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s + 3600, &price), ERR_NOTFOUND);

  /* a deal signed by seller and another node, filed under the buyer: not honoured */
  t = signed_deal(o, &other, &seller, 0, 1, created + 1000, 0);
  assert_int_equal(neg_store_deal_put(s, "s2", seller.pk, buyer.pk, 2000, 0, 0, t), 0);
  free(t);
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), 0);
  assert_int_equal(price, 3000); /* still the valid one */
  /* a tampered document (price changed after signing): not honoured */
  t = signed_deal(o, &buyer, &seller, 0, 1, created + 2000, 1);
  assert_int_equal(neg_store_deal_put(s, "s3", seller.pk, buyer.pk, 1, 0, 0, t), 0);
  free(t);
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), 0);
  assert_int_equal(price, 3000);
  /* a newer valid deal wins */
  t = signed_deal(o, &seller, &buyer, 2, 1, created + 3000, 0);
  assert_int_equal(neg_store_deal_put(s, "s4", seller.pk, buyer.pk, 4000, 0, 0, t), 0);
  free(t);
  sqlite3_exec(store_db(s), "UPDATE neg_deals SET created = created + 1 WHERE session = 's4'", NULL, NULL, NULL);
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), 0);
  assert_int_equal(price, 4000);

  /* intents and sessions */
  assert_int_equal(neg_store_intent_put(s, "gen-sell", "offer", sell, 0), 0);
  assert_int_equal(neg_store_intent_put(s, "gen-sell", "offer", sell, 0), ERR_EXISTS);
  assert_int_equal(neg_store_intent_put(s, "gen-sell", "offer", sell, 1), 0);
  char *def = neg_store_intent_get(s, "gen-sell");
  assert_string_equal(def, sell);
  free(def);
  json_t *l = neg_store_intent_list(s);
  assert_int_equal(json_array_size(l), 1);
  json_decref(l);
  neg_session_row r = {.id = "s4", .opener = 1, .my_intent = "gen-sell", .peer_intent = "x", .state = "agreed", .rounds = 6};
  memcpy(r.peer, buyer.pk, 32);
  assert_int_equal(neg_store_session_put(s, &r), 0);
  r.rounds = 7;
  assert_int_equal(neg_store_session_put(s, &r), 0);
  neg_session_row r2 = r;
  snprintf(r2.id, sizeof r2.id, "s5");
  snprintf(r2.state, sizeof r2.state, "running");
  assert_int_equal(neg_store_session_put(s, &r2), 0);
  assert_int_equal(neg_store_sessions_abandon(s), 1);
  assert_int_equal(neg_store_sessions_abandon(s), 0);
  l = neg_store_session_list(s);
  assert_int_equal(json_array_size(l), 2);
  json_t *y = json_array_get(l, 0);
  if (strcmp(json_string_value(json_object_get(y, "id")), "s5")) y = json_array_get(l, 1);
  assert_string_equal(json_string_value(json_object_get(y, "state")), "failed");
  json_decref(l);
  l = neg_store_session_list(s);
  json_t *x = json_array_get(l, 0);
  if (strcmp(json_string_value(json_object_get(x, "id")), "s4")) x = json_array_get(l, 1);
  assert_int_equal(json_integer_value(json_object_get(x, "rounds")), 7);
  assert_true(json_is_true(json_object_get(x, "verified")));
  assert_string_equal(json_string_value(json_object_get(x, "price_per_1k_wei")), "4000");
  json_decref(l);
  assert_int_equal(neg_store_intent_rm(s, "gen-sell"), 0);
  assert_int_equal(neg_store_intent_rm(s, "gen-sell"), ERR_NOTFOUND);
  store_close(s);
  ident_wipe(&seller), ident_wipe(&buyer), ident_wipe(&other);
  free(o);
  tu_rm_rf(dir);
}

/* A deal with a volume holds until that many generated tokens were sold at its price
 * between the two (market receipts since it was signed, one per request). */
static void test_deal_volume(void **state) {
  (void)state;
  char dir[256], path[300], err[300];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/neg.db", dir);
  store *s;
  size_t nm;
  const store_migration *ms = home_migrations(&nm);
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  assert_true(store_migrate(s, ms, nm, err, sizeof err) > 0);
  static const char vol[] =
      "{\"id\": \"v\", \"kind\": \"offer\", \"tags\": [\"gen\"],"
      " \"issues\": [{\"name\": \"price_gen\", \"role\": \"price\", \"values\": [\"2000\", \"3000\"]},"
      "             {\"name\": \"volume\", \"role\": \"volume\", \"values\": [\"100\", \"1000\"]}],"
      " \"mandate\": {\"weights\": [1, 0], \"scores\": [[0, 1], [1, 1]], \"reservation\": 0, \"deadline\": 9}}";
  neg_owner_intent *o = malloc(sizeof *o);
  assert_int_equal(neg_owner_parse(vol, strlen(vol), o, err, sizeof err), 0);
  uint8_t sa[32] = {1}, sb[32] = {2};
  ident seller, buyer;
  ident_from_seed(sa, &seller), ident_from_seed(sb, &buyer);
  uint64_t now_s = 1800000000, created_s = now_s - 10;
  char *t = signed_deal(o, &buyer, &seller, 0, 0, created_s * 1000, 0); /* 2000 wei/1k for 100 tokens */
  assert_int_equal(neg_store_deal_put(s, "v1", seller.pk, buyer.pk, 2000, 100, 0, t), 0);
  free(t);
  uint64_t price;
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), 0);
  assert_int_equal(price, 2000);
  mkt_receipt r = {.role = MKT_CLIENT, .gen_tokens = 60, .price_gen = 2000, .created = (int64_t)created_s + 1};
  memcpy(r.provider, seller.pk, 32);
  memcpy(r.client, buyer.pk, 32);
  snprintf(r.status, sizeof r.status, "complete");
  r.request[0] = 1;
  assert_int_equal(mkt_receipt_put(s, &r), 0);
  r.request[0] = 2, r.price_gen = 5000, r.gen_tokens = 500; /* at the offer price: does not count */
  assert_int_equal(mkt_receipt_put(s, &r), 0);
  r.request[0] = 3, r.price_gen = 2000, r.gen_tokens = 30, r.created = (int64_t)created_s - 100; /* before the deal */
  assert_int_equal(mkt_receipt_put(s, &r), 0);
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), 0); /* 60 of 100 used */
  r.request[0] = 4, r.gen_tokens = 40, r.created = (int64_t)created_s + 2;
  assert_int_equal(mkt_receipt_put(s, &r), 0);
  assert_int_equal(neg_store_deal_price(s, seller.pk, buyer.pk, now_s, &price), ERR_NOTFOUND); /* used up */
  store_close(s);
  ident_wipe(&seller), ident_wipe(&buyer);
  free(o);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_owner_file), cmocka_unit_test(test_deal_price),
                                     cmocka_unit_test(test_deal_volume)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
