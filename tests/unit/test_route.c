/* market/route — the buyer's engine driven by hand, no process: choosing the cheaper
 * provider, a whole answer (payments due, receipt, stats, the stream's result), failover
 * after a dead link with the continuation (ids, their text's length, a smaller
 * max_tokens), stalls (three times the limit before the first token), the channel-lookup
 * retry, opening a channel for a paid offer, the Registry check (not listed: 404), names
 * from the Registry's listing, nobody offering the model (404 after the wait), a request
 * the provider refuses (400 with its code, no failover), a client that hung up (499 and a
 * stop), a refused voucher (the provider is left), verification re-runs (a mismatch is
 * reported against the first provider), and shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/ident.h"
#include "market/lpwire.h"
#include "market/route.h"

static uint8_t SHA[32], P1[32], P2[32];
static int linked = 1, have_channel = 0;
static uint32_t rnd = 7;

/* As the node's store would: its model "m", or any 64 hex digits. */
static int env_resolve(void *ud, const char *spec, uint8_t sha[32]) {
  (void)ud;
  if (strlen(spec) == 64) return hex_decode(spec, 64, sha, 32);
  if (strcmp(spec, "m")) return ERR_NOTFOUND;
  memcpy(sha, SHA, 32);
  return 0;
}
static int env_stats(void *ud, const uint8_t pk[32], mkt_provider_stats *out) { (void)ud, (void)pk, (void)out; return -1; }
static int env_linked(void *ud, const uint8_t pk[32]) { (void)ud, (void)pk; return linked; }
static int env_channel(void *ud, const uint8_t pk[32], uint64_t need, uint8_t out[32]) {
  (void)ud, (void)pk, (void)need;
  if (!have_channel) return -1;
  memset(out, 0xcc, 32);
  return 0;
}
static uint64_t env_paid(void *ud, uint32_t aid) { (void)ud, (void)aid; return 11; }
static uint32_t env_random(void *ud) { (void)ud; return rnd++; }
static int64_t env_wall(void *ud) { (void)ud; return 1700000000; }

static const mkt_route_env ENV = {NULL, env_resolve, env_stats, env_linked, env_channel, env_paid, env_random, env_wall, NULL, NULL, NULL};

/* A negotiated deal with P1 at deal_gen (0: none). */
static uint64_t deal_gen;
static int env_deal(void *ud, const uint8_t pk[32], uint64_t *out) {
  (void)ud;
  if (!deal_gen || memcmp(pk, P1, 32)) return ERR_NOTFOUND;
  *out = deal_gen;
  return 0;
}
static const mkt_route_env ENV_DEAL = {NULL, env_resolve, env_stats, env_linked, env_channel, env_paid, env_random, env_wall,
                                       env_deal, NULL, NULL};

/* The owner's policy: P1 is denied; the spending cap leaves cap_left wei. */
static uint64_t cap_left = UINT64_MAX;
static int env_allowed(void *ud, const uint8_t pk[32]) { (void)ud; return memcmp(pk, P1, 32) != 0; }
static int env_spend_ok(void *ud, uint64_t need, char *why, size_t cap) {
  (void)ud;
  if (need <= cap_left) return 1;
  snprintf(why, cap, "daily spending cap reached");
  return 0;
}
static const mkt_route_env ENV_POLICY = {NULL, env_resolve, env_stats, env_linked, env_channel, env_paid, env_random,
                                         env_wall, NULL, env_allowed, env_spend_ok};

static mkt_route *rt;
static mkt_stream *st;

static mkt_route *make(int registry, double verify) {
  mkt_route_cfg cfg = {.stall_ms = 1000, .verify_rate = verify, .registry = registry, .payments = 1};
  mkt_route *r;
  assert_int_equal(mkt_route_new(&cfg, &ENV, &r), 0);
  return r;
}

static mkt_offer offer(uint64_t pp, uint64_t gp) {
  mkt_offer o;
  memset(&o, 0, sizeof o);
  memcpy(o.model, SHA, 32);
  snprintf(o.name, sizeof o.name, "m");
  o.price_prompt = pp;
  o.price_gen = gp;
  o.max_concurrent = 1;
  return o;
}

