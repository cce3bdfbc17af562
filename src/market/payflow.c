/* market/payflow — vouchers and receipts in one transaction; see payflow.h. */
#include "market/payflow.h"

#include <string.h>
#include <time.h>

#include "core/err.h"

const char market_schema_v2[] =
    "CREATE TABLE market_vouchers_out ("
    "  channel BLOB PRIMARY KEY CHECK (length(channel) = 32)," /* one unanswered voucher per channel */
    "  request BLOB NOT NULL CHECK (length(request) = 16),"
    "  provider BLOB NOT NULL CHECK (length(provider) = 32),"
    "  amount TEXT NOT NULL,"                                   /* the voucher's cumulative wei */
    "  sig BLOB NOT NULL CHECK (length(sig) = 65),"
    "  prev_amount TEXT NOT NULL,"                              /* the channel's total before it */
    "  prev_sig BLOB NOT NULL CHECK (length(prev_sig) = 65),"
    "  added TEXT NOT NULL,"                                    /* amount - prev_amount */
    "  created INTEGER NOT NULL"
    ") STRICT;";

static void bind_u256(sqlite3_stmt *st, int i, const u256 *v) {
  char d[U256_DEC_BUF];
  u256_to_dec(v, d);
  sqlite3_bind_text(st, i, d, -1, SQLITE_TRANSIENT);
}

static int col_u256(sqlite3_stmt *st, int i, u256 *out) {
  const char *t = (const char *)sqlite3_column_text(st, i);
  int n = sqlite3_column_bytes(st, i);
  return t && n > 0 && n < U256_DEC_BUF && u256_from_dec(t, (size_t)n, out) == 0 ? 0 : ERR_STORE;
}

static int col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t n) {
  if (sqlite3_column_type(st, i) != SQLITE_BLOB || (size_t)sqlite3_column_bytes(st, i) != n) return ERR_STORE;
  memcpy(out, sqlite3_column_blob(st, i), n);
  return 0;
}

#define UCOLS "channel, request, provider, amount, sig, prev_amount, prev_sig, added, created"

static int read_unacked(sqlite3_stmt *st, mkt_unacked *u) {
  memset(u, 0, sizeof *u);
  u256 added;
  uint64_t add = 0;
  int rc = col_blob(st, 0, u->v.channel_id, 32);
  if (!rc) rc = col_blob(st, 1, u->request, 16);
  if (!rc) rc = col_blob(st, 2, u->provider, 32);
  if (!rc) rc = col_u256(st, 3, &u->v.amount);
  if (!rc) rc = col_blob(st, 4, u->v.sig, 65);
  if (!rc) rc = col_u256(st, 5, &u->prev_amount);
  if (!rc) rc = col_blob(st, 6, u->prev_sig, 65);
  if (!rc) rc = col_u256(st, 7, &added);
  if (!rc && u256_to_u64(&added, &add)) rc = ERR_STORE;
  u->add = add;
  u->created = sqlite3_column_int64(st, 8);
  return rc;
}

/* Fills the chain id and escrow of u's voucher from its channel. */
static int fill_voucher(store *s, mkt_unacked *u) {
  channel ch;
  int rc = channel_get(s, u->v.channel_id, &ch);
  if (rc) return rc == ERR_NOTFOUND ? ERR_STORE : rc; /* a row without its channel: corrupt */
  u->v.chain_id = ch.chain_id;
  memcpy(u->v.escrow, ch.escrow, 20);
  return 0;
}

int mkt_pay_unacked_get(store *s, const uint8_t chan[32], mkt_unacked *out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " UCOLS " FROM market_vouchers_out WHERE channel = ?1", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, chan, 32, SQLITE_STATIC);
  int step = sqlite3_step(st);
  int rc = step == SQLITE_ROW ? read_unacked(st, out) : step == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE;
  sqlite3_finalize(st);
  return rc ? rc : fill_voucher(s, out);
}

int mkt_pay_unacked_list(store *s, mkt_unacked *out, int cap) {
  if (cap <= 0) return 0;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " UCOLS " FROM market_vouchers_out ORDER BY created, rowid LIMIT ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, cap);
  int n = 0, rc = 0, step = SQLITE_DONE;
  while (n < cap && (step = sqlite3_step(st)) == SQLITE_ROW) {
    if ((rc = read_unacked(st, &out[n]))) break;
    n++;
  }
  if (!rc && n < cap && step != SQLITE_DONE) rc = ERR_STORE;
  sqlite3_finalize(st);
  for (int i = 0; !rc && i < n; i++) rc = fill_voucher(s, &out[i]);
  return rc ? rc : n;
}

static int insert_unacked(store *s, const mkt_unacked *u) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "INSERT INTO market_vouchers_out (" UCOLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                         -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  u256 added = u256_from_u64(u->add);
  sqlite3_bind_blob(st, 1, u->v.channel_id, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, u->request, 16, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, u->provider, 32, SQLITE_STATIC);
  bind_u256(st, 4, &u->v.amount);
  sqlite3_bind_blob(st, 5, u->v.sig, 65, SQLITE_STATIC);
  bind_u256(st, 6, &u->prev_amount);
  sqlite3_bind_blob(st, 7, u->prev_sig, 65, SQLITE_STATIC);
  bind_u256(st, 8, &added);
  sqlite3_bind_int64(st, 9, u->created);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int delete_unacked(store *s, const uint8_t chan[32]) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "DELETE FROM market_vouchers_out WHERE channel = ?1", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, chan, 32, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

