/* privacy/redact_net — scanners for network identifiers: email addresses, URLs (with a
 * scheme, "www." or a bare domain under a well-known top-level domain), IPv4, IPv6 (with
 * "::", an embedded IPv4 and a zone id), MAC addresses (colons, dashes or Cisco dots).
 * Rules: docs/redaction.md. */
#include <string.h>
#include <strings.h>

#include "privacy/redact_int.h"

#define D redact__digit
#define A redact__alpha
#define AN redact__alnum
#define H redact__hex

static int local_char(int c) { return AN(c) || (c && strchr("._%+-'", c)); }
static int label_char(int c) { return AN(c) || c == '-'; }

/* Labels a.b.c from i (at most 253 bytes); *end after the last label, *tld at its start,
 * *n_labels. 0 when no label starts at i. */
static int domain(const char *t, size_t n, size_t i, size_t *end, size_t *tld, int *n_labels) {
  size_t j = i, lim = i + 253 < n ? i + 253 : n;
  int k = 0;
  for (;;) {
    size_t s = j;
    while (j < lim && label_char((unsigned char)t[j])) j++;
    if (j == s || j - s > 63 || t[s] == '-' || t[j - 1] == '-') {
      if (k == 0) return 0;
      j = s - 1; /* back before the dot */
      break;
    }
    k++;
    *tld = s;
    if (j + 1 < lim && t[j] == '.' && label_char((unsigned char)t[j + 1])) { j++; continue; }
    break;
  }
  *end = j;
  *n_labels = k;
  return 1;
}

static int tld_alpha(const char *t, size_t s, size_t e) {
  if (e - s >= 4 && !strncasecmp(t + s, "xn--", 4)) return 1;
  if (e - s < 2) return 0;
  for (size_t k = s; k < e; k++)
    if (!A((unsigned char)t[k])) return 0;
  return 1;
}

int redact__scan_email(const char *t, size_t n, size_t i, size_t *end) {
  if (local_char(redact__prev(t, i)) || !local_char((unsigned char)t[i]) || t[i] == '.') return 0;
  size_t j = i;
  while (j < n && j - i <= 64 && local_char((unsigned char)t[j])) j++;
  if (j >= n || t[j] != '@' || t[j - 1] == '.' || j - i > 64) return 0;
  size_t e, tld;
  int k;
  if (!domain(t, n, j + 1, &e, &tld, &k) || k < 2 || !tld_alpha(t, tld, e)) return 0;
  if (AN(redact__at(t, n, e)) || redact__at(t, n, e) == '@') return 0;
  *end = e;
  return 1;
}

/* Top-level domains a bare domain (no scheme, no "www.") must end in. */
static const char *const known_tlds[] = {
    "com", "org", "net", "edu", "gov", "mil", "int", "io", "co", "uk", "de", "fr", "it", "es", "nl", "be", "ch",
    "at", "se", "no", "dk", "fi", "pl", "ru", "cn", "jp", "kr", "in", "br", "au", "ca", "us", "eu", "info", "biz",
    "me", "tv", "ai", "app", "dev", "xyz", "site", "online", "tech", "cz", "hu", "ro", "gr", "pt", "ie", "il", "nz",
    "za", "mx", "ar", "tr", "ua", "name", "pro", "mobi", "asia", "org", "cloud", "store", "shop", "blog", NULL};

static int tld_known(const char *t, size_t s, size_t e) {
  for (const char *const *k = known_tlds; *k; k++)
    if (strlen(*k) == e - s && !strncasecmp(t + s, *k, e - s)) return 1;
  return 0;
}

static int url_char(int c) { return c > 0x20 && c != 0x7f && !strchr("<>\"'`{}|\\^", c); }

/* Extends a URL from j (after the host) over its path, query and fragment; trims trailing
 * punctuation and an unbalanced closing bracket. */
static size_t url_tail(const char *t, size_t n, size_t start, size_t j) {
  size_t lim = start + 2048 < n ? start + 2048 : n;
  if (j < lim && (t[j] == '/' || t[j] == ':' || t[j] == '?' || t[j] == '#'))
    while (j < lim && url_char((unsigned char)t[j])) j++;
  for (;;) {
    int c = (unsigned char)t[j - 1];
    if (strchr(".,;:!?*", c)) { j--; continue; }
    if (c == ')' || c == ']') {
      int open = 0;
      for (size_t k = start; k < j; k++) open += t[k] == (c == ')' ? '(' : '[') ? 1 : t[k] == c ? -1 : 0;
      if (open < 0) { j--; continue; }
    }
    break;
  }
  return j;
}

int redact__scan_url(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i);
  if (AN(p) || (p && strchr(".-@/_", p))) return 0;
  static const char *const schemes[] = {"https://", "http://", "ftp://", "www.", NULL};
  size_t h = i;
  for (const char *const *s = schemes; *s; s++)
    if (n - i > strlen(*s) && !strncasecmp(t + i, *s, strlen(*s))) { h = i + strlen(*s); break; }
  if (h > i && h + 1 < n && t[h] == '[') { /* http://[2001:db8::1]/: the address is an IP */
    return 0;
  }
  size_t e, tld;
  int k;
  if (h - i > 4 && h < n && !label_char((unsigned char)t[h])) return 0;
  /* userinfo (user@host) makes it an email: left to that scanner */
  if (!domain(t, n, h, &e, &tld, &k) || k < 2 || !tld_alpha(t, tld, e)) return 0;
  if (h == i && !tld_known(t, tld, e)) return 0;
  int c = redact__at(t, n, e);
  if (c == '@' || c == '_' || (h == i && c == '-')) return 0;
  e = url_tail(t, n, i, e);
  *end = e;
  return 1;
}

