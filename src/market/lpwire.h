/* market/lpwire — log-probability records (llm/logprob) on the wire: the `lp` field of a
 * provider's `generate` stream chunks (docs/market.md).
 *
 * Each record is [id, logprob, "hex bytes", [[id, logprob, "hex bytes"], ...]]: the token,
 * its log-probability, its piece's bytes and its alternatives, most likely first. The
 * provider sends the records of the tokens whose text is in the same chunk. Untrusted on
 * the buyer's side: mkt_lp_decode checks every cap (records per chunk, alternatives, piece
 * bytes) and that logprobs are numbers <= 0 with the alternatives in order. No I/O, no
 * state; any thread. */
#ifndef APIARY_MARKET_LPWIRE_H
#define APIARY_MARKET_LPWIRE_H

#include <jansson.h>

#include "core/buf.h"
#include "llm/logprob.h"

#define MKT_LP_MAX_RECS 256     /* records in one chunk */
#define MKT_LP_MAX_PIECE 256    /* bytes of one token's piece */

/* The chunk's `lp` array for recs[n] (their bytes in bytes). Returns owned, NULL on OOM. */
json_t *mkt_lp_encode(const logprob_rec *recs, int n, const uint8_t *bytes);
/* Reads an `lp` array into out[cap] (cap >= MKT_LP_MAX_RECS), pieces appended to bytes, with
 * at most max_top alternatives each. Returns the count, or ERR_FORMAT (nothing usable). */
int mkt_lp_decode(const json_t *arr, int max_top, logprob_rec *out, int cap, buf *bytes);

#endif
