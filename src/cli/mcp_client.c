/* cli/mcp_client — `apiary mcp tools` and `apiary mcp call`: the owner's view of another MCP
 * server's tools through the node's MCP client (agent/mcp_client), the same code an agent
 * uses. The server is a Streamable HTTP URL (with --bearer TOKEN, or $APIARY_MCP_BEARER) or
 * a command started as a stdio child (--stdio "CMD ARG...", or everything after `--`, with
 * --env K=V added to its environment). Each run opens one session (initialize), does its
 * one thing, and closes it. Output: text for people, or with --json the tools array / the
 * CallToolResult as the server sent it. Exit 0, 1 when the connection, the protocol or the
 * tool failed (a result with isError true), 2 on bad usage. Main thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcp_client.h"
#include "cli/cli.h"
#include "core/log.h"

#define MAX_WORDS 64 /* words of a --stdio command; --env entries */

static const char usage_text[] =
    "usage: apiary mcp tools SERVER [options]\n"
    "       apiary mcp call SERVER TOOL [ARGS_JSON] [options]\n\n"
    "Lists the tools of another MCP server, or calls one, through apiary's MCP client (MCP\n"
    "revision 2025-11-25). SERVER is one of:\n"
    "  http(s)://HOST[:PORT]/PATH   a Streamable HTTP server\n"
    "  --stdio \"CMD ARG...\"         a server started as a child process (words split on\n"
    "                               spaces; quotes group them)\n"
    "  -- CMD ARG...                the same, the command given as separate arguments (last)\n\n"
    "ARGS_JSON is the tool's arguments as a JSON object (default {}).\n\n"
    "options:\n"
    "  --bearer TOKEN    HTTP: sent as Authorization: Bearer (default $APIARY_MCP_BEARER)\n"
    "  --env K=V         stdio: added to the child's environment (repeatable)\n"
    "  --timeout MS      per request (default 60000)\n"
    "  --json            print the tools array / the tool's CallToolResult as JSON\n"
    "  -v, -q            more or fewer log lines (the child's stderr is logged at info)\n\n"
    "The client answers the server's ping, and elicitation requests with the form's\n"
    "defaults (declined when a required field has none). A tool result with isError true\n"
    "exits 1.\n"
    "examples:\n"
    "  apiary mcp tools http://127.0.0.1:8080/mcp --bearer $TOKEN\n"
    "  apiary mcp call --stdio \"npx -y @modelcontextprotocol/server-everything\" echo '{\"message\":\"hi\"}'\n"
    "  apiary mcp call add '{\"a\":1,\"b\":2}' -- node ./server.js\n";

/* Splits s into words (in place) on spaces and tabs; '...' and "..." group. Returns the
 * count, or -1 for too many words or an unclosed quote. */
static int split_words(char *s, char **words, int max) {
  int n = 0;
  char *w = s;
  while (*s) {
    while (*s == ' ' || *s == '\t') s++;
    if (!*s) break;
    if (n == max) return -1;
    words[n++] = w;
    char q = 0;
    while (*s && (q || (*s != ' ' && *s != '\t'))) {
      if (!q && (*s == '"' || *s == '\'')) q = *s++;
      else if (q && *s == q) q = 0, s++;
      else *w++ = *s++;
    }
    if (q) return -1;
    if (*s) s++;
    *w++ = 0;
  }
  return n;
}

static void print_tools(const json_t *tools) {
  size_t i;
  json_t *t;
  if (!json_array_size(tools)) printf("(no tools)\n");
  json_array_foreach(tools, i, t) {
    const char *name = json_string_value(json_object_get(t, "name"));
    const char *desc = json_string_value(json_object_get(t, "description"));
    int dlen = 0;
    while (desc && desc[dlen] && desc[dlen] != '\n' && dlen < 120) dlen++;
    printf("%-28s %.*s\n", name, dlen, desc ? desc : "");
  }
}

/* The result's content as text, on f (no cap: the owner asked for it). */
static void print_content(FILE *f, const json_t *result) {
  char *text = mcp_client_result_text(result, (size_t)-1 / 2, NULL);
  if (text && *text) fprintf(f, "%s\n", text);
  free(text);
}

