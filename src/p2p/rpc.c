/* p2p/rpc — JSON-RPC 2.0 engine; see rpc.h and docs/protocol.md §5.
 *
 * Pending requests and served requests live in small arrays searched linearly (caps are
 * in the low thousands and the common case is a handful). Entries are removed before
 * their callback runs, so callbacks may re-enter the engine. */
#include "p2p/rpc.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"

typedef struct pending {
  uint64_t id;         /* our request id */
  uint64_t deadline;   /* absolute ms, UINT64_MAX = none */
  uint64_t next_seq;   /* next expected stream seq */
  rpc_reply_cb cb;
  void *ud;
} pending;

typedef struct incoming {
  uint64_t handle;     /* our handle for it */
  json_t *id;          /* the peer's id (owned reference) */
  uint64_t seq;        /* next stream seq to send */
} incoming;

typedef struct method_ent {
  char *name;          /* owned */
  int params;
  rpc_handler_cb cb;
  void *ud;
} method_ent;

struct rpc {
  rpc_send_cb send;     /* host output */
  void *send_ud;
  rpc_cancel_cb cancel_cb;
  void *cancel_ud;
  uint64_t next_id;     /* our next request id */
  uint64_t next_handle; /* next incoming handle */
  pending *pend;        /* our requests in flight */
  size_t npend, cpend;
  incoming *inc;        /* the peer's requests being served */
  size_t ninc, cinc;
  method_ent *methods;
  size_t nmethods;
};

int rpc_new(rpc_send_cb send, void *send_ud, rpc **out) {
  *out = NULL;
  if (!send) return ERR_INVAL;
  rpc *r = calloc(1, sizeof *r);
  if (!r) return ERR_NOMEM;
  r->send = send;
  r->send_ud = send_ud;
  r->next_id = 1;
  r->next_handle = 1;
  *out = r;
  return 0;
}

void rpc_free(rpc *r) {
  if (!r) return;
  for (size_t i = 0; i < r->ninc; i++) json_decref(r->inc[i].id);
  for (size_t i = 0; i < r->nmethods; i++) free(r->methods[i].name);
  free(r->inc);
  free(r->pend);
  free(r->methods);
  free(r);
}

int rpc_register(rpc *r, const rpc_method *m) {
  if (!m->name || !m->cb || !strncmp(m->name, "$/", 2)) return ERR_INVAL;
  for (size_t i = 0; i < r->nmethods; i++)
    if (!strcmp(r->methods[i].name, m->name)) {
      r->methods[i].params = m->params, r->methods[i].cb = m->cb, r->methods[i].ud = m->ud;
      return 0;
    }
  method_ent *n = realloc(r->methods, (r->nmethods + 1) * sizeof *n);
  if (!n) return ERR_NOMEM;
  r->methods = n;
  char *name = strdup(m->name);
  if (!name) return ERR_NOMEM;
  r->methods[r->nmethods++] = (method_ent){name, m->params, m->cb, m->ud};
  return 0;
}

void rpc_set_cancel_cb(rpc *r, rpc_cancel_cb cb, void *ud) {
  r->cancel_cb = cb;
  r->cancel_ud = ud;
}

size_t rpc_pending(const rpc *r) { return r->npend; }
size_t rpc_incoming(const rpc *r) { return r->ninc; }

/* ---- output ---------------------------------------------------------------------------- */

/* Serializes obj (+ attachment) into one message and sends it. Takes obj. */
static int send_obj(rpc *r, json_t *obj, const uint8_t *att, size_t att_len) {
  int rc;
  buf b;
  buf_init(&b);
  if (!obj) return ERR_NOMEM;
  if (att && att_len > RPC_MAX_ATTACH) {
    json_decref(obj);
    return ERR_TOOBIG;
  }
  size_t jlen = json_dumpb(obj, NULL, 0, JSON_COMPACT);
  if (jlen == 0 || jlen > RPC_MAX_JSON || (att ? 5 + jlen + att_len : 1 + jlen) > RPC_MAX_MESSAGE) {
    rc = jlen == 0 ? ERR_INVAL : ERR_TOOBIG;
    goto fail;
  }
  size_t head = att ? 5 : 1;
  if ((rc = buf_reserve(&b, head + jlen + (att ? att_len : 0)))) goto fail;
  b.ptr[0] = att ? RPC_KIND_JSON_ATTACH : RPC_KIND_JSON;
  if (att) {
    b.ptr[1] = (uint8_t)(jlen >> 24), b.ptr[2] = (uint8_t)(jlen >> 16);
    b.ptr[3] = (uint8_t)(jlen >> 8), b.ptr[4] = (uint8_t)jlen;
  }
  json_dumpb(obj, (char *)b.ptr + head, jlen, JSON_COMPACT);
  b.len = head + jlen;
  if (att && att_len) {
    memcpy(b.ptr + b.len, att, att_len);
    b.len += att_len;
  }
  rc = r->send(r->send_ud, b.ptr, b.len);
fail:
  json_decref(obj);
  buf_deinit(&b);
  return rc;
}

