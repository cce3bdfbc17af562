/* node/a2acall — the caller's side of delegation (see a2asvc.h).
 *
 *   discovery   when a link to a node comes up we ask it `a2a.agents` and keep its answer
 *               (at most MAX_PROVIDERS nodes, A2A_MAX_AGENTS agents each); agents in the
 *               signed DHT records of nodes we look up are added the same way
 *               (a2asvc_note_record). `a2a.delegate` without a node id picks the cheapest
 *               node selling an agent of that name, or with that skill, within the budget;
 *               linked ones are asked again every REFRESH_MS.
 *   a2a.delegate {node_id?, agent, input, max_wei?, wait?, timeout_s?, failover_s?, id?}
 *               sends a2a.message/send with a fresh 16-byte id (or id: an earlier
 *               delegation's, to take it up again after a restart: the same task, and what
 *               our receipt holds for it counts as paid), then polls a2a.tasks/get every
 *               POLL_MS until the task ends; answers {id, node_id, agent, state, text,
 *               error?, wei, tokens, attempts}. wait:false answers right after the provider
 *               took the task.
 *   the cap     what one task may cost is the price in the offer we chose (asked of the
 *               node first when it was named and its offer is not known yet), never more
 *               than max_wei: it is sent as the task's max_wei, and a provider that asks
 *               more (to be paid, or for a channel) gets nothing and the delegation fails.
 *   failover    a provider that does not answer (dead, restarting) is asked again: the
 *               send is idempotent (same id), tasks/get too. A named node is asked until
 *               timeout_s (600). A picked one that stays silent failover_s (30) — or
 *               refuses the task before taking it — is left for the next cheapest node
 *               selling the same agent or skill (a new task id there; at most
 *               A2A_MAX_ATTEMPTS nodes); what an abandoned attempt was paid stays spent,
 *               on its own receipt, and no attempt is paid twice. With no other node the
 *               delegation fails, naming what was spent.
 *   a2a.get / a2a.cancel {node_id, id} ask the provider about / cancel one of our tasks.
 * Loop thread. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/a2a.h"
#include "agent/a2a_calls.h"
#include "agent/a2a_task.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "node/a2asvc_impl.h"

#define POLL_MS 300
#define SEND_TIMEOUT_MS 15000
#define MAX_PROVIDERS 64
#define REFRESH_MS 10000
#define PUBLISH_MS 2000 /* our own agents for sale read again (the DHT record) */
#define FAILOVER_S 30

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

/* Keeps what node pk sells (replacing what we knew of it). */
static void remember(const uint8_t pk[32], const a2a_agent_offer *list, size_t n) {
  int slot = -1;
  for (int i = 0; i < n_provs; i++)
    if (!memcmp(provs[i].pk, pk, 32)) slot = i;
  if (slot < 0 && n_provs < MAX_PROVIDERS) slot = n_provs++;
  if (slot < 0) return;
  provider *p = &provs[slot];
  memcpy(p->pk, pk, 32);
  p->n = n < A2A_MAX_AGENTS ? n : A2A_MAX_AGENTS;
  memcpy(p->agents, list, p->n * sizeof *list);
}

/* An a2a.agents answer into the table; 0 or ERR_FORMAT. */
static int remember_json(const uint8_t pk[32], const json_t *result) {
  static a2a_agent_offer list[A2A_MAX_AGENTS];
  size_t n;
  if (a2a_agents_from_json(json_object_get(result, "agents"), list, A2A_MAX_AGENTS, &n)) return ERR_FORMAT;
  remember(pk, list, n);
  return 0;
}

void a2asvc_note_record(a2asvc *a, const uint8_t pk[32], const a2a_agent_offer *list, size_t n) {
  if (a->closing || !memcmp(pk, a->me, 32)) return;
  for (int i = 0; i < n_provs; i++)
    if (!memcmp(provs[i].pk, pk, 32) && netsvc_linked(a->ns, pk)) return; /* its own answer is fresher */
  remember(pk, list, n);
}

static void on_agents(void *ud, const rpc_reply *reply) {
  agents_ctx *c = ud;
  if (reply->kind == RPC_REPLY_RESULT && !c->a->closing && remember_json(c->pk, reply->result)) remember(c->pk, NULL, 0);
  free(c);
}

