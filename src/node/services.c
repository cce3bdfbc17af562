/* node/services — the node's service table: each layer's glue as {start, stop, status},
 * started in this order and stopped in reverse (node/svc.h).
 *
 *   net     links, RPC, DHT, discovery, NAT mapping (node/netsvc)
 *   pay     channels, vouchers, automatic claims (node/paysvc)
 *   lan     LAN beacons into the peer book (p2p/lan_udp)
 *   engine  the inference worker (llm/local)
 *   sell    selling generations (node/gensvc)
 *   buy     buying them: routing, failover, paying (node/mktsvc)
 *   gen     the one generation path (market/gen) and `ask` (node/asksvc)
 *   agents  the agent runtime (node/agentsvc)
 *   a2a     delegation between owners' agents (node/a2asvc)
 *   neg     negotiation between owners' agents: intents, sessions, signed deals (node/negsvc)
 *   vault   vault envelopes from other nodes, kept sealed in the inbox (node/vaultsvc)
 *   http    the local API (http/server) with every layer's routes
 *
 * Reverse order makes shutdown safe: the API stops first (gen_shutdown ends every stream
 * its threads wait on), then the routers end their requests while links still work, and
 * the worker goes after everything that could submit to it. Loop thread. */
#include "node/svc.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/mcp.h"
#include "agent/mcp_fixtures.h"
#include "agent/mcp_node.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/version.h"
#include "http/mcp_http.h"
#include "node/control.h"
#include "core/log.h"
#include "http/agentcard.h"
#include "http/health.h"
#include "http/metrics.h"
#include "http/openai.h"
#include "http/server.h"
#include "node/a2asvc.h"
#include "node/negsvc.h"
#include "node/vaultsvc.h"
#include "node/agentsvc.h"
#include "node/asksvc.h"
#include "node/gensvc.h"
#include "node/mktsvc.h"
#include "node/netsvc.h"
#include "node/node.h"
#include "node/paysvc.h"
#include "p2p/lan_udp.h"
#include "p2p/peers.h"
#include "privacy/owner.h"
#include "privacy/policy.h"

/* ---- net ------------------------------------------------------------------------------ */

/* 1 if "HOST:PORT" has an IPv4 literal host in a loopback or private range. */
static int is_private_addr(const char *hostport) {
  char host[64];
  const char *c = strrchr(hostport, ':');
  if (!c || (size_t)(c - hostport) >= sizeof host) return 0;
  memcpy(host, hostport, (size_t)(c - hostport));
  host[c - hostport] = 0;
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) != 1) return 0;
  uint32_t ip = ntohl(a.s_addr);
  return (ip >> 24) == 127 || (ip >> 24) == 10 || (ip >> 20) == (172 << 4 | 1) || (ip >> 16) == (192 << 8 | 168) ||
         (ip >> 16) == (169 << 8 | 254);
}

static int net_start(node_ctx *c, void **st, char *err, size_t cap) {
  const node_opts *o = c->node->opts;
  netsvc_opts no;
  memset(&no, 0, sizeof no);
  no.listen = o->listen ? o->listen : config_str(c->cfg, "net", "listen");
  no.dht_enabled = !o->no_dht && config_bool(c->cfg, "dht", "enabled");
  no.dht_port = o->dht_port >= 0 ? o->dht_port : (int)config_int(c->cfg, "dht", "port");
  no.allow_private = config_bool(c->cfg, "dht", "allow_private");
  if (o->n_bootstrap > 0) {
    for (int i = 0; i < o->n_bootstrap && i < NETSVC_MAX_BOOTSTRAP; i++) {
      no.bootstrap[no.n_bootstrap++] = o->bootstrap[i];
      if (is_private_addr(o->bootstrap[i])) no.allow_private = 1;
    }
  } else {
    const char *const *list;
    size_t k = config_list(c->cfg, "dht", "bootstrap", &list);
    for (size_t i = 0; i < k && i < NETSVC_MAX_BOOTSTRAP; i++) {
      no.bootstrap[no.n_bootstrap++] = list[i];
      if (is_private_addr(list[i])) no.allow_private = 1;
    }
  }
  if (is_private_addr(no.listen)) no.allow_private = 1;
  no.fast = no.allow_private; /* labs and tests are small: discover every few seconds */
  no.keepalive_s = (uint32_t)config_int(c->cfg, "net", "keepalive");
  no.nat = !o->no_nat && config_bool(c->cfg, "nat", "enabled") && strncmp(no.listen, "127.", 4);
  no.models_dir = c->paths->models;
  no.idle_timeout_s = (uint32_t)config_int(c->cfg, "net", "idle_timeout");
  int rc = netsvc_start(c->loop, c->id, c->db, &no, &c->net, err, cap);
  if (rc) return rc;
  *st = c->net;
  c->listen_port = netsvc_listen_port(c->net);
  if (no.dht_enabled)
    log_info("links on %s (port %u), DHT on UDP %u", no.listen, c->listen_port, netsvc_dht_port(c->net));
  else
    log_info("links on %s (port %u), DHT off", no.listen, c->listen_port);
  return 0;
}

