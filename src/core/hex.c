/* core/hex — hex encoding; see hex.h. */
#include "core/hex.h"

#include <string.h>

#include "core/err.h"

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void hex_encode(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}

int hex_decode_var(const char *text, size_t text_len, uint8_t *out, size_t cap) {
  if (text_len >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text += 2;
    text_len -= 2;
  }
  if (text_len % 2) return ERR_FORMAT;
  if (text_len / 2 > cap) return ERR_TOOBIG;
  for (size_t i = 0; i < text_len / 2; i++) {
    int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return ERR_FORMAT;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (int)(text_len / 2);
}

int hex_decode(const char *text, size_t text_len, uint8_t *out, size_t out_len) {
  size_t digits = text_len;
  if (digits >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) digits -= 2;
  if (digits != 2 * out_len) return ERR_FORMAT;
  int rc = hex_decode_var(text, text_len, out, out_len);
  return rc < 0 ? rc : 0;
}

int hex_parse(const char *text, uint8_t *out, size_t n) {
  return text ? hex_decode(text, strlen(text), out, n) : ERR_FORMAT;
}
