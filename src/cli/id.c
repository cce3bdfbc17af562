/* cli/id — `apiary id`: print this node's id and wallet address. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/fs.h"
#include "core/log.h"
#include "crypto/keyfile.h"
#include "node/home.h"
#include <errno.h>

#define NEW_PASS_ENV "APIARY_NEW_PASSPHRASE"

static const char usage[] =
    "usage: apiary id [--home DIR] [--json] [--passphrase-file F]\n"
    "       apiary id [--home DIR] [--passphrase-file F] [--new-passphrase-file F] passphrase set|clear\n\n"
    "Prints the node id (the text form of its Ed25519 public key, see docs/identity.md)\n"
    "and the wallet's EIP-55 checksummed Ethereum address.\n\n"
    "  --home DIR   node home (default: $APIARY_HOME, else ~/.apiary)\n"
    "  --json       print node_id, node_id_short, public_key, wallet_address, home\n\n"
    "passphrase set encrypts identity.key and wallet.key at rest (Argon2id, XChaCha20-Poly1305;\n"
    "docs/privacy.md) with a new passphrase from $" NEW_PASS_ENV ", --new-passphrase-file F\n"
    "or a prompt; passphrase clear stores them plain again. The current passphrase, when the\n"
    "keys are encrypted, comes from $APIARY_PASSPHRASE, --passphrase-file F or a prompt.\n";

static int load_error(const char *what, const char *path, int rc) {
  if (rc == -ENOENT)
    log_error("no %s at %s; run 'apiary init' first (or pass the right --home)", what, path);
  else if (rc == ERR_LOCKED)
    log_error("%s is encrypted: give its passphrase ($APIARY_PASSPHRASE, --passphrase-file F)", path);
  else if (rc == ERR_PERM)
    log_error("%s is readable by other users; fix it with: chmod 600 %s", path, path);
  else
    log_error("cannot load %s %s: %s", what, path, err_str(rc));
  return CLI_FAIL;
}

static int cmd_passphrase(const home_paths *p, const char *what, const char *pass_file, const char *new_file) {
  int set = !strcmp(what, "set");
  if (!set && strcmp(what, "clear")) return cli_usage_error("id", "passphrase takes set or clear");
  if (cli_unlock_keys(p, pass_file)) return CLI_FAIL;
  char *pass = NULL;
  size_t n = 0;
  if (set) {
    if (!(pass = cli_passphrase_new())) return CLI_FAIL;
    if (cli_passphrase(NEW_PASS_ENV, new_file, "new key passphrase: ", 1, pass, &n)) {
      cli_passphrase_free(pass);
      return CLI_FAIL;
    }
  }
  static const struct { const char *kind; int ident; } files[] = {{IDENT_FILE_KIND, 1}, {WALLET_FILE_KIND, 0}};
  int rc = CLI_OK;
  for (size_t i = 0; i < 2 && rc == CLI_OK; i++) {
    const char *path = files[i].ident ? p->identity : p->wallet;
    if (!files[i].ident && fs_exists(path) != 1) continue; /* no wallet: nothing to seal */
    int r = keyfile_reseal(path, files[i].kind, 32, pass, n, 0, 0);
    if (r) rc = load_error(files[i].ident ? "node identity" : "wallet key", path, r);
  }
  cli_passphrase_free(pass);
  if (rc) return rc;
  printf(set ? "identity.key and wallet.key are encrypted; 'apiary node' asks for the passphrase\n"
                "(or reads $" KEYS_PASS_ENV " or --passphrase-file F)\n"
             : "identity.key and wallet.key are stored without a passphrase\n");
  return CLI_OK;
}

int cli_id_main(int argc, char **argv) {
  cli_common c = {0};
  const char *pass_file = NULL, *new_file = NULL;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"passphrase-file", required_argument, 0, 1},
                                       {"new-passphrase-file", required_argument, 0, 2}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if (opt == 1) { pass_file = optarg; continue; }
    if (opt == 2) { new_file = optarg; continue; }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("id", argv);
  }
  home_paths p;
  if (optind < argc && !strcmp(argv[optind], "passphrase")) {
    if (argc - optind != 2) return cli_usage_error("id", "passphrase takes set or clear");
    if (cli_home_paths(&c, &p)) return CLI_FAIL;
    return cmd_passphrase(&p, argv[optind + 1], pass_file, new_file);
  }
  if (optind < argc) return cli_usage_error("id", "unexpected argument '%s'", argv[optind]);
  if (cli_home_paths(&c, &p)) return CLI_FAIL;
  if (cli_unlock_keys(&p, pass_file)) return CLI_FAIL;
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
