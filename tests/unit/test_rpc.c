/* JSON-RPC engine: 100 requests answered out of order, streaming, cancellation both ways,
 * timeouts, attachments of 0, 1 and 1 MiB (directly and over two real sessions),
 * malformed input answered with the right codes, fail_all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/ident.h"
#include "p2p/rpc.h"
#include "p2p/session.h"

/* ---- an in-memory pipe between two engines -------------------------------------------- */

#define QMAX 512
typedef struct queue {
  buf msgs[QMAX];
  size_t n;
} queue;

static int q_send(void *ud, const uint8_t *msg, size_t len) {
  queue *q = ud;
  assert_true(q->n < QMAX);
  buf_init(&q->msgs[q->n]);
  buf_append(&q->msgs[q->n], msg, len);
  q->n++;
  return 0;
}

static void q_clear(queue *q) {
  for (size_t i = 0; i < q->n; i++) buf_deinit(&q->msgs[i]);
  q->n = 0;
}

static queue qa, qb; /* messages sent by a / by b */
static rpc *ra, *rb;

/* Delivers everything queued, both ways, until quiet. */
static void pump(uint64_t now) {
  while (qa.n || qb.n) {
    queue ta = qa, tb = qb;
    qa.n = qb.n = 0;
    for (size_t i = 0; i < ta.n; i++) rpc_on_message(rb, ta.msgs[i].ptr, ta.msgs[i].len, now);
    for (size_t i = 0; i < tb.n; i++) rpc_on_message(ra, tb.msgs[i].ptr, tb.msgs[i].len, now);
    q_clear(&ta);
    q_clear(&tb);
  }
}

/* ---- server side (b) ------------------------------------------------------------------- */

static uint64_t held[256];   /* handles held for later answers */
static size_t nheld;
static uint64_t cancelled[16];
static size_t ncancelled;

static void h_echo(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  assert_true(req->handle != 0);
  assert_int_equal(rpc_respond(r, req->handle, req->params, req->has_att ? req->att : NULL, req->att_len), 0);
  assert_int_equal(rpc_respond(r, req->handle, NULL, NULL, 0), ERR_NOTFOUND);
}

static void h_hold(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  (void)r;
  held[nheld++] = req->handle;
}

static void h_stream(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  for (int i = 0; i < 3; i++) {
    json_t *d = json_pack("{si}", "token", i);
    uint8_t a = (uint8_t)i;
    assert_int_equal(rpc_stream(r, req->handle, d, i == 1 ? &a : NULL, i == 1 ? 1 : 0), 0);
    json_decref(d);
  }
  json_t *res = json_pack("{ss}", "done", "yes");
  assert_int_equal(rpc_respond(r, req->handle, res, NULL, 0), 0);
  json_decref(res);
}

static int notified;
static void h_note(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  (void)r;
  assert_int_equal(req->handle, 0);
  assert_null(req->id);
  notified++;
}

static void on_cancel(void *ud, rpc *r, uint64_t handle) {
  (void)ud;
  (void)r;
  cancelled[ncancelled++] = handle;
}

static int setup(void **state) {
  (void)state;
  memset(&qa, 0, sizeof qa);
  memset(&qb, 0, sizeof qb);
  nheld = ncancelled = 0;
  notified = 0;
  assert_int_equal(rpc_new(q_send, &qa, &ra), 0);
  assert_int_equal(rpc_new(q_send, &qb, &rb), 0);
  rpc_method ms[] = {
    {"echo", RPC_PARAMS_ANY, h_echo, NULL},
    {"obj", RPC_PARAMS_OBJECT, h_echo, NULL},
    {"hold", RPC_PARAMS_ANY, h_hold, NULL},
    {"stream", RPC_PARAMS_NONE, h_stream, NULL},
    {"note", RPC_PARAMS_ANY, h_note, NULL},
  };
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) assert_int_equal(rpc_register(rb, &ms[i]), 0);
  rpc_method bad = {"$/x", 0, h_echo, NULL};
  assert_int_equal(rpc_register(rb, &bad), ERR_INVAL);
  rpc_set_cancel_cb(rb, on_cancel, NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rpc_fail_all(ra, RPC_LINK_CLOSED, "test over");
  rpc_fail_all(rb, RPC_LINK_CLOSED, "test over");
  rpc_free(ra);
  rpc_free(rb);
  q_clear(&qa);
  q_clear(&qb);
  return 0;
}

