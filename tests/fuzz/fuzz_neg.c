/* libFuzzer harness: negotiation input from untrusted peers and files (agent/neg_*). The
 * first byte picks the parser, the rest is its input: 0 a wire message (neg.message params)
 * over a small fixed domain, opened with a fixed key; 1 a scenario file; 2 a Genius XML
 * utility space; 3 an intent; 4 a signed deal as a peer sends it (neg.deal params); 5 an
 * owner's intent file. What a parser accepts must survive its writer: a message
 * re-encodes (sealing what came sealed) and decodes to the same message; a scenario
 * re-emits and parses equal; an intent round-trips; every accepted bid is in range; a deal
 * writes back and reads equal, and verifying it never crashes; an owner file's public part
 * parses as an intent with the same schema. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/neg_deal.h"
#include "agent/neg_genius.h"
#include "agent/neg_intent.h"
#include "agent/neg_msg.h"
#include "agent/neg_owner.h"

static neg_scenario dom_s;
static neg_seal_keys keys;
static int ready;

static void setup(void) {
  const char *t = "{\"issues\":[{\"name\":\"price\",\"role\":\"price\",\"values\":[\"1000\",\"2000\",\"3000\"]},"
                  "{\"name\":\"model\",\"values\":[\"a\",\"b\"]}],\"sides\":["
                  "{\"name\":\"x\",\"weights\":[0.5,0.5],\"scores\":[[1,0.5,0],[1,0]],\"reservation\":0.1,\"deadline\":9},"
                  "{\"name\":\"y\",\"weights\":[0.5,0.5],\"scores\":[[0,0.5,1],[0,1]],\"reservation\":0.1,\"deadline\":9}]}";
  char err[200];
  if (neg_scenario_parse(t, strlen(t), &dom_s, err, sizeof err)) abort();
  uint8_t seed[32] = {42};
  ident id;
  ident_from_seed(seed, &id);
  if (neg_seal_keys_from_ident(&id, &keys)) abort();
  ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ready) setup();
  if (size < 1) return 0;
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  char err[300];
  switch (data[0] % 6) {
  case 0: {
    static neg_msg m, m2;
    if (neg_msg_parse(&dom_s.dom, text, len, &keys, &m, err, sizeof err)) return 0;
    if (m.has_bid && !neg_bid_valid(&dom_s.dom, &m.bid)) abort();
    if (strlen(m.argument) > NEG_MAX_ARG) abort();
    json_t *j = neg_msg_encode(&dom_s.dom, &m, m.sealed, keys.pk);
    if (!j || neg_msg_decode(&dom_s.dom, j, &keys, &m2, err, sizeof err) || memcmp(&m, &m2, sizeof m)) abort();
    json_decref(j);
    break;
  }
  case 1: {
    static neg_scenario s, s2;
    if (neg_scenario_parse(text, len, &s, err, sizeof err)) return 0;
    json_t *j = neg_scenario_to_json(&s);
    if (!j || neg_scenario_from_json(j, &s2, err, sizeof err)) abort();
    json_decref(j);
    break;
  }
  case 2: {
    static neg_domain d;
    static neg_prefs p;
    if (neg_genius_parse(text, len, &d, &p, err, sizeof err)) return 0;
    if (d.n_issues < 1 || d.n_issues > NEG_MAX_ISSUES) abort();
    for (int i = 0; i < d.n_issues; i++)
      if (d.issues[i].n_values < 1 || d.issues[i].n_values > NEG_MAX_VALUES || !(p.weight[i] >= 0 && p.weight[i] <= 1)) abort();
    break;
  }
  case 3: {
    static neg_intent in, in2;
    json_t *j = json_loadb(text, len, 0, NULL);
    if (!j) return 0;
    if (!neg_intent_from_json(j, &in, err, sizeof err)) {
      json_t *b = neg_intent_to_json(&in);
      if (neg_intent_from_json(b, &in2, err, sizeof err) || memcmp(&in, &in2, sizeof in)) abort();
      json_decref(b);
    }
    json_decref(j);
    break;
  }
  case 4: {
    json_t *j = json_loadb(text, len, 0, NULL);
    neg_deal d, d2;
    if (!j) return 0;
    if (!neg_deal_from_json(j, &d)) {
      (void)neg_deal_verify(&d);
      neg_deal_payment pay;
      neg_deal_payment_terms(&d, &pay);
      char *c = neg_deal_canonical(&d);
      json_t *b = neg_deal_to_json(&d);
      if (!b || neg_deal_from_json(b, &d2)) abort();
      char *c2 = neg_deal_canonical(&d2);
      if (!c || !c2 || strcmp(c, c2) || d.have_a != d2.have_a || d.have_b != d2.have_b ||
          (d.have_a && memcmp(d.sig_a, d2.sig_a, sizeof d.sig_a)) || (d.have_b && memcmp(d.sig_b, d2.sig_b, sizeof d.sig_b)))
        abort();
      free(c);
      free(c2);
      json_decref(b);
      neg_deal_deinit(&d2);
      neg_deal_deinit(&d);
    }
    json_decref(j);
    break;
  }
  case 5: {
    static neg_owner_intent o;
    static neg_intent back;
    if (neg_owner_parse(text, len, &o, err, sizeof err)) return 0;
    if (!neg_owner_id_ok(o.id) || o.mandate.deadline < 1) abort();
    json_t *pub = neg_owner_public(&o);
    if (!pub || json_object_get(pub, "mandate") || neg_intent_from_json(pub, &back, err, sizeof err) ||
        !neg_owner_same_schema(&back.schema, &o.intent.schema))
      abort();
    json_decref(pub);
    break;
  }
  }
  return 0;
}
