/* http/server — the local HTTP API (libmicrohttpd).
 *
 * Binds loopback by default (127.0.0.1:8080 from config). Every request must carry a valid
 * bearer token (http/auth) unless its route is public. Requests go to handlers through the
 * route table (http/route: 404 for an unknown path, 405 naming the allowed methods);
 * bodies are capped at HTTP_MAX_BODY. Errors use OpenAI's JSON shape:
 * {"error":{"message","type","param","code"}}.
 *
 * Threads: libmicrohttpd runs a small pool of threads ([http] threads), each polling many
 * connections (epoll), plus one timer thread of ours. Handlers run on the pool threads and
 * never block: a request that waits (for a generation, an embedding, the 429 hold) is
 * parked — its connection suspended — and resumed by the producer's notification or the
 * timer (http__wait, http__suspend in http/openai.h). Handlers only touch thread-safe state
 * (the auth snapshot, the model store files, the engine and market through their queues). */
#ifndef APIARY_HTTP_SERVER_H
#define APIARY_HTTP_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/auth.h"
#include "http/route.h"
#include "market/gen.h"
#include "llm/local.h"
#include "market/stream.h"

#define HTTP_MAX_BODY (4u << 20)

typedef struct http_server http_server;

typedef struct http_opts {
  const char *listen;     /* "ADDR:PORT" (IPv4); port 0 picks a free one */
  const http_routes *routes; /* borrowed, read-only while the server runs */
  auth *auth;             /* borrowed; checked on every request */
  const char *models_dir; /* borrowed: the model store */
  const char *node_id;    /* borrowed: reported as owner of local models */
  gen *gen;               /* borrowed: every generation goes through it (NULL = none) */
  json_t *(*remote_models)(void *ud); /* models the network offers (owned array), or NULL */
  const char *const *cors_origins;  /* web origins allowed (borrowed), n_cors of them */
  size_t n_cors;
  unsigned max_connections;         /* 0: 512 */
  unsigned threads;                 /* the pool's threads; 0: 4 */
  unsigned idle_timeout_s;          /* 0: 30 */
  unsigned max_per_address;         /* open connections from one address (not 127.0.0.1/::1); 0 = no cap */
  void *remote_ud;
} http_opts;

int http_start(const http_opts *o, http_server **out, char *err, size_t err_cap);
void http_stop(http_server *s); /* NULL is a no-op; waits for in-flight requests */
uint16_t http_port(const http_server *s);

#endif