/* ---- client side (a) ------------------------------------------------------------------- */

typedef struct got {
  int results, errors, streams;
  int last_code;
  json_int_t last_n;
  uint64_t last_seq;
  size_t att_len;
  int has_att;
  uint8_t *att;
} got;

static void on_reply(void *ud, rpc *r, const rpc_reply *rep) {
  (void)r;
  got *g = ud;
  switch (rep->kind) {
  case RPC_REPLY_RESULT:
    g->results++;
    g->last_n = json_integer_value(json_object_get(rep->result, "n"));
    break;
  case RPC_REPLY_ERROR:
    g->errors++;
    g->last_code = rep->code;
    assert_non_null(rep->message);
    break;
  case RPC_REPLY_STREAM:
    assert_int_equal(rep->seq, (uint64_t)g->streams);
    g->streams++;
    g->last_seq = rep->seq;
    break;
  }
  g->has_att = rep->has_att;
  g->att_len = rep->att_len;
  free(g->att);
  g->att = NULL;
  if (rep->att_len) {
    g->att = malloc(rep->att_len);
    memcpy(g->att, rep->att, rep->att_len);
  }
}

static void test_multiplex_out_of_order(void **state) {
  (void)state;
  got g[100];
  uint64_t ids[100];
  memset(g, 0, sizeof g);
  for (int i = 0; i < 100; i++) {
    json_t *p = json_pack("{si}", "n", i);
    assert_int_equal(rpc_call(ra, "hold", p, NULL, 0, 0, 0, on_reply, &g[i], &ids[i]), 0);
    json_decref(p);
  }
  assert_int_equal(rpc_pending(ra), 100);
  pump(0);
  assert_int_equal(nheld, 100);
  assert_int_equal(rpc_incoming(rb), 100);
  /* Answer in a scrambled order: handle k answers with n = k's index. */
  for (int step = 0; step < 100; step++) {
    int k = (step * 37) % 100;
    json_t *res = json_pack("{si}", "n", k);
    assert_int_equal(rpc_respond(rb, held[k], res, NULL, 0), 0);
    json_decref(res);
    if (step % 10 == 0) pump(0);
  }
  pump(0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(g[i].results, 1);
    assert_int_equal(g[i].errors, 0);
    assert_int_equal(g[i].last_n, i);
  }
  assert_int_equal(rpc_pending(ra), 0);
  assert_int_equal(rpc_incoming(rb), 0);
}

static void test_stream(void **state) {
  (void)state;
  got g = {0};
  uint64_t id;
  assert_int_equal(rpc_call(ra, "stream", NULL, NULL, 0, 0, 0, on_reply, &g, &id), 0);
  pump(0);
  assert_int_equal(g.streams, 3);
  assert_int_equal(g.results, 1);
  assert_int_equal(g.last_seq, 2);
  /* A notification reaches its handler and gets no answer. */
  assert_int_equal(rpc_notify(ra, "note", NULL, NULL, 0), 0);
  assert_int_equal(rpc_notify(ra, "unknown-note", NULL, NULL, 0), 0);
  pump(0);
  assert_int_equal(notified, 1);
  /* A stream notification out of sequence fails the request. */
  got h = {0};
  assert_int_equal(rpc_call(ra, "hold", NULL, NULL, 0, 0, 0, on_reply, &h, &id), 0);
  pump(0);
  char text[128];
  int n = snprintf(text + 1, sizeof text - 1, "{\"jsonrpc\":\"2.0\",\"method\":\"$/stream\",\"params\":{\"id\":%llu,\"seq\":1}}",
                   (unsigned long long)id);
  text[0] = 0;
  assert_int_equal(rpc_on_message(ra, (uint8_t *)text, (size_t)n + 1, 0), 0);
  assert_int_equal(h.errors, 1);
  assert_int_equal(h.last_code, RPC_INTERNAL_ERROR);
  free(g.att);
  free(h.att);
}

