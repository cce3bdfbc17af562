/* agent/agent_mcp — see agent_mcp.h. */
#include "agent/agent_mcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_def.h"
#include "agent/mcp_client.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/jsonschema.h"

#define POOL_MAX 16
#define MCP_CALL_TIMEOUT_MS 120000

typedef struct conn {
  char *key;           /* agent name + the server's configuration (owned) */
  char server[40];
  mcp_client *c;
  json_t *tools;       /* the server's tools/list (owned) */
} conn;

struct agent_mcp {
  conn pool[POOL_MAX];
};

agent_mcp *agent_mcp_new(void) { return calloc(1, sizeof(agent_mcp)); }

static void conn_close(conn *k) {
  mcp_client_close(k->c);
  json_decref(k->tools);
  free(k->key);
  memset(k, 0, sizeof *k);
}

void agent_mcp_free(agent_mcp *p) {
  if (!p) return;
  for (int i = 0; i < POOL_MAX; i++)
    if (p->pool[i].c) conn_close(&p->pool[i]);
  free(p);
}

static const json_t *server_cfg(const json_t *def, const char *server) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(def, "mcp"), i, m) if (!strcmp(json_string_value(json_object_get(m, "name")), server)) return m;
  return NULL;
}

/* The open client for def's server (opened now if needed); NULL with err on failure. */
static conn *get(agent_mcp *p, const json_t *def, const char *server, char *err, size_t cap) {
  const json_t *m = server_cfg(def, server);
  if (!m) {
    snprintf(err, cap, "no MCP server named %s in this agent's definition", server);
    return NULL;
  }
  char *cfgtext = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
  buf key;
  buf_init(&key);
  buf_append_str(&key, json_string_value(json_object_get(def, "name")));
  buf_append(&key, "\x1f", 1);
  buf_append_str(&key, cfgtext ? cfgtext : "");
  buf_append(&key, "", 1);
  free(cfgtext);
  conn *hit = NULL, *empty = NULL;
  for (int i = 0; i < POOL_MAX; i++) {
    if (p->pool[i].c && !strcmp(p->pool[i].key, (const char *)key.ptr)) hit = &p->pool[i];
    else if (!p->pool[i].c && !empty) empty = &p->pool[i];
  }
  if (hit) {
    buf_deinit(&key);
    return hit;
  }
  if (!empty) { /* full: the first one goes */
    conn_close(&p->pool[0]);
    empty = &p->pool[0];
  }
  /* argv and env from the configuration */
  const char *args[65] = {0}, *env[65] = {0};
  char *envbuf[64] = {0};
  size_t i, n = 0;
  json_t *v;
  json_array_foreach(json_object_get(m, "args"), i, v) if (n < 64) args[n++] = json_string_value(v);
  const char *k;
  n = 0;
  json_object_foreach((json_t *)json_object_get(m, "env"), k, v) {
    if (n >= 64) break;
    size_t len = strlen(k) + json_string_length(v) + 2;
    envbuf[n] = malloc(len);
    if (envbuf[n]) {
      snprintf(envbuf[n], len, "%s=%s", k, json_string_value(v));
      env[n] = envbuf[n];
      n++;
    }
  }
  mcp_client_cfg cfg = {.name = server, .command = json_string_value(json_object_get(m, "command")), .args = args,
                        .env = env, .url = json_string_value(json_object_get(m, "url")),
                        .bearer = json_string_value(json_object_get(m, "bearer")), .timeout_ms = MCP_CALL_TIMEOUT_MS};
  mcp_client *c = NULL;
  int rc = mcp_client_open(&cfg, &c, err, cap);
  for (size_t j = 0; j < n; j++) free(envbuf[j]);
  json_t *tools = NULL;
  if (!rc) rc = mcp_client_list_tools(c, &tools, err, cap);
  if (rc) {
    mcp_client_close(c);
    buf_deinit(&key);
    return NULL;
  }
  empty->key = (char *)key.ptr; /* taken */
  empty->c = c;
  empty->tools = tools;
  snprintf(empty->server, sizeof empty->server, "%s", server);
  return empty;
}

static void drop(agent_mcp *p, conn *k) { (void)p; conn_close(k); }

/* May def use SERVER__TOOL? */
static int allowed(const json_t *def, const char *server, const char *tool) {
  char one[200], all[48];
  snprintf(one, sizeof one, "%s__%s", server, tool);
  snprintf(all, sizeof all, "mcp:%s", server);
  return agent_def_lists(def, "tools", one) || agent_def_lists(def, "tools", all);
}

void agent_mcp_specs(agent_mcp *p, const json_t *def, json_t *specs) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(def, "mcp"), i, m) {
    const char *server = json_string_value(json_object_get(m, "name"));
    char err[400];
    conn *k = get(p, def, server, err, sizeof err);
    if (!k) {
      log_warn("agent %s: MCP server %s: %s", json_string_value(json_object_get(def, "name")), server, err);
      continue;
    }
    json_t *all = mcp_client_tool_specs(server, k->tools), *t;
    size_t j;
    json_array_foreach(all, j, t) {
      json_t *fn = json_object_get(t, "function");
      const char *full = json_string_value(json_object_get(fn, "name"));
      if (!full || !allowed(def, server, full + strlen(server) + 2)) continue;
      /* a schema the grammar cannot express is offered as any object (the server checks) */
      char *gbnf = NULL, e2[200];
      if (jsonschema_to_gbnf(json_object_get(fn, "parameters"), "x", &gbnf, e2, sizeof e2))
        json_object_set_new(fn, "parameters", json_pack("{s:s}", "type", "object"));
      free(gbnf);
      json_array_append(specs, t);
    }
    json_decref(all);
  }
}

int agent_mcp_run(agent_mcp *p, const json_t *def, const char *name, json_t *args, char **text, int *is_error) {
  const char *sep = strstr(name, "__");
  if (!sep || sep == name) return ERR_NOTFOUND;
  char server[40];
  snprintf(server, sizeof server, "%.*s", (int)(sep - name < 39 ? sep - name : 39), name);
  const char *tool = sep + 2;
  if (!server_cfg(def, server) || !allowed(def, server, tool)) return ERR_NOTFOUND;
  char err[600];
  conn *k = get(p, def, server, err, sizeof err);
  json_t *res = NULL;
  int rc = k ? mcp_client_call_tool(k->c, tool, args, MCP_CALL_TIMEOUT_MS, &res, err, sizeof err) : ERR_INVAL;
  if (rc) {
    if (k && rc != MCP_CLIENT_ERR_RPC) drop(p, k); /* a dead server is opened again next time */
    char m[700];
    snprintf(m, sizeof m, "the MCP server %s failed: %s", server, err);
    *text = strdup(m);
    *is_error = 1;
    return 0;
  }
  *text = mcp_client_result_text(res, 64 * 1024, is_error);
  if (!*text) *text = strdup("");
  json_decref(res);
  return 0;
}
