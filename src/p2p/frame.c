/* p2p/frame — length-prefixed frame decoder; see frame.h. */
#include "p2p/frame.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"

#define KEEP_MAX (64 * 1024) /* body storage kept between frames, at most */

int frame_dec_init(frame_dec *d, unsigned prefix, size_t min_len, size_t max_len) {
  memset(d, 0, sizeof *d);
  if ((prefix != 2 && prefix != 4) || min_len > max_len) return ERR_INVAL;
  if (prefix == 2 && max_len > 65535) return ERR_INVAL;
  d->prefix = prefix;
  d->min_len = min_len;
  d->max_len = max_len;
  return 0;
}

void frame_dec_deinit(frame_dec *d) {
  free(d->body);
  memset(d, 0, sizeof *d);
}

size_t frame_dec_buffered(const frame_dec *d) { return d->hdr_have + d->have; }

void frame_put_len(uint8_t *out, unsigned prefix, size_t len) {
  for (unsigned i = 0; i < prefix; i++) out[i] = (uint8_t)(len >> (8 * (prefix - 1 - i)));
}

/* Makes room for need body bytes (need <= want). Geometric growth capped at want, so the
 * storage never exceeds twice what arrived (plus 4 KiB) nor the announced length. */
static int reserve(frame_dec *d, size_t need) {
  if (need <= d->cap) return 0;
  size_t ncap = d->cap ? d->cap * 2 : 4096;
  if (ncap < need) ncap = need;
  if (ncap > d->want) ncap = d->want;
  uint8_t *p = realloc(d->body, ncap);
  if (!p) return ERR_NOMEM;
  d->body = p;
  d->cap = ncap;
  return 0;
}

int frame_dec_feed(frame_dec *d, const uint8_t *data, size_t len, size_t *consumed_out,
                   const uint8_t **frame_out, size_t *frame_len_out) {
  size_t used = 0;
  *consumed_out = 0;
  *frame_out = NULL;
  *frame_len_out = 0;
  if (d->err) return d->err;
  if (d->ready) { /* the previous frame was handed out: start the next one */
    d->ready = 0;
    d->hdr_have = 0;
    d->have = 0;
    d->want = 0;
    if (d->cap > KEEP_MAX) { /* do not keep a 1 MiB buffer around for small frames */
      free(d->body);
      d->body = NULL;
      d->cap = 0;
    }
  }
  while (d->hdr_have < d->prefix) {
    if (used == len) return 0;
    d->hdr[d->hdr_have++] = data[used++];
    *consumed_out = used;
    if (d->hdr_have == d->prefix) {
      size_t n = 0;
      for (unsigned i = 0; i < d->prefix; i++) n = (n << 8) | d->hdr[i];
      if (n > d->max_len) return d->err = ERR_TOOBIG;
      if (n < d->min_len) return d->err = ERR_FORMAT;
      d->want = n;
    }
  }
  size_t take = d->want - d->have;
  if (take > len - used) take = len - used;
  if (take) {
    int rc = reserve(d, d->have + take);
    if (rc) return d->err = rc;
    memcpy(d->body + d->have, data + used, take);
    d->have += take;
    used += take;
  }
  *consumed_out = used;
  if (d->have < d->want) return 0;
  d->ready = 1;
  *frame_out = d->body ? d->body : (const uint8_t *)"";
  *frame_len_out = d->want;
  return 1;
}