static void net_stop(node_ctx *c, void *st) {
  netsvc_stop(st); /* tells the seller which links are gone */
  c->net = NULL;
}

static json_t *net_status(void *st) { return netsvc_status(st); }

/* ---- pay ------------------------------------------------------------------------------ */

static int pay_start(node_ctx *c, void **st, char *err, size_t cap) {
  int rc = paysvc_start(c->loop, c->paths->wallet, c->cfg, c->db, c->net, c->ctl, &c->pay, err, cap);
  if (!rc) *st = c->pay;
  return rc;
}

static void pay_stop(node_ctx *c, void *st) {
  paysvc_stop(st);
  c->pay = NULL;
}

/* ---- lan ------------------------------------------------------------------------------ */

static void on_lan_found(const lan_beacon *b, const struct sockaddr_in *from, void *ud) {
  node_ctx *c = ud;
  char ip[INET_ADDRSTRLEN], addr[PEERS_ADDR_MAX];
  uv_ip4_name(from, ip, sizeof ip);
  snprintf(addr, sizeof addr, "%s:%u", ip, b->tcp_port);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (peers_add_addr(c->db, b->pk, addr, "lan", (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000))
    log_warn("cannot record a LAN peer: %s", store_errmsg(c->db));
}

static int lan_start(node_ctx *c, void **st, char *err, size_t cap) {
  const node_opts *no = c->node->opts;
  if (no->no_lan || !config_bool(c->cfg, "lan", "enabled")) {
    log_info("LAN discovery off");
    return 0;
  }
  const char *iface = config_str(c->cfg, "lan", "interface");
  lan_udp_opts o = {
      .group = config_str(c->cfg, "lan", "group"),
      .port = (int)config_int(c->cfg, "lan", "port"),
      .iface_addr = iface[0] ? iface : NULL,
      .tcp_port = c->listen_port,
      .dht_port = (uint16_t)(no->dht_port >= 0 ? no->dht_port : config_int(c->cfg, "dht", "port")),
  };
  lan_udp *lan;
  int rc = lan_udp_start(c->loop, c->id, &o, on_lan_found, c, &lan);
  if (rc) {
    snprintf(err, cap, "cannot start LAN discovery on %s:%d: %s (set [lan] enabled = false or pass --no-lan)",
             o.group, o.port, uv_strerror(rc));
    return rc;
  }
  *st = lan;
  log_info("LAN discovery on %s:%d", o.group, o.port);
  return 0;
}

static void lan_stop(node_ctx *c, void *st) {
  (void)c;
  lan_udp_stop(st);
}

static json_t *lan_status(void *st) {
  lan_udp_stats s;
  lan_udp_get_stats(st, &s);
  return json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "lan", "sent", (json_int_t)s.sent, "accepted",
                   (json_int_t)s.accepted, "dropped_format", (json_int_t)s.dropped_format, "dropped_signature",
                   (json_int_t)s.dropped_sig, "dropped_skew", (json_int_t)s.dropped_skew, "dropped_rate",
                   (json_int_t)s.dropped_rate, "own", (json_int_t)s.dropped_self);
}

/* ---- engine --------------------------------------------------------------------------- */

static int engine_start(node_ctx *c, void **st, char *err, size_t cap) {
  int rc = local_svc_new((int)config_int(c->cfg, "engine", "threads"), (int)config_int(c->cfg, "engine", "context"),
                         &c->local);
  if (rc) {
    snprintf(err, cap, "cannot start the inference worker: %s", err_str(rc));
    return rc;
  }
  local_svc_set_max_tps(c->local, (double)config_int(c->cfg, "engine", "max_tps"));
  *st = c->local;
  return 0;
}

static void engine_stop(node_ctx *c, void *st) {
  local_svc_free(st); /* cancels what is queued, joins the worker */
  c->local = NULL;
}

