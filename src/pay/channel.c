/* pay/channel — the cached payment channels and receipts; see channel.h. */
#include "pay/channel.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/wallet.h"

const char pay_schema_v1[] =
    "CREATE TABLE pay_channels ("
    "  id BLOB PRIMARY KEY CHECK (length(id) = 32),"
    "  chain_id INTEGER NOT NULL,"
    "  escrow BLOB NOT NULL CHECK (length(escrow) = 20),"
    "  client BLOB NOT NULL CHECK (length(client) = 20),"
    "  provider BLOB NOT NULL CHECK (length(provider) = 20),"
    "  signer BLOB NOT NULL CHECK (length(signer) = 20),"
    "  deposit TEXT NOT NULL,"              /* wei, decimal */
    "  expiry INTEGER NOT NULL,"
    "  claimed TEXT NOT NULL DEFAULT '0',"  /* wei on chain, as last seen */
    "  closed INTEGER NOT NULL DEFAULT 0,"
    "  amount TEXT NOT NULL DEFAULT '0',"   /* highest voucher signed/accepted */
    "  sig BLOB,"                           /* its 65-byte signature */
    "  role INTEGER NOT NULL,"              /* 1 client, 2 provider */
    "  peer BLOB,"                          /* other node's key */
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX pay_channels_peer ON pay_channels(peer, role);"
    "CREATE TABLE pay_receipts ("
    "  id INTEGER PRIMARY KEY,"
    "  channel_id BLOB NOT NULL,"
    "  role INTEGER NOT NULL,"
    "  model_hash BLOB,"
    "  request_hash BLOB,"
    "  tokens INTEGER NOT NULL,"
    "  amount TEXT NOT NULL,"
    "  provider BLOB,"
    "  client BLOB,"
    "  created INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX pay_receipts_channel ON pay_receipts(channel_id);";

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int bind_u256(sqlite3_stmt *st, int i, const u256 *v) {
  char d[U256_DEC_BUF];
  u256_to_dec(v, d);
  return sqlite3_bind_text(st, i, d, -1, SQLITE_TRANSIENT);
}

static int col_u256(sqlite3_stmt *st, int i, u256 *out) {
  const char *t = (const char *)sqlite3_column_text(st, i);
  if (!t) return ERR_FORMAT;
  return u256_from_dec(t, strlen(t), out);
}

static int col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t n) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) { memset(out, 0, n); return 0; }
  if ((size_t)sqlite3_column_bytes(st, i) != n) return ERR_FORMAT;
  memcpy(out, sqlite3_column_blob(st, i), n);
  return 0;
}

static int is_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

int channel_put(store *s, const channel *ch) {
  static const char sql[] =
      "INSERT INTO pay_channels (id, chain_id, escrow, client, provider, signer, deposit, expiry, claimed,"
      " closed, amount, sig, role, peer, created, updated) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?15)"
      " ON CONFLICT(id) DO UPDATE SET deposit = excluded.deposit, expiry = excluded.expiry,"
      " closed = excluded.closed, updated = excluded.updated,"
      " peer = coalesce(pay_channels.peer, excluded.peer)";
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) return ERR_STORE;
  sqlite3_bind_blob(st, 1, ch->id, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)ch->chain_id);
  sqlite3_bind_blob(st, 3, ch->escrow, 20, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, ch->client, 20, SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, ch->provider, 20, SQLITE_STATIC);
  sqlite3_bind_blob(st, 6, ch->signer, 20, SQLITE_STATIC);
  bind_u256(st, 7, &ch->deposit);
  sqlite3_bind_int64(st, 8, (sqlite3_int64)ch->expiry);
  bind_u256(st, 9, &ch->claimed);
  sqlite3_bind_int(st, 10, ch->closed);
  bind_u256(st, 11, &ch->amount);
  if (!u256_is_zero(&ch->amount)) sqlite3_bind_blob(st, 12, ch->sig, 65, SQLITE_STATIC);
  sqlite3_bind_int(st, 13, (int)ch->role);
  if (!is_zero(ch->peer, 32)) sqlite3_bind_blob(st, 14, ch->peer, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 15, now_s());
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  if (rc) return rc;
  /* claimed only moves up */
  return channel_set_chain(s, ch->id, &ch->deposit, ch->expiry, &ch->claimed, ch->closed);
}

