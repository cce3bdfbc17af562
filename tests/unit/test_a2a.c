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
#include "agent/a2a_task.h"
#include "agent/agent_def.h"
#include "agent/agent_store.h"
#include "core/err.h"

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
  char buf[512];
  snprintf(buf, sizeof buf,
           "{\"agent\":\"scribe\",\"max_wei\":\"12\",\"message\":{\"messageId\":\"%s\",\"role\":\"user\",\"parts\":["
           "{\"kind\":\"text\",\"text\":\"a\"},{\"text\":\"b\"}]}}", ID);
  assert_null(parse(buf, &s, &code));
  assert_string_equal(s.agent, "scribe");
  assert_string_equal(s.text, "a\nb");
  assert_int_equal(s.max_wei, 12);
  assert_int_equal(s.id[0], 0x00);
  assert_int_equal(s.id[15], 0xff);
  assert_false(s.has_channel);
  /* the caller's writer gives back the same */
  json_t *back = a2a_send_params(s.agent, s.id, s.text, s.max_wei, NULL);
  a2a_send s2;
  assert_null(a2a_send_parse(back, &s2, &code));
  assert_string_equal(s2.text, "a\nb");
  assert_memory_equal(s2.id, s.id, 16);
  json_decref(back);
  a2a_send_clear(&s2);
  a2a_send_clear(&s);
  /* refusals */
  snprintf(buf, sizeof buf, "{\"agent\":\"scribe\",\"message\":{\"messageId\":\"%s\",\"role\":\"user\",\"parts\":[{\"kind\":\"file\",\"file\":{}}]}}", ID);
  assert_non_null(parse(buf, &s, &code));
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
  snprintf(buf, sizeof buf, "{\"agent\":\"a\",\"message\":{\"messageId\":\"%s\",\"role\":\"agent\",\"parts\":[{\"text\":\"x\"}]}}", ID);
  assert_non_null(parse(buf, &s, &code));
  a2a_send_clear(&s);
  snprintf(buf, sizeof buf, "{\"agent\":\"a\",\"message\":{\"messageId\":\"%s\",\"role\":\"user\",\"parts\":[{\"text\":\"\"}]}}", ID);
  assert_non_null(parse(buf, &s, &code));
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
  store_migration m[] = {{"agent", agent_schema_v1}, {"agent", a2a_schema_v1}};
  assert_int_equal(store_migrate(s, m, 2, err, sizeof err), 2);
  uint8_t c1[32], c2[32], rid[16];
  memset(c1, 1, 32);
  memset(c2, 2, 32);
  memset(rid, 9, 16);
  int64_t id, again, other, owner;
  uint64_t price;
  assert_int_equal(a2a_task_add(s, "scribe", "hi", c1, rid, 7, &id), 0);
  assert_int_equal(a2a_task_add(s, "scribe", "hi again", c1, rid, 7, &again), ERR_EXISTS);
  assert_int_equal(again, id);
  assert_int_equal(a2a_task_add(s, "scribe", "hi", c2, rid, 7, &other), 0); /* same id, other caller */
  assert_int_not_equal(other, id);
  assert_int_equal(a2a_task_find(s, c1, rid, &again, &price), 0);
  assert_int_equal(again, id);
  assert_int_equal(price, 7);
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

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_send), cmocka_unit_test(test_task_roundtrip),
                                     cmocka_unit_test(test_card_and_agents), cmocka_unit_test(test_def_sell),
                                     cmocka_unit_test(test_store)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
