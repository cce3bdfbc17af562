/* privacy/redact_int — the scanners behind redact_find (internal to privacy/redact*).
 *
 * A scanner tries one match starting at byte i of t[0, n): 1 with *end set (the match is
 * t[i, *end)) or 0. Each checks the boundary before i itself and bounds how far it reads,
 * so redact_find stays linear in n times a small constant. */
#ifndef APIARY_PRIVACY_REDACT_INT_H
#define APIARY_PRIVACY_REDACT_INT_H

#include <stddef.h>

typedef int (*redact__scan_fn)(const char *t, size_t n, size_t i, size_t *end);

int redact__scan_email(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_url(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_ip(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_mac(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_card(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_ssn(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_iban(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_phone(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_dob(const char *t, size_t n, size_t i, size_t *end);
int redact__scan_crypto(const char *t, size_t n, size_t i, size_t *end);

/* Character classes (ASCII only: bytes >= 0x80 are none of these). */
static inline int redact__digit(int c) { return c >= '0' && c <= '9'; }
static inline int redact__alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int redact__alnum(int c) { return redact__digit(c) || redact__alpha(c); }
static inline int redact__hex(int c) { return redact__digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
/* The byte before i, or 0 at the start. */
static inline int redact__prev(const char *t, size_t i) { return i ? (unsigned char)t[i - 1] : 0; }
/* The byte at i, or 0 past the end. */
static inline int redact__at(const char *t, size_t n, size_t i) { return i < n ? (unsigned char)t[i] : 0; }
/* Does a keyword (lower case) occur, case-insensitively, in the up to `back` bytes before i? */
int redact__context(const char *t, size_t i, size_t back, const char *const *words);

#endif
