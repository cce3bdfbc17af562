/* agent/mcp_client_frame — lines, SSE events and JSON-RPC messages from an MCP server's
 * bytes, under hard caps (see the header for the rules). No I/O, no threads. */
#include "agent/mcp_client_frame.h"

#include <stdlib.h>
#include <string.h>

#include "agent/mcp.h"
#include "agent/mcp_client.h"
#include "core/err.h"

/* Grows *p (cap *capp) to hold need bytes plus a NUL; 0 or ERR_NOMEM. */
static int grow(char **p, size_t *capp, size_t need) {
  if (need + 1 <= *capp) return 0;
  size_t cap = *capp ? *capp : 256;
  while (cap < need + 1) cap *= 2;
  char *q = realloc(*p, cap);
  if (!q) return ERR_NOMEM;
  *p = q;
  *capp = cap;
  return 0;
}

/* ---- lines ------------------------------------------------------------------------------ */
void mcp_client__lines_init(mcp_client_lines *l, size_t max) {
  memset(l, 0, sizeof *l);
  l->max = max;
}

void mcp_client__lines_deinit(mcp_client_lines *l) {
  free(l->buf);
  memset(l, 0, sizeof *l);
}

int mcp_client__lines_feed(mcp_client_lines *l, const char *p, size_t n, mcp_client_line_fn fn, void *ud) {
  while (n) {
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (!l->skipping) {
      if (l->len + take > l->max) {
        l->skipping = 1;
        l->len = 0;
        int rc = fn(ud, NULL, 0);
        if (rc) return rc;
      } else if (take) {
        if (grow(&l->buf, &l->cap, l->len + take)) return ERR_NOMEM;
        memcpy(l->buf + l->len, p, take);
        l->len += take;
      }
    }
    if (!nl) return 0;
    p += take + 1;
    n -= take + 1;
    int was_skipping = l->skipping;
    size_t len = l->len;
    l->len = 0;
    l->skipping = 0;
    if (was_skipping) continue;
    while (len && l->buf[len - 1] == '\r') len--;
    if (!len) continue;
    l->buf[len] = 0;
    int rc = fn(ud, l->buf, len);
    if (rc) return rc;
  }
  return 0;
}

/* ---- SSE -------------------------------------------------------------------------------- */
void mcp_client__sse_init(mcp_client_sse *s, size_t max) {
  memset(s, 0, sizeof *s);
  s->retry_ms = -1;
  s->max = max;
}

void mcp_client__sse_deinit(mcp_client_sse *s) {
  free(s->line);
  free(s->data);
  memset(s, 0, sizeof *s);
}

static void event_reset(mcp_client_sse *s) {
  s->data_len = 0;
  s->have_data = 0;
  s->too_big = 0;
  s->event[0] = 0;
}

