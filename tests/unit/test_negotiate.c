/* Negotiation core (agent/neg_*): scenario parse errors named clearly, utility and the
 * ground truth against values worked out by hand, the mandate choke point refusing bad
 * bids whoever proposes them (a scripted "model" hook), the engine's round, session,
 * expiry and withdraw handling, the wire parser's refusals and caps, sealed confidential
 * values readable only by the intended key, deal signatures (tampering fails), intents,
 * the Genius reader on the ANAC 2011 Laptop files, and self-play: agreements only where a
 * zone of agreement exists. Run from the repository root (tests/run does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "agent/neg_deal.h"
#include "agent/neg_engine.h"
#include "agent/neg_gen.h"
#include "agent/neg_genius.h"
#include "agent/neg_intent.h"
#include "agent/neg_sim.h"
#include "agent/neg_truth.h"
#include "core/err.h"

#define LAPTOP "tests/data/negotiation/"

/* The hand-worked scenario. Issues price {low, high}, speed {slow, fast}.
 *   buyer  w = (0.6, 0.4); price low 1, high 0; speed slow 0, fast 1; r = 0.3
 *   seller w = (0.7, 0.3); price low 0, high 1; speed slow 1, fast 0; r = 0.2
 * Bids (u_buyer, u_seller):
 *   low,slow  (0.6, 0.3)   both above reservation; Nash product 0.3 * 0.1 = 0.03
 *   low,fast  (1.0, 0.0)   seller below
 *   high,slow (0.0, 1.0)   buyer below
 *   high,fast (0.4, 0.7)   both above; Nash product 0.1 * 0.5 = 0.05  <- the Nash point
 * Pareto frontier: all four (each beats the others on one side). From (0.5, 0.5) the
 * nearest frontier points are (0.6, 0.3) and (0.4, 0.7), both at sqrt(0.01 + 0.04). */
static const char *hand =
    "{\"name\":\"hand\",\"issues\":[{\"name\":\"price\",\"values\":[\"low\",\"high\"]},"
    "{\"name\":\"speed\",\"values\":[\"slow\",\"fast\"]}],\"sides\":["
    "{\"name\":\"buyer\",\"weights\":[0.6,0.4],\"scores\":[[1,0],[0,1]],\"reservation\":0.3,\"deadline\":20},"
    "{\"name\":\"seller\",\"weights\":[0.7,0.3],\"scores\":[[0,1],[1,0]],\"reservation\":0.2,\"deadline\":20}]}";

static void load_hand(neg_scenario *s) {
  char err[200];
  if (neg_scenario_parse(hand, strlen(hand), s, err, sizeof err)) fail_msg("%s", err);
}

