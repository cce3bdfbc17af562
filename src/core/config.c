/* core/config — strict TOML-subset config; see config.h.
 *
 * The parser walks the text line by line with no recursion; every line and value has a
 * length cap. Values are stored per schema slot; strings are heap copies owned by the
 * config. */
#include "core/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"

typedef struct slot {
  char *str;      /* CONFIG_STR value (owned) */
  int64_t i;      /* CONFIG_INT / CONFIG_BOOL value */
  char **list;    /* CONFIG_LIST items (owned) */
  size_t n_list;
  int seen;       /* set by the file being parsed (duplicate detection) */
} slot;

struct config {
  const config_key *schema; /* borrowed */
  size_t n;
  slot *slots;              /* n slots, owned */
};

static void slot_clear(slot *s) {
  free(s->str);
  for (size_t i = 0; i < s->n_list; i++) free(s->list[i]);
  free(s->list);
  memset(s, 0, sizeof *s);
}

/* ---- value parsing ---------------------------------------------------------------- */

typedef struct cursor {
  const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

/* Parses a quoted string at c->p into a new heap string. */
static int parse_string(cursor *c, char **out, const char **why) {
  if (c->p >= c->end || *c->p != '"') { *why = "expected a string in double quotes"; return ERR_FORMAT; }
  c->p++;
  char *s = malloc((size_t)(c->end - c->p) + 1);
  if (!s) return ERR_NOMEM;
  size_t n = 0;
  while (c->p < c->end && *c->p != '"') {
    char ch = *c->p++;
    if (ch == '\\') {
      if (c->p >= c->end) break;
      char e = *c->p++;
      switch (e) {
      case '"': ch = '"'; break;
      case '\\': ch = '\\'; break;
      case 'n': ch = '\n'; break;
      case 't': ch = '\t'; break;
      default: free(s); *why = "unknown escape in string (use \\\" \\\\ \\n or \\t)"; return ERR_FORMAT;
      }
    } else if ((unsigned char)ch < 0x20) {
      free(s);
      *why = "control character in string";
      return ERR_FORMAT;
    }
    s[n++] = ch;
  }
  if (c->p >= c->end) { free(s); *why = "unterminated string (missing closing \")"; return ERR_FORMAT; }
  c->p++;
  s[n] = 0;
  *out = s;
  return 0;
}

static int parse_int(cursor *c, int64_t *out, const char **why) {
  const char *start = c->p;
  if (c->p < c->end && (*c->p == '-' || *c->p == '+')) c->p++;
  if (c->p >= c->end || !isdigit((unsigned char)*c->p)) { *why = "expected an integer"; return ERR_FORMAT; }
  while (c->p < c->end && isdigit((unsigned char)*c->p)) c->p++;
  char tmp[32];
  size_t n = (size_t)(c->p - start);
  if (n >= sizeof tmp) { *why = "integer too long"; return ERR_FORMAT; }
  memcpy(tmp, start, n);
  tmp[n] = 0;
  errno = 0;
  long long v = strtoll(tmp, NULL, 10);
  if (errno) { *why = "integer out of range"; return ERR_FORMAT; }
  *out = v;
  return 0;
}

static int parse_bool(cursor *c, int64_t *out, const char **why) {
  size_t left = (size_t)(c->end - c->p);
  if (left >= 4 && !memcmp(c->p, "true", 4)) { c->p += 4; *out = 1; return 0; }
  if (left >= 5 && !memcmp(c->p, "false", 5)) { c->p += 5; *out = 0; return 0; }
  *why = "expected true or false";
  return ERR_FORMAT;
}

static int parse_list(cursor *c, slot *s, const char **why) {
  if (c->p >= c->end || *c->p != '[') { *why = "expected a list like [\"a\", \"b\"]"; return ERR_FORMAT; }
  c->p++;
  for (;;) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') { c->p++; return 0; }
    if (s->n_list >= CONFIG_MAX_LIST) { *why = "list has too many items"; return ERR_FORMAT; }
    char *item;
    int rc = parse_string(c, &item, why);
    if (rc) return rc;
    char **grown = realloc(s->list, (s->n_list + 1) * sizeof *grown);
    if (!grown) { free(item); return ERR_NOMEM; }
    s->list = grown;
    s->list[s->n_list++] = item;
    skip_ws(c);
    if (c->p < c->end && *c->p == ',') { c->p++; continue; }
    if (c->p < c->end && *c->p == ']') { c->p++; return 0; }
    *why = "expected ',' or ']' in list";
    return ERR_FORMAT;
  }
}

