/* http/http_config — this layer's settings (the local API): the config keys it owns, with defaults and
 * limits. node/home assembles every layer's keys into the node's schema. */
#ifndef APIARY_HTTP_HTTP_CONFIG_H
#define APIARY_HTTP_HTTP_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key http_config_keys[];
extern const size_t http_config_keys_n;

#endif
