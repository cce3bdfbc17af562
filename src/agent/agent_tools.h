/* agent/agent_tools — the built-in tools an agent may be given.
 *
 *   files_read {path}, files_write {path, content}, files_list {}: inside the agent's own
 *     folder (HOME/agents/NAME); paths are relative, made of [A-Za-z0-9._-] segments, no
 *     "..", no symlinks followed; reads up to 64 KiB, writes up to 1 MiB (atomically).
 *   http_fetch {url}: GET a URL under one of the definition's fetch_allow prefixes;
 *     redirects are not followed (a redirect could leave the allowlist), 20 s, 1 MiB.
 *   generate {model, prompt, max_tokens?}: a model through the node's market (paid).
 *   offers, peers, balance {}: the node's own data.
 *
 * Each runs on the agent worker thread; the node's data comes through env->node_call (its
 * control socket). Results are text for the model. */
#ifndef APIARY_AGENT_AGENT_TOOLS_H
#define APIARY_AGENT_AGENT_TOOLS_H

#include <jansson.h>
#include <stdint.h>

typedef struct agent_tools_env {
  const char *agents_dir; /* HOME/agents (borrowed) */
  int (*node_call)(void *ud, const char *method, json_t *params, int timeout_ms, json_t **result, char *err, size_t cap);
  void *ud;
} agent_tools_env;

/* The OpenAI tool specs (type function) of the def's built-in tools (owned array). */
json_t *agent_builtin_specs(const json_t *def);
/* Runs built-in tool name: 0 with *text (owned) and *is_error; ERR_NOTFOUND for an unknown
 * name. budget: wei the task may still spend (-1: no cap; delegate's max_wei). *wei: what
 * it paid (generate, delegate). */
int agent_builtin_run(const agent_tools_env *env, const json_t *def, const char *name, json_t *args, int64_t budget,
                      char **text, int *is_error, int64_t *wei);

/* 1 when rel is a safe relative path for an agent's folder. */
int agent_path_ok(const char *rel);

#endif
