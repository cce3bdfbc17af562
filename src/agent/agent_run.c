/* agent/agent_run — see agent_run.h. */
#include "agent/agent_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent_def.h"
#include "agent/agent_loop.h"
#include "core/err.h"
#include "core/log.h"

#define TOOL_OUTPUT_MAX (64 * 1024) /* what a tool may hand back to the model */

static int ended(const char *state) {
  return !strcmp(state, AGENT_DONE) || !strcmp(state, AGENT_FAILED) || !strcmp(state, AGENT_CANCELED);
}

/* Calls the model for step n and records the answer. */
static int do_model(store *s, const agent_task *t, const json_t *def, agent_action *a, const agent_ops *ops) {
  agent_step st = {.n = a->step, .kind = 'm', .state = STEP_STARTED};
  int rc = agent_step_put(s, t->id, &st, 0, 0);
  if (rc) return rc;
  json_t *tools = ops->tools(ops->ud, def);
  agent_model_out mo = {0};
  char err[512] = "";
  int mrc = ops->model(ops->ud, def, a->messages, tools, a->tool_choice, &mo, err, sizeof err);
  json_decref(tools);
  if (mrc == ERR_CANCELED) { /* the node is stopping: the step stays started, redone at restart */
    free(mo.content);
    json_decref(mo.calls);
    return ERR_CANCELED;
  }
  if (mrc) {
    st.state = STEP_FAILED;
    st.output = json_pack("{s:s}", "error", err);
    st.tokens = mo.tokens;
    st.wei = mo.wei;
    rc = agent_step_put(s, t->id, &st, mo.tokens, mo.wei);
    json_decref(st.output);
    char why[700];
    snprintf(why, sizeof why, "the model call failed: %s", err);
    if (!rc) rc = agent_task_set(s, t->id, AGENT_FAILED, NULL, why);
    free(mo.content);
    json_decref(mo.calls);
    return rc;
  }
  json_t *calls = json_array(), *c;
  size_t k;
  json_array_foreach(mo.calls, k, c) {
    char id[64];
    snprintf(id, sizeof id, "call_%d_%zu", a->step, k);
    json_t *args = json_object_get(c, "arguments");
    json_array_append_new(calls, json_pack("{s:s, s:O, s:O}", "id", id, "name", json_object_get(c, "name"), "arguments",
                                           json_is_object(args) ? args : json_object()));
  }
  st.state = STEP_DONE;
  st.output = json_pack("{s:s?, s:o}", "content", mo.content, "calls", calls);
  st.tokens = mo.tokens;
  st.wei = mo.wei;
  rc = agent_step_put(s, t->id, &st, mo.tokens, mo.wei);
  json_decref(st.output);
  free(mo.content);
  json_decref(mo.calls);
  return rc;
}

static int allowed(const json_t *def, const char *tool) {
  if (agent_def_lists(def, "tools", tool)) return 1;
  const char *sep = strstr(tool, "__");
  if (!sep) return 0;
  char all[48];
  snprintf(all, sizeof all, "mcp:%.*s", (int)(sep - tool < 32 ? sep - tool : 32), tool);
  return agent_def_lists(def, "tools", all);
}

/* What task t may still spend under its max_wei_task (-1: no cap). */
static int64_t budget_left(const json_t *def, const agent_task *t) {
  int64_t cap = agent_def_int(def, "max_wei_task");
  if (cap <= 0) return -1;
  return t->wei >= cap ? 0 : cap - t->wei;
}

/* Runs a tool call as step n and records its output. */
static int do_tool(store *s, const agent_task *t, const json_t *def, agent_action *a, const agent_ops *ops) {
  agent_step st = {.n = a->step, .kind = 't', .state = STEP_STARTED, .args = a->args};
  snprintf(st.tool, sizeof st.tool, "%s", a->tool ? a->tool : "");
  snprintf(st.call_id, sizeof st.call_id, "%s", a->call_id ? a->call_id : "");
  int rc = agent_step_put(s, t->id, &st, 0, 0);
  if (rc) return rc;
  char *text = NULL;
  int is_error = 0;
  int64_t wei = 0;
  if (!allowed(def, st.tool)) {
    char m[200];
    snprintf(m, sizeof m, "the tool \"%s\" is not one this agent may use", st.tool);
    text = strdup(m);
    is_error = 1;
  } else if (ops->tool(ops->ud, def, st.tool, st.args, budget_left(def, t), &text, &is_error, &wei)) {
    is_error = 1;
  }
  size_t len = text ? strlen(text) : 0;
  if (len > TOOL_OUTPUT_MAX) text[TOOL_OUTPUT_MAX] = 0; /* the rest is not shown to the model */
  st.state = is_error ? STEP_FAILED : STEP_DONE;
  st.output = json_pack("{s:s}", "text", text ? text : "");
  if (is_error) json_object_set_new(st.output, "error", json_true());
  st.bytes = (int64_t)len;
  st.wei = wei;
  rc = agent_step_put(s, t->id, &st, 0, wei);
  json_decref(st.output);
  free(text);
  return rc;
}

