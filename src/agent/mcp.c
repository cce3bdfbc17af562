/* agent/mcp — the MCP server's protocol: registry, lifecycle and dispatch (see mcp.h). */
#include "agent/mcp.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};
static const char *const levels[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

struct mcp_call {
  mcp_server *srv;
  mcp_session *ses;
  const mcp_sink *sink;
  json_t *progress_token; /* borrowed from the request; NULL when none */
  int slot;               /* index in ses->running, or -1 */
};

static int level_index(const char *l) {
  for (size_t i = 0; l && i < sizeof levels / sizeof *levels; i++)
    if (!strcmp(levels[i], l)) return (int)i;
  return -1;
}

void mcp_server_init(mcp_server *s, const char *name, const char *version, const char *instructions) {
  memset(s, 0, sizeof *s);
  s->name = name;
  s->version = version;
  s->instructions = instructions;
}

static int schema_ok(const char *text) {
  if (!text) return 1;
  json_t *j = json_loads(text, 0, NULL);
  int ok = json_is_object(j);
  json_decref(j);
  return ok;
}

int mcp_add_tool(mcp_server *s, const mcp_tool *t) {
  if (!t->name || !t->fn || !schema_ok(t->input_schema)) return ERR_INVAL;
  for (size_t i = 0; i < s->n_tools; i++)
    if (!strcmp(s->tools[i].name, t->name)) return ERR_EXISTS;
  if (s->n_tools >= MCP_MAX_TOOLS) return ERR_TOOBIG;
  s->tools[s->n_tools++] = *t;
  return 0;
}

int mcp_add_resource(mcp_server *s, const mcp_resource *r) {
  if (!r->uri || !r->name || !r->fn) return ERR_INVAL;
  if (s->n_resources >= MCP_MAX_RESOURCES) return ERR_TOOBIG;
  s->resources[s->n_resources++] = *r;
  return 0;
}

int mcp_add_prompt(mcp_server *s, const mcp_prompt *p) {
  if (!p->name || !p->fn) return ERR_INVAL;
  if (p->arguments) {
    json_t *j = json_loads(p->arguments, 0, NULL);
    int ok = json_is_array(j);
    json_decref(j);
    if (!ok) return ERR_INVAL;
  }
  if (s->n_prompts >= MCP_MAX_PROMPTS) return ERR_TOOBIG;
  s->prompts[s->n_prompts++] = *p;
  return 0;
}

int mcp_session_init(mcp_session *s) {
  memset(s, 0, sizeof *s);
  unsigned char r[MCP_ID_LEN / 2];
  randombytes_buf(r, sizeof r);
  sodium_bin2hex(s->id, sizeof s->id, r, sizeof r);
  s->log_level = 1; /* info */
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  return 0;
}

void mcp_session_close(mcp_session *s) {
  pthread_mutex_lock(&s->mu);
  s->closed = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

void mcp_session_deinit(mcp_session *s) {
  for (size_t i = 0; i < MCP_MAX_PENDING; i++) json_decref(s->pending[i].answer);
  json_decref(s->client_caps);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
}

json_t *mcp_error(const json_t *id, int code, const char *message) {
  return json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code", code, "message", message);
}

static json_t *ok(const json_t *id, json_t *result /* taken */) {
  return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

int mcp_kind(const json_t *msg, char *err, size_t cap) {
  if (!json_is_object(msg)) {
    snprintf(err, cap, "a message must be one JSON object (batches are not part of MCP 2025-06-18 and later)");
    return 0;
  }
  const char *v = json_string_value(json_object_get(msg, "jsonrpc"));
  if (!v || strcmp(v, "2.0")) {
    snprintf(err, cap, "\"jsonrpc\" must be \"2.0\"");
    return 0;
  }
  json_t *id = json_object_get(msg, "id"), *method = json_object_get(msg, "method");
  if (id && !json_is_string(id) && !json_is_integer(id)) {
    snprintf(err, cap, "\"id\" must be a string or an integer");
    return 0;
  }
  if (method) {
    if (!json_is_string(method)) {
      snprintf(err, cap, "\"method\" must be a string");
      return 0;
    }
    json_t *params = json_object_get(msg, "params");
    if (params && !json_is_object(params)) {
      snprintf(err, cap, "\"params\" must be an object");
      return 0;
    }
    return id ? 1 : 2;
  }
  if (id && (json_object_get(msg, "result") || json_is_object(json_object_get(msg, "error")))) return 3;
  snprintf(err, cap, "neither a request, a notification nor a response");
  return 0;
}

/* ---- inside a request ---------------------------------------------------------------- */

static void send_msg(mcp_call *c, json_t *m) {
  if (c->sink && c->sink->send) c->sink->send(c->sink->ud, m);
  else json_decref(m);
}

int mcp_client_can(mcp_call *c, const char *capability) {
  pthread_mutex_lock(&c->ses->mu);
  int yes = json_object_get(c->ses->client_caps, capability) != NULL;
  pthread_mutex_unlock(&c->ses->mu);
  return yes;
}

void mcp_log(mcp_call *c, const char *level, const char *logger, json_t *data) {
  int li = level_index(level);
  pthread_mutex_lock(&c->ses->mu);
  int min = c->ses->log_level;
  pthread_mutex_unlock(&c->ses->mu);
  if (li < 0 || li < min) {
    json_decref(data);
    return;
  }
  send_msg(c, json_pack("{s:s, s:s, s:{s:s, s:s?, s:o}}", "jsonrpc", "2.0", "method", "notifications/message",
                        "params", "level", level, "logger", logger, "data", data));
}

void mcp_progress(mcp_call *c, double progress, double total, const char *message) {
  if (!c->progress_token) return;
  json_t *p = json_pack("{s:O, s:f}", "progressToken", c->progress_token, "progress", progress);
  if (total > 0) json_object_set_new(p, "total", json_real(total));
  if (message) json_object_set_new(p, "message", json_string(message));
  send_msg(c, json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", "notifications/progress", "params", p));
}

int mcp_call_cancelled(mcp_call *c) {
  if (c->sink && c->sink->gone && c->sink->gone(c->sink->ud)) return 1;
  if (c->slot < 0) return 0;
  pthread_mutex_lock(&c->ses->mu);
  int x = c->ses->running[c->slot].cancelled || c->ses->closed;
  pthread_mutex_unlock(&c->ses->mu);
  return x;
}

static void id_text(const json_t *id, char *out, size_t cap) {
  if (json_is_integer(id)) snprintf(out, cap, "i%lld", (long long)json_integer_value(id));
  else snprintf(out, cap, "s%s", json_string_value(id) ? json_string_value(id) : "");
}

int mcp_ask(mcp_call *c, const char *method, json_t *params, int timeout_ms, json_t **result, char *err, size_t cap) {
  *result = NULL;
  if (!c->sink || !c->sink->send) {
    json_decref(params);
    snprintf(err, cap, "this transport cannot send requests to the client");
    return MCP_INTERNAL;
  }
  mcp_session *s = c->ses;
  pthread_mutex_lock(&s->mu);
  int slot = -1;
  for (int i = 0; i < MCP_MAX_PENDING && slot < 0; i++)
    if (!s->pending[i].used) slot = i;
  if (slot < 0) {
    pthread_mutex_unlock(&s->mu);
    json_decref(params);
    snprintf(err, cap, "too many requests to the client at once");
    return MCP_INTERNAL;
  }
  mcp_pending *p = &s->pending[slot];
  memset(p, 0, sizeof *p);
  p->used = 1;
  char id[32];
  snprintf(id, sizeof id, "apiary-%lu", ++s->next_id);
  snprintf(p->id, sizeof p->id, "s%s", id);
  pthread_mutex_unlock(&s->mu);
  send_msg(c, json_pack("{s:s, s:s, s:s, s:o}", "jsonrpc", "2.0", "id", id, "method", method, "params", params));
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += timeout_ms / 1000;
  dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (dl.tv_nsec >= 1000000000L) {
    dl.tv_sec++;
    dl.tv_nsec -= 1000000000L;
  }
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  while (!p->done && !s->closed) {
    pthread_mutex_unlock(&s->mu);
    int gone = c->sink->gone && c->sink->gone(c->sink->ud);
    pthread_mutex_lock(&s->mu);
    if (gone) break;
    struct timespec step;
    clock_gettime(CLOCK_REALTIME, &step);
    step.tv_nsec += 200000000L; /* look at the stream every 200 ms */
    if (step.tv_nsec >= 1000000000L) {
      step.tv_sec++;
      step.tv_nsec -= 1000000000L;
    }
    if (step.tv_sec > dl.tv_sec || (step.tv_sec == dl.tv_sec && step.tv_nsec > dl.tv_nsec)) step = dl;
    if (pthread_cond_timedwait(&s->cv, &s->mu, &step) == ETIMEDOUT && !p->done) {
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      if (now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec)) break;
    }
  }
  if (p->done) {
    json_t *e = json_object_get(p->answer, "error");
    if (e) {
      const char *m = json_string_value(json_object_get(e, "message"));
      snprintf(err, cap, "the client answered with an error: %s", m ? m : "(no message)");
      rc = (int)json_integer_value(json_object_get(e, "code"));
      if (!rc) rc = MCP_INTERNAL;
    } else {
      *result = json_incref(json_object_get(p->answer, "result"));
    }
  } else if (s->closed) {
    snprintf(err, cap, "the session ended");
    rc = ERR_CANCELED;
  } else {
    snprintf(err, cap, "the client did not answer %s within %d s", method, timeout_ms / 1000);
    rc = -ETIMEDOUT;
  }
  json_decref(p->answer);
  memset(p, 0, sizeof *p);
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int mcp_session_deliver(mcp_session *s, json_t *response) {
  char key[40];
  id_text(json_object_get(response, "id"), key, sizeof key);
  int rc = ERR_NOTFOUND;
  pthread_mutex_lock(&s->mu);
  for (int i = 0; i < MCP_MAX_PENDING; i++)
    if (s->pending[i].used && !s->pending[i].done && !strcmp(s->pending[i].id, key)) {
      s->pending[i].answer = json_incref(response);
      s->pending[i].done = 1;
      rc = 0;
      pthread_cond_broadcast(&s->cv);
      break;
    }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

json_t *mcp_text(const char *text) { return json_pack("{s:s, s:s}", "type", "text", "text", text); }

json_t *mcp_text_result(const char *text, int is_error) {
  json_t *r = json_pack("{s:[o]}", "content", mcp_text(text));
  if (is_error) json_object_set_new(r, "isError", json_true());
  return r;
}

/* ---- methods ------------------------------------------------------------------------- */

typedef struct ctx {
  mcp_server *srv;
  mcp_session *ses;
  mcp_call *call;
  json_t *params; /* borrowed; an empty object when absent */
  char err[512];
} ctx;

static json_t *m_initialize(ctx *x, int *code) {
  const char *want = json_string_value(json_object_get(x->params, "protocolVersion"));
  if (!want || !json_is_object(json_object_get(x->params, "clientInfo"))) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "initialize needs params.protocolVersion (a string) and params.clientInfo");
    return NULL;
  }
  const char *use = MCP_LATEST;
  for (size_t i = 0; i < sizeof versions / sizeof *versions; i++)
    if (!strcmp(versions[i], want)) use = versions[i];
  json_t *caps = json_object_get(x->params, "capabilities");
  pthread_mutex_lock(&x->ses->mu);
  snprintf(x->ses->version, sizeof x->ses->version, "%s", use);
  json_decref(x->ses->client_caps);
  x->ses->client_caps = json_is_object(caps) ? json_deep_copy(caps) : json_object();
  pthread_mutex_unlock(&x->ses->mu);
  json_t *sc = json_pack("{s:{s:b}, s:{}, s:{}}", "tools", "listChanged", 0, "logging", "completions");
  if (x->srv->n_resources) json_object_set_new(sc, "resources", json_pack("{s:b, s:b}", "subscribe", 1, "listChanged", 0));
  if (x->srv->n_prompts) json_object_set_new(sc, "prompts", json_pack("{s:b}", "listChanged", 0));
  json_t *r = json_pack("{s:s, s:o, s:{s:s, s:s}}", "protocolVersion", use, "capabilities", sc, "serverInfo", "name",
                        x->srv->name, "version", x->srv->version);
  if (x->srv->instructions) json_object_set_new(r, "instructions", json_string(x->srv->instructions));
  return r;
}

/* A list request's cursor: none is supported beyond the first page (every list fits). */
static int cursor_ok(ctx *x, int *code) {
  json_t *cur = json_object_get(x->params, "cursor");
  if (!cur || json_is_null(cur)) return 1;
  *code = MCP_INVALID_PARAMS;
  snprintf(x->err, sizeof x->err, "unknown cursor (every list here fits in one page)");
  return 0;
}

static json_t *m_tools_list(ctx *x, int *code) {
  if (!cursor_ok(x, code)) return NULL;
  json_t *arr = json_array();
  for (size_t i = 0; i < x->srv->n_tools; i++) {
    const mcp_tool *t = &x->srv->tools[i];
    json_t *schema = t->input_schema ? json_loads(t->input_schema, 0, NULL) : json_pack("{s:s, s:{}}", "type", "object", "properties");
    json_t *o = json_pack("{s:s, s:s, s:o}", "name", t->name, "description", t->description ? t->description : "",
                          "inputSchema", schema);
    if (t->title) json_object_set_new(o, "title", json_string(t->title));
    json_array_append_new(arr, o);
  }
  return json_pack("{s:o}", "tools", arr);
}

static const char *type_of(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  default: return "null";
  }
}

/* The arguments against the tool's schema: required names present, and each property's
 * declared type (string, number, integer, boolean, object, array) matched. */
static int args_ok(const mcp_tool *t, json_t *args, char *err, size_t cap) {
  if (!t->input_schema) return 1;
  json_t *schema = json_loads(t->input_schema, 0, NULL);
  int good = 1;
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(schema, "required"), i, r) {
    if (good && json_is_string(r) && !json_object_get(args, json_string_value(r))) {
      snprintf(err, cap, "tool %s: missing required argument \"%s\"", t->name, json_string_value(r));
      good = 0;
    }
  }
  const char *k;
  json_t *prop;
  json_object_foreach(json_object_get(schema, "properties"), k, prop) {
    json_t *v = json_object_get(args, k);
    const char *want = json_string_value(json_object_get(prop, "type"));
    if (!good || !v || !want) continue;
    const char *have = type_of(v);
    int match = !strcmp(want, have) || (!strcmp(want, "number") && !strcmp(have, "integer"));
    if (!match) {
      snprintf(err, cap, "tool %s: argument \"%s\" must be of type %s, not %s", t->name, k, want, have);
      good = 0;
    }
  }
  json_decref(schema);
  return good;
}

static json_t *m_tools_call(ctx *x, int *code) {
  const char *name = json_string_value(json_object_get(x->params, "name"));
  json_t *args = json_object_get(x->params, "arguments");
  if (!name) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "tools/call needs params.name");
    return NULL;
  }
  if (args && !json_is_object(args)) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "tools/call: params.arguments must be an object");
    return NULL;
  }
  const mcp_tool *t = NULL;
  for (size_t i = 0; i < x->srv->n_tools && !t; i++)
    if (!strcmp(x->srv->tools[i].name, name)) t = &x->srv->tools[i];
  if (!t) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "unknown tool: %s", name);
    return NULL;
  }
  json_t *empty = json_object();
  if (!args) args = empty;
  json_t *res = NULL;
  if (!args_ok(t, args, x->err, sizeof x->err)) {
    *code = MCP_INVALID_PARAMS;
  } else {
    int rc = t->fn(x->call, args, t->ud, &res, x->err, sizeof x->err);
    if (rc) {
      *code = rc;
      json_decref(res);
      res = NULL;
    }
  }
  json_decref(empty);
  return res;
}

