/* cli/wallet — `apiary wallet address|balance|send|import`: the node's Ethereum wallet
 * (HOME/wallet.key) on the configured chain. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "node/home.h"
#include "pay/channel.h"

static const char usage[] =
    "usage: apiary wallet [--home DIR] [--json] address\n"
    "       apiary wallet [--home DIR] [--json] [--rpc URL] balance [ADDRESS]\n"
    "       apiary wallet [--home DIR] [--json] [--rpc URL] send TO AMOUNT\n"
    "       apiary wallet [--home DIR] [--force] import KEYFILE_OR_HEX\n\n"
    "The node's secp256k1 wallet. AMOUNT is in wei, or with a unit: 0.5eth, 1gwei. The\n"
    "chain is [chain] rpc of the config unless --rpc is given. import replaces the wallet\n"
    "with a key file or a 32-byte hex secret (the old key is kept as wallet.key.old-TIME,\n"
    "and --force is needed when a wallet exists).\n";

static int read_secret(const char *arg, uint8_t sk[32]) {
  char text[256];
  const char *t = arg;
  FILE *f = fopen(arg, "r");
  if (f) {
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r')) text[--n] = 0;
    t = text;
  }
  if (!strncmp(t, "0x", 2)) t += 2;
  int rc = strlen(t) == 64 && !hex_decode(t, 64, sk, 32) ? 0 : ERR_FORMAT;
  sodium_memzero(text, sizeof text);
  return rc;
}

static int do_import(const cli_common *c, const char *arg, int force) {
  char dir[HOME_PATH_MAX];
  home_paths p;
  if (cli_home(c, dir, sizeof dir) || home_paths_init(&p, dir)) return CLI_FAIL;
  wallet w;
  uint8_t sk[32];
  int rc = wallet_load(arg, &w); /* an apiary key file */
  if (rc) {
    rc = read_secret(arg, sk);
    if (!rc) rc = wallet_from_secret(sk, &w);
    sodium_memzero(sk, sizeof sk);
  }
  if (rc) {
    log_error("%s is neither a key file nor a 32-byte hex secret", arg);
    return CLI_FAIL;
  }
  FILE *f = fopen(p.wallet, "r");
  if (f) {
    fclose(f);
    if (!force) {
      log_error("%s exists; pass --force to replace it (the old key is kept)", p.wallet);
      wallet_wipe(&w);
      return CLI_FAIL;
    }
    char old[HOME_PATH_MAX + 32];
    snprintf(old, sizeof old, "%s.old-%lld", p.wallet, (long long)time(NULL));
    if (rename(p.wallet, old)) {
      log_error("cannot move %s aside: %s", p.wallet, strerror(errno));
      wallet_wipe(&w);
      return CLI_FAIL;
    }
    log_info("old wallet kept as %s", old);
  }
  rc = wallet_save(&w, p.wallet);
  char a[WALLET_ADDR_BUF];
  wallet_addr_eip55(w.addr, a);
  wallet_wipe(&w);
  if (rc) {
    log_error("cannot write %s: %s", p.wallet, err_str(rc));
    return CLI_FAIL;
  }
  if (c->json) return cli_print_json(json_pack("{s:s}", "address", a));
  printf("%s\n(restart a running node to use it)\n", a);
  return CLI_OK;
}

int cli_wallet_main(int argc, char **argv) {
  cli_common c = {0};
  const char *rpc = NULL;
  int force = 0;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"rpc", required_argument, 0, 'r'},
                                       {"force", no_argument, 0, 'f'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if (opt == 'r') { rpc = optarg; continue; }
    if (opt == 'f') { force = 1; continue; }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("wallet", argv);
  }
  if (optind >= argc) return cli_usage_error("wallet", "expected address, balance, send or import");
  const char *sub = argv[optind];
  int nargs = argc - optind - 1;
  char **args = argv + optind + 1;
  if (!strcmp(sub, "import")) {
    if (nargs != 1) return cli_usage_error("wallet", "import takes KEYFILE_OR_HEX");
    return do_import(&c, args[0], force);
  }
  if (!strcmp(sub, "address")) {
    char dir[HOME_PATH_MAX];
    home_paths p;
    wallet w;
    if (nargs) return cli_usage_error("wallet", "address takes no argument");
    if (cli_home(&c, dir, sizeof dir) || home_paths_init(&p, dir)) return CLI_FAIL;
    int rc = wallet_load(p.wallet, &w);
    if (rc) { log_error("cannot load %s: %s", p.wallet, err_str(rc)); return CLI_FAIL; }
    char a[WALLET_ADDR_BUF];
    wallet_addr_eip55(w.addr, a);
    wallet_wipe(&w);
    if (c.json) return cli_print_json(json_pack("{s:s}", "address", a));
    printf("%s\n", a);
    return CLI_OK;
  }
  cli_chain cc;
  if (!strcmp(sub, "balance")) {
    if (nargs > 1) return cli_usage_error("wallet", "balance takes at most an ADDRESS");
    uint8_t who[20];
    if (nargs && wallet_addr_parse(args[0], strlen(args[0]), who)) return cli_usage_error("wallet", "bad address");
    if (cli_chain_open(&c, rpc, 0, &cc)) return CLI_FAIL;
    if (!nargs) memcpy(who, cc.w.addr, 20);
    u256 bal;
    int rc = ethrpc_get_balance(cc.rpc, who, NULL, &bal);
    if (rc) { rc = cli_chain_fail(&cc, "balance", rc); cli_chain_close(&cc); return rc; }
    cli_chain_close(&cc);
    char a[WALLET_ADDR_BUF], d[U256_DEC_BUF];
    wallet_addr_eip55(who, a);
    u256_to_dec(&bal, d);
    if (c.json) return cli_print_json(json_pack("{s:s, s:s}", "address", a, "wei", d));
    printf("%s %s wei\n", a, d);
    return CLI_OK;
  }
  if (!strcmp(sub, "send")) {
    if (nargs != 2) return cli_usage_error("wallet", "send takes TO AMOUNT");
    uint8_t to[20];
    u256 amt;
    if (wallet_addr_parse(args[0], strlen(args[0]), to)) return cli_usage_error("wallet", "bad address %s", args[0]);
    if (channel_amount_parse(args[1], &amt)) return cli_usage_error("wallet", "bad amount %s", args[1]);
    if (cli_chain_open(&c, rpc, 0, &cc)) return CLI_FAIL;
    ethrpc_send_opts o = {.confirmations = 1, .poll_ms = 200};
    ethrpc_receipt r;
    memset(&r, 0, sizeof r);
    int rc = ethrpc_send_tx(cc.rpc, &cc.w, to, &amt, NULL, 0, &o, NULL, &r);
    if (rc) { rc = cli_chain_fail(&cc, "send", rc); ethrpc_receipt_deinit(&r); cli_chain_close(&cc); return rc; }
    char h[67] = "0x";
    hex_encode(r.tx_hash, 32, h + 2);
    ethrpc_receipt_deinit(&r);
    cli_chain_close(&cc);
    if (c.json) return cli_print_json(json_pack("{s:s}", "tx", h));
    printf("sent: %s\n", h);
    return CLI_OK;
  }
  return cli_usage_error("wallet", "unknown subcommand %s", sub);
}