static void test_cancel(void **state) {
  (void)state;
  got g = {0};
  uint64_t id;
  assert_int_equal(rpc_call(ra, "hold", NULL, NULL, 0, 0, 0, on_reply, &g, &id), 0);
  pump(0);
  assert_int_equal(nheld, 1);
  assert_int_equal(rpc_cancel(ra, id), 0);
  assert_int_equal(g.errors, 1);
  assert_int_equal(g.last_code, RPC_REQUEST_CANCELLED);
  assert_int_equal(rpc_cancel(ra, id), ERR_NOTFOUND);
  pump(0); /* b gets $/cancel, answers -32800, which a ignores */
  assert_int_equal(ncancelled, 1);
  assert_int_equal(cancelled[0], held[0]);
  assert_int_equal(g.errors, 1);
  assert_int_equal(g.results, 0);
  assert_int_equal(rpc_respond(rb, held[0], NULL, NULL, 0), ERR_NOTFOUND);
  assert_int_equal(rpc_incoming(rb), 0);
}

static void test_timeout(void **state) {
  (void)state;
  got g1 = {0}, g2 = {0};
  uint64_t id1, id2;
  assert_int_equal(rpc_deadline(ra), UINT64_MAX);
  assert_int_equal(rpc_call(ra, "hold", NULL, NULL, 0, 100, 1000, on_reply, &g1, &id1), 0);
  assert_int_equal(rpc_call(ra, "hold", NULL, NULL, 0, 500, 1000, on_reply, &g2, &id2), 0);
  pump(1000);
  assert_int_equal(rpc_deadline(ra), 1100);
  assert_int_equal(rpc_tick(ra, 1099), 0);
  assert_int_equal(g1.errors, 0);
  assert_int_equal(rpc_tick(ra, 1100), 0);
  assert_int_equal(g1.errors, 1);
  assert_int_equal(g1.last_code, RPC_TIMEOUT);
  assert_int_equal(rpc_deadline(ra), 1500);
  pump(1100);
  assert_int_equal(ncancelled, 1); /* the callee was told */
  /* A late answer to the first is ignored; the second still completes. */
  json_t *res = json_pack("{si}", "n", 7);
  assert_int_equal(rpc_respond(rb, held[1], res, NULL, 0), 0);
  json_decref(res);
  pump(1200);
  assert_int_equal(g2.results, 1);
  assert_int_equal(g2.last_n, 7);
  assert_int_equal(g1.results, 0);
  assert_int_equal(rpc_deadline(ra), UINT64_MAX);
}

static void check_attach(size_t len, int present) {
  uint8_t *a = malloc(len + 1);
  for (size_t i = 0; i < len; i++) a[i] = (uint8_t)(i * 3 + 5);
  got g = {0};
  uint64_t id;
  json_t *p = json_pack("{si}", "n", 1);
  assert_int_equal(rpc_call(ra, "echo", p, present ? a : NULL, len, 0, 0, on_reply, &g, &id), 0);
  json_decref(p);
  pump(0);
  assert_int_equal(g.results, 1);
  assert_int_equal(g.has_att, present);
  assert_int_equal(g.att_len, len);
  if (len) assert_memory_equal(g.att, a, len);
  free(g.att);
  free(a);
}

static void test_attachments(void **state) {
  (void)state;
  check_attach(0, 0);
  check_attach(0, 1);
  check_attach(1, 1);
  check_attach(1024 * 1024, 1);
  got g = {0};
  uint64_t id;
  static uint8_t big[RPC_MAX_ATTACH + 1];
  assert_int_equal(rpc_call(ra, "echo", NULL, big, sizeof big, 0, 0, on_reply, &g, &id), ERR_TOOBIG);
  /* JSON plus attachment over the message cap. */
  char *s = malloc(200 * 1024);
  memset(s, 'a', 200 * 1024 - 1);
  s[200 * 1024 - 1] = 0;
  json_t *p = json_pack("{ss}", "pad", s);
  assert_int_equal(rpc_call(ra, "echo", p, big, RPC_MAX_ATTACH, 0, 0, on_reply, &g, &id), ERR_TOOBIG);
  assert_int_equal(rpc_call(ra, "echo", p, big, 16, 0, 0, on_reply, &g, &id), 0);
  pump(0);
  assert_int_equal(g.results, 1);
  assert_int_equal(g.att_len, 16);
  json_decref(p);
  free(s);
  free(g.att);
  assert_int_equal(rpc_pending(ra), 0);
}

/* Sends raw bytes to b and returns the error code and id text of its one answer (or 0
 * when it answered nothing). */
