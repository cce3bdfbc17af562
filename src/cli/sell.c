/* cli/sell — `apiary sell` and `apiary unsell`: what this node sells, and at what price.
 *
 * A new node sells nothing. The owner's choice lives in the node's config.toml, the one
 * place a node's settings are kept: [market] serve lists the models sold (store names or
 * GGUF paths; "*" = every model in the store) and [market] price_prompt / price_gen their
 * price in wei per 1,000 tokens (one price for every model sold). These commands edit
 * those keys in place (comments and everything else kept); a running node applies them
 * when it restarts. Main thread only. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "llm/mstore.h"
#include "node/home.h"

#define MAX_SERVE 256

/* The list as a config literal: ["a", "b"] with quotes and backslashes escaped. */
static void list_literal(const char *const *items, size_t n, buf *out) {
  buf_append(out, "[", 1);
  for (size_t i = 0; i < n; i++) {
    buf_append(out, i ? ", \"" : "\"", i ? 3 : 1);
    for (const char *p = items[i]; *p; p++) {
      if (*p == '"' || *p == '\\') buf_append(out, "\\", 1);
      buf_append(out, p, 1);
    }
    buf_append(out, "\"", 1);
  }
  buf_append(out, "]", 2); /* with the NUL */
}

static int parse_price(const char *cmd, const char *s, char *out, size_t cap) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (!*s || *end || errno || s[0] == '-' || v > (unsigned long long)INT64_MAX)
    return cli_usage_error(cmd, "a price is a whole number of wei per 1,000 tokens, not '%s'", s);
  snprintf(out, cap, "%llu", v);
  return 0;
}

/* Prints what is sold now (from the config). */
static int show(const cli_common *c, const config *cfg) {
  const char *const *items;
  size_t n = config_list(cfg, "market", "serve", &items);
  long long pp = (long long)config_int(cfg, "market", "price_prompt"), pg = (long long)config_int(cfg, "market", "price_gen");
  if (c->json) {
    json_t *l = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(l, json_string(items[i]));
    char ps[32], gs[32];
    snprintf(ps, sizeof ps, "%lld", pp);
    snprintf(gs, sizeof gs, "%lld", pg);
    return cli_print_json(json_pack("{s:o, s:s, s:s}", "serve", l, "price_prompt", ps, "price_gen", gs));
  }
  if (!n) {
    printf("this node sells nothing ('apiary sell MODEL --price-gen WEI' to sell a model)\n");
    return CLI_OK;
  }
  for (size_t i = 0; i < n; i++)
    printf("%s\n", strcmp(items[i], "*") ? items[i] : "* (every model in the store)");
  printf("price: %lld wei per 1,000 prompt tokens, %lld per 1,000 generated tokens%s\n", pp, pg,
         pp || pg ? "" : " (free)");
  return CLI_OK;
}

