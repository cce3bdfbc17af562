/* The MCP server's protocol engine without a transport: message kinds, lifecycle and
 * version negotiation, the spec's error codes (-32700/-32600/-32601/-32602/-32002), argument
 * checks, list cursors, resource templates, the logging level, progress only with a token,
 * server→client requests answered from another thread (and their timeout and the session's
 * end), and cancellation by notifications/cancelled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/mcp.h"
#include "agent/mcp_fixtures.h"
#include "core/err.h"

typedef struct capture {
  pthread_mutex_t mu;
  json_t *msgs; /* what the server sent while a request ran */
  mcp_session *ses;
  int answer_requests; /* a "client" thread answers server requests */
} capture;

static void cap_send(void *ud, json_t *m) {
  capture *c = ud;
  pthread_mutex_lock(&c->mu);
  json_array_append_new(c->msgs, m);
  pthread_mutex_unlock(&c->mu);
}

static mcp_server srv;

static json_t *call(mcp_session *s, const char *text, const mcp_sink *sink) {
  json_t *m = json_loads(text, 0, NULL);
  assert_non_null(m);
  json_t *a = mcp_handle(&srv, s, m, sink, NULL);
  json_decref(m);
  return a;
}

static int code_of(json_t *answer) { return (int)json_integer_value(json_object_get(json_object_get(answer, "error"), "code")); }

static void init_session(mcp_session *s, const char *caps) {
  char text[512];
  mcp_session_init(s);
  snprintf(text, sizeof text,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\","
           "\"capabilities\":%s,\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
           caps);
  json_t *a = call(s, text, NULL);
  assert_non_null(json_object_get(a, "result"));
  json_decref(a);
}

static int setup(void **state) {
  (void)state;
  mcp_server_init(&srv, "apiary", "0.1.0", "test");
  assert_int_equal(mcp_fixtures_add(&srv), 0);
  return 0;
}

