/* p2p/nat — best-effort port mapping on the home router: UPnP-IGD (miniupnpc), then
 * NAT-PMP (libnatpmp), so nodes behind a NAT can be reached.
 *
 * nat_map blocks (router discovery and HTTP/UDP round trips, bounded by timeout_ms): the
 * node runs it on libuv's thread pool, never on the loop. Mappings are leased for
 * NAT_LEASE_S seconds; the node renews them. It is skipped entirely when the node listens
 * on loopback (tests, demos) or [nat] enabled = false / --no-nat. Thread-safe (no shared
 * state). */
#ifndef APIARY_P2P_NAT_H
#define APIARY_P2P_NAT_H

#include <stdint.h>

#define NAT_LEASE_S 3600

typedef struct nat_result {
  int ok;                /* 1 when at least the TCP port was mapped */
  char method[16];       /* "upnp-igd" or "nat-pmp" */
  char external_ip[46];  /* the router's public address, when it said */
  uint16_t tcp_port;     /* external TCP port mapped to our link port */
  uint16_t udp_port;     /* external UDP port mapped to our DHT port (0 = not mapped) */
  char err[160];         /* why nothing was mapped */
} nat_result;

/* Maps tcp_port (and udp_port if non-zero) to the same external ports. */
int nat_map(uint16_t tcp_port, uint16_t udp_port, int timeout_ms, nat_result *out);

#endif
