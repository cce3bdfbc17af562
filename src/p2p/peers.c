/* p2p/peers — the peer book in SQLite; see peers.h. */
#include "p2p/peers.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

const char peers_schema_v1[] =
    "CREATE TABLE peers ("
    "  pk BLOB PRIMARY KEY CHECK (length(pk) = 32),"
    "  addrs TEXT NOT NULL DEFAULT '[]',"       /* JSON list, most recent first */
    "  source TEXT NOT NULL DEFAULT '',"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  retry_after INTEGER NOT NULL DEFAULT 0"
    ") STRICT;"
    "CREATE INDEX peers_last_seen ON peers(last_seen DESC);"
    "CREATE TABLE dht_nodes ("
    "  id BLOB NOT NULL CHECK (length(id) = 20),"
    "  addr TEXT NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  PRIMARY KEY (id, addr)"
    ") STRICT;";

const char *peers_state_name(peer_state st) {
  return st == PEER_UP ? "up" : st == PEER_DOWN ? "down" : "unknown";
}

int64_t peers_backoff_ms(int failures) {
  if (failures <= 0) return 0;
  int64_t b = PEERS_BACKOFF_MIN_MS;
  for (int i = 1; i < failures && b < PEERS_BACKOFF_MAX_MS; i++) b *= 2;
  return b > PEERS_BACKOFF_MAX_MS ? PEERS_BACKOFF_MAX_MS : b;
}

static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

/* Merges addr into the JSON list text (front, de-duplicated, capped). Returns new text
 * (caller frees) or NULL. */
static char *merge_addrs(const char *json_text, const char *addr) {
  json_t *old = json_loads(json_text ? json_text : "[]", 0, NULL);
  json_t *out = json_array();
  if (addr && *addr) json_array_append_new(out, json_string(addr));
  size_t i;
  json_t *v;
  if (json_is_array(old)) {
    json_array_foreach(old, i, v) {
      if (json_array_size(out) >= PEERS_MAX_ADDRS) break;
      if (!json_is_string(v) || (addr && !strcmp(json_string_value(v), addr))) continue;
      json_array_append(out, v);
    }
  }
  json_decref(old);
  char *s = json_dumps(out, JSON_COMPACT);
  json_decref(out);
  return s;
}

static int upsert(store *s, const uint8_t pk[static 32], const char *addr, const char *source, int64_t now_ms,
                  int alive) {
  if (addr && strlen(addr) >= PEERS_ADDR_MAX) return ERR_TOOBIG;
  sqlite3 *db = store_db(s);
  sqlite3_stmt *st;
  char *old = NULL;
  if (sqlite3_prepare_v2(db, "SELECT addrs FROM peers WHERE pk = ?", -1, &st, NULL) != SQLITE_OK) return ERR_STORE;
  sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
  int exists = sqlite3_step(st) == SQLITE_ROW;
  if (exists) old = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  char *addrs = merge_addrs(old, addr);
  free(old);
  if (!addrs) return ERR_NOMEM;
  const char *sql = exists
      ? (alive ? "UPDATE peers SET addrs = ?2, last_seen = ?3, failures = 0, retry_after = 0 WHERE pk = ?1"
               : "UPDATE peers SET addrs = ?2 WHERE pk = ?1")
      : (alive ? "INSERT INTO peers(pk, addrs, first_seen, last_seen, source) VALUES (?1, ?2, ?3, ?3, ?4)"
               : "INSERT INTO peers(pk, addrs, first_seen, source) VALUES (?1, ?2, ?3, ?4)");
  int rc = ERR_STORE;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, addrs, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_ms);
    if (!exists) sqlite3_bind_text(st, 4, source ? source : "", -1, SQLITE_STATIC);
    rc = step_done(st);
  }
  free(addrs);
  return rc;
}

int peers_seen(store *s, const uint8_t pk[static 32], const char *addr, const char *source, int64_t now_ms) {
  return upsert(s, pk, addr, source, now_ms, 1);
}

int peers_add_addr(store *s, const uint8_t pk[static 32], const char *addr, const char *source, int64_t now_ms) {
  return upsert(s, pk, addr, source, now_ms, 0);
}

int peers_failed(store *s, const uint8_t pk[static 32], int64_t now_ms, double jitter) {
  peer_info p;
  int rc = peers_get(s, pk, now_ms, &p);
  if (rc) return rc;
  int f = p.failures + 1;
  if (jitter < -0.2) jitter = -0.2;
  if (jitter > 0.2) jitter = 0.2;
  int64_t wait = (int64_t)((double)peers_backoff_ms(f) * (1.0 + jitter));
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE peers SET failures = ?2, retry_after = ?3 WHERE pk = ?1", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, f);
  sqlite3_bind_int64(st, 3, now_ms + wait);
  return step_done(st);
}