static int setup(void **state) {
  (void)state;
  memset(SHA, 0x11, 32);
  memset(P1, 0xa1, 32);
  memset(P2, 0xb2, 32);
  linked = 1;
  have_channel = 0;
  rnd = 7;
  rt = NULL;
  st = NULL;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mkt_route_free(rt);
  mkt_stream_unref(st);
  return 0;
}

/* The next action, which must be of kind (LOG actions are skipped). */
static mkt_route_action next(mkt_route_act kind) {
  mkt_route_action a;
  for (;;) {
    if (!mkt_route_poll(rt, &a)) fail_msg("expected action %d, got none", kind);
    if (a.kind != MKT_RT_LOG) break;
  }
  if (a.kind != kind) fail_msg("expected action %d, got %d", kind, a.kind);
  return a;
}

static void none(void) {
  mkt_route_action a;
  while (mkt_route_poll(rt, &a)) {
    if (a.kind == MKT_RT_LOG) continue;
    if (a.kind == MKT_RT_CALL) json_decref(a.params);
    fail_msg("unexpected action %d", a.kind);
  }
}

static void submit_at(uint64_t now, const char *spec, int max_tokens) {
  st = mkt_stream_new();
  mkt_stream_ref(st); /* one for the engine */
  json_t *p = json_pack("{s:s, s:i}", "prompt", "Once upon a time", "seed", 3);
  assert_int_equal(mkt_route_submit(rt, now, spec, p, max_tokens, NULL, st), 0);
}

static void submit(const char *spec, int max_tokens) { submit_at(0, spec, max_tokens); }

/* Reads the CALL action: returns the aid, and checks it goes to pk. */
static uint32_t call_to(const uint8_t pk[32], json_t **params_out) {
  mkt_route_action a = next(MKT_RT_CALL);
  assert_memory_equal(a.pk, pk, 32);
  if (params_out) *params_out = a.params;
  else json_decref(a.params);
  return a.aid;
}

static mkt_result result(void) {
  mkt_result r;
  assert_int_equal(mkt_stream_wait(st, 0, &r), 0);
  return r;
}

static void test_answer(void **state) {
  (void)state;
  rt = make(0, 0);
  mkt_offer o1 = offer(2000, 2000), o2 = offer(1000, 1000);
  mkt_route_offers(rt, 1, P1, &o1, 1);
  mkt_route_offers(rt, 1, P2, &o2, 1);
  have_channel = 1;
  submit("m", 10);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  assert_memory_equal(a.pk, P2, 32); /* cheaper */
  assert_true(a.has_channel);
  json_t *p;
  uint32_t aid = call_to(P2, &p);
  assert_int_equal(aid, a.aid);
  char sha_hex[65];
  hex_encode(SHA, 32, sha_hex);
  assert_string_equal(json_string_value(json_object_get(p, "model")), sha_hex);
  assert_int_equal(json_integer_value(json_object_get(p, "max_tokens")), 10);
  assert_string_equal(json_string_value(json_object_get(p, "price_gen")), "1000");
  assert_non_null(json_object_get(p, "channel"));
  assert_int_equal(strlen(json_string_value(json_object_get(p, "request"))), 32);
  json_decref(p);
  none();
  /* A first chunk without tokens (usage or records only): nothing to append (UBSan once
   * caught a memcpy from NULL here in the interop suite). */
  mkt_route_chunk(rt, 90, aid, NULL, 0, NULL, 0, 4);
  assert_int_equal(next(MKT_RT_PAY).gt, 0);
  int32_t ids[3] = {5, 6, 7};
  mkt_route_chunk(rt, 100, aid, ids, 3, "abc", 3, 4);
  a = next(MKT_RT_PAY);
  assert_int_equal(a.pt, 4);
  assert_int_equal(a.gt, 3);
  assert_false(a.final);
  mkt_route_done(rt, 150, aid, 4, 3, 1);
  a = next(MKT_RT_PAY);
  assert_true(a.final);
  assert_string_equal(next(MKT_RT_RECEIPT).status, "done");
  a = next(MKT_RT_STATS);
  assert_true(a.ok);
  assert_true(a.latency_ms >= 0);
  assert_int_equal(next(MKT_RT_DROP).aid, aid);
  none();
  mkt_result r = result();
  assert_int_equal(r.finish, LOCAL_LENGTH);
  assert_int_equal(r.prompt_tokens, 4);
  assert_int_equal(r.completion_tokens, 3);
  assert_int_equal(r.n_providers, 1);
  char id2[IDENT_ID_BUF];
  ident_id_encode(P2, id2);
  assert_string_equal(r.providers[0], id2);
  assert_int_equal(r.cost_wei, 7); /* ceil((4 * 1000 + 3 * 1000) / 1000) */
  char text[8];
  assert_int_equal(mkt_stream_read(st, text, sizeof text, 0), 3);
  assert_int_equal(mkt_route_n_requests(rt), 0);
}

