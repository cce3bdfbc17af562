/* The MCP client (agent/mcp_client*): its parsers of untrusted bytes (lines, SSE events with
 * every line ending, ids, retry, caps), its answers to a server's requests (ping,
 * elicitation with the form's defaults or a decline, -32601 for the rest); over stdio
 * against a real child process (tests/interop/mcp_echo_server.js on plain Node: paging,
 * arguments and environment, errors, a line over the cap, a timeout with
 * notifications/cancelled, a child that dies, a child that ignores the end of stdin and
 * SIGTERM); over Streamable HTTP against a real node's /mcp (bearer token, SSE answers with
 * progress, an elicitation the node sends mid-call, no token, a node restarted under the
 * session: 404 and initialize again, an unreachable server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "agent/mcp_client.h"
#include "agent/mcp_client_frame.h"
#include "core/err.h"

#define ECHO "tests/interop/mcp_echo_server.js"

static char out[65536], errbuf[65536];
#define apiary(...) tu_apiary(out, sizeof out, errbuf, sizeof errbuf, __VA_ARGS__)

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- framing ---------------------------------------------------------------------------- */
typedef struct got {
  char items[16][256];
  int n, overs;
  char event[16][64];
} got;

static int on_line(void *ud, const char *line, size_t len) {
  got *g = ud;
  if (!line) {
    g->overs++;
    return 0;
  }
  assert_true(g->n < 16);
  snprintf(g->items[g->n++], 256, "%.*s", (int)len, line);
  return 0;
}

static void test_lines(void **state) {
  (void)state;
  mcp_client_lines l;
  mcp_client__lines_init(&l, 16);
  got g = {0};
  const char *input = "{\"a\":1}\r\n\n{\"b\"" ":2}\nxxxxxxxxxxxxxxxxxxxxxxxxx\nshort\n";
  for (const char *p = input; *p; p++) assert_int_equal(mcp_client__lines_feed(&l, p, 1, on_line, &g), 0); /* byte by byte */
  assert_int_equal(g.n, 3);
  assert_string_equal(g.items[0], "{\"a\":1}");
  assert_string_equal(g.items[1], "{\"b\":2}");
  assert_string_equal(g.items[2], "short"); /* the long line was skipped, reported once */
  assert_int_equal(g.overs, 1);
  mcp_client__lines_deinit(&l);
}

static int on_event(void *ud, const char *event, const char *data, size_t len) {
  got *g = ud;
  assert_true(g->n < 16);
  assert_int_equal(strlen(data), len);
  snprintf(g->event[g->n], 64, "%s", event);
  snprintf(g->items[g->n++], 256, "%s", data);
  return 0;
}

static void feed_all(mcp_client_sse *s, const char *text, size_t n, size_t chunk, got *g, int expect_rc) {
  int rc = 0;
  for (size_t i = 0; i < n; i += chunk) {
    int r = mcp_client__sse_feed(s, text + i, n - i < chunk ? n - i : chunk, on_event, g);
    if (r) rc = r;
  }
  assert_int_equal(rc, expect_rc);
}
#define FEED(s, lit, chunk, g, rc) feed_all(s, lit, sizeof lit - 1, chunk, g, rc)

