/* cli/model — `apiary model SUBCOMMAND`: look inside GGUF model files.
 *
 *   apiary model inspect FILE [--json]
 *   apiary model tokenize MODEL --text TEXT [--no-parse-special] [--json]
 *
 * Subcommands live in the table below (name, summary, function); list, pull, quantize and
 * synth slot in as more rows. MODEL is the path of a GGUF file. Main thread only. */
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "llm/gguf.h"
#include "llm/quant.h"
#include "llm/tok.h"

typedef struct model_sub {
  const char *name;
  const char *summary;
  int (*main)(int argc, char **argv); /* argv[0] is "apiary model NAME" */
} model_sub;

static int inspect_main(int argc, char **argv);
static int tokenize_main(int argc, char **argv);

static const model_sub subs[] = {
    {"inspect", "show a GGUF file's metadata, tensors, tokenizer and sha256", inspect_main},
    {"tokenize", "turn text into token ids with a model's tokenizer", tokenize_main},
    {"pull", "fetch a model by name, URL or file into the store, sha256-checked", cli_model_pull_main},
    {"list", "list the models in the store (or the catalog with --catalog)", cli_model_list_main},
    {"quantize", "convert a model's weights to another type (Q8_0, Q4_K_M, ...)", cli_model_quantize_main},
    {"synth", "write a model of a real shape with random weights (for benchmarks)", cli_model_synth_main},
    {"convert-llama2c", "convert a llama2.c checkpoint (.bin) to GGUF", cli_model_convert_main},
};
static const size_t n_subs = sizeof subs / sizeof *subs;

/* ---- shared helpers --------------------------------------------------------------------- */

/* Opens a GGUF file, logging what went wrong and what to do. */
static int open_model(const char *cmd, const char *path, gguf_file **out) {
  char err[512];
  int rc = gguf_open(path, out, err, sizeof err);
  if (rc == 0) return CLI_OK;
  if (rc == -ENOENT || rc == -EACCES || rc == -EINVAL)
    log_error("%s: %s; pass the path of a readable .gguf file", cmd, err);
  else if (rc == ERR_UNSUPPORTED)
    log_error("%s: %s: %s; convert it with a current llama.cpp (convert_hf_to_gguf.py / llama-quantize)", cmd,
              path, err);
  else
    log_error("%s: %s is not a valid GGUF file: %s; re-download it or check its sha256", cmd, path, err);
  return CLI_FAIL;
}

/* Parses the common options plus extra ones handled by cb; returns -1 after --help, else a
 * CLI_* code (CLI_OK to go on). */
typedef int (*opt_cb)(int opt, const char *arg, void *ud);
static int parse_opts(const char *cmd, int argc, char **argv, const char *usage, const struct option *opts,
                      opt_cb cb, void *ud, cli_common *c) {
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, c, usage);
    if (r < 0) return -1;
    if (r == 1) continue;
    if (!cb || cb(opt, optarg, ud)) return cli_bad_opt(cmd, argv);
  }
  return CLI_OK;
}

/* ---- inspect ------------------------------------------------------------------------------ */

static const char inspect_usage[] =
    "usage: apiary model inspect FILE [--json]\n\n"
    "Validates a GGUF model file and shows what is in it: architecture, name, parameter and\n"
    "tensor counts (per tensor type), context length, embedding size, layers, heads, vocabulary\n"
    "and tokenizer, licence/source/dataset metadata when present, file size and sha256.\n\n"
    "  --json   print everything as one JSON object\n";

