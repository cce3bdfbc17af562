/* cli/schema — `apiary schema match SCHEMA.json INSTANCE.json` and
 * `apiary grammar check GRAMMAR.gbnf TEXTFILE`: the grammar engine from the command line.
 *
 * schema match converts the schema to GBNF (llm/jsonschema), writes the instance in its
 * canonical form (jsonschema_canonical: compact, keys in file order) and runs it through
 * the matcher. grammar check runs a text file's bytes through a GBNF grammar. Exit codes:
 * 0 accepted, 1 rejected (or a file cannot be read), 2 usage error or a schema that uses
 * something unsupported (the message names the keyword and where). Main thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"

static const char schema_usage[] =
    "usage: apiary schema match [--print-grammar] SCHEMA.json INSTANCE.json\n"
    "       apiary schema gbnf SCHEMA.json\n\n"
    "Converts a JSON Schema to a GBNF grammar (the one used for constrained decoding) and\n"
    "checks whether the instance is a sentence of it. Exit 0: accepted, 1: rejected,\n"
    "2: the schema uses something unsupported (the message names it) or bad usage.\n"
    "--print-grammar prints the grammar on stdout; 'gbnf' only prints it.\n";

static const char grammar_usage[] =
    "usage: apiary grammar check GRAMMAR.gbnf TEXTFILE [--root NAME]\n\n"
    "Checks whether the bytes of TEXTFILE form a complete sentence of the GBNF grammar.\n"
    "Exit 0: accepted, 1: rejected (stderr says at which byte), 2: bad grammar or usage.\n";

/* Reads a whole file (up to cap bytes). Returns owned bytes or NULL after printing why. */
static char *read_file(const char *cmd, const char *path, size_t cap, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "apiary %s: cannot open %s\n", cmd, path); return NULL; }
  char *b = malloc(cap + 1);
  size_t n = b ? fread(b, 1, cap + 1, f) : 0;
  fclose(f);
  if (!b) return NULL;
  if (n > cap) { fprintf(stderr, "apiary %s: %s is over %zu bytes\n", cmd, path, cap); free(b); return NULL; }
  b[n] = 0;
  *len = n;
  return b;
}

/* Runs text through g; 1 accepted, 0 rejected (prints where), <0 error. */
static int run_text(const char *cmd, const grammar *g, const char *text, size_t len) {
  const char *p[] = {"x"};
  size_t l[] = {1};
  grammar_vocab *v;
  grammar_matcher *m;
  if (grammar_vocab_new(1, p, l, NULL, NULL, &v)) return ERR_NOMEM;
  if (grammar_matcher_new(g, v, &m)) { grammar_vocab_free(v); return ERR_NOMEM; }
  int ok = 1;
  for (size_t i = 0; i < len; i++) {
    int rc = grammar_matcher_accept_bytes(m, text + i, 1);
    if (rc) {
      fprintf(stderr, "apiary %s: rejected at byte %zu ('%.20s')%s\n", cmd, i, text + i,
              rc == ERR_INVAL ? "" : err_str(rc));
      ok = 0;
      break;
    }
  }
  if (ok && !grammar_matcher_can_end(m)) {
    fprintf(stderr, "apiary %s: rejected: the text ends before the grammar does\n", cmd);
    ok = 0;
  }
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  return ok;
}

int cli_schema_main(int argc, char **argv) {
  int print = 0;
  const char *pos[3];
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(schema_usage, stdout); return CLI_OK; }
    if (!strcmp(argv[i], "--print-grammar")) print = 1;
    else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("schema", "unknown option '%s'", argv[i]);
    else if (n < 3) pos[n++] = argv[i];
    else return cli_usage_error("schema", "too many arguments");
  }
  int only_gbnf = n >= 1 && !strcmp(pos[0], "gbnf");
  if (n < 1 || (strcmp(pos[0], "match") && !only_gbnf)) return cli_usage_error("schema", "expected 'match' or 'gbnf'");
  if (n != (only_gbnf ? 2 : 3)) return cli_usage_error("schema", "expected %s", only_gbnf ? "SCHEMA.json" : "SCHEMA.json INSTANCE.json");
  json_error_t je;
  json_t *schema = json_load_file(pos[1], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!schema) { fprintf(stderr, "apiary schema: %s:%d: %s\n", pos[1], je.line, je.text); return CLI_USAGE; }
  char *gbnf = NULL, err[512];
  int rc = jsonschema_to_gbnf(schema, "root", &gbnf, err, sizeof err);
  json_decref(schema);
  if (rc) {
    fprintf(stderr, "apiary schema: %s\n", err);
    return CLI_USAGE;
  }
  if (print || only_gbnf) fputs(gbnf, stdout);
  if (only_gbnf) { free(gbnf); return CLI_OK; }
  json_t *inst = json_load_file(pos[2], JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
  if (!inst) inst = json_load_file(pos[2], JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
  if (!inst) {
    fprintf(stderr, "apiary schema: %s:%d: %s (not JSON: rejected)\n", pos[2], je.line, je.text);
    free(gbnf);
    return CLI_FAIL;
  }
  char *text = NULL;
  rc = jsonschema_canonical(inst, &text);
  json_decref(inst);
  grammar *g = NULL;
  if (!rc) rc = grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err);
  free(gbnf);
  int ok = rc ? rc : run_text("schema", g, text, strlen(text));
  grammar_free(g);
  free(text);
  if (ok < 0) { fprintf(stderr, "apiary schema: %s\n", err_str(ok)); return CLI_FAIL; }
  return ok ? CLI_OK : CLI_FAIL;
}

int cli_grammar_main(int argc, char **argv) {
  const char *pos[3], *root = NULL;
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(grammar_usage, stdout); return CLI_OK; }
    if (!strcmp(argv[i], "--root") && i + 1 < argc) root = argv[++i];
    else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("grammar", "unknown option '%s'", argv[i]);
    else if (n < 3) pos[n++] = argv[i];
    else return cli_usage_error("grammar", "too many arguments");
  }
  if (n != 3 || strcmp(pos[0], "check")) return cli_usage_error("grammar", "expected check GRAMMAR.gbnf TEXTFILE");
  size_t glen, tlen;
  char *gt = read_file("grammar", pos[1], GRAMMAR_MAX_TEXT, &glen);
  if (!gt) return CLI_USAGE;
  char *text = read_file("grammar", pos[2], 1u << 26, &tlen);
  if (!text) { free(gt); return CLI_FAIL; }
  grammar *g;
  char err[512];
  int rc = grammar_parse(gt, glen, root, &g, err, sizeof err);
  free(gt);
  if (rc) {
    fprintf(stderr, "apiary grammar: %s:%s\n", pos[1], err);
    free(text);
    return CLI_USAGE;
  }
  int ok = run_text("grammar", g, text, tlen);
  grammar_free(g);
  free(text);
  if (ok < 0) { fprintf(stderr, "apiary grammar: %s\n", err_str(ok)); return CLI_FAIL; }
  return ok ? CLI_OK : CLI_FAIL;
}
