/* cli/agent — `apiary agent add|list|show|rm` and `apiary task run|list|show|cancel|approve`:
 * the owner's agents and their tasks, through the running node's control socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "node/control.h"

static const char agent_usage[] =
    "usage: apiary agent add NAME --model MODEL [options] | add --file DEF.json [--replace]\n"
    "       apiary agent list | show NAME | rm NAME   [--home DIR] [--json]\n\n"
    "An agent is a definition you write: instructions, a model (local, bought from the\n"
    "network, or a sha256), the tools it may use, and limits. Its tasks run in a loop on\n"
    "the node (model call with tools, tool call, observation, ...) and survive restarts.\n\n"
    "  --model MODEL          the model it thinks with\n"
    "  --instructions TEXT    its system message\n"
    "  --tool T               a tool it may use (repeat): files_read, files_write, files_list,\n"
    "                         http_fetch, generate, offers, peers, balance, delegate, mcp:SERVER,\n"
    "                         SERVER__TOOL (MCP servers are configured with --file)\n"
    "  --approve T            calls of T wait for 'apiary task approve' (repeat)\n"
    "  --idempotent T         T may run again after a crash (repeat; reads always may)\n"
    "  --fetch-allow PREFIX   URL prefixes http_fetch may read (repeat)\n"
    "  --max-steps N          model calls per task (default 8)\n"
    "  --max-tokens N         tokens per model call (default 256)\n"
    "  --max-wei-task W       spending cap per task in wei (0: none)\n"
    "  --max-wei-day W        spending cap per day in wei (0: none)\n"
    "  --tool-choice C        the first model call: auto (default) or required\n"
    "  --temp T, --seed S     sampling\n"
    "  --file DEF.json        the whole definition as JSON (see docs/agents.md)\n"
    "  --replace              replace an agent of the same name\n";

static const char task_usage[] =
    "usage: apiary task run AGENT TEXT [--wait] | list [--agent NAME] | show ID | cancel ID |\n"
    "       approve ID [--deny] | delegate [NODE_ID|--any] AGENT|SKILL TEXT [--max-wei W] |\n"
    "       delegations [--home DIR] [--json]\n\n"
    "Tasks given to agents. 'run' queues one and prints its id; with --wait it follows the\n"
    "steps on stderr until the task ends (or waits for your approval) and prints the answer.\n"
    "'approve' lets a call that waits for you run (--deny refuses it; the agent is told).\n"
    "'delegate' gives the task to an agent another owner sells on node NODE_ID, or (no\n"
    "NODE_ID, or --any) to the cheapest node selling an agent of that name or skill (see\n"
    "'apiary offers'); it pays the price that node advertised (at most --max-wei, default 0;\n"
    "a node asking more gets nothing) and prints the answer. A picked node that stops\n"
    "answering is replaced by the next cheapest one selling the same. 'delegations' lists\n"
    "the delegations this node recorded (taken up by itself after a restart) and how they\n"
    "ended.\n";

enum { O_MODEL = 0x3000, O_INSTR, O_TOOL, O_APPROVE, O_IDEM, O_FETCH, O_STEPS, O_TOKENS, O_WTASK, O_WDAY, O_CHOICE,
       O_TEMP, O_SEED, O_FILE, O_REPLACE, O_WAIT, O_AGENT, O_DENY, O_ANY, O_MAXWEI };

static const struct option opts[] = {
    CLI_COMMON_LONGOPTS, {"model", required_argument, 0, O_MODEL}, {"instructions", required_argument, 0, O_INSTR},
    {"tool", required_argument, 0, O_TOOL}, {"approve", required_argument, 0, O_APPROVE},
    {"idempotent", required_argument, 0, O_IDEM}, {"fetch-allow", required_argument, 0, O_FETCH},
    {"max-steps", required_argument, 0, O_STEPS}, {"max-tokens", required_argument, 0, O_TOKENS},
    {"max-wei-task", required_argument, 0, O_WTASK}, {"max-wei-day", required_argument, 0, O_WDAY},
    {"tool-choice", required_argument, 0, O_CHOICE}, {"temp", required_argument, 0, O_TEMP},
    {"seed", required_argument, 0, O_SEED}, {"file", required_argument, 0, O_FILE},
    {"replace", no_argument, 0, O_REPLACE}, {"wait", no_argument, 0, O_WAIT}, {"agent", required_argument, 0, O_AGENT},
    {"deny", no_argument, 0, O_DENY}, {"any", no_argument, 0, O_ANY}, {"max-wei", required_argument, 0, O_MAXWEI}, {0}};

typedef struct args {
  cli_common c;
  json_t *def;        /* built from the flags */
  const char *file, *agent;
  int replace, wait, deny, any;
  const char *max_wei;
  const char *pos[4]; /* positional arguments */
  int n_pos;
} args;

