/* The agent runtime without a node: definitions checked (defaults, every refusal), the
 * step machine's every decision (first call, tool calls in turn, approval, waiting, denied
 * and interrupted calls told to the model, resume of a model call, idempotent re-runs,
 * step limit, spending caps per task and per day, cancel), the runner against a real
 * SQLite store with scripted model and tools (counting calls: a crash between "started" and
 * "done" is simulated by writing the started step, as the runner does, and planning again),
 * and the file tools' path rules on a real directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "agent/agent_def.h"
#include "agent/agent_loop.h"
#include "agent/agent_run.h"
#include "agent/agent_store.h"
#include "agent/agent_tools.h"
#include "core/err.h"

static json_t *def_of(const char *text) {
  json_t *in = json_loads(text, 0, NULL), *out = NULL;
  char err[300];
  assert_non_null(in);
  if (agent_def_check(in, &out, err, sizeof err)) fail_msg("%s: %s", text, err);
  json_decref(in);
  return out;
}

static void test_def(void **state) {
  (void)state;
  json_t *d = def_of("{\"name\":\"a\",\"model\":\"m\"}");
  assert_int_equal(json_integer_value(json_object_get(d, "max_steps")), 8);
  assert_int_equal(json_integer_value(json_object_get(d, "max_tokens")), 256);
  assert_string_equal(json_string_value(json_object_get(d, "tool_choice")), "auto");
  assert_int_equal(json_array_size(json_object_get(d, "tools")), 0);
  json_decref(d);
  d = def_of("{\"name\":\"a\",\"model\":\"m\",\"tools\":[\"mcp:nb\",\"nb__get\",\"files_read\"],\"mcp\":[{\"name\":\"nb\","
             "\"command\":\"node\",\"args\":[\"x.js\"],\"env\":{\"K\":\"V\"}}]}");
  json_decref(d);
  const char *bad[] = {
      "[]", "{\"model\":\"m\"}", "{\"name\":\"a b\",\"model\":\"m\"}", "{\"name\":\"a\"}", "{\"name\":\"a\",\"model\":\"m\",\"x\":1}",
      "{\"name\":\"a\",\"model\":\"m\",\"tools\":[\"rm\"]}", "{\"name\":\"a\",\"model\":\"m\",\"tools\":[\"nb__get\"]}",
      "{\"name\":\"a\",\"model\":\"m\",\"max_steps\":0}", "{\"name\":\"a\",\"model\":\"m\",\"max_steps\":101}",
      "{\"name\":\"a\",\"model\":\"m\",\"max_wei_task\":-1}", "{\"name\":\"a\",\"model\":\"m\",\"temperature\":3}",
      "{\"name\":\"a\",\"model\":\"m\",\"tool_choice\":\"none\"}", "{\"name\":\"a\",\"model\":\"m\",\"tools\":\"files_read\"}",
      "{\"name\":\"a\",\"model\":\"m\",\"mcp\":[{\"name\":\"nb\"}]}",
      "{\"name\":\"a\",\"model\":\"m\",\"mcp\":[{\"name\":\"nb\",\"command\":\"x\",\"url\":\"http://h/mcp\"}]}",
      "{\"name\":\"a\",\"model\":\"m\",\"mcp\":[{\"name\":\"n__b\",\"command\":\"x\"}]}",
      "{\"name\":\"a\",\"model\":\"m\",\"mcp\":[{\"name\":\"nb\",\"url\":\"ftp://h\"}]}",
      "{\"name\":\"a\",\"model\":\"m\",\"mcp\":[{\"name\":\"nb\",\"command\":\"x\",\"env\":{\"K\":1}}]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *in = json_loads(bad[i], JSON_DECODE_ANY, NULL), *out = NULL;
    char err[300] = "";
    if (agent_def_check(in, &out, err, sizeof err) != ERR_INVAL || !err[0]) fail_msg("accepted: %s", bad[i]);
    json_decref(in);
  }
}

/* Steps built by hand. */
static agent_step mstep(int n, const char *content, const char *calls_json) {
  agent_step s = {.n = n, .kind = 'm', .state = STEP_DONE, .tokens = 10};
  s.output = json_pack("{s:s?, s:o}", "content", content, "calls", json_loads(calls_json ? calls_json : "[]", 0, NULL));
  return s;
}