static int answer(const char *text, int kind, char *id_out) {
  static uint8_t m[4096];
  size_t n = strlen(text);
  m[0] = (uint8_t)kind;
  memcpy(m + 1, text, n);
  rpc_on_message(rb, m, n + 1, 0);
  if (qb.n == 0) return 0;
  assert_int_equal(qb.n, 1);
  assert_int_equal(qb.msgs[0].ptr[0], 0);
  json_t *o = json_loadb((char *)qb.msgs[0].ptr + 1, qb.msgs[0].len - 1, 0, NULL);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "jsonrpc")), "2.0");
  char *id = json_dumps(json_object_get(o, "id"), JSON_ENCODE_ANY);
  strcpy(id_out, id);
  free(id);
  int code = (int)json_integer_value(json_object_get(json_object_get(o, "error"), "code"));
  json_decref(o);
  q_clear(&qb);
  return code;
}

static void test_malformed(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int kind;
    int code;
    const char *id;
  } cases[] = {
    {"{bad json", 0, RPC_PARSE_ERROR, "null"},
    {"", 0, RPC_PARSE_ERROR, "null"},
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}", 7, RPC_PARSE_ERROR, "null"},
    {"\xff\xff\xff\xff{}", 1, RPC_PARSE_ERROR, "null"},
    {"{\"jsonrpc\":\"2.0\",\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}", 0, RPC_PARSE_ERROR, "null"},
    {"[]", 0, RPC_INVALID_REQUEST, "null"},
    {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]", 0, RPC_INVALID_REQUEST, "null"},
    {"1", 0, RPC_INVALID_REQUEST, "null"},
    {"\"x\"", 0, RPC_INVALID_REQUEST, "null"},
    {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"echo\"}", 0, RPC_INVALID_REQUEST, "1"},
    {"{\"id\":1,\"method\":\"echo\"}", 0, RPC_INVALID_REQUEST, "1"},
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", 0, RPC_INVALID_REQUEST, "1"},
    {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}", 0, RPC_INVALID_REQUEST, "null"},
    {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"echo\"}", 0, RPC_INVALID_REQUEST, "null"},
    {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"params\":5}", 0, RPC_INVALID_REQUEST, "3"},
    {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}", 0, RPC_METHOD_NOT_FOUND, "2"},
    {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"$/nope\"}", 0, RPC_METHOD_NOT_FOUND, "2"},
    {"{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"obj\",\"params\":[1]}", 0, RPC_INVALID_PARAMS, "\"s\""},
    {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"stream\",\"params\":[1]}", 0, RPC_INVALID_PARAMS, "4"},
    {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"obj\"}", 0, RPC_INVALID_PARAMS, "4"},
    /* Nothing is answered for notifications and responses. */
    {"{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", 0, 0, NULL},
    {"{\"jsonrpc\":\"2.0\",\"method\":\"obj\",\"params\":[]}", 0, 0, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":1}", 0, 0, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":99,\"error\":5}", 0, 0, NULL},
    {"{\"jsonrpc\":\"2.0\",\"method\":\"$/cancel\",\"params\":{\"id\":12345}}", 0, 0, NULL},
    {"{\"jsonrpc\":\"2.0\",\"method\":\"$/stream\",\"params\":{\"id\":12345,\"seq\":0}}", 0, 0, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char id[64] = "";
    const char *t = cases[i].text;
    int code;
    code = answer(t, cases[i].kind, id);
    if (code != cases[i].code) print_message("case %zu: %s -> %d\n", i, t, code);
    assert_int_equal(code, cases[i].code);
    if (cases[i].id) assert_string_equal(id, cases[i].id);
  }
  /* A truncated attachment header. */
  uint8_t m3[3] = {1, 0, 0};
  assert_int_equal(rpc_on_message(rb, m3, 3, 0), ERR_FORMAT);
  assert_int_equal(qb.n, 1);
  q_clear(&qb);
  /* A well-formed request with an empty attachment and a null id is served. */
  static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\"}";
  uint8_t m[128];
  size_t jl = sizeof req - 1;
  m[0] = 1, m[1] = m[2] = m[3] = 0, m[4] = (uint8_t)jl;
  memcpy(m + 5, req, jl);
  assert_int_equal(rpc_on_message(rb, m, 5 + jl, 0), 0);
  assert_int_equal(qb.n, 1);
  assert_int_equal(qb.msgs[0].ptr[0], 1);
  assert_int_equal(qb.msgs[0].len, 5 + (size_t)qb.msgs[0].ptr[4]); /* empty attachment echoed */
  json_t *o = json_loadb((char *)qb.msgs[0].ptr + 5, qb.msgs[0].len - 5, 0, NULL);
  assert_non_null(o);
  assert_true(json_is_null(json_object_get(o, "result")));
  assert_true(json_is_null(json_object_get(o, "id")));
  json_decref(o);
  q_clear(&qb);
  /* Too deep. */
  char deep[300];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  deep[200] = 0;
  char id[64];
  assert_int_equal(answer(deep, 0, id), RPC_INVALID_REQUEST);
  /* Empty message. */
  assert_int_equal(rpc_on_message(rb, (const uint8_t *)"", 0, 0), ERR_FORMAT);
  q_clear(&qb);
  /* Duplicate id while the first is in progress. */
  assert_int_equal(answer("{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"hold\"}", 0, id), 0);
  assert_int_equal(answer("{\"jsonrpc\":\"2.0\",\"id\":77,\"method\":\"hold\"}", 0, id), RPC_INVALID_REQUEST);
  assert_string_equal(id, "null");
}

