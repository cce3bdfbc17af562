/* agent/a2a_task — tasks other nodes gave to this node's agents (the provider's side of
 * delegation). They are ordinary agent tasks (agent/agent_store: run by the same worker,
 * resumed after a crash) with three more columns on agent_tasks (a2a_schema_v1, a NEW
 * migration after agent_schema_v1):
 *
 *   caller     the node key (32 bytes) of the node that sent the task; NULL for the owner's
 *   remote_id  the task's id on the wire: the 16-byte messageId the caller chose; unique
 *              per caller, so a send repeated after a lost answer is the same task
 *   price      wei the caller pays for it, fixed by the agent's "sell" price when accepted
 *   rate, max_wei  (a2a_schema_v2) and per 1,000 tokens the task uses, never more in all
 *              than the caller's max_wei: a2a_cost(price, rate, tokens, max_wei)
 *
 * A caller only ever finds its own tasks: every lookup is by (caller, remote_id). Thread:
 * the store handle's. */
#ifndef APIARY_AGENT_A2A_TASK_H
#define APIARY_AGENT_A2A_TASK_H

#include <stdint.h>

#include "core/store.h"

extern const char a2a_schema_v1[];
extern const char a2a_schema_v2[];

/* What a task costs its caller (fixed when it was accepted). */
typedef struct a2a_price {
  uint64_t price;     /* wei per task */
  uint64_t rate;      /* wei per 1,000 tokens the task uses */
  uint64_t max_wei;   /* the caller's budget: never more in all */
} a2a_price;

/* Queues a task for agent from caller. 0 with *id_out the new task, ERR_EXISTS with *id_out
 * the task this caller already sent under remote_id, or ERR_STORE. */
int a2a_task_add(store *s, const char *agent, const char *input, const uint8_t caller[32], const uint8_t remote_id[16],
                 const a2a_price *price, int64_t *id_out);
/* The local id of caller's task remote_id, and its price (price_out may be NULL). 0,
 * ERR_NOTFOUND or ERR_STORE. */
int a2a_task_find(store *s, const uint8_t caller[32], const uint8_t remote_id[16], int64_t *id_out,
                  a2a_price *price_out);

/* Our agents whose definition says "sell" (at most A2A_MAX_AGENTS, by name). Count or
 * ERR_STORE. */
#include "agent/a2a.h"
int a2a_agents_for_sale(store *s, a2a_agent_offer *out, size_t cap);

#endif
