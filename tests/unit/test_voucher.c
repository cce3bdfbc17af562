/* pay/voucher and pay/channel against a temporary SQLite store: signing, the provider's
 * acceptance rules (replay, decrease, overspend, wrong signer, wrong chain/contract,
 * expired/closed, unknown channel, malformed signature), durability of accepted vouchers
 * across reopening, the wire form, amount parsing, and 10,000 vouchers signed and accepted
 * (the rate is printed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <stdlib.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/store.h"
#include "pay/channel.h"
#include "pay/voucher.h"

#define NOW 1700000000ull

typedef struct fx {
  char dir[512], path[600];
  store *s;
  wallet signer, stranger;
  channel ch; /* provider's copy */
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  tu_tmpdir(f->dir, sizeof f->dir);
  /* Every accept commits with synchronous=FULL; on tmpfs (when the test runner has one) the
   * 10k test measures our CPU cost rather than the disk's fsync latency. */
  if (!access("/dev/shm", W_OK)) {
    tu_rm_rf(f->dir);
    snprintf(f->dir, sizeof f->dir, "/dev/shm/apiary-voucher-XXXXXX");
    if (!mkdtemp(f->dir)) tu_tmpdir(f->dir, sizeof f->dir);
  }
  snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
  char err[256];
  if (store_open(f->path, &f->s, err, sizeof err)) return -1;
  store_migration m = {"pay", pay_schema_v1};
  if (store_migrate(f->s, &m, 1, err, sizeof err) != 1) return -1;
  wallet_generate(&f->signer);
  wallet_generate(&f->stranger);
  channel *c = &f->ch;
  memset(c->id, 0xab, 32);
  c->chain_id = 31337;
  memset(c->escrow, 0xee, 20);
  memset(c->client, 0x01, 20);
  memset(c->provider, 0x02, 20);
  memcpy(c->signer, f->signer.addr, 20);
  c->deposit = u256_from_u64(1000000);
  c->expiry = NOW + 86400;
  c->role = CHANNEL_PROVIDER;
  if (channel_put(f->s, c)) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  store_close(f->s);
  tu_rm_rf(f->dir);
  wallet_wipe(&f->signer);
  free(f);
  return 0;
}

/* The client's view of the same channel, with its own last signed amount. */
static voucher sign_v(fx *f, const wallet *w, uint64_t amount) {
  channel c = f->ch;
  c.role = CHANNEL_CLIENT;
  memcpy(c.signer, w->addr, 20);
  c.amount = u256_from_u64(0);
  c.deposit = u256_from_u64(UINT64_MAX); /* the client may sign anything; the provider decides */
  voucher v;
  u256 a = u256_from_u64(amount);
  assert_int_equal(voucher_sign(&c, w, &a, NOW, &v), 0);
  return v;
}

static void test_accept_and_rules(void **state) {
  fx *f = *state;
  voucher v = sign_v(f, &f->signer, 100);
  channel out;
  assert_int_equal(voucher_accept(f->s, &v, NOW, 600, &out), 0);
  assert_true(u256_cmp(&out.amount, &v.amount) == 0);
  /* replay */
  assert_int_equal(voucher_accept(f->s, &v, NOW, 600, NULL), ERR_REPLAY);
  /* decrease */
  voucher lo = sign_v(f, &f->signer, 50);
  assert_int_equal(voucher_accept(f->s, &lo, NOW, 600, NULL), ERR_DECREASE);
  /* overspend */
  voucher big = sign_v(f, &f->signer, 1000001);
  assert_int_equal(voucher_accept(f->s, &big, NOW, 600, NULL), ERR_OVERSPEND);
  /* exactly the deposit is fine */
  voucher all = sign_v(f, &f->signer, 1000000);
  /* wrong signer */
  voucher bad = sign_v(f, &f->stranger, 200);
  assert_int_equal(voucher_accept(f->s, &bad, NOW, 600, NULL), ERR_WRONG_SIGNER);
  /* altered amount: recovers to another address */
  voucher alt = sign_v(f, &f->signer, 300);
  alt.amount = u256_from_u64(301);
  assert_int_equal(voucher_accept(f->s, &alt, NOW, 600, NULL), ERR_WRONG_SIGNER);
  /* malformed signature (v = 30) */
  voucher mal = sign_v(f, &f->signer, 300);
  mal.sig[64] = 30;
  assert_int_equal(voucher_accept(f->s, &mal, NOW, 600, NULL), ERR_BAD_SIGNATURE);
  /* wrong chain, wrong contract */
  voucher wc = sign_v(f, &f->signer, 300);
  wc.chain_id = 1;
  assert_int_equal(voucher_accept(f->s, &wc, NOW, 600, NULL), ERR_WRONG_CHAIN);
  wc = sign_v(f, &f->signer, 300);
  wc.escrow[0] ^= 1;
  assert_int_equal(voucher_accept(f->s, &wc, NOW, 600, NULL), ERR_WRONG_CHAIN);
  /* expired, and inside the safety margin */
  voucher ok = sign_v(f, &f->signer, 300);
  assert_int_equal(voucher_accept(f->s, &ok, NOW + 86400, 600, NULL), ERR_EXPIRED);
  assert_int_equal(voucher_accept(f->s, &ok, NOW + 86400 - 300, 600, NULL), ERR_EXPIRED);
  /* unknown channel */
  voucher unk = ok;
  unk.channel_id[0] ^= 1;
  assert_int_equal(voucher_accept(f->s, &unk, NOW, 600, NULL), ERR_UNKNOWN_CHANNEL);
  /* none of the refusals changed the stored state */
  channel got;
  assert_int_equal(channel_get(f->s, f->ch.id, &got), 0);
  assert_true(u256_cmp(&got.amount, &v.amount) == 0);
  assert_memory_equal(got.sig, v.sig, 65);
  /* closed channel (refunded): refused; reopened in the cache: accepted */
  u256 z = u256_from_u64(0);
  assert_int_equal(channel_set_chain(f->s, f->ch.id, &f->ch.deposit, f->ch.expiry, &z, true), 0);
  assert_int_equal(voucher_accept(f->s, &ok, NOW, 600, NULL), ERR_EXPIRED);
  assert_int_equal(channel_set_chain(f->s, f->ch.id, &f->ch.deposit, f->ch.expiry, &z, false), 0);
  /* the good ones still go through */
  assert_int_equal(voucher_accept(f->s, &ok, NOW, 600, NULL), 0);
  assert_int_equal(voucher_accept(f->s, &all, NOW, 600, NULL), 0);
  assert_int_equal(channel_get(f->s, f->ch.id, &got), 0);
  assert_true(u256_cmp(&got.amount, &all.amount) == 0);
}

