/* libFuzzer harness: MCP messages from an untrusted client. The input is parsed as JSON
 * (as both transports do) and handed to mcp_handle over a server holding every
 * conformance fixture, one session for the whole run (so state — level, subscriptions,
 * capabilities — accumulates). No sink: tools that would ask the client must fail cleanly.
 * A request must be answered with exactly one of result or error, and an error code must be
 * a JSON-RPC one; a notification or a response gets no answer. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcp.h"
#include "agent/mcp_fixtures.h"

static mcp_server srv;
static mcp_session ses;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) {
    mcp_server_init(&srv, "fuzz", "0", NULL);
    if (mcp_fixtures_add(&srv)) abort();
    mcp_session_init(&ses);
    ready = 1;
  }
  if (size > (1u << 16)) return 0;
  json_error_t je;
  json_t *msg = json_loadb((const char *)data, size, JSON_DECODE_ANY, &je);
  if (!msg) return 0;
  char why[200];
  int kind = mcp_kind(msg, why, sizeof why);
  json_t *answer = mcp_handle(&srv, &ses, msg, NULL, NULL);
  if (kind == 2 || kind == 3) {
    if (answer) abort();
  } else {
    if (!answer) abort();
    json_t *res = json_object_get(answer, "result"), *err = json_object_get(answer, "error");
    if (!!res == !!err) abort();
    if (err) {
      json_int_t code = json_integer_value(json_object_get(err, "code"));
      if (code > -32000 || code < -32768 || !json_is_string(json_object_get(err, "message"))) abort();
    }
    char *text = json_dumps(answer, JSON_COMPACT);
    if (!text) abort();
    free(text);
  }
  json_decref(answer);
  json_decref(msg);
  return 0;
}
