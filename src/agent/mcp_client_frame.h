/* agent/mcp_client_frame — the MCP client's parsers of untrusted bytes, with no I/O:
 * newline-delimited lines (stdio), Server-Sent Events (Streamable HTTP), and one JSON-RPC
 * message from either.
 *
 * Both framers take bytes in chunks of any size and call back once per complete line or
 * event; each holds at most `max` bytes of a line or of an event's data, and reports a
 * longer one (then skips it) instead of growing. SSE follows the WHATWG event-stream rules:
 * lines end in CRLF, LF or CR; `data:` lines join with "\n"; `id:` sets the last event id
 * (kept across events, ignored when it holds a NUL); `retry:` (digits only) sets the
 * reconnection delay; comments (":") and unknown fields are ignored; an event is dispatched
 * at a blank line, when it has data. A leading UTF-8 BOM is skipped.
 *
 * Also here, as the other pure piece the fuzzer drives: mcp_client__answer (defined in
 * agent/mcp_client_answer.c), the client's answer to a server's request.
 *
 * Internal to agent/mcp_client*; fuzzed by tests/fuzz/fuzz_mcp_client.c. One framer per
 * stream, used by one thread at a time. */
#ifndef APIARY_AGENT_MCP_CLIENT_FRAME_H
#define APIARY_AGENT_MCP_CLIENT_FRAME_H

#include <jansson.h>
#include <stddef.h>

#define MCP_CLIENT_SSE_ID_MAX 256     /* bytes of an event id kept */
#define MCP_CLIENT_RETRY_MAX_MS 60000 /* a larger retry: is clamped to this */

/* ---- lines (stdio) ---------------------------------------------------------------------- */
typedef struct mcp_client_lines {
  char *buf;       /* the line so far (owned) */
  size_t len, cap; /* bytes held, allocated */
  size_t max;      /* longest line accepted */
  int skipping;    /* inside a line already reported as too long */
} mcp_client_lines;

/* Called with each complete line (without its "\n" or "\r\n"; never empty), or with
 * line NULL when a line went over max (once per such line). Returns 0 to go on, nonzero to
 * stop feeding (the value is returned by the feed). */
typedef int (*mcp_client_line_fn)(void *ud, const char *line, size_t len);

void mcp_client__lines_init(mcp_client_lines *l, size_t max);
void mcp_client__lines_deinit(mcp_client_lines *l);
/* Feeds n bytes. 0, ERR_NOMEM, or the callback's nonzero value. */
int mcp_client__lines_feed(mcp_client_lines *l, const char *p, size_t n, mcp_client_line_fn fn, void *ud);

/* ---- Server-Sent Events (HTTP) ---------------------------------------------------------- */
typedef struct mcp_client_sse {
  char *line;                          /* the current line (owned) */
  size_t line_len, line_cap;
  char *data;                          /* the current event's data (owned) */
  size_t data_len, data_cap;
  int have_data;                       /* a data field was seen for this event */
  char event[64];                      /* the current event's type ("" = message) */
  char last_id[MCP_CLIENT_SSE_ID_MAX + 1]; /* last event id seen ("" = none) */
  long retry_ms;                       /* last retry: value, -1 = none */
  size_t max;                          /* longest line and event data accepted */
  int after_cr;                        /* the last byte was a CR (a following LF is the same end) */
  int skipping;                        /* inside a line too long: dropped to its end */
  int too_big;                         /* the current event went over max: it is dropped */
  int started;                         /* past the optional BOM */
} mcp_client_sse;

/* Called with each event: type ("" when none was given) and data (NUL-terminated, len
 * bytes; may contain NULs). 0 to go on, nonzero to stop (returned by the feed). */
typedef int (*mcp_client_sse_fn)(void *ud, const char *event, const char *data, size_t len);

void mcp_client__sse_init(mcp_client_sse *s, size_t max);
void mcp_client__sse_deinit(mcp_client_sse *s);
/* Feeds n bytes. 0, ERR_NOMEM, ERR_TOOBIG (a line or an event went over max; the rest of
 * the stream can still be fed, the event is dropped), or the callback's nonzero value. */
int mcp_client__sse_feed(mcp_client_sse *s, const char *p, size_t n, mcp_client_sse_fn fn, void *ud);

/* ---- one message ------------------------------------------------------------------------ */
enum { MCP_CLIENT_MSG_REQUEST = 1, MCP_CLIENT_MSG_NOTIFICATION = 2, MCP_CLIENT_MSG_RESPONSE = 3 };

/* Parses one JSON-RPC message of n bytes (at most MCP_CLIENT_MAX_MSG). Returns its kind
 * with *msg_out (owned), or ERR_FORMAT / ERR_TOOBIG with the reason in err. */
int mcp_client__parse(const char *p, size_t n, json_t **msg_out, char *err, size_t cap);

/* The answer the client gives to a server's request (borrowed): ping → {}, elicitation/create
 * → accept with the schema's defaults (or decline), everything else → -32601. Returns a
 * JSON-RPC response object (owned), or NULL when out of memory. */
json_t *mcp_client__answer(const json_t *request);

#endif
