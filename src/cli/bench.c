/* cli/bench — `apiary bench MODEL`: prompt processing and generation speed, like
 * llama-bench. pp: one batch of P tokens from an empty cache; tg: N tokens one at a time
 * from an empty cache. One warm-up run, then R repetitions of each; mean and standard
 * deviation in tokens/s, and the process's peak RSS. Tokens are fixed pseudo-random ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/engine.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Tokens/s of one pp run (n tokens in one batch), or <0 on error. */
static double run_pp(engine *e, const int32_t *toks, int n, float *logits, int *rc) {
  engine_truncate(e, 0);
  double t0 = now_s();
  *rc = engine_eval(e, toks, n, 0, logits);
  return n / (now_s() - t0);
}

static double run_tg(engine *e, const int32_t *toks, int n, float *logits, int *rc) {
  engine_truncate(e, 0);
  double t0 = now_s();
  for (int i = 0; i < n && !*rc; i++) *rc = engine_eval(e, toks + i, 1, i, logits);
  return n / (now_s() - t0);
}

static void mean_sd(const double *v, int n, double *mean, double *sd) {
  double s = 0, q = 0;
  for (int i = 0; i < n; i++) s += v[i];
  *mean = s / n;
  for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
  *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return -1;
  *out = (int)v;
  return 0;
}

#define MAX_REPS 100

int cli_bench_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary bench MODEL.gguf [-t THREADS] [-p 128] [-n 64] [-r 5] [--json]\n\n"
      "Measures a model's speed like llama-bench: pp = one batch of P prompt tokens, tg = N\n"
      "tokens generated one at a time (both from an empty cache, fixed pseudo-random ids).\n"
      "One warm-up, then R repetitions; prints mean tokens/s +- standard deviation and peak RSS.\n\n"
      "  -t, --threads N   threads (default 2)\n"
      "  -p, --prompt P    pp batch size (default 128; 0 skips pp)\n"
      "  -n, --gen N       tg tokens (default 64; 0 skips tg)\n"
      "  -r, --reps R      repetitions (default 5)\n"
      "  --json            one JSON object: pp_tps, pp_sd, tg_tps, tg_sd, peak_rss_mb, ...\n";
  cli_common c = {0};
  int threads = 2, np = 128, ng = 64, reps = 5;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"threads", required_argument, 0, 't'},
                                       {"prompt", required_argument, 0, 'p'},
                                       {"gen", required_argument, 0, 'n'},
                                       {"reps", required_argument, 0, 'r'},
                                       {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqt:p:n:r:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    int bad = 0;
    if (opt == 't') bad = parse_int(optarg, 1, 256, &threads);
    else if (opt == 'p') bad = parse_int(optarg, 0, 8192, &np);
    else if (opt == 'n') bad = parse_int(optarg, 0, 8192, &ng);
    else if (opt == 'r') bad = parse_int(optarg, 1, MAX_REPS, &reps);
    else return cli_bad_opt("bench", argv);
    if (bad) return cli_usage_error("bench", "bad value '%s' for -%c", optarg, opt);
  }
  if (argc - optind != 1) return cli_usage_error("bench", "expected one MODEL file");
  if (np == 0 && ng == 0) return cli_usage_error("bench", "-p and -n are both 0: nothing to measure");
  const char *path = argv[optind];
  char err[512], desc[256];
  model *m = NULL;
  engine *e = NULL;
  float *logits = NULL;
  int32_t *toks = NULL;
  int ret = CLI_FAIL, rc = model_load(path, &m, err, sizeof err);
  if (rc) {
    log_error("bench: %s: %s", path, err);
    return CLI_FAIL;
  }
  model_describe(m, desc, sizeof desc);
  engine_params ep = engine_default_params();
  ep.n_threads = threads;
  int need = (np > ng ? np : ng) + 1;
  ep.n_ctx = need < 16 ? 16 : need;
  ep.n_batch = np > 0 ? np : 1;
  if ((rc = engine_new(m, &ep, &e, err, sizeof err))) {
    log_error("bench: %s: %s", path, err);
    goto done;
  }
  int n_tok = np > ng ? np : ng, nv = m->hp.n_vocab;
  toks = malloc((size_t)n_tok * sizeof *toks);
  logits = malloc((size_t)nv * sizeof *logits);
  if (!toks || !logits) {
    log_error("bench: out of memory");
    goto done;
  }
  uint32_t x = 12345;
  for (int i = 0; i < n_tok; i++) {
    x = x * 1664525u + 1013904223u;
    toks[i] = (int32_t)((x >> 8) % (uint32_t)nv);
  }
  if (!c.json) printf("%s: %s, %.1f MiB of weights, %d threads\n", path, desc,
                       (double)m->weight_bytes / (1 << 20), engine_n_threads(e));
  double pp[MAX_REPS], tg[MAX_REPS], pp_mean = 0, pp_sd = 0, tg_mean = 0, tg_sd = 0;
  rc = 0;
  /* Warm-up: a short batch and one token (pages in the weights, wakes the pool). */
  run_pp(e, toks, np > 0 ? (np < 16 ? np : 16) : 1, logits, &rc);
  for (int i = 0; i < reps && !rc && np > 0; i++) pp[i] = run_pp(e, toks, np, logits, &rc);
  for (int i = 0; i < reps && !rc && ng > 0; i++) tg[i] = run_tg(e, toks, ng, logits, &rc);
  if (rc) {
    log_error("bench: eval failed: %s", err_str(rc));
    goto done;
  }
  for (int i = 0; i < nv; i++)
    if (!isfinite(logits[i])) {
      log_error("bench: the model produced a non-finite logit (id %d)", i);
      goto done;
    }
  if (np > 0) mean_sd(pp, reps, &pp_mean, &pp_sd);
  if (ng > 0) mean_sd(tg, reps, &tg_mean, &tg_sd);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double rss_mb = (double)ru.ru_maxrss / 1024.0;
  if (c.json) {
    json_t *j = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f}", "model", path, "desc",
                          desc, "threads", engine_n_threads(e), "n_prompt", np, "n_gen", ng, "reps", reps, "pp_tps",
                          pp_mean, "pp_sd", pp_sd, "tg_tps", tg_mean, "tg_sd", tg_sd, "peak_rss_mb", rss_mb,
                          "weights_mb", (double)m->weight_bytes / (1 << 20));
    ret = cli_print_json(j);
  } else {
    printf("%-8s %7s %14s\n", "test", "threads", "t/s");
    if (np > 0) printf("pp%-6d %7d %8.2f ± %.2f\n", np, engine_n_threads(e), pp_mean, pp_sd);
    if (ng > 0) printf("tg%-6d %7d %8.2f ± %.2f\n", ng, engine_n_threads(e), tg_mean, tg_sd);
    printf("peak RSS %.1f MB\n", rss_mb);
    ret = CLI_OK;
  }
done:
  free(toks);
  free(logits);
  engine_free(e);
  model_free(m);
  return ret;
}
