/* Unit tests for llm/jinja: the language against @huggingface/jinja's output (the table
 * below was produced by rendering each case with @huggingface/jinja 0.5.13, the renderer
 * transformers.js uses; errors are cases where it throws), the Python-Jinja extensions
 * (expected values from Jinja's documented semantics), provenance runs, the caps (deep
 * nesting, long loops, huge output, memory, recursion: errors, not crashes or hangs) and
 * syntax errors with their position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/jinja.h"

typedef struct ref_case {
  const char *tmpl, *ctx, *want;
} ref_case;

static const ref_case ref_cases[] = {
    {"{{ \"a\" }}  {%- if true %} x {% endif -%}  b\n",
     "{}",
     "a x b"},
    {"line\n  {% if true %}\n  yes\n  {% endif %}\nend\n",
     "{}",
     "line\n  yes\nend"},
    {"{# comment #}A{#- c -#}   B",
     "{}",
     "AB"},
    {"{% if x > 1 %}big{% elif x == 1 %}one{% else %}small{% endif %}",
     "{\"x\":1}",
     "one"},
    {"{% for m in msgs %}{{ loop.index }}/{{ loop.length }}:{{ m }}{% if loop.first %}F{% endif %}{% if loop.last %}L{% endif %}{{ loop.revindex }},{% endfor %}",
     "{\"msgs\":[\"a\",\"b\",\"c\"]}",
     "1/3:aF3,2/3:b2,3/3:cL1,"},
    {"{% for m in msgs %}[{{ loop.previtem }}|{{ loop.nextitem }}]{% endfor %}",
     "{\"msgs\":[1,2,3]}",
     "[|2][1|3][2|]"},
    {"{% for x in [] %}x{% else %}empty{% endfor %}",
     "{}",
     "empty"},
    {"{% for x in xs if x is odd %}{{ x }}{% endfor %}",
     "{\"xs\":[1,2,3,4,5]}",
     "135"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
     "{\"d\":{\"a\":1,\"b\":\"two\"}}",
     "a=1;b=two;"},
    {"{% for k in d %}{{ k }}{% endfor %}",
     "{\"d\":{\"x\":1,\"y\":2}}",
     "xy"},
    {"{% set x = 3 %}{% set y %}in{{ x }}{% endset %}{{ y }}-{{ x }}",
     "{}",
     "in3-3"},
    {"{% set ns = namespace(n=0, s=\"\") %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
     "{}",
     "6"},
    {"{% set a = 1 %}{% for i in range(2) %}{% set a = 5 %}{% endfor %}{{ a }}",
     "{}",
     "1"},
    {"{% macro greet(name, greeting=\"Hi\") %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet(\"Bo\") }} {{ greet(\"Al\", greeting=\"Yo\") }}",
     "{}",
     "Hi, Bo! Yo, Al!"},
    {"{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner{% endcall %}",
     "{}",
     "<inner>"},
    {"{% filter upper %}shout {{ x }}{% endfilter %}",
     "{\"x\":\"it\"}",
     "SHOUT IT"},
    {"{{ range(3) }} {{ range(1, 7, 2) }} {{ range(5, 0, -2) }}",
     "{}",
     "[0, 1, 2] [1, 3, 5] [5, 3, 1]"},
    {"{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 4 / 2 }}",
     "{}",
     "3 -4 1 1024 3.5 7 9 2.0"},
    {"{{ 1.0 }} {{ 2.5 }} {{ 1 + 1.0 }} {{ 0.1 + 0.2 }} {{ -0.0 }} {{ 3 * 1.5 }}",
     "{}",
     "1.0 2.5 2.0 0.30000000000000004 -0.0 4.5"},
    {"{{ true }} {{ false }} {{ none }} {{ True }} [{{ undefined_var }}] {{ [1, \"a\", none, true] }} {{ {\"k\": [1, 2], \"s\": \"v\"} }}",
     "{}",
     "true false  true [] [1, \"a\", null, true] {\"k\": [1, 2], \"s\": \"v\"}"},
    {"{{ \"a\" ~ 1 ~ 1.5 ~ true ~ und }} {{ \"x\" + \"y\" }} {{ \"n\" + 1 }}",
     "{}",
     "a11.5true xy n1"},
    {"{{ \"yes\" if x else \"no\" }} {{ \"a\" if false }}|{{ 1 if x == 0 else 2 if x == 1 else 3 }}",
     "{\"x\":1}",
     "yes |2"},
    {"{{ s[1:] }} {{ s[:2] }} {{ s[::-1] }} {{ s[-2:] }} {{ xs[1:3] }} {{ xs[::2] }} {{ s[0] }} {{ xs[-1] }}",
     "{\"s\":\"hello\",\"xs\":[1,2,3,4]}",
     "ello he olleh lo [2, 3] [1, 3] h 4"},
    {"{{ d.a }} {{ d[\"b\"] }} {{ d.missing }}|{{ d.missing.deeper }}|{{ xs.0 }}",
     "{\"d\":{\"a\":1,\"b\":2},\"xs\":[9]}",
     "1 2 ||9"},
    {"{{ \"it's\" }} {{ 'say \"hi\"' }} {{ \"tab\\there\" }} {{ \"a\" \"b\" }}",
     "{}",
     "it's say \"hi\" tab\there ab"},
    {"{{ x is defined }} {{ y is defined }} {{ none is none }} {{ \"s\" is string }} {{ d is mapping }} {{ xs is iterable }} {{ 1 is number }} {{ xs is sequence }} {{ true is boolean }} {{ true is true }} {{ 0 is false }} {{ 3 is odd }} {{ 4 is even }} {{ y is not defined }}",
     "{\"x\":1,\"d\":{},\"xs\":[]}",
     "true false true true true true true true true true false true true true"},
    {"{{ 1 == 1.0 }} {{ \"a\" != \"b\" }} {{ 2 < 3 }} {{ 3 >= 3 }} {{ \"b\" in \"abc\" }} {{ 2 in [1, 2] }} {{ \"k\" in d }} {{ 5 not in [1] }} {{ not true }} {{ true and \"x\" }} {{ 0 or \"y\" }}",
     "{\"d\":{\"k\":1}}",
     "true true true true true true true true false x y"},
    {"{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ xs | tojson }}|{{ \"é\\\"\\n\" | tojson }}|{{ [] | tojson(indent=2) }}",
     "{\"d\":{\"a\":1,\"b\":[true,null,1.5],\"c\":{}},\"xs\":[1,\"two\"]}",
     "{\"a\": 1, \"b\": [true, null, 1.5], \"c\": {}}|{\n  \"a\": 1,\n  \"b\": [\n    true,\n    null,\n    1.5\n  ],\n  \"c\": {}\n}|[1, \"two\"]|\"é\\\"\\n\"|[]"},
    {"{{ d | tojson(separators=(\",\", \":\")) }}|{{ d | tojson(sort_keys=true) }}|{{ \"é\" | tojson(ensure_ascii=true) }}",
     "{\"d\":{\"b\":1,\"a\":[1,2]}}",
     "{\"b\":1,\"a\":[1,2]}|{\"a\": [1, 2], \"b\": 1}|\"\\u00e9\""},
    {"{{ \"  pad  \" | trim }}|{{ xs | length }}|{{ \"abc\" | length }}|{{ \"abc\" | upper }}|{{ \"ABC\" | lower }}|{{ \"hello wORLD foo_bar\" | title }}|{{ \"hELLO\" | capitalize }}",
     "{\"xs\":[1,2]}",
     "pad|2|3|ABC|abc|Hello WORLD Foo_bar|HELLO"},
    {"{{ \"aXbXc\" | replace(\"X\", \"-\") }}|{{ xs | join(\", \") }}|{{ xs | join }}|{{ xs | first }}|{{ xs | last }}|{{ u | default(\"dflt\") }}|{{ \"\" | default(\"e\", true) }}",
     "{\"xs\":[\"a\",\"b\",1,2]}",
     "a-b-c|a, b, 1, 2|ab12|a|2|dflt|e"},
    {"{{ 3 | string }}{{ 1.5 | string }}|{{ \"42\" | int + 1 }}|{{ \"x\" | int }}|{{ \"2.5\" | float }}|{{ 3.9 | int }}|{{ xs | list }}|{{ d | items }}|{{ -3 | abs }}",
     "{\"xs\":[1],\"d\":{\"a\":1}}",
     "31.5|43|0|2.5|3|[1]|[[\"a\", 1]]|3"},
    {"{{ ms | selectattr(\"role\", \"equalto\", \"user\") | map(attribute=\"content\") | join(\",\") }}|{{ ms | rejectattr(\"role\", \"equalto\", \"user\") | list | length }}",
     "{\"ms\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"},{\"role\":\"user\",\"content\":\"c\"}]}",
     "a,c|1"},
    {"{{ [3, 1, 2] | sort }}|{{ [\"b\", \"A\", \"c\"] | sort }}|{{ [1, 2, 1, 3] | unique }}|{{ [1, 2, 3] | reverse }}|{{ ms | sort(attribute=\"n\") | map(attribute=\"n\") | list }}",
     "{\"ms\":[{\"n\":2},{\"n\":1}]}",
     "[1, 2, 3]|[\"A\", \"b\", \"c\"]|[1, 2, 3]|[3, 2, 1]|[1, 2]"},
    {"{{ \"a\\nb\\n\\nc\" | indent(2) }}|{{ \"a\\nb\" | indent(4, true) }}|{{ \"<b>\" | safe }}|{{ d | dictsort }}",
     "{\"d\":{\"b\":2,\"a\":1}}",
     "a\n  b\n\n  c|    a\n    b|<b>|[[\"a\", 1], [\"b\", 2]]"},
    {"{{ \" x \".strip() }}|{{ \"ab\".upper() }}|{{ \"a,b,,c\".split(\",\") }}|{{ \"a b  c\".split() }}|{{ \"hello\".startswith(\"he\") }}|{{ \"hello\".endswith((\"x\", \"lo\")) }}|{{ \"aaa\".replace(\"a\", \"b\", 2) }}|{{ \"  x\".lstrip() }}|{{ \"x  \".rstrip() }}",
     "{}",
     "x|AB|[\"a\", \"b\", \"\", \"c\"]|[\"a\", \"b\", \"c\"]|true|true|bba|x|x"},
    {"{{ d.get(\"a\") }}|{{ d.get(\"z\", \"dz\") }}|{{ d.keys() }}|{{ d.values() }}|{{ d.items() }}|{{ d.get(\"none\") }}",
     "{\"d\":{\"a\":1,\"b\":\"x\"}}",
     "1|dz|[\"a\", \"b\"]|[1, \"x\"]|[[\"a\", 1], [\"b\", \"x\"]]|"},
    {"{% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}",
     "{}",
     "02"},
    {"{{ messages[0][\"content\"] }}{% for message in messages %}{{ message.role }}{% endfor %}",
     "{\"messages\":[{\"role\":\"user\",\"content\":\"<|im_end|>\"}]}",
     "<|im_end|>user"},
    {"{%- set x = \"a\" -%}\n   {{- x -}}   \n{%- if true -%}  b  {%- endif -%}\n",
     "{}",
     "ab"},
    {"{{ \"x\" * 3 if false else \"y\" }}|{{ 10 - 3 - 2 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}",
     "{}",
     "y|5|64|4"},
    {"{% set x = [1, 2] + [3] %}{{ x }}{{ x | length }}{% set t = (1, \"a\") %}{{ t[1] }}",
     "{}",
     "[1, 2, 3]3a"},
    {"{%- for m in msgs -%}\n{{ m }}\n{%- endfor %}",
     "{\"msgs\":[\"a\",\"b\"]}",
     "ab"},
};

static const ref_case ref_errors[] = {
    {"{{ raise_exception(\"bad input\") }}", "{}", NULL},
    {"{% for x in 5 %}{% endfor %}", "{}", NULL},
    {"{{ none ~ \"x\" }}", "{}", NULL},
    {"{{ 1 + \"a\" | int }}{{ undefinedthing + 1 }}", "{}", NULL},
};

/* Renders tmpl with ctx (JSON text); returns rc, output in *out. */
static int render(const char *tmpl, const char *ctx_json, jinja_out *out, char *err, size_t cap) {
  jinja_tmpl *t = NULL;
  int rc = jinja_parse(tmpl, strlen(tmpl), &t, err, cap);
  if (rc) return rc;
  json_t *ctx = json_loads(ctx_json ? ctx_json : "{}", 0, NULL);
  assert_non_null(ctx);
  rc = jinja_render(t, ctx, out, err, cap);
  json_decref(ctx);
  jinja_free(t);
  return rc;
}

