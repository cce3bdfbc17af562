/* p2p/lan_udp — LAN discovery on a libuv UDP socket: joins the multicast group, sends a
 * beacon every LAN_INTERVAL_MS, answers a newly seen node's beacon with a unicast beacon,
 * and reports verified beacons through a callback. Drops (malformed, bad signature, clock
 * skew, own beacons, rate-limited) are counted. Loop thread only. */
#ifndef APIARY_P2P_LAN_UDP_H
#define APIARY_P2P_LAN_UDP_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "p2p/lan.h"

typedef struct lan_udp lan_udp;

/* A verified beacon from another node; from is the packet's source address. */
typedef void (*lan_udp_found_fn)(const lan_beacon *b, const struct sockaddr_in *from, void *ud);

typedef struct lan_udp_stats {
  uint64_t sent, received, accepted, dropped_format, dropped_sig, dropped_skew, dropped_self, dropped_rate;
} lan_udp_stats;

typedef struct lan_udp_opts {
  const char *group;      /* multicast group, default LAN_DEFAULT_GROUP */
  int port;               /* default LAN_DEFAULT_PORT */
  const char *iface_addr; /* IPv4 address of the interface to use; NULL = kernel default */
  uint16_t tcp_port, dht_port;
  int interval_ms;        /* default LAN_INTERVAL_MS */
} lan_udp_opts;

/* id is borrowed for the service's lifetime. */
int lan_udp_start(uv_loop_t *loop, const ident *id, const lan_udp_opts *o, lan_udp_found_fn found, void *ud,
                  lan_udp **out);
void lan_udp_stop(lan_udp *l); /* frees once libuv has closed the handles */
void lan_udp_get_stats(const lan_udp *l, lan_udp_stats *out);

#endif
