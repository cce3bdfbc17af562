/* agent/neg_deal — signed deal documents (see neg_deal.h). */
#include "agent/neg_deal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"

#define DEAL_CONTEXT "apiary-neg-deal-v1\n"

static json_t *hexstr(const uint8_t *b, size_t n) {
  char h[2 * 64 + 1];
  hex_encode(b, n, h);
  return json_string(h);
}

int neg_deal_init(neg_deal *dl, const neg_domain *d, const neg_bid *bid, const uint8_t session[static NEG_SESSION_BYTES],
                  const uint8_t pk_a[static 32], const uint8_t pk_b[static 32], int round, uint64_t created_ms) {
  memset(dl, 0, sizeof *dl);
  if (!neg_bid_valid(d, bid)) return ERR_INVAL;
  json_t *doc = json_object(), *terms = json_object(), *pay = json_object();
  if (!doc || !terms || !pay) {
    json_decref(doc), json_decref(terms), json_decref(pay);
    return ERR_NOMEM;
  }
  json_object_set_new(doc, "v", json_integer(1));
  json_object_set_new(doc, "session", hexstr(session, NEG_SESSION_BYTES));
  json_object_set_new(doc, "domain", json_string(d->name));
  json_object_set_new(doc, "a", hexstr(pk_a, 32));
  json_object_set_new(doc, "b", hexstr(pk_b, 32));
  json_object_set_new(doc, "round", json_integer(round));
  json_object_set_new(doc, "created_ms", json_integer((json_int_t)created_ms));
  int price = 0;
  for (int i = 0; i < d->n_issues; i++) {
    const char *v = d->issues[i].values[bid->v[i]];
    json_object_set_new(terms, d->issues[i].name, json_string(v));
    const char *key = d->issues[i].role == NEG_ROLE_PRICE    ? "price_per_1k_wei"
                      : d->issues[i].role == NEG_ROLE_VOLUME ? "volume_tokens"
                      : d->issues[i].role == NEG_ROLE_EXPIRY ? "expires_s"
                                                             : NULL;
    if (key) json_object_set_new(pay, key, json_string(v));
    price |= d->issues[i].role == NEG_ROLE_PRICE;
  }
  json_object_set_new(doc, "terms", terms);
  if (price) json_object_set_new(doc, "payment", pay);
  else json_decref(pay);
  dl->doc = doc;
  return 0;
}

void neg_deal_deinit(neg_deal *dl) {
  json_decref(dl->doc);
  memset(dl, 0, sizeof *dl);
}

char *neg_deal_canonical(const neg_deal *dl) { return json_dumps(dl->doc, JSON_SORT_KEYS | JSON_COMPACT); }

/* The signed message: context || canonical (owned; *len_out bytes). */
static uint8_t *message(const neg_deal *dl, size_t *len_out) {
  char *c = neg_deal_canonical(dl);
  if (!c) return NULL;
  size_t n = strlen(DEAL_CONTEXT) + strlen(c);
  uint8_t *m = malloc(n);
  if (m) {
    memcpy(m, DEAL_CONTEXT, strlen(DEAL_CONTEXT));
    memcpy(m + strlen(DEAL_CONTEXT), c, strlen(c));
  }
  free(c);
  *len_out = n;
  return m;
}

static int side_pk(const neg_deal *dl, int side, uint8_t pk[static 32]) {
  const char *h = json_string_value(json_object_get(dl->doc, side ? "b" : "a"));
  return h && !hex_decode(h, strlen(h), pk, 32) ? 0 : ERR_FORMAT;
}

int neg_deal_sign(neg_deal *dl, const ident *id, int side) {
  uint8_t pk[32];
  if (side_pk(dl, side, pk) || memcmp(pk, id->pk, 32)) return ERR_INVAL;
  size_t n;
  uint8_t *m = message(dl, &n);
  if (!m) return ERR_NOMEM;
  ident_sign(id, m, n, side ? dl->sig_b : dl->sig_a);
  free(m);
  *(side ? &dl->have_b : &dl->have_a) = 1;
  return 0;
}

void neg_deal_set_sig(neg_deal *dl, int side, const uint8_t sig[static IDENT_SIG_BYTES]) {
  memcpy(side ? dl->sig_b : dl->sig_a, sig, IDENT_SIG_BYTES);
  *(side ? &dl->have_b : &dl->have_a) = 1;
}