#define COLS "id, chain_id, escrow, client, provider, signer, deposit, expiry, claimed, closed, amount, sig, role, peer, updated"

static int read_row(sqlite3_stmt *st, channel *c) {
  memset(c, 0, sizeof *c);
  int rc = col_blob(st, 0, c->id, 32);
  c->chain_id = (uint64_t)sqlite3_column_int64(st, 1);
  if (!rc) rc = col_blob(st, 2, c->escrow, 20);
  if (!rc) rc = col_blob(st, 3, c->client, 20);
  if (!rc) rc = col_blob(st, 4, c->provider, 20);
  if (!rc) rc = col_blob(st, 5, c->signer, 20);
  if (!rc) rc = col_u256(st, 6, &c->deposit);
  c->expiry = (uint64_t)sqlite3_column_int64(st, 7);
  if (!rc) rc = col_u256(st, 8, &c->claimed);
  c->closed = sqlite3_column_int(st, 9) != 0;
  if (!rc) rc = col_u256(st, 10, &c->amount);
  if (!rc) rc = col_blob(st, 11, c->sig, 65);
  c->role = (channel_role)sqlite3_column_int(st, 12);
  if (!rc) rc = col_blob(st, 13, c->peer, 32);
  c->updated_s = sqlite3_column_int64(st, 14);
  return rc;
}

int channel_get(store *s, const uint8_t id[static 32], channel *out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " COLS " FROM pay_channels WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
  int step = sqlite3_step(st), rc;
  if (step == SQLITE_ROW) rc = read_row(st, out);
  else rc = step == SQLITE_DONE ? ERR_NOTFOUND : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int channel_list(store *s, channel_role role, channel *out, size_t cap) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " COLS " FROM pay_channels WHERE ?1 = 0 OR role = ?1"
                         " ORDER BY created DESC, rowid DESC", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_int(st, 1, (int)role);
  size_t n = 0;
  int step, rc = 0;
  while (n < cap && (step = sqlite3_step(st)) == SQLITE_ROW)
    if (!(rc = read_row(st, &out[n]))) n++;
    else break;
  sqlite3_finalize(st);
  return rc ? rc : (int)n;
}

int channel_find_client(store *s, const uint8_t peer[static 32], uint64_t chain_id,
                        const uint8_t escrow[static 20], channel *out) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "SELECT " COLS " FROM pay_channels WHERE peer = ?1 AND role = 1"
                         " AND chain_id = ?2 AND escrow = ?3 AND closed = 0 AND expiry > ?4"
                         " ORDER BY created DESC, rowid DESC", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, peer, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (sqlite3_int64)chain_id);
  sqlite3_bind_blob(st, 3, escrow, 20, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now_s());
  int rc = ERR_NOTFOUND, step;
  u256 best_room = u256_from_u64(0);
  channel c;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (read_row(st, &c)) continue;
    u256 room;
    if (u256_sub(&room, &c.deposit, &c.amount)) continue;
    if (rc == ERR_NOTFOUND || u256_cmp(&room, &best_room) > 0) {
      *out = c;
      best_room = room;
      rc = 0;
    }
  }
  if (step != SQLITE_DONE && step != SQLITE_ROW) rc = ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int channel_set_voucher(store *s, const uint8_t id[static 32], const u256 *amount, const uint8_t sig[static 65]) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE pay_channels SET amount = ?2, sig = ?3, updated = ?4 WHERE id = ?1",
                         -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
  bind_u256(st, 2, amount);
  sqlite3_bind_blob(st, 3, sig, 65, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, now_s());
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  if (!rc && sqlite3_changes(store_db(s)) == 0) rc = ERR_NOTFOUND;
  sqlite3_finalize(st);
  return rc;
}

