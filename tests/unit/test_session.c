/* Link sessions: two in-memory engines handshake and exchange messages of every size;
 * wrong expected node; a flipped bit anywhere in either direction; replayed, reordered
 * and dropped transport messages; deterministic rekey agreement; keepalive, idle and
 * handshake timeouts; clean close; garbage from an unauthenticated peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "crypto/ident.h"
#include "p2p/frame.h"
#include "p2p/noise.h"
#include "p2p/session.h"

typedef struct side {
  session *s;
  int ready, failed, closed, err; /* events seen */
  uint8_t remote[32];
  uint16_t close_code;
  size_t nmsg;        /* messages received */
  uint8_t *last;      /* copy of the last message */
  size_t last_len;
} side;

static ident ida, idb, idc;

static int setup(void **state) {
  (void)state;
  uint8_t seed[32];
  memset(seed, 1, 32);
  ident_from_seed(seed, &ida);
  memset(seed, 2, 32);
  ident_from_seed(seed, &idb);
  memset(seed, 3, 32);
  ident_from_seed(seed, &idc);
  return 0;
}

static void drain(side *x) {
  session_event ev;
  while (session_next_event(x->s, &ev)) {
    switch (ev.type) {
    case SESSION_EV_READY:
      assert_false(x->ready);
      x->ready = 1;
      memcpy(x->remote, ev.remote_pk, 32);
      assert_int_equal(ev.remote_version, SESSION_VERSION);
      break;
    case SESSION_EV_MESSAGE:
      assert_true(x->ready);
      x->nmsg++;
      free(x->last);
      x->last = malloc(ev.len ? ev.len : 1);
      if (ev.len) memcpy(x->last, ev.data, ev.len);
      x->last_len = ev.len;
      break;
    case SESSION_EV_CLOSED:
      x->closed = 1;
      x->close_code = ev.code;
      break;
    case SESSION_EV_ERROR:
      assert_false(x->failed);
      assert_true(ev.err < 0);
      assert_non_null(ev.why);
      x->failed = 1;
      x->err = ev.err;
      break;
    }
  }
}

/* Tamper hook: flips bit 0 of byte index `flip` of the stream from `dir` (0 = a->b). */
static long flip_at = -1;
static int flip_dir = 0;
static size_t sent_bytes[2];

static buf record_ab; /* when recording: every byte sent a -> b */
static int recording;

static void relay(side *from, side *to, int dir, uint64_t now) {
  buf b;
  buf_init(&b);
  size_t n = session_take_output(from->s, &b);
  if (n && recording && dir == 0) buf_append(&record_ab, b.ptr, n);
  if (n) {
    if (flip_at >= 0 && dir == flip_dir && (size_t)flip_at >= sent_bytes[dir] && (size_t)flip_at < sent_bytes[dir] + n)
      b.ptr[flip_at - (long)sent_bytes[dir]] ^= 1;
    sent_bytes[dir] += n;
    session_feed(to->s, b.ptr, n, now);
  }
  buf_deinit(&b);
  drain(to);
}

static void pump(side *a, side *b, uint64_t now) {
  while (session_output_pending(a->s) || session_output_pending(b->s)) {
    relay(a, b, 0, now);
    relay(b, a, 1, now);
  }
  drain(a);
  drain(b);
}

static void pair(side *a, side *b, const uint8_t *expect_a, const uint8_t *expect_b, const session_params *p) {
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  sent_bytes[0] = sent_bytes[1] = 0;
  assert_int_equal(session_new(1, &ida, expect_a, p, 1000, &a->s), 0);
  assert_int_equal(session_new(0, &idb, expect_b, p, 1000, &b->s), 0);
  pump(a, b, 1000);
}

static void unpair(side *a, side *b) {
  session_free(a->s);
  session_free(b->s);
  free(a->last);
  free(b->last);
}

