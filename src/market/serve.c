/* market/serve — the seller's engine; see serve.h. */
#include "market/serve.h"

#include <stdio.h>
#include <string.h>

#include "market/offer.h"

void mkt_serve_init(mkt_serve *sv, const uint8_t me[32], uint32_t credit_tokens, uint64_t pay_timeout_ms) {
  memset(sv, 0, sizeof *sv);
  memcpy(sv->me, me, 32);
  sv->credit_tokens = credit_tokens;
  sv->pay_timeout_ms = pay_timeout_ms;
}

static mkt_serve_action *push(mkt_serve *sv, mkt_serve_act kind, int slot) {
  if (sv->q_len >= MKT_SERVE_ACTIONS) return NULL; /* the glue drains after every call: cannot happen */
  mkt_serve_action *a = &sv->q[(sv->q_head + sv->q_len++) % MKT_SERVE_ACTIONS];
  memset(a, 0, sizeof *a);
  a->kind = kind;
  a->slot = slot;
  return a;
}

int mkt_serve_poll(mkt_serve *sv, mkt_serve_action *out) {
  if (!sv->q_len) return 0;
  *out = sv->q[sv->q_head];
  sv->q_head = (sv->q_head + 1) % MKT_SERVE_ACTIONS;
  sv->q_len--;
  return 1;
}

static int priced(const mkt_serve_slot *s) { return s->req.price_prompt || s->req.price_gen; }

uint64_t mkt_serve_cost(const mkt_serve *sv, int slot) {
  const mkt_serve_slot *s = &sv->slots[slot];
  uint64_t c = 0;
  if (mkt_cost((uint64_t)s->pt, (uint64_t)s->gt, s->req.price_prompt, s->req.price_gen, &c)) c = UINT64_MAX;
  return c;
}

int mkt_serve_find(const mkt_serve *sv, const uint8_t request[16], int running_only) {
  int old = -1;
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    const mkt_serve_slot *s = &sv->slots[i];
    if (!s->used || memcmp(s->req.request, request, 16)) continue;
    if (!s->ended) return i;
    old = i;
  }
  return running_only ? -1 : old;
}

int mkt_serve_active(const mkt_serve *sv, const uint8_t *model) {
  int n = 0;
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    const mkt_serve_slot *s = &sv->slots[i];
    if (s->used && s->job && (!model || !memcmp(s->req.model, model, 32))) n++;
  }
  return n;
}

int mkt_serve_admit(mkt_serve *sv, const mkt_serve_req *r, int *slot_out, const char **why) {
  if (mkt_serve_find(sv, r->request, 1) >= 0) {
    *why = "request id already in use";
    return RPC_INVALID_PARAMS;
  }
  if (mkt_serve_active(sv, r->model) >= (int)r->max_concurrent) {
    *why = "all slots for this model are busy";
    return RPC_BUSY;
  }
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    mkt_serve_slot *s = &sv->slots[i];
    if (s->used) continue;
    memset(s, 0, sizeof *s);
    s->used = 1;
    s->req = *r;
    s->job = 1; /* counts against max_concurrent from now */
    s->allowed = -2; /* nothing sent yet */
    *slot_out = i;
    return 0;
  }
  *why = "too many generations in progress";
  return RPC_BUSY;
}

void mkt_serve_abort(mkt_serve *sv, int slot) { memset(&sv->slots[slot], 0, sizeof sv->slots[slot]); }

/* How many tokens the job may generate: what is paid plus the credit window. */
static void update_allowance(mkt_serve *sv, int slot) {
  mkt_serve_slot *s = &sv->slots[slot];
  if (!s->job) return;
  int64_t allow = -1;
  if (priced(s)) {
    int64_t covered = s->pt ? mkt_tokens_covered((uint64_t)s->pt, s->paid, s->req.price_prompt, s->req.price_gen) : -1;
    allow = (covered < 0 ? 0 : covered) + (int64_t)sv->credit_tokens;
  }
  if (allow == s->allowed) return;
  s->allowed = allow;
  mkt_serve_action *a = push(sv, MKT_SV_ALLOW, slot);
  if (a) a->tokens = allow;
}

static void error_answer(mkt_serve *sv, int slot, int code, const char *msg, const char *data_code) {
  mkt_serve_slot *s = &sv->slots[slot];
  if (s->answered) return;
  s->answered = 1;
  mkt_serve_action *a = push(sv, MKT_SV_ERROR, slot);
  if (!a) return;
  a->code = code;
  a->data_code = data_code;
  snprintf(a->message, sizeof a->message, "%s", msg);
}

