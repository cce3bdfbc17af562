/* agent/agent_tools — see agent_tools.h. */
#include "agent/agent_tools.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_def.h"
#include "core/buf.h"
#include "core/err.h"

#define READ_MAX (64 * 1024)
#define WRITE_MAX (1024 * 1024)
#define FETCH_MAX (1024 * 1024)
#define LIST_MAX 200

int agent_path_ok(const char *rel) {
  size_t n = strlen(rel), seg = 0;
  if (!n || n > 200 || rel[0] == '/') return 0;
  for (size_t i = 0; i <= n; i++) {
    char c = rel[i];
    if (c == '/' || c == 0) {
      if (!seg) return 0;                                       /* empty segment */
      if ((seg == 1 && rel[i - 1] == '.') || (seg == 2 && rel[i - 1] == '.' && rel[i - 2] == '.')) return 0;
      seg = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
    seg++;
  }
  return 1;
}

/* Regex-escapes an allowlist prefix for a JSON Schema pattern. */
static void escape_rx(buf *b, const char *s) {
  for (; *s; s++) {
    if (strchr("\\^$.|?*+()[]{}/", *s)) buf_append(b, "\\", 1);
    buf_append(b, s, 1);
  }
}

json_t *agent_builtin_specs(const json_t *def) {
  json_t *out = json_array();
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(def, "tools"), i, v) {
    const char *name = json_string_value(v);
    const char *desc = NULL, *schema = NULL;
    char *owned = NULL;
    if (!strcmp(name, "files_read")) {
      desc = "Read a text file from your own folder.";
      schema = "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$\"}},\"required\":[\"path\"],\"additionalProperties\":false}";
    } else if (!strcmp(name, "files_write")) {
      desc = "Write a text file in your own folder (replacing it).";
      schema = "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$\"},"
               "\"content\":{\"type\":\"string\",\"maxLength\":8000}},\"required\":[\"path\",\"content\"],\"additionalProperties\":false}";
    } else if (!strcmp(name, "files_list")) {
      desc = "List the files in your own folder.";
      schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
    } else if (!strcmp(name, "http_fetch")) {
      desc = "Fetch a web page (GET) from an address you are allowed to read.";
      buf b;
      buf_init(&b);
      buf_append_str(&b, "^(");
      size_t k;
      json_t *p;
      json_array_foreach(json_object_get(def, "fetch_allow"), k, p) {
        if (k) buf_append_str(&b, "|");
        escape_rx(&b, json_string_value(p));
      }
      buf_append_str(&b, ")[A-Za-z0-9/._~%?=&-]{0,256}$");
      buf_append(&b, "", 1);
      json_t *s = json_pack("{s:s, s:b, s:{s:{s:s, s:s}}, s:[s]}", "type", "object", "additionalProperties", 0, "properties", "url", "type", "string",
                            "pattern", json_array_size(json_object_get(def, "fetch_allow")) ? (const char *)b.ptr : "^$",
                            "required", "url");
      owned = json_dumps(s, JSON_COMPACT);
      json_decref(s);
      buf_deinit(&b);
      schema = owned;
    } else if (!strcmp(name, "generate")) {
      desc = "Ask a language model (this node's, or one bought from the network) to continue a prompt.";
      schema = "{\"type\":\"object\",\"properties\":{\"model\":{\"type\":\"string\"},\"prompt\":{\"type\":\"string\"},"
               "\"max_tokens\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1024}},\"required\":[\"model\",\"prompt\"],\"additionalProperties\":false}";
    } else if (!strcmp(name, "offers")) {
      desc = "List the models the network sells, with prices.";
      schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
    } else if (!strcmp(name, "peers")) {
      desc = "List this node's peers.";
      schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
    } else if (!strcmp(name, "delegate")) {
      desc = "Give a task to another owner's agent on the network (paid from your budget); returns its answer.";
      json_t *names = json_object_get(def, "delegate_allow");
      json_t *ag = json_array_size(names) ? json_pack("{s:s, s:O}", "type", "string", "enum", names)
                                          : json_pack("{s:s, s:s}", "type", "string", "pattern", "^[A-Za-z0-9_-]{1,63}$");
      json_t *s = json_pack("{s:s, s:{s:o, s:{s:s, s:i}}, s:[s, s], s:b}", "type", "object", "properties", "agent", ag,
                            "task", "type", "string", "maxLength", 4000, "required", "agent", "task",
                            "additionalProperties", 0);
      owned = json_dumps(s, JSON_COMPACT);
      json_decref(s);
      schema = owned;
    } else if (!strcmp(name, "balance")) {
      desc = "Show this node's wallet balance and payment channels.";
      schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}";
    }
    if (desc) {
      json_t *params = json_loads(schema, 0, NULL);
      json_array_append_new(out, json_pack("{s:s, s:{s:s, s:s, s:o}}", "type", "function", "function", "name", name,
                                           "description", desc, "parameters", params ? params : json_object()));
    }
    free(owned);
  }
  return out;
}

