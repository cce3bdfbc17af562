/* cli/config — `apiary config check|show|path`: validate and print the node's settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/home.h"

static const char usage[] =
    "usage: apiary config [--home DIR] [--json] check|show|path\n\n"
    "  check   parse config.toml; errors are printed as FILE:LINE: message (exit 1)\n"
    "  show    print every setting with its effective value (defaults filled in)\n"
    "  path    print the config file's path\n";

static json_t *value_json(const config *cfg, const config_key *k) {
  switch (k->type) {
  case CONFIG_STR: return json_string(config_str(cfg, k->section, k->name));
  case CONFIG_INT: return json_integer(config_int(cfg, k->section, k->name));
  case CONFIG_BOOL: return json_boolean(config_bool(cfg, k->section, k->name));
  case CONFIG_LIST: {
    const char *const *items;
    size_t n = config_list(cfg, k->section, k->name, &items);
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(items[i]));
    return a;
  }
  }
  return json_null();
}

int cli_config_main(int argc, char **argv) {
  cli_common c = {0};
  int pr = cli_parse_common("config", argc, argv, usage, &c);
  if (pr) return pr < 0 ? CLI_OK : pr;
  if (optind != argc - 1) return cli_usage_error("config", "expected one action: check, show or path");
  const char *action = argv[optind];
  if (strcmp(action, "check") && strcmp(action, "show") && strcmp(action, "path"))
    return cli_usage_error("config", "unknown action '%s' (expected check, show or path)", action);
  home_paths p;
  if (cli_home_paths(&c, &p)) return CLI_FAIL;
  if (!strcmp(action, "path")) {
    if (c.json) return cli_print_json(json_pack("{s:s}", "path", p.config));
    puts(p.config);
    return CLI_OK;
  }
  config *cfg;
  char err[1024] = "";
  int rc = home_load_config(&p, &cfg, err, sizeof err);
  if (rc) {
    log_error("%s", err[0] ? err : err_str(rc));
    log_error("fix the line above in %s (apiary config show lists every valid key)", p.config);
    return CLI_FAIL;
  }
  size_t n;
  const config_key *schema = home_config_schema(&n);
  if (!strcmp(action, "check")) {
    if (c.json) rc = cli_print_json(json_pack("{s:b, s:s}", "ok", 1, "path", p.config));
    else printf("%s: ok\n", p.config);
  } else if (c.json) {
    json_t *root = json_object();
    for (size_t i = 0; i < n; i++) {
      json_t *sec = json_object_get(root, schema[i].section);
      if (!sec) json_object_set_new(root, schema[i].section, sec = json_object());
      json_object_set_new(sec, schema[i].name, value_json(cfg, &schema[i]));
    }
    rc = cli_print_json(root);
  } else {
    for (size_t i = 0; i < n; i++) {
      json_t *v = value_json(cfg, &schema[i]);
      char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
      printf("%s.%s = %s\n", schema[i].section, schema[i].name, s ? s : "?");
      free(s);
      json_decref(v);
    }
  }
  config_free(cfg);
  return rc;
}
