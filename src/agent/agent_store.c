/* agent/agent_store — see agent_store.h. */
#include "agent/agent_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

const char agent_schema_v1[] =
    "CREATE TABLE agents (name TEXT PRIMARY KEY, def TEXT NOT NULL, created INTEGER NOT NULL) STRICT;"
    "CREATE TABLE agent_tasks (id INTEGER PRIMARY KEY, agent TEXT NOT NULL, input TEXT NOT NULL,"
    " state TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL, tokens INTEGER NOT NULL DEFAULT 0,"
    " wei INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT, cancel INTEGER NOT NULL DEFAULT 0) STRICT;"
    "CREATE INDEX agent_tasks_state ON agent_tasks(state, id);"
    "CREATE TABLE agent_steps (task INTEGER NOT NULL REFERENCES agent_tasks(id) ON DELETE CASCADE,"
    " n INTEGER NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, tool TEXT, call_id TEXT, args TEXT,"
    " output TEXT, tokens INTEGER NOT NULL DEFAULT 0, wei INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL, PRIMARY KEY (task, n)) STRICT;";

static int64_t now_s(void) { return (int64_t)time(NULL); }

static char *dup_col(sqlite3_stmt *st, int i) {
  const unsigned char *t = sqlite3_column_text(st, i);
  return t ? strdup((const char *)t) : NULL;
}

void agent_task_clear(agent_task *t) {
  free(t->input);
  free(t->result);
  free(t->error);
  memset(t, 0, sizeof *t);
}

void agent_steps_free(agent_step *s, int n) {
  for (int i = 0; s && i < n; i++) {
    json_decref(s[i].args);
    json_decref(s[i].output);
  }
  free(s);
}

static int exec1(store *s, const char *sql, sqlite3_stmt **out) {
  return sqlite3_prepare_v2(store_db(s), sql, -1, out, NULL) == SQLITE_OK ? 0 : ERR_STORE;
}

int agent_put(store *s, const char *name, const json_t *def) {
  char *text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
  if (!text) return ERR_NOMEM;
  sqlite3_stmt *st;
  int rc = exec1(s, "INSERT INTO agents (name, def, created) VALUES (?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET def = ?2", &st);
  if (!rc) {
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_s());
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
    sqlite3_finalize(st);
  }
  free(text);
  return rc;
}

int agent_get(store *s, const char *name, json_t **def) {
  sqlite3_stmt *st;
  *def = NULL;
  if (exec1(s, "SELECT def FROM agents WHERE name = ?1", &st)) return ERR_STORE;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *def = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
  sqlite3_finalize(st);
  if (rc == SQLITE_DONE) return ERR_NOTFOUND;
  return *def ? 0 : ERR_STORE;
}

int agent_rm(store *s, const char *name) {
  sqlite3_stmt *st;
  if (exec1(s, "DELETE FROM agents WHERE name = ?1", &st)) return ERR_STORE;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc && sqlite3_changes(store_db(s)) == 0) rc = ERR_NOTFOUND;
  return rc;
}

json_t *agent_list(store *s) {
  sqlite3_stmt *st;
  if (exec1(s, "SELECT name, def, created FROM agents ORDER BY name", &st)) return NULL;
  json_t *arr = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) {
    json_t *def = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    json_array_append_new(arr, json_pack("{s:s, s:O?, s:I}", "name", (const char *)sqlite3_column_text(st, 0), "model",
                                         json_object_get(def, "model"), "created", (json_int_t)sqlite3_column_int64(st, 2)));
    json_decref(def);
  }
  sqlite3_finalize(st);
  return arr;
}

int agent_task_add(store *s, const char *agent, const char *input, int64_t *id_out) {
  sqlite3_stmt *st;
  if (exec1(s, "INSERT INTO agent_tasks (agent, input, state, created, updated) VALUES (?1, ?2, 'queued', ?3, ?3)", &st))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, input, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now_s());
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc) *id_out = sqlite3_last_insert_rowid(store_db(s));
  return rc;
}

#define TCOLS "id, agent, input, state, tokens, wei, created, updated, result, error, cancel"

static void task_row(sqlite3_stmt *st, agent_task *t) {
  memset(t, 0, sizeof *t);
  t->id = sqlite3_column_int64(st, 0);
  snprintf(t->agent, sizeof t->agent, "%s", (const char *)sqlite3_column_text(st, 1));
  t->input = dup_col(st, 2);
  snprintf(t->state, sizeof t->state, "%s", (const char *)sqlite3_column_text(st, 3));
  t->tokens = sqlite3_column_int64(st, 4);
  t->wei = sqlite3_column_int64(st, 5);
  t->created = sqlite3_column_int64(st, 6);
  t->updated = sqlite3_column_int64(st, 7);
  t->result = dup_col(st, 8);
  t->error = dup_col(st, 9);
  t->cancel = sqlite3_column_int(st, 10);
}

