/* llm/sample — penalties, top-k/top-p/min-p, temperature and a seeded draw; see sample.h.
 *
 * Candidates live in one array of n_vocab entries allocated at sample_new. top-k selects
 * with a size-k min-heap straight from the logits (O(n log k)); a full sort only happens
 * when top-p is on without top-k. Ties are broken by the lower token id everywhere, so
 * results never depend on sort stability. The penalty window is a ring of the last
 * penalty_last_n accepted ids plus a per-token count; applying the penalties touches only
 * the tokens in the window (a stamp array marks the ones already done this call). */
#include "llm/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

struct sampler {
  sample_params p;
  int n_vocab;
  sample_cand *cand;  /* [n_vocab] working candidates */
  int32_t *count;     /* [n_vocab] occurrences in the penalty window */
  uint32_t *stamp;    /* [n_vocab] last penalty pass that touched the token */
  uint32_t cur_stamp;
  int32_t *ring;      /* [SAMPLE_MAX_LAST_N] accepted ids, oldest first from ring_head */
  int ring_head;      /* index of the oldest entry */
  int ring_n;         /* entries in the window (<= penalty_last_n) */
  uint64_t rng[4];    /* xoshiro256** state */
};

/* ---- PRNG ----------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
  uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return r;
}

double sample_uniform(sampler *s) { return (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53; }

static void seed_rng(sampler *s) {
  uint64_t x = s->p.seed;
  for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

sample_params sample_default_params(void) {
  return (sample_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                         .freq_penalty = 0.0f, .presence_penalty = 0.0f, .penalty_last_n = 64, .seed = 0};
}

static int params_ok(const sample_params *p) {
  return isfinite(p->temp) && isfinite(p->top_p) && isfinite(p->min_p) && isfinite(p->repeat_penalty) &&
         p->repeat_penalty > 0 && isfinite(p->freq_penalty) && isfinite(p->presence_penalty) &&
         p->penalty_last_n >= 0 && p->penalty_last_n <= SAMPLE_MAX_LAST_N;
}

int sample_new(int n_vocab, const sample_params *p, sampler **out) {
  *out = NULL;
  if (n_vocab <= 0 || !params_ok(p)) return ERR_INVAL;
  sampler *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  s->n_vocab = n_vocab;
  s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
  s->count = calloc((size_t)n_vocab, sizeof *s->count);
  s->stamp = calloc((size_t)n_vocab, sizeof *s->stamp);
  s->ring = malloc(SAMPLE_MAX_LAST_N * sizeof *s->ring);
  if (!s->cand || !s->count || !s->stamp || !s->ring) {
    sample_free(s);
    return ERR_NOMEM;
  }
  s->p = *p;
  seed_rng(s);
  *out = s;
  return 0;
}

void sample_free(sampler *s) {
  if (!s) return;
  free(s->cand);
  free(s->count);
  free(s->stamp);
  free(s->ring);
  free(s);
}

void sample_reset(sampler *s) {
  for (int i = 0; i < s->ring_n; i++) s->count[s->ring[(s->ring_head + i) % SAMPLE_MAX_LAST_N]] = 0;
  s->ring_head = s->ring_n = 0;
  seed_rng(s);
}

const sample_params *sample_get_params(const sampler *s) { return &s->p; }

int sample_set_params(sampler *s, const sample_params *p) {
  if (!params_ok(p)) return ERR_INVAL;
  int reseed = p->seed != s->p.seed;
  s->p = *p;
  while (s->ring_n > p->penalty_last_n) { /* drop the oldest beyond the new window */
    s->count[s->ring[s->ring_head]]--;
    s->ring_head = (s->ring_head + 1) % SAMPLE_MAX_LAST_N;
    s->ring_n--;
  }
  if (reseed) seed_rng(s);
  return 0;
}

