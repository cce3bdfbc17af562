/* http/logprobs — OpenAI's `logprobs` shapes from the worker's records (llm/logprob).
 *
 * An http_lp collects the records of one choice as its text is read (http_lp_drain after
 * each gen_read) and hands them out in the shape of the endpoint (http_lp_take): for chat
 * {content: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}, for
 * completions {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}. A
 * stream takes after every chunk (the chunk's tokens); a whole answer takes once.
 *
 * `token` is the token's bytes when they are valid UTF-8; a token that is part of a
 * character (byte-fallback or byte-level pieces) is written "bytes:\xe2\x80" (OpenAI's
 * form), its bytes in `bytes` either way. One HTTP thread per http_lp. */
#ifndef APIARY_HTTP_LOGPROBS_H
#define APIARY_HTTP_LOGPROBS_H

#include <jansson.h>

#include "market/gen.h"

typedef struct http_lp {
  int on;              /* logprobs asked for: else take gives json null */
  int chat;            /* the chat shape, else completions' */
  json_t *acc;         /* chat: the content array; completions: the object; drained, not taken yet */
  long offset;         /* completions: text_offset of the next token */
  int strip_space;     /* echo of a prompt not starting with a space: the first piece's space prefix is not in the text */
  int seen;            /* records drained so far */
} http_lp;

/* offset: the text_offset of the first token (the prompt's length, or 0 when echoed). */
void http_lp_init(http_lp *l, int on, int chat, long offset, int strip_space);
void http_lp_deinit(http_lp *l);
/* Reads the records src has ready (their text read) into l. 0 or ERR_NOMEM. */
int http_lp_drain(http_lp *l, gen_stream *src);
/* What was drained since the last take, as the choice's "logprobs" value (returns owned;
 * json null when not asked for). */
json_t *http_lp_take(http_lp *l);
/* Records drained and not taken yet. */
int http_lp_pending(const http_lp *l);

#endif