static void row_to_info(sqlite3_stmt *st, int64_t now_ms, peer_info *p) {
  memset(p, 0, sizeof *p);
  if (sqlite3_column_bytes(st, 0) == 32) memcpy(p->pk, sqlite3_column_blob(st, 0), 32);
  json_t *a = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
  size_t i;
  json_t *v;
  if (json_is_array(a)) {
    json_array_foreach(a, i, v) {
      if (p->n_addrs >= PEERS_MAX_ADDRS) break;
      if (json_is_string(v) && strlen(json_string_value(v)) < PEERS_ADDR_MAX)
        strcpy(p->addrs[p->n_addrs++], json_string_value(v));
    }
  }
  json_decref(a);
  snprintf(p->source, sizeof p->source, "%s", (const char *)sqlite3_column_text(st, 2));
  p->last_seen_ms = sqlite3_column_int64(st, 3);
  p->failures = sqlite3_column_int(st, 4);
  p->retry_after_ms = sqlite3_column_int64(st, 5);
  if (p->failures >= PEERS_DOWN_FAILURES) p->state = PEER_DOWN;
  else if (p->last_seen_ms && now_ms - p->last_seen_ms <= PEERS_UP_WINDOW_MS && p->failures == 0) p->state = PEER_UP;
  else p->state = PEER_UNKNOWN;
}

#define COLS "pk, addrs, source, last_seen, failures, retry_after"

int peers_get(store *s, const uint8_t pk[static 32], int64_t now_ms, peer_info *out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " COLS " FROM peers WHERE pk = ?", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
  int rc = ERR_NOTFOUND;
  if (sqlite3_step(st) == SQLITE_ROW) {
    row_to_info(st, now_ms, out);
    rc = 0;
  }
  sqlite3_finalize(st);
  return rc;
}

static int list_query(store *s, const char *sql, int64_t now_ms, int bind_now, peer_info *out, size_t cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) return ERR_STORE;
  if (bind_now) sqlite3_bind_int64(st, 1, now_ms);
  sqlite3_bind_int64(st, bind_now ? 2 : 1, (sqlite3_int64)cap);
  size_t n = 0;
  while (n < cap && sqlite3_step(st) == SQLITE_ROW) row_to_info(st, now_ms, &out[n++]);
  sqlite3_finalize(st);
  return (int)n;
}

int peers_list(store *s, int64_t now_ms, peer_info *out, size_t cap) {
  return list_query(s, "SELECT " COLS " FROM peers ORDER BY last_seen DESC, first_seen DESC LIMIT ?", now_ms, 0, out,
                    cap);
}

int peers_due(store *s, int64_t now_ms, peer_info *out, size_t cap) {
  return list_query(s, "SELECT " COLS " FROM peers WHERE retry_after <= ? AND addrs != '[]' "
                       "ORDER BY failures ASC, last_seen DESC LIMIT ?", now_ms, 1, out, cap);
}

int peers_remove(store *s, const uint8_t pk[static 32]) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "DELETE FROM peers WHERE pk = ?", -1, &st, NULL) != SQLITE_OK) return ERR_STORE;
  sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
  return step_done(st);
}

int peers_dht_cache_put(store *s, const uint8_t id[static 20], const char *addr, int64_t now_ms) {
  sqlite3_stmt *st;
  if (strlen(addr) >= PEERS_ADDR_MAX) return ERR_TOOBIG;
  if (sqlite3_prepare_v2(store_db(s), "INSERT OR REPLACE INTO dht_nodes(id, addr, last_seen) VALUES (?, ?, ?)", -1,
                         &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, id, 20, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, addr, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now_ms);
  return step_done(st);
}

int peers_dht_cache_load(store *s, uint8_t (*ids)[20], char (*addrs)[PEERS_ADDR_MAX], size_t cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT id, addr FROM dht_nodes ORDER BY last_seen DESC LIMIT ?", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, (sqlite3_int64)cap);
  size_t n = 0;
  while (n < cap && sqlite3_step(st) == SQLITE_ROW) {
    if (sqlite3_column_bytes(st, 0) != 20 || sqlite3_column_bytes(st, 1) >= PEERS_ADDR_MAX) continue;
    memcpy(ids[n], sqlite3_column_blob(st, 0), 20);
    strcpy(addrs[n], (const char *)sqlite3_column_text(st, 1));
    n++;
  }
  sqlite3_finalize(st);
  return (int)n;
}
