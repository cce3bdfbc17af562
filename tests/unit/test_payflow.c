/* market/payflow on two real SQLite stores (a client's and a provider's) with a real
 * secp256k1 wallet: after every step the books are checked against each other — the
 * client's channel total = the sum of its receipts, the provider's likewise, and the two
 * totals equal once every voucher got its answer.
 *
 *   - sign, accept, acknowledge; a second voucher waits while one is unanswered (ERR_BUSY);
 *   - a refused voucher is undone: the channel total and the receipt go back, and the next
 *     voucher (signed from the old total) is accepted with only its own increase;
 *   - a resend of an accepted voucher (its answer was lost) moves nothing;
 *   - a voucher for a request the provider has no receipt for is refused, nothing moves;
 *   - a receipt that cannot be updated makes the voucher refused too (one transaction);
 *   - a full database (SQLite's max_page_count: the real SQLITE_FULL path) refuses new work
 *     with the disk's error (not "cannot rollback"), while accepted work keeps being paid;
 *   - unanswered vouchers survive closing the store (a crash) and come back whole, still
 *     acceptable by the provider. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/store.h"
#include "market/payflow.h"
#include "market/receipt.h"
#include "pay/channel.h"
#include "pay/voucher.h"

#define NOW 1700000000ull

typedef struct fx {
  char dir[512], cpath[600], ppath[600];
  store *c, *p;           /* client's and provider's databases */
  wallet w;               /* the client's signer */
  channel ch;             /* the channel (provider's copy; the client's has role CLIENT) */
  uint8_t me[32], prov[32], model[32];
} fx;

static store *open_db(const char *path) {
  store *s;
  char err[256];
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  store_migration m[] = {{"pay", pay_schema_v1}, {"market", market_schema_v1}, {"market", market_schema_v2}};
  int v;
  store_version(s, &v);
  assert_true(store_migrate(s, m, 3, err, sizeof err) >= 0);
  return s;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  tu_tmpdir(f->dir, sizeof f->dir);
  snprintf(f->cpath, sizeof f->cpath, "%s/client.db", f->dir);
  snprintf(f->ppath, sizeof f->ppath, "%s/provider.db", f->dir);
  f->c = open_db(f->cpath);
  f->p = open_db(f->ppath);
  wallet_generate(&f->w);
  channel *c = &f->ch;
  memset(c->id, 0xab, 32);
  c->chain_id = 31337;
  memset(c->escrow, 0xee, 20);
  memcpy(c->client, f->w.addr, 20);
  memset(c->provider, 0x02, 20);
  memcpy(c->signer, f->w.addr, 20);
  c->deposit = u256_from_u64(1000000);
  c->expiry = NOW + 86400;
  c->role = CHANNEL_PROVIDER;
  memset(f->me, 0xc1, 32);
  memset(f->prov, 0xa1, 32);
  memset(f->model, 0x11, 32);
  if (channel_put(f->p, c)) return -1;
  channel cc = *c;
  cc.role = CHANNEL_CLIENT;
  if (channel_put(f->c, &cc)) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  store_close(f->c);
  store_close(f->p);
  tu_rm_rf(f->dir);
  wallet_wipe(&f->w);
  free(f);
  return 0;
}

static mkt_receipt receipt(fx *f, mkt_role role, uint8_t req) {
  mkt_receipt r;
  memset(&r, 0, sizeof r);
  r.role = role;
  memset(r.request, req, 16);
  memcpy(r.provider, f->prov, 32);
  memcpy(r.client, f->me, 32);
  memcpy(r.model, f->model, 32);
  memcpy(r.channel, f->ch.id, 32);
  r.has_channel = 1;
  r.price_gen = 1000;
  snprintf(r.status, sizeof r.status, "partial");
  return r;
}

/* The provider takes a request (its receipt exists before any work). */
static void provider_takes(fx *f, uint8_t req) {
  mkt_receipt r = receipt(f, MKT_PROVIDER, req);
  assert_int_equal(mkt_receipt_put(f->p, &r), 0);
}

static uint64_t total(store *s, const uint8_t id[32]) {
  channel ch;
  assert_int_equal(channel_get(s, id, &ch), 0);
  uint64_t v;
  assert_int_equal(u256_to_u64(&ch.amount, &v), 0);
  return v;
}

static uint64_t receipt_amount(store *s, mkt_role role, const uint8_t id[32]) {
  uint64_t sum;
  assert_int_equal(mkt_receipt_sum_channel(s, role, id, &sum), 0);
  return sum;
}

/* Each side's channel total equals the sum of its receipts; with nothing unanswered, the
 * two sides agree. */
