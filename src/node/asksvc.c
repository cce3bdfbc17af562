/* node/asksvc — the `ask` control method (`apiary ask`): one generation through
 * market/gen, answered whole when it ends. Glue only: the request is parsed here, gen
 * decides local or network, and a 100 ms timer collects the answers. Loop thread. */
#include "node/asksvc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "crypto/ident.h"
#include "market/genreq.h"
#include "privacy/policy.h"

#define POLL_MS 100

typedef struct ask {
  ctl_req *req;
  gen_stream *s;
  buf text;
  struct ask *next;
} ask;

struct asksvc {
  gen *gen;               /* borrowed */
  uv_timer_t timer;
  ask *asks;
  int closing;
};

static void reply(ask *a) {
  mkt_result r;
  gen_wait(a->s, 0, &r);
  if (r.finish == LOCAL_ERROR || r.finish == LOCAL_CANCELED) {
    ctl_reply_err(a->req, CTL_FAILED, "%s", r.finish == LOCAL_ERROR ? r.error : "canceled");
    return;
  }
  json_t *prov = json_array();
  for (int i = 0; i < r.n_providers; i++) json_array_append_new(prov, json_string(r.providers[i]));
  char cost[24];
  snprintf(cost, sizeof cost, "%llu", (unsigned long long)r.cost_wei);
  ctl_reply_ok(a->req, json_pack("{s:s, s:s%, s:s, s:o, s:i, s:i, s:s, s:i}", "node_id", r.node_id, "text",
                                 a->text.ptr ? (const char *)a->text.ptr : "", a->text.len, "finish",
                                 r.finish == LOCAL_LENGTH ? "length" : "stop", "providers", prov, "prompt_tokens",
                                 r.prompt_tokens, "completion_tokens", r.completion_tokens, "cost_wei", cost,
                                 "failovers", r.failovers));
}

/* Moves text in; answers the asks that ended (all of them, canceled, when stopping). */
static void poll_asks(asksvc *v, int stopping) {
  for (ask **pp = &v->asks; *pp;) {
    ask *a = *pp;
    char tmp[4096];
    int n;
    while ((n = gen_read(a->s, tmp, sizeof tmp, 0)) > 0) buf_append(&a->text, tmp, (size_t)n);
    if (stopping) gen_cancel(a->s);
    mkt_result r;
    if (gen_wait(a->s, stopping ? 60000 : 0, &r)) { pp = &a->next; continue; }
    while ((n = gen_read(a->s, tmp, sizeof tmp, 0)) > 0) buf_append(&a->text, tmp, (size_t)n);
    reply(a);
    *pp = a->next;
    gen_release(a->s);
    buf_deinit(&a->text);
    free(a);
  }
}

static void on_timer(uv_timer_t *t) { poll_asks(t->data, 0); }

static void c_ask(ctl_req *req, json_t *params, void *ud) {
  asksvc *v = ud;
  const char *model = json_string_value(json_object_get(params, "model"));
  const char *prompt = json_string_value(json_object_get(params, "prompt"));
  const char *node = json_string_value(json_object_get(params, "node_id"));
  if (!model || !prompt || !*prompt || strlen(prompt) > LOCAL_MAX_PROMPT) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need a model and a prompt");
    return;
  }
  uint8_t only[32];
  if (node && ident_id_decode(node, strlen(node), only)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "bad node id %s", node);
    return;
  }
  /* The same fields and limits as a peer's `generate` (market/genreq): one parser. */
  local_req lr;
  memset(&lr, 0, sizeof lr);
  const char *why = mkt_genreq_parse(params, &lr);
  if (why) {
    local_req_clear(&lr);
    ctl_reply_err(req, CTL_INVALID_PARAMS, "%s", why);
    return;
  }
  json_t *pv = json_object_get(params, "privacy"); /* this node's own client: not in genreq */
  if (pv) {
    int level = json_is_string(pv) ? policy_parse(json_string_value(pv), json_string_length(pv)) : -1;
    if (level < 0) {
      local_req_clear(&lr);
      ctl_reply_err(req, CTL_INVALID_PARAMS, "privacy must be allow, redact or local-only");
      return;
    }
    lr.privacy = level;
  }
  if (!json_is_integer(json_object_get(params, "seed"))) randombytes_buf(&lr.sp.seed, sizeof lr.sp.seed), lr.sp.seed >>= 1;
  ask *a = calloc(1, sizeof *a);
  if (!a) {
    local_req_clear(&lr);
    ctl_reply_err(req, CTL_INTERNAL, "out of memory");
    return;
  }
  char name[256];
  gen_error e;
  gen_request gr = {.model = model, .only = node ? only : NULL};
  if (gen_submit(v->gen, &gr, &lr, &a->s, name, sizeof name, &e)) { /* takes lr */
    free(a);
    ctl_reply_err(req, CTL_FAILED, "%s", e.message);
    return;
  }
  buf_init(&a->text);
  a->req = req;
  a->next = v->asks;
  v->asks = a;
}

int asksvc_start(uv_loop_t *loop, gen *g, ctl_server *ctl, asksvc **out) {
  asksvc *v = calloc(1, sizeof *v);
  if (!v) return ERR_NOMEM;
  v->gen = g;
  int rc = ctl_server_add(ctl, "ask", c_ask, v);
  if (rc) { free(v); return rc; }
  uv_timer_init(loop, &v->timer);
  v->timer.data = v;
  uv_timer_start(&v->timer, on_timer, POLL_MS, POLL_MS);
  *out = v;
  return 0;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void asksvc_stop(asksvc *v) {
  if (!v || v->closing) return;
  v->closing = 1;
  poll_asks(v, 1);
  uv_close((uv_handle_t *)&v->timer, on_closed);
}
