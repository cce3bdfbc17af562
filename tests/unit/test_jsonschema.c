/* llm/jsonschema: integer bounds checked exhaustively against arithmetic, property order
 * and additionalProperties, canonical text, unsupported keywords named with their
 * pointer, prefix naming, and the any-object grammar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"

/* 1 accepted, 0 rejected (flags: jsonschema_to_gbnf_ex's). */
static int accepts_ex(const char *schema_text, const char *instance, int flags) {
  json_t *s = json_loads(schema_text, JSON_DECODE_ANY, NULL);
  assert_non_null(s);
  char *gbnf, err[256];
  int rc = jsonschema_to_gbnf_ex(s, "root", flags, &gbnf, err, sizeof err);
  if (rc) fprintf(stderr, "%s: %s\n", schema_text, err);
  assert_int_equal(rc, 0);
  grammar *g;
  assert_int_equal(grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err), 0);
  const char *p[] = {"x"};
  size_t l[] = {1};
  grammar_vocab *v;
  grammar_matcher *m;
  assert_int_equal(grammar_vocab_new(1, p, l, NULL, NULL, &v), 0);
  assert_int_equal(grammar_matcher_new(g, v, &m), 0);
  int ok = grammar_matcher_accept_bytes(m, instance, strlen(instance)) == 0 && grammar_matcher_can_end(m);
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  grammar_free(g);
  free(gbnf);
  json_decref(s);
  return ok;
}

static int accepts(const char *schema_text, const char *instance) { return accepts_ex(schema_text, instance, 0); }

/* The compact form (what generation uses) allows one space between tokens, nothing more. */
static void test_compact(void **state) {
  (void)state;
  const char *sch = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}}}";
  assert_true(accepts_ex(sch, "{\"a\":[1,2]}", JSONSCHEMA_COMPACT));
  assert_true(accepts_ex(sch, "{\"a\": [1, 2]}", JSONSCHEMA_COMPACT));
  assert_true(accepts_ex(sch, "{ \"a\" : [ 1 , 2 ] }", JSONSCHEMA_COMPACT));
  assert_false(accepts_ex(sch, "{\"a\":  [1,2]}", JSONSCHEMA_COMPACT));
  assert_false(accepts_ex(sch, "{\n  \"a\": [1,2]\n}", JSONSCHEMA_COMPACT));
  assert_true(accepts(sch, "{\n  \"a\": [1,2]\n}"));
}

/* Numbers with decimal bounds: the grammar agrees with arithmetic on a grid of decimals
 * (written as JSON writes them, no exponent) for every combination of bound kinds. */
static void test_number_bounds(void **state) {
  (void)state;
  const double bounds[] = {-2.5, -1, -0.75, 0, 0.1, 1.1, 2, 2.375, 10.05, 99.9};
  static const char *const kw[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
  int checked = 0;
  for (size_t a = 0; a < sizeof bounds / sizeof *bounds; a++)
    for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b += 3)
      for (int ka = 0; ka < 2; ka++)
        for (int kb = 2; kb < 5; kb++) { /* kb 4: no upper bound */
          char sch[256];
          if (kb < 4)
            snprintf(sch, sizeof sch, "{\"type\":\"number\",\"%s\":%.17g,\"%s\":%.17g}", kw[ka], bounds[a], kw[kb], bounds[b]);
          else snprintf(sch, sizeof sch, "{\"type\":\"number\",\"%s\":%.17g}", kw[ka], bounds[a]);
          json_t *sj = json_loads(sch, 0, NULL);
          char *gbnf, err[256];
          assert_int_equal(jsonschema_to_gbnf(sj, "root", &gbnf, err, sizeof err), 0);
          grammar *g;
          assert_int_equal(grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err), 0);
          const char *p[] = {"x"};
          size_t l[] = {1};
          grammar_vocab *v;
          assert_int_equal(grammar_vocab_new(1, p, l, NULL, NULL, &v), 0);
          grammar_matcher *m;
          assert_int_equal(grammar_matcher_new(g, v, &m), 0);
          for (int i = -1300; i <= 1300; i += 13) {
            for (int form = 0; form < 3; form++) {
              double x = i / 100.0 + (form == 2 ? 0.005 : 0);
              char text[64];
              if (form == 1) snprintf(text, sizeof text, "%.3f", x); /* trailing zeros */
              else {
                for (int prec = 1; prec <= 17; prec++) {
                  snprintf(text, sizeof text, "%.*g", prec, x);
                  if (strtod(text, NULL) == x) break;
                }
              }
              if (strchr(text, 'e')) continue;
              double xv = strtod(text, NULL);
              int want = (ka == 0 ? xv >= bounds[a] : xv > bounds[a]) &&
                         (kb == 4 || (kb == 2 ? xv <= bounds[b] : xv < bounds[b]));
              grammar_matcher_reset(m);
              int got = grammar_matcher_accept_bytes(m, text, strlen(text)) == 0 && grammar_matcher_can_end(m);
              if (got != want) fail_msg("%s: %s %s (want %d)", sch, text, got ? "accepted" : "rejected", want);
              checked++;
            }
          }
          grammar_matcher_free(m);
          grammar_vocab_free(v);
          grammar_free(g);
          free(gbnf);
          json_decref(sj);
        }
  assert_true(checked > 10000);
}