static void test_kinds(void **state) {
  (void)state;
  char err[200];
  struct { const char *msg; int kind; } cases[] = {
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 1},
      {"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"ping\",\"params\":{}}", 1},
      {"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 2},
      {"{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", 3},
      {"{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1,\"message\":\"m\"}}", 3},
      {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", 0},
      {"{\"id\":1,\"method\":\"ping\"}", 0},
      {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", 0},
      {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", 0},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}", 0},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}", 0},
      {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", 0},
      {"{\"jsonrpc\":\"2.0\",\"id\":3}", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *m = json_loads(cases[i].msg, JSON_DECODE_ANY, NULL);
    assert_non_null(m);
    if (mcp_kind(m, err, sizeof err) != cases[i].kind) fail_msg("case %zu: %s", i, cases[i].msg);
    json_decref(m);
  }
}

static void test_lifecycle(void **state) {
  (void)state;
  mcp_session s;
  mcp_session_init(&s);
  /* an older revision we speak is echoed; one we do not is answered with ours */
  json_t *a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
                       "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}", NULL);
  assert_string_equal(json_string_value(json_object_get(json_object_get(a, "result"), "protocolVersion")), "2025-06-18");
  json_t *caps = json_object_get(json_object_get(a, "result"), "capabilities");
  assert_non_null(json_object_get(caps, "tools"));
  assert_non_null(json_object_get(caps, "logging"));
  assert_non_null(json_object_get(caps, "prompts"));
  assert_true(json_is_true(json_object_get(json_object_get(caps, "resources"), "subscribe")));
  assert_int_equal(json_integer_value(json_object_get(a, "id")), 1);
  json_decref(a);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"1999-01-01\","
               "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}", NULL);
  assert_string_equal(json_string_value(json_object_get(json_object_get(a, "result"), "protocolVersion")), MCP_LATEST);
  json_decref(a);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{\"capabilities\":{}}}", NULL);
  assert_int_equal(code_of(a), MCP_INVALID_PARAMS);
  json_decref(a);
  assert_null(call(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", NULL));
  assert_int_equal(s.initialized, 1);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", NULL);
  assert_string_equal(json_string_value(json_object_get(a, "id")), "p");
  assert_true(json_is_object(json_object_get(a, "result")) && json_object_size(json_object_get(a, "result")) == 0);
  json_decref(a);
  mcp_session_deinit(&s);
}

static void test_errors(void **state) {
  (void)state;
  mcp_session s;
  init_session(&s, "{}");
  struct { const char *msg; int code; } cases[] = {
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"no/such\"}", MCP_NO_METHOD},
      {"{\"jsonrpc\":\"2.0\",\"id\":1}", MCP_INVALID_REQUEST},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"nope\"}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_sampling\",\"arguments\":{}}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_sampling\",\"arguments\":{\"prompt\":5}}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_simple_text\",\"arguments\":[]}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{\"cursor\":\"zzz\"}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"test://nothing\"}}", MCP_NO_RESOURCE},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"test://template//data\"}}", MCP_NO_RESOURCE},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"test://template/1/2/data\"}}", MCP_NO_RESOURCE},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"test_prompt_with_arguments\",\"arguments\":{\"arg1\":\"a\"}}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"name\":\"nope\"}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"loud\"}}", MCP_INVALID_PARAMS},
      {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"completion/complete\",\"params\":{\"ref\":{\"type\":\"ref/x\"}}}", MCP_INVALID_PARAMS},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *a = call(&s, cases[i].msg, NULL);
    if (code_of(a) != cases[i].code) fail_msg("case %zu: code %d, not %d: %s", i, code_of(a), cases[i].code, cases[i].msg);
    assert_true(json_is_string(json_object_get(json_object_get(a, "error"), "message")));
    assert_null(json_object_get(a, "result"));
    json_decref(a);
  }
  /* a template's value reaches the reader; a tool that fails is a result with isError */
  json_t *a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/read\",\"params\":{\"uri\":\"test://template/ab7/data\"}}", NULL);
  json_t *c0 = json_array_get(json_object_get(json_object_get(a, "result"), "contents"), 0);
  json_t *body = json_loads(json_string_value(json_object_get(c0, "text")), 0, NULL);
  assert_string_equal(json_string_value(json_object_get(body, "id")), "ab7");
  json_decref(body);
  json_decref(a);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_error_handling\"}}", NULL);
  assert_true(json_is_true(json_object_get(json_object_get(a, "result"), "isError")));
  json_decref(a);
  /* without a way to reach the client, a tool that needs it fails as a tool, not the server */
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_sampling\",\"arguments\":{\"prompt\":\"x\"}}}", NULL);
  assert_true(json_is_true(json_object_get(json_object_get(a, "result"), "isError")));
  json_decref(a);
  mcp_session_deinit(&s);
}

static void test_logging_and_progress(void **state) {
  (void)state;
  mcp_session s;
  init_session(&s, "{}");
  capture cap = {.msgs = json_array()};
  pthread_mutex_init(&cap.mu, NULL);
  mcp_sink sink = {.send = cap_send, .ud = &cap};
  json_t *a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"test_tool_with_logging\"}}", &sink);
  json_decref(a);
  assert_int_equal(json_array_size(cap.msgs), 3); /* info passes the default level */
  assert_string_equal(json_string_value(json_object_get(json_array_get(cap.msgs, 0), "method")), "notifications/message");
  json_array_clear(cap.msgs);
  json_decref(call(&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"warning\"}}", NULL));
  json_decref(call(&s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"test_tool_with_logging\"}}", &sink));
  assert_int_equal(json_array_size(cap.msgs), 0); /* info is below warning */
  /* progress only when the request carried a token, and with that token */
  json_decref(call(&s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{\"name\":\"test_tool_with_progress\"}}", &sink));
  assert_int_equal(json_array_size(cap.msgs), 0);
  json_decref(call(&s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"test_tool_with_progress\","
                       "\"_meta\":{\"progressToken\":\"tok\"}}}", &sink));
  assert_int_equal(json_array_size(cap.msgs), 3);
  json_t *last = json_object_get(json_array_get(cap.msgs, 2), "params");
  assert_string_equal(json_string_value(json_object_get(last, "progressToken")), "tok");
  assert_true(json_number_value(json_object_get(last, "progress")) == 100.0);
  json_decref(cap.msgs);
  pthread_mutex_destroy(&cap.mu);
  mcp_session_deinit(&s);
}

