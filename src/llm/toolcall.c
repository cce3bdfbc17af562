/* llm/toolcall — tool calls: layouts, grammar, parsing; see toolcall.h. */
#include "llm/toolcall.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "llm/jsonschema.h"

toolcall_format toolcall_detect(const char *tmpl, size_t len) {
  if (!tmpl || !len) return TOOLCALL_HERMES;
  if (memmem(tmpl, len, "<tool_call>", 11)) return TOOLCALL_HERMES;
  if (memmem(tmpl, len, "<|python_tag|>", 14) || (memmem(tmpl, len, "<|start_header_id|>", 19) &&
                                                   memmem(tmpl, len, "\"parameters\"", 12)))
    return TOOLCALL_LLAMA3;
  return TOOLCALL_HERMES;
}

const char *toolcall_format_name(toolcall_format f) { return f == TOOLCALL_LLAMA3 ? "llama3" : "hermes"; }

static int name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n < 1 || n > TOOLCALL_MAX_NAME) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
  return 1;
}

static const json_t *fn_of(const json_t *tool) { return json_object_get(tool, "function"); }
static const char *fn_name(const json_t *tool) { return json_string_value(json_object_get(fn_of(tool), "name")); }

/* A function's parameters schema; a function without any takes an object (OpenAI). */
static json_t *params_of(const json_t *tool, int *owned) {
  json_t *p = json_object_get(fn_of(tool), "parameters");
  *owned = 0;
  if (p) return p;
  *owned = 1;
  return json_pack("{s:s}", "type", "object");
}

int toolcall_check_tools(const json_t *tools, char *err, size_t cap) {
  if (!json_is_array(tools) || json_array_size(tools) < 1)
    return err_set(err, cap, ERR_INVAL, "'tools' must be a non-empty array of functions");
  if (json_array_size(tools) > TOOLCALL_MAX_TOOLS)
    return err_set(err, cap, ERR_INVAL, "at most %d tools", TOOLCALL_MAX_TOOLS);
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!type || strcmp(type, "function") || !json_is_object(fn_of(t)))
      return err_set(err, cap, ERR_INVAL, "tools[%zu] must be {\"type\": \"function\", \"function\": {...}}", i);
    const char *name = fn_name(t);
    if (!name_ok(name))
      return err_set(err, cap, ERR_INVAL, "tools[%zu].function.name must be 1-64 letters, digits, '_' or '-'", i);
    for (size_t k = 0; k < i; k++)
      if (!strcmp(fn_name(json_array_get(tools, k)), name))
        return err_set(err, cap, ERR_INVAL, "two tools are named '%s'", name);
    json_t *d = json_object_get(fn_of(t), "description");
    if (d && !json_is_string(d)) return err_set(err, cap, ERR_INVAL, "tools[%zu].function.description must be a string", i);
    json_t *p = json_object_get(fn_of(t), "parameters");
    if (p && !json_is_object(p)) return err_set(err, cap, ERR_INVAL, "tools[%zu].function.parameters must be a JSON Schema object", i);
    int owned;
    json_t *schema = params_of(t, &owned);
    char *g = NULL, why[256] = "";
    int rc = jsonschema_to_gbnf(schema, "chk", &g, why, sizeof why);
    free(g);
    if (owned) json_decref(schema);
    if (rc) return err_set(err, cap, rc == ERR_UNSUPPORTED ? ERR_UNSUPPORTED : ERR_INVAL, "tool '%s': %s", name, why);
  }
  return 0;
}

int toolcall_check_choice(const json_t *choice, const json_t *tools, char *out, size_t out_cap, char *err, size_t cap) {
  snprintf(out, out_cap, "auto");
  if (!choice || json_is_null(choice)) return 0;
  if (json_is_string(choice)) {
    const char *s = json_string_value(choice);
    if (strcmp(s, "auto") && strcmp(s, "none") && strcmp(s, "required"))
      return err_set(err, cap, ERR_INVAL, "tool_choice must be \"auto\", \"none\", \"required\" or a function");
    if (!strcmp(s, "required") && !tools)
      return err_set(err, cap, ERR_INVAL, "tool_choice \"required\" needs tools");
    snprintf(out, out_cap, "%s", s);
    return 0;
  }
  const char *name = json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
  if (!json_is_object(choice) || !name)
    return err_set(err, cap, ERR_INVAL, "tool_choice must be a string or {\"type\": \"function\", \"function\": {\"name\": ...}}");
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) if (!strcmp(fn_name(t), name)) {
      snprintf(out, out_cap, "%s", name);
      return 0;
    }
  return err_set(err, cap, ERR_INVAL, "tool_choice names '%.64s', which is not among the tools", name);
}

