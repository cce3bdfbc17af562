/* bench_link — links over real loopback TCP: Noise_XX handshakes (with the Ed25519 identity
 * binding) per second, JSON-RPC round-trip time and rate, and bulk throughput. Two link
 * managers on one libuv loop in one process, so the figures include the kernel's TCP
 * stack but no second core. Prints a table; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/err.h"
#include "p2p/link.h"
#include "p2p/rpc.h"

typedef struct side {
  link_mgr *m;
  ident id;
  p2p_link *l;
  rpc *r;
  int ready, closed;
  uint64_t bytes;
} side;

static uv_loop_t loop;
static side a, b;
static int replies;

static int rpc_send(void *ud, const uint8_t *msg, size_t len) { return link_send(((side *)ud)->l, msg, len); }

static void m_echo(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  rpc_respond(r, req->handle, req->params, NULL, 0);
}

static void on_ready(p2p_link *l, const uint8_t pk[32], const char *addr, int inbound, void *ud) {
  side *s = ud;
  (void)pk; (void)addr; (void)inbound;
  s->ready++;
  s->l = l;
  if (!s->r) {
    rpc_new(rpc_send, s, &s->r);
    rpc_method m = {"echo", RPC_PARAMS_ANY, m_echo, s};
    rpc_register(s->r, &m);
  }
}
static void on_message(p2p_link *l, const uint8_t *d, size_t n, void *ud) {
  side *s = ud;
  (void)l;
  s->bytes += n;
  if (s->r && n && d[0] <= 1) rpc_on_message(s->r, d, n, uv_now(&loop));
}
static void on_closed(p2p_link *l, const uint8_t *e, int was_ready, int err, const char *why, void *ud) {
  side *s = ud;
  (void)l; (void)e; (void)was_ready; (void)err; (void)why;
  s->closed++;
  s->l = NULL;
}
static const link_callbacks cbs = {on_ready, on_message, on_closed, NULL};

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static void on_reply(void *ud, rpc *r, const rpc_reply *reply) {
  (void)ud; (void)r; (void)reply;
  replies++;
}

int main(void) {
  uv_loop_init(&loop);
  ident_generate(&a.id);
  ident_generate(&b.id);
  link_mgr_new(&loop, &a.id, &cbs, &a, &a.m);
  link_mgr_new(&loop, &b.id, &cbs, &b, &b.m);
  link_mgr_set_accept_limits(a.m, 1e9, 1e9);
  if (link_mgr_listen(a.m, "127.0.0.1:0")) { fprintf(stderr, "cannot listen\n"); return 1; }
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", link_mgr_port(a.m));
  printf("links over loopback TCP (one process, one loop)\n");
  printf("%-40s %12s %s\n", "benchmark", "rate", "unit");

  /* Handshakes: dial, wait until both sides are ready, close, repeat. */
  int n = 300;
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    int want = b.ready + 1;
    link_dial(b.m, a.id.pk, addr);
    while (b.ready < want) uv_run(&loop, UV_RUN_ONCE);
    link_close(b.l, "bench");
    while (b.l) uv_run(&loop, UV_RUN_ONCE);
  }
  printf("%-40s %12.0f %s\n", "connect + handshake + close", n / (now_s() - t0), "/s");

  /* One long-lived link for RPC and bulk. */
  int want = b.ready + 1;
  link_dial(b.m, a.id.pk, addr);
  while (b.ready < want || !a.l) uv_run(&loop, UV_RUN_ONCE);
  json_t *params = json_pack("{s:s}", "x", "ping");
  uint64_t id;
  int calls = 5000;
  replies = 0;
  t0 = now_s();
  for (int i = 0; i < calls; i++) {
    int want_r = replies + 1;
    rpc_call(b.r, "echo", params, NULL, 0, 0, uv_now(&loop), on_reply, NULL, &id);
    while (replies < want_r) uv_run(&loop, UV_RUN_ONCE);
  }
  double dt = now_s() - t0;
  printf("%-40s %12.1f %s\n", "RPC round trip (1 in flight)", dt / calls * 1e6, "us");
  replies = 0;
  t0 = now_s();
  for (int sent = 0; sent < calls;) {
    while (sent < calls && sent - replies < 64) {
      rpc_call(b.r, "echo", params, NULL, 0, 0, uv_now(&loop), on_reply, NULL, &id);
      sent++;
    }
    uv_run(&loop, UV_RUN_ONCE);
  }
  while (replies < calls) uv_run(&loop, UV_RUN_ONCE);
  printf("%-40s %12.0f %s\n", "RPC calls (64 in flight)", calls / (now_s() - t0), "/s");
  json_decref(params);

  /* Bulk: 256 MiB in 64 KiB application messages (first byte 0xff: not RPC). */
  static uint8_t msg[65536];
  memset(msg, 0xff, sizeof msg);
  uint64_t total = 256ull << 20, sent = 0, start = a.bytes;
  t0 = now_s();
  while (a.bytes - start < total) {
    while (sent < total && link_send(b.l, msg, sizeof msg) == 0) sent += sizeof msg;
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  printf("%-40s %12.1f %s\n", "bulk 64 KiB messages (encrypt+decrypt)", (double)total / (now_s() - t0) / 1e6, "MB/s");
  link_mgr_close(a.m);
  link_mgr_close(b.m);
  uv_run(&loop, UV_RUN_DEFAULT);
  rpc_free(a.r);
  rpc_free(b.r);
  return 0;
}