/* ---- sell ----------------------------------------------------------------------------- */

static int sell_start(node_ctx *c, void **st, char *err, size_t cap) {
  gensvc *g;
  int rc = gensvc_start(c->loop, c->cfg, c->id->pk, c->db, c->net, c->pay, c->ctl, c->local, c->paths->models, &g,
                        err, cap);
  if (rc) return rc;
  *st = g;
  c->node->gen = g;
  return 0;
}

static void sell_stop(node_ctx *c, void *st) {
  gensvc_stop(st);
  c->node->gen = NULL;
}

/* ---- buy ------------------------------------------------------------------------------ */

static int buy_start(node_ctx *c, void **st, char *err, size_t cap) {
  mktsvc_opts mo = {.cfg = c->cfg, .me = c->id->pk, .models_dir = c->paths->models, .wallet_path = c->paths->wallet,
                    .verify_rate = c->node->opts->verify_rate};
  mktsvc *m;
  int rc = mktsvc_start(c->loop, &mo, c->db, c->net, c->pay, c->node->gen, c->ctl, &m, err, cap);
  if (rc) return rc;
  *st = m;
  c->node->mkt = m;
  return 0;
}

static void buy_stop(node_ctx *c, void *st) {
  (void)c;
  mktsvc_stop(st); /* ends routed requests while the links still work */
}

static json_t *buy_status(void *st) { return json_pack("{s:o}", "market", mktsvc_status(st)); }

static void buy_release(void *st) { mktsvc_free(st); }

/* ---- gen (+ ask) ---------------------------------------------------------------------- */

typedef struct gen_state {
  gen *g;
  asksvc *ask;
} gen_state;

static int gen_network(void *ud, const char *model, const uint8_t *only, local_req *lr, mkt_stream **out) {
  return mktsvc_submit(ud, model, only, lr, out);
}

static int gen_start(node_ctx *c, void **st, char *err, size_t cap) {
  const char *pv = config_str(c->cfg, "privacy", "default");
  int privacy = policy_parse(pv ? pv : "allow", pv ? strlen(pv) : 5);
  if (privacy < 0) {
    snprintf(err, cap, "[privacy] default = \"%s\": must be \"allow\", \"redact\" or \"local-only\"", pv);
    return ERR_CONFIG;
  }
  gen_state *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  gen_opts go = {.privacy = privacy, .models_dir = c->paths->models, .local = c->local, .network = c->node->mkt ? gen_network : NULL,
                 .network_ud = c->node->mkt, .self_id = c->node_id,
                 .max_live = (int)config_int(c->cfg, "http", "max_generations")};
  int rc = gen_new(&go, &s->g);
  if (!rc) rc = asksvc_start(c->loop, s->g, c->ctl, &s->ask);
  if (rc) {
    gen_free(s->g);
    free(s);
    snprintf(err, cap, "cannot start the generation path: %s", err_str(rc));
    return rc;
  }
  c->gen = s->g;
  *st = s;
  return 0;
}

static void gen_stop(node_ctx *c, void *st) {
  gen_state *s = st;
  gen_shutdown(s->g);
  asksvc_stop(s->ask); /* answers the `ask`s in flight */
  c->gen = NULL;
}

static void gen_release_state(void *st) {
  gen_state *s = st;
  gen_free(s->g);
  free(s);
}

/* ---- agents ---------------------------------------------------------------------------- */

static int agents_start(node_ctx *c, void **st, char *err, size_t cap) {
  if (!config_bool(c->cfg, "agent", "enabled") || !c->gen) return 0;
  agentsvc_opts ao = {.gen = c->gen, .db = c->db, .db_path = c->paths->db, .home = c->paths->dir, .ctl = c->ctl};
  agentsvc *a;
  int rc = agentsvc_start(&ao, &a, err, cap);
  if (!rc) *st = a;
  return rc;
}

static void agents_stop(node_ctx *c, void *st) { (void)c; agentsvc_stop(st); }

static void agents_release(void *st) { agentsvc_free(st); }

/* ---- the owner's policy for agents and negotiation ([policy], privacy/owner) ----------- */

static owner_policy the_policy; /* one node per process; read-only once loaded */

static const owner_policy *policy_of(node_ctx *c, char *err, size_t cap) {
  return owner_policy_load(&the_policy, c->cfg, err, cap) ? NULL : &the_policy;
}

/* ---- a2a: other nodes' tasks for our agents, and ours for theirs ------------------------- */

