/* tests/support/cluster — real apiary node processes on loopback with a real anvil chain,
 * for the suites that buy and sell (market, money invariants).
 *
 * A cluster has up to TU_MAX_NODES nodes, each with its own home under dir, a wallet from
 * anvil's dev accounts (node i gets account (i + 1) % 10, so the last of three is account
 * 0), ports from a random base below the ephemeral range, and the contracts deployed by
 * node 0. Nodes bootstrap their DHT from node boot (node boot itself from node 0). Every
 * node runs `--no-lan` with its API on 127.0.0.1. Nothing leaves the machine. */
#ifndef APIARY_TEST_CLUSTER_H
#define APIARY_TEST_CLUSTER_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "anvil.h"

#define TU_MAX_NODES 5

typedef struct tu_node {
  char home[300];
  char id[80];            /* node id */
  pid_t pid;              /* 0 when not running */
} tu_node;

typedef struct tu_cluster {
  char dir[256];
  tu_anvil chain;
  char anvil_bin[512];
  int base;               /* first port */
  int n;
  int boot;               /* the node the others bootstrap from */
  tu_node node[TU_MAX_NODES];
} tu_cluster;

/* Starts anvil and makes n node homes (init, wallet, contracts). Returns 0, or 1 when
 * anvil is not available (the caller skips), or -1 on failure. */
int tu_cluster_init(tu_cluster *c, int n);
/* n node homes (init only): free offers, no chain. 0 or -1. */
int tu_cluster_init_nochain(tu_cluster *c, int n);
/* Stops every node and anvil; removes dir unless APIARY_KEEP_TEST_DIRS is set. */
void tu_cluster_free(tu_cluster *c);
/* Starts node i and waits until its control socket answers. 0 or -1. */
int tu_node_start(tu_cluster *c, int i);
/* The same with extra arguments for `apiary node` (NULL-terminated; may be NULL). */
int tu_node_start_with(tu_cluster *c, int i, const char *const extra[]);
/* `apiary stop`, then SIGKILL after 15 s. */
void tu_node_stop(tu_cluster *c, int i);
/* SIGKILL, and waits for the exit. */
void tu_node_kill(tu_cluster *c, int i);
/* Sets key = value (value as TOML text) in node i's config. 0 or -1. */
int tu_node_set(tu_cluster *c, int i, const char *key, const char *value);
/* The API port of node i. */
int tu_node_http_port(const tu_cluster *c, int i);
/* Runs `apiary ARGS --home <node i> --json`; returns the parsed output (owned) or NULL. */
json_t *tu_node_json(tu_cluster *c, int i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Node i's receipt for request req in role ("client"/"provider"), from `apiary receipts`,
 * optionally only the one naming provider (NULL: any). Caller owns it; NULL when none. */
json_t *tu_node_receipt(tu_cluster *c, int i, const char *req, const char *role, const char *provider);
/* Waits until node i knows an offer of sha from node `from` (-1: from anyone). 1 or 0. */
int tu_node_wait_offer(tu_cluster *c, int i, const char *sha, int from);
/* Creates an API token on node i into out. 0 or -1. */
int tu_node_token(tu_cluster *c, int i, char *out, size_t cap);

/* Decimal string field of o as a number (0 when absent). */
uint64_t tu_dec(json_t *o, const char *key);

#endif