static agent_step tstep(int n, const char *tool, const char *call_id, char state) {
  agent_step s = {.n = n, .kind = 't', .state = state};
  snprintf(s.tool, sizeof s.tool, "%s", tool);
  snprintf(s.call_id, sizeof s.call_id, "%s", call_id);
  s.args = json_object();
  s.output = json_pack("{s:s}", "text", "result text");
  return s;
}

static void free_steps(agent_step *s, int n) {
  for (int i = 0; i < n; i++) {
    json_decref(s[i].args);
    json_decref(s[i].output);
  }
}

static void test_plan(void **state) {
  (void)state;
  json_t *d = def_of("{\"name\":\"a\",\"model\":\"m\",\"instructions\":\"Be brief.\",\"tools\":[\"files_write\",\"offers\"],"
                     "\"approve\":[\"files_write\"],\"max_steps\":3,\"tool_choice\":\"required\",\"max_wei_task\":100,"
                     "\"max_wei_day\":1000}");
  agent_task t = {.id = 1, .input = "do it"};
  agent_action a;
  /* first: the model, with system + user, the first call's tool_choice */
  agent_plan(d, &t, NULL, 0, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_MODEL);
  assert_int_equal(a.step, 0);
  assert_string_equal(a.tool_choice, "required");
  assert_int_equal(json_array_size(a.messages), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(a.messages, 0), "content")), "Be brief.");
  agent_action_clear(&a);
  /* the model asked for two calls: the first (offers) runs, the second (files_write) needs approval */
  agent_step s[8];
  s[0] = mstep(0, NULL, "[{\"id\":\"c1\",\"name\":\"offers\",\"arguments\":{}},{\"id\":\"c2\",\"name\":\"files_write\",\"arguments\":{\"path\":\"x\"}}]");
  agent_plan(d, &t, s, 1, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_TOOL);
  assert_string_equal(a.tool, "offers");
  assert_string_equal(a.call_id, "c1");
  assert_int_equal(a.step, 1);
  s[1] = tstep(1, "offers", "c1", STEP_DONE);
  agent_plan(d, &t, s, 2, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_ASK_APPROVAL);
  assert_string_equal(a.tool, "files_write");
  assert_int_equal(a.step, 2);
  s[2] = tstep(2, "files_write", "c2", STEP_AWAITING);
  agent_plan(d, &t, s, 3, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_WAIT);
  s[2].state = STEP_APPROVED;
  agent_plan(d, &t, s, 3, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_TOOL);
  assert_int_equal(a.step, 2);
  /* a non-idempotent call in flight at a crash is marked interrupted; an idempotent one runs again */
  s[2].state = STEP_STARTED;
  agent_plan(d, &t, s, 3, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_INTERRUPTED);
  s[1].state = STEP_STARTED;
  agent_plan(d, &t, s, 2, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_TOOL);
  assert_string_equal(a.tool, "offers");
  s[1].state = STEP_DONE;
  /* denied: the model is told, and called again (auto this time) */
  s[2].state = STEP_DENIED;
  agent_plan(d, &t, s, 3, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_MODEL);
  assert_int_equal(a.step, 3);
  assert_string_equal(a.tool_choice, "auto");
  json_t *m = a.messages;
  assert_int_equal(json_array_size(m), 5); /* system, user, assistant (2 calls), tool, tool */
  json_t *asst = json_array_get(m, 2);
  assert_int_equal(json_array_size(json_object_get(asst, "tool_calls")), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(m, 3), "tool_call_id")), "c1");
  assert_non_null(strstr(json_string_value(json_object_get(json_array_get(m, 4), "content")), "did not approve"));
  agent_action_clear(&a);
  /* a model call in flight at a crash is made again with the same number */
  s[3] = mstep(3, NULL, NULL);
  s[3].state = STEP_STARTED;
  agent_plan(d, &t, s, 4, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_MODEL);
  assert_int_equal(a.step, 3);
  agent_action_clear(&a);
  /* an answer without calls ends the task */
  json_decref(s[3].output);
  s[3] = mstep(3, "All done.", NULL);
  agent_plan(d, &t, s, 4, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_DONE);
  assert_string_equal(a.text, "All done.");
  /* limits: steps, per task, per day; cancel first of all */
  json_decref(s[3].output);
  s[3] = mstep(3, NULL, "[{\"id\":\"c3\",\"name\":\"offers\",\"arguments\":{}}]");
  s[4] = tstep(4, "offers", "c3", STEP_DONE);
  s[5] = mstep(5, NULL, "[{\"id\":\"c4\",\"name\":\"offers\",\"arguments\":{}}]");
  s[6] = tstep(6, "offers", "c4", STEP_DONE);
  agent_plan(d, &t, s, 7, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_FAIL);
  assert_non_null(strstr(a.text, "step limit"));
  agent_plan(d, &t, s, 5, 0, &a); /* two model calls so far: a third is allowed ... */
  assert_int_equal(a.kind, AGENT_ACT_MODEL);
  agent_action_clear(&a);
  t.wei = 100; /* ... unless the task spent its cap */
  agent_plan(d, &t, s, 5, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_FAIL);
  assert_non_null(strstr(a.text, "per task"));
  t.wei = 0;
  agent_plan(d, &t, s, 5, 1000, &a);
  assert_int_equal(a.kind, AGENT_ACT_FAIL);
  assert_non_null(strstr(a.text, "per day"));
  t.cancel = 1;
  agent_plan(d, &t, s, 5, 0, &a);
  assert_int_equal(a.kind, AGENT_ACT_CANCELED);
  free_steps(s, 7);
  json_decref(d);
}

