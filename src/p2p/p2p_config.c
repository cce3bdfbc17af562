/* p2p/p2p_config — see p2p_config.h. */
#include "p2p/p2p_config.h"

#include <stdint.h>

/* Settings of links, the DHT, LAN discovery and NAT mapping. */
const config_key p2p_config_keys[] = {
    {"net", "listen", CONFIG_STR, "\"0.0.0.0:7440\"", 0, 0, "TCP address for encrypted peer links (ADDR:PORT)"},
    {"net", "keepalive", CONFIG_INT, "15", 1, 3600, "seconds without sending before a link sends a keepalive"},
    {"net", "idle_timeout", CONFIG_INT, "60", 2, 86400, "seconds without hearing from a peer before its link is declared dead"},
    {"dht", "enabled", CONFIG_BOOL, "true", 0, 0, "join the BitTorrent Mainline DHT to find other nodes"},
    {"dht", "port", CONFIG_INT, "7441", 0, 65535, "UDP port of the Mainline DHT (0 = any free port)"},
    {"dht", "bootstrap", CONFIG_LIST,
     "[\"router.bittorrent.com:6881\", \"dht.transmissionbt.com:6881\", \"router.utorrent.com:6881\", \"dht.libtorrent.org:25401\"]",
     0, 0, "DHT nodes to start from (HOST:PORT); --bootstrap replaces this list"},
    {"dht", "allow_private", CONFIG_BOOL, "false", 0, 0,
     "accept loopback and private addresses in the DHT (labs; on automatically with a private --bootstrap)"},
    {"lan", "enabled", CONFIG_BOOL, "true", 0, 0, "find nodes on the local network with signed multicast beacons"},
    {"lan", "port", CONFIG_INT, "7447", 1, 65535, "UDP port of the LAN beacons"},
    {"lan", "group", CONFIG_STR, "\"239.192.77.7\"", 0, 0, "IPv4 multicast group of the LAN beacons"},
    {"lan", "interface", CONFIG_STR, "\"\"", 0, 0, "IPv4 address of the interface for beacons; empty = the system's default"},
    {"nat", "enabled", CONFIG_BOOL, "true", 0, 0,
     "ask the home router to forward our ports (UPnP-IGD, then NAT-PMP); never when listening on loopback"},
};
const size_t p2p_config_keys_n = sizeof p2p_config_keys / sizeof *p2p_config_keys;
