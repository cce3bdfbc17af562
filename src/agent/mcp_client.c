/* agent/mcp_client — the MCP client's core: open, the initialize handshake, tools/list with
 * cursors and caps, tools/call, timeouts with notifications/cancelled, and close. The bytes
 * move in the transports (agent/mcp_client_stdio.c, agent/mcp_client_http.c); see the
 * header for what the client declares and answers, and for threads and ownership. */
#include "agent/mcp_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/mcp.h"
#include "agent/mcp_client_int.h"
#include "core/err.h"
#include "core/log.h"
#include "core/version.h"

static const char *const versions[] = {MCP_LATEST, "2025-06-18", "2025-03-26"};

long long mcp_client__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mcp_client__notified(const mcp_client *c, const json_t *msg) {
  const char *method = json_string_value(json_object_get(msg, "method"));
  if (method && !strcmp(method, "notifications/message")) {
    const json_t *p = json_object_get(msg, "params");
    char *data = json_dumps(json_object_get(p, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
    const char *level = json_string_value(json_object_get(p, "level"));
    log_debug("mcp server '%s' says (%s): %.300s", c->name, level ? level : "?", data ? data : "");
    free(data);
    return;
  }
  log_debug("mcp server '%s': %s", c->name, method ? method : "?");
}

/* One request: 0 with *result (the "result" member, owned) or an error naming the server
 * and the method in err. Takes params (may be NULL). */
static int rpc(mcp_client *c, const char *method, json_t *params, int timeout_ms, json_t **result, char *err,
               size_t cap) {
  *result = NULL;
  json_int_t id = c->next_id++;
  json_t *msg = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", id, "method", method);
  if (!msg || (params && json_object_set_new(msg, "params", params))) {
    if (!msg) json_decref(params);
    json_decref(msg);
    return err_set(err, cap, ERR_NOMEM, "out of memory");
  }
  char why[400] = "";
  json_t *resp = NULL;
  int rc = c->t->request(c, msg, id, timeout_ms, &resp, why, sizeof why);
  if (rc == -ETIMEDOUT && strcmp(method, "initialize")) { /* tell the server to stop working on it */
    json_t *n = json_pack("{s:s, s:s, s:{s:I, s:s}}", "jsonrpc", "2.0", "method", "notifications/cancelled", "params",
                          "requestId", id, "reason", "timed out");
    char ignored[200];
    if (n) c->t->notify(c, n, ignored, sizeof ignored);
  }
  if (rc) return err_set(err, cap, rc, "MCP server '%s': %s: %s", c->name, method, why);
  json_t *e = json_object_get(resp, "error");
  if (e) {
    const char *m = json_string_value(json_object_get(e, "message"));
    rc = err_set(err, cap, MCP_CLIENT_ERR_RPC, "MCP server '%s' refused %s: %lld %s", c->name, method,
                 (long long)json_integer_value(json_object_get(e, "code")), m ? m : "(no message)");
    json_decref(resp);
    return rc;
  }
  json_t *r = json_object_get(resp, "result");
  if (!json_is_object(r)) {
    json_decref(resp);
    return err_set(err, cap, -EPROTO, "MCP server '%s' answered %s without a result object", c->name, method);
  }
  *result = json_incref(r);
  json_decref(resp);
  return 0;
}

int mcp_client__initialize(mcp_client *c, char *err, size_t cap) {
  json_t *params = json_pack("{s:s, s:{s:{s:{}}}, s:{s:s, s:s}}", "protocolVersion", MCP_LATEST, "capabilities",
                             "elicitation", "form", "clientInfo", "name", "apiary", "version", APIARY_VERSION);
  if (!params) return err_set(err, cap, ERR_NOMEM, "out of memory");
  c->version[0] = 0;
  json_t *res = NULL;
  int rc = rpc(c, "initialize", params, c->timeout_ms, &res, err, cap);
  if (rc) return rc;
  const char *v = json_string_value(json_object_get(res, "protocolVersion"));
  for (size_t i = 0; v && i < sizeof versions / sizeof *versions; i++)
    if (!strcmp(v, versions[i])) snprintf(c->version, sizeof c->version, "%s", v);
  if (!c->version[0]) {
    rc = err_set(err, cap, ERR_UNSUPPORTED,
                 "MCP server '%s' speaks protocol revision %.40s; apiary speaks %s (also 2025-06-18 and 2025-03-26)",
                 c->name, v ? v : "(none given)", MCP_LATEST);
    json_decref(res);
    return rc;
  }
  json_decref(c->init);
  c->init = res;
  json_t *n = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized");
  if (!n) return err_set(err, cap, ERR_NOMEM, "out of memory");
  char why[300];
  rc = c->t->notify(c, n, why, sizeof why);
  if (rc) return err_set(err, cap, rc, "MCP server '%s': notifications/initialized: %s", c->name, why);
  return 0;
}

int mcp_client_open(const mcp_client_cfg *cfg, mcp_client **out, char *err, size_t cap) {
  *out = NULL;
  if (!cfg || !!cfg->command == !!cfg->url)
    return err_set(err, cap, ERR_INVAL, "an MCP server is either a command (stdio) or a URL (HTTP), not both or neither");
  mcp_client *c = calloc(1, sizeof *c);
  if (!c) return err_set(err, cap, ERR_NOMEM, "out of memory");
  snprintf(c->name, sizeof c->name, "%s", cfg->name ? cfg->name : cfg->command ? cfg->command : cfg->url);
  c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MCP_CLIENT_TIMEOUT_MS;
  c->next_id = 1;
  pthread_mutex_init(&c->mu, NULL);
  int rc = cfg->command ? mcp_client__stdio_open(c, cfg, err, cap) : mcp_client__http_open(c, cfg, err, cap);
  if (rc) {
    pthread_mutex_destroy(&c->mu);
    free(c);
    return rc;
  }
  pthread_mutex_lock(&c->mu);
  rc = mcp_client__initialize(c, err, cap);
  pthread_mutex_unlock(&c->mu);
  if (rc) {
    mcp_client_close(c);
    return rc;
  }
  *out = c;
  return 0;
}

const json_t *mcp_client_server_info(const mcp_client *c) { return c->init; }

int mcp_client_list_tools(mcp_client *c, json_t **tools_out, char *err, size_t cap) {
  *tools_out = NULL;
  json_t *all = json_array();
  if (!all) return err_set(err, cap, ERR_NOMEM, "out of memory");
  char cursor[1024] = "";
  int rc = 0, pages = 0;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    json_t *params = cursor[0] ? json_pack("{s:s}", "cursor", cursor) : NULL;
    json_t *res = NULL;
    rc = rpc(c, "tools/list", params, c->timeout_ms, &res, err, cap);
    if (rc) break;
    json_t *tools = json_object_get(res, "tools"), *t;
    size_t i;
    if (!json_is_array(tools)) {
      json_decref(res);
      rc = err_set(err, cap, -EPROTO, "MCP server '%s' answered tools/list without a tools array", c->name);
      break;
    }
    json_array_foreach(tools, i, t) {
      if (!json_is_object(t) || !json_is_string(json_object_get(t, "name"))) continue; /* not a usable tool */
      if (json_array_size(all) == MCP_CLIENT_MAX_TOOLS) break;
      json_array_append(all, t);
    }
    const char *next = json_string_value(json_object_get(res, "nextCursor"));
    int more = next && *next && strlen(next) < sizeof cursor;
    if (more) snprintf(cursor, sizeof cursor, "%s", next);
    json_decref(res);
    if (!more) break;
    if (++pages == MCP_CLIENT_MAX_PAGES || json_array_size(all) == MCP_CLIENT_MAX_TOOLS) {
      log_warn("MCP server '%s' lists more than %d tools or %d pages; using the first %zu", c->name,
               MCP_CLIENT_MAX_TOOLS, MCP_CLIENT_MAX_PAGES, json_array_size(all));
      break;
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (rc) {
    json_decref(all);
    return rc;
  }
  *tools_out = all;
  return 0;
}

int mcp_client_call_tool(mcp_client *c, const char *name, json_t *args, int timeout_ms, json_t **result, char *err,
                         size_t cap) {
  *result = NULL;
  if (!name || !*name) return err_set(err, cap, ERR_INVAL, "no tool name");
  if (args && !json_is_object(args)) return err_set(err, cap, ERR_INVAL, "a tool's arguments must be a JSON object");
  json_t *a = args ? json_incref(args) : json_object();
  json_t *params = a ? json_pack("{s:s, s:o}", "name", name, "arguments", a) : NULL;
  if (!params) return err_set(err, cap, ERR_NOMEM, "out of memory");
  pthread_mutex_lock(&c->mu);
  int rc = rpc(c, "tools/call", params, timeout_ms > 0 ? timeout_ms : c->timeout_ms, result, err, cap);
  pthread_mutex_unlock(&c->mu);
  return rc;
}

void mcp_client_close(mcp_client *c) {
  if (!c) return;
  if (c->t) c->t->close(c);
  json_decref(c->init);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
