/* market/genreq — the text and sampling fields of a peer's `generate` request (untrusted:
 * they come from another node over the link). Fields and limits: docs/market.md.
 *
 * mkt_genreq_parse fills lr (which must start zeroed) from the params object p: prompt or
 * messages (OpenAI chat messages checked by llm/toolcall: at most LOCAL_MAX_MESSAGES,
 * LOCAL_MAX_PROMPT bytes in all), tools, tool_choice ("auto", "none", "required" or an
 * offered function's name), parallel_tool_calls, grammar (GBNF, at most LOCAL_MAX_GRAMMAR
 * bytes; the worker parses it and refuses a bad one as the request's fault), temperature,
 * top_p, top_k, min_p, repeat_penalty, penalty_last_n, presence/frequency penalties, seed,
 * max_tokens (1..8192, default 128), stop (at most LOCAL_MAX_STOP strings of 1..255 bytes), cont
 * (at most LOCAL_MAX_CONT token ids), cont_bytes and logprobs (0..LOGPROB_MAX_TOP
 * alternatives; not with cont). Returns NULL, or why the request is
 * refused (a static or thread-local string); either way lr may own memory: release it with
 * local_req_clear. The model path, notify hook and vocabulary range of cont are the
 * caller's to set and check. */
#ifndef APIARY_MARKET_GENREQ_H
#define APIARY_MARKET_GENREQ_H

#include <jansson.h>

#include "llm/local.h"

const char *mkt_genreq_parse(json_t *p, local_req *lr);

#endif
