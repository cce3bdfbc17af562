/* agent/neg_msg — wire messages (see neg_msg.h). */
#include "agent/neg_msg.h"

#include <string.h>

#include "core/err.h"
#include "core/hex.h"

static const char *type_names[] = {"", "offer", "counter", "accept", "reject", "withdraw"};

const char *neg_msg_type_name(neg_msg_type t) { return t >= NEG_MSG_OFFER && t <= NEG_MSG_WITHDRAW ? type_names[t] : "?"; }

static int carries_bid(neg_msg_type t) { return t == NEG_MSG_OFFER || t == NEG_MSG_COUNTER || t == NEG_MSG_ACCEPT; }

json_t *neg_msg_encode(const neg_domain *d, const neg_msg *m, uint32_t seal_mask, const uint8_t *peer_xpk) {
  char sid[2 * NEG_SESSION_BYTES + 1];
  hex_encode(m->session, NEG_SESSION_BYTES, sid);
  json_t *j = json_object();
  if (!j) return NULL;
  json_object_set_new(j, "type", json_string(neg_msg_type_name(m->type)));
  json_object_set_new(j, "session", json_string(sid));
  json_object_set_new(j, "round", json_integer(m->round));
  if (carries_bid(m->type)) {
    json_t *bid = json_object();
    for (int i = 0; i < d->n_issues; i++) {
      if (seal_mask >> i & 1) {
        char b64[NEG_SEAL_B64];
        if (!peer_xpk || neg_seal_value(peer_xpk, m->session, m->round, i, m->bid.v[i], b64)) {
          json_decref(bid);
          json_decref(j);
          return NULL;
        }
        json_object_set_new(bid, d->issues[i].name, json_pack("{s:s}", "sealed", b64));
      } else
        json_object_set_new(bid, d->issues[i].name, json_string(d->issues[i].values[m->bid.v[i]]));
    }
    json_object_set_new(j, "bid", bid);
  }
  if (m->type == NEG_MSG_OFFER || m->type == NEG_MSG_COUNTER)
  {
    json_object_set_new(j, "expiry", json_integer((json_int_t)m->expiry_ms));
    if (m->deadline) json_object_set_new(j, "deadline", json_integer(m->deadline));
  }
  if (m->argument[0]) json_object_set_new(j, "argument", json_string(m->argument));
  return j;
}

static int decode_bid(const neg_domain *d, const json_t *bid, const neg_seal_keys *keys, neg_msg *out, char *err, size_t cap) {
  if (!json_is_object(bid) || json_object_size(bid) != (size_t)d->n_issues)
    return err_set(err, cap, ERR_FORMAT, "bid: expected an object naming each of the %d issues once", d->n_issues);
  for (int i = 0; i < d->n_issues; i++) {
    const json_t *v = json_object_get(bid, d->issues[i].name);
    int vi = -1;
    if (json_is_string(v)) {
      if (strlen(json_string_value(v)) == json_string_length(v)) vi = neg_value_index(&d->issues[i], json_string_value(v));
      if (vi < 0) return err_set(err, cap, ERR_FORMAT, "bid: '%s' has no such value", d->issues[i].name);
    } else if (json_is_object(v) && json_object_size(v) == 1 && json_is_string(json_object_get(v, "sealed"))) {
      if (!keys) return err_set(err, cap, ERR_CRYPTO, "bid: '%s' is sealed and no key opens it", d->issues[i].name);
      const json_t *s = json_object_get(v, "sealed");
      vi = neg_open_value(keys, json_string_value(s), json_string_length(s), out->session, out->round, i);
      if (vi < 0 || vi >= d->issues[i].n_values)
        return err_set(err, cap, vi == ERR_FORMAT ? ERR_FORMAT : ERR_CRYPTO, "bid: sealed '%s' does not open for us",
                       d->issues[i].name);
      out->sealed |= 1u << i;
    } else
      return err_set(err, cap, ERR_FORMAT, "bid: '%s' missing or not a value", d->issues[i].name);
    out->bid.v[i] = (uint8_t)vi;
  }
  out->has_bid = 1;
  return 0;
}