static void test_scenario_errors(void **state) {
  (void)state;
  static neg_scenario s;
  struct {
    const char *text, *want;
  } bad[] = {
      {"[]", "expected a JSON object"},
      {"{\"issues\":[],\"sides\":[]}", "issues: expected an array of 1..16"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"a\"]}],\"sides\":[]}", "value 'a' appears twice"},
      {"{\"issues\":[{\"name\":\"p\",\"role\":\"price\",\"values\":[\"x1\"]}],\"sides\":[]}", "must be a decimal integer"},
      {"{\"issues\":[{\"name\":\"p\",\"role\":\"colour\",\"values\":[\"1\"]}],\"sides\":[]}", "unknown role 'colour'"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\"]}],\"sides\":[{}]}", "exactly 2 sides"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"b\"]}],\"sides\":[{\"name\":\"x\",\"deadline\":5,\"reservation\":0.1,"
       "\"weights\":[1],\"scores\":[[1]]},{}]}",
       "scores[0] must have 2 numbers"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"b\"]}],\"sides\":[{\"name\":\"x\",\"deadline\":5,\"reservation\":0.1,"
       "\"weights\":[0.5],\"scores\":[[1,0]]},{}]}",
       "weights sum to 0.5"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"b\"]}],\"sides\":[{\"name\":\"x\",\"deadline\":0,\"reservation\":0.1,"
       "\"weights\":[1],\"scores\":[[1,0]]},{}]}",
       "deadline must be an integer"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"b\"]}],\"sides\":[{\"name\":\"x\",\"deadline\":3,\"reservation\":0.1,"
       "\"weights\":[1],\"scores\":[[1,1.5]]},{}]}",
       "not in [0,1]"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"b\"]}],\"sides\":[{\"name\":\"x\",\"deadline\":3,\"reservation\":0.1,"
       "\"weights\":[1],\"scores\":[[1,0]],\"required\":{\"q\":[\"a\"]}},{}]}",
       "required: 'q' is not an issue"},
      {"{\"issues\":[{\"name\":\"p\",\"values\":[\"a\",\"b\"]}],\"sides\":[{\"name\":\"x\",\"deadline\":3,\"reservation\":0.1,"
       "\"weights\":[1],\"scores\":[[1,0]],\"confidential\":[\"zz\"]},{}]}",
       "not an issue of the domain"},
      {"{\"issues\":", "line 1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char err[300] = "";
    if (!neg_scenario_parse(bad[i].text, strlen(bad[i].text), &s, err, sizeof err)) fail_msg("accepted: %s", bad[i].text);
    if (!strstr(err, bad[i].want)) fail_msg("%s: error '%s' lacks '%s'", bad[i].text, err, bad[i].want);
  }
  char err[100];
  assert_int_equal(neg_scenario_parse(hand, NEG_MAX_FILE + 1, &s, err, sizeof err), ERR_TOOBIG);
  /* Round trip. */
  static neg_scenario a, b;
  load_hand(&a);
  json_t *j = neg_scenario_to_json(&a);
  assert_int_equal(neg_scenario_from_json(j, &b, err, sizeof err), 0);
  json_decref(j);
  assert_memory_equal(&a, &b, sizeof a);
}

static void test_utility_truth(void **state) {
  (void)state;
  static neg_scenario s;
  load_hand(&s);
  neg_bid b = {{1, 1}};
  assert_true(fabs(neg_utility(&s.dom, &s.side[0].prefs, &b) - 0.4) < 1e-12);
  assert_true(fabs(neg_utility(&s.dom, &s.side[1].prefs, &b) - 0.7) < 1e-12);
  b.v[1] = 0;
  assert_true(fabs(neg_utility(&s.dom, &s.side[0].prefs, &b) - 0.0) < 1e-12);
  assert_true(fabs(neg_utility(&s.dom, &s.side[1].prefs, &b) - 1.0) < 1e-12);
  neg_truth t;
  assert_int_equal(neg_truth_compute(&s.dom, &s.side[0].prefs, &s.side[1].prefs, &t), 0);
  assert_int_equal(t.n_bids, 4);
  assert_true(t.zopa);
  assert_int_equal(t.nash.v[0], 1);
  assert_int_equal(t.nash.v[1], 1);
  assert_true(fabs(t.nash_product - 0.05) < 1e-12);
  assert_int_equal(t.n_pareto, 4);
  assert_true(fabs(neg_truth_pareto_distance(&t, 0.5, 0.5) - sqrt(0.05)) < 1e-12);
  assert_true(neg_truth_pareto_distance(&t, 0.4, 0.7) < 1e-12);
  neg_truth_deinit(&t);
  /* Raise the seller's reservation over every bid the buyer accepts: no zone. */
  s.side[1].prefs.reservation = 0.75;
  assert_int_equal(neg_truth_compute(&s.dom, &s.side[0].prefs, &s.side[1].prefs, &t), 0);
  assert_false(t.zopa);
  neg_truth_deinit(&t);
}

static void test_mandate_check(void **state) {
  (void)state;
  static neg_scenario s;
  load_hand(&s);
  const neg_mandate *m = &s.side[0];
  neg_bid good = {{1, 1}}, low = {{1, 0}}, junk = {{2, 0}};
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_COUNTER, &good, 3, 5), NEG_MANDATE_OK);
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_COUNTER, &low, 3, 5), NEG_REFUSE_RESERVATION);
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_ACCEPT, &low, 3, 5), NEG_REFUSE_RESERVATION);
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_OFFER, &junk, 0, 5), NEG_REFUSE_INVALID);
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_COUNTER, &good, 20, 5), NEG_REFUSE_DEADLINE);
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_REJECT, NULL, 99, 5), NEG_MANDATE_OK);
  s.side[0].allowed[1] = 1; /* required: speed must be slow */
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_COUNTER, &good, 3, 5), NEG_REFUSE_REQUIRED);
  s.side[0].allowed[1] = 3;
  s.side[0].expires_ms = 5;
  assert_int_equal(neg_mandate_check(&s.dom, m, NEG_MSG_COUNTER, &good, 3, 5), NEG_REFUSE_EXPIRED);
}