int cli_mcp_client_main(int argc, char **argv) {
  const char *sub = argv[0]; /* "tools" or "call" */
  char cmdname[16];
  snprintf(cmdname, sizeof cmdname, "mcp %s", sub);
  enum { OPT_BEARER = 1, OPT_STDIO, OPT_ENV, OPT_TIMEOUT };
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"bearer", required_argument, 0, OPT_BEARER},
                                       {"stdio", required_argument, 0, OPT_STDIO},
                                       {"env", required_argument, 0, OPT_ENV},
                                       {"timeout", required_argument, 0, OPT_TIMEOUT},
                                       {0}};
  int dashdash = argc;
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--")) {
      dashdash = i;
      break;
    }
  cli_common c = {0};
  const char *bearer = getenv("APIARY_MCP_BEARER");
  char *stdio_line = NULL;
  const char *env[MAX_WORDS + 1] = {0};
  int n_env = 0;
  long timeout = 0;
  int opt;
  optind = 1;
  while ((opt = getopt_long(dashdash, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage_text);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    switch (opt) {
    case OPT_BEARER: bearer = optarg; break;
    case OPT_STDIO: stdio_line = optarg; break;
    case OPT_ENV:
      if (n_env == MAX_WORDS || !strchr(optarg, '=') || optarg[0] == '=')
        return cli_usage_error(cmdname, "bad --env '%s' (K=V, at most %d)", optarg, MAX_WORDS);
      env[n_env++] = optarg;
      break;
    case OPT_TIMEOUT:
      if (cli_parse_long(optarg, 1, 3600000, &timeout))
        return cli_usage_error(cmdname, "bad --timeout '%s' (1..3600000 ms)", optarg);
      break;
    default: return cli_bad_opt(cmdname, argv);
    }
  }
  char **pos = argv + optind;
  int npos = dashdash - optind;
  mcp_client_cfg cfg = {.timeout_ms = (int)timeout, .env = env};
  char *words[MAX_WORDS + 1] = {0};
  if (stdio_line && dashdash < argc) return cli_usage_error(cmdname, "give the command either with --stdio or after --, not both");
  char stdio_line_copy[128] = "";
  if (stdio_line) {
    snprintf(stdio_line_copy, sizeof stdio_line_copy, "%s", stdio_line);
    int n = split_words(stdio_line, words, MAX_WORDS);
    if (n <= 0) return cli_usage_error(cmdname, "bad --stdio command (empty, an unclosed quote, or over %d words)", MAX_WORDS);
    cfg.command = words[0];
    cfg.args = (const char *const *)words + 1;
  } else if (dashdash < argc) {
    if (dashdash + 1 == argc) return cli_usage_error(cmdname, "no command after --");
    if (argc - dashdash - 1 > MAX_WORDS) return cli_usage_error(cmdname, "over %d words in the command", MAX_WORDS);
    for (int i = dashdash + 1; i < argc; i++) words[i - dashdash - 1] = argv[i];
    cfg.command = words[0];
    cfg.args = (const char *const *)words + 1;
  } else {
    if (npos < 1) return cli_usage_error(cmdname, "expected a SERVER: an http(s):// URL, --stdio \"CMD ARG...\" or -- CMD ARG...");
    cfg.url = pos[0];
    pos++;
    npos--;
    cfg.bearer = bearer && *bearer ? bearer : NULL;
  }
  if (cfg.command && n_env == 0) cfg.env = NULL;
  char label[128];
  if (stdio_line) snprintf(label, sizeof label, "%s", stdio_line_copy);
  else snprintf(label, sizeof label, "%s%s%s", cfg.command ? cfg.command : cfg.url, cfg.args && cfg.args[0] ? " " : "",
                cfg.args && cfg.args[0] ? cfg.args[0] : "");
  cfg.name = label;
  int is_call = !strcmp(sub, "call");
  if (!is_call && npos != 0) return cli_usage_error(cmdname, "unexpected argument '%s'", pos[0]);
  if (is_call && (npos < 1 || npos > 2)) return cli_usage_error(cmdname, "expected TOOL and optionally ARGS_JSON");
  json_t *args = NULL;
  if (is_call && npos == 2) {
    json_error_t je;
    args = json_loads(pos[1], 0, &je);
    if (!args) return cli_usage_error(cmdname, "ARGS_JSON is not JSON (%s)", je.text);
    if (!json_is_object(args)) {
      json_decref(args);
      return cli_usage_error(cmdname, "ARGS_JSON must be a JSON object, like '{\"a\":1}'");
    }
  }
  char err[1024];
  mcp_client *mc = NULL;
  if (mcp_client_open(&cfg, &mc, err, sizeof err)) {
    log_error("%s", err);
    json_decref(args);
    return CLI_FAIL;
  }
  int rc = CLI_OK;
  json_t *res = NULL;
  if (!is_call) {
    if (mcp_client_list_tools(mc, &res, err, sizeof err)) {
      log_error("%s", err);
      rc = CLI_FAIL;
    } else if (c.json) {
      rc = cli_print_json(json_incref(res));
    } else {
      print_tools(res);
    }
  } else {
    if (mcp_client_call_tool(mc, pos[0], args, 0, &res, err, sizeof err)) {
      log_error("%s", err);
      rc = CLI_FAIL;
    } else {
      int failed = json_is_true(json_object_get(res, "isError"));
      if (c.json) rc = cli_print_json(json_incref(res));
      else if (failed) fprintf(stderr, "apiary mcp call: the tool '%s' failed:\n", pos[0]);
      if (!c.json) print_content(failed ? stderr : stdout, res);
      if (failed) rc = CLI_FAIL;
    }
  }
  json_decref(res);
  json_decref(args);
  mcp_client_close(mc);
  return rc;
}
