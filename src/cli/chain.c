/* cli/chain — `apiary chain deploy|info`, plus the chain helpers the payment commands share
 * (cli_chain_open: the node's config, wallet and a JSON-RPC client).
 *
 * Deployment is recorded in the node's config.toml ([chain] rpc, chain_id, escrow,
 * registry, governance): the file is rewritten with only those lines changed (comments
 * and every other value kept), so a person can read and edit it like any other setting.
 * A running node reads it at start: restart it after a deploy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chain/abi.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "node/home.h"
#include "pay/escrow.h"

int cli_chain_open(const cli_common *c, const char *rpc_override, int need_escrow, cli_chain *out) {
  memset(out, 0, sizeof *out);
  char dir[HOME_PATH_MAX], err[512];
  if (cli_home(c, dir, sizeof dir) || home_paths_init(&out->paths, dir)) {
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  if (home_load_config(&out->paths, &out->cfg, err, sizeof err)) {
    log_error("%s", err);
    return CLI_FAIL;
  }
  if (cli_unlock_keys(&out->paths, NULL)) {
    config_free(out->cfg);
    out->cfg = NULL;
    return CLI_FAIL;
  }
  int rc = wallet_load(out->paths.wallet, &out->w);
  if (rc == ERR_PERM) {
    log_error("%s is readable by other users; fix it with: chmod 600 %s", out->paths.wallet, out->paths.wallet);
    goto fail;
  }
  if (rc) {
    log_error("cannot load the wallet %s: %s (run 'apiary init' or 'apiary wallet import')", out->paths.wallet,
              err_str(rc));
    goto fail;
  }
  const char *url = rpc_override ? rpc_override : config_str(out->cfg, "chain", "rpc");
  snprintf(out->rpc_url, sizeof out->rpc_url, "%s", url);
  if (ethrpc_new(url, 10000, &out->rpc)) {
    log_error("bad chain RPC URL %s", url);
    goto fail;
  }
  out->chain_id = (uint64_t)config_int(out->cfg, "chain", "chain_id");
  const char *esc = config_str(out->cfg, "chain", "escrow");
  out->have_escrow = out->chain_id && esc[0] && !wallet_addr_parse(esc, strlen(esc), out->escrow);
  if (need_escrow && !out->have_escrow) {
    log_error("no escrow contract configured; run 'apiary chain deploy --rpc URL' (or set [chain] in %s)",
              out->paths.config);
    goto fail;
  }
  if (need_escrow) {
    uint64_t id;
    rc = ethrpc_chain_id(out->rpc, &id);
    if (rc) {
      log_error("chain %s unreachable: %s", url, err_str(rc));
      goto fail;
    }
    if (id != out->chain_id) {
      log_error("chain %s has id %llu but the config says %llu", url, (unsigned long long)id,
                (unsigned long long)out->chain_id);
      goto fail;
    }
  }
  return CLI_OK;
fail:
  cli_chain_close(out);
  return CLI_FAIL;
}

void cli_chain_close(cli_chain *cc) {
  ethrpc_free(cc->rpc);
  config_free(cc->cfg);
  wallet_wipe(&cc->w);
  memset(cc, 0, sizeof *cc);
}

/* The contracts' custom errors, to name a revert by its selector. */
static const char *const CONTRACT_ERRORS[] = {
    "ZeroAddress()", "ExpiryNotInFuture(uint64,uint256)", "ExpiryNotLater(uint64,uint64)", "UnknownChannel(bytes32)",
    "ChannelClosed(bytes32)", "NotClient(address)", "NotExpired(uint64,uint256)", "DepositOverflow()",
    "AmountExceedsDeposit(uint256,uint256)", "NothingToClaim(uint256,uint256)", "BadSignatureLength(uint256)",
    "BadSignatureV(uint8)", "BadSignatureS()", "InvalidSignature()", "WrongSigner(address,address)", "LengthMismatch()",
    "TransferFailed(address,uint256)", "Reentrancy()", "NotDeployer(address)", "NotGovernance(address)",
    "GovernanceAlreadySet(address)", "NotPublisher(address,address)", "NotNodeOwner(address,address)", "ZeroKey()",
    "EmptyName()", "TooLong(string,uint256,uint256)", "ModelExists(bytes32)", "UnknownModel(bytes32)",
    "NodeExists(bytes32,address)", "UnknownNode(bytes32)", "NodeBanned(bytes32,address)",
    "BadNodeSignatureLength(uint256)", "ZeroQuorum()", "ZeroTarget()", "NoRegisteredNode(address)",
    "UnknownProposal(uint256)", "VotingClosed(uint256)", "NotNodeOwner(bytes32,address)", "NodeTooNew(bytes32)",
    "AlreadyVoted(uint256,bytes32)", "NotReady(uint256,uint8)",
};