static void receipt_action(mkt_serve *sv, int slot, const char *status) {
  mkt_serve_action *a = push(sv, MKT_SV_RECEIPT, slot);
  if (a) mkt_serve_receipt(sv, slot, status, &a->receipt);
}

static void free_slot(mkt_serve *sv, int slot, const char *why) {
  mkt_serve_action *a = push(sv, MKT_SV_FREE, slot);
  if (a) memcpy(a->receipt.request, sv->slots[slot].req.request, 16); /* for the caller's log */
  if (a && why) snprintf(a->message, sizeof a->message, "%s", why);
  memset(&sv->slots[slot], 0, sizeof sv->slots[slot]);
}

/* The request is over for the client: record it; a paid slot stays until paid in full
 * (or the pay timeout). */
static void settle(mkt_serve *sv, int slot, const char *status) {
  mkt_serve_slot *s = &sv->slots[slot];
  s->ended = 1;
  if (s->job) {
    s->job = 0;
    push(sv, MKT_SV_CANCEL_JOB, slot);
  }
  int full = s->paid >= mkt_serve_cost(sv, slot);
  receipt_action(sv, slot, full ? "complete" : status);
  if (full || !priced(s)) free_slot(sv, slot, NULL);
}

void mkt_serve_started(mkt_serve *sv, int slot, uint64_t now_ms) {
  mkt_serve_slot *s = &sv->slots[slot];
  s->last_paid_ms = now_ms;
  update_allowance(sv, slot);
}

void mkt_serve_progress(mkt_serve *sv, int slot, int prompt_tokens, int gen_tokens, uint64_t now_ms) {
  mkt_serve_slot *s = &sv->slots[slot];
  if (!s->used || s->ended) return;
  s->gt = gen_tokens;
  if (prompt_tokens != s->pt) {
    s->pt = prompt_tokens;
    update_allowance(sv, slot);
  }
  int waiting = s->job && s->allowed >= 0 && s->gt >= s->allowed;
  if (!waiting) s->waiting_since = 0;
  else if (!s->waiting_since) s->waiting_since = now_ms ? now_ms : 1;
}

void mkt_serve_stream_failed(mkt_serve *sv, int slot, uint64_t now_ms) {
  (void)now_ms;
  mkt_serve_slot *s = &sv->slots[slot];
  if (!s->used || s->ended) return;
  s->answered = 1; /* canceled by the caller, or the link is full: no answer goes out */
  settle(sv, slot, "partial");
}

void mkt_serve_job_end(mkt_serve *sv, int slot, local_finish finish, int pt, int gt, const char *error,
                       local_error_kind kind, uint64_t now_ms) {
  mkt_serve_slot *s = &sv->slots[slot];
  if (!s->used || s->ended) return;
  s->job = 0; /* it ended by itself */
  s->pt = pt;
  s->gt = gt;
  if (finish == LOCAL_ERROR && (kind == LOCAL_E_CONTEXT || kind == LOCAL_E_REQUEST)) {
    error_answer(sv, slot, RPC_INVALID_PARAMS, error ? error : "the prompt does not fit the context",
                 kind == LOCAL_E_CONTEXT ? "context_length_exceeded" : "invalid_request");
    settle(sv, slot, "partial");
    return;
  }
  if (finish == LOCAL_ERROR || finish == LOCAL_CANCELED) {
    error_answer(sv, slot, finish == LOCAL_ERROR ? RPC_INTERNAL_ERROR : RPC_REQUEST_CANCELLED,
                 finish == LOCAL_ERROR && error ? error : "canceled", NULL);
    settle(sv, slot, "partial");
    return;
  }
  if (!s->answered) {
    s->answered = 1;
    mkt_serve_action *a = push(sv, MKT_SV_ANSWER, slot);
    if (a) {
      a->finish = finish;
      a->pt = s->pt;
      a->gt = s->gt;
      a->cost = mkt_serve_cost(sv, slot);
      a->price_prompt = s->req.price_prompt;
      a->price_gen = s->req.price_gen;
    }
  }
  s->last_paid_ms = now_ms; /* the final payment is due from now */
  settle(sv, slot, "unpaid");
}

