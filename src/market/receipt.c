/* market/receipt — receipts of paid generations and per-provider statistics; see receipt.h.
 *
 * Prices and amounts are uint64 wei and stored as decimal TEXT (they may exceed SQLite's
 * signed 64-bit INTEGER); token counts are INTEGER (at most INT64_MAX, checked by put).
 * Each write is one statement; mkt_receipt_put runs in its own BEGIN IMMEDIATE transaction
 * unless the caller has one open (then the caller's COMMIT makes it durable). The store
 * opens with synchronous=FULL, so a committed receipt is on disk when put returns.
 * Loop thread only (the store's owner). */
#include "market/receipt.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/ident.h"

const char market_schema_v1[] =
    "CREATE TABLE market_receipts ("
    "  role INTEGER NOT NULL CHECK (role IN (1, 2)),"          /* 1 client, 2 provider */
    "  request BLOB NOT NULL CHECK (length(request) = 16),"
    "  request_hash BLOB CHECK (request_hash IS NULL OR length(request_hash) = 32),"
    "  provider BLOB NOT NULL CHECK (length(provider) = 32),"
    "  client BLOB NOT NULL CHECK (length(client) = 32),"
    "  model BLOB NOT NULL CHECK (length(model) = 32),"
    "  channel BLOB CHECK (channel IS NULL OR length(channel) = 32)," /* NULL when free */
    "  prompt_tokens INTEGER NOT NULL CHECK (prompt_tokens >= 0),"
    "  gen_tokens INTEGER NOT NULL CHECK (gen_tokens >= 0),"
    "  price_prompt TEXT NOT NULL,"                            /* wei per 1k tokens, decimal */
    "  price_gen TEXT NOT NULL,"
    "  amount TEXT NOT NULL,"                                  /* wei paid, decimal */
    "  status TEXT NOT NULL CHECK (status IN ('complete', 'partial', 'unpaid')),"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY (request, provider, role)"
    ") STRICT;"
    "CREATE INDEX market_receipts_created ON market_receipts(role, created);"
    "CREATE INDEX market_receipts_channel ON market_receipts(channel, role);"
    "CREATE TABLE market_providers ("
    "  node BLOB PRIMARY KEY CHECK (length(node) = 32),"
    "  successes INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  last_failure INTEGER NOT NULL DEFAULT 0,"               /* unix s, 0 never */
    "  mismatches INTEGER NOT NULL DEFAULT 0,"
    "  verifications INTEGER NOT NULL DEFAULT 0,"
    "  latency_ms REAL NOT NULL DEFAULT -1"                    /* EWMA, -1 unknown */
    ") STRICT;";

#define EWMA_ALPHA 0.3

static int64_t now_s(void) { return (int64_t)time(NULL); }

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v) {
  char d[24];
  snprintf(d, sizeof d, "%" PRIu64, v);
  sqlite3_bind_text(st, i, d, -1, SQLITE_TRANSIENT);
}

/* Strict decimal (1..20 digits, < 2^64) from a TEXT column. */
static int col_u64(sqlite3_stmt *st, int i, uint64_t *out) {
  const char *t = (const char *)sqlite3_column_text(st, i);
  int n = sqlite3_column_bytes(st, i);
  if (!t || n < 1 || n > 20) return ERR_STORE;
  uint64_t v = 0;
  for (int k = 0; k < n; k++) {
    if (t[k] < '0' || t[k] > '9') return ERR_STORE;
    unsigned d = (unsigned)(t[k] - '0');
    if (v > (UINT64_MAX - d) / 10) return ERR_STORE;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static int col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t n) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL || (size_t)sqlite3_column_bytes(st, i) != n) return ERR_STORE;
  memcpy(out, sqlite3_column_blob(st, i), n);
  return 0;
}

int mkt_request_hash(const json_t *params, uint8_t out[32]) {
  char *text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
  if (!text) return ERR_NOMEM;
  crypto_hash_sha256(out, (const unsigned char *)text, strlen(text));
  free(text);
  return 0;
}

static int status_ok(const char *s) {
  return !strcmp(s, "complete") || !strcmp(s, "partial") || !strcmp(s, "unpaid");
}

