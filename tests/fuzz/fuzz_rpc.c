/* libFuzzer harness: the JSON-RPC engine's message parser and dispatcher on arbitrary
 * messages. The input is cut into messages at 0xFF 0xFE markers. Registered methods answer
 * at once, stream, or hold their handle; a few of our own requests are pending (ids 1..4)
 * so responses and stream notifications can match. Whatever the engine sends back must be
 * a well-formed message that the engine itself parses. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "p2p/rpc.h"

static int sent_ok(void *ud, const uint8_t *msg, size_t len) {
  (void)ud;
  assert(len >= 1 && (msg[0] == 0 || msg[0] == 1));
  if (msg[0] == 0) {
    json_t *o = json_loadb((const char *)msg + 1, len - 1, 0, NULL);
    assert(o && json_is_object(o));
    json_decref(o);
  }
  return 0;
}

static void h_now(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  if (req->handle) rpc_respond(r, req->handle, req->params, req->has_att ? req->att : NULL, req->att_len);
}

static void h_stream(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  if (!req->handle) return;
  rpc_stream(r, req->handle, req->params, NULL, 0);
  rpc_respond_error(r, req->handle, RPC_INVALID_PARAMS, "no", req->params);
}

static void h_hold(void *ud, rpc *r, const rpc_request *req) {
  (void)ud;
  (void)r;
  (void)req;
}

static void on_reply(void *ud, rpc *r, const rpc_reply *rep) {
  (void)ud;
  (void)r;
  if (rep->att_len) {
    volatile uint8_t x = rep->att[rep->att_len - 1];
    (void)x;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rpc *r;
  if (rpc_new(sent_ok, NULL, &r)) return 0;
  rpc_method ms[] = {
    {"now", RPC_PARAMS_ANY, h_now, NULL},
    {"obj", RPC_PARAMS_OBJECT, h_now, NULL},
    {"stream", RPC_PARAMS_ARRAY, h_stream, NULL},
    {"hold", RPC_PARAMS_NONE, h_hold, NULL},
  };
  for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) rpc_register(r, &ms[i]);
  uint64_t id;
  for (int i = 0; i < 4; i++) rpc_call(r, "x", NULL, NULL, 0, (uint64_t)i * 10, 0, on_reply, NULL, &id);
  size_t start = 0;
  for (size_t i = 0; i + 1 < size; i++) {
    if (data[i] == 0xff && data[i + 1] == 0xfe) {
      rpc_on_message(r, data + start, i - start, 5);
      start = i + 2;
      i++;
    }
  }
  if (start <= size) rpc_on_message(r, data + start, size - start, 5);
  rpc_tick(r, 20);
  rpc_fail_all(r, RPC_LINK_CLOSED, "done");
  assert(rpc_pending(r) == 0);
  rpc_free(r);
  return 0;
}