static void ask_agents(a2asvc *a, const uint8_t pk[32]) {
  agents_ctx *c = calloc(1, sizeof *c);
  if (!c) return;
  c->a = a;
  memcpy(c->pk, pk, 32);
  if (netsvc_call(a->ns, pk, "a2a.agents", json_object(), 10000, on_agents, c)) free(c);
}

/* ---- abandoned attempts ----------------------------------------------------------------- */

typedef struct cancel_ctx {
  a2asvc *a;
  uint8_t pk[32], id[16];
} cancel_ctx;

static void on_cancel(void *ud, const rpc_reply *reply) {
  cancel_ctx *c = ud;
  /* canceled, already ended, or unknown there: nothing of it runs for us any more */
  int settled = reply->kind == RPC_REPLY_RESULT ||
                (reply->kind == RPC_REPLY_ERROR && (reply->code == A2A_E_NOT_CANCELABLE || reply->code == A2A_E_NOT_FOUND));
  if (settled && !c->a->closing && a2a_calls_end(c->a->db, c->id, c->pk, "abandoned", NULL))
    log_warn("cannot record an abandoned delegation: %s", store_errmsg(c->a->db));
  free(c);
}

/* A node we left for another is back: cancel the tasks we left there (their result would
 * be held back, unpaid, anyway; this spares its owner the work). */
static void cancel_lost(a2asvc *a, const uint8_t pk[32]) {
  uint8_t ids[16][16];
  int n = a2a_calls_lost(a->db, pk, ids, 16);
  for (int i = 0; i < n; i++) {
    cancel_ctx *c = calloc(1, sizeof *c);
    char hex[33];
    if (!c) return;
    c->a = a;
    memcpy(c->pk, pk, 32);
    memcpy(c->id, ids[i], 16);
    hex_encode(ids[i], 16, hex);
    if (netsvc_call(a->ns, pk, "a2a.tasks/cancel", json_pack("{s:s}", "id", hex), SEND_TIMEOUT_MS, on_cancel, c)) free(c);
  }
}

static void on_link_ready(void *ud, const uint8_t pk[32]) {
  a2asvc *a = ud;
  if (a->closing) return;
  ask_agents(a, pk);
  cancel_lost(a, pk);
}

/* Has c tried node pk already? */
static int tried(const a2a_call *c, const uint8_t pk[32]) {
  for (int i = 0; i < c->n_tried; i++)
    if (!memcmp(c->tried[i].pk, pk, 32)) return 1;
  return 0;
}

/* The cheapest known node selling want (an agent name or a skill) within max_wei, other
 * than us and the nodes c tried (c may be NULL). 0 with its offer in *o_out, or
 * ERR_NOTFOUND (why written). */
static int pick(a2asvc *a, const a2a_call *c, const char *want, uint64_t max_wei, uint8_t pk_out[32],
                a2a_agent_offer *o_out, char *why, size_t cap) {
  int best = -1;
  size_t best_k = 0;
  uint64_t cheapest_over = UINT64_MAX;
  for (int i = 0; i < n_provs; i++) {
    if (!memcmp(provs[i].pk, a->me, 32) || (c && tried(c, provs[i].pk))) continue;
    for (size_t k = 0; k < provs[i].n; k++) {
      const a2a_agent_offer *o = &provs[i].agents[k];
      if (!a2a_offer_matches(o, want)) continue;
      if (o->price_wei > max_wei) {
        if (o->price_wei < cheapest_over) cheapest_over = o->price_wei;
        continue;
      }
      if (best < 0 || o->price_wei < provs[best].agents[best_k].price_wei) best = i, best_k = k;
    }
  }
  if (best >= 0) {
    memcpy(pk_out, provs[best].pk, 32);
    *o_out = provs[best].agents[best_k];
    return 0;
  }
  if (cheapest_over != UINT64_MAX)
    snprintf(why, cap, "agent %s is sold for %llu wei at the cheapest, above max_wei %llu", want,
             (unsigned long long)cheapest_over, (unsigned long long)max_wei);
  else if (c)
    snprintf(why, cap, "no other known node sells an agent named %s or with that skill", want);
  else
    snprintf(why, cap, "no known node sells an agent named %s or with that skill (nodes are asked when a link to them "
             "comes up)", want);
  return ERR_NOTFOUND;
}