static void expect_text(const char *tmpl, const char *ctx, const char *want) {
  jinja_out o;
  char err[512] = "";
  int rc = render(tmpl, ctx, &o, err, sizeof err);
  if (rc) fail_msg("%s: %s", tmpl, err);
  if (strcmp(o.text, want)) fail_msg("%s\n  want [%s]\n  got  [%s]", tmpl, want, o.text);
  assert_int_equal(o.len, strlen(want));
  jinja_out_deinit(&o);
}

static void test_reference(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ref_cases / sizeof *ref_cases; i++)
    expect_text(ref_cases[i].tmpl, ref_cases[i].ctx, ref_cases[i].want);
}

static void test_reference_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof ref_errors / sizeof *ref_errors; i++) {
    jinja_out o;
    char err[512] = "";
    int rc = render(ref_errors[i].tmpl, ref_errors[i].ctx, &o, err, sizeof err);
    if (!rc) fail_msg("%s rendered [%s]; want an error", ref_errors[i].tmpl, o.text);
    assert_true(err[0]);
  }
  jinja_out o;
  char err[512];
  assert_int_equal(render("{{ raise_exception('no system role') }}", NULL, &o, err, sizeof err), ERR_FORMAT);
  assert_non_null(strstr(err, "no system role"));
}

/* Features @huggingface/jinja lacks, with Python Jinja's results. */
static void test_extensions(void **state) {
  (void)state;
  expect_text("{{ dict(a=1, b='x') | tojson }}", NULL, "{\"a\": 1, \"b\": \"x\"}");
  expect_text("{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('odd') | list }}", NULL, "[1, 3]|[2, 4]");
  expect_text("{{ [1, 2, 3, 4, 5] | batch(2) | list }}", NULL, "[[1, 2], [3, 4], [5]]");
  expect_text("{{ 'one two  three' | wordcount }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}", NULL, "3|2.57|3.0");
  expect_text("{{ '<a href=\"x\">&\\'' | escape }}", NULL, "&lt;a href=&#34;x&#34;&gt;&amp;&#39;");
  expect_text("{{ 9 is divisibleby(3) }}{{ 1 is equalto(1) }}{{ 'a' < 'b' }}", NULL, "truetruetrue");
  expect_text("{% set xs = [] %}{% set _ = xs.append(1) %}{{ xs }}{{ xs.pop() }}{{ xs }}", NULL, "[1]1[]");
  expect_text("{{ '{}-{}'.format('a', 2) }}|{{ '%s=%d' | format('x', 3) }}|{{ ', '.join(['a', 'b']) }}", NULL,
              "a-2|x=3|a, b");
  expect_text("{{ 'hello'.find('l') }}{{ 'hello'.count('l') }}{{ ['x', 'y'] | map('upper') | join }}", NULL, "22XY");
}

