/* bench/bench_engine — prompt processing and generation speed, like llama-bench.
 *
 *   bench_engine [MODEL.gguf ...]     (default: $APIARY_SHARED/models/stories15M-{Q8_0,F32}.gguf)
 *
 * For each model and thread count (1 and 2, or $BENCH_THREADS="1,2,4"): pp128 evaluates 128
 * tokens in one batch from an empty cache; tg64 evaluates 64 tokens one at a time (each
 * with the logits of its position), also from an empty cache. Each test runs once to warm
 * up, then $BENCH_REPS times (default 5); the table shows mean tokens/s, the standard
 * deviation and the best run (on a shared machine the best run is the figure least
 * disturbed by other load), then the process's peak RSS. Tokens are fixed pseudo-random ids. Nothing here
 * asserts timings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/err.h"
#include "llm/engine.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Tokens per second of one test run. */
static double run_pp(engine *e, const int32_t *toks, int n, float *logits) {
  engine_truncate(e, 0);
  double t0 = now_s();
  int rc = engine_eval(e, toks, n, 0, logits);
  double t = now_s() - t0;
  if (rc) {
    fprintf(stderr, "bench_engine: eval failed: %s\n", err_str(rc));
    exit(1);
  }
  return n / t;
}

static double run_tg(engine *e, const int32_t *toks, int n, float *logits) {
  engine_truncate(e, 0);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    int rc = engine_eval(e, toks + i, 1, i, logits);
    if (rc) {
      fprintf(stderr, "bench_engine: eval failed: %s\n", err_str(rc));
      exit(1);
    }
  }
  return n / (now_s() - t0);
}

static void bench_model(const char *path, const int *threads, int n_threads, int reps) {
  char err[512], desc[256];
  model *m;
  int rc = model_load(path, &m, err, sizeof err);
  if (rc) {
    fprintf(stderr, "bench_engine: %s: %s\n", path, err);
    return;
  }
  model_describe(m, desc, sizeof desc);
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  printf("%s: %s, %.1f MiB of weights, %.2fM params\n", base, desc, (double)m->weight_bytes / (1 << 20),
         (double)m->n_params / 1e6);
  int32_t toks[128];
  uint32_t x = 12345;
  toks[0] = 1;
  for (int i = 1; i < 128; i++) {
    x = x * 1664525u + 1013904223u;
    toks[i] = (int32_t)((x >> 8) % (uint32_t)m->hp.n_vocab);
  }
  float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
  printf("  %-8s %7s %12s %10s %10s\n", "test", "threads", "t/s", "stddev", "best");
  for (int ti = 0; ti < n_threads; ti++) {
    engine_params ep = engine_default_params();
    ep.n_threads = threads[ti];
    ep.n_ctx = 256;
    ep.n_batch = 128;
    engine *e;
    if ((rc = engine_new(m, &ep, &e, err, sizeof err))) {
      fprintf(stderr, "bench_engine: %s\n", err);
      break;
    }
    for (int test = 0; test < 2; test++) {
      double sum = 0, sum2 = 0, best = 0;
      int n = test == 0 ? 128 : 64;
      for (int r = -1; r < reps; r++) {
        double v = test == 0 ? run_pp(e, toks, n, logits) : run_tg(e, toks, n, logits);
        if (r < 0) continue; /* warm-up */
        sum += v;
        sum2 += v * v;
        best = fmax(best, v);
      }
      double mean = sum / reps, sd = reps > 1 ? sqrt(fmax(0, (sum2 - sum * mean) / (reps - 1))) : 0;
      printf("  %-8s %7d %12.1f %10.1f %10.1f\n", test == 0 ? "pp128" : "tg64", threads[ti], mean, sd, best);
    }
    engine_free(e);
  }
  free(logits);
  model_free(m);
}

int main(int argc, char **argv) {
  int threads[16] = {1, 2}, n_threads = 2, reps = 5;
  const char *ts = getenv("BENCH_THREADS");
  if (ts && *ts) {
    n_threads = 0;
    for (const char *p = ts; *p && n_threads < 16;) {
      int v = atoi(p);
      if (v > 0) threads[n_threads++] = v;
      p = strchr(p, ',');
      if (!p) break;
      p++;
    }
  }
  const char *rs = getenv("BENCH_REPS");
  if (rs && atoi(rs) > 0) reps = atoi(rs);
  if (argc > 1) {
    for (int i = 1; i < argc; i++) bench_model(argv[i], threads, n_threads, reps);
  } else {
    const char *shared = getenv("APIARY_SHARED");
    if (!shared) {
      printf("bench_engine: no model given and APIARY_SHARED is not set; skipping\n");
      return 0;
    }
    const char *names[] = {"stories15M-Q8_0.gguf", "stories15M-F32.gguf"};
    for (int i = 0; i < 2; i++) {
      char path[1024];
      snprintf(path, sizeof path, "%s/models/%s", shared, names[i]);
      bench_model(path, threads, n_threads, reps);
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
  printf("llama.cpp, 2 threads, for reference: stories15M Q8_0 pp128 8716 tg64 1464; F32 pp128 10691 tg64 655\n");
  return 0;
}
