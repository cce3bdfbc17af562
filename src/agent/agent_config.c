/* agent/agent_config — see agent_config.h. */
#include "agent/agent_config.h"

const config_key agent_config_keys[] = {
    {"agent", "enabled", CONFIG_BOOL, "true", 0, 0, "run agents' tasks on this node (apiary agent add, apiary task run)"},
    {"mcp", "enabled", CONFIG_BOOL, "true", 0, 0, "serve MCP at /mcp on the local API (same tokens): tools generate, offers, peers, balance, receipts"},
    {"mcp", "conformance_fixtures", CONFIG_BOOL, "false", 0, 0, "also serve the fixtures of the MCP conformance suite (for testing only)"},
};
const size_t agent_config_keys_n = sizeof agent_config_keys / sizeof *agent_config_keys;
