/* agent/neg_scenario — domain, preferences, mandate, utility and the scenario JSON file.
 * See neg_scenario.h; the format is documented in docs/negotiation.md. */
#include "agent/neg_scenario.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

static const char *role_names[] = {"", "price", "volume", "latency", "expiry"};

const char *neg_role_name(neg_role r) {
  return (unsigned)r < sizeof role_names / sizeof *role_names ? role_names[r] : "";
}

double neg_utility(const neg_domain *d, const neg_prefs *p, const neg_bid *b) {
  double u = 0;
  for (int i = 0; i < d->n_issues; i++) u += p->weight[i] * p->score[i][b->v[i]];
  return u;
}

size_t neg_domain_n_bids(const neg_domain *d) {
  size_t n = 1;
  for (int i = 0; i < d->n_issues; i++) {
    n *= (size_t)d->issues[i].n_values;
    if (n > NEG_MAX_BIDS) return NEG_MAX_BIDS + 1;
  }
  return n;
}

void neg_bid_from_index(const neg_domain *d, size_t idx, neg_bid *out) {
  memset(out, 0, sizeof *out);
  for (int i = d->n_issues - 1; i >= 0; i--) {
    size_t nv = (size_t)d->issues[i].n_values;
    out->v[i] = (uint8_t)(idx % nv);
    idx /= nv;
  }
}

int neg_bid_valid(const neg_domain *d, const neg_bid *b) {
  for (int i = 0; i < NEG_MAX_ISSUES; i++)
    if (i < d->n_issues ? b->v[i] >= d->issues[i].n_values : b->v[i] != 0) return 0;
  return 1;
}

int neg_value_index(const neg_issue *is, const char *text) {
  for (int j = 0; j < is->n_values; j++)
    if (!strcmp(is->values[j], text)) return j;
  return -1;
}

void neg_mandate_default(const neg_domain *d, int deadline, neg_mandate *out) {
  memset(out, 0, sizeof *out);
  out->deadline = deadline;
  for (int i = 0; i < d->n_issues; i++)
    out->allowed[i] = d->issues[i].n_values >= 64 ? ~0ull : (1ull << d->issues[i].n_values) - 1;
}

int neg_mandate_validate(const neg_domain *d, const neg_mandate *m, char *err, size_t cap) {
  double sum = 0;
  for (int i = 0; i < d->n_issues; i++) {
    double w = m->prefs.weight[i];
    if (!(w >= 0 && w <= 1)) return err_set(err, cap, ERR_FORMAT, "weight of '%s' not in [0,1]", d->issues[i].name);
    sum += w;
    for (int j = 0; j < d->issues[i].n_values; j++) {
      double s = m->prefs.score[i][j];
      if (!(s >= 0 && s <= 1))
        return err_set(err, cap, ERR_FORMAT, "score of '%s'='%s' not in [0,1]", d->issues[i].name, d->issues[i].values[j]);
    }
    uint64_t all = d->issues[i].n_values >= 64 ? ~0ull : (1ull << d->issues[i].n_values) - 1;
    if (!(m->allowed[i] & all)) return err_set(err, cap, ERR_FORMAT, "no value of '%s' is allowed", d->issues[i].name);
  }
  if (fabs(sum - 1) > 1e-6) return err_set(err, cap, ERR_FORMAT, "weights sum to %g, not 1", sum);
  if (!(m->prefs.reservation >= 0 && m->prefs.reservation <= 1))
    return err_set(err, cap, ERR_FORMAT, "reservation not in [0,1]");
  if (m->deadline < 1 || m->deadline > NEG_MAX_ROUNDS)
    return err_set(err, cap, ERR_FORMAT, "deadline must be 1..%d rounds", NEG_MAX_ROUNDS);
  return 0;
}

/* Copies a JSON string into dst (NEG_MAX_NAME) or fails with a message naming what. */
static int name_copy(const json_t *s, char dst[static NEG_MAX_NAME], const char *what, char *err, size_t cap) {
  if (!json_is_string(s)) return err_set(err, cap, ERR_FORMAT, "%s: expected a string", what);
  size_t n = json_string_length(s);
  if (n == 0 || n >= NEG_MAX_NAME || memchr(json_string_value(s), 0, n))
    return err_set(err, cap, ERR_FORMAT, "%s: must be 1..%d bytes without NUL", what, NEG_MAX_NAME - 1);
  memcpy(dst, json_string_value(s), n + 1);
  return 0;
}