static void test_handshake_and_messages(void **state) {
  (void)state;
  side a, b;
  pair(&a, &b, idb.pk, ida.pk, NULL);
  assert_true(a.ready && b.ready);
  assert_false(a.failed || b.failed);
  assert_memory_equal(a.remote, idb.pk, 32);
  assert_memory_equal(b.remote, ida.pk, 32);
  assert_memory_equal(session_remote_pk(a.s), idb.pk, 32);
  assert_memory_equal(session_handshake_hash(a.s), session_handshake_hash(b.s), 64);
  assert_int_equal(session_get_state(a.s), SESSION_OPEN);
  static const size_t sizes[] = {0, 1, 100, NOISE_MAX_PLAINTEXT - 5, NOISE_MAX_PLAINTEXT - 4, NOISE_MAX_PLAINTEXT,
                                 3 * NOISE_MAX_PLAINTEXT + 7, 1024 * 1024, FRAME_MAX_APP};
  uint8_t *m = malloc(FRAME_MAX_APP);
  for (size_t i = 0; i < FRAME_MAX_APP; i++) m[i] = (uint8_t)(i * 13 + 1);
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    side *from = k % 2 ? &b : &a, *to = k % 2 ? &a : &b;
    size_t before = to->nmsg;
    assert_int_equal(session_send(from->s, m, sizes[k], 2000), 0);
    pump(&a, &b, 2000);
    assert_int_equal(to->nmsg, before + 1);
    assert_int_equal(to->last_len, sizes[k]);
    if (sizes[k]) assert_memory_equal(to->last, m, sizes[k]);
  }
  assert_int_equal(session_send(a.s, m, FRAME_MAX_APP + 1, 2000), ERR_TOOBIG);
  /* Back-pressure accounting: queued bytes grow with sends and drop to 0 when taken. */
  assert_int_equal(session_output_pending(a.s), 0);
  for (int i = 0; i < 10; i++) assert_int_equal(session_send(a.s, m, FRAME_MAX_APP, 2000), 0);
  assert_true(session_output_pending(a.s) > SESSION_HIGH_WATER);
  buf taken;
  buf_init(&taken);
  size_t n = session_take_output(a.s, &taken);
  assert_int_equal(n, taken.len);
  assert_int_equal(session_output_pending(a.s), 0);
  size_t before0 = b.nmsg;
  assert_int_equal(session_feed(b.s, taken.ptr, taken.len, 2000), 0);
  buf_deinit(&taken);
  drain(&b);
  assert_int_equal(b.nmsg, before0 + 10);
  /* Many messages queued before any is relayed arrive in order. */
  for (int i = 0; i < 50; i++) {
    m[0] = (uint8_t)i;
    assert_int_equal(session_send(a.s, m, 10 + (size_t)i, 2000), 0);
  }
  size_t before = b.nmsg;
  pump(&a, &b, 2000);
  assert_int_equal(b.nmsg, before + 50);
  assert_int_equal(b.last_len, 59);
  assert_int_equal(b.last[0], 49);
  free(m);
  unpair(&a, &b);
}

static void test_send_before_ready(void **state) {
  (void)state;
  session *s;
  assert_int_equal(session_new(1, &ida, NULL, NULL, 0, &s), 0);
  assert_int_equal(session_send(s, (const uint8_t *)"x", 1, 0), ERR_INVAL);
  assert_null(session_remote_pk(s));
  assert_true(session_output_pending(s) == 2 + 32);
  session_free(s);
  session_free(NULL);
}

static void test_wrong_expected(void **state) {
  (void)state;
  side a, b;
  /* The initiator expects C but reaches B: it fails on message 2, never sending message 3
   * (so B never learns who A is). */
  pair(&a, &b, idc.pk, NULL, NULL);
  assert_true(a.failed);
  assert_int_equal(a.err, ERR_CRYPTO);
  assert_false(a.ready);
  assert_false(b.ready);
  assert_int_equal(session_get_state(a.s), SESSION_FAILED);
  assert_int_equal(session_send(a.s, (const uint8_t *)"x", 1, 0), ERR_CRYPTO);
  unpair(&a, &b);
  /* The responder expects C but A dials: A is ready (it sent msg 3), B fails. */
  pair(&a, &b, NULL, idc.pk, NULL);
  assert_true(a.ready);
  assert_true(b.failed);
  assert_int_equal(b.err, ERR_CRYPTO);
  unpair(&a, &b);
}

