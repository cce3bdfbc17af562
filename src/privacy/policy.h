/* privacy/policy — where a request's text may go: allow (anywhere), redact (to another node
 * only with personal data replaced by placeholders, privacy/redact_map) or local-only
 * (never off this device: refused rather than routed when the model is not local).
 *
 * A request's level is the strictest of the levels that apply to it: the node's
 * ([privacy] default), the API token's, the agent's and the request's own
 * (X-Apiary-Privacy header or "privacy" body field). Anyone in that chain can tighten,
 * nobody can loosen: a client cannot ask for "allow" on a token made "redact". The order
 * is allow < redact < local-only. Enforced in market/gen, the one generation path.
 *
 * Pure functions: any thread. */
#ifndef APIARY_PRIVACY_POLICY_H
#define APIARY_PRIVACY_POLICY_H

#include <stddef.h>

typedef enum policy_level {
  POLICY_UNSET = 0,         /* nothing said: the others decide (allow when all are unset) */
  POLICY_ALLOW = 1,
  POLICY_REDACT = 2,
  POLICY_LOCAL_ONLY = 3,
} policy_level;

/* "allow", "redact", "local-only" (also "local_only", "local"; case-insensitive) from
 * s[0, len): the level, or ERR_INVAL. */
int policy_parse(const char *s, size_t len);
const char *policy_name(policy_level p); /* "allow", "redact", "local-only", "unset" */
/* The stricter of a and b. */
policy_level policy_strictest(policy_level a, policy_level b);

#endif