typedef struct runner { mcp_session *s; const char *msg; const mcp_sink *sink; json_t *answer; } runner;

static void *run(void *arg) {
  runner *r = arg;
  r->answer = call(r->s, r->msg, r->sink);
  return NULL;
}

/* Waits until the capture holds n messages; returns the n-th (borrowed). */
static json_t *wait_msg(capture *c, size_t n) {
  for (int i = 0; i < 500; i++) {
    pthread_mutex_lock(&c->mu);
    json_t *m = json_array_size(c->msgs) >= n ? json_array_get(c->msgs, n - 1) : NULL;
    pthread_mutex_unlock(&c->mu);
    if (m) return m;
    usleep(10000);
  }
  fail_msg("the server sent no message %zu", n);
  return NULL;
}

static void test_ask_client(void **state) {
  (void)state;
  mcp_session s;
  init_session(&s, "{\"sampling\":{},\"elicitation\":{}}");
  capture cap = {.msgs = json_array()};
  pthread_mutex_init(&cap.mu, NULL);
  mcp_sink sink = {.send = cap_send, .ud = &cap};
  /* the tool asks the client; the client answers from another thread */
  runner r = {&s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"test_sampling\",\"arguments\":{\"prompt\":\"Hi there\"}}}", &sink, NULL};
  pthread_t t;
  pthread_create(&t, NULL, run, &r);
  json_t *req = wait_msg(&cap, 1);
  assert_string_equal(json_string_value(json_object_get(req, "method")), "sampling/createMessage");
  json_t *p = json_object_get(req, "params");
  assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(p, "messages"), 0), "content"), "text")), "Hi there");
  /* an answer to an id nobody waits for is dropped */
  json_t *stray = json_pack("{s:s, s:s, s:{}}", "jsonrpc", "2.0", "id", "other", "result");
  assert_int_equal(mcp_session_deliver(&s, stray), ERR_NOTFOUND);
  json_decref(stray);
  json_t *ans = json_pack("{s:s, s:O, s:{s:s, s:{s:s, s:s}, s:s}}", "jsonrpc", "2.0", "id", json_object_get(req, "id"),
                          "result", "role", "assistant", "content", "type", "text", "text", "Hello!", "model", "m");
  assert_null(mcp_handle(&srv, &s, ans, NULL, NULL));
  json_decref(ans);
  pthread_join(t, NULL);
  const char *text = json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(r.answer, "result"), "content"), 0), "text"));
  assert_string_equal(text, "LLM response: Hello!");
  json_decref(r.answer);
  /* the client answers with an error: the tool reports it */
  json_array_clear(cap.msgs);
  r.answer = NULL;
  r.msg = "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/call\",\"params\":{\"name\":\"test_elicitation\",\"arguments\":{\"message\":\"name?\"}}}";
  pthread_create(&t, NULL, run, &r);
  req = wait_msg(&cap, 1);
  assert_string_equal(json_string_value(json_object_get(req, "method")), "elicitation/create");
  ans = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", json_object_get(req, "id"), "error", "code", -1, "message", "user declined");
  mcp_session_deliver(&s, ans);
  json_decref(ans);
  pthread_join(t, NULL);
  json_t *res = json_object_get(r.answer, "result");
  assert_true(json_is_true(json_object_get(res, "isError")));
  assert_non_null(strstr(json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text")), "user declined"));
  json_decref(r.answer);
  /* the session ends while a tool waits: it gives up at once */
  json_array_clear(cap.msgs);
  r.answer = NULL;
  r.msg = "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/call\",\"params\":{\"name\":\"test_sampling\",\"arguments\":{\"prompt\":\"x\"}}}";
  pthread_create(&t, NULL, run, &r);
  wait_msg(&cap, 1);
  mcp_session_close(&s);
  pthread_join(t, NULL);
  res = json_object_get(r.answer, "result");
  assert_true(json_is_true(json_object_get(res, "isError")));
  assert_non_null(strstr(json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text")), "ended"));
  json_decref(r.answer);
  json_decref(cap.msgs);
  pthread_mutex_destroy(&cap.mu);
  mcp_session_deinit(&s);
}

/* A tool that waits until it is cancelled. */
static int t_wait(mcp_call *c, json_t *args, void *ud, json_t **result, char *err, size_t cap) {
  for (int i = 0; i < 500 && !mcp_call_cancelled(c); i++) usleep(10000);
  *result = mcp_text_result(mcp_call_cancelled(c) ? "cancelled" : "not cancelled", 0);
  return 0;
}

static void test_cancel(void **state) {
  (void)state;
  static const mcp_tool waiter = {"wait_for_cancel", NULL, "waits", NULL, t_wait, NULL};
  mcp_server keep = srv;
  assert_int_equal(mcp_add_tool(&srv, &waiter), 0);
  assert_int_equal(mcp_add_tool(&srv, &waiter), ERR_EXISTS);
  mcp_session s;
  init_session(&s, "{}");
  runner r = {&s, "{\"jsonrpc\":\"2.0\",\"id\":\"w1\",\"method\":\"tools/call\",\"params\":{\"name\":\"wait_for_cancel\"}}", NULL, NULL};
  pthread_t t;
  pthread_create(&t, NULL, run, &r);
  usleep(50000);
  /* cancelling another id changes nothing; this one's id stops it */
  assert_null(call(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":\"w2\"}}", NULL));
  usleep(50000);
  assert_null(call(&s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":\"w1\",\"reason\":\"x\"}}", NULL));
  pthread_join(t, NULL);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(r.answer, "result"), "content"), 0), "text")), "cancelled");
  json_decref(r.answer);
  mcp_session_deinit(&s);
  srv = keep;
}