int neg_deal_verify(const neg_deal *dl) {
  if (!dl->doc || !dl->have_a || !dl->have_b) return ERR_CRYPTO;
  size_t n;
  uint8_t *m = message(dl, &n), pk[32];
  int rc = m ? 0 : ERR_NOMEM;
  for (int s = 0; !rc && s < 2; s++)
    rc = side_pk(dl, s, pk) || ident_verify(pk, m, n, s ? dl->sig_b : dl->sig_a) ? ERR_CRYPTO : 0;
  free(m);
  return rc;
}

static uint64_t dec(const json_t *pay, const char *k) {
  const char *s = json_string_value(json_object_get(pay, k));
  return s ? strtoull(s, NULL, 10) : 0;
}

void neg_deal_payment_terms(const neg_deal *dl, neg_deal_payment *out) {
  memset(out, 0, sizeof *out);
  const json_t *pay = json_object_get(dl->doc, "payment");
  if (!pay) return;
  out->has_price = 1;
  out->price_per_1k_wei = dec(pay, "price_per_1k_wei");
  out->volume_tokens = dec(pay, "volume_tokens");
  out->expires_s = dec(pay, "expires_s");
}

json_t *neg_deal_to_json(const neg_deal *dl) {
  json_t *j = json_object();
  json_object_set(j, "deal", dl->doc);
  if (dl->have_a) json_object_set_new(j, "sig_a", hexstr(dl->sig_a, IDENT_SIG_BYTES));
  if (dl->have_b) json_object_set_new(j, "sig_b", hexstr(dl->sig_b, IDENT_SIG_BYTES));
  return j;
}

int neg_deal_from_json(const json_t *j, neg_deal *out) {
  memset(out, 0, sizeof *out);
  const json_t *doc = json_object_get(j, "deal");
  if (!json_is_object(doc) || !json_is_string(json_object_get(doc, "a")) || !json_is_string(json_object_get(doc, "b")))
    return ERR_FORMAT;
  for (int s = 0; s < 2; s++) {
    const char *h = json_string_value(json_object_get(j, s ? "sig_b" : "sig_a"));
    if (!h) continue;
    if (hex_decode(h, strlen(h), s ? out->sig_b : out->sig_a, IDENT_SIG_BYTES)) return ERR_FORMAT;
    *(s ? &out->have_b : &out->have_a) = 1;
  }
  out->doc = json_deep_copy(doc);
  return out->doc ? 0 : ERR_NOMEM;
}

int neg_deal_eip712_digest(const neg_deal *dl, uint64_t chain_id, uint8_t out[static 32]) {
  neg_deal_payment p;
  neg_deal_payment_terms(dl, &p);
  if (!p.has_price) return ERR_INVAL;
  char sess[67] = "0x", a[67] = "0x", b[67] = "0x";
  const char *s = json_string_value(json_object_get(dl->doc, "session"));
  snprintf(sess + 2, sizeof sess - 2, "%s%032d", s ? s : "", 0); /* 16 bytes, right-padded to 32 */
  snprintf(a + 2, sizeof a - 2, "%s", json_string_value(json_object_get(dl->doc, "a")));
  snprintf(b + 2, sizeof b - 2, "%s", json_string_value(json_object_get(dl->doc, "b")));
  json_t *typed = json_pack(
      "{s:{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}],s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]},"
      "s:s,s:{s:s,s:s,s:I},s:{s:s,s:s,s:s,s:I,s:I,s:I}}",
      "types", "EIP712Domain", "name", "name", "type", "string", "name", "version", "type", "string", "name", "chainId", "type",
      "uint256", "NegDeal", "name", "session", "type", "bytes32", "name", "partyA", "type", "bytes32", "name", "partyB", "type",
      "bytes32", "name", "pricePer1kWei", "type", "uint256", "name", "volumeTokens", "type", "uint256", "name", "expiresS",
      "type", "uint256", "primaryType", "NegDeal", "domain", "name", "apiary-neg", "version", "1", "chainId",
      (json_int_t)chain_id, "message", "session", sess, "partyA", a, "partyB", b, "pricePer1kWei",
      (json_int_t)p.price_per_1k_wei, "volumeTokens", (json_int_t)p.volume_tokens, "expiresS", (json_int_t)p.expires_s);
  if (!typed) return ERR_NOMEM;
  int rc = eip712_digest_json(typed, out);
  json_decref(typed);
  return rc;
}