static void test_durable_across_reopen(void **state) {
  fx *f = *state;
  voucher v = sign_v(f, &f->signer, 777);
  assert_int_equal(voucher_accept(f->s, &v, NOW, 600, NULL), 0);
  store_close(f->s);
  char err[256];
  assert_int_equal(store_open(f->path, &f->s, err, sizeof err), 0);
  channel got;
  assert_int_equal(channel_get(f->s, f->ch.id, &got), 0);
  assert_true(u256_cmp(&got.amount, &v.amount) == 0);
  assert_memory_equal(got.sig, v.sig, 65);
  assert_int_equal(got.role, CHANNEL_PROVIDER);
  /* claimed only moves up */
  u256 c5 = u256_from_u64(500), c1 = u256_from_u64(100);
  assert_int_equal(channel_set_chain(f->s, f->ch.id, &f->ch.deposit, f->ch.expiry, &c5, false), 0);
  assert_int_equal(channel_set_chain(f->s, f->ch.id, &f->ch.deposit, f->ch.expiry, &c1, false), 0);
  assert_int_equal(channel_get(f->s, f->ch.id, &got), 0);
  assert_true(u256_cmp(&got.claimed, &c5) == 0);
}

static void test_client_sign_rules(void **state) {
  fx *f = *state;
  channel c = f->ch;
  c.role = CHANNEL_CLIENT;
  c.amount = u256_from_u64(10);
  voucher v;
  u256 a = u256_from_u64(10), b = u256_from_u64(9), big = u256_from_u64(2000000), ok = u256_from_u64(11);
  assert_int_equal(voucher_sign(&c, &f->signer, &a, NOW, &v), ERR_REPLAY);
  assert_int_equal(voucher_sign(&c, &f->signer, &b, NOW, &v), ERR_DECREASE);
  assert_int_equal(voucher_sign(&c, &f->signer, &big, NOW, &v), ERR_OVERSPEND);
  assert_int_equal(voucher_sign(&c, &f->stranger, &ok, NOW, &v), ERR_WRONG_SIGNER);
  assert_int_equal(voucher_sign(&c, &f->signer, &ok, NOW + 86400, &v), ERR_EXPIRED);
  assert_int_equal(voucher_sign(&c, &f->signer, &ok, NOW, &v), 0);
  /* wire round trip */
  json_t *j = voucher_to_json(&v);
  voucher w;
  assert_int_equal(voucher_from_json(j, &w), 0);
  assert_memory_equal(&w, &v, sizeof v);
  json_object_set_new(j, "sig", json_string("0x1234"));
  assert_int_equal(voucher_from_json(j, &w), ERR_FORMAT);
  json_decref(j);
}

