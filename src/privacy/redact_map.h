/* privacy/redact_map — typed placeholders for redacted values, and their restoration.
 *
 * redact_map_apply finds the spans (privacy/redact) in a text and appends it to out with
 * each span replaced by "[TYPE_N]": N counts the distinct values of that type in this map,
 * so the same value gets the same placeholder in every text redacted with one map (all the
 * messages of a request). redact_map_restore appends a text with every placeholder the map
 * made replaced by its value; unknown ones stay as they are.
 *
 * redact_restorer does the same for a stream: it holds back a tail that may be the start
 * of a placeholder ("[EMA") until the next chunk shows what it is.
 *
 * Caps: REDACT_MAP_MAX values (more: ERR_TOOBIG). A map is used by one thread at a time; it
 * owns copies of the values and wipes them when freed. */
#ifndef APIARY_PRIVACY_REDACT_MAP_H
#define APIARY_PRIVACY_REDACT_MAP_H

#include <stddef.h>

#include "core/buf.h"
#include "privacy/redact.h"

#define REDACT_MAP_MAX REDACT_MAX_SPANS
#define REDACT_PLACEHOLDER_MAX 24 /* "[" TYPE "_" N "]" is never longer */

typedef struct redact_map redact_map;

int redact_map_new(unsigned mask, redact_map **out); /* the types to redact */
void redact_map_free(redact_map *m);                  /* NULL ok */
/* Values replaced so far. */
int redact_map_count(const redact_map *m);

/* Appends text[0, len) redacted to out. 0, or ERR_TOOBIG / ERR_NOMEM (out may then hold
 * part of it: the caller must not send it). Borrows text. */
int redact_map_apply(redact_map *m, const char *text, size_t len, buf *out);
/* Appends text[0, len) with the placeholders restored. */
int redact_map_restore(const redact_map *m, const char *text, size_t len, buf *out);

typedef struct redact_restorer {
  const redact_map *m;      /* borrowed */
  char held[REDACT_PLACEHOLDER_MAX]; /* a possible placeholder's start, not given out yet */
  size_t n_held;
} redact_restorer;

void redact_restorer_init(redact_restorer *r, const redact_map *m);
/* Appends what can be given out of chunk in[0, len) (restored) to out. */
int redact_restorer_push(redact_restorer *r, const char *in, size_t len, buf *out);
/* The end of the stream: appends what was held back. */
int redact_restorer_flush(redact_restorer *r, buf *out);

#endif
