/* libFuzzer harness: what an untrusted MCP server sends the client. The first byte picks
 * the path and a chunk size; the rest is the server's bytes:
 *   0  stdio: lines (cap 64 bytes, fed in chunks), each parsed as a message
 *   1  Streamable HTTP: an SSE stream (cap 128 bytes, fed in chunks), each event's data
 *      parsed as a message
 *   2  one message (a JSON body)
 * Every message that parses as a request gets the client's answer (mcp_client__answer),
 * which must be a JSON-RPC response with the request's id and exactly one of result or
 * error; an elicitation is accepted only with primitive (or string-array) values covering
 * every required field, or declined. Framers must respect their caps. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcp_client.h"
#include "agent/mcp_client_frame.h"
#include "core/err.h"

#define LINE_CAP 64
#define SSE_CAP 128

static void check_answer(const json_t *req) {
  json_t *a = mcp_client__answer(req);
  if (!a) return; /* out of memory */
  if (!json_equal(json_object_get(a, "id"), json_object_get(req, "id"))) abort();
  if (strcmp(json_string_value(json_object_get(a, "jsonrpc")), "2.0")) abort();
  json_t *res = json_object_get(a, "result"), *err = json_object_get(a, "error");
  if (!!res == !!err) abort();
  const char *method = json_string_value(json_object_get(req, "method"));
  if (res && !strcmp(method, "elicitation/create")) {
    const char *action = json_string_value(json_object_get(res, "action"));
    if (!action) abort();
    if (!strcmp(action, "accept")) {
      json_t *content = json_object_get(res, "content"), *v;
      const char *k;
      json_object_foreach(content, k, v) {
        if (json_is_object(v) || json_is_null(v)) abort();
        size_t i;
        json_t *e;
        if (json_is_array(v)) json_array_foreach(v, i, e) if (!json_is_string(e)) abort();
      }
      json_t *required = json_object_get(json_object_get(json_object_get(req, "params"), "requestedSchema"), "required"), *r;
      size_t i;
      json_array_foreach(required, i, r) if (!json_object_get(content, json_string_value(r))) abort();
    } else if (strcmp(action, "decline")) {
      abort();
    }
  }
  char *text = json_dumps(a, JSON_COMPACT);
  if (!text) abort();
  free(text);
  json_decref(a);
}

static void message(const char *p, size_t n) {
  json_t *m = NULL;
  char err[200];
  int kind = mcp_client__parse(p, n, &m, err, sizeof err);
  if (kind < 0) {
    if (m) abort();
    return;
  }
  if (kind == MCP_CLIENT_MSG_REQUEST) check_answer(m);
  json_decref(m);
}

static int on_line(void *ud, const char *line, size_t len) {
  (void)ud;
  if (!line) return 0;
  if (!len || len > LINE_CAP || memchr(line, '\n', len) || line[len - 1] == '\r' || line[len]) abort();
  message(line, len);
  return 0;
}

static int on_event(void *ud, const char *event, const char *data, size_t len) {
  mcp_client_sse *s = ud;
  if (len > SSE_CAP || data[len] || strlen(event) >= 64) abort();
  if (strlen(s->last_id) > MCP_CLIENT_SSE_ID_MAX || s->retry_ms > MCP_CLIENT_RETRY_MAX_MS) abort();
  message(data, len);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 16)) return 0;
  int mode = data[0] % 3;
  size_t chunk = (size_t)(data[0] >> 2) + 1;
  const char *p = (const char *)data + 1;
  size_t n = size - 1;
  if (mode == 0) {
    mcp_client_lines l;
    mcp_client__lines_init(&l, LINE_CAP);
    for (size_t i = 0; i < n; i += chunk)
      if (mcp_client__lines_feed(&l, p + i, n - i < chunk ? n - i : chunk, on_line, NULL)) break;
    if (l.len > LINE_CAP) abort();
    mcp_client__lines_deinit(&l);
  } else if (mode == 1) {
    mcp_client_sse s;
    mcp_client__sse_init(&s, SSE_CAP);
    for (size_t i = 0; i < n; i += chunk) {
      int rc = mcp_client__sse_feed(&s, p + i, n - i < chunk ? n - i : chunk, on_event, &s);
      if (rc && rc != ERR_TOOBIG) break;
      if (s.line_len > SSE_CAP || s.data_len > SSE_CAP) abort();
    }
    mcp_client__sse_deinit(&s);
  } else {
    message(p, n);
  }
  return 0;
}
