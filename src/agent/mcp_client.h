/* agent/mcp_client — a Model Context Protocol client: an agent uses another server's tools.
 *
 * One mcp_client is one connection to one MCP server (revision 2025-11-25; a server that
 * answers 2025-06-18 or 2025-03-26 is accepted), over either transport:
 *   - stdio: the server is a child process (spawned with libuv on a private loop run by an
 *     internal thread), newline-delimited JSON on its stdin/stdout; its stderr goes to the
 *     log line by line, never into the message stream (agent/mcp_client_stdio.c);
 *   - Streamable HTTP: each message is a POST (libcurl), answered with JSON or an SSE
 *     stream; the session id is kept and sent, a stream that closes before the answer is
 *     resumed with GET + Last-Event-ID after the server's `retry:` delay, a 404 (session
 *     gone) re-initializes once, DELETE ends the session (agent/mcp_client_http.c).
 * mcp_client_open spawns or connects, sends initialize and notifications/initialized.
 *
 * What the client declares and answers (agent/mcp_client.c): capability `elicitation`
 * (form mode) only. A server's `ping` is answered {}; `elicitation/create` is accepted with
 * the requested schema's defaults when every required field has one, and declined
 * otherwise (no human is there to ask); `roots/list`, `sampling/createMessage` and anything
 * else get -32601. Notifications (progress, log messages, list changes) are logged at debug
 * level and otherwise ignored.
 *
 * Caps on what a server sends: one message (a stdio line, an SSE event, a JSON body) at
 * most MCP_CLIENT_MAX_MSG bytes, at most MCP_CLIENT_MAX_TOOLS tools over at most
 * MCP_CLIENT_MAX_PAGES pages of tools/list.
 *
 * Threads: every call blocks its caller until the answer, an error or the timeout. A client
 * may be used from any thread; calls on one client are serialized by its mutex (so one
 * agent worker thread at a time is the natural use), and different clients are
 * independent. mcp_client_close must not race with a call on the same client.
 *
 * Errors: 0 or a negative code (core/err.h, or -ETIMEDOUT / -ECONNRESET / -EPROTO) with a
 * sentence in err saying what happened and what to do. A JSON-RPC error from the server is
 * MCP_CLIENT_ERR_RPC with "CODE message" in err. */
#ifndef APIARY_AGENT_MCP_CLIENT_H
#define APIARY_AGENT_MCP_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#define MCP_CLIENT_MAX_MSG (4u << 20) /* bytes in one message from the server */
#define MCP_CLIENT_MAX_TOOLS 256      /* tools kept from tools/list */
#define MCP_CLIENT_MAX_PAGES 32       /* tools/list pages followed */
#define MCP_CLIENT_TIMEOUT_MS 60000   /* default per-request timeout */

enum { MCP_CLIENT_ERR_RPC = -10100 }; /* the server answered a JSON-RPC error */

typedef struct mcp_client mcp_client;

/* How to reach a server. Exactly one of command (stdio) or url (HTTP). Every string is
 * borrowed for the duration of mcp_client_open only (the client copies what it keeps). */
typedef struct mcp_client_cfg {
  const char *name;         /* a label for errors and logs ("search", "fs"); NULL: the command or URL */
  const char *command;      /* stdio: the program (looked up in PATH) ... */
  const char *const *args;  /* ... its arguments, NULL-terminated (may be NULL) */
  const char *const *env;   /* "K=V" entries added to (or replacing in) the inherited environment, NULL-terminated */
  const char *url;          /* Streamable HTTP: http(s)://host[:port]/path */
  const char *bearer;       /* HTTP: sent as Authorization: Bearer (never logged); may be NULL */
  int timeout_ms;           /* per request; <= 0: MCP_CLIENT_TIMEOUT_MS */
} mcp_client_cfg;

/* Spawns or connects, initializes. 0 with *out (owned; mcp_client_close frees it) or an
 * error with err filled. */
int mcp_client_open(const mcp_client_cfg *cfg, mcp_client **out, char *err, size_t cap);

/* The server's initialize result ({protocolVersion, capabilities, serverInfo, ...});
 * borrowed, valid until close. */
const json_t *mcp_client_server_info(const mcp_client *c);

/* tools/list, following nextCursor: 0 with *tools_out an array of tool objects as the
 * server sent them (owned), or an error. More than MCP_CLIENT_MAX_TOOLS tools or pages →
 * the first ones, and a warning in the log. */
int mcp_client_list_tools(mcp_client *c, json_t **tools_out, char *err, size_t cap);

/* tools/call of name with args (an object, borrowed; NULL: {}). timeout_ms <= 0: the
 * client's. 0 with *result the CallToolResult as the server sent it (owned; a tool that ran
 * and failed has isError true), or an error (MCP_CLIENT_ERR_RPC for a JSON-RPC error, such
 * as an unknown tool). On timeout the server is sent notifications/cancelled. */
int mcp_client_call_tool(mcp_client *c, const char *name, json_t *args, int timeout_ms, json_t **result, char *err,
                         size_t cap);

/* Ends the session and frees c (NULL is a no-op). stdio: closes the child's stdin, waits,
 * then SIGTERM, then SIGKILL. HTTP: DELETE of the session. Blocks up to a few seconds. */
void mcp_client_close(mcp_client *c);

/* ---- for agents (agent/mcp_client_tools.c; pure, inputs borrowed and untrusted) -------- */
/* The tools of a tools/list answer as OpenAI function specs ({type:"function", function:
 * {name, description, parameters}}) named SERVER__TOOL; a tool whose name is not
 * [A-Za-z0-9_-] or whose full name is over 64 characters is left out. Owned array. */
json_t *mcp_client_tool_specs(const char *server, const json_t *tools);
/* A CallToolResult as text for a model (owned; NULL when out of memory): text items and
 * embedded text resources one per line, images, audio, links and other items as a short
 * [summary], structuredContent as JSON when nothing else came; about max bytes at most (cut
 * on a UTF-8 boundary). *is_error (may be NULL) gets isError. */
char *mcp_client_result_text(const json_t *result, size_t max, int *is_error);

#endif
