/* cli/cli — shared pieces of the subcommands: the command table, option parsing helpers,
 * exit codes and output conventions.
 *
 * Exit codes: 0 success, 1 the operation failed (message says what to do next), 2 usage
 * error (unknown command or flag, bad argument). Data goes to stdout (JSON with --json),
 * diagnostics to stderr through core/log. Main thread only. */
#ifndef APIARY_CLI_H
#define APIARY_CLI_H

#include <getopt.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_cmd {
  const char *name;
  const char *summary;                 /* one line for `apiary --help` */
  int (*main)(int argc, char **argv);  /* argv[0] is the command name */
} cli_cmd;

/* Common options every subcommand accepts (parsed by cli_common_opt). */
typedef struct cli_common {
  const char *home; /* --home DIR, else $APIARY_HOME, else ~/.apiary */
  int json;         /* --json */
} cli_common;

/* Long options shared by all subcommands; append to a command's own table with
 * CLI_COMMON_LONGOPTS. Values >= 0x1000 are reserved for them. */
enum { CLI_OPT_HOME = 0x1000, CLI_OPT_JSON, CLI_OPT_HELP, CLI_OPT_VERBOSE, CLI_OPT_QUIET };
#define CLI_COMMON_LONGOPTS                                                                 \
  {"home", required_argument, 0, CLI_OPT_HOME}, {"json", no_argument, 0, CLI_OPT_JSON},    \
      {"help", no_argument, 0, 'h'}, {"verbose", no_argument, 0, 'v'},                     \
      {"quiet", no_argument, 0, 'q'}

/* Handles a common option. Returns 1 if handled, 0 if not one of them, and for -h prints
 * usage and returns -1 (the command should exit 0). */
int cli_common_opt(int opt, const char *arg, cli_common *c, const char *usage);
/* Prints "apiary CMD: <msg>" and a hint to use --help; returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports getopt's unknown/missing-argument result for cmd; returns CLI_USAGE. */
int cli_bad_opt(const char *cmd, char **argv);
/* Resolves the node home into out (cap bytes): flag, $APIARY_HOME, ~/.apiary. */
int cli_home(const cli_common *c, char *out, size_t cap);
/* Parses argv for a command that takes only the common options. Returns 0 with optind at
 * the first positional argument, -1 after printing --help (exit 0), or CLI_USAGE. */
int cli_parse_common(const char *cmd, int argc, char **argv, const char *usage, cli_common *c);
/* Fills the node home's paths; on failure logs what to do and returns CLI_FAIL. */
struct home_paths;
int cli_home_paths(const cli_common *c, struct home_paths *p);

/* Sets section.key = value (a literal in config syntax) in the config file at path,
 * keeping everything else (comments, order); adds the key (and its section) when missing.
 * Written to path.tmp (0600) and renamed over it. 0 or -errno. */
int cli_config_set(const char *path, const char *section, const char *key, const char *value);

/* Prints j as one compact JSON line on stdout and releases it (takes j). Returns CLI_OK,
 * or CLI_FAIL when j is NULL (allocation failed). */
#include <jansson.h>
int cli_print_json(json_t *j);

/* Sampling options shared by run and chat (cli/sampling.c). Append CLI_SAMPLING_LONGOPTS
 * to a command's option table and pass each option to cli_sampling_opt first: it returns
 * 1 when it handled the option, 0 when the option is not one of them, CLI_USAGE (after
 * printing why) for a bad value. */
#include "llm/sample.h"
enum { CLI_OPT_TEMP = 0x1100, CLI_OPT_TOPK, CLI_OPT_TOPP, CLI_OPT_MINP, CLI_OPT_REPEAT };
#define CLI_SAMPLING_LONGOPTS                                                                     \
  {"seed", required_argument, 0, 's'}, {"temp", required_argument, 0, CLI_OPT_TEMP},              \
      {"top-k", required_argument, 0, CLI_OPT_TOPK}, {"top-p", required_argument, 0, CLI_OPT_TOPP}, \
      {"min-p", required_argument, 0, CLI_OPT_MINP}, {"repeat-penalty", required_argument, 0, CLI_OPT_REPEAT}
int cli_sampling_opt(const char *cmd, int opt, const char *arg, sample_params *sp, int *have_seed);
/* Strict number parsing in [lo, hi]: 0 or -1. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *s, double lo, double hi, float *out);
/* A random 32-bit seed (short enough to retype). */
uint64_t cli_random_seed(void);

