/* privacy/redact — recognisers of personal data in text, and typed placeholders.
 *
 * redact_find scans text (untrusted: at most REDACT_MAX_INPUT bytes, at most
 * REDACT_MAX_SPANS spans) with hand-written scanners, one per type, each validating what it
 * matched (Luhn, IBAN mod 97, SSN area/group/serial rules, base58check, bech32, EIP-55,
 * calendar dates). Overlaps are settled by a fixed priority (the order of redact_type
 * below: an email beats the URL inside it, an IP beats a phone number); the spans come back
 * sorted by start and never overlap. The rules of each type: docs/redaction.md.
 *
 * redact_map (redact_map.c) replaces spans with placeholders "[EMAIL_1]" (the same value
 * gets the same placeholder) and restores them; redact_restorer (redact_stream.c) restores a
 * stream whose placeholders may be split across chunks.
 *
 * No state, no allocation: any thread. */
#ifndef APIARY_PRIVACY_REDACT_H
#define APIARY_PRIVACY_REDACT_H

#include <stddef.h>

#define REDACT_MAX_INPUT (4u << 20) /* bytes redact_find accepts */
#define REDACT_MAX_SPANS 4096       /* spans in one text (more: ERR_TOOBIG) */

/* In priority order (earlier wins an overlap). */
typedef enum redact_type {
  REDACT_EMAIL = 0,
  REDACT_URL,
  REDACT_CRYPTO,
  REDACT_IBAN,
  REDACT_MAC,
  REDACT_IP,
  REDACT_CARD,
  REDACT_SSN,
  REDACT_DOB,
  REDACT_PHONE,
  REDACT_N_TYPES
} redact_type;

#define REDACT_ALL ((1u << REDACT_N_TYPES) - 1)

typedef struct redact_span {
  redact_type type;
  size_t start, end;        /* byte offsets: text[start, end) */
} redact_span;

/* "EMAIL", "URL", "CRYPTO", "IBAN", "MAC", "IP", "CARD", "SSN", "DOB", "PHONE". */
const char *redact_type_name(redact_type t);
/* The type named s (case-insensitive; also "phone_number", "credit_card", "ip_address",
 * "email_address", "iban_code", "us_ssn", "date_of_birth"), or ERR_INVAL. */
int redact_type_parse(const char *s);
/* A mask of types from a comma-separated list ("email,card"); ERR_INVAL on an unknown name. */
int redact_types_parse(const char *list, unsigned *mask_out);

/* Finds the spans of the types in mask (bits 1u << type) in text[0, len): their count
 * (at most cap: more is ERR_TOOBIG), sorted by start, never overlapping. ERR_TOOBIG when
 * len > REDACT_MAX_INPUT. Borrows text; out is the caller's. */
int redact_find(const char *text, size_t len, unsigned mask, redact_span *out, int cap);

/* Validators, exposed for the tests (bytes travel with their length). 1 valid, 0 not. */
int redact__luhn_ok(const char *digits, size_t n);
int redact__iban_ok(const char *s, size_t n);      /* compact (no spaces), any case */
int redact__btc_ok(const char *s, size_t n);       /* base58check or bech32/bech32m */
int redact__eth_ok(const char *s, size_t n);       /* "0x" + 40 hex; mixed case: EIP-55 */

#endif