/* A "model" that always proposes the worst bid for its side. */
static int bad_model(void *ud, int round, const neg_bid *strategy_bid, neg_bid *out) {
  const neg_bid *worst = ud;
  *out = *worst;
  return 1;
}

typedef struct seen {
  const neg_scenario *s;
  int sent, bad;
} seen;

static void check_sent(void *ud, int side, const neg_msg *m, uint64_t now) {
  seen *v = ud;
  v->sent++;
  if (m->has_bid && neg_utility(&v->s->dom, &v->s->side[side].prefs, &m->bid) < v->s->side[side].prefs.reservation) v->bad++;
}

static void test_model_cannot_break_mandate(void **state) {
  (void)state;
  static neg_scenario s;
  load_hand(&s);
  neg_bid worst_a = {{1, 0}}, worst_b = {{0, 1}}; /* (0.0, 1.0) for the buyer, (1.0, 0.0) for the seller */
  seen v = {&s, 0, 0};
  neg_sim_cfg c = {.strategy = {NEG_STRAT_PARETO, NEG_STRAT_BOULWARE}, .seed = 3, .wire = 1, .sent_cb = check_sent,
                   .sent_ud = &v, .propose_cb = {bad_model, bad_model}, .propose_ud = {&worst_a, &worst_b}};
  neg_sim_result r;
  assert_int_equal(neg_sim_run(&s, &c, &r), 0);
  assert_true(v.sent > 0);
  assert_int_equal(v.bad, 0);
  assert_true(r.refusals[0] > 0 && r.refusals[1] > 0);
  assert_true(r.agreed);
  assert_true(r.u[0] >= 0.3 && r.u[1] >= 0.2);
}

