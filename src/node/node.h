/* node/node — a running node: the libuv loop and every service wired to it.
 *
 * node_run loads the home (identity, config, database), takes the home's lock (one node
 * per home), starts the control socket and the services, and runs the loop on the calling
 * thread until SIGINT/SIGTERM or a `stop` request, then shuts everything down cleanly
 * (every handle closed, the database closed, the control socket removed).
 * Everything here runs on the loop thread. */
#ifndef APIARY_NODE_NODE_H
#define APIARY_NODE_NODE_H

#include <stdint.h>
#include <uv.h>

#include "core/config.h"
#include "core/store.h"
#include "crypto/ident.h"
#include "node/control.h"
#include "node/home.h"
#include "http/auth.h"
#include "http/server.h"
#include "market/gen.h"
#include "llm/local.h"
#include "node/netsvc.h"
#include "node/paysvc.h"
#include "node/svc.h"
#include "p2p/lan_udp.h"

#define NODE_MAX_BOOTSTRAP 32

typedef struct node_opts {
  const char *home;                          /* node home directory */
  const char *listen;                        /* "ADDR:PORT" for links, NULL = config */
  int dht_port;                              /* UDP port for the DHT, -1 = config */
  const char *bootstrap[NODE_MAX_BOOTSTRAP]; /* extra "HOST:PORT" DHT bootstrap nodes */
  int n_bootstrap;
  int no_lan;                                /* disable LAN discovery */
  int no_dht;                                /* disable the DHT */
  int no_nat;                                /* no router port mapping */
  const char *http_listen;                   /* "ADDR:PORT" for the API, NULL = config */
  double verify_rate;                        /* --verify-rate, < 0 = config */
} node_opts;

#define NODE_MAX_SERVICES 16

typedef struct node {
  uv_loop_t loop;
  home_paths paths;
  config *cfg;             /* owned */
  store *db;               /* owned */
  ident id;                /* secret: wiped at shutdown */
  char node_id[IDENT_ID_BUF];
  ctl_server *ctl;         /* owned by the loop until closed */
  auth *auth;              /* API token snapshot (owned; NULL when the API is off) */
  http_routes routes;      /* the API's endpoints, filled by the services before http starts */
  node_ctx ctx;            /* what every service gets (node/svc.h) */
  const svc_def *svcs;     /* the service table (node/services.c) */
  size_t n_svcs;
  void *states[NODE_MAX_SERVICES];
  int stopped[NODE_MAX_SERVICES];
  struct gensvc *gen;      /* selling generations (the sell service's state) */
  struct mktsvc *mkt;      /* buying them (the buy service's state) */
  uv_signal_t sigint, sigterm;
  int lock_fd;             /* flock on HOME/node.lock */
  uint64_t started_ms;
  int stopping;
  const node_opts *opts;   /* borrowed */
} node;

/* Runs a node until it is told to stop. Returns 0 after a clean shutdown, or an error with
 * a message in err (for startup failures: what to do about them). */
int node_run(const node_opts *opts, char *err, size_t err_cap);

/* Begins a clean shutdown (idempotent). */
void node_shutdown(node *n);

#endif