/* A deal with P1 replaces its offer's price_gen when lower: P1 is picked, called and
 * charged at the deal price; a deal above the offer changes nothing. */
static void test_deal_price(void **state) {
  (void)state;
  mkt_route_cfg cfg = {.stall_ms = 1000, .payments = 1};
  assert_int_equal(mkt_route_new(&cfg, &ENV_DEAL, &rt), 0);
  mkt_offer o1 = offer(2000, 2000), o2 = offer(2000, 1000);
  mkt_route_offers(rt, 1, P1, &o1, 1);
  mkt_route_offers(rt, 1, P2, &o2, 1);
  have_channel = 1;
  deal_gen = 500;
  submit("m", 10);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  assert_memory_equal(a.pk, P1, 32); /* cheaper by its deal */
  json_t *p;
  uint32_t aid = call_to(P1, &p);
  assert_string_equal(json_string_value(json_object_get(p, "price_gen")), "500");
  assert_string_equal(json_string_value(json_object_get(p, "price_prompt")), "2000");
  json_decref(p);
  int32_t ids[3] = {5, 6, 7};
  mkt_route_chunk(rt, 100, aid, ids, 3, "abc", 3, 4);
  mkt_route_done(rt, 150, aid, 4, 3, 1);
  mkt_route_action x;
  while (mkt_route_poll(rt, &x))
    if (x.kind == MKT_RT_CALL) json_decref(x.params);
  assert_int_equal(result().cost_wei, 10); /* ceil((4 * 2000 + 3 * 500) / 1000) */
  mkt_stream_unref(st);
  /* a deal above the offer: the offer's price applies, and P2 is cheaper */
  deal_gen = 3000;
  submit("m", 10);
  a = next(MKT_RT_ATTEMPT);
  assert_memory_equal(a.pk, P2, 32);
  call_to(P2, NULL);
  deal_gen = 0;
}

/* The owner's policy: a denied provider is never picked even when cheaper; a paid request
 * that could go past the spending cap ends with 402 before any channel or call. */
static void test_owner_policy(void **state) {
  (void)state;
  mkt_route_cfg cfg = {.stall_ms = 1000, .payments = 1};
  assert_int_equal(mkt_route_new(&cfg, &ENV_POLICY, &rt), 0);
  mkt_offer o1 = offer(1, 1), o2 = offer(2000, 2000);
  mkt_route_offers(rt, 1, P1, &o1, 1);
  mkt_route_offers(rt, 1, P2, &o2, 1);
  have_channel = 1;
  cap_left = UINT64_MAX;
  submit("m", 10);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  assert_memory_equal(a.pk, P2, 32); /* P1 is cheaper but denied */
  call_to(P2, NULL);
  mkt_route_shutdown(rt, 2);
  mkt_route_action x;
  while (mkt_route_poll(rt, &x))
    if (x.kind == MKT_RT_CALL) json_decref(x.params);
  mkt_stream_unref(st);
  st = NULL;
  mkt_route_free(rt);
  assert_int_equal(mkt_route_new(&cfg, &ENV_POLICY, &rt), 0);
  mkt_route_offers(rt, 1, P2, &o2, 1);
  cap_left = 10; /* 10 tokens at 2000 wei per 1k cost more */
  submit("m", 10);
  none();
  mkt_result r = result();
  assert_int_equal(r.http_status, 402);
  assert_string_equal(r.code, "spend_cap");
  assert_non_null(strstr(r.error, "daily spending cap"));
  cap_left = UINT64_MAX;
}

