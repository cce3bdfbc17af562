/* libFuzzer harness: link sessions on hostile input. Byte 0 picks the mode:
 *   0  a responder fed arbitrary bytes (an unauthenticated dialer)
 *   1  an initiator fed arbitrary bytes after its first message (a hostile listener)
 *   2  an open session fed arbitrary record-stream plaintext by an authenticated peer
 *      (the peer's session encrypts it, so the record decoder and record handlers run)
 * The rest is the input, fed in slices. No crash, no leak, events in a legal order. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "crypto/ident.h"
#include "p2p/session.h"

static ident me, peer;
static int ready;

static void drain(session *s) {
  session_event ev;
  int saw_end = 0;
  while (session_next_event(s, &ev)) {
    assert(!saw_end);
    if (ev.type == SESSION_EV_ERROR || ev.type == SESSION_EV_CLOSED) saw_end = 1;
    if (ev.type == SESSION_EV_MESSAGE && ev.len) {
      volatile uint8_t x = ev.data[ev.len - 1];
      (void)x;
    }
  }
}

static void feed_slices(session *s, const uint8_t *d, size_t n) {
  size_t pos = 0, step = 7;
  while (pos < n) {
    size_t k = n - pos < step ? n - pos : step;
    session_feed(s, d + pos, k, 1000 + pos);
    drain(s);
    pos += k;
    step = step * 5 % 61 + 1;
  }
  session_tick(s, 1000000);
  drain(s);
}

static void relay(session *from, session *to) {
  buf b;
  buf_init(&b);
  if (session_take_output(from, &b)) session_feed(to, b.ptr, b.len, 0);
  buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    uint8_t seed[32];
    memset(seed, 9, 32);
    ident_from_seed(seed, &me);
    memset(seed, 10, 32);
    ident_from_seed(seed, &peer);
    ready = 1;
  }
  if (size < 1) return 0;
  int mode = data[0] % 3;
  data++;
  size--;
  static uint8_t k1[32], k2[32], k3[32], k4[32];
  memset(k1, 1, 32), memset(k2, 2, 32), memset(k3, 3, 32), memset(k4, 4, 32);
  session_params pa, pb;
  session_default_params(&pa);
  session_default_params(&pb);
  pa.static_priv = k1, pa.ephemeral_priv = k2; /* deterministic: reproducible crashes */
  pb.static_priv = k3, pb.ephemeral_priv = k4;
  session *s = NULL, *t = NULL;
  if (mode == 0) {
    if (session_new(0, &me, NULL, &pa, 0, &s)) return 0;
    feed_slices(s, data, size);
  } else if (mode == 1) {
    if (session_new(1, &me, NULL, &pa, 0, &s)) return 0;
    buf b;
    buf_init(&b);
    session_take_output(s, &b);
    buf_deinit(&b);
    feed_slices(s, data, size);
  } else {
    if (session_new(1, &peer, NULL, &pb, 0, &t) || session_new(0, &me, NULL, &pa, 0, &s)) goto out;
    for (int i = 0; i < 3; i++) {
      relay(t, s);
      relay(s, t);
    }
    drain(s);
    assert(session_get_state(s) == SESSION_OPEN);
    session__inject_plaintext(t, data, size);
    relay(t, s);
    drain(s);
  }
  {
    buf b;
    buf_init(&b);
    session_take_output(s, &b);
    buf_deinit(&b);
  }
out:
  session_free(s);
  session_free(t);
  return 0;
}