static int run(int argc, char **argv, int sell) {
  const char *cmd = sell ? "sell" : "unsell";
  static const char usage_sell[] =
      "usage: apiary sell [--home DIR] MODEL... [--price-gen WEI] [--price-prompt WEI]\n"
      "       apiary sell [--home DIR] --all [--price-gen WEI] [--price-prompt WEI]\n"
      "       apiary sell [--home DIR] [--json] --list\n\n"
      "A new node sells nothing. 'sell MODEL' adds a model of the store (a name, file name,\n"
      "sha256 or GGUF path) to [market] serve in config.toml; --all sells every model in the\n"
      "store (serve = [\"*\"]). --price-gen / --price-prompt set [market] price_gen /\n"
      "price_prompt, in wei per 1,000 generated / prompt tokens, one price for every model sold\n"
      "(0 = free; never below [policy] price_floor_*). --list shows what is sold. A running\n"
      "node applies the change when it restarts.\n";
  static const char usage_unsell[] =
      "usage: apiary unsell [--home DIR] MODEL...\n"
      "       apiary unsell [--home DIR] --all\n\n"
      "Removes models from [market] serve in config.toml (--all: sell nothing). A running\n"
      "node applies the change when it restarts.\n";
  enum { OPT_ALL = 0x3200, OPT_LIST, OPT_PG, OPT_PP };
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"all", no_argument, 0, OPT_ALL},
                                       {"list", no_argument, 0, OPT_LIST},
                                       {"price-gen", required_argument, 0, OPT_PG},
                                       {"price-prompt", required_argument, 0, OPT_PP},
                                       {0}};
  cli_common c = {0};
  int all = 0, list = 0, opt;
  char pg[32] = "", pp[32] = "";
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, sell ? usage_sell : usage_unsell);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == OPT_ALL) all = 1;
    else if (opt == OPT_LIST && sell) list = 1;
    else if (opt == OPT_PG && sell) { if (parse_price(cmd, optarg, pg, sizeof pg)) return CLI_USAGE; }
    else if (opt == OPT_PP && sell) { if (parse_price(cmd, optarg, pp, sizeof pp)) return CLI_USAGE; }
    else return cli_bad_opt(cmd, argv);
  }
  int n_args = argc - optind;
  if (list && (all || n_args || pg[0] || pp[0])) return cli_usage_error(cmd, "--list takes nothing else");
  if (all && n_args) return cli_usage_error(cmd, "--all or models, not both");
  if (!list && !all && !n_args && !(sell && (pg[0] || pp[0])))
    return cli_usage_error(cmd, "name a model (or --all%s)", sell ? ", or --list" : "");
  home_paths hp;
  if (cli_home_paths(&c, &hp)) return CLI_FAIL;
  config *cfg = NULL;
  char err[600];
  if (home_load_config(&hp, &cfg, err, sizeof err)) {
    log_error("%s", err);
    return CLI_FAIL;
  }
  if (list) {
    int rc = show(&c, cfg);
    config_free(cfg);
    return rc;
  }
  const char *const *cur;
  size_t n_cur = config_list(cfg, "market", "serve", &cur);
  static const char *items[MAX_SERVE];
  size_t n = 0;
  int rc = CLI_OK;
  if (sell && all) {
    items[n++] = "*";
  } else if (!sell && all) {
    /* nothing */
  } else {
    for (size_t i = 0; i < n_cur && n < MAX_SERVE; i++) {
      int drop = 0;
      for (int k = optind; k < argc && !sell; k++) drop |= !strcmp(cur[i], argv[k]);
      if (!drop) items[n++] = cur[i];
    }
    for (int k = optind; k < argc && sell; k++) {
      mstore_model m;
      char e[512];
      if (strcmp(argv[k], "*") && mstore_resolve(hp.models, argv[k], &m, e, sizeof e)) {
        log_error("%s: %s (see 'apiary model list')", argv[k], e);
        rc = CLI_FAIL;
        goto done;
      }
      int have = 0;
      for (size_t i = 0; i < n; i++) have |= !strcmp(items[i], argv[k]);
      if (!have && n < MAX_SERVE) items[n++] = argv[k];
    }
    for (int k = optind; k < argc && !sell; k++) {
      int had = 0;
      for (size_t i = 0; i < n_cur; i++) had |= !strcmp(cur[i], argv[k]);
      if (!had) log_warn("%s was not sold ([market] serve does not list it)", argv[k]);
    }
  }
  buf lit;
  buf_init(&lit);
  list_literal(items, n, &lit);
  int w = cli_config_set(hp.config, "market", "serve", (const char *)lit.ptr);
  buf_deinit(&lit);
  if (!w && pg[0]) w = cli_config_set(hp.config, "market", "price_gen", pg);
  if (!w && pp[0]) w = cli_config_set(hp.config, "market", "price_prompt", pp);
  if (w) {
    log_error("cannot write %s: %s", hp.config, strerror(-w));
    rc = CLI_FAIL;
    goto done;
  }
  config_free(cfg);
  cfg = NULL;
  if (home_load_config(&hp, &cfg, err, sizeof err)) { /* what we wrote must load */
    log_error("%s", err);
    rc = CLI_FAIL;
    goto done;
  }
  rc = show(&c, cfg);
  if (!c.json) printf("(a running node applies this when it restarts: apiary stop, then apiary node)\n");
done:
  config_free(cfg);
  return rc;
}

int cli_sell_main(int argc, char **argv) { return run(argc, argv, 1); }
int cli_unsell_main(int argc, char **argv) { return run(argc, argv, 0); }