static json_t *envelope(void) {
  json_t *o = json_object();
  if (o) json_object_set_new(o, "jsonrpc", json_string("2.0"));
  return o;
}

/* Sends an error response with id (borrowed; NULL = null). */
static int send_error(rpc *r, json_t *id, int code, const char *message, json_t *data) {
  json_t *o = envelope(), *e = json_object();
  if (!o || !e) {
    json_decref(o);
    json_decref(e);
    return ERR_NOMEM;
  }
  json_object_set_new(e, "code", json_integer(code));
  json_object_set_new(e, "message", json_string(message ? message : ""));
  if (data) json_object_set(e, "data", data);
  json_object_set(o, "id", id ? id : json_null());
  json_object_set_new(o, "error", e);
  return send_obj(r, o, NULL, 0);
}

static int send_cancel(rpc *r, uint64_t id) {
  json_t *o = envelope();
  if (!o) return ERR_NOMEM;
  json_object_set_new(o, "method", json_string("$/cancel"));
  json_object_set_new(o, "params", json_pack("{sI}", "id", (json_int_t)id));
  return send_obj(r, o, NULL, 0);
}

/* ---- our requests ---------------------------------------------------------------------- */

static pending *find_pending(rpc *r, uint64_t id, size_t *idx) {
  for (size_t i = 0; i < r->npend; i++)
    if (r->pend[i].id == id) {
      if (idx) *idx = i;
      return &r->pend[i];
    }
  return NULL;
}

/* Removes entry i and returns a copy. */
static pending take_pending(rpc *r, size_t i) {
  pending p = r->pend[i];
  r->pend[i] = r->pend[--r->npend];
  return p;
}

static void complete_error(rpc *r, const pending *p, int code, const char *message) {
  rpc_reply rep = {.kind = RPC_REPLY_ERROR, .id = p->id, .code = code, .message = message};
  p->cb(p->ud, r, &rep);
}

int rpc_call(rpc *r, const char *method, json_t *params, const uint8_t *att, size_t att_len,
             uint64_t timeout_ms, uint64_t now_ms, rpc_reply_cb cb, void *ud, uint64_t *id_out) {
  if (!method || !cb || (params && !json_is_object(params) && !json_is_array(params))) return ERR_INVAL;
  if (r->npend >= RPC_MAX_PENDING) return ERR_RANGE;
  if (r->npend == r->cpend) {
    size_t nc = r->cpend ? r->cpend * 2 : 16;
    pending *n = realloc(r->pend, nc * sizeof *n);
    if (!n) return ERR_NOMEM;
    r->pend = n;
    r->cpend = nc;
  }
  uint64_t id = r->next_id++;
  json_t *o = envelope();
  if (!o) return ERR_NOMEM;
  json_object_set_new(o, "id", json_integer((json_int_t)id));
  json_object_set_new(o, "method", json_string(method));
  if (params) json_object_set(o, "params", params);
  int rc = send_obj(r, o, att, att_len);
  if (rc) return rc;
  r->pend[r->npend++] = (pending){id, timeout_ms ? now_ms + timeout_ms : UINT64_MAX, 0, cb, ud};
  *id_out = id;
  return 0;
}

int rpc_notify(rpc *r, const char *method, json_t *params, const uint8_t *att, size_t att_len) {
  if (!method || (params && !json_is_object(params) && !json_is_array(params))) return ERR_INVAL;
  json_t *o = envelope();
  if (!o) return ERR_NOMEM;
  json_object_set_new(o, "method", json_string(method));
  if (params) json_object_set(o, "params", params);
  return send_obj(r, o, att, att_len);
}

