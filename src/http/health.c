/* http/health — GET /health: the node's API answers. Public (no token), so a supervisor,
 * a load balancer or `curl` can check the node without holding a secret; it says nothing
 * about the node beyond being up. */
#include "http/health.h"

#include <jansson.h>

#include "http/openai.h"

static int health(const http_request *req, void *ud) {
  (void)ud;
  return http__send_json(req->conn, 200, json_pack("{s:s}", "status", "ok"));
}

int http_health_routes_add(http_routes *t) { return http_route_add(t, "GET", "/health", health, NULL, HTTP_ROUTE_PUBLIC); }
