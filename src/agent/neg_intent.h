/* agent/neg_intent — what an agent publishes to be found: an intent to seek or to offer,
 * with tags and the terms schema (the issues it negotiates and their values), as JSON
 *   {"kind":"seek"|"offer", "tags":["llm","gen",...], "issues":[{name, role?, values}],
 *    "expires_s": T}
 * The node puts it in its signed DHT record; a seeker matches offers by tags. Caps:
 * NEG_INTENT_MAX_TAGS tags of NEG_MAX_NAME-1 bytes ([a-z0-9._-]), the domain caps of
 * neg_scenario. Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_INTENT_H
#define APIARY_AGENT_NEG_INTENT_H

#include <jansson.h>

#include "agent/neg_scenario.h"

#define NEG_INTENT_MAX_TAGS 16

typedef struct neg_intent {
  int seek;                                      /* 1 seek, 0 offer */
  int n_tags;
  char tags[NEG_INTENT_MAX_TAGS][NEG_MAX_NAME];
  neg_domain schema;                             /* the issues on the table */
  uint64_t expires_s;                            /* unix seconds; 0: none */
} neg_intent;

json_t *neg_intent_to_json(const neg_intent *in);
/* 0 or ERR_FORMAT with a message. Borrows j. */
int neg_intent_from_json(const json_t *j, neg_intent *out, char *err, size_t cap);
/* How well offer o answers seek s at now_s: 0 when they cannot negotiate (same kind,
 * expired, no shared tag, or an issue of the seeker missing from the offer's schema),
 * else the number of shared tags. */
int neg_intent_match(const neg_intent *s, const neg_intent *o, uint64_t now_s);

#endif
