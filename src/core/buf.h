/* core/buf — a growable byte buffer {ptr, len, cap}.
 *
 * The buffer owns ptr. buf_init zeroes; buf_deinit frees and zeroes (buf_deinit on a
 * zeroed buf is a no-op). Appends grow geometrically. ptr is always NUL-terminated past
 * len when cap > 0 so text can be printed, but lengths, not NULs, carry meaning.
 * Not thread-safe; one owner at a time. */
#ifndef APIARY_CORE_BUF_H
#define APIARY_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
  uint8_t *ptr; /* owned storage, NULL when cap == 0 */
  size_t len;   /* bytes in use */
  size_t cap;   /* bytes allocated (excluding the trailing NUL) */
} buf;

void buf_init(buf *b);
void buf_deinit(buf *b);
/* Ensures room for extra more bytes. Returns 0 or ERR_NOMEM. */
int buf_reserve(buf *b, size_t extra);
int buf_append(buf *b, const void *data, size_t n);
int buf_append_str(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_reset(buf *b); /* len = 0, keeps storage */

#endif
