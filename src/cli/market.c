/* cli/market — `apiary offers` (what the network sells) and `apiary receipts` (what this
 * node bought and sold), both read from the running node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int parse_simple(int argc, char **argv, const char *cmd, const char *usage, cli_common *c, int *role) {
  enum { OPT_ROLE = 0x3100 };
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"role", required_argument, 0, OPT_ROLE}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, c, usage);
    if (r < 0) return -1;
    if (r > 0) continue;
    if (opt == OPT_ROLE && role) {
      if (!strcmp(optarg, "client")) *role = 1;
      else if (!strcmp(optarg, "provider")) *role = 2;
      else return cli_usage_error(cmd, "--role wants client or provider, not '%s'", optarg);
      continue;
    }
    return cli_bad_opt(cmd, argv);
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  return 0;
}

int cli_offers_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary offers [--home DIR] [--json]\n\n"
      "What the network offers, as this node knows it: every linked node's models with their\n"
      "price in wei per 1,000 prompt / generated tokens, and this node's own offers. Ranking\n"
      "figures (time to first token, failures, verification mismatches) are this node's own\n"
      "measurements. Then the agents for sale (this node's and the ones other nodes told us\n"
      "of, over a link or in their DHT record): name, skills and price in wei per task (and per\n"
      "1,000 tokens the task uses, when priced so).\n";
  cli_common c = {0};
  int r = parse_simple(argc, argv, "offers", usage, &c, NULL);
  if (r) return r < 0 ? CLI_OK : r;
  json_t *res = NULL;
  if ((r = cli_ctl_call(&c, "market.offers", NULL, &res))) return r;
  if (c.json) return cli_print_json(res);
  json_t *arr = json_object_get(res, "offers");
  if (!json_array_size(arr)) printf("no offers known yet (is the node linked to others? see 'apiary peers')\n");
  else printf("%-20s %-18s %-14s %14s %14s %5s\n", "node", "model", "sha256", "wei/1k prompt", "wei/1k gen", "slots");
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    const char *node = json_string_value(json_object_get(o, "node"));
    printf("%-20.18s %-18.18s %-14.12s %14s %14s %5lld%s\n", node ? node : "?",
           json_string_value(json_object_get(o, "name")), json_string_value(json_object_get(o, "model")),
           json_string_value(json_object_get(o, "price_prompt")), json_string_value(json_object_get(o, "price_gen")),
           (long long)json_integer_value(json_object_get(o, "max_concurrent")),
           json_is_true(json_object_get(o, "self")) ? "  (this node)" : "");
  }
  arr = json_object_get(res, "agents");
  if (json_array_size(arr))
    printf("\n%-20s %-18s %-30s %16s %14s\n", "node", "agent", "skills", "wei/task", "wei/1k tokens");
  json_array_foreach(arr, i, o) {
    char skills[128] = "";
    size_t k;
    json_t *sk;
    json_array_foreach(json_object_get(o, "skills"), k, sk) {
      size_t len = strlen(skills);
      snprintf(skills + len, sizeof skills - len, "%s%s", k ? "," : "", json_string_value(sk));
    }
    const char *node = json_string_value(json_object_get(o, "node"));
    const char *per_1k = json_string_value(json_object_get(o, "price_per_1k"));
    printf("%-20.18s %-18.18s %-30.30s %16s %14s%s\n", node ? node : "?", json_string_value(json_object_get(o, "name")),
           skills[0] ? skills : "-", json_string_value(json_object_get(o, "price_wei")), per_1k ? per_1k : "-",
           json_is_true(json_object_get(o, "self")) ? "  (this node)" : "");
  }
  json_decref(res);
  return CLI_OK;
}

int cli_receipts_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary receipts [--home DIR] [--json] [--role client|provider]\n\n"
      "Receipts of paid generations, newest first: as client (bought from a provider) and as\n"
      "provider (sold). Each names the request, both nodes, the model's sha256, the payment\n"
      "channel, the prompt and generated tokens, the prices and the amount paid in wei.\n";
  cli_common c = {0};
  int role = 0;
  int r = parse_simple(argc, argv, "receipts", usage, &c, &role);
  if (r) return r < 0 ? CLI_OK : r;
  json_t *res = NULL;
  if ((r = cli_ctl_call(&c, "market.receipts", json_pack("{s:i}", "role", role), &res))) return r;
  if (c.json) return cli_print_json(res);
  json_t *arr = json_object_get(res, "receipts");
  if (!json_array_size(arr)) printf("no receipts yet\n");
  else printf("%-8s %-10s %-20s %-12s %7s %7s %16s %s\n", "role", "request", "other node", "model", "prompt", "gen",
              "wei", "status");
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    int prov = !strcmp(json_string_value(json_object_get(o, "role")) ?: "", "provider");
    printf("%-8s %-10.8s %-20.18s %-12.10s %7lld %7lld %16s %s\n", prov ? "sold" : "bought",
           json_string_value(json_object_get(o, "request")),
           json_string_value(json_object_get(o, prov ? "client" : "provider")),
           json_string_value(json_object_get(o, "model")),
           (long long)json_integer_value(json_object_get(o, "prompt_tokens")),
           (long long)json_integer_value(json_object_get(o, "gen_tokens")),
           json_string_value(json_object_get(o, "amount")), json_string_value(json_object_get(o, "status")));
  }
  json_decref(res);
  return CLI_OK;
}
