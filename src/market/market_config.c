/* market/market_config — see market_config.h. */
#include "market/market_config.h"

#include <stdint.h>

/* Settings of the inference worker ([engine]) and buying and selling ([market]). */
const config_key market_config_keys[] = {
    {"engine", "threads", CONFIG_INT, "0", 0, 256, "inference threads; 0 means one per core"},
    {"engine", "context", CONFIG_INT, "4096", 16, 1048576, "context length (tokens) of a generation, capped by the model's"},
    {"engine", "max_tps", CONFIG_INT, "0", 0, 1000000, "cap on generated tokens per second per request (0 = none), e.g. to keep a small device cool"},
    {"market", "serve", CONFIG_LIST, "[]", 0, 0, "models this node sells (store names or GGUF paths; \"*\" = every model in the store); empty = nothing (apiary sell MODEL)"},
    {"market", "price_prompt", CONFIG_INT, "0", 0, INT64_MAX, "price in wei per 1,000 prompt tokens"},
    {"market", "price_gen", CONFIG_INT, "0", 0, INT64_MAX, "price in wei per 1,000 generated tokens"},
    {"market", "max_concurrent", CONFIG_INT, "2", 1, 1024, "generations sold at once per model"},
    {"market", "credit_tokens", CONFIG_INT, "32", 1, 1000000, "tokens a buyer may receive beyond what it has paid before generation pauses"},
    {"market", "pay_timeout", CONFIG_INT, "10", 1, 3600, "seconds a paused or finished generation waits for payment before it is dropped"},
    {"market", "max_price_prompt", CONFIG_INT, "1000000000000000", 0, INT64_MAX, "most this node pays per 1,000 prompt tokens (wei; 0 = no limit)"},
    {"market", "max_price_gen", CONFIG_INT, "1000000000000000", 0, INT64_MAX, "most this node pays per 1,000 generated tokens (wei; 0 = no limit)"},
    {"market", "channel_deposit", CONFIG_STR, "\"0.01eth\"", 0, 0, "deposit of a payment channel this node opens to a provider"},
    {"market", "channel_lifetime", CONFIG_INT, "86400", 3600, 31536000, "seconds until such a channel expires"},
    {"market", "pay_every", CONFIG_INT, "8", 1, 100000, "send a voucher every this many received tokens"},
    {"market", "stall_timeout", CONFIG_INT, "10000", 100, 3600000, "milliseconds without a token before a provider is abandoned for the next"},
    {"market", "register_models", CONFIG_BOOL, "true", 0, 0, "list the served models' hashes in the Registry contract (when not listed yet)"},
    {"market", "verify_rate", CONFIG_STR, "\"0\"", 0, 0, "fraction of remote answers re-run on a second provider and compared (0 to 1)"},
};
const size_t market_config_keys_n = sizeof market_config_keys / sizeof *market_config_keys;
