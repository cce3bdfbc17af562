/* agent/a2a and agent/a2a_task: the delegation wire format's checks and caps, the state
 * mapping, the Task a provider writes read back by a caller, the agent card, the "sell"
 * field of a definition, and tasks keyed by (caller, id) on a real store with the
 * migration after agent_schema_v1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "agent/a2a.h"
#include "agent/a2a_calls.h"
#include "agent/a2a_task.h"
#include "agent/agent_def.h"
#include "agent/agent_store.h"
#include "core/err.h"
#include "crypto/eip712.h"
#include "crypto/wallet.h"
#include "p2p/bencode.h"

static const char *ID = "00112233445566778899aabbccddeeff";

static const char *parse(const char *json, a2a_send *s, int *code) {
  json_t *j = json_loads(json, 0, NULL);
  assert_non_null(j);
  const char *why = a2a_send_parse(j, s, code);
  json_decref(j);
  return why;
}

static void test_send(void **state) {
  (void)state;
  a2a_send s;
  int code;
  char text[512];
  snprintf(text, sizeof text,
           "{\"agent\":\"scribe\",\"max_wei\":\"12\",\"message\":{\"messageId\":\"%s\",\"role\":\"user\",\"parts\":["
           "{\"kind\":\"text\",\"text\":\"a\"},{\"text\":\"b\"}]}}", ID);
  assert_null(parse(text, &s, &code));
  assert_string_equal(s.agent, "scribe");
  assert_string_equal(s.text, "a\nb");
  assert_int_equal(s.max_wei, 12);
  assert_int_equal(s.id[0], 0x00);
  assert_int_equal(s.id[15], 0xff);
  assert_false(s.has_channel);
  /* the caller's writer gives back the same */
  json_t *back = a2a_send_params(s.agent, s.id, s.text, s.max_wei, NULL, NULL);
  a2a_send s2;
  assert_null(a2a_send_parse(back, &s2, &code));
  assert_string_equal(s2.text, "a\nb");
  assert_memory_equal(s2.id, s.id, 16);
  json_decref(back);
  a2a_send_clear(&s2);
  a2a_send_clear(&s);
  /* refusals */
  snprintf(text, sizeof text, "{\"agent\":\"scribe\",\"message\":{\"messageId\":\"%s\",\"role\":\"user\",\"parts\":[{\"kind\":\"file\",\"file\":{}}]}}", ID);
  assert_non_null(parse(text, &s, &code));
  assert_int_equal(code, A2A_E_CONTENT);
  a2a_send_clear(&s);
  const char *bad[] = {
      "{\"agent\":\"bad name\",\"message\":{}}",
      "{\"agent\":\"a\",\"message\":{\"messageId\":\"0011\",\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}}",
      "{\"agent\":\"a\",\"max_wei\":\"-1\",\"message\":{}}",
      "{\"agent\":\"a\",\"max_wei\":\"123456789012345678901\",\"message\":{}}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_non_null(parse(bad[i], &s, &code));
    assert_int_equal(code, -32602);
    a2a_send_clear(&s);
  }
  /* role, empty text, too many parts, too much text */
  snprintf(text, sizeof text, "{\"agent\":\"a\",\"message\":{\"messageId\":\"%s\",\"role\":\"agent\",\"parts\":[{\"text\":\"x\"}]}}", ID);
  assert_non_null(parse(text, &s, &code));
  a2a_send_clear(&s);
  snprintf(text, sizeof text, "{\"agent\":\"a\",\"message\":{\"messageId\":\"%s\",\"role\":\"user\",\"parts\":[{\"text\":\"\"}]}}", ID);
  assert_non_null(parse(text, &s, &code));
  a2a_send_clear(&s);
  json_t *parts = json_array();
  for (int i = 0; i < 17; i++) json_array_append_new(parts, json_pack("{s:s}", "text", "x"));
  json_t *m = json_pack("{s:s, s:{s:s, s:s, s:o}}", "agent", "a", "message", "messageId", ID, "role", "user", "parts", parts);
  assert_non_null(a2a_send_parse(m, &s, &code));
  a2a_send_clear(&s);
  json_decref(m);
  char *big = malloc(A2A_MAX_TEXT + 2);
  memset(big, 'x', A2A_MAX_TEXT + 1);
  big[A2A_MAX_TEXT + 1] = 0;
  m = json_pack("{s:s, s:{s:s, s:s, s:[{s:s}]}}", "agent", "a", "message", "messageId", ID, "role", "user", "parts", "text", big);
  const char *why = a2a_send_parse(m, &s, &code);
  assert_non_null(why);
  assert_non_null(strstr(why, "64 KiB"));
  a2a_send_clear(&s);
  json_decref(m);
  big[A2A_MAX_TEXT] = 0; /* exactly the cap: accepted */
  m = json_pack("{s:s, s:{s:s, s:s, s:[{s:s}]}}", "agent", "a", "message", "messageId", ID, "role", "user", "parts", "text", big);
  assert_null(a2a_send_parse(m, &s, &code));
  assert_int_equal(s.text_len, A2A_MAX_TEXT);
  a2a_send_clear(&s);
  json_decref(m);
  free(big);
}

