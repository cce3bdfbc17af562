/* cli/ask — `apiary ask MODEL PROMPT [--node NODE_ID]`: a generation through the node's
 * market routing (the best provider on the network, paid per token, with failover). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_ask_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary ask [--home DIR] [--json] MODEL PROMPT [--node NODE_ID] [--privacy P] [-n N] [--temp T] [--seed S]\n\n"
      "Buys a generation from MODEL (a catalog name, a name the network offers, or a sha256)\n"
      "through the running node: it picks the best provider that offers that exact file (its\n"
      "hash listed in the Registry), pays it per token from a payment channel, and continues\n"
      "with the next provider if one fails mid-answer. Prints the text, then who answered and\n"
      "the cost on stderr.\n\n"
      "  --node NODE_ID  use only this provider\n"
      "  --privacy P     allow, redact (personal data replaced by placeholders before the\n"
      "                  prompt leaves, restored in the answer) or local-only (refused when\n"
      "                  the model is not on this node); tightens [privacy] default\n"
      "  -n N            tokens to generate (default 128)\n"
      "  --temp T        temperature (0 = greedy; default 0.8)\n"
      "  --seed S        sampling seed\n";
  cli_common c = {0};
  const char *node = NULL, *privacy = NULL;
  long n_predict = 128;
  float temp = 0.8f;
  long seed = -1;
  enum { OPT_NODE = 0x3000, OPT_PRIVACY };
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"node", required_argument, 0, OPT_NODE},
                                       {"privacy", required_argument, 0, OPT_PRIVACY},
                                       {"n-predict", required_argument, 0, 'n'}, {"temp", required_argument, 0, CLI_OPT_TEMP},
                                       {"seed", required_argument, 0, 's'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqn:s:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    switch (opt) {
    case OPT_NODE: node = optarg; break;
    case OPT_PRIVACY: privacy = optarg; break;
    case 'n':
      if (cli_parse_long(optarg, 1, 8192, &n_predict)) return cli_usage_error("ask", "bad -n '%s' (1..8192)", optarg);
      break;
    case CLI_OPT_TEMP:
      if (cli_parse_float(optarg, 0, 2, &temp)) return cli_usage_error("ask", "bad --temp '%s' (0..2)", optarg);
      break;
    case 's':
      if (cli_parse_long(optarg, 0, 0x7fffffffl, &seed)) return cli_usage_error("ask", "bad --seed '%s'", optarg);
      break;
    default: return cli_bad_opt("ask", argv);
    }
  }
  if (optind + 2 != argc) return cli_usage_error("ask", "expected MODEL and PROMPT");
  json_t *p = json_pack("{s:s, s:s, s:i, s:f}", "model", argv[optind], "prompt", argv[optind + 1], "max_tokens",
                        (int)n_predict, "temperature", (double)temp);
  if (node) json_object_set_new(p, "node_id", json_string(node));
  if (privacy) json_object_set_new(p, "privacy", json_string(privacy));
  json_object_set_new(p, "seed", json_integer(seed >= 0 ? seed : (long)cli_random_seed()));
  json_t *res = NULL;
  int rc = cli_ctl_call(&c, "ask", p, &res);
  if (rc) return rc;
  if (c.json) return cli_print_json(res);
  printf("%s%s\n", argv[optind + 1], json_string_value(json_object_get(res, "text")));
  fprintf(stderr, "apiary: answered by %s: %lld prompt + %lld generated tokens (%s), cost %s wei",
          json_string_value(json_object_get(res, "node_id")),
          (long long)json_integer_value(json_object_get(res, "prompt_tokens")),
          (long long)json_integer_value(json_object_get(res, "completion_tokens")),
          json_string_value(json_object_get(res, "finish")), json_string_value(json_object_get(res, "cost_wei")));
  json_int_t fo = json_integer_value(json_object_get(res, "failovers"));
  if (fo) fprintf(stderr, ", %lld failover%s", (long long)fo, fo == 1 ? "" : "s");
  fputc('\n', stderr);
  json_decref(res);
  return CLI_OK;
}
