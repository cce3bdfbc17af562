/* http/agentcard — see agentcard.h. Any HTTP thread. */
#include "http/agentcard.h"

#include <jansson.h>
#include <stdio.h>

#include "agent/a2a.h"
#include "agent/a2a_task.h"
#include "core/store.h"
#include "core/version.h"
#include "http/openai.h"

static int card(const http_request *req, void *ud) {
  http_agentcard *c = ud;
  store *db = NULL;
  char err[256];
  a2a_agent_offer list[A2A_MAX_AGENTS];
  int n = store_open(c->db_path, &db, err, sizeof err) ? -1 : a2a_agents_for_sale(db, list, A2A_MAX_AGENTS);
  store_close(db);
  if (n < 0) return http__send_json(req->conn, 503, json_pack("{s:{s:s}}", "error", "message", "cannot read the agents"));
  return http__send_json(req->conn, 200, a2a_card_json(c->node_name, c->node_id, APIARY_VERSION, list, (size_t)n));
}

int http_agentcard_routes_add(http_routes *t, http_agentcard *c) {
  return http_route_add(t, "GET", "/.well-known/agent-card.json", card, c, HTTP_ROUTE_PUBLIC);
}
