/* agent/agent_mcp — MCP servers' tools as an agent's tools.
 *
 * An agent's definition lists MCP servers ("mcp": stdio commands or Streamable HTTP URLs)
 * and which of their tools it may use ("mcp:SERVER" for all, "SERVER__TOOL" for one). This
 * module keeps one open client per (agent, server configuration), opened on first use and
 * reopened after a failure, offers their tools to the model as SERVER__TOOL (a tool whose
 * input schema the grammar cannot express is offered as "any object", and the server
 * still checks its arguments), and runs calls: the text parts of the result are what the
 * model sees; other parts are named in brackets.
 *
 * One worker thread uses a pool; agent_mcp_free closes every client (children get their
 * stdin closed, then SIGTERM, then SIGKILL). */
#ifndef APIARY_AGENT_AGENT_MCP_H
#define APIARY_AGENT_AGENT_MCP_H

#include <jansson.h>

typedef struct agent_mcp agent_mcp;

agent_mcp *agent_mcp_new(void);
void agent_mcp_free(agent_mcp *p); /* NULL is a no-op */

/* Appends to specs (an OpenAI tools array) the MCP tools def allows; a server that cannot
 * be reached is skipped (and logged). */
void agent_mcp_specs(agent_mcp *p, const json_t *def, json_t *specs);
/* Runs SERVER__TOOL: 0 with *text (owned) and *is_error, or ERR_NOTFOUND when name is not
 * an MCP tool of def. A server that fails is a tool error (the model is told why). */
int agent_mcp_run(agent_mcp *p, const json_t *def, const char *name, json_t *args, char **text, int *is_error);

#endif