int mkt_receipt_put(store *s, const mkt_receipt *r) {
  static const char sql[] =
      "INSERT INTO market_receipts (role, request, provider, client, model, channel, prompt_tokens, gen_tokens,"
      " price_prompt, price_gen, amount, status, created, updated, request_hash)"
      " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"
      " ON CONFLICT(request, provider, role) DO UPDATE SET client = excluded.client, model = excluded.model,"
      " request_hash = excluded.request_hash,"
      " channel = excluded.channel, prompt_tokens = excluded.prompt_tokens, gen_tokens = excluded.gen_tokens,"
      " price_prompt = excluded.price_prompt, price_gen = excluded.price_gen,"
      " status = excluded.status, updated = excluded.updated"; /* the amount moves only with a voucher */
  if ((r->role != MKT_CLIENT && r->role != MKT_PROVIDER) || r->prompt_tokens > INT64_MAX ||
      r->gen_tokens > INT64_MAX || !memchr(r->status, 0, sizeof r->status) || !status_ok(r->status))
    return ERR_INVAL;
  sqlite3 *db = store_db(s);
  int own = sqlite3_get_autocommit(db); /* no transaction open: this one is ours */
  if (own && store_begin(s)) return ERR_STORE;
  sqlite3_stmt *st = NULL;
  int rc = ERR_STORE;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) goto fail;
  int64_t now = now_s();
  sqlite3_bind_int(st, 1, (int)r->role);
  sqlite3_bind_blob(st, 2, r->request, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, r->provider, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, r->client, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, r->model, 32, SQLITE_STATIC);
  if (r->has_channel) sqlite3_bind_blob(st, 6, r->channel, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, (sqlite3_int64)r->prompt_tokens);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)r->gen_tokens);
  bind_u64(st, 9, r->price_prompt);
  bind_u64(st, 10, r->price_gen);
  bind_u64(st, 11, r->amount);
  sqlite3_bind_text(st, 12, r->status, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 13, r->created ? r->created : now);
  sqlite3_bind_int64(st, 14, now);
  if (r->has_request_hash) sqlite3_bind_blob(st, 15, r->request_hash, 32, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) goto fail;
  sqlite3_finalize(st);
  st = NULL;
  if (own && store_commit(s)) goto fail; /* durable (synchronous=FULL) before we say so */
  return 0;
fail:
  sqlite3_finalize(st);
  if (own) store_rollback(s);
  return rc;
}

#define RCOLS "role, request, provider, client, model, channel, prompt_tokens, gen_tokens, price_prompt," \
              " price_gen, amount, status, created, request_hash"

static int read_receipt(sqlite3_stmt *st, mkt_receipt *r) {
  memset(r, 0, sizeof *r);
  r->role = (mkt_role)sqlite3_column_int(st, 0);
  int rc = col_blob(st, 1, r->request, 16);
  if (!rc) rc = col_blob(st, 2, r->provider, 32);
  if (!rc) rc = col_blob(st, 3, r->client, 32);
  if (!rc) rc = col_blob(st, 4, r->model, 32);
  if (!rc && sqlite3_column_type(st, 5) != SQLITE_NULL) {
    rc = col_blob(st, 5, r->channel, 32);
    r->has_channel = 1;
  }
  r->prompt_tokens = (uint64_t)sqlite3_column_int64(st, 6);
  r->gen_tokens = (uint64_t)sqlite3_column_int64(st, 7);
  if (!rc) rc = col_u64(st, 8, &r->price_prompt);
  if (!rc) rc = col_u64(st, 9, &r->price_gen);
  if (!rc) rc = col_u64(st, 10, &r->amount);
  const char *status = (const char *)sqlite3_column_text(st, 11);
  if (!rc && (!status || strlen(status) >= sizeof r->status)) rc = ERR_STORE;
  if (!rc) strcpy(r->status, status);
  r->created = sqlite3_column_int64(st, 12);
  if (!rc && sqlite3_column_type(st, 13) != SQLITE_NULL) {
    rc = col_blob(st, 13, r->request_hash, 32);
    r->has_request_hash = 1;
  }
  return rc;
}