static void test_integer_bounds(void **state) {
  (void)state;
  struct { const char *kw; long lo, hi; } cases[] = {
      {"\"minimum\": 3", 3, 1000000}, {"\"maximum\": -7", -1000000, -7},
      {"\"minimum\": -15, \"maximum\": 1234", -15, 1234}, {"\"exclusiveMinimum\": 9, \"exclusiveMaximum\": 101", 10, 100},
      {"\"minimum\": 0.5, \"maximum\": 99.5", 1, 99}, {"\"minimum\": -100, \"maximum\": -100", -100, -100},
      {"\"minimum\": 5, \"maximum\": 4", 1, 0},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    char schema[256];
    snprintf(schema, sizeof schema, "{\"type\": \"integer\", %s}", cases[k].kw);
    for (long x = -1300; x <= 1300; x += (x > -120 && x < 120) ? 1 : 37) {
      if (x > 90 && x < 1200 && x % 37 && !(x >= 99 && x <= 102)) continue;
      char inst[32];
      snprintf(inst, sizeof inst, "%ld", x);
      int want = x >= cases[k].lo && x <= cases[k].hi;
      if (accepts(schema, inst) != want) fprintf(stderr, "%s: %ld\n", schema, x);
      assert_int_equal(accepts(schema, inst), want);
    }
  }
  assert_int_equal(accepts("{\"type\": \"integer\", \"minimum\": 0}", "-0"), 1);
  assert_int_equal(accepts("{\"type\": \"integer\", \"minimum\": 1}", "-0"), 0);
  assert_int_equal(accepts("{\"type\": \"integer\", \"minimum\": 3}", "123456789012345678901234"), 1);
}

static void test_objects(void **state) {
  (void)state;
  const char *s = "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}, \"b\": {\"type\": \"integer\"}},"
                  " \"required\": [\"b\"], \"additionalProperties\": false}";
  assert_int_equal(accepts(s, "{\"a\":\"x\",\"b\":1}"), 1);
  assert_int_equal(accepts(s, "{\"b\":1,\"a\":\"x\"}"), 1); /* any order */
  assert_int_equal(accepts(s, "{ \"b\" : 1 ,\n  \"a\": \"x\" }"), 1);
  assert_int_equal(accepts(s, "{\"a\":\"x\"}"), 0);             /* required */
  assert_int_equal(accepts(s, "{\"b\":1,\"b\":2}"), 0);         /* once */
  assert_int_equal(accepts(s, "{\"b\":1,\"c\":2}"), 0);         /* no others */
  assert_int_equal(accepts(s, "{\"b\":1,      \n\n \"a\":\"x\"}"), 0); /* bounded whitespace */
  const char *t = "{\"properties\": {\"ab\": {\"type\": \"null\"}}, \"additionalProperties\": {\"type\": \"boolean\"}}";
  assert_int_equal(accepts(t, "{\"a\":true,\"abc\":false,\"ab\":null}"), 1);
  assert_int_equal(accepts(t, "{\"ab\":true}"), 0);
  assert_int_equal(accepts(t, "{\"a\":null}"), 0);
  assert_int_equal(accepts(t, "[]"), 1); /* no type: other types pass */
}

