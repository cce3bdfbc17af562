/* llm/jsonschema — JSON Schema (2020-12 subset) → GBNF, for constrained decoding.
 *
 * The grammar accepts exactly the JSON texts valid under the schema, in this form:
 * - whitespace: none at the top level; between tokens (after { [ , : and after values)
 *   at most one of space/tab/newline followed by up to 20 spaces or tabs (JSON_WS_MAX),
 *   so a model cannot loop on whitespace;
 * - object members in any order when the object has at most JSONSCHEMA_MAX_ANY_ORDER
 *   named properties (one rule per subset of properties already present); above that,
 *   named properties in `properties` order, then additional ones;
 * - strings: escapes as JSON allows them; keys are compared as written (a key spelled with
 *   \u escapes is not recognized as the named property);
 * - numbers: enum/const numbers as their canonical text (1.0 is written 1).
 * Keywords the converter cannot make exact give ERR_UNSUPPORTED naming the keyword and
 * its JSON pointer; annotations and unknown keywords are ignored; `format` is an
 * annotation (the 2020-12 default). See docs/grammar.md for the list.
 *
 * jsonschema_canonical writes a JSON value in the form the grammar accepts for matching
 * (`apiary schema match` and the test suite use it): compact, keys in document order,
 * integral numbers without fraction, other reals as the shortest text that reads back,
 * strings with only " \ and control characters escaped.
 *
 * Pure functions; any thread. */
#ifndef APIARY_LLM_JSONSCHEMA_H
#define APIARY_LLM_JSONSCHEMA_H

#include <jansson.h>
#include <stddef.h>

#define JSONSCHEMA_MAX_ANY_ORDER 8 /* named properties accepted in any order */
#define JSONSCHEMA_MAX_DEPTH 64     /* nesting of schemas and $ref chains */

/* Writes GBNF for values valid under schema (borrowed). Every rule name starts with
 * prefix; the value rule is named exactly prefix. *gbnf_out is owned (free). Returns 0,
 * ERR_UNSUPPORTED (err names the keyword and its JSON pointer), ERR_INVAL (not a schema),
 * ERR_NOMEM. */
int jsonschema_to_gbnf(const json_t *schema, const char *prefix, char **gbnf_out, char *err, size_t err_cap);

/* As jsonschema_to_gbnf, with flags: JSONSCHEMA_COMPACT allows at most one space between
 * tokens (no newlines or indents): the form to generate in, so a small model cannot spend
 * its tokens on layout. */
#define JSONSCHEMA_COMPACT 1
int jsonschema_to_gbnf_ex(const json_t *schema, const char *prefix, int flags, char **gbnf_out, char *err,
                          size_t err_cap);

/* The canonical text of v (see above). Returns 0 with *out owned (free), or ERR_NOMEM /
 * ERR_INVAL. */
int jsonschema_canonical(const json_t *v, char **out);

#endif
