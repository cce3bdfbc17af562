/* node/a2asvc_impl — what a2asvc.c (provider) and a2acall.c (caller) share. Internal to
 * node/a2a*; loop thread. */
#ifndef APIARY_NODE_A2ASVC_IMPL_H
#define APIARY_NODE_A2ASVC_IMPL_H

#include "node/a2asvc.h"

typedef struct a2a_call a2a_call;

struct a2asvc {
  uv_loop_t *loop;
  store *db;
  netsvc *ns;
  paysvc *pay;
  ctl_server *ctl;
  uint8_t me[32];
  a2a_call *calls;      /* delegations in flight (a2acall.c), a list */
  uv_timer_t refresh;   /* asks known nodes for their agents again (a2acall.c) */
  int has_refresh;
  int closing;
};

/* a2acall.c: registers a2a.delegate. */
int a2asvc__call_start(a2asvc *a);
/* Ends every delegation in flight with an error. */
void a2asvc__call_stop(a2asvc *a);

#endif
