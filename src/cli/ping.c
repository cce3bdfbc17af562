/* cli/ping — `apiary ping NODE_ID`: round trip to another node over an encrypted link. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_ping_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary ping [--home DIR] [--json] NODE_ID\n\n"
      "Asks the running node to reach NODE_ID (over an existing link, or by dialling an\n"
      "address from its peer book or the node's DHT record) and measures the round trip of\n"
      "an RPC ping over the authenticated, encrypted link.\n";
  cli_common c = {0};
  int pr = cli_parse_common("ping", argc, argv, usage, &c);
  if (pr) return pr < 0 ? CLI_OK : pr;
  if (optind != argc - 1) return cli_usage_error("ping", "expected one NODE_ID");
  json_t *res = NULL;
  int rc = cli_ctl_call(&c, "ping", json_pack("{s:s}", "node_id", argv[optind]), &res);
  if (rc) return rc;
  if (c.json) return cli_print_json(res);
  printf("%s: rtt %.2f ms\n", json_string_value(json_object_get(res, "node_id")),
         json_real_value(json_object_get(res, "rtt_ms")));
  json_decref(res);
  return CLI_OK;
}
