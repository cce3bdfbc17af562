/* privacy/redact, redact_map, policy: the recognisers against Microsoft Presidio's
 * recogniser test vectors (tests/data/redact/presidio_vectors.tsv, with the cases we decide
 * differently marked and checked as we decide them), validators against known values,
 * placeholders (same value, same placeholder), restoring whole and streamed (a placeholder
 * split at every byte), request redaction, the policy order, and caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../support/testutil.h"
#include "agent/agent_def.h"
#include "core/err.h"
#include "privacy/policy.h"
#include "privacy/redact.h"
#include "privacy/redact_map.h"
#include "privacy/redact_req.h"

#define VECTORS "tests/data/redact/presidio_vectors.tsv"

static size_t unescape(const char *s, size_t n, char *out) {
  size_t m = 0;
  for (size_t k = 0; k < n; k++) {
    if (s[k] == '\\' && k + 1 < n) {
      k++;
      out[m++] = s[k] == 'n' ? '\n' : s[k] == 't' ? '\t' : s[k];
    } else out[m++] = s[k];
  }
  out[m] = 0;
  return m;
}

/* Our spans as "s-e,s-e" or "-". */
static void spans_text(const char *t, size_t n, unsigned mask, char *out, size_t cap) {
  redact_span sp[64];
  int k = redact_find(t, n, mask, sp, 64);
  assert_true(k >= 0);
  out[0] = 0;
  if (k == 0) { snprintf(out, cap, "-"); return; }
  for (int i = 0; i < k; i++) {
    size_t l = strlen(out);
    snprintf(out + l, cap - l, "%s%zu-%zu", i ? "," : "", sp[i].start, sp[i].end);
  }
}

static void test_presidio_vectors(void **st) {
  (void)st;
  FILE *f = fopen(VECTORS, "r");
  assert_non_null(f);
  char line[4096], text[4096], got[512];
  int n = 0, agree = 0, differ = 0, bad = 0;
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    line[strcspn(line, "\n")] = 0;
    int mine = line[0] == '!';
    char *type = line + mine, *exp = strchr(type, '\t');
    assert_non_null(exp);
    *exp++ = 0;
    char *tx = strchr(exp, '\t');
    assert_non_null(tx);
    *tx++ = 0;
    char *tab = strchr(tx, '\t');
    size_t tl = unescape(tx, tab ? (size_t)(tab - tx) : strlen(tx), text);
    int t = redact_type_parse(type);
    assert_true(t >= 0);
    spans_text(text, tl, 1u << t, got, sizeof got);
    int ok;
    if (exp[0] == '#') { /* a count only */
      int want = atoi(exp + 1), have = strcmp(got, "-") ? 1 : 0;
      for (const char *c = got; *c; c++) have += *c == ',';
      ok = want == have;
    } else ok = !strcmp(exp, got);
    if (!ok) {
      fprintf(stderr, "  %s \"%s\": want %s, got %s\n", type, text, exp, got);
      bad++;
    }
    n++;
    agree += !mine, differ += mine;
  }
  fclose(f);
  fprintf(stderr, "  presidio vectors: %d cases, %d as Presidio, %d decided differently (docs/redaction.md)\n", n,
          agree, differ);
  assert_true(n > 500);
  assert_int_equal(bad, 0);
}

