/* Agents on a real node: a task whose first model call must use a tool (grammar-constrained
 * on the tiny reference model) fetches from a local HTTP server and ends; a SIGKILL of the
 * node while that fetch is in flight does not run it twice after the restart (http_fetch
 * is not idempotent: the step is marked interrupted and the model is told); a call that
 * needs the owner's approval waits across a SIGKILL and runs once when approved; a waiting
 * task can be canceled; the CLI's errors. The HTTP server counts requests in a file, so
 * "ran once" is counted by something other than the node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../support/testutil.h"

static char out[1 << 16], err[1 << 16];
#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

static char dir[256], home[300];
static pid_t node_pid, srv_pid;
static int srv_port;

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, (struct sockaddr *)&a, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  close(fd);
  return ntohs(a.sin_port);
}

static void start_node(void) {
  char log[400];
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", home, "--no-lan", "--no-dht", "--listen", "127.0.0.1:0",
                        "--http", "127.0.0.1:0", NULL};
  node_pid = tu_spawn(argv, log);
  for (int i = 0; i < 200; i++) {
    if (apiary("status --home %s", home) == 0) return;
    usleep(50000);
  }
  fail_msg("the node did not start (see %s)", log);
}

static void kill_node(void) {
  kill(node_pid, SIGKILL);
  tu_wait_exit(node_pid, 5000);
}

/* Requests the HTTP server has answered or begun (its own count). */
static int hits(void) {
  char path[400], b[32] = "";
  snprintf(path, sizeof path, "%s/hits", dir);
  FILE *f = fopen(path, "r");
  if (f) {
    if (!fgets(b, sizeof b, f)) b[0] = 0;
    fclose(f);
  }
  return atoi(b);
}

static void set_slow(int on) {
  char path[400];
  snprintf(path, sizeof path, "%s/slow", dir);
  if (on) tu_sh("touch %s", path);
  else unlink(path);
}

static json_t *task(long long id) {
  if (apiary("task --home %s show %lld --json", home, id)) fail_msg("task show: %s", err);
  json_t *j = json_loads(out, 0, NULL);
  assert_non_null(j);
  return j;
}

static const char *state_of(json_t *t) { return json_string_value(json_object_get(json_object_get(t, "task"), "state")); }

/* Waits until the task's state is one of the '|'-separated states; returns the task. */
static json_t *wait_state(long long id, const char *states, int secs) {
  for (int i = 0; i < secs * 10; i++) {
    json_t *t = task(id);
    char want[64];
    snprintf(want, sizeof want, "|%s|", states);
    char have[24];
    snprintf(have, sizeof have, "|%s|", state_of(t));
    if (strstr(want, have)) return t;
    json_decref(t);
    usleep(100000);
  }
  fail_msg("task %lld never reached %s", id, states);
  return NULL;
}

static long long run_task(const char *agent, const char *text) {
  if (apiary("task --home %s run %s '%s' --json", home, agent, text)) fail_msg("task run: %s", err);
  json_t *j = json_loads(out, 0, NULL);
  long long id = (long long)json_integer_value(json_object_get(j, "id"));
  json_decref(j);
  assert_true(id > 0);
  return id;
}

