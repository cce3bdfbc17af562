/* pay/pay_config — see pay_config.h. */
#include "pay/pay_config.h"

#include <stdint.h>

/* Settings of claims and voucher acceptance. */
const config_key pay_config_keys[] = {
    {"pay", "claim_threshold_wei", CONFIG_STR, "\"10000000000000000\"", 0, 0, "claim a channel once its unclaimed vouchers reach this many wei"},
    {"pay", "claim_before_expiry", CONFIG_INT, "3600", 0, 31536000, "claim a channel with unclaimed vouchers when it expires within this many seconds"},
    {"pay", "expiry_margin", CONFIG_INT, "600", 0, 31536000, "refuse vouchers on a channel that expires within this many seconds"},
    {"pay", "claim_interval", CONFIG_INT, "10", 1, 86400, "seconds between checks for channels to claim (and retries while the chain is down)"},
};
const size_t pay_config_keys_n = sizeof pay_config_keys / sizeof *pay_config_keys;