/* llama.cpp's general.file_type values (the file's main tensor type). */
static const char *file_type_name(int64_t ft) {
  static const struct { int v; const char *name; } names[] = {
      {0, "F32"},     {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},    {7, "Q8_0"},    {8, "Q5_0"},
      {9, "Q5_1"},    {10, "Q2_K"},   {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
      {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"},   {32, "BF16"}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].v == ft) return names[i].name;
  return "other";
}

static json_t *jstr(gguf_str s) { return json_stringn_nocheck(s.ptr, (size_t)s.len); }

/* The value of key (stored as kv) as JSON: strings, numbers, bools, and arrays of them
 * (arrays cut at 64 elements). */
static json_t *kv_json(const gguf_file *f, const char *key, const gguf_kv *kv) {
  gguf_str s;
  int64_t n;
  double d;
  int b;
  if (kv->type == GGUF_VT_ARRAY) {
    json_t *a = json_array();
    for (uint64_t i = 0; a && i < kv->arr_n && i < 64; i++)
      json_array_append_new(a, kv->arr_type == GGUF_VT_STRING ? jstr(gguf_arr_str(kv, i))
                                                             : json_real(gguf_arr_num(kv, i)));
    return a;
  }
  if (gguf_get_str(f, key, &s) == 0) return jstr(s);
  if (gguf_get_bool(f, key, &b) == 0) return json_boolean(b);
  if (gguf_get_int(f, key, &n) == 0) return json_integer(n);
  if (gguf_get_float(f, key, &d) == 0) return json_real(d);
  return NULL;
}

/* Provenance keys worth showing: licence, source, base models, datasets, links. */
static int is_provenance(gguf_str k) {
  static const char *const prefixes[] = {"general.license", "general.source.", "general.base_model.",
                                         "general.dataset", "general.url", "general.repo_url",
                                         "general.author", "general.organization", "general.doi"};
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
    size_t n = strlen(prefixes[i]);
    if (k.len >= n && memcmp(k.ptr, prefixes[i], n) == 0) return 1;
  }
  return 0;
}

static json_t *provenance(const gguf_file *f) {
  json_t *o = json_object();
  for (size_t i = 0; i < gguf_n_kv(f); i++) {
    const gguf_kv *kv = gguf_kv_at(f, i);
    if (!is_provenance(kv->key)) continue;
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.ptr);
    json_t *v = kv_json(f, key, kv);
    if (v) json_object_set_new(o, key, v);
  }
  return o;
}

/* Adds "{arch}.{key}" as an integer field named name when present. */
static void add_arch_int(json_t *o, const gguf_file *f, gguf_str arch, const char *key, const char *name) {
  char full[192];
  snprintf(full, sizeof full, "%.*s.%s", (int)(arch.len < 64 ? arch.len : 64), arch.ptr, key);
  int64_t v;
  if (gguf_get_int(f, full, &v) == 0) json_object_set_new(o, name, json_integer(v));
}

/* Per-type tensor counts; *params_out gets the total element count (the parameters). */
static json_t *tensor_summary(const gguf_file *f, int64_t *params_out) {
  json_t *types = json_object();
  uint64_t params = 0; /* each tensor's count fits in int64 (checked at open) */
  for (size_t i = 0; i < gguf_n_tensors(f) && types; i++) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    const char *name = quant_name(t->type);
    json_t *c = json_object_get(types, name);
    json_object_set_new(types, name, json_integer(c ? json_integer_value(c) + 1 : 1));
  }
  *params_out = params > INT64_MAX ? INT64_MAX : (int64_t)params;
  return types;
}

