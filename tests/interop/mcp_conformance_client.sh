#!/bin/sh
# The client under test for the MCP conformance suite's client scenarios: the suite runs
# "<this script> APIARY_BIN URL" with MCP_CONFORMANCE_SCENARIO set, and this maps each
# scenario onto the real CLI commands (apiary mcp tools / apiary mcp call), one session
# each, exactly as an owner would type them:
#   initialize                           apiary mcp tools URL
#   tools_call                           apiary mcp call URL add_numbers {"a":5,"b":3}
#   elicitation-sep1034-client-defaults  apiary mcp call URL test_client_elicitation_defaults
#   sse-retry                            apiary mcp call URL test_reconnection
# Any other scenario (the auth/* ones are OAuth flows) exits 2.
set -u
bin=$1
url=$2
case "${MCP_CONFORMANCE_SCENARIO:-}" in
  initialize) exec "$bin" mcp tools "$url" ;;
  tools_call) exec "$bin" mcp call "$url" add_numbers '{"a":5,"b":3}' ;;
  elicitation-sep1034-client-defaults) exec "$bin" mcp call "$url" test_client_elicitation_defaults ;;
  sse-retry) exec "$bin" mcp call "$url" test_reconnection ;;
  *) echo "mcp_conformance_client: no mapping for scenario '${MCP_CONFORMANCE_SCENARIO:-}'" >&2; exit 2 ;;
esac