int rpc_cancel(rpc *r, uint64_t id) {
  size_t i;
  if (!find_pending(r, id, &i)) return ERR_NOTFOUND;
  pending p = take_pending(r, i);
  int rc = send_cancel(r, id);
  complete_error(r, &p, RPC_REQUEST_CANCELLED, "request cancelled");
  return rc;
}

int rpc_tick(rpc *r, uint64_t now_ms) {
  int rc = 0;
  for (;;) {
    size_t i;
    for (i = 0; i < r->npend && r->pend[i].deadline > now_ms; i++) {}
    if (i == r->npend) return rc;
    pending p = take_pending(r, i);
    int src = send_cancel(r, p.id);
    if (!rc) rc = src;
    complete_error(r, &p, RPC_TIMEOUT, "request timed out");
  }
}

uint64_t rpc_deadline(const rpc *r) {
  uint64_t d = UINT64_MAX;
  for (size_t i = 0; i < r->npend; i++)
    if (r->pend[i].deadline < d) d = r->pend[i].deadline;
  return d;
}

void rpc_fail_all(rpc *r, int code, const char *message) {
  pending *old = r->pend; /* detached first: callbacks may issue new calls */
  size_t n = r->npend;
  r->pend = NULL;
  r->npend = r->cpend = 0;
  for (size_t i = 0; i < n; i++) complete_error(r, &old[i], code, message);
  free(old);
  for (size_t i = 0; i < r->ninc; i++) json_decref(r->inc[i].id);
  r->ninc = 0;
}

/* ---- the peer's requests --------------------------------------------------------------- */

static incoming *find_handle(rpc *r, uint64_t handle, size_t *idx) {
  for (size_t i = 0; i < r->ninc; i++)
    if (r->inc[i].handle == handle) {
      *idx = i;
      return &r->inc[i];
    }
  return NULL;
}

static void drop_incoming(rpc *r, size_t i) {
  json_decref(r->inc[i].id);
  r->inc[i] = r->inc[--r->ninc];
}

int rpc_respond(rpc *r, uint64_t handle, json_t *result, const uint8_t *att, size_t att_len) {
  size_t i;
  incoming *in = find_handle(r, handle, &i);
  if (!in) return ERR_NOTFOUND;
  json_t *o = envelope();
  if (!o) return ERR_NOMEM;
  json_object_set(o, "id", in->id);
  json_object_set(o, "result", result ? result : json_null());
  int rc = send_obj(r, o, att, att_len);
  if (rc == ERR_TOOBIG) return rc; /* the caller may answer again, smaller */
  drop_incoming(r, i);
  return rc;
}

int rpc_respond_error(rpc *r, uint64_t handle, int code, const char *message, json_t *data) {
  size_t i;
  incoming *in = find_handle(r, handle, &i);
  if (!in) return ERR_NOTFOUND;
  int rc = send_error(r, in->id, code, message, data);
  drop_incoming(r, i);
  return rc;
}

int rpc_stream(rpc *r, uint64_t handle, json_t *data, const uint8_t *att, size_t att_len) {
  size_t i;
  incoming *in = find_handle(r, handle, &i);
  if (!in) return ERR_NOTFOUND;
  json_t *o = envelope(), *p = json_object();
  if (!o || !p) {
    json_decref(o);
    json_decref(p);
    return ERR_NOMEM;
  }
  json_object_set(p, "id", in->id);
  json_object_set_new(p, "seq", json_integer((json_int_t)in->seq));
  if (data) json_object_set(p, "data", data);
  json_object_set_new(o, "method", json_string("$/stream"));
  json_object_set_new(o, "params", p);
  int rc = send_obj(r, o, att, att_len);
  if (!rc) in->seq++;
  return rc;
}

/* ---- input ----------------------------------------------------------------------------- */

/* Nesting depth of JSON text (brackets outside strings). */
static int too_deep(const uint8_t *p, size_t n) {
  int depth = 0, in_str = 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '[' || c == '{') {
      if (++depth > RPC_MAX_DEPTH) return 1;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return 0;
}

static int valid_id(json_t *id) { return json_is_string(id) || json_is_integer(id) || json_is_null(id); }