static void test_validators(void **st) {
  (void)st;
  assert_true(redact__luhn_ok("4111111111111111", strlen("4111111111111111")));
  assert_false(redact__luhn_ok("4111111111111112", strlen("4111111111111112")));
  assert_true(redact__iban_ok("GB82WEST12345698765432", strlen("GB82WEST12345698765432")));
  assert_false(redact__iban_ok("GB82WEST12345698765433", strlen("GB82WEST12345698765433")));
  assert_false(redact__iban_ok("GB82WEST1234569876543", strlen("GB82WEST1234569876543"))); /* wrong length for GB */
  assert_true(redact__btc_ok("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", strlen("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")));
  assert_false(redact__btc_ok("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3", strlen("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3")));
  /* BIP 173 / 350 vectors */
  assert_true(redact__btc_ok("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ", strlen("BC1QAR0SRRR7XFKVY5L643LYDNW9RE59GTZZWF5MDQ")));
  assert_true(redact__btc_ok("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3", strlen("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3")));
  assert_false(redact__btc_ok("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv4", strlen("bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv4")));
  assert_true(redact__btc_ok("bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297", strlen("bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297")));
  assert_true(redact__btc_ok("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", strlen("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq")));
  assert_false(redact__btc_ok("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr", strlen("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdr")));
  assert_false(redact__btc_ok("bc1qAr0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", strlen("bc1qAr0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"))); /* mixed case */
  /* EIP-55 vectors */
  assert_true(redact__eth_ok("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", strlen("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")));
  assert_true(redact__eth_ok("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", strlen("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")));
  assert_true(redact__eth_ok("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", strlen("0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB")));
  assert_false(redact__eth_ok("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", strlen("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")));
  assert_true(redact__eth_ok("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", strlen("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"))); /* one case: no checksum */
}

/* type and text of each span of s, "TYPE:text|..." */
static void found(const char *s, char *out, size_t cap) {
  redact_span sp[64];
  int k = redact_find(s, strlen(s), REDACT_ALL, sp, 64);
  assert_true(k >= 0);
  out[0] = 0;
  for (int i = 0; i < k; i++) {
    size_t l = strlen(out);
    snprintf(out + l, cap - l, "%s%s:%.*s", i ? "|" : "", redact_type_name(sp[i].type), (int)(sp[i].end - sp[i].start),
             s + sp[i].start);
  }
}