static void test_sse(void **state) {
  (void)state;
  static const char part1[] = "\xEF\xBB\xBF: a comment\r\n"
                              "id: 7\r\nretry: 500\r\ndata: \r\n\r\n"       /* a priming event: empty data */
                              "event: message\ndata: {\"x\":\ndata: 1}\n\n" /* two data lines join with \n */
                              "data:no-space\rid: bad\0id\r\r";               /* CR endings; an id with a NUL is ignored */
  static const char part2[] = "retry: 12x\nid\ndata: last\n\n"              /* a bad retry is ignored; "id" alone clears */
                              "data: unterminated";                          /* never dispatched */
  size_t chunks[] = {1, 2, 3, 7, 1000};
  for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
    mcp_client_sse s;
    mcp_client__sse_init(&s, 1024);
    got g = {0};
    FEED(&s, part1, chunks[k], &g, 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.items[0], "");
    assert_string_equal(g.items[1], "{\"x\":\n1}");
    assert_string_equal(g.event[1], "message");
    assert_string_equal(g.items[2], "no-space");
    assert_string_equal(s.last_id, "7");
    assert_int_equal(s.retry_ms, 500);
    FEED(&s, part2, chunks[k], &g, 0);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.items[3], "last");
    assert_string_equal(s.last_id, "");
    assert_int_equal(s.retry_ms, 500);
    mcp_client__sse_deinit(&s);
  }
  /* caps: a data line over the cap drops its event (reported), the next event is whole */
  mcp_client_sse s;
  mcp_client__sse_init(&s, 32);
  got g = {0};
  FEED(&s, "data: 0123456789012345678901234567890123456789\ndata: more\n\ndata: ok\n\n", 5, &g, ERR_TOOBIG);
  assert_int_equal(g.n, 1);
  assert_string_equal(g.items[0], "ok");
  FEED(&s, "data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\ndata: ok2\n\nretry: 99999999999\n\n", 3, &g,
       ERR_TOOBIG); /* many lines adding up past the cap */
  assert_int_equal(g.n, 2);
  assert_string_equal(g.items[1], "ok2");
  assert_int_equal(s.retry_ms, MCP_CLIENT_RETRY_MAX_MS);
  mcp_client__sse_deinit(&s);
}

#define PARSE(lit, ...) mcp_client__parse(lit, sizeof lit - 1, __VA_ARGS__)
static void test_parse(void **state) {
  (void)state;
  json_t *m = NULL;
  char err[300];
  assert_int_equal(PARSE("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}", &m, err, sizeof err),
                   MCP_CLIENT_MSG_RESPONSE);
  json_decref(m);
  assert_int_equal(PARSE("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"ping\"}", &m, err, sizeof err),
                   MCP_CLIENT_MSG_REQUEST);
  json_decref(m);
  assert_int_equal(PARSE("{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", &m, err, sizeof err),
                   MCP_CLIENT_MSG_NOTIFICATION);
  json_decref(m);
  assert_int_equal(PARSE("[1]", &m, err, sizeof err), ERR_FORMAT);
  assert_int_equal(PARSE("{\"a\":1,\"a\":2}", &m, err, sizeof err), ERR_FORMAT);
  assert_int_equal(PARSE("nope", &m, err, sizeof err), ERR_FORMAT);
  assert_null(m);
  assert_int_equal(mcp_client__parse("{}", (size_t)MCP_CLIENT_MAX_MSG + 1, &m, err, sizeof err), ERR_TOOBIG);
}

static json_t *answer_of(const char *req) {
  json_t *r = json_loads(req, 0, NULL);
  assert_non_null(r);
  json_t *a = mcp_client__answer(r);
  json_decref(r);
  assert_non_null(a);
  return a;
}