int agent_task_get(store *s, int64_t id, agent_task *out) {
  sqlite3_stmt *st;
  memset(out, 0, sizeof *out);
  if (exec1(s, "SELECT " TCOLS " FROM agent_tasks WHERE id = ?1", &st)) return ERR_STORE;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) task_row(st, out);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE;
}

int agent_task_set(store *s, int64_t id, const char *state, const char *result, const char *error) {
  sqlite3_stmt *st;
  if (exec1(s, "UPDATE agent_tasks SET state = ?2, result = coalesce(?3, result), error = coalesce(?4, error),"
               " updated = ?5 WHERE id = ?1", &st))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_text(st, 2, state, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, result, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, now_s());
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int agent_task_cancel(store *s, int64_t id) {
  agent_task t;
  int rc = agent_task_get(s, id, &t);
  if (rc) return rc;
  int ended = !strcmp(t.state, AGENT_DONE) || !strcmp(t.state, AGENT_FAILED) || !strcmp(t.state, AGENT_CANCELED);
  agent_task_clear(&t);
  if (ended) return ERR_INVAL;
  sqlite3_stmt *st;
  if (exec1(s, "UPDATE agent_tasks SET cancel = 1, updated = ?2 WHERE id = ?1", &st)) return ERR_STORE;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, now_s());
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int agent_task_spend(store *s, int64_t id, int64_t tokens, int64_t wei) {
  sqlite3_stmt *st;
  if (exec1(s, "UPDATE agent_tasks SET tokens = tokens + ?2, wei = wei + ?3, updated = ?4 WHERE id = ?1", &st))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, id);
  sqlite3_bind_int64(st, 2, tokens);
  sqlite3_bind_int64(st, 3, wei);
  sqlite3_bind_int64(st, 4, now_s());
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int64_t agent_task_next(store *s) {
  sqlite3_stmt *st;
  if (exec1(s, "SELECT id FROM agent_tasks t WHERE state IN ('queued', 'running') OR (state = 'waiting' AND"
               " (cancel = 1 OR EXISTS (SELECT 1 FROM agent_steps p WHERE p.task = t.id AND p.state IN ('o', 'x'))))"
               " ORDER BY id LIMIT 1", &st))
    return 0;
  int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return id;
}

int64_t agent_spent_since(store *s, const char *agent, int64_t since) {
  sqlite3_stmt *st;
  if (exec1(s, "SELECT coalesce(sum(wei), 0) FROM agent_tasks WHERE agent = ?1 AND created >= ?2", &st)) return 0;
  sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, since);
  int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return v;
}

json_t *agent_task_list(store *s, const char *agent, int limit) {
  sqlite3_stmt *st;
  if (exec1(s, "SELECT " TCOLS " FROM agent_tasks WHERE ?1 IS NULL OR agent = ?1 ORDER BY id DESC LIMIT ?2", &st))
    return NULL;
  sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, limit);
  json_t *arr = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) {
    agent_task t;
    task_row(st, &t);
    json_array_append_new(arr, agent_task_json(&t, NULL, 0));
    agent_task_clear(&t);
  }
  sqlite3_finalize(st);
  return arr;
}

static const char *step_state_name(char c) {
  switch (c) {
  case STEP_STARTED: return "started";
  case STEP_DONE: return "done";
  case STEP_FAILED: return "failed";
  case STEP_AWAITING: return "awaiting approval";
  case STEP_APPROVED: return "approved";
  case STEP_DENIED: return "denied";
  default: return "?";
  }
}

