/* privacy/policy_config — see policy_config.h. */
#include "privacy/policy_config.h"

const config_key policy_config_keys[] = {
    {"privacy", "default", CONFIG_STR, "\"allow\"", 0, 0,
     "where prompts may go: \"allow\" (any provider), \"redact\" (personal data replaced by placeholders before a "
     "prompt leaves this node) or \"local-only\" (never: only models on this node). Tokens, agents and requests "
     "may only tighten it"},
};
const size_t policy_config_keys_n = sizeof policy_config_keys / sizeof *policy_config_keys;
