/* agent/a2a_calls — see a2a_calls.h. */
#include "agent/a2a_calls.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/ident.h"

const char a2a_calls_schema_v1[] =
    "CREATE TABLE a2a_calls (id BLOB NOT NULL, provider BLOB NOT NULL, agent TEXT NOT NULL, input TEXT NOT NULL,"
    " max_wei INTEGER NOT NULL, cap INTEGER NOT NULL, rate INTEGER NOT NULL DEFAULT 0, deadline INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " channel BLOB, result TEXT, created INTEGER NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (provider, id));"
    "CREATE INDEX a2a_calls_state ON a2a_calls(state);";

int a2a_calls_open(store *s, const a2a_call_row *r) {
  if (r->max_wei > INT64_MAX || r->cap > INT64_MAX || r->rate > INT64_MAX) return ERR_RANGE;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s),
                         "INSERT OR IGNORE INTO a2a_calls (id, provider, agent, input, max_wei, cap, deadline, state,"
                         " created, updated, channel, rate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8, ?8, ?9, ?10)",
                         -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, r->id, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, r->provider, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, r->agent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, r->input, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, (int64_t)r->max_wei);
  sqlite3_bind_int64(st, 6, (int64_t)r->cap);
  sqlite3_bind_int64(st, 7, r->deadline);
  sqlite3_bind_int64(st, 8, (int64_t)time(NULL));
  if (r->has_channel) sqlite3_bind_blob(st, 9, r->channel, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 10, (int64_t)r->rate);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int a2a_calls_end(store *s, const uint8_t id[16], const uint8_t provider[32], const char *state, const char *result) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE a2a_calls SET state = ?3, result = coalesce(?4, result), updated = ?5"
                         " WHERE provider = ?2 AND id = ?1", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, provider, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, state, -1, SQLITE_STATIC);
  if (result) sqlite3_bind_text(st, 4, result, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, (int64_t)time(NULL));
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

void a2a_call_row_clear(a2a_call_row *r) {
  free(r->input);
  memset(r, 0, sizeof *r);
}

/* A blob column of exactly n bytes into out. 0 or ERR_FORMAT. */
static int blob(sqlite3_stmt *st, int col, uint8_t *out, int n) {
  if (sqlite3_column_bytes(st, col) != n) return ERR_FORMAT;
  memcpy(out, sqlite3_column_blob(st, col), (size_t)n);
  return 0;
}

int a2a_calls_list_open(store *s, a2a_call_row *out, int cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT id, provider, agent, input, max_wei, cap, deadline, channel, rate FROM a2a_calls"
                         " WHERE state = 'open' ORDER BY created", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  int n = 0;
  while (n < cap && sqlite3_step(st) == SQLITE_ROW) {
    a2a_call_row *r = &out[n];
    memset(r, 0, sizeof *r);
    if (blob(st, 0, r->id, 16) || blob(st, 1, r->provider, 32)) continue;
    snprintf(r->agent, sizeof r->agent, "%s", (const char *)sqlite3_column_text(st, 2));
    r->input = strdup((const char *)sqlite3_column_text(st, 3));
    if (!r->input) continue;
    r->max_wei = (uint64_t)sqlite3_column_int64(st, 4);
    r->cap = (uint64_t)sqlite3_column_int64(st, 5);
    r->deadline = sqlite3_column_int64(st, 6);
    r->has_channel = !blob(st, 7, r->channel, 32);
    r->rate = (uint64_t)sqlite3_column_int64(st, 8);
    n++;
  }
  sqlite3_finalize(st);
  return n;
}

int a2a_calls_lost(store *s, const uint8_t provider[32], uint8_t ids_out[][16], int cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT id FROM a2a_calls WHERE provider = ?1 AND state = 'lost'", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, provider, 32, SQLITE_STATIC);
  int n = 0;
  while (n < cap && sqlite3_step(st) == SQLITE_ROW)
    if (!blob(st, 0, ids_out[n], 16)) n++;
  sqlite3_finalize(st);
  return n;
}

json_t *a2a_calls_json(store *s, int n) {
  json_t *l = json_array();
  sqlite3_stmt *st;
  if (!l || sqlite3_prepare_v2(store_db(s), "SELECT id, provider, agent, state, result, updated FROM a2a_calls"
                               " ORDER BY updated DESC, created DESC LIMIT ?1", -1, &st, NULL) != SQLITE_OK)
    return l;
  sqlite3_bind_int(st, 1, n);
  while (sqlite3_step(st) == SQLITE_ROW) {
    uint8_t id[16], pk[32];
    char hex[33], who[IDENT_ID_BUF];
    if (blob(st, 0, id, 16) || blob(st, 1, pk, 32)) continue;
    hex_encode(id, 16, hex);
    ident_id_encode(pk, who);
    const char *res = (const char *)sqlite3_column_text(st, 4);
    json_array_append_new(l, json_pack("{s:s, s:s, s:s, s:s, s:s?, s:I}", "id", hex, "node_id", who, "agent",
                                       (const char *)sqlite3_column_text(st, 2), "state",
                                       (const char *)sqlite3_column_text(st, 3), "result", res,
                                       "updated", (json_int_t)sqlite3_column_int64(st, 5)));
  }
  sqlite3_finalize(st);
  return l;
}
