/* cli/redact — `apiary redact`: the privacy layer's recognisers on stdin.
 *
 *   apiary redact [--types a,b]            the text with placeholders ([EMAIL_1], …)
 *   apiary redact --spans [--json]         the spans found: type, start, end, text
 *   apiary redact --eval FILE [--json]     precision and recall per type on a labelled
 *                                          data set (presidio-research's synth_dataset_v2
 *                                          format: full_text, spans[entity_type,
 *                                          start_position, end_position] in code points)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "privacy/redact.h"
#include "privacy/redact_map.h"

static const char usage[] =
    "usage: apiary redact [--types LIST] [--spans] [--json]\n"
    "       apiary redact --eval FILE [--json]\n\n"
    "Reads text on stdin and prints it with personal data replaced by typed placeholders\n"
    "([EMAIL_1], [CARD_1], …; the same value gets the same placeholder), or with --spans\n"
    "(implied by --json) the spans found. This is what a node sends to a provider for a\n"
    "request under the 'redact' privacy policy (docs/redaction.md).\n\n"
    "  --types LIST   comma-separated: email,url,crypto,iban,mac,ip,card,ssn,dob,phone\n"
    "                 (default: all)\n"
    "  --spans        print spans, one a line: TYPE START END TEXT (byte offsets)\n"
    "  --json         spans as JSON: {\"spans\":[{\"type\",\"start\",\"end\",\"text\"}]}\n"
    "  --eval FILE    score the recognisers on a labelled JSON data set; prints\n"
    "                 precision and recall per type\n";

/* Labels of the data set and the type each is scored as. */
static const struct { const char *label; redact_type type; } eval_labels[] = {
    {"EMAIL_ADDRESS", REDACT_EMAIL}, {"PHONE_NUMBER", REDACT_PHONE}, {"CREDIT_CARD", REDACT_CARD},
    {"IBAN_CODE", REDACT_IBAN},      {"US_SSN", REDACT_SSN},         {"IP_ADDRESS", REDACT_IP},
    {"DOMAIN_NAME", REDACT_URL},     {"URL", REDACT_URL},            {"DATE_TIME", REDACT_DOB},
    {"CRYPTO", REDACT_CRYPTO},       {"MAC_ADDRESS", REDACT_MAC},
};

/* Byte offset of code point cp in s[0, len). */
static size_t cp_to_byte(const char *s, size_t len, size_t cp) {
  size_t b = 0;
  for (size_t k = 0; k < cp && b < len; k++) {
    b++;
    while (b < len && ((unsigned char)s[b] & 0xc0) == 0x80) b++;
  }
  return b;
}

static int overlap(size_t a0, size_t a1, size_t b0, size_t b1) { return a0 < b1 && b0 < a1; }

static int eval(const char *path, int as_json) {
  json_error_t je;
  json_t *d = json_load_file(path, 0, &je);
  if (!json_is_array(d)) {
    log_error("%s: %s", path, d ? "not a JSON array" : je.text);
    json_decref(d);
    return 1;
  }
  long gold[REDACT_N_TYPES] = {0}, found[REDACT_N_TYPES] = {0}, pred[REDACT_N_TYPES] = {0},
       right[REDACT_N_TYPES] = {0}, hidden[REDACT_N_TYPES] = {0}, exact[REDACT_N_TYPES] = {0};
  redact_span *sp = malloc(REDACT_MAX_SPANS * sizeof *sp);
  if (!sp) return 1;
  size_t i;
  json_t *x;
  json_array_foreach(d, i, x) {
    const char *t = json_string_value(json_object_get(x, "full_text"));
    if (!t) continue;
    size_t len = strlen(t);
    int n = redact_find(t, len, REDACT_ALL, sp, REDACT_MAX_SPANS);
    if (n < 0) n = 0;
    json_t *gs = json_object_get(x, "spans"), *g;
    size_t k;
    int *matched = calloc((size_t)n + 1, sizeof *matched); /* predicted span k hit a gold one */
    json_array_foreach(gs, k, g) {
      const char *label = json_string_value(json_object_get(g, "entity_type"));
      int type = -1;
      for (size_t q = 0; label && q < sizeof eval_labels / sizeof *eval_labels; q++)
        if (!strcmp(label, eval_labels[q].label)) type = (int)eval_labels[q].type;
      if (type < 0) continue;
      size_t s = cp_to_byte(t, len, (size_t)json_integer_value(json_object_get(g, "start_position")));
      size_t e = cp_to_byte(t, len, (size_t)json_integer_value(json_object_get(g, "end_position")));
      gold[type]++;
      int hit = 0, any = 0, same = 0;
      for (int p = 0; p < n; p++) {
        if (!overlap(s, e, sp[p].start, sp[p].end)) continue;
        any = 1;
        if ((int)sp[p].type == type) hit = 1, matched[p] = 1, same |= sp[p].start == s && sp[p].end == e;
      }
      found[type] += hit;
      exact[type] += same;
      hidden[type] += any;
    }
    for (int p = 0; p < n; p++) pred[sp[p].type]++, right[sp[p].type] += matched[p];
    free(matched);
  }
  free(sp);
  json_t *out = json_object();
  if (!as_json) printf("%-7s %6s %6s %6s %9s %7s %8s %6s\n", "type", "gold", "found", "pred", "precision", "recall",
                       "redacted", "exact");
  for (int t = 0; t < REDACT_N_TYPES; t++) {
    if (!gold[t] && !pred[t]) continue;
    double P = pred[t] ? (double)right[t] / (double)pred[t] : 0, R = gold[t] ? (double)found[t] / (double)gold[t] : 0;
    double H = gold[t] ? (double)hidden[t] / (double)gold[t] : 0;
    if (as_json)
      json_object_set_new(out, redact_type_name((redact_type)t),
                          json_pack("{s:I, s:I, s:I, s:f, s:f, s:f, s:I}", "gold", (json_int_t)gold[t], "found",
                                    (json_int_t)found[t], "predicted", (json_int_t)pred[t], "precision", P, "recall",
                                    R, "redacted_any_type", H, "exact", (json_int_t)exact[t]));
    else
      printf("%-7s %6ld %6ld %6ld %9.3f %7.3f %8.3f %6ld\n", redact_type_name((redact_type)t), gold[t], found[t],
             pred[t], P, R, H, exact[t]);
  }
  if (as_json) {
    char *s = json_dumps(out, JSON_INDENT(2));
    if (s) puts(s);
    free(s);
  }
  json_decref(out);
  json_decref(d);
  return 0;
}