/* Matches uri against a template like "x://a/{id}/b" ({name} is one or more characters
 * other than '/'). */
static int template_match(const char *tpl, const char *uri) {
  while (*tpl) {
    if (*tpl == '{') {
      const char *close = strchr(tpl, '}');
      if (!close) return 0;
      tpl = close + 1;
      size_t n = 0;
      while (uri[n] && uri[n] != '/' && (!*tpl || uri[n] != *tpl)) n++;
      if (!n) return 0;
      uri += n;
      continue;
    }
    if (*tpl++ != *uri++) return 0;
  }
  return !*uri;
}

static json_t *m_resources_list(ctx *x, int *code, int templates) {
  if (!cursor_ok(x, code)) return NULL;
  json_t *arr = json_array();
  for (size_t i = 0; i < x->srv->n_resources; i++) {
    const mcp_resource *r = &x->srv->resources[i];
    if (r->is_template != templates) continue;
    json_t *o = json_pack("{s:s, s:s}", templates ? "uriTemplate" : "uri", r->uri, "name", r->name);
    if (r->description) json_object_set_new(o, "description", json_string(r->description));
    if (r->mime) json_object_set_new(o, "mimeType", json_string(r->mime));
    json_array_append_new(arr, o);
  }
  return json_pack("{s:o}", templates ? "resourceTemplates" : "resources", arr);
}

