/* The official JSON-Schema-Test-Suite (draft 2020-12, tests/data/json-schema-test-suite)
 * through jsonschema_to_gbnf + the grammar matcher: for every group whose schema converts,
 * every valid instance (in jsonschema_canonical form) must be a complete sentence of the
 * grammar and every invalid one must not. Unsupported groups are counted; the coverage
 * table is printed (docs/grammar.md quotes it). Any wrong answer fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"

#define DIR_PATH "tests/data/json-schema-test-suite"

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_suite(void **state) {
  (void)state;
  DIR *d = opendir(DIR_PATH);
  if (!d) {
    fprintf(stderr, "skip: %s not found (run from the repository root)\n", DIR_PATH);
    skip();
    return;
  }
  char *names[256];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 256)
    if (strstr(e->d_name, ".json")) names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp);
  const char *p1[] = {"a"};
  size_t l1[] = {1};
  grammar_vocab *v;
  assert_int_equal(grammar_vocab_new(1, p1, l1, NULL, NULL, &v), 0);
  int all_groups = 0, all_ok = 0, all_tests = 0, all_run = 0, wrong = 0;
  printf("%-28s %9s %9s\n", "file", "groups", "tests");
  for (int f = 0; f < n; f++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR_PATH, names[f]);
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!doc) doc = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
    assert_non_null(doc);
    int groups = 0, ok = 0, tests = 0, run = 0;
    size_t gi;
    json_t *grp;
    json_array_foreach(doc, gi, grp) {
      groups++;
      json_t *tl = json_object_get(grp, "tests");
      tests += (int)json_array_size(tl);
      char *gbnf = NULL, err[512] = "";
      int rc = jsonschema_to_gbnf(json_object_get(grp, "schema"), "root", &gbnf, err, sizeof err);
      if (rc) {
        if (rc != ERR_UNSUPPORTED && rc != ERR_INVAL) fprintf(stderr, "%s #%zu: rc %d %s\n", names[f], gi, rc, err);
        assert_true(rc == ERR_UNSUPPORTED || rc == ERR_INVAL);
        if (getenv("SUITE_VERBOSE")) fprintf(stderr, "  unsupported %s #%zu: %s\n", names[f], gi, err);
        continue;
      }
      grammar *g;
      rc = grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err);
      if (rc) fprintf(stderr, "%s #%zu: %s\n%s\n", names[f], gi, err, gbnf);
      assert_int_equal(rc, 0);
      grammar_matcher *m;
      assert_int_equal(grammar_matcher_new(g, v, &m), 0);
      ok++;
      size_t ti;
      json_t *t;
      json_array_foreach(tl, ti, t) {
        char *text;
        assert_int_equal(jsonschema_canonical(json_object_get(t, "data"), &text), 0);
        grammar_matcher_reset(m);
        int got = grammar_matcher_accept_bytes(m, text, strlen(text)) == 0 && grammar_matcher_can_end(m);
        int want = json_is_true(json_object_get(t, "valid"));
        run++;
        if (got != want) {
          wrong++;
          fprintf(stderr, "WRONG %s #%zu \"%s\" / \"%s\": %s gave %d want %d\n", names[f], gi,
                  json_string_value(json_object_get(grp, "description")),
                  json_string_value(json_object_get(t, "description")), text, got, want);
          if (getenv("SUITE_VERBOSE")) fprintf(stderr, "%s\n", gbnf);
        }
        free(text);
      }
      grammar_matcher_free(m);
      grammar_free(g);
      free(gbnf);
    }
    printf("%-28s %4d/%-4d %4d/%-4d\n", names[f], ok, groups, run, tests);
    all_groups += groups, all_ok += ok, all_tests += tests, all_run += run;
    json_decref(doc);
    free(names[f]);
  }
  printf("%-28s %4d/%-4d %4d/%-4d  wrong answers: %d\n", "total", all_ok, all_groups, all_run, all_tests, wrong);
  grammar_vocab_free(v);
  assert_int_equal(wrong, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_suite)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
