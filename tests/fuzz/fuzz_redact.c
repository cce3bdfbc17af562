/* libFuzzer harness: privacy/redact on arbitrary bytes. The spans must be sorted, inside the
 * text and disjoint; redacting then restoring gives the input back byte for byte; the
 * streaming restorer, fed the redacted text in two pieces cut where the input's first byte
 * says, gives the same as the whole restore. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "privacy/redact.h"
#include "privacy/redact_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  const char *t = (const char *)data;
  static redact_span sp[REDACT_MAX_SPANS];
  int n = redact_find(t, size, REDACT_ALL, sp, REDACT_MAX_SPANS);
  for (int k = 0; k < n; k++) {
    if (sp[k].start >= sp[k].end || sp[k].end > size) abort();
    if (k && sp[k].start < sp[k - 1].end) abort();
  }
  redact_map *m;
  if (redact_map_new(REDACT_ALL, &m)) return 0;
  buf red, back, streamed;
  buf_init(&red), buf_init(&back), buf_init(&streamed);
  if (!redact_map_apply(m, t, size, &red) && !redact_map_restore(m, (char *)red.ptr, red.len, &back)) {
    /* restoring the redacted text gives the input back, unless the input itself held
     * text shaped like one of the map's placeholders */
    int has_ph = size && memchr(t, '[', size) != NULL;
    if (!has_ph && (back.len != size || memcmp(back.ptr, t, size))) abort();
    redact_restorer r;
    redact_restorer_init(&r, m);
    size_t cut = size && red.len ? data[0] % (red.len + 1) : 0;
    if (!redact_restorer_push(&r, (char *)red.ptr, cut, &streamed) &&
        !redact_restorer_push(&r, (char *)red.ptr + cut, red.len - cut, &streamed) &&
        !redact_restorer_flush(&r, &streamed))
      if (streamed.len != back.len || memcmp(streamed.ptr, back.ptr, back.len)) abort();
  }
  buf_deinit(&red), buf_deinit(&back), buf_deinit(&streamed);
  redact_map_free(m);
  return 0;
}
