/* node/agentsvc — glue of the agent runtime: the owner's control methods (agent.*, task.*)
 * on the loop thread, and one worker thread that runs tasks (agent/agent_run) with its own
 * store handle, calling the model through market/gen and the tools through
 * agent/agent_tools. A task queued, running or approved when the node stops is taken up
 * again when it starts. */
#include "node/agentsvc.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent_def.h"
#include "agent/agent_mcp.h"
#include "agent/agent_run.h"
#include "agent/agent_store.h"
#include "agent/agent_tools.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/toolcall.h"
#include "market/genreq.h"
#include "node/control.h"
#include "privacy/policy.h"

struct agentsvc {
  gen *gen;                 /* borrowed */
  store *db;                /* the loop thread's handle (borrowed) */
  store *wdb;               /* the worker's own handle */
  char home[1024], agents_dir[1100];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int wake, started;
  volatile int stop;
  gen_stream *current;      /* the model call in flight (under mu) */
  int64_t current_task;     /* whose (under mu) */
  agent_tools_env env;
  agent_mcp *mcp;           /* the worker's MCP clients */
};

/* ---- the worker --------------------------------------------------------------------- */

static int node_call(void *ud, const char *method, json_t *params, int timeout_ms, json_t **result, char *err,
                     size_t cap) {
  agentsvc *a = ud;
  char *msg = NULL;
  int rc = ctl_call(a->home, method, params, timeout_ms, result, &msg);
  if (rc) snprintf(err, cap, "%s", msg ? msg : err_str(rc));
  free(msg);
  return rc;
}

static int model(void *ud, const json_t *def, json_t *messages, json_t *tools, const char *tool_choice,
                 agent_model_out *out, char *err, size_t cap) {
  agentsvc *a = ud;
  (void)def;
  json_t *p = json_pack("{s:O, s:O, s:O}", "messages", messages, "max_tokens", json_object_get(def, "max_tokens"),
                        "temperature", json_object_get(def, "temperature"));
  if (json_array_size(tools)) {
    json_object_set(p, "tools", tools);
    json_object_set_new(p, "tool_choice", json_string(tool_choice));
    json_object_set_new(p, "parallel_tool_calls", json_false()); /* one call per step: simpler to resume */
  }
  json_t *seed = json_object_get(def, "seed");
  if (seed) json_object_set(p, "seed", seed);
  local_req lr;
  memset(&lr, 0, sizeof lr);
  const char *why = mkt_genreq_parse(p, &lr);
  json_decref(p);
  if (why) {
    local_req_clear(&lr);
    snprintf(err, cap, "%s", why);
    return ERR_INVAL;
  }
  if (!seed) lr.sp.seed = (uint64_t)time(NULL);
  json_t *pv = json_object_get(def, "privacy"); /* checked by agent_def_check */
  if (json_is_string(pv)) {
    int level = policy_parse(json_string_value(pv), json_string_length(pv));
    lr.privacy = level > 0 ? level : POLICY_LOCAL_ONLY; /* fail closed */
  }
  gen_request gr = {.model = json_string_value(json_object_get(def, "model"))};
  gen_stream *s;
  char name[256];
  gen_error ge;
  if (gen_submit(a->gen, &gr, &lr, &s, name, sizeof name, &ge)) { /* takes lr */
    snprintf(err, cap, "%s", ge.message);
    return ERR_INVAL;
  }
  pthread_mutex_lock(&a->mu);
  a->current = s;
  int stopping = a->stop;
  pthread_mutex_unlock(&a->mu);
  if (stopping) gen_cancel(s);
  buf text;
  buf_init(&text);
  char tmp[4096];
  mkt_result r;
  for (;;) {
    int n = gen_read(s, tmp, sizeof tmp, 250);
    if (n > 0) buf_append(&text, tmp, (size_t)n);
    if (gen_wait(s, 0, &r) == 0) break;
  }
  int n;
  while ((n = gen_read(s, tmp, sizeof tmp, 0)) > 0) buf_append(&text, tmp, (size_t)n);
  pthread_mutex_lock(&a->mu);
  a->current = NULL;
  pthread_mutex_unlock(&a->mu);
  gen_release(s);
  out->tokens = r.prompt_tokens + r.completion_tokens;
  out->wei = (int64_t)r.cost_wei;
  int rc = 0;
  if (r.finish == LOCAL_CANCELED) rc = ERR_CANCELED;
  else if (r.finish == LOCAL_ERROR) {
    snprintf(err, cap, "%s", r.error);
    rc = ERR_INVAL;
  } else {
    toolcall_parse(text.ptr ? (const char *)text.ptr : "", text.len, &out->calls, &out->content);
  }
  buf_deinit(&text);
  return rc;
}

