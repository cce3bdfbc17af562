/* core/hex — lowercase hex encoding and strict decoding. Pure functions, thread-safe. */
#ifndef APIARY_CORE_HEX_H
#define APIARY_CORE_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Writes 2*n hex digits and a NUL to out (size >= 2*n+1). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decodes exactly out_len bytes from text (optional "0x" prefix; upper or lower case).
 * Returns 0, or ERR_FORMAT when the length or any digit is wrong. */
int hex_decode(const char *text, size_t text_len, uint8_t *out, size_t out_len);
/* The same for a NUL-terminated string (NULL is ERR_FORMAT): "0x…" or bare hex of
 * exactly n bytes, as ids, keys and signatures travel in JSON. */
int hex_parse(const char *text, uint8_t *out, size_t n);
/* Decodes a hex string of any even length into out (cap bytes). Returns the byte count,
 * ERR_FORMAT or ERR_TOOBIG. */
int hex_decode_var(const char *text, size_t text_len, uint8_t *out, size_t cap);

#endif