/* Parses the value for key k into a fresh slot; checks trailing text and limits. */
static int parse_value(const config_key *k, cursor *c, slot *out, char *why_buf, size_t why_cap) {
  const char *why = NULL;
  int rc;
  memset(out, 0, sizeof *out);
  switch (k->type) {
  case CONFIG_STR: rc = parse_string(c, &out->str, &why); break;
  case CONFIG_INT: rc = parse_int(c, &out->i, &why); break;
  case CONFIG_BOOL: rc = parse_bool(c, &out->i, &why); break;
  case CONFIG_LIST: rc = parse_list(c, out, &why); break;
  default: rc = ERR_INVAL; why = "bad schema type";
  }
  if (!rc) {
    skip_ws(c);
    if (c->p < c->end && *c->p != '#') { rc = ERR_FORMAT; why = "unexpected text after the value"; }
  }
  if (!rc && k->type == CONFIG_INT && (out->i < k->min || out->i > k->max)) {
    snprintf(why_buf, why_cap, "%s.%s must be between %lld and %lld", k->section, k->name,
             (long long)k->min, (long long)k->max);
    slot_clear(out);
    return ERR_RANGE;
  }
  if (rc) {
    if (rc != ERR_NOMEM) snprintf(why_buf, why_cap, "%s.%s: %s", k->section, k->name, why);
    slot_clear(out);
  }
  return rc;
}

/* ---- config ----------------------------------------------------------------------- */

static int find_key(const config *c, const char *section, size_t slen, const char *name, size_t nlen) {
  for (size_t i = 0; i < c->n; i++) {
    const config_key *k = &c->schema[i];
    if (strlen(k->section) == slen && !memcmp(k->section, section, slen) && strlen(k->name) == nlen &&
        !memcmp(k->name, name, nlen))
      return (int)i;
  }
  return -1;
}

static int section_known(const config *c, const char *s, size_t len) {
  for (size_t i = 0; i < c->n; i++)
    if (strlen(c->schema[i].section) == len && !memcmp(c->schema[i].section, s, len)) return 1;
  return 0;
}

int config_new(const config_key *schema, size_t n, config **out) {
  config *c = calloc(1, sizeof *c);
  if (!c) return ERR_NOMEM;
  c->schema = schema;
  c->n = n;
  c->slots = calloc(n ? n : 1, sizeof *c->slots);
  if (!c->slots) { free(c); return ERR_NOMEM; }
  for (size_t i = 0; i < n; i++) {
    cursor cur = {schema[i].def, schema[i].def + strlen(schema[i].def)};
    char why[256];
    if (parse_value(&schema[i], &cur, &c->slots[i], why, sizeof why)) {
      config_free(c);
      return ERR_INVAL;
    }
  }
  *out = c;
  return 0;
}

void config_free(config *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) slot_clear(&c->slots[i]);
  free(c->slots);
  free(c);
}

static int is_ident_char(char ch) {
  return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

static int fail(char *err, size_t cap, const char *name, int line, int rc, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int fail(char *err, size_t cap, const char *name, int line, int rc, const char *fmt, ...) {
  if (err && cap) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, cap, "%s:%d: %s", name, line, msg);
  }
  return rc;
}

/* Lists the valid keys of a section into out, for "did you mean" help. */
static void valid_keys(const config *c, const char *section, size_t slen, char *out, size_t cap) {
  size_t used = 0;
  out[0] = 0;
  for (size_t i = 0; i < c->n && used + 2 < cap; i++) {
    const config_key *k = &c->schema[i];
    if (strlen(k->section) != slen || memcmp(k->section, section, slen)) continue;
    int w = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", k->name);
    if (w < 0) break;
    used += (size_t)w;
  }
}

