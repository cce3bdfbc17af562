/* node/a2acall — the caller's side of delegation (see a2asvc.h).
 *
 *   discovery   when a link to a node comes up we ask it `a2a.agents` and keep its answer
 *               (at most MAX_PROVIDERS nodes, A2A_MAX_AGENTS agents each), so
 *               `a2a.delegate` without a node id can pick the cheapest node selling an
 *               agent of that name within the budget; linked ones are asked again every
 *               REFRESH_MS.
 *   a2a.delegate {node_id?, agent, input, max_wei?, wait?, timeout_s?, id?} sends
 *               a2a.message/send with a fresh 16-byte id (or id: an earlier delegation's,
 *               to take it up again after a restart: the same task, and what our receipt
 *               holds for it counts as paid), then polls a2a.tasks/get every
 *               POLL_MS until the task ends; answers {id, node_id, agent, state, text,
 *               error?, wei, tokens}. wait:false answers right after the provider took
 *               the task. A provider that does not answer (dead, restarting) is asked
 *               again until timeout_s (600): the send is idempotent (same id), tasks/get
 *               too.
 *   a2a.get / a2a.cancel {node_id, id} ask the provider about / cancel one of our tasks.
 * Loop thread. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/a2a.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "node/a2asvc_impl.h"

#define POLL_MS 300
#define SEND_TIMEOUT_MS 15000
#define MAX_PROVIDERS 64
#define REFRESH_MS 10000

typedef struct provider {
  uint8_t pk[32];
  a2a_agent_offer agents[A2A_MAX_AGENTS];
  size_t n;
} provider;

static provider provs[MAX_PROVIDERS]; /* loop thread; one node per process */
static int n_provs;

/* ---- discovery ---------------------------------------------------------------------------- */

typedef struct agents_ctx {
  a2asvc *a;
  uint8_t pk[32];
} agents_ctx;

static void on_agents(void *ud, const rpc_reply *reply) {
  agents_ctx *c = ud;
  if (reply->kind == RPC_REPLY_RESULT && !c->a->closing) {
    int slot = -1;
    for (int i = 0; i < n_provs; i++)
      if (!memcmp(provs[i].pk, c->pk, 32)) slot = i;
    if (slot < 0 && n_provs < MAX_PROVIDERS) slot = n_provs++;
    if (slot >= 0) {
      provider *p = &provs[slot];
      memcpy(p->pk, c->pk, 32);
      if (a2a_agents_from_json(json_object_get(reply->result, "agents"), p->agents, A2A_MAX_AGENTS, &p->n)) p->n = 0;
    }
  }
  free(c);
}

static void ask_agents(a2asvc *a, const uint8_t pk[32]) {
  agents_ctx *c = calloc(1, sizeof *c);
  if (!c) return;
  c->a = a;
  memcpy(c->pk, pk, 32);
  if (netsvc_call(a->ns, pk, "a2a.agents", json_object(), 10000, on_agents, c)) free(c);
}

static void on_link_ready(void *ud, const uint8_t pk[32]) {
  a2asvc *a = ud;
  if (!a->closing) ask_agents(a, pk);
}

/* The cheapest known node selling agent within max_wei; 0 or ERR_NOTFOUND (why written). */
static int pick(const char *agent, uint64_t max_wei, uint8_t pk_out[32], char *why, size_t cap) {
  int best = -1;
  uint64_t best_price = 0, cheapest_over = UINT64_MAX;
  for (int i = 0; i < n_provs; i++)
    for (size_t k = 0; k < provs[i].n; k++) {
      const a2a_agent_offer *o = &provs[i].agents[k];
      if (strcmp(o->name, agent)) continue;
      if (o->price_wei > max_wei) {
        if (o->price_wei < cheapest_over) cheapest_over = o->price_wei;
        continue;
      }
      if (best < 0 || o->price_wei < best_price) best = i, best_price = o->price_wei;
    }
  if (best >= 0) {
    memcpy(pk_out, provs[best].pk, 32);
    return 0;
  }
  if (cheapest_over != UINT64_MAX)
    snprintf(why, cap, "agent %s is sold for %llu wei at the cheapest, above max_wei %llu", agent,
             (unsigned long long)cheapest_over, (unsigned long long)max_wei);
  else snprintf(why, cap, "no known node sells an agent named %s (nodes are asked when a link to them comes up)", agent);
  return ERR_NOTFOUND;
}