static void test_types(void **st) {
  (void)st;
  char o[1024];
  static const struct { const char *in, *want; } cases[] = {
      {"write to jane.doe+x@example.co.uk.", "EMAIL:jane.doe+x@example.co.uk"},
      {"see https://example.org/a?b=1 (or www.example.com).", "URL:https://example.org/a?b=1|URL:www.example.com"},
      {"call +44 20 7946 0958 or (415) 555-0132 x12", "PHONE:+44 20 7946 0958|PHONE:(415) 555-0132 x12"},
      {"card 4111 1111 1111 1111, not 4111 1111 1111 1112", "CARD:4111 1111 1111 1111"},
      {"IBAN DE89 3704 0044 0532 0130 00 ok", "IBAN:DE89 3704 0044 0532 0130 00"},
      {"host 10.0.0.1 and 2001:db8::1 up", "IP:10.0.0.1|IP:2001:db8::1"},
      {"at 12:30:45 and version 1.2.3", ""},
      {"mac 00-1A-2B-3C-4D-5E.", "MAC:00-1A-2B-3C-4D-5E"},
      {"SSN 123-45-6788 but not 666-12-3456 or 900-12-3456", "SSN:123-45-6788"},
      {"SSN 078-05-0000", ""},
      {"ssn: 219098888", "SSN:219098888"},
      {"order 219098888", ""},
      {"born on March 3rd, 1985 and 1985-03-04 and 31/02/1985", "DOB:March 3rd, 1985|DOB:1985-03-04"},
      {"DOB: 4/5/85", "DOB:4/5/85"},
      {"in 4/5/85", ""},
      {"pay 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed now", "CRYPTO:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"},
      {"room 1234 5678 on floor 3", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    found(cases[i].in, o, sizeof o);
    if (strcmp(o, cases[i].want)) fprintf(stderr, "  \"%s\": got \"%s\"\n", cases[i].in, o);
    assert_string_equal(o, cases[i].want);
  }
}

static void test_placeholders_and_restore(void **st) {
  (void)st;
  redact_map *m;
  assert_int_equal(redact_map_new(REDACT_ALL, &m), 0);
  const char *in = "a@b.com and c@d.org, again a@b.com; card 4012888888881881";
  buf out, back;
  buf_init(&out), buf_init(&back);
  assert_int_equal(redact_map_apply(m, in, strlen(in), &out), 0);
  assert_string_equal((char *)out.ptr, "[EMAIL_1] and [EMAIL_2], again [EMAIL_1]; card [CARD_1]");
  assert_int_equal(redact_map_count(m), 3);
  /* a second text under the same map keeps the numbering */
  buf_reset(&out);
  assert_int_equal(redact_map_apply(m, "c@d.org e@f.net", 15, &out), 0);
  assert_string_equal((char *)out.ptr, "[EMAIL_2] [EMAIL_3]");
  const char *ans = "Mail [EMAIL_1] and [EMAIL_3]; [EMAIL_9] and [CARD_1] [EMAIL_1";
  assert_int_equal(redact_map_restore(m, ans, strlen(ans), &back), 0);
  assert_string_equal((char *)back.ptr, "Mail a@b.com and e@f.net; [EMAIL_9] and 4012888888881881 [EMAIL_1");
  /* streamed: the answer cut at every byte, and byte by byte */
  for (size_t cut = 0; cut <= strlen(ans); cut++) {
    redact_restorer r;
    redact_restorer_init(&r, m);
    buf s;
    buf_init(&s);
    assert_int_equal(redact_restorer_push(&r, ans, cut, &s), 0);
    assert_int_equal(redact_restorer_push(&r, ans + cut, strlen(ans) - cut, &s), 0);
    assert_int_equal(redact_restorer_flush(&r, &s), 0);
    assert_int_equal(s.len, back.len);
    assert_memory_equal(s.ptr, back.ptr, back.len);
    buf_deinit(&s);
  }
  redact_restorer r;
  redact_restorer_init(&r, m);
  buf s;
  buf_init(&s);
  for (size_t k = 0; k < strlen(ans); k++) assert_int_equal(redact_restorer_push(&r, ans + k, 1, &s), 0);
  assert_int_equal(redact_restorer_flush(&r, &s), 0);
  assert_int_equal(s.len, back.len);
  assert_memory_equal(s.ptr, back.ptr, back.len);
  /* "[" runs that are no placeholder are not held forever */
  buf_reset(&s);
  assert_int_equal(redact_restorer_push(&r, "[[[[ x [abc", 11, &s), 0);
  assert_true(s.len >= 6);
  buf_deinit(&s);
  buf_deinit(&out), buf_deinit(&back);
  redact_map_free(m);
}

static void test_request(void **st) {
  (void)st;
  local_req lr;
  memset(&lr, 0, sizeof lr);
  json_error_t je;
  json_t *orig = json_loads("[{\"role\":\"user\",\"content\":\"I am bob@example.com, card 4111111111111111\"},"
                            "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"1\",\"type\":"
                            "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"to\\\":\\\"bob@example."
                            "com\\\"}\"}}]},"
                            "{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"sent to bob@example.com\"},"
                            "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"IP 10.1.2.3\"}]}]",
                            0, &je);
  assert_non_null(orig);
  lr.messages = json_incref(orig);
  lr.prompt = strdup("prompt to carol@example.org");
  lr.prompt_len = strlen(lr.prompt);
  redact_map *m;
  assert_int_equal(redact_map_new(REDACT_ALL, &m), 0);
  assert_int_equal(redact_req_apply(m, &lr), 0);
  char *s = json_dumps(lr.messages, JSON_COMPACT);
  assert_null(strstr(s, "bob@"));
  assert_null(strstr(s, "4111"));
  assert_null(strstr(s, "10.1.2.3"));
  assert_non_null(strstr(s, "[EMAIL_2], card [CARD_1]"));
  assert_non_null(strstr(s, "sent to [EMAIL_2]"));
  assert_non_null(strstr(s, "\\\"to\\\":\\\"[EMAIL_2]\\\""));
  assert_non_null(strstr(s, "IP [IP_1]"));
  free(s);
  assert_string_equal(lr.prompt, "prompt to [EMAIL_1]"); /* the prompt goes first */
  s = json_dumps(orig, JSON_COMPACT); /* the caller's JSON is unchanged */
  assert_non_null(strstr(s, "bob@example.com"));
  free(s);
  json_decref(orig);
  local_req_clear(&lr);
  redact_map_free(m);
}

static void test_policy(void **st) {
  (void)st;
  assert_int_equal(policy_parse("allow", 5), POLICY_ALLOW);
  assert_int_equal(policy_parse("Redact", 6), POLICY_REDACT);
  assert_int_equal(policy_parse(" local-only ", 12), POLICY_LOCAL_ONLY);
  assert_int_equal(policy_parse("local_only", 10), POLICY_LOCAL_ONLY);
  assert_int_equal(policy_parse("none", 4), ERR_INVAL);
  assert_int_equal(policy_parse("allowx", 5), POLICY_ALLOW); /* length-bounded */
  assert_int_equal(policy_strictest(POLICY_UNSET, POLICY_REDACT), POLICY_REDACT);
  assert_int_equal(policy_strictest(POLICY_LOCAL_ONLY, POLICY_ALLOW), POLICY_LOCAL_ONLY);
  assert_int_equal(policy_strictest(POLICY_REDACT, POLICY_ALLOW), POLICY_REDACT);
  assert_string_equal(policy_name(POLICY_LOCAL_ONLY), "local-only");
  unsigned mask;
  assert_int_equal(redact_types_parse("email,CARD,phone_number", &mask), 0);
  assert_int_equal(mask, (1u << REDACT_EMAIL) | (1u << REDACT_CARD) | (1u << REDACT_PHONE));
  assert_int_equal(redact_types_parse("email,,card", &mask), ERR_INVAL);
  assert_int_equal(redact_types_parse("nope", &mask), ERR_INVAL);
  /* an agent definition's privacy field */
  json_t *def = NULL;
  char err[256];
  json_t *in = json_pack("{s:s, s:s, s:s}", "name", "a", "model", "m", "privacy", "Local-Only");
  assert_int_equal(agent_def_check(in, &def, err, sizeof err), 0);
  assert_string_equal(json_string_value(json_object_get(def, "privacy")), "local-only");
  json_decref(def);
  json_object_set_new(in, "privacy", json_string("public"));
  assert_true(agent_def_check(in, &def, err, sizeof err) != 0);
  assert_non_null(strstr(err, "privacy"));
  json_decref(in);
}

static void test_caps(void **st) {
  (void)st;
  redact_span sp[4];
  assert_int_equal(redact_find("x", REDACT_MAX_INPUT + 1, REDACT_ALL, sp, 4), ERR_TOOBIG);
  const char *many = "a@b.com c@d.com e@f.com g@h.com i@j.com";
  assert_int_equal(redact_find(many, strlen(many), REDACT_ALL, sp, 4), ERR_TOOBIG);
  /* a large hostile text: long runs of every scanner's characters, finished quickly */
  size_t n = 1 << 20;
  char *t = malloc(n);
  for (size_t k = 0; k < n; k++) t[k] = "1 .-:a@[x/9("[k % 12];
  redact_span *big = malloc(REDACT_MAX_SPANS * sizeof *big);
  assert_true(redact_find(t, n, REDACT_ALL, big, REDACT_MAX_SPANS) >= 0 ||
              redact_find(t, n, REDACT_ALL, big, REDACT_MAX_SPANS) == ERR_TOOBIG);
  free(big);
  free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_presidio_vectors), cmocka_unit_test(test_validators),
      cmocka_unit_test(test_types),            cmocka_unit_test(test_placeholders_and_restore),
      cmocka_unit_test(test_request),          cmocka_unit_test(test_policy),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
