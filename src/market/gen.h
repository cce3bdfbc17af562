/* market/gen — "generate this request": the one path every generation takes.
 *
 * The HTTP API, `apiary ask`, and later agents, MCP tools and pipeline stages call
 * gen_submit with a model (a name from the store, the catalog or the Registry, or a
 * sha256) and a parsed request (llm/local's local_req). gen decides, in this one place:
 *
 *   1. the policy: the privacy level (privacy/policy: the strictest of the node's,
 *      gen_opts.privacy, and the request's, local_req.privacy, which its caller set from
 *      the token, the agent and the request). local-only and a model not on this node: 403
 *      "privacy_local_only", nothing is sent. redact and a bought generation: every text of
 *      the request is redacted (privacy/redact_req) before it goes to the router, and the
 *      answer read through gen_read has the placeholders restored (streamed too). Local
 *      generations are never redacted: nothing leaves. Then a hook the node may set
 *      (gen_set_policy) sees the request and where it would run, and may refuse it.
 *   2. local or network: a model in this node's store runs on its own worker
 *      (llm/local) unless the caller names a provider; anything else is bought from the
 *      network through the hook the node sets (gen_opts.network: node/mktsvc), or is a 404.
 *      Embeddings (local_req.n_embed > 0) run on local models only: others are a 404.
 *   3. one stream type for both: gen_stream, read as text arrives, waited on for the end.
 *
 * Thread-safety: gen_submit, gen_shutdown and every gen_stream function may be called from
 * any thread (the HTTP threads, the loop); a stream is used by one thread at a time. The
 * policy is set before anyone submits. */
#ifndef APIARY_MARKET_GEN_H
#define APIARY_MARKET_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "llm/local.h"
#include "market/stream.h"

typedef struct gen gen;
typedef struct gen_stream gen_stream;

/* Buys a generation from the network: the node's router (node/mktsvc). only: a provider
 * node key to buy from (NULL: the best one). Takes lr's owned fields; *out is a stream
 * reference the caller drops. Any thread. */
typedef int (*gen_network_fn)(void *ud, const char *model, const uint8_t *only, local_req *lr, mkt_stream **out);

/* Where a request would run. */
typedef enum gen_where { GEN_LOCAL = 1, GEN_NETWORK = 2 } gen_where;

/* The policy hook: 0 lets the request run where it would; a nonzero return refuses it
 * with the message written to why (an HTTP status: 403 when not allowed at all). */
typedef int (*gen_policy_fn)(void *ud, const char *model, gen_where where, const local_req *lr, char *why,
                             size_t cap);

typedef struct gen_opts {
  const char *models_dir;   /* borrowed: the model store */
  local_svc *local;         /* borrowed: this node's worker (NULL: no local models) */
  gen_network_fn network;   /* NULL: nothing is bought */
  void *network_ud;
  const char *self_id;      /* this node's id, reported as the provider of local answers */
  int max_live;             /* generations at once (running or waiting); more get 429 (0: no limit) */
  int privacy;              /* the node's privacy level ([privacy] default; privacy/policy) */
} gen_opts;

typedef struct gen_request {
  const char *model;        /* name or sha256 (borrowed) */
  const uint8_t *only;      /* buy from this provider only (32-byte node key), or NULL */
} gen_request;

/* Why a submission was refused: an HTTP status, an OpenAI-style code and a message. */
typedef struct gen_error {
  int status;               /* 404 unknown model, 403 refused by policy, 429 too many at once,
                               503 cannot queue */
  const char *code;         /* "model_not_found", "policy", "privacy_local_only",
                               "privacy_redact_failed", "rate_limit_exceeded", "overloaded" */
  char message[720];
} gen_error;

int gen_new(const gen_opts *o, gen **out);
void gen_free(gen *g); /* NULL ok; after every stream is released */
/* Cancels every live stream (their readers wake at once) and refuses new submissions:
 * the first step of a node's shutdown, so no HTTP thread waits on a generation. */
void gen_shutdown(gen *g);
/* Streams not released yet: the generations in progress. */
int gen_n_live(gen *g);
/* Sets the policy hook (NULL: allow everything). Before the first submission. */
void gen_set_policy(gen *g, gen_policy_fn fn, void *ud);

/* Starts a generation. Takes lr's owned fields in every case. On success *out is the
 * stream (gen_release it) and name_out the model's display name; else e says why. */
int gen_submit(gen *g, const gen_request *r, local_req *lr, gen_stream **out, char *name_out, size_t name_cap,
               gen_error *e);

/* The stream. read: bytes (> 0), 0 at the end with all text read, ERR_INVAL when it ended
 * in an error (see wait), -ETIMEDOUT when nothing came within timeout_ms. A redacted
 * request's text comes restored (a placeholder split across chunks is held back until it
 * is whole); its log-probability records keep the provider's pieces (placeholders). */
int gen_read(gen_stream *s, char *buf, size_t cap, int timeout_ms);
/* Log-probability records whose text has been read (llm/local's local_job_read_logprobs, or
 * the provider's, carried in its chunks): the count (0: none now) or ERR_NOMEM. A prompt's
 * records (echo) only come from local generations: gen_submit refuses them for a model it
 * would buy. */
int gen_read_logprobs(gen_stream *s, logprob_rec *out, int cap, buf *bytes);
/* Waits for the end: 0 and r filled (finish, token counts, error, providers, cost), or
 * -ETIMEDOUT. Local answers name this node as the provider, at no cost. */
int gen_wait(gen_stream *s, int timeout_ms, mkt_result *r);
/* Waits until a provider is chosen or text came (local: at once). 0 or -ETIMEDOUT;
 * node_id gets the provider ("" before one is chosen). */
int gen_wait_started(gen_stream *s, int timeout_ms, char node_id[MKT_NODE_ID_MAX]);
/* The ended stream's error, when it failed before producing anything (0 otherwise). */
int gen_failed_early(gen_stream *s);
/* The provider producing text now. */
void gen_node(gen_stream *s, char node_id[MKT_NODE_ID_MAX]);
int gen_is_remote(const gen_stream *s);
/* Values the request's redaction replaced (0: not redacted). */
int gen_n_redacted(const gen_stream *s);
/* An ended embeddings request's vectors (lr->n_embed > 0; local models only: gen_submit
 * refuses others with a 404): see local_job_embeddings. */
int gen_embeddings(gen_stream *s, const float **out, int *dim);
/* Calls fn(ud) whenever the stream has news (a provider chosen, the end, and with text set
 * each piece of text too: a reader that waits for the end alone is not woken per token), from the
 * producer's thread (the local worker, the node's loop) with a lock held: fn must be cheap,
 * thread-safe and must not call back into this stream (e.g. MHD_resume_connection, so a
 * suspended HTTP connection waits on no thread). fn NULL: none. Returns the previous ud;
 * once it returns, the previous fn is not running and will not be called again. A stream
 * that cannot notify (a local one whose caller set local_req.notify, or out of memory at
 * submission) takes no hook and returns ud itself. */
void *gen_set_notify(gen_stream *s, void (*fn)(void *ud), void *ud, int text);
void gen_cancel(gen_stream *s);       /* stops the generation (and its payments) */
void gen_release(gen_stream *s);      /* NULL ok */

#endif
