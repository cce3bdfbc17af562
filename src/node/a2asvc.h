/* node/a2asvc — delegation between owners' agents over the Noise links (the wire format is
 * agent/a2a's; docs/protocol.md "Agent methods", docs/agents.md "Delegation").
 *
 *   provider  (a2asvc.c) the peer methods a2a.message/send, a2a.tasks/get and
 *             a2a.tasks/cancel: a task for one of our agents that is for sale (its
 *             definition's "sell") is queued in the store with its caller's node key
 *             (agent/a2a_task) and run by the agent worker like the owner's tasks; a caller
 *             sees only its own tasks.
 *             It puts the agents we sell in our DHT record (netsvc, key "a") and lists
 *             the ones for sale in market.offers (mktsvc_set_agents_lister).
 *   caller    (a2acall.c) the control method a2a.delegate {node_id?, agent, input, max_wei}:
 *             picks the provider (the given node, or the cheapest offer of that agent name
 *             or skill), sends the task, polls tasks/get until it ends, answers {text,
 *             node_id, wei, state, attempts}; pays at most the advertised price; leaves a
 *             picked provider that goes silent for the next one; records the delegations
 *             in flight (agent/a2a_calls) and takes them up again after a restart. The
 *             agent tool `delegate` and `apiary task delegate` call it.
 *   paying    (a2apay.c) a paid agent's task goes with our channel to the provider (found,
 *             or opened once) and our wallet's proof that it is ours; when it completed
 *             with payment_due, the price is paid with market.pay through
 *             mktsvc_pay_request (market/payflow); `wei` is what our receipts for the
 *             delegation hold.
 * Loop thread only. */
#ifndef APIARY_NODE_A2ASVC_H
#define APIARY_NODE_A2ASVC_H

#include <uv.h>

#include "core/store.h"
#include "node/control.h"
#include "node/mktsvc.h"
#include "node/netsvc.h"
#include "node/paysvc.h"

typedef struct a2asvc a2asvc;

typedef struct a2asvc_opts {
  uv_loop_t *loop;
  store *db;          /* the loop thread's store (borrowed) */
  netsvc *ns;         /* borrowed */
  paysvc *pay;        /* borrowed; may be NULL */
  mktsvc *mkt;        /* borrowed; may be NULL (then paid agents cannot be bought) */
  const char *deposit;/* [market] channel_deposit: what a channel opened for a task locks */
  uint64_t lifetime_s;/* [market] channel_lifetime */
  ctl_server *ctl;    /* borrowed */
  const uint8_t *me;  /* our node key (32 bytes, borrowed) */
  const struct owner_policy *policy; /* [policy] (borrowed; NULL: none): denied nodes' tasks are refused */
} a2asvc_opts;

/* Agents a node's signed DHT record says it sells (node/netdht, key "a"): known for
 * a2a.delegate without a node id until the node's own answer replaces them. */
#include "agent/a2a.h"
void a2asvc_note_record(a2asvc *a, const uint8_t pk[32], const a2a_agent_offer *list, size_t n);

int a2asvc_start(const a2asvc_opts *o, a2asvc **out, char *err, size_t cap);
void a2asvc_stop(a2asvc *a); /* ends delegations in flight (their callers get an error) */
void a2asvc_free(a2asvc *a); /* once libuv is done with it; NULL is a no-op */

#endif