static int a2a_start(node_ctx *c, void **st, char *err, size_t cap) {
  if (!config_bool(c->cfg, "agent", "enabled") || !c->gen) return 0;
  a2asvc_opts o = {.loop = c->loop, .db = c->db, .ns = c->net, .pay = c->pay, .mkt = c->node->mkt, .ctl = c->ctl,
                   .me = c->id->pk, .deposit = config_str(c->cfg, "market", "channel_deposit"),
                   .lifetime_s = (uint64_t)config_int(c->cfg, "market", "channel_lifetime"),
                   .policy = policy_of(c, err, cap)};
  if (!o.policy) return ERR_CONFIG;
  a2asvc *a;
  int rc = a2asvc_start(&o, &a, err, cap);
  if (!rc) *st = a;
  return rc;
}

static void a2a_stop(node_ctx *c, void *st) { (void)c; a2asvc_stop(st); }

static void a2a_release(void *st) { a2asvc_free(st); }

/* ---- neg: negotiation between owners' agents ------------------------------------------ */

static int neg_start(node_ctx *c, void **st, char *err, size_t cap) {
  if (!c->net) return 0;
  negsvc_opts o = {.loop = c->loop, .db = c->db, .ns = c->net, .ctl = c->ctl, .id = c->id,
                   .w = c->pay && paysvc_enabled(c->pay) ? paysvc_wallet(c->pay) : NULL,
                   .chain_id = (uint64_t)config_int(c->cfg, "chain", "chain_id"),
                   .policy = policy_of(c, err, cap)};
  if (!o.policy) return ERR_CONFIG;
  negsvc *n;
  int rc = negsvc_start(&o, &n, err, cap);
  if (!rc) *st = n;
  return rc;
}

static void neg_stop(node_ctx *c, void *st) { (void)c; negsvc_stop(st); }

static void neg_release(void *st) { negsvc_free(st); }
/* ---- vault: envelopes from other nodes into the inbox ---------------------------------- */

static int vault_start(node_ctx *c, void **st, char *err, size_t cap) {
  if (!c->net) return 0;
  vaultsvc *v;
  int rc = vaultsvc_start(c, &v, err, cap);
  if (!rc) *st = v;
  return rc;
}

static void vault_stop(node_ctx *c, void *st) { (void)c; (void)st; }

static void vault_release(void *st) { vaultsvc_free(st); }

/* ---- mcp ------------------------------------------------------------------------------ */

/* The MCP server at /mcp: the node's tools reach it through its own control socket, as
 * `apiary mcp` on stdio does beside it. Registered before the http service starts. */
typedef struct mcp_state {
  mcp_server srv;
  mcp_node_ops ops;
  mcp_http *http;
  char home[HOME_PATH_MAX];
} mcp_state;

static int mcp_ctl(void *ud, const char *method, json_t *params, int timeout_ms, json_t **result, char *err,
                   size_t cap) {
  mcp_state *m = ud;
  char *msg = NULL;
  int rc = ctl_call(m->home, method, params, timeout_ms, result, &msg);
  if (rc) snprintf(err, cap, "%s", msg ? msg : err_str(rc));
  free(msg);
  return rc;
}

static int mcp_start(node_ctx *c, void **st, char *err, size_t cap) {
  if (!config_bool(c->cfg, "http", "enabled") || !config_bool(c->cfg, "mcp", "enabled")) return 0;
  mcp_state *m = calloc(1, sizeof *m);
  if (!m) return ERR_NOMEM;
  snprintf(m->home, sizeof m->home, "%s", c->paths->dir);
  m->ops = (mcp_node_ops){.call = mcp_ctl, .ud = m};
  mcp_server_init(&m->srv, "apiary", APIARY_VERSION,
                  "An apiary node: generate text with local or bought models, and see the node's offers, peers, "
                  "balance and receipts.");
  const node_opts *o = c->node->opts;
  const char *listen = o->http_listen ? o->http_listen : config_str(c->cfg, "http", "listen");
  int loopback = !strncmp(listen, "127.", 4) || !strncmp(listen, "localhost:", 10) || !strncmp(listen, "[::1]", 5);
  int rc = mcp_node_add(&m->srv, &m->ops);
  if (!rc && config_bool(c->cfg, "mcp", "conformance_fixtures")) rc = mcp_fixtures_add(&m->srv);
  if (!rc) rc = mcp_http_new(&m->srv, loopback, &m->http);
  if (!rc) rc = mcp_http_routes_add(c->routes, m->http);
  if (rc) {
    snprintf(err, cap, "cannot set up MCP at /mcp: %s", err_str(rc));
    mcp_http_free(m->http);
    free(m);
    return rc;
  }
  *st = m;
  return 0;
}

