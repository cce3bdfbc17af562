/* llm/local — the inference worker: serving generations from the node's own models.
 *
 * One worker thread owns the inference state: the model, tokenizer and engine of the most
 * recently used model stay loaded (a request for another model swaps them), and the
 * engine's KV cache reuses a shared prompt prefix between requests. Callers on other
 * threads (the HTTP server's) submit jobs and read each job's text as it is produced:
 * local_job_read blocks (with a timeout) until new text, the end, or an error. A job is
 * reference-counted between the caller and the worker; a caller that goes away cancels
 * it, and the worker stops generating at the next token.
 *
 * Thread-safety: every function may be called from any thread; the worker is internal. */
#ifndef APIARY_LLM_LOCAL_H
#define APIARY_LLM_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "llm/logprob.h"
#include "llm/sample.h"

#define LOCAL_MAX_STOP 4
#define LOCAL_MAX_PROMPT (1u << 20)

typedef struct local_svc local_svc;
typedef struct local_job local_job;

#define LOCAL_MAX_MESSAGES 256
#define LOCAL_MAX_EMBED_INPUTS 2048 /* inputs of one embeddings request (OpenAI's limit) */

/* One input of an embeddings request: text, or token ids used as they are. */
typedef struct local_embed_in {
  char *text;                 /* owned UTF-8 text of text_len bytes, or NULL for ids */
  size_t text_len;
  int32_t *ids;               /* owned token ids when text is NULL */
  int n_ids;
} local_embed_in;
#define LOCAL_MAX_GRAMMAR (256u << 10) /* bytes of GBNF a request may carry */

typedef struct local_req {
  char model_path[1024];
  /* A chat request: OpenAI-style messages (a JSON array of {role, content (a string or
   * null), tool_calls?, tool_call_id?, name?}, checked by the caller), rendered with the
   * model's own chat template (llm/chat's Jinja interpreter; the hand-written formats are the
   * fallback) and tokenized so that message text can never turn into control tokens. When
   * set, prompt is ignored. Owned reference. */
  json_t *messages;
  json_t *tools;              /* OpenAI tools offered (owned reference) or NULL */
  char tool_choice[72];       /* "" or "auto", "none", "required", or a function's name */
  int parallel_tools;         /* several calls may follow one another */
  /* GBNF the output must be a sentence of (owned; NULL: free text). Tools with a required
   * or named choice add the model's own call grammar on the worker (llm/toolcall). */
  char *grammar;
  char *prompt;               /* owned by the request (freed with the job) */
  size_t prompt_len;
  int parse_special;          /* 1 for chat prompts: template tokens are special tokens */
  int add_bos;                /* -1: as the model says; 0/1 force */
  sample_params sp;
  int max_tokens;
  int n_stop;
  char *stop[LOCAL_MAX_STOP]; /* owned */
  /* Continuation (failover): token ids appended after the tokenized prompt and evaluated as
   * prompt, so generation resumes where another node stopped. Owned; at most
   * LOCAL_MAX_CONT. */
  int32_t *cont_ids;
  int n_cont;
  size_t cont_bytes; /* bytes of the continued tokens' text the client already has */
  /* Log-probabilities (llm/logprob: of the model's raw logits): logprobs 1 records every
   * generated token with its top_logprobs (0..LOGPROB_MAX_TOP) most likely alternatives;
   * echo_logprobs 1 records the prompt's tokens first (the prompt is then evaluated one
   * position at a time, each giving the next token's distribution). Read them with
   * local_job_read_logprobs. */
  int logprobs, top_logprobs, echo_logprobs;
  /* An embeddings request instead of a generation: one vector per input (owned, n_embed of
   * them), read with local_job_embeddings. Text gets BOS (and EOS) as the model asks; each
   * input must fit the context. Vectors are the final hidden state after the output norm,
   * pooled as the model's "{arch}.pooling_type" says (mean when it says nothing; none and
   * rank are refused), then scaled to unit length. embed_dims: the size the client
   * wants (0: the model's own); any other size is refused. */
  local_embed_in *embed;
  int n_embed;
  int embed_dims;
  /* Called from the worker thread whenever the job has new text/tokens or ends (may be
   * NULL). Must be cheap and thread-safe (e.g. uv_async_send). */
  void (*notify)(void *ud);
  void *notify_ud;
  /* Called once when the job is freed (no notify comes after it), to drop notify_ud (may
   * be NULL). Not called for a request that never became a job. */
  void (*notify_free)(void *ud);
  /* Where the request's text may go, as its caller asked (privacy/policy's policy_level:
   * 0 unset, 1 allow, 2 redact, 3 local-only). market/gen enforces it; it never leaves
   * this node. */
  int privacy;
} local_req;