static void test_answers(void **state) {
  (void)state;
  json_t *a = answer_of("{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}");
  assert_int_equal(json_integer_value(json_object_get(a, "id")), 5);
  assert_int_equal(json_object_size(json_object_get(a, "result")), 0);
  json_decref(a);
  a = answer_of("{\"jsonrpc\":\"2.0\",\"id\":\"e\",\"method\":\"elicitation/create\",\"params\":{\"message\":\"m\","
                "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"default\":\"x\"},"
                "\"n\":{\"type\":\"number\",\"default\":9.5},\"b\":{\"type\":\"boolean\",\"default\":false},"
                "\"m\":{\"type\":\"array\",\"default\":[\"p\",\"q\"]},\"o\":{\"type\":\"string\"},"
                "\"bad\":{\"default\":{\"nested\":1}}},\"required\":[\"s\"]}}}");
  json_t *r = json_object_get(a, "result");
  assert_string_equal(json_string_value(json_object_get(r, "action")), "accept");
  json_t *c = json_object_get(r, "content");
  assert_string_equal(json_string_value(json_object_get(c, "s")), "x");
  assert_true(json_real_value(json_object_get(c, "n")) == 9.5);
  assert_true(json_is_false(json_object_get(c, "b")));
  assert_int_equal(json_array_size(json_object_get(c, "m")), 2);
  assert_null(json_object_get(c, "o"));   /* no default: left out */
  assert_null(json_object_get(c, "bad")); /* not a primitive: left out */
  json_decref(a);
  /* a required field without a default, or URL mode: declined */
  a = answer_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"elicitation/create\",\"params\":{\"message\":\"m\","
                "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"o\":{\"type\":\"string\"}},\"required\":[\"o\"]}}}");
  assert_string_equal(json_string_value(json_object_get(json_object_get(a, "result"), "action")), "decline");
  json_decref(a);
  a = answer_of("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"elicitation/create\",\"params\":{\"mode\":\"url\",\"url\":\"x\"}}");
  assert_string_equal(json_string_value(json_object_get(json_object_get(a, "result"), "action")), "decline");
  json_decref(a);
  const char *refused[] = {"roots/list", "sampling/createMessage", "tools/list"};
  for (size_t i = 0; i < 3; i++) {
    char req[200];
    snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\"}", refused[i]);
    a = answer_of(req);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "error"), "code")), -32601);
    json_decref(a);
  }
}

static void test_agent_views(void **state) {
  (void)state;
  json_t *tools = json_loads("[{\"name\":\"search\",\"description\":\"Finds\",\"inputSchema\":{\"type\":\"object\","
                             "\"properties\":{\"q\":{\"type\":\"string\"}}}},{\"name\":\"no.dots\"},{\"name\":\"bare\"},"
                             "{\"name\":\"a_very_long_tool_name_that_goes_past_the_limit_of_sixty_four\"},{\"x\":1}]",
                             0, NULL);
  json_t *specs = mcp_client_tool_specs("web", tools);
  assert_int_equal(json_array_size(specs), 2);
  json_t *f0 = json_object_get(json_array_get(specs, 0), "function");
  assert_string_equal(json_string_value(json_object_get(json_array_get(specs, 0), "type")), "function");
  assert_string_equal(json_string_value(json_object_get(f0, "name")), "web__search");
  assert_string_equal(json_string_value(json_object_get(f0, "description")), "Finds");
  assert_non_null(json_object_get(json_object_get(json_object_get(f0, "parameters"), "properties"), "q"));
  json_t *f1 = json_object_get(json_array_get(specs, 1), "function");
  assert_string_equal(json_string_value(json_object_get(f1, "name")), "web__bare");
  assert_string_equal(json_string_value(json_object_get(json_object_get(f1, "parameters"), "type")), "object");
  json_decref(specs);
  specs = mcp_client_tool_specs("bad server", tools);
  assert_int_equal(json_array_size(specs), 0);
  json_decref(specs);
  json_decref(tools);

  json_t *r = json_loads("{\"content\":[{\"type\":\"text\",\"text\":\"héllo\"},{\"type\":\"image\",\"data\":\"AAAA\","
                         "\"mimeType\":\"image/png\"},{\"type\":\"resource\",\"resource\":{\"uri\":\"x:1\",\"text\":\"doc\"}},"
                         "{\"type\":\"resource_link\",\"uri\":\"x:2\",\"name\":\"n\"},{\"type\":\"new\"}],\"isError\":true}",
                         0, NULL);
  int is_error = 0;
  char *text = mcp_client_result_text(r, 1000, &is_error);
  assert_string_equal(text, "héllo\n[image image/png, 4 bytes of base64]\ndoc\n[link x:2]\n[new content]");
  assert_true(is_error);
  free(text);
  text = mcp_client_result_text(r, 2, NULL); /* cut, not inside the é */
  assert_string_equal(text, "h");
  free(text);
  json_decref(r);
  r = json_loads("{\"content\":[],\"structuredContent\":{\"sum\":3}}", 0, NULL);
  text = mcp_client_result_text(r, 1000, &is_error);
  assert_string_equal(text, "{\"sum\":3}");
  assert_false(is_error);
  free(text);
  json_decref(r);
}

