/* cli/pay — `apiary pay NODE_ID AMOUNT`: pays another node AMOUNT more through the open
 * channel to it. The running node signs the next cumulative voucher and sends it over the
 * encrypted link; the provider checks it offline and commits it before it answers. */
#include <stdio.h>

#include "cli/cli.h"

int cli_pay_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary pay [--home DIR] [--json] NODE_ID AMOUNT\n\n"
      "Sends NODE_ID a voucher for AMOUNT more (wei, or 0.5eth / 1gwei) on the open channel\n"
      "to it ('apiary channel open' first). Prints the channel and its new cumulative total\n"
      "once the provider has stored the voucher.\n";
  cli_common c = {0};
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r == 0) return cli_bad_opt("pay", argv);
  }
  if (optind != argc - 2) return cli_usage_error("pay", "expected NODE_ID AMOUNT");
  json_t *res = NULL;
  int rc = cli_ctl_call(&c, "pay.send", json_pack("{s:s, s:s}", "node_id", argv[optind], "amount", argv[optind + 1]),
                        &res);
  if (rc) return rc;
  if (c.json) return cli_print_json(res);
  printf("paid %s wei on channel %s (total %s)\n", json_string_value(json_object_get(res, "paid")),
         json_string_value(json_object_get(res, "channel")), json_string_value(json_object_get(res, "total")));
  json_decref(res);
  return CLI_OK;
}