static int parse_issue(const json_t *j, int idx, neg_issue *is, char *err, size_t cap) {
  char what[96];
  snprintf(what, sizeof what, "issues[%d].name", idx);
  if (!json_is_object(j)) return err_set(err, cap, ERR_FORMAT, "issues[%d]: expected an object", idx);
  int rc = name_copy(json_object_get(j, "name"), is->name, what, err, cap);
  if (rc) return rc;
  const json_t *role = json_object_get(j, "role");
  is->role = NEG_ROLE_NONE;
  if (role) {
    if (!json_is_string(role)) return err_set(err, cap, ERR_FORMAT, "issue '%s': role must be a string", is->name);
    for (int r = 1; r < (int)(sizeof role_names / sizeof *role_names); r++)
      if (!strcmp(json_string_value(role), role_names[r])) is->role = (neg_role)r;
    if (!is->role)
      return err_set(err, cap, ERR_FORMAT, "issue '%s': unknown role '%s' (price, volume, latency, expiry)", is->name,
                     json_string_value(role));
  }
  const json_t *vals = json_object_get(j, "values");
  if (!json_is_array(vals) || json_array_size(vals) < 1 || json_array_size(vals) > NEG_MAX_VALUES)
    return err_set(err, cap, ERR_FORMAT, "issue '%s': values must be an array of 1..%d strings", is->name, NEG_MAX_VALUES);
  is->n_values = (int)json_array_size(vals);
  for (int v = 0; v < is->n_values; v++) {
    snprintf(what, sizeof what, "issue '%s' values[%d]", is->name, v);
    if ((rc = name_copy(json_array_get(vals, (size_t)v), is->values[v], what, err, cap))) return rc;
    if (neg_value_index(is, is->values[v]) != v)
      return err_set(err, cap, ERR_FORMAT, "issue '%s': value '%s' appears twice", is->name, is->values[v]);
    if (is->role) {
      const char *s = is->values[v];
      for (; *s; s++)
        if (*s < '0' || *s > '9')
          return err_set(err, cap, ERR_FORMAT, "issue '%s' has role %s: value '%s' must be a decimal integer", is->name,
                         role_names[is->role], is->values[v]);
    }
  }
  return 0;
}

/* A list of issue names (borrowed JSON array) into a bit mask. */
static int issue_mask(const neg_domain *d, const json_t *a, const char *what, uint32_t *out, char *err, size_t cap) {
  *out = 0;
  if (!a) return 0;
  if (!json_is_array(a) || json_array_size(a) > NEG_MAX_ISSUES)
    return err_set(err, cap, ERR_FORMAT, "%s: expected an array of issue names", what);
  for (size_t k = 0; k < json_array_size(a); k++) {
    const char *n = json_string_value(json_array_get(a, k));
    int hit = -1;
    for (int i = 0; n && i < d->n_issues; i++)
      if (!strcmp(d->issues[i].name, n)) hit = i;
    if (hit < 0) return err_set(err, cap, ERR_FORMAT, "%s[%zu]: not an issue of the domain", what, k);
    *out |= 1u << hit;
  }
  return 0;
}