static void test_engine_protocol(void **state) {
  (void)state;
  static neg_scenario s;
  load_hand(&s);
  neg_engine_cfg cfg = {.dom = &s.dom, .mandate = &s.side[1], .strategy = NEG_STRAT_BOULWARE, .seed = 1, .opener = 0,
                        .ttl_ms = 1000};
  memset(cfg.session, 7, sizeof cfg.session);
  neg_engine *e;
  assert_int_equal(neg_engine_new(&cfg, &e), 0);
  neg_action a;
  assert_int_equal(neg_engine_start(e, 100, &a), 0);
  assert_false(a.send); /* the responder waits */
  neg_msg in = {.type = NEG_MSG_OFFER, .round = 0, .has_bid = 1, .bid = {{0, 0}}, .expiry_ms = 2000};
  memset(in.session, 8, sizeof in.session);
  assert_int_equal(neg_engine_on_message(e, &in, 100, &a), ERR_FORMAT); /* wrong session */
  memset(in.session, 7, sizeof in.session);
  in.round = 1;
  assert_int_equal(neg_engine_on_message(e, &in, 100, &a), ERR_FORMAT); /* wrong round */
  in.round = 0;
  in.type = NEG_MSG_COUNTER;
  assert_int_equal(neg_engine_on_message(e, &in, 100, &a), ERR_FORMAT); /* round 0 must be an offer */
  in.type = NEG_MSG_OFFER;
  assert_int_equal(neg_engine_on_message(e, &in, 100, &a), 0);
  /* (low, slow) is 0.3 for the seller: a boulware seller counters with its best. */
  assert_true(a.send);
  assert_int_equal(a.msg.type, NEG_MSG_COUNTER);
  assert_int_equal(a.msg.round, 1);
  assert_int_equal(a.msg.bid.v[0], 1);
  assert_int_equal(a.msg.bid.v[1], 0);
  assert_int_equal(a.msg.expiry_ms, 1100);
  assert_int_equal(a.wake_ms, 1100);
  /* No answer before the offer expires: the engine walks away. */
  assert_int_equal(neg_engine_tick(e, 1000, &a), 0);
  assert_false(a.send);
  assert_int_equal(neg_engine_tick(e, 1101, &a), 0);
  assert_true(a.send && a.done);
  assert_int_equal(a.msg.type, NEG_MSG_WITHDRAW);
  assert_int_equal(neg_engine_outcome(e)->status, NEG_NO_DEAL);
  assert_int_equal(neg_engine_on_message(e, &in, 1200, &a), ERR_FORMAT); /* over */
  neg_engine_free(e);

  /* An accept of our offer ends in agreement; an accept after its expiry does not. */
  for (int late = 0; late < 2; late++) {
    assert_int_equal(neg_engine_new(&cfg, &e), 0);
    assert_int_equal(neg_engine_on_message(e, &in, 100, &a), 0);
    neg_msg acc = {.type = NEG_MSG_ACCEPT, .round = 2, .has_bid = 1, .bid = a.msg.bid};
    memcpy(acc.session, cfg.session, sizeof acc.session);
    neg_bid other = {{0, 1}};
    acc.bid = other;
    assert_int_equal(neg_engine_on_message(e, &acc, 200, &a), ERR_FORMAT); /* not our offer */
    acc.bid.v[0] = 1, acc.bid.v[1] = 0;
    assert_int_equal(neg_engine_on_message(e, &acc, late ? 5000 : 200, &a), 0);
    assert_true(a.done);
    assert_int_equal(neg_engine_outcome(e)->status, late ? NEG_NO_DEAL : NEG_AGREED);
    neg_engine_free(e);
  }
  /* The owner withdraws. */
  assert_int_equal(neg_engine_new(&cfg, &e), 0);
  assert_int_equal(neg_engine_withdraw(e, "owner changed plans", &a), 0);
  assert_true(a.send && a.done && a.msg.type == NEG_MSG_WITHDRAW);
  assert_string_equal(neg_engine_outcome(e)->reason, "owner changed plans");
  neg_engine_free(e);
  /* A side with a 1-round deadline that must answer at round 1 rejects. */
  s.side[1].deadline = 1;
  assert_int_equal(neg_engine_new(&cfg, &e), 0);
  assert_int_equal(neg_engine_on_message(e, &in, 100, &a), 0);
  assert_int_equal(a.msg.type, NEG_MSG_REJECT);
  neg_engine_free(e);
}

