/* privacy/redact_num — scanners for numbers that identify people: payment cards (13-19
 * digits, or 12 with a Maestro prefix; spaces or dashes; Luhn), US SSNs (area/group/serial
 * rules), IBANs (country length, one case, groups of four, mod 97), phone numbers (international "+CC ..." and
 * grouped national formats)
 * and dates (the DOB type: full calendar dates). Rules: docs/redaction.md. */
#include <string.h>
#include <strings.h>

#include "privacy/redact.h"
#include "privacy/redact_int.h"

#define D redact__digit
#define A redact__alpha
#define AN redact__alnum

int redact__luhn_ok(const char *d, size_t n) {
  int sum = 0;
  for (size_t k = 0; k < n; k++) {
    int v = d[n - 1 - k] - '0';
    if (k & 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
    sum += v;
  }
  return n > 0 && sum % 10 == 0;
}

int redact__scan_card(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i);
  if (!D((unsigned char)t[i]) || AN(p) || (p && strchr("-.+,/", p))) return 0;
  char digits[20];
  size_t nd = 0, j = i;
  char sep = 0;
  size_t nd_at_end[8], group_end[8];
  int ng = 0;
  while (j < n && nd < 20) {
    while (j < n && D((unsigned char)t[j]) && nd < 20) digits[nd++] = t[j++];
    if (ng < 8) nd_at_end[ng] = nd, group_end[ng] = j, ng++;
    if (j + 1 < n && (t[j] == ' ' || t[j] == '-') && D((unsigned char)t[j + 1]) && (!sep || sep == t[j]) && ng < 8) {
      sep = t[j];
      j++;
      continue;
    }
    break;
  }
  /* the longest run of whole groups with 13..19 digits that passes Luhn */
  for (int g = ng - 1; g >= 0; g--) {
    size_t k = nd_at_end[g], e = group_end[g];
    int maestro12 = k == 12 && ((digits[0] == '5' && (digits[1] == '0' || digits[1] >= '6')) || digits[0] == '6' ||
                                !memcmp(digits, "0604", 4));
    if ((k < 13 && !maestro12) || k > 19 || D(redact__at(t, n, e)) || A(redact__at(t, n, e))) continue;
    /* issuers: industry digits 2-6 (ISO 7812), and 15 digits from 1 (UATP, the old JCB 1800) */
    int one15 = k == 15 && digits[0] == '1';
    if (!maestro12 && !one15 && (digits[0] < '2' || digits[0] > '6')) continue;
    if (!redact__luhn_ok(digits, k)) continue;
    int same = 1;
    for (size_t q = 1; q < k; q++) same &= digits[q] == digits[0];
    if (same) continue;
    *end = e;
    return 1;
  }
  return 0;
}

static int num(const char *s, size_t m) {
  int v = 0;
  for (size_t k = 0; k < m; k++) v = v * 10 + (s[k] - '0');
  return v;
}

static int ssn_ok(const char *a, const char *g, const char *s) {
  int area = num(a, 3), group = num(g, 2), serial = num(s, 4);
  if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0) return 0;
  char all[9];
  memcpy(all, a, 3), memcpy(all + 3, g, 2), memcpy(all + 5, s, 4);
  if (!memcmp(all, "123456789", 9) || !memcmp(all, "078051120", 9) || !memcmp(all, "219099999", 9)) return 0;
  return 1;
}

static const char *const ssn_words[] = {"ssn", "social security", "social sec", "ss#", "ss #", NULL};

int redact__scan_ssn(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i);
  if (!D((unsigned char)t[i]) || AN(p) || (p && strchr("-.+/", p)) || n - i < 9) return 0;
  const char *s = t + i;
  size_t e;
  if (n - i >= 11 && D(s[0]) && D(s[1]) && D(s[2]) && (s[3] == '-' || s[3] == ' ' || s[3] == '.') && s[6] == s[3] &&
      D(s[4]) && D(s[5]) && D(s[7]) && D(s[8]) && D(s[9]) && D(s[10])) {
    if (!ssn_ok(s, s + 4, s + 7)) return 0;
    e = i + 11;
  } else {
    for (int k = 0; k < 9; k++)
      if (!D((unsigned char)s[k])) return 0;
    /* nine bare digits are an SSN only after a word saying so */
    if (!redact__context(t, i, 40, ssn_words) || !ssn_ok(s, s + 3, s + 5)) return 0;
    e = i + 9;
  }
  int c = redact__at(t, n, e);
  if (AN(c) || ((c == '-' || c == '.') && D(redact__at(t, n, e + 1)))) return 0;
  *end = e;
  return 1;
}