static void test_amount_parse(void **state) {
  (void)state;
  u256 v;
  char d[U256_DEC_BUF];
  assert_int_equal(channel_amount_parse("12345", &v), 0);
  u256_to_dec(&v, d);
  assert_string_equal(d, "12345");
  assert_int_equal(channel_amount_parse("0.5eth", &v), 0);
  u256_to_dec(&v, d);
  assert_string_equal(d, "500000000000000000");
  assert_int_equal(channel_amount_parse("1gwei", &v), 0);
  u256_to_dec(&v, d);
  assert_string_equal(d, "1000000000");
  assert_int_equal(channel_amount_parse("0x10", &v), 0);
  u256_to_dec(&v, d);
  assert_string_equal(d, "16");
  assert_int_equal(channel_amount_parse("1.5wei", &v), ERR_FORMAT);
  assert_int_equal(channel_amount_parse("1btc", &v), ERR_FORMAT);
  assert_int_equal(channel_amount_parse("", &v), ERR_FORMAT);
  assert_int_equal(channel_amount_parse("1..2eth", &v), ERR_FORMAT);
}

static void test_list_find_receipts(void **state) {
  fx *f = *state;
  channel c = f->ch; /* a client channel to peer P, next to the provider one */
  memset(c.id, 0xcd, 32);
  c.role = CHANNEL_CLIENT;
  memset(c.peer, 0x77, 32);
  c.expiry = (uint64_t)time(NULL) + 3600;
  assert_int_equal(channel_put(f->s, &c), 0);
  channel list[4], got;
  assert_int_equal(channel_list(f->s, 0, list, 4), 2);
  assert_int_equal(channel_list(f->s, CHANNEL_CLIENT, list, 4), 1);
  assert_memory_equal(list[0].id, c.id, 32);
  assert_int_equal(channel_find_client(f->s, c.peer, 31337, c.escrow, &got), 0);
  assert_memory_equal(got.id, c.id, 32);
  uint8_t other[32];
  memset(other, 0x78, 32);
  assert_int_equal(channel_find_client(f->s, other, 31337, c.escrow, &got), ERR_NOTFOUND);
  assert_int_equal(channel_find_client(f->s, c.peer, 1, c.escrow, &got), ERR_NOTFOUND);
  /* a re-put (refresh) keeps the voucher state and the role */
  u256 a = u256_from_u64(5);
  uint8_t sig[65] = {1};
  assert_int_equal(channel_set_voucher(f->s, c.id, &a, sig), 0);
  c.deposit = u256_from_u64(2000000);
  c.role = CHANNEL_PROVIDER;
  assert_int_equal(channel_put(f->s, &c), 0);
  assert_int_equal(channel_get(f->s, c.id, &got), 0);
  assert_int_equal(got.role, CHANNEL_CLIENT);
  assert_true(u256_cmp(&got.amount, &a) == 0);
  assert_true(u256_cmp(&got.deposit, &c.deposit) == 0);
  json_t *j = channel_to_json(&got);
  assert_string_equal(json_string_value(json_object_get(j, "deposit")), "2000000");
  assert_string_equal(json_string_value(json_object_get(j, "role")), "client");
  json_decref(j);
  pay_receipt r;
  memset(&r, 0, sizeof r);
  memcpy(r.channel_id, c.id, 32);
  r.role = CHANNEL_CLIENT;
  r.tokens = 42;
  r.amount = u256_from_u64(4200);
  assert_int_equal(channel_receipt_add(f->s, &r, 1700000000), 0);
}

static double now_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_10k_vouchers(void **state) {
  fx *f = *state;
  channel c = f->ch;
  c.role = CHANNEL_CLIENT;
  c.deposit = u256_from_u64(100000000);
  assert_int_equal(channel_set_chain(f->s, f->ch.id, &c.deposit, c.expiry, &c.claimed, false), 0);
  const int n = 10000;
  double t0 = now_sec();
  for (int i = 1; i <= n; i++) {
    voucher v;
    u256 a = u256_from_u64((uint64_t)i * 7);
    assert_int_equal(voucher_sign(&c, &f->signer, &a, NOW, &v), 0);
    c.amount = a;
    int rc = voucher_accept(f->s, &v, NOW, 600, NULL);
    if (rc) fail_msg("voucher %d: %s", i, err_str(rc));
  }
  double dt = now_sec() - t0;
  print_message("10000 vouchers signed and accepted (each committed, synchronous=FULL) in %.2f s: %.0f/s\n", dt,
                n / dt);
  channel got;
  assert_int_equal(channel_get(f->s, f->ch.id, &got), 0);
  u256 want = u256_from_u64((uint64_t)n * 7);
  assert_true(u256_cmp(&got.amount, &want) == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_accept_and_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(test_durable_across_reopen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_sign_rules, setup, teardown),
      cmocka_unit_test(test_amount_parse),
      cmocka_unit_test_setup_teardown(test_list_find_receipts, setup, teardown),
      cmocka_unit_test_setup_teardown(test_10k_vouchers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
