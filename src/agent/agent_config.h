/* agent/agent_config — this layer's settings (MCP, and later agents): the config keys it
 * owns, with defaults and limits. node/home assembles every layer's keys. */
#ifndef APIARY_AGENT_AGENT_CONFIG_H
#define APIARY_AGENT_AGENT_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key agent_config_keys[];
extern const size_t agent_config_keys_n;

#endif
