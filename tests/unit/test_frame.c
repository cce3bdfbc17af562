/* Frame decoder: a stream of frames split at every byte boundary, byte by byte, in random
 * slices; caps (oversize, undersize) and sticky errors; both prefix widths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "p2p/frame.h"

#define NFRAMES 7
static const size_t sizes[NFRAMES] = {1, 2, 0, 300, 4, 5000, 3};

/* Builds a stream of NFRAMES frames with the given prefix; returns its length. */
static size_t build(uint8_t *out, unsigned prefix) {
  size_t pos = 0;
  for (int i = 0; i < NFRAMES; i++) {
    frame_put_len(out + pos, prefix, sizes[i]);
    pos += prefix;
    for (size_t j = 0; j < sizes[i]; j++) out[pos++] = (uint8_t)(i * 31 + j);
  }
  return pos;
}

/* Feeds [p, p+n) and checks frames in order; *next is the index of the next frame. */
static void feed_check(frame_dec *d, const uint8_t *p, size_t n, int *next) {
  while (1) {
    size_t used;
    const uint8_t *f;
    size_t flen;
    int rc = frame_dec_feed(d, p, n, &used, &f, &flen);
    assert_true(rc >= 0);
    assert_true(used <= n);
    p += used;
    n -= used;
    if (rc == 0) {
      assert_int_equal(n, 0);
      return;
    }
    assert_true(*next < NFRAMES);
    assert_int_equal(flen, sizes[*next]);
    for (size_t j = 0; j < flen; j++) assert_int_equal(f[j], (uint8_t)(*next * 31 + j));
    (*next)++;
  }
}

static void test_split_everywhere(void **state) {
  (void)state;
  static uint8_t stream[8 * 6000];
  for (unsigned prefix = 2; prefix <= 4; prefix += 2) {
    size_t len = build(stream, prefix);
    for (size_t cut = 0; cut <= len; cut++) {
      frame_dec d;
      assert_int_equal(frame_dec_init(&d, prefix, 0, 65535), 0);
      int next = 0;
      feed_check(&d, stream, cut, &next);
      feed_check(&d, stream + cut, len - cut, &next);
      assert_int_equal(next, NFRAMES);
      assert_int_equal(frame_dec_buffered(&d), 0);
      frame_dec_deinit(&d);
    }
    /* Byte by byte. */
    frame_dec d;
    assert_int_equal(frame_dec_init(&d, prefix, 0, 65535), 0);
    int next = 0;
    for (size_t i = 0; i < len; i++) feed_check(&d, stream + i, 1, &next);
    assert_int_equal(next, NFRAMES);
    frame_dec_deinit(&d);
    /* Random slices. */
    for (int round = 0; round < 200; round++) {
      assert_int_equal(frame_dec_init(&d, prefix, 0, 65535), 0);
      next = 0;
      size_t pos = 0;
      while (pos < len) {
        size_t n = 1 + randombytes_uniform(700);
        if (n > len - pos) n = len - pos;
        feed_check(&d, stream + pos, n, &next);
        pos += n;
      }
      assert_int_equal(next, NFRAMES);
      frame_dec_deinit(&d);
    }
  }
}

static void test_caps(void **state) {
  (void)state;
  frame_dec d;
  size_t used, flen;
  const uint8_t *f;
  uint8_t hdr[4];
  /* Over the cap: refused as soon as the prefix is complete, nothing allocated. */
  assert_int_equal(frame_dec_init(&d, 4, 1, FRAME_MAX_RECORD), 0);
  frame_put_len(hdr, 4, FRAME_MAX_RECORD + 1);
  assert_int_equal(frame_dec_feed(&d, hdr, 3, &used, &f, &flen), 0);
  assert_int_equal(frame_dec_feed(&d, hdr + 3, 1, &used, &f, &flen), ERR_TOOBIG);
  assert_int_equal(used, 1);
  assert_null(d.body);
  /* Sticky. */
  assert_int_equal(frame_dec_feed(&d, hdr, 4, &used, &f, &flen), ERR_TOOBIG);
  assert_int_equal(used, 0);
  frame_dec_deinit(&d);
  /* 0xffffffff. */
  assert_int_equal(frame_dec_init(&d, 4, 1, FRAME_MAX_RECORD), 0);
  memset(hdr, 0xff, 4);
  assert_int_equal(frame_dec_feed(&d, hdr, 4, &used, &f, &flen), ERR_TOOBIG);
  frame_dec_deinit(&d);
  /* Under the minimum. */
  assert_int_equal(frame_dec_init(&d, 2, 16, 65535), 0);
  frame_put_len(hdr, 2, 15);
  assert_int_equal(frame_dec_feed(&d, hdr, 2, &used, &f, &flen), ERR_FORMAT);
  frame_dec_deinit(&d);
  /* The largest record, in odd slices; storage stays within the announced length. */
  size_t big = FRAME_MAX_RECORD;
  uint8_t *s = malloc(big + 4);
  assert_non_null(s);
  frame_put_len(s, 4, big);
  for (size_t i = 0; i < big; i++) s[4 + i] = (uint8_t)(i * 7);
  assert_int_equal(frame_dec_init(&d, 4, 1, FRAME_MAX_RECORD), 0);
  size_t pos = 0;
  int got = 0;
  while (pos < big + 4) {
    size_t n = 1 + randombytes_uniform(100000);
    if (n > big + 4 - pos) n = big + 4 - pos;
    int rc = frame_dec_feed(&d, s + pos, n, &used, &f, &flen);
    assert_true(rc >= 0);
    assert_true(d.cap <= big);
    pos += used;
    if (rc == 1) {
      assert_int_equal(flen, big);
      assert_memory_equal(f, s + 4, big);
      got = 1;
    }
  }
  assert_true(got);
  free(s);
  frame_dec_deinit(&d);
  /* Bad init. */
  assert_int_equal(frame_dec_init(&d, 3, 0, 10), ERR_INVAL);
  assert_int_equal(frame_dec_init(&d, 2, 0, 70000), ERR_INVAL);
  assert_int_equal(frame_dec_init(&d, 4, 10, 9), ERR_INVAL);
  frame_dec_deinit(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_split_everywhere),
    cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