static void books_agree(fx *f) {
  uint64_t ct = total(f->c, f->ch.id), pt = total(f->p, f->ch.id);
  assert_int_equal(ct, receipt_amount(f->c, MKT_CLIENT, f->ch.id));
  assert_int_equal(pt, receipt_amount(f->p, MKT_PROVIDER, f->ch.id));
  mkt_unacked u[4];
  if (mkt_pay_unacked_list(f->c, u, 4) == 0) assert_int_equal(ct, pt);
}

static voucher client_signs(fx *f, uint8_t req, uint64_t add) {
  mkt_receipt r = receipt(f, MKT_CLIENT, req);
  voucher v;
  assert_int_equal(mkt_pay_sign(f->c, &f->w, &r, add, NOW, &v), 0);
  return v;
}

static void test_sign_accept_ack(void **state) {
  fx *f = *state;
  provider_takes(f, 1);
  voucher v = client_signs(f, 1, 100);
  assert_int_equal(total(f->c, f->ch.id), 100);
  assert_int_equal(receipt_amount(f->c, MKT_CLIENT, f->ch.id), 100);
  /* one unanswered voucher per channel: the next waits */
  mkt_receipt r = receipt(f, MKT_CLIENT, 1);
  voucher v2;
  assert_int_equal(mkt_pay_sign(f->c, &f->w, &r, 5, NOW, &v2), ERR_BUSY);
  assert_int_equal(total(f->c, f->ch.id), 100);
  uint64_t delta = 0;
  assert_int_equal(mkt_pay_accept(f->p, &v, r.request, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 100);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v.amount), 0);
  books_agree(f);
  /* a second request on the same channel */
  provider_takes(f, 2);
  v = client_signs(f, 2, 30);
  assert_int_equal(mkt_pay_accept(f->p, &v, (uint8_t[16]){2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}, f->prov,
                                  NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 30);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v.amount), 0);
  books_agree(f);
  assert_int_equal(total(f->p, f->ch.id), 130);
  mkt_receipt got;
  assert_int_equal(mkt_receipt_get(f->p, MKT_PROVIDER, r.request, f->prov, &got), 0);
  assert_int_equal(got.amount, 100);
}

static void test_refused_is_undone(void **state) {
  fx *f = *state;
  provider_takes(f, 1);
  voucher v = client_signs(f, 1, 100);
  uint64_t delta;
  uint8_t req[16];
  memset(req, 1, 16);
  assert_int_equal(mkt_pay_accept(f->p, &v, req, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v.amount), 0);
  voucher first = v;
  /* the provider refuses the next one (we just do not give it to it) */
  voucher bad = client_signs(f, 1, 70);
  assert_int_equal(total(f->c, f->ch.id), 170);
  assert_int_equal(mkt_pay_refused(f->c, f->ch.id, &bad.amount), 0);
  assert_int_equal(total(f->c, f->ch.id), 100); /* a refused voucher never advances the total */
  channel cc;
  assert_int_equal(channel_get(f->c, f->ch.id, &cc), 0);
  assert_memory_equal(cc.sig, first.sig, 65); /* and the last accepted voucher is the channel's again */
  books_agree(f);
  /* undoing twice, or a voucher that is not the unanswered one, is refused */
  assert_int_equal(mkt_pay_refused(f->c, f->ch.id, &bad.amount), ERR_NOTFOUND);
  /* the next voucher covers only its own tokens */
  v = client_signs(f, 1, 20);
  assert_int_equal(mkt_pay_accept(f->p, &v, req, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 20);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v.amount), 0);
  books_agree(f);
  assert_int_equal(total(f->p, f->ch.id), 120);
}

static void test_resend_and_unknown_request(void **state) {
  fx *f = *state;
  provider_takes(f, 1);
  uint8_t req[16], other[16];
  memset(req, 1, 16);
  memset(other, 9, 16);
  voucher v = client_signs(f, 1, 100);
  uint64_t delta = 7;
  /* no receipt for that request on the provider: refused, nothing moves */
  assert_int_equal(mkt_pay_accept(f->p, &v, other, f->prov, NOW, 600, NULL, &delta), ERR_NOTFOUND);
  assert_int_equal(total(f->p, f->ch.id), 0);
  assert_int_equal(mkt_pay_accept(f->p, &v, req, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 100);
  /* the answer was lost: the same voucher again is accepted and moves nothing */
  assert_int_equal(mkt_pay_accept(f->p, &v, req, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 0);
  assert_int_equal(receipt_amount(f->p, MKT_PROVIDER, f->ch.id), 100);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v.amount), 0);
  books_agree(f);
  /* a forged voucher is refused by the rules and moves nothing */
  voucher forged = v;
  forged.amount = u256_from_u64(500);
  assert_int_equal(mkt_pay_accept(f->p, &forged, req, f->prov, NOW, 600, NULL, &delta), ERR_WRONG_SIGNER);
  books_agree(f);
}

