/* cli/negotiate — `apiary negotiate sim|gen` (intent|find|start|list|show: cli/negnode): run both sides of a negotiation scenario
 * in-process (agent/neg_sim) and compare the outcome with the ground truth by enumeration;
 * write generated scenarios. No node needed. Main thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/neg_gen.h"
#include "agent/neg_genius.h"
#include "agent/neg_sim.h"
#include "agent/neg_truth.h"
#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"

static const char usage[] =
    "usage: apiary negotiate sim SCENARIO.json [--strategy A,B] [--seed N] [--trace] [--json]\n"
    "       apiary negotiate sim --genius DOMAIN.xml A.xml B.xml [--deadline N] [...]\n"
    "       apiary negotiate gen --seed N [--no-zopa] [--out F.json]\n"
    "       apiary negotiate intent|find|start|list|show ...  (with a running node: see\n"
    "       'apiary negotiate intent --help')\n\n"
    "sim runs both sides of a scenario in this process (messages through the wire codec),\n"
    "then prints the outcome (agreement, terms, each side's utility, rounds) beside the\n"
    "ground truth computed by enumeration (zone of agreement, Nash point, distance to the\n"
    "Pareto frontier). gen writes a seeded generated scenario. Format: docs/negotiation.md.\n\n"
    "  --strategy A,B   side a's and side b's: boulware, linear, conceder, pareto (default pareto,pareto)\n"
    "  --seed N         tie-breaking seed (sim) or scenario number (gen)\n"
    "  --genius D A B   a Genius/ANAC domain file and two utility profiles instead of JSON\n"
    "  --deadline N     rounds for Genius sides (default 60)\n"
    "  --trace          print every message\n"
    "  --no-zopa        gen: a scenario with no zone of agreement\n"
    "  --out F          gen: write to F instead of stdout\n";

enum { OPT_STRATEGY = 1, OPT_SEED, OPT_GENIUS, OPT_DEADLINE, OPT_TRACE, OPT_NOZOPA, OPT_OUT };

static void print_bid(FILE *f, const neg_domain *d, const neg_bid *b) {
  for (int i = 0; i < d->n_issues; i++) fprintf(f, "%s%s=%s", i ? ", " : "", d->issues[i].name, d->issues[i].values[b->v[i]]);
}

static json_t *bid_json(const neg_domain *d, const neg_bid *b) {
  json_t *o = json_object();
  for (int i = 0; i < d->n_issues; i++) json_object_set_new(o, d->issues[i].name, json_string(d->issues[i].values[b->v[i]]));
  return o;
}

typedef struct trace {
  const neg_scenario *s;
} trace;

static void on_sent(void *ud, int side, const neg_msg *m, uint64_t now) {
  trace *t = ud;
  printf("  %3d %-3s %-8s", m->round, t->s->side_name[side], neg_msg_type_name(m->type));
  if (m->has_bid) {
    printf(" ");
    print_bid(stdout, &t->s->dom, &m->bid);
    printf("  (u %.3f / %.3f)", neg_utility(&t->s->dom, &t->s->side[0].prefs, &m->bid),
           neg_utility(&t->s->dom, &t->s->side[1].prefs, &m->bid));
  }
  printf("\n");
}

static int sim(neg_scenario *s, neg_strategy_kind ka, neg_strategy_kind kb, uint64_t seed, int do_trace, int json) {
  trace tr = {s};
  neg_sim_cfg c = {.strategy = {ka, kb}, .seed = seed, .wire = 1, .sent_cb = do_trace && !json ? on_sent : NULL, .sent_ud = &tr};
  neg_sim_result r;
  neg_truth t;
  int rc = neg_truth_compute(&s->dom, &s->side[0].prefs, &s->side[1].prefs, &t);
  if (rc) {
    log_error("negotiate: ground truth: %s (outcome space over %d bids)", err_str(rc), NEG_MAX_BIDS);
    return CLI_FAIL;
  }
  rc = neg_sim_run(s, &c, &r);
  if (rc == ERR_RANGE) {
    memset(&r, 0, sizeof r);
    snprintf(r.reason, sizeof r.reason, "a side has no bid its mandate allows");
  } else if (rc) {
    neg_truth_deinit(&t);
    log_error("negotiate: simulation failed: %s", err_str(rc));
    return CLI_FAIL;
  }
  double ra = s->side[0].prefs.reservation, rb = s->side[1].prefs.reservation;
  double np = r.agreed ? neg_nash_product(r.u[0], ra, r.u[1], rb) : 0;
  double ratio = r.agreed ? (t.nash_product > 0 ? np / t.nash_product : 1) : 0;
  double dist = r.agreed ? neg_truth_pareto_distance(&t, r.u[0], r.u[1]) : 0;
  int at_nash = r.agreed && t.zopa && !memcmp(&r.bid, &t.nash, sizeof r.bid);
  if (json) {
    json_t *o = json_pack("{s:s,s:[s,s],s:b,s:i,s:[f,f],s:[f,f],s:[i,i],s:{s:b,s:f,s:f,s:f,s:I}}", "scenario", s->dom.name,
                          "strategies", neg_strategy_name(ka), neg_strategy_name(kb), "agreed", r.agreed, "rounds", r.rounds,
                          "utility", r.u[0], r.u[1], "reservation", ra, rb, "refusals", r.refusals[0], r.refusals[1], "truth",
                          "zopa", t.zopa, "nash_ua", t.nash_ua, "nash_ub", t.nash_ub, "nash_product", t.nash_product, "bids",
                          (json_int_t)t.n_bids);
    if (r.agreed) {
      json_object_set_new(o, "terms", bid_json(&s->dom, &r.bid));
      json_object_set_new(o, "nash_ratio", json_real(ratio));
      json_object_set_new(o, "pareto_distance", json_real(dist));
      json_object_set_new(o, "at_nash", json_boolean(at_nash));
    } else
      json_object_set_new(o, "reason", json_string(r.reason));
    if (t.zopa) json_object_set_new(json_object_get(o, "truth"), "nash", bid_json(&s->dom, &t.nash));
    neg_truth_deinit(&t);
    return cli_print_json(o);
  }
  printf("scenario %s: %d issues, %zu bids; %s=%s, %s=%s\n", s->dom.name[0] ? s->dom.name : "-", s->dom.n_issues, t.n_bids,
         s->side_name[0], neg_strategy_name(ka), s->side_name[1], neg_strategy_name(kb));
  if (r.agreed) {
    printf("agreement after %d rounds: ", r.rounds);
    print_bid(stdout, &s->dom, &r.bid);
    printf("\nutility: %s %.4f (reservation %.4f), %s %.4f (reservation %.4f)\n", s->side_name[0], r.u[0], ra, s->side_name[1],
           r.u[1], rb);
  } else
    printf("no agreement after %d rounds (%s)\n", r.rounds, r.reason);
  printf("truth: zone of agreement %s", t.zopa ? "yes" : "no");
  if (t.zopa) {
    printf("; Nash point ");
    print_bid(stdout, &s->dom, &t.nash);
    printf(" (u %.4f, %.4f)", t.nash_ua, t.nash_ub);
  }
  printf("\n");
  if (r.agreed)
    printf("Nash product ratio %.4f%s; distance to the Pareto frontier %.4f\n", ratio, at_nash ? " (the Nash point)" : "", dist);
  neg_truth_deinit(&t);
  return CLI_OK;
}

static int parse_strategies(const char *arg, neg_strategy_kind k[2]) {
  char a[32], b[32];
  const char *comma = strchr(arg, ',');
  if (!comma || (size_t)(comma - arg) >= sizeof a || strlen(comma + 1) >= sizeof b) return -1;
  snprintf(a, sizeof a, "%.*s", (int)(comma - arg), arg);
  snprintf(b, sizeof b, "%s", comma + 1);
  return neg_strategy_parse(a, &k[0]) || neg_strategy_parse(b, &k[1]) ? -1 : 0;
}

int cli_negotiate_main(int argc, char **argv) {
  /* The first word that is not an option (or an option's value) picks the action, so
   * "negotiate --home H list" works like "negotiate list --home H": the node actions get
   * it moved to the front. */
  static const char *const node_cmds[] = {"intent", "find", "start", "list", "show"};
  static const char *const with_value[] = {"--home", "--strategy", "--seed", "--genius", "--deadline", "--out"};
  int first = 0;
  for (int i = 1; i < argc && !first; i++) {
    if (argv[i][0] != '-') first = i;
    for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
      if (!strcmp(argv[i], with_value[k])) i++;
  }
  for (size_t i = 0; first && i < sizeof node_cmds / sizeof *node_cmds; i++)
    if (!strcmp(argv[first], node_cmds[i])) {
      char *word = argv[first];
      memmove(argv + 2, argv + 1, (size_t)(first - 1) * sizeof *argv);
      argv[1] = word;
      return cli_negotiate_node_main(argc - 1, argv + 1);
    }
  static const struct option opts[] = {{"strategy", required_argument, 0, OPT_STRATEGY}, {"seed", required_argument, 0, OPT_SEED},
                                       {"genius", required_argument, 0, OPT_GENIUS},     {"deadline", required_argument, 0, OPT_DEADLINE},
                                       {"trace", no_argument, 0, OPT_TRACE},             {"no-zopa", no_argument, 0, OPT_NOZOPA},
                                       {"out", required_argument, 0, OPT_OUT},           CLI_COMMON_LONGOPTS,
                                       {0, 0, 0, 0}};
  cli_common c = {0};
  neg_strategy_kind k[2] = {NEG_STRAT_PARETO, NEG_STRAT_PARETO};
  long seed = 1, deadline = 60;
  const char *genius = NULL, *out = NULL;
  int do_trace = 0, no_zopa = 0, opt, rc;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    if ((rc = cli_common_opt(opt, optarg, &c, usage))) {
      if (rc < 0) return CLI_OK;
      continue;
    }
    switch (opt) {
    case OPT_STRATEGY:
      if (parse_strategies(optarg, k)) return cli_usage_error("negotiate", "--strategy wants A,B of boulware, linear, conceder, pareto");
      break;
    case OPT_SEED:
      if (cli_parse_long(optarg, 0, 1L << 40, &seed)) return cli_usage_error("negotiate", "--seed wants a non-negative integer");
      break;
    case OPT_DEADLINE:
      if (cli_parse_long(optarg, 1, NEG_MAX_ROUNDS, &deadline)) return cli_usage_error("negotiate", "--deadline wants 1..%d", NEG_MAX_ROUNDS);
      break;
    case OPT_GENIUS: genius = optarg; break;
    case OPT_TRACE: do_trace = 1; break;
    case OPT_NOZOPA: no_zopa = 1; break;
    case OPT_OUT: out = optarg; break;
    default: return cli_bad_opt("negotiate", argv);
    }
  }
  int npos = argc - optind;
  char **pos = argv + optind;
  if (npos < 1) return cli_usage_error("negotiate", "expected sim or gen");
  static neg_scenario s;
  char err[300];
  if (!strcmp(pos[0], "gen")) {
    if (npos != 1) return cli_usage_error("negotiate", "gen takes no file argument (use --out)");
    uint64_t sd = (uint64_t)seed;
    while (neg_gen_scenario(sd, !no_zopa, &s)) sd += 1000003; /* a label the draw cannot give: try another */
    json_t *j = neg_scenario_to_json(&s);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text) return CLI_FAIL;
    rc = out ? fs_write_atomic(out, text, strlen(text), 0644, 0) : (printf("%s\n", text), 0);
    free(text);
    if (rc) log_error("negotiate: %s: %s", out, err_str(rc));
    return rc ? CLI_FAIL : CLI_OK;
  }
  if (strcmp(pos[0], "sim")) return cli_usage_error("negotiate", "unknown action '%s' (expected sim or gen)", pos[0]);
  if (genius) {
    if (npos != 3) return cli_usage_error("negotiate", "--genius wants DOMAIN.xml A.xml B.xml");
    if (neg_genius_load_files(genius, pos[1], pos[2], (int)deadline, &s, err, sizeof err)) {
      log_error("negotiate: %s", err);
      return CLI_FAIL;
    }
  } else {
    if (npos != 2) return cli_usage_error("negotiate", "sim wants one SCENARIO.json");
    buf b;
    buf_init(&b);
    rc = fs_read_file(pos[1], NEG_MAX_FILE, &b);
    if (rc) {
      buf_deinit(&b);
      log_error("negotiate: %s: %s", pos[1], err_str(rc));
      return CLI_FAIL;
    }
    rc = neg_scenario_parse((const char *)b.ptr, b.len, &s, err, sizeof err);
    buf_deinit(&b);
    if (rc) {
      log_error("negotiate: %s: %s", pos[1], err);
      return CLI_FAIL;
    }
  }
  return sim(&s, k[0], k[1], (uint64_t)seed, do_trace, c.json);
}
