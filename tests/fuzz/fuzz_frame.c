/* libFuzzer harness: the frame decoder on arbitrary bytes, fed in slices whose sizes come
 * from the input. Byte 0 picks the prefix width (wire u16 or record u32) and byte 1 the
 * slice pattern. Every frame handed out must respect the caps; errors must be sticky. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "p2p/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  unsigned prefix = data[0] & 1 ? FRAME_RECORD_PREFIX : FRAME_WIRE_PREFIX;
  size_t min = prefix == 2 ? 16 : 1, max = prefix == 2 ? FRAME_WIRE_MAX : FRAME_MAX_RECORD;
  size_t step = (size_t)(data[1] % 17) + 1;
  data += 2;
  size -= 2;
  frame_dec d;
  if (frame_dec_init(&d, prefix, min, max)) return 0;
  size_t pos = 0;
  int failed = 0;
  while (pos < size) {
    size_t n = size - pos < step ? size - pos : step;
    size_t used, flen;
    const uint8_t *f;
    int rc = frame_dec_feed(&d, data + pos, n, &used, &f, &flen);
    assert(used <= n);
    if (rc < 0) {
      failed = rc;
      break;
    }
    if (rc == 1) {
      assert(flen >= min && flen <= max);
      assert(f != NULL);
      volatile uint8_t sink = flen ? f[flen - 1] : 0;
      (void)sink;
    } else {
      assert(used == n);
    }
    pos += used;
    step = step * 3 % 23 + 1;
  }
  if (failed) {
    size_t used, flen;
    const uint8_t *f;
    assert(frame_dec_feed(&d, data, size, &used, &f, &flen) == failed && used == 0);
  }
  assert(frame_dec_buffered(&d) <= max + prefix);
  frame_dec_deinit(&d);
  return 0;
}
