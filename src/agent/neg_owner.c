/* agent/neg_owner — an owner's intent file (see neg_owner.h). The mandate is parsed by
 * the scenario parser: the intent's issues and the mandate as both sides of a scenario. */
#include "agent/neg_owner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int neg_owner_id_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (!n || n >= NEG_MAX_NAME) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
      return 0;
  return 1;
}

int neg_owner_from_json(const json_t *j, neg_owner_intent *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(j)) return err_set(err, cap, ERR_FORMAT, "intent file: not a JSON object");
  const char *id = json_string_value(json_object_get(j, "id"));
  if (!neg_owner_id_ok(id)) return err_set(err, cap, ERR_FORMAT, "intent file: id must be 1..63 of [a-z0-9._-]");
  snprintf(out->id, sizeof out->id, "%s", id);
  int rc = neg_intent_from_json(j, &out->intent, err, cap);
  if (rc) return rc;
  const json_t *name = json_object_get(j, "name");
  if (name && (!json_is_string(name) || !json_string_length(name) || json_string_length(name) >= NEG_MAX_NAME))
    return err_set(err, cap, ERR_FORMAT, "intent file: name must be 1..63 bytes");
  snprintf(out->intent.schema.name, sizeof out->intent.schema.name, "%s", name ? json_string_value(name) : id);
  const json_t *st = json_object_get(j, "strategy");
  out->strategy = NEG_STRAT_PARETO;
  if (st && (!json_is_string(st) || neg_strategy_parse(json_string_value(st), &out->strategy)))
    return err_set(err, cap, ERR_FORMAT, "intent file: strategy must be boulware, linear, conceder or pareto");
  const json_t *m = json_object_get(j, "mandate");
  if (!json_is_object(m)) return err_set(err, cap, ERR_FORMAT, "intent file: mandate must be an object (a scenario side)");
  /* The scenario parser checks the mandate against the issues: both sides are this one. */
  json_t *side = json_deep_copy(m);
  json_t *sc = side ? json_pack("{s:s, s:O, s:[O, O]}", "name", out->intent.schema.name, "issues",
                                json_object_get(j, "issues"), "sides", side, side)
                    : NULL;
  if (sc) {
    json_object_set_new(json_array_get(json_object_get(sc, "sides"), 0), "name", json_string("owner"));
    json_t *b = json_deep_copy(side);
    json_object_set_new(b, "name", json_string("other"));
    json_array_set_new(json_object_get(sc, "sides"), 1, b);
  }
  json_decref(side);
  if (!sc) return err_set(err, cap, ERR_NOMEM, "intent file: out of memory");
  neg_scenario *s = malloc(sizeof *s);
  char why[300];
  rc = s ? neg_scenario_from_json(sc, s, why, sizeof why) : ERR_NOMEM;
  json_decref(sc);
  if (!rc) out->mandate = s->side[0];
  free(s);
  if (rc == ERR_NOMEM) return err_set(err, cap, rc, "intent file: out of memory");
  if (rc) return err_set(err, cap, ERR_FORMAT, "intent file: mandate: %s", why);
  return 0;
}

int neg_owner_parse(const char *text, size_t len, neg_owner_intent *out, char *err, size_t cap) {
  if (len > NEG_OWNER_MAX) return err_set(err, cap, ERR_TOOBIG, "intent file: larger than %d bytes", NEG_OWNER_MAX);
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) return err_set(err, cap, ERR_FORMAT, "intent file: line %d: %s", je.line, je.text);
  int rc = neg_owner_from_json(j, out, err, cap);
  json_decref(j);
  return rc;
}

json_t *neg_owner_public(const neg_owner_intent *o) {
  json_t *j = neg_intent_to_json(&o->intent);
  if (!j) return NULL;
  json_object_set_new(j, "id", json_string(o->id));
  json_object_set_new(j, "name", json_string(o->intent.schema.name));
  return j;
}

int neg_owner_same_schema(const neg_domain *a, const neg_domain *b) {
  if (a->n_issues != b->n_issues) return 0;
  for (int i = 0; i < a->n_issues; i++) {
    const neg_issue *x = &a->issues[i], *y = &b->issues[i];
    if (strcmp(x->name, y->name) || x->role != y->role || x->n_values != y->n_values) return 0;
    for (int v = 0; v < x->n_values; v++)
      if (strcmp(x->values[v], y->values[v])) return 0;
  }
  return 1;
}