int toolcall_grammar(toolcall_format f, const json_t *tools, const char *choice, int parallel, char **out, char *err,
                     size_t cap) {
  *out = NULL;
  if (!choice || !strcmp(choice, "auto") || !strcmp(choice, "none") || !json_is_array(tools)) return 0;
  int named = strcmp(choice, "required") != 0;
  buf g, fns;
  buf_init(&g);
  buf_init(&fns);
  int rc = 0, n = 0;
  size_t i;
  json_t *t;
  json_array_foreach(tools, i, t) {
    const char *name = fn_name(t);
    if (!name_ok(name)) { rc = err_set(err, cap, ERR_INVAL, "tools[%zu] has a bad name", i); goto fail; }
    if (named && strcmp(name, choice)) continue;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "t%zu-args", i);
    int owned;
    json_t *schema = params_of(t, &owned);
    char *args = NULL;
    rc = jsonschema_to_gbnf_ex(schema, prefix, JSONSCHEMA_COMPACT, &args, err, cap);
    if (owned) json_decref(schema);
    if (rc) goto fail;
    buf_printf(&fns, "%s tc-f%zu", n ? " |" : "", i);
    buf_printf(&g, "tc-f%zu ::= \"\\\"%s\\\", \\\"%s\\\": \" %s\n%s\n", i, name,
               f == TOOLCALL_LLAMA3 ? "parameters" : "arguments", prefix, args);
    free(args);
    n++;
  }
  if (!n) { rc = err_set(err, cap, ERR_INVAL, "no tool named '%.64s'", choice); goto fail; }
  buf_append(&fns, "", 1);
  buf_append(&g, "", 1);
  buf r;
  buf_init(&r);
  if (f == TOOLCALL_LLAMA3) {
    buf_printf(&r, "root ::= \"{\\\"name\\\": \" tc-fn \"}\"\n");
  } else {
    if (parallel && !named) buf_printf(&r, "root ::= tc-call (\"\\n\" tc-call){0,%d}\n", TOOLCALL_MAX_PARALLEL - 1);
    else buf_printf(&r, "root ::= tc-call\n");
    buf_printf(&r, "tc-call ::= \"<tool_call>\\n{\\\"name\\\": \" tc-fn \"}\\n</tool_call>\"\n");
  }
  buf_printf(&r, "tc-fn ::=%s\n%s", (const char *)fns.ptr, (const char *)g.ptr);
  if (buf_append(&r, "", 1)) { buf_deinit(&r); rc = ERR_NOMEM; goto fail; }
  *out = (char *)r.ptr;
  buf_deinit(&g);
  buf_deinit(&fns);
  return 0;
fail:
  buf_deinit(&g);
  buf_deinit(&fns);
  return rc;
}

/* One call object {name, arguments|parameters} → {name, arguments (object)}, or NULL. */
static json_t *call_of(json_t *o) {
  const char *name = json_string_value(json_object_get(o, "name"));
  json_t *args = json_object_get(o, "arguments");
  if (!args) args = json_object_get(o, "parameters");
  if (!name || !name_ok(name)) return NULL;
  json_t *a = NULL;
  if (json_is_object(args)) a = json_incref(args);
  else if (json_is_string(args)) {
    a = json_loads(json_string_value(args), JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(a)) { json_decref(a); return NULL; }
  } else if (!args) a = json_object();
  else return NULL;
  return json_pack("{s:s, s:o}", "name", name, "arguments", a);
}

static size_t skip_ws(const char *s, size_t i, size_t len) {
  while (i < len && isspace((unsigned char)s[i])) i++;
  return i;
}

static char *trimmed(const char *s, size_t len) {
  size_t a = skip_ws(s, 0, len);
  while (len > a && isspace((unsigned char)s[len - 1])) len--;
  return len > a ? strndup(s + a, len - a) : NULL;
}