/* Ends a transaction this file began: commit on success, else roll back (keeping rc). */
static int finish(store *s, int rc) {
  if (!rc && store_commit(s)) rc = ERR_STORE;
  if (rc) store_rollback(s);
  return rc;
}

int mkt_pay_sign(store *s, const wallet *w, const mkt_receipt *r, uint64_t add, uint64_t now_s, voucher *out) {
  if (r->role != MKT_CLIENT || !r->has_channel || add == 0) return ERR_INVAL;
  int rc = store_begin(s);
  if (rc) return rc;
  mkt_unacked u;
  memset(&u, 0, sizeof u);
  channel ch;
  memset(&ch, 0, sizeof ch);
  rc = mkt_pay_unacked_get(s, r->channel, &u);
  if (rc == 0) rc = ERR_BUSY; /* the last one is unanswered: undoing a refusal needs them in order */
  else if (rc == ERR_NOTFOUND) rc = channel_get(s, r->channel, &ch);
  if (!rc && ch.role != CHANNEL_CLIENT) rc = ERR_UNKNOWN_CHANNEL;
  u256 total, a = u256_from_u64(add);
  if (!rc) rc = u256_add(&total, &ch.amount, &a) ? ERR_RANGE : 0;
  if (!rc) rc = voucher_sign(&ch, w, &total, now_s, out);
  if (!rc) rc = channel_set_voucher(s, ch.id, &total, out->sig);
  if (!rc) rc = mkt_receipt_put(s, r); /* joins this transaction; an existing row keeps its amount */
  if (!rc) rc = mkt_receipt_add_amount(s, MKT_CLIENT, r->request, r->provider, (int64_t)add);
  if (!rc) {
    memset(&u, 0, sizeof u);
    u.v = *out;
    memcpy(u.request, r->request, 16);
    memcpy(u.provider, r->provider, 32);
    u.prev_amount = ch.amount;
    if (!u256_is_zero(&ch.amount)) memcpy(u.prev_sig, ch.sig, 65);
    u.add = add;
    u.created = (int64_t)now_s;
    rc = insert_unacked(s, &u);
  }
  return finish(s, rc); /* recorded before it leaves: we never sign two vouchers for one total */
}

int mkt_pay_acked(store *s, const uint8_t chan[32], const u256 *amount) {
  mkt_unacked u;
  int rc = mkt_pay_unacked_get(s, chan, &u);
  if (rc == ERR_NOTFOUND) return 0;
  if (rc) return rc;
  if (u256_cmp(&u.v.amount, amount)) return 0; /* an answer about another voucher */
  return delete_unacked(s, chan);
}

int mkt_pay_refused(store *s, const uint8_t chan[32], const u256 *amount) {
  int rc = store_begin(s);
  if (rc) return rc;
  mkt_unacked u;
  channel ch;
  rc = mkt_pay_unacked_get(s, chan, &u);
  if (!rc && u256_cmp(&u.v.amount, amount)) rc = ERR_NOTFOUND;
  if (!rc) rc = channel_get(s, chan, &ch);
  /* only the latest voucher can be undone: nothing was signed on top of it (ERR_BUSY) */
  if (!rc && u256_cmp(&ch.amount, &u.v.amount)) rc = ERR_STORE;
  if (!rc) rc = channel_set_voucher(s, chan, &u.prev_amount, u.prev_sig);
  if (!rc) rc = mkt_receipt_add_amount(s, MKT_CLIENT, u.request, u.provider, -(int64_t)u.add);
  if (!rc) rc = delete_unacked(s, chan);
  return finish(s, rc);
}

int mkt_pay_accept(store *s, const voucher *v, const uint8_t request[16], const uint8_t me[32], uint64_t now_s,
                   uint64_t margin_s, const mkt_receipt *counts, uint64_t *delta_out) {
  int rc = store_begin(s);
  if (rc) return rc;
  channel ch;
  mkt_receipt r;
  uint64_t delta = 0;
  rc = channel_get(s, v->channel_id, &ch);
  if (rc == ERR_NOTFOUND || (!rc && ch.role != CHANNEL_PROVIDER)) rc = ERR_UNKNOWN_CHANNEL;
  if (!rc) rc = mkt_receipt_get(s, MKT_PROVIDER, request, me, &r);
  if (!rc && (!r.has_channel || memcmp(r.channel, v->channel_id, 32))) rc = ERR_NOTFOUND;
  if (!rc && !u256_cmp(&v->amount, &ch.amount) && !memcmp(v->sig, ch.sig, 65)) {
    /* the voucher we hold already: a resend after our answer was lost. Nothing moves. */
    store_rollback(s);
    *delta_out = 0;
    return 0;
  }
  if (!rc) {
    u256 d;
    rc = voucher_accept(s, v, now_s, margin_s, NULL); /* joins this transaction */
    if (!rc && (u256_sub(&d, &v->amount, &ch.amount) || u256_to_u64(&d, &delta) || delta > INT64_MAX)) rc = ERR_RANGE;
  }
  if (!rc) rc = mkt_receipt_add_amount(s, MKT_PROVIDER, request, me, (int64_t)delta);
  if (!rc && counts) rc = mkt_receipt_put(s, counts); /* tokens so far: what was paid for survives a crash */
  rc = finish(s, rc);
  if (!rc) *delta_out = delta;
  return rc;
}