void sample_accept(sampler *s, int32_t id) {
  if (id < 0 || id >= s->n_vocab || s->p.penalty_last_n == 0) return;
  if (s->ring_n == s->p.penalty_last_n) {
    s->count[s->ring[s->ring_head]]--;
    s->ring_head = (s->ring_head + 1) % SAMPLE_MAX_LAST_N;
    s->ring_n--;
  }
  s->ring[(s->ring_head + s->ring_n) % SAMPLE_MAX_LAST_N] = id;
  s->ring_n++;
  s->count[id]++;
}

/* ---- steps ---------------------------------------------------------------------------- */

void sample_apply_penalties(sampler *s, float *logits) {
  const sample_params *p = &s->p;
  if (p->repeat_penalty == 1.0f && p->freq_penalty == 0.0f && p->presence_penalty == 0.0f) return;
  if (++s->cur_stamp == 0) { /* wrapped: clear the stamps once every 2^32 calls */
    memset(s->stamp, 0, (size_t)s->n_vocab * sizeof *s->stamp);
    s->cur_stamp = 1;
  }
  for (int i = 0; i < s->ring_n; i++) {
    int32_t id = s->ring[(s->ring_head + i) % SAMPLE_MAX_LAST_N];
    if (s->stamp[id] == s->cur_stamp) continue;
    s->stamp[id] = s->cur_stamp;
    int c = s->count[id];
    float l = logits[id];
    l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
    l -= (float)c * p->freq_penalty + (float)(c > 0) * p->presence_penalty;
    logits[id] = l;
  }
}

int32_t sample_argmax(const float *logits, int n) {
  int32_t best = 0;
  float mv = logits[0];
  for (int i = 1; i < n; i++)
    if (logits[i] > mv) mv = logits[i], best = i;
  return best;
}

/* a ranks before b: higher logit, then lower id. */
static int before(const sample_cand *a, const sample_cand *b) {
  return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cmp_cand(const void *x, const void *y) {
  const sample_cand *a = x, *b = y;
  return before(a, b) ? -1 : before(b, a) ? 1 : 0;
}

/* Min-heap on rank (the root is the worst of the kept k). */
static void heap_down(sample_cand *h, int n, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && before(&h[m], &h[l])) m = l;
    if (r < n && before(&h[m], &h[r])) m = r;
    if (m == i) return;
    sample_cand t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
}

/* The top k of logits into s->cand[0..k), sorted. */
static int select_top_k(sampler *s, const float *logits, int k) {
  sample_cand *h = s->cand;
  for (int i = 0; i < k; i++) h[i] = (sample_cand){i, logits[i], 0};
  for (int i = k / 2 - 1; i >= 0; i--) heap_down(h, k, i);
  for (int i = k; i < s->n_vocab; i++) {
    if (logits[i] < h[0].logit) continue; /* the common case: not in the top k */
    sample_cand c = {i, logits[i], 0};
    if (before(&c, &h[0])) {
      h[0] = c;
      heap_down(h, k, 0);
    }
  }
  qsort(h, (size_t)k, sizeof *h, cmp_cand);
  return k;
}

/* top-p over all n_vocab logits without sorting them all. The survivors are a prefix of
 * the sorted order; bucketing the logits by distance below the max (64 buckets over 16
 * nats, the rest in the last one) tells how many buckets hold that prefix, and only their
 * tokens are sorted. Probabilities are normalized over every token. Returns the survivor
 * count, sorted in s->cand. */
#define TOPP_BUCKETS 64
#define TOPP_RANGE 16.0f
static int topp_bucket(float mx, float l) {
  float b = (mx - l) * (TOPP_BUCKETS / TOPP_RANGE);
  return b < TOPP_BUCKETS - 1 ? (int)b : TOPP_BUCKETS - 1;
}