int toolcall_parse(const char *text, size_t len, json_t **calls_out, char **content_out) {
  *calls_out = NULL;
  *content_out = NULL;
  json_t *calls = json_array();
  buf rest;
  buf_init(&rest);
  if (!calls) return ERR_NOMEM;
  size_t pos = 0;
  const char *open = "<tool_call>", *close = "</tool_call>";
  for (;;) {
    const char *o = memmem(text + pos, len - pos, open, strlen(open));
    if (!o) break;
    size_t start = (size_t)(o - text), j = skip_ws(text, start + strlen(open), len);
    json_error_t je;
    json_t *v = json_loadb(text + j, len - j, JSON_DISABLE_EOF_CHECK | JSON_REJECT_DUPLICATES, &je);
    json_t *c = v ? call_of(v) : NULL;
    json_decref(v);
    if (!c) break; /* not a call: the rest is text */
    json_array_append_new(calls, c);
    buf_append(&rest, text + pos, start - pos);
    size_t after = skip_ws(text, j + (size_t)je.position, len);
    if (len - after >= strlen(close) && !memcmp(text + after, close, strlen(close))) after += strlen(close);
    pos = after;
  }
  buf_append(&rest, text + pos, len - pos);
  if (json_array_size(calls) == 0) { /* the whole text as one call or an array of calls */
    const char *s = text;
    size_t n = len, a = skip_ws(s, 0, n);
    if (n - a >= 14 && !memcmp(s + a, "<|python_tag|>", 14)) a += 14;
    json_t *v = (a < n && (s[a] == '{' || s[a] == '[')) ? json_loadb(s + a, n - a, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (json_is_object(v)) {
      json_t *c = call_of(v);
      if (c) json_array_append_new(calls, c);
    } else if (json_is_array(v) && json_array_size(v) <= TOOLCALL_MAX_PARALLEL) {
      size_t i;
      json_t *x;
      json_array_foreach(v, i, x) {
        json_t *c = call_of(x);
        if (!c) { json_array_clear(calls); break; }
        json_array_append_new(calls, c);
      }
    }
    json_decref(v);
    if (json_array_size(calls)) buf_reset(&rest);
  }
  if (json_array_size(calls)) *calls_out = calls;
  else json_decref(calls);
  *content_out = trimmed(rest.ptr ? (const char *)rest.ptr : "", rest.len);
  buf_deinit(&rest);
  return 0;
}

/* Writes one hermes call block for an OpenAI tool_calls entry. */
static void write_call(buf *b, const json_t *tc) {
  const json_t *fn = json_object_get(tc, "function");
  const char *name = json_string_value(json_object_get(fn, "name"));
  json_t *args = json_object_get(fn, "arguments");
  char *a = json_is_string(args) ? strdup(json_string_value(args))
                                 : json_dumps(args ? args : json_object_get(tc, "arguments"), JSON_COMPACT | JSON_ENCODE_ANY);
  json_t *nm = json_string(name ? name : "");
  char *n = json_dumps(nm, JSON_ENCODE_ANY);
  json_decref(nm);
  buf_printf(b, "<tool_call>\n{\"name\": %s, \"arguments\": %s}\n</tool_call>", n ? n : "\"\"", a ? a : "{}");
  free(a);
  free(n);
}

static const char *content_of(const json_t *m) {
  const char *c = json_string_value(json_object_get(m, "content"));
  return c ? c : "";
}

int toolcall_flatten(const json_t *messages, const json_t *tools, json_t **out) {
  json_t *flat = json_array();
  buf b;
  buf_init(&b);
  if (!flat) return ERR_NOMEM;
  size_t i = 0, n = json_array_size(messages);
  const json_t *first = json_array_get(messages, 0);
  const char *r0 = json_string_value(json_object_get(first, "role"));
  if ((r0 && !strcmp(r0, "system")) || json_array_size(tools)) {
    if (r0 && !strcmp(r0, "system")) {
      buf_append_str(&b, content_of(first));
      i = 1;
    }
    if (json_array_size(tools)) {
      if (b.len) buf_append_str(&b, "\n\n");
      buf_append_str(&b, "You may call functions. Their descriptions, one JSON object per line, are inside <tools></tools>:\n<tools>\n");
      size_t k;
      json_t *t;
      json_array_foreach(tools, k, t) {
        char *s = json_dumps(t, JSON_COMPACT);
        if (s) buf_printf(&b, "%s\n", s);
        free(s);
      }
      buf_append_str(&b, "</tools>\nTo call one, answer with its name and arguments as a JSON object inside <tool_call></tool_call>:\n"
                         "<tool_call>\n{\"name\": <function name>, \"arguments\": <arguments object>}\n</tool_call>");
    }
    json_array_append_new(flat, json_pack("{s:s, s:s%}", "role", "system", "content", b.ptr ? (const char *)b.ptr : "", b.len));
  }
  for (; i < n; i++) {
    const json_t *m = json_array_get(messages, i);
    const char *role = json_string_value(json_object_get(m, "role"));
    if (!role) continue;
    buf_reset(&b);
    if (!strcmp(role, "tool")) { /* results, consecutive ones in one turn */
      for (; i < n; i++) {
        const json_t *t = json_array_get(messages, i);
        const char *tr = json_string_value(json_object_get(t, "role"));
        if (!tr || strcmp(tr, "tool")) break;
        buf_printf(&b, "%s<tool_response>\n%s\n</tool_response>", b.len ? "\n" : "", content_of(t));
      }
      i--;
      role = "user";
    } else if (!strcmp(role, "assistant")) {
      buf_append_str(&b, content_of(m));
      size_t k;
      json_t *tc;
      json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
        if (b.len) buf_append_str(&b, "\n");
        write_call(&b, tc);
      }
    } else {
      buf_append_str(&b, content_of(m));
    }
    json_array_append_new(flat, json_pack("{s:s, s:s%}", "role", role, "content", b.ptr ? (const char *)b.ptr : "", b.len));
  }
  buf_deinit(&b);
  *out = flat;
  return 0;
}

