/* cli/init — `apiary init`: create a node home (identity, wallet, config, database). */
#include <stdio.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/home.h"

static const char usage[] =
    "usage: apiary init [--home DIR] [--json]\n\n"
    "Creates a node home: an Ed25519 identity (the node id), a secp256k1 wallet key, a\n"
    "commented config file with every default, and the node database. Key files are\n"
    "mode 0600 and an existing identity is never overwritten.\n\n"
    "  --home DIR   node home (default: $APIARY_HOME, else ~/.apiary)\n"
    "  --json       print the result as JSON\n";

int cli_init_main(int argc, char **argv) {
  cli_common c = {0};
  int pr = cli_parse_common("init", argc, argv, usage, &c);
  if (pr) return pr < 0 ? CLI_OK : pr;
  if (optind < argc) return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
  home_paths p;
  if (cli_home_paths(&c, &p)) return CLI_FAIL;
  ident id;
  wallet w;
  char err[1024] = "";
  int rc = home_init(&p, &id, &w, err, sizeof err);
  if (rc) {
    log_error("%s", err[0] ? err : err_str(rc));
    return CLI_FAIL;
  }
  char node_id[IDENT_ID_BUF], addr[WALLET_ADDR_BUF];
  ident_id_encode(id.pk, node_id);
  wallet_addr_eip55(w.addr, addr);
  ident_wipe(&id);
  wallet_wipe(&w);
  if (c.json) {
    return cli_print_json(json_pack("{s:s, s:s, s:s}", "home", p.dir, "node_id", node_id, "wallet_address", addr));
  } else {
    printf("Created node home %s\n", p.dir);
    printf("  node id   %s\n  wallet    %s\n", node_id, addr);
    printf("Keys are in identity.key and wallet.key (mode 0600): back them up, never share them.\n");
    printf("Settings: %s\n", p.config);
  }
  return CLI_OK;
}
