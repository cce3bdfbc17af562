/* chain/chain_config — see chain_config.h. */
#include "chain/chain_config.h"

#include <stdint.h>

/* Settings of the chain deployment. */
const config_key chain_config_keys[] = {
    {"chain", "rpc", CONFIG_STR, "\"http://127.0.0.1:8545\"", 0, 0, "JSON-RPC URL of the EVM chain that holds the escrow (a local anvil by default)"},
    {"chain", "chain_id", CONFIG_INT, "0", 0, INT64_MAX, "chain id of the deployment (set by 'apiary chain deploy'; 0 = not deployed)"},
    {"chain", "escrow", CONFIG_STR, "\"\"", 0, 0, "Escrow contract address (set by 'apiary chain deploy')"},
    {"chain", "registry", CONFIG_STR, "\"\"", 0, 0, "Registry contract address (set by 'apiary chain deploy')"},
    {"chain", "governance", CONFIG_STR, "\"\"", 0, 0, "Governance contract address (set by 'apiary chain deploy')"},
};
const size_t chain_config_keys_n = sizeof chain_config_keys / sizeof *chain_config_keys;
