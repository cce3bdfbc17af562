/* llm/engine — a running model: KV cache, forward pass, thread pool, generation loop.
 *
 * An engine is one inference context over a loaded model (llm/model): it owns a KV cache
 * (F32, or F16 on request) of n_ctx positions, every run buffer sized for n_batch tokens (all allocated by
 * engine_new; evaluating never allocates), and a thread pool of n_threads (the calling
 * thread is one of them).
 *
 * engine_eval runs tokens at positions pos .. pos+n-1 through the model, writing their
 * keys/values into the cache, and returns the last token's logits. A batch is processed
 * layer by layer as matrix-matrix products (each weight row is read once per batch), in
 * pieces of at most n_batch tokens. Positions before pos must already be in the cache.
 *
 * Numerics follow llama.cpp (see docs/engine.md): activations are converted to the weight
 * type's vec_dot_type once per row (Q8_0 for Q8_0/Q4 weights), RMSNorm accumulates in
 * double, RoPE angles are advanced by repeated multiplication, softmax subtracts the max.
 * Every output element is computed by one thread from fixed-size chunks, so results are
 * bit-identical for any thread count, and a batch gives bit for bit the logits of feeding
 * the same tokens one by one (see docs/engine.md).
 *
 * Threads: an engine is used by one thread at a time, except engine_cancel, which any
 * thread (or a signal handler) may call. Many engines may share one model. */
#ifndef APIARY_LLM_ENGINE_H
#define APIARY_LLM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "llm/model.h"
#include "llm/grammar.h"
#include "llm/sample.h"

#define ENGINE_DEFAULT_CTX 4096
#define ENGINE_DEFAULT_BATCH 256
#define ENGINE_MAX_STOP 8
#define ENGINE_MAX_STOP_LEN 256

typedef struct engine engine;
typedef struct tok tok;

typedef struct engine_params {
  int n_ctx;     /* KV cache positions; 0: min(model context, ENGINE_DEFAULT_CTX) */
  int n_batch;   /* most tokens per forward pass; 0: ENGINE_DEFAULT_BATCH (capped at n_ctx) */
  int n_threads; /* 0: the number of online CPUs (at most 8) */
  int kv_f16;    /* 1: F16 KV cache (half the memory; queries and attention weights are
                    converted to F16 for the products, as llama.cpp does); 0: F32 */
} engine_params;

engine_params engine_default_params(void);

/* Creates an engine over m (borrowed; must outlive the engine). On failure returns <0
 * (ERR_INVAL for bad params, ERR_NOMEM) with a one-line reason in err. */
int engine_new(const model *m, const engine_params *p, engine **out, char *err, size_t err_cap);
void engine_free(engine *e); /* NULL is a no-op */

const model *engine_model(const engine *e);
int engine_n_ctx(const engine *e);
int engine_n_batch(const engine *e);
int engine_n_threads(const engine *e);
int engine_n_vocab(const engine *e);

/* Evaluates tokens[0..n) at positions pos..pos+n-1 and writes the last token's logits to
 * logits_out[n_vocab] (may be NULL when not wanted). Returns 0; ERR_INVAL for a token id
 * out of range or n <= 0; ERR_RANGE when pos + n > n_ctx or pos is beyond the cached
 * prefix; ERR_CANCELED when engine_cancel was called (the cache then holds the positions
 * before pos, plus possibly garbage after them, which later evals overwrite). */
int engine_eval(engine *e, const int32_t *tokens, int n, int pos, float *logits_out);

/* ---- embeddings ----------------------------------------------------------------------- */

/* How per-token hidden states become one vector: llama.cpp's enum llama_pooling_type, the
 * values of the GGUF key "{arch}.pooling_type". */
typedef enum engine_pooling {
  ENGINE_POOL_NONE = 0, /* one vector per token (not pooled) */
  ENGINE_POOL_MEAN = 1, /* the average over the tokens */
  ENGINE_POOL_CLS = 2,  /* the first token's */
  ENGINE_POOL_LAST = 3, /* the last token's */
  ENGINE_POOL_RANK = 4, /* a classifier head's score (reranking models) */
} engine_pooling;

/* The embedding of tokens[0..n): each token's final hidden state after the output norm (the
 * input of the lm_head, llama.cpp's "result_norm"), pooled as pooling says (MEAN, CLS or LAST; else
 * ERR_UNSUPPORTED), into out[engine_n_embd] (not normalized). The tokens are evaluated from
 * position 0 in batches of n_batch, so the cache then holds them (no prefix is reused: mean
 * pooling needs every token's state). Errors as engine_eval (ERR_RANGE when n > n_ctx). */
int engine_embed(engine *e, const int32_t *tokens, int n, engine_pooling pooling, float *out);
int engine_n_embd(const engine *e);
/* The pooling m's embeddings use: its "{arch}.pooling_type" when that is mean, cls or
 * last, and mean when the file has none (decoder-only chat models never set it; mean over
 * the whole text is what sentence-embedding practice and llama.cpp's --pooling mean give).
 * 0, or ERR_UNSUPPORTED with a reason in err for none (per-token vectors) and rank. */