/* IBAN lengths by country (ISO 13616 registry). */
static const struct { char cc[3]; unsigned char len; } iban_len[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
    {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DJ", 27},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FK", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32},
    {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19},
    {"MN", 20}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24},
    {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28}, {"TL", 23},
    {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};

static int iban_country_len(const char *s) {
  for (size_t k = 0; k < sizeof iban_len / sizeof *iban_len; k++)
    if (!strncasecmp(s, iban_len[k].cc, 2)) return iban_len[k].len;
  return 0;
}

int redact__iban_ok(const char *s, size_t n) {
  if (n < 15 || n > 34 || (size_t)iban_country_len(s) != n) return 0;
  unsigned r = 0;
  for (size_t k = 0; k < n; k++) {
    int c = (unsigned char)s[(k + 4) % n]; /* the first four move to the end */
    if (D(c)) r = (r * 10 + (unsigned)(c - '0')) % 97;
    else if (A(c)) r = (r * 100 + (unsigned)((c | 0x20) - 'a' + 10)) % 97;
    else return 0;
  }
  if (!D((unsigned char)s[2]) || !D((unsigned char)s[3])) return 0;
  return r == 1;
}

int redact__scan_iban(const char *t, size_t n, size_t i, size_t *end) {
  if (AN(redact__prev(t, i)) || n - i < 15 || !A((unsigned char)t[i]) || !A((unsigned char)t[i + 1]) ||
      !D((unsigned char)t[i + 2]) || !D((unsigned char)t[i + 3]))
    return 0;
  int want = iban_country_len(t + i);
  if (!want) return 0;
  char c[34], sep = 0;
  int m = 0, upper = 0, lower = 0;
  size_t j = i;
  while (j < n && m < want) {
    if (AN((unsigned char)t[j])) {
      upper |= t[j] >= 'A' && t[j] <= 'Z', lower |= t[j] >= 'a' && t[j] <= 'z';
      c[m++] = t[j++];
    } else if ((t[j] == ' ' || t[j] == '-') && (!sep || sep == t[j]) && m % 4 == 0 && m && AN(redact__at(t, n, j + 1)))
      sep = t[j++];
    else break;
  }
  /* one case throughout: "LV80 bANK ..." is not written by a bank */
  if (m != want || (upper && lower) || AN(redact__at(t, n, j)) || !redact__iban_ok(c, (size_t)m)) return 0;
  *end = j;
  return 1;
}

static const char *const phone_words[] = {"phone", "tel", "call", "mobile", "cell", "fax", "desk", "office",
                                          "number", "contact", "whatsapp", "sms", "text me", NULL};

/* Phone numbers. A run of digit groups joined by one separator (space, dash, dot) or a
 * bracketed area code; 7..15 digits, and an extension (x123, ext. 123). With a leading '+'
 * any grouping counts; without, every group after the first has two digits or more, and
 * the rule below says which groupings count. */
