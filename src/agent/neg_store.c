/* agent/neg_store — see neg_store.h. */
#include "agent/neg_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/neg_deal.h"
#include "core/err.h"
#include "core/hex.h"

const char neg_schema_v1[] =
    "CREATE TABLE neg_intents (id TEXT PRIMARY KEY, kind TEXT NOT NULL, def TEXT NOT NULL,"
    " created INTEGER NOT NULL) STRICT;"
    "CREATE TABLE neg_sessions (id TEXT PRIMARY KEY, peer BLOB NOT NULL, opener INTEGER NOT NULL,"
    " my_intent TEXT NOT NULL, peer_intent TEXT NOT NULL, state TEXT NOT NULL, rounds INTEGER NOT NULL,"
    " my_utility REAL NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL) STRICT;"
    "CREATE TABLE neg_deals (session TEXT PRIMARY KEY, seller BLOB NOT NULL, buyer BLOB NOT NULL,"
    " price INTEGER NOT NULL, volume INTEGER NOT NULL, expires_at INTEGER NOT NULL, deal TEXT NOT NULL,"
    " created INTEGER NOT NULL) STRICT;"
    "CREATE INDEX neg_deals_pair ON neg_deals(seller, buyer, created);";

static int prep(store *s, const char *sql, sqlite3_stmt **st) {
  return sqlite3_prepare_v2(store_db(s), sql, -1, st, NULL) == SQLITE_OK ? 0 : ERR_STORE;
}

static int done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : rc == SQLITE_CONSTRAINT ? ERR_EXISTS : ERR_STORE;
}

int neg_store_intent_put(store *s, const char *id, const char *kind, const char *def, int replace) {
  sqlite3_stmt *st;
  if (prep(s, replace ? "INSERT OR REPLACE INTO neg_intents (id, kind, def, created) VALUES (?1, ?2, ?3, ?4)"
                      : "INSERT INTO neg_intents (id, kind, def, created) VALUES (?1, ?2, ?3, ?4)",
           &st))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, def, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (int64_t)time(NULL));
  return done(st);
}

char *neg_store_intent_get(store *s, const char *id) {
  sqlite3_stmt *st;
  if (prep(s, "SELECT def FROM neg_intents WHERE id = ?1", &st)) return NULL;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  char *r = sqlite3_step(st) == SQLITE_ROW ? strdup((const char *)sqlite3_column_text(st, 0)) : NULL;
  sqlite3_finalize(st);
  return r;
}

int neg_store_intent_rm(store *s, const char *id) {
  sqlite3_stmt *st;
  if (prep(s, "DELETE FROM neg_intents WHERE id = ?1", &st)) return ERR_STORE;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = done(st);
  if (!rc && sqlite3_changes(store_db(s)) == 0) rc = ERR_NOTFOUND;
  return rc;
}

json_t *neg_store_intent_list(store *s) {
  sqlite3_stmt *st;
  if (prep(s, "SELECT def FROM neg_intents ORDER BY id", &st)) return NULL;
  json_t *l = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) {
    json_t *d = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    if (d) json_array_append_new(l, d);
  }
  sqlite3_finalize(st);
  return l;
}

int neg_store_session_put(store *s, const neg_session_row *r) {
  sqlite3_stmt *st;
  if (prep(s,
           "INSERT INTO neg_sessions (id, peer, opener, my_intent, peer_intent, state, rounds, my_utility, reason, created,"
           " updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) ON CONFLICT(id) DO UPDATE SET"
           " state = ?6, rounds = ?7, my_utility = ?8, reason = ?9, updated = ?10",
           &st))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, r->peer, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 3, r->opener);
  sqlite3_bind_text(st, 4, r->my_intent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, r->peer_intent, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, r->state, -1, SQLITE_STATIC);
  sqlite3_bind_int(st, 7, r->rounds);
  sqlite3_bind_double(st, 8, r->my_utility);
  sqlite3_bind_text(st, 9, r->reason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 10, (int64_t)time(NULL));
  return done(st);
}

int neg_store_sessions_abandon(store *s) {
  sqlite3_stmt *st;
  if (prep(s, "UPDATE neg_sessions SET state = 'failed', reason = 'the node restarted', updated = ?1 WHERE state = 'running'",
           &st))
    return ERR_STORE;
  sqlite3_bind_int64(st, 1, (int64_t)time(NULL));
  int rc = done(st);
  return rc ? rc : sqlite3_changes(store_db(s));
}

json_t *neg_store_session_list(store *s) {
  sqlite3_stmt *st;
  if (prep(s,
           "SELECT s.id, s.peer, s.opener, s.my_intent, s.peer_intent, s.state, s.rounds, s.my_utility, s.reason,"
           " s.created, d.deal, d.seller, d.buyer, d.price FROM neg_sessions s LEFT JOIN neg_deals d ON d.session = s.id"
           " ORDER BY s.created DESC, s.rowid DESC",
           &st))
    return NULL;
  json_t *l = json_array();
  while (sqlite3_step(st) == SQLITE_ROW) {
    char peer[65];
    hex_encode(sqlite3_column_blob(st, 1), 32, peer);
    json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:i, s:f, s:s, s:I}", "id", sqlite3_column_text(st, 0), "peer",
                          peer, "opener", sqlite3_column_int(st, 2), "my_intent", sqlite3_column_text(st, 3),
                          "peer_intent", sqlite3_column_text(st, 4), "state", sqlite3_column_text(st, 5), "rounds",
                          sqlite3_column_int(st, 6), "my_utility", sqlite3_column_double(st, 7), "reason",
                          sqlite3_column_text(st, 8), "created", (json_int_t)sqlite3_column_int64(st, 9));
    if (o && sqlite3_column_type(st, 10) != SQLITE_NULL) {
      json_t *d = json_loads((const char *)sqlite3_column_text(st, 10), 0, NULL);
      neg_deal dl;
      int ok = d && !neg_deal_from_json(d, &dl);
      int verified = ok && !neg_deal_verify(&dl);
      if (ok) neg_deal_deinit(&dl);
      char seller[65], buyer[65], price[24];
      hex_encode(sqlite3_column_blob(st, 11), 32, seller);
      hex_encode(sqlite3_column_blob(st, 12), 32, buyer);
      snprintf(price, sizeof price, "%lld", (long long)sqlite3_column_int64(st, 13));
      json_object_set_new(o, "deal", d ? d : json_null());
      json_object_set_new(o, "verified", json_boolean(verified));
      json_object_set_new(o, "seller", json_string(seller));
      json_object_set_new(o, "buyer", json_string(buyer));
      json_object_set_new(o, "price_per_1k_wei", json_string(price));
    }
    if (o) json_array_append_new(l, o);
  }
  sqlite3_finalize(st);
  return l;
}

