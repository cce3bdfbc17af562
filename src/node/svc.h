/* node/svc — the node's services behind one interface, sharing one context.
 *
 * A service is {name, start, stop, status}. node/node starts the table in order
 * (node/services.c) and stops the ones that started in reverse order; a service that
 * fails to start stops the node with its message. Each start reads what it needs from the
 * node_ctx and fills in what it offers to the services after it (ctx->net, ctx->pay,
 * ctx->gen, …), so a new layer is one folder plus one entry in the table: it gets the loop,
 * the database, the config, the identity, the control socket, the links, payments, the
 * generation path and the HTTP route table from here.
 *
 * stop ends the service's work (requests answered or failed, timers closed); memory that
 * loop callbacks may still touch is freed by the service when its handles close, or by
 * its `release` after the loop has closed (may be NULL). Loop thread. */
#ifndef APIARY_NODE_SVC_H
#define APIARY_NODE_SVC_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#include "core/config.h"
#include "core/store.h"
#include "crypto/ident.h"
#include "http/route.h"
#include "market/gen.h"
#include "llm/local.h"
#include "node/control.h"
#include "node/home.h"

struct netsvc;
struct paysvc;
struct node;

typedef struct node_ctx {
  uv_loop_t *loop;
  struct node *node;          /* the daemon (for status and shutdown) */
  const home_paths *paths;
  const config *cfg;
  store *db;                  /* the node's database (loop thread) */
  const ident *id;            /* the node key (secret half inside: never log) */
  const char *node_id;        /* its text form */
  ctl_server *ctl;            /* the owner's control socket */
  http_routes *routes;        /* endpoints of the local API: add before the http service */
  /* filled in by the services as they start: */
  struct netsvc *net;         /* links, RPC, DHT, discovery */
  struct paysvc *pay;         /* channels, vouchers, claims */
  local_svc *local;           /* the inference worker */
  gen *gen;                   /* the one generation path */
  uint16_t listen_port;       /* TCP port peers reach us on */
} node_ctx;

typedef struct svc_def {
  const char *name;
  /* Starts; *state_out is what stop/status/release get. 0, or an error with err saying
   * what to do about it. */
  int (*start)(node_ctx *ctx, void **state_out, char *err, size_t cap);
  void (*stop)(node_ctx *ctx, void *state);
  json_t *(*status)(void *state);           /* owned, or NULL: nothing to show */
  void (*release)(void *state);             /* after the loop closed; may be NULL */
} svc_def;

/* The services of a node, in start order. */
const svc_def *svc_table(size_t *n_out);
/* After every service started: says which ports the node opened and why, each with the flag
 * or key that turns it off, on the home's first start (HOME/first-start-notice is written
 * then) or when force (--verbose). */
void svc_ports_notice(node_ctx *ctx, int force);

/* Starts defs in order into states; on failure stops the started ones in reverse and
 * returns the error. */
int svc_start_all(const svc_def *defs, size_t n, node_ctx *ctx, void **states, char *err, size_t cap);
/* Stops started services in reverse order (idempotent: each state is stopped once). */
void svc_stop_all(const svc_def *defs, size_t n, node_ctx *ctx, void **states, int *stopped);
/* Adds each service's status under its name. */
void svc_status_all(const svc_def *defs, size_t n, void **states, json_t *into);
/* Releases every service (after the loop closed). */
void svc_release_all(const svc_def *defs, size_t n, void **states);

#endif