/* Bytes from the context are runs; template literals are not. */
static void test_provenance(void **state) {
  (void)state;
  jinja_out o;
  char err[256];
  /* "<a>" literal, then the user's text, then "</a>" */
  assert_int_equal(render("<a>{{ m }}</a>", "{\"m\": \"<|im_end|>\"}", &o, err, sizeof err), 0);
  assert_string_equal(o.text, "<a><|im_end|></a>");
  assert_int_equal(o.n_input, 1);
  assert_int_equal(o.input[0].off, 3);
  assert_int_equal(o.input[0].len, 10);
  jinja_out_deinit(&o);
  /* concatenation and trim keep exact runs; a literal in between stays template text */
  assert_int_equal(render("{{ ('[' ~ m | trim ~ ']') + r }}", "{\"m\": \"  x  \", \"r\": \"yz\"}", &o, err, sizeof err), 0);
  assert_string_equal(o.text, "[x]yz");
  assert_int_equal(o.n_input, 2);
  assert_int_equal(o.input[0].off, 1);
  assert_int_equal(o.input[0].len, 1);
  assert_int_equal(o.input[1].off, 3);
  assert_int_equal(o.input[1].len, 2);
  jinja_out_deinit(&o);
  /* a filter applied to input makes the whole result input; tojson marks the strings */
  assert_int_equal(render("{{ m | upper }}|{{ d | tojson }}", "{\"m\": \"ab\", \"d\": {\"k\": \"v\"}}", &o, err, sizeof err), 0);
  assert_string_equal(o.text, "AB|{\"k\": \"v\"}");
  assert_int_equal(o.n_input, 3);
  assert_int_equal(o.input[0].off, 0);
  assert_int_equal(o.input[0].len, 2);
  assert_int_equal(o.input[1].off, 4); /* "\"k\"" */
  assert_int_equal(o.input[1].len, 3);
  assert_int_equal(o.input[2].off, 9); /* "\"v\"" */
  assert_int_equal(o.input[2].len, 3);
  jinja_out_deinit(&o);
  /* slicing, split and join keep runs; a literal string is never input */
  assert_int_equal(render("{{ (m[1:3] ~ 'L')|string }}{{ m.split('c') | join('-') }}{{ 'lit' | upper }}",
                          "{\"m\": \"abcd\"}", &o, err, sizeof err),
                   0);
  assert_string_equal(o.text, "bcLab-dLIT");
  assert_int_equal(o.n_input, 3);
  assert_int_equal(o.input[0].off, 0);
  assert_int_equal(o.input[0].len, 2);
  assert_int_equal(o.input[1].off, 3);
  assert_int_equal(o.input[1].len, 2);
  assert_int_equal(o.input[2].off, 6);
  assert_int_equal(o.input[2].len, 1);
  jinja_out_deinit(&o);
}