/* Node pk's offer matching want, when we know it. 0 or ERR_NOTFOUND. */
static int known_offer(const uint8_t pk[32], const char *want, a2a_agent_offer *o_out) {
  for (int i = 0; i < n_provs; i++)
    if (!memcmp(provs[i].pk, pk, 32))
      for (size_t k = 0; k < provs[i].n; k++)
        if (a2a_offer_matches(&provs[i].agents[k], want)) {
          *o_out = provs[i].agents[k];
          return 0;
        }
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
  if (!c->done || c->rpc_live || c->opening || c->closed) return;
  a2asvc *a = c->a;
  for (a2a_call **p = &a->calls; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  c->closed = 1;
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* What every attempt of c was paid, together. */
static uint64_t spent(const a2a_call *c) {
  uint64_t sum = 0;
  for (int i = 0; i < c->n_tried; i++) sum += a2asvc__paid_for(c->a, c->tried[i].pk, c->tried[i].id);
  return sum;
}

static json_t *attempts_json(const a2a_call *c) {
  json_t *l = json_array();
  for (int i = 0; i < c->n_tried; i++) {
    char hex[33], who[IDENT_ID_BUF], wei[24];
    hex_encode(c->tried[i].id, 16, hex);
    ident_id_encode(c->tried[i].pk, who);
    snprintf(wei, sizeof wei, "%llu", (unsigned long long)a2asvc__paid_for(c->a, c->tried[i].pk, c->tried[i].id));
    json_array_append_new(l, json_pack("{s:s, s:s, s:s, s:s}", "node_id", who, "id", hex, "state",
                                       c->tried[i].state[0] ? c->tried[i].state : "unsent", "wei", wei));
  }
  return l;
}

/* Records how the current attempt ended (when it is recorded). */
static void record_end(a2a_call *c, const char *state, const char *result) {
  if (c->persisted && a2a_calls_end(c->a->db, c->id, c->pk, state, result))
    log_warn("cannot record the end of a delegation: %s", store_errmsg(c->a->db));
}

/* Fails the delegation; when it spent anything (or tried more than one node) the error
 * says how much, on how many nodes. */
static void finish_err(a2a_call *c, int code, const char *fmt, const char *arg) {
  if (c->done) return;
  char msg[900], full[1000];
  snprintf(msg, sizeof msg, fmt, arg);
  uint64_t s = spent(c);
  if (s || c->n_tried > 1)
    snprintf(full, sizeof full, "%s (spent %llu wei on %d node%s)", msg, (unsigned long long)s, c->n_tried,
             c->n_tried == 1 ? "" : "s");
  else
    snprintf(full, sizeof full, "%s", msg);
  if (c->req) ctl_reply_err(c->req, code, "%s", full);
  else log_warn("delegation of %s (taken up after a restart) failed: %s", c->want, full);
  record_end(c, "failed", full);
  c->req = NULL;
  c->done = 1;
}

void a2asvc__fail(a2a_call *c, const char *msg) { finish_err(c, CTL_FAILED, "%s", msg); }

static void finish_task(a2a_call *c, const a2a_task_view *v) {
  char hex[33], who[IDENT_ID_BUF], wei[24];
  hex_encode(c->id, 16, hex);
  ident_id_encode(c->pk, who);
  snprintf(wei, sizeof wei, "%llu", (unsigned long long)spent(c)); /* what we signed, over every attempt */
  json_t *res = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "id", hex, "node_id", who, "agent", c->agent,
                          "state", v->state, "text", v->text ? v->text : "", "wei", wei, "tokens", (json_int_t)v->tokens,
                          "attempts", attempts_json(c));
  if (v->error) json_object_set_new(res, "error", json_string(v->error));
  record_end(c, v->state, v->text ? v->text : v->error);
  if (!c->req) log_info("delegation of %s (taken up after a restart) ended %s, %s wei", c->want, v->state, wei);
  if (c->req) ctl_reply_ok(c->req, res);
  else json_decref(res);
  c->req = NULL;
  c->done = 1;
}

/* The provider has the task: from now on a restart takes the delegation up again (when
 * its caller waits for the result). */
static void persist(a2a_call *c) {
  if (c->persisted || !c->wait) return;
  a2a_call_row r = {.input = c->input, .max_wei = c->max_wei, .cap = c->has_adv ? c->advertised : c->max_wei,
                    .rate = c->has_adv ? c->adv_1k : 0};
  memcpy(r.id, c->id, 16);
  memcpy(r.provider, c->pk, 32);
  snprintf(r.agent, sizeof r.agent, "%s", c->agent);
  if ((r.has_channel = c->has_chan)) memcpy(r.channel, c->chan, 32);
  uint64_t left_ms = c->deadline > uv_now(c->a->loop) ? c->deadline - uv_now(c->a->loop) : 0;
  r.deadline = (int64_t)time(NULL) + (int64_t)(left_ms / 1000);
  if (a2a_calls_open(c->a->db, &r)) log_warn("cannot record a delegation: %s", store_errmsg(c->a->db));
  else c->persisted = 1;
}

static void poll_later(a2a_call *c, uint64_t ms);
static void on_reply(void *ud, const rpc_reply *reply);

/* The current attempt's record. */
static a2a_attempt *cur(a2a_call *c) { return &c->tried[c->n_tried - 1]; }

/* Starts an attempt on node pk with its offer o: a fresh task id unless id is given. */
static void attempt(a2a_call *c, const uint8_t pk[32], const a2a_agent_offer *o, const uint8_t *id) {
  memcpy(c->pk, pk, 32);
  if (id) memcpy(c->id, id, 16);
  else randombytes_buf(c->id, sizeof c->id);
  if (o) {
    snprintf(c->agent, sizeof c->agent, "%s", o->name);
    c->advertised = o->price_wei;
    c->adv_1k = o->price_1k;
    c->has_adv = 1;
  } else {
    c->has_adv = 0;
  }
  c->asking_offer = !o;
  c->has_chan = c->opened = c->signings = c->sent = 0;
  c->down_since = 0;
  a2a_attempt *t = &c->tried[c->n_tried++];
  memcpy(t->pk, pk, 32);
  memcpy(t->id, c->id, 16);
  t->state[0] = 0;
}

/* Leaves the current provider for the next cheapest one selling the same thing; fails
 * the delegation when there is none. reason: why we leave it. */
static void failover(a2a_call *c, const char *reason) {
  char who[IDENT_ID_BUF], why[300], msg[700];
  ident_id_encode(c->pk, who);
  snprintf(cur(c)->state, sizeof cur(c)->state, "lost");
  if (c->sent && !c->persisted) { /* on record, so its task there is canceled when the node is back */
    int w = c->wait;
    c->wait = 1;
    persist(c);
    c->wait = w;
  }
  record_end(c, "lost", reason);
  c->persisted = 0; /* the next attempt is recorded when its provider has the task */
  uint8_t pk[32];
  a2a_agent_offer o;
  if (c->n_tried < A2A_MAX_ATTEMPTS && !pick(c->a, c, c->want, c->max_wei, pk, &o, why, sizeof why)) {
    char next[IDENT_ID_BUF];
    ident_id_encode(pk, next);
    log_warn("delegation of %s: leaving %s (%s); trying %s", c->want, who, reason, next);
    attempt(c, pk, &o, NULL);
    poll_later(c, 0);
    return;
  }
  if (c->n_tried >= A2A_MAX_ATTEMPTS) snprintf(why, sizeof why, "tried %d nodes", c->n_tried);
  snprintf(msg, sizeof msg, "%s %s; %s", who, reason, why);
  finish_err(c, CTL_FAILED, "%s", msg);
  a2asvc__maybe_free(c);
}

/* The provider did not answer: ask again, or leave it when it stayed silent too long. */
static void no_answer(a2a_call *c) {
  uint64_t now = uv_now(c->a->loop);
  if (!c->down_since) c->down_since = now;
  if (c->auto_pick && !c->opening && now - c->down_since >= c->failover_ms) {
    failover(c, c->sent ? "stopped answering while it had the task" : "did not answer");
    return;
  }
  poll_later(c, 1000);
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
  if (a2a_wei_parse(json_object_get(d, "price_wei"), &price) || !price || price > a2asvc__cap(c)) {
    if (price && c->has_adv && price > c->advertised && c->advertised <= c->max_wei)
      snprintf(msg, cap, "the provider asks %llu wei for the task, above the %llu wei it advertised: refused, nothing paid",
               (unsigned long long)price, (unsigned long long)c->advertised);
    else
      snprintf(msg, cap, "%s", reply->message && *reply->message ? reply->message : "the provider wants a payment channel");
    return -1;
  }
  uint8_t refused[32];
  int had = c->has_chan;
  memcpy(refused, c->chan, 32);
  if (a2asvc__open_channel(c, price, msg, cap)) return -1;
  if (!c->opening && had && !memcmp(refused, c->chan, 32)) { /* it refused this very channel, for good */
    snprintf(msg, cap, "%s", reply->message && *reply->message ? reply->message : "the provider refused our channel");
    return -1;
  }
  if (!c->opening) poll_later(c, 0); /* an open one was found */
  return 0;
}

void a2asvc__step(a2a_call *c) {
  a2asvc *a = c->a;
  if (a->closing || c->done || c->opening) return;
  if (uv_now(a->loop) > c->deadline) {
    char who[IDENT_ID_BUF];
    ident_id_encode(c->pk, who);
    finish_err(c, CTL_FAILED, c->sent ? "the task on %s did not end in time (it may still run there)"
                                      : "%s did not take the task in time (nothing was spent on it)", who);
    a2asvc__maybe_free(c);
    return;
  }
  json_t *p;
  const char *method;
  if (c->asking_offer) { /* a named node: its advertised price first */
    p = json_object();
    method = "a2a.agents";
  } else if (c->sent) {
    char hex[33];
    hex_encode(c->id, 16, hex);
    p = json_pack("{s:s}", "id", hex);
    method = "a2a.tasks/get";
  } else {
    uint64_t cap = a2asvc__cap(c);
    uint8_t sig[65];
    if (!c->has_chan && cap) a2asvc__find_channel(c, cap);
    int signed_ok = c->has_chan && !a2asvc__channel_sig(c, sig);
    p = a2a_send_params(c->agent, c->id, c->input, cap, c->has_chan ? c->chan : NULL, signed_ok ? sig : NULL);
    method = "a2a.message/send";
  }
  c->rpc_live = 1;
  if (netsvc_call(a->ns, c->pk, method, p, SEND_TIMEOUT_MS, on_reply, c)) {
    c->rpc_live = 0;
    no_answer(c); /* not reachable now: try again, or another node */
  }
}

static void on_timer(uv_timer_t *t) { a2asvc__step(t->data); }

static void poll_later(a2a_call *c, uint64_t ms) {
  if (!c->closed) uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* The a2a.agents answer of a named node: the offer we hold the task's price to. */
static void offer_answer(a2a_call *c, const rpc_reply *reply) {
  a2a_agent_offer o;
  char who[IDENT_ID_BUF];
  ident_id_encode(c->pk, who);
  if (remember_json(c->pk, reply->result) || known_offer(c->pk, c->want, &o)) {
    finish_err(c, CTL_FAILED, "%s sells no agent by that name or skill (nothing was spent)", who);
    a2asvc__maybe_free(c);
    return;
  }
  snprintf(c->agent, sizeof c->agent, "%s", o.name);
  c->advertised = o.price_wei;
  c->adv_1k = o.price_1k;
  c->has_adv = 1;
  c->asking_offer = 0;
  poll_later(c, 0);
}

static void on_reply(void *ud, const rpc_reply *reply) {
  a2a_call *c = ud;
  c->rpc_live = 0;
  if (c->a->closing || c->done) {
    a2asvc__maybe_free(c);
    return;
  }
  if (reply->kind == RPC_REPLY_ERROR && (reply->code == RPC_TIMEOUT || reply->code == RPC_LINK_CLOSED)) {
    no_answer(c); /* the provider may be restarting: ask again */
    return;
  }
  c->down_since = 0;
  if (c->asking_offer) {
    if (reply->kind == RPC_REPLY_RESULT) offer_answer(c, reply);
    else poll_later(c, 1000);
    return;
  }
  if (reply->kind == RPC_REPLY_ERROR) {
    char msg[600];
    if (reply->code == A2A_E_PAYMENT && !c->sent && !payment_asked(c, reply, msg, sizeof msg)) return;
    if (reply->code == A2A_E_PRICE && c->has_adv && c->advertised < c->max_wei) /* the max_wei it saw was our cap */
      snprintf(msg, sizeof msg, "the provider now asks more than the %llu wei it advertised: %s (code %d)",
               (unsigned long long)c->advertised, reply->message && *reply->message ? reply->message : "refused",
               reply->code);
    else if (reply->code != A2A_E_PAYMENT || c->sent)
      snprintf(msg, sizeof msg, "%s (code %d)", reply->message && *reply->message ? reply->message : "refused",
               reply->code);
    if (c->auto_pick && !c->sent && (reply->code == A2A_E_NO_AGENT || reply->code == A2A_E_PRICE)) {
      char reason[700];
      snprintf(reason, sizeof reason, "refused the task: %s", msg);
      failover(c, reason); /* another may sell it as advertised */
      return;
    }
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
  persist(c);
  snprintf(cur(c)->state, sizeof cur(c)->state, "%s", v.state);
  if (!strcmp(v.state, "completed") && v.payment_due) { /* the result waits for the price */
    char why[300];
    if (a2asvc__pay(c, v.price_wei, v.tokens, why, sizeof why)) {
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
  const char *want = json_string_value(json_object_get(params, "agent"));
  const char *input = json_string_value(json_object_get(params, "input"));
  uint64_t max_wei = 0;
  json_t *mw = json_object_get(params, "max_wei"), *to = json_object_get(params, "timeout_s"),
         *fo = json_object_get(params, "failover_s");
  if (!want || !*want || strlen(want) > 63 || !input || !*input || strlen(input) > A2A_MAX_TEXT ||
      (mw && a2a_wei_parse(mw, &max_wei))) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need agent (a name or a skill), input (at most 64 KiB) and max_wei (wei, decimal)");
    return;
  }
  uint8_t pk[32], id[16];
  char why[300];
  a2a_agent_offer o;
  int have_offer = 0, auto_pick = 0;
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
    have_offer = !known_offer(pk, want, &o);
  } else if (pick(a, NULL, want, max_wei, pk, &o, why, sizeof why)) {
    ctl_reply_err(req, CTL_FAILED, "%s", why);
    return;
  } else {
    have_offer = auto_pick = 1;
  }
  if (!memcmp(pk, a->me, 32)) {
    ctl_reply_err(req, CTL_FAILED, "that is this node: run its agent with 'apiary task run'");
    return;
  }
  for (a2a_call *r = a->calls; again && r; r = r->next)
    if (!r->done && !r->req && !memcmp(r->pk, pk, 32) && !memcmp(r->id, id, 16)) {
      r->req = req; /* taken up after a restart already: its answer is this call's */
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
  snprintf(c->want, sizeof c->want, "%s", want);
  snprintf(c->agent, sizeof c->agent, "%s", want);
  c->max_wei = max_wei;
  c->auto_pick = auto_pick;
  c->wait = !json_is_false(json_object_get(params, "wait"));
  int64_t tmo = json_is_integer(to) && json_integer_value(to) > 0 ? (int64_t)json_integer_value(to) : 600;
  int64_t fos = json_is_integer(fo) && json_integer_value(fo) > 0 ? (int64_t)json_integer_value(fo) : FAILOVER_S;
  c->deadline = uv_now(a->loop) + (uint64_t)tmo * 1000;
  c->failover_ms = (uint64_t)fos * 1000;
  attempt(c, pk, have_offer ? &o : NULL, again ? id : NULL);
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

json_t *a2asvc__agents_json(void *ud) {
  a2asvc *a = ud;
  static a2a_agent_offer own[A2A_MAX_AGENTS];
  json_t *l = json_array();
  char who[IDENT_ID_BUF];
  int n = a2a_agents_for_sale(a->db, own, A2A_MAX_AGENTS);
  ident_id_encode(a->me, who);
  json_t *mine = a2a_agents_to_json(own, n > 0 ? (size_t)n : 0);
  size_t i;
  json_t *x;
  json_array_foreach(mine, i, x) {
    json_object_set_new(x, "node", json_string(who));
    json_object_set_new(x, "self", json_true());
    json_array_append(l, x);
  }
  json_decref(mine);
  for (int k = 0; k < n_provs; k++) {
    ident_id_encode(provs[k].pk, who);
    json_t *theirs = a2a_agents_to_json(provs[k].agents, provs[k].n);
    json_array_foreach(theirs, i, x) {
      json_object_set_new(x, "node", json_string(who));
      json_object_set_new(x, "linked", json_boolean(netsvc_linked(a->ns, provs[k].pk)));
      json_array_append(l, x);
    }
    json_decref(theirs);
  }
  return l;
}

static void on_refresh(uv_timer_t *t) {
  a2asvc *a = t->data;
  a2asvc__publish(a); /* every PUBLISH_MS: republished only when what we sell changed */
  if (++a->refresh_ticks % (REFRESH_MS / PUBLISH_MS)) return;
  for (int i = 0; i < n_provs && !a->closing; i++)
    if (netsvc_linked(a->ns, provs[i].pk)) ask_agents(a, provs[i].pk);
}

/* The delegations recorded as open when the node stopped: taken up again, with no one
 * waiting for the answer (a2a.delegate with the same node_id and id gets it). */
static void resume(a2asvc *a) {
  static a2a_call_row rows[64];
  int n = a2a_calls_list_open(a->db, rows, 64);
  if (n < 0) log_warn("cannot read the delegations in flight: %s", store_errmsg(a->db));
  for (int i = 0; i < n; i++) {
    a2a_call *c = calloc(1, sizeof *c);
    if (!c) {
      a2a_call_row_clear(&rows[i]);
      continue;
    }
    c->a = a;
    c->input = rows[i].input; /* taken */
    rows[i].input = NULL;
    snprintf(c->want, sizeof c->want, "%s", rows[i].agent);
    c->max_wei = rows[i].max_wei;
    c->wait = 1;
    a2a_agent_offer o = {.price_wei = rows[i].cap, .price_1k = rows[i].rate};
    snprintf(o.name, sizeof o.name, "%s", rows[i].agent);
    attempt(c, rows[i].provider, &o, rows[i].id);
    c->sent = c->persisted = 1;
    if ((c->has_chan = rows[i].has_channel)) memcpy(c->chan, rows[i].channel, 32); /* the one the provider holds */
    int64_t left = rows[i].deadline - (int64_t)time(NULL);
    c->deadline = uv_now(a->loop) + (uint64_t)(left > 30 ? left : 30) * 1000;
    c->failover_ms = FAILOVER_S * 1000;
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    c->next = a->calls;
    a->calls = c;
    poll_later(c, 500);
    char who[IDENT_ID_BUF];
    ident_id_encode(c->pk, who);
    log_info("taking up the delegation of %s to %s again", c->agent, who);
    a2a_call_row_clear(&rows[i]);
  }
}

/* a2a.calls {n?} → {calls: [{id, node_id, agent, state, result?, updated}]}: the newest
 * recorded delegation attempts. */
static void c_calls(ctl_req *req, json_t *params, void *ud) {
  a2asvc *a = ud;
  json_t *n = json_object_get(params, "n");
  int cnt = json_is_integer(n) && json_integer_value(n) > 0 && json_integer_value(n) <= 1000 ? (int)json_integer_value(n) : 50;
  ctl_reply_ok(req, json_pack("{s:o}", "calls", a2a_calls_json(a->db, cnt)));
}

int a2asvc__call_start(a2asvc *a) {
  n_provs = 0;
  int rc = netsvc_on_link_ready(a->ns, on_link_ready, a);
  static const struct { const char *m; ctl_method_fn fn; } methods[] = {
      {"a2a.delegate", c_delegate}, {"a2a.get", c_get}, {"a2a.cancel", c_cancel}, {"a2a.known", c_known}, {"a2a.calls", c_calls}};
  for (size_t i = 0; !rc && i < sizeof methods / sizeof *methods; i++) rc = ctl_server_add(a->ctl, methods[i].m, methods[i].fn, a);
  if (rc) return rc;
  uv_timer_init(a->loop, &a->refresh);
  a->refresh.data = a;
  a->has_refresh = 1;
  uv_timer_start(&a->refresh, on_refresh, PUBLISH_MS, PUBLISH_MS);
  resume(a);
  return 0;
}

void a2asvc__call_stop(a2asvc *a) {
  if (a->has_refresh) uv_close((uv_handle_t *)&a->refresh, NULL);
  a->has_refresh = 0;
  for (a2a_call *c = a->calls, *next; c; c = next) {
    next = c->next;
    if (c->req) ctl_reply_err(c->req, CTL_FAILED, "%s", "the node is stopping"); /* recorded ones resume at the next start */
    c->req = NULL;
    c->done = 1;
    uv_timer_stop(&c->timer);
    a2asvc__maybe_free(c);
  }
}