static void add_list(json_t *def, const char *key, const char *v) {
  json_t *l = json_object_get(def, key);
  if (!l) json_object_set_new(def, key, l = json_array());
  json_array_append_new(l, json_string(v));
}

/* Parses options anywhere among the positional arguments. CLI_OK, -1 after --help, or CLI_USAGE. */
static int parse(const char *cmd, const char *usage, int argc, char **argv, args *a) {
  memset(a, 0, sizeof *a);
  a->def = json_object();
  optind = 1;
  for (;;) {
    int opt = getopt_long(argc, argv, "+hvq", opts, NULL);
    if (opt == -1) {
      if (optind >= argc) break;
      if (a->n_pos == 4) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
      a->pos[a->n_pos++] = argv[optind++];
      continue;
    }
    int r = cli_common_opt(opt, optarg, &a->c, usage);
    if (r < 0) return -1;
    if (r > 0) continue;
    long v;
    float f;
    switch (opt) {
    case O_MODEL: json_object_set_new(a->def, "model", json_string(optarg)); break;
    case O_INSTR: json_object_set_new(a->def, "instructions", json_string(optarg)); break;
    case O_TOOL: add_list(a->def, "tools", optarg); break;
    case O_APPROVE: add_list(a->def, "approve", optarg); break;
    case O_IDEM: add_list(a->def, "idempotent", optarg); break;
    case O_FETCH: add_list(a->def, "fetch_allow", optarg); break;
    case O_CHOICE: json_object_set_new(a->def, "tool_choice", json_string(optarg)); break;
    case O_FILE: a->file = optarg; break;
    case O_REPLACE: a->replace = 1; break;
    case O_WAIT: a->wait = 1; break;
    case O_AGENT: a->agent = optarg; break;
    case O_DENY: a->deny = 1; break;
    case O_ANY: a->any = 1; break;
    case O_MAXWEI:
      if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) > 20)
        return cli_usage_error(cmd, "bad --max-wei '%s' (wei, a whole number)", optarg);
      a->max_wei = optarg;
      break;
    case O_TEMP:
      if (cli_parse_float(optarg, 0, 2, &f)) return cli_usage_error(cmd, "bad --temp '%s' (0..2)", optarg);
      json_object_set_new(a->def, "temperature", json_real(f));
      break;
    case O_STEPS:
    case O_TOKENS:
    case O_SEED:
    case O_WTASK:
    case O_WDAY: {
      const char *key = opt == O_STEPS ? "max_steps" : opt == O_TOKENS ? "max_tokens" : opt == O_SEED ? "seed"
                        : opt == O_WTASK ? "max_wei_task" : "max_wei_day";
      if (cli_parse_long(optarg, 0, 0x7fffffffffffffffL, &v)) return cli_usage_error(cmd, "bad number '%s'", optarg);
      json_object_set_new(a->def, key, json_integer(v));
      break;
    }
    default: return cli_bad_opt(cmd, argv);
    }
  }
  return CLI_OK;
}

