/* node/a2asvc — the provider's side of delegation: the peer methods a2a.message/send,
 * a2a.tasks/get and a2a.tasks/cancel (see a2asvc.h; the checks and the JSON are
 * agent/a2a's, the rows agent/a2a_task's). A paid agent's task is taken only with the
 * caller's own channel to us (its channel_sig recovers to the channel's client or signer)
 * and gets a provider receipt in the same commit as its row; the caller pays it with
 * market.pay (node/gensvc → market/payflow) once it completed, and the result is held back
 * until then. Also: the agents we sell into our DHT record (a2asvc__publish) and the
 * agents in the records we look up (on_record). Loop thread. */
#include "node/a2asvc_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/a2a.h"
#include "agent/a2a_task.h"
#include "agent/agent_store.h"
#include "core/err.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "market/receipt.h"
#include "pay/channel.h"
#include "p2p/bencode.h"
#include "p2p/rpc.h"

static void refuse(rpc *r, uint64_t handle, int code, const char *msg, json_t *data /* taken */) {
  rpc_respond_error(r, handle, code, msg, data);
  json_decref(data);
}

/* A paid task's receipt (market/receipt, provider role): request = the task's id, model =
 * a2a_agent_model(agent), no tokens; its amount moves only with the caller's vouchers
 * (market.pay → market/payflow). */
static void task_receipt(const a2asvc *a, const char *agent, const uint8_t rid[16], const uint8_t caller[32],
                         const uint8_t chan[32], mkt_receipt *r) {
  memset(r, 0, sizeof *r);
  r->role = MKT_PROVIDER;
  memcpy(r->request, rid, 16);
  memcpy(r->provider, a->me, 32);
  memcpy(r->client, caller, 32);
  a2a_agent_model(agent, r->model);
  memcpy(r->channel, chan, 32);
  r->has_channel = 1;
  snprintf(r->status, sizeof r->status, "unpaid");
}

/* Answers with the caller's task `local` as an A2A Task. A paid task's result is held back
 * until its receipt holds the price (payment_due). */
static void answer_task(a2asvc *a, rpc *r, uint64_t handle, const uint8_t rid[16], int64_t local, const a2a_price *pr) {
  agent_task t;
  if (agent_task_get(a->db, local, &t)) {
    refuse(r, handle, A2A_E_STORE, "cannot read the task", NULL);
    return;
  }
  /* per task, plus per token when it has a rate (then known once it ended) */
  uint64_t price = pr->rate ? a2a_cost(pr->price, pr->rate, t.tokens, pr->max_wei) : pr->price;
  a2a_task_info info = {.agent = t.agent, .state = a2a_state(t.state), .price_wei = price, .tokens = t.tokens};
  memcpy(info.id, rid, 16);
  if (!strcmp(t.state, AGENT_DONE)) info.text = t.result ? t.result : "";
  if (!strcmp(t.state, AGENT_FAILED)) info.error = t.error ? t.error : "failed";
  mkt_receipt rc;
  if (info.text && price) {
    if (mkt_receipt_get(a->db, MKT_PROVIDER, rid, a->me, &rc) || rc.amount < price) {
      info.text = NULL;
      info.payment_due = 1;
    } else if (strcmp(rc.status, "complete")) {
      snprintf(rc.status, sizeof rc.status, "complete");
      if (mkt_receipt_put(a->db, &rc)) log_warn("cannot mark a task's receipt complete: %s", store_errmsg(a->db));
    }
  }
  json_t *j = a2a_task_json(&info);
  rpc_respond(r, handle, j, NULL, 0);
  json_decref(j);
  agent_task_clear(&t);
}

/* The channel is the caller's own: its proof (channel_sig) recovers to the channel's client
 * or signer as the chain has them. Else a caller could have its task paid — or its price
 * counted — on someone else's channel. 0, ERR_WRONG_SIGNER (no proof, or not the caller's)
 * or an error reading the channel. */
static int channel_is_callers(a2asvc *a, const a2a_send *s, const uint8_t caller[32]) {
  if (!s->has_sig) return ERR_WRONG_SIGNER;
  channel ch;
  int rc = channel_get(a->db, s->channel, &ch);
  if (rc) return rc;
  rc = a2a_channel_proof_check(ch.client, ch.signer, s->channel, caller, a->me, s->channel_sig);
  return rc == ERR_CRYPTO ? ERR_WRONG_SIGNER : rc;
}