/* One complete line (s->line, s->line_len): a field, or the blank line ending an event. */
static int sse_line(mcp_client_sse *s, mcp_client_sse_fn fn, void *ud) {
  const char *ln = s->line;
  size_t len = s->line_len;
  if (!len) { /* dispatch */
    int rc = 0;
    if (s->have_data && !s->too_big) {
      if (s->data_len && s->data[s->data_len - 1] == '\n') s->data_len--; /* the joins add one too many */
      s->data[s->data_len] = 0;
      rc = fn(ud, s->event, s->data, s->data_len);
    }
    event_reset(s);
    return rc;
  }
  if (ln[0] == ':') return 0; /* a comment */
  const char *colon = memchr(ln, ':', len);
  size_t flen = colon ? (size_t)(colon - ln) : len;
  const char *v = colon ? colon + 1 : ln + len;
  size_t vlen = colon ? len - flen - 1 : 0;
  if (vlen && *v == ' ') {
    v++;
    vlen--;
  }
  if (flen == 4 && !memcmp(ln, "data", 4)) {
    s->have_data = 1;
    if (s->too_big) return 0;
    if (s->data_len + vlen + 1 > s->max) {
      s->too_big = 1;
      return ERR_TOOBIG;
    }
    if (grow(&s->data, &s->data_cap, s->data_len + vlen + 1)) return ERR_NOMEM;
    memcpy(s->data + s->data_len, v, vlen);
    s->data_len += vlen;
    s->data[s->data_len++] = '\n';
  } else if (flen == 5 && !memcmp(ln, "event", 5)) {
    size_t k = vlen < sizeof s->event - 1 ? vlen : sizeof s->event - 1;
    memcpy(s->event, v, k);
    s->event[k] = 0;
  } else if (flen == 2 && !memcmp(ln, "id", 2)) {
    if (memchr(v, 0, vlen) || vlen > MCP_CLIENT_SSE_ID_MAX) return 0; /* ignored, as the rules say (or too long to keep) */
    memcpy(s->last_id, v, vlen);
    s->last_id[vlen] = 0;
  } else if (flen == 5 && !memcmp(ln, "retry", 5)) {
    if (!vlen) return 0;
    long ms = 0;
    for (size_t i = 0; i < vlen; i++) {
      if (v[i] < '0' || v[i] > '9') return 0;
      if (ms < MCP_CLIENT_RETRY_MAX_MS) ms = ms * 10 + (v[i] - '0');
    }
    s->retry_ms = ms > MCP_CLIENT_RETRY_MAX_MS ? MCP_CLIENT_RETRY_MAX_MS : ms;
  }
  return 0;
}

int mcp_client__sse_feed(mcp_client_sse *s, const char *p, size_t n, mcp_client_sse_fn fn, void *ud) {
  int result = 0;
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (!s->started) { /* skip one leading BOM, byte by byte */
      static const char bom[3] = {(char)0xEF, (char)0xBB, (char)0xBF};
      if (s->line_len < 3 && ch == bom[s->line_len] && !s->skipping) {
        if (grow(&s->line, &s->line_cap, s->line_len + 1)) return ERR_NOMEM;
        s->line[s->line_len++] = ch;
        if (s->line_len == 3) {
          s->line_len = 0;
          s->started = 1;
        }
        continue;
      }
      s->started = 1; /* not a BOM: what was held is part of the first line */
    }
    if (ch == '\n' && s->after_cr) {
      s->after_cr = 0;
      continue;
    }
    s->after_cr = ch == '\r';
    if (ch == '\n' || ch == '\r') {
      int rc = 0;
      if (s->skipping) {
        s->skipping = 0;
        s->too_big = 1; /* the event lost a line: drop it */
      } else {
        rc = sse_line(s, fn, ud);
      }
      s->line_len = 0;
      if (rc == ERR_TOOBIG) result = ERR_TOOBIG;
      else if (rc) return rc;
      continue;
    }
    if (s->skipping) continue;
    if (s->line_len + 1 > s->max) {
      s->skipping = 1;
      s->line_len = 0;
      result = ERR_TOOBIG;
      continue;
    }
    if (grow(&s->line, &s->line_cap, s->line_len + 1)) return ERR_NOMEM;
    s->line[s->line_len++] = ch;
  }
  return result;
}

/* ---- one message ------------------------------------------------------------------------ */
int mcp_client__parse(const char *p, size_t n, json_t **msg_out, char *err, size_t cap) {
  *msg_out = NULL;
  if (n > MCP_CLIENT_MAX_MSG) return err_set(err, cap, ERR_TOOBIG, "a message of %zu bytes (the cap is %u)", n, MCP_CLIENT_MAX_MSG);
  json_error_t je;
  json_t *m = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
  if (!m) return err_set(err, cap, ERR_FORMAT, "not JSON (%s)", je.text);
  char why[200];
  int kind = mcp_kind(m, why, sizeof why);
  if (kind < 1 || kind > 3) {
    json_decref(m);
    return err_set(err, cap, ERR_FORMAT, "not a JSON-RPC message (%s)", why);
  }
  *msg_out = m;
  return kind;
}
