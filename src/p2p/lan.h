/* p2p/lan — LAN discovery beacons (engine, no I/O).
 *
 * Nodes on the same LAN find each other with no internet by multicasting a small signed
 * beacon every LAN_INTERVAL_MS to LAN_GROUP:LAN_PORT (and answering a new node's beacon at
 * once, unicast, so discovery takes one round trip). Wire format (big-endian, 120 bytes):
 *
 *     0   8  magic "APIARYL1"
 *     8   1  version (1)
 *     9   1  flags (reserved, 0)
 *    10   2  TCP port of the node's link listener
 *    12   2  UDP port of its DHT
 *    14   8  sender's wall clock, milliseconds since the Unix epoch
 *    22  32  the node's Ed25519 public key
 *    54   2  reserved (0)
 *    56  64  Ed25519 signature over bytes 0..56
 *
 * A receiver accepts a beacon only with the right size, magic and version, a valid
 * signature and a timestamp within LAN_MAX_SKEW_MS of its own clock; it then knows the
 * node's key and that it can be reached at (source IP, TCP port). The signature stops
 * forged announcements of someone else's id; the link handshake still authenticates the
 * node before anything is trusted. Pure functions; thread-safe. */
#ifndef APIARY_P2P_LAN_H
#define APIARY_P2P_LAN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/ident.h"

#define LAN_BEACON_LEN 120
#define LAN_MAGIC "APIARYL1"
#define LAN_VERSION 1
#define LAN_DEFAULT_GROUP "239.192.77.7"
#define LAN_DEFAULT_PORT 7447
#define LAN_INTERVAL_MS 5000
#define LAN_MAX_SKEW_MS (5 * 60 * 1000)

typedef struct lan_beacon {
  uint8_t pk[32];
  uint16_t tcp_port;
  uint16_t dht_port;
  int64_t ts_ms;
} lan_beacon;

/* Writes a signed beacon into out. */
void lan_beacon_encode(const ident *id, uint16_t tcp_port, uint16_t dht_port, int64_t now_ms,
                       uint8_t out[static LAN_BEACON_LEN]);
/* Parses and verifies pkt. Returns 0, ERR_FORMAT (size/magic/version), ERR_CRYPTO (bad
 * signature) or ERR_RANGE (timestamp too far from now_ms). */
int lan_beacon_decode(const uint8_t *pkt, size_t len, int64_t now_ms, lan_beacon *out);

#endif
