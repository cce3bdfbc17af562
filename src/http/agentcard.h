/* http/agentcard — GET /.well-known/agent-card.json (public, no token): the node's A2A
 * agent card, one skill per agent for sale (agent/a2a builds it; docs/agents.md). Each
 * request reads the agents from the node's database with its own read-only handle (HTTP
 * threads never share the loop's). */
#ifndef APIARY_HTTP_AGENTCARD_H
#define APIARY_HTTP_AGENTCARD_H

#include "http/route.h"

typedef struct http_agentcard {
  char db_path[1024];
  char node_id[80];
  char node_name[128];
} http_agentcard;

/* Registers the route; card is borrowed until the server stops. 0 or http_route_add's error. */
int http_agentcard_routes_add(http_routes *t, http_agentcard *card);

#endif