json_t *agent_task_json(const agent_task *t, const agent_step *steps, int n) {
  json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)t->id, "agent", t->agent, "input",
                        t->input ? t->input : "", "state", t->state, "tokens", (json_int_t)t->tokens, "wei",
                        (json_int_t)t->wei, "created", (json_int_t)t->created, "updated", (json_int_t)t->updated);
  if (t->result) json_object_set_new(j, "result", json_string(t->result));
  if (t->error) json_object_set_new(j, "error", json_string(t->error));
  if (t->cancel) json_object_set_new(j, "cancel_requested", json_true());
  if (steps) {
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
      const agent_step *p = &steps[i];
      json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:I, s:I}", "n", p->n, "kind", p->kind == 'm' ? "model" : "tool", "state",
                            step_state_name(p->state), "tokens", (json_int_t)p->tokens, "wei", (json_int_t)p->wei,
                            "bytes", (json_int_t)p->bytes);
      if (p->kind == 't') {
        json_object_set_new(o, "tool", json_string(p->tool));
        if (p->args) json_object_set(o, "args", p->args);
      }
      if (p->output) json_object_set(o, "output", p->output);
      json_array_append_new(arr, o);
    }
    json_object_set_new(j, "steps", arr);
  }
  return j;
}

int agent_steps_load(store *s, int64_t task, agent_step **out, int *n_out) {
  sqlite3_stmt *st;
  *out = NULL;
  *n_out = 0;
  if (exec1(s, "SELECT n, kind, state, tool, call_id, args, output, tokens, wei, bytes FROM agent_steps WHERE task = ?1"
               " ORDER BY n LIMIT ?2", &st))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, task);
  sqlite3_bind_int(st, 2, AGENT_MAX_STEPS_LOADED);
  agent_step *v = calloc(AGENT_MAX_STEPS_LOADED, sizeof *v);
  if (!v) {
    sqlite3_finalize(st);
    return ERR_NOMEM;
  }
  int n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    agent_step *p = &v[n++];
    p->n = sqlite3_column_int(st, 0);
    p->kind = ((const char *)sqlite3_column_text(st, 1))[0];
    p->state = ((const char *)sqlite3_column_text(st, 2))[0];
    const unsigned char *tool = sqlite3_column_text(st, 3), *cid = sqlite3_column_text(st, 4);
    snprintf(p->tool, sizeof p->tool, "%s", tool ? (const char *)tool : "");
    snprintf(p->call_id, sizeof p->call_id, "%s", cid ? (const char *)cid : "");
    const unsigned char *a = sqlite3_column_text(st, 5), *o = sqlite3_column_text(st, 6);
    p->args = a ? json_loads((const char *)a, 0, NULL) : NULL;
    p->output = o ? json_loads((const char *)o, 0, NULL) : NULL;
    p->tokens = sqlite3_column_int64(st, 7);
    p->wei = sqlite3_column_int64(st, 8);
    p->bytes = sqlite3_column_int64(st, 9);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    agent_steps_free(v, n);
    return ERR_STORE;
  }
  *out = v;
  *n_out = n;
  return 0;
}

int agent_step_put(store *s, int64_t task, const agent_step *p, int64_t add_tokens, int64_t add_wei) {
  char *args = p->args ? json_dumps(p->args, JSON_COMPACT) : NULL, *output = p->output ? json_dumps(p->output, JSON_COMPACT) : NULL;
  char kind[2] = {p->kind, 0}, state[2] = {p->state, 0};
  int rc = store_begin(s);
  sqlite3_stmt *st = NULL;
  if (!rc && !(rc = exec1(s, "INSERT OR REPLACE INTO agent_steps (task, n, kind, state, tool, call_id, args, output,"
                             " tokens, wei, bytes, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)", &st))) {
    sqlite3_bind_int64(st, 1, task);
    sqlite3_bind_int(st, 2, p->n);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->kind == 't' ? p->tool : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->kind == 't' ? p->call_id : NULL, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, args, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, output, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, p->tokens);
    sqlite3_bind_int64(st, 10, p->wei);
    sqlite3_bind_int64(st, 11, p->bytes);
    sqlite3_bind_int64(st, 12, now_s());
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
    sqlite3_finalize(st);
  }
  if (!rc && (add_tokens || add_wei)) rc = agent_task_spend(s, task, add_tokens, add_wei);
  if (!rc) rc = store_commit(s);
  else if (store_in_txn(s)) store_rollback(s);
  free(args);
  free(output);
  return rc;
}

int agent_step_decide(store *s, int64_t task, int approve) {
  sqlite3_stmt *st;
  if (exec1(s, "UPDATE agent_steps SET state = ?2, updated = ?3 WHERE task = ?1 AND state = 'a' AND EXISTS (SELECT 1"
               " FROM agent_tasks t WHERE t.id = ?1 AND t.state = 'waiting' AND t.cancel = 0)", &st))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, task);
  sqlite3_bind_text(st, 2, approve ? "o" : "x", -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now_s());
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc && sqlite3_changes(store_db(s)) == 0) rc = ERR_NOTFOUND;
  return rc;
}