int agent_run_task(store *s, int64_t id, const agent_ops *ops, volatile int *stop) {
  for (;;) {
    agent_task t;
    int more = 1; /* before any goto out */
    int rc = agent_task_get(s, id, &t);
    if (rc) return rc;
    if (ended(t.state)) {
      agent_task_clear(&t);
      return 0;
    }
    json_t *def = NULL;
    if (agent_get(s, t.agent, &def)) {
      rc = agent_task_set(s, id, AGENT_FAILED, NULL, "its agent no longer exists");
      agent_task_clear(&t);
      return rc;
    }
    if (strcmp(t.state, AGENT_RUNNING) && (rc = agent_task_set(s, id, AGENT_RUNNING, NULL, NULL))) goto out;
    agent_step *steps = NULL;
    int n = 0;
    if ((rc = agent_steps_load(s, id, &steps, &n))) goto out;
    agent_action a;
    agent_plan(def, &t, steps, n, agent_spent_since(s, t.agent, (int64_t)time(NULL) - 86400), &a);
    switch (a.kind) {
    case AGENT_ACT_MODEL: rc = do_model(s, &t, def, &a, ops); break;
    case AGENT_ACT_TOOL: rc = do_tool(s, &t, def, &a, ops); break;
    case AGENT_ACT_ASK_APPROVAL: {
      agent_step st = {.n = a.step, .kind = 't', .state = STEP_AWAITING, .args = a.args};
      snprintf(st.tool, sizeof st.tool, "%s", a.tool);
      snprintf(st.call_id, sizeof st.call_id, "%s", a.call_id);
      rc = agent_step_put(s, id, &st, 0, 0);
      if (!rc) rc = agent_task_set(s, id, AGENT_WAITING, NULL, NULL);
      if (!rc) log_info("agent %s: task %lld waits for the owner to approve %s (apiary task approve %lld)", t.agent,
                        (long long)id, a.tool, (long long)id);
      more = 0;
      break;
    }
    case AGENT_ACT_WAIT:
      rc = agent_task_set(s, id, AGENT_WAITING, NULL, NULL);
      more = 0;
      break;
    case AGENT_ACT_INTERRUPTED: {
      agent_step st = {.n = a.step, .kind = 't', .state = STEP_FAILED, .args = a.args};
      snprintf(st.tool, sizeof st.tool, "%s", a.tool);
      snprintf(st.call_id, sizeof st.call_id, "%s", a.call_id);
      st.output = json_pack("{s:s, s:b}", "text",
                            "Interrupted: the node stopped while this call ran. It is not run again (the tool is not "
                            "marked idempotent); it may or may not have taken effect.", "error", 1);
      rc = agent_step_put(s, id, &st, 0, 0);
      json_decref(st.output);
      break;
    }
    case AGENT_ACT_DONE: {
      const char *full = NULL;
      for (int i = n - 1; i >= 0 && !full; i--)
        if (steps[i].kind == 'm') full = json_string_value(json_object_get(steps[i].output, "content"));
      rc = agent_task_set(s, id, AGENT_DONE, full ? full : a.text, NULL);
      more = 0;
      break;
    }
    case AGENT_ACT_FAIL:
      rc = agent_task_set(s, id, AGENT_FAILED, NULL, a.text);
      more = 0;
      break;
    case AGENT_ACT_CANCELED:
      rc = agent_task_set(s, id, AGENT_CANCELED, NULL, a.text);
      more = 0;
      break;
    }
    agent_action_clear(&a);
    agent_steps_free(steps, n);
  out:
    json_decref(def);
    agent_task_clear(&t);
    if (rc == ERR_CANCELED) return 0;
    if (rc || !more || (stop && *stop)) return rc;
  }
}