static int setup(void **state) {
  (void)state;
  if (!tu_shared()) return 0;
  char model[1024], script[400], log[400];
  tu_tmpdir(dir, sizeof dir);
  snprintf(home, sizeof home, "%s/n", dir);
  assert_int_equal(apiary("init --home %s", home), 0);
  tu_shared_path(model, sizeof model, "testdata/tiny-spm4k-Q8_0.gguf");
  assert_int_equal(apiary("model pull --home %s %s --name tiny", home, model), 0);
  /* a web server that counts requests (in DIR/hits, before answering) and, while DIR/slow
   * exists, takes 4 s to answer */
  srv_port = free_port();
  snprintf(script, sizeof script, "%s/srv.py", dir);
  FILE *f = fopen(script, "w");
  fprintf(f,
          "import http.server, os, time\n"
          "D = r'%s'\n"
          "class H(http.server.BaseHTTPRequestHandler):\n"
          "    def do_GET(self):\n"
          "        p = os.path.join(D, 'hits')\n"
          "        n = int(open(p).read() or 0) if os.path.exists(p) else 0\n"
          "        open(p, 'w').write(str(n + 1))\n"
          "        if os.path.exists(os.path.join(D, 'slow')): time.sleep(4)\n"
          "        b = b'the secret word is apricot'\n"
          "        self.send_response(200); self.send_header('Content-Length', str(len(b))); self.end_headers()\n"
          "        self.wfile.write(b)\n"
          "    def log_message(self, *a): pass\n"
          "http.server.ThreadingHTTPServer(('127.0.0.1', %d), H).serve_forever()\n",
          dir, srv_port);
  fclose(f);
  snprintf(log, sizeof log, "%s/srv.log", dir);
  const char *argv[] = {"/usr/bin/python3", script, NULL};
  srv_pid = tu_spawn(argv, log);
  start_node();
  char allow[128];
  snprintf(allow, sizeof allow, "http://127.0.0.1:%d/", srv_port);
  assert_int_equal(apiary("agent --home %s add fetcher --model tiny --instructions 'Fetch the page.' --tool http_fetch "
                          "--fetch-allow %s --tool-choice required --max-steps 2 --max-tokens 600 --seed 3",
                          home, allow), 0);
  assert_int_equal(apiary("agent --home %s add careful --model tiny --tool http_fetch --fetch-allow %s --approve "
                          "http_fetch --tool-choice required --max-steps 2 --max-tokens 600 --seed 5",
                          home, allow), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (node_pid > 0) kill_node();
  if (srv_pid > 0) {
    kill(srv_pid, SIGKILL);
    tu_wait_exit(srv_pid, 5000);
  }
  if (dir[0]) tu_rm_rf(dir);
  return 0;
}

/* The steps of a finished task: model (one http_fetch call) → tool → model ... */
static void check_first_steps(json_t *t, const char *tool_state) {
  json_t *steps = json_object_get(json_object_get(t, "task"), "steps");
  assert_true(json_array_size(steps) >= 2);
  json_t *s0 = json_array_get(steps, 0), *s1 = json_array_get(steps, 1);
  assert_string_equal(json_string_value(json_object_get(s0, "kind")), "model");
  json_t *calls = json_object_get(json_object_get(s0, "output"), "calls");
  assert_int_equal(json_array_size(calls), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(calls, 0), "name")), "http_fetch");
  char allow[128];
  snprintf(allow, sizeof allow, "http://127.0.0.1:%d/", srv_port);
  const char *url = json_string_value(json_object_get(json_object_get(json_array_get(calls, 0), "arguments"), "url"));
  assert_non_null(url);
  assert_true(!strncmp(url, allow, strlen(allow)));
  assert_true(json_integer_value(json_object_get(s0, "tokens")) > 0);
  assert_string_equal(json_string_value(json_object_get(s1, "kind")), "tool");
  assert_string_equal(json_string_value(json_object_get(s1, "tool")), "http_fetch");
  assert_string_equal(json_string_value(json_object_get(s1, "state")), tool_state);
}

static void test_task_runs(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  int h0 = hits();
  long long id = run_task("fetcher", "What is the secret word?");
  json_t *t = wait_state(id, "done|failed", 120);
  check_first_steps(t, "done");
  json_t *s1 = json_array_get(json_object_get(json_object_get(t, "task"), "steps"), 1);
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(s1, "output"), "text")), "apricot"));
  /* a failed end may only be the step limit (the tiny model may call again) */
  if (!strcmp(state_of(t), "failed"))
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(t, "task"), "error")), "step limit"));
  assert_int_equal(hits() - h0, 1 + (int)(json_array_size(json_object_get(json_object_get(t, "task"), "steps")) > 3));
  json_decref(t);
  /* listed, with its totals */
  assert_int_equal(apiary("task --home %s list --json", home), 0);
  assert_non_null(strstr(out, "\"fetcher\""));
}

static void test_kill_mid_tool(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  set_slow(1);
  int h0 = hits();
  long long id = run_task("fetcher", "Fetch it again.");
  for (int i = 0; i < 600 && hits() == h0; i++) usleep(50000); /* the fetch is in flight */
  assert_int_equal(hits(), h0 + 1);
  kill_node();
  set_slow(0);
  start_node();
  json_t *t = wait_state(id, "done|failed", 120);
  check_first_steps(t, "failed"); /* interrupted, not run again */
  json_t *s1 = json_array_get(json_object_get(json_object_get(t, "task"), "steps"), 1);
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(s1, "output"), "text")), "Interrupted"));
  json_t *steps = json_object_get(json_object_get(t, "task"), "steps");
  /* the interrupted call was not repeated; a later call of the model's own is a new step */
  int later = 0;
  for (size_t i = 2; i < json_array_size(steps); i++)
    later += !strcmp(json_string_value(json_object_get(json_array_get(steps, i), "kind")), "tool");
  assert_int_equal(hits(), h0 + 1 + later);
  json_decref(t);
}

static void test_approval_across_kill(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  int h0 = hits();
  long long id = run_task("careful", "Fetch, with permission.");
  json_t *t = wait_state(id, "waiting", 60);
  json_t *steps = json_object_get(json_object_get(t, "task"), "steps");
  assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 1), "state")), "awaiting approval");
  json_decref(t);
  assert_int_equal(hits(), h0);
  kill_node();
  start_node();
  usleep(500000);
  t = task(id);
  assert_string_equal(state_of(t), "waiting"); /* still waiting, nothing ran */
  json_decref(t);
  assert_int_equal(hits(), h0);
  assert_int_equal(apiary("task --home %s approve %lld", home, id), 0);
  t = wait_state(id, "done|failed", 120);
  check_first_steps(t, "done");
  json_decref(t);
  assert_true(hits() >= h0 + 1);
  /* a second task waits too; cancel it */
  int h1 = hits();
  id = run_task("careful", "Fetch again.");
  json_decref(wait_state(id, "waiting", 60));
  assert_int_equal(apiary("task --home %s cancel %lld", home, id), 0);
  t = wait_state(id, "canceled", 30);
  json_decref(t);
  assert_int_equal(hits(), h1);
  assert_int_equal(apiary("task --home %s cancel %lld", home, id), 1); /* already ended */
  assert_int_equal(apiary("task --home %s approve %lld", home, id), 1); /* nothing waits */
}

