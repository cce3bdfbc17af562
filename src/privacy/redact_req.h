/* privacy/redact_req — redacting a generation request before it leaves this node.
 *
 * redact_req_apply replaces the personal data in every text of lr that would be sent to a
 * provider: the prompt, and in the chat messages each content string (or text part) and
 * each tool call's arguments (tool results are messages too). One map serves the whole
 * request, so a value keeps its placeholder across messages. The messages are deep-copied
 * first (the caller's JSON is not changed). Not redacted: tool definitions and stop
 * strings (written by the client's program, not its user), grammars.
 *
 * On any failure the request must not be sent (fail closed). */
#ifndef APIARY_PRIVACY_REDACT_REQ_H
#define APIARY_PRIVACY_REDACT_REQ_H

#include "llm/local.h"
#include "privacy/redact_map.h"

/* 0 (lr changed in place; m holds the values), or ERR_NOMEM / ERR_TOOBIG / ERR_FORMAT. */
int redact_req_apply(redact_map *m, local_req *lr);

#endif