int engine_embd_pooling(const model *m, engine_pooling *out, char *err, size_t cap);
/* Scales v[0..n) to unit Euclidean length (sum of squares in double; a zero vector stays
 * zero), as llama.cpp's common_embd_normalize with embd_norm = 2. */
void engine_embd_normalize(float *v, int n);

/* Tokens currently held in the KV cache (positions 0..n-1), for prefix reuse. */
int engine_n_cached(const engine *e);
const int32_t *engine_cached_tokens(const engine *e);
/* Forgets cached positions >= n (0 clears the cache). */
void engine_truncate(engine *e, int n);

/* Asks a running eval/generate to stop as soon as possible (checked between layers and
 * tokens). Async-signal-safe. The request stays until engine_cancel_reset. */
void engine_cancel(engine *e);
void engine_cancel_reset(engine *e);
int engine_canceled(const engine *e);

/* ---- generation ----------------------------------------------------------------------- */

typedef enum engine_stop {
  ENGINE_STOP_MAX_TOKENS = 0, /* generated max_tokens */
  ENGINE_STOP_EOG,            /* the model produced an end-of-generation token */
  ENGINE_STOP_STRING,         /* the text produced one of the stop strings */
  ENGINE_STOP_CTX,            /* the context is full */
  ENGINE_STOP_CALLBACK,       /* the token callback asked to stop */
  ENGINE_STOP_CANCELED,       /* engine_cancel */
  ENGINE_STOP_GRAMMAR,        /* the grammar is complete and allows nothing more (or no token fits it) */
} engine_stop;

typedef struct engine_gen_params {
  int max_tokens;                  /* most tokens to generate (default 128) */
  int stop_at_eog;                 /* 1 (default): stop at EOS/EOT without emitting it */
  int n_stop;                      /* number of stop strings (<= ENGINE_MAX_STOP) */
  const char *stop[ENGINE_MAX_STOP]; /* borrowed; the text is cut before the first match */
  int penalize_prompt;             /* 1: prompt tokens enter the penalty window (default 0) */
  /* Resuming an answer another engine started (failover): the last n_resume ids of the
   * prompt are that answer's tokens so far, of whose text resume_sent bytes were already
   * delivered. They enter the penalty window as generated tokens do, and their text past
   * resume_sent (what the other engine still held back: the start of a possible stop
   * string) comes out first, so the joined text equals one uninterrupted generation. */
  int n_resume;                    /* 0..n_prompt */
  size_t resume_sent;
  /* Constrained decoding (llm/grammar): every sampled token is one the matcher allows (its
   * mask is applied to the logits first; end-of-generation only once the grammar is
   * complete), and each is fed to it. Generation ends when the grammar allows nothing more.
   * Borrowed; already advanced past the resumed tokens. NULL: free text. */
  grammar_matcher *grammar;
  /* Called (with the token callback's user) with each position's raw logits just before a
   * token is drawn from them: the model's own distribution, before the grammar mask and the
   * sampler's penalties, temperature and filters (llm/logprob reports it). NULL: none. */
  void (*on_logits)(void *user, const float *logits, int n_vocab);
} engine_gen_params;

/* Called once per generated token, in order: id is the token, text/len the newly final
 * text (may be empty: an incomplete UTF-8 sequence, or text held back because it could be
 * the start of a stop string). Return nonzero to stop. When generation ends with text
 * still held back (and no stop string matched), one last call passes id -1 and that
 * text. text is not NUL-terminated and is valid only during the call. */
typedef int (*engine_token_cb)(void *user, int32_t id, const char *text, size_t len);

typedef struct engine_gen_stats {
  int n_prompt;        /* prompt tokens */
  int n_prompt_eval;   /* of which evaluated (the rest were reused from the cache) */
  int n_gen;           /* tokens generated (passed to the callback) */
  double prompt_ms;    /* time to evaluate the prompt */
  double gen_ms;       /* time from the first to the last generated token's eval */
  engine_stop stop;    /* why generation ended */
} engine_gen_stats;

engine_gen_params engine_default_gen_params(void);

/* Generates from prompt[0..n_prompt) (n_prompt >= 1): reuses the longest cached prefix,
 * evaluates the rest, then samples with s (borrowed; its history is not reset) until a
 * stop condition. The text goes through t's stream detokenizer (t borrowed). Returns 0
 * (why it stopped in stats_out->stop, ENGINE_STOP_CANCELED included) or <0 on error. */
int engine_generate(engine *e, const tok *t, sampler *s, const int32_t *prompt, int n_prompt,
                    const engine_gen_params *gp, engine_token_cb cb, void *user, engine_gen_stats *stats_out);

#endif
