/* http/metrics — counters and GET /metrics; see metrics.h. */
#include "http/metrics.h"

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "http/openai.h"

#define N_CODES 6 /* 1xx..5xx by class, and "other" */
static const double BUCKETS[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
#define N_BUCKETS (sizeof BUCKETS / sizeof *BUCKETS)

static _Atomic uint64_t req_get[N_CODES], req_post[N_CODES], req_other[N_CODES];
static _Atomic uint64_t lat_bucket[N_BUCKETS + 1], lat_count, lat_sum_us;
static _Atomic uint64_t tok[2][2];         /* [local, network][prompt, completion] */
static _Atomic uint64_t wei_spent, wei_earned, tok_sold;

void http_metrics_request(const char *method, unsigned status, double gen_seconds) {
  int cls = status >= 100 && status < 600 ? (int)(status / 100) - 1 : 5;
  _Atomic uint64_t *row = !strcmp(method, "GET") ? req_get : !strcmp(method, "POST") ? req_post : req_other;
  atomic_fetch_add(&row[cls], 1);
  if (gen_seconds < 0) return;
  size_t b = 0;
  while (b < N_BUCKETS && gen_seconds > BUCKETS[b]) b++;
  atomic_fetch_add(&lat_bucket[b], 1); /* cumulated when written */
  atomic_fetch_add(&lat_count, 1);
  atomic_fetch_add(&lat_sum_us, (uint64_t)(gen_seconds * 1e6));
}

void http_metrics_generation(int network, uint64_t prompt_tokens, uint64_t completion_tokens, uint64_t wei) {
  atomic_fetch_add(&tok[network ? 1 : 0][0], prompt_tokens);
  atomic_fetch_add(&tok[network ? 1 : 0][1], completion_tokens);
  if (network) atomic_fetch_add(&wei_spent, wei);
}

void http_metrics_sold(uint64_t tokens) { atomic_fetch_add(&tok_sold, tokens); }
void http_metrics_earned(uint64_t wei) { atomic_fetch_add(&wei_earned, wei); }

static void counter(buf *b, const char *name, const char *help, const char *labels, uint64_t v) {
  buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s%s %llu\n", name, help, name, name, labels, (unsigned long long)v);
}

static int metrics(const http_request *req, void *ud) {
  gen *g = ud;
  buf b;
  buf_init(&b);
  static const char *const classes[N_CODES] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
  buf_printf(&b, "# HELP apiary_http_requests_total API requests answered, by method and status class\n"
                 "# TYPE apiary_http_requests_total counter\n");
  for (int i = 0; i < N_CODES; i++) {
    buf_printf(&b, "apiary_http_requests_total{method=\"GET\",code=\"%s\"} %llu\n", classes[i],
               (unsigned long long)atomic_load(&req_get[i]));
    buf_printf(&b, "apiary_http_requests_total{method=\"POST\",code=\"%s\"} %llu\n", classes[i],
               (unsigned long long)atomic_load(&req_post[i]));
    buf_printf(&b, "apiary_http_requests_total{method=\"other\",code=\"%s\"} %llu\n", classes[i],
               (unsigned long long)atomic_load(&req_other[i]));
  }
  buf_printf(&b, "# HELP apiary_generation_seconds time from a generation request to its answer's end\n"
                 "# TYPE apiary_generation_seconds histogram\n");
  uint64_t cum = 0;
  for (size_t i = 0; i < N_BUCKETS; i++) {
    cum += atomic_load(&lat_bucket[i]);
    buf_printf(&b, "apiary_generation_seconds_bucket{le=\"%g\"} %llu\n", BUCKETS[i], (unsigned long long)cum);
  }
  cum += atomic_load(&lat_bucket[N_BUCKETS]);
  buf_printf(&b, "apiary_generation_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
  buf_printf(&b, "apiary_generation_seconds_sum %.6f\napiary_generation_seconds_count %llu\n",
             (double)atomic_load(&lat_sum_us) / 1e6, (unsigned long long)atomic_load(&lat_count));
  buf_printf(&b, "# HELP apiary_tokens_total tokens of API generations, by kind and where they were made\n"
                 "# TYPE apiary_tokens_total counter\n");
  for (int n = 0; n < 2; n++)
    for (int k = 0; k < 2; k++)
      buf_printf(&b, "apiary_tokens_total{kind=\"%s\",served=\"%s\"} %llu\n", k ? "completion" : "prompt",
                 n ? "network" : "local", (unsigned long long)atomic_load(&tok[n][k]));
  counter(&b, "apiary_tokens_bought_total", "generated tokens bought from other nodes", "",
          atomic_load(&tok[1][1]));
  counter(&b, "apiary_tokens_sold_total", "generated tokens sold to other nodes", "", atomic_load(&tok_sold));
  counter(&b, "apiary_wei_spent_total", "wei paid for bought generations", "", atomic_load(&wei_spent));
  counter(&b, "apiary_wei_earned_total", "wei accepted in vouchers for sold generations", "", atomic_load(&wei_earned));
  buf_printf(&b, "# HELP apiary_generations_in_progress API generations running now\n"
                 "# TYPE apiary_generations_in_progress gauge\napiary_generations_in_progress %d\n",
             g ? gen_n_live(g) : 0);
  struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.ptr, MHD_RESPMEM_MUST_COPY);
  buf_deinit(&b);
  MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
  http__cors(r);
  http_log *lg = http__log();
  if (lg) lg->status = 200;
  int ret = MHD_queue_response(req->conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

int http_metrics_routes_add(http_routes *t, gen *g) { return http_route_add(t, "GET", "/metrics", metrics, g, 0); }
