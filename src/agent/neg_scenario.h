/* agent/neg_scenario — the negotiation domain, each side's preferences and mandate, additive
 * utility, and the scenario JSON file (docs/negotiation.md).
 *
 * A domain is a list of issues, each with a discrete list of values (numeric issues such as
 * a price are discretized: their values are decimal strings). A bid picks one value index
 * per issue. A side's preferences give each issue a weight (the weights sum to 1) and each
 * value a score in [0,1]; the utility of a bid is u(bid) = sum_i w_i * score_i[bid_i]. The
 * mandate is what the owner allows: those preferences, the reservation value (no deal is
 * better than one under it), a deadline in rounds, an optional wall-clock expiry, the values
 * each issue may take at all (required terms; the rest are walk-away), and the issues that
 * are confidential (sealed on the wire, docs/negotiation.md "Sealing").
 *
 * Plain structs owned by the caller; pure functions; thread-safe. The parser enforces the
 * caps below and names the offending field in its error message. */
#ifndef APIARY_AGENT_NEG_SCENARIO_H
#define APIARY_AGENT_NEG_SCENARIO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define NEG_MAX_ISSUES 16
#define NEG_MAX_VALUES 64
#define NEG_MAX_NAME 64           /* bytes of an issue or value name, NUL included */
#define NEG_MAX_FILE (1u << 20)   /* scenario / Genius file size cap */
#define NEG_MAX_ROUNDS 10000
#define NEG_MAX_BIDS 262144       /* outcome space the strategies and ground truth enumerate */

/* Roles the market understands (deal payment terms); values of such issues are decimal. */
typedef enum neg_role {
  NEG_ROLE_NONE = 0,
  NEG_ROLE_PRICE,    /* price per 1,000 tokens, wei */
  NEG_ROLE_VOLUME,   /* tokens */
  NEG_ROLE_LATENCY,  /* milliseconds to first token */
  NEG_ROLE_EXPIRY,   /* seconds the deal holds */
} neg_role;

typedef struct neg_issue {
  char name[NEG_MAX_NAME];
  neg_role role;
  int n_values;
  char values[NEG_MAX_VALUES][NEG_MAX_NAME];
} neg_issue;

typedef struct neg_domain {
  char name[NEG_MAX_NAME];
  int n_issues;
  neg_issue issues[NEG_MAX_ISSUES];
} neg_domain;

typedef struct neg_bid {
  uint8_t v[NEG_MAX_ISSUES];   /* value index per issue; entries past n_issues are 0 */
} neg_bid;

typedef struct neg_prefs {
  double weight[NEG_MAX_ISSUES];                 /* sum 1 */
  double score[NEG_MAX_ISSUES][NEG_MAX_VALUES];  /* in [0,1] */
  double reservation;                            /* in [0,1] */
} neg_prefs;

typedef struct neg_mandate {
  neg_prefs prefs;
  int deadline;                        /* rounds: no offer/accept at round >= deadline */
  uint64_t expires_ms;                 /* wall clock (ms since epoch); 0: none */
  uint64_t allowed[NEG_MAX_ISSUES];    /* bit j: value j acceptable (required terms) */
  uint32_t confidential;               /* bit i: issue i sealed on the wire */
} neg_mandate;

typedef struct neg_scenario {
  neg_domain dom;
  char side_name[2][NEG_MAX_NAME];
  neg_mandate side[2];
} neg_scenario;

/* u(bid) under p. */
double neg_utility(const neg_domain *d, const neg_prefs *p, const neg_bid *b);
/* The size of the outcome space, capped: returns min(product, NEG_MAX_BIDS + 1). */
size_t neg_domain_n_bids(const neg_domain *d);
/* The bid with mixed-radix index i (issue 0 varies slowest). */
void neg_bid_from_index(const neg_domain *d, size_t i, neg_bid *out);
/* 1 if every value index is in range. */
int neg_bid_valid(const neg_domain *d, const neg_bid *b);
/* Index of value text in issue i, or -1. */
int neg_value_index(const neg_issue *is, const char *text);
/* A mandate that allows everything (no confidential issue), deadline rounds. */
void neg_mandate_default(const neg_domain *d, int deadline, neg_mandate *out);

/* Parses a scenario file's text (at most NEG_MAX_FILE bytes). Returns 0, ERR_TOOBIG or
 * ERR_FORMAT with a message naming the field in err. Borrows text. */
int neg_scenario_parse(const char *text, size_t len, neg_scenario *out, char *err, size_t cap);
/* The same from parsed JSON (borrowed). */
int neg_scenario_from_json(const json_t *j, neg_scenario *out, char *err, size_t cap);
/* The "issues" array of a scenario (or an intent's schema) into d's issues (borrowed j;
 * d->name untouched). 0 or ERR_FORMAT. */
int neg_domain_issues_from_json(const json_t *issues, neg_domain *d, char *err, size_t cap);
/* Scenario as JSON (returns owned; NULL on allocation failure). Parses back equal. */
json_t *neg_scenario_to_json(const neg_scenario *s);
/* Checks a domain and a side's mandate (weights sum, scores range, ...). 0 or ERR_FORMAT. */
int neg_mandate_validate(const neg_domain *d, const neg_mandate *m, char *err, size_t cap);
const char *neg_role_name(neg_role r);

#endif