/* Subcommands (one file each). */
int cli_init_main(int argc, char **argv);
/* `apiary negotiate intent|find|start|list|show` (argv[0] is the subcommand; cli/negnode). */
int cli_negotiate_node_main(int argc, char **argv);
int cli_id_main(int argc, char **argv);
int cli_version_main(int argc, char **argv);
int cli_config_main(int argc, char **argv);
int cli_node_main(int argc, char **argv);
int cli_status_main(int argc, char **argv);
int cli_stop_main(int argc, char **argv);
int cli_peers_main(int argc, char **argv);
int cli_ping_main(int argc, char **argv);
int cli_ask_main(int argc, char **argv);
int cli_mcp_main(int argc, char **argv);
int cli_mcp_client_main(int argc, char **argv); /* cli/mcp_client.c: mcp tools|call (argv[0] is the subcommand) */
int cli_agent_main(int argc, char **argv); /* cli/agent.c */
int cli_task_main(int argc, char **argv);  /* cli/agent.c */
int cli_negotiate_main(int argc, char **argv); /* cli/negotiate.c: negotiate sim|gen */
int cli_offers_main(int argc, char **argv);
int cli_receipts_main(int argc, char **argv);
int cli_sell_main(int argc, char **argv);   /* cli/sell.c */
int cli_unsell_main(int argc, char **argv); /* cli/sell.c */
int cli_dht_main(int argc, char **argv);
int cli_nat_main(int argc, char **argv);
int cli_model_pull_main(int argc, char **argv);
int cli_model_list_main(int argc, char **argv);
int cli_model_quantize_main(int argc, char **argv);
int cli_model_synth_main(int argc, char **argv);
int cli_model_convert_main(int argc, char **argv);
int cli_bench_main(int argc, char **argv);
int cli_token_main(int argc, char **argv);
int cli_redact_main(int argc, char **argv); /* cli/redact.c */
int cli_run_main(int argc, char **argv);
int cli_embed_main(int argc, char **argv);
int cli_chat_main(int argc, char **argv);
int cli_template_main(int argc, char **argv);
int cli_model_main(int argc, char **argv);
int cli_chain_main(int argc, char **argv);
int cli_wallet_main(int argc, char **argv);
int cli_channel_main(int argc, char **argv);
int cli_pay_main(int argc, char **argv);
int cli_registry_main(int argc, char **argv);
int cli_gov_main(int argc, char **argv);
int cli_schema_main(int argc, char **argv);  /* cli/schema.c: schema match */
int cli_grammar_main(int argc, char **argv); /* cli/schema.c: grammar check */

/* Passphrases (cli/passphrase.c): from file (private, first line) if given, else $env if
 * set, else a no-echo prompt on the terminal (confirm: asked twice); never argv. out is a
 * cli_passphrase_new buffer (CLI_PASS_CAP bytes, sodium_malloc; cli_passphrase_free wipes).
 * Returns CLI_OK or CLI_FAIL after logging why. */
#define CLI_PASS_CAP 1025
char *cli_passphrase_new(void);
void cli_passphrase_free(char *p);
int cli_passphrase(const char *env, const char *file, const char *prompt, int confirm, char *out, size_t *len_out);
int cli_vault_main(int argc, char **argv); /* cli/vault.c */
/* When the home's identity.key or wallet.key is encrypted at rest, reads the passphrase
 * ($APIARY_PASSPHRASE, pass_file, or a prompt), checks it and unlocks crypto/keyfile for
 * this process. CLI_OK (also when nothing is encrypted) or CLI_FAIL after saying why. */
#define KEYS_PASS_ENV "APIARY_PASSPHRASE"
struct home_paths;
int cli_unlock_keys(const struct home_paths *p, const char *pass_file);

/* Control-socket helpers (cli/status.c): call a method on the running node of c's home.
 * Returns CLI_OK with *result_out owned by the caller, or CLI_FAIL after logging why. */
int cli_ctl_call(const cli_common *c, const char *method, json_t *params /* taken */, json_t **result_out);
/* Parses only the common options, then calls method without params. Returns -1 after
 * printing --help, CLI_USAGE on bad usage, else as cli_ctl_call; *c_out gets the options. */
int cli_ctl_simple(const char *cmd, const char *method, int argc, char **argv, const char *usage,
                   json_t **result_out, cli_common *c_out);

/* Chain helpers (cli/chain.c) for the payment commands: the node's config, wallet and a
 * JSON-RPC client. need_escrow also requires a configured escrow on a chain that answers
 * with the configured id. Returns CLI_OK or CLI_FAIL after logging why. */
#include "chain/ethrpc.h"
#include "core/config.h"
#include "crypto/wallet.h"
#include "node/home.h"
typedef struct cli_chain {
  home_paths paths;
  config *cfg;             /* owned */
  wallet w;                /* the node wallet (secret) */
  ethrpc *rpc;             /* owned */
  char rpc_url[512];
  uint64_t chain_id;       /* configured */
  uint8_t escrow[20];
  int have_escrow;
} cli_chain;
int cli_chain_open(const cli_common *c, const char *rpc_override, int need_escrow, cli_chain *out);
void cli_chain_close(cli_chain *cc);
/* Logs why a chain operation failed (revert reason, unreachable chain, …); returns CLI_FAIL. */
int cli_chain_fail(cli_chain *cc, const char *what, int rc);
#endif
