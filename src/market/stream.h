/* market/stream — the text of a generation served by other nodes, handed from the node's
 * loop thread (producer: the router) to a consumer on another thread (an HTTP connection).
 *
 * Reference-counted (the creator holds one reference; mkt_stream_ref adds one). The
 * consumer reads text as it arrives and waits for the end; it may cancel, which ends the
 * stream for the consumer at once (finish LOCAL_CANCELED; a later finish is ignored) and
 * calls the producer's cancel hook (on the consumer's thread: the hook must be thread-safe, e.g.
 * uv_async_send). Every function is thread-safe. */
#ifndef APIARY_MARKET_STREAM_H
#define APIARY_MARKET_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "llm/local.h"
#include "llm/logprob.h"

#define MKT_NODE_ID_MAX 64
#define MKT_MAX_PROVIDERS 8

typedef struct mkt_result {
  local_finish finish;
  int prompt_tokens, completion_tokens;   /* the whole answer: original prompt, all generated */
  char error[720];
  int http_status;                        /* for errors: the HTTP status to answer (0 = 500) */
  const char *code;                       /* for errors: an OpenAI error code (static), or NULL */
  char node_id[MKT_NODE_ID_MAX];          /* the provider that produced the last tokens */
  int n_providers;                        /* providers that produced tokens, in order */
  char providers[MKT_MAX_PROVIDERS][MKT_NODE_ID_MAX];
  uint64_t cost_wei;                      /* paid for this answer, all providers */
  int failovers;
} mkt_result;

typedef struct mkt_stream mkt_stream;

mkt_stream *mkt_stream_new(void); /* NULL on OOM; one reference */
void mkt_stream_ref(mkt_stream *s);
void mkt_stream_unref(mkt_stream *s); /* NULL ok */

/* Producer side. */
int mkt_stream_push(mkt_stream *s, const char *text, size_t len); /* 0 or ERR_NOMEM */
/* Log-probability records (recs[n], pieces in bytes) of the text pushed so far and the
 * next text_to_come bytes (pushed next: a chunk's records go first, so a reader never takes
 * its text without them): the consumer gets them once it has read that text. 0 or
 * ERR_NOMEM. */
int mkt_stream_push_logprobs(mkt_stream *s, const logprob_rec *recs, int n, const uint8_t *bytes, size_t text_to_come);
void mkt_stream_set_node(mkt_stream *s, const char *node_id);   /* the provider chosen (first sets "started") */
void mkt_stream_finish(mkt_stream *s, const mkt_result *r);      /* once */
void mkt_stream_on_cancel(mkt_stream *s, void (*fn)(void *ud), void *ud);
int mkt_stream_canceled(mkt_stream *s);
/* Calls fn(ud) whenever the consumer has news (a provider chosen, the end, a cancel, and
 * with text set also text and records), on the producer's thread with the stream's lock
 * held: fn must be cheap, thread-safe and must not call back into this stream (e.g.
 * MHD_resume_connection). fn NULL: none. Returns the previous ud; once it returns, the
 * previous fn is not running. */
void *mkt_stream_on_notify(mkt_stream *s, void (*fn)(void *ud), void *ud, int text);
int mkt_stream_done(mkt_stream *s);

/* Consumer side. read: bytes (> 0), 0 when finished and all text read, ERR_INVAL when it
 * ended in an error (see wait), -ETIMEDOUT when nothing came within timeout_ms. */
int mkt_stream_read(mkt_stream *s, char *buf, size_t cap, int timeout_ms);
int mkt_stream_wait(mkt_stream *s, int timeout_ms, mkt_result *r); /* 0 or -ETIMEDOUT */
/* Copies up to cap records whose text has been read into out, pieces appended to bytes.
 * The count, or ERR_NOMEM. */
int mkt_stream_read_logprobs(mkt_stream *s, logprob_rec *out, int cap, buf *bytes);
/* Waits until a provider is chosen, text arrived, or the end. Copies the node id (may be
 * ""). 0 or -ETIMEDOUT. */
int mkt_stream_wait_started(mkt_stream *s, int timeout_ms, char node_id[MKT_NODE_ID_MAX]);
void mkt_stream_cancel(mkt_stream *s);
/* The provider producing tokens now (after a failover: the new one). */
void mkt_stream_node(mkt_stream *s, char node_id[MKT_NODE_ID_MAX]);

#endif
