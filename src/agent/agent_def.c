/* agent/agent_def — see agent_def.h. */
#include "agent/agent_def.h"

#include <stdio.h>
#include <string.h>

#include "agent/a2a.h"
#include "core/err.h"
#include "privacy/policy.h"

static const char *const builtins[] = {"files_read", "files_write", "files_list", "http_fetch",
                                       "generate", "offers", "peers", "balance", "delegate"};
static const char *const reads[] = {"files_read", "files_list", "offers", "peers", "balance"};

int agent_builtin_known(const char *name) {
  for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
    if (!strcmp(builtins[i], name)) return 1;
  return 0;
}

int agent_builtin_idempotent(const char *name) {
  for (size_t i = 0; i < sizeof reads / sizeof *reads; i++)
    if (!strcmp(reads[i], name)) return 1;
  return 0;
}

int agent_def_lists(const json_t *def, const char *key, const char *name) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(def, key), i, v) if (json_is_string(v) && !strcmp(json_string_value(v), name)) return 1;
  return 0;
}

int64_t agent_def_int(const json_t *def, const char *key) { return (int64_t)json_integer_value(json_object_get(def, key)); }

static int name_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (!n || n > max) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return 0;
  }
  return 1;
}

static int fail(char *err, size_t cap, const char *fmt, const char *a) {
  snprintf(err, cap, fmt, a);
  return ERR_INVAL;
}

/* An integer field within [lo, hi], or its default. */
static int int_field(const json_t *in, json_t *out, const char *k, json_int_t dflt, json_int_t lo, json_int_t hi,
                     char *err, size_t cap) {
  json_t *v = json_object_get(in, k);
  if (!v || json_is_null(v)) v = json_integer(dflt);
  else if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    snprintf(err, cap, "\"%s\" must be an integer from %lld to %lld", k, (long long)lo, (long long)hi);
    return ERR_INVAL;
  } else json_incref(v);
  json_object_set_new(out, k, v);
  return 0;
}

static int string_list(const json_t *in, json_t *out, const char *k, size_t max_n, size_t max_len, char *err,
                       size_t cap) {
  json_t *v = json_object_get(in, k);
  if (!v || json_is_null(v)) {
    json_object_set_new(out, k, json_array());
    return 0;
  }
  if (!json_is_array(v) || json_array_size(v) > max_n) {
    snprintf(err, cap, "\"%s\" must be a list of at most %zu strings", k, max_n);
    return ERR_INVAL;
  }
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x) {
    if (!json_is_string(x) || !json_string_length(x) || json_string_length(x) > max_len) {
      snprintf(err, cap, "\"%s\"[%zu] must be a non-empty string of at most %zu bytes", k, i, max_len);
      return ERR_INVAL;
    }
  }
  json_object_set(out, k, v);
  return 0;
}

static int check_mcp(const json_t *in, json_t *out, char *err, size_t cap) {
  json_t *v = json_object_get(in, "mcp");
  if (!v || json_is_null(v)) {
    json_object_set_new(out, "mcp", json_array());
    return 0;
  }
  if (!json_is_array(v) || json_array_size(v) > AGENT_DEF_MAX_MCP) {
    snprintf(err, cap, "\"mcp\" must be a list of at most %d servers", AGENT_DEF_MAX_MCP);
    return ERR_INVAL;
  }
  size_t i;
  json_t *m;
  json_array_foreach(v, i, m) {
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *cmd = json_string_value(json_object_get(m, "command")), *url = json_string_value(json_object_get(m, "url"));
    if (!json_is_object(m) || !name || !name_ok(name, 32) || strstr(name, "__")) {
      snprintf(err, cap, "mcp[%zu]: \"name\" must be [A-Za-z0-9_-]{1,32} without \"__\"", i);
      return ERR_INVAL;
    }
    if (!!cmd == !!url) {
      snprintf(err, cap, "mcp server %s: give either \"command\" (stdio) or \"url\" (Streamable HTTP)", name);
      return ERR_INVAL;
    }
    if (url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
      snprintf(err, cap, "mcp server %s: \"url\" must be http:// or https://", name);
      return ERR_INVAL;
    }
    json_t *args = json_object_get(m, "args"), *env = json_object_get(m, "env"), *x;
    size_t k;
    json_array_foreach(args, k, x) if (!json_is_string(x)) return fail(err, cap, "mcp server %s: \"args\" must be strings", name);
    if (args && !json_is_array(args)) return fail(err, cap, "mcp server %s: \"args\" must be a list", name);
    if (env && !json_is_object(env)) return fail(err, cap, "mcp server %s: \"env\" must be an object of strings", name);
    const char *ek;
    json_object_foreach(env, ek, x) if (!json_is_string(x)) return fail(err, cap, "mcp server %s: \"env\" must be an object of strings", name);
  }
  json_object_set(out, "mcp", v);
  return 0;
}