static void test_task_roundtrip(void **state) {
  (void)state;
  assert_string_equal(a2a_state("queued"), "submitted");
  assert_string_equal(a2a_state("running"), "working");
  assert_string_equal(a2a_state("waiting"), "input-required");
  assert_string_equal(a2a_state("done"), "completed");
  assert_string_equal(a2a_state("failed"), "failed");
  assert_string_equal(a2a_state("canceled"), "canceled");
  assert_string_equal(a2a_state("odd"), "unknown");
  assert_true(a2a_state_terminal("completed"));
  assert_false(a2a_state_terminal("input-required"));
  a2a_task_info info = {.agent = "scribe", .state = "completed", .text = "the answer", .price_wei = 7, .tokens = 40};
  memset(info.id, 0xab, 16);
  json_t *j = a2a_task_json(&info);
  a2a_task_view v;
  assert_int_equal(a2a_task_parse(j, &v), 0);
  assert_string_equal(v.state, "completed");
  assert_string_equal(v.text, "the answer");
  assert_null(v.error);
  assert_int_equal(v.price_wei, 7);
  assert_int_equal(v.tokens, 40);
  a2a_task_view_clear(&v);
  json_decref(j);
  a2a_task_info f = {.agent = "scribe", .state = "failed", .error = "the step limit"};
  j = a2a_task_json(&f);
  assert_int_equal(a2a_task_parse(j, &v), 0);
  assert_null(v.text);
  assert_string_equal(v.error, "the step limit");
  a2a_task_view_clear(&v);
  json_decref(j);
  /* a state we do not know is not a task */
  j = json_pack("{s:{s:s}}", "status", "state", "thinking");
  assert_int_equal(a2a_task_parse(j, &v), ERR_FORMAT);
  json_decref(j);
}

static void test_card_and_agents(void **state) {
  (void)state;
  a2a_agent_offer a[2] = {{.name = "scribe", .description = "Writes.", .price_wei = 0},
                          {.name = "poet", .description = "", .price_wei = 1000}};
  json_t *l = a2a_agents_to_json(a, 2);
  a2a_agent_offer b[A2A_MAX_AGENTS];
  size_t n;
  json_array_append_new(l, json_pack("{s:s, s:s}", "name", "bad name", "price_wei", "1")); /* skipped */
  assert_int_equal(a2a_agents_from_json(l, b, A2A_MAX_AGENTS, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(b[1].name, "poet");
  assert_int_equal(b[1].price_wei, 1000);
  json_decref(l);
  json_t *card = a2a_card_json("", "NODEID", "1.2.3", a, 2);
  assert_string_equal(json_string_value(json_object_get(card, "url")), "apiary:NODEID");
  assert_string_equal(json_string_value(json_object_get(card, "version")), "1.2.3");
  json_t *sk = json_object_get(card, "skills");
  assert_int_equal(json_array_size(sk), 2);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(json_object_get(json_array_get(sk, 1), "metadata"), "apiary"), "price_wei")),
                      "1000");
  assert_non_null(json_object_get(card, "capabilities"));
  assert_non_null(json_object_get(card, "defaultInputModes"));
  json_decref(card);
}

