/* cli/version — `apiary version`: prints the program version. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#include "core/version.h"

int cli_version_main(int argc, char **argv) {
  static const char usage[] = "usage: apiary version [--json]\n\nPrints the version of apiary.\n";
  cli_common c = {0};
  int pr = cli_parse_common("version", argc, argv, usage, &c);
  if (pr) return pr < 0 ? CLI_OK : pr;
  if (optind < argc) return cli_usage_error("version", "unexpected argument '%s'", argv[optind]);
  if (c.json) printf("{\"version\":\"%s\"}\n", APIARY_VERSION);
  else printf("apiary %s\n", APIARY_VERSION);
  return CLI_OK;
}
