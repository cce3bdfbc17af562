/* agent/mcp_client_answer — what the MCP client answers when a server asks it something.
 *
 * The client runs unattended (an agent, or the owner's CLI), so it has no human to ask and
 * no model of its own to lend: it declares only the `elicitation` capability (form mode)
 * and answers
 *   ping                  → {}
 *   elicitation/create    → {action:"accept", content:{the schema's defaults}} when every
 *                           required field has a default of a primitive type (string,
 *                           number, integer, boolean) or an array of strings; else
 *                           {action:"decline"} (also for mode "url", which it does not
 *                           declare)
 *   anything else         → -32601 (roots/list and sampling/createMessage included: the
 *                           client declares neither)
 * Pure: no I/O, no state. The request is untrusted (borrowed); declared in
 * agent/mcp_client_frame.h. */
#include <string.h>

#include "agent/mcp.h"
#include "agent/mcp_client_frame.h"

#define MAX_FIELDS 64 /* properties of one elicitation schema looked at */

static int default_ok(const json_t *d) {
  if (json_is_string(d) || json_is_number(d) || json_is_boolean(d)) return 1;
  if (!json_is_array(d) || json_array_size(d) > MAX_FIELDS) return 0;
  size_t i;
  json_t *v;
  json_array_foreach(d, i, v) if (!json_is_string(v)) return 0;
  return 1;
}

/* The ElicitResult for params (borrowed); owned. */
static json_t *elicit(const json_t *params) {
  const char *mode = json_string_value(json_object_get(params, "mode"));
  const json_t *schema = json_object_get(params, "requestedSchema");
  const json_t *props = json_object_get(schema, "properties");
  if ((mode && strcmp(mode, "form")) || !json_is_object(schema) || (props && !json_is_object(props)))
    return json_pack("{s:s}", "action", "decline");
  json_t *content = json_object();
  if (!content) return NULL;
  const char *key;
  json_t *p;
  size_t n = 0;
  json_object_foreach((json_t *)props, key, p) {
    if (++n > MAX_FIELDS) break;
    json_t *d = json_object_get(p, "default");
    if (d && default_ok(d)) json_object_set(content, key, d);
  }
  const json_t *req = json_object_get(schema, "required");
  size_t i;
  json_t *r;
  int missing = req && !json_is_array(req);
  if (json_is_array(req))
    json_array_foreach(req, i, r) if (!json_is_string(r) || !json_object_get(content, json_string_value(r))) missing = 1;
  if (missing) {
    json_decref(content);
    return json_pack("{s:s}", "action", "decline");
  }
  return json_pack("{s:s, s:o}", "action", "accept", "content", content);
}

json_t *mcp_client__answer(const json_t *request) {
  const json_t *id = json_object_get(request, "id");
  const char *method = json_string_value(json_object_get(request, "method"));
  json_t *result = NULL;
  if (!method) return mcp_error(id, MCP_INVALID_REQUEST, "not a request");
  if (!strcmp(method, "ping")) result = json_object();
  else if (!strcmp(method, "elicitation/create")) result = elicit(json_object_get(request, "params"));
  else return mcp_error(id, MCP_NO_METHOD, "the client does not offer this method (it declares only elicitation)");
  if (!result) return NULL;
  return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}