static int parse_side(const neg_domain *d, const json_t *j, int s, char name[static NEG_MAX_NAME], neg_mandate *m,
                      char *err, size_t cap) {
  char what[128];
  if (!json_is_object(j)) return err_set(err, cap, ERR_FORMAT, "sides[%d]: expected an object", s);
  snprintf(what, sizeof what, "sides[%d].name", s);
  int rc = name_copy(json_object_get(j, "name"), name, what, err, cap);
  if (rc) return rc;
  const json_t *dl = json_object_get(j, "deadline");
  if (!json_is_integer(dl) || json_integer_value(dl) < 1 || json_integer_value(dl) > NEG_MAX_ROUNDS)
    return err_set(err, cap, ERR_FORMAT, "side '%s': deadline must be an integer 1..%d (rounds)", name, NEG_MAX_ROUNDS);
  neg_mandate_default(d, (int)json_integer_value(dl), m);
  const json_t *ex = json_object_get(j, "expires_ms");
  if (ex && (!json_is_integer(ex) || json_integer_value(ex) < 0))
    return err_set(err, cap, ERR_FORMAT, "side '%s': expires_ms must be a non-negative integer", name);
  m->expires_ms = ex ? (uint64_t)json_integer_value(ex) : 0;
  const json_t *res = json_object_get(j, "reservation"), *w = json_object_get(j, "weights"), *sc = json_object_get(j, "scores");
  if (!json_is_number(res)) return err_set(err, cap, ERR_FORMAT, "side '%s': reservation must be a number in [0,1]", name);
  m->prefs.reservation = json_number_value(res);
  if (!json_is_array(w) || json_array_size(w) != (size_t)d->n_issues)
    return err_set(err, cap, ERR_FORMAT, "side '%s': weights must be an array of %d numbers (one per issue)", name, d->n_issues);
  if (!json_is_array(sc) || json_array_size(sc) != (size_t)d->n_issues)
    return err_set(err, cap, ERR_FORMAT, "side '%s': scores must be an array of %d arrays (one per issue)", name, d->n_issues);
  for (int i = 0; i < d->n_issues; i++) {
    const json_t *wi = json_array_get(w, (size_t)i), *si = json_array_get(sc, (size_t)i);
    if (!json_is_number(wi)) return err_set(err, cap, ERR_FORMAT, "side '%s': weights[%d] is not a number", name, i);
    m->prefs.weight[i] = json_number_value(wi);
    if (!json_is_array(si) || json_array_size(si) != (size_t)d->issues[i].n_values)
      return err_set(err, cap, ERR_FORMAT, "side '%s': scores[%d] must have %d numbers (issue '%s' has %d values)", name, i,
                     d->issues[i].n_values, d->issues[i].name, d->issues[i].n_values);
    for (int v = 0; v < d->issues[i].n_values; v++) {
      const json_t *x = json_array_get(si, (size_t)v);
      if (!json_is_number(x)) return err_set(err, cap, ERR_FORMAT, "side '%s': scores[%d][%d] is not a number", name, i, v);
      m->prefs.score[i][v] = json_number_value(x);
    }
  }
  const json_t *req = json_object_get(j, "required");
  if (req) {
    if (!json_is_object(req)) return err_set(err, cap, ERR_FORMAT, "side '%s': required must map issue -> [values]", name);
    const char *k;
    const json_t *vals;
    json_object_foreach((json_t *)req, k, vals) {
      int i = 0;
      while (i < d->n_issues && strcmp(d->issues[i].name, k)) i++;
      if (i == d->n_issues) return err_set(err, cap, ERR_FORMAT, "side '%s': required: '%s' is not an issue", name, k);
      if (!json_is_array(vals)) return err_set(err, cap, ERR_FORMAT, "side '%s': required['%s'] must be an array", name, k);
      m->allowed[i] = 0;
      for (size_t x = 0; x < json_array_size(vals); x++) {
        const char *vs = json_string_value(json_array_get(vals, x));
        int vi = vs ? neg_value_index(&d->issues[i], vs) : -1;
        if (vi < 0) return err_set(err, cap, ERR_FORMAT, "side '%s': required['%s'][%zu] is not a value of it", name, k, x);
        m->allowed[i] |= 1ull << vi;
      }
    }
  }
  snprintf(what, sizeof what, "side '%s': confidential", name);
  if ((rc = issue_mask(d, json_object_get(j, "confidential"), what, &m->confidential, err, cap))) return rc;
  char why[200];
  if (neg_mandate_validate(d, m, why, sizeof why)) return err_set(err, cap, ERR_FORMAT, "side '%s': %s", name, why);
  return 0;
}

int neg_domain_issues_from_json(const json_t *issues, neg_domain *d, char *err, size_t cap) {
  int rc;
  if (!json_is_array(issues) || json_array_size(issues) < 1 || json_array_size(issues) > NEG_MAX_ISSUES)
    return err_set(err, cap, ERR_FORMAT, "issues: expected an array of 1..%d issues", NEG_MAX_ISSUES);
  d->n_issues = (int)json_array_size(issues);
  for (int i = 0; i < d->n_issues; i++) {
    if ((rc = parse_issue(json_array_get(issues, (size_t)i), i, &d->issues[i], err, cap))) return rc;
    for (int k = 0; k < i; k++)
      if (!strcmp(d->issues[k].name, d->issues[i].name))
        return err_set(err, cap, ERR_FORMAT, "issues: '%s' appears twice", d->issues[i].name);
  }
  return 0;
}

