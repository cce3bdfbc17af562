/* agent/neg_intent — seek/offer intents and tag matching (see neg_intent.h). */
#include "agent/neg_intent.h"

#include <string.h>

#include "core/err.h"

json_t *neg_intent_to_json(const neg_intent *in) {
  json_t *j = json_object(), *tags = json_array();
  json_object_set_new(j, "kind", json_string(in->seek ? "seek" : "offer"));
  for (int i = 0; i < in->n_tags; i++) json_array_append_new(tags, json_string(in->tags[i]));
  json_object_set_new(j, "tags", tags);
  json_t *issues = json_array();
  for (int i = 0; i < in->schema.n_issues; i++) {
    const neg_issue *is = &in->schema.issues[i];
    json_t *o = json_object(), *vals = json_array();
    json_object_set_new(o, "name", json_string(is->name));
    if (is->role) json_object_set_new(o, "role", json_string(neg_role_name(is->role)));
    for (int v = 0; v < is->n_values; v++) json_array_append_new(vals, json_string(is->values[v]));
    json_object_set_new(o, "values", vals);
    json_array_append_new(issues, o);
  }
  json_object_set_new(j, "issues", issues);
  if (in->expires_s) json_object_set_new(j, "expires_s", json_integer((json_int_t)in->expires_s));
  return j;
}

static int tag_ok(const char *t, size_t n) {
  if (!n || n >= NEG_MAX_NAME) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= '0' && t[i] <= '9') || t[i] == '.' || t[i] == '_' || t[i] == '-')) return 0;
  return 1;
}

int neg_intent_from_json(const json_t *j, neg_intent *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  const char *kind = json_string_value(json_object_get(j, "kind"));
  if (!kind || (strcmp(kind, "seek") && strcmp(kind, "offer")))
    return err_set(err, cap, ERR_FORMAT, "intent: kind must be seek or offer");
  out->seek = !strcmp(kind, "seek");
  const json_t *tags = json_object_get(j, "tags");
  if (!json_is_array(tags) || json_array_size(tags) < 1 || json_array_size(tags) > NEG_INTENT_MAX_TAGS)
    return err_set(err, cap, ERR_FORMAT, "intent: tags must be an array of 1..%d tags", NEG_INTENT_MAX_TAGS);
  for (size_t i = 0; i < json_array_size(tags); i++) {
    const json_t *t = json_array_get(tags, i);
    if (!json_is_string(t) || !tag_ok(json_string_value(t), json_string_length(t)))
      return err_set(err, cap, ERR_FORMAT, "intent: tags[%zu] must be 1..%d of [a-z0-9._-]", i, NEG_MAX_NAME - 1);
    memcpy(out->tags[out->n_tags++], json_string_value(t), json_string_length(t) + 1);
  }
  char why[200];
  if (neg_domain_issues_from_json(json_object_get(j, "issues"), &out->schema, why, sizeof why))
    return err_set(err, cap, ERR_FORMAT, "intent: %s", why);
  const json_t *ex = json_object_get(j, "expires_s");
  if (ex && (!json_is_integer(ex) || json_integer_value(ex) < 0))
    return err_set(err, cap, ERR_FORMAT, "intent: expires_s must be a non-negative integer");
  out->expires_s = ex ? (uint64_t)json_integer_value(ex) : 0;
  return 0;
}

int neg_intent_match(const neg_intent *s, const neg_intent *o, uint64_t now_s) {
  if (s->seek == o->seek) return 0;
  if ((s->expires_s && now_s >= s->expires_s) || (o->expires_s && now_s >= o->expires_s)) return 0;
  int shared = 0;
  for (int i = 0; i < s->n_tags; i++)
    for (int k = 0; k < o->n_tags; k++)
      if (!strcmp(s->tags[i], o->tags[k])) shared++;
  if (!shared) return 0;
  for (int i = 0; i < s->schema.n_issues; i++) {
    int found = 0;
    for (int k = 0; k < o->schema.n_issues; k++) found |= !strcmp(s->schema.issues[i].name, o->schema.issues[k].name);
    if (!found) return 0;
  }
  return shared;
}