static const char *error_name(const ethrpc_error *e) {
  if (e->revert_len < 4) return NULL;
  for (size_t i = 0; i < sizeof CONTRACT_ERRORS / sizeof *CONTRACT_ERRORS; i++) {
    uint8_t sel[4];
    if (!abi_selector(CONTRACT_ERRORS[i], sel) && !memcmp(sel, e->revert_data, 4)) return CONTRACT_ERRORS[i];
  }
  return NULL;
}

int cli_chain_fail(cli_chain *cc, const char *what, int rc) {
  const char *name = rc == ERR_REVERTED ? error_name(ethrpc_last_error(cc->rpc)) : NULL;
  if (name)
    log_error("%s: reverted: %s", what, name);
  else if (rc == ERR_REVERTED)
    log_error("%s: reverted: %s", what, ethrpc_last_error(cc->rpc)->reason);
  else if (escrow_offline(rc))
    log_error("%s: chain %s unreachable: %s", what, cc->rpc_url, err_str(rc));
  else
    log_error("%s: %s %s", what, err_str(rc), cc->rpc ? ethrpc_last_error(cc->rpc)->message : "");
  return CLI_FAIL;
}

static const char usage[] =
    "usage: apiary chain [--home DIR] [--json] deploy --rpc URL [--quorum N] [--voting-period S] [--timelock S]\n"
    "       apiary chain [--home DIR] use --rpc URL --escrow ADDR [--registry ADDR] [--governance ADDR]\n"
    "       apiary chain [--home DIR] [--json] info\n\n"
    "deploy   deploys Escrow, Registry and Governance from the node's wallet (which pays the\n"
    "         gas), links Registry to Governance, and records the RPC URL, chain id and the\n"
    "         three addresses in [chain] of the node's config.toml. Restart a running node.\n"
    "         Governance defaults: quorum 1, voting period 3600 s, timelock 3600 s.\n"
    "use      records an existing deployment (the chain id is asked from URL).\n"
    "info     shows the configured chain and whether it answers.\n";

static void addr_text(const uint8_t a[20], char out[WALLET_ADDR_BUF]) { wallet_addr_eip55(a, out); }