/* Fixed keys so every run has the same transcript. */
static void fixed_params(session_params *p, int who) {
  static uint8_t keys[4][32];
  for (int i = 0; i < 4; i++) memset(keys[i], 0x40 + i, 32);
  session_default_params(p);
  p->static_priv = keys[who * 2];
  p->ephemeral_priv = keys[who * 2 + 1];
}

static void run_fixed(side *a, side *b, const uint8_t *msg, size_t len) {
  session_params pa, pb;
  fixed_params(&pa, 0);
  fixed_params(&pb, 1);
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  sent_bytes[0] = sent_bytes[1] = 0;
  assert_int_equal(session_new(1, &ida, idb.pk, &pa, 1000, &a->s), 0);
  assert_int_equal(session_new(0, &idb, ida.pk, &pb, 1000, &b->s), 0);
  /* a -> msg1; b -> msg2; a -> msg3 + app; b -> app. */
  relay(a, b, 0, 1000);
  relay(b, a, 1, 1000);
  if (a->ready) session_send(a->s, msg, len, 1000);
  relay(a, b, 0, 1000);
  if (b->ready) session_send(b->s, msg, len, 1000);
  relay(b, a, 1, 1000);
  drain(a);
  drain(b);
}

static void test_tamper_everywhere(void **state) {
  (void)state;
  const uint8_t msg[] = "the quick brown fox";
  side a, b;
  flip_at = -1;
  run_fixed(&a, &b, msg, sizeof msg);
  assert_true(a.ready && b.ready && a.nmsg == 1 && b.nmsg == 1);
  size_t total[2] = {sent_bytes[0], sent_bytes[1]};
  unpair(&a, &b);
  int immediate = 0, cases = 0;
  for (flip_dir = 0; flip_dir < 2; flip_dir++) {
    for (flip_at = 0; flip_at < (long)total[flip_dir]; flip_at++) {
      run_fixed(&a, &b, msg, sizeof msg);
      side *rx = flip_dir == 0 ? &b : &a;
      cases++;
      /* The tampered direction never delivers its message... */
      assert_int_equal(rx->nmsg, 0);
      /* ...and any message that did arrive is intact. */
      side *other = flip_dir == 0 ? &a : &b;
      if (other->nmsg) assert_memory_equal(other->last, msg, sizeof msg);
      if (a.failed || b.failed) {
        immediate++;
      } else {
        /* Only a corrupted length prefix can stall instead; the timers end it. */
        session_tick(a.s, 1000000);
        session_tick(b.s, 1000000);
        drain(&a);
        drain(&b);
        assert_true(a.failed || b.failed);
      }
      unpair(&a, &b);
    }
  }
  flip_at = -1;
  print_message("tamper: %d positions, %d failed at once, rest by timeout\n", cases, immediate);
  assert_true(immediate > cases * 9 / 10);
}

/* The whole a -> b stream (handshake and a message) fed to a fresh b cut at every byte. */
static void test_split_everywhere(void **state) {
  (void)state;
  const uint8_t msg[] = "split me anywhere";
  side a, b;
  buf_init(&record_ab);
  recording = 1;
  flip_at = -1;
  run_fixed(&a, &b, msg, sizeof msg);
  recording = 0;
  assert_int_equal(b.nmsg, 1);
  unpair(&a, &b);
  session_params pb;
  fixed_params(&pb, 1);
  for (size_t cut = 0; cut <= record_ab.len; cut++) {
    memset(&b, 0, sizeof b);
    assert_int_equal(session_new(0, &idb, ida.pk, &pb, 1000, &b.s), 0);
    assert_int_equal(session_feed(b.s, record_ab.ptr, cut, 1000), 0);
    assert_int_equal(session_feed(b.s, record_ab.ptr + cut, record_ab.len - cut, 1000), 0);
    drain(&b);
    assert_true(b.ready);
    assert_false(b.failed);
    assert_int_equal(b.nmsg, 1);
    assert_memory_equal(b.last, msg, sizeof msg);
    session_free(b.s);
    free(b.last);
  }
  buf_deinit(&record_ab);
}