static char *fmt(const char *f, const char *a) {
  size_t n = strlen(f) + (a ? strlen(a) : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, f, a ? a : "");
  return s;
}

/* The agent's folder, created 0700 when missing. */
static int agent_dir(const agent_tools_env *env, const json_t *def, char *out, size_t cap) {
  mkdir(env->agents_dir, 0700);
  snprintf(out, cap, "%s/%s", env->agents_dir, json_string_value(json_object_get(def, "name")));
  if (mkdir(out, 0700) && errno != EEXIST) return ERR_INVAL;
  return 0;
}

static int files_read(const agent_tools_env *env, const json_t *def, json_t *args, char **text, int *is_error) {
  const char *rel = json_string_value(json_object_get(args, "path"));
  char dir[1200], path[1500];
  if (!rel || !agent_path_ok(rel) || agent_dir(env, def, dir, sizeof dir)) {
    *text = fmt("not a path in your folder: %s", rel);
    *is_error = 1;
    return 0;
  }
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    *text = fmt("no such file: %s", rel);
    *is_error = 1;
    return 0;
  }
  char *b = malloc(READ_MAX + 1);
  ssize_t n = b ? read(fd, b, READ_MAX) : -1;
  close(fd);
  if (n < 0) {
    free(b);
    *text = fmt("cannot read %s", rel);
    *is_error = 1;
    return 0;
  }
  b[n] = 0;
  *text = b;
  return 0;
}

static int files_write(const agent_tools_env *env, const json_t *def, json_t *args, char **text, int *is_error) {
  const char *rel = json_string_value(json_object_get(args, "path"));
  const char *content = json_string_value(json_object_get(args, "content"));
  char dir[1200], path[1500], tmp[1600];
  if (!rel || !agent_path_ok(rel) || strchr(rel, '/') || !content || agent_dir(env, def, dir, sizeof dir)) {
    *text = fmt("files_write needs a file name in your folder (%s) and a content", rel);
    *is_error = 1;
    return 0;
  }
  size_t len = json_string_length(json_object_get(args, "content"));
  if (len > WRITE_MAX) {
    *text = fmt("%s: at most 1 MiB per file", rel);
    *is_error = 1;
    return 0;
  }
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, rel);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  int ok = fd >= 0 && write(fd, content, len) == (ssize_t)len && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  ok = ok && rename(tmp, path) == 0;
  if (!ok) {
    unlink(tmp);
    *text = fmt("cannot write %s (is the disk full?)", rel);
    *is_error = 1;
    return 0;
  }
  char m[300];
  snprintf(m, sizeof m, "wrote %zu bytes to %s", len, rel);
  *text = strdup(m);
  return 0;
}

static int files_list(const agent_tools_env *env, const json_t *def, char **text) {
  char dir[1200];
  agent_dir(env, def, dir, sizeof dir);
  DIR *d = opendir(dir);
  buf b;
  buf_init(&b);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)) && n < LIST_MAX) {
    if (e->d_name[0] == '.') continue;
    buf_append_str(&b, e->d_name);
    buf_append_str(&b, "\n");
    n++;
  }
  if (d) closedir(d);
  if (!n) buf_append_str(&b, "(no files)");
  buf_append(&b, "", 1);
  *text = (char *)b.ptr;
  return 0;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
  buf *b = ud;
  if (b->len + sz * n > FETCH_MAX) return 0; /* over the cap: stop */
  buf_append(b, p, sz * n);
  return sz * n;
}

static int http_fetch(const json_t *def, json_t *args, char **text, int *is_error) {
  const char *url = json_string_value(json_object_get(args, "url"));
  int ok = 0;
  size_t i;
  json_t *p;
  json_array_foreach(json_object_get(def, "fetch_allow"), i, p) {
    const char *pre = json_string_value(p);
    if (url && !strncmp(url, pre, strlen(pre))) ok = 1;
  }
  if (!ok) {
    *text = fmt("not allowed to fetch %s (not under this agent's fetch_allow)", url);
    *is_error = 1;
    return 0;
  }
  CURL *c = curl_easy_init();
  buf b;
  buf_init(&b);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) {
    char m[400];
    snprintf(m, sizeof m, "fetching %.200s failed: %s", url, curl_easy_strerror(rc));
    *text = strdup(m);
    *is_error = 1;
    buf_deinit(&b);
    return 0;
  }
  char head[64];
  snprintf(head, sizeof head, "HTTP %ld\n", status);
  buf out;
  buf_init(&out);
  buf_append_str(&out, head);
  for (size_t k = 0; k < b.len; k++) buf_append(&out, b.ptr[k] ? (const char *)&b.ptr[k] : " ", 1); /* no NULs */
  buf_append(&out, "", 1);
  buf_deinit(&b);
  *text = (char *)out.ptr;
  *is_error = status >= 400;
  return 0;
}