/* An MCP server's tool as the agent's: a stdio server written in JavaScript for this test
 * (tests/cli/mcp_notes_server.js), configured in the definition with its environment; the
 * forced first call appends one note, which the server wrote to its file: exactly the note
 * the step recorded, once. */
static void test_mcp_tool(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char def[400], notes[400], server[1200], cmd[2400];
  snprintf(def, sizeof def, "%s/noter.json", dir);
  snprintf(notes, sizeof notes, "%s/notes.txt", dir);
  char cwd[800];
  assert_non_null(getcwd(cwd, sizeof cwd)); /* tests/run runs suites from the repository's root */
  snprintf(server, sizeof server, "%s/tests/cli/mcp_notes_server.js", cwd);
  FILE *f = fopen(def, "w");
  fprintf(f, "{\"name\":\"noter\",\"model\":\"tiny\",\"instructions\":\"Take a note.\",\"tools\":[\"notes__append_note\"],"
             "\"tool_choice\":\"required\",\"max_steps\":2,\"max_tokens\":400,\"seed\":11,"
             "\"mcp\":[{\"name\":\"notes\",\"command\":\"node\",\"args\":[\"%s\"],\"env\":{\"NOTES_FILE\":\"%s\"}}]}", server, notes);
  fclose(f);
  assert_int_equal(apiary("agent --home %s add --file %s", home, def), 0);
  long long id = run_task("noter", "Note that the meeting moved to Friday.");
  json_t *t = wait_state(id, "done|failed", 120);
  json_t *steps = json_object_get(json_object_get(t, "task"), "steps");
  json_t *s0 = json_array_get(steps, 0), *s1 = json_array_get(steps, 1);
  json_t *call = json_array_get(json_object_get(json_object_get(s0, "output"), "calls"), 0);
  assert_string_equal(json_string_value(json_object_get(call, "name")), "notes__append_note");
  const char *note = json_string_value(json_object_get(json_object_get(call, "arguments"), "note"));
  assert_non_null(note);
  assert_true(strlen(note) <= 24);
  assert_string_equal(json_string_value(json_object_get(s1, "state")), "done");
  assert_non_null(strstr(json_string_value(json_object_get(json_object_get(s1, "output"), "text")), "noted"));
  snprintf(cmd, sizeof cmd, "cat %s", notes);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  char want[64];
  snprintf(want, sizeof want, "%s\n", note);
  /* one line per append the model made (a later step may append again) */
  int appends = 0;
  for (size_t i = 1; i < json_array_size(steps); i++) {
    json_t *st = json_array_get(steps, i);
    if (!strcmp(json_string_value(json_object_get(st, "kind")), "tool") &&
        !strcmp(json_string_value(json_object_get(st, "state")), "done"))
      appends++;
  }
  int lines = 0;
  for (const char *p = out; *p; p++) lines += *p == '\n';
  assert_int_equal(lines, appends);
  assert_true(!strncmp(out, want, strlen(want)));
  json_decref(t);
}

static void test_cli_errors(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  assert_int_equal(apiary("agent --home %s add bad --model tiny --tool rm_rf", home), 1);
  assert_non_null(strstr(err, "unknown tool"));
  assert_int_equal(apiary("agent --home %s add fetcher --model tiny", home), 1); /* exists */
  assert_non_null(strstr(err, "exists"));
  assert_int_equal(apiary("agent --home %s add x --model tiny --tool nb__q", home), 1);
  assert_non_null(strstr(err, "MCP server"));
  assert_int_equal(apiary("task --home %s run nobody 'hi'", home), 1);
  assert_non_null(strstr(err, "no agent named nobody"));
  assert_int_equal(apiary("task --home %s show 0", home), 2);
  assert_int_equal(apiary("agent --home %s frob", home), 2);
  assert_int_equal(apiary("agent --home %s list --json", home), 0);
  assert_non_null(strstr(out, "\"careful\""));
  assert_int_equal(apiary("agent --home %s rm careful", home), 0);
  assert_int_equal(apiary("agent --home %s show careful", home), 1);
  assert_int_equal(apiary("task --help"), 0);
  assert_int_equal(apiary("agent --help"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_task_runs), cmocka_unit_test(test_kill_mid_tool),
                                     cmocka_unit_test(test_approval_across_kill), cmocka_unit_test(test_mcp_tool),
                                     cmocka_unit_test(test_cli_errors)};
  return cmocka_run_group_tests_name("cli_agent", tests, setup, teardown);
}