/* Answers a malformed message; returns ERR_FORMAT (or the send error). */
static int reject(rpc *r, json_t *id, int code, const char *message) {
  int rc = send_error(r, id, code, message, NULL);
  return rc ? rc : ERR_FORMAT;
}

static void on_response(rpc *r, json_t *msg, json_t *result, json_t *error, const uint8_t *att, size_t att_len,
                        int has_att) {
  json_t *id = json_object_get(msg, "id");
  size_t i;
  if (!json_is_integer(id) || json_integer_value(id) <= 0) return;
  if (!find_pending(r, (uint64_t)json_integer_value(id), &i)) return; /* late, cancelled or bogus */
  pending p = take_pending(r, i);
  rpc_reply rep = {.id = p.id, .has_att = has_att, .att = att, .att_len = att_len};
  if (result && !error) {
    rep.kind = RPC_REPLY_RESULT;
    rep.result = result;
  } else {
    json_t *code = json_object_get(error, "code"), *m = json_object_get(error, "message");
    rep.kind = RPC_REPLY_ERROR;
    if (result || !json_is_object(error) || !json_is_integer(code)) {
      rep.code = RPC_INTERNAL_ERROR;
      rep.message = "malformed response";
    } else {
      rep.code = (int)json_integer_value(code);
      rep.message = json_is_string(m) ? json_string_value(m) : "";
      rep.data = json_object_get(error, "data");
    }
  }
  p.cb(p.ud, r, &rep);
}

static void on_stream(rpc *r, json_t *params, const uint8_t *att, size_t att_len, int has_att) {
  json_t *id = json_object_get(params, "id"), *seq = json_object_get(params, "seq");
  size_t i;
  if (!json_is_integer(id) || json_integer_value(id) <= 0 || !json_is_integer(seq)) return;
  pending *p = find_pending(r, (uint64_t)json_integer_value(id), &i);
  if (!p) return;
  if (json_integer_value(seq) < 0 || (uint64_t)json_integer_value(seq) != p->next_seq) {
    pending q = take_pending(r, i);
    complete_error(r, &q, RPC_INTERNAL_ERROR, "stream out of sequence");
    return;
  }
  p->next_seq++;
  rpc_reply rep = {.kind = RPC_REPLY_STREAM, .id = p->id, .seq = p->next_seq - 1,
                   .result = json_object_get(params, "data"), .has_att = has_att, .att = att, .att_len = att_len};
  p->cb(p->ud, r, &rep);
}

static void on_cancel(rpc *r, json_t *params) {
  json_t *id = json_object_get(params, "id");
  if (!id) return;
  for (size_t i = 0; i < r->ninc; i++)
    if (json_equal(r->inc[i].id, id)) {
      uint64_t handle = r->inc[i].handle;
      send_error(r, r->inc[i].id, RPC_REQUEST_CANCELLED, "request cancelled", NULL);
      drop_incoming(r, i);
      if (r->cancel_cb) r->cancel_cb(r->cancel_ud, r, handle);
      return;
    }
}

static int params_ok(int want, json_t *params) {
  switch (want) {
  case RPC_PARAMS_OBJECT: return json_is_object(params);
  case RPC_PARAMS_ARRAY: return json_is_array(params);
  case RPC_PARAMS_NONE: return params == NULL || (json_is_array(params) && json_array_size(params) == 0) ||
                               (json_is_object(params) && json_object_size(params) == 0);
  default: return 1;
  }
}