static void sha256_hex(const gguf_file *f, char hex[65]) {
  crypto_hash_sha256_state st;
  uint8_t h[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_init(&st);
  const uint8_t *p = gguf_base(f);
  for (size_t left = gguf_file_size(f), k; left; left -= k, p += k) {
    k = left < (64u << 20) ? left : (64u << 20);
    crypto_hash_sha256_update(&st, p, k);
  }
  crypto_hash_sha256_final(&st, h);
  hex_encode(h, sizeof h, hex);
}

static void add_tokenizer(json_t *o, const gguf_file *f) {
  gguf_str s;
  const gguf_kv *toks;
  if (gguf_get_str(f, "tokenizer.ggml.model", &s) == 0) json_object_set_new(o, "tokenizer_model", jstr(s));
  if (gguf_get_arr(f, "tokenizer.ggml.tokens", &toks) == 0)
    json_object_set_new(o, "vocab_size", json_integer((json_int_t)toks->arr_n));
}

static json_t *inspect_json(const char *path, const gguf_file *f) {
  char hex[65];
  sha256_hex(f, hex);
  json_t *o = json_pack("{s:s, s:I, s:s, s:i, s:I}", "file", path, "size", (json_int_t)gguf_file_size(f), "sha256",
                        hex, "gguf_version", (int)gguf_version(f), "alignment", (json_int_t)gguf_alignment(f));
  if (!o) return NULL;
  gguf_str arch = {"", 0}, name;
  if (gguf_get_str(f, "general.architecture", &arch) == 0) json_object_set_new(o, "architecture", jstr(arch));
  if (gguf_get_str(f, "general.name", &name) == 0) json_object_set_new(o, "name", jstr(name));
  int64_t ft;
  if (gguf_get_int(f, "general.file_type", &ft) == 0) {
    json_object_set_new(o, "file_type", json_integer(ft));
    json_object_set_new(o, "file_type_name", json_string(file_type_name(ft)));
  }
  int64_t params;
  json_t *types = tensor_summary(f, &params);
  json_object_set_new(o, "parameters", json_integer(params));
  json_object_set_new(o, "tensor_count", json_integer((json_int_t)gguf_n_tensors(f)));
  json_object_set_new(o, "tensor_types", types);
  json_object_set_new(o, "kv_count", json_integer((json_int_t)gguf_n_kv(f)));
  add_arch_int(o, f, arch, "context_length", "context_length");
  add_arch_int(o, f, arch, "embedding_length", "embedding_length");
  add_arch_int(o, f, arch, "block_count", "block_count");
  add_arch_int(o, f, arch, "attention.head_count", "head_count");
  add_arch_int(o, f, arch, "attention.head_count_kv", "head_count_kv");
  add_arch_int(o, f, arch, "feed_forward_length", "feed_forward_length");
  add_tokenizer(o, f);
  json_object_set_new(o, "provenance", provenance(f));
  return o;
}

static void print_field(const char *label, json_t *v) {
  if (!v) return;
  if (json_is_string(v)) printf("%-14s %s\n", label, json_string_value(v));
  else if (json_is_integer(v)) printf("%-14s %" JSON_INTEGER_FORMAT "\n", label, json_integer_value(v));
}

static void print_inspect(json_t *o) {
  print_field("file", json_object_get(o, "file"));
  print_field("size", json_object_get(o, "size"));
  print_field("sha256", json_object_get(o, "sha256"));
  print_field("gguf version", json_object_get(o, "gguf_version"));
  print_field("architecture", json_object_get(o, "architecture"));
  print_field("name", json_object_get(o, "name"));
  print_field("file type", json_object_get(o, "file_type_name"));
  print_field("parameters", json_object_get(o, "parameters"));
  printf("%-14s %" JSON_INTEGER_FORMAT " (", "tensors", json_integer_value(json_object_get(o, "tensor_count")));
  const char *k;
  json_t *v;
  int first = 1;
  json_object_foreach(json_object_get(o, "tensor_types"), k, v) {
    printf("%s%s %" JSON_INTEGER_FORMAT, first ? "" : ", ", k, json_integer_value(v));
    first = 0;
  }
  printf(")\n");
  static const char *const ints[][2] = {{"context", "context_length"}, {"embedding", "embedding_length"},
                                        {"layers", "block_count"},     {"heads", "head_count"},
                                        {"kv heads", "head_count_kv"}, {"feed forward", "feed_forward_length"},
                                        {"vocab", "vocab_size"},       {"tokenizer", "tokenizer_model"}};
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) print_field(ints[i][0], json_object_get(o, ints[i][1]));
  json_object_foreach(json_object_get(o, "provenance"), k, v) {
    char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%-14s %s\n", k, s ? s : json_string_value(v));
    free(s);
  }
}

static int inspect_main(int argc, char **argv) {
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  cli_common c = {0};
  int rc = parse_opts("model inspect", argc, argv, inspect_usage, opts, NULL, NULL, &c);
  if (rc < 0) return CLI_OK;
  if (rc) return rc;
  if (optind >= argc) return cli_usage_error("model inspect", "missing FILE");
  if (optind + 1 < argc) return cli_usage_error("model inspect", "unexpected argument '%s'", argv[optind + 1]);
  const char *path = argv[optind];
  gguf_file *f;
  if (open_model("model inspect", path, &f)) return CLI_FAIL;
  json_t *o = inspect_json(path, f);
  gguf_close(f);
  if (c.json) return cli_print_json(o);
  if (!o) return cli_print_json(NULL);
  print_inspect(o);
  json_decref(o);
  return CLI_OK;
}

/* ---- tokenize ----------------------------------------------------------------------------- */

static const char tokenize_usage[] =
    "usage: apiary model tokenize MODEL --text TEXT [--no-parse-special] [--json]\n\n"
    "Turns TEXT into token ids with the tokenizer stored in MODEL (the path of a GGUF file),\n"
    "as llama-tokenize does by default: BOS (and EOS) added when the model asks for them,\n"
    "special-token text such as <s> read as that token.\n\n"
    "  --text TEXT          the text to tokenize (any bytes)\n"
    "  --no-parse-special   read special-token text as plain text\n"
    "  --json               print {\"ids\":[...]}; otherwise the ids, space separated\n";

