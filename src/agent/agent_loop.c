/* agent/agent_loop — see agent_loop.h. */
#include "agent/agent_loop.h"

#include <stdio.h>
#include <string.h>

#include "agent/agent_def.h"

void agent_action_clear(agent_action *a) {
  json_decref(a->messages);
  memset(a, 0, sizeof *a);
}

int agent_tool_idempotent(const json_t *def, const char *tool) {
  return agent_builtin_idempotent(tool) || agent_def_lists(def, "idempotent", tool);
}

/* The text a tool step gives back to the model. */
static const char *tool_text(const agent_step *s) {
  if (s->state == STEP_DENIED) return "The owner did not approve this call; it was not run.";
  const char *t = json_string_value(json_object_get(s->output, "text"));
  if (t) return t;
  if (s->state == STEP_FAILED) return "The call failed.";
  return "";
}

/* system, user, then per model step its assistant message and per tool step its answer. */
static json_t *conversation(const json_t *def, const agent_task *t, const agent_step *steps, int n) {
  json_t *m = json_array();
  const char *instr = json_string_value(json_object_get(def, "instructions"));
  if (instr && *instr) json_array_append_new(m, json_pack("{s:s, s:s}", "role", "system", "content", instr));
  json_array_append_new(m, json_pack("{s:s, s:s}", "role", "user", "content", t->input ? t->input : ""));
  for (int i = 0; i < n; i++) {
    const agent_step *s = &steps[i];
    if (s->kind == 'm' && s->state == STEP_DONE) {
      json_t *calls = json_object_get(s->output, "calls"), *tc = json_array(), *c;
      size_t k;
      json_array_foreach(calls, k, c) {
        json_array_append_new(tc, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", json_object_get(c, "id"), "type", "function",
                                            "function", "name", json_object_get(c, "name"), "arguments",
                                            json_object_get(c, "arguments")));
      }
      const char *content = json_string_value(json_object_get(s->output, "content"));
      json_t *a = json_pack("{s:s, s:s?}", "role", "assistant", "content", content);
      if (!content) json_object_set_new(a, "content", json_null());
      if (json_array_size(tc)) json_object_set_new(a, "tool_calls", tc);
      else json_decref(tc);
      json_array_append_new(m, a);
    } else if (s->kind == 't' && (s->state == STEP_DONE || s->state == STEP_FAILED || s->state == STEP_DENIED)) {
      json_array_append_new(m, json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", s->call_id, "content",
                                         tool_text(s)));
    }
  }
  return m;
}

static const agent_step *find_call(const agent_step *steps, int n, const char *call_id) {
  for (int i = 0; i < n; i++)
    if (steps[i].kind == 't' && !strcmp(steps[i].call_id, call_id)) return &steps[i];
  return NULL;
}

void agent_plan(const json_t *def, const agent_task *t, const agent_step *steps, int n, int64_t spent_today,
                agent_action *out) {
  memset(out, 0, sizeof *out);
  out->step = n;
  if (t->cancel) {
    out->kind = AGENT_ACT_CANCELED;
    snprintf(out->text, sizeof out->text, "canceled by the owner");
    return;
  }
  /* the last model call decides: its tool calls, each in turn, then the next model call */
  int last_m = -1, n_model = 0;
  for (int i = 0; i < n; i++)
    if (steps[i].kind == 'm') {
      last_m = i;
      n_model++;
    }
  if (last_m >= 0 && steps[last_m].state != STEP_DONE) { /* in flight when the node stopped */
    out->kind = AGENT_ACT_MODEL;
    out->step = steps[last_m].n;
    n_model--;
  } else if (last_m >= 0) {
    json_t *calls = json_object_get(steps[last_m].output, "calls"), *c;
    size_t k;
    json_array_foreach(calls, k, c) {
      const char *id = json_string_value(json_object_get(c, "id")), *name = json_string_value(json_object_get(c, "name"));
      const agent_step *s = find_call(steps, n, id ? id : "");
      if (s && (s->state == STEP_DONE || s->state == STEP_FAILED || s->state == STEP_DENIED)) continue;
      out->tool = s ? s->tool : name;
      out->call_id = id;
      out->args = s ? s->args : json_object_get(c, "arguments");
      out->step = s ? s->n : n;
      if (!s) {
        out->kind = agent_def_lists(def, "approve", name) ? AGENT_ACT_ASK_APPROVAL : AGENT_ACT_TOOL;
      } else if (s->state == STEP_AWAITING) {
        out->kind = AGENT_ACT_WAIT;
      } else if (s->state == STEP_APPROVED) {
        out->kind = AGENT_ACT_TOOL;
      } else { /* started: it was running when the node stopped */
        out->kind = agent_tool_idempotent(def, s->tool) ? AGENT_ACT_TOOL : AGENT_ACT_INTERRUPTED;
      }
      return;
    }
    if (!json_array_size(calls)) {
      out->kind = AGENT_ACT_DONE;
      const char *content = json_string_value(json_object_get(steps[last_m].output, "content"));
      snprintf(out->text, sizeof out->text, "%s", content ? content : "");
      return;
    }
    out->kind = AGENT_ACT_MODEL;
    out->step = n;
  } else {
    out->kind = AGENT_ACT_MODEL;
    out->step = n;
  }
  /* a model call: within the caps? */
  int64_t cap_task = (int64_t)json_integer_value(json_object_get(def, "max_wei_task"));
  int64_t cap_day = (int64_t)json_integer_value(json_object_get(def, "max_wei_day"));
  if (n_model >= json_integer_value(json_object_get(def, "max_steps"))) {
    out->kind = AGENT_ACT_FAIL;
    snprintf(out->text, sizeof out->text, "the step limit (%lld model calls) was reached without an answer",
             (long long)json_integer_value(json_object_get(def, "max_steps")));
    return;
  }
  if (cap_task && t->wei >= cap_task) {
    out->kind = AGENT_ACT_FAIL;
    snprintf(out->text, sizeof out->text, "the spending cap per task (%lld wei) was reached; %lld wei spent",
             (long long)cap_task, (long long)t->wei);
    return;
  }
  if (cap_day && spent_today >= cap_day) {
    out->kind = AGENT_ACT_FAIL;
    snprintf(out->text, sizeof out->text, "the agent's spending cap per day (%lld wei) was reached", (long long)cap_day);
    return;
  }
  out->messages = conversation(def, t, steps, n);
  out->tool_choice = n_model == 0 ? json_string_value(json_object_get(def, "tool_choice")) : "auto";
  if (!out->tool_choice) out->tool_choice = "auto";
}
