/* http/health — GET /health (no token): {"status":"ok"} while the API serves. */
#ifndef APIARY_HTTP_HEALTH_H
#define APIARY_HTTP_HEALTH_H

#include "http/route.h"

/* Registers GET /health. 0 or http_route_add's error. */
int http_health_routes_add(http_routes *t);

#endif
