/* agent/neg_genius — Genius XML utility spaces (see neg_genius.h). */
#include "agent/neg_genius.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"

#define XML_MAX_DEPTH 32
#define XML_MAX_ATTRS 32
#define XML_MAX_VAL 256

typedef struct xattr {
  char name[32];
  char value[XML_MAX_VAL];
} xattr;

typedef struct xreader {
  const char *p, *end;
  int depth;
} xreader;

static int is_name(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == ':' ||
         c == '.';
}
static void skip_ws(xreader *x) {
  while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r')) x->p++;
}
static int read_name(xreader *x, char *out, size_t cap) {
  size_t n = 0;
  while (x->p < x->end && is_name(*x->p)) {
    if (n + 1 >= cap) return ERR_FORMAT;
    out[n++] = *x->p++;
  }
  out[n] = 0;
  return n ? 0 : ERR_FORMAT;
}
/* Decodes an attribute value between quotes (the five standard entities). */
static int read_value(xreader *x, char *out, size_t cap) {
  if (x->p >= x->end || (*x->p != '"' && *x->p != '\'')) return ERR_FORMAT;
  char q = *x->p++;
  size_t n = 0;
  static const char *ent[][2] = {{"&quot;", "\""}, {"&apos;", "'"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}};
  while (x->p < x->end && *x->p != q) {
    char c = *x->p;
    size_t adv = 1;
    if (c == '&') {
      c = 0;
      for (size_t k = 0; k < 5; k++) {
        size_t l = strlen(ent[k][0]);
        if ((size_t)(x->end - x->p) >= l && !memcmp(x->p, ent[k][0], l)) c = ent[k][1][0], adv = l;
      }
      if (!c) return ERR_FORMAT;
    } else if (c == '<' || c == 0)
      return ERR_FORMAT;
    if (n + 1 >= cap) return ERR_TOOBIG;
    out[n++] = c;
    x->p += adv;
  }
  if (x->p >= x->end) return ERR_FORMAT;
  x->p++;
  out[n] = 0;
  return 0;
}

/* Next start tag: name, attributes, *closing = 1 for an end tag; returns 1 at the end of
 * input, 0 for a tag, or an error. Text, comments, <?..?> and <!..> are skipped. */
static int next_tag(xreader *x, char name[static 32], xattr *attrs, int *n_attrs, int *closing, int *empty) {
  for (;;) {
    while (x->p < x->end && *x->p != '<') x->p++;
    if (x->p >= x->end) return 1;
    if (x->end - x->p >= 4 && !memcmp(x->p, "<!--", 4)) {
      const char *e = x->p + 4;
      while (e + 3 <= x->end && memcmp(e, "-->", 3)) e++;
      if (e + 3 > x->end) return ERR_FORMAT;
      x->p = e + 3;
      continue;
    }
    if (x->end - x->p >= 2 && (x->p[1] == '?' || x->p[1] == '!')) {
      while (x->p < x->end && *x->p != '>') x->p++;
      if (x->p >= x->end) return ERR_FORMAT;
      x->p++;
      continue;
    }
    break;
  }
  x->p++;
  *closing = x->p < x->end && *x->p == '/';
  if (*closing) x->p++;
  if (read_name(x, name, 32)) return ERR_FORMAT;
  *n_attrs = 0;
  *empty = 0;
  for (;;) {
    skip_ws(x);
    if (x->p >= x->end) return ERR_FORMAT;
    if (*x->p == '>') {
      x->p++;
      break;
    }
    if (*x->p == '/' && x->end - x->p >= 2 && x->p[1] == '>') {
      x->p += 2;
      *empty = 1;
      break;
    }
    if (*closing || *n_attrs >= XML_MAX_ATTRS) return ERR_FORMAT;
    xattr *a = &attrs[(*n_attrs)++];
    if (read_name(x, a->name, sizeof a->name)) return ERR_FORMAT;
    skip_ws(x);
    if (x->p >= x->end || *x->p != '=') return ERR_FORMAT;
    x->p++;
    skip_ws(x);
    int rc = read_value(x, a->value, sizeof a->value);
    if (rc) return rc;
  }
  if (*closing) x->depth--;
  else if (!*empty) x->depth++;
  if (x->depth < 0 || x->depth > XML_MAX_DEPTH) return ERR_FORMAT;
  return 0;
}

