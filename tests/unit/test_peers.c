/* Peer book: address merging, derived state, exponential backoff with jitter bounds,
 * reconnect scheduling, and the DHT node cache; on a real migrated node database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "node/home.h"
#include "p2p/peers.h"

static char dir[256];

static store *open_db(void) {
  char path[300], err[512];
  tu_tmpdir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/p.db", dir);
  store *s;
  assert_int_equal(store_open(path, &s, err, sizeof err), 0);
  size_t n;
  const store_migration *m = home_migrations(&n);
  assert_int_equal(store_migrate(s, m, n, err, sizeof err), (int)n);
  return s;
}

static void test_seen_and_addrs(void **state) {
  (void)state;
  store *s = open_db();
  uint8_t a[32] = {1}, b[32] = {2};
  peer_info p;
  assert_int_equal(peers_get(s, a, 0, &p), ERR_NOTFOUND);
  assert_int_equal(peers_seen(s, a, "127.0.0.1:4000", "bootstrap", 1000), 0);
  assert_int_equal(peers_seen(s, a, "127.0.0.1:4001", "dht", 2000), 0);
  assert_int_equal(peers_seen(s, a, "127.0.0.1:4000", "dht", 3000), 0);
  assert_int_equal(peers_get(s, a, 3000, &p), 0);
  assert_int_equal(p.n_addrs, 2);
  assert_string_equal(p.addrs[0], "127.0.0.1:4000"); /* most recent first, no duplicates */
  assert_string_equal(p.addrs[1], "127.0.0.1:4001");
  assert_string_equal(p.source, "bootstrap");        /* first source is kept */
  assert_int_equal(p.state, PEER_UP);
  assert_int_equal(peers_get(s, a, 3000 + PEERS_UP_WINDOW_MS + 1, &p), 0);
  assert_int_equal(p.state, PEER_UNKNOWN);           /* stale */
  /* Address cap. */
  for (int i = 0; i < 20; i++) {
    char addr[32];
    snprintf(addr, sizeof addr, "10.0.0.%d:1", i);
    assert_int_equal(peers_add_addr(s, b, addr, "lan", 5000), 0);
  }
  assert_int_equal(peers_get(s, b, 5000, &p), 0);
  assert_int_equal(p.n_addrs, PEERS_MAX_ADDRS);
  assert_string_equal(p.addrs[0], "10.0.0.19:1");
  assert_int_equal(p.last_seen_ms, 0);               /* an address is not a sign of life */
  assert_int_equal(p.state, PEER_UNKNOWN);
  char huge[200];
  memset(huge, 'x', sizeof huge - 1);
  huge[sizeof huge - 1] = 0;
  assert_int_equal(peers_add_addr(s, b, huge, "lan", 5000), ERR_TOOBIG);
  peer_info list[4];
  assert_int_equal(peers_list(s, 5000, list, 4), 2);
  assert_memory_equal(list[0].pk, a, 32);            /* seen ones first */
  store_close(s);
  tu_rm_rf(dir);
}

static void test_backoff(void **state) {
  (void)state;
  assert_int_equal(peers_backoff_ms(0), 0);
  assert_int_equal(peers_backoff_ms(1), 1000);
  assert_int_equal(peers_backoff_ms(2), 2000);
  assert_int_equal(peers_backoff_ms(5), 16000);
  assert_int_equal(peers_backoff_ms(30), PEERS_BACKOFF_MAX_MS);
  assert_int_equal(peers_backoff_ms(1000), PEERS_BACKOFF_MAX_MS);
  store *s = open_db();
  uint8_t a[32] = {7};
  assert_int_equal(peers_seen(s, a, "127.0.0.1:1", "dht", 0), 0);
  peer_info due[4];
  assert_int_equal(peers_due(s, 0, due, 4), 1);
  int64_t now = 10000;
  for (int f = 1; f <= 4; f++) {
    assert_int_equal(peers_failed(s, a, now, f % 2 ? 0.2 : -5.0 /* clamped to -0.2 */), 0);
    peer_info p;
    assert_int_equal(peers_get(s, a, now, &p), 0);
    assert_int_equal(p.failures, f);
    int64_t base = peers_backoff_ms(f);
    int64_t want = now + (int64_t)((double)base * (f % 2 ? 1.2 : 0.8));
    assert_int_equal(p.retry_after_ms, want);
    assert_int_equal(peers_due(s, p.retry_after_ms - 1, due, 4), 0);
    assert_int_equal(peers_due(s, p.retry_after_ms, due, 4), 1);
    assert_int_equal(p.state, f >= PEERS_DOWN_FAILURES ? PEER_DOWN : PEER_UNKNOWN);
    now = p.retry_after_ms;
  }
  /* Seen again: back up, failures cleared. */
  assert_int_equal(peers_seen(s, a, NULL, "dht", now), 0);
  peer_info p;
  assert_int_equal(peers_get(s, a, now, &p), 0);
  assert_int_equal(p.failures, 0);
  assert_int_equal(p.state, PEER_UP);
  assert_int_equal(p.n_addrs, 1);
  assert_int_equal(peers_remove(s, a), 0);
  assert_int_equal(peers_get(s, a, now, &p), ERR_NOTFOUND);
  store_close(s);
  tu_rm_rf(dir);
}

static void test_dht_cache(void **state) {
  (void)state;
  store *s = open_db();
  uint8_t id[20];
  for (int i = 0; i < 10; i++) {
    memset(id, i, 20);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", 6000 + i);
    assert_int_equal(peers_dht_cache_put(s, id, addr, 100 + i), 0);
  }
  uint8_t ids[4][20];
  char addrs[4][PEERS_ADDR_MAX];
  assert_int_equal(peers_dht_cache_load(s, ids, addrs, 4), 4);
  assert_string_equal(addrs[0], "127.0.0.1:6009"); /* newest first */
  assert_int_equal(ids[0][0], 9);
  store_close(s);
  tu_rm_rf(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_seen_and_addrs), cmocka_unit_test(test_backoff),
                                     cmocka_unit_test(test_dht_cache)};
  return cmocka_run_group_tests_name("peers", tests, NULL, NULL);
}