static void mcp_stop(node_ctx *c, void *st) { (void)c; (void)st; /* the http service stops first */ }

static void mcp_release(void *st) {
  mcp_state *m = st;
  mcp_http_free(m->http);
  free(m);
}

/* ---- http ----------------------------------------------------------------------------- */

static json_t *http_remote_models(void *ud) { return mktsvc_models(ud); }

static int http_svc_start(node_ctx *c, void **st, char *err, size_t cap) {
  if (!config_bool(c->cfg, "http", "enabled")) return 0;
  int rc = openai_routes_add(c->routes);
  if (!rc) rc = http_health_routes_add(c->routes);
  if (!rc) rc = http_metrics_routes_add(c->routes, c->gen);
  static http_agentcard card; /* one node per process; read by the HTTP threads */
  snprintf(card.db_path, sizeof card.db_path, "%s", c->paths->db);
  snprintf(card.node_id, sizeof card.node_id, "%s", c->node_id);
  snprintf(card.node_name, sizeof card.node_name, "%s", config_str(c->cfg, "node", "name"));
  if (!rc && config_bool(c->cfg, "agent", "enabled")) rc = http_agentcard_routes_add(c->routes, &card);
  if (rc) {
    snprintf(err, cap, "cannot register the API routes: %s", err_str(rc));
    return rc;
  }
  const node_opts *o = c->node->opts;
  const char *const *cors;
  size_t n_cors = config_list(c->cfg, "http", "cors_origins", &cors);
  http_opts ho = {.listen = o->http_listen ? o->http_listen : config_str(c->cfg, "http", "listen"),
                  .cors_origins = cors, .n_cors = n_cors,
                  .max_connections = (unsigned)config_int(c->cfg, "http", "max_connections"),
                  .idle_timeout_s = (unsigned)config_int(c->cfg, "http", "idle_timeout"),
                  .max_per_address = (unsigned)config_int(c->cfg, "http", "max_per_address"),
                  .threads = (unsigned)config_int(c->cfg, "http", "threads"),
                  .routes = c->routes, .auth = c->node->auth, .models_dir = c->paths->models, .node_id = c->node_id,
                  .gen = c->gen, .remote_ud = c->node->mkt, .remote_models = c->node->mkt ? http_remote_models : NULL};
  http_server *h;
  if ((rc = http_start(&ho, &h, err, cap))) return rc;
  *st = h;
  log_info("API on http://%s (port %u); every request needs a token from 'apiary token create'", ho.listen,
           http_port(h));
  return 0;
}

static void http_svc_stop(node_ctx *c, void *st) {
  gen_shutdown(c->gen); /* every stream an HTTP thread waits on ends now */
  http_stop(st);        /* joins the HTTP threads */
}

static json_t *http_svc_status(void *st) { return json_pack("{s:i}", "http_port", http_port(st)); }

/* ---- the table -------------------------------------------------------------------------- */

static const svc_def table[] = {
    {"net", net_start, net_stop, net_status, NULL},
    {"pay", pay_start, pay_stop, NULL, NULL},
    {"lan", lan_start, lan_stop, lan_status, NULL},
    {"engine", engine_start, engine_stop, NULL, NULL},
    {"sell", sell_start, sell_stop, NULL, NULL},
    {"buy", buy_start, buy_stop, buy_status, buy_release},
    {"gen", gen_start, gen_stop, NULL, gen_release_state},
    {"agents", agents_start, agents_stop, NULL, agents_release},
    {"a2a", a2a_start, a2a_stop, NULL, a2a_release},
    {"neg", neg_start, neg_stop, NULL, neg_release},
    {"vault", vault_start, vault_stop, NULL, vault_release},
    {"mcp", mcp_start, mcp_stop, NULL, mcp_release},
    {"http", http_svc_start, http_svc_stop, http_svc_status, NULL},
};

const svc_def *svc_table(size_t *n_out) {
  *n_out = sizeof table / sizeof *table;
  return table;
}

int svc_start_all(const svc_def *defs, size_t n, node_ctx *ctx, void **states, char *err, size_t cap) {
  for (size_t i = 0; i < n; i++) {
    states[i] = NULL;
    int rc = defs[i].start(ctx, &states[i], err, cap);
    if (rc) {
      if (!err[0]) snprintf(err, cap, "cannot start %s: %s", defs[i].name, err_str(rc));
      return rc;
    }
  }
  return 0;
}