static void test_failover_and_stall(void **state) {
  (void)state;
  rt = make(0, 0);
  mkt_offer o = offer(0, 0);
  mkt_route_offers(rt, 1, P1, &o, 1);
  mkt_route_offers(rt, 1, P2, &o, 1);
  submit("m", 10);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  const uint8_t *first = !memcmp(a.pk, P1, 32) ? P1 : P2, *second = first == P1 ? P2 : P1;
  json_t *p0;
  uint32_t aid = call_to(first, &p0);
  char req_id[40];
  snprintf(req_id, sizeof req_id, "%s", json_string_value(json_object_get(p0, "request")));
  json_decref(p0);
  int32_t ids[4] = {1, 2, 3, 4};
  mkt_route_chunk(rt, 100, aid, ids, 4, "abcdefg", 7, 5);
  next(MKT_RT_PAY);
  /* the link dies after tokens came: next provider, continuing */
  mkt_route_error(rt, 200, aid, -32003, "link closed", NULL);
  assert_int_equal(next(MKT_RT_STATS).ok, 0);
  assert_string_equal(next(MKT_RT_RECEIPT).status, "partial");
  a = next(MKT_RT_ATTEMPT);
  assert_memory_equal(a.pk, second, 32);
  json_t *p;
  uint32_t aid2 = call_to(second, &p);
  assert_int_equal(json_array_size(json_object_get(p, "cont")), 4);
  assert_int_equal(json_integer_value(json_object_get(p, "cont_bytes")), 7);
  assert_int_equal(json_integer_value(json_object_get(p, "max_tokens")), 6);
  assert_string_equal(json_string_value(json_object_get(p, "request")), req_id); /* the same request goes on */
  json_decref(p);
  none();
  /* stale replies from the first are ignored */
  mkt_route_chunk(rt, 210, aid, ids, 1, "x", 1, 5);
  none();
  /* the second stalls: 3x the limit before its first token, then the limit */
  mkt_route_tick(rt, 200 + 2999);
  none();
  int32_t more[2] = {9, 9};
  mkt_route_chunk(rt, 3000, aid2, more, 2, "zz", 2, 9);
  next(MKT_RT_PAY);
  mkt_route_tick(rt, 3000 + 1000);
  none();
  mkt_route_tick(rt, 3000 + 1001);
  assert_int_equal(next(MKT_RT_STATS).ok, 0);
  next(MKT_RT_RECEIPT);
  a = next(MKT_RT_STOP); /* the stalled call is told to stop */
  assert_memory_equal(a.pk, second, 32);
  /* nobody left: it looks further (the DHT, fresh offers from the links), then after the
   * wait gives up with 502 naming both */
  next(MKT_RT_FIND_PROVIDERS);
  next(MKT_RT_ASK_OFFERS);
  next(MKT_RT_ASK_OFFERS);
  none();
  mkt_route_tick(rt, 3000 + 1001 + 6001);
  next(MKT_RT_DROP);
  next(MKT_RT_DROP);
  mkt_result r = result();
  assert_int_equal(r.finish, LOCAL_ERROR);
  assert_int_equal(r.http_status, 502);
  assert_non_null(strstr(r.error, "stalled"));
  assert_non_null(strstr(r.error, "link closed"));
  assert_int_equal(r.completion_tokens, 6);
  assert_int_equal(r.cost_wei, 22); /* both failed: what each was paid (env: 11) */
}

