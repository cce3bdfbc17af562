/* p2p/rpc — JSON-RPC 2.0 over a link's application messages, as an engine with no I/O
 * (docs/protocol.md §5).
 *
 * One rpc per session, symmetric: either side may call the other. Outgoing messages go
 * through the host's send callback (normally a wrapper around session_send); incoming
 * application messages are handed to rpc_on_message. Time comes in as now_ms; the host
 * calls rpc_tick at rpc_deadline() to expire requests.
 *
 * Message = one application message:
 *     0x00 || JSON                                   plain
 *     0x01 || u32be json_len || JSON || attachment  JSON plus raw bytes (0..RPC_MAX_ATTACH)
 * Conventions on top of JSON-RPC 2.0: our request ids are integers counting up from 1;
 * streamed partial results are "$/stream" notifications {id, seq, data?} sent before the
 * final response; "$/cancel" {id} cancels (the callee answers -32800 at once); batches are
 * refused with -32600.
 *
 * Callbacks run inside rpc_on_message / rpc_tick / rpc_cancel / rpc_fail_all. They may call
 * any rpc function except rpc_free. Each outgoing request gets zero or more STREAM replies
 * and then exactly one final RESULT or ERROR (from the peer, a timeout, a cancel or
 * rpc_fail_all). JSON values and attachments passed to callbacks are borrowed for the
 * duration of the callback. Not thread-safe. */
#ifndef APIARY_P2P_RPC_H
#define APIARY_P2P_RPC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "p2p/frame.h"

#define RPC_MAX_JSON (1024 * 1024)   /* JSON text bytes per message */
#define RPC_MAX_ATTACH (1024 * 1024) /* attachment bytes per message */
#define RPC_MAX_DEPTH 64             /* JSON nesting */
#define RPC_MAX_PENDING 4096         /* our requests in flight */
#define RPC_MAX_MESSAGE FRAME_MAX_APP /* a whole message: kind byte, JSON, attachment */
#define RPC_MAX_INCOMING 1024        /* the peer's requests being served */

enum { RPC_KIND_JSON = 0, RPC_KIND_JSON_ATTACH = 1 };

/* Error codes: JSON-RPC 2.0, LSP's cancel, and ours (server range -32000..-32099). */
enum {
  RPC_PARSE_ERROR = -32700,
  RPC_INVALID_REQUEST = -32600,
  RPC_METHOD_NOT_FOUND = -32601,
  RPC_INVALID_PARAMS = -32602,
  RPC_INTERNAL_ERROR = -32603,
  RPC_REQUEST_CANCELLED = -32800,
  RPC_TIMEOUT = -32001,     /* local: no response before the deadline */
  RPC_BUSY = -32002,        /* the callee has RPC_MAX_INCOMING requests in progress */
  RPC_LINK_CLOSED = -32003, /* local: the link went away (rpc_fail_all) */
};

/* What a method accepts as params; anything else is answered -32602 by the engine. */
enum { RPC_PARAMS_ANY = 0, RPC_PARAMS_OBJECT, RPC_PARAMS_ARRAY, RPC_PARAMS_NONE };

typedef struct rpc rpc;

typedef enum rpc_reply_kind { RPC_REPLY_RESULT = 1, RPC_REPLY_ERROR, RPC_REPLY_STREAM } rpc_reply_kind;

/* One reply to one of our requests. */
typedef struct rpc_reply {
  rpc_reply_kind kind;
  uint64_t id;              /* our request id */
  json_t *result;           /* RESULT: the result; STREAM: params.data or NULL */
  uint64_t seq;             /* STREAM: 0, 1, 2, ... */
  int code;                 /* ERROR: JSON-RPC error code */
  const char *message;      /* ERROR: error message ("" if none) */
  json_t *data;             /* ERROR: error.data or NULL */
  int has_att;              /* an attachment came with this message */
  const uint8_t *att;       /* attachment bytes */
  size_t att_len;           /* attachment length (may be 0 with has_att) */
} rpc_reply;

