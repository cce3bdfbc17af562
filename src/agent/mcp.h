/* agent/mcp — a Model Context Protocol server: the protocol, not the transport.
 *
 * MCP is JSON-RPC 2.0 (revision 2025-11-25; 2025-06-18 and 2025-03-26 are accepted and
 * echoed). This module holds what a server offers — tools, resources, resource templates,
 * prompts, argument completion — and answers one client message at a time for one session
 * (lifecycle, version negotiation, capabilities, logging level, subscriptions, errors). The
 * transports (http/mcp_http: Streamable HTTP at /mcp; cli/mcp: stdio) own the bytes: they
 * parse a message, hand it here with a sink for what the server sends while a request runs
 * (progress, log messages, and requests to the client such as sampling/createMessage or
 * elicitation/create), and write the answer.
 *
 * Threads: a request runs on its caller's thread and may block (a tool that waits for the
 * client's answer to a server request, or for a generation). Several requests of one session
 * may run at once; the session's state is under its mutex. The registry is built before
 * serving and read-only afterwards. Ownership: json_t arguments are borrowed unless marked
 * "taken"; results returned are owned by the caller. */
#ifndef APIARY_AGENT_MCP_H
#define APIARY_AGENT_MCP_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>

#define MCP_LATEST "2025-11-25"
#define MCP_MAX_TOOLS 48
#define MCP_MAX_RESOURCES 32
#define MCP_MAX_PROMPTS 16
#define MCP_MAX_PENDING 16   /* server→client requests waiting for an answer, per session */
#define MCP_MAX_SUBS 32      /* subscribed resource URIs, per session */
#define MCP_ID_LEN 64        /* a session id: 64 hex characters */

/* JSON-RPC and MCP error codes. */
enum { MCP_PARSE_ERROR = -32700, MCP_INVALID_REQUEST = -32600, MCP_NO_METHOD = -32601,
       MCP_INVALID_PARAMS = -32602, MCP_INTERNAL = -32603, MCP_NO_RESOURCE = -32002 };

typedef struct mcp_call mcp_call;
typedef struct mcp_server mcp_server;
typedef struct mcp_session mcp_session;

/* Where a running request's messages to the client go (a notification or a request;
 * taken). The transport writes them on the request's stream, in order. */
typedef struct mcp_sink {
  void (*send)(void *ud, json_t *msg);
  int (*gone)(void *ud);     /* 1 when the client can no longer hear (may be NULL) */
  void *ud;
} mcp_sink;

/* A tool: fills *result (a CallToolResult, owned) and returns 0; or returns a JSON-RPC
 * error code with the message in err (a protocol error; a tool that ran and failed returns
 * 0 with isError true instead). args is an object (borrowed). */
typedef int (*mcp_tool_fn)(mcp_call *c, json_t *args, void *ud, json_t **result, char *err, size_t cap);
/* A resource read: fills *contents (an array of {uri, mimeType, text|blob}) or returns
 * MCP_NO_RESOURCE / another code with err. uri is the one asked for. */
typedef int (*mcp_read_fn)(mcp_call *c, const char *uri, void *ud, json_t **contents, char *err, size_t cap);
/* A prompt: fills *result ({description?, messages}); args is an object (borrowed). */
typedef int (*mcp_prompt_fn)(mcp_call *c, json_t *args, void *ud, json_t **result, char *err, size_t cap);
/* Completion of one argument: fills *values (an array of strings, owned); 0 or a code. */
typedef int (*mcp_complete_fn)(const json_t *ref, const char *arg, const char *value, void *ud, json_t **values);
/* A dynamic list (of tools, resources or prompts) added at list time: appends to arr. */
typedef void (*mcp_list_fn)(void *ud, json_t *arr);

typedef struct mcp_tool {
  const char *name, *title, *description;
  const char *input_schema;  /* JSON text of an object schema; NULL: no arguments */
  mcp_tool_fn fn;
  void *ud;
} mcp_tool;

typedef struct mcp_resource {
  const char *uri;           /* exact URI, or a template "x://a/{id}/b" when is_template */
  const char *name, *description, *mime;
  int is_template;
  mcp_read_fn fn;
  void *ud;
} mcp_resource;

typedef struct mcp_prompt {
  const char *name, *description;
  const char *arguments;     /* JSON text of [{name, description?, required?}] or NULL */
  mcp_prompt_fn fn;
  void *ud;
} mcp_prompt;

