/* cli/id — `apiary id`: print this node's id and wallet address. */
#include <sodium.h>
#include <stdio.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "node/home.h"
#include <errno.h>

static const char usage[] =
    "usage: apiary id [--home DIR] [--json]\n\n"
    "Prints the node id (the text form of its Ed25519 public key, see docs/identity.md)\n"
    "and the wallet's EIP-55 checksummed Ethereum address.\n\n"
    "  --home DIR   node home (default: $APIARY_HOME, else ~/.apiary)\n"
    "  --json       print node_id, node_id_short, public_key, wallet_address, home\n";

static int load_error(const char *what, const char *path, int rc) {
  if (rc == -ENOENT)
    log_error("no %s at %s; run 'apiary init' first (or pass the right --home)", what, path);
  else if (rc == ERR_PERM)
    log_error("%s is readable by other users; fix it with: chmod 600 %s", path, path);
  else
    log_error("cannot load %s %s: %s", what, path, err_str(rc));
  return CLI_FAIL;
}

int cli_id_main(int argc, char **argv) {
  cli_common c = {0};
  int pr = cli_parse_common("id", argc, argv, usage, &c);
  if (pr) return pr < 0 ? CLI_OK : pr;
  if (optind < argc) return cli_usage_error("id", "unexpected argument '%s'", argv[optind]);
  home_paths p;
  if (cli_home_paths(&c, &p)) return CLI_FAIL;
  ident id;
  wallet w;
  int rc = ident_load(p.identity, &id);
  if (rc) return load_error("node identity", p.identity, rc);
  rc = wallet_load(p.wallet, &w);
  if (rc) {
    ident_wipe(&id);
    return load_error("wallet key", p.wallet, rc);
  }
  char node_id[IDENT_ID_BUF], short_id[11], addr[WALLET_ADDR_BUF], pk[2 * IDENT_PK_BYTES + 1];
  ident_id_encode(id.pk, node_id);
  ident_id_short(id.pk, short_id);
  hex_encode(id.pk, IDENT_PK_BYTES, pk);
  wallet_addr_eip55(w.addr, addr);
  ident_wipe(&id);
  wallet_wipe(&w);
  if (c.json)
    return cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:s}", "node_id", node_id, "node_id_short", short_id,
                                    "public_key", pk, "wallet_address", addr, "home", p.dir));
  else
    printf("node id   %s\nwallet    %s\nhome      %s\n", node_id, addr, p.dir);
  return CLI_OK;
}