static const char *attr(const xattr *a, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(a[i].name, name)) return a[i].value;
  return NULL;
}

static int num(const char *s, double *out) {
  if (!s || !*s) return ERR_FORMAT;
  char *end;
  *out = strtod(s, &end);
  return *end || !isfinite(*out) || *out > 1e12 || *out < -1e12 ? ERR_FORMAT : 0;
}

int neg_genius_parse(const char *xml, size_t len, neg_domain *dom, neg_prefs *prefs, char *err, size_t cap) {
  memset(dom, 0, sizeof *dom);
  if (prefs) memset(prefs, 0, sizeof *prefs);
  if (len > NEG_MAX_FILE) return err_set(err, cap, ERR_TOOBIG, "genius: %zu bytes, over the %u cap", len, NEG_MAX_FILE);
  xreader x = {xml, xml + len, 0};
  char name[32];
  static __thread xattr a[XML_MAX_ATTRS];
  int n, closing, empty, rc, cur = -1, have_space = 0;
  int issue_index[NEG_MAX_ISSUES];
  double w[NEG_MAX_ISSUES] = {0}, ev[NEG_MAX_ISSUES][NEG_MAX_VALUES] = {{0}};
  while (!(rc = next_tag(&x, name, a, &n, &closing, &empty))) {
    if (closing) {
      if (!strcmp(name, "issue")) cur = -1;
      continue;
    }
    if (!strcmp(name, "utility_space")) have_space = 1;
    else if (!strcmp(name, "objective") && !dom->name[0]) {
      const char *nm = attr(a, n, "name");
      snprintf(dom->name, sizeof dom->name, "%.63s", nm ? nm : "");
    } else if (!strcmp(name, "issue")) {
      const char *t = attr(a, n, "type"), *nm = attr(a, n, "name"), *ix = attr(a, n, "index");
      if (t && strcmp(t, "discrete")) return err_set(err, cap, ERR_UNSUPPORTED, "genius: issue type '%s' (only discrete)", t);
      if (dom->n_issues >= NEG_MAX_ISSUES) return err_set(err, cap, ERR_TOOBIG, "genius: over %d issues", NEG_MAX_ISSUES);
      if (!nm || !*nm || strlen(nm) >= NEG_MAX_NAME) return err_set(err, cap, ERR_FORMAT, "genius: issue without a usable name");
      cur = dom->n_issues++;
      snprintf(dom->issues[cur].name, NEG_MAX_NAME, "%.63s", nm);
      issue_index[cur] = ix ? atoi(ix) : cur + 1;
    } else if (!strcmp(name, "item")) {
      if (cur < 0) return err_set(err, cap, ERR_FORMAT, "genius: item outside an issue");
      neg_issue *is = &dom->issues[cur];
      const char *v = attr(a, n, "value"), *e = attr(a, n, "evaluation");
      if (is->n_values >= NEG_MAX_VALUES) return err_set(err, cap, ERR_TOOBIG, "genius: issue '%s' over %d values", is->name, NEG_MAX_VALUES);
      if (!v || !*v || strlen(v) >= NEG_MAX_NAME || neg_value_index(is, v) >= 0)
        return err_set(err, cap, ERR_FORMAT, "genius: issue '%s': item without a usable, unique value", is->name);
      snprintf(is->values[is->n_values], NEG_MAX_NAME, "%.63s", v);
      if (prefs && (num(e, &ev[cur][is->n_values]) || ev[cur][is->n_values] < 0))
        return err_set(err, cap, ERR_FORMAT, "genius: issue '%s' item '%s': evaluation missing or negative", is->name, v);
      is->n_values++;
    } else if (!strcmp(name, "weight") && prefs) {
      const char *ix = attr(a, n, "index");
      double wv;
      int hit = -1;
      for (int i = 0; ix && i < dom->n_issues; i++)
        if (issue_index[i] == atoi(ix)) hit = i;
      if (hit < 0 || num(attr(a, n, "value"), &wv) || wv < 0)
        return err_set(err, cap, ERR_FORMAT, "genius: weight for an unknown issue or not a number");
      w[hit] = wv;
    } else if (!strcmp(name, "reservation") && prefs) {
      if (num(attr(a, n, "value"), &prefs->reservation) || prefs->reservation < 0 || prefs->reservation > 1)
        return err_set(err, cap, ERR_FORMAT, "genius: reservation value not in [0,1]");
    }
  }
  if (rc < 0) return err_set(err, cap, rc, "genius: malformed XML near byte %zu", (size_t)(x.p - xml));
  if (!have_space || !dom->n_issues) return err_set(err, cap, ERR_FORMAT, "genius: no <utility_space> with issues");
  for (int i = 0; i < dom->n_issues; i++)
    if (!dom->issues[i].n_values) return err_set(err, cap, ERR_FORMAT, "genius: issue '%s' has no items", dom->issues[i].name);
  if (!prefs) return 0;
  double sum = 0;
  for (int i = 0; i < dom->n_issues; i++) sum += w[i];
  if (!(sum > 0)) return err_set(err, cap, ERR_FORMAT, "genius: no issue weights");
  for (int i = 0; i < dom->n_issues; i++) {
    prefs->weight[i] = w[i] / sum;
    double mx = 0;
    for (int v = 0; v < dom->issues[i].n_values; v++) mx = ev[i][v] > mx ? ev[i][v] : mx;
    for (int v = 0; v < dom->issues[i].n_values; v++) prefs->score[i][v] = mx > 0 ? ev[i][v] / mx : 0;
  }
  return 0;
}

