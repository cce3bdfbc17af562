/* libFuzzer harness: generation requests from untrusted bytes, through both parsers that
 * take them: the OpenAI-compatible API's (http/reqparse: sampling, then messages or prompt)
 * and a peer's `generate` params (market/genreq). Whatever they accept must respect the
 * limits the worker relies on: prompt length equal to its bytes, at most LOCAL_MAX_STOP
 * non-empty stop strings the engine takes (< ENGINE_MAX_STOP_LEN), at most
 * LOCAL_MAX_MESSAGES messages with role and content (string, or null beside tool calls),
 * tools, a grammar of at most LOCAL_MAX_GRAMMAR bytes, max_tokens in 1..8192, at most
 * LOCAL_MAX_CONT continuation ids, each a token id; logprobs on, with 0..20 alternatives
 * (chat) or 0..5 (completions, where echo may ask for the prompt's too); a stream chunk's
 * `lp` records (market/lpwire) within their caps, pieces inside the byte store. Accepted or not, local_req_clear frees
 * everything (ASan/LSan check it). */
#include <jansson.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "http/reqparse.h"
#include "llm/engine.h"
#include "market/genreq.h"
#include "market/lpwire.h"

static void limits(const local_req *lr) {
  if (lr->max_tokens < 1 || lr->max_tokens > 8192) abort();
  if (lr->n_stop < 0 || lr->n_stop > LOCAL_MAX_STOP) abort();
  for (int i = 0; i < lr->n_stop; i++)
    if (!lr->stop[i] || !lr->stop[i][0] || strlen(lr->stop[i]) >= ENGINE_MAX_STOP_LEN) abort();
  if (lr->messages) {
    if (!json_is_array(lr->messages) || json_array_size(lr->messages) < 1 ||
        json_array_size(lr->messages) > LOCAL_MAX_MESSAGES)
      abort();
    size_t total = 0, i;
    json_t *m;
    json_array_foreach(lr->messages, i, m) {
      const char *role = json_string_value(json_object_get(m, "role"));
      json_t *c = json_object_get(m, "content");
      if (!role || (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool")))
        abort();
      if (!json_is_string(c) && !(json_is_null(c) && json_object_get(m, "tool_calls"))) abort();
      total += json_string_length(c);
    }
    if (total > LOCAL_MAX_PROMPT) abort();
  }
  if (lr->grammar && (!lr->grammar[0] || strlen(lr->grammar) > LOCAL_MAX_GRAMMAR)) abort();
  if (lr->tools && (!json_is_array(lr->tools) || json_array_size(lr->tools) > 64)) abort();
  if (!lr->messages && (!lr->prompt || !lr->prompt_len || strlen(lr->prompt) != lr->prompt_len ||
                          lr->prompt_len > LOCAL_MAX_PROMPT))
    abort();
  if (lr->n_cont < 0 || lr->n_cont > LOCAL_MAX_CONT || (lr->n_cont && !lr->cont_ids)) abort();
  for (int i = 0; i < lr->n_cont; i++)
    if (lr->cont_ids[i] < 0) abort();
  if (!(lr->sp.temp >= 0 && lr->sp.temp <= 2) || !(lr->sp.top_p > 0 && lr->sp.top_p <= 1)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) init = sodium_init() >= 0 ? 1 : (abort(), 0);
  if (size > (1u << 20)) return 0;
  json_error_t je;
  /* the flags each side loads with: the API rejects duplicate keys; the RPC layer takes
   * jansson's defaults (both reject NUL bytes in strings) */
  json_t *api = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &je);
  if (json_is_object(api)) {
    local_req lr;
    memset(&lr, 0, sizeof lr);
    const char *code = NULL;
    const char *why = http_parse_sampling(api, &lr, 16, &code);
    int chat = json_object_get(api, "messages") != NULL;
    if (!why) why = chat ? http_parse_messages(api, &lr, &code) : http_parse_prompt(api, &lr, &code);
    if (!why) why = http_parse_constraints(api, &lr, chat, &code);
    int echo = -1;
    if (!why) why = http_parse_logprobs(api, &lr, chat, &echo, &code);
    if (why && !code) abort(); /* every refusal names OpenAI's error code */
    if (!why) {
      limits(&lr);
      /* logprobs: chat 0..20 alternatives, completions 0..5 and echo; never on the other endpoint's terms */
      if (lr.logprobs != 0 && lr.logprobs != 1) abort();
      if (lr.top_logprobs < 0 || lr.top_logprobs > (chat ? LOGPROB_MAX_TOP : HTTP_MAX_LOGPROBS)) abort();
      if (lr.top_logprobs && !lr.logprobs) abort();
      if (echo != 0 && echo != 1) abort();
      if ((chat && echo) || lr.echo_logprobs != (lr.logprobs && echo)) abort();
    }
    local_req_clear(&lr);
    /* n and prompt arrays: every prompt of an array parses within the same limits */
    int n = 0;
    code = NULL;
    if (http_parse_n(api, &n, &code) ? !code : (n < 1 || n > HTTP_MAX_N)) abort();
    int k = http_prompt_count(api);
    for (int i = 0; i < k && i < HTTP_MAX_PROMPTS; i++) {
      memset(&lr, 0, sizeof lr);
      code = NULL;
      why = http_parse_sampling(api, &lr, 16, &code); /* as the API does for each choice */
      if (!why) why = http_parse_prompt_at(api, i, &lr, &code);
      if (why && !code) abort();
      if (!why) limits(&lr);
      local_req_clear(&lr);
    }
  }
  json_decref(api);

  json_t *peer = json_loadb((const char *)data, size, 0, &je);
  if (json_is_object(peer)) {
    local_req lr;
    memset(&lr, 0, sizeof lr);
    if (!mkt_genreq_parse(peer, &lr)) {
      limits(&lr);
      if (lr.logprobs && (lr.top_logprobs < 0 || lr.top_logprobs > LOGPROB_MAX_TOP || lr.n_cont)) abort();
    }
    local_req_clear(&lr);
    /* a provider's stream chunk: its `lp` records within their caps */
    json_t *lp = json_object_get(peer, "lp");
    if (lp) {
      static logprob_rec recs[MKT_LP_MAX_RECS];
      buf b;
      buf_init(&b);
      int n = mkt_lp_decode(lp, 5, recs, MKT_LP_MAX_RECS, &b);
      if (n != ERR_FORMAT && n != ERR_NOMEM && (n < 0 || n > MKT_LP_MAX_RECS)) abort();
      for (int i = 0; i < n; i++) {
        if (recs[i].n_top < 0 || recs[i].n_top > 5 || !(recs[i].tok.logprob <= 0)) abort();
        if ((size_t)recs[i].tok.off + recs[i].tok.len > b.len || recs[i].tok.len > MKT_LP_MAX_PIECE) abort();
        for (int k = 0; k < recs[i].n_top; k++)
          if ((size_t)recs[i].top[k].off + recs[i].top[k].len > b.len || (k && recs[i].top[k].logprob > recs[i].top[k - 1].logprob))
            abort();
      }
      buf_deinit(&b);
    }
  }
  json_decref(peer);
  return 0;
}