/* A content value as one string (text parts joined); NULL with err on anything else. */
static json_t *content_text(const json_t *c, size_t i, int *rc, char *err, size_t cap) {
  if (json_is_string(c)) return json_stringn(json_string_value(c), json_string_length(c));
  if (!json_is_array(c)) {
    *rc = err_set(err, cap, ERR_INVAL, "messages[%zu].content must be a string or an array of text parts", i);
    return NULL;
  }
  buf b;
  buf_init(&b);
  size_t k;
  json_t *part;
  json_array_foreach(c, k, part) {
    const char *type = json_string_value(json_object_get(part, "type"));
    const char *text = json_string_value(json_object_get(part, "text"));
    if (type && strcmp(type, "text")) {
      buf_deinit(&b);
      *rc = err_set(err, cap, ERR_UNSUPPORTED, "messages[%zu].content[%zu]: '%.32s' parts are not supported (text only)", i,
                    k, type);
      return NULL;
    }
    if (!text) {
      buf_deinit(&b);
      *rc = err_set(err, cap, ERR_INVAL, "messages[%zu].content[%zu] must be {\"type\": \"text\", \"text\": ...}", i, k);
      return NULL;
    }
    buf_append(&b, text, json_string_length(json_object_get(part, "text")));
  }
  json_t *s = json_stringn(b.ptr ? (const char *)b.ptr : "", b.len);
  buf_deinit(&b);
  return s;
}