enum { OPT_TEXT = 1, OPT_NO_PARSE_SPECIAL };

typedef struct tokenize_opts {
  const char *text;
  int parse_special;
} tokenize_opts;

static int tokenize_opt(int opt, const char *arg, void *ud) {
  tokenize_opts *o = ud;
  if (opt == OPT_TEXT) o->text = arg;
  else if (opt == OPT_NO_PARSE_SPECIAL) o->parse_special = 0;
  else return 1;
  return 0;
}

/* Encodes with a buffer grown to fit; returns the owned ids and their count, or NULL. */
static int32_t *encode_all(const tok *t, const char *text, int parse_special, int *n_out) {
  size_t len = strlen(text), cap = len + 8;
  for (;;) {
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
      *n_out = ERR_NOMEM;
      return NULL;
    }
    int n = tok_encode(t, text, len, tok_add_bos(t), parse_special, ids, cap);
    if (n >= 0 && (size_t)n < cap) { /* room left for an EOS */
      if (tok_add_eos(t)) ids[n++] = tok_eos(t);
      *n_out = n;
      return ids;
    }
    free(ids);
    if (n < 0) {
      *n_out = n;
      return NULL;
    }
    cap = (size_t)n + 1;
  }
}

static int print_ids(const int32_t *ids, int n, int json) {
  if (json) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return cli_print_json(json_pack("{s:o}", "ids", a));
  }
  for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
  printf("\n");
  return CLI_OK;
}

static int tokenize_main(int argc, char **argv) {
  static const struct option opts[] = {{"text", required_argument, 0, OPT_TEXT},
                                       {"no-parse-special", no_argument, 0, OPT_NO_PARSE_SPECIAL},
                                       CLI_COMMON_LONGOPTS,
                                       {0}};
  cli_common c = {0};
  tokenize_opts o = {NULL, 1};
  int rc = parse_opts("model tokenize", argc, argv, tokenize_usage, opts, tokenize_opt, &o, &c);
  if (rc < 0) return CLI_OK;
  if (rc) return rc;
  if (optind >= argc) return cli_usage_error("model tokenize", "missing MODEL");
  if (optind + 1 < argc) return cli_usage_error("model tokenize", "unexpected argument '%s'", argv[optind + 1]);
  if (!o.text) return cli_usage_error("model tokenize", "missing --text TEXT");
  gguf_file *f;
  if (open_model("model tokenize", argv[optind], &f)) return CLI_FAIL;
  tok *t;
  char err[512];
  rc = tok_new_from_gguf(f, &t, err, sizeof err);
  gguf_close(f);
  if (rc) {
    log_error("model tokenize: %s: %s; %s", argv[optind], err,
              rc == ERR_UNSUPPORTED ? "SentencePiece ('llama') and byte-level BPE ('gpt2') vocabularies work, with the "
                                      "pre-tokenizers llama.cpp knows"
              : rc == ERR_NOTFOUND  ? "use a GGUF file that carries its vocabulary"
                                    : "the file's vocabulary is damaged; re-download it");
    return CLI_FAIL;
  }
  int n = ERR_NOMEM;
  int32_t *ids = encode_all(t, o.text, o.parse_special, &n);
  tok_free(t);
  if (!ids) {
    log_error("model tokenize: cannot tokenize: %s", err_str(n));
    return CLI_FAIL;
  }
  rc = print_ids(ids, n, c.json);
  free(ids);
  return rc;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static void model_usage(FILE *out) {
  fprintf(out, "usage: apiary model SUBCOMMAND [ARGS...]\n\nsubcommands:\n");
  for (size_t i = 0; i < n_subs; i++) fprintf(out, "  %-15s %s\n", subs[i].name, subs[i].summary);
  fprintf(out, "\nRun 'apiary model SUBCOMMAND --help' for its options.\n");
}

int cli_model_main(int argc, char **argv) {
  if (argc < 2) {
    model_usage(stderr);
    return CLI_USAGE;
  }
  const char *name = argv[1];
  if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
    model_usage(stdout);
    return CLI_OK;
  }
  for (size_t i = 0; i < n_subs; i++) {
    if (strcmp(subs[i].name, name)) continue;
    static char prog[64];
    snprintf(prog, sizeof prog, "apiary model %s", name); /* getopt's message prefix */
    argv[1] = prog;
    return subs[i].main(argc - 1, argv + 1);
  }
  return cli_usage_error("model", "unknown subcommand '%s'", name);
}