int cli_redact_main(int argc, char **argv) {
  unsigned mask = REDACT_ALL;
  int as_json = 0, spans = 0;
  const char *eval_path = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(usage, stdout); return 0; }
    else if (!strcmp(a, "--json")) as_json = spans = 1;
    else if (!strcmp(a, "--spans")) spans = 1;
    else if (!strcmp(a, "--types") && i + 1 < argc) {
      if (redact_types_parse(argv[++i], &mask)) {
        log_error("--types: unknown type in '%s'", argv[i]);
        return 2;
      }
    } else if (!strcmp(a, "--eval") && i + 1 < argc) eval_path = argv[++i];
    else { fputs(usage, stderr); return 2; }
  }
  if (eval_path) return eval(eval_path, as_json);
  buf in;
  buf_init(&in);
  char chunk[65536];
  size_t r;
  while ((r = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
    if (in.len + r > REDACT_MAX_INPUT) {
      log_error("input over %u bytes", REDACT_MAX_INPUT);
      buf_deinit(&in);
      return 1;
    }
    if (buf_append(&in, chunk, r)) { buf_deinit(&in); return 1; }
  }
  const char *text = in.len ? (const char *)in.ptr : "";
  int rc = 0;
  if (spans) {
    redact_span *sp = malloc(REDACT_MAX_SPANS * sizeof *sp);
    int n = sp ? redact_find(text, in.len, mask, sp, REDACT_MAX_SPANS) : ERR_NOMEM;
    if (n < 0) {
      log_error("redact: %s", n == ERR_TOOBIG ? "more than 4096 spans (or over 4 MiB)" : err_str(n));
      rc = 1;
    }
    json_t *arr = json_array();
    for (int k = 0; k < n; k++) {
      int l = (int)(sp[k].end - sp[k].start);
      if (as_json)
        json_array_append_new(arr, json_pack("{s:s, s:I, s:I, s:s%}", "type", redact_type_name(sp[k].type), "start",
                                             (json_int_t)sp[k].start, "end", (json_int_t)sp[k].end, "text",
                                             text + sp[k].start, (size_t)l));
      else
        printf("%s %zu %zu %.*s\n", redact_type_name(sp[k].type), sp[k].start, sp[k].end, l, text + sp[k].start);
    }
    if (as_json && !rc) {
      json_t *o = json_pack("{s:o}", "spans", arr);
      char *s = json_dumps(o, JSON_INDENT(2));
      if (s) puts(s);
      free(s);
      json_decref(o);
    } else json_decref(arr);
    free(sp);
  } else {
    redact_map *m = NULL;
    buf out;
    buf_init(&out);
    int e = redact_map_new(mask, &m);
    if (!e) e = redact_map_apply(m, text, in.len, &out);
    if (e) {
      log_error("redact: %s", e == ERR_TOOBIG ? "more than 4096 values to replace (or over 4 MiB)" : err_str(e));
      rc = 1;
    }
    else fwrite(out.ptr ? (const char *)out.ptr : "", 1, out.len, stdout);
    buf_deinit(&out);
    redact_map_free(m);
  }
  buf_deinit(&in);
  return rc;
}
