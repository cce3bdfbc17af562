/* market/serve — the seller's side of selling generations, as a protocol engine with no
 * I/O (in the manner of p2p/dht and p2p/session): events and time in, actions and a next
 * deadline out. node/gensvc feeds it from the links and the inference worker and carries
 * out its actions; this file decides.
 *
 * One slot per accepted `generate` call. Its life:
 *
 *   admit     a peer's call is checked (request id unused, the offer's max_concurrent,
 *             a free slot); the glue then records the receipt and starts the job, or
 *             aborts the slot when it cannot (nothing is emitted for an aborted slot).
 *   running   the job generates; paid offers get an allowance: the tokens the payments
 *             cover plus [market] credit_tokens (the prompt is on credit). A job at its
 *             allowance waits; waiting longer than pay_timeout since the last payment
 *             stops it ("unpaid tokens passed the credit window", receipt "unpaid").
 *   ended     the job finished (answered), failed, was stopped by its client, or its link
 *             went away: the receipt is written ("complete" when paid in full, else
 *             "partial"/"unpaid") and a paid slot stays until the final payment arrives
 *             (then "complete" and freed) or pay_timeout passes (freed as it is).
 *
 * Payments come in already committed by market/payflow (voucher + receipt amount in one
 * transaction); the engine only tracks what they cover. Actions are queued and read with
 * mkt_serve_poll. Single-threaded: the caller serializes every call (the node's loop). */
#ifndef APIARY_MARKET_SERVE_H
#define APIARY_MARKET_SERVE_H

#include <stdint.h>

#include "llm/local.h"
#include "market/receipt.h"
#include "p2p/rpc.h"

#define MKT_SERVE_SLOTS 64
#define MKT_SERVE_ACTIONS 256

/* `generate`'s own error codes (docs/market.md); the general ones are p2p/rpc's
 * (RPC_BUSY, RPC_INVALID_PARAMS, RPC_INTERNAL_ERROR, RPC_REQUEST_CANCELLED). */
enum {
  MKT_E_NO_MODEL = -32010,
  MKT_E_PRICE = -32013,
  MKT_E_PAYMENT = -32014,
  MKT_E_CHANNEL_RETRY = -32015,
  MKT_E_UNPAID = -32016,
  MKT_E_DISK = -32017,
  MKT_E_DENIED = -32018,      /* the provider's owner does not sell to this node ([policy]) */
};

typedef struct mkt_serve_req {
  uint8_t request[16];         /* the client's request id */
  uint8_t request_hash[32];
  int has_hash;
  uint8_t client[32];          /* the client's node key */
  uint8_t model[32];
  uint64_t link;               /* the glue's name for the link the call came on */
  int has_channel;
  uint8_t channel[32];
  uint64_t price_prompt, price_gen; /* the offer's, per 1k tokens */
  uint32_t max_concurrent;     /* the offer's */
} mkt_serve_req;

typedef enum mkt_serve_act {
  MKT_SV_ALLOW = 1,            /* let the job generate up to `tokens` tokens (-1: no limit) */
  MKT_SV_CANCEL_JOB,           /* stop and release the job */
  MKT_SV_ANSWER,               /* answer the call: the final result (finish, pt, gt, cost) */
  MKT_SV_ERROR,                /* answer the call with code and message */
  MKT_SV_RECEIPT,              /* write `receipt` (status and counts as of now) */
  MKT_SV_FREE,                 /* the slot is forgotten: drop what the glue holds for it */
} mkt_serve_act;

typedef struct mkt_serve_action {
  mkt_serve_act kind;
  int slot;
  int64_t tokens;              /* ALLOW */
  int code;                    /* ERROR */
  const char *data_code;       /* ERROR: an OpenAI error code for the client (static), or NULL */
  char message[120];           /* ERROR; FREE: why, when not paid in full ("" otherwise) */
  mkt_receipt receipt;         /* RECEIPT: the provider's receipt to write (FREE: .request) */
  local_finish finish;         /* ANSWER: finish, */
  int pt, gt;                  /*   token counts, */
  uint64_t cost, price_prompt, price_gen; /* and what they cost (wei) at what prices */
} mkt_serve_action;