/* ---- stdio ------------------------------------------------------------------------------ */
static int have_node(void) { return tu_sh("command -v node >/dev/null 2>&1") == 0; }

#define REQUIRE_NODE()                                                                  \
  do {                                                                                  \
    if (!have_node()) {                                                                 \
      print_message("no 'node' in PATH: the stdio tests need it; skipping\n");          \
      skip();                                                                           \
    }                                                                                   \
  } while (0)

static mcp_client *open_echo(const char *extra_arg, int timeout_ms) {
  const char *args[] = {ECHO, "--flag", extra_arg, NULL};
  const char *env[] = {"MCP_TEST_VAR=hello there", "PATH_EXTRA=1", NULL};
  mcp_client_cfg cfg = {.name = "echo", .command = "node", .args = args, .env = env, .timeout_ms = timeout_ms};
  mcp_client *c = NULL;
  char err[400];
  int rc = mcp_client_open(&cfg, &c, err, sizeof err);
  if (rc) print_message("open: %s\n", err);
  assert_int_equal(rc, 0);
  return c;
}

/* Calls tool with args (JSON text) and returns the first text of its result (static). */
static const char *call_text(mcp_client *c, const char *tool, const char *args, int *rc_out, char *err, size_t cap) {
  static char text[8192];
  json_t *a = args ? json_loads(args, 0, NULL) : NULL;
  json_t *res = NULL;
  *rc_out = mcp_client_call_tool(c, tool, a, 0, &res, err, cap);
  json_decref(a);
  text[0] = 0;
  if (!*rc_out) {
    const char *t = json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
    snprintf(text, sizeof text, "%s%s", json_is_true(json_object_get(res, "isError")) ? "ERROR:" : "", t ? t : "");
  }
  json_decref(res);
  return text;
}