int rpc_on_message(rpc *r, const uint8_t *msg, size_t len, uint64_t now_ms) {
  (void)now_ms;
  const uint8_t *js, *att = NULL;
  size_t jlen, att_len = 0;
  int has_att = 0, rc = ERR_FORMAT;
  json_t *root = NULL;
  if (len < 1) return reject(r, NULL, RPC_PARSE_ERROR, "empty message");
  if (len > RPC_MAX_MESSAGE) return reject(r, NULL, RPC_INVALID_REQUEST, "message over size cap");
  if (msg[0] == RPC_KIND_JSON) {
    js = msg + 1;
    jlen = len - 1;
  } else if (msg[0] == RPC_KIND_JSON_ATTACH) {
    if (len < 5) return reject(r, NULL, RPC_PARSE_ERROR, "truncated message");
    jlen = (size_t)msg[1] << 24 | (size_t)msg[2] << 16 | (size_t)msg[3] << 8 | msg[4];
    if (jlen > len - 5) return reject(r, NULL, RPC_PARSE_ERROR, "JSON length past the end");
    js = msg + 5;
    att = js + jlen;
    att_len = len - 5 - jlen;
    has_att = 1;
    if (att_len > RPC_MAX_ATTACH) return reject(r, NULL, RPC_INVALID_REQUEST, "attachment over cap");
  } else {
    return reject(r, NULL, RPC_PARSE_ERROR, "unknown message kind");
  }
  if (jlen > RPC_MAX_JSON) return reject(r, NULL, RPC_INVALID_REQUEST, "JSON over size cap");
  if (too_deep(js, jlen)) return reject(r, NULL, RPC_INVALID_REQUEST, "JSON nested too deep");
  json_error_t jerr;
  root = json_loadb((const char *)js, jlen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return reject(r, NULL, RPC_PARSE_ERROR, "parse error");
  if (json_is_array(root)) {
    rc = reject(r, NULL, RPC_INVALID_REQUEST, "batches are not supported");
    goto out;
  }
  if (!json_is_object(root)) {
    rc = reject(r, NULL, RPC_INVALID_REQUEST, "not a request object");
    goto out;
  }
  json_t *ver = json_object_get(root, "jsonrpc"), *meth = json_object_get(root, "method");
  json_t *id = json_object_get(root, "id"), *params = json_object_get(root, "params");
  json_t *result = json_object_get(root, "result"), *error = json_object_get(root, "error");
  int ver_ok = json_is_string(ver) && !strcmp(json_string_value(ver), "2.0");
  if (!meth && (result || error)) { /* a response: never answered, even if malformed */
    if (ver_ok) on_response(r, root, result, error, att, att_len, has_att);
    rc = ver_ok ? 0 : ERR_FORMAT;
    goto out;
  }
  json_t *reply_id = id && valid_id(id) ? id : NULL;
  if (!ver_ok || !json_is_string(meth) || (id && !valid_id(id)) ||
      (params && !json_is_object(params) && !json_is_array(params))) {
    rc = reject(r, reply_id, RPC_INVALID_REQUEST, "invalid request");
    goto out;
  }
  const char *name = json_string_value(meth);
  if (!strncmp(name, "$/", 2)) {
    if (!id && !strcmp(name, "$/cancel") && json_is_object(params)) {
      on_cancel(r, params);
    } else if (!id && !strcmp(name, "$/stream") && json_is_object(params)) {
      on_stream(r, params, att, att_len, has_att);
    } else if (id) {
      rc = send_error(r, id, RPC_METHOD_NOT_FOUND, "method not found", NULL);
      goto out;
    }
    rc = 0;
    goto out;
  }
  method_ent *m = NULL;
  for (size_t i = 0; i < r->nmethods; i++)
    if (!strcmp(r->methods[i].name, name)) m = &r->methods[i];
  if (!m) {
    rc = id ? send_error(r, id, RPC_METHOD_NOT_FOUND, "method not found", NULL) : 0;
    goto out;
  }
  if (!params_ok(m->params, params)) {
    rc = id ? send_error(r, id, RPC_INVALID_PARAMS, "invalid params", NULL) : 0;
    goto out;
  }
  rpc_request call = {.method = name, .params = params, .id = id, .has_att = has_att, .att = att, .att_len = att_len};
  if (id) {
    for (size_t i = 0; i < r->ninc; i++)
      if (json_equal(r->inc[i].id, id)) {
        rc = reject(r, NULL, RPC_INVALID_REQUEST, "duplicate id in progress");
        goto out;
      }
    if (r->ninc >= RPC_MAX_INCOMING) {
      rc = send_error(r, id, RPC_BUSY, "too many requests in flight", NULL);
      goto out;
    }
    if (r->ninc == r->cinc) {
      size_t nc = r->cinc ? r->cinc * 2 : 16;
      incoming *n = realloc(r->inc, nc * sizeof *n);
      if (!n) {
        rc = ERR_NOMEM;
        goto out;
      }
      r->inc = n;
      r->cinc = nc;
    }
    call.handle = r->next_handle++;
    r->inc[r->ninc++] = (incoming){call.handle, json_incref(id), 0};
  }
  m->cb(m->ud, r, &call);
  rc = 0;
out:
  json_decref(root);
  return rc;
}
