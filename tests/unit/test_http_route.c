/* http/route: exact and prefix paths, the most specific route wins, a path served with
 * other methods is a 405 that names them, duplicates and a full table are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "http/route.h"

static int h1(const struct http_request *r, void *d) { (void)r, (void)d; return 1; }
static int h2(const struct http_request *r, void *d) { (void)r, (void)d; return 2; }
static int h3(const struct http_request *r, void *d) { (void)r, (void)d; return 3; }

static void test_match(void **state) {
  (void)state;
  static http_routes t;
  http_routes_init(&t);
  int tag = 7;
  assert_int_equal(http_route_add(&t, "GET", "/v1/models", h1, &tag, 0), 0);
  assert_int_equal(http_route_add(&t, "GET", "/v1/models/*", h2, NULL, 0), 0);
  assert_int_equal(http_route_add(&t, "POST", "/v1/completions", h3, NULL, 0), 0);
  assert_int_equal(http_route_add(&t, "GET", "/health", h1, NULL, HTTP_ROUTE_PUBLIC), 0);
  assert_int_equal(http_route_add(&t, "GET", "/*", h3, NULL, HTTP_ROUTE_PUBLIC), 0);
  assert_int_equal(http_route_add(&t, "GET", "/v1/models", h2, NULL, 0), ERR_EXISTS);
  const http_route *r;
  char allow[64];
  assert_int_equal(http_route_find(&t, "GET", "/v1/models", &r, allow, sizeof allow), HTTP_MATCH_OK);
  assert_ptr_equal(r->fn, h1);
  assert_ptr_equal(r->data, &tag);
  assert_int_equal(http_route_find(&t, "GET", "/v1/models/stories15M", &r, allow, sizeof allow), HTTP_MATCH_OK);
  assert_ptr_equal(r->fn, h2); /* the longer prefix beats "/" */
  assert_int_equal(http_route_find(&t, "GET", "/index.html", &r, allow, sizeof allow), HTTP_MATCH_OK);
  assert_ptr_equal(r->fn, h3);
  assert_true(r->flags & HTTP_ROUTE_PUBLIC);
  /* a path that exists with another method */
  assert_int_equal(http_route_find(&t, "GET", "/v1/completions", &r, allow, sizeof allow), HTTP_MATCH_METHOD);
  assert_string_equal(allow, "POST");
  assert_int_equal(http_route_find(&t, "DELETE", "/v1/models", &r, allow, sizeof allow), HTTP_MATCH_METHOD);
  assert_string_equal(allow, "GET");
  /* "/v1/completionsX" is not "/v1/completions"; only the GET catch-all prefixes it */
  assert_int_equal(http_route_find(&t, "POST", "/v1/completionsX", &r, allow, sizeof allow), HTTP_MATCH_METHOD);
  assert_string_equal(allow, "GET");
  /* without the catch-all, an unknown path is not found */
  static http_routes u;
  http_routes_init(&u);
  assert_int_equal(http_route_add(&u, "POST", "/v1/completions", h3, NULL, 0), 0);
  assert_int_equal(http_route_add(&u, "GET", "/v1/completions", h1, NULL, 0), 0);
  assert_int_equal(http_route_find(&u, "GET", "/nope", &r, allow, sizeof allow), HTTP_MATCH_NONE);
  assert_int_equal(http_route_find(&u, "PUT", "/v1/completions", &r, allow, sizeof allow), HTTP_MATCH_METHOD);
  assert_string_equal(allow, "POST, GET");
}

static void test_full(void **state) {
  (void)state;
  static http_routes t;
  static char paths[HTTP_MAX_ROUTES + 1][16];
  http_routes_init(&t);
  for (int i = 0; i < HTTP_MAX_ROUTES; i++) {
    snprintf(paths[i], sizeof paths[i], "/p%d", i);
    assert_int_equal(http_route_add(&t, "GET", paths[i], h1, NULL, 0), 0);
  }
  assert_int_equal(http_route_add(&t, "GET", "/one-more", h1, NULL, 0), ERR_TOOBIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_match), cmocka_unit_test(test_full)};
  return cmocka_run_group_tests_name("http_route", tests, NULL, NULL);
}