static void test_channel_retry_and_open(void **state) {
  (void)state;
  rt = make(0, 0);
  mkt_offer o = offer(1000, 1000);
  mkt_route_offers(rt, 1, P1, &o, 1);
  submit("m", 4);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  assert_false(a.has_channel);
  a = next(MKT_RT_OPEN_CHANNEL);
  uint32_t aid = a.aid;
  none();
  uint8_t ch[32];
  memset(ch, 0xcd, 32);
  mkt_route_channel(rt, 50, aid, 0, ch, NULL);
  a = next(MKT_RT_ATTEMPT);
  assert_true(a.has_channel);
  assert_memory_equal(a.channel, ch, 32);
  json_t *p;
  call_to(P1, &p);
  assert_string_equal(json_string_value(json_object_get(p, "channel")),
                      "0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd");
  json_decref(p);
  /* the provider does not know the channel yet: the same call again 300 ms later */
  mkt_route_error(rt, 60, aid, -32015, "channel not known yet", NULL);
  none();
  mkt_route_tick(rt, 359);
  none();
  mkt_route_tick(rt, 361);
  call_to(P1, NULL);
  /* a refused voucher: that provider is left (and it was its fault) */
  mkt_route_pay_refused(rt, 400, aid, "disk full");
  assert_int_equal(next(MKT_RT_STATS).ok, 0);
  next(MKT_RT_RECEIPT);
  next(MKT_RT_STOP);
  next(MKT_RT_FIND_PROVIDERS);
  next(MKT_RT_ASK_OFFERS);
  none();
  mkt_route_tick(rt, 400 + 6001);
  next(MKT_RT_DROP);
  mkt_result r = result();
  assert_non_null(strstr(r.error, "refused our voucher: disk full"));
}

static void test_registry_and_names(void **state) {
  (void)state;
  rt = make(1, 0);
  mkt_offer o = offer(0, 0);
  mkt_route_offers(rt, 1, P1, &o, 1);
  /* a name only the Registry knows: the listing is read; the name resolves through it */
  submit("tales", 4);
  none();
  mkt_route_tick(rt, 100);
  next(MKT_RT_LIST_NAMES);
  none();
  const char *names[] = {"tales"};
  int verified[] = {1};
  int64_t at[] = {5};
  mkt_route_names(rt, 200, names, (const uint8_t(*)[32])SHA, verified, at, 1);
  mkt_route_tick(rt, 300);
  mkt_route_action a = next(MKT_RT_ATTEMPT); /* listed by the listing itself: no lookup needed */
  assert_memory_equal(a.sha, SHA, 32);
  call_to(P1, NULL);
  /* a name nobody lists: 404 after the wait for the listing */
  mkt_stream_unref(st);
  st = NULL;
  submit_at(400, "nobody", 4);
  mkt_route_tick(rt, 400 + 5001);
  mkt_result r = result();
  assert_int_equal(r.http_status, 404);
  assert_non_null(strstr(r.error, "unknown model 'nobody'"));
}

static void test_unlisted(void **state) {
  (void)state;
  rt = make(1, 0);
  mkt_offer o = offer(0, 0);
  mkt_route_offers(rt, 1, P1, &o, 1);
  submit("m", 4);
  mkt_route_action a = next(MKT_RT_REG_LOOKUP);
  assert_memory_equal(a.sha, SHA, 32);
  none();
  mkt_route_registry(rt, 10, SHA, 0);
  mkt_route_tick(rt, 20);
  next(MKT_RT_LIST_NAMES); /* the tick reads the listing now and then */
  mkt_result r = result();
  assert_int_equal(r.http_status, 404);
  assert_non_null(strstr(r.error, "not listed in the Registry"));
  /* listed: served */
  mkt_stream_unref(st);
  st = NULL;
  mkt_route_registry(rt, 30, SHA, 1);
  submit_at(40, "m", 4);
  next(MKT_RT_ATTEMPT);
  call_to(P1, NULL);
}

static void test_nobody_and_refusal(void **state) {
  (void)state;
  rt = make(0, 0);
  submit("m", 4);
  mkt_route_action a = next(MKT_RT_FIND_PROVIDERS);
  assert_memory_equal(a.sha, SHA, 32);
  none();
  mkt_route_tick(rt, 6001);
  mkt_result r = result();
  assert_int_equal(r.http_status, 404);
  assert_non_null(strstr(r.error, "no node on the network offers model m"));
  mkt_stream_unref(st);
  st = NULL;
  /* a request the provider refuses as invalid: 400 with its code, nobody else is tried */
  mkt_offer o = offer(0, 0);
  mkt_route_offers(rt, 7000, P1, &o, 1);
  mkt_route_offers(rt, 7000, P2, &o, 1);
  submit_at(7000, "m", 4);
  next(MKT_RT_ATTEMPT);
  mkt_route_action c = next(MKT_RT_CALL);
  json_decref(c.params);
  mkt_route_error(rt, 7100, c.aid, -32602, "the prompt has 5000 tokens", "context_length_exceeded");
  next(MKT_RT_DROP);
  none();
  r = result();
  assert_int_equal(r.http_status, 400);
  assert_string_equal(r.code, "context_length_exceeded");
}

