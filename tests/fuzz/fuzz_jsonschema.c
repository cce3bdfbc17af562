/* libFuzzer harness: arbitrary JSON as a schema → jsonschema_to_gbnf. Invariants: no
 * crash; a returned grammar parses; only ERR_UNSUPPORTED / ERR_INVAL / ERR_NOMEM fail. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 8192) return 0;
  json_t *s = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
  if (!s) return 0;
  char *gbnf = NULL, err[512];
  int rc = jsonschema_to_gbnf(s, "root", &gbnf, err, sizeof err);
  if (rc == 0) {
    grammar *g;
    if (grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err)) __builtin_trap();
    grammar_free(g);
    free(gbnf);
  } else if (rc != ERR_UNSUPPORTED && rc != ERR_INVAL && rc != ERR_NOMEM && rc != ERR_TOOBIG) {
    __builtin_trap();
  }
  char *canon;
  if (!jsonschema_canonical(s, &canon)) free(canon);
  json_decref(s);
  return 0;
}