/* ---- a delegation ------------------------------------------------------------------------ */

static void on_timer_closed(uv_handle_t *h) {
  a2a_call *c = h->data;
  free(c->input);
  free(c);
}

/* Frees c once nothing refers to it any more. */
void a2asvc__maybe_free(a2a_call *c) {
  if (c->req || c->rpc_live || c->opening || c->closed) return;
  a2asvc *a = c->a;
  for (a2a_call **p = &a->calls; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  c->closed = 1;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void finish_err(a2a_call *c, int code, const char *fmt, const char *arg) {
  if (c->req) ctl_reply_err(c->req, code, fmt, arg);
  c->req = NULL;
}

static void finish_task(a2a_call *c, const a2a_task_view *v) {
  char hex[33], who[IDENT_ID_BUF], wei[24];
  hex_encode(c->id, 16, hex);
  ident_id_encode(c->pk, who);
  snprintf(wei, sizeof wei, "%llu", (unsigned long long)a2asvc__paid(c)); /* what we signed for it */
  json_t *res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", hex, "node_id", who, "agent", c->agent, "state",
                          v->state, "text", v->text ? v->text : "", "wei", wei, "tokens", (json_int_t)v->tokens);
  if (v->error) json_object_set_new(res, "error", json_string(v->error));
  if (c->req) ctl_reply_ok(c->req, res);
  else json_decref(res);
  c->req = NULL;
}

static void poll_later(a2a_call *c, uint64_t ms);
static void on_reply(void *ud, const rpc_reply *reply);

/* The price of c's agent on its provider, when its offer is known (else 1: any channel). */
static uint64_t known_price(const a2a_call *c) {
  for (int i = 0; i < n_provs; i++)
    if (!memcmp(provs[i].pk, c->pk, 32))
      for (size_t k = 0; k < provs[i].n; k++)
        if (!strcmp(provs[i].agents[k].name, c->agent)) return provs[i].agents[k].price_wei;
  return 1;
}

/* The provider refused the task for want of a usable channel (A2A_E_PAYMENT, data
 * {price_wei, retry}): send again (it is looking our channel up), or find or open one.
 * 0 when it goes on; else the reason in msg. */
static int payment_asked(a2a_call *c, const rpc_reply *reply, char *msg, size_t cap) {
  json_t *d = reply->data;
  uint64_t price = 0;
  if (json_is_true(json_object_get(d, "retry"))) {
    poll_later(c, 1000);
    return 0;
  }
  if (a2a_wei_parse(json_object_get(d, "price_wei"), &price) || !price || price > c->max_wei) {
    snprintf(msg, cap, "%s", reply->message && *reply->message ? reply->message : "the provider wants a payment channel");
    return -1;
  }
  if (a2asvc__open_channel(c, price, msg, cap)) return -1;
  if (!c->opening) poll_later(c, 0); /* an open one was found */
  return 0;
}

void a2asvc__step(a2a_call *c) {
  a2asvc *a = c->a;
  if (a->closing || !c->req || c->opening) return;
  if (uv_now(a->loop) > c->deadline) {
    char who[IDENT_ID_BUF];
    ident_id_encode(c->pk, who);
    finish_err(c, CTL_FAILED, c->sent ? "the task on %s did not end in time (it may still run there)"
                                      : "%s did not take the task in time (nothing was spent)", who);
    return;
  }
  json_t *p;
  const char *method;
  if (c->sent) {
    char hex[33];
    hex_encode(c->id, 16, hex);
    p = json_pack("{s:s}", "id", hex);
    method = "a2a.tasks/get";
  } else {
    if (!c->has_chan && c->max_wei) a2asvc__find_channel(c, known_price(c));
    p = a2a_send_params(c->agent, c->id, c->input, c->max_wei, c->has_chan ? c->chan : NULL);
    method = "a2a.message/send";
  }
  c->rpc_live = 1;
  if (netsvc_call(a->ns, c->pk, method, p, SEND_TIMEOUT_MS, on_reply, c)) {
    c->rpc_live = 0;
    poll_later(c, 1000); /* not reachable now: try again */
  }
}

static void on_timer(uv_timer_t *t) { a2asvc__step(t->data); }

static void poll_later(a2a_call *c, uint64_t ms) {
  if (!c->closed) uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_reply(void *ud, const rpc_reply *reply) {
  a2a_call *c = ud;
  c->rpc_live = 0;
  if (c->a->closing || !c->req) {
    a2asvc__maybe_free(c);
    return;
  }
  if (reply->kind == RPC_REPLY_ERROR) {
    if (reply->code == RPC_TIMEOUT || reply->code == RPC_LINK_CLOSED) {
      poll_later(c, 1000); /* the provider may be restarting: ask again */
      return;
    }
    char msg[600];
    if (reply->code == A2A_E_PAYMENT && !c->sent && !payment_asked(c, reply, msg, sizeof msg)) return;
    if (reply->code != A2A_E_PAYMENT || c->sent)
      snprintf(msg, sizeof msg, "%s (code %d)", reply->message && *reply->message ? reply->message : "refused",
               reply->code);
    finish_err(c, CTL_FAILED, "%s", msg);
    a2asvc__maybe_free(c);
    return;
  }
  if (reply->kind != RPC_REPLY_RESULT) return; /* no streams on these methods */
  a2a_task_view v;
  if (a2a_task_parse(reply->result, &v)) {
    finish_err(c, CTL_FAILED, "%s", "the provider's answer is not a task we can read");
    a2asvc__maybe_free(c);
    return;
  }
  c->sent = 1;
  if (!strcmp(v.state, "completed") && v.payment_due) { /* the result waits for the price */
    char why[300];
    if (a2asvc__pay(c, v.price_wei, why, sizeof why)) {
      finish_err(c, CTL_FAILED, "%s", why);
      a2a_task_view_clear(&v);
      a2asvc__maybe_free(c);
      return;
    }
    if (!c->wait) {
      finish_task(c, &v);
      a2a_task_view_clear(&v);
      a2asvc__maybe_free(c);
      return;
    }
  } else if (a2a_state_terminal(v.state) || !c->wait) {
    finish_task(c, &v);
    a2a_task_view_clear(&v);
    a2asvc__maybe_free(c);
    return;
  }
  a2a_task_view_clear(&v);
  poll_later(c, POLL_MS);
}

static int parse_node(json_t *params, uint8_t pk[32]) {
  const char *nid = json_string_value(json_object_get(params, "node_id"));
  return nid && !ident_id_decode(nid, strlen(nid), pk) ? 0 : ERR_FORMAT;
}

static void c_delegate(ctl_req *req, json_t *params, void *ud) {
  a2asvc *a = ud;
  const char *agent = json_string_value(json_object_get(params, "agent"));
  const char *input = json_string_value(json_object_get(params, "input"));
  uint64_t max_wei = 0;
  json_t *mw = json_object_get(params, "max_wei"), *to = json_object_get(params, "timeout_s");
  if (!agent || !*agent || strlen(agent) > 63 || !input || !*input || strlen(input) > A2A_MAX_TEXT ||
      (mw && a2a_wei_parse(mw, &max_wei))) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need agent, input (at most 64 KiB) and max_wei (wei, decimal)");
    return;
  }
  uint8_t pk[32], id[16];
  char why[300];
  int again = json_object_get(params, "id") != NULL; /* take up an earlier delegation (same task) */
  if (again && (a2a_id_parse(params, id) || !json_object_get(params, "node_id"))) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "id (32 hex digits) takes up an earlier delegation: give its node_id too");
    return;
  }
  if (json_object_get(params, "node_id")) {
    if (parse_node(params, pk)) {
      ctl_reply_err(req, CTL_INVALID_PARAMS, "node_id is not a node id");
      return;
    }
  } else if (pick(agent, max_wei, pk, why, sizeof why)) {
    ctl_reply_err(req, CTL_FAILED, "%s", why);
    return;
  }
  if (!memcmp(pk, a->me, 32)) {
    ctl_reply_err(req, CTL_FAILED, "that is this node: run its agent with 'apiary task run'");
    return;
  }
  a2a_call *c = calloc(1, sizeof *c);
  if (!c || !(c->input = strdup(input))) {
    free(c);
    ctl_reply_err(req, CTL_INTERNAL, "out of memory");
    return;
  }
  c->a = a;
  c->req = req;
  memcpy(c->pk, pk, 32);
  if (again) memcpy(c->id, id, 16);
  else randombytes_buf(c->id, sizeof c->id);
  snprintf(c->agent, sizeof c->agent, "%s", agent);
  c->max_wei = max_wei;
  c->wait = !json_is_false(json_object_get(params, "wait"));
  int64_t tmo = json_is_integer(to) && json_integer_value(to) > 0 ? (int64_t)json_integer_value(to) : 600;
  c->deadline = uv_now(a->loop) + (uint64_t)tmo * 1000;
  uv_timer_init(a->loop, &c->timer);
  c->timer.data = c;
  c->next = a->calls;
  a->calls = c;
  a2asvc__step(c);
}

