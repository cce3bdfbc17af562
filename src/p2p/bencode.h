/* p2p/bencode — BEP 3 bencoding: a strict zero-copy decoder and a checked writer.
 *
 * Decoding fills a caller-provided flat array of ben_node in preorder. Every node points
 * into the input (zero copy), so the input must outlive the nodes. A node's subtree is
 * nodes[i .. i+span); its first child is nodes[i+1] and its next sibling nodes[i+span].
 * Dict children alternate key, value.
 *
 * What is rejected, always: leading zeros in integers and string lengths, "i-0e", empty
 * integers, integers outside int64, non-string dict keys, duplicate keys that are adjacent
 * after sorting (see BEN_LENIENT_ORDER), truncation, trailing bytes after the top-level
 * value, nesting deeper than BEN_MAX_DEPTH, and more nodes than the caller's array holds.
 * Dict key order: BEP 3 requires raw-byte sorted keys; the default decoder enforces it
 * (BEP 44 values MUST be rejected otherwise). BEN_LENIENT_ORDER accepts unsorted keys
 * (some clients in the wild send them in KRPC packets); lookups then take the first match
 * and duplicates are still rejected.
 *
 * The writer appends to a fixed caller buffer and checks as it goes: dict keys must be
 * written with ben_w_key in strictly increasing raw-byte order, containers must balance.
 * The first error sticks (w->err) so callers test once at the end.
 * Pure functions on caller-owned memory; thread-safe. */
#ifndef APIARY_P2P_BENCODE_H
#define APIARY_P2P_BENCODE_H

#include <stddef.h>
#include <stdint.h>

#define BEN_MAX_DEPTH 32
#define BEN_LENIENT_ORDER 1u /* decode flag: accept dicts with unsorted keys */

typedef enum ben_type { BEN_INT = 1, BEN_STR = 2, BEN_LIST = 3, BEN_DICT = 4 } ben_type;

typedef struct ben_node {
  uint8_t type;       /* ben_type */
  uint32_t span;      /* nodes in this subtree, including itself */
  uint32_t count;     /* list: items; dict: key/value pairs; else 0 */
  const uint8_t *raw; /* the whole encoded value inside the input */
  size_t raw_len;
  const uint8_t *str; /* BEN_STR: the bytes */
  size_t len;         /* BEN_STR: their length */
  int64_t i;          /* BEN_INT: the value */
} ben_node;

/* Decodes exactly one value that fills in[0..len). Borrows in; writes up to cap nodes.
 * Returns the node count (> 0), ERR_FORMAT for malformed input or ERR_TOOBIG when the
 * nodes do not fit in cap or nesting exceeds BEN_MAX_DEPTH. */
int ben_decode(const uint8_t *in, size_t len, ben_node *nodes, size_t cap, unsigned flags);

/* Value of key in the dict at d (a node pointer inside a decoded array), or NULL. */
const ben_node *ben_dict_get(const ben_node *d, const char *key);
/* Same with a length-delimited key. */
const ben_node *ben_dict_getn(const ben_node *d, const void *key, size_t key_len);
/* The idx-th item of a list (linear walk), or NULL. */
const ben_node *ben_list_at(const ben_node *l, size_t idx);
/* Next sibling of n (only meaningful inside a container's child range). */
static inline const ben_node *ben_next(const ben_node *n) { return n + n->span; }
/* Typed accessors: NULL/0 when missing or of another type. */
const ben_node *ben_dict_str(const ben_node *d, const char *key, size_t want_len);
int ben_dict_int(const ben_node *d, const char *key, int64_t *out);

/* Writer into a fixed buffer. */
typedef struct ben_w {
  uint8_t *p;       /* caller's buffer (borrowed) */
  size_t len, cap;  /* bytes written, buffer size */
  int err;          /* first error: ERR_TOOBIG (no room) or ERR_FORMAT (misuse) */
  int depth;        /* open containers */
  uint8_t is_dict[BEN_MAX_DEPTH];     /* per level: 1 for a dict */
  uint8_t want_key[BEN_MAX_DEPTH];    /* dict level: next item must be a key */
  size_t last_key[BEN_MAX_DEPTH];     /* dict level: offset of the previous key's bytes */
  size_t last_key_len[BEN_MAX_DEPTH]; /* ... and its length; SIZE_MAX = none yet */
} ben_w;

void ben_w_init(ben_w *w, uint8_t *out, size_t cap);
void ben_w_int(ben_w *w, int64_t v);
void ben_w_str(ben_w *w, const void *s, size_t n);
void ben_w_cstr(ben_w *w, const char *s);
void ben_w_key(ben_w *w, const char *key); /* a dict key (checked for order) */
void ben_w_keyn(ben_w *w, const void *key, size_t n);
void ben_w_list(ben_w *w);
void ben_w_dict(ben_w *w);
void ben_w_end(ben_w *w);
/* Appends an already-encoded value (e.g. a BEP 44 v); the caller vouches for it. */
void ben_w_raw(ben_w *w, const void *raw, size_t n);
/* Bytes written, or w->err; ERR_FORMAT if containers are still open. */
int ben_w_finish(const ben_w *w);

#endif