int redact__scan_phone(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i), c0 = (unsigned char)t[i];
  if (AN(p) || (p && strchr("+-./_:", p)) || !(c0 == '+' || c0 == '(' || D(c0))) return 0;
  /* not from the middle of a run of digit groups (1,234,567; a card that failed Luhn) */
  if ((p == ',' || p == ' ') && i >= 2 && D((unsigned char)t[i - 2])) return 0;
  size_t j = i, lim = i + 32 < n ? i + 32 : n;
  int plus = c0 == '+', nd = 0, ng = 0, paren = 0, short_group = 0;
  size_t e = 0;
  if (plus) j++;
  while (j < lim) {
    if (t[j] == '(' && !paren) {
      paren = 1;
      j++;
    }
    size_t s = j;
    while (j < lim && D((unsigned char)t[j])) j++;
    if (j == s) break;
    nd += (int)(j - s);
    if (ng > 0 && j - s < 2) short_group = 1;
    ng++;
    if (paren == 1) {
      if (j >= lim || t[j] != ')') return 0;
      paren = 2;
      j++;
    }
    e = j;
    if (nd > 15) return 0;
    /* a separator: one of " -.", or ") " already eaten, or none before '(' */
    if (j + 1 < lim && (t[j] == ' ' || t[j] == '-' || t[j] == '.') &&
        (D((unsigned char)t[j + 1]) || (t[j + 1] == '(' && !paren))) {
      j++;
      continue;
    }
    if (j < lim && D((unsigned char)t[j])) continue;
    if (j < lim && t[j] == '(' && !paren) continue;
    break;
  }
  if (!e || paren == 1 || nd < 7 || nd > 15) return 0;
  if (!plus && short_group) return 0;
  if (!plus && paren != 2) {
    /* National formats: three groups or more (415-555-0132, 60-56-85-91; with spaces only,
     * nine digits or more, 699 956 915, or fewer after a phone word), two with a dash
     * or dot and nine digits or more (09-7625400); two space-separated groups or one bare
     * run of 10-11 digits only after a word that says it is a phone number ("call",
     * "mobile:"): without one they are house numbers and postcodes far more often. */
    int seps_space = 1;
    for (size_t k = i; k < e; k++)
      if (t[k] == '-' || t[k] == '.') seps_space = 0;
    int ok = (ng >= 3 && nd >= (seps_space ? 9 : 8)) || (ng == 2 && nd >= 9 && !seps_space) ||
             (ng >= 3 && seps_space && redact__context(t, i, 24, phone_words)) ||
             ((ng == 2 || (nd >= 10 && nd <= 11)) && redact__context(t, i, 24, phone_words));
    /* ddd-dd-dddd is the SSN's shape (one the SSN rules refused), no phone's */
    if (e - i == 11 && t[i + 3] == '-' && t[i + 6] == '-') ok = 0;
    if (!ok) return 0;
  }
  /* an extension: x123, ext 123, ext. 123 */
  size_t x = e;
  if (redact__at(t, n, x) == ' ') x++;
  if ((redact__at(t, n, x) | 0x20) == 'x' && D(redact__at(t, n, x + 1))) x++;
  else if (n - x >= 3 && !strncasecmp(t + x, "ext", 3)) {
    x += 3;
    if (redact__at(t, n, x) == '.') x++;
    if (redact__at(t, n, x) == ' ') x++;
  } else x = 0;
  if (x && D(redact__at(t, n, x))) {
    size_t s = x;
    while (x < n && x - s < 6 && D((unsigned char)t[x])) x++;
    if (!AN(redact__at(t, n, x))) e = x;
  }
  int c = redact__at(t, n, e);
  if (AN(c) || ((c == '-' || c == '.') && D(redact__at(t, n, e + 1)))) return 0;
  *end = e;
  return 1;
}

/* Dates. */
static const char *const months[] = {"january", "february", "march", "april", "may", "june", "july", "august",
                                     "september", "october", "november", "december"};

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int date_ok(int y, int m, int d) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1) return 0;
  return d <= mdays[m - 1] + (m == 2 && leap(y));
}

/* A month name or its three-letter abbreviation (optionally with a dot) at j: 1..12 and
 * *after, or 0. */
static int month_at(const char *t, size_t n, size_t j, size_t *after) {
  if (AN(redact__prev(t, j))) return 0;
  for (int m = 0; m < 12; m++) {
    size_t l = strlen(months[m]);
    if (n - j >= l && !strncasecmp(t + j, months[m], l) && !A(redact__at(t, n, j + l))) {
      *after = j + l;
      return m + 1;
    }
    if (n - j >= 3 && !strncasecmp(t + j, months[m], 3)) {
      size_t a = j + 3;
      if (m == 8 && n - j >= 4 && (t[j + 3] | 0x20) == 't') a++; /* "Sept" */
      if (A(redact__at(t, n, a))) continue;
      if (redact__at(t, n, a) == '.') a++;
      *after = a;
      return m + 1;
    }
  }
  return 0;
}

