/* cli/status — `apiary status` and `apiary stop`: ask the running node over its control
 * socket. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/control.h"
#include "node/home.h"

int cli_ctl_simple(const char *cmd, const char *method, int argc, char **argv, const char *usage,
                   json_t **result_out, cli_common *c_out) {
  cli_common c = {0};
  int pr = cli_parse_common(cmd, argc, argv, usage, &c);
  if (pr) return pr;
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  *c_out = c;
  return cli_ctl_call(&c, method, NULL, result_out);
}

int cli_ctl_call(const cli_common *c, const char *method, json_t *params, json_t **result_out) {
  char dir[HOME_PATH_MAX];
  if (cli_home(c, dir, sizeof dir)) {
    json_decref(params);
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  char *msg = NULL;
  int rc = ctl_call(dir, method, params, 30000, result_out, &msg);
  if (rc == -ENOENT || rc == -ECONNREFUSED) {
    log_error("no node is running on %s; start one with 'apiary node --home %s'", dir, dir);
    return CLI_FAIL;
  }
  if (rc) {
    log_error("%s: %s", method, msg ? msg : err_str(rc));
    free(msg);
    return CLI_FAIL;
  }
  return CLI_OK;
}

int cli_status_main(int argc, char **argv) {
  static const char usage[] = "usage: apiary status [--home DIR] [--json]\n\nShows the running node: id, version, pid, uptime, and the market (models it\nsells, offers it knows, requests being routed); --json adds links, DHT and LAN counters.\n";
  json_t *r = NULL;
  cli_common c;
  int rc = cli_ctl_simple("status", "status", argc, argv, usage, &r, &c);
  if (rc) return rc < 0 ? CLI_OK : rc;
  if (c.json) return cli_print_json(r);
  printf("node id   %s\nversion   %s\npid       %lld\nuptime    %llds\nhome      %s\n",
         json_string_value(json_object_get(r, "node_id")), json_string_value(json_object_get(r, "version")),
         (long long)json_integer_value(json_object_get(r, "pid")),
         (long long)json_integer_value(json_object_get(r, "uptime_s")), json_string_value(json_object_get(r, "home")));
  json_t *mk = json_object_get(r, "market");
  if (mk)
    printf("market    sells %lld model%s (%lld generation%s now); knows %lld offer%s from %lld provider%s; "
           "%lld request%s routing\n",
           (long long)json_integer_value(json_object_get(mk, "offers_own")),
           json_integer_value(json_object_get(mk, "offers_own")) == 1 ? "" : "s",
           (long long)json_integer_value(json_object_get(mk, "generations_selling")),
           json_integer_value(json_object_get(mk, "generations_selling")) == 1 ? "" : "s",
           (long long)json_integer_value(json_object_get(mk, "offers_known")),
           json_integer_value(json_object_get(mk, "offers_known")) == 1 ? "" : "s",
           (long long)json_integer_value(json_object_get(mk, "providers_known")),
           json_integer_value(json_object_get(mk, "providers_known")) == 1 ? "" : "s",
           (long long)json_integer_value(json_object_get(mk, "requests_routing")),
           json_integer_value(json_object_get(mk, "requests_routing")) == 1 ? "" : "s");
  json_int_t un = mk ? json_integer_value(json_object_get(mk, "vouchers_unanswered")) : 0;
  if (un)
    printf("payments  %lld voucher%s not answered yet by %s provider (sent again until it answers)\n", (long long)un,
           un == 1 ? "" : "s", un == 1 ? "its" : "their");
  json_decref(r);
  return CLI_OK;
}

int cli_stop_main(int argc, char **argv) {
  static const char usage[] = "usage: apiary stop [--home DIR] [--json]\n\nAsks the running node to shut down cleanly.\n";
  json_t *r = NULL;
  cli_common c;
  int rc = cli_ctl_simple("stop", "stop", argc, argv, usage, &r, &c);
  if (rc) return rc < 0 ? CLI_OK : rc;
  if (c.json) return cli_print_json(r);
  json_decref(r);
  printf("node stopping\n");
  return CLI_OK;
}