/* Copies the tool_calls of message i, arguments parsed. */
static json_t *copy_calls(const json_t *calls, size_t i, size_t *bytes, int *rc, char *err, size_t cap) {
  if (!json_is_array(calls) || json_array_size(calls) > TOOLCALL_MAX_PARALLEL) {
    *rc = err_set(err, cap, ERR_INVAL, "messages[%zu].tool_calls must be an array of at most %d calls", i,
                  TOOLCALL_MAX_PARALLEL);
    return NULL;
  }
  json_t *out = json_array();
  size_t k;
  json_t *tc;
  json_array_foreach(calls, k, tc) {
    const json_t *fn = json_object_get(tc, "function");
    const char *name = json_string_value(json_object_get(fn, "name"));
    json_t *args = json_object_get(fn, "arguments"), *a = NULL;
    const char *id = json_string_value(json_object_get(tc, "id"));
    if (!name_ok(name) || (id && strlen(id) > 128)) {
      json_decref(out);
      *rc = err_set(err, cap, ERR_INVAL, "messages[%zu].tool_calls[%zu] needs function.name (and an id of at most 128 bytes)", i, k);
      return NULL;
    }
    if (json_is_string(args)) {
      *bytes += json_string_length(args);
      a = json_loadb(json_string_value(args), json_string_length(args), JSON_REJECT_DUPLICATES, NULL);
      if (!json_is_object(a)) { /* not an object: passed on as the text it is */
        json_decref(a);
        a = json_stringn(json_string_value(args), json_string_length(args));
      }
    } else if (json_is_object(args)) {
      a = json_deep_copy(args);
    } else if (!args) {
      a = json_object();
    } else {
      json_decref(out);
      *rc = err_set(err, cap, ERR_INVAL, "messages[%zu].tool_calls[%zu].function.arguments must be a JSON string", i, k);
      return NULL;
    }
    json_t *c = json_pack("{s:s, s:{s:s, s:o}}", "type", "function", "function", "name", name, "arguments", a);
    if (id) json_object_set_new(c, "id", json_string(id));
    json_array_append_new(out, c);
  }
  return out;
}

int toolcall_check_messages(const json_t *in, size_t max_messages, size_t max_bytes, json_t **out, char *err,
                            size_t cap) {
  *out = NULL;
  if (!json_is_array(in) || json_array_size(in) == 0)
    return err_set(err, cap, ERR_INVAL, "'messages' must be a non-empty array");
  if (json_array_size(in) > max_messages) return err_set(err, cap, ERR_INVAL, "too many messages (at most %zu)", max_messages);
  json_t *res = json_array();
  if (!res) return ERR_NOMEM;
  size_t i, total = 0;
  json_t *m;
  int rc = 0;
  json_array_foreach(in, i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    if (!role || (strcmp(role, "system") && strcmp(role, "developer") && strcmp(role, "user") &&
                  strcmp(role, "assistant") && strcmp(role, "tool"))) {
      rc = err_set(err, cap, ERR_INVAL, "messages[%zu] needs a role: system, user, assistant or tool", i);
      goto fail;
    }
    json_t *c = json_object_get(m, "content"), *calls = json_object_get(m, "tool_calls");
    int is_asst = !strcmp(role, "assistant"), has_calls = is_asst && calls && !json_is_null(calls);
    json_t *o = json_pack("{s:s}", "role", !strcmp(role, "developer") ? "system" : role);
    json_array_append_new(res, o);
    if ((!c || json_is_null(c)) && has_calls) json_object_set_new(o, "content", json_null());
    else {
      json_t *t = content_text(c, i, &rc, err, cap);
      if (!t) goto fail;
      total += json_string_length(t);
      if (memchr(json_string_value(t), 0, json_string_length(t))) {
        json_decref(t);
        rc = err_set(err, cap, ERR_INVAL, "messages[%zu]: NUL byte in content", i);
        goto fail;
      }
      json_object_set_new(o, "content", t);
    }
    if (has_calls) {
      json_t *cc = copy_calls(calls, i, &total, &rc, err, cap);
      if (!cc) goto fail;
      json_object_set_new(o, "tool_calls", cc);
    }
    const char *tcid = json_string_value(json_object_get(m, "tool_call_id"));
    if (!strcmp(role, "tool") && tcid) {
      if (strlen(tcid) > 128) { rc = err_set(err, cap, ERR_INVAL, "messages[%zu].tool_call_id is too long", i); goto fail; }
      json_object_set_new(o, "tool_call_id", json_string(tcid));
    }
    const char *name = json_string_value(json_object_get(m, "name"));
    if (name && strlen(name) <= TOOLCALL_MAX_NAME) json_object_set_new(o, "name", json_string(name));
    if (total > max_bytes) {
      rc = err_set(err, cap, ERR_TOOBIG, "the messages are larger than %zu bytes", max_bytes);
      goto fail;
    }
  }
  *out = res;
  return 0;
fail:
  json_decref(res);
  return rc ? rc : ERR_NOMEM;
}