static int node_json(const agent_tools_env *env, const char *method, json_t *params, char **text, int *is_error,
                     json_t **keep) {
  json_t *res = NULL;
  char err[512] = "";
  if (!env->node_call || env->node_call(env->ud, method, params, 600000, &res, err, sizeof err)) {
    *text = fmt("the node could not answer: %s", err);
    *is_error = 1;
    return 0;
  }
  *text = json_dumps(res, JSON_COMPACT);
  if (keep) *keep = res;
  else json_decref(res);
  return 0;
}

/* delegate {agent, task}: node/a2acall's a2a.delegate, with what the task may still spend
 * under its max_wei_task (none: no limit) as the budget. Not idempotent: a call in flight when the
 * node dies is not made again (the provider may have taken, and been paid for, the task). */
static int agent_tools__delegate(const agent_tools_env *env, const json_t *def, json_t *args, int64_t left, char **text,
                                 int *is_error, int64_t *wei) {
  const char *who = json_string_value(json_object_get(args, "agent"));
  if (json_array_size(json_object_get(def, "delegate_allow")) && (!who || !agent_def_lists(def, "delegate_allow", who))) {
    *text = strdup("that agent is not in this agent's delegate_allow list");
    *is_error = 1;
    return 0;
  }
  char budget[24];
  snprintf(budget, sizeof budget, "%llu", left >= 0 ? (unsigned long long)left : (unsigned long long)UINT64_MAX);
  json_t *p = json_pack("{s:O, s:O, s:s}", "agent", json_object_get(args, "agent"), "input", json_object_get(args, "task"),
                        "max_wei", budget);
  if (!p || !json_is_string(json_object_get(args, "agent")) || !json_is_string(json_object_get(args, "task"))) {
    json_decref(p);
    *text = strdup("delegate needs an agent and a task");
    *is_error = 1;
    return 0;
  }
  json_t *res = NULL;
  node_json(env, "a2a.delegate", p, text, is_error, &res);
  if (res) {
    const char *w = json_string_value(json_object_get(res, "wei")), *st = json_string_value(json_object_get(res, "state"));
    const char *t = json_string_value(json_object_get(res, "text")), *e = json_string_value(json_object_get(res, "error"));
    *wei = w ? strtoll(w, NULL, 10) : 0;
    free(*text);
    if (st && !strcmp(st, "completed")) *text = strdup(t ? t : "");
    else {
      char m[1200];
      snprintf(m, sizeof m, "the delegated task ended %s: %.1000s", st ? st : "?", e ? e : "no reason given");
      *text = strdup(m);
      *is_error = 1;
    }
    json_decref(res);
  }
  return 0;
}

int agent_builtin_run(const agent_tools_env *env, const json_t *def, const char *name, json_t *args, int64_t budget,
                      char **text, int *is_error, int64_t *wei) {
  *text = NULL;
  *is_error = 0;
  *wei = 0;
  if (!strcmp(name, "files_read")) return files_read(env, def, args, text, is_error);
  if (!strcmp(name, "files_write")) return files_write(env, def, args, text, is_error);
  if (!strcmp(name, "files_list")) return files_list(env, def, text);
  if (!strcmp(name, "http_fetch")) return http_fetch(def, args, text, is_error);
  if (!strcmp(name, "offers")) return node_json(env, "market.offers", NULL, text, is_error, NULL);
  if (!strcmp(name, "peers")) return node_json(env, "peers", NULL, text, is_error, NULL);
  if (!strcmp(name, "balance")) return node_json(env, "pay.info", NULL, text, is_error, NULL);
  if (!strcmp(name, "delegate")) return agent_tools__delegate(env, def, args, budget, text, is_error, wei);
  if (!strcmp(name, "generate")) {
    json_t *mt = json_object_get(args, "max_tokens");
    json_t *p = json_pack("{s:O, s:O, s:i, s:f}", "model", json_object_get(args, "model"), "prompt",
                          json_object_get(args, "prompt"), "max_tokens", json_is_integer(mt) ? (int)json_integer_value(mt) : 128,
                          "temperature", 0.7);
    if (!p) {
      *text = strdup("generate needs a model and a prompt");
      *is_error = 1;
      return 0;
    }
    json_t *pv = json_object_get(def, "privacy"); /* the agent's level holds for its tool too */
    if (json_is_string(pv)) json_object_set(p, "privacy", pv);
    json_t *res = NULL;
    node_json(env, "ask", p, text, is_error, &res);
    if (res) {
      const char *cost = json_string_value(json_object_get(res, "cost_wei")), *t = json_string_value(json_object_get(res, "text"));
      *wei = cost ? strtoll(cost, NULL, 10) : 0;
      free(*text);
      *text = strdup(t ? t : "");
      json_decref(res);
    }
    return 0;
  }
  return ERR_NOTFOUND;
}