/* Sends one message from a and returns its wire bytes without delivering them. */
static buf capture(side *a, const char *text) {
  buf b;
  buf_init(&b);
  assert_int_equal(session_send(a->s, (const uint8_t *)text, strlen(text), 2000), 0);
  session_take_output(a->s, &b);
  return b;
}

static void test_replay_reorder_drop(void **state) {
  (void)state;
  side a, b;
  for (int mode = 0; mode < 3; mode++) {
    pair(&a, &b, NULL, NULL, NULL);
    buf m1 = capture(&a, "one"), m2 = capture(&a, "two");
    if (mode == 0) { /* replay */
      assert_int_equal(session_feed(b.s, m1.ptr, m1.len, 2000), 0);
      assert_int_equal(session_feed(b.s, m1.ptr, m1.len, 2000), ERR_CRYPTO);
    } else if (mode == 1) { /* reorder */
      assert_int_equal(session_feed(b.s, m2.ptr, m2.len, 2000), ERR_CRYPTO);
    } else { /* drop m1 */
      assert_int_equal(session_feed(b.s, m2.ptr, m2.len, 2000), ERR_CRYPTO);
    }
    drain(&b);
    assert_true(b.failed);
    assert_int_equal(b.nmsg, mode == 0 ? 1 : 0);
    /* Dead for good. */
    assert_int_equal(session_feed(b.s, m1.ptr, m1.len, 2000), ERR_CRYPTO);
    buf_deinit(&m1);
    buf_deinit(&m2);
    unpair(&a, &b);
  }
  /* A reflected message (a's own traffic fed back to a) fails too: directions use different keys. */
  pair(&a, &b, NULL, NULL, NULL);
  buf m = capture(&a, "mirror");
  assert_int_equal(session_feed(a.s, m.ptr, m.len, 2000), ERR_CRYPTO);
  buf_deinit(&m);
  unpair(&a, &b);
}

static void test_rekey(void **state) {
  (void)state;
  session_params p;
  session_default_params(&p);
  p.rekey_messages = 7;
  p.rekey_bytes = 200000;
  side a, b;
  pair(&a, &b, NULL, NULL, &p);
  uint8_t *m = calloc(1, 1024 * 1024);
  for (int i = 0; i < 100; i++) {
    size_t len = i == 50 ? 1024 * 1024 : (size_t)(i * 37);
    m[0] = (uint8_t)i;
    assert_int_equal(session_send(a.s, m, len, 2000), 0);
    assert_int_equal(session_send(b.s, m, len / 2 + 1, 2000), 0);
    if (i % 3 == 0) pump(&a, &b, 2000);
  }
  pump(&a, &b, 2000);
  assert_int_equal(a.nmsg, 100);
  assert_int_equal(b.nmsg, 100);
  assert_false(a.failed || b.failed);
  uint64_t as, ar, bs, br;
  session_rekey_counts(a.s, &as, &ar);
  session_rekey_counts(b.s, &bs, &br);
  assert_true(as > 10 && bs > 10);
  assert_int_equal(as, br);
  assert_int_equal(bs, ar);
  print_message("rekeys: a->b %llu, b->a %llu\n", (unsigned long long)as, (unsigned long long)bs);
  /* Peers that disagree on the rule break at the first rekey. */
  free(m);
  unpair(&a, &b);
  session_params q = p;
  q.rekey_messages = 8;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  assert_int_equal(session_new(1, &ida, NULL, &p, 0, &a.s), 0);
  assert_int_equal(session_new(0, &idb, NULL, &q, 0, &b.s), 0);
  pump(&a, &b, 0);
  for (int i = 0; i < 8; i++) session_send(a.s, (const uint8_t *)"x", 1, 0);
  pump(&a, &b, 0);
  assert_true(b.failed);
  assert_int_equal(b.nmsg, 7);
  unpair(&a, &b);
}

