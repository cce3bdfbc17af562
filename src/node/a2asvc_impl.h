/* node/a2asvc_impl — what a2asvc.c (provider) and a2acall.c (caller) share. Internal to
 * node/a2a*; loop thread. */
#ifndef APIARY_NODE_A2ASVC_IMPL_H
#define APIARY_NODE_A2ASVC_IMPL_H

#include "agent/a2a.h"
#include "node/a2asvc.h"
#include "privacy/owner.h"
#include "crypto/u256.h"

typedef struct a2a_call a2a_call;

#define A2A_MAX_ATTEMPTS 4 /* providers one delegation tries (failover, a2acall.c) */

/* One provider a delegation tried: its task there and what our receipt for it holds. */
typedef struct a2a_attempt {
  uint8_t pk[32], id[16];
  char state[20];          /* the task's last known A2A state ("" never taken; "lost": gave up on it) */
} a2a_attempt;

/* One delegation in flight (a2acall.c; its payment a2apay.c). */
struct a2a_call {
  a2a_call *next;
  a2asvc *a;
  ctl_req *req;            /* NULL once answered */
  uint8_t pk[32], id[16];  /* the current attempt's provider and task id */
  char agent[64];          /* the current provider's agent name (a skill may pick another per provider) */
  char want[64];           /* what the caller asked for: an agent name or a skill */
  char *input;             /* owned */
  uint64_t max_wei;        /* the caller's budget */
  uint64_t advertised;     /* the agent's price in the offer we chose (has_adv) */
  uint64_t adv_1k;         /* and its price per 1,000 tokens there (0: none) */
  int has_adv;
  int asking_offer;        /* a2a.agents in flight: the advertised price of a named node's agent */
  int auto_pick;           /* the provider came from the offers: another may take over */
  a2a_attempt tried[A2A_MAX_ATTEMPTS];
  int n_tried;
  uint64_t down_since;     /* loop ms the provider stopped answering (0: it answers) */
  uint64_t failover_ms;    /* give up on a provider silent this long (auto_pick only) */
  uint64_t deadline;       /* loop ms */
  uv_timer_t timer;
  uint8_t chan[32];        /* our channel to the provider (has_chan), sent with the task */
  int has_chan;
  int opening;             /* a channel is being opened for it */
  int opened;              /* one was (opened at most once per delegation) */
  int signings;            /* vouchers signed for it (a provider refusing them all ends it) */
  int sent;                /* the provider has the task */
  int done;                /* ended (answered, or given up): no more moves */
  int persisted;           /* the attempt is in a2a_calls (agent/a2a_calls): resumed after a restart */
  int wait;                /* answer only when it ended */
  int rpc_live;            /* a call awaits its reply */
  int closed;              /* the timer is closing/closed */
};

struct a2asvc {
  uv_loop_t *loop;
  store *db;
  netsvc *ns;
  paysvc *pay;
  mktsvc *mkt;          /* pays with market/payflow (may be NULL: no paid delegation) */
  u256 deposit;         /* a channel opened for a paid task locks max(this, price) */
  uint64_t lifetime_s;  /* and lasts this long */
  ctl_server *ctl;
  uint8_t me[32];
  const owner_policy *policy; /* [policy] (NULL: none) */
  a2a_call *calls;      /* delegations in flight (a2acall.c), a list */
  uv_timer_t refresh;   /* asks known nodes for their agents again (a2acall.c) */
  int has_refresh;
  unsigned refresh_ticks; /* PUBLISH_MS ticks of refresh */
  int closing;
};

/* a2asvc.c: puts the agents we sell in our DHT record (at start and every refresh). */
void a2asvc__publish(a2asvc *a);
/* a2acall.c: market.offers' "agents": ours (self: true) and the ones we know of others
 * (node, linked); owned. */
json_t *a2asvc__agents_json(void *a2asvc_ptr);
/* a2acall.c: registers a2a.delegate. */
int a2asvc__call_start(a2asvc *a);
/* Ends every delegation in flight with an error. */
void a2asvc__call_stop(a2asvc *a);

/* a2apay.c (the caller paying for a task):
 * The channel to send a task with: the one our receipt for it names (a delegation taken up
 * again), else an open one to the provider with room for need wei.
 * Sets c->chan; 0 or ERR_NOTFOUND. */
int a2asvc__find_channel(a2a_call *c, uint64_t need);
/* The provider wants price wei and we have no usable channel: opens one (once per
 * delegation); c->step runs again when it is open. 0 (opening), else an error written to
 * why. */
int a2asvc__open_channel(a2a_call *c, uint64_t price, char *why, size_t cap);
/* The task completed, used tokens, and waits for its price: pays what our receipt does not
 * hold yet, when the price is what the offer says for those tokens (within the budget).
 * 0 (paid or paying: ask again), else an error written to why. */
int a2asvc__pay(a2a_call *c, uint64_t price, int64_t tokens, char *why, size_t cap);
/* Our wallet's proof that c->chan is our own, for the provider (a2a_channel_digest). 0,
 * or an error (no wallet). */
int a2asvc__channel_sig(a2a_call *c, uint8_t sig[65]);
/* What our receipt for c's task holds (wei signed for it). */
uint64_t a2asvc__paid(a2a_call *c);
/* The same for any attempt (provider pk, task id). */
uint64_t a2asvc__paid_for(a2asvc *a, const uint8_t pk[32], const uint8_t id[16]);
/* The most a delegation may be asked for one task before it ran: the advertised price per
 * task (when known; with a per-token price, the budget), never more than the budget. */
uint64_t a2asvc__cap(const a2a_call *c);
/* a2acall.c: ends the delegation with an error (answered, recorded). */
void a2asvc__fail(a2a_call *c, const char *msg);
/* a2acall.c: the next move of a delegation; frees it when nothing refers to it. */
void a2asvc__step(a2a_call *c);
void a2asvc__maybe_free(a2a_call *c);

#endif