static void test_msg_parser(void **state) {
  (void)state;
  static neg_scenario s;
  load_hand(&s);
  neg_msg m;
  char err[200];
  const char *ok = "{\"type\":\"counter\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":3,"
                   "\"bid\":{\"price\":\"high\",\"speed\":\"fast\"},\"expiry\":99,\"deadline\":40,\"argument\":\"fair\"}";
  assert_int_equal(neg_msg_parse(&s.dom, ok, strlen(ok), NULL, &m, err, sizeof err), 0);
  assert_int_equal(m.round, 3);
  assert_int_equal(m.deadline, 40);
  assert_int_equal(m.bid.v[0], 1);
  assert_string_equal(m.argument, "fair");
  json_t *back = neg_msg_encode(&s.dom, &m, 0, NULL);
  neg_msg m2;
  assert_int_equal(neg_msg_decode(&s.dom, back, NULL, &m2, err, sizeof err), 0);
  assert_memory_equal(&m, &m2, sizeof m);
  json_decref(back);
  const char *bad[] = {
      "[]", "{\"type\":\"haggle\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":0}",
      "{\"type\":\"reject\",\"session\":\"0001\",\"round\":0}",
      "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":-1}",
      "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":10000}",
      "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":1,\"extra\":1}",
      "{\"type\":\"offer\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":0,\"expiry\":5,\"bid\":{\"price\":\"high\"}}",
      "{\"type\":\"offer\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":0,\"expiry\":5,"
      "\"bid\":{\"price\":\"free\",\"speed\":\"fast\"}}",
      "{\"type\":\"offer\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":0,"
      "\"bid\":{\"price\":\"high\",\"speed\":\"fast\"}}",
      "{\"type\":\"offer\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":0,\"expiry\":5,"
      "\"bid\":{\"price\":\"high\",\"speed\":{\"sealed\":\"AAAA\"}}}",
      "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":1,\"bid\":{}}",
      "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":1,\"argument\":\"a\\u0000b\"}",
      "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":1,\"argument\":7}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (!neg_msg_parse(&s.dom, bad[i], strlen(bad[i]), NULL, &m, err, sizeof err)) fail_msg("accepted: %s", bad[i]);
  /* Caps: an argument over NEG_MAX_ARG, a message over NEG_MAX_MSG. */
  char *big = malloc(NEG_MAX_MSG + 100);
  int n = snprintf(big, NEG_MAX_MSG + 100, "{\"type\":\"reject\",\"session\":\"000102030405060708090a0b0c0d0e0f\",\"round\":1,\"argument\":\"");
  memset(big + n, 'x', NEG_MAX_ARG + 1);
  strcpy(big + n + NEG_MAX_ARG + 1, "\"}");
  assert_int_equal(neg_msg_parse(&s.dom, big, strlen(big), NULL, &m, err, sizeof err), ERR_TOOBIG);
  assert_int_equal(neg_msg_parse(&s.dom, big, NEG_MAX_MSG + 1, NULL, &m, err, sizeof err), ERR_TOOBIG);
  free(big);
}

static void test_sealed(void **state) {
  (void)state;
  static neg_scenario s;
  load_hand(&s);
  uint8_t seed_a[32] = {1}, seed_b[32] = {2}, seed_c[32] = {3};
  ident a, b, c;
  ident_from_seed(seed_a, &a), ident_from_seed(seed_b, &b), ident_from_seed(seed_c, &c);
  neg_seal_keys kb, kc;
  uint8_t bx[32];
  assert_int_equal(neg_seal_keys_from_ident(&b, &kb), 0);
  assert_int_equal(neg_seal_keys_from_ident(&c, &kc), 0);
  assert_int_equal(neg_seal_peer_key(b.pk, bx), 0);
  neg_msg m = {.type = NEG_MSG_OFFER, .round = 0, .has_bid = 1, .bid = {{1, 1}}, .expiry_ms = 9};
  memset(m.session, 5, sizeof m.session);
  json_t *j = neg_msg_encode(&s.dom, &m, 1u << 0 /* price is confidential */, bx);
  assert_non_null(j);
  char *text = json_dumps(j, JSON_COMPACT);
  assert_null(strstr(text, "high")); /* a relay does not see the price */
  assert_non_null(strstr(text, "fast"));
  neg_msg out;
  char err[200];
  assert_int_equal(neg_msg_decode(&s.dom, j, &kb, &out, err, sizeof err), 0);
  assert_int_equal(out.bid.v[0], 1);
  assert_int_equal(out.sealed, 1u);
  assert_int_equal(neg_msg_decode(&s.dom, j, &kc, &out, err, sizeof err), ERR_CRYPTO); /* not for c */
  assert_int_equal(neg_msg_decode(&s.dom, j, NULL, &out, err, sizeof err), ERR_CRYPTO);
  /* Replayed at another round, the sealed value no longer opens. */
  json_object_set_new(j, "round", json_integer(2));
  assert_int_equal(neg_msg_decode(&s.dom, j, &kb, &out, err, sizeof err), ERR_CRYPTO);
  free(text);
  json_decref(j);
  /* Two seals of the same value differ. */
  char s1[NEG_SEAL_B64], s2[NEG_SEAL_B64];
  assert_int_equal(neg_seal_value(bx, m.session, 0, 0, 1, s1), 0);
  assert_int_equal(neg_seal_value(bx, m.session, 0, 0, 1, s2), 0);
  assert_string_not_equal(s1, s2);
  neg_seal_keys_wipe(&kb), neg_seal_keys_wipe(&kc);
  ident_wipe(&a), ident_wipe(&b), ident_wipe(&c);
  /* Self-play with a confidential issue on each side: sealed both ways, still agrees. */
  s.side[0].confidential = 1u << 0;
  s.side[1].confidential = 1u << 1;
  neg_sim_cfg cfg = {.strategy = {NEG_STRAT_PARETO, NEG_STRAT_PARETO}, .seed = 2, .wire = 1};
  neg_sim_result r;
  assert_int_equal(neg_sim_run(&s, &cfg, &r), 0);
  assert_true(r.agreed);
}