static void test_receipt_failure_refuses_voucher(void **state) {
  fx *f = *state;
  /* A provider receipt that cannot take the increase (its amount would pass 2^64): the
   * voucher is refused and the channel total stays — the two move together or not at all. */
  mkt_receipt r = receipt(f, MKT_PROVIDER, 1);
  r.amount = UINT64_MAX - 10;
  assert_int_equal(mkt_receipt_put(f->p, &r), 0);
  voucher v = client_signs(f, 1, 100);
  uint64_t delta;
  assert_int_equal(mkt_pay_accept(f->p, &v, r.request, f->prov, NOW, 600, NULL, &delta), ERR_RANGE);
  assert_int_equal(total(f->p, f->ch.id), 0);
  mkt_receipt got;
  assert_int_equal(mkt_receipt_get(f->p, MKT_PROVIDER, r.request, f->prov, &got), 0);
  assert_true(got.amount == UINT64_MAX - 10);
}

static void test_full_disk(void **state) {
  fx *f = *state;
  provider_takes(f, 1);
  uint8_t req[16];
  memset(req, 1, 16);
  voucher v1 = client_signs(f, 1, 100);
  uint64_t delta;
  assert_int_equal(mkt_pay_accept(f->p, &v1, req, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v1.amount), 0);
  /* The provider's database cannot grow (SQLite's max_page_count: the same SQLITE_FULL as a
   * full disk), and other requests took the last free space. */
  assert_int_equal(store_exec(f->p, "PRAGMA max_page_count = 1"), 0); /* clamps to the current size */
  int taken = 0;
  for (int i = 0; i < 10000; i++) {
    mkt_receipt other = receipt(f, MKT_PROVIDER, 3);
    memcpy(other.request, &i, sizeof i);
    if (mkt_receipt_put(f->p, &other)) break;
    taken++;
  }
  assert_true(taken < 10000);
  /* New work cannot be recorded: refused, with the disk's reason (not "cannot rollback"). */
  mkt_receipt r2 = receipt(f, MKT_PROVIDER, 2);
  assert_int_equal(mkt_receipt_put(f->p, &r2), ERR_STORE);
  assert_true(store_full(f->p));
  if (!strstr(store_errmsg(f->p), "full")) fail_msg("error: %s", store_errmsg(f->p));
  mkt_receipt got;
  assert_int_equal(mkt_receipt_get(f->p, MKT_PROVIDER, r2.request, f->prov, &got), ERR_NOTFOUND);
  /* Work already accepted keeps being paid: its rows exist, updating them needs no new space. */
  voucher v2 = client_signs(f, 1, 50);
  assert_int_equal(mkt_pay_accept(f->p, &v2, req, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 50);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &v2.amount), 0);
  books_agree(f);
  /* And a voucher for the request that was never taken is refused; nothing moves. */
  voucher v3 = client_signs(f, 2, 10);
  assert_int_equal(mkt_pay_accept(f->p, &v3, r2.request, f->prov, NOW, 600, NULL, &delta), ERR_NOTFOUND);
  assert_int_equal(mkt_pay_refused(f->c, f->ch.id, &v3.amount), 0);
  books_agree(f);
  assert_int_equal(total(f->p, f->ch.id), 150);
}

static void test_unacked_survive_restart(void **state) {
  fx *f = *state;
  provider_takes(f, 1);
  voucher v = client_signs(f, 1, 100);
  /* the client crashes before an answer: its store is closed and opened again */
  store_close(f->c);
  f->c = open_db(f->cpath);
  mkt_unacked u[4];
  assert_int_equal(mkt_pay_unacked_list(f->c, u, 4), 1);
  assert_memory_equal(u[0].v.channel_id, f->ch.id, 32);
  assert_int_equal(u256_cmp(&u[0].v.amount, &v.amount), 0);
  assert_memory_equal(u[0].v.sig, v.sig, 65);
  assert_int_equal(u[0].v.chain_id, 31337);
  assert_memory_equal(u[0].v.escrow, f->ch.escrow, 20);
  assert_memory_equal(u[0].provider, f->prov, 32);
  assert_int_equal(u[0].add, 100);
  /* sent again from the store, the provider takes it as it was signed */
  uint64_t delta;
  assert_int_equal(mkt_pay_accept(f->p, &u[0].v, u[0].request, f->prov, NOW, 600, NULL, &delta), 0);
  assert_int_equal(delta, 100);
  assert_int_equal(mkt_pay_acked(f->c, f->ch.id, &u[0].v.amount), 0);
  assert_int_equal(mkt_pay_unacked_list(f->c, u, 4), 0);
  books_agree(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sign_accept_ack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused_is_undone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resend_and_unknown_request, setup, teardown),
      cmocka_unit_test_setup_teardown(test_receipt_failure_refuses_voucher, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unacked_survive_restart, setup, teardown),
  };
  return cmocka_run_group_tests_name("payflow", tests, NULL, NULL);
}