static void test_fail_all(void **state) {
  (void)state;
  got g[3];
  memset(g, 0, sizeof g);
  uint64_t id;
  for (int i = 0; i < 3; i++) assert_int_equal(rpc_call(ra, "hold", NULL, NULL, 0, 1000, 0, on_reply, &g[i], &id), 0);
  rpc_fail_all(ra, RPC_LINK_CLOSED, "gone");
  for (int i = 0; i < 3; i++) {
    assert_int_equal(g[i].errors, 1);
    assert_int_equal(g[i].last_code, RPC_LINK_CLOSED);
  }
  assert_int_equal(rpc_pending(ra), 0);
  assert_int_equal(rpc_deadline(ra), UINT64_MAX);
}

/* ---- over two real sessions ------------------------------------------------------------ */

static int s_send(void *ud, const uint8_t *msg, size_t len) { return session_send(ud, msg, len, 0); }

static void relay(session *from, session *to, rpc *to_rpc) {
  buf b;
  buf_init(&b);
  if (session_take_output(from, &b)) assert_int_equal(session_feed(to, b.ptr, b.len, 0), 0);
  buf_deinit(&b);
  session_event ev;
  while (session_next_event(to, &ev))
    if (ev.type == SESSION_EV_MESSAGE) rpc_on_message(to_rpc, ev.data, ev.len, 0);
}

static void test_over_sessions(void **state) {
  (void)state;
  ident a, b;
  assert_int_equal(ident_generate(&a), 0);
  assert_int_equal(ident_generate(&b), 0);
  session *sa, *sb;
  assert_int_equal(session_new(1, &a, b.pk, NULL, 0, &sa), 0);
  assert_int_equal(session_new(0, &b, a.pk, NULL, 0, &sb), 0);
  rpc *xa, *xb;
  assert_int_equal(rpc_new(s_send, sa, &xa), 0);
  assert_int_equal(rpc_new(s_send, sb, &xb), 0);
  rpc_method m = {"echo", RPC_PARAMS_ANY, h_echo, NULL};
  assert_int_equal(rpc_register(xb, &m), 0);
  for (int i = 0; i < 3; i++) {
    relay(sa, sb, xb);
    relay(sb, sa, xa);
  }
  assert_int_equal(session_get_state(sa), SESSION_OPEN);
  assert_int_equal(session_get_state(sb), SESSION_OPEN);
  size_t len = 1024 * 1024;
  uint8_t *att = malloc(len);
  for (size_t i = 0; i < len; i++) att[i] = (uint8_t)(i ^ (i >> 8));
  got g = {0};
  uint64_t id;
  json_t *p = json_pack("{si}", "n", 42);
  assert_int_equal(rpc_call(xa, "echo", p, att, len, 5000, 0, on_reply, &g, &id), 0);
  json_decref(p);
  relay(sa, sb, xb);
  relay(sb, sa, xa);
  assert_int_equal(g.results, 1);
  assert_int_equal(g.last_n, 42);
  assert_int_equal(g.att_len, len);
  assert_memory_equal(g.att, att, len);
  free(g.att);
  free(att);
  rpc_free(xa);
  rpc_free(xb);
  session_free(sa);
  session_free(sb);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_multiplex_out_of_order, setup, teardown),
    cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
    cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
    cmocka_unit_test_setup_teardown(test_attachments, setup, teardown),
    cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
    cmocka_unit_test_setup_teardown(test_fail_all, setup, teardown),
    cmocka_unit_test_setup_teardown(test_over_sessions, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