static void test_timers(void **state) {
  (void)state;
  side a, b;
  pair(&a, &b, NULL, NULL, NULL); /* at t = 1000 */
  assert_int_equal(session_deadline(a.s), 1000 + 15000);
  assert_int_equal(session_tick(a.s, 5000), 0);
  assert_int_equal(session_output_pending(a.s), 0);
  /* Idle: a pings, b pongs; both stay up. */
  assert_int_equal(session_tick(a.s, 16000), 0);
  assert_true(session_output_pending(a.s) > 0);
  relay(&a, &b, 0, 16000);
  assert_true(session_output_pending(b.s) > 0); /* the pong */
  relay(&b, &a, 1, 16000);
  assert_int_equal(session_deadline(a.s), 16000 + 15000);
  assert_int_equal(a.nmsg + b.nmsg, 0);
  assert_int_equal(session_deadline(b.s), 16000 + 15000); /* b sent the pong at 16000 */
  /* b hears nothing for 60 s: it pings at its keepalive but the ping goes nowhere. */
  unpair(&a, &b);
  pair(&a, &b, NULL, NULL, NULL);
  assert_int_equal(session_tick(b.s, 60999), 0);
  buf junk;
  buf_init(&junk);
  session_take_output(b.s, &junk); /* drop b's ping */
  buf_deinit(&junk);
  assert_int_equal(session_tick(b.s, 61000), -ETIMEDOUT);
  drain(&b);
  assert_true(b.failed);
  assert_int_equal(session_deadline(b.s), UINT64_MAX);
  unpair(&a, &b);
  /* Handshake timeout. */
  session *s;
  assert_int_equal(session_new(0, &idb, NULL, NULL, 100, &s), 0);
  assert_int_equal(session_deadline(s), 10100);
  assert_int_equal(session_tick(s, 10099), 0);
  assert_int_equal(session_tick(s, 10100), -ETIMEDOUT);
  session_free(s);
}

static void test_close(void **state) {
  (void)state;
  side a, b;
  pair(&a, &b, NULL, NULL, NULL);
  assert_int_equal(session_send(a.s, (const uint8_t *)"last", 4, 2000), 0);
  assert_int_equal(session_close(a.s, SESSION_CLOSE_SHUTDOWN, "bye", 2000), 0);
  assert_int_equal(session_get_state(a.s), SESSION_CLOSING);
  assert_int_equal(session_send(a.s, (const uint8_t *)"x", 1, 2000), ERR_INVAL);
  assert_int_equal(session_close(a.s, 0, NULL, 2000), ERR_INVAL);
  relay(&a, &b, 0, 2000);
  assert_int_equal(b.nmsg, 1);
  assert_true(b.closed);
  assert_int_equal(b.close_code, SESSION_CLOSE_SHUTDOWN);
  assert_int_equal(session_get_state(b.s), SESSION_CLOSED);
  assert_int_equal(session_send(b.s, (const uint8_t *)"x", 1, 2000), ERR_INVAL);
  assert_int_equal(session_deadline(b.s), UINT64_MAX);
  unpair(&a, &b);
}

static void test_garbage(void **state) {
  (void)state;
  uint8_t junk[4096];
  int failed = 0;
  for (int round = 0; round < 200; round++) {
    session *s;
    assert_int_equal(session_new(round % 2, &idb, NULL, NULL, 0, &s), 0);
    randombytes_buf(junk, sizeof junk);
    if (round % 4 < 2) junk[0] = 0, junk[1] = 32; /* a plausible first message */
    int rc = session_feed(s, junk, sizeof junk, 0);
    if (rc) failed++;
    session_event ev;
    while (session_next_event(s, &ev)) assert_int_equal(ev.type, SESSION_EV_ERROR);
    assert_int_not_equal(session_get_state(s), SESSION_OPEN);
    session_free(s);
  }
  assert_true(failed >= 40); /* the others wait for a long frame; the handshake timer ends them */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_handshake_and_messages),
    cmocka_unit_test(test_send_before_ready),
    cmocka_unit_test(test_wrong_expected),
    cmocka_unit_test(test_tamper_everywhere),
    cmocka_unit_test(test_split_everywhere),
    cmocka_unit_test(test_replay_reorder_drop),
    cmocka_unit_test(test_rekey),
    cmocka_unit_test(test_timers),
    cmocka_unit_test(test_close),
    cmocka_unit_test(test_garbage),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
