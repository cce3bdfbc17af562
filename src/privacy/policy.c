/* privacy/policy — privacy levels; see policy.h. */
#include "privacy/policy.h"

#include <strings.h>

#include "core/err.h"

int policy_parse(const char *s, size_t len) {
  static const struct { const char *name; policy_level p; } names[] = {
      {"allow", POLICY_ALLOW}, {"redact", POLICY_REDACT}, {"local-only", POLICY_LOCAL_ONLY},
      {"local_only", POLICY_LOCAL_ONLY}, {"local", POLICY_LOCAL_ONLY},
  };
  while (len && (*s == ' ' || *s == '\t')) s++, len--;
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
  for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
    size_t l = 0;
    while (names[k].name[l]) l++;
    if (l == len && !strncasecmp(s, names[k].name, len)) return names[k].p;
  }
  return ERR_INVAL;
}

const char *policy_name(policy_level p) {
  switch (p) {
  case POLICY_ALLOW: return "allow";
  case POLICY_REDACT: return "redact";
  case POLICY_LOCAL_ONLY: return "local-only";
  default: return "unset";
  }
}

policy_level policy_strictest(policy_level a, policy_level b) { return a > b ? a : b; }