static int print_or_json(const args *a, json_t *res, void (*show)(json_t *)) {
  if (a->c.json) return cli_print_json(res);
  show(res);
  json_decref(res);
  return CLI_OK;
}

static void show_agents(json_t *r) {
  size_t i;
  json_t *x;
  json_t *l = json_object_get(r, "agents");
  if (!json_array_size(l)) printf("no agents yet; add one with 'apiary agent add NAME --model MODEL'\n");
  json_array_foreach(l, i, x) printf("%-24s %s\n", json_string_value(json_object_get(x, "name")),
                                     json_string_value(json_object_get(x, "model")));
}

static void show_any(json_t *r) {
  char *t = json_dumps(r, JSON_INDENT(2));
  printf("%s\n", t ? t : "");
  free(t);
}

int cli_agent_main(int argc, char **argv) {
  args a;
  int rc = parse("agent", agent_usage, argc, argv, &a);
  if (rc) {
    json_decref(a.def);
    return rc < 0 ? CLI_OK : rc;
  }
  const char *action = a.n_pos ? a.pos[0] : NULL;
  json_t *res = NULL, *params = NULL;
  if (!action) rc = cli_usage_error("agent", "expected add, list, show or rm");
  else if (!strcmp(action, "add")) {
    if (a.file) {
      json_error_t je;
      json_t *f = json_load_file(a.file, 0, &je);
      if (!f) rc = cli_usage_error("agent", "%s:%d: %s", a.file, je.line, je.text);
      else {
        json_object_update_missing(f, a.def);
        json_decref(a.def);
        a.def = f;
      }
    }
    if (!rc && a.n_pos > 1) json_object_set_new(a.def, "name", json_string(a.pos[1]));
    if (!rc) params = json_pack("{s:O, s:b}", "def", a.def, "replace", a.replace);
    if (!rc && !(rc = cli_ctl_call(&a.c, "agent.add", params, &res))) {
      if (a.c.json) rc = cli_print_json(res);
      else {
        printf("agent %s added (model %s)\n", json_string_value(json_object_get(json_object_get(res, "agent"), "name")),
               json_string_value(json_object_get(json_object_get(res, "agent"), "model")));
        json_decref(res);
      }
    }
  } else if (!strcmp(action, "list")) {
    if (!(rc = cli_ctl_call(&a.c, "agent.list", NULL, &res))) rc = print_or_json(&a, res, show_agents);
  } else if (!strcmp(action, "show") || !strcmp(action, "rm")) {
    if (a.n_pos != 2) rc = cli_usage_error("agent", "%s wants an agent NAME", action);
    else if (!(rc = cli_ctl_call(&a.c, !strcmp(action, "show") ? "agent.show" : "agent.rm",
                                 json_pack("{s:s}", "name", a.pos[1]), &res)))
      rc = print_or_json(&a, res, show_any);
  } else {
    rc = cli_usage_error("agent", "unknown action '%s' (expected add, list, show or rm)", action);
  }
  json_decref(a.def);
  return rc;
}

static int terminal(const char *s) { return !strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "canceled"); }

