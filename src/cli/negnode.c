/* cli/negnode — `apiary negotiate intent|find|start|list|show`: the running node's
 * negotiations (node/negsvc) through its control socket. Main thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/control.h"
#include "node/home.h"

static const char usage[] =
    "usage: apiary negotiate intent add FILE.json [--replace] | intent list | intent rm ID\n"
    "       apiary negotiate find [TAG...] [--intent MY_ID]\n"
    "       apiary negotiate start NODE_ID[/INTENT_ID] --intent MY_ID [--wait]\n"
    "       apiary negotiate list | show SESSION_ID          [--home DIR] [--json]\n\n"
    "An intent is what you seek or offer (kind, tags, the terms on the table) with your\n"
    "mandate for it (weights, scores, reservation, deadline, required and confidential\n"
    "terms): the mandate never leaves the node. Other nodes find your intents by tag; a\n"
    "negotiation runs between your node and theirs, and an agreement is a deal both nodes\n"
    "sign; the market then charges the agreed price between the two. Format and protocol:\n"
    "docs/negotiation.md.\n\n"
    "  --intent ID   your intent to negotiate with (start), or to match against (find)\n"
    "  --wait        start: wait for the outcome and print it\n"
    "  --replace     intent add: replace an intent with the same id\n";

enum { O_INTENT = 0x3100, O_WAIT, O_REPLACE };

static void show_session(json_t *s) {
  const char *state = json_string_value(json_object_get(s, "state"));
  printf("%s  %s  %s rounds=%lld  mine=%s theirs=%s  peer %s\n", json_string_value(json_object_get(s, "id")),
         state ? state : "?", json_is_true(json_object_get(s, "opener")) ? "opened" : "answered",
         (long long)json_integer_value(json_object_get(s, "rounds")), json_string_value(json_object_get(s, "my_intent")),
         json_string_value(json_object_get(s, "peer_intent")), json_string_value(json_object_get(s, "peer")));
  json_t *deal = json_object_get(s, "deal");
  if (json_is_object(deal)) {
    char *terms = json_dumps(json_object_get(json_object_get(deal, "deal"), "terms"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("    deal %s  price %s wei/1k  my utility %.3f  signatures %s\n", terms ? terms : "",
           json_string_value(json_object_get(s, "price_per_1k_wei")), json_real_value(json_object_get(s, "my_utility")),
           json_is_true(json_object_get(s, "verified")) ? "both valid" : "INVALID");
    free(terms);
  } else if (json_string_length(json_object_get(s, "reason"))) {
    printf("    %s\n", json_string_value(json_object_get(s, "reason")));
  }
}

static int out(const cli_common *c, json_t *res, const char *list_key) {
  if (c->json) return cli_print_json(res);
  size_t i;
  json_t *x;
  if (!list_key) show_session(res);
  else if (!strcmp(list_key, "sessions")) {
    if (!json_array_size(json_object_get(res, list_key))) printf("no negotiations yet\n");
    json_array_foreach(json_object_get(res, list_key), i, x) show_session(x);
  } else {
    if (!json_array_size(json_object_get(res, list_key))) printf("none\n");
    json_array_foreach(json_object_get(res, list_key), i, x) {
      char *tags = json_dumps(json_object_get(x, "tags"), JSON_COMPACT);
      const char *node = json_string_value(json_object_get(x, "node_id"));
      printf("%s%s%-20s %-5s %s\n", node ? node : "", node ? "/" : "", json_string_value(json_object_get(x, "id")),
             json_string_value(json_object_get(x, "kind")), tags ? tags : "");
      free(tags);
    }
  }
  json_decref(res);
  return CLI_OK;
}

int cli_negotiate_node_main(int argc, char **argv) {
  static const struct option opts[] = {{"intent", required_argument, 0, O_INTENT}, {"wait", no_argument, 0, O_WAIT},
                                       {"replace", no_argument, 0, O_REPLACE}, CLI_COMMON_LONGOPTS, {0, 0, 0, 0}};
  cli_common c = {0};
  const char *intent = NULL;
  int wait = 0, replace = 0, opt, rc;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if ((rc = cli_common_opt(opt, optarg, &c, usage))) {
      if (rc < 0) return CLI_OK;
      continue;
    }
    switch (opt) {
    case O_INTENT: intent = optarg; break;
    case O_WAIT: wait = 1; break;
    case O_REPLACE: replace = 1; break;
    default: return cli_bad_opt("negotiate", argv);
    }
  }
  int npos = argc - optind;
  char **pos = argv + optind - 1; /* pos[0] is the subcommand (argv[0]) */
  const char *cmd = argv[0];
  json_t *res = NULL;
  if (!strcmp(cmd, "intent")) {
    const char *what = npos >= 1 ? pos[1] : "";
    if (!strcmp(what, "add") && npos == 2) {
      json_error_t je;
      json_t *f = json_load_file(pos[2], JSON_REJECT_DUPLICATES, &je);
      if (!f) return cli_usage_error("negotiate", "%s:%d: %s", pos[2], je.line, je.text);
      if ((rc = cli_ctl_call(&c, "neg.intent_add", json_pack("{s:o, s:b}", "def", f, "replace", replace), &res))) return rc;
      if (c.json) return cli_print_json(res);
      printf("intent %s (%s) added\n", json_string_value(json_object_get(res, "id")),
             json_string_value(json_object_get(res, "kind")));
      json_decref(res);
      return CLI_OK;
    }
    if (!strcmp(what, "list") && npos == 1) {
      if ((rc = cli_ctl_call(&c, "neg.intent_list", NULL, &res))) return rc;
      return out(&c, res, "intents");
    }
    if (!strcmp(what, "rm") && npos == 2) {
      if ((rc = cli_ctl_call(&c, "neg.intent_rm", json_pack("{s:s}", "id", pos[2]), &res))) return rc;
      if (c.json) return cli_print_json(res);
      json_decref(res);
      return CLI_OK;
    }
    return cli_usage_error("negotiate", "expected intent add FILE, intent list or intent rm ID");
  }
  if (!strcmp(cmd, "find")) {
    json_t *tags = json_array();
    for (int i = 1; i <= npos; i++) json_array_append_new(tags, json_string(pos[i]));
    json_t *p = json_pack("{s:o}", "tags", tags);
    if (intent) json_object_set_new(p, "intent", json_string(intent));
    if ((rc = cli_ctl_call(&c, "neg.find", p, &res))) return rc;
    return out(&c, res, "intents");
  }
  if (!strcmp(cmd, "start")) {
    if (npos != 1 || !intent) return cli_usage_error("negotiate", "start wants NODE_ID[/INTENT_ID] and --intent MY_ID");
    char node[128];
    snprintf(node, sizeof node, "%s", pos[1]);
    char *slash = strchr(node, '/');
    if (slash) *slash++ = 0;
    json_t *p = json_pack("{s:s, s:s, s:b}", "node_id", node, "intent", intent, "wait", wait);
    if (slash) json_object_set_new(p, "peer_intent", json_string(slash));
    char dir[HOME_PATH_MAX], *msg = NULL;
    if (cli_home(&c, dir, sizeof dir)) {
      json_decref(p);
      log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
      return CLI_FAIL;
    }
    rc = ctl_call(dir, "neg.start", p, 300000, &res, &msg);
    if (rc) {
      log_error("negotiate start: %s", msg ? msg : err_str(rc));
      free(msg);
      return CLI_FAIL;
    }
    if (!wait) {
      if (c.json) return cli_print_json(res);
      printf("%s\n", json_string_value(json_object_get(res, "id")));
      json_decref(res);
      return CLI_OK;
    }
    int agreed = !strcmp(json_string_value(json_object_get(res, "state")) ?: "", "agreed");
    rc = out(&c, res, NULL);
    return rc ? rc : agreed ? CLI_OK : CLI_FAIL;
  }
  if (!strcmp(cmd, "list")) {
    if (npos) return cli_usage_error("negotiate", "list takes no argument");
    if ((rc = cli_ctl_call(&c, "neg.list", NULL, &res))) return rc;
    return out(&c, res, "sessions");
  }
  if (!strcmp(cmd, "show")) {
    if (npos != 1) return cli_usage_error("negotiate", "show wants SESSION_ID");
    if ((rc = cli_ctl_call(&c, "neg.show", json_pack("{s:s}", "id", pos[1]), &res))) return rc;
    return out(&c, res, NULL);
  }
  return cli_usage_error("negotiate", "unknown subcommand '%s'", cmd);
}