static void test_cancel_and_shutdown(void **state) {
  (void)state;
  rt = make(0, 0);
  mkt_offer o = offer(0, 0);
  mkt_route_offers(rt, 1, P1, &o, 1);
  submit("m", 4);
  next(MKT_RT_ATTEMPT);
  call_to(P1, NULL);
  mkt_stream_cancel(st); /* the HTTP client hung up */
  mkt_route_tick(rt, 10);
  next(MKT_RT_STOP);
  next(MKT_RT_DROP);
  assert_int_equal(mkt_route_n_requests(rt), 0);
  mkt_stream_unref(st);
  st = NULL;
  submit_at(15, "m", 4);
  next(MKT_RT_ATTEMPT);
  call_to(P1, NULL);
  mkt_route_shutdown(rt, 20);
  next(MKT_RT_STOP);
  next(MKT_RT_DROP);
  mkt_result r = result();
  assert_int_equal(r.http_status, 503);
}

static void test_verification(void **state) {
  (void)state;
  rt = make(0, 1.0);
  mkt_offer o1 = offer(0, 0), o2 = offer(0, 0);
  mkt_route_offers(rt, 1, P1, &o1, 1);
  mkt_route_offers(rt, 1, P2, &o2, 1);
  submit("m", 3);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  const uint8_t *first = !memcmp(a.pk, P1, 32) ? P1 : P2, *other = first == P1 ? P2 : P1;
  json_t *p1;
  uint32_t aid = call_to(first, &p1);
  int32_t ids[3] = {1, 2, 3};
  mkt_route_chunk(rt, 10, aid, ids, 3, "abc", 3, 2);
  mkt_route_done(rt, 20, aid, 2, 3, 1);
  /* the answer is re-run on the other provider with the same params (seed included) */
  a = next(MKT_RT_PAY);
  a = next(MKT_RT_PAY);
  next(MKT_RT_RECEIPT);
  next(MKT_RT_STATS);
  mkt_route_action v = next(MKT_RT_ATTEMPT);
  assert_memory_equal(v.pk, other, 32); /* never the provider being checked */
  json_t *p2;
  uint32_t vid = call_to(other, &p2);
  assert_int_equal(json_integer_value(json_object_get(p2, "seed")), 3);
  assert_int_equal(json_integer_value(json_object_get(p2, "max_tokens")), 3);
  assert_string_not_equal(json_string_value(json_object_get(p2, "request")),
                          json_string_value(json_object_get(p1, "request")));
  json_decref(p1);
  json_decref(p2);
  next(MKT_RT_DROP);
  /* it answers differently: a mismatch against the first */
  int32_t other_ids[3] = {1, 2, 4};
  mkt_route_chunk(rt, 30, vid, other_ids, 3, "abd", 3, 2);
  mkt_route_done(rt, 40, vid, 2, 3, 1);
  mkt_route_action x;
  int seen = 0;
  while (mkt_route_poll(rt, &x))
    if (x.kind == MKT_RT_VERIFIED) {
      assert_memory_equal(x.pk, first, 32);
      assert_int_equal(x.ok, 1); /* mismatch */
      seen = 1;
    }
  assert_true(seen);
}

/* logprobs: asked for in the params, the provider's records reach the stream with their text
 * (not before it is read); a failover after tokens came would mix providers' records, so the
 * request fails instead; malformed records are the provider's fault. */