/* Follows task id until it ends or waits for approval; steps go to stderr as they come. */
static int follow(const args *a, long long id) {
  size_t shown = 0;
  for (;;) {
    json_t *res = NULL;
    int rc = cli_ctl_call(&a->c, "task.show", json_pack("{s:I}", "id", (json_int_t)id), &res);
    if (rc) return rc;
    json_t *t = json_object_get(res, "task"), *steps = json_object_get(t, "steps");
    for (; shown < json_array_size(steps); shown++) {
      json_t *s = json_array_get(steps, shown);
      const char *kind = json_string_value(json_object_get(s, "kind")), *state = json_string_value(json_object_get(s, "state"));
      if (!strcmp(state, "started")) break; /* shown when it ends */
      if (!strcmp(kind, "model"))
        fprintf(stderr, "step %lld: model, %lld tokens, %lld wei, %zu tool call(s)\n",
                (long long)json_integer_value(json_object_get(s, "n")), (long long)json_integer_value(json_object_get(s, "tokens")),
                (long long)json_integer_value(json_object_get(s, "wei")),
                json_array_size(json_object_get(json_object_get(s, "output"), "calls")));
      else
        fprintf(stderr, "step %lld: %s %s (%lld bytes)\n", (long long)json_integer_value(json_object_get(s, "n")),
                json_string_value(json_object_get(s, "tool")), state, (long long)json_integer_value(json_object_get(s, "bytes")));
    }
    const char *state = json_string_value(json_object_get(t, "state"));
    if (terminal(state) || !strcmp(state, "waiting")) {
      if (a->c.json) return cli_print_json(res);
      if (!strcmp(state, "done")) printf("%s\n", json_string_value(json_object_get(t, "result")));
      else if (!strcmp(state, "waiting"))
        fprintf(stderr, "task %lld waits for your approval: apiary task approve %lld (or --deny)\n", id, id);
      else fprintf(stderr, "task %lld %s: %s\n", id, state, json_string_value(json_object_get(t, "error")));
      int ok = !strcmp(state, "done") || !strcmp(state, "waiting");
      json_decref(res);
      return ok ? CLI_OK : CLI_FAIL;
    }
    json_decref(res);
    usleep(200000);
  }
}

static void show_calls(json_t *r) {
  size_t i;
  json_t *x;
  if (!json_array_size(json_object_get(r, "calls"))) printf("no delegations recorded\n");
  json_array_foreach(json_object_get(r, "calls"), i, x) {
    const char *res = json_string_value(json_object_get(x, "result"));
    printf("%-32s %-20.18s %-16s %-10s %.50s\n", json_string_value(json_object_get(x, "id")),
           json_string_value(json_object_get(x, "node_id")), json_string_value(json_object_get(x, "agent")),
           json_string_value(json_object_get(x, "state")), res ? res : "");
  }
}

static void show_tasks(json_t *r) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(r, "tasks"), i, x)
      printf("%-6lld %-16s %-9s %6lld tok %10lld wei  %.60s\n", (long long)json_integer_value(json_object_get(x, "id")),
             json_string_value(json_object_get(x, "agent")), json_string_value(json_object_get(x, "state")),
             (long long)json_integer_value(json_object_get(x, "tokens")), (long long)json_integer_value(json_object_get(x, "wei")),
             json_string_value(json_object_get(x, "input")));
}

/* `task delegate`: a2a.delegate waits until the other node's task ends, so the call gets
 * the delegation's own time limit rather than the usual 30 s. */