static json_t *tools(void *ud, const json_t *def) {
  agentsvc *a = ud;
  json_t *specs = agent_builtin_specs(def);
  agent_mcp_specs(a->mcp, def, specs);
  return specs;
}

static int tool(void *ud, const json_t *def, const char *name, json_t *args, int64_t budget, char **text, int *is_error,
                int64_t *wei) {
  agentsvc *a = ud;
  int rc = strstr(name, "__") ? agent_mcp_run(a->mcp, def, name, args, text, is_error)
                               : agent_builtin_run(&a->env, def, name, args, budget, text, is_error, wei);
  if (rc == ERR_NOTFOUND) {
    char m[200];
    snprintf(m, sizeof m, "no tool named %s", name);
    *text = strdup(m);
    *is_error = 1;
    return 0;
  }
  return rc;
}

static void *worker(void *arg) {
  agentsvc *a = arg;
  agent_ops ops = {.model = model, .tool = tool, .tools = tools, .ud = a};
  while (!a->stop) {
    int64_t id = agent_task_next(a->wdb);
    pthread_mutex_lock(&a->mu);
    a->current_task = id;
    pthread_mutex_unlock(&a->mu);
    if (id) {
      int rc = agent_run_task(a->wdb, id, &ops, &a->stop);
      if (rc) log_warn("agent: task %lld: %s (%s); it will be tried again", (long long)id, err_str(rc), store_errmsg(a->wdb));
      if (!rc) continue;
    }
    pthread_mutex_lock(&a->mu);
    if (!a->wake && !a->stop) {
      struct timespec dl;
      clock_gettime(CLOCK_REALTIME, &dl);
      dl.tv_sec += id ? 5 : 2; /* after a store error, wait longer */
      pthread_cond_timedwait(&a->cv, &a->mu, &dl);
    }
    a->wake = 0;
    pthread_mutex_unlock(&a->mu);
  }
  return NULL;
}

static void wake(agentsvc *a) {
  pthread_mutex_lock(&a->mu);
  a->wake = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

/* ---- control methods (loop thread) ------------------------------------------------------ */

static void c_agent_add(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  json_t *def = NULL;
  char err[300];
  if (agent_def_check(json_object_get(params, "def"), &def, err, sizeof err)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "%s", err);
    return;
  }
  const char *name = json_string_value(json_object_get(def, "name"));
  json_t *old = NULL;
  int exists = agent_get(a->db, name, &old) == 0;
  json_decref(old);
  if (exists && !json_is_true(json_object_get(params, "replace"))) {
    ctl_reply_err(req, CTL_FAILED, "an agent named %s exists; remove it first or use --replace", name);
    json_decref(def);
    return;
  }
  int rc = agent_put(a->db, name, def);
  if (rc) ctl_reply_err(req, CTL_FAILED, "cannot store the agent: %s", store_errmsg(a->db));
  else ctl_reply_ok(req, json_pack("{s:O}", "agent", def));
  json_decref(def);
}

static void c_agent_list(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  json_t *l = agent_list(a->db);
  if (!l) ctl_reply_err(req, CTL_FAILED, "cannot read agents: %s", store_errmsg(a->db));
  else ctl_reply_ok(req, json_pack("{s:o}", "agents", l));
}

static void c_agent_show(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  const char *name = json_string_value(json_object_get(params, "name"));
  json_t *def = NULL;
  if (!name || agent_get(a->db, name, &def)) {
    ctl_reply_err(req, CTL_FAILED, "no agent named %s (see 'apiary agent list')", name ? name : "");
    return;
  }
  ctl_reply_ok(req, json_pack("{s:o, s:o}", "agent", def, "tasks", agent_task_list(a->db, name, 20)));
}

static void c_agent_rm(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  const char *name = json_string_value(json_object_get(params, "name"));
  int rc = name ? agent_rm(a->db, name) : ERR_NOTFOUND;
  if (rc) ctl_reply_err(req, CTL_FAILED, "no agent named %s", name ? name : "");
  else ctl_reply_ok(req, json_pack("{s:s}", "removed", name));
}

static void c_task_run(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  const char *name = json_string_value(json_object_get(params, "agent"));
  const char *input = json_string_value(json_object_get(params, "input"));
  json_t *def = NULL;
  if (!name || !input || !*input || strlen(input) > 65536) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need an agent and a task text (at most 64 KiB)");
    return;
  }
  if (agent_get(a->db, name, &def)) {
    ctl_reply_err(req, CTL_FAILED, "no agent named %s (see 'apiary agent list')", name);
    return;
  }
  json_decref(def);
  int64_t id;
  if (agent_task_add(a->db, name, input, &id)) {
    ctl_reply_err(req, CTL_FAILED, "cannot record the task: %s", store_errmsg(a->db));
    return;
  }
  wake(a);
  ctl_reply_ok(req, json_pack("{s:I, s:s}", "id", (json_int_t)id, "state", AGENT_QUEUED));
}

