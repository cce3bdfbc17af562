/* market/offer — offers, their cost arithmetic and their JSON and bencode forms; see offer.h.
 *
 * Costs are exact: the two products are formed in 128 bits and divided by 1000 separately
 * (quotients and remainders added), so the sum never overflows 128 bits either.
 * Parsers check every field against a hard cap and name the first problem; unknown keys are
 * ignored (forward compatibility); the same model twice in one list is refused (routing keys
 * on the model, so a duplicate would be ambiguous).
 * Pure functions; thread-safe. */
#include "market/offer.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"

__extension__ typedef unsigned __int128 u128;

#define CONC_MAX 1024       /* max_concurrent upper bound */
#define PRICE_DIGITS_MAX 20 /* decimal digits of a price in JSON */
#define COVERED_CAP ((int64_t)1 << 30)

int mkt_cost(uint64_t prompt_tokens, uint64_t gen_tokens, uint64_t price_prompt, uint64_t price_gen,
             uint64_t *wei_out) {
  u128 a = (u128)prompt_tokens * price_prompt, b = (u128)gen_tokens * price_gen;
  u128 q = a / 1000 + b / 1000;                 /* each < 2^118: no overflow */
  unsigned r = (unsigned)(a % 1000 + b % 1000); /* < 2000 */
  q += r / 1000 + (r % 1000 != 0);
  if (q > UINT64_MAX) return ERR_RANGE;
  *wei_out = (uint64_t)q;
  return 0;
}

/* ceil(x / 1000) <= paid  <=>  x <= 1000 * paid, for integer x. So the largest n with
 * prompt_tokens * price_prompt + n * price_gen <= 1000 * paid is a single division. */
int64_t mkt_tokens_covered(uint64_t prompt_tokens, uint64_t paid, uint64_t price_prompt, uint64_t price_gen) {
  u128 budget = (u128)paid * 1000, a = (u128)prompt_tokens * price_prompt;
  if (a > budget) return -1;
  if (price_gen == 0) return COVERED_CAP;
  u128 n = (budget - a) / price_gen;
  return n > (u128)COVERED_CAP ? COVERED_CAP : (int64_t)n;
}

const mkt_offer *mkt_offer_find(const mkt_offer *o, size_t n, const uint8_t model[32]) {
  for (size_t i = 0; i < n; i++)
    if (!memcmp(o[i].model, model, 32)) return &o[i];
  return NULL;
}

/* ---- JSON ---- */

static size_t name_len(const mkt_offer *o) { return strnlen(o->name, MKT_NAME_MAX - 1); }

json_t *mkt_offers_to_json(const mkt_offer *o, size_t n) {
  json_t *a = json_array();
  if (!a) return NULL;
  for (size_t i = 0; i < n; i++) {
    char hex[65], pp[24], pg[24];
    hex_encode(o[i].model, 32, hex);
    snprintf(pp, sizeof pp, "%" PRIu64, o[i].price_prompt);
    snprintf(pg, sizeof pg, "%" PRIu64, o[i].price_gen);
    json_t *e = json_pack("{s:s, s:s%, s:s, s:s, s:I}", "model", hex, "name", o[i].name, name_len(&o[i]),
                          "price_prompt", pp, "price_gen", pg, "max_concurrent", (json_int_t)o[i].max_concurrent);
    if (!e || json_array_append_new(a, e)) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

static int fail(char *err, size_t err_cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t err_cap, const char *fmt, ...) {
  if (err && err_cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
  }
  return ERR_FORMAT;
}

/* Strict unsigned decimal: 1..PRICE_DIGITS_MAX digits, value < 2^64. */
static int parse_u64_dec(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > PRICE_DIGITS_MAX) return ERR_FORMAT;
  u128 v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return ERR_FORMAT;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > UINT64_MAX) return ERR_RANGE;
  *out = (uint64_t)v;
  return 0;
}

static int json_price(const json_t *e, const char *key, size_t idx, uint64_t *out, char *err, size_t err_cap) {
  const json_t *v = json_object_get(e, key);
  if (!v) return fail(err, err_cap, "offer %zu: %s missing", idx, key);
  if (!json_is_string(v))
    return fail(err, err_cap, "offer %zu: %s must be a decimal string of wei per 1k tokens", idx, key);
  int rc = parse_u64_dec(json_string_value(v), json_string_length(v), out);
  if (rc == ERR_RANGE) return fail(err, err_cap, "offer %zu: %s must be below 2^64", idx, key);
  if (rc) return fail(err, err_cap, "offer %zu: %s must be 1 to %d decimal digits", idx, key, PRICE_DIGITS_MAX);
  return 0;
}