/* "sell": {"price_wei": N, "price_per_1k": R?, "description": "...", "skills": [...]}: other
 * nodes may give this agent tasks, at N wei per task plus R per 1,000 tokens it uses. */
static int check_sell(const json_t *in, json_t *out, char *err, size_t cap) {
  json_t *v = json_object_get(in, "sell");
  if (!v || json_is_null(v)) return 0;
  json_t *p = json_object_get(v, "price_wei"), *d = json_object_get(v, "description");
  const char *k;
  json_t *x;
  if (!json_is_object(v)) return fail(err, cap, "%s", "\"sell\" must be an object: {\"price_wei\": N, \"description\": \"...\"}");
  json_object_foreach(v, k, x) if (strcmp(k, "price_wei") && strcmp(k, "description") && strcmp(k, "skills") &&
                                  strcmp(k, "price_per_1k"))
      return fail(err, cap, "unknown field \"%s\" in \"sell\" (price_wei, price_per_1k, description, skills)", k);
  json_t *t = json_object_get(v, "price_per_1k");
  if (t && (!json_is_integer(t) || json_integer_value(t) < 0))
    return fail(err, cap, "%s", "\"sell.price_per_1k\" must be an integer >= 0 (wei per 1,000 tokens the task uses)");
  if (!json_is_integer(p) || json_integer_value(p) < 0)
    return fail(err, cap, "%s", "\"sell.price_wei\" must be an integer >= 0 (wei per task)");
  if (d && (!json_is_string(d) || json_string_length(d) > AGENT_DEF_MAX_SELL_DESC ||
            strlen(json_string_value(d)) != json_string_length(d)))
    return fail(err, cap, "%s", "\"sell.description\" must be a string of at most 1024 bytes");
  json_t *sk = json_object_get(v, "skills");
  size_t i;
  if (sk && (!json_is_array(sk) || json_array_size(sk) > A2A_MAX_SKILLS))
    return fail(err, cap, "%s", "\"sell.skills\" must be a list of at most 4 skills");
  json_array_foreach(sk, i, x) {
    const char *s = json_string_value(x);
    if (!s || strlen(s) != json_string_length(x) || !a2a_skill_ok(s))
      return fail(err, cap, "%s", "\"sell.skills\" entries must be skills, [A-Za-z0-9_-]{1,31}");
  }
  json_object_set_new(out, "sell", json_pack("{s:O, s:s, s:o}", "price_wei", p, "description", d ? json_string_value(d) : "",
                                             "skills", sk ? json_incref(sk) : json_array()));
  if (t && json_integer_value(t)) json_object_set(json_object_get(out, "sell"), "price_per_1k", t);
  return 0;
}

