/* p2p/p2p_config — this layer's settings (links, the DHT, LAN discovery and NAT mapping): the config keys it owns, with defaults and
 * limits. node/home assembles every layer's keys into the node's schema. */
#ifndef APIARY_P2P_P2P_CONFIG_H
#define APIARY_P2P_P2P_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key p2p_config_keys[];
extern const size_t p2p_config_keys_n;

#endif