int channel_set_chain(store *s, const uint8_t id[static 32], const u256 *deposit, uint64_t expiry,
                      const u256 *claimed, bool closed) {
  channel cur;
  int rc = channel_get(s, id, &cur);
  if (rc) return rc;
  if (u256_cmp(claimed, &cur.claimed) < 0) claimed = &cur.claimed;
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "UPDATE pay_channels SET deposit = ?2, expiry = ?3, claimed = ?4,"
                         " closed = ?5, updated = ?6 WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
  bind_u256(st, 2, deposit);
  sqlite3_bind_int64(st, 3, (sqlite3_int64)expiry);
  bind_u256(st, 4, claimed);
  sqlite3_bind_int(st, 5, closed);
  sqlite3_bind_int64(st, 6, now_s());
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static void put_hex(json_t *o, const char *k, const uint8_t *p, size_t n) {
  char h[2 + 2 * 65 + 1] = "0x";
  hex_encode(p, n, h + 2);
  json_object_set_new(o, k, json_string(h));
}

static void put_addr(json_t *o, const char *k, const uint8_t a[static 20]) {
  char t[WALLET_ADDR_BUF];
  wallet_addr_eip55(a, t);
  json_object_set_new(o, k, json_string(t));
}

static void put_u256(json_t *o, const char *k, const u256 *v) {
  char d[U256_DEC_BUF];
  u256_to_dec(v, d);
  json_object_set_new(o, k, json_string(d));
}

json_t *channel_to_json(const channel *ch) {
  json_t *o = json_object();
  if (!o) return NULL;
  put_hex(o, "id", ch->id, 32);
  json_object_set_new(o, "role", json_string(ch->role == CHANNEL_CLIENT ? "client" : "provider"));
  json_object_set_new(o, "chain_id", json_integer((json_int_t)ch->chain_id));
  put_addr(o, "escrow", ch->escrow);
  put_addr(o, "client", ch->client);
  put_addr(o, "provider", ch->provider);
  put_addr(o, "signer", ch->signer);
  put_u256(o, "deposit", &ch->deposit);
  put_u256(o, "signed", &ch->amount);
  put_u256(o, "claimed", &ch->claimed);
  u256 unclaimed;
  if (u256_sub(&unclaimed, &ch->amount, &ch->claimed)) unclaimed = u256_from_u64(0);
  put_u256(o, "unclaimed", &unclaimed);
  json_object_set_new(o, "expiry", json_integer((json_int_t)ch->expiry));
  json_object_set_new(o, "closed", json_boolean(ch->closed));
  if (!is_zero(ch->peer, 32)) put_hex(o, "peer_key", ch->peer, 32);
  return o;
}

int channel_receipt_add(store *s, const pay_receipt *r, int64_t now) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "INSERT INTO pay_receipts (channel_id, role, model_hash, request_hash, tokens,"
                         " amount, provider, client, created) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_blob(st, 1, r->channel_id, 32, SQLITE_STATIC);
  sqlite3_bind_int(st, 2, (int)r->role);
  sqlite3_bind_blob(st, 3, r->model_hash, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, r->request_hash, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 5, (sqlite3_int64)r->tokens);
  bind_u256(st, 6, &r->amount);
  sqlite3_bind_blob(st, 7, r->provider, 32, SQLITE_STATIC);
  sqlite3_bind_blob(st, 8, r->client, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 9, now);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

int channel_amount_parse(const char *text, u256 *out) {
  size_t n = strlen(text);
  if (n == 0 || n > 100) return ERR_FORMAT;
  if (n > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) return u256_from_hex(text, n, out);
  size_t num = 0;
  while (num < n && (isdigit((unsigned char)text[num]) || text[num] == '.')) num++;
  const char *unit = text + num;
  unsigned decimals;
  if (!*unit || !strcmp(unit, "wei")) decimals = 0;
  else if (!strcmp(unit, "gwei")) decimals = 9;
  else if (!strcmp(unit, "eth") || !strcmp(unit, "ether")) decimals = 18;
  else return ERR_FORMAT;
  char digits[128];
  size_t nd = 0, frac = 0;
  int seen_dot = 0;
  for (size_t i = 0; i < num; i++) {
    if (text[i] == '.') {
      if (seen_dot++) return ERR_FORMAT;
      continue;
    }
    if (seen_dot) frac++;
    digits[nd++] = text[i];
  }
  if (nd == 0 || frac > decimals) return ERR_FORMAT; /* no digits, or finer than 1 wei */
  for (size_t i = frac; i < decimals; i++) digits[nd++] = '0';
  return u256_from_dec(digits, nd, out);
}