static const mcp_resource *find_resource(ctx *x, const char *uri) {
  for (size_t i = 0; i < x->srv->n_resources; i++)
    if (!x->srv->resources[i].is_template && !strcmp(x->srv->resources[i].uri, uri)) return &x->srv->resources[i];
  for (size_t i = 0; i < x->srv->n_resources; i++)
    if (x->srv->resources[i].is_template && template_match(x->srv->resources[i].uri, uri)) return &x->srv->resources[i];
  return NULL;
}

static json_t *m_resources_read(ctx *x, int *code) {
  const char *uri = json_string_value(json_object_get(x->params, "uri"));
  if (!uri) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "resources/read needs params.uri");
    return NULL;
  }
  const mcp_resource *r = find_resource(x, uri);
  if (!r) {
    *code = MCP_NO_RESOURCE;
    snprintf(x->err, sizeof x->err, "resource not found: %s", uri);
    return NULL;
  }
  json_t *contents = NULL;
  int rc = r->fn(x->call, uri, r->ud, &contents, x->err, sizeof x->err);
  if (rc) {
    *code = rc;
    json_decref(contents);
    return NULL;
  }
  return json_pack("{s:o}", "contents", contents);
}

static json_t *m_subscribe(ctx *x, int *code, int on) {
  const char *uri = json_string_value(json_object_get(x->params, "uri"));
  if (!uri || strlen(uri) >= sizeof x->ses->subs[0]) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "params.uri must be a string under 256 bytes");
    return NULL;
  }
  if (on && !find_resource(x, uri)) {
    *code = MCP_NO_RESOURCE;
    snprintf(x->err, sizeof x->err, "resource not found: %s", uri);
    return NULL;
  }
  mcp_session *s = x->ses;
  pthread_mutex_lock(&s->mu);
  size_t i = 0;
  while (i < s->n_subs && strcmp(s->subs[i], uri)) i++;
  if (on && i == s->n_subs) {
    if (s->n_subs < MCP_MAX_SUBS) snprintf(s->subs[s->n_subs++], sizeof s->subs[0], "%s", uri);
    else {
      *code = MCP_INVALID_PARAMS;
      snprintf(x->err, sizeof x->err, "at most %d subscriptions per session", MCP_MAX_SUBS);
    }
  } else if (!on && i < s->n_subs) {
    memmove(s->subs[i], s->subs[i + 1], (s->n_subs - i - 1) * sizeof s->subs[0]);
    s->n_subs--;
  }
  pthread_mutex_unlock(&s->mu);
  return *code ? NULL : json_object();
}

