/* Links over real loopback TCP sockets: two link managers on one libuv loop handshake,
 * authenticate each other, exchange messages in order, refuse a wrong node, settle a
 * simultaneous dial on one link, survive back-pressure on a large transfer, and report a
 * dead address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "p2p/link.h"
#include "p2p/session.h"

typedef struct side {
  const char *name;
  link_mgr *m;
  ident id;
  int ready, closed, closed_err, was_ready;
  uint8_t ready_pk[32];
  uint64_t msgs, bytes, bad_order;
  uint32_t next_seq;
  int writable;
} side;

static void on_ready(p2p_link *l, const uint8_t pk[32], const char *addr, int inbound, void *ud) {
  side *s = ud;
  (void)l; (void)addr; (void)inbound;
  s->ready++;
  memcpy(s->ready_pk, pk, 32);
}
static void on_message(p2p_link *l, const uint8_t *data, size_t len, void *ud) {
  side *s = ud;
  (void)l;
  uint32_t seq;
  if (len >= 4) {
    memcpy(&seq, data, 4);
    if (seq != s->next_seq) s->bad_order++;
    s->next_seq = seq + 1;
  }
  s->msgs++;
  s->bytes += len;
}
static void on_closed(p2p_link *l, const uint8_t *expected, int was_ready, int err, const char *why, void *ud) {
  side *s = ud;
  (void)l; (void)expected; (void)why;
  s->closed++;
  s->closed_err = err;
  s->was_ready = was_ready;
}
static void on_writable(p2p_link *l, void *ud) {
  side *s = ud;
  (void)l;
  s->writable++;
}

static const link_callbacks cbs = {on_ready, on_message, on_closed, on_writable};

static void make_side(uv_loop_t *loop, side *s, const char *name, int listen) {
  memset(s, 0, sizeof *s);
  s->name = name;
  assert_int_equal(ident_generate(&s->id), 0);
  assert_int_equal(link_mgr_new(loop, &s->id, &cbs, s, &s->m), 0);
  if (listen) assert_int_equal(link_mgr_listen(s->m, "127.0.0.1:0"), 0);
}

/* Runs the loop until cond or ~5 s. */
#define RUN_UNTIL(loop, cond)                                                   \
  do {                                                                          \
    for (int i_ = 0; i_ < 5000 && !(cond); i_++) uv_run(loop, UV_RUN_NOWAIT), uv_sleep(1); \
  } while (0)

static void close_all(uv_loop_t *loop, side *a, side *b) {
  link_mgr_close(a->m);
  link_mgr_close(b->m);
  uv_run(loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(loop), 0);
}