static int delegate(const args *a) {
  int any = a->any || a->n_pos == 3, want = any ? 3 : 4;
  if (a->n_pos != want)
    return cli_usage_error("task", "delegate wants NODE_ID AGENT TEXT, or AGENT|SKILL TEXT (any node selling it)");
  const char *agent = a->pos[want - 2], *text = a->pos[want - 1];
  json_t *p = json_pack("{s:s, s:s, s:s, s:i}", "agent", agent, "input", text, "max_wei", a->max_wei ? a->max_wei : "0",
                        "timeout_s", 600);
  if (!any) json_object_set_new(p, "node_id", json_string(a->pos[1]));
  char dir[HOME_PATH_MAX], *msg = NULL;
  if (cli_home(&a->c, dir, sizeof dir)) {
    json_decref(p);
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  json_t *res = NULL;
  int rc = ctl_call(dir, "a2a.delegate", p, 610000, &res, &msg);
  if (rc) {
    log_error("delegate: %s", msg ? msg : err_str(rc));
    free(msg);
    return CLI_FAIL;
  }
  if (a->c.json) return cli_print_json(res);
  const char *state = json_string_value(json_object_get(res, "state"));
  int ok = state && !strcmp(state, "completed");
  if (ok) printf("%s\n", json_string_value(json_object_get(res, "text")));
  else fprintf(stderr, "the task ended %s: %s\n", state ? state : "?", json_string_value(json_object_get(res, "error")) ? json_string_value(json_object_get(res, "error")) : "no reason given");
  fprintf(stderr, "node %s, task %s, %s wei\n", json_string_value(json_object_get(res, "node_id")),
          json_string_value(json_object_get(res, "id")), json_string_value(json_object_get(res, "wei")));
  json_t *tries = json_object_get(res, "attempts");
  size_t i;
  json_t *x;
  if (json_array_size(tries) > 1)
    json_array_foreach(tries, i, x)
        fprintf(stderr, "  attempt %zu: node %s, task %s, %s, %s wei\n", i + 1,
                json_string_value(json_object_get(x, "node_id")), json_string_value(json_object_get(x, "id")),
                json_string_value(json_object_get(x, "state")), json_string_value(json_object_get(x, "wei")));
  json_decref(res);
  return ok ? CLI_OK : CLI_FAIL;
}

int cli_task_main(int argc, char **argv) {
  args a;
  int rc = parse("task", task_usage, argc, argv, &a);
  json_decref(a.def);
  if (rc) return rc < 0 ? CLI_OK : rc;
  const char *action = a.n_pos ? a.pos[0] : NULL;
  json_t *res = NULL;
  long long id = 0;
  if (action && (!strcmp(action, "show") || !strcmp(action, "cancel") || !strcmp(action, "approve"))) {
    char *end = NULL;
    id = a.n_pos == 2 ? strtoll(a.pos[1], &end, 10) : 0;
    if (a.n_pos != 2 || *end || id <= 0) return cli_usage_error("task", "%s wants a task ID (see 'apiary task list')", action);
  }
  if (!action) return cli_usage_error("task", "expected run, list, show, cancel, approve, delegate or delegations");
  if (!strcmp(action, "delegate")) return delegate(&a);
  if (!strcmp(action, "delegations")) {
    if (a.n_pos != 1) return cli_usage_error("task", "delegations takes no argument");
    if (!(rc = cli_ctl_call(&a.c, "a2a.calls", NULL, &res))) rc = print_or_json(&a, res, show_calls);
    return rc;
  }
  if (!strcmp(action, "run")) {
    if (a.n_pos != 3) return cli_usage_error("task", "run wants an AGENT and the task TEXT");
    if ((rc = cli_ctl_call(&a.c, "task.run", json_pack("{s:s, s:s}", "agent", a.pos[1], "input", a.pos[2]), &res))) return rc;
    id = (long long)json_integer_value(json_object_get(res, "id"));
    if (!a.wait) {
      if (a.c.json) return cli_print_json(res);
      printf("task %lld queued; follow it with 'apiary task show %lld'\n", id, id);
      json_decref(res);
      return CLI_OK;
    }
    json_decref(res);
    return follow(&a, id);
  }
  if (!strcmp(action, "list")) {
    json_t *p = a.agent ? json_pack("{s:s}", "agent", a.agent) : NULL;
    if (!(rc = cli_ctl_call(&a.c, "task.list", p, &res))) rc = print_or_json(&a, res, show_tasks);
    return rc;
  }
  const char *method = !strcmp(action, "show") ? "task.show" : !strcmp(action, "cancel") ? "task.cancel"
                       : !strcmp(action, "approve") ? "task.approve" : NULL;
  if (!method) return cli_usage_error("task", "unknown action '%s' (expected run, list, show, cancel or approve)", action);
  json_t *p = json_pack("{s:I}", "id", (json_int_t)id);
  if (a.deny) json_object_set_new(p, "deny", json_true());
  if (!(rc = cli_ctl_call(&a.c, method, p, &res))) rc = print_or_json(&a, res, show_any);
  return rc;
}