int neg_store_deal_put(store *s, const char *session, const uint8_t seller[32], const uint8_t buyer[32],
                       uint64_t price_per_1k, uint64_t volume, uint64_t expires_at_s, const char *deal_json) {
  if (price_per_1k > INT64_MAX || volume > INT64_MAX || expires_at_s > INT64_MAX) return ERR_RANGE;
  sqlite3_stmt *st;
  if (prep(s,
           "INSERT OR REPLACE INTO neg_deals (session, seller, buyer, price, volume, expires_at, deal, created)"
           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
           &st))
    return ERR_STORE;
  sqlite3_bind_text(st, 1, session, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, seller, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, buyer, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (int64_t)price_per_1k);
  sqlite3_bind_int64(st, 5, (int64_t)volume);
  sqlite3_bind_int64(st, 6, (int64_t)expires_at_s);
  sqlite3_bind_text(st, 7, deal_json, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 8, (int64_t)time(NULL));
  return done(st);
}

/* Generated tokens seller sold buyer at price since created_s (market/receipt rows of
 * either role; one per request), or UINT64_MAX when they cannot be counted. */
static uint64_t tokens_used(store *s, const uint8_t seller[32], const uint8_t buyer[32], uint64_t price, uint64_t created_s) {
  sqlite3_stmt *st;
  if (prep(s,
           "SELECT COALESCE(SUM(t), 0) FROM (SELECT MAX(gen_tokens) AS t FROM market_receipts WHERE provider = ?1"
           " AND client = ?2 AND price_gen = ?3 AND created >= ?4 GROUP BY request)",
           &st))
    return UINT64_MAX;
  char p[24];
  snprintf(p, sizeof p, "%llu", (unsigned long long)price);
  sqlite3_bind_blob(st, 1, seller, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, buyer, 32, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, p, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 4, (int64_t)created_s);
  uint64_t n = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : UINT64_MAX;
  sqlite3_finalize(st);
  return n;
}

/* The deal text verifies and binds exactly these two parties; its price and end. */
static int deal_ok(store *s, const char *text, const uint8_t seller[32], const uint8_t buyer[32], uint64_t now_s,
                   uint64_t *price_out) {
  json_t *j = json_loads(text, 0, NULL);
  neg_deal dl;
  int rc = j && !neg_deal_from_json(j, &dl) ? 0 : ERR_FORMAT;
  json_decref(j);
  if (rc) return rc;
  uint8_t a[32], b[32];
  neg_deal_payment pay;
  neg_deal_payment_terms(&dl, &pay);
  rc = neg_deal_verify(&dl);
  if (!rc && (hex_parse(json_string_value(json_object_get(dl.doc, "a")), a, 32) ||
              hex_parse(json_string_value(json_object_get(dl.doc, "b")), b, 32)))
    rc = ERR_FORMAT;
  if (!rc && !((!memcmp(a, seller, 32) && !memcmp(b, buyer, 32)) || (!memcmp(a, buyer, 32) && !memcmp(b, seller, 32))))
    rc = ERR_INVAL;
  if (!rc && !pay.has_price) rc = ERR_INVAL;
  uint64_t created_s = (uint64_t)json_integer_value(json_object_get(dl.doc, "created_ms")) / 1000;
  if (!rc && pay.expires_s && created_s + pay.expires_s <= now_s) rc = ERR_EXPIRED;
  if (!rc && pay.volume_tokens && tokens_used(s, seller, buyer, pay.price_per_1k_wei, created_s) >= pay.volume_tokens)
    rc = ERR_RANGE; /* the agreed volume is used up */
  if (!rc) *price_out = pay.price_per_1k_wei;
  neg_deal_deinit(&dl);
  return rc;
}

int neg_store_deal_price(store *s, const uint8_t seller[32], const uint8_t buyer[32], uint64_t now_s, uint64_t *price_out) {
  sqlite3_stmt *st;
  if (prep(s, "SELECT deal FROM neg_deals WHERE seller = ?1 AND buyer = ?2 ORDER BY created DESC, rowid DESC LIMIT 8", &st))
    return ERR_NOTFOUND;
  sqlite3_bind_blob(st, 1, seller, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, buyer, 32, SQLITE_STATIC);
  int rc = ERR_NOTFOUND;
  while (rc && sqlite3_step(st) == SQLITE_ROW)
    if (!deal_ok(s, (const char *)sqlite3_column_text(st, 0), seller, buyer, now_s, price_out)) rc = 0;
  sqlite3_finalize(st);
  return rc;
}