/* The server: what it offers. Strings in the entries are borrowed for its lifetime. */
struct mcp_server {
  const char *name, *version, *instructions;
  mcp_tool tools[MCP_MAX_TOOLS];
  size_t n_tools;
  mcp_resource resources[MCP_MAX_RESOURCES];
  size_t n_resources;
  mcp_prompt prompts[MCP_MAX_PROMPTS];
  size_t n_prompts;
  mcp_complete_fn complete;
  void *complete_ud;
};

void mcp_server_init(mcp_server *s, const char *name, const char *version, const char *instructions);
/* Registration; 0 or ERR_TOOBIG / ERR_EXISTS / ERR_INVAL (a schema that is not JSON). */
int mcp_add_tool(mcp_server *s, const mcp_tool *t);
int mcp_add_resource(mcp_server *s, const mcp_resource *r);
int mcp_add_prompt(mcp_server *s, const mcp_prompt *p);

/* One pending server→client request. */
typedef struct mcp_pending {
  char id[48];
  int done, used;
  json_t *answer;            /* the client's response object (owned until taken) */
} mcp_pending;

/* A client session: created at initialize, ended by the transport. */
struct mcp_session {
  char id[MCP_ID_LEN + 1];
  char version[16];          /* negotiated protocol revision */
  int initialized;           /* notifications/initialized seen */
  int log_level;             /* index into the syslog levels; messages below it are dropped */
  json_t *client_caps;       /* the client's capabilities (owned) */
  char subs[MCP_MAX_SUBS][256];
  size_t n_subs;
  mcp_pending pending[MCP_MAX_PENDING];
  struct { char id[64]; int used, cancelled; } running[MCP_MAX_PENDING]; /* requests in progress */
  unsigned long next_id;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  double last_used;          /* monotonic seconds; the transport expires idle sessions */
  int closed;                /* ended: waiters give up */
};

/* Fills s with a fresh random id. 0 or an error. */
int mcp_session_init(mcp_session *s);
/* Wakes every waiter with "session ended" and frees what s holds (not s). */
void mcp_session_close(mcp_session *s);
void mcp_session_deinit(mcp_session *s);

/* One client message (a request, notification or response; borrowed). For a request the
 * answer (a JSON-RPC response object, owned) is returned; NULL for a notification or a
 * response. sink carries what the server sends meanwhile (NULL: nothing can be sent, so
 * tools that need the client fail cleanly). is_init_out (may be NULL) is set when the
 * message was an initialize request that succeeded. */
json_t *mcp_handle(mcp_server *srv, mcp_session *ses, json_t *msg, const mcp_sink *sink, int *is_init_out);

/* Classifies a parsed message: 1 request, 2 notification, 3 response, 0 invalid (with a
 * reason in err). */
int mcp_kind(const json_t *msg, char *err, size_t cap);
/* A JSON-RPC error response for id (borrowed; NULL → null id). */
json_t *mcp_error(const json_t *id, int code, const char *message);

/* ---- inside a request (tools, reads, prompts) ---------------------------------------- */
/* Whether the client declared a capability ("sampling", "elicitation", "roots"). */
int mcp_client_can(mcp_call *c, const char *capability);
/* Sends notifications/message at level ("debug" … "emergency") if the session's level lets it. */
void mcp_log(mcp_call *c, const char *level, const char *logger, json_t *data /* taken */);
/* Sends notifications/progress when the request carried a progress token. */
void mcp_progress(mcp_call *c, double progress, double total, const char *message);
/* Sends a request to the client and waits up to timeout_ms for its answer: 0 with *result
 * (owned), or -ETIMEDOUT / ERR_CANCELED (session ended) / a JSON-RPC error code from the
 * client with its message in err. */
int mcp_ask(mcp_call *c, const char *method, json_t *params /* taken */, int timeout_ms, json_t **result, char *err,
            size_t cap);
/* The client cancelled this request (notifications/cancelled) or its stream went away. */
int mcp_call_cancelled(mcp_call *c);
/* Hands a client's response to the request waiting for it; 0, or ERR_NOTFOUND when none waits. */
int mcp_session_deliver(mcp_session *s, json_t *response /* borrowed */);

/* A text content item (owned). */
json_t *mcp_text(const char *text);
/* {content:[text], isError?} (owned). */
json_t *mcp_text_result(const char *text, int is_error);

#endif
