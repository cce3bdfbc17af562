/* chain/chain_config — this layer's settings (the chain deployment): the config keys it owns, with defaults and
 * limits. node/home assembles every layer's keys into the node's schema. */
#ifndef APIARY_CHAIN_CHAIN_CONFIG_H
#define APIARY_CHAIN_CHAIN_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key chain_config_keys[];
extern const size_t chain_config_keys_n;

#endif
