/* http/mcp_http — the node's MCP server over Streamable HTTP at /mcp (see mcp_http.c). */
#ifndef APIARY_HTTP_MCP_HTTP_H
#define APIARY_HTTP_MCP_HTTP_H

#include "agent/mcp.h"
#include "http/route.h"

typedef struct mcp_http mcp_http;

/* srv is borrowed for the transport's lifetime; loopback_only: the API listens on a
 * loopback address, so only local Host headers are served (DNS rebinding protection). */
int mcp_http_new(mcp_server *srv, int loopback_only, mcp_http **out);
/* After the HTTP server has stopped (no request runs). NULL is a no-op. */
void mcp_http_free(mcp_http *h);
/* Registers POST, GET and DELETE /mcp (behind the bearer token). */
int mcp_http_routes_add(http_routes *t, mcp_http *h);

#endif