static void test_trusted(void **state) {
  (void)state;
  jinja_tmpl *t;
  char err[256];
  assert_int_equal(jinja_parse("{{ bos_token }}{{ m }}", 22, &t, err, sizeof err), 0);
  json_t *ctx = json_pack("{s:s}", "m", "hi"), *tr = json_pack("{s:s}", "bos_token", "<s>");
  jinja_out o;
  assert_int_equal(jinja_render_trusted(t, ctx, tr, &o, err, sizeof err), 0);
  assert_string_equal(o.text, "<s>hi");
  assert_int_equal(o.n_input, 1);
  assert_int_equal(o.input[0].off, 3);
  jinja_out_deinit(&o);
  json_decref(ctx);
  json_decref(tr);
  jinja_free(t);
}

static void expect_error(const char *tmpl, int want_rc, const char *want_msg) {
  jinja_out o;
  char err[512] = "";
  int rc = render(tmpl, NULL, &o, err, sizeof err);
  if (rc != want_rc) fail_msg("%.60s: rc %d (%s), want %d", tmpl, rc, err, want_rc);
  if (want_msg && !strstr(err, want_msg)) fail_msg("%.60s: error [%s] lacks [%s]", tmpl, err, want_msg);
}

static void test_syntax_errors(void **state) {
  (void)state;
  expect_error("ab\n{% if x %}", ERR_FORMAT, "missing {% endif %}");
  expect_error("ab\n  {{ 1 + }}", ERR_FORMAT, "line 2, column 10");
  expect_error("{% frobnicate %}", ERR_FORMAT, "unknown statement 'frobnicate'");
  expect_error("{{ 'unterminated }}", ERR_FORMAT, "unterminated string");
  expect_error("{# open comment", ERR_FORMAT, "comment not closed");
  expect_error("{{ a ! b }}", ERR_FORMAT, "unexpected character");
  expect_error("{% for %}{% endfor %}", ERR_FORMAT, "line 1");
  expect_error("{{ x | }}", ERR_FORMAT, "filter name");
}

