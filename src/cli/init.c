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
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("init", argv);
  }
  if (optind < argc) return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
  char dir[HOME_PATH_MAX];
  home_paths p;
  if (cli_home(&c, dir, sizeof dir) || home_paths_init(&p, dir)) {
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
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