int neg_msg_decode(const neg_domain *d, const json_t *j, const neg_seal_keys *keys, neg_msg *out, char *err, size_t cap) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(j)) return err_set(err, cap, ERR_FORMAT, "message: expected a JSON object");
  const char *k;
  const json_t *v;
  json_object_foreach((json_t *)j, k, v) {
    if (strcmp(k, "type") && strcmp(k, "session") && strcmp(k, "round") && strcmp(k, "bid") && strcmp(k, "expiry") && strcmp(k, "deadline") &&
        strcmp(k, "argument"))
      return err_set(err, cap, ERR_FORMAT, "message: unknown key");
  }
  const char *type = json_string_value(json_object_get(j, "type"));
  for (int t = NEG_MSG_OFFER; type && t <= NEG_MSG_WITHDRAW; t++)
    if (!strcmp(type, type_names[t])) out->type = (neg_msg_type)t;
  if (!out->type) return err_set(err, cap, ERR_FORMAT, "message: type must be offer, counter, accept, reject or withdraw");
  const json_t *sid = json_object_get(j, "session");
  if (!json_is_string(sid) || json_string_length(sid) != 2 * NEG_SESSION_BYTES ||
      hex_decode(json_string_value(sid), 2 * NEG_SESSION_BYTES, out->session, NEG_SESSION_BYTES))
    return err_set(err, cap, ERR_FORMAT, "message: session must be 32 hex digits");
  const json_t *r = json_object_get(j, "round");
  if (!json_is_integer(r) || json_integer_value(r) < 0 || json_integer_value(r) >= NEG_MAX_ROUNDS)
    return err_set(err, cap, ERR_FORMAT, "message: round must be an integer 0..%d", NEG_MAX_ROUNDS - 1);
  out->round = (int)json_integer_value(r);
  const json_t *bid = json_object_get(j, "bid"), *ex = json_object_get(j, "expiry"), *arg = json_object_get(j, "argument");
  if (carries_bid(out->type)) {
    int rc = decode_bid(d, bid, keys, out, err, cap);
    if (rc) return rc;
  } else if (bid)
    return err_set(err, cap, ERR_FORMAT, "message: %s carries no bid", type);
  if (out->type == NEG_MSG_OFFER || out->type == NEG_MSG_COUNTER) {
    if (!json_is_integer(ex) || json_integer_value(ex) <= 0)
      return err_set(err, cap, ERR_FORMAT, "message: %s needs a positive expiry (ms)", type);
    out->expiry_ms = (uint64_t)json_integer_value(ex);
    const json_t *dl = json_object_get(j, "deadline");
    if (dl && (!json_is_integer(dl) || json_integer_value(dl) < 1 || json_integer_value(dl) > NEG_MAX_ROUNDS))
      return err_set(err, cap, ERR_FORMAT, "message: deadline must be an integer 1..%d", NEG_MAX_ROUNDS);
    out->deadline = dl ? (int)json_integer_value(dl) : 0;
  } else if (ex || json_object_get(j, "deadline"))
    return err_set(err, cap, ERR_FORMAT, "message: %s carries no expiry", type);
  if (arg) {
    size_t n = json_string_length(arg);
    if (!json_is_string(arg)) return err_set(err, cap, ERR_FORMAT, "message: argument must be a string");
    if (n > NEG_MAX_ARG) return err_set(err, cap, ERR_TOOBIG, "message: argument over %d bytes", NEG_MAX_ARG);
    if (memchr(json_string_value(arg), 0, n)) return err_set(err, cap, ERR_FORMAT, "message: argument contains NUL");
    memcpy(out->argument, json_string_value(arg), n + 1);
  }
  return 0;
}

int neg_msg_parse(const neg_domain *d, const char *text, size_t len, const neg_seal_keys *keys, neg_msg *out, char *err,
                  size_t cap) {
  memset(out, 0, sizeof *out);
  if (len > NEG_MAX_MSG) return err_set(err, cap, ERR_TOOBIG, "message: %zu bytes, over the %d cap", len, NEG_MAX_MSG);
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
  if (!j) return err_set(err, cap, ERR_FORMAT, "message: %s", je.text);
  int rc = neg_msg_decode(d, j, keys, out, err, cap);
  json_decref(j);
  return rc;
}