void svc_stop_all(const svc_def *defs, size_t n, node_ctx *ctx, void **states, int *stopped) {
  for (size_t i = n; i-- > 0;) {
    if (stopped[i] || !states[i]) continue;
    stopped[i] = 1;
    defs[i].stop(ctx, states[i]);
  }
}

void svc_status_all(const svc_def *defs, size_t n, void **states, json_t *into) {
  for (size_t i = 0; i < n; i++) {
    if (!states[i] || !defs[i].status) continue;
    json_t *s = defs[i].status(states[i]);
    if (s) json_object_update_new(into, s);
  }
}

void svc_release_all(const svc_def *defs, size_t n, void **states) {
  for (size_t i = 0; i < n; i++)
    if (states[i] && defs[i].release) defs[i].release(states[i]);
}

/* ---- the first start's notice ---------------------------------------------------------- */

void svc_ports_notice(node_ctx *c, int force) {
  char marker[HOME_PATH_MAX + 32];
  snprintf(marker, sizeof marker, "%s/first-start-notice", c->paths->dir);
  if (log_get_level() > LOG_INFO || (!force && access(marker, F_OK) == 0)) return; /* --quiet: shown later */
  const node_opts *o = c->node->opts;
  const char *listen = o->listen ? o->listen : config_str(c->cfg, "net", "listen");
  int dht = !o->no_dht && config_bool(c->cfg, "dht", "enabled");
  int lan = !o->no_lan && config_bool(c->cfg, "lan", "enabled");
  int nat = !o->no_nat && config_bool(c->cfg, "nat", "enabled") && strncmp(listen, "127.", 4);
  int http = config_bool(c->cfg, "http", "enabled");
  const char *http_at = o->http_listen ? o->http_listen : config_str(c->cfg, "http", "listen");
  size_t n_offers = 0;
  if (c->node->gen) gensvc_offers(c->node->gen, &n_offers);
  buf b;
  buf_init(&b);
  buf_printf(&b, "what this node opens, and why (shown on a home's first start, and with --verbose):\n");
  buf_printf(&b, "  TCP %s (port %u)  encrypted peer links: other nodes connect here to buy, sell and talk.%s\n"
                 "      Change with [net] listen or --listen ADDR:PORT (127.0.0.1:PORT keeps it to this machine).\n",
             listen, c->listen_port, !strncmp(listen, "0.0.0.0", 7) ? " Every interface." : "");
  if (dht)
    buf_printf(&b, "  UDP %u  the public BitTorrent Mainline DHT: how nodes find each other across the internet.\n"
                   "      Off with [dht] enabled = false or --no-dht.\n",
               c->net ? netsvc_dht_port(c->net) : 0);
  else
    buf_printf(&b, "  DHT off.\n");
  if (lan)
    buf_printf(&b, "  UDP %s:%lld  signed multicast beacons so nodes on this network find each other.\n"
                   "      Off with [lan] enabled = false or --no-lan.\n",
               config_str(c->cfg, "lan", "group"), (long long)config_int(c->cfg, "lan", "port"));
  else
    buf_printf(&b, "  LAN beacons off.\n");
  if (nat)
    buf_printf(&b, "  router  asks the home router (UPnP-IGD, NAT-PMP) to forward the link port, so nodes outside\n"
                   "      can reach this one. Off with [nat] enabled = false or --no-nat.\n");
  else
    buf_printf(&b, "  no router port mapping.\n");
  if (http)
    buf_printf(&b, "  TCP %s  the OpenAI-compatible API for programs on this machine (each request needs a token\n"
                   "      from 'apiary token create'). Change with [http] listen or --http; off with [http] enabled = false.\n",
               http_at);
  buf_printf(&b, "  selling: %s\n", n_offers ? "see the 'serving' lines above; 'apiary sell --list', 'apiary unsell'"
                                              : "nothing ('apiary sell MODEL --price-gen WEI' to sell a model)");
  b.len--; /* the last newline: log_info ends the line */
  buf_append(&b, "", 1);
  log_info("%s", (const char *)b.ptr);
  buf_deinit(&b);
  FILE *f = force && access(marker, F_OK) == 0 ? NULL : fopen(marker, "w");
  if (f) {
    fputs("apiary showed its ports notice on this home's first start ('apiary node --verbose' shows it again)\n", f);
    fclose(f);
  }
}