static void test_stdio_basics(void **state) {
  (void)state;
  REQUIRE_NODE();
  mcp_client *c = open_echo(NULL, 0);
  const json_t *init = mcp_client_server_info(c);
  assert_string_equal(json_string_value(json_object_get(json_object_get(init, "serverInfo"), "name")), "echo");
  /* the server echoes the capabilities we declared: elicitation (form) only */
  json_t *caps = json_object_get(init, "_clientCaps");
  assert_non_null(json_object_get(json_object_get(caps, "elicitation"), "form"));
  assert_null(json_object_get(caps, "sampling"));
  assert_null(json_object_get(caps, "roots"));
  json_t *tools = NULL;
  char err[600];
  assert_int_equal(mcp_client_list_tools(c, &tools, err, sizeof err), 0);
  assert_int_equal(json_array_size(tools), 12); /* two pages */
  assert_string_equal(json_string_value(json_object_get(json_array_get(tools, 11), "name")), "fail");
  json_decref(tools);
  int rc;
  assert_string_equal(call_text(c, "echo", "{\"text\":\"héllo\"}", &rc, err, sizeof err), "héllo");
  assert_string_equal(call_text(c, "add", "{\"a\":2,\"b\":40}", &rc, err, sizeof err), "2+40=42");
  /* arguments and environment from the config reach the child */
  json_t *env = json_loads(call_text(c, "env", "{\"name\":\"MCP_TEST_VAR\"}", &rc, err, sizeof err), 0, NULL);
  assert_string_equal(json_string_value(json_object_get(env, "value")), "hello there");
  assert_string_equal(json_string_value(json_array_get(json_object_get(env, "argv"), 0)), "--flag");
  json_decref(env);
  /* a tool error is a result; an unknown tool is a JSON-RPC error */
  assert_string_equal(call_text(c, "fail", NULL, &rc, err, sizeof err), "ERROR:it failed on purpose");
  call_text(c, "nope", NULL, &rc, err, sizeof err);
  assert_int_equal(rc, MCP_CLIENT_ERR_RPC);
  assert_non_null(strstr(err, "-32602 Unknown tool: nope"));
  assert_non_null(strstr(err, "'echo'"));
  /* a line that is not JSON is skipped; notifications are taken in passing */
  assert_string_equal(call_text(c, "garbage", NULL, &rc, err, sizeof err), "after garbage");
  assert_string_equal(call_text(c, "notify", NULL, &rc, err, sizeof err), "notified");
  /* the server's requests: elicitation with defaults (or declined), ping, and no roots or sampling */
  json_t *el = json_loads(call_text(c, "elicit", NULL, &rc, err, sizeof err), 0, NULL);
  json_t *er = json_object_get(el, "result");
  assert_string_equal(json_string_value(json_object_get(er, "action")), "accept");
  assert_string_equal(json_string_value(json_object_get(json_object_get(er, "content"), "name")), "Ann");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(er, "content"), "age")), 42);
  assert_string_equal(json_string_value(json_object_get(json_object_get(er, "content"), "color")), "blue");
  json_decref(el);
  assert_non_null(strstr(call_text(c, "elicit", "{\"required\":true}", &rc, err, sizeof err), "\"decline\""));
  assert_non_null(strstr(call_text(c, "ask", "{\"method\":\"ping\"}", &rc, err, sizeof err), "\"result\":{}"));
  assert_non_null(strstr(call_text(c, "ask", "{\"method\":\"roots/list\"}", &rc, err, sizeof err), "-32601"));
  assert_non_null(strstr(call_text(c, "ask", "{\"method\":\"sampling/createMessage\"}", &rc, err, sizeof err), "-32601"));
  /* bad arguments are refused before anything is sent */
  json_t *arr = json_array();
  json_t *res = NULL;
  assert_int_equal(mcp_client_call_tool(c, "echo", arr, 0, &res, err, sizeof err), ERR_INVAL);
  json_decref(arr);
  long long t0 = now_ms();
  mcp_client_close(c); /* stdin closed: the child exits at once */
  assert_true(now_ms() - t0 < 1500);
}

