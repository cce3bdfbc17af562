/* cli/mcp — `apiary mcp [serve]`: the node's MCP server on stdio, for MCP hosts that start
 * their servers as child processes (an editor, a desktop assistant). `apiary mcp tools|call`
 * (the client side) are in cli/mcp_client.c.
 *
 * Newline-delimited JSON-RPC on stdin and stdout (stdout carries only MCP messages; logs go
 * to stderr). The tools are the node's (generate, offers, peers, balance, receipts): they
 * reach the running node through its control socket in the home, so the node must be
 * running; initialize and tools/list work without it. Each request runs on its own thread,
 * so a tool that waits (a generation, or the client's answer to a server request) does not
 * hold up the others; a line over MCP_STDIO_MAX_LINE bytes is answered with a parse error
 * and skipped. End of input ends the session; running requests get a few seconds. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include "agent/mcp.h"
#include "agent/mcp_node.h"
#include "cli/cli.h"
#include "core/err.h"
#include "core/version.h"
#include "node/control.h"
#include "node/home.h"

#define MCP_STDIO_MAX_LINE (4u << 20)

typedef struct stdio_srv {
  mcp_server srv;
  mcp_session ses;
  mcp_node_ops ops;
  char home[HOME_PATH_MAX];
  pthread_mutex_t out_mu, run_mu;
  pthread_cond_t run_cv;
  int running;
} stdio_srv;

static void write_msg(stdio_srv *s, json_t *m) {
  char *text = json_dumps(m, JSON_COMPACT);
  json_decref(m);
  if (!text) return;
  pthread_mutex_lock(&s->out_mu);
  fputs(text, stdout);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&s->out_mu);
  free(text);
}

static void sink_send(void *ud, json_t *m) { write_msg(ud, m); }

static int ctl(void *ud, const char *method, json_t *params, int timeout_ms, json_t **result, char *err, size_t cap) {
  stdio_srv *s = ud;
  char *msg = NULL;
  int rc = ctl_call(s->home, method, params, timeout_ms, result, &msg);
  if (rc == -ECONNREFUSED || rc == -ENOENT)
    snprintf(err, cap, "no node is running on %s; start one with 'apiary node --home %s'", s->home, s->home);
  else if (rc)
    snprintf(err, cap, "%s", msg ? msg : err_str(rc));
  free(msg);
  return rc;
}

typedef struct job { stdio_srv *s; json_t *msg; } job;

static void *run_request(void *arg) {
  job *j = arg;
  stdio_srv *s = j->s;
  mcp_sink sink = {.send = sink_send, .gone = NULL, .ud = s};
  json_t *answer = mcp_handle(&s->srv, &s->ses, j->msg, &sink, NULL);
  if (answer) write_msg(s, answer);
  json_decref(j->msg);
  free(j);
  pthread_mutex_lock(&s->run_mu);
  s->running--;
  pthread_cond_broadcast(&s->run_cv);
  pthread_mutex_unlock(&s->run_mu);
  return NULL;
}

static void dispatch(stdio_srv *s, const char *line, size_t len) {
  json_error_t je;
  json_t *msg = json_loadb(line, len, 0, &je);
  if (!msg) {
    write_msg(s, mcp_error(NULL, MCP_PARSE_ERROR, "the line is not JSON"));
    return;
  }
  char why[200];
  int kind = mcp_kind(msg, why, sizeof why);
  if (kind != 1) { /* notifications, answers, and invalid messages are quick */
    json_t *answer = mcp_handle(&s->srv, &s->ses, msg, NULL, NULL);
    if (answer) write_msg(s, answer);
    json_decref(msg);
    return;
  }
  job *j = malloc(sizeof *j);
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  if (j) *j = (job){s, msg};
  pthread_mutex_lock(&s->run_mu);
  s->running++;
  pthread_mutex_unlock(&s->run_mu);
  if (!j || pthread_create(&t, &a, run_request, j)) {
    pthread_mutex_lock(&s->run_mu);
    s->running--;
    pthread_mutex_unlock(&s->run_mu);
    write_msg(s, mcp_error(json_object_get(msg, "id"), MCP_INTERNAL, "cannot start the request (out of threads)"));
    json_decref(msg);
    free(j);
  }
  pthread_attr_destroy(&a);
}

