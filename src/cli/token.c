/* cli/token — `apiary token create|list|revoke`: bearer tokens for the local API.
 *
 * With a node running, the request goes over the control socket (the node owns the
 * database and refreshes its token snapshot at once); with no node running, the CLI opens
 * the database itself. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "http/auth.h"
#include "node/control.h"
#include "node/home.h"
#include "privacy/policy.h"

static const char usage[] =
    "usage: apiary token [--home DIR] [--json] create [--label TEXT] [--privacy LEVEL]\n"
    "       apiary token [--home DIR] [--json] list\n"
    "       apiary token [--home DIR] [--json] revoke ID\n\n"
    "Bearer tokens for the OpenAI-compatible API (every request needs one). A new token is\n"
    "printed once; only its hash is stored, so keep it somewhere safe. Revoked tokens stop\n"
    "working at once on a running node.\n\n"
    "  --privacy LEVEL  allow, redact or local-only: every request with this token gets at\n"
    "                   least this privacy level (the strictest of the node's, the token's,\n"
    "                   the agent's and the request's applies; docs/redaction.md)\n";

/* Runs method on the running node, or returns -ENOENT when none runs. */
static int via_node(const char *dir, const char *method, json_t *params, json_t **res) {
  char *msg = NULL;
  int rc = ctl_call(dir, method, params, 10000, res, &msg);
  if (rc == -ENOENT || rc == -ECONNREFUSED) return -ENOENT;
  if (rc) {
    log_error("%s: %s", method, msg ? msg : err_str(rc));
    free(msg);
    return rc;
  }
  return 0;
}

/* Same operation on the database directly (no node running). */
static int direct(const char *dir, const char *method, json_t *params, json_t **res) {
  home_paths p;
  store *s;
  char err[512];
  if (home_paths_init(&p, dir)) return ERR_INVAL;
  int rc = home_open_store(&p, &s, err, sizeof err);
  if (rc) { log_error("%s", err); return rc; }
  if (!strcmp(method, "token.create")) {
    const char *label = json_string_value(json_object_get(params, "label"));
    char tok[AUTH_TOKEN_BUF];
    int64_t id;
    json_t *pv = json_object_get(params, "privacy");
    int privacy = pv ? policy_parse(json_string_value(pv), json_string_length(pv)) : 0;
    if (privacy < 0) rc = ERR_INVAL;
    else if (!(rc = auth_create_privacy(s, label, privacy, tok, &id)))
      *res = json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)id, "token", tok, "label", label ? label : "",
                       "privacy", policy_name((policy_level)privacy));
    sodium_memzero(tok, sizeof tok);
  } else if (!strcmp(method, "token.list")) {
    static auth_token_info list[AUTH_MAX_TOKENS];
    int k = auth_list(s, list, AUTH_MAX_TOKENS);
    if (k < 0) rc = k;
    json_t *arr = json_array();
    for (int i = 0; i < k; i++)
      json_array_append_new(arr, json_pack("{s:I, s:s, s:I, s:b, s:s}", "id", (json_int_t)list[i].id, "label",
                                           list[i].label, "created", (json_int_t)list[i].created_s, "revoked",
                                           list[i].revoked, "privacy", policy_name((policy_level)list[i].privacy)));
    *res = json_pack("{s:o}", "tokens", arr);
  } else {
    rc = auth_revoke(s, json_integer_value(json_object_get(params, "id")));
    if (!rc) *res = json_pack("{s:b}", "revoked", 1);
  }
  if (rc) log_error("%s failed: %s", method, err_str(rc));
  store_close(s);
  json_decref(params);
  return rc;
}

int cli_token_main(int argc, char **argv) {
  cli_common c = {0};
  const char *label = NULL, *privacy = NULL;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"label", required_argument, 0, 'l'},
                                       {"privacy", required_argument, 0, 'P'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "+hvql:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == 'l') label = optarg;
    else if (opt == 'P') privacy = optarg;
    else return cli_bad_opt("token", argv);
  }
  if (optind >= argc) return cli_usage_error("token", "expected create, list or revoke");
  const char *action = argv[optind++];
  /* Options may also follow the action. */
  while ((opt = getopt_long(argc, argv, "hvql:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == 'l') label = optarg;
    else if (opt == 'P') privacy = optarg;
    else return cli_bad_opt("token", argv);
  }
  json_t *params = json_object();
  const char *method;
  if (!strcmp(action, "create")) {
    method = "token.create";
    if (label) {
      if (strlen(label) >= AUTH_LABEL_MAX) { json_decref(params); return cli_usage_error("token", "--label is too long"); }
      json_object_set_new(params, "label", json_string(label));
    }
    if (privacy) {
      if (policy_parse(privacy, strlen(privacy)) < 0) {
        json_decref(params);
        return cli_usage_error("token", "--privacy must be allow, redact or local-only");
      }
      json_object_set_new(params, "privacy", json_string(privacy));
    }
  } else if (!strcmp(action, "list")) {
    method = "token.list";
  } else if (!strcmp(action, "revoke")) {
    method = "token.revoke";
    char *end = NULL;
    long long id = optind < argc ? strtoll(argv[optind], &end, 10) : 0;
    if (optind >= argc || *end || id <= 0) { json_decref(params); return cli_usage_error("token", "revoke wants a token ID (see 'apiary token list')"); }
    optind++;
    json_object_set_new(params, "id", json_integer(id));
  } else {
    json_decref(params);
    return cli_usage_error("token", "unknown action '%s' (expected create, list or revoke)", action);
  }
  if (optind < argc) { json_decref(params); return cli_usage_error("token", "unexpected argument '%s'", argv[optind]); }
  char dir[HOME_PATH_MAX];
  if (cli_home(&c, dir, sizeof dir)) { json_decref(params); log_error("cannot work out the node home"); return CLI_FAIL; }
  json_t *res = NULL;
  int rc = via_node(dir, method, json_incref(params), &res);
  if (rc == -ENOENT) rc = direct(dir, method, json_incref(params), &res);
  json_decref(params);
  if (rc) return CLI_FAIL;
  if (c.json) return cli_print_json(res);
  if (!strcmp(method, "token.create")) {
    printf("%s\n", json_string_value(json_object_get(res, "token")));
    fprintf(stderr, "token %lld created; it is shown only now. Use it as 'Authorization: Bearer <token>'.\n",
            (long long)json_integer_value(json_object_get(res, "id")));
  } else if (!strcmp(method, "token.list")) {
    size_t i;
    json_t *t;
    printf("%-6s %-8s %-20s %-10s %s\n", "ID", "STATE", "CREATED", "PRIVACY", "LABEL");
    json_array_foreach(json_object_get(res, "tokens"), i, t) {
      time_t created = (time_t)json_integer_value(json_object_get(t, "created"));
      char when[32];
      strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", gmtime(&created));
      printf("%-6lld %-8s %-20s %-10s %s\n", (long long)json_integer_value(json_object_get(t, "id")),
             json_is_true(json_object_get(t, "revoked")) ? "revoked" : "active", when,
             json_string_value(json_object_get(t, "privacy")) ? json_string_value(json_object_get(t, "privacy")) : "unset",
             json_string_value(json_object_get(t, "label")));
    }
  } else {
    printf("revoked\n");
  }
  json_decref(res);
  return CLI_OK;
}
