/* http/route — the local API's route table: {method, path, handler, data}.
 *
 * Each layer registers its own endpoints (http/openai: the OpenAI routes; later MCP, the
 * dashboard, health and metrics) into one table that the node builds before the server
 * starts; the server looks a request up here. A path matches exactly, or as a prefix when
 * the route's path ends in an asterisk (e.g. "/v1/models/" + "*"); exact routes win over prefixes, longer
 * prefixes over shorter. A path that matches with another method is a 405 that names the
 * allowed ones. Routes flagged HTTP_ROUTE_PUBLIC are served without a bearer token.
 *
 * Built on one thread before http_start, then read-only (any thread). */
#ifndef APIARY_HTTP_ROUTE_H
#define APIARY_HTTP_ROUTE_H

#include <stddef.h>

#define HTTP_MAX_ROUTES 64
#define HTTP_ROUTE_PUBLIC 1 /* no bearer token needed */

struct http_request;
/* Answers req (queues a response); returns an MHD_Result. */
typedef int (*http_handler)(const struct http_request *req, void *data);

typedef struct http_route {
  const char *method;     /* "GET", "POST", … (borrowed, static) */
  const char *path;       /* "/v1/models", or a prefix ending in an asterisk (borrowed, static) */
  http_handler fn;
  void *data;             /* borrowed; handed to fn */
  int flags;              /* HTTP_ROUTE_* */
} http_route;

typedef struct http_routes {
  http_route r[HTTP_MAX_ROUTES];
  size_t n;
} http_routes;

void http_routes_init(http_routes *t);
/* Adds a route. 0, ERR_EXISTS (same method and path) or ERR_TOOBIG (table full). */
int http_route_add(http_routes *t, const char *method, const char *path, http_handler fn, void *data, int flags);

typedef enum http_match { HTTP_MATCH_NONE = 0, HTTP_MATCH_OK, HTTP_MATCH_METHOD } http_match;
/* Looks up method + path. OK: *out is the route. METHOD: the path exists with other
 * methods, written to allow ("GET, POST"). NONE: no such path. */
http_match http_route_find(const http_routes *t, const char *method, const char *path, const http_route **out,
                           char *allow, size_t allow_cap);

#endif