static json_t *m_prompts_list(ctx *x, int *code) {
  if (!cursor_ok(x, code)) return NULL;
  json_t *arr = json_array();
  for (size_t i = 0; i < x->srv->n_prompts; i++) {
    const mcp_prompt *p = &x->srv->prompts[i];
    json_t *o = json_pack("{s:s, s:s}", "name", p->name, "description", p->description ? p->description : "");
    if (p->arguments) json_object_set_new(o, "arguments", json_loads(p->arguments, 0, NULL));
    json_array_append_new(arr, o);
  }
  return json_pack("{s:o}", "prompts", arr);
}

static json_t *m_prompts_get(ctx *x, int *code) {
  const char *name = json_string_value(json_object_get(x->params, "name"));
  json_t *args = json_object_get(x->params, "arguments");
  const mcp_prompt *p = NULL;
  for (size_t i = 0; name && i < x->srv->n_prompts && !p; i++)
    if (!strcmp(x->srv->prompts[i].name, name)) p = &x->srv->prompts[i];
  if (!p || (args && !json_is_object(args))) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, p ? "params.arguments must be an object of strings" : "unknown prompt: %s",
             name ? name : "(no name)");
    return NULL;
  }
  json_t *empty = json_object();
  if (!args) args = empty;
  json_t *decl = p->arguments ? json_loads(p->arguments, 0, NULL) : NULL, *a;
  size_t i;
  json_array_foreach(decl, i, a) {
    const char *an = json_string_value(json_object_get(a, "name"));
    if (!*code && an && json_is_true(json_object_get(a, "required")) && !json_is_string(json_object_get(args, an))) {
      *code = MCP_INVALID_PARAMS;
      snprintf(x->err, sizeof x->err, "prompt %s: missing required argument \"%s\"", p->name, an);
    }
  }
  json_decref(decl);
  json_t *res = NULL;
  if (!*code) {
    int rc = p->fn(x->call, args, p->ud, &res, x->err, sizeof x->err);
    if (rc) {
      *code = rc;
      json_decref(res);
      res = NULL;
    }
  }
  json_decref(empty);
  return res;
}

