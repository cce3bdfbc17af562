/* cli/channel — `apiary channel open|list|topup|extend|refund|claim`: payment channels.
 *
 * Transactions are sent by the CLI from the node's wallet; the running node then reads the
 * channel back from the chain (pay.channel_add / pay.refresh) so its cache holds only what
 * the chain says. open asks the provider node for its wallet address over the encrypted
 * link (pay.info). list and claim go through the running node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "node/control.h"
#include "pay/channel.h"
#include "pay/escrow.h"
#include "pay/voucher.h"

static const char usage[] =
    "usage: apiary channel [--home DIR] [--json] open NODE_ID AMOUNT [--expiry SECONDS]\n"
    "       apiary channel [--home DIR] [--json] list\n"
    "       apiary channel [--home DIR] [--json] topup CHANNEL AMOUNT\n"
    "       apiary channel [--home DIR] [--json] extend CHANNEL SECONDS\n"
    "       apiary channel [--home DIR] [--json] refund CHANNEL\n"
    "       apiary channel [--home DIR] [--json] claim\n\n"
    "open    locks AMOUNT (wei, or 0.5eth / 1gwei) in the escrow for NODE_ID, which must be\n"
    "        reachable (its wallet address is asked over the link); the channel expires in\n"
    "        SECONDS (default 86400). The node's wallet pays and signs vouchers.\n"
    "list    channels of both sides: deposit, signed/accepted, claimed, expiry.\n"
    "topup   adds AMOUNT to a channel's deposit.\n"
    "extend  moves a channel's expiry to SECONDS from now (client only).\n"
    "refund  returns deposit - claimed to the client (anyone after expiry; the provider any time).\n"
    "claim   (provider) redeems every channel with unclaimed vouchers now, whatever the threshold.\n"
    "A running node is needed for open, list and claim.\n";

static void print_channel(json_t *ch) {
  printf("%s  %-8s  deposit %s  signed %s  claimed %s  expiry %lld%s\n",
         json_string_value(json_object_get(ch, "id")), json_string_value(json_object_get(ch, "role")),
         json_string_value(json_object_get(ch, "deposit")), json_string_value(json_object_get(ch, "signed")),
         json_string_value(json_object_get(ch, "claimed")), (long long)json_integer_value(json_object_get(ch, "expiry")),
         json_is_true(json_object_get(ch, "closed")) ? "  closed" : "");
}

static int print_result(const cli_common *c, json_t *res) {
  if (c->json) return cli_print_json(res);
  json_t *arr = json_object_get(res, "channels");
  if (json_is_array(arr)) {
    size_t i;
    json_t *ch;
    if (!json_array_size(arr)) printf("no channels\n");
    json_array_foreach(arr, i, ch) print_channel(ch);
  } else if (json_object_get(res, "claims")) {
    size_t i;
    json_t *cl;
    json_t *claims = json_object_get(res, "claims");
    if (!json_array_size(claims)) printf("nothing to claim\n");
    json_array_foreach(claims, i, cl)
      printf("%s  %s  %s\n", json_string_value(json_object_get(cl, "channel")),
             json_string_value(json_object_get(cl, "amount")),
             json_is_true(json_object_get(cl, "ok")) ? "claimed" : json_string_value(json_object_get(cl, "error")));
  } else {
    print_channel(res);
  }
  json_decref(res);
  return CLI_OK;
}

/* After a transaction: ask a running node to re-read the channel (quietly skipped when no
 * node runs: it re-reads at its next claim). */
static int refresh(const cli_common *c, const char *id_hex) {
  char dir[HOME_PATH_MAX];
  if (cli_home(c, dir, sizeof dir)) return CLI_FAIL;
  json_t *res = NULL;
  char *msg = NULL;
  int rc = ctl_call(dir, "pay.refresh", json_pack("{s:s}", "channel", id_hex), 30000, &res, &msg);
  free(msg);
  if (rc) {
    if (c->json) return cli_print_json(json_pack("{s:s}", "channel", id_hex));
    printf("%s done\n", id_hex);
    return CLI_OK;
  }
  return print_result(c, res);
}