/* ---- the runner against a real store --------------------------------------------------- */

typedef struct script {
  int model_calls, tool_calls;
  const char *const *answers; /* each model call's calls JSON (NULL: a final answer) */
  int fail_model;
  int64_t budget;             /* what the last tool call was told the task may still spend */
} script;

static int s_model(void *ud, const json_t *def, json_t *messages, json_t *tools, const char *tc, agent_model_out *out,
                   char *err, size_t cap) {
  script *s = ud;
  const char *a = s->answers[s->model_calls++];
  out->tokens = 7;
  out->wei = 30;
  if (s->fail_model) {
    snprintf(err, cap, "no provider offers this model");
    return ERR_INVAL;
  }
  if (a) out->calls = json_loads(a, 0, NULL);
  else out->content = strdup("the answer");
  return 0;
}

static int s_tool(void *ud, const json_t *def, const char *name, json_t *args, int64_t budget, char **text, int *is_error,
                  int64_t *wei) {
  script *s = ud;
  s->budget = budget;
  s->tool_calls++;
  *text = strdup("tool output");
  *is_error = 0;
  *wei = 5;
  return 0;
}

static json_t *s_tools(void *ud, const json_t *def) { return json_array(); }

static store *open_store(char *dir) {
  char path[400], err[200];
  tu_tmpdir(dir, 256);
  snprintf(path, sizeof path, "%s/a.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  store_migration m[] = {{"agent", agent_schema_v1}};
  assert_int_equal(store_migrate(s, m, 1, err, sizeof err), 1);
  return s;
}

static void test_runner(void **state) {
  (void)state;
  char dir[256];
  store *db = open_store(dir);
  json_t *d = def_of("{\"name\":\"a\",\"model\":\"m\",\"tools\":[\"files_write\",\"offers\"],\"max_wei_task\":1000}");
  assert_int_equal(agent_put(db, "a", d), 0);
  const char *answers[] = {"[{\"name\":\"offers\",\"arguments\":{}}]", "[{\"name\":\"rm_rf\",\"arguments\":{}}]", NULL};
  script sc = {.answers = answers};
  agent_ops ops = {.model = s_model, .tool = s_tool, .tools = s_tools, .ud = &sc};
  int64_t id;
  assert_int_equal(agent_task_add(db, "a", "go", &id), 0);
  assert_int_equal(agent_task_next(db), id);
  assert_int_equal(agent_run_task(db, id, &ops, NULL), 0);
  agent_task t;
  assert_int_equal(agent_task_get(db, id, &t), 0);
  assert_string_equal(t.state, AGENT_DONE);
  assert_string_equal(t.result, "the answer");
  assert_int_equal(t.tokens, 21);        /* three model calls */
  assert_int_equal(t.wei, 3 * 30 + 5);   /* and one tool that ran */
  assert_int_equal(sc.model_calls, 3);
  assert_int_equal(sc.tool_calls, 1);    /* rm_rf is not the agent's: refused, not run */
  assert_int_equal(sc.budget, 1000 - 30); /* the tool may spend what is left of max_wei_task */
  agent_step *steps;
  int n;
  assert_int_equal(agent_steps_load(db, id, &steps, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(steps[3].state, STEP_FAILED);
  assert_non_null(strstr(json_string_value(json_object_get(steps[3].output, "text")), "not one this agent may use"));
  agent_steps_free(steps, n);
  agent_task_clear(&t);
  assert_int_equal(agent_task_next(db), 0);
  /* a crash mid-tool: the step was written started; the runner marks it interrupted, not re-run */
  assert_int_equal(agent_task_add(db, "a", "again", &id), 0);
  agent_step m0 = mstep(0, NULL, "[{\"id\":\"call_0_0\",\"name\":\"files_write\",\"arguments\":{\"path\":\"p\",\"content\":\"c\"}}]");
  assert_int_equal(agent_step_put(db, id, &m0, 7, 30), 0);
  agent_step t1 = tstep(1, "files_write", "call_0_0", STEP_STARTED);
  assert_int_equal(agent_step_put(db, id, &t1, 0, 0), 0);
  assert_int_equal(agent_task_set(db, id, AGENT_RUNNING, NULL, NULL), 0);
  const char *answers2[] = {NULL};
  script sc2 = {.answers = answers2};
  ops.ud = &sc2;
  assert_int_equal(agent_run_task(db, id, &ops, NULL), 0);
  assert_int_equal(sc2.tool_calls, 0);
  assert_int_equal(sc2.model_calls, 1);
  assert_int_equal(agent_steps_load(db, id, &steps, &n), 0);
  assert_int_equal(steps[1].state, STEP_FAILED);
  assert_non_null(strstr(json_string_value(json_object_get(steps[1].output, "text")), "Interrupted"));
  agent_steps_free(steps, n);
  json_decref(m0.output);
  json_decref(t1.args);
  json_decref(t1.output);
  /* a failing model fails the task with the reason; what it cost is still counted */
  assert_int_equal(agent_task_add(db, "a", "fail", &id), 0);
  const char *answers3[] = {NULL};
  script sc3 = {.answers = answers3, .fail_model = 1};
  ops.ud = &sc3;
  assert_int_equal(agent_run_task(db, id, &ops, NULL), 0);
  assert_int_equal(agent_task_get(db, id, &t), 0);
  assert_string_equal(t.state, AGENT_FAILED);
  assert_non_null(strstr(t.error, "no provider"));
  assert_int_equal(t.wei, 30);
  agent_task_clear(&t);
  /* the per-day total sees every task of the agent */
  assert_int_equal(agent_spent_since(db, "a", 0), 3 * 30 + 5 + 30 + 30 + 30);
  json_decref(d);
  store_close(db);
  tu_rm_rf(dir);
}

static void test_file_tools(void **state) {
  (void)state;
  const char *ok[] = {"a.txt", "notes/x.md", "A-b_c.1"};
  const char *bad[] = {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "..", ".", "a b", "x\n", "a/./b"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) assert_true(agent_path_ok(ok[i]));
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    if (agent_path_ok(bad[i])) fail_msg("accepted path '%s'", bad[i]);
  char dir[256];
  tu_tmpdir(dir, sizeof dir);
  agent_tools_env env = {.agents_dir = dir};
  json_t *d = def_of("{\"name\":\"w\",\"model\":\"m\",\"tools\":[\"files_write\",\"files_read\",\"files_list\"]}");
  char *text;
  int is_error;
  int64_t wei;
  json_t *args = json_pack("{s:s, s:s}", "path", "note.txt", "content", "hello agent");
  assert_int_equal(agent_builtin_run(&env, d, "files_write", args, -1, &text, &is_error, &wei), 0);
  assert_false(is_error);
  free(text);
  json_decref(args);
  char path[400], buf[64] = "";
  snprintf(path, sizeof path, "%s/w/note.txt", dir);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  assert_non_null(fgets(buf, sizeof buf, f));
  fclose(f);
  assert_string_equal(buf, "hello agent");
  struct stat st;
  snprintf(path, sizeof path, "%s/w", dir);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  args = json_pack("{s:s}", "path", "note.txt");
  assert_int_equal(agent_builtin_run(&env, d, "files_read", args, -1, &text, &is_error, &wei), 0);
  assert_string_equal(text, "hello agent");
  free(text);
  json_decref(args);
  /* out of the folder, or through a symlink: refused */
  args = json_pack("{s:s, s:s}", "path", "../escape.txt", "content", "x");
  assert_int_equal(agent_builtin_run(&env, d, "files_write", args, -1, &text, &is_error, &wei), 0);
  assert_true(is_error);
  free(text);
  json_decref(args);
  snprintf(path, sizeof path, "%s/escape.txt", dir);
  assert_int_not_equal(access(path, F_OK), 0);
  char link[400];
  snprintf(link, sizeof link, "%s/w/link", dir);
  assert_int_equal(symlink("/etc/hostname", link), 0);
  args = json_pack("{s:s}", "path", "link");
  assert_int_equal(agent_builtin_run(&env, d, "files_read", args, -1, &text, &is_error, &wei), 0);
  assert_true(is_error);
  free(text);
  json_decref(args);
  assert_int_equal(agent_builtin_run(&env, d, "files_list", NULL, -1, &text, &is_error, &wei), 0);
  assert_non_null(strstr(text, "note.txt"));
  free(text);
  assert_int_equal(agent_builtin_run(&env, d, "no_such", NULL, -1, &text, &is_error, &wei), ERR_NOTFOUND);
  /* http_fetch refuses what is not allowlisted, without a request */
  json_t *d2 = def_of("{\"name\":\"f\",\"model\":\"m\",\"tools\":[\"http_fetch\"],\"fetch_allow\":[\"http://127.0.0.1:1/ok/\"]}");
  args = json_pack("{s:s}", "url", "http://127.0.0.1:1/other");
  assert_int_equal(agent_builtin_run(&env, d2, "http_fetch", args, -1, &text, &is_error, &wei), 0);
  assert_true(is_error);
  assert_non_null(strstr(text, "not allowed"));
  free(text);
  json_decref(args);
  /* the tool's schema pins the prefix (so a constrained model cannot ask for another) */
  json_t *specs = agent_builtin_specs(d2);
  const char *pat = json_string_value(json_object_get(json_object_get(json_object_get(json_object_get(
      json_object_get(json_array_get(specs, 0), "function"), "parameters"), "properties"), "url"), "pattern"));
  assert_non_null(pat);
  assert_non_null(strstr(pat, "http:\\/\\/127\\.0\\.0\\.1:1\\/ok\\/"));
  json_decref(specs);
  json_decref(d2);
  json_decref(d);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_def), cmocka_unit_test(test_plan),
                                     cmocka_unit_test(test_runner), cmocka_unit_test(test_file_tools)};
  return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
