/* p2p/link — encrypted, authenticated links to other nodes over TCP, on libuv.
 *
 * The link manager listens for connections and dials out; every socket drives a session
 * engine (p2p/session): bytes read are fed to it, its output is written, its deadline
 * becomes a libuv timer. Once a session is READY the link is authenticated to a node key
 * and application messages flow; the host learns of it through callbacks.
 *
 * Back-pressure follows the session contract: when queued output (engine + libuv write
 * queue) passes SESSION_HIGH_WATER the link stops reading until it drains below
 * SESSION_LOW_WATER, and link_send reports ERR_TOOBIG so producers can wait.
 *
 * One link per peer: when two nodes dial each other at the same time, both keep the
 * connection initiated by the node with the smaller public key and close the other.
 * Loop thread only. */
#ifndef APIARY_P2P_LINK_H
#define APIARY_P2P_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "crypto/ident.h"

#define LINK_CONNECT_TIMEOUT_MS 10000 /* a TCP connect that has not completed by then fails */

typedef struct link_mgr link_mgr;
typedef struct p2p_link p2p_link;

typedef struct link_callbacks {
  /* The link is authenticated to pk; addr is the remote socket address ("ip:port"). */
  void (*ready)(p2p_link *l, const uint8_t pk[32], const char *addr, int inbound, void *ud);
  /* One application message (borrowed for the call). */
  void (*message)(p2p_link *l, const uint8_t *data, size_t len, void *ud);
  /* The link is gone (after ready, or a failed attempt: then was_ready = 0). err < 0 on
   * failure, 0 on a clean close. expected_pk is the node we dialled (NULL for inbound). */
  void (*closed)(p2p_link *l, const uint8_t *expected_pk, int was_ready, int err, const char *why, void *ud);
  /* Back-pressure released: sends are accepted again. May be NULL. */
  void (*writable)(p2p_link *l, void *ud);
} link_callbacks;

typedef struct link_stats {
  uint64_t accepted, dialled, ready, failed_handshake, duplicates_closed;
  uint64_t refused_rate;      /* inbound connections over the per-address rate */
  uint64_t refused_handshakes;/* inbound connections over the concurrent-handshake cap */
} link_stats;

/* Inbound limits: each source IP may open LINK_ACCEPT_BURST connections at once, then
 * LINK_ACCEPT_RATE per second; at most LINK_MAX_HANDSHAKES unauthenticated connections
 * exist at any time. Excess connections are closed at once and counted. */
#define LINK_ACCEPT_RATE 5
#define LINK_ACCEPT_BURST 20
#define LINK_MAX_HANDSHAKES 256

int link_mgr_new(uv_loop_t *loop, const ident *me, const link_callbacks *cb, void *ud, link_mgr **out);
/* Listens on "ADDR:PORT" (IPv4; port 0 = any). Returns 0 or a libuv error. */
int link_mgr_listen(link_mgr *m, const char *addr);
uint16_t link_mgr_port(const link_mgr *m);
/* Closes every link (CLOSE sent where possible) and the listener; frees the manager once
 * libuv is done. Callbacks are not called after this. */
void link_mgr_close(link_mgr *m);
void link_mgr_stats(const link_mgr *m, link_stats *out);
/* Session timing for links created from now on (0 keeps a value): send a keepalive after
 * keepalive_ms without sending, fail a link after idle_timeout_ms without receiving, fail
 * a dial whose TCP connect takes longer than connect_timeout_ms. */
/* Replaces the per-source accept limits (benchmarks; labs with many nodes behind one IP). */
void link_mgr_set_accept_limits(link_mgr *m, double per_second, double burst);
void link_mgr_set_timing(link_mgr *m, uint64_t keepalive_ms, uint64_t idle_timeout_ms, uint64_t connect_timeout_ms);

/* Dials "HOST:PORT" (IPv4 literal) expecting node pk (NULL: any node that authenticates,
 * for addresses found without a key, e.g. DHT peers). Returns 0 (the result comes through
 * ready/closed), or an error when the address is bad. A dial to a node that already has a
 * ready link is a no-op returning 1. */
int link_dial(link_mgr *m, const uint8_t *pk, const char *addr);
/* 1 while an outgoing connection to pk (or to addr) is being set up. */
int link_dialling(const link_mgr *m, const uint8_t *pk, const char *addr);
/* The ready link to pk, or NULL. */
p2p_link *link_find(link_mgr *m, const uint8_t pk[32]);
/* Sends one application message. ERR_TOOBIG while back-pressured, ERR_INVAL if not ready. */
int link_send(p2p_link *l, const uint8_t *data, size_t len);
/* Closes the link cleanly. */
void link_close(p2p_link *l, const char *reason);
const uint8_t *link_remote_pk(const p2p_link *l);
int link_is_inbound(const p2p_link *l);
/* Per-link user data for the layer above (e.g. its RPC state). */
void link_set_data(p2p_link *l, void *data);
void *link_get_data(const p2p_link *l);
/* Number of ready links. */
int link_count(const link_mgr *m);

#endif