static void test_deal(void **state) {
  (void)state;
  const char *text = "{\"name\":\"gen\",\"issues\":[{\"name\":\"price\",\"role\":\"price\",\"values\":[\"1000\",\"2000\"]},"
                     "{\"name\":\"volume\",\"role\":\"volume\",\"values\":[\"100000\"]}],\"sides\":["
                     "{\"name\":\"a\",\"weights\":[1,0],\"scores\":[[1,0],[1]],\"reservation\":0,\"deadline\":9},"
                     "{\"name\":\"b\",\"weights\":[1,0],\"scores\":[[0,1],[1]],\"reservation\":0,\"deadline\":9}]}";
  static neg_scenario s;
  char err[200];
  if (neg_scenario_parse(text, strlen(text), &s, err, sizeof err)) fail_msg("%s", err);
  uint8_t sa[32] = {9}, sb[32] = {10}, sess[16] = {1, 2, 3};
  ident a, b;
  ident_from_seed(sa, &a), ident_from_seed(sb, &b);
  neg_bid bid = {{1, 0}};
  neg_deal d, d2;
  assert_int_equal(neg_deal_init(&d, &s.dom, &bid, sess, a.pk, b.pk, 7, 1700000000000ull), 0);
  assert_int_equal(neg_deal_sign(&d, &b, 0), ERR_INVAL); /* b is not side a */
  assert_int_equal(neg_deal_sign(&d, &a, 0), 0);
  assert_int_equal(neg_deal_verify(&d), ERR_CRYPTO);    /* one signature only */
  assert_int_equal(neg_deal_sign(&d, &b, 1), 0);
  assert_int_equal(neg_deal_verify(&d), 0);
  neg_deal_payment p;
  neg_deal_payment_terms(&d, &p);
  assert_true(p.has_price);
  assert_int_equal(p.price_per_1k_wei, 2000);
  assert_int_equal(p.volume_tokens, 100000);
  uint8_t dg1[32], dg2[32], dg3[32];
  assert_int_equal(neg_deal_eip712_digest(&d, 31337, dg1), 0);
  assert_int_equal(neg_deal_eip712_digest(&d, 31337, dg2), 0);
  assert_int_equal(neg_deal_eip712_digest(&d, 1, dg3), 0);
  assert_memory_equal(dg1, dg2, 32);
  assert_memory_not_equal(dg1, dg3, 32);
  /* Through JSON and back, then tampered. */
  json_t *j = neg_deal_to_json(&d);
  assert_int_equal(neg_deal_from_json(j, &d2), 0);
  assert_int_equal(neg_deal_verify(&d2), 0);
  json_object_set_new(json_object_get(d2.doc, "terms"), "price", json_string("1000"));
  assert_int_equal(neg_deal_verify(&d2), ERR_CRYPTO);
  neg_deal_deinit(&d2);
  json_decref(j);
  neg_deal_deinit(&d);
  ident_wipe(&a), ident_wipe(&b);
}

