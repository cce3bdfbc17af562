/* node/control — the owner's control socket: newline-delimited JSON-RPC 2.0 over a unix
 * socket in the node home (HOME/control.sock, mode 0600 — whoever can open it owns the
 * node). The CLI talks to a running node only through it.
 *
 * Requests and responses are one JSON object per line (cap CONTROL_MAX_LINE bytes).
 * Services register methods; a handler may answer at once or later (after network I/O)
 * through ctl_reply_*; a reply to a connection that has gone away is dropped safely.
 * Runs on the node's libuv loop thread only. */
#ifndef APIARY_NODE_CONTROL_H
#define APIARY_NODE_CONTROL_H

#include <jansson.h>
#include <uv.h>

#define CONTROL_MAX_LINE (1u << 20)
#define CONTROL_MAX_CONNS 64
#define CONTROL_SOCKET_NAME "control.sock"

typedef struct ctl_server ctl_server;
typedef struct ctl_req ctl_req;

/* A method handler: params is borrowed (may be NULL); answer exactly once with
 * ctl_reply_ok / ctl_reply_err, now or later. */
typedef void (*ctl_method_fn)(ctl_req *req, json_t *params, void *ud);

/* Binds path (removing a stale socket of a dead node first) with mode 0600. */
int ctl_server_start(uv_loop_t *loop, const char *path, ctl_server **out);
/* Stops listening and closes every connection; frees the server once libuv is done. */
void ctl_server_stop(ctl_server *s);
/* Registers a method (name and ud borrowed for the server's lifetime). */
int ctl_server_add(ctl_server *s, const char *method, ctl_method_fn fn, void *ud);

/* Replies; both take ownership of result/the request. */
void ctl_reply_ok(ctl_req *req, json_t *result);
void ctl_reply_err(ctl_req *req, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* JSON-RPC error codes used on the control socket. */
enum { CTL_PARSE_ERROR = -32700, CTL_INVALID_REQUEST = -32600, CTL_NO_METHOD = -32601,
       CTL_INVALID_PARAMS = -32602, CTL_INTERNAL = -32603, CTL_FAILED = -32000 };

/* ---- client side (CLI; blocking) ---------------------------------------------------- */
/* Calls method on the node whose home is dir. On success *result_out is owned by the
 * caller. Returns 0; -ECONNREFUSED/-ENOENT when no node runs there; ERR_FORMAT for a bad
 * reply; a JSON-RPC error sets *err_msg (owned; free()) and returns ERR_INVAL. */
int ctl_call(const char *home_dir, const char *method, json_t *params /* taken */, int timeout_ms,
             json_t **result_out, char **err_msg);

#endif
