/* llm/logprob — log-probabilities of tokens and their records; see logprob.h. */
#include "llm/logprob.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/tok.h"

double logprob_lse(const float *logits, int n) {
  float mx = -INFINITY;
  for (int i = 0; i < n; i++)
    if (logits[i] > mx) mx = logits[i];
  if (mx == -INFINITY) return -INFINITY;
  double sum = 0;
  for (int i = 0; i < n; i++) sum += exp((double)logits[i] - (double)mx);
  return (double)mx + log(sum);
}

int logprob_top(const float *logits, int n, int k, int32_t *ids_out) {
  if (k > LOGPROB_MAX_TOP) k = LOGPROB_MAX_TOP;
  if (k > n) k = n;
  if (k <= 0) return 0;
  int have = 0;
  for (int i = 0; i < n; i++) { /* insertion into the k best so far (strictly larger moves up: lower id wins ties) */
    float v = logits[i];
    if (have == k && !(v > logits[ids_out[k - 1]])) continue;
    int at = have < k ? have++ : k - 1;
    while (at > 0 && v > logits[ids_out[at - 1]]) {
      ids_out[at] = ids_out[at - 1];
      at--;
    }
    ids_out[at] = i;
  }
  return have;
}

int logprob_log_init(logprob_log *l, int cap, int k) {
  memset(l, 0, sizeof *l);
  if (cap < 0 || k < 0 || k > LOGPROB_MAX_TOP) return ERR_INVAL;
  l->k = k;
  l->cap = cap;
  l->recs = cap ? calloc((size_t)cap, sizeof *l->recs) : NULL;
  if (cap && !l->recs) return ERR_NOMEM;
  buf_init(&l->bytes);
  if (buf_reserve(&l->bytes, (size_t)cap * (size_t)(k + 1) * 8)) { /* pieces average a few bytes */
    logprob_log_deinit(l);
    return ERR_NOMEM;
  }
  return 0;
}

void logprob_log_deinit(logprob_log *l) {
  free(l->recs);
  buf_deinit(&l->bytes);
  memset(l, 0, sizeof *l);
}

/* t's piece for id into the byte store; fills off/len. */
static int add_piece(logprob_log *l, const tok *t, int32_t id, logprob_tok *out) {
  char small[256];
  int n = tok_piece(t, id, 1, small, sizeof small);
  if (n < 0) return n;
  out->off = (uint32_t)l->bytes.len;
  out->len = (uint32_t)n;
  if ((size_t)n <= sizeof small) return buf_append(&l->bytes, small, (size_t)n);
  int rc = buf_reserve(&l->bytes, (size_t)n); /* a long piece: read it again into the store */
  if (rc) return rc;
  tok_piece(t, id, 1, (char *)l->bytes.ptr + l->bytes.len, (size_t)n);
  l->bytes.len += (size_t)n;
  return 0;
}

int logprob_log_add(logprob_log *l, const tok *t, const float *logits, int n_vocab, double lse, int32_t id,
                    int prompt) {
  if (l->n >= l->cap) return ERR_RANGE;
  logprob_rec *r = &l->recs[l->n];
  memset(r, 0, sizeof *r);
  r->prompt = prompt;
  r->tok.id = id;
  r->tok.logprob = logits ? (float)((double)logits[id] - lse) : NAN;
  int rc = add_piece(l, t, id, &r->tok);
  if (rc) return rc;
  if (logits && l->k) {
    int32_t ids[LOGPROB_MAX_TOP];
    r->n_top = logprob_top(logits, n_vocab, l->k, ids);
    for (int i = 0; i < r->n_top; i++) {
      r->top[i].id = ids[i];
      r->top[i].logprob = (float)((double)logits[ids[i]] - lse);
      if ((rc = add_piece(l, t, ids[i], &r->top[i]))) return rc;
    }
  }
  l->n++;
  return 0;
}

int logprob_log_copy(const logprob_log *l, int from, int n, logprob_rec *out, buf *bytes_out) {
  for (int i = 0; i < n; i++) {
    const logprob_rec *r = &l->recs[from + i];
    out[i] = *r;
    logprob_tok *ts[1 + LOGPROB_MAX_TOP];
    ts[0] = &out[i].tok;
    for (int k = 0; k < r->n_top; k++) ts[1 + k] = &out[i].top[k];
    for (int k = 0; k < 1 + r->n_top; k++) {
      uint32_t off = ts[k]->off;
      ts[k]->off = (uint32_t)bytes_out->len;
      if (buf_append(bytes_out, l->bytes.ptr + off, ts[k]->len)) return ERR_NOMEM;
    }
  }
  return 0;
}
