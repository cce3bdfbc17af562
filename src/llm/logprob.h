/* llm/logprob — log-probabilities of tokens, as OpenAI's `logprobs` report them.
 *
 * The math: the log-softmax of a position's raw logits (logprob_lse, then logit - lse) and
 * its k most likely tokens (logprob_top). The records: a logprob_log holds, for each token
 * of a generation (and, for echo, of its prompt), the token, its log-probability, its most
 * likely alternatives, and the bytes of every one of them (their pieces, copied from the
 * tokenizer, since the readers run on other threads and the worker may swap models).
 *
 * logprob_log_init sizes every store for the tokens the log will hold, so adding a token
 * does not allocate (the byte store only grows past its estimate for unusually long
 * pieces). Not thread-safe: the owner (llm/local's job) locks around it. */
#ifndef APIARY_LLM_LOGPROB_H
#define APIARY_LLM_LOGPROB_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define LOGPROB_MAX_TOP 20 /* OpenAI's top_logprobs cap */

typedef struct logprob_tok {
  int32_t id;
  float logprob;        /* NAN: none (the first token of a prompt without BOS) */
  uint32_t off, len;    /* its bytes: [off, off + len) of the byte store it was read with */
} logprob_tok;

typedef struct logprob_rec {
  logprob_tok tok;                    /* the token chosen (or the prompt's token) */
  int n_top;                          /* alternatives in top, most likely first */
  logprob_tok top[LOGPROB_MAX_TOP];
  int prompt;                         /* 1: a prompt token (echo) */
  size_t text_end;                    /* the owner's mark: its text is out once this much is */
} logprob_rec;

/* log(sum(exp(logits))) over n logits, in double, max-subtracted. */
double logprob_lse(const float *logits, int n);
/* The k (<= LOGPROB_MAX_TOP) largest of n logits, largest first, lower id first on ties;
 * writes ids_out[k] and returns how many (min(k, n)). */
int logprob_top(const float *logits, int n, int k, int32_t *ids_out);

typedef struct logprob_log {
  logprob_rec *recs;    /* [cap] */
  int n, cap;
  int k;                /* alternatives per token (0..LOGPROB_MAX_TOP) */
  buf bytes;            /* every piece, referenced by off/len */
} logprob_log;

/* Room for cap tokens with k alternatives each. 0, ERR_INVAL or ERR_NOMEM. */
int logprob_log_init(logprob_log *l, int cap, int k);
void logprob_log_deinit(logprob_log *l);
/* Records token id chosen from a position's raw logits (n_vocab of them; NULL: the first
 * prompt token, which has no position before it). lse as logprob_lse gave for them.
 * 0, ERR_RANGE when cap tokens are held, ERR_NOMEM. */
struct tok; /* llm/tok (not included: local.h users name things tok) */
int logprob_log_add(logprob_log *l, const struct tok *t, const float *logits, int n_vocab, double lse, int32_t id,
                    int prompt);
/* Copies records [from, from + n) into out[n], their bytes appended to bytes_out (offsets
 * rebased to it). 0 or ERR_NOMEM. */
int logprob_log_copy(const logprob_log *l, int from, int n, logprob_rec *out, buf *bytes_out);

#endif