static void test_def_sell(void **state) {
  (void)state;
  json_t *out;
  char err[300];
  json_t *d = json_loads("{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":5,\"description\":\"d\"},"
                         "\"tools\":[\"delegate\"],\"delegate_allow\":[\"x\"]}", 0, NULL);
  assert_int_equal(agent_def_check(d, &out, err, sizeof err), 0);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "sell"), "price_wei")), 5);
  json_decref(out);
  json_decref(d);
  const char *bad[] = {"{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":-1}}",
                       "{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"description\":\"no price\"}}",
                       "{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":1,\"other\":1}}",
                       "{\"name\":\"s\",\"model\":\"m\",\"sell\":5}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    d = json_loads(bad[i], 0, NULL);
    assert_int_equal(agent_def_check(d, &out, err, sizeof err), ERR_INVAL);
    assert_non_null(strstr(err, "sell"));
    json_decref(d);
  }
}

static void test_store(void **state) {
  (void)state;
  char dir[256], path[400], err[200];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/a.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  store_migration m[] = {{"agent", agent_schema_v1}, {"agent", a2a_schema_v1}, {"agent", a2a_schema_v2}};
  assert_int_equal(store_migrate(s, m, 3, err, sizeof err), 3);
  uint8_t c1[32], c2[32], rid[16];
  memset(c1, 1, 32);
  memset(c2, 2, 32);
  memset(rid, 9, 16);
  int64_t id, again, other, owner;
  a2a_price seven = {.price = 7, .rate = 11, .max_wei = 100}, price;
  assert_int_equal(a2a_task_add(s, "scribe", "hi", c1, rid, &seven, &id), 0);
  assert_int_equal(a2a_task_add(s, "scribe", "hi again", c1, rid, &seven, &again), ERR_EXISTS);
  assert_int_equal(again, id);
  assert_int_equal(a2a_task_add(s, "scribe", "hi", c2, rid, &seven, &other), 0); /* same id, other caller */
  assert_int_not_equal(other, id);
  assert_int_equal(a2a_task_find(s, c1, rid, &again, &price), 0);
  assert_int_equal(again, id);
  assert_int_equal(price.price, 7);
  assert_int_equal(price.rate, 11);
  assert_int_equal(price.max_wei, 100);
  uint8_t c3[32];
  memset(c3, 3, 32);
  assert_int_equal(a2a_task_find(s, c3, rid, &again, &price), ERR_NOTFOUND);
  /* the owner's own tasks are not anybody's */
  assert_int_equal(agent_task_add(s, "scribe", "mine", &owner), 0);
  assert_int_equal(agent_task_next(s), id); /* the worker runs them all, oldest first */
  json_t *def = json_loads("{\"name\":\"scribe\",\"model\":\"m\"}", 0, NULL), *chk;
  assert_int_equal(agent_def_check(def, &chk, err, sizeof err), 0);
  assert_int_equal(agent_put(s, "private", chk), 0);
  json_object_set_new(chk, "sell", json_pack("{s:i, s:s}", "price_wei", 3, "description", "d"));
  assert_int_equal(agent_put(s, "scribe", chk), 0);
  a2a_agent_offer l[A2A_MAX_AGENTS];
  assert_int_equal(a2a_agents_for_sale(s, l, A2A_MAX_AGENTS), 1);
  assert_string_equal(l[0].name, "scribe");
  assert_int_equal(l[0].price_wei, 3);
  json_decref(def);
  json_decref(chk);
  store_close(s);
  tu_rm_rf(dir);
}

/* The provider's check of a caller's channel proof: only the channel's client or signer
 * can make one, for this caller at this provider and this channel. */
