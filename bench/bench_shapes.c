/* bench/bench_shapes — engine speed at real model shapes, beside llama.cpp's figures.
 *
 *   bench_shapes            (run by bench/run; needs $APIARY_BIN and $APIARY_SHARED)
 *
 * Synthesizes smollm2-135m, qwen2.5-0.5b and llama3.2-1b in Q8_0, Q4_0 and Q4_K_M with
 * `apiary model synth --pad-vocab` (random weights at the real shapes, the vocabulary padded
 * to the real size) into build/bench-models/ (kept across runs: a file that exists is not
 * made again), then runs `apiary bench --json -p 128 -n 64` in a fresh process at 1 and 2
 * threads for each (so each peak RSS is that model's alone). Bigger shapes get fewer
 * repetitions to keep `make bench` under ten minutes. Prints tokens/s, the llama.cpp
 * reference at 2 threads (llama-bench on the same kind of machine, tok/s) and our/their
 * ratio. $BENCH_SHAPES and $BENCH_TYPES (comma lists) narrow the set. Asserts nothing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "llm/synth.h"

typedef struct ref {
  const char *shape;
  int reps;              /* repetitions per test */
  double pp[3], tg[3];   /* llama.cpp, 2 threads: Q8_0, Q4_0, Q4_K_M */
} ref;

static const ref refs[] = {
    {"smollm2-135m", 3, {568, 818, 517}, {84.5, 116, 95.0}},
    {"qwen2.5-0.5b", 2, {198, 283, 178}, {31.3, 42.0, 35.6}},
    {"llama3.2-1b", 1, {79.6, 113, 114}, {13.0, 19.4, 18.5}},
};
static const char *const types[] = {"Q8_0", "Q4_0", "Q4_K_M"};

static int selected(const char *env, const char *name) {
  const char *list = getenv(env);
  if (!list || !*list) return 1;
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)); p += n)
    if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ',')) return 1;
  return 0;
}

/* Runs cmd and parses its stdout as one JSON object (NULL on failure). */
static json_t *run_json(const char *cmd) {
  FILE *f = popen(cmd, "r");
  if (!f) return NULL;
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = 0;
  int st = pclose(f);
  if (st != 0) return NULL;
  return json_loads(buf, 0, NULL);
}

int main(void) {
  const char *bin = getenv("APIARY_BIN"), *shared = getenv("APIARY_SHARED");
  if (!bin || !*bin) bin = "build/apiary";
  char vocab[4096];
  snprintf(vocab, sizeof vocab, "%s/models/stories15M-Q8_0.gguf", shared && *shared ? shared : "../shared");
  struct stat sb;
  if (stat(vocab, &sb) != 0) {
    printf("bench_shapes: no tokenizer source (%s); set APIARY_SHARED; skipping\n", vocab);
    return 0;
  }
  mkdir("build", 0755);
  mkdir("build/bench-models", 0755);
  printf("random weights at real shapes (vocabulary padded to the real size); pp128 / tg64 tok/s,\n"
         "mean of R runs after a warm-up; llama.cpp = its figures at 2 threads; ratio = ours/theirs at 2 threads\n\n");
  printf("%-13s %-7s %7s %3s %9s %8s %9s %8s %14s %13s %9s\n", "shape", "type", "MiB", "R", "pp128 1t", "tg64 1t",
         "pp128 2t", "tg64 2t", "llama.cpp 2t", "ratio pp/tg", "RSS MB");
  for (size_t si = 0; si < sizeof refs / sizeof *refs; si++) {
    const ref *r = &refs[si];
    if (!selected("BENCH_SHAPES", r->shape)) continue;
    for (int ti = 0; ti < 3; ti++) {
      if (!selected("BENCH_TYPES", types[ti])) continue;
      char path[512], cmd[8192];
      /* The vocabulary size is in the name, so a file made for an older shape is not reused. */
      const synth_shape *sh = synth_find_shape(r->shape);
      snprintf(path, sizeof path, "build/bench-models/%s-v%d-%s.gguf", r->shape, sh ? sh->n_vocab : 0, types[ti]);
      if (stat(path, &sb) != 0) {
        fprintf(stderr, "bench_shapes: synthesizing %s (once; kept in build/bench-models)\n", path);
        snprintf(cmd, sizeof cmd, "'%s' -q model synth --shape %s --type %s --pad-vocab --vocab-from '%s' -o '%s' -t 2",
                 bin, r->shape, types[ti], vocab, path);
        int st = system(cmd);
        if (st != 0) {
          printf("%-13s %-7s synth failed (exit %d)\n", r->shape, types[ti], WIFEXITED(st) ? WEXITSTATUS(st) : -1);
          continue;
        }
      }
      double pp[2] = {0}, tg[2] = {0}, rss = 0, mib = 0;
      int ok = 1;
      for (int t = 1; t <= 2 && ok; t++) {
        snprintf(cmd, sizeof cmd, "'%s' -q bench '%s' --json -t %d -p 128 -n 64 -r %d", bin, path, t, r->reps);
        json_t *j = run_json(cmd);
        if (!j) {
          printf("%-13s %-7s bench failed (the engine may not support this model; see 'apiary bench %s')\n",
                 r->shape, types[ti], path);
          ok = 0;
          break;
        }
        pp[t - 1] = json_real_value(json_object_get(j, "pp_tps"));
        tg[t - 1] = json_real_value(json_object_get(j, "tg_tps"));
        double m = json_real_value(json_object_get(j, "peak_rss_mb"));
        if (m > rss) rss = m;
        mib = json_real_value(json_object_get(j, "weights_mb"));
        json_decref(j);
      }
      if (!ok) continue;
      char refs_s[32], ratio[32];
      snprintf(refs_s, sizeof refs_s, "%.1f/%.1f", r->pp[ti], r->tg[ti]);
      snprintf(ratio, sizeof ratio, "%.2f/%.2f", pp[1] / r->pp[ti], tg[1] / r->tg[ti]);
      printf("%-13s %-7s %7.1f %3d %9.1f %8.1f %9.1f %8.1f %14s %13s %9.1f\n", r->shape, types[ti], mib, r->reps,
             pp[0], tg[0], pp[1], tg[1], refs_s, ratio, rss);
      fflush(stdout);
    }
  }
  return 0;
}
