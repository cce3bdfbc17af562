/* llm/toolcall — reading calls out of generated text in both layouts (hermes blocks, Llama 3
 * JSON), laying tools and tool turns out for models whose template has no tools, checking
 * OpenAI messages (text parts joined, JSON-string arguments parsed, images refused, caps),
 * tool_choice, and the call grammar: it accepts exactly the calls the tools' schemas allow
 * (checked byte by byte through llm/grammar with a one-byte-per-token vocabulary). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar.h"
#include "llm/toolcall.h"

static json_t *J(const char *s) {
  json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
  assert_non_null(j);
  return j;
}

static void test_parse_hermes(void **state) {
  (void)state;
  const char *t = "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n"
                  "<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"zone\\\": \\\"UTC\\\"}\"}\n</tool_call>";
  json_t *calls;
  char *content;
  assert_int_equal(toolcall_parse(t, strlen(t), &calls, &content), 0);
  assert_non_null(calls);
  assert_int_equal(json_array_size(calls), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "name")), "get_weather");
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(calls, 0), "arguments"), "city")),
                      "Paris");
  /* arguments given as JSON text become the object */
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(calls, 1), "arguments"), "zone")),
                      "UTC");
  assert_string_equal(content, "Let me look.");
  json_decref(calls);
  free(content);
}

static void test_parse_llama3_and_arrays(void **state) {
  (void)state;
  json_t *calls;
  char *content;
  const char *t = "{\"name\": \"get_time\", \"parameters\": {\"zone\": \"CET\"}}";
  assert_int_equal(toolcall_parse(t, strlen(t), &calls, &content), 0);
  assert_int_equal(json_array_size(calls), 1);
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(calls, 0), "arguments"), "zone")), "CET");
  assert_null(content);
  json_decref(calls);
  t = "<|python_tag|>[{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {\"x\": 1}}]";
  assert_int_equal(toolcall_parse(t, strlen(t), &calls, &content), 0);
  assert_int_equal(json_array_size(calls), 2);
  json_decref(calls);
  /* plain text, a JSON object that is not a call, a call cut short, a bad name: no calls */
  const char *none[] = {"Once upon a time", "{\"city\": \"Paris\"}",
                        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par",
                        "<tool_call>{\"name\": \"no spaces allowed\", \"arguments\": {}}</tool_call>"};
  for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
    assert_int_equal(toolcall_parse(none[i], strlen(none[i]), &calls, &content), 0);
    assert_null(calls);
    assert_non_null(content);
    assert_string_equal(content, none[i]);
    free(content);
  }
}

static void test_flatten(void **state) {
  (void)state;
  json_t *msgs = J("[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Weather?\"},"
                   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
                   "\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"21C\"},{\"role\":\"tool\",\"content\":\"sunny\"}]");
  json_t *tools = J("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\"}}}]");
  json_t *flat;
  assert_int_equal(toolcall_flatten(msgs, tools, &flat), 0);
  assert_int_equal(json_array_size(flat), 4); /* system, user, assistant, one user turn for both results */
  const char *sys = json_string_value(json_object_get(json_array_get(flat, 0), "content"));
  assert_true(!strncmp(sys, "Be brief.\n\n", 11));
  assert_non_null(strstr(sys, "<tools>\n{\"type\":\"function\",\"function\":{\"name\":\"get_weather\""));
  assert_string_equal(json_string_value(json_object_get(json_array_get(flat, 2), "content")),
                      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call>");
  assert_string_equal(json_string_value(json_object_get(json_array_get(flat, 3), "role")), "user");
  assert_string_equal(json_string_value(json_object_get(json_array_get(flat, 3), "content")),
                      "<tool_response>\n21C\n</tool_response>\n<tool_response>\nsunny\n</tool_response>");
  json_decref(flat);
  json_decref(msgs);
  json_decref(tools);
}

static void test_check_messages(void **state) {
  (void)state;
  char err[256];
  json_t *out;
  json_t *in = J("[{\"role\":\"developer\",\"content\":\"sys\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                 "{\"type\":\"text\",\"text\":\"b\"}],\"extra\":1},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"x\","
                 "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"k\\\": [1]}\"}}]}]");
  assert_int_equal(toolcall_check_messages(in, 8, 1000, &out, err, sizeof err), 0);
  assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "role")), "system");
  assert_string_equal(json_string_value(json_object_get(json_array_get(out, 1), "content")), "ab");
  assert_null(json_object_get(json_array_get(out, 1), "extra"));
  json_t *a2 = json_array_get(out, 2);
  assert_true(json_is_null(json_object_get(a2, "content")));
  json_t *args = json_object_get(json_object_get(json_array_get(json_object_get(a2, "tool_calls"), 0), "function"), "arguments");
  assert_true(json_is_array(json_object_get(args, "k")));
  json_decref(out);
  json_decref(in);
  struct { const char *json; int rc; } bad[] = {
      {"[]", ERR_INVAL},
      {"[{\"role\":\"robot\",\"content\":\"x\"}]", ERR_INVAL},
      {"[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]", ERR_UNSUPPORTED},
      {"[{\"role\":\"user\",\"content\":null}]", ERR_INVAL},
      {"[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]", ERR_INVAL},
      {"[{\"role\":\"user\",\"content\":\"0123456789abcdef0123456789\"}]", ERR_TOOBIG},
      {"[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"function\":{\"name\":\"bad name\"}}]}]", ERR_INVAL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    in = json_loads(bad[i].json, JSON_ALLOW_NUL, NULL);
    assert_non_null(in);
    err[0] = 0;
    assert_int_equal(toolcall_check_messages(in, 8, 20, &out, err, sizeof err), bad[i].rc);
    assert_null(out);
    assert_true(err[0] != 0);
    json_decref(in);
  }
}