static int task_id(json_t *params, int64_t *id) {
  json_t *v = json_object_get(params, "id");
  *id = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
  return *id > 0;
}

static void c_task_show(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  int64_t id;
  agent_task t;
  if (!task_id(params, &id) || agent_task_get(a->db, id, &t)) {
    ctl_reply_err(req, CTL_FAILED, "no such task (see 'apiary task list')");
    return;
  }
  agent_step *steps = NULL;
  int n = 0;
  agent_steps_load(a->db, id, &steps, &n);
  ctl_reply_ok(req, json_pack("{s:o}", "task", agent_task_json(&t, steps, n)));
  agent_steps_free(steps, n);
  agent_task_clear(&t);
}

static void c_task_list(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  json_t *l = agent_task_list(a->db, json_string_value(json_object_get(params, "agent")), 100);
  if (!l) ctl_reply_err(req, CTL_FAILED, "cannot read tasks: %s", store_errmsg(a->db));
  else ctl_reply_ok(req, json_pack("{s:o}", "tasks", l));
}

static void c_task_cancel(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  int64_t id;
  int rc = task_id(params, &id) ? agent_task_cancel(a->db, id) : ERR_NOTFOUND;
  if (rc == ERR_INVAL) ctl_reply_err(req, CTL_FAILED, "task %lld has already ended", (long long)id);
  else if (rc) ctl_reply_err(req, CTL_FAILED, "no such task");
  else {
    pthread_mutex_lock(&a->mu);
    if (a->current && a->current_task == id) gen_cancel(a->current); /* stops at its next token */
    pthread_mutex_unlock(&a->mu);
    wake(a);
    ctl_reply_ok(req, json_pack("{s:I, s:b}", "id", (json_int_t)id, "cancel_requested", 1));
  }
}

static void c_task_approve(ctl_req *req, json_t *params, void *ud) {
  agentsvc *a = ud;
  int64_t id;
  int deny = json_is_true(json_object_get(params, "deny"));
  int rc = task_id(params, &id) ? agent_step_decide(a->db, id, !deny) : ERR_NOTFOUND;
  if (rc) ctl_reply_err(req, CTL_FAILED, "task %lld has no call waiting for approval", (long long)id);
  else {
    wake(a);
    ctl_reply_ok(req, json_pack("{s:I, s:s}", "id", (json_int_t)id, "decision", deny ? "denied" : "approved"));
  }
}

int agentsvc_start(const agentsvc_opts *o, agentsvc **out, char *err, size_t cap) {
  agentsvc *a = calloc(1, sizeof *a);
  if (!a) return ERR_NOMEM;
  a->gen = o->gen;
  a->db = o->db;
  snprintf(a->home, sizeof a->home, "%s", o->home);
  snprintf(a->agents_dir, sizeof a->agents_dir, "%s/agents", o->home);
  a->env = (agent_tools_env){.agents_dir = a->agents_dir, .node_call = node_call, .ud = a};
  a->mcp = agent_mcp_new();
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  int rc = store_open(o->db_path, &a->wdb, err, cap);
  static const struct { const char *m; ctl_method_fn fn; } methods[] = {
      {"agent.add", c_agent_add}, {"agent.list", c_agent_list}, {"agent.show", c_agent_show}, {"agent.rm", c_agent_rm},
      {"task.run", c_task_run}, {"task.show", c_task_show}, {"task.list", c_task_list}, {"task.cancel", c_task_cancel},
      {"task.approve", c_task_approve}};
  for (size_t i = 0; !rc && i < sizeof methods / sizeof *methods; i++) rc = ctl_server_add(o->ctl, methods[i].m, methods[i].fn, a);
  if (!rc && pthread_create(&a->thread, NULL, worker, a)) rc = ERR_NOMEM;
  if (rc) {
    if (!err[0]) snprintf(err, cap, "cannot start the agent runtime: %s", err_str(rc));
    store_close(a->wdb);
    agent_mcp_free(a->mcp);
    free(a);
    return rc;
  }
  a->started = 1;
  *out = a;
  return 0;
}

void agentsvc_stop(agentsvc *a) {
  if (!a || !a->started) return;
  pthread_mutex_lock(&a->mu);
  a->stop = 1;
  if (a->current) gen_cancel(a->current);
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  a->started = 0;
}

void agentsvc_free(agentsvc *a) {
  if (!a) return;
  agentsvc_stop(a);
  agent_mcp_free(a->mcp); /* the worker has ended: its MCP servers are closed */
  store_close(a->wdb);
  pthread_cond_destroy(&a->cv);
  pthread_mutex_destroy(&a->mu);
  free(a);
}
