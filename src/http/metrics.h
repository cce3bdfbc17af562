/* http/metrics — the node's counters for GET /metrics (Prometheus text format, behind the
 * API token): requests by method and status, generation latency (a histogram), tokens in
 * and out (local or network), tokens bought and sold, wei spent and earned, generations in
 * progress. Counters are process-wide atomics: any thread may add (the HTTP threads, the
 * loop's seller glue). */
#ifndef APIARY_HTTP_METRICS_H
#define APIARY_HTTP_METRICS_H

#include <stdint.h>

#include "http/route.h"
#include "market/gen.h"

/* A finished API request; gen_seconds >= 0 for a generation (its latency). */
void http_metrics_request(const char *method, unsigned status, double gen_seconds);
/* Tokens of a generation answered on the API (served locally or bought), and its cost. */
void http_metrics_generation(int network, uint64_t prompt_tokens, uint64_t completion_tokens, uint64_t wei);
/* The seller: tokens sold, wei accepted in vouchers. */
void http_metrics_sold(uint64_t tokens);
void http_metrics_earned(uint64_t wei);

/* Registers GET /metrics (g: for the generations in progress; may be NULL). */
int http_metrics_routes_add(http_routes *t, gen *g);

#endif
