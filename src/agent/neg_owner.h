/* agent/neg_owner — an owner's intent file: the public intent (kind, tags, terms schema)
 * plus the owner's private mandate for it and the strategy, as JSON
 *   {"id": "gen-sell", "kind": "offer"|"seek", "tags": ["llm","gen"], "name": "gen-price",
 *    "issues": [{"name": "price_gen", "role": "price", "values": ["2000","3000"]}],
 *    "expires_s": 0, "strategy": "linear",
 *    "mandate": {"weights": [1], "scores": [[0, 1]], "reservation": 0.2, "deadline": 40,
 *                "required": {...}, "confidential": [...], "expires_ms": 0}}
 * The mandate uses a scenario side's keys (agent/neg_scenario; "name" not needed). Only
 * the public part (neg_owner_public) ever leaves the node. Caps: the file at most
 * NEG_OWNER_MAX bytes; id 1-63 bytes of [a-z0-9._-]; the intent's and the scenario's caps.
 * Pure; thread-safe; the parser takes untrusted text (fuzzed by tests/fuzz/fuzz_neg_owner.c). */
#ifndef APIARY_AGENT_NEG_OWNER_H
#define APIARY_AGENT_NEG_OWNER_H

#include <jansson.h>

#include "agent/neg_intent.h"
#include "agent/neg_scenario.h"
#include "agent/neg_strategy.h"

#define NEG_OWNER_MAX 65536

typedef struct neg_owner_intent {
  char id[NEG_MAX_NAME];        /* the owner's name for it, unique on the node */
  neg_intent intent;            /* public: kind, tags, schema (schema.name = "name") */
  neg_mandate mandate;          /* private */
  neg_strategy_kind strategy;
} neg_owner_intent;

/* Parses an intent file (borrowed j). 0 or ERR_FORMAT with a message naming the field. */
int neg_owner_from_json(const json_t *j, neg_owner_intent *out, char *err, size_t cap);
/* The same from text (at most NEG_OWNER_MAX bytes; ERR_TOOBIG beyond). */
int neg_owner_parse(const char *text, size_t len, neg_owner_intent *out, char *err, size_t cap);
/* The public part {id, kind, tags, name, issues, expires_s} (owned; NULL on no memory). */
json_t *neg_owner_public(const neg_owner_intent *o);
/* 1 when two schemas have the same issues (names, roles, values, in order). */
int neg_owner_same_schema(const neg_domain *a, const neg_domain *b);
/* 1 when s is a valid intent id. */
int neg_owner_id_ok(const char *s);

#endif