#define LOCAL_MAX_CONT 8192

/* Frees what a local_req owns (prompt, messages, stop strings, cont ids) and zeroes it. A
 * request handed to local_submit is the job's; clear only requests that were not. */
void local_req_clear(local_req *lr);

typedef enum local_finish { LOCAL_RUNNING = 0, LOCAL_STOP, LOCAL_LENGTH, LOCAL_ERROR, LOCAL_CANCELED } local_finish;

/* What kind of error ended a job (LOCAL_ERROR). */
typedef enum local_error_kind {
  LOCAL_E_INTERNAL = 0,       /* the node's fault: the model would not load, out of memory, … */
  LOCAL_E_CONTEXT,            /* the request's: the prompt does not fit the context */
  LOCAL_E_REQUEST,            /* the request's: a grammar or template the model cannot use */
} local_error_kind;

typedef struct local_result {
  local_finish finish;
  int prompt_tokens, completion_tokens;
  char error[720];            /* LOCAL_ERROR: what went wrong */
  local_error_kind kind;      /* LOCAL_ERROR: whose fault */
} local_result;

/* n_threads / n_ctx: engine settings (0 = defaults). */
int local_svc_new(int n_threads, int n_ctx, local_svc **out);
void local_svc_free(local_svc *s); /* cancels queued jobs, waits for the worker; NULL ok */

/* Queues a job; the request's owned fields are taken. *out must be released. */
int local_submit(local_svc *s, local_req *req, local_job **out);
/* Copies up to cap bytes of new text into buf. Returns the byte count (> 0), 0 when the job
 * has finished and all text was read, ERR_CANCELED... or -ETIMEDOUT when nothing came
 * within timeout_ms. */
int local_job_read(local_job *j, char *buf, size_t cap, int timeout_ms);
/* Waits for the end (or timeout_ms); fills r. Returns 0 or -ETIMEDOUT. */
int local_job_wait(local_job *j, int timeout_ms, local_result *r);
void local_job_cancel(local_job *j);

/* Copies up to cap log-probability records not read yet whose text local_job_read has
 * handed out (prompt records at once; a token whose text a stop string cut off never) into
 * out, their bytes appended to bytes. Returns the count (0: none now, or none asked) or
 * ERR_NOMEM. */
int local_job_read_logprobs(local_job *j, logprob_rec *out, int cap, buf *bytes);
/* An ended embeddings job's vectors: *out points at n_embed rows of *dim floats (borrowed
 * until the job is released). Returns n_embed, or 0 when there are none (not finished, or
 * failed). */
int local_job_embeddings(local_job *j, const float **out, int *dim);

/* Copies up to cap token ids generated since the last call into out; returns the count. */
int local_job_read_ids(local_job *j, int32_t *out, int cap);
/* Tokens generated so far and the prompt's size (known once the prompt is tokenized, else 0). */
void local_job_progress(local_job *j, int *prompt_tokens, int *gen_tokens);
/* Credit: the job pauses after generating `tokens` tokens until allowed more (or canceled).
 * -1 (the default) is unlimited. Used by a provider to stop when unpaid tokens pass its
 * credit window. */
void local_job_allow(local_job *j, int64_t tokens);
/* True while the job is paused waiting for credit. */
int local_job_waiting_credit(local_job *j);
/* 1 once the job ended (local_job_wait would not wait). */
int local_job_done(local_job *j);
/* Caps generation speed (tokens/s per job; 0 = unlimited), e.g. to keep a small device cool. */
void local_svc_set_max_tps(local_svc *s, double tps);
void local_job_release(local_job *j); /* NULL ok */

#endif
