/* market/lpwire — log-probability records on the wire; see lpwire.h. */
#include "market/lpwire.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"

static json_t *tok_json(const logprob_tok *t, const uint8_t *bytes) {
  char hex[2 * MKT_LP_MAX_PIECE + 1];
  uint32_t n = t->len < MKT_LP_MAX_PIECE ? t->len : MKT_LP_MAX_PIECE; /* a longer piece is cut (never seen in a vocabulary) */
  hex_encode(bytes + t->off, n, hex);
  return json_pack("[i, f, s]", t->id, (double)t->logprob, hex);
}

json_t *mkt_lp_encode(const logprob_rec *recs, int n, const uint8_t *bytes) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < n; i++) {
    json_t *r = tok_json(&recs[i].tok, bytes), *top = json_array();
    for (int k = 0; k < recs[i].n_top; k++) json_array_append_new(top, tok_json(&recs[i].top[k], bytes));
    if (!r || !top || json_array_append_new(r, top) || json_array_append_new(arr, r)) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

/* One [id, logprob, "hex"] into t (bytes appended). 0 or ERR_FORMAT. */
static int tok_read(const json_t *a, logprob_tok *t, buf *bytes) {
  json_t *id = json_array_get(a, 0), *lp = json_array_get(a, 1), *hx = json_array_get(a, 2);
  if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX || !json_is_number(lp) ||
      !json_is_string(hx) || json_string_length(hx) > 2 * MKT_LP_MAX_PIECE)
    return ERR_FORMAT;
  double v = json_number_value(lp);
  if (!(v <= 0) || !isfinite(v)) return ERR_FORMAT;
  uint8_t piece[MKT_LP_MAX_PIECE];
  int n = json_string_length(hx) ? hex_decode_var(json_string_value(hx), json_string_length(hx), piece, sizeof piece) : 0;
  if (n < 0) return ERR_FORMAT;
  t->id = (int32_t)json_integer_value(id);
  t->logprob = (float)v;
  t->off = (uint32_t)bytes->len;
  t->len = (uint32_t)n;
  return buf_append(bytes, piece, (size_t)n) ? ERR_NOMEM : 0;
}

int mkt_lp_decode(const json_t *arr, int max_top, logprob_rec *out, int cap, buf *bytes) {
  if (!json_is_array(arr) || json_array_size(arr) > MKT_LP_MAX_RECS || (int)json_array_size(arr) > cap) return ERR_FORMAT;
  if (max_top > LOGPROB_MAX_TOP) max_top = LOGPROB_MAX_TOP;
  size_t i;
  json_t *r;
  json_array_foreach(arr, i, r) {
    logprob_rec *o = &out[i];
    memset(o, 0, sizeof *o);
    json_t *top = json_array_get(r, 3);
    if (!json_is_array(r) || json_array_size(r) != 4 || tok_read(r, &o->tok, bytes) || !json_is_array(top) ||
        (int)json_array_size(top) > max_top)
      return ERR_FORMAT;
    size_t k;
    json_t *t;
    json_array_foreach(top, k, t) {
      if (!json_is_array(t) || json_array_size(t) != 3 || tok_read(t, &o->top[k], bytes)) return ERR_FORMAT;
      if (k && o->top[k].logprob > o->top[k - 1].logprob) return ERR_FORMAT; /* most likely first */
    }
    o->n_top = (int)json_array_size(top);
  }
  return (int)json_array_size(arr);
}
