/* pay/pay_config — this layer's settings (claims and voucher acceptance): the config keys it owns, with defaults and
 * limits. node/home assembles every layer's keys into the node's schema. */
#ifndef APIARY_PAY_PAY_CONFIG_H
#define APIARY_PAY_PAY_CONFIG_H

#include <stddef.h>

#include "core/config.h"

extern const config_key pay_config_keys[];
extern const size_t pay_config_keys_n;

#endif