int agent_def_check(const json_t *in, json_t **out_def, char *err, size_t cap) {
  *out_def = NULL;
  if (!json_is_object(in)) return fail(err, cap, "%s", "an agent definition is a JSON object");
  static const char *const known[] = {"name", "instructions", "model", "tools", "approve", "idempotent", "max_steps",
                                      "max_tokens", "temperature", "seed", "tool_choice", "max_wei_task", "max_wei_day",
                                      "fetch_allow", "mcp", "sell", "delegate_allow", "privacy"};
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)in, k, v) {
    int ok = 0;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) ok |= !strcmp(known[i], k);
    if (!ok) return fail(err, cap, "unknown field \"%s\" in the agent definition", k);
  }
  const char *name = json_string_value(json_object_get(in, "name"));
  const char *model = json_string_value(json_object_get(in, "model"));
  const char *instr = json_string_value(json_object_get(in, "instructions"));
  if (!name || !name_ok(name, 63)) return fail(err, cap, "%s", "\"name\" must be [A-Za-z0-9_-]{1,63}");
  if (!model || !*model || strlen(model) > 127) return fail(err, cap, "%s", "\"model\" must be a model name or sha256 (at most 127 bytes)");
  if (json_object_get(in, "instructions") && (!instr || strlen(instr) > 65536))
    return fail(err, cap, "%s", "\"instructions\" must be a string of at most 64 KiB");
  json_t *o = json_pack("{s:s, s:s, s:s}", "name", name, "model", model, "instructions", instr ? instr : "");
  int rc = 0;
  if (!rc) rc = string_list(in, o, "tools", AGENT_DEF_MAX_TOOLS, 96, err, cap);
  if (!rc) rc = string_list(in, o, "approve", AGENT_DEF_MAX_TOOLS, 96, err, cap);
  if (!rc) rc = string_list(in, o, "idempotent", AGENT_DEF_MAX_TOOLS, 96, err, cap);
  if (!rc) rc = string_list(in, o, "fetch_allow", 32, 1024, err, cap);
  if (!rc) rc = string_list(in, o, "delegate_allow", 32, 63, err, cap);
  if (!rc) rc = int_field(in, o, "max_steps", 8, 1, 100, err, cap);
  if (!rc) rc = int_field(in, o, "max_tokens", 256, 1, 8192, err, cap);
  if (!rc) rc = int_field(in, o, "max_wei_task", 0, 0, INT64_MAX, err, cap);
  if (!rc) rc = int_field(in, o, "max_wei_day", 0, 0, INT64_MAX, err, cap);
  if (!rc) rc = check_mcp(in, o, err, cap);
  if (!rc) rc = check_sell(in, o, err, cap);
  if (!rc) {
    json_t *t = json_object_get(in, "temperature");
    if (t && (!json_is_number(t) || json_number_value(t) < 0 || json_number_value(t) > 2))
      rc = fail(err, cap, "%s", "\"temperature\" must be a number from 0 to 2");
    else json_object_set_new(o, "temperature", json_real(t ? json_number_value(t) : 0.7));
  }
  if (!rc && json_object_get(in, "privacy")) {
    json_t *pv = json_object_get(in, "privacy");
    if (!json_is_string(pv) || policy_parse(json_string_value(pv), json_string_length(pv)) < 0)
      rc = fail(err, cap, "%s", "\"privacy\" must be \"allow\", \"redact\" or \"local-only\"");
    else json_object_set_new(o, "privacy",
                             json_string(policy_name((policy_level)policy_parse(json_string_value(pv),
                                                                                  json_string_length(pv)))));
  }
  if (!rc && json_object_get(in, "seed")) {
    json_t *sd = json_object_get(in, "seed");
    if (!json_is_integer(sd) || json_integer_value(sd) < 0) rc = fail(err, cap, "%s", "\"seed\" must be an integer >= 0");
    else json_object_set(o, "seed", sd);
  }
  if (!rc) {
    const char *tc = json_string_value(json_object_get(in, "tool_choice"));
    if (json_object_get(in, "tool_choice") && (!tc || (strcmp(tc, "auto") && strcmp(tc, "required"))))
      rc = fail(err, cap, "%s", "\"tool_choice\" must be \"auto\" or \"required\"");
    else json_object_set_new(o, "tool_choice", json_string(tc ? tc : "auto"));
  }
  /* each tool: a built-in, "mcp:SERVER" or "SERVER__TOOL" with a configured server */
  size_t i;
  json_array_foreach(json_object_get(o, "tools"), i, v) {
    const char *t = json_string_value(v), *sep = strstr(t, "__");
    if (rc) break;
    char server[40] = "";
    if (!strncmp(t, "mcp:", 4)) snprintf(server, sizeof server, "%.32s", t + 4);
    else if (sep) snprintf(server, sizeof server, "%.*s", (int)(sep - t < 32 ? sep - t : 32), t);
    else if (!agent_builtin_known(t)) {
      rc = fail(err, cap, "unknown tool \"%s\" (built-ins: files_read, files_write, files_list, http_fetch, generate, "
                          "offers, peers, balance, delegate; MCP tools as mcp:SERVER or SERVER__TOOL)", t);
      break;
    }
    if (server[0]) {
      int found = 0;
      size_t j;
      json_t *m;
      json_array_foreach(json_object_get(o, "mcp"), j, m) found |= !strcmp(json_string_value(json_object_get(m, "name")), server);
      if (!found) rc = fail(err, cap, "tool \"%s\" names an MCP server the definition does not configure", t);
    }
  }
  if (rc) {
    json_decref(o);
    return rc;
  }
  *out_def = o;
  return 0;
}
