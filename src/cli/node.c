/* cli/node — `apiary node`: run this machine's node in the foreground. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/home.h"
#include "node/node.h"

static const char usage[] =
    "usage: apiary node [--home DIR] [--listen ADDR:PORT] [--dht-port P]\n"
    "                   [--bootstrap HOST:PORT]... [--no-lan] [--no-dht] [--no-nat] [--http ADDR:PORT]\n"
    "                   [--verify-rate R] [--passphrase-file F]\n\n"
    "Runs the node in the foreground until SIGINT or SIGTERM (or 'apiary stop'), then shuts\n"
    "down cleanly. The owner controls it through HOME/control.sock (mode 0600): 'apiary\n"
    "status', 'apiary peers', ... One node per home.\n\n"
    "  --home DIR             node home (default: $APIARY_HOME, else ~/.apiary)\n"
    "  --listen ADDR:PORT     address for peer links\n"
    "  --dht-port P           UDP port for the Mainline DHT\n"
    "  --bootstrap HOST:PORT  a DHT node to bootstrap from (repeatable; replaces [dht] bootstrap)\n"
    "  --no-dht               do not join the DHT\n"
    "  --no-nat               do not ask the router for port forwarding (UPnP-IGD / NAT-PMP)\n"
    "  --no-lan               disable LAN discovery\n"
    "  --http ADDR:PORT       address of the OpenAI-compatible API (default 127.0.0.1:8080)\n"
    "  --verify-rate R        re-run a fraction R (0..1) of remote answers on a second provider\n"
    "                         and compare; a provider that differs loses rank ([market] verify_rate)\n"
    "  --passphrase-file F    the key files' passphrase when they are encrypted at rest ('apiary id\n"
    "                         passphrase set'); else $APIARY_PASSPHRASE, else a prompt\n";

enum { OPT_LISTEN = 1, OPT_DHT_PORT, OPT_BOOTSTRAP, OPT_NO_LAN, OPT_HTTP, OPT_NO_DHT, OPT_NO_NAT, OPT_VERIFY, OPT_PASSF };

int cli_node_main(int argc, char **argv) {
  cli_common c = {0};
  node_opts o;
  const char *pass_file = NULL;
  memset(&o, 0, sizeof o);
  o.dht_port = -1;
  o.verify_rate = -1;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"listen", required_argument, 0, OPT_LISTEN},
                                       {"dht-port", required_argument, 0, OPT_DHT_PORT},
                                       {"bootstrap", required_argument, 0, OPT_BOOTSTRAP},
                                       {"no-lan", no_argument, 0, OPT_NO_LAN},
                                       {"http", required_argument, 0, OPT_HTTP},
                                       {"no-dht", no_argument, 0, OPT_NO_DHT},
                                       {"no-nat", no_argument, 0, OPT_NO_NAT},
                                       {"verify-rate", required_argument, 0, OPT_VERIFY},
                                       {"passphrase-file", required_argument, 0, OPT_PASSF},
                                       {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    switch (opt) {
    case OPT_LISTEN: o.listen = optarg; break;
    case OPT_DHT_PORT: {
      char *end;
      long p = strtol(optarg, &end, 10);
      if (*end || p < 0 || p > 65535) return cli_usage_error("node", "--dht-port wants 0..65535, not '%s'", optarg);
      o.dht_port = (int)p;
      break;
    }
    case OPT_BOOTSTRAP:
      if (o.n_bootstrap >= NODE_MAX_BOOTSTRAP) return cli_usage_error("node", "at most %d --bootstrap", NODE_MAX_BOOTSTRAP);
      o.bootstrap[o.n_bootstrap++] = optarg;
      break;
    case OPT_NO_LAN: o.no_lan = 1; break;
    case OPT_HTTP: o.http_listen = optarg; break;
    case OPT_NO_DHT: o.no_dht = 1; break;
    case OPT_NO_NAT: o.no_nat = 1; break;
    case OPT_PASSF: pass_file = optarg; break;
    case OPT_VERIFY: {
      char *end;
      o.verify_rate = strtod(optarg, &end);
      if (*end || !(o.verify_rate >= 0 && o.verify_rate <= 1))
        return cli_usage_error("node", "--verify-rate wants a fraction from 0 to 1, not '%s'", optarg);
      break;
    }
    default: return cli_bad_opt("node", argv);
    }
  }
  if (optind < argc) return cli_usage_error("node", "unexpected argument '%s'", argv[optind]);
  char dir[HOME_PATH_MAX];
  if (cli_home(&c, dir, sizeof dir)) {
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  o.home = dir;
  home_paths hp;
  if (home_paths_init(&hp, dir) == 0 && cli_unlock_keys(&hp, pass_file)) return CLI_FAIL;
  char err[1024] = "";
  int rc = node_run(&o, err, sizeof err);
  if (rc) {
    log_error("%s", err[0] ? err : err_str(rc));
    return CLI_FAIL;
  }
  return CLI_OK;
}