static int top_p_all(sampler *s, const float *logits, float top_p) {
  const int n = s->n_vocab;
  float mx = logits[0];
  for (int i = 1; i < n; i++)
    if (logits[i] > mx) mx = logits[i];
  double sum = 0, mass[TOPP_BUCKETS] = {0};
  for (int i = 0; i < n; i++) {
    double e = expf(logits[i] - mx);
    sum += e;
    mass[topp_bucket(mx, logits[i])] += e;
  }
  int last = 0; /* buckets 0..last hold the prefix (checked below, widened if rounding lied) */
  for (double cum = mass[0]; last < TOPP_BUCKETS - 1 && cum < top_p * sum; cum += mass[++last]) {}
  for (;; last++) {
    sample_cand *c = s->cand;
    int m = 0;
    for (int i = 0; i < n; i++)
      if (topp_bucket(mx, logits[i]) <= last) c[m++] = (sample_cand){i, logits[i], 0};
    qsort(c, (size_t)m, sizeof *c, cmp_cand);
    double cum = 0;
    for (int i = 0; i < m; i++) {
      cum += expf(c[i].logit - mx) / sum;
      if (cum >= top_p) return i + 1;
    }
    if (last == TOPP_BUCKETS - 1) return m;
  }
}

/* p = softmax(logit) over c[0..n). */
static void softmax_cands(sample_cand *c, int n) {
  float mx = c[0].logit;
  for (int i = 1; i < n; i++)
    if (c[i].logit > mx) mx = c[i].logit;
  double sum = 0;
  for (int i = 0; i < n; i++) {
    c[i].p = expf(c[i].logit - mx);
    sum += c[i].p;
  }
  for (int i = 0; i < n; i++) c[i].p = (float)(c[i].p / sum);
}

/* Penalties, filters and temperature. Sorted output when `sorted` (else only when a
 * filter needed it). Returns the survivor count. */
static int filter(sampler *s, float *logits, int sorted) {
  const sample_params *p = &s->p;
  sample_apply_penalties(s, logits);
  sample_cand *c = s->cand;
  int n = s->n_vocab;
  if (p->temp <= 0) {
    int32_t id = sample_argmax(logits, n);
    c[0] = (sample_cand){id, logits[id], 1.0f};
    return 1;
  }
  int is_sorted = 0;
  if (p->top_k > 0 && p->top_k < n) {
    n = select_top_k(s, logits, p->top_k);
    is_sorted = 1;
  } else if (p->top_p < 1.0f) {
    n = top_p_all(s, logits, p->top_p);
    is_sorted = 1;
  } else {
    for (int i = 0; i < n; i++) c[i] = (sample_cand){i, logits[i], 0};
  }
  if (p->top_p < 1.0f && !(p->top_k <= 0 || p->top_k >= s->n_vocab)) { /* top-p after top-k */
    softmax_cands(c, n);
    float cum = 0;
    for (int i = 0; i < n; i++) {
      cum += c[i].p;
      if (cum >= p->top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (p->min_p > 0.0f) {
    float mx = c[0].logit;
    for (int i = 1; i < n; i++)
      if (c[i].logit > mx) mx = c[i].logit;
    float thr = mx + logf(p->min_p);
    int m = 0;
    for (int i = 0; i < n; i++) /* order-preserving compaction */
      if (c[i].logit >= thr) c[m++] = c[i];
    n = m > 0 ? m : 1;
  }
  for (int i = 0; i < n; i++) c[i].logit /= p->temp;
  if (sorted && !is_sorted) qsort(c, (size_t)n, sizeof *c, cmp_cand);
  softmax_cands(c, n);
  return n;
}

int sample_candidates(sampler *s, float *logits, const sample_cand **out) {
  int n = filter(s, logits, 1);
  *out = s->cand;
  return n;
}

int32_t sample_next(sampler *s, float *logits) {
  int n = filter(s, logits, 0);
  int32_t id = s->cand[0].id;
  if (n > 1) {
    double u = sample_uniform(s), acc = 0;
    id = s->cand[n - 1].id; /* rounding left over at the end */
    for (int i = 0; i < n; i++) {
      acc += s->cand[i].p;
      if (u < acc) {
        id = s->cand[i].id;
        break;
      }
    }
  }
  sample_accept(s, id);
  return id;
}
