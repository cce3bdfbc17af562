/* privacy/redact_map — placeholders and restoring them; see redact_map.h. */
#include "privacy/redact_map.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

typedef struct entry {
  redact_type type;
  int n;                    /* the N of [TYPE_N] */
  char *value;              /* owned, wiped when freed */
  size_t len;
} entry;

struct redact_map {
  unsigned mask;
  entry *e;                 /* owned: n of them */
  int n, cap;
  int next[REDACT_N_TYPES]; /* the last N given per type */
};

int redact_map_new(unsigned mask, redact_map **out) {
  redact_map *m = calloc(1, sizeof *m);
  if (!m) return ERR_NOMEM;
  m->mask = mask;
  *out = m;
  return 0;
}

void redact_map_free(redact_map *m) {
  if (!m) return;
  for (int k = 0; k < m->n; k++) {
    sodium_memzero(m->e[k].value, m->e[k].len);
    free(m->e[k].value);
  }
  free(m->e);
  free(m);
}

int redact_map_count(const redact_map *m) { return m->n; }

static int placeholder(const entry *e, char out[REDACT_PLACEHOLDER_MAX]) {
  return snprintf(out, REDACT_PLACEHOLDER_MAX, "[%s_%d]", redact_type_name(e->type), e->n);
}

static const entry *lookup(redact_map *m, redact_type t, const char *v, size_t len) {
  for (int k = 0; k < m->n; k++)
    if (m->e[k].type == t && m->e[k].len == len && !memcmp(m->e[k].value, v, len)) return &m->e[k];
  if (m->n >= REDACT_MAP_MAX) return NULL;
  if (m->n == m->cap) {
    int cap = m->cap ? m->cap * 2 : 16;
    entry *e = realloc(m->e, (size_t)cap * sizeof *e);
    if (!e) return NULL;
    m->e = e, m->cap = cap;
  }
  char *copy = malloc(len + 1);
  if (!copy) return NULL;
  memcpy(copy, v, len);
  copy[len] = 0;
  m->e[m->n] = (entry){.type = t, .n = ++m->next[t], .value = copy, .len = len};
  return &m->e[m->n++];
}

int redact_map_apply(redact_map *m, const char *text, size_t len, buf *out) {
  if (len > REDACT_MAX_INPUT) return ERR_TOOBIG;
  redact_span *sp = malloc(REDACT_MAX_SPANS * sizeof *sp);
  if (!sp) return ERR_NOMEM;
  int n = redact_find(text, len, m->mask, sp, REDACT_MAX_SPANS), rc = n < 0 ? n : 0;
  size_t at = 0;
  for (int k = 0; k < n && !rc; k++) {
    const entry *e = lookup(m, sp[k].type, text + sp[k].start, sp[k].end - sp[k].start);
    char ph[REDACT_PLACEHOLDER_MAX];
    if (!e) { rc = m->n >= REDACT_MAP_MAX ? ERR_TOOBIG : ERR_NOMEM; break; }
    int pl = placeholder(e, ph);
    rc = buf_append(out, text + at, sp[k].start - at);
    if (!rc) rc = buf_append(out, ph, (size_t)pl);
    at = sp[k].end;
  }
  if (!rc) rc = buf_append(out, text + at, len - at);
  free(sp);
  return rc;
}

/* The entry whose placeholder starts text[0, len), or NULL; *pl its length. */
static const entry *match(const redact_map *m, const char *t, size_t len, size_t *pl) {
  if (!len || t[0] != '[') return NULL;
  const char *close = memchr(t, ']', len < REDACT_PLACEHOLDER_MAX ? len : REDACT_PLACEHOLDER_MAX);
  if (!close) return NULL;
  const char *us = NULL;
  for (const char *q = close; q > t; q--)
    if (*q == '_') { us = q; break; }
  if (!us || us == t + 1 || close - us < 2) return NULL;
  char name[REDACT_PLACEHOLDER_MAX];
  memcpy(name, t + 1, (size_t)(us - t - 1));
  name[us - t - 1] = 0;
  int type = -1;
  for (int k = 0; k < REDACT_N_TYPES; k++)
    if (!strcmp(name, redact_type_name((redact_type)k))) type = k;
  if (type < 0) return NULL;
  int num = 0;
  for (const char *q = us + 1; q < close; q++) {
    if (*q < '0' || *q > '9' || num > 100000) return NULL;
    num = num * 10 + (*q - '0');
  }
  for (int k = 0; k < m->n; k++)
    if ((int)m->e[k].type == type && m->e[k].n == num) {
      *pl = (size_t)(close - t) + 1;
      return &m->e[k];
    }
  return NULL;
}

int redact_map_restore(const redact_map *m, const char *text, size_t len, buf *out) {
  size_t at = 0, k = 0;
  while (k < len) {
    const char *b = memchr(text + k, '[', len - k);
    if (!b) break;
    k = (size_t)(b - text);
    size_t pl;
    const entry *e = match(m, text + k, len - k, &pl);
    if (!e) { k++; continue; }
    int rc = buf_append(out, text + at, k - at);
    if (!rc) rc = buf_append(out, e->value, e->len);
    if (rc) return rc;
    k += pl;
    at = k;
  }
  return buf_append(out, text + at, len - at);
}

void redact_restorer_init(redact_restorer *r, const redact_map *m) {
  memset(r, 0, sizeof *r);
  r->m = m;
}

/* Could text[0, len) (no ']') still grow into a placeholder: "[" then A-Z, '_', digits? */
static int maybe_placeholder(const char *t, size_t len) {
  if (len >= REDACT_PLACEHOLDER_MAX || t[0] != '[') return 0;
  for (size_t k = 1; k < len; k++)
    if (!((t[k] >= 'A' && t[k] <= 'Z') || (t[k] >= '0' && t[k] <= '9') || t[k] == '_')) return 0;
  return 1;
}

int redact_restorer_push(redact_restorer *r, const char *in, size_t len, buf *out) {
  /* Join what was held with the chunk, restore all but a tail that may be a placeholder's start. */
  buf tmp;
  buf_init(&tmp);
  int rc = buf_append(&tmp, r->held, r->n_held);
  if (!rc) rc = buf_append(&tmp, in, len);
  if (rc) { buf_deinit(&tmp); return rc; }
  const char *t = (const char *)tmp.ptr;
  size_t n = tmp.len, keep = 0;
  size_t from = n > REDACT_PLACEHOLDER_MAX ? n - REDACT_PLACEHOLDER_MAX : 0;
  for (size_t k = n; k-- > from;)
    if (t[k] == '[') {
      if (!memchr(t + k, ']', n - k) && maybe_placeholder(t + k, n - k)) keep = n - k;
      break;
    }
  rc = redact_map_restore(r->m, t, n - keep, out);
  memcpy(r->held, t + n - keep, keep);
  r->n_held = keep;
  buf_deinit(&tmp);
  return rc;
}

int redact_restorer_flush(redact_restorer *r, buf *out) {
  int rc = buf_append(out, r->held, r->n_held);
  r->n_held = 0;
  return rc;
}