static int json_offer(const json_t *e, size_t idx, mkt_offer *o, char *err, size_t err_cap) {
  memset(o, 0, sizeof *o);
  if (!json_is_object(e)) return fail(err, err_cap, "offer %zu: not an object", idx);
  const json_t *v = json_object_get(e, "model");
  if (!v) return fail(err, err_cap, "offer %zu: model missing", idx);
  if (!json_is_string(v) || json_string_length(v) != 64 || hex_decode(json_string_value(v), 64, o->model, 32))
    return fail(err, err_cap, "offer %zu: model must be 64 hex digits (sha256 of the GGUF)", idx);
  v = json_object_get(e, "name");
  if (!v) return fail(err, err_cap, "offer %zu: name missing", idx);
  if (!json_is_string(v)) return fail(err, err_cap, "offer %zu: name must be a string", idx);
  size_t nl = json_string_length(v);
  if (nl > MKT_NAME_MAX - 1) return fail(err, err_cap, "offer %zu: name longer than %d bytes", idx, MKT_NAME_MAX - 1);
  if (memchr(json_string_value(v), 0, nl)) return fail(err, err_cap, "offer %zu: name contains NUL", idx);
  memcpy(o->name, json_string_value(v), nl);
  int rc = json_price(e, "price_prompt", idx, &o->price_prompt, err, err_cap);
  if (!rc) rc = json_price(e, "price_gen", idx, &o->price_gen, err, err_cap);
  if (rc) return rc;
  v = json_object_get(e, "max_concurrent");
  if (!v) return fail(err, err_cap, "offer %zu: max_concurrent missing", idx);
  if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > CONC_MAX)
    return fail(err, err_cap, "offer %zu: max_concurrent must be an integer in 1..%d", idx, CONC_MAX);
  o->max_concurrent = (uint32_t)json_integer_value(v);
  return 0;
}

static int dup_model(const mkt_offer *out, size_t n) {
  return mkt_offer_find(out, n, out[n].model) != NULL;
}

int mkt_offers_from_json(const json_t *j, mkt_offer *out, size_t cap, size_t *n_out, char *err, size_t err_cap) {
  *n_out = 0;
  if (err && err_cap) err[0] = 0;
  if (!json_is_array(j)) return fail(err, err_cap, "offers must be a JSON array");
  size_t n = json_array_size(j);
  if (n > MKT_MAX_OFFERS || n > cap) {
    if (err && err_cap)
      snprintf(err, err_cap, "%zu offers; at most %zu", n, cap < MKT_MAX_OFFERS ? cap : (size_t)MKT_MAX_OFFERS);
    return ERR_TOOBIG;
  }
  for (size_t i = 0; i < n; i++) {
    int rc = json_offer(json_array_get(j, i), i, &out[i], err, err_cap);
    if (rc) return rc;
    if (dup_model(out, i)) return fail(err, err_cap, "offer %zu: model listed twice", i);
  }
  *n_out = n;
  return 0;
}

/* ---- bencode ---- */

/* Only offers that mkt_offers_from_ben accepts are written: bencode integers are int64, so
 * an offer priced above INT64_MAX cannot be expressed (clamping would advertise a price the
 * provider never set) and is left out of the record, as is one whose max_concurrent is
 * outside 1..1024. At most MKT_MAX_OFFERS are written. */
static int ben_writable(const mkt_offer *o) {
  return o->price_prompt <= INT64_MAX && o->price_gen <= INT64_MAX && o->max_concurrent >= 1 &&
         o->max_concurrent <= CONC_MAX;
}

void mkt_offers_to_ben(ben_w *w, const mkt_offer *o, size_t n) {
  ben_w_list(w);
  size_t written = 0;
  for (size_t i = 0; i < n && written < MKT_MAX_OFFERS; i++) {
    if (!ben_writable(&o[i])) continue;
    ben_w_dict(w);
    ben_w_key(w, "c");
    ben_w_int(w, (int64_t)o[i].max_concurrent);
    ben_w_key(w, "g");
    ben_w_int(w, (int64_t)o[i].price_gen);
    ben_w_key(w, "m");
    ben_w_str(w, o[i].model, 32);
    ben_w_key(w, "n");
    ben_w_str(w, o[i].name, name_len(&o[i]));
    ben_w_key(w, "p");
    ben_w_int(w, (int64_t)o[i].price_prompt);
    ben_w_end(w);
    written++;
  }
  ben_w_end(w);
}

static int ben_offer(const ben_node *d, mkt_offer *o) {
  memset(o, 0, sizeof *o);
  if (d->type != BEN_DICT) return ERR_FORMAT;
  const ben_node *m = ben_dict_str(d, "m", 32), *nm = ben_dict_get(d, "n");
  int64_t p, g, c;
  if (!m || !nm || nm->type != BEN_STR || !ben_dict_int(d, "p", &p) || !ben_dict_int(d, "g", &g) ||
      !ben_dict_int(d, "c", &c))
    return ERR_FORMAT;
  if (nm->len > MKT_NAME_MAX - 1 || (nm->len && memchr(nm->str, 0, nm->len))) return ERR_FORMAT;
  if (p < 0 || g < 0 || c < 1 || c > CONC_MAX) return ERR_FORMAT;
  memcpy(o->model, m->str, 32);
  if (nm->len) memcpy(o->name, nm->str, nm->len);
  o->price_prompt = (uint64_t)p;
  o->price_gen = (uint64_t)g;
  o->max_concurrent = (uint32_t)c;
  return 0;
}

int mkt_offers_from_ben(const ben_node *list, mkt_offer *out, size_t cap, size_t *n_out) {
  *n_out = 0;
  if (!list || list->type != BEN_LIST) return ERR_FORMAT;
  if (list->count > MKT_MAX_OFFERS || list->count > cap) return ERR_TOOBIG;
  const ben_node *e = list + 1;
  for (size_t i = 0; i < list->count; i++, e = ben_next(e)) {
    int rc = ben_offer(e, &out[i]);
    if (rc) return rc;
    if (dup_model(out, i)) return ERR_FORMAT;
  }
  *n_out = list->count;
  return 0;
}
