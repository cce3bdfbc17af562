/* node/negsvc_impl — what negsvc.c (sessions, peer methods) and negctl.c (control,
 * discovery, the record) share. Internal to node/neg*; loop thread. */
#ifndef APIARY_NODE_NEGSVC_IMPL_H
#define APIARY_NODE_NEGSVC_IMPL_H

#include "agent/neg_deal.h"
#include "agent/neg_engine.h"
#include "agent/neg_owner.h"
#include "agent/neg_store.h"
#include "node/negsvc.h"
#include "privacy/owner.h"

/* Errors of the neg.* peer methods (docs/protocol.md). */
enum {
  NEG_E_NO_INTENT = -32060,   /* no intent of that id here */
  NEG_E_MISMATCH = -32061,    /* the intents cannot negotiate (kinds, tags, schemas) */
  NEG_E_NO_SESSION = -32062,  /* no session of yours with that id (or it ended) */
  NEG_E_DEAL = -32063,        /* the deal is not the agreed one, or its signature is bad */
  NEG_E_BUSY = -32064,        /* too many sessions in flight */
  NEG_E_STORE = -32065,       /* this node cannot record it */
};

#define NEGSVC_MAX_SESSIONS 64   /* in flight at once (both roles) */
#define NEGSVC_MAX_PEERS 64      /* nodes whose intents we keep */
#define NEGSVC_PEER_INTENTS 16   /* intents kept per node */

typedef struct neg_sess neg_sess;

/* One session in flight. */
struct neg_sess {
  neg_sess *next;
  negsvc *n;
  uint8_t id[NEG_SESSION_BYTES];
  uint8_t peer[32];
  int opener;
  neg_owner_intent *mine;    /* owned: our intent and mandate */
  neg_engine *eng;           /* owned */
  uint8_t peer_xpk[32];
  neg_session_row row;       /* as stored */
  ctl_req *req;              /* neg.start waiting for the end (NULL: none) */
  neg_deal deal;             /* opener: the deal we signed, awaiting the countersignature */
  int deal_sent;
  uv_timer_t timer;          /* the engine's wake_ms, the idle check, the wait for the deal */
  uint64_t last_ms;          /* loop time of the last message either way */
  int rpc_live;              /* our calls awaiting replies */
  int ended;                 /* nothing more to do but free */
  int closed;                /* the timer is closing */
};

/* A node's public intents as it answered neg.intents. */
typedef struct neg_peer {
  uint8_t pk[32];
  int n;
  char ids[NEGSVC_PEER_INTENTS][NEG_MAX_NAME];
  neg_intent intents[NEGSVC_PEER_INTENTS];
} neg_peer;

struct negsvc {
  uv_loop_t *loop;
  store *db;
  netsvc *ns;
  ctl_server *ctl;
  const ident *id;
  const wallet *w;           /* NULL: no wallet signatures */
  uint64_t chain_id;
  const owner_policy *policy; /* [policy] (NULL: none) */
  neg_seal_keys keys;        /* ours, to open sealed values (wiped at free) */
  neg_sess *sessions;
  int n_sessions;
  neg_peer *peers;           /* NEGSVC_MAX_PEERS (negctl.c) */
  int n_peers;
  uv_timer_t refresh;
  int has_refresh;
  int closing;
};

/* negsvc.c */
int negsvc__sess_register(negsvc *n);
/* Starts a session as the opener with our intent mine (taken) and the peer's intent
 * peer_intent; req (may be NULL) gets the outcome when it ends. 0 with the session id
 * (hex) in id_out, or an error written to why. */
int negsvc__open(negsvc *n, const uint8_t peer[32], neg_owner_intent *mine, const char *peer_intent, ctl_req *req,
                 char id_out[33], char *why, size_t cap);
void negsvc__sess_stop(negsvc *n);
/* Our intents' public parts (owned array). */
json_t *negsvc__public_intents(negsvc *n);
/* Session id (hex) as the owner sees it: the row and its deal (owned; JSON null if none). */
json_t *negsvc__session_json(negsvc *n, const char *id);
/* An intent of ours by id, parsed (owned, free()), or NULL. */
neg_owner_intent *negsvc__load_intent(negsvc *n, const char *id);

/* negctl.c */
int negsvc__ctl_register(negsvc *n);
/* Puts our intents in the node record again (after a change). */
void negsvc__publish(negsvc *n);
/* The intents we know of node pk (NULL: none). */
const neg_peer *negsvc__peer(negsvc *n, const uint8_t pk[32]);
void negsvc__ctl_stop(negsvc *n);

#endif