static json_t *m_set_level(ctx *x, int *code) {
  int li = level_index(json_string_value(json_object_get(x->params, "level")));
  if (li < 0) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "params.level must be one of debug, info, notice, warning, error, critical, alert, emergency");
    return NULL;
  }
  pthread_mutex_lock(&x->ses->mu);
  x->ses->log_level = li;
  pthread_mutex_unlock(&x->ses->mu);
  return json_object();
}

static json_t *m_complete(ctx *x, int *code) {
  json_t *ref = json_object_get(x->params, "ref"), *arg = json_object_get(x->params, "argument");
  const char *type = json_string_value(json_object_get(ref, "type"));
  const char *an = json_string_value(json_object_get(arg, "name")), *av = json_string_value(json_object_get(arg, "value"));
  if (!type || (strcmp(type, "ref/prompt") && strcmp(type, "ref/resource")) || !an || !av) {
    *code = MCP_INVALID_PARAMS;
    snprintf(x->err, sizeof x->err, "completion/complete needs ref {type: ref/prompt|ref/resource} and argument {name, value}");
    return NULL;
  }
  json_t *values = NULL;
  if (x->srv->complete && x->srv->complete(ref, an, av, x->srv->complete_ud, &values)) values = NULL;
  if (!values) values = json_array();
  size_t n = json_array_size(values);
  while (json_array_size(values) > 100) json_array_remove(values, json_array_size(values) - 1);
  return json_pack("{s:{s:o, s:I, s:b}}", "completion", "values", values, "total", (json_int_t)n, "hasMore", n > 100);
}

