/* agent/mcp_node — the node's own tools and resources over MCP: generate (through the
 * market), offers, peers, balance, receipts; resources apiary://receipts and
 * apiary://offers. They reach the running node through ops->call (the control socket). */
#ifndef APIARY_AGENT_MCP_NODE_H
#define APIARY_AGENT_MCP_NODE_H

#include "agent/mcp.h"

typedef struct mcp_node_ops {
  /* Calls a control method of the node (params taken; may be NULL): 0 with *result
   * (owned), or an error with a message in err. Any thread; may block up to timeout_ms. */
  int (*call)(void *ud, const char *method, json_t *params, int timeout_ms, json_t **result, char *err, size_t cap);
  void *ud;
} mcp_node_ops;

/* Adds the node's tools and resources to s; ops is borrowed for s's lifetime. */
int mcp_node_add(mcp_server *s, const mcp_node_ops *ops);

#endif