int mkt_receipt_list(store *s, mkt_role role, mkt_receipt *out, int cap) {
  if (cap <= 0) return 0;
  if (cap > MKT_RECEIPT_MAX_LIST) cap = MKT_RECEIPT_MAX_LIST;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " RCOLS " FROM market_receipts WHERE ?1 = 0 OR role = ?1"
                         " ORDER BY created DESC, rowid DESC LIMIT ?2", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, (int)role);
  sqlite3_bind_int(st, 2, cap);
  int n = 0, rc = 0, step = SQLITE_DONE;
  while (n < cap && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if ((rc = read_receipt(st, &out[n]))) break;
    n++;
  }
  if (!rc && n < cap && step != SQLITE_DONE) rc = ERR_STORE;
  sqlite3_finalize(st);
  return rc ? rc : n;
}

int mkt_receipt_get(store *s, mkt_role role, const uint8_t request[16], const uint8_t provider[32],
                    mkt_receipt *out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " RCOLS " FROM market_receipts WHERE role = ?1 AND request = ?2"
                         " AND provider = ?3", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, (int)role);
  sqlite3_bind_blob(st, 2, request, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, provider, 32, SQLITE_STATIC);
  int step = sqlite3_step(st);
  int rc = step == SQLITE_ROW ? read_receipt(st, out) : step == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int mkt_receipt_add_amount(store *s, mkt_role role, const uint8_t request[16], const uint8_t provider[32],
                           int64_t delta) {
  mkt_receipt r;
  int rc = mkt_receipt_get(s, role, request, provider, &r);
  if (rc) return rc;
  uint64_t v = r.amount;
  if (delta >= 0 ? (uint64_t)delta > UINT64_MAX - v : (uint64_t)(-(delta + 1)) + 1 > v) return ERR_RANGE;
  v = delta >= 0 ? v + (uint64_t)delta : v - ((uint64_t)(-(delta + 1)) + 1);
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE market_receipts SET amount = ?4, updated = ?5 WHERE role = ?1 AND"
                         " request = ?2 AND provider = ?3", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, (int)role);
  sqlite3_bind_blob(st, 2, request, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, provider, 32, SQLITE_STATIC);
  bind_u64(st, 4, v);
  sqlite3_bind_int64(st, 5, now_s());
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int mkt_receipt_sum_channel(store *s, mkt_role role, const uint8_t channel[32], uint64_t *sum_out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT amount FROM market_receipts WHERE channel = ?1 AND role = ?2", -1,
                         &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, channel, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)role);
  uint64_t sum = 0;
  int rc = 0, step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t v;
    if ((rc = col_u64(st, 0, &v))) break;
    if (v > UINT64_MAX - sum) { rc = ERR_RANGE; break; } /* more than 2^64 wei: not a real channel */
    sum += v;
  }
  if (!rc && step != SQLITE_DONE) rc = ERR_STORE;
  sqlite3_finalize(st);
  if (!rc) *sum_out = sum;
  return rc;
}

int mkt_receipt_sum_since(store *s, mkt_role role, int64_t since, uint64_t *sum_out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT amount FROM market_receipts WHERE role = ?1 AND updated >= ?2", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, (int)role);
  sqlite3_bind_int64(st, 2, since);
  uint64_t sum = 0;
  int rc = 0, step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    uint64_t v;
    if ((rc = col_u64(st, 0, &v))) break;
    sum = v > UINT64_MAX - sum ? UINT64_MAX : sum + v; /* saturates: past any cap */
  }
  if (!rc && step != SQLITE_DONE) rc = ERR_STORE;
  sqlite3_finalize(st);
  if (!rc) *sum_out = sum;
  return rc;
}

static void put_hex(json_t *o, const char *k, const uint8_t *p, size_t n, int prefix) {
  char h[2 + 2 * 32 + 1] = "0x";
  hex_encode(p, n, h + 2);
  json_object_set_new(o, k, json_string(prefix ? h : h + 2));
}

static void put_id(json_t *o, const char *k, const uint8_t pk[32]) {
  char id[IDENT_ID_BUF];
  ident_id_encode(pk, id);
  json_object_set_new(o, k, json_string(id));
}

static void put_dec(json_t *o, const char *k, uint64_t v) {
  char d[24];
  snprintf(d, sizeof d, "%" PRIu64, v);
  json_object_set_new(o, k, json_string(d));
}

