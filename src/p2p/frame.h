/* p2p/frame — length-prefixed framing for apiary links, and its incremental decoder.
 *
 * Two layers use the same shape (see docs/protocol.md §2):
 *   wire     TCP bytes = a sequence of Noise messages, each  u16be len || len bytes
 *            (FRAME_WIRE_PREFIX = 2; 1 <= len <= 65535).
 *   record   the decrypted transport plaintext, concatenated, = a sequence of records,
 *            each  u32be len || len bytes  (FRAME_RECORD_PREFIX = 4;
 *            1 <= len <= FRAME_MAX_RECORD). A record's first byte is its type.
 * A record may span several Noise messages; a Noise message may hold several records.
 *
 * frame_dec is fed arbitrary slices and yields whole frames. It holds at most one partial
 * frame, allocated only after its length prefix has passed the caps (so a peer cannot make
 * it allocate more than max_len), grown as bytes arrive. Errors are sticky: once a frame
 * is refused the stream is garbage from that point and the link must be dropped.
 *
 * No I/O; caller-owned storage; not thread-safe per object. */
#ifndef APIARY_P2P_FRAME_H
#define APIARY_P2P_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_WIRE_PREFIX 2
#define FRAME_WIRE_MAX 65535
#define FRAME_RECORD_PREFIX 4
#define FRAME_MAX_APP (1024 * 1024 + 64 * 1024) /* largest application message, bytes */
#define FRAME_MAX_RECORD (FRAME_MAX_APP + 1)     /* + the record type byte */

typedef struct frame_dec {
  unsigned prefix;    /* 2 or 4 length bytes */
  size_t min_len;     /* smallest acceptable frame */
  size_t max_len;     /* largest acceptable frame */
  uint8_t hdr[4];     /* length prefix collected so far */
  size_t hdr_have;    /* bytes of hdr filled */
  size_t want;        /* body length of the current frame (valid once hdr is full) */
  size_t have;        /* body bytes collected */
  uint8_t *body;      /* owned; cap bytes */
  size_t cap;         /* allocated size of body */
  int ready;          /* a complete frame sits in body, handed out by the last feed */
  int err;            /* sticky error (0 = fine) */
} frame_dec;

/* prefix: FRAME_WIRE_PREFIX or FRAME_RECORD_PREFIX; frames shorter than min_len or longer
 * than max_len are errors. Returns 0 or ERR_INVAL. */
int frame_dec_init(frame_dec *d, unsigned prefix, size_t min_len, size_t max_len);
void frame_dec_deinit(frame_dec *d);

/* Consumes bytes from data[0..len) up to the end of the next complete frame. Sets
 * *consumed_out to the bytes used. Returns 1 with *frame_out / *frame_len_out pointing at
 * the frame (borrowed from d until the next call), 0 when every byte was used and no frame
 * is complete yet, or a negative error: ERR_TOOBIG (announced length over max_len),
 * ERR_FORMAT (under min_len), ERR_NOMEM. Call in a loop until it returns 0. */
int frame_dec_feed(frame_dec *d, const uint8_t *data, size_t len, size_t *consumed_out,
                   const uint8_t **frame_out, size_t *frame_len_out);

/* Bytes buffered inside the decoder (for back-pressure accounting). */
size_t frame_dec_buffered(const frame_dec *d);

/* Writes the big-endian length prefix (prefix bytes) for len into out. */
void frame_put_len(uint8_t *out, unsigned prefix, size_t len);

#endif