int cli_chain_main(int argc, char **argv) {
  cli_common c = {0};
  const char *rpc = NULL, *use_addr[3] = {NULL, NULL, NULL};
  long quorum = 1, voting = 3600, timelock = 3600;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"rpc", required_argument, 0, 'r'},
                                       {"quorum", required_argument, 0, 'Q'},
                                       {"voting-period", required_argument, 0, 'P'},
                                       {"timelock", required_argument, 0, 'T'},
                                       {"escrow", required_argument, 0, 'E'},
                                       {"registry", required_argument, 0, 'R'},
                                       {"governance", required_argument, 0, 'G'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    switch (opt) {
    case 'r': rpc = optarg; continue;
    case 'Q': quorum = atol(optarg); continue;
    case 'P': voting = atol(optarg); continue;
    case 'T': timelock = atol(optarg); continue;
    case 'E': use_addr[0] = optarg; continue;
    case 'R': use_addr[1] = optarg; continue;
    case 'G': use_addr[2] = optarg; continue;
    default: break;
    }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("chain", argv);
  }
  if (optind != argc - 1) return cli_usage_error("chain", "expected deploy or info");
  const char *sub = argv[optind];
  cli_chain cc;
  if (!strcmp(sub, "info")) {
    if (cli_chain_open(&c, rpc, 0, &cc)) return CLI_FAIL;
    uint64_t id = 0;
    int rc = ethrpc_chain_id(cc.rpc, &id);
    json_t *o = json_pack("{s:s, s:I, s:b, s:s, s:s, s:s}", "rpc", cc.rpc_url, "chain_id", (json_int_t)cc.chain_id,
                          "reachable", rc == 0, "escrow", config_str(cc.cfg, "chain", "escrow"), "registry",
                          config_str(cc.cfg, "chain", "registry"), "governance",
                          config_str(cc.cfg, "chain", "governance"));
    cli_chain_close(&cc);
    if (c.json) return cli_print_json(o);
    printf("rpc         %s (%s)\nchain id    %lld\nescrow      %s\nregistry    %s\ngovernance  %s\n",
           json_string_value(json_object_get(o, "rpc")), rc ? "unreachable" : "reachable",
           (long long)json_integer_value(json_object_get(o, "chain_id")),
           json_string_value(json_object_get(o, "escrow")), json_string_value(json_object_get(o, "registry")),
           json_string_value(json_object_get(o, "governance")));
    json_decref(o);
    return CLI_OK;
  }
  if (!strcmp(sub, "use")) {
    static const char *const keys[3] = {"escrow", "registry", "governance"};
    uint8_t a[20];
    if (!rpc || !use_addr[0]) return cli_usage_error("chain", "use needs --rpc URL and --escrow ADDR");
    for (int i = 0; i < 3; i++)
      if (use_addr[i] && wallet_addr_parse(use_addr[i], strlen(use_addr[i]), a))
        return cli_usage_error("chain", "bad --%s address", keys[i]);
    if (cli_chain_open(&c, rpc, 0, &cc)) return CLI_FAIL;
    uint64_t id;
    int rc = ethrpc_chain_id(cc.rpc, &id);
    if (rc) { rc = cli_chain_fail(&cc, "use", rc); cli_chain_close(&cc); return rc; }
    char q[600], num[32];
    snprintf(num, sizeof num, "%llu", (unsigned long long)id);
    snprintf(q, sizeof q, "\"%s\"", rpc);
    rc = cli_config_set(cc.paths.config, "chain", "rpc", q);
    if (!rc) rc = cli_config_set(cc.paths.config, "chain", "chain_id", num);
    for (int i = 0; !rc && i < 3; i++) {
      snprintf(q, sizeof q, "\"%s\"", use_addr[i] ? use_addr[i] : "");
      rc = cli_config_set(cc.paths.config, "chain", keys[i], q);
    }
    if (rc) log_error("cannot update %s: %s", cc.paths.config, err_str(rc));
    else printf("chain %s recorded in %s\n", num, cc.paths.config);
    cli_chain_close(&cc);
    return rc ? CLI_FAIL : CLI_OK;
  }
  if (strcmp(sub, "deploy")) return cli_usage_error("chain", "unknown subcommand %s", sub);
  if (!rpc) return cli_usage_error("chain", "deploy needs --rpc URL");
  if (quorum <= 0 || quorum > 0xffffffffL || voting < 0 || timelock < 0)
    return cli_usage_error("chain", "bad governance parameters");
  if (cli_chain_open(&c, rpc, 0, &cc)) return CLI_FAIL;
  escrow_gov_params gp = {(uint32_t)quorum, (uint64_t)voting, (uint64_t)timelock};
  escrow_deployment d;
  int rc = escrow_deploy_all(cc.rpc, &cc.w, &gp, &d);
  if (rc) {
    int r = cli_chain_fail(&cc, "deploy", rc);
    cli_chain_close(&cc);
    return r;
  }
  char e[WALLET_ADDR_BUF], rg[WALLET_ADDR_BUF], g[WALLET_ADDR_BUF], q[600], num[32];
  addr_text(d.escrow, e);
  addr_text(d.registry, rg);
  addr_text(d.governance, g);
  snprintf(num, sizeof num, "%llu", (unsigned long long)d.chain_id);
  const char *path = cc.paths.config;
  snprintf(q, sizeof q, "\"%s\"", rpc);
  rc = cli_config_set(path, "chain", "rpc", q);
  if (!rc) rc = cli_config_set(path, "chain", "chain_id", num);
  snprintf(q, sizeof q, "\"%s\"", e);
  if (!rc) rc = cli_config_set(path, "chain", "escrow", q);
  snprintf(q, sizeof q, "\"%s\"", rg);
  if (!rc) rc = cli_config_set(path, "chain", "registry", q);
  snprintf(q, sizeof q, "\"%s\"", g);
  if (!rc) rc = cli_config_set(path, "chain", "governance", q);
  if (rc) log_error("deployed, but cannot update %s: %s; set [chain] by hand", path, err_str(rc));
  json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:I}", "chain_id", (json_int_t)d.chain_id, "escrow", e, "registry", rg,
                        "governance", g, "gas_used", (json_int_t)d.gas_used);
  cli_chain_close(&cc);
  if (c.json) return cli_print_json(o) || rc ? CLI_FAIL : CLI_OK;
  printf("chain %s\nescrow      %s\nregistry    %s\ngovernance  %s\ngas used    %lld\nrecorded in %s\n", num, e, rg,
         g, (long long)json_integer_value(json_object_get(o, "gas_used")), path);
  json_decref(o);
  return rc ? CLI_FAIL : CLI_OK;
}