/* a2a.get / a2a.cancel: one request to the provider, its answer passed through. */
typedef struct once_ctx {
  a2asvc *a;
  ctl_req *req;
} once_ctx;

static void on_once(void *ud, const rpc_reply *reply) {
  once_ctx *o = ud;
  if (reply->kind == RPC_REPLY_RESULT) ctl_reply_ok(o->req, json_incref(reply->result));
  else ctl_reply_err(o->req, CTL_FAILED, "%s (code %d)", reply->message && *reply->message ? reply->message : "error",
                     reply->code);
  free(o);
}

static void once(ctl_req *req, json_t *params, void *ud, const char *method) {
  a2asvc *a = ud;
  uint8_t pk[32], id[16];
  if (parse_node(params, pk) || a2a_id_parse(params, id)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need node_id and id (the task's 32 hex digits)");
    return;
  }
  once_ctx *o = calloc(1, sizeof *o);
  if (!o) {
    ctl_reply_err(req, CTL_INTERNAL, "out of memory");
    return;
  }
  o->a = a;
  o->req = req;
  if (netsvc_call(a->ns, pk, method, json_pack("{s:O}", "id", json_object_get(params, "id")), SEND_TIMEOUT_MS, on_once,
                  o)) {
    free(o);
    ctl_reply_err(req, CTL_FAILED, "cannot reach that node");
  }
}

static void c_get(ctl_req *req, json_t *params, void *ud) { once(req, params, ud, "a2a.tasks/get"); }
static void c_cancel(ctl_req *req, json_t *params, void *ud) { once(req, params, ud, "a2a.tasks/cancel"); }

/* The agents known for sale on other nodes: a2a.known {} → {nodes: [{node_id, agents}]}. */
static void c_known(ctl_req *req, json_t *params, void *ud) {
  (void)params;
  (void)ud;
  json_t *l = json_array();
  for (int i = 0; i < n_provs; i++) {
    char who[IDENT_ID_BUF];
    ident_id_encode(provs[i].pk, who);
    json_array_append_new(l, json_pack("{s:s, s:o}", "node_id", who, "agents", a2a_agents_to_json(provs[i].agents, provs[i].n)));
  }
  ctl_reply_ok(req, json_pack("{s:o}", "nodes", l));
}

static void on_refresh(uv_timer_t *t) {
  a2asvc *a = t->data;
  for (int i = 0; i < n_provs && !a->closing; i++)
    if (netsvc_linked(a->ns, provs[i].pk)) ask_agents(a, provs[i].pk);
}

int a2asvc__call_start(a2asvc *a) {
  n_provs = 0;
  int rc = netsvc_on_link_ready(a->ns, on_link_ready, a);
  static const struct { const char *m; ctl_method_fn fn; } methods[] = {
      {"a2a.delegate", c_delegate}, {"a2a.get", c_get}, {"a2a.cancel", c_cancel}, {"a2a.known", c_known}};
  for (size_t i = 0; !rc && i < sizeof methods / sizeof *methods; i++) rc = ctl_server_add(a->ctl, methods[i].m, methods[i].fn, a);
  if (rc) return rc;
  uv_timer_init(a->loop, &a->refresh);
  a->refresh.data = a;
  a->has_refresh = 1;
  uv_timer_start(&a->refresh, on_refresh, REFRESH_MS, REFRESH_MS);
  return 0;
}

void a2asvc__call_stop(a2asvc *a) {
  if (a->has_refresh) uv_close((uv_handle_t *)&a->refresh, NULL);
  a->has_refresh = 0;
  for (a2a_call *c = a->calls, *next; c; c = next) {
    next = c->next;
    finish_err(c, CTL_FAILED, "%s", "the node is stopping");
    uv_timer_stop(&c->timer);
    a2asvc__maybe_free(c);
  }
}