static void test_subscriptions_and_lists(void **state) {
  (void)state;
  mcp_session s;
  init_session(&s, "{}");
  json_t *a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/subscribe\",\"params\":{\"uri\":\"test://watched-resource\"}}", NULL);
  assert_non_null(json_object_get(a, "result"));
  json_decref(a);
  assert_int_equal(s.n_subs, 1);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/subscribe\",\"params\":{\"uri\":\"test://nothing\"}}", NULL);
  assert_int_equal(code_of(a), MCP_NO_RESOURCE);
  json_decref(a);
  json_decref(call(&s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/unsubscribe\",\"params\":{\"uri\":\"test://watched-resource\"}}", NULL));
  assert_int_equal(s.n_subs, 0);
  /* lists: templates apart from resources, every tool with an object schema */
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/list\"}", NULL);
  json_t *rs = json_object_get(json_object_get(a, "result"), "resources");
  assert_int_equal(json_array_size(rs), 3);
  json_decref(a);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/templates/list\"}", NULL);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(a, "result"), "resourceTemplates"), 0), "uriTemplate")),
                      "test://template/{id}/data");
  json_decref(a);
  a = call(&s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/list\"}", NULL);
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(json_object_get(a, "result"), "tools"), i, t) {
    assert_string_equal(json_string_value(json_object_get(json_object_get(t, "inputSchema"), "type")), "object");
    assert_true(json_is_string(json_object_get(t, "description")));
  }
  assert_true(i >= 12);
  json_decref(a);
  mcp_session_deinit(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kinds), cmocka_unit_test(test_lifecycle), cmocka_unit_test(test_errors),
      cmocka_unit_test(test_logging_and_progress), cmocka_unit_test(test_ask_client), cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_subscriptions_and_lists),
  };
  return cmocka_run_group_tests_name("mcp", tests, setup, NULL);
}