static void test_channel_proof(void **state) {
  (void)state;
  uint8_t sk1[32], sk2[32], chan[32], other[32], caller[32], prov[32], d[32], sig[65];
  memset(sk1, 0x11, 32);
  memset(sk2, 0x22, 32);
  memset(chan, 0xc1, 32);
  memset(other, 0xc2, 32);
  memset(caller, 0xaa, 32);
  memset(prov, 0xbb, 32);
  wallet w1, w2;
  assert_int_equal(wallet_from_secret(sk1, &w1), 0);
  assert_int_equal(wallet_from_secret(sk2, &w2), 0);
  uint8_t nobody[20] = {0};
  a2a_channel_digest(chan, caller, prov, d);
  assert_int_equal(eip712_sign(&w1, d, sig), 0);
  /* w1 is the client, or the signer */
  assert_int_equal(a2a_channel_proof_check(w1.addr, nobody, chan, caller, prov, sig), 0);
  assert_int_equal(a2a_channel_proof_check(nobody, w1.addr, chan, caller, prov, sig), 0);
  /* someone else's channel (client and signer w2) */
  assert_int_equal(a2a_channel_proof_check(w2.addr, w2.addr, chan, caller, prov, sig), ERR_WRONG_SIGNER);
  /* the proof replayed for another channel, by another caller, at another provider */
  assert_int_equal(a2a_channel_proof_check(w1.addr, w1.addr, other, caller, prov, sig), ERR_WRONG_SIGNER);
  assert_int_equal(a2a_channel_proof_check(w1.addr, w1.addr, chan, prov, prov, sig), ERR_WRONG_SIGNER);
  assert_int_equal(a2a_channel_proof_check(w1.addr, w1.addr, chan, caller, caller, sig), ERR_WRONG_SIGNER);
  /* it travels in a2a.message/send */
  uint8_t id[16] = {1};
  json_t *p = a2a_send_params("scribe", id, "hi", 5, chan, sig);
  a2a_send s;
  int code;
  assert_null(a2a_send_parse(p, &s, &code));
  assert_true(s.has_channel && s.has_sig);
  assert_memory_equal(s.channel_sig, sig, 65);
  a2a_send_clear(&s);
  json_object_set_new(p, "channel_sig", json_string("00"));
  assert_non_null(a2a_send_parse(p, &s, &code));
  a2a_send_clear(&s);
  json_decref(p);
  wallet_wipe(&w1);
  wallet_wipe(&w2);
}

/* Per-token prices: ceil, capped by the budget, no overflow. */
static void test_cost(void **state) {
  (void)state;
  assert_int_equal(a2a_cost(7, 0, 500, 100), 7);
  assert_int_equal(a2a_cost(7, 1000, 5, 100), 12);
  assert_int_equal(a2a_cost(7, 1001, 5, 100), 13);  /* 5.005 rounds up */
  assert_int_equal(a2a_cost(7, 1000, 500, 100), 100); /* the budget caps it */
  assert_int_equal(a2a_cost(7, 1000, -3, 100), 7);
  assert_int_equal(a2a_cost(UINT64_MAX, UINT64_MAX, INT64_MAX, UINT64_MAX), UINT64_MAX);
}

/* Skills: in the definition, the JSON list, the DHT record's compact form; matching. */
static void test_skills_and_record(void **state) {
  (void)state;
  a2a_agent_offer a[2] = {{.name = "scribe", .price_wei = 7, .skills = {"notes", "write"}, .n_skills = 2},
                          {.name = "poet", .price_wei = 1000, .price_1k = 5}};
  assert_true(a2a_offer_matches(&a[0], "scribe"));
  assert_true(a2a_offer_matches(&a[0], "notes"));
  assert_false(a2a_offer_matches(&a[1], "notes"));
  json_t *l = a2a_agents_to_json(a, 2);
  a2a_agent_offer b[A2A_MAX_AGENTS];
  size_t n;
  assert_int_equal(a2a_agents_from_json(l, b, A2A_MAX_AGENTS, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(b[0].n_skills, 2);
  assert_string_equal(b[0].skills[1], "write");
  assert_int_equal(b[0].price_1k, 0);
  assert_int_equal(b[1].price_1k, 5);
  json_decref(l);
  uint8_t rec[256];
  ben_w w;
  ben_w_init(&w, rec, sizeof rec);
  a2a_agents_to_ben(&w, a, 2);
  int len = ben_w_finish(&w);
  assert_true(len > 0 && len < 80); /* compact: it shares a 1000-byte record */
  ben_node nodes[64];
  assert_true(ben_decode(rec, (size_t)len, nodes, 64, 0) > 0);
  assert_int_equal(a2a_agents_from_ben(&nodes[0], b, A2A_MAX_AGENTS, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(b[0].name, "scribe");
  assert_int_equal(b[0].price_wei, 7);
  assert_int_equal(b[0].n_skills, 2);
  assert_string_equal(b[0].skills[0], "notes");
  assert_int_equal(b[1].price_wei, 1000);
  assert_int_equal(b[1].price_1k, 5);
  /* a bad entry (a name with a space) is skipped */
  const char bad[] = "ld1:n3:a b1:pi1e1:slee" "d1:n2:ok1:pi2e1:sl3:x y2:okeee";
  assert_true(ben_decode((const uint8_t *)bad, sizeof bad - 1, nodes, 64, 0) > 0);
  assert_int_equal(a2a_agents_from_ben(&nodes[0], b, A2A_MAX_AGENTS, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(b[0].name, "ok");
  assert_int_equal(b[0].n_skills, 1);
  /* skills in a definition's "sell" */
  json_t *out;
  char err[300];
  json_t *d = json_loads("{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":5,\"skills\":[\"notes\"]}}", 0, NULL);
  assert_int_equal(agent_def_check(d, &out, err, sizeof err), 0);
  assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(out, "sell"), "skills"), 0)), "notes");
  json_decref(out);
  json_decref(d);
  d = json_loads("{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":5,\"price_per_1k\":9}}", 0, NULL);
  assert_int_equal(agent_def_check(d, &out, err, sizeof err), 0);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "sell"), "price_per_1k")), 9);
  json_decref(out);
  json_decref(d);
  d = json_loads("{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":5,\"price_per_1k\":-1}}", 0, NULL);
  assert_int_equal(agent_def_check(d, &out, err, sizeof err), ERR_INVAL);
  json_decref(d);
  d = json_loads("{\"name\":\"s\",\"model\":\"m\",\"sell\":{\"price_wei\":5,\"skills\":[\"no spaces\"]}}", 0, NULL);
  assert_int_equal(agent_def_check(d, &out, err, sizeof err), ERR_INVAL);
  json_decref(d);
}

