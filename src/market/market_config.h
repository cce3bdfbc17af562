/* market/market_config — this layer's settings (the inference worker ([engine]) and buying and selling ([market])): the config keys it owns, with defaults and
 * limits. node/home assembles every layer's keys into the node's schema. */
#ifndef APIARY_MARKET_MARKET_CONFIG_H
#define APIARY_MARKET_MARKET_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key market_config_keys[];
extern const size_t market_config_keys_n;

#endif