static int running_begin(mcp_session *s, const json_t *id) {
  char key[64];
  id_text(id, key, sizeof key);
  pthread_mutex_lock(&s->mu);
  int slot = -1;
  for (int i = 0; i < MCP_MAX_PENDING && slot < 0; i++)
    if (!s->running[i].used) slot = i;
  if (slot >= 0) {
    s->running[slot].used = 1;
    s->running[slot].cancelled = 0;
    snprintf(s->running[slot].id, sizeof s->running[slot].id, "%s", key);
  }
  pthread_mutex_unlock(&s->mu);
  return slot;
}

static void running_end(mcp_session *s, int slot) {
  if (slot < 0) return;
  pthread_mutex_lock(&s->mu);
  s->running[slot].used = 0;
  pthread_mutex_unlock(&s->mu);
}

static void on_notification(mcp_session *s, const char *method, json_t *params) {
  if (!strcmp(method, "notifications/initialized")) {
    pthread_mutex_lock(&s->mu);
    s->initialized = 1;
    pthread_mutex_unlock(&s->mu);
  } else if (!strcmp(method, "notifications/cancelled")) {
    char key[64];
    id_text(json_object_get(params, "requestId"), key, sizeof key);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < MCP_MAX_PENDING; i++)
      if (s->running[i].used && !strcmp(s->running[i].id, key)) s->running[i].cancelled = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
  } /* others (roots/list_changed, progress) need nothing from this server */
}

