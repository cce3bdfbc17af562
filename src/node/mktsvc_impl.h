/* node/mktsvc_impl — what the buyer's glue files share (mktsvc.c: the engine's actions,
 * calls and entry points; mktpay.c: the payment machinery; mktreg.c: the Registry's
 * chain jobs). Internal to node/mktsvc*; loop thread. */
#ifndef APIARY_NODE_MKTSVC_IMPL_H
#define APIARY_NODE_MKTSVC_IMPL_H

#include <pthread.h>

#include "market/payflow.h"
#include "market/route.h"
#include "node/mktsvc.h"
#include "pay/channel.h"
#include "privacy/owner.h"

#define TIMER_MS 100
#define GEN_TIMEOUT_MS (30 * 60 * 1000)
#define MAX_NAMES 256
#define MAX_WAITING 64
#define MAX_INFLIGHT 64
#define RESEND_MS 2000             /* how often unanswered vouchers are sent again */
#define PAY_TIMEOUT_MS 15000

/* What the glue holds for one of the engine's attempts: the payment state (market/payflow
 * keeps the books; this tracks what is signed and answered) and the receipt's fields. It
 * outlives the engine's interest (DROP) while calls or payments are outstanding. */
typedef struct attempt {
  mktsvc *m;
  uint32_t aid;
  uint8_t pk[32];
  char node_id[IDENT_ID_BUF];
  uint8_t request[16];
  uint8_t model[32];
  uint8_t request_hash[32];
  int has_hash;
  mkt_offer offer;
  uint8_t channel[32];
  int has_channel;
  int pt, gt;             /* prompt (incl. cont) and generated tokens reported */
  uint64_t paid_signed, paid_acked;
  int calls_live;         /* `generate` calls and channel openings outstanding */
  int pays_live;          /* market.pay calls outstanding, or waiting for the channel */
  int paying;             /* one of ours is unanswered: the next waits (payflow, one per channel) */
  int pay_waiting;        /* in m->waiting: the channel has another attempt's voucher out */
  int done;               /* the final answer came */
  int dropped;            /* the engine is done with it */
  char status[16];
  int cap_logged;         /* the spending cap stopped a payment (logged once) */
  struct attempt *next;
} attempt;

/* A request handed over by an HTTP thread (the inbox), admitted on the loop. */
typedef struct submission {
  char spec[256];
  json_t *params;
  int max_tokens;
  uint8_t only[32];
  int has_only;
  mkt_stream *stream;
  struct submission *next;
} submission;

struct mktsvc {
  uv_loop_t *loop;
  mktsvc_agents_fn agents_fn; /* lists the agents for sale in market.offers (may be NULL) */
  void *agents_ud;
  uv_timer_t timer;
  uv_async_t async;
  int handles;
  uint8_t me[32];
  store *db;
  netsvc *ns;
  paysvc *pay;
  gensvc *gen;
  const char *models_dir;
  char wallet_path[1024];
  mkt_route *rt;          /* the buyer's engine (market/route) */
  attempt *attempts;      /* the glue's side of the engine's attempts */
  /* chain */
  char rpc_url[512];
  uint8_t registry[20];
  int registry_on;
  /* settings */
  owner_policy policy;    /* [policy]: nodes we buy from, the daily spending cap */
  u256 deposit;
  uint64_t lifetime_s;
  int pay_every;
  double verify_rate;
  attempt *waiting[MAX_WAITING]; /* attempts with tokens to pay whose channel is busy */
  int n_waiting;
  uint8_t inflight[MAX_INFLIGHT][32]; /* channels with a market.pay call outstanding */
  int n_inflight;
  uint64_t resend_at;     /* next look for unanswered vouchers to send again */
  unsigned resend_round;
  int jobs;               /* thread-pool jobs running */
  /* the HTTP threads' inbox, and what the network offers for GET /v1/models */
  pthread_mutex_t mu;
  char *models_json;      /* under mu: a JSON array of network models */
  submission *inbox;
  int stopped;            /* under mu */
  int closing;
};


uint64_t mktsvc__now_ms(mktsvc *m);
void mktsvc__ignore_reply(void *ud, const rpc_reply *r);
/* Carries out the engine's pending actions. */
void mktsvc__drain(mktsvc *m);
attempt *mktsvc__attempt_of(mktsvc *m, uint32_t aid);
/* Frees a when the engine dropped it and no call or payment is outstanding. */
void mktsvc__maybe_free_attempt(attempt *a);
void mktsvc__client_receipt(mktsvc *m, const attempt *a, mkt_receipt *r);
void mktsvc__write_client_receipt(mktsvc *m, attempt *a);

/* mktpay.c: 1 when paying add more wei keeps within [policy] daily_spend_cap_wei; else 0
 * with why (a read error of the receipts counts as over the cap). */
int mktsvc__spend_ok(mktsvc *m, uint64_t add, char *why, size_t cap);
/* mktpay.c: pays what a's tokens owe (steps of pay_every tokens; all of it when final). */
void mktsvc__maybe_pay(mktsvc *m, attempt *a, int final);
/* Attempts waiting for a channel try again (all when ch is NULL). */
void mktsvc__wake_waiters(mktsvc *m, const uint8_t *ch);
/* Unanswered vouchers go out again (to unlinked providers too when dial). */
void mktsvc__resend_unacked(mktsvc *m, int dial);

/* mktctl.c: asks pk for its offers (the answer goes to the engine and the snapshot). */
void mktsvc__ask_offers(mktsvc *m, const uint8_t pk[32]);
/* A link came up (netsvc's observer). */
void mktsvc__on_link_ready(void *ud, const uint8_t pk[32]);
/* The control methods market.offers and market.receipts. */
void mktsvc__c_offers(ctl_req *req, json_t *params, void *ud);
void mktsvc__c_receipts(ctl_req *req, json_t *params, void *ud);

/* mktreg.c: is sha listed (or, with ensure, list our model)? Answers the engine. */
int mktsvc__reg_start(mktsvc *m, const uint8_t sha[32], int ensure, const char *name, const char *path);
/* Reads the Registry's listing for the engine. */
void mktsvc__list_names(mktsvc *m);

#endif