/* IPv4 a.b.c.d at i (no boundary check): its end or 0. */
static size_t ipv4_at(const char *t, size_t n, size_t i) {
  size_t j = i;
  for (int o = 0; o < 4; o++) {
    if (o) {
      if (j >= n || t[j] != '.') return 0;
      j++;
    }
    size_t s = j;
    unsigned v = 0;
    while (j < n && j - s < 3 && D((unsigned char)t[j])) v = v * 10 + (unsigned)(t[j++] - '0');
    if (j == s || v > 255 || (j < n && D((unsigned char)t[j]))) return 0;
  }
  return j;
}

/* Validates an IPv6 address text s[0, m) (no zone id). */
static int ipv6_ok(const char *s, size_t m) {
  int groups = 0, dbl = 0, colons = 0;
  size_t j = 0;
  if (m >= 2 && s[0] == ':' && s[1] == ':') { dbl = 1; j = 2; colons = 2; }
  else if (m && s[0] == ':') return 0;
  while (j < m) {
    size_t g = j;
    while (j < m && H((unsigned char)s[j]) && j - g < 5) j++;
    if (j < m && s[j] == '.') { /* an embedded IPv4 ends the address */
      size_t e = ipv4_at(s, m, g);
      if (e != m) return 0;
      groups += 2;
      j = m;
      break;
    }
    if (j == g || j - g > 4) return 0;
    groups++;
    if (j == m) break;
    if (s[j] != ':') return 0;
    j++;
    colons++;
    if (j < m && s[j] == ':') {
      if (dbl) return 0;
      dbl = 1;
      j++;
      colons++;
      if (j == m) break;
    } else if (j == m) return 0; /* a single trailing colon */
  }
  if (colons < 2 || groups == 0) return 0; /* lone "::" is not taken */
  return dbl ? groups <= 7 : groups == 8;
}

static int ip6_char(int c) { return H(c) || c == ':' || c == '.'; }

int redact__scan_ip(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i), c = (unsigned char)t[i];
  if (D(c) && !AN(p) && p != '.' && p != ':') {
    size_t e = ipv4_at(t, n, i);
    if (e && !AN(redact__at(t, n, e)) && !(redact__at(t, n, e) == '.' && D(redact__at(t, n, e + 1))) &&
        redact__at(t, n, e) != ':') {
      *end = e;
      return 1;
    }
  }
  if (!(H(c) || c == ':') || ip6_char(p) || AN(p)) return 0;
  size_t j = i;
  while (j < n && j - i < 46 && ip6_char((unsigned char)t[j])) j++;
  if (AN(redact__at(t, n, j)) && redact__at(t, n, j) != '%') return 0;
  size_t m = j - i;
  while (m > 0 && (t[i + m - 1] == '.')) m--;
  if (!ipv6_ok(t + i, m)) {
    if (m > 0 && t[i + m - 1] == ':' && (m < 2 || t[i + m - 2] != ':') && ipv6_ok(t + i, m - 1)) m--;
    else return 0;
  }
  j = i + m;
  if (j + 1 < n && t[j] == '%' && AN((unsigned char)t[j + 1])) { /* zone id */
    j++;
    while (j < n && j - i < 64 && (AN((unsigned char)t[j]) || t[j] == '_')) j++;
  }
  *end = j;
  return 1;
}

int redact__scan_mac(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i);
  if (AN(p) || p == ':' || p == '-' || p == '.' || n - i < 14) return 0;
  size_t e = 0;
  if (n - i >= 17 && (t[i + 2] == ':' || t[i + 2] == '-')) {
    char sep = t[i + 2];
    for (int k = 0; k < 6; k++) {
      const char *g = t + i + 3 * k;
      if (!H((unsigned char)g[0]) || !H((unsigned char)g[1]) || (k < 5 && g[2] != sep)) return 0;
    }
    e = i + 17;
    if (e < n && (t[e] == sep || t[e] == ':' || t[e] == '-') && H(redact__at(t, n, e + 1))) return 0;
  } else if (t[i + 4] == '.' && t[i + 9] == '.') {
    for (int k = 0; k < 14; k++)
      if (k == 4 || k == 9 ? t[i + k] != '.' : !H((unsigned char)t[i + k])) return 0;
    e = i + 14;
    if (e < n && t[e] == '.' && H(redact__at(t, n, e + 1))) return 0;
  } else return 0;
  if (AN(redact__at(t, n, e))) return 0;
  /* all zero and broadcast are placeholders, not devices */
  int zero = 1, ff = 1;
  for (size_t k = i; k < e; k++) {
    if (!H((unsigned char)t[k])) continue;
    if (t[k] != '0') zero = 0;
    if (t[k] != 'f' && t[k] != 'F') ff = 0;
  }
  if (zero || ff) return 0;
  *end = e;
  return 1;
}
