/* node/paysvc_impl — what the payment service's files share (paysvc.c: chain jobs, claims,
 * the market's calls, lifecycle; payctl.c: the peer and control methods). Internal to
 * node/paysvc*; loop thread. */
#ifndef APIARY_NODE_PAYSVC_IMPL_H
#define APIARY_NODE_PAYSVC_IMPL_H

#include "node/paysvc.h"
#include "pay/channel.h"

#define JOB_MAX 16          /* channels per claim job */
#define LOOKUPS_MAX 16      /* channel lookups in flight */
#define SEND_RETRIES 20     /* pay.send retries while the provider looks the channel up */
#define SEND_RETRY_MS 250
#define RPC_TIMEOUT_MS 5000

/* JSON-RPC error codes of the peer methods. */
enum { PAY_E_UNKNOWN = -32010 /* channel unknown: looking it up, retry */, PAY_E_REFUSED = -32011,
       PAY_E_DISABLED = -32012 };

struct paysvc {
  uv_loop_t *loop;
  store *db;                  /* borrowed */
  netsvc *ns;                 /* borrowed */
  wallet w;                   /* node wallet (secret; wiped at free) */
  int have_wallet;
  char rpc_url[512];
  uint64_t chain_id;          /* 0: no deployment configured */
  uint8_t escrow[20];
  char escrow_text[64], registry_text[64], governance_text[64];
  u256 threshold;             /* claim when unclaimed >= this */
  uint64_t before_expiry_s, margin_s, interval_s;
  uv_timer_t timer;
  int timer_open;
  int claiming;               /* a claim job is running */
  ctl_req *force_req;         /* pay.claim waiting for the running claim job */
  ctl_req *force_wait;        /* pay.claim that came while an automatic claim ran */
  int offline;                /* the last chain access failed on transport */
  uint8_t lookups[LOOKUPS_MAX][32];
  int n_lookups;
  int pending;                /* jobs and send contexts alive */
  int stopping;
};


uint64_t paysvc__now_s(void);
/* Frees p once it is stopping and nothing is outstanding. */
void paysvc__maybe_free(paysvc *p);
void paysvc__hex0x(const uint8_t *b, size_t n, char *out);
json_t *paysvc__info_json(paysvc *p);
/* Reads channel id from the chain (as role, for peer; answering req when given). */
int paysvc__start_lookup(paysvc *p, const uint8_t id[32], channel_role role, const uint8_t *peer, ctl_req *req);
/* Claims what is due (everything unclaimed when force); the count of channels or an error. */
int paysvc__claim_due(paysvc *p, int force);
/* A pay.claim request: claims now, or after the running claim. */
void paysvc__start_forced(paysvc *p, ctl_req *req);
/* payctl.c: registers the peer and control methods. */
void paysvc__register_methods(paysvc *p, netsvc *ns, ctl_server *ctl);

#endif