static void test_intent(void **state) {
  (void)state;
  char err[200];
  neg_intent s, o, o2;
  json_t *js = json_loads("{\"kind\":\"seek\",\"tags\":[\"llm\",\"qwen\"],\"issues\":[{\"name\":\"price\",\"role\":\"price\","
                          "\"values\":[\"1\",\"2\"]}]}",
                          0, NULL);
  json_t *jo = json_loads("{\"kind\":\"offer\",\"tags\":[\"qwen\",\"gpu\"],\"expires_s\":1000,\"issues\":[{\"name\":\"price\","
                          "\"values\":[\"1\"]},{\"name\":\"latency\",\"values\":[\"100\"]}]}",
                          0, NULL);
  assert_int_equal(neg_intent_from_json(js, &s, err, sizeof err), 0);
  assert_int_equal(neg_intent_from_json(jo, &o, err, sizeof err), 0);
  assert_int_equal(neg_intent_match(&s, &o, 10), 1);
  assert_int_equal(neg_intent_match(&s, &o, 1000), 0); /* expired */
  assert_int_equal(neg_intent_match(&s, &s, 10), 0);   /* two seekers */
  json_t *back = neg_intent_to_json(&o);
  assert_int_equal(neg_intent_from_json(back, &o2, err, sizeof err), 0);
  assert_memory_equal(&o, &o2, sizeof o);
  json_decref(back);
  json_object_set_new(jo, "tags", json_pack("[s]", "Bad Tag"));
  assert_int_equal(neg_intent_from_json(jo, &o, err, sizeof err), ERR_FORMAT);
  json_decref(js), json_decref(jo);
}

