/* agent/a2a_task — see a2a_task.h. */
#include "agent/a2a_task.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/err.h"

const char a2a_schema_v1[] =
    "ALTER TABLE agent_tasks ADD COLUMN caller BLOB;"
    "ALTER TABLE agent_tasks ADD COLUMN remote_id BLOB;"
    "ALTER TABLE agent_tasks ADD COLUMN price INTEGER NOT NULL DEFAULT 0;"
    "CREATE UNIQUE INDEX agent_tasks_remote ON agent_tasks(caller, remote_id) WHERE caller IS NOT NULL;";

const char a2a_schema_v2[] =
    "ALTER TABLE agent_tasks ADD COLUMN rate INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE agent_tasks ADD COLUMN max_wei INTEGER NOT NULL DEFAULT 0;";

int a2a_task_find(store *s, const uint8_t caller[32], const uint8_t remote_id[16], int64_t *id_out,
                  a2a_price *price_out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT id, price, rate, max_wei FROM agent_tasks WHERE caller = ?1 AND remote_id = ?2",
                         -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, caller, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, remote_id, 16, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *id_out = sqlite3_column_int64(st, 0);
    if (price_out) {
      price_out->price = (uint64_t)sqlite3_column_int64(st, 1);
      price_out->rate = (uint64_t)sqlite3_column_int64(st, 2);
      price_out->max_wei = (uint64_t)sqlite3_column_int64(st, 3);
    }
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE;
}

int a2a_task_add(store *s, const char *agent, const char *input, const uint8_t caller[32], const uint8_t remote_id[16],
                 const a2a_price *price, int64_t *id_out) {
  if (price->price > INT64_MAX || price->rate > INT64_MAX || price->max_wei > INT64_MAX) return ERR_RANGE;
  int rc = a2a_task_find(s, caller, remote_id, id_out, NULL);
  if (rc != ERR_NOTFOUND) return rc ? rc : ERR_EXISTS;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "INSERT INTO agent_tasks (agent, input, state, created, updated, caller, remote_id, price, rate,"
                         " max_wei) VALUES (?1, ?2, 'queued', ?3, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, input, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
  sqlite3_bind_blob(st, 4, caller, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, remote_id, 16, SQLITE_STATIC);
  sqlite3_bind_int64(st, 6, (int64_t)price->price);
  sqlite3_bind_int64(st, 7, (int64_t)price->rate);
  sqlite3_bind_int64(st, 8, (int64_t)price->max_wei);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (!rc) *id_out = sqlite3_last_insert_rowid(store_db(s));
  return rc;
}

int a2a_agents_for_sale(store *s, a2a_agent_offer *out, size_t cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT name, def FROM agents ORDER BY name", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  int n = 0;
  while ((size_t)n < cap && sqlite3_step(st) == SQLITE_ROW) {
    json_t *def = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
    json_t *sell = json_object_get(def, "sell");
    if (json_is_object(sell)) {
      a2a_agent_offer *o = &out[n++];
      memset(o, 0, sizeof *o);
      snprintf(o->name, sizeof o->name, "%s", (const char *)sqlite3_column_text(st, 0));
      snprintf(o->description, sizeof o->description, "%s",
               json_is_string(json_object_get(sell, "description")) ? json_string_value(json_object_get(sell, "description")) : "");
      o->price_wei = (uint64_t)json_integer_value(json_object_get(sell, "price_wei"));
      o->price_1k = (uint64_t)json_integer_value(json_object_get(sell, "price_per_1k"));
      size_t k;
      json_t *x;
      json_array_foreach(json_object_get(sell, "skills"), k, x) {
        if (o->n_skills >= A2A_MAX_SKILLS) break;
        if (json_is_string(x) && a2a_skill_ok(json_string_value(x)))
          snprintf(o->skills[o->n_skills++], A2A_SKILL_MAX, "%s", json_string_value(x));
      }
    }
    json_decref(def);
  }
  sqlite3_finalize(st);
  return n;
}