/* Up to max digits at *j: the value, or -1 when there are fewer than min. */
static int digits(const char *t, size_t n, size_t *j, int min, int max) {
  int v = 0, k = 0;
  while (*j < n && k < max && D((unsigned char)t[*j])) v = v * 10 + (t[(*j)++] - '0'), k++;
  if (k < min || (*j < n && D((unsigned char)t[*j]))) return -1;
  return v;
}

static const char *const dob_words[] = {"born", "dob", "d.o.b", "birth", "birthday", NULL};

/* A year after "Month D, " or "D Month ": four digits, or two after a birth word. */
static int year_at(const char *t, size_t n, size_t *j, size_t i) {
  size_t s = *j;
  int y = digits(t, n, j, 4, 4);
  if (y >= 0) return y;
  *j = s;
  y = digits(t, n, j, 2, 2);
  if (y < 0 || !redact__context(t, i, 40, dob_words)) return -1;
  return y + (y > 30 ? 1900 : 2000);
}

static size_t ordinal(const char *t, size_t n, size_t j) {
  static const char *const suf[] = {"st", "nd", "rd", "th"};
  for (int k = 0; k < 4; k++)
    if (n - j >= 2 && !strncasecmp(t + j, suf[k], 2) && !A(redact__at(t, n, j + 2))) return j + 2;
  return j;
}

int redact__scan_dob(const char *t, size_t n, size_t i, size_t *end) {
  int p = redact__prev(t, i), c0 = (unsigned char)t[i];
  if (AN(p) || (p && strchr("-./:", p))) return 0;
  size_t j = i, e = 0;
  if (D(c0)) {
    int a = digits(t, n, &j, 1, 4);
    char sep = (char)redact__at(t, n, j);
    if (a >= 0 && (sep == '-' || sep == '/' || sep == '.') && j - i == 4) { /* YYYY-MM-DD */
      j++;
      int m = digits(t, n, &j, 1, 2);
      if (m < 0 || redact__at(t, n, j) != sep) return 0;
      j++;
      int d = digits(t, n, &j, 1, 2);
      if (d < 0 || !date_ok(a, m, d)) return 0;
      e = j;
    } else if (a >= 0 && (sep == '-' || sep == '/' || sep == '.') && j - i <= 2) { /* DD/MM/YYYY, MM/DD/YYYY */
      j++;
      int b = digits(t, n, &j, 1, 2);
      if (b < 0 || redact__at(t, n, j) != sep) return 0;
      j++;
      size_t ys = j;
      int y = digits(t, n, &j, 4, 4);
      if (y < 0) {
        j = ys;
        y = digits(t, n, &j, 2, 2);
        if (y < 0 || !redact__context(t, i, 40, dob_words)) return 0;
        y += y > 30 ? 1900 : 2000;
      }
      if (!date_ok(y, b, a) && !date_ok(y, a, b)) return 0;
      e = j;
    } else if (a >= 1 && a <= 31 && j - i <= 2) { /* D Month YYYY */
      j = ordinal(t, n, j);
      if (redact__at(t, n, j) != ' ') return 0;
      j++;
      if (n - j >= 3 && !strncasecmp(t + j, "of ", 3)) j += 3;
      int m = month_at(t, n, j, &j);
      if (!m) return 0;
      if (redact__at(t, n, j) == ',') j++;
      if (redact__at(t, n, j) != ' ') return 0;
      j++;
      int y = year_at(t, n, &j, i);
      if (y < 0 || !date_ok(y, m, a)) return 0;
      e = j;
    } else return 0;
  } else if (A(c0)) { /* Month D, YYYY */
    int m = month_at(t, n, i, &j);
    if (!m || redact__at(t, n, j) != ' ') return 0;
    j++;
    int d = digits(t, n, &j, 1, 2);
    if (d < 0) return 0;
    j = ordinal(t, n, j);
    if (redact__at(t, n, j) == ',') j++;
    if (redact__at(t, n, j) != ' ') return 0;
    j++;
    int y = year_at(t, n, &j, i);
    if (y < 0 || !date_ok(y, m, d)) return 0;
    e = j;
  } else return 0;
  int c = redact__at(t, n, e);
  if (AN(c) || ((c == '-' || c == '/' || c == '.') && D(redact__at(t, n, e + 1)))) return 0;
  *end = e;
  return 1;
}