int neg_scenario_from_json(const json_t *j, neg_scenario *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(j)) return err_set(err, cap, ERR_FORMAT, "scenario: expected a JSON object");
  const json_t *nm = json_object_get(j, "name");
  int rc;
  if (nm && (rc = name_copy(nm, out->dom.name, "name", err, cap))) return rc;
  const json_t *sides = json_object_get(j, "sides");
  if ((rc = neg_domain_issues_from_json(json_object_get(j, "issues"), &out->dom, err, cap))) return rc;
  if (!json_is_array(sides) || json_array_size(sides) != 2)
    return err_set(err, cap, ERR_FORMAT, "sides: expected an array of exactly 2 sides");
  for (int s = 0; s < 2; s++)
    if ((rc = parse_side(&out->dom, json_array_get(sides, (size_t)s), s, out->side_name[s], &out->side[s], err, cap)))
      return rc;
  return 0;
}

int neg_scenario_parse(const char *text, size_t len, neg_scenario *out, char *err, size_t cap) {
  if (len > NEG_MAX_FILE) return err_set(err, cap, ERR_TOOBIG, "scenario: %zu bytes, over the %u cap", len, NEG_MAX_FILE);
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!j) return err_set(err, cap, ERR_FORMAT, "scenario: line %d: %s", je.line, je.text);
  int rc = neg_scenario_from_json(j, out, err, cap);
  json_decref(j);
  return rc;
}

json_t *neg_scenario_to_json(const neg_scenario *s) {
  const neg_domain *d = &s->dom;
  json_t *root = json_object(), *issues = json_array(), *sides = json_array();
  if (d->name[0]) json_object_set_new(root, "name", json_string(d->name));
  for (int i = 0; i < d->n_issues; i++) {
    json_t *is = json_object(), *vals = json_array();
    json_object_set_new(is, "name", json_string(d->issues[i].name));
    if (d->issues[i].role) json_object_set_new(is, "role", json_string(neg_role_name(d->issues[i].role)));
    for (int v = 0; v < d->issues[i].n_values; v++) json_array_append_new(vals, json_string(d->issues[i].values[v]));
    json_object_set_new(is, "values", vals);
    json_array_append_new(issues, is);
  }
  for (int k = 0; k < 2; k++) {
    const neg_mandate *m = &s->side[k];
    json_t *side = json_object(), *w = json_array(), *sc = json_array(), *req = json_object(), *conf = json_array();
    json_object_set_new(side, "name", json_string(s->side_name[k]));
    for (int i = 0; i < d->n_issues; i++) {
      json_t *row = json_array(), *ok = json_array();
      json_array_append_new(w, json_real(m->prefs.weight[i]));
      uint64_t all = d->issues[i].n_values >= 64 ? ~0ull : (1ull << d->issues[i].n_values) - 1;
      for (int v = 0; v < d->issues[i].n_values; v++) {
        json_array_append_new(row, json_real(m->prefs.score[i][v]));
        if (m->allowed[i] >> v & 1) json_array_append_new(ok, json_string(d->issues[i].values[v]));
      }
      json_array_append_new(sc, row);
      if ((m->allowed[i] & all) != all) json_object_set_new(req, d->issues[i].name, ok);
      else json_decref(ok);
      if (m->confidential >> i & 1) json_array_append_new(conf, json_string(d->issues[i].name));
    }
    json_object_set_new(side, "weights", w);
    json_object_set_new(side, "scores", sc);
    json_object_set_new(side, "reservation", json_real(m->prefs.reservation));
    json_object_set_new(side, "deadline", json_integer(m->deadline));
    if (m->expires_ms) json_object_set_new(side, "expires_ms", json_integer((json_int_t)m->expires_ms));
    if (json_object_size(req)) json_object_set_new(side, "required", req);
    else json_decref(req);
    if (json_array_size(conf)) json_object_set_new(side, "confidential", conf);
    else json_decref(conf);
    json_array_append_new(sides, side);
  }
  json_object_set_new(root, "issues", issues);
  json_object_set_new(root, "sides", sides);
  return root;
}
