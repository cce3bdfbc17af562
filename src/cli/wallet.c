/* cli/wallet — `apiary wallet address|balance|send|import`: the node's Ethereum wallet
 * (HOME/wallet.key) on the configured chain. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/keyfile.h"
#include "node/home.h"
#include "pay/channel.h"

static const char usage[] =
    "usage: apiary wallet [--home DIR] [--json] address\n"
    "       apiary wallet [--home DIR] [--json] [--rpc URL] balance [ADDRESS]\n"
    "       apiary wallet [--home DIR] [--json] [--rpc URL] send TO AMOUNT\n"
    "       apiary wallet [--home DIR] [--force] import [--file F]   (else the key is read from stdin)\n\n"
    "The node's secp256k1 wallet. AMOUNT is in wei, or with a unit: 0.5eth, 1gwei. The\n"
    "chain is [chain] rpc of the config unless --rpc is given. import replaces the wallet\n"
    "with an apiary key file (--file F) or a 32-byte hex secret read from F or stdin, never\n"
    "from the command line (shell history, ps). The old key is kept as wallet.key.old-TIME,\n"
    "and --force is needed when a wallet exists. When the keys are encrypted at rest\n"
    "('apiary id passphrase set'), the new wallet.key is encrypted too.\n";

/* Parses a 32-byte hex secret ("0x" optional, surrounding whitespace ignored) from text. */
static int parse_secret(char *text, size_t n, uint8_t sk[32]) {
  while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '\r' || text[n - 1] == '\t')) text[--n] = 0;
  const char *t = text;
  while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r') t++;
  if (!strncmp(t, "0x", 2)) t += 2;
  return strlen(t) == 64 && !hex_decode(t, 64, sk, 32) ? 0 : ERR_FORMAT;
}

/* Reads at most cap-1 bytes of f into text (NUL-terminated); -1 when there is more. */
static long read_small(FILE *f, char *text, size_t cap) {
  size_t n = fread(text, 1, cap - 1, f);
  text[n] = 0;
  if (n == cap - 1 && fgetc(f) != EOF) return -1;
  return (long)n;
}

static int do_import(const cli_common *c, const char *file, int force) {
  char dir[HOME_PATH_MAX];
  home_paths p;
  if (cli_home(c, dir, sizeof dir) || home_paths_init(&p, dir)) return CLI_FAIL;
  wallet w;
  uint8_t sk[32];
  char text[512];
  int rc = ERR_FORMAT;
  if (file && keyfile_is_encrypted(file) == 1 && cli_unlock_keys(&p, NULL)) return CLI_FAIL;
  if (file && (rc = wallet_load(file, &w)) == ERR_PERM) { /* an apiary key file */
    log_error("%s is readable by other users; fix it with: chmod 600 %s", file, file);
    return CLI_FAIL;
  }
  if (rc) {
    FILE *f = file ? fopen(file, "r") : stdin;
    if (!f) {
      log_error("cannot open %s: %s", file, strerror(errno));
      return CLI_FAIL;
    }
    if (!file && isatty(fileno(stdin))) fprintf(stderr, "wallet secret (hex): ");
    long n = read_small(f, text, sizeof text);
    if (file) fclose(f);
    rc = n < 0 ? ERR_TOOBIG : parse_secret(text, (size_t)n, sk);
    if (!rc) rc = wallet_from_secret(sk, &w);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(text, sizeof text);
  }
  if (rc) {
    log_error("%s is neither an apiary key file nor a 32-byte hex secret", file ? file : "stdin");
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
  /* Keys encrypted at rest stay so: seal the new wallet under the same passphrase. */
  if (!rc && keyfile_is_encrypted(p.identity) == 1) {
    char *pass = cli_passphrase_new();
    size_t n = 0;
    int pr = pass ? cli_passphrase(KEYS_PASS_ENV, NULL, "key passphrase: ", 0, pass, &n) : CLI_FAIL;
    if (!pr && keyfile_unlock(pass, n) == 0) {
      ident id;
      pr = ident_load(p.identity, &id) ? CLI_FAIL : CLI_OK; /* the same passphrase as identity.key */
      ident_wipe(&id);
    } else {
      pr = CLI_FAIL;
    }
    if (!pr) rc = keyfile_reseal(p.wallet, WALLET_FILE_KIND, 32, pass, n, 0, 0);
    cli_passphrase_free(pass);
    if (pr) {
      unlink(p.wallet);
      wallet_wipe(&w);
      log_error("the keys are encrypted at rest: give their passphrase ($%s) to import a wallet", KEYS_PASS_ENV);
      return CLI_FAIL;
    }
  }
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
  const char *file = NULL;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"rpc", required_argument, 0, 'r'},
                                       {"force", no_argument, 0, 'f'}, {"file", required_argument, 0, 'F'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if (opt == 'r') { rpc = optarg; continue; }
    if (opt == 'f') { force = 1; continue; }
    if (opt == 'F') { file = optarg; continue; }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("wallet", argv);
  }
  if (optind >= argc) return cli_usage_error("wallet", "expected address, balance, send or import");
  const char *sub = argv[optind];
  int nargs = argc - optind - 1;
  char **args = argv + optind + 1;
  if (!strcmp(sub, "import")) {
    if (nargs)
      return cli_usage_error("wallet", "import no longer takes the key on the command line (it would stay in "
                                       "shell history and show in ps): use 'apiary wallet import --file F' or "
                                       "pipe it: 'apiary wallet import < F'");
    return do_import(&c, file, force);
  }
  if (!strcmp(sub, "address")) {
    char dir[HOME_PATH_MAX];
    home_paths p;
    wallet w;
    if (nargs) return cli_usage_error("wallet", "address takes no argument");
    if (cli_home(&c, dir, sizeof dir) || home_paths_init(&p, dir)) return CLI_FAIL;
    if (cli_unlock_keys(&p, NULL)) return CLI_FAIL;
    int rc = wallet_load(p.wallet, &w);
    if (rc == ERR_PERM) { log_error("%s is readable by other users; fix it with: chmod 600 %s", p.wallet, p.wallet); return CLI_FAIL; }
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