static const char *TOOLS = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":{\"type\":\"object\","
                           "\"properties\":{\"city\":{\"type\":\"string\",\"maxLength\":8}},\"required\":[\"city\"],"
                           "\"additionalProperties\":false}}},{\"type\":\"function\",\"function\":{\"name\":\"ping\"}}]";

static void test_check_tools_and_choice(void **state) {
  (void)state;
  char err[256], choice[72];
  json_t *tools = J(TOOLS);
  assert_int_equal(toolcall_check_tools(tools, err, sizeof err), 0);
  json_t *c = J("\"required\"");
  assert_int_equal(toolcall_check_choice(c, tools, choice, sizeof choice, err, sizeof err), 0);
  assert_string_equal(choice, "required");
  json_decref(c);
  c = J("{\"type\":\"function\",\"function\":{\"name\":\"ping\"}}");
  assert_int_equal(toolcall_check_choice(c, tools, choice, sizeof choice, err, sizeof err), 0);
  assert_string_equal(choice, "ping");
  json_decref(c);
  c = J("{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}");
  assert_int_equal(toolcall_check_choice(c, tools, choice, sizeof choice, err, sizeof err), ERR_INVAL);
  json_decref(c);
  const char *bad[] = {"[]", "[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]",
                       "[{\"type\":\"code\",\"function\":{\"name\":\"a\"}}]",
                       "[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *t = J(bad[i]);
    assert_int_equal(toolcall_check_tools(t, err, sizeof err), ERR_INVAL);
    json_decref(t);
  }
  json_t *t = J("[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":{\"type\":\"object\",\"unevaluatedProperties\":false}}}]");
  assert_int_equal(toolcall_check_tools(t, err, sizeof err), ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "unevaluatedProperties"));
  json_decref(t);
  json_decref(tools);
}

/* Whether the grammar accepts text as a whole sentence. */
static int accepts(const grammar_vocab *v, const char *gbnf, const char *text) {
  grammar *g;
  grammar_matcher *m;
  char err[256];
  assert_int_equal(grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err), 0);
  assert_int_equal(grammar_matcher_new(g, v, &m), 0);
  int ok = grammar_matcher_accept_bytes(m, text, strlen(text)) == 0 && grammar_matcher_can_end(m);
  grammar_matcher_free(m);
  grammar_free(g);
  return ok;
}

static void test_grammar(void **state) {
  (void)state;
  static char bytes[256][1];
  const char *pieces[257];
  size_t lens[257];
  uint8_t eog[257] = {0}, special[257] = {0};
  for (int i = 0; i < 256; i++) bytes[i][0] = (char)i, pieces[i] = bytes[i], lens[i] = 1;
  pieces[256] = "", lens[256] = 0, eog[256] = 1;
  grammar_vocab *v;
  assert_int_equal(grammar_vocab_new(257, pieces, lens, eog, special, &v), 0);
  json_t *tools = J(TOOLS);
  char *g, err[256];
  assert_int_equal(toolcall_grammar(TOOLCALL_HERMES, tools, "required", 1, &g, err, sizeof err), 0);
  assert_non_null(g);
  const char *w1 = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  const char *w2 = "<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>";
  char both[512];
  snprintf(both, sizeof both, "%s\n%s", w1, w2);
  assert_true(accepts(v, g, w1));
  assert_true(accepts(v, g, w2));
  assert_true(accepts(v, g, both)); /* parallel calls */
  assert_false(accepts(v, g, "Paris"));
  assert_false(accepts(v, g, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>"));
  assert_false(accepts(v, g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris, France\"}}\n</tool_call>"));
  assert_false(accepts(v, g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  free(g);
  /* named, not parallel: that function once */
  assert_int_equal(toolcall_grammar(TOOLCALL_HERMES, tools, "ping", 1, &g, err, sizeof err), 0);
  assert_true(accepts(v, g, w2));
  assert_false(accepts(v, g, w1));
  assert_false(accepts(v, g, both));
  free(g);
  /* Llama 3: one JSON object with "parameters" */
  assert_int_equal(toolcall_grammar(TOOLCALL_LLAMA3, tools, "required", 1, &g, err, sizeof err), 0);
  assert_true(accepts(v, g, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"));
  assert_false(accepts(v, g, w1));
  free(g);
  /* auto and none: no constraint */
  assert_int_equal(toolcall_grammar(TOOLCALL_HERMES, tools, "auto", 1, &g, err, sizeof err), 0);
  assert_null(g);
  /* what the grammar makes, the parser reads back */
  json_t *calls;
  char *content;
  assert_int_equal(toolcall_parse(both, strlen(both), &calls, &content), 0);
  assert_int_equal(json_array_size(calls), 2);
  assert_null(content);
  json_decref(calls);
  json_decref(tools);
  grammar_vocab_free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_hermes),  cmocka_unit_test(test_parse_llama3_and_arrays),
      cmocka_unit_test(test_flatten),       cmocka_unit_test(test_check_messages),
      cmocka_unit_test(test_check_tools_and_choice), cmocka_unit_test(test_grammar),
  };
  return cmocka_run_group_tests_name("toolcall", tests, NULL, NULL);
}