static int do_open(const cli_common *c, const char *node, const char *amount, long expiry_s) {
  u256 dep;
  if (channel_amount_parse(amount, &dep)) return cli_usage_error("channel", "bad amount %s", amount);
  if (expiry_s <= 0) return cli_usage_error("channel", "bad --expiry");
  json_t *info = NULL;
  if (cli_ctl_call(c, "pay.peer_info", json_pack("{s:s}", "node_id", node), &info)) return CLI_FAIL;
  cli_chain cc;
  if (cli_chain_open(c, NULL, 1, &cc)) { json_decref(info); return CLI_FAIL; }
  const char *pa = json_string_value(json_object_get(info, "address"));
  const char *pe = json_string_value(json_object_get(info, "escrow"));
  uint64_t pc = (uint64_t)json_integer_value(json_object_get(info, "chain_id"));
  uint8_t provider[20], pesc[20];
  int rc = CLI_FAIL;
  if (!pa || wallet_addr_parse(pa, strlen(pa), provider)) {
    log_error("%s has no wallet address", node);
    goto done;
  }
  if (pc != cc.chain_id || !pe || wallet_addr_parse(pe, strlen(pe), pesc) || memcmp(pesc, cc.escrow, 20)) {
    log_error("%s takes payments on chain %llu escrow %s; this node uses chain %llu escrow %s", node,
              (unsigned long long)pc, pe ? pe : "(none)", (unsigned long long)cc.chain_id,
              config_str(cc.cfg, "chain", "escrow"));
    goto done;
  }
  uint8_t id[32];
  int r = escrow_open(cc.rpc, &cc.w, cc.escrow, provider, cc.w.addr, (uint64_t)time(NULL) + (uint64_t)expiry_s, &dep,
                      id, NULL);
  if (r) { rc = cli_chain_fail(&cc, "open", r); goto done; }
  char idh[67] = "0x";
  hex_encode(id, 32, idh + 2);
  json_t *res = NULL;
  if (cli_ctl_call(c, "pay.channel_add", json_pack("{s:s, s:s}", "channel", idh, "node_id", node), &res)) {
    log_error("channel %s is open on chain, but the node did not record it; retry with 'apiary channel' later", idh);
    goto done;
  }
  rc = print_result(c, res);
done:
  json_decref(info);
  cli_chain_close(&cc);
  return rc;
}

int cli_channel_main(int argc, char **argv) {
  cli_common c = {0};
  long expiry_s = 86400;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"expiry", required_argument, 0, 'e'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if (opt == 'e') { expiry_s = atol(optarg); continue; }
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("channel", argv);
  }
  if (optind >= argc) return cli_usage_error("channel", "expected open, list, topup, extend, refund or claim");
  const char *sub = argv[optind];
  int nargs = argc - optind - 1;
  char **args = argv + optind + 1;
  json_t *res = NULL;
  if (!strcmp(sub, "open")) {
    if (nargs != 2) return cli_usage_error("channel", "open takes NODE_ID AMOUNT");
    return do_open(&c, args[0], args[1], expiry_s);
  }
  if (!strcmp(sub, "list")) {
    if (nargs) return cli_usage_error("channel", "list takes no argument");
    if (cli_ctl_call(&c, "pay.channels", NULL, &res)) return CLI_FAIL;
    return print_result(&c, res);
  }
  if (!strcmp(sub, "claim")) {
    if (nargs) return cli_usage_error("channel", "claim takes no argument");
    if (cli_ctl_call(&c, "pay.claim", NULL, &res)) return CLI_FAIL;
    return print_result(&c, res);
  }
  int is_topup = !strcmp(sub, "topup"), is_extend = !strcmp(sub, "extend"), is_refund = !strcmp(sub, "refund");
  if (!is_topup && !is_extend && !is_refund) return cli_usage_error("channel", "unknown subcommand %s", sub);
  if (nargs != (is_refund ? 1 : 2)) return cli_usage_error("channel", "wrong number of arguments to %s", sub);
  uint8_t id[32];
  if (hex_parse(args[0], id, 32)) return cli_usage_error("channel", "bad channel id %s", args[0]);
  u256 amt;
  long secs = 0;
  if (is_topup && channel_amount_parse(args[1], &amt)) return cli_usage_error("channel", "bad amount %s", args[1]);
  if (is_extend && (secs = atol(args[1])) <= 0) return cli_usage_error("channel", "bad SECONDS %s", args[1]);
  cli_chain cc;
  if (cli_chain_open(&c, NULL, 1, &cc)) return CLI_FAIL;
  int rc = is_topup    ? escrow_topup(cc.rpc, &cc.w, cc.escrow, id, &amt, NULL)
           : is_extend ? escrow_extend(cc.rpc, &cc.w, cc.escrow, id, (uint64_t)time(NULL) + (uint64_t)secs, NULL)
                       : escrow_refund(cc.rpc, &cc.w, cc.escrow, id, NULL);
  if (rc) {
    rc = cli_chain_fail(&cc, sub, rc);
    cli_chain_close(&cc);
    return rc;
  }
  cli_chain_close(&cc);
  char idh[67] = "0x";
  hex_encode(id, 32, idh + 2);
  return refresh(&c, idh);
}
