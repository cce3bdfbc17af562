/* cli/ask — `apiary ask MODEL PROMPT --node NODE_ID`: generate on another node over an
 * authenticated, encrypted link. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_ask_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary ask [--home DIR] [--json] MODEL PROMPT --node NODE_ID [-n N] [--temp T] [--seed S]\n\n"
      "Asks node NODE_ID to generate from MODEL (a catalog name, a model in this node's store,\n"
      "or a sha256) over the encrypted link, and prints the text. The provider streams tokens\n"
      "as they come. Picking a provider by itself from the DHT, paying it per token and failing\n"
      "over to another one are the market layer's job (not yet): today you name the node.\n";
  cli_common c = {0};
  const char *node = NULL;
  long n_predict = 128;
  float temp = 0.8f;
  long seed = -1;
  enum { OPT_NODE = 0x3000 };
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"node", required_argument, 0, OPT_NODE},
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
  if (!node) return cli_usage_error("ask", "--node NODE_ID is required for now");
  json_t *p = json_pack("{s:s, s:s, s:s, s:i, s:f}", "node_id", node, "model", argv[optind], "prompt", argv[optind + 1],
                        "max_tokens", (int)n_predict, "temperature", (double)temp);
  json_object_set_new(p, "seed", json_integer(seed >= 0 ? seed : (long)cli_random_seed()));
  json_t *res = NULL;
  int rc = cli_ctl_call(&c, "ask", p, &res);
  if (rc) return rc;
  if (c.json) return cli_print_json(res);
  printf("%s%s\n", argv[optind + 1], json_string_value(json_object_get(res, "text")));
  fprintf(stderr, "apiary: answered by %s: %lld prompt + %lld generated tokens (%s)\n",
          json_string_value(json_object_get(res, "node_id")),
          (long long)json_integer_value(json_object_get(res, "prompt_tokens")),
          (long long)json_integer_value(json_object_get(res, "completion_tokens")),
          json_string_value(json_object_get(res, "finish")));
  json_decref(res);
  return CLI_OK;
}
