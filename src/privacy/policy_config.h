/* privacy/policy_config — the privacy policy's config key: [privacy] default (allow, redact
 * or local-only: the node's level, the loosest any request on it gets; privacy/policy). */
#ifndef APIARY_PRIVACY_POLICY_CONFIG_H
#define APIARY_PRIVACY_POLICY_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key policy_config_keys[];
extern const size_t policy_config_keys_n;

#endif