static void test_stdio_timeout_and_cap(void **state) {
  (void)state;
  REQUIRE_NODE();
  mcp_client *c = open_echo(NULL, 0);
  char err[600];
  int rc;
  json_t *args = json_pack("{s:i}", "ms", 3000), *res = NULL;
  long long t0 = now_ms();
  assert_int_equal(mcp_client_call_tool(c, "sleep", args, 300, &res, err, sizeof err), -ETIMEDOUT);
  long long took = now_ms() - t0;
  assert_true(took >= 290 && took < 1500);
  assert_non_null(strstr(err, "within 300 ms"));
  json_decref(args);
  /* the server was told: notifications/cancelled named the request */
  json_t *ids = json_loads(call_text(c, "cancelled", NULL, &rc, err, sizeof err), 0, NULL);
  assert_int_equal(rc, 0);
  assert_int_equal(json_array_size(ids), 1);
  assert_int_equal(json_integer_value(json_array_get(ids, 0)), 2); /* initialize was 1, the sleep 2 */
  json_decref(ids);
  /* a line over the cap: the call fails with the reason, the line is skipped, the session goes on */
  args = json_pack("{s:i}", "bytes", (int)MCP_CLIENT_MAX_MSG + 1000);
  assert_int_equal(mcp_client_call_tool(c, "big", args, 0, &res, err, sizeof err), -EPROTO);
  assert_non_null(strstr(err, "over 4194304 bytes"));
  json_decref(args);
  args = json_pack("{s:i}", "bytes", 100000); /* large but under the cap */
  assert_int_equal(mcp_client_call_tool(c, "big", args, 0, &res, err, sizeof err), 0);
  assert_int_equal(strlen(json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"))),
                   100000);
  json_decref(res);
  json_decref(args);
  assert_string_equal(call_text(c, "echo", "{\"text\":\"still here\"}", &rc, err, sizeof err), "still here");
  mcp_client_close(c);
}

static void test_stdio_dead_child(void **state) {
  (void)state;
  REQUIRE_NODE();
  mcp_client *c = open_echo(NULL, 0);
  char err[600];
  int rc;
  call_text(c, "crash", "{\"code\":3}", &rc, err, sizeof err);
  assert_int_equal(rc, -ECONNRESET);
  assert_non_null(strstr(err, "exited with status 3"));
  long long t0 = now_ms();
  call_text(c, "echo", "{\"text\":\"x\"}", &rc, err, sizeof err); /* at once, not after a timeout */
  assert_int_equal(rc, -ECONNRESET);
  assert_true(now_ms() - t0 < 200);
  mcp_client_close(c);

  /* a program that is not there, a bad environment entry, a config with both or neither */
  mcp_client_cfg cfg = {.command = "apiary-no-such-program"};
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), -ENOENT);
  assert_non_null(strstr(err, "no such program"));
  const char *bad_env[] = {"NOEQUALS", NULL};
  cfg = (mcp_client_cfg){.command = "node", .env = bad_env};
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), ERR_INVAL);
  cfg = (mcp_client_cfg){.command = "node", .url = "http://x/"};
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), ERR_INVAL);
  /* a program that exits at once without speaking MCP */
  const char *args[] = {"-e", "process.stderr.write('no MCP here\\n'); process.exit(7)", NULL};
  cfg = (mcp_client_cfg){.command = "node", .args = args};
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), -ECONNRESET);
  assert_non_null(strstr(err, "initialize"));
  assert_non_null(strstr(err, "status 7"));
}

static void test_stdio_stubborn_close(void **state) {
  (void)state;
  REQUIRE_NODE();
  mcp_client *c = open_echo("--stubborn", 0);
  char err[600];
  int rc;
  json_t *env = json_loads(call_text(c, "env", "{\"name\":\"X\"}", &rc, err, sizeof err), 0, NULL);
  pid_t pid = (pid_t)json_integer_value(json_object_get(env, "pid"));
  json_decref(env);
  assert_true(pid > 0);
  long long t0 = now_ms();
  mcp_client_close(c); /* stdin closed (ignored), SIGTERM (ignored), SIGKILL */
  long long took = now_ms() - t0;
  assert_true(took >= 3900 && took < 7000);
  assert_int_equal(kill(pid, 0), -1); /* gone, and reaped */
  assert_int_equal(errno, ESRCH);
}

