/* cli/main — the apiary binary: global flags, then dispatch to a subcommand.
 *
 *   apiary [--verbose|--quiet] COMMAND [ARGS...]
 *
 * Every subcommand lives in its own file (cli/<name>.c) and takes --help. Unknown commands
 * exit 2 with a hint. Main thread only. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

static const cli_cmd commands[] = {
    {"init", "create a node home: identity key, wallet key, config", cli_init_main},
    {"id", "show this node's id and wallet address", cli_id_main},
    {"config", "check or show the node's config file", cli_config_main},
    {"node", "run the node in the foreground (peers, DHT, control socket)", cli_node_main},
    {"status", "show the running node", cli_status_main},
    {"stop", "stop the running node", cli_stop_main},
    {"peers", "list the peers the running node knows", cli_peers_main},
    {"ping", "measure the round trip to another node", cli_ping_main},
    {"ask", "buy a generation from the network (best provider, per-token payment, failover)", cli_ask_main},
    {"offers", "what the network sells: node, model, price", cli_offers_main},
    {"receipts", "receipts of generations bought and sold", cli_receipts_main},
    {"sell", "choose what this node sells and at what price (it sells nothing until told)", cli_sell_main},
    {"unsell", "stop selling a model (or --all)", cli_unsell_main},
    {"dht", "get or put items on the Mainline DHT", cli_dht_main},
    {"nat", "probe the home router for port forwarding (UPnP-IGD, NAT-PMP)", cli_nat_main},
    {"token", "create, list or revoke API bearer tokens", cli_token_main},
    {"redact", "replace personal data in stdin with placeholders, or print the spans", cli_redact_main},
    {"mcp", "serve the node's MCP tools on stdio; list or call another MCP server's tools", cli_mcp_main},
    {"agent", "add, list, show or remove agents (instructions, model, tools, limits)", cli_agent_main},
    {"negotiate", "negotiate deals with other nodes (intents, sessions, signed deals); simulate or generate scenarios", cli_negotiate_main},
    {"task", "give an agent a task, follow it, approve its calls, cancel it", cli_task_main},
    {"vault", "keep secrets encrypted; grant, revoke, audit and share their use", cli_vault_main},
    {"wallet", "show the wallet address and balance, send coin, import a key", cli_wallet_main},
    {"chain", "deploy the apiary contracts and show the configured chain", cli_chain_main},
    {"channel", "open, list, top up, extend, refund and claim payment channels", cli_channel_main},
    {"pay", "pay another node through a channel (a signed voucher)", cli_pay_main},
    {"registry", "list GGUF models (by sha256) and register this node in the Registry contract", cli_registry_main},
    {"gov", "propose, vote on and execute Governance proposals (one node, one vote)", cli_gov_main},
    {"model", "pull, list, inspect, tokenize, quantize and synthesize GGUF models", cli_model_main},
    {"run", "generate text with a local GGUF model", cli_run_main},
    {"embed", "print embeddings of texts under a local GGUF model", cli_embed_main},
    {"bench", "measure prefill and decode speed of a model", cli_bench_main},
    {"chat", "chat with a local model (template applied, streaming)", cli_chat_main},
    {"template", "render a chat template (a model's own Jinja) over a conversation", cli_template_main},
    {"schema", "check a JSON instance against a JSON Schema through its GBNF grammar", cli_schema_main},
    {"grammar", "check a text against a GBNF grammar", cli_grammar_main},
    {"version", "print the version", cli_version_main},
};
static const size_t n_commands = sizeof commands / sizeof *commands;

static void usage(FILE *f) {
  fprintf(f,
          "apiary — a node of an open, decentralized AI network\n\n"
          "usage: apiary [--verbose|--quiet] COMMAND [ARGS...]\n\ncommands:\n");
  for (size_t i = 0; i < n_commands; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nRun 'apiary COMMAND --help' for a command's options.\n"
             "Global: --verbose (debug logs), --quiet (errors only), --help, --version.\n");
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) log_set_level(LOG_DEBUG);
    else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) log_set_level(LOG_ERROR);
    else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return CLI_OK; }
    else if (!strcmp(a, "--version")) return cli_version_main(1, (char *[]){"version", NULL});
    else {
      fprintf(stderr, "apiary: unknown option '%s'; try 'apiary --help'\n", a);
      return CLI_USAGE;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return CLI_USAGE;
  }
  const char *name = argv[i];
  if (!strcmp(name, "help")) {
    if (i + 1 < argc) {
      for (size_t k = 0; k < n_commands; k++)
        if (!strcmp(commands[k].name, argv[i + 1]))
          return commands[k].main(2, (char *[]){argv[i + 1], "--help", NULL});
    }
    usage(stdout);
    return CLI_OK;
  }
  for (size_t k = 0; k < n_commands; k++) {
    if (strcmp(commands[k].name, name)) continue;
    /* getopt prefixes its messages with argv[0]: make that "apiary CMD". */
    static char prog[64];
    snprintf(prog, sizeof prog, "apiary %s", name);
    argv[i] = prog;
    return commands[k].main(argc - i, argv + i);
  }
  fprintf(stderr, "apiary: unknown command '%s'; try 'apiary --help' for the list\n", name);
  return CLI_USAGE;
}