static void test_caps(void **state) {
  (void)state;
  /* deep nesting in the source */
  size_t n = 5000;
  char *deep = malloc(n * 2 + 16);
  strcpy(deep, "{{ ");
  for (size_t i = 0; i < n; i++) strcat(deep, "(");
  strcat(deep, "1");
  for (size_t i = 0; i < n; i++) strcat(deep, ")");
  strcat(deep, " }}");
  expect_error(deep, ERR_TOOBIG, "nested too deeply");
  free(deep);
  char *ifs = malloc(200 * 16 + 1);
  ifs[0] = 0;
  for (int i = 0; i < 200; i++) strcat(ifs, "{% if true %}");
  expect_error(ifs, ERR_TOOBIG, "nested too deeply");
  free(ifs);
  /* long loops: the step budget */
  expect_error("{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(10) %}{% endfor %}{% endfor %}{% endfor %}",
               ERR_TOOBIG, NULL);
  expect_error("{% set ns = namespace(n=0) %}{% for i in range(900000) %}{% if ns.n > 0 %}{% endif %}{% if 1 %}{% endif %}{% endfor %}",
               ERR_TOOBIG, "steps");
  expect_error("{{ range(100000000) | length }}", ERR_TOOBIG, "range()");
  /* huge output */
  expect_error("{% set s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
               "{% for i in range(100000) %}{{ s }}{% endfor %}",
               ERR_TOOBIG, NULL);
  /* doubling a string */
  expect_error("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
               ERR_TOOBIG, NULL);
  /* unbounded macro recursion */
  expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", ERR_TOOBIG, "macro calls nested");
  /* a cycle through a list */
  expect_error("{% set xs = [] %}{% set _ = xs.append(xs) %}{{ xs | tojson }}", ERR_TOOBIG, NULL);
  /* source size */
  char *big = malloc(JINJA_MAX_SOURCE + 2);
  memset(big, 'a', JINJA_MAX_SOURCE + 1);
  big[JINJA_MAX_SOURCE + 1] = 0;
  jinja_tmpl *t = NULL;
  char err[256];
  assert_int_equal(jinja_parse(big, JINJA_MAX_SOURCE + 1, &t, err, sizeof err), ERR_TOOBIG);
  assert_null(t);
  free(big);
  jinja_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference),  cmocka_unit_test(test_reference_errors), cmocka_unit_test(test_extensions),
      cmocka_unit_test(test_provenance), cmocka_unit_test(test_trusted),          cmocka_unit_test(test_syntax_errors),
      cmocka_unit_test(test_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
