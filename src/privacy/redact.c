/* privacy/redact — redact_find: every scanner in priority order, overlaps settled; see
 * redact.h. */
#include "privacy/redact.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "privacy/redact_int.h"

static const struct {
  const char *name, *alias1, *alias2;
  redact__scan_fn scan;
} types[REDACT_N_TYPES] = {
    [REDACT_EMAIL] = {"EMAIL", "EMAIL_ADDRESS", NULL, redact__scan_email},
    [REDACT_URL] = {"URL", "DOMAIN_NAME", NULL, redact__scan_url},
    [REDACT_CRYPTO] = {"CRYPTO", NULL, NULL, redact__scan_crypto},
    [REDACT_IBAN] = {"IBAN", "IBAN_CODE", NULL, redact__scan_iban},
    [REDACT_MAC] = {"MAC", "MAC_ADDRESS", NULL, redact__scan_mac},
    [REDACT_IP] = {"IP", "IP_ADDRESS", NULL, redact__scan_ip},
    [REDACT_CARD] = {"CARD", "CREDIT_CARD", NULL, redact__scan_card},
    [REDACT_SSN] = {"SSN", "US_SSN", NULL, redact__scan_ssn},
    [REDACT_DOB] = {"DOB", "DATE_OF_BIRTH", "DATE", redact__scan_dob},
    [REDACT_PHONE] = {"PHONE", "PHONE_NUMBER", NULL, redact__scan_phone},
};

const char *redact_type_name(redact_type t) { return (unsigned)t < REDACT_N_TYPES ? types[t].name : "?"; }

int redact_type_parse(const char *s) {
  for (int t = 0; t < REDACT_N_TYPES; t++)
    if (!strcasecmp(s, types[t].name) || (types[t].alias1 && !strcasecmp(s, types[t].alias1)) ||
        (types[t].alias2 && !strcasecmp(s, types[t].alias2)))
      return t;
  return ERR_INVAL;
}

int redact_types_parse(const char *list, unsigned *mask_out) {
  unsigned m = 0;
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    char name[32];
    if (l == 0 || l >= sizeof name) return ERR_INVAL;
    memcpy(name, p, l);
    name[l] = 0;
    int t = redact_type_parse(name);
    if (t < 0) return ERR_INVAL;
    m |= 1u << t;
    p += l + (e ? 1 : 0);
  }
  *mask_out = m;
  return 0;
}

int redact__context(const char *t, size_t i, size_t back, const char *const *words) {
  size_t from = i > back ? i - back : 0;
  for (const char *const *w = words; *w; w++) {
    size_t wl = strlen(*w);
    for (size_t k = from; k + wl <= i; k++)
      if (!strncasecmp(t + k, *w, wl)) return 1;
  }
  return 0;
}

static int by_start(const void *a, const void *b) {
  const redact_span *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

int redact_find(const char *text, size_t len, unsigned mask, redact_span *out, int cap) {
  if (len > REDACT_MAX_INPUT) return ERR_TOOBIG;
  if (len == 0 || !mask) return 0;
  unsigned char *taken = calloc(len, 1); /* bytes already in a span */
  if (!taken) return ERR_NOMEM;
  int n = 0, rc = 0;
  for (int t = 0; t < REDACT_N_TYPES && !rc; t++) {
    if (!(mask & (1u << t))) continue;
    for (size_t i = 0; i < len;) {
      size_t end = 0;
      if (taken[i] || !types[t].scan(text, len, i, &end) || end <= i || end > len ||
          memchr(taken + i, 1, end - i)) {
        i++;
        continue;
      }
      if (n >= cap) { rc = ERR_TOOBIG; break; }
      out[n++] = (redact_span){.type = (redact_type)t, .start = i, .end = end};
      memset(taken + i, 1, end - i);
      i = end;
    }
  }
  free(taken);
  if (rc) return rc;
  qsort(out, (size_t)n, sizeof *out, by_start);
  return n;
}
