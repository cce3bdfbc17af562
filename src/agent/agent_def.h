/* agent/agent_def — an agent's definition, as its owner writes it (JSON), checked.
 *
 *   {"name": "scribe",                       [A-Za-z0-9_-]{1,63}
 *    "instructions": "You keep notes.",      the system message (at most 64 KiB)
 *    "model": "stories15M",                  a local name, a name the network offers, or a sha256
 *    "tools": ["files_write", "mcp:notes"],  built-in tools, every tool of an MCP server
 *                                            ("mcp:SERVER"), or one of them ("SERVER__TOOL")
 *    "approve": ["files_write"],             calls the owner must approve first
 *    "idempotent": ["notes__get"],           tools safe to run again after a crash
 *    "max_steps": 8,                         model calls per task (1..100)
 *    "max_tokens": 256,                      per model call (1..8192)
 *    "temperature": 0.7, "seed": 1,          sampling (seed optional)
 *    "tool_choice": "auto",                  the first model call: "auto" or "required"
 *    "max_wei_task": 0, "max_wei_day": 0,    spending caps in wei (0: no cap)
 *    "fetch_allow": ["https://example.org/"],URL prefixes http_fetch may read
 *    "mcp": [{"name": "notes", "command": "node", "args": ["server.js"], "env": {"K": "V"}},
 *            {"name": "web", "url": "https://host/mcp", "bearer": "..."}],
 *    "delegate_allow": ["scribe"],           agent names the delegate tool may hire (empty: any)
 *    "privacy": "redact",                    where its prompts may go: "allow", "redact" or
 *                                            "local-only" (privacy/policy; tightens the node's)
 *    "sell": {"price_wei": 0, "description": "Writes haiku."}}   for sale to other nodes
 *                                            (agent/a2a): wei per task, what it does
 *
 * Built-in tools: files_read, files_write, files_list (inside the agent's own folder),
 * http_fetch (GET, allowlisted prefixes), generate (a model through the market), offers,
 * peers, balance (the node's own data). */
#ifndef APIARY_AGENT_AGENT_DEF_H
#define APIARY_AGENT_AGENT_DEF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_DEF_MAX_TOOLS 32
#define AGENT_DEF_MAX_MCP 8
#define AGENT_DEF_MAX_SELL_DESC 1024

/* Checks def (untrusted JSON) and fills in defaults: 0, or ERR_INVAL with err naming the
 * field and the rule. *out is a new normalized object. */
int agent_def_check(const json_t *def, json_t **out, char *err, size_t cap);

/* Is this built-in tool known; is it idempotent by nature (reads). */
int agent_builtin_known(const char *name);
int agent_builtin_idempotent(const char *name);

/* Whether name is in the def's list key ("approve", "idempotent", "tools"). */
int agent_def_lists(const json_t *def, const char *key, const char *name);
int64_t agent_def_int(const json_t *def, const char *key);

#endif
