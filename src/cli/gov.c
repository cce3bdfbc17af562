/* cli/gov — `apiary gov propose|vote|execute|list`: one-node-one-vote Governance
 * (docs/contracts.md). The node's wallet sends the transactions; votes are cast for this
 * node's key, which must be registered ('apiary registry node register') before the
 * proposal was made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain/governance.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"

static const char usage[] =
    "usage: apiary gov [--home DIR] [--json] propose verify|unverify MODEL_SHA256\n"
    "       apiary gov [--home DIR] [--json] propose delist NODE_KEY_HEX\n"
    "       apiary gov [--home DIR] vote ID yes|no\n"
    "       apiary gov [--home DIR] execute ID\n"
    "       apiary gov [--home DIR] [--json] list\n\n"
    "Proposals verify (or unverify) a model in the Registry or delist a node. Each\n"
    "registered node key has one vote; a proposal passes with at least the quorum of yes\n"
    "votes and more yes than no, and anyone may execute it after the timelock.\n";

static const char *const STATES[] = {"active", "defeated", "queued", "ready", "executed"};

static json_t *proposal_json(const gov_proposal *p) {
  char t[65], who[WALLET_ADDR_BUF];
  hex_encode(p->target, 32, t);
  wallet_addr_eip55(p->proposer, who);
  const char *action = p->action == GOV_DELIST_NODE ? "delist" : p->value ? "verify" : "unverify";
  return json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I}", "id", (json_int_t)p->id, "action", action, "target",
                   t, "proposer", who, "state", p->state >= 0 && p->state <= 4 ? STATES[p->state] : "?", "for",
                   (int)p->for_votes, "against", (int)p->against_votes, "vote_end", (json_int_t)p->vote_end, "eta",
                   (json_int_t)p->eta);
}

static int open_gov(const cli_common *c, cli_chain *cc, uint8_t gov[20]) {
  if (cli_chain_open(c, NULL, 0, cc)) return CLI_FAIL;
  const char *g = config_str(cc->cfg, "chain", "governance");
  if (!g[0] || wallet_addr_parse(g, strlen(g), gov)) {
    log_error("no governance contract configured; run 'apiary chain deploy' or 'apiary chain use ... --governance ADDR'");
    cli_chain_close(cc);
    return CLI_FAIL;
  }
  return CLI_OK;
}

static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || v == 0) return ERR_FORMAT;
  *out = v;
  return 0;
}

int cli_gov_main(int argc, char **argv) {
  cli_common c = {0};
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("gov", argv);
  }
  if (optind >= argc) return cli_usage_error("gov", "expected propose, vote, execute or list");
  const char *sub = argv[optind];
  int nargs = argc - optind - 1;
  char **args = argv + optind + 1;
  cli_chain cc;
  uint8_t gov[20];
  int rc;
  if (!strcmp(sub, "list")) {
    if (nargs) return cli_usage_error("gov", "list takes no argument");
    if (open_gov(&c, &cc, gov)) return CLI_FAIL;
    uint64_t n;
    rc = gov_count(cc.rpc, gov, &n);
    json_t *arr = json_array();
    for (uint64_t i = 1; !rc && i <= n; i++) {
      gov_proposal p;
      if (!(rc = gov_get(cc.rpc, gov, i, &p))) json_array_append_new(arr, proposal_json(&p));
    }
    if (rc) { json_decref(arr); rc = cli_chain_fail(&cc, "list", rc); cli_chain_close(&cc); return rc; }
    cli_chain_close(&cc);
    if (c.json) return cli_print_json(json_pack("{s:o}", "proposals", arr));
    size_t i;
    json_t *p;
    if (!json_array_size(arr)) printf("no proposals\n");
    json_array_foreach(arr, i, p)
      printf("%lld  %-8s %s  %-8s for %d against %d\n", (long long)json_integer_value(json_object_get(p, "id")),
             json_string_value(json_object_get(p, "action")), json_string_value(json_object_get(p, "target")),
             json_string_value(json_object_get(p, "state")), (int)json_integer_value(json_object_get(p, "for")),
             (int)json_integer_value(json_object_get(p, "against")));
    json_decref(arr);
    return CLI_OK;
  }
  if (!strcmp(sub, "propose")) {
    uint8_t target[32];
    if (nargs != 2 || strlen(args[1]) != 64 || hex_decode(args[1], 64, target, 32))
      return cli_usage_error("gov", "propose takes verify|unverify|delist and a 64-hex-digit target");
    int action, value = 0;
    if (!strcmp(args[0], "verify")) action = GOV_SET_VERIFIED, value = 1;
    else if (!strcmp(args[0], "unverify")) action = GOV_SET_VERIFIED;
    else if (!strcmp(args[0], "delist")) action = GOV_DELIST_NODE;
    else return cli_usage_error("gov", "unknown action %s", args[0]);
    if (open_gov(&c, &cc, gov)) return CLI_FAIL;
    uint64_t id;
    rc = gov_propose(cc.rpc, &cc.w, gov, action, target, value, &id);
    if (rc) { rc = cli_chain_fail(&cc, "propose", rc); cli_chain_close(&cc); return rc; }
    cli_chain_close(&cc);
    if (c.json) return cli_print_json(json_pack("{s:I}", "id", (json_int_t)id));
    printf("proposal %llu\n", (unsigned long long)id);
    return CLI_OK;
  }
  uint64_t id;
  if (!strcmp(sub, "vote")) {
    if (nargs != 2 || parse_u64(args[0], &id) || (strcmp(args[1], "yes") && strcmp(args[1], "no")))
      return cli_usage_error("gov", "vote takes ID yes|no");
    if (open_gov(&c, &cc, gov)) return CLI_FAIL;
    ident me;
    rc = ident_load(cc.paths.identity, &me);
    if (rc) { log_error("cannot load %s: %s", cc.paths.identity, err_str(rc)); cli_chain_close(&cc); return CLI_FAIL; }
    uint8_t key[32];
    memcpy(key, me.pk, 32);
    ident_wipe(&me);
    rc = gov_vote(cc.rpc, &cc.w, gov, id, key, !strcmp(args[1], "yes"));
  } else if (!strcmp(sub, "execute")) {
    if (nargs != 1 || parse_u64(args[0], &id)) return cli_usage_error("gov", "execute takes ID");
    if (open_gov(&c, &cc, gov)) return CLI_FAIL;
    rc = gov_execute(cc.rpc, &cc.w, gov, id);
  } else {
    return cli_usage_error("gov", "unknown subcommand %s", sub);
  }
  if (rc) { rc = cli_chain_fail(&cc, sub, rc); cli_chain_close(&cc); return rc; }
  cli_chain_close(&cc);
  printf("%s %llu: done\n", sub, (unsigned long long)id);
  return CLI_OK;
}