/* An incoming request (handle != 0) or notification (handle == 0). */
typedef struct rpc_call {
  const char *method;
  json_t *params;           /* NULL when omitted */
  json_t *id;               /* the peer's id; NULL for a notification */
  uint64_t handle;          /* pass to rpc_respond / rpc_stream; 0 = notification */
  int has_att;
  const uint8_t *att;
  size_t att_len;
} rpc_request;

typedef int (*rpc_send_cb)(void *ud, const uint8_t *msg, size_t len);
typedef void (*rpc_reply_cb)(void *ud, rpc *r, const rpc_reply *reply);
typedef void (*rpc_handler_cb)(void *ud, rpc *r, const rpc_request *req);
/* The peer cancelled request `handle` (already answered -32800; the handle is dead). */
typedef void (*rpc_cancel_cb)(void *ud, rpc *r, uint64_t handle);

typedef struct rpc_method {
  const char *name;         /* copied */
  int params;               /* RPC_PARAMS_* */
  rpc_handler_cb cb;
  void *ud;
} rpc_method;

/* send is required. Returns 0 or ERR_NOMEM. */
int rpc_new(rpc_send_cb send, void *send_ud, rpc **out);
/* Completes nothing: call rpc_fail_all first if requests may be pending. */
void rpc_free(rpc *r);
/* Registers (or replaces) a method. Names starting "$/" are reserved. */
int rpc_register(rpc *r, const rpc_method *m);
void rpc_set_cancel_cb(rpc *r, rpc_cancel_cb cb, void *ud);

/* Sends a request. params: borrowed object/array or NULL. att: attachment (NULL = none;
 * non-NULL with att_len 0 = an empty one). timeout_ms 0 = none. cb gets the replies.
 * Returns 0 and sets *id_out, or ERR_TOOBIG (RPC_MAX_JSON / RPC_MAX_ATTACH /
 * RPC_MAX_MESSAGE), ERR_RANGE (RPC_MAX_PENDING), ERR_INVAL,
 * or the send callback's error (then nothing is pending). */
int rpc_call(rpc *r, const char *method, json_t *params, const uint8_t *att, size_t att_len,
             uint64_t timeout_ms, uint64_t now_ms, rpc_reply_cb cb, void *ud, uint64_t *id_out);
/* Sends a notification. */
int rpc_notify(rpc *r, const char *method, json_t *params, const uint8_t *att, size_t att_len);
/* Cancels our request id: sends "$/cancel" and completes it locally with -32800. Returns
 * 0, or ERR_NOTFOUND if it is not pending. */
int rpc_cancel(rpc *r, uint64_t id);

/* Answers an incoming request. result borrowed (NULL = JSON null). ERR_NOTFOUND when the
 * handle is unknown, already answered or cancelled. */
int rpc_respond(rpc *r, uint64_t handle, json_t *result, const uint8_t *att, size_t att_len);
int rpc_respond_error(rpc *r, uint64_t handle, int code, const char *message, json_t *data);
/* Sends one partial result for an incoming request ("$/stream", seq counted per request). */
int rpc_stream(rpc *r, uint64_t handle, json_t *data, const uint8_t *att, size_t att_len);

/* Handles one incoming application message. Malformed input is answered per JSON-RPC
 * (-32700 / -32600 / -32601 / -32602) when it is a request, dropped when it is a response.
 * Returns 0, ERR_FORMAT (the message was malformed; already answered), or a send error. */
int rpc_on_message(rpc *r, const uint8_t *msg, size_t len, uint64_t now_ms);
/* Expires requests whose timeout passed: each gets RPC_TIMEOUT and the peer a "$/cancel". */
int rpc_tick(rpc *r, uint64_t now_ms);
/* Earliest request deadline (UINT64_MAX if none). */
uint64_t rpc_deadline(const rpc *r);
/* Completes every pending request with code (e.g. RPC_LINK_CLOSED) and forgets incoming
 * ones. Sends nothing. */
void rpc_fail_all(rpc *r, int code, const char *message);
/* Our requests in flight / the peer's requests being served. */
size_t rpc_pending(const rpc *r);
size_t rpc_incoming(const rpc *r);

#endif