int cli_mcp_main(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "tools") || !strcmp(argv[1], "call"))) return cli_mcp_client_main(argc - 1, argv + 1);
  if (argc > 1 && !strcmp(argv[1], "serve")) { /* the explicit name of the default */
    argc--;
    argv++;
  }
  static const char usage[] =
      "usage: apiary mcp [serve] [--home DIR]\n"
      "       apiary mcp tools SERVER ...      list another MCP server's tools\n"
      "       apiary mcp call SERVER TOOL ...  call one of them ('apiary mcp tools --help')\n\n"
      "Serves the node's MCP tools on stdin/stdout (newline-delimited JSON-RPC, MCP revision\n"
      "2025-11-25), for MCP hosts that start servers as child processes, e.g. in a host's\n"
      "config: {\"command\": \"apiary\", \"args\": [\"mcp\", \"--home\", \"/path/to/home\"]}.\n"
      "Tools: generate (a local model, or bought from the network), offers, peers, balance,\n"
      "receipts; resources apiary://offers and apiary://receipts. The tools ask the running node\n"
      "(start it with 'apiary node'). The same server answers over HTTP at /mcp on the node's\n"
      "API (Streamable HTTP, with a token from 'apiary token create').\n\n"
      "'apiary mcp tools' and 'apiary mcp call' are the other side: the node's MCP client\n"
      "(what agents use) talking to a server given as an http(s):// URL or a stdio command.\n";
  cli_common c = {0};
  int pr = cli_parse_common("mcp", argc, argv, usage, &c);
  if (pr) return pr < 0 ? CLI_OK : pr;
  if (optind < argc) return cli_usage_error("mcp", "unexpected argument '%s'", argv[optind]);
  stdio_srv *s = calloc(1, sizeof *s);
  if (!s) return CLI_FAIL;
  if (cli_home(&c, s->home, sizeof s->home)) {
    free(s);
    return CLI_FAIL;
  }
  pthread_mutex_init(&s->out_mu, NULL);
  pthread_mutex_init(&s->run_mu, NULL);
  pthread_cond_init(&s->run_cv, NULL);
  s->ops = (mcp_node_ops){.call = ctl, .ud = s};
  mcp_server_init(&s->srv, "apiary", APIARY_VERSION,
                  "An apiary node: generate text with local or bought models, and see the node's offers, peers, "
                  "balance and receipts.");
  mcp_session_init(&s->ses);
  if (mcp_node_add(&s->srv, &s->ops)) {
    fprintf(stderr, "apiary mcp: cannot set up the tools\n");
    return CLI_FAIL;
  }
  char *line = malloc(MCP_STDIO_MAX_LINE + 1);
  size_t len = 0;
  int skipping = 0, ch;
  while (line && (ch = getchar()) != EOF) {
    if (ch != '\n') {
      if (skipping) continue;
      if (len == MCP_STDIO_MAX_LINE) {
        write_msg(s, mcp_error(NULL, MCP_PARSE_ERROR, "message over 4 MiB; skipped"));
        skipping = 1;
        len = 0;
        continue;
      }
      line[len++] = (char)ch;
      continue;
    }
    if (!skipping && len) {
      while (len && line[len - 1] == '\r') len--;
      if (len) dispatch(s, line, len);
    }
    skipping = 0;
    len = 0;
  }
  free(line);
  mcp_session_close(&s->ses); /* requests waiting on the client give up */
  struct timespec dl;
  clock_gettime(CLOCK_REALTIME, &dl);
  dl.tv_sec += 5;
  pthread_mutex_lock(&s->run_mu);
  while (s->running && pthread_cond_timedwait(&s->run_cv, &s->run_mu, &dl) == 0) {
  }
  int left = s->running;
  pthread_mutex_unlock(&s->run_mu);
  if (left) _exit(0); /* a generation still running on the node's side: leave it there */
  mcp_session_deinit(&s->ses);
  free(s);
  return CLI_OK;
}
