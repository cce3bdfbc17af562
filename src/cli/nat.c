/* cli/nat — `apiary nat probe`: ask the router for a port mapping, as the node does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "p2p/nat.h"

int cli_nat_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary nat probe [--json] [--port P] [--timeout MS]\n\n"
      "Tries to map TCP (and UDP) port P on the home router, first with UPnP-IGD, then with\n"
      "NAT-PMP, and reports the external address. This is what 'apiary node' does in the\n"
      "background when it listens on a non-loopback address. Exit 1 when nothing answers.\n";
  cli_common c = {0};
  long port = 7440, timeout = 2000;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"port", required_argument, 0, 'p'},
                                       {"timeout", required_argument, 0, 't'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    char *end;
    if (opt == 'p') { port = strtol(optarg, &end, 10); if (*end || port < 1 || port > 65535) return cli_usage_error("nat", "--port wants 1..65535"); }
    else if (opt == 't') { timeout = strtol(optarg, &end, 10); if (*end || timeout < 100 || timeout > 60000) return cli_usage_error("nat", "--timeout wants 100..60000 ms"); }
    else return cli_bad_opt("nat", argv);
  }
  if (optind != argc - 1 || strcmp(argv[optind], "probe")) return cli_usage_error("nat", "expected 'probe'");
  nat_result r;
  nat_map((uint16_t)port, (uint16_t)port, (int)timeout, &r);
  if (c.json) {
    cli_print_json(json_pack("{s:b, s:s, s:s, s:i, s:i, s:s}", "mapped", r.ok, "method", r.method, "external_ip",
                             r.external_ip, "tcp_port", r.tcp_port, "udp_port", r.udp_port, "error", r.err));
  } else if (r.ok) {
    printf("%s: TCP %u%s mapped on %s\n", r.method, r.tcp_port, r.udp_port ? " and UDP" : "",
           r.external_ip[0] ? r.external_ip : "the router");
  } else {
    fprintf(stderr, "apiary nat: %s (the node still works: peers can reach it if you forward port %ld by hand)\n",
            r.err, port);
  }
  return r.ok ? CLI_OK : CLI_FAIL;
}