static void test_logprobs(void **state) {
  (void)state;
  rt = make(0, 0);
  mkt_offer o = offer(0, 0);
  mkt_route_offers(rt, 1, P1, &o, 1);
  mkt_route_offers(rt, 1, P2, &o, 1);
  st = mkt_stream_new();
  mkt_stream_ref(st);
  json_t *p0 = json_pack("{s:s, s:i, s:i}", "prompt", "Once", "seed", 3, "logprobs", 2);
  assert_int_equal(mkt_route_submit(rt, 0, "m", p0, 10, NULL, st), 0);
  mkt_route_action a = next(MKT_RT_ATTEMPT);
  json_t *p;
  uint32_t aid = call_to(a.pk, &p);
  assert_int_equal(json_integer_value(json_object_get(p, "logprobs")), 2);
  json_decref(p);
  int32_t ids[2] = {7, 8};
  json_t *lp = json_loads("[[7, -0.5, \"61\", [[7, -0.5, \"61\"], [9, -1.5, \"7a\"]]], [8, -0.25, \"62\", []]]", 0, NULL);
  logprob_rec recs[MKT_LP_MAX_RECS];
  buf b;
  buf_init(&b);
  assert_int_equal(mkt_lp_decode(lp, 2, recs, MKT_LP_MAX_RECS, &b), 2);
  json_decref(lp);
  mkt_route_logprobs(rt, 100, aid, recs, 2, b.ptr, 2); /* the chunk's records come before its text */
  none();
  buf got;
  buf_init(&got);
  logprob_rec out[4];
  assert_int_equal(mkt_stream_read_logprobs(st, out, 4, &got), 0); /* no text yet */
  mkt_route_chunk(rt, 100, aid, ids, 2, "ab", 2, 3);
  next(MKT_RT_PAY);
  assert_int_equal(mkt_stream_read_logprobs(st, out, 4, &got), 0); /* the text is not read yet */
  char text[8];
  assert_int_equal(mkt_stream_read(st, text, sizeof text, 0), 2);
  assert_int_equal(mkt_stream_read_logprobs(st, out, 4, &got), 2);
  assert_int_equal(out[0].tok.id, 7);
  assert_true(out[0].tok.logprob == -0.5f);
  assert_int_equal(out[0].n_top, 2);
  assert_memory_equal(got.ptr + out[0].top[1].off, "z", 1);
  assert_memory_equal(got.ptr + out[1].tok.off, "b", 1);
  /* the provider dies after tokens came: no other provider continues an answer with logprobs */
  mkt_route_error(rt, 200, aid, -32003, "link closed", NULL);
  assert_int_equal(next(MKT_RT_STATS).ok, 0);
  assert_string_equal(next(MKT_RT_RECEIPT).status, "partial");
  next(MKT_RT_DROP);
  none();
  mkt_result r = result();
  assert_int_equal(r.finish, LOCAL_ERROR);
  assert_int_equal(r.http_status, 502);
  assert_non_null(strstr(r.error, "logprobs"));
  mkt_stream_unref(st);
  /* malformed records: the provider's fault (before any token came: the next provider) */
  st = mkt_stream_new();
  mkt_stream_ref(st);
  p0 = json_pack("{s:s, s:i, s:i}", "prompt", "Once", "seed", 3, "logprobs", 0);
  assert_int_equal(mkt_route_submit(rt, 300, "m", p0, 10, NULL, st), 0);
  a = next(MKT_RT_ATTEMPT);
  const uint8_t *first = !memcmp(a.pk, P1, 32) ? P1 : P2;
  aid = call_to(first, NULL);
  mkt_route_logprobs(rt, 400, aid, NULL, ERR_FORMAT, b.ptr, 0);
  assert_int_equal(next(MKT_RT_STATS).ok, 0);
  next(MKT_RT_RECEIPT);
  next(MKT_RT_STOP);
  a = next(MKT_RT_ATTEMPT);
  assert_memory_not_equal(a.pk, first, 32);
  call_to(a.pk, NULL);
  buf_deinit(&b);
  buf_deinit(&got);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_deal_price, setup, teardown),
      cmocka_unit_test_setup_teardown(test_owner_policy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failover_and_stall, setup, teardown),
      cmocka_unit_test_setup_teardown(test_channel_retry_and_open, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registry_and_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unlisted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nobody_and_refusal, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_and_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verification, setup, teardown),
      cmocka_unit_test_setup_teardown(test_logprobs, setup, teardown),
  };
  return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