int config_parse(config *c, const char *text, size_t len, const char *name, char *err, size_t cap) {
  if (len > CONFIG_MAX_FILE) return fail(err, cap, name, 0, ERR_TOOBIG, "file is larger than 1 MiB");
  for (size_t i = 0; i < c->n; i++) c->slots[i].seen = 0;
  const char *section = NULL;
  size_t slen = 0;
  int line = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    line++;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    if ((size_t)(le - p) > CONFIG_MAX_LINE)
      return fail(err, cap, name, line, ERR_TOOBIG, "line longer than %d bytes", CONFIG_MAX_LINE);
    if (memchr(p, 0, (size_t)(le - p))) return fail(err, cap, name, line, ERR_FORMAT, "NUL byte in line");
    cursor cur = {p, le};
    if (le > p && le[-1] == '\r') cur.end--;
    p = nl ? nl + 1 : end;
    skip_ws(&cur);
    if (cur.p >= cur.end || *cur.p == '#') continue;
    if (*cur.p == '[') {
      const char *s = ++cur.p;
      while (cur.p < cur.end && is_ident_char(*cur.p)) cur.p++;
      if (cur.p >= cur.end || *cur.p != ']' || cur.p == s)
        return fail(err, cap, name, line, ERR_FORMAT, "bad section header (expected [name])");
      size_t n = (size_t)(cur.p - s);
      cur.p++;
      skip_ws(&cur);
      if (cur.p < cur.end && *cur.p != '#')
        return fail(err, cap, name, line, ERR_FORMAT, "unexpected text after section header");
      if (!section_known(c, s, n))
        return fail(err, cap, name, line, ERR_CONFIG, "unknown section [%.*s]", (int)n, s);
      section = s;
      slen = n;
      continue;
    }
    const char *k = cur.p;
    while (cur.p < cur.end && is_ident_char(*cur.p)) cur.p++;
    size_t klen = (size_t)(cur.p - k);
    if (klen == 0) return fail(err, cap, name, line, ERR_FORMAT, "expected 'key = value' or '[section]'");
    skip_ws(&cur);
    if (cur.p >= cur.end || *cur.p != '=')
      return fail(err, cap, name, line, ERR_FORMAT, "expected '=' after key '%.*s'", (int)klen, k);
    cur.p++;
    skip_ws(&cur);
    if (!section)
      return fail(err, cap, name, line, ERR_CONFIG, "key '%.*s' is outside any [section]", (int)klen, k);
    int idx = find_key(c, section, slen, k, klen);
    if (idx < 0) {
      char keys[512];
      valid_keys(c, section, slen, keys, sizeof keys);
      return fail(err, cap, name, line, ERR_CONFIG, "unknown key '%.*s' in [%.*s] (valid keys: %s)",
                  (int)klen, k, (int)slen, section, keys);
    }
    if (c->slots[idx].seen)
      return fail(err, cap, name, line, ERR_CONFIG, "key '%.*s' is set twice in [%.*s]", (int)klen, k,
                  (int)slen, section);
    slot v;
    char why[512];
    int rc = parse_value(&c->schema[idx], &cur, &v, why, sizeof why);
    if (rc == ERR_NOMEM) return rc;
    if (rc) return fail(err, cap, name, line, rc == ERR_RANGE ? ERR_CONFIG : ERR_FORMAT, "%s", why);
    slot_clear(&c->slots[idx]);
    c->slots[idx] = v;
    c->slots[idx].seen = 1;
  }
  return 0;
}

int config_load_file(config *c, const char *path, char *err, size_t cap) {
  buf b;
  buf_init(&b);
  int rc = fs_read_file(path, CONFIG_MAX_FILE, &b);
  if (rc) {
    if (err && cap) snprintf(err, cap, "%s: %s", path, err_str(rc));
  } else {
    rc = config_parse(c, (const char *)b.ptr, b.len, path, err, cap);
  }
  buf_deinit(&b);
  return rc;
}

static const slot *get(const config *c, const char *section, const char *name, config_type t) {
  int idx = find_key(c, section, strlen(section), name, strlen(name));
  assert(idx >= 0 && "config key not in schema");
  assert(c->schema[idx].type == t && "config key read with the wrong type");
  return &c->slots[idx];
}

const char *config_str(const config *c, const char *section, const char *name) {
  return get(c, section, name, CONFIG_STR)->str;
}
int64_t config_int(const config *c, const char *section, const char *name) {
  return get(c, section, name, CONFIG_INT)->i;
}
int config_bool(const config *c, const char *section, const char *name) {
  return (int)get(c, section, name, CONFIG_BOOL)->i;
}
size_t config_list(const config *c, const char *section, const char *name, const char *const **items_out) {
  const slot *s = get(c, section, name, CONFIG_LIST);
  *items_out = (const char *const *)s->list;
  return s->n_list;
}

int config_write_default(const config_key *schema, size_t n, const char *header, buf *out) {
  int rc = buf_append_str(out, header);
  /* One table per section (a section's keys may be spread over the schema: later layers
   * append theirs), in the order sections first appear. */
  for (size_t i = 0; i < n && !rc; i++) {
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(schema[j].section, schema[i].section);
    if (seen) continue;
    rc = buf_printf(out, "%s[%s]\n", i ? "\n" : "", schema[i].section);
    for (size_t j = i; j < n && !rc; j++) {
      const config_key *k = &schema[j];
      if (strcmp(k->section, schema[i].section)) continue;
      if (k->type == CONFIG_INT)
        rc = buf_printf(out, "# %s (%lld..%lld)\n", k->help, (long long)k->min, (long long)k->max);
      else
        rc = buf_printf(out, "# %s\n", k->help);
      if (!rc) rc = buf_printf(out, "%s = %s\n", k->name, k->def);
    }
  }
  return rc;
}
