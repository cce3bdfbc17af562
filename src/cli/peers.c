/* cli/peers — `apiary peers`: the running node's peer book. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

int cli_peers_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary peers [--home DIR] [--json]\n\n"
      "Lists the peers the running node knows: node id, address, state (up, down,\n"
      "unknown), when it was last seen, consecutive failures and how it was learned.\n"
      "--json prints {\"peers\":[{\"id\",\"addr\",\"addrs\",\"state\",\"last_seen\",...}]}\n"
      "(last_seen in Unix seconds, 0 = never).\n";
  json_t *r = NULL;
  cli_common c;
  int rc = cli_ctl_simple("peers", "peers", argc, argv, usage, &r, &c);
  if (rc) return rc < 0 ? CLI_OK : rc;
  if (c.json) return cli_print_json(r);
  json_t *peers = json_object_get(r, "peers");
  if (json_array_size(peers) == 0) {
    printf("no peers yet\n");
    json_decref(r);
    return CLI_OK;
  }
  printf("%-58s  %-21s  %-7s  %-9s  %s\n", "ID", "ADDR", "STATE", "LAST SEEN", "SOURCE");
  time_t now = time(NULL);
  size_t i;
  json_t *p;
  json_array_foreach(peers, i, p) {
    json_int_t seen = json_integer_value(json_object_get(p, "last_seen"));
    char ago[32];
    if (!seen) snprintf(ago, sizeof ago, "never");
    else snprintf(ago, sizeof ago, "%llds ago", (long long)(now - seen));
    const char *addr = json_string_value(json_object_get(p, "addr"));
    printf("%-58s  %-21s  %-7s  %-9s  %s\n", json_string_value(json_object_get(p, "id")), addr ? addr : "-",
           json_string_value(json_object_get(p, "state")), ago, json_string_value(json_object_get(p, "source")));
  }
  json_decref(r);
  return CLI_OK;
}