static void test_handshake_and_messages(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  side a, b;
  make_side(&loop, &a, "a", 1);
  make_side(&loop, &b, "b", 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", link_mgr_port(a.m));
  assert_int_equal(link_dial(b.m, a.id.pk, addr), 0);
  RUN_UNTIL(&loop, a.ready && b.ready);
  assert_int_equal(a.ready, 1);
  assert_int_equal(b.ready, 1);
  assert_memory_equal(a.ready_pk, b.id.pk, 32); /* each side knows the other's node key */
  assert_memory_equal(b.ready_pk, a.id.pk, 32);
  assert_int_equal(link_dial(b.m, a.id.pk, addr), 1); /* already linked */
  p2p_link *lb = link_find(b.m, a.id.pk);
  assert_non_null(lb);
  uint8_t msg[1000];
  memset(msg, 0x5a, sizeof msg);
  for (uint32_t i = 0; i < 500; i++) {
    memcpy(msg, &i, 4);
    assert_int_equal(link_send(lb, msg, 4 + i), 0);
  }
  RUN_UNTIL(&loop, a.msgs == 500);
  assert_int_equal(a.msgs, 500);
  assert_int_equal(a.bad_order, 0);
  /* A clean close reaches the other side. */
  link_close(lb, "done");
  RUN_UNTIL(&loop, a.closed && b.closed);
  assert_int_equal(a.closed, 1);
  assert_int_equal(a.was_ready, 1);
  assert_null(link_find(b.m, a.id.pk));
  close_all(&loop, &a, &b);
}

static void test_wrong_node(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  side a, b;
  make_side(&loop, &a, "a", 1);
  make_side(&loop, &b, "b", 0);
  ident other;
  ident_generate(&other);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", link_mgr_port(a.m));
  assert_int_equal(link_dial(b.m, other.pk, addr), 0); /* a answers, but is not `other` */
  RUN_UNTIL(&loop, b.closed);
  assert_int_equal(b.closed, 1);
  assert_int_equal(b.was_ready, 0);
  assert_true(b.closed_err < 0);
  assert_int_equal(b.ready, 0);
  close_all(&loop, &a, &b);
}

static void test_simultaneous_dial(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  side a, b;
  make_side(&loop, &a, "a", 1);
  make_side(&loop, &b, "b", 1);
  char aa[64], ba[64];
  snprintf(aa, sizeof aa, "127.0.0.1:%u", link_mgr_port(a.m));
  snprintf(ba, sizeof ba, "127.0.0.1:%u", link_mgr_port(b.m));
  assert_int_equal(link_dial(b.m, a.id.pk, aa), 0);
  assert_int_equal(link_dial(a.m, b.id.pk, ba), 0);
  for (int i = 0; i < 500; i++) uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(1);
  /* Exactly one link survives, the same one on both sides, and it works. */
  assert_int_equal(link_count(a.m), 1);
  assert_int_equal(link_count(b.m), 1);
  p2p_link *la = link_find(a.m, b.id.pk);
  assert_non_null(la);
  uint8_t m4[4] = {0};
  assert_int_equal(link_send(la, m4, 4), 0);
  RUN_UNTIL(&loop, b.msgs == 1);
  assert_int_equal(b.msgs, 1);
  close_all(&loop, &a, &b);
}

static void test_backpressure(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  side a, b;
  make_side(&loop, &a, "a", 1);
  make_side(&loop, &b, "b", 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", link_mgr_port(a.m));
  link_dial(b.m, a.id.pk, addr);
  RUN_UNTIL(&loop, b.ready);
  p2p_link *lb = link_find(b.m, a.id.pk);
  static uint8_t big[60000];
  uint32_t sent = 0, refused = 0;
  uint64_t want = 64ull << 20; /* 64 MiB through one link */
  while ((uint64_t)sent * sizeof big < want) {
    memcpy(big, &sent, 4);
    int rc = link_send(lb, big, sizeof big);
    if (rc == ERR_TOOBIG) {
      refused++;
      uv_run(&loop, UV_RUN_NOWAIT);
      continue;
    }
    assert_int_equal(rc, 0);
    sent++;
  }
  RUN_UNTIL(&loop, a.msgs == sent);
  assert_int_equal(a.msgs, sent);
  assert_int_equal(a.bad_order, 0);
  assert_true(refused > 0);     /* the sender was held back ... */
  assert_true(b.writable > 0);  /* ... and told when to resume */
  close_all(&loop, &a, &b);
}

static void test_dead_address(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  side a, b;
  make_side(&loop, &a, "a", 1);
  make_side(&loop, &b, "b", 0);
  uint16_t port = link_mgr_port(a.m);
  link_mgr_close(a.m); /* nobody listens there any more */
  a.m = NULL;
  uv_run(&loop, UV_RUN_NOWAIT);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
  assert_int_equal(link_dial(b.m, a.id.pk, addr), 0);
  RUN_UNTIL(&loop, b.closed);
  assert_int_equal(b.closed, 1);
  assert_int_equal(b.closed_err, UV_ECONNREFUSED);
  assert_true(link_dial(b.m, a.id.pk, "not-an-address") < 0);
  link_mgr_close(b.m);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_accept_rate_limit(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  side a, b;
  make_side(&loop, &a, "a", 1);
  make_side(&loop, &b, "b", 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", link_mgr_port(a.m));
  /* 30 connections at once from one address: the burst is 20. */
  for (int i = 0; i < 30; i++) assert_int_equal(link_dial(b.m, NULL, addr), 0);
  for (int i = 0; i < 1000; i++) uv_run(&loop, UV_RUN_NOWAIT), uv_sleep(1);
  link_stats st;
  link_mgr_stats(a.m, &st);
  assert_true(st.refused_rate >= 10 - 1); /* a few tokens may refill meanwhile */
  assert_true(st.accepted <= LINK_ACCEPT_BURST + 5);
  assert_int_equal(st.accepted + st.refused_rate + st.refused_handshakes, 30);
  /* The dialling side sees the refused connections as failed dials. */
  assert_true(b.closed >= 9);
  close_all(&loop, &a, &b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_and_messages), cmocka_unit_test(test_wrong_node),
      cmocka_unit_test(test_simultaneous_dial), cmocka_unit_test(test_backpressure),
      cmocka_unit_test(test_dead_address), cmocka_unit_test(test_accept_rate_limit)};
  return cmocka_run_group_tests_name("link", tests, NULL, NULL);
}