/* A paid task needs the caller's own channel to us with room for the price. 0, or refused. */
static int check_channel(a2asvc *a, rpc *r, uint64_t handle, const a2a_send *s, const uint8_t caller[32],
                         uint64_t price) {
  char p[24], msg[300];
  snprintf(p, sizeof p, "%llu", (unsigned long long)price);
  int rc = !a->pay || !paysvc_enabled(a->pay) ? ERR_INVAL
           : !s->has_channel                  ? ERR_NOTFOUND
                                               : paysvc_check_channel(a->pay, s->channel, price);
  int theirs = 0;
  if (!rc && (rc = channel_is_callers(a, s, caller)) == ERR_WRONG_SIGNER) theirs = 1;
  if (!rc) return 0;
  int retry = rc == ERR_UNKNOWN_CHANNEL;
  if (rc == ERR_INVAL) snprintf(msg, sizeof msg, "agent %s costs %s wei per task and this node takes no payments", s->agent, p);
  else if (rc == ERR_NOTFOUND) snprintf(msg, sizeof msg, "agent %s costs %s wei per task: send a payment channel to this node", s->agent, p);
  else if (retry) snprintf(msg, sizeof msg, "looking up your channel on chain: send the task again");
  else if (theirs) snprintf(msg, sizeof msg, "the channel sent with the task is not yours (channel_sig does not recover to its client or signer)");
  else snprintf(msg, sizeof msg, "your channel cannot pay %s wei to this node (%s)", p, err_str(rc));
  if (theirs) {
    char who[IDENT_ID_BUF];
    ident_id_encode(caller, who);
    log_warn("refused a task for agent %s from %s: %s", s->agent, who, msg);
  }
  refuse(r, handle, A2A_E_PAYMENT, msg, json_pack("{s:s, s:b}", "price_wei", p, "retry", retry));
  return -1;
}

static void m_send(void *ud, rpc *r, const rpc_request *req) {
  a2asvc *a = ud;
  uint8_t caller[32];
  if (netsvc_rpc_peer(a->ns, r, caller)) {
    refuse(r, req->handle, RPC_INTERNAL_ERROR, "unknown link", NULL);
    return;
  }
  if (a->policy && !owner_node_allowed(a->policy, caller)) {
    refuse(r, req->handle, A2A_E_NO_AGENT,
           "this node's owner does not sell to your node ([policy] allow_nodes / deny_nodes)", NULL);
    return;
  }
  a2a_send s;
  int code;
  const char *why = a2a_send_parse(req->params, &s, &code);
  if (why) {
    refuse(r, req->handle, code, why, NULL);
    a2a_send_clear(&s);
    return;
  }
  json_t *def = NULL;
  json_t *sell = agent_get(a->db, s.agent, &def) ? NULL : json_object_get(def, "sell");
  if (!json_is_object(sell)) {
    char msg[160];
    snprintf(msg, sizeof msg, "no agent named %s is for sale on this node", s.agent);
    refuse(r, req->handle, A2A_E_NO_AGENT, msg, NULL);
    goto done;
  }
  uint64_t price = (uint64_t)json_integer_value(json_object_get(sell, "price_wei"));
  a2a_price pr = {.rate = (uint64_t)json_integer_value(json_object_get(sell, "price_per_1k")), .max_wei = s.max_wei};
  /* Fault injection for the tests of the caller's cap: a provider that asks more than it
   * advertises and ignores max_wei. Never set in production. */
  const char *fault = getenv("APIARY_FAULT_A2A_PRICE");
  if (fault && *fault) price = strtoull(fault, NULL, 10);
  if (price > s.max_wei && !(fault && *fault)) {
    char msg[200], p[24];
    snprintf(p, sizeof p, "%llu", (unsigned long long)price);
    snprintf(msg, sizeof msg, "agent %s costs %s wei per task, above your max_wei %llu", s.agent, p,
             (unsigned long long)s.max_wei);
    refuse(r, req->handle, A2A_E_PRICE, msg, json_pack("{s:s}", "price_wei", p));
    goto done;
  }
  pr.price = price;
  int64_t local;
  int rc = a2a_task_find(a->db, caller, s.id, &local, &pr); /* a send again: the task's own price */
  int paid = pr.price || pr.rate;
  if (rc == ERR_NOTFOUND) {
    if (paid && check_channel(a, r, req->handle, &s, caller, pr.price ? pr.price : 1)) goto done;
    /* the task and its receipt in one commit: no work without a receipt */
    mkt_receipt rcpt;
    task_receipt(a, s.agent, s.id, caller, s.channel, &rcpt);
    rc = store_begin(a->db);
    if (!rc) rc = a2a_task_add(a->db, s.agent, s.text, caller, s.id, &pr, &local);
    if (!rc && paid) rc = mkt_receipt_put(a->db, &rcpt);
    if (rc) store_rollback(a->db);
    else rc = store_commit(a->db);
    if (!rc) rc = 1; /* new */
  }
  if (rc < 0) {
    log_error("cannot record a task from another node: %s", store_errmsg(a->db));
    refuse(r, req->handle, A2A_E_STORE, "this node cannot record the task; it takes no new work", NULL);
    goto done;
  }
  if (rc == 1) {
    char who[IDENT_ID_BUF];
    ident_id_encode(caller, who);
    log_info("agent %s: task %lld from %s", s.agent, (long long)local, who);
  }
  answer_task(a, r, req->handle, s.id, local, &pr);
done:
  json_decref(def);
  a2a_send_clear(&s);
}

