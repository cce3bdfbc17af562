/* llm/sample — choosing the next token from logits.
 *
 * The chain, in llama.cpp's order: repetition/frequency/presence penalties over the last
 * penalty_last_n accepted tokens, then top-k, top-p, min-p, temperature, and a draw from
 * the softmax with the sampler's own PRNG (xoshiro256**, seeded with splitmix64, so a
 * seed gives the same sequence on every machine). temp <= 0 is greedy: the argmax of the
 * penalized logits (lowest id on ties), no filters, no randomness.
 *
 * Penalties (llama.cpp's formulas), for a token seen count > 0 times in the window:
 *   logit = logit > 0 ? logit / repeat_penalty : logit * repeat_penalty
 *   logit -= count * freq_penalty + presence_penalty
 *
 * Every buffer (candidates, counts) is sized n_vocab and allocated by sample_new; sampling
 * a token never allocates. A sampler belongs to one thread at a time. */
#ifndef APIARY_LLM_SAMPLE_H
#define APIARY_LLM_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#define SAMPLE_MAX_LAST_N 8192

typedef struct sample_params {
  float temp;             /* <= 0: greedy */
  int top_k;              /* keep the k most likely; <= 0: off */
  float top_p;            /* keep the smallest set with probability >= top_p; >= 1: off */
  float min_p;            /* keep p >= min_p * p_max; <= 0: off */
  float repeat_penalty;   /* 1: off */
  float freq_penalty;     /* 0: off */
  float presence_penalty; /* 0: off */
  int penalty_last_n;     /* window of accepted tokens the penalties look at; 0: off */
  uint64_t seed;          /* PRNG seed */
} sample_params;

/* One surviving candidate after filtering. */
typedef struct sample_cand {
  int32_t id;
  float logit; /* after penalties and temperature */
  float p;     /* probability among the survivors */
} sample_cand;

typedef struct sampler sampler;

/* temp 0.8, top_k 40, top_p 0.95, min_p 0.05, penalties off (repeat 1.0, last_n 64), seed 0. */
sample_params sample_default_params(void);

/* Allocates a sampler for n_vocab tokens. Returns 0 or ERR_INVAL / ERR_NOMEM; *out owned. */
int sample_new(int n_vocab, const sample_params *p, sampler **out);
void sample_free(sampler *s); /* NULL is a no-op */
/* Forgets the accepted tokens and restarts the PRNG from the seed. */
void sample_reset(sampler *s);
/* Sets the parameters (penalty window change keeps the most recent tokens). ERR_INVAL on
 * out-of-range values. */
int sample_set_params(sampler *s, const sample_params *p);
const sample_params *sample_get_params(const sampler *s);

/* Records a token as part of the history the penalties look at (prompt tokens too, if the
 * caller wants them penalized; generated tokens are accepted by sample_next). */
void sample_accept(sampler *s, int32_t id);

/* Picks the next token from logits[n_vocab] (modified in place: penalties are applied),
 * accepts it and returns it. */
int32_t sample_next(sampler *s, float *logits);

/* The steps, exposed for tests and for callers that want the distribution. */
/* Applies the penalties to logits[n_vocab] in place. */
void sample_apply_penalties(sampler *s, float *logits);
/* Argmax (lowest id on ties). */
int32_t sample_argmax(const float *logits, int n);
/* Runs penalties, top-k, top-p, min-p and temperature and points *out at the survivors
 * (owned by the sampler, valid until the next call), sorted by decreasing probability,
 * with p normalized over them. Returns their count (>= 1). Greedy params give one. */
int sample_candidates(sampler *s, float *logits, const sample_cand **out);
/* Next PRNG value in [0, 1). */
double sample_uniform(sampler *s);

#endif
