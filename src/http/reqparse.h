/* http/reqparse — the request fields of POST /v1/completions and /v1/chat/completions
 * (OpenAI's names; untrusted: any client holding a token sends them).
 *
 * Each function fills part of lr (which starts zeroed) from the parsed JSON body and
 * returns NULL, or a message for the client with *code set to OpenAI's error code (both
 * static strings). lr may own memory either way: release it with local_req_clear.
 *
 *   http_parse_sampling  max_tokens (1..HTTP_MAX_TOKENS, default default_max), temperature
 *                        (0..2, default 1), top_p ((0, 1], default 1), presence_penalty,
 *                        frequency_penalty, seed (default random), stop (a string or at
 *                        most LOCAL_MAX_STOP non-empty strings of at most 255 bytes)
 *   http_parse_messages  messages: 1..LOCAL_MAX_MESSAGES OpenAI chat messages (system,
 *                        developer, user, assistant with tool_calls, tool results; content
 *                        a string or text parts), LOCAL_MAX_PROMPT bytes in all
 *                        (llm/toolcall's toolcall_check_messages)
 *   http_parse_constraints  tools, tool_choice, parallel_tool_calls (chat only);
 *                        response_format (text, json_object, json_schema) or grammar (GBNF),
 *                        made into lr->grammar and checked to parse
 *   http_parse_logprobs  chat: logprobs (true/false), top_logprobs (0..20, needs logprobs);
 *                        completions: logprobs (0..HTTP_MAX_LOGPROBS alternatives), echo
 *                        (true/false; *echo); into lr's logprobs, top_logprobs, echo_logprobs
 *   http_parse_prompt    prompt: a non-empty string (or a one-string array) of at most
 *                        LOCAL_MAX_PROMPT bytes without NUL bytes
 *   http_parse_privacy   privacy: "allow", "redact" or "local-only" (privacy/policy), merged
 *                        with the X-Apiary-Privacy header and the token's level: the body's
 *                        "privacy" is set to the strictest of the three, which
 *                        http_parse_sampling then puts in lr->privacy */
#ifndef APIARY_HTTP_REQPARSE_H
#define APIARY_HTTP_REQPARSE_H

#include <jansson.h>

#include "llm/local.h"

#define HTTP_MAX_TOKENS 8192

const char *http_parse_sampling(json_t *body, local_req *lr, int default_max, const char **code);
/* header: the X-Apiary-Privacy value or NULL (at most 32 bytes); token_level: the API token's
 * policy_level (0: none). Changes body. */
const char *http_parse_privacy(json_t *body, const char *header, int token_level, const char **code);
const char *http_parse_messages(json_t *body, local_req *lr, const char **code);
const char *http_parse_prompt(json_t *body, local_req *lr, const char **code);
const char *http_parse_constraints(json_t *body, local_req *lr, int chat, const char **code);
#define HTTP_MAX_LOGPROBS 5 /* OpenAI's cap for /v1/completions */
const char *http_parse_logprobs(json_t *body, local_req *lr, int chat, int *echo, const char **code);
/* n (1..HTTP_MAX_N, default 1): how many choices to answer. */
#define HTTP_MAX_N 8
#define HTTP_MAX_PROMPTS 8
const char *http_parse_n(json_t *body, int *n, const char **code);
/* prompt as an array of strings: how many (1 for a plain string), and the i-th one. */
int http_prompt_count(json_t *body);
const char *http_parse_prompt_at(json_t *body, int i, local_req *lr, const char **code);

#endif
