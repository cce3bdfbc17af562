/* libFuzzer harness: GBNF text → grammar_parse, then the matcher on a small vocabulary.
 * Input: grammar text, a NUL byte, then bytes fed to the matcher. Invariants: no crash or
 * hang within the caps; a mask agrees with allows() for every token; accept_bytes of an
 * allowed token succeeds. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llm/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  const uint8_t *nul = memchr(data, 0, size);
  size_t glen = nul ? (size_t)(nul - data) : size;
  const char *text = nul ? (const char *)nul + 1 : "";
  size_t tlen = nul ? size - glen - 1 : 0;
  grammar *g;
  char err[256];
  if (grammar_parse((const char *)data, glen, NULL, &g, err, sizeof err)) return 0;
  static const char *const pieces[] = {"a", "b", "ab", "{", "}", "\"", " ", "\xc3", "\xa9", "\xc3\xa9", "1", "", "x\"y"};
  size_t lens[13];
  uint8_t eog[13] = {0};
  for (int i = 0; i < 13; i++) lens[i] = strlen(pieces[i]);
  eog[11] = 1;
  grammar_vocab *v;
  grammar_matcher *m;
  if (grammar_vocab_new(13, pieces, lens, eog, NULL, &v)) __builtin_trap();
  if (grammar_matcher_new(g, v, &m)) __builtin_trap();
  for (size_t i = 0; i <= tlen && i < 64; i++) {
    uint32_t mask[1];
    int n = grammar_matcher_mask(m, mask);
    if (n >= 0)
      for (int32_t t = 0; t < 13; t++)
        if ((int)((mask[0] >> t) & 1) != grammar_matcher_allows(m, t)) __builtin_trap();
    if (i == tlen) break;
    if (grammar_matcher_accept_bytes(m, text + i, 1)) break;
  }
  (void)grammar_matcher_must_end(m);
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  grammar_free(g);
  return 0;
}