json_t *mkt_receipt_to_json(const mkt_receipt *r) {
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "role", json_string(r->role == MKT_CLIENT ? "client" : "provider"));
  put_hex(o, "request", r->request, 16, 0);
  put_id(o, "provider", r->provider);
  put_id(o, "client", r->client);
  put_hex(o, "model", r->model, 32, 0);
  if (r->has_request_hash) put_hex(o, "request_hash", r->request_hash, 32, 0);
  if (r->has_channel) put_hex(o, "channel", r->channel, 32, 1);
  else json_object_set_new(o, "channel", json_null());
  json_object_set_new(o, "prompt_tokens", json_integer((json_int_t)r->prompt_tokens));
  json_object_set_new(o, "gen_tokens", json_integer((json_int_t)r->gen_tokens));
  put_dec(o, "price_prompt", r->price_prompt);
  put_dec(o, "price_gen", r->price_gen);
  put_dec(o, "amount", r->amount);
  json_object_set_new(o, "status", json_stringn(r->status, strnlen(r->status, sizeof r->status)));
  json_object_set_new(o, "created", json_integer((json_int_t)r->created));
  return o;
}

/* ---- provider statistics ---- */

static uint32_t col_u32(sqlite3_stmt *st, int i) {
  sqlite3_int64 v = sqlite3_column_int64(st, i);
  return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int mkt_stats_get(store *s, const uint8_t node[32], mkt_provider_stats *out) {
  memset(out, 0, sizeof *out);
  memcpy(out->node, node, 32);
  out->latency_ms = -1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT successes, failures, last_failure, mismatches, verifications,"
                         " latency_ms FROM market_providers WHERE node = ?1", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC);
  int step = sqlite3_step(st), rc = 0;
  if (step == SQLITE_ROW) {
    out->successes = col_u32(st, 0);
    out->failures = col_u32(st, 1);
    out->last_failure = sqlite3_column_int64(st, 2);
    out->mismatches = col_u32(st, 3);
    out->verifications = col_u32(st, 4);
    out->latency_ms = sqlite3_column_double(st, 5);
  } else if (step != SQLITE_DONE) {
    rc = ERR_STORE;
  }
  sqlite3_finalize(st);
  return rc;
}

/* One upsert: the EWMA is computed by SQLite in double precision, new = a*x + (1-a)*old,
 * or x itself when the old value is unknown (< 0). ?5 < 0 means no latency sample. */
int mkt_stats_record(store *s, const uint8_t node[32], int ok, double latency_ms, int64_t now_s_) {
  static const char sql[] =
      "INSERT INTO market_providers (node, successes, failures, last_failure, latency_ms)"
      " VALUES (?1, ?2, ?3, ?4, ?5)"
      " ON CONFLICT(node) DO UPDATE SET successes = successes + excluded.successes,"
      " failures = failures + excluded.failures,"
      " last_failure = CASE WHEN excluded.failures > 0 THEN excluded.last_failure ELSE last_failure END,"
      " latency_ms = CASE WHEN excluded.latency_ms < 0 THEN latency_ms"
      "                   WHEN latency_ms < 0 THEN excluded.latency_ms"
      "                   ELSE ?6 * excluded.latency_ms + ?7 * latency_ms END";
  double sample = ok && latency_ms >= 0 && isfinite(latency_ms) ? latency_ms : -1;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) return ERR_STORE;
  sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, ok ? 1 : 0);
  sqlite3_bind_int(st, 3, ok ? 0 : 1);
  sqlite3_bind_int64(st, 4, ok ? 0 : now_s_);
  sqlite3_bind_double(st, 5, sample);
  sqlite3_bind_double(st, 6, EWMA_ALPHA);
  sqlite3_bind_double(st, 7, 1.0 - EWMA_ALPHA);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int mkt_stats_verify(store *s, const uint8_t node[32], int mismatch) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "INSERT INTO market_providers (node, mismatches, verifications)"
                         " VALUES (?1, ?2, 1) ON CONFLICT(node) DO UPDATE SET"
                         " mismatches = mismatches + excluded.mismatches, verifications = verifications + 1",
                         -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, mismatch ? 1 : 0);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}
