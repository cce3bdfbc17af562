/* http/route — see route.h. */
#include "http/route.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

void http_routes_init(http_routes *t) { memset(t, 0, sizeof *t); }

int http_route_add(http_routes *t, const char *method, const char *path, http_handler fn, void *data, int flags) {
  for (size_t i = 0; i < t->n; i++)
    if (!strcmp(t->r[i].method, method) && !strcmp(t->r[i].path, path)) return ERR_EXISTS;
  if (t->n >= HTTP_MAX_ROUTES) return ERR_TOOBIG;
  t->r[t->n++] = (http_route){.method = method, .path = path, .fn = fn, .data = data, .flags = flags};
  return 0;
}

/* How well route path p matches: 0 no, else a score (exact beats any prefix; longer
 * prefixes beat shorter ones). */
static size_t score(const char *p, const char *path) {
  size_t n = strlen(p);
  if (n && p[n - 1] == '*') return strncmp(p, path, n - 1) ? 0 : n;
  return strcmp(p, path) ? 0 : (size_t)-1;
}

http_match http_route_find(const http_routes *t, const char *method, const char *path, const http_route **out,
                           char *allow, size_t allow_cap) {
  size_t best = 0, best_any = 0;
  const http_route *hit = NULL;
  for (size_t i = 0; i < t->n; i++) {
    size_t s = score(t->r[i].path, path);
    if (!s) continue;
    if (s > best_any) best_any = s;
    if (!strcmp(t->r[i].method, method) && s > best) best = s, hit = &t->r[i];
  }
  if (hit && best == best_any) {
    *out = hit;
    return HTTP_MATCH_OK;
  }
  if (!best_any) return HTTP_MATCH_NONE;
  /* the best-matching path exists, but not with this method */
  size_t len = 0;
  if (allow_cap) allow[0] = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (score(t->r[i].path, path) != best_any) continue;
    int w = snprintf(allow + len, allow_cap > len ? allow_cap - len : 0, "%s%s", len ? ", " : "", t->r[i].method);
    if (w > 0) len += (size_t)w;
    if (len >= allow_cap) break;
  }
  return HTTP_MATCH_METHOD;
}
