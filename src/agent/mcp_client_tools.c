/* agent/mcp_client_tools — an MCP server's tools as an agent sees them: OpenAI function specs
 * named SERVER__TOOL, and a CallToolResult flattened into text for the model. Pure: no I/O,
 * no state; the inputs come from a server and are untrusted (borrowed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcp_client.h"
#include "core/buf.h"

#define NAME_MAX_LEN 64 /* an OpenAI function name: [A-Za-z0-9_-]{1,64} */

static int name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (!n || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

json_t *mcp_client_tool_specs(const char *server, const json_t *tools) {
  json_t *out = json_array();
  if (!out || !server || !name_ok(server, NAME_MAX_LEN)) return out;
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *name = json_string_value(json_object_get(t, "name"));
    char full[2 * NAME_MAX_LEN + 3];
    if (!name || !name_ok(name, NAME_MAX_LEN)) continue;
    snprintf(full, sizeof full, "%s__%s", server, name);
    if (strlen(full) > NAME_MAX_LEN) continue;
    const char *desc = json_string_value(json_object_get(t, "description"));
    json_t *schema = json_object_get(t, "inputSchema");
    json_t *params = json_is_object(schema) ? json_incref(schema) : json_pack("{s:s}", "type", "object");
    json_t *fn = params ? json_pack("{s:s, s:s, s:o}", "name", full, "description", desc ? desc : "", "parameters", params)
                        : NULL;
    if (fn) json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", fn));
  }
  return out;
}

/* Appends s (or a summary) and a newline; stops growing past max. */
static void add(buf *b, const char *s, size_t max) {
  if (b->len >= max) return;
  buf_append_str(b, s);
  buf_append_str(b, "\n");
}

char *mcp_client_result_text(const json_t *result, size_t max, int *is_error) {
  buf b;
  buf_init(&b);
  if (is_error) *is_error = json_is_true(json_object_get(result, "isError"));
  size_t i;
  json_t *item;
  char line[300];
  json_array_foreach(json_object_get(result, "content"), i, item) {
    const char *type = json_string_value(json_object_get(item, "type"));
    const char *text = json_string_value(json_object_get(item, "text"));
    const char *mime = json_string_value(json_object_get(item, "mimeType"));
    const char *data = json_string_value(json_object_get(item, "data"));
    if (!type) type = "unknown";
    if (!strcmp(type, "text") && text) {
      add(&b, text, max);
      continue;
    }
    if (!strcmp(type, "image") || !strcmp(type, "audio")) {
      snprintf(line, sizeof line, "[%s %.80s, %zu bytes of base64]", type, mime ? mime : "?", data ? strlen(data) : 0);
    } else if (!strcmp(type, "resource_link")) {
      const char *uri = json_string_value(json_object_get(item, "uri"));
      snprintf(line, sizeof line, "[link %.250s]", uri ? uri : "?");
    } else if (!strcmp(type, "resource")) {
      const json_t *r = json_object_get(item, "resource");
      const char *rt = json_string_value(json_object_get(r, "text"));
      const char *uri = json_string_value(json_object_get(r, "uri"));
      if (rt) {
        add(&b, rt, max);
        continue;
      }
      snprintf(line, sizeof line, "[resource %.250s]", uri ? uri : "?");
    } else {
      snprintf(line, sizeof line, "[%.40s content]", type);
    }
    add(&b, line, max);
  }
  const json_t *sc = json_object_get(result, "structuredContent");
  if (!b.len && sc) {
    char *s = json_dumps(sc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s) add(&b, s, max);
    free(s);
  }
  if (!b.ptr) return strdup("");
  if (b.len > max) { /* cut, and not inside a UTF-8 sequence */
    size_t n = max;
    while (n && (b.ptr[n] & 0xC0) == 0x80) n--;
    b.len = n;
  }
  while (b.len && b.ptr[b.len - 1] == '\n') b.len--;
  b.ptr[b.len] = 0;
  return (char *)b.ptr; /* the buffer's storage, now the caller's */
}