typedef struct mkt_serve_slot {
  int used;
  mkt_serve_req req;
  int job;                     /* the job runs (no CANCEL_JOB or end yet) */
  int answered;                /* the call got its answer (or can get none any more) */
  int ended;                   /* the request is over for the client */
  int pt, gt;                  /* prompt and generated tokens so far */
  uint64_t paid;               /* wei credited by payments */
  int64_t allowed;             /* last ALLOW sent (-1: no limit) */
  uint64_t last_paid_ms;       /* the last payment, or the start / the answer */
  uint64_t waiting_since;      /* the job reached its allowance (0: not waiting) */
} mkt_serve_slot;

typedef struct mkt_serve {
  uint8_t me[32];              /* this node's key: the provider in receipts */
  uint32_t credit_tokens;
  uint64_t pay_timeout_ms;
  mkt_serve_slot slots[MKT_SERVE_SLOTS];
  mkt_serve_action q[MKT_SERVE_ACTIONS]; /* ring of pending actions */
  int q_head, q_len;
} mkt_serve;

void mkt_serve_init(mkt_serve *sv, const uint8_t me[32], uint32_t credit_tokens, uint64_t pay_timeout_ms);

/* A `generate` call. 0 and *slot_out, or an error code for the caller to answer with
 * (RPC_INVALID_PARAMS: request id in use; RPC_BUSY: the model's slots or all slots busy) and
 * *why. */
int mkt_serve_admit(mkt_serve *sv, const mkt_serve_req *r, int *slot_out, const char **why);
/* The glue could not record or start it: the slot is freed, nothing emitted. */
void mkt_serve_abort(mkt_serve *sv, int slot);
/* The job runs: emits its first ALLOW. */
void mkt_serve_started(mkt_serve *sv, int slot, uint64_t now_ms);
/* The job's counts so far (the prompt's size is known once tokenized). */
void mkt_serve_progress(mkt_serve *sv, int slot, int prompt_tokens, int gen_tokens, uint64_t now_ms);
/* Streaming to the client failed (the link is full or the call was canceled). */
void mkt_serve_stream_failed(mkt_serve *sv, int slot, uint64_t now_ms);
/* The job ended with finish (and its final counts; error's text and kind for LOCAL_ERROR:
 * a request that cannot fit the context is the client's fault, answered RPC_INVALID_PARAMS
 * with code "context_length_exceeded", not a provider failure; a grammar or conversation
 * the model cannot take likewise, with code "invalid_request"). */
void mkt_serve_job_end(mkt_serve *sv, int slot, local_finish finish, int pt, int gt, const char *error,
                       local_error_kind kind, uint64_t now_ms);
/* A payment for request on channel (already committed) of delta wei. Returns the slot it
 * went to, or -1 when the request is over here (its receipt has it anyway). */
int mkt_serve_paid(mkt_serve *sv, const uint8_t request[16], const uint8_t channel[32], uint64_t delta,
                   uint64_t now_ms);
/* The client asked to stop request. 1 when it was running. */
int mkt_serve_stop(mkt_serve *sv, const uint8_t request[16], const uint8_t client[32], uint64_t now_ms);
/* The link went away: its calls can get no answer and no more payments. */
void mkt_serve_link_closed(mkt_serve *sv, uint64_t link, uint64_t now_ms);
/* Time passes: credit waits and final-payment waits run out. */
void mkt_serve_tick(mkt_serve *sv, uint64_t now_ms);
/* When tick next has something to do (UINT64_MAX: nothing). */
uint64_t mkt_serve_next_deadline(const mkt_serve *sv);
/* The node is stopping: running slots end as "partial" (receipts), all are freed. */
void mkt_serve_shutdown(mkt_serve *sv);

/* Next action: 1 (filled) or 0 (none). */
int mkt_serve_poll(mkt_serve *sv, mkt_serve_action *out);

/* The slot's receipt (provider side) with status, as written at admission. */
void mkt_serve_receipt(const mkt_serve *sv, int slot, const char *status, mkt_receipt *out);
/* What the slot's tokens cost (wei; UINT64_MAX on overflow). */
uint64_t mkt_serve_cost(const mkt_serve *sv, int slot);
/* Running jobs (for max_concurrent and status). */
int mkt_serve_active(const mkt_serve *sv, const uint8_t *model /* NULL: all */);
/* The slot of a request (the running one first), or -1. */
int mkt_serve_find(const mkt_serve *sv, const uint8_t request[16], int running_only);

#endif