static void test_misc(void **state) {
  (void)state;
  assert_int_equal(accepts("{\"type\": \"string\", \"pattern\": \"^[a-c]+x?$\"}", "\"abcx\""), 1);
  assert_int_equal(accepts("{\"type\": \"string\", \"pattern\": \"^[a-c]+x?$\"}", "\"abd\""), 0);
  assert_int_equal(accepts("{\"type\": \"string\", \"pattern\": \"b\\\\d\"}", "\"aab7z\""), 1);
  assert_int_equal(accepts("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"integer\"}], \"items\": {\"type\": \"string\"}, \"maxItems\": 3}",
                           "[1,\"a\",\"b\"]"), 1);
  assert_int_equal(accepts("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"integer\"}], \"items\": {\"type\": \"string\"}, \"maxItems\": 3}",
                           "[1,\"a\",\"b\",\"c\"]"), 0);
  assert_int_equal(accepts("{\"$defs\": {\"n\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/n\"}}}, \"$ref\": \"#/$defs/n\"}",
                           "[[],[[]]]"), 1);
  assert_int_equal(accepts("{\"enum\": [1, \"a\\nb\", null]}", "\"a\\nb\""), 1);
  assert_int_equal(accepts("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}", "\"é😀\""), 1);
  assert_int_equal(accepts("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}", "\"abcd\""), 0);
  /* canonical text */
  json_t *j = json_loads("{\"b\": [1.0, 2.5, 0.1, -0.0], \"a\": \"x\\u0001\\\"\"}", 0, NULL);
  char *text;
  assert_int_equal(jsonschema_canonical(j, &text), 0);
  assert_string_equal(text, "{\"b\":[1,2.5,0.1,0],\"a\":\"x\\u0001\\\"\"}");
  free(text);
  json_decref(j);
}

static void test_errors_and_prefix(void **state) {
  (void)state;
  char *gbnf, err[256];
  json_t *s = json_loads("{\"properties\": {\"a\": {\"not\": {}}}}", 0, NULL);
  assert_int_equal(jsonschema_to_gbnf(s, "root", &gbnf, err, sizeof err), ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "'not' at /properties/a/not"));
  json_decref(s);
  s = json_loads("{\"$ref\": \"http://example.com/x.json\"}", 0, NULL);
  assert_int_equal(jsonschema_to_gbnf(s, "root", &gbnf, err, sizeof err), ERR_UNSUPPORTED);
  assert_non_null(strstr(err, "$ref"));
  json_decref(s);
  s = json_loads("{\"oneOf\": [{\"type\": \"integer\"}, {\"type\": \"number\"}]}", 0, NULL);
  assert_int_equal(jsonschema_to_gbnf(s, "root", &gbnf, err, sizeof err), ERR_UNSUPPORTED);
  json_decref(s);
  s = json_loads("{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/a\"}}, \"$ref\": \"#/$defs/a\"}", 0, NULL);
  assert_int_equal(jsonschema_to_gbnf(s, "root", &gbnf, err, sizeof err), ERR_UNSUPPORTED);
  json_decref(s);
  s = json_loads("{\"type\": \"object\"}", 0, NULL);
  assert_int_equal(jsonschema_to_gbnf(s, "tool-a", &gbnf, err, sizeof err), 0);
  assert_non_null(strstr(gbnf, "tool-a ::= ( tool-a-object )"));
  for (const char *line = gbnf; *line; line = strchr(line, '\n') + 1) assert_int_equal(strncmp(line, "tool-a", 6), 0);
  free(gbnf);
  json_decref(s);
  assert_int_equal(jsonschema_to_gbnf(json_true(), "bad name", &gbnf, err, sizeof err), ERR_INVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_integer_bounds),
      cmocka_unit_test(test_number_bounds),
      cmocka_unit_test(test_compact),
      cmocka_unit_test(test_objects),
      cmocka_unit_test(test_misc),
      cmocka_unit_test(test_errors_and_prefix),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
