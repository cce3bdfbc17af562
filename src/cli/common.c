/* cli/common — option helpers shared by the subcommands; see cli.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/home.h"

int cli_common_opt(int opt, const char *arg, cli_common *c, const char *usage) {
  switch (opt) {
  case CLI_OPT_HOME: c->home = arg; return 1;
  case CLI_OPT_JSON: c->json = 1; return 1;
  case 'v': log_set_level(LOG_DEBUG); return 1;
  case 'q': log_set_level(LOG_ERROR); return 1;
  case 'h': fputs(usage, stdout); return -1;
  default: return 0;
  }
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "apiary %s: %s; try 'apiary %s --help'\n", cmd, msg, cmd);
  return CLI_USAGE;
}

int cli_bad_opt(const char *cmd, char **argv) {
  /* getopt_long already printed the precise problem (with opterr = 1); add the hint. */
  (void)argv;
  fprintf(stderr, "apiary %s: try 'apiary %s --help'\n", cmd, cmd);
  return CLI_USAGE;
}

int cli_home(const cli_common *c, char *out, size_t cap) {
  const char *h = c->home;
  int n;
  if (!h || !*h) h = getenv("APIARY_HOME");
  if (h && *h) {
    n = snprintf(out, cap, "%s", h);
  } else {
    const char *user = getenv("HOME");
    if (!user || !*user) return ERR_NOTFOUND;
    n = snprintf(out, cap, "%s/.apiary", user);
  }
  return (n < 0 || (size_t)n >= cap) ? ERR_TOOBIG : 0;
}

int cli_print_json(json_t *j) {
  if (!j) {
    log_error("out of memory building JSON output");
    return CLI_FAIL;
  }
  char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref(j);
  if (!s) return CLI_FAIL;
  puts(s);
  free(s);
  return CLI_OK;
}

int cli_parse_common(const char *cmd, int argc, char **argv, const char *usage, cli_common *c) {
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, c, usage);
    if (r < 0) return -1;
    if (r == 0) return cli_bad_opt(cmd, argv);
  }
  return 0;
}

int cli_home_paths(const cli_common *c, home_paths *p) {
  char dir[HOME_PATH_MAX];
  if (cli_home(c, dir, sizeof dir) || home_paths_init(p, dir)) {
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  return CLI_OK;
}
