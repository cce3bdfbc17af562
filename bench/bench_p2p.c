/* bench_p2p — link layer figures, all in memory (no sockets):
 *   handshakes/s       two session engines, full XX handshake with identity signatures
 *   transport MB/s     64 KiB application messages, encrypt (sender) + decrypt (receiver)
 *   noise MB/s         raw noise_cs_encrypt + decrypt of 65519-byte messages
 *   RPC round trips/s  rpc_call -> handler -> rpc_respond over two open sessions
 * Prints a table; asserts nothing about speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "crypto/ident.h"
#include "p2p/noise.h"
#include "p2p/rpc.h"
#include "p2p/session.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static ident ia, ib;
static size_t delivered;

static void relay(session *from, session *to, rpc *to_rpc) {
  buf b;
  buf_init(&b);
  if (session_take_output(from, &b)) session_feed(to, b.ptr, b.len, 0);
  buf_deinit(&b);
  session_event ev;
  while (session_next_event(to, &ev)) {
    if (ev.type == SESSION_EV_MESSAGE) {
      delivered += ev.len;
      if (to_rpc) rpc_on_message(to_rpc, ev.data, ev.len, 0);
    }
  }
}

static void open_pair(session **a, session **b) {
  session_new(1, &ia, ib.pk, NULL, 0, a);
  session_new(0, &ib, ia.pk, NULL, 0, b);
  relay(*a, *b, NULL);
  relay(*b, *a, NULL);
  relay(*a, *b, NULL);
  if (session_get_state(*a) != SESSION_OPEN || session_get_state(*b) != SESSION_OPEN) {
    fprintf(stderr, "bench_p2p: handshake failed\n");
    exit(1);
  }
}

static int s_send(void *ud, const uint8_t *msg, size_t len) { return session_send(ud, msg, len, 0); }

static void h_echo(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  rpc_respond(r, req->handle, req->params, NULL, 0);
}

static size_t replies;
static void on_reply(void *ud, rpc *r, const rpc_reply *rep) {
  (void)ud;
  (void)r;
  if (rep->kind == RPC_REPLY_RESULT) replies++;
}

int main(void) {
  ident_generate(&ia);
  ident_generate(&ib);
  printf("%-34s %14s %10s\n", "benchmark", "rate", "unit");

  /* Handshakes. */
  int n = 0;
  double t0 = now_s(), t;
  do {
    session *a, *b;
    open_pair(&a, &b);
    session_free(a);
    session_free(b);
    n++;
  } while ((t = now_s() - t0) < 1.0);
  printf("%-34s %14.0f %10s\n", "handshakes (XX + Ed25519, 2 sides)", n / t, "/s");

  /* Transport through sessions: 64 KiB messages. */
  session *a, *b;
  open_pair(&a, &b);
  size_t len = 64 * 1024;
  uint8_t *msg = calloc(1, len);
  delivered = 0;
  n = 0;
  t0 = now_s();
  do {
    for (int i = 0; i < 16; i++) session_send(a, msg, len, 0);
    relay(a, b, NULL);
    n += 16;
  } while ((t = now_s() - t0) < 1.0);
  if (delivered != (size_t)n * len) fprintf(stderr, "bench_p2p: lost data\n");
  printf("%-34s %14.1f %10s\n", "session 64 KiB msgs enc+dec", (double)n * len / t / 1e6, "MB/s");

  /* Raw Noise cipher states. */
  noise_cs tx, rx;
  uint8_t k[32] = {1};
  noise_cs_init(&tx, k);
  noise_cs_init(&rx, k);
  static uint8_t pt[NOISE_MAX_MSG], ct[NOISE_MAX_MSG];
  size_t cl, pl;
  n = 0;
  t0 = now_s();
  do {
    noise_cs_encrypt(&tx, NULL, 0, pt, NOISE_MAX_PLAINTEXT, ct, sizeof ct, &cl);
    noise_cs_decrypt(&rx, NULL, 0, ct, cl, pt, sizeof pt, &pl);
    n++;
  } while ((t = now_s() - t0) < 1.0);
  printf("%-34s %14.1f %10s\n", "noise_cs 65519 B enc+dec", (double)n * NOISE_MAX_PLAINTEXT / t / 1e6, "MB/s");

  /* RPC round trips over the open sessions. */
  rpc *ra, *rb;
  rpc_new(s_send, a, &ra);
  rpc_new(s_send, b, &rb);
  rpc_method m = {"echo", RPC_PARAMS_ANY, h_echo, NULL};
  rpc_register(rb, &m);
  json_t *params = json_pack("{si}", "n", 1);
  replies = 0;
  t0 = now_s();
  do {
    uint64_t id;
    for (int i = 0; i < 64; i++) rpc_call(ra, "echo", params, NULL, 0, 0, 0, on_reply, NULL, &id);
    relay(a, b, rb);
    relay(b, a, ra);
  } while ((t = now_s() - t0) < 1.0);
  printf("%-34s %14.0f %10s\n", "RPC round trips (64 in flight)", replies / t, "/s");
  replies = 0;
  t0 = now_s();
  do {
    uint64_t id;
    rpc_call(ra, "echo", params, NULL, 0, 0, 0, on_reply, NULL, &id);
    relay(a, b, rb);
    relay(b, a, ra);
  } while ((t = now_s() - t0) < 1.0);
  printf("%-34s %14.0f %10s\n", "RPC round trips (1 in flight)", replies / t, "/s");
  json_decref(params);
  rpc_free(ra);
  rpc_free(rb);
  session_free(a);
  session_free(b);
  free(msg);
  return 0;
}