/* The caller's task named by params {id}; answers the error itself when there is none. */
static int find(a2asvc *a, rpc *r, const rpc_request *req, uint8_t rid[16], int64_t *local, a2a_price *price) {
  uint8_t caller[32];
  if (netsvc_rpc_peer(a->ns, r, caller)) {
    refuse(r, req->handle, RPC_INTERNAL_ERROR, "unknown link", NULL);
    return -1;
  }
  if (a2a_id_parse(req->params, rid)) {
    refuse(r, req->handle, RPC_INVALID_PARAMS, "need id: the task's id (32 hex digits)", NULL);
    return -1;
  }
  int rc = a2a_task_find(a->db, caller, rid, local, price);
  if (rc) {
    refuse(r, req->handle, rc == ERR_NOTFOUND ? A2A_E_NOT_FOUND : A2A_E_STORE,
           rc == ERR_NOTFOUND ? "no task of yours with that id" : "cannot read the task", NULL);
    return -1;
  }
  return 0;
}

static void m_get(void *ud, rpc *r, const rpc_request *req) {
  a2asvc *a = ud;
  uint8_t rid[16];
  int64_t local;
  a2a_price price;
  if (find(a, r, req, rid, &local, &price)) return;
  answer_task(a, r, req->handle, rid, local, &price);
}

static void m_cancel(void *ud, rpc *r, const rpc_request *req) {
  a2asvc *a = ud;
  uint8_t rid[16];
  int64_t local;
  a2a_price price;
  if (find(a, r, req, rid, &local, &price)) return;
  int rc = agent_task_cancel(a->db, local);
  if (rc == ERR_INVAL) {
    refuse(r, req->handle, A2A_E_NOT_CANCELABLE, "the task has already ended", NULL);
    return;
  }
  if (rc) {
    refuse(r, req->handle, A2A_E_STORE, "cannot record the cancel", NULL);
    return;
  }
  answer_task(a, r, req->handle, rid, local, &price);
}

static void m_agents(void *ud, rpc *r, const rpc_request *req) {
  a2asvc *a = ud;
  a2a_agent_offer list[A2A_MAX_AGENTS];
  int n = a2a_agents_for_sale(a->db, list, A2A_MAX_AGENTS);
  json_t *res = json_pack("{s:o, s:i}", "agents", a2a_agents_to_json(list, n > 0 ? (size_t)n : 0), "v", 1);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

void a2asvc__publish(a2asvc *a) {
  static a2a_agent_offer list[A2A_MAX_AGENTS];
  int n = a2a_agents_for_sale(a->db, list, A2A_MAX_AGENTS);
  if (n < 0) return;
  uint8_t b[NETSVC_AGENTS_MAX];
  for (size_t k = (size_t)n; k > 0; k--) { /* as many as fit next to the endpoints and offers */
    ben_w w;
    ben_w_init(&w, b, sizeof b);
    a2a_agents_to_ben(&w, list, k);
    int len = ben_w_finish(&w);
    if (len > 0) {
      netsvc_set_record_agents(a->ns, b, (size_t)len);
      return;
    }
  }
  netsvc_set_record_agents(a->ns, NULL, 0);
}

/* A node record we looked up: the agents it says it sells. */
static void on_record(void *ud, const uint8_t pk[32], const ben_node *rec) {
  static a2a_agent_offer list[A2A_MAX_AGENTS];
  size_t n;
  const ben_node *l = ben_dict_get(rec, "a");
  if (l && !a2a_agents_from_ben(l, list, A2A_MAX_AGENTS, &n)) a2asvc_note_record(ud, pk, list, n);
}

int a2asvc_start(const a2asvc_opts *o, a2asvc **out, char *err, size_t cap) {
  a2asvc *a = calloc(1, sizeof *a);
  if (!a) return ERR_NOMEM;
  a->loop = o->loop;
  a->db = o->db;
  a->ns = o->ns;
  a->pay = o->pay;
  a->mkt = o->mkt;
  a->ctl = o->ctl;
  a->lifetime_s = o->lifetime_s;
  if (!o->deposit || channel_amount_parse(o->deposit, &a->deposit)) a->deposit = u256_from_u64(0);
  memcpy(a->me, o->me, 32);
  a->policy = o->policy;
  rpc_method ms[] = {{"a2a.message/send", RPC_PARAMS_OBJECT, m_send, a},
                     {"a2a.tasks/get", RPC_PARAMS_OBJECT, m_get, a},
                     {"a2a.tasks/cancel", RPC_PARAMS_OBJECT, m_cancel, a},
                     {"a2a.agents", RPC_PARAMS_ANY, m_agents, a}};
  int rc = 0;
  for (size_t i = 0; i < sizeof ms / sizeof *ms && !rc; i++) rc = netsvc_register(a->ns, &ms[i]);
  if (!rc) rc = a2asvc__call_start(a);
  if (rc) {
    snprintf(err, cap, "cannot register the agent methods: %s", err_str(rc));
    free(a);
    return rc;
  }
  netsvc_on_record(a->ns, on_record, a);
  if (a->mkt) mktsvc_set_agents_lister(a->mkt, a2asvc__agents_json, a);
  a2asvc__publish(a);
  *out = a;
  return 0;
}

void a2asvc_stop(a2asvc *a) {
  if (!a || a->closing) return;
  a->closing = 1;
  a2asvc__call_stop(a);
}

void a2asvc_free(a2asvc *a) { free(a); }