static int load(const char *path, neg_domain *d, neg_prefs *p, char *err, size_t cap) {
  buf b;
  buf_init(&b);
  int rc = fs_read_file(path, NEG_MAX_FILE, &b);
  if (rc) return err_set(err, cap, rc, "%s: %s", path, err_str(rc));
  char why[200];
  rc = neg_genius_parse((const char *)b.ptr, b.len, d, p, why, sizeof why);
  buf_deinit(&b);
  return rc ? err_set(err, cap, rc, "%s: %s", path, why) : 0;
}

/* Re-indexes prefs p (over domain pd) onto domain d by issue and value names. */
static int remap(const neg_domain *d, const neg_domain *pd, const neg_prefs *p, neg_prefs *out, const char *path, char *err,
                 size_t cap) {
  memset(out, 0, sizeof *out);
  out->reservation = p->reservation;
  if (pd->n_issues != d->n_issues) return err_set(err, cap, ERR_FORMAT, "%s: issues differ from the domain's", path);
  for (int i = 0; i < d->n_issues; i++) {
    int k = 0;
    while (k < pd->n_issues && strcmp(pd->issues[k].name, d->issues[i].name)) k++;
    if (k == pd->n_issues || pd->issues[k].n_values != d->issues[i].n_values)
      return err_set(err, cap, ERR_FORMAT, "%s: issue '%s' differs from the domain's", path, d->issues[i].name);
    out->weight[i] = p->weight[k];
    for (int v = 0; v < d->issues[i].n_values; v++) {
      int pv = neg_value_index(&pd->issues[k], d->issues[i].values[v]);
      if (pv < 0) return err_set(err, cap, ERR_FORMAT, "%s: issue '%s' lacks value '%s'", path, d->issues[i].name, d->issues[i].values[v]);
      out->score[i][v] = p->score[k][pv];
    }
  }
  return 0;
}

int neg_genius_load_files(const char *domain_path, const char *a_path, const char *b_path, int deadline, neg_scenario *out,
                          char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  neg_domain *pd = malloc(sizeof *pd);
  neg_prefs p;
  int rc = pd ? 0 : ERR_NOMEM;
  if (!rc && domain_path) rc = load(domain_path, &out->dom, NULL, err, cap);
  for (int k = 0; !rc && k < 2; k++) {
    const char *path = k ? b_path : a_path;
    if ((rc = load(path, k || domain_path ? pd : &out->dom, &p, err, cap))) break;
    if (!k && !domain_path) memcpy(pd, &out->dom, sizeof *pd);
    neg_mandate_default(&out->dom, deadline, &out->side[k]);
    if ((rc = remap(&out->dom, pd, &p, &out->side[k].prefs, path, err, cap))) break;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strcspn(base, ".");
    snprintf(out->side_name[k], NEG_MAX_NAME, "%.*s", (int)(n < NEG_MAX_NAME ? n : NEG_MAX_NAME - 1), base);
  }
  free(pd);
  return rc;
}