static void test_laptop(void **state) {
  (void)state;
  static neg_scenario s;
  char err[300];
  if (neg_genius_load_files(LAPTOP "laptop_domain.xml", LAPTOP "laptop_buyer_utility.xml", LAPTOP "laptop_seller_utility.xml",
                            60, &s, err, sizeof err))
    fail_msg("%s", err);
  assert_int_equal(s.dom.n_issues, 3);
  assert_string_equal(s.dom.issues[2].name, "External Monitor");
  assert_string_equal(s.dom.issues[2].values[0], "19'' LCD");
  /* Buyer: HP 30/30, 60 Gb 30/30, 19'' 30/30 -> 1; weights normalised. */
  neg_bid hp60_19 = {{2, 0, 0}};
  assert_true(fabs(neg_utility(&s.dom, &s.side[0].prefs, &hp60_19) - 1.0) < 1e-9);
  /* Seller: (HP 20/30 * 0.378083 + 60 Gb 20/30 * 0.176757 + 19'' 3/3 * 0.445213) / 1.000052
   * (the file's weights sum to 1.000052) = 0.815063. */
  assert_true(fabs(neg_utility(&s.dom, &s.side[1].prefs, &hp60_19) - 0.815063) < 1e-5);
  /* The Nash point by enumeration here (reservations are 0, so the product is u_b * u_s).
   * By hand: (HP, 60 Gb, 19'') 1.000 * 0.815 = 0.815 beats (Macintosh, 60 Gb, 19'')
   * (0.4452 * 20/30 + 0.3781 + 0.1768) * (0.3781 + 0.1768 * 20/30 + 0.4452) / 1.000052 =
   * 0.852 * 0.941 = 0.802, (HP, 80 Gb, 19'') 0.874 * 0.874 = 0.764 and (Macintosh, 80 Gb,
   * 19'') 0.726 * 1.000 = 0.726; every other bid gives under 0.6. */
  neg_bid nash = {{0}};
  double best = -1;
  for (size_t i = 0; i < neg_domain_n_bids(&s.dom); i++) {
    neg_bid b;
    neg_bid_from_index(&s.dom, i, &b);
    double np = neg_utility(&s.dom, &s.side[0].prefs, &b) * neg_utility(&s.dom, &s.side[1].prefs, &b);
    if (np > best) best = np, nash = b;
  }
  assert_memory_equal(&nash, &hp60_19, sizeof nash);
  assert_true(fabs(best - 0.815063) < 1e-5);
  neg_truth t;
  assert_int_equal(neg_truth_compute(&s.dom, &s.side[0].prefs, &s.side[1].prefs, &t), 0);
  assert_int_equal(t.n_bids, 27);
  assert_memory_equal(&t.nash, &nash, sizeof nash);
  neg_truth_deinit(&t);
  /* pareto self-play agrees on the Nash point itself, whichever side opens (the seller's
   * profile first: the same scenario with the sides swapped). */
  static neg_scenario sw;
  if (neg_genius_load_files(LAPTOP "laptop_domain.xml", LAPTOP "laptop_seller_utility.xml", LAPTOP "laptop_buyer_utility.xml",
                            60, &sw, err, sizeof err))
    fail_msg("%s", err);
  for (uint64_t seed = 1; seed <= 3; seed++)
    for (int swapped = 0; swapped <= 1; swapped++) {
      neg_sim_cfg c = {.strategy = {NEG_STRAT_PARETO, NEG_STRAT_PARETO}, .seed = seed, .wire = 1};
      neg_sim_result r;
      assert_int_equal(neg_sim_run(swapped ? &sw : &s, &c, &r), 0);
      assert_true(r.agreed);
      assert_memory_equal(&r.bid, &nash, sizeof nash);
      assert_true(fabs(r.u[swapped] - 1.0) < 1e-9 && fabs(r.u[!swapped] - 0.815063) < 1e-5);
    }
  /* Malformed Genius input. */
  neg_domain d;
  neg_prefs p;
  const char *bad[] = {"", "<utility_space>", "<utility_space><objective><issue name=\"x\" type=\"integer\"/></objective></utility_space>",
                       "<utility_space><item value=\"a\"/></utility_space>",
                       "<utility_space><issue name=\"x\"><item value=\"a\" evaluation=\"zz\"/></issue></utility_space>",
                       "<utility_space><issue name='x'><item value=\"a&bogus;\"/></issue></utility_space>",
                       "<utility_space><issue name=\"x\"><item value=\"a\" evaluation=\"1\"/></issue></utility_space>"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (!neg_genius_parse(bad[i], strlen(bad[i]), &d, &p, err, sizeof err)) fail_msg("accepted: %s", bad[i]);
}

/* Generated scenarios: never a deal without a zone of agreement, for every pairing; and
 * pareto self-play agrees where one exists. */
static void test_selfplay(void **state) {
  (void)state;
  static neg_scenario s;
  int tried = 0, agreed = 0, possible = 0;
  for (uint64_t seed = 1; tried < 60; seed++) {
    int want = seed % 3 != 0;
    if (neg_gen_scenario(seed, want, &s)) continue;
    tried++;
    neg_truth t;
    assert_int_equal(neg_truth_compute(&s.dom, &s.side[0].prefs, &s.side[1].prefs, &t), 0);
    assert_int_equal(t.zopa, want);
    for (int k = NEG_STRAT_BOULWARE; k <= NEG_STRAT_PARETO; k++) {
      neg_sim_cfg c = {.strategy = {(neg_strategy_kind)k, NEG_STRAT_PARETO}, .seed = seed, .wire = 1};
      neg_sim_result r;
      int rc = neg_sim_run(&s, &c, &r);
      assert_true(rc == 0 || rc == ERR_RANGE);
      if (!t.zopa) assert_false(!rc && r.agreed);
      if (k == NEG_STRAT_PARETO && t.zopa) possible++, agreed += !rc && r.agreed;
    }
    neg_truth_deinit(&t);
  }
  assert_true(agreed >= possible * 95 / 100);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scenario_errors), cmocka_unit_test(test_utility_truth), cmocka_unit_test(test_mandate_check),
      cmocka_unit_test(test_model_cannot_break_mandate), cmocka_unit_test(test_engine_protocol), cmocka_unit_test(test_msg_parser),
      cmocka_unit_test(test_sealed), cmocka_unit_test(test_deal), cmocka_unit_test(test_intent), cmocka_unit_test(test_laptop),
      cmocka_unit_test(test_selfplay),
  };
  return cmocka_run_group_tests_name("negotiate", tests, NULL, NULL);
}
