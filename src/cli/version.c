/* cli/version — `apiary version`: prints the program version. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef APIARY_VERSION
#define APIARY_VERSION "0.1.0"
#endif

int cli_version_main(int argc, char **argv) {
  static const char usage[] = "usage: apiary version [--json]\n\nPrints the version of apiary.\n";
  cli_common c = {0};
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("version", argv);
  }
  if (optind < argc) return cli_usage_error("version", "unexpected argument '%s'", argv[optind]);
  if (c.json) printf("{\"version\":\"%s\"}\n", APIARY_VERSION);
  else printf("apiary %s\n", APIARY_VERSION);
  return CLI_OK;
}
