/* node/negsvc — negotiation between owners' agents over the Noise links (issue #15; the
 * engine and the documents are agent/neg_*; docs/negotiation.md "On the network",
 * docs/protocol.md "Negotiation methods").
 *
 *   intents   the owner's intent files (agent/neg_owner) in the store (agent/neg_store);
 *             their public part (id, kind, tags) goes in our signed DHT record (key "n")
 *             and the whole public intent (with its terms schema, never the mandate) is
 *             answered to `neg.intents`; we ask every node a link comes up to for its
 *             intents, so `neg.find` can match them by tags.
 *   sessions  (negsvc.c) one agent/neg_engine per session on the loop, woken by a libuv
 *             timer at the action's wake_ms; each side sends its own messages with
 *             `neg.message`; the opener opens with `neg.open` and, on agreement, sends the
 *             deal it signed with `neg.deal`; the responder checks the terms are its own
 *             outcome, stores the deal with both signatures, then countersigns. Session
 *             rows are written as they change; a session does not survive a restart (it
 *             ends as failed). With payments on and a price term, each side also signs the
 *             deal's EIP-712 digest (agent/neg_deal) with its wallet; both wallet
 *             signatures are checked and stored with the deal under "eip712".
 *   control   (negctl.c) neg.intent_add / intent_list / intent_rm, neg.find, neg.start,
 *             neg.list, neg.show.
 * The market honours a deal through agent/neg_store's neg_store_deal_price (node/gensvc,
 * node/mktsvc). Loop thread only. */
#ifndef APIARY_NODE_NEGSVC_H
#define APIARY_NODE_NEGSVC_H

#include <uv.h>

#include "core/store.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "node/control.h"
#include "node/netsvc.h"

typedef struct negsvc negsvc;

typedef struct negsvc_opts {
  uv_loop_t *loop;
  store *db;          /* borrowed */
  netsvc *ns;         /* borrowed */
  ctl_server *ctl;    /* borrowed */
  const ident *id;    /* the node key (borrowed; signs deals) */
  const wallet *w;    /* the node wallet (borrowed; NULL: no payments): signs the EIP-712
                         digest of a deal's payment terms */
  uint64_t chain_id;  /* [chain] chain_id, the EIP-712 domain's */
  const struct owner_policy *policy; /* [policy] (borrowed; NULL: none): denied nodes cannot
                         open a negotiation here; as the seller, no deal below the price floor */
} negsvc_opts;

int negsvc_start(const negsvc_opts *o, negsvc **out, char *err, size_t cap);
void negsvc_stop(negsvc *n);  /* ends sessions in flight (failed), closes timers */
void negsvc_free(negsvc *n);  /* after the loop closed; NULL is a no-op */

#endif