json_t *mcp_handle(mcp_server *srv, mcp_session *ses, json_t *msg, const mcp_sink *sink, int *is_init_out) {
  char err[256];
  if (is_init_out) *is_init_out = 0;
  int kind = mcp_kind(msg, err, sizeof err);
  json_t *id = json_is_object(msg) ? json_object_get(msg, "id") : NULL;
  if (!kind) return mcp_error(json_is_string(id) || json_is_integer(id) ? id : NULL, MCP_INVALID_REQUEST, err);
  const char *method = json_string_value(json_object_get(msg, "method"));
  json_t *params = json_object_get(msg, "params");
  if (kind == 3) {
    mcp_session_deliver(ses, msg);
    return NULL;
  }
  if (kind == 2) {
    on_notification(ses, method, params);
    return NULL;
  }
  json_t *empty = json_object();
  int slot = running_begin(ses, id);
  mcp_call call = {.srv = srv, .ses = ses, .sink = sink, .slot = slot};
  call.progress_token = json_object_get(json_object_get(params, "_meta"), "progressToken");
  ctx x = {.srv = srv, .ses = ses, .call = &call, .params = params ? params : empty};
  int code = 0;
  json_t *res = NULL;
  if (!strcmp(method, "initialize")) {
    res = m_initialize(&x, &code);
    if (res && is_init_out) *is_init_out = 1;
  } else if (!strcmp(method, "ping")) res = json_object();
  else if (!strcmp(method, "tools/list")) res = m_tools_list(&x, &code);
  else if (!strcmp(method, "tools/call")) res = m_tools_call(&x, &code);
  else if (!strcmp(method, "resources/list")) res = m_resources_list(&x, &code, 0);
  else if (!strcmp(method, "resources/templates/list")) res = m_resources_list(&x, &code, 1);
  else if (!strcmp(method, "resources/read")) res = m_resources_read(&x, &code);
  else if (!strcmp(method, "resources/subscribe")) res = m_subscribe(&x, &code, 1);
  else if (!strcmp(method, "resources/unsubscribe")) res = m_subscribe(&x, &code, 0);
  else if (!strcmp(method, "prompts/list")) res = m_prompts_list(&x, &code);
  else if (!strcmp(method, "prompts/get")) res = m_prompts_get(&x, &code);
  else if (!strcmp(method, "logging/setLevel")) res = m_set_level(&x, &code);
  else if (!strcmp(method, "completion/complete")) res = m_complete(&x, &code);
  else {
    code = MCP_NO_METHOD;
    snprintf(x.err, sizeof x.err, "method not found: %s", method);
  }
  running_end(ses, slot);
  json_decref(empty);
  if (res) return ok(id, res);
  if (!code) {
    code = MCP_INTERNAL;
    snprintf(x.err, sizeof x.err, "out of memory");
  }
  if (code > -32000 || code < -32768) code = MCP_INTERNAL; /* an internal error number: never leak it */
  return mcp_error(id, code, x.err[0] ? x.err : "failed");
}