/* ---- the CLI: apiary mcp tools|call ---------------------------------------------------- */
static void test_cli(void **state) {
  (void)state;
  REQUIRE_NODE();
  assert_int_equal(apiary("mcp tools --json --stdio 'node " ECHO "'"), 0);
  json_t *j = json_loads(out, 0, NULL);
  assert_int_equal(json_array_size(j), 12);
  json_decref(j);
  assert_int_equal(apiary("mcp call --env MCP_TEST_VAR=from-cli env '{\"name\":\"MCP_TEST_VAR\"}' -- node " ECHO " --x"), 0);
  assert_non_null(strstr(out, "\"value\":\"from-cli\""));
  assert_non_null(strstr(out, "\"argv\":[\"--x\"]"));
  assert_int_equal(apiary("mcp call --json --stdio 'node " ECHO "' add '{\"a\":1,\"b\":2}'"), 0);
  assert_non_null(strstr(out, "{\"content\":[{\"type\":\"text\",\"text\":\"1+2=3\"}]}"));
  /* a tool error and a protocol error exit 1, with the reason */
  assert_int_equal(apiary("mcp call --stdio 'node " ECHO "' fail"), 1);
  assert_non_null(strstr(errbuf, "it failed on purpose"));
  assert_int_equal(apiary("mcp call --stdio 'node " ECHO "' nope"), 1);
  assert_non_null(strstr(errbuf, "Unknown tool: nope"));
  /* usage: no server, no tool, bad JSON, both forms of stdio */
  assert_int_equal(apiary("mcp tools"), 2);
  assert_int_equal(apiary("mcp call http://127.0.0.1:1/mcp"), 2);
  assert_int_equal(apiary("mcp call http://127.0.0.1:1/mcp t '{nope'"), 2);
  assert_int_equal(apiary("mcp call http://127.0.0.1:1/mcp t '[1]'"), 2);
  assert_int_equal(apiary("mcp tools --stdio 'node x' -- node y"), 2);
  assert_int_equal(apiary("mcp tools --stdio 'node \"unclosed'"), 2);
  assert_int_equal(apiary("mcp tools --help"), 0);
  assert_non_null(strstr(out, "--bearer"));
  assert_int_equal(apiary("mcp --help"), 0);
  assert_non_null(strstr(out, "apiary mcp tools"));
  /* the client against the node's own stdio server (apiary mcp serve), no node running */
  char dir[256];
  tu_tmpdir(dir, sizeof dir);
  assert_int_equal(apiary("mcp tools --stdio '%s mcp serve --home %s/h'", tu_apiary_bin(), dir), 0);
  assert_non_null(strstr(out, "generate"));
  assert_int_equal(apiary("mcp call --stdio '%s mcp --home %s/h' peers", tu_apiary_bin(), dir), 1);
  assert_non_null(strstr(errbuf, "no node is running"));
  tu_rm_rf(dir);
}

/* ---- HTTP against a node ---------------------------------------------------------------- */
static int node_port(const char *home) {
  int port = 0;
  for (int i = 0; i < 200 && !port; i++) {
    if (apiary("status --home %s --json", home) == 0) {
      json_t *st = json_loads(out, 0, NULL);
      port = (int)json_integer_value(json_object_get(st, "http_port"));
      json_decref(st);
    }
    if (!port) usleep(50000);
  }
  return port;
}

static pid_t start_node(const char *home, const char *http) {
  char log[400];
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
                        "--http", http, NULL};
  return tu_spawn(argv, log);
}

static pid_t node_pid; /* the node of test_http_node, for its teardown when an assertion fails */

static int stop_node(void **state) {
  (void)state;
  if (node_pid > 0) {
    kill(node_pid, SIGTERM);
    tu_wait_exit(node_pid, 10000);
    node_pid = 0;
  }
  return 0;
}