/* The caller's record of its delegations: an open attempt is listed for a restart until it
 * ends; recording it again changes nothing. */
static void test_calls_store(void **state) {
  (void)state;
  char dir[256], path[400], err[200];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/c.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  store_migration m[] = {{"agent", a2a_calls_schema_v1}};
  assert_int_equal(store_migrate(s, m, 1, err, sizeof err), 1);
  a2a_call_row r = {.input = "Note it.", .max_wei = 50, .cap = 7, .deadline = 123};
  memset(r.id, 1, 16);
  memset(r.provider, 2, 32);
  snprintf(r.agent, sizeof r.agent, "noter");
  memset(r.channel, 5, 32);
  r.has_channel = 1;
  assert_int_equal(a2a_calls_open(s, &r), 0);
  r.cap = 9;
  assert_int_equal(a2a_calls_open(s, &r), 0); /* the same attempt: kept as first recorded */
  r.id[0] = 3;
  r.has_channel = 0;
  assert_int_equal(a2a_calls_open(s, &r), 0);
  a2a_call_row out[4];
  assert_int_equal(a2a_calls_list_open(s, out, 4), 2);
  assert_string_equal(out[0].agent, "noter");
  assert_string_equal(out[0].input, "Note it.");
  assert_int_equal(out[0].cap, 7);
  assert_int_equal(out[0].max_wei, 50);
  assert_int_equal(out[0].deadline, 123);
  assert_true(out[0].has_channel && out[0].channel[31] == 5);
  assert_false(out[1].has_channel);
  a2a_call_row_clear(&out[0]);
  a2a_call_row_clear(&out[1]);
  assert_int_equal(a2a_calls_end(s, r.id, r.provider, "completed", "done it"), 0);
  assert_int_equal(a2a_calls_list_open(s, out, 4), 1);
  a2a_call_row_clear(&out[0]);
  json_t *j = a2a_calls_json(s, 10);
  assert_int_equal(json_array_size(j), 2);
  int completed = 0;
  size_t i;
  json_t *x;
  json_array_foreach(j, i, x) completed += !strcmp(json_string_value(json_object_get(x, "state")), "completed") &&
                                          !strcmp(json_string_value(json_object_get(x, "result")), "done it");
  assert_int_equal(completed, 1);
  json_decref(j);
  store_close(s);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_send), cmocka_unit_test(test_task_roundtrip),
                                     cmocka_unit_test(test_card_and_agents), cmocka_unit_test(test_def_sell),
                                     cmocka_unit_test(test_store), cmocka_unit_test(test_channel_proof),
                                     cmocka_unit_test(test_skills_and_record), cmocka_unit_test(test_calls_store),
                                     cmocka_unit_test(test_cost)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