int mkt_serve_paid(mkt_serve *sv, const uint8_t request[16], const uint8_t channel[32], uint64_t delta,
                   uint64_t now_ms) {
  int slot = mkt_serve_find(sv, request, 0);
  if (slot < 0) return -1;
  mkt_serve_slot *s = &sv->slots[slot];
  if (!s->req.has_channel || memcmp(s->req.channel, channel, 32)) return -1;
  s->paid = delta > UINT64_MAX - s->paid ? UINT64_MAX : s->paid + delta;
  s->last_paid_ms = now_ms;
  update_allowance(sv, slot);
  if (s->gt < s->allowed) s->waiting_since = 0;
  if (s->ended) settle(sv, slot, "unpaid"); /* "complete" and freed once paid in full */
  return slot;
}

int mkt_serve_stop(mkt_serve *sv, const uint8_t request[16], const uint8_t client[32], uint64_t now_ms) {
  (void)now_ms;
  int slot = mkt_serve_find(sv, request, 1);
  if (slot < 0 || memcmp(sv->slots[slot].req.client, client, 32)) return 0;
  error_answer(sv, slot, RPC_REQUEST_CANCELLED, "stopped by the client", NULL);
  settle(sv, slot, "partial");
  return 1;
}

void mkt_serve_link_closed(mkt_serve *sv, uint64_t link, uint64_t now_ms) {
  (void)now_ms;
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    mkt_serve_slot *s = &sv->slots[i];
    if (!s->used || s->req.link != link) continue;
    s->answered = 1; /* no answer can go out on it */
    if (!s->ended) settle(sv, i, "partial");
    else free_slot(sv, i, "the link closed before the final payment");
  }
}

void mkt_serve_tick(mkt_serve *sv, uint64_t now_ms) {
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    mkt_serve_slot *s = &sv->slots[i];
    if (!s->used) continue;
    if (s->ended) { /* waiting for the final payment */
      if (now_ms - s->last_paid_ms > sv->pay_timeout_ms) {
        char why[120];
        snprintf(why, sizeof why, "unpaid after the answer (%llu of %llu wei)", (unsigned long long)s->paid,
                 (unsigned long long)mkt_serve_cost(sv, i));
        free_slot(sv, i, why);
      }
      continue;
    }
    if (s->waiting_since && now_ms - s->waiting_since > sv->pay_timeout_ms &&
        now_ms - s->last_paid_ms > sv->pay_timeout_ms) {
      error_answer(sv, i, MKT_E_UNPAID, "unpaid tokens passed the credit window", NULL);
      settle(sv, i, "unpaid");
    }
  }
}

uint64_t mkt_serve_next_deadline(const mkt_serve *sv) {
  uint64_t next = UINT64_MAX;
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    const mkt_serve_slot *s = &sv->slots[i];
    uint64_t at = UINT64_MAX;
    if (!s->used) continue;
    if (s->ended) at = s->last_paid_ms + sv->pay_timeout_ms + 1;
    else if (s->waiting_since)
      at = (s->waiting_since > s->last_paid_ms ? s->waiting_since : s->last_paid_ms) + sv->pay_timeout_ms + 1;
    if (at < next) next = at;
  }
  return next;
}

void mkt_serve_shutdown(mkt_serve *sv) {
  for (int i = 0; i < MKT_SERVE_SLOTS; i++) {
    mkt_serve_slot *s = &sv->slots[i];
    if (!s->used) continue;
    if (!s->ended) receipt_action(sv, i, "partial");
    if (s->job) push(sv, MKT_SV_CANCEL_JOB, i);
    s->job = 0;
    free_slot(sv, i, NULL);
  }
}

void mkt_serve_receipt(const mkt_serve *sv, int slot, const char *status, mkt_receipt *r) {
  const mkt_serve_slot *s = &sv->slots[slot];
  memset(r, 0, sizeof *r);
  r->role = MKT_PROVIDER;
  memcpy(r->request, s->req.request, 16);
  memcpy(r->request_hash, s->req.request_hash, 32);
  r->has_request_hash = s->req.has_hash;
  memcpy(r->provider, sv->me, 32);
  memcpy(r->client, s->req.client, 32);
  memcpy(r->model, s->req.model, 32);
  if (s->req.has_channel) memcpy(r->channel, s->req.channel, 32), r->has_channel = 1;
  r->prompt_tokens = (uint64_t)s->pt;
  r->gen_tokens = (uint64_t)s->gt;
  r->price_prompt = s->req.price_prompt;
  r->price_gen = s->req.price_gen;
  snprintf(r->status, sizeof r->status, "%s", status);
}