static void test_http_node(void **state) {
  (void)state;
  char dir[256], home[300], cfgp[400], tok[128], url[128], err[800];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  assert_int_equal(apiary("init --home %s", home), 0);
  snprintf(cfgp, sizeof cfgp, "%s/config.toml", home);
  assert_int_equal(tu_sh("sed -i 's/^conformance_fixtures = .*/conformance_fixtures = true/' %s", cfgp), 0);
  assert_int_equal(apiary("token --home %s create --json", home), 0);
  json_t *j = json_loads(out, 0, NULL);
  snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(j, "token")));
  json_decref(j);
  pid_t pid = node_pid = start_node(home, "127.0.0.1:0");
  int port = node_port(home);
  assert_true(port > 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/mcp", port);

  mcp_client_cfg cfg = {.name = "node", .url = url, .bearer = tok};
  mcp_client *c = NULL;
  int rc = mcp_client_open(&cfg, &c, err, sizeof err);
  if (rc) print_message("open: %s\n", err);
  assert_int_equal(rc, 0);
  assert_string_equal(json_string_value(json_object_get(mcp_client_server_info(c), "protocolVersion")), "2025-11-25");
  json_t *tools = NULL;
  assert_int_equal(mcp_client_list_tools(c, &tools, err, sizeof err), 0);
  int have_generate = 0, have_fixture = 0;
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *n = json_string_value(json_object_get(t, "name"));
    have_generate |= !strcmp(n, "generate");
    have_fixture |= !strcmp(n, "test_simple_text");
  }
  assert_true(have_generate && have_fixture);
  json_decref(tools);
  /* tools/call is answered as an event stream; progress and log messages come first */
  assert_string_equal(call_text(c, "test_simple_text", NULL, &rc, err, sizeof err),
                      "This is a simple text response for testing.");
  call_text(c, "test_tool_with_progress", NULL, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  call_text(c, "test_tool_with_logging", NULL, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(call_text(c, "test_error_handling", NULL, &rc, err, sizeof err), "ERROR:"));
  /* the node asks us mid-call (elicitation/create on the call's stream); we answer by POST */
  const char *el = call_text(c, "test_elicitation_sep1034_defaults", NULL, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(el, "action=accept"));
  assert_non_null(strstr(el, "\"name\":\"John Doe\""));
  assert_non_null(strstr(el, "\"age\":30"));
  /* sampling is not declared: the node's tool says so */
  assert_non_null(strstr(call_text(c, "test_sampling", "{\"prompt\":\"hi\"}", &rc, err, sizeof err), "sampling"));
  call_text(c, "nope", NULL, &rc, err, sizeof err);
  assert_int_equal(rc, MCP_CLIENT_ERR_RPC);
  assert_non_null(strstr(err, "-32602"));

  /* The node restarts on the same port: the session is gone (404); the client initializes
   * again and the call goes through. */
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  node_pid = 0;
  char http[64];
  snprintf(http, sizeof http, "127.0.0.1:%d", port);
  pid = node_pid = start_node(home, http);
  assert_int_equal(node_port(home), port);
  assert_string_equal(call_text(c, "test_simple_text", NULL, &rc, err, sizeof err),
                      "This is a simple text response for testing.");
  mcp_client_close(c);

  /* no token, a wrong one: refused with what to do */
  cfg.bearer = NULL;
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), -EACCES);
  assert_non_null(strstr(err, "--bearer"));
  cfg.bearer = "apy_wrong";
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), -EACCES);
  assert_non_null(strstr(err, "not accepted"));
  cfg.bearer = "two\nlines";
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), ERR_INVAL);
  /* not an MCP endpoint */
  char bad[160];
  snprintf(bad, sizeof bad, "http://127.0.0.1:%d/v1/nothing", port);
  cfg = (mcp_client_cfg){.url = bad, .bearer = tok};
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), -EPROTO);
  assert_non_null(strstr(err, "HTTP 404"));
  kill(pid, SIGTERM);
  assert_int_equal(tu_wait_exit(pid, 10000), 0);
  node_pid = 0;
  /* nobody there */
  cfg = (mcp_client_cfg){.url = url, .bearer = tok, .timeout_ms = 3000};
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), -ECONNREFUSED);
  assert_non_null(strstr(err, "cannot reach"));
  cfg.url = "ftp://x/";
  assert_int_equal(mcp_client_open(&cfg, &c, err, sizeof err), ERR_INVAL);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lines),
      cmocka_unit_test(test_sse),
      cmocka_unit_test(test_parse),
      cmocka_unit_test(test_answers),
      cmocka_unit_test(test_agent_views),
      cmocka_unit_test(test_stdio_basics),
      cmocka_unit_test(test_stdio_timeout_and_cap),
      cmocka_unit_test(test_stdio_dead_child),
      cmocka_unit_test(test_stdio_stubborn_close),
      cmocka_unit_test(test_cli),
      cmocka_unit_test_teardown(test_http_node, stop_node),
  };
  return cmocka_run_group_tests_name("mcp_client", tests, NULL, NULL);
}
