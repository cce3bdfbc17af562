/* agent/mcp_fixtures — the tools, resources and prompts the MCP conformance suite expects
 * (only when [mcp] conformance_fixtures = true). */
#ifndef APIARY_AGENT_MCP_FIXTURES_H
#define APIARY_AGENT_MCP_FIXTURES_H

#include "agent/mcp.h"

/* Adds every fixture to s. 0 or mcp_add_*'s error. */
int mcp_fixtures_add(mcp_server *s);

#endif
