/* core/buf — growable byte buffer; see buf.h. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

void buf_init(buf *b) { memset(b, 0, sizeof *b); }

void buf_deinit(buf *b) {
  free(b->ptr);
  memset(b, 0, sizeof *b);
}

int buf_reserve(buf *b, size_t extra) {
  if (extra > SIZE_MAX / 2 - b->len) return ERR_NOMEM;
  size_t need = b->len + extra;
  if (need <= b->cap && b->ptr) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  uint8_t *p = realloc(b->ptr, cap + 1);
  if (!p) return ERR_NOMEM;
  b->ptr = p;
  b->cap = cap;
  b->ptr[b->len] = 0;
  return 0;
}

int buf_append(buf *b, const void *data, size_t n) {
  int rc = buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->ptr + b->len, data, n);
  b->len += n;
  b->ptr[b->len] = 0;
  return 0;
}

int buf_append_str(buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_printf(buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return ERR_INVAL;
  int rc = buf_reserve(b, (size_t)n);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf((char *)b->ptr + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void buf_reset(buf *b) {
  b->len = 0;
  if (b->ptr) b->ptr[0] = 0;
}
