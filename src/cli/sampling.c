/* cli/sampling — the sampling options `run` and `chat` share: --temp, --top-k, --top-p,
 * --min-p, --repeat-penalty, --seed; number parsing; a short random seed. See cli.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int cli_parse_float(const char *s, double lo, double hi, float *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return -1;
  *out = (float)v;
  return 0;
}

uint64_t cli_random_seed(void) {
  uint64_t s = 0;
  FILE *f = fopen("/dev/urandom", "rb");
  if (f) {
    if (fread(&s, sizeof s, 1, f) != 1) s = 0;
    fclose(f);
  }
  if (!s) s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  return s & 0xffffffffu; /* short enough to retype */
}

int cli_sampling_opt(const char *cmd, int opt, const char *arg, sample_params *sp, int *have_seed) {
  long v;
  switch (opt) {
  case 's':
    if (cli_parse_long(arg, 0, 0x7fffffffl, &v)) return cli_usage_error(cmd, "bad --seed '%s'", arg);
    sp->seed = (uint64_t)v;
    *have_seed = 1;
    return 1;
  case CLI_OPT_TEMP:
    if (cli_parse_float(arg, 0, 100, &sp->temp)) return cli_usage_error(cmd, "bad --temp '%s' (0..100)", arg);
    return 1;
  case CLI_OPT_TOPK:
    if (cli_parse_long(arg, 0, 1 << 22, &v)) return cli_usage_error(cmd, "bad --top-k '%s'", arg);
    sp->top_k = (int)v;
    return 1;
  case CLI_OPT_TOPP:
    if (cli_parse_float(arg, 0, 1, &sp->top_p)) return cli_usage_error(cmd, "bad --top-p '%s' (0..1)", arg);
    return 1;
  case CLI_OPT_MINP:
    if (cli_parse_float(arg, 0, 1, &sp->min_p)) return cli_usage_error(cmd, "bad --min-p '%s' (0..1)", arg);
    return 1;
  case CLI_OPT_REPEAT:
    if (cli_parse_float(arg, 0.01, 100, &sp->repeat_penalty))
      return cli_usage_error(cmd, "bad --repeat-penalty '%s' (0.01..100)", arg);
    return 1;
  default: return 0;
  }
}
