/* cli/model_store — `apiary model pull|list|convert-llama2c`: the node's model store
 * (llm/mstore) and the llama2.c checkpoint converter (llm/llama2c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/llama2c.h"
#include "llm/mstore.h"
#include "p2p/fetch.h"
#include "node/home.h"

static int models_dir(const cli_common *c, char *out, size_t cap) {
  char dir[HOME_PATH_MAX];
  home_paths p;
  if (cli_home(c, dir, sizeof dir) || home_paths_init(&p, dir)) {
    log_error("cannot work out the node home; pass --home DIR or set APIARY_HOME");
    return CLI_FAIL;
  }
  snprintf(out, cap, "%s", p.models);
  return CLI_OK;
}

typedef struct progress_state {
  int tty;
  double last;
  char what[32];
  int shown_done; /* the finished line of the current step is out */
} progress_state;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_progress(const char *what, uint64_t done, uint64_t total, void *ud) {
  progress_state *s = ud;
  double t = now_s();
  int changed = strcmp(s->what, what) != 0;
  int finished = total && done >= total;
  if (!finished) s->shown_done = 0;
  if (finished && s->shown_done && !changed) return; /* curl repeats the last report */
  if (!changed && !finished && t - s->last < (s->tty ? 0.1 : 5.0)) return;
  s->last = t;
  s->shown_done = finished;
  snprintf(s->what, sizeof s->what, "%s", what);
  int units = !strcmp(what, "converting") || !strcmp(what, "quantizing"); /* tensors, not bytes */
  if (total && units) {
    int pct = (int)(100.0 * (double)done / (double)total);
    int bar = pct * 30 / 100;
    fprintf(stderr, "%s%-11s [%.*s%*s] %3d%%%s", s->tty ? "\r" : "", what, bar, "##############################",
            30 - bar, "", pct, s->tty ? "" : "\n");
  } else if (total) {
    int pct = (int)(100.0 * (double)done / (double)total);
    int bar = pct * 30 / 100;
    fprintf(stderr, "%s%-11s [%.*s%*s] %3d%%  %.1f / %.1f MB%s", s->tty ? "\r" : "", what, bar,
            "##############################", 30 - bar, "", pct, (double)done / 1e6, (double)total / 1e6,
            s->tty ? "" : "\n");
  } else {
    fprintf(stderr, "%s%-11s %.1f MB%s", s->tty ? "\r" : "", what, (double)done / 1e6, s->tty ? "" : "\n");
  }
  if (s->tty && finished) fputc('\n', stderr);
}

int cli_model_pull_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary model pull [--home DIR] [--json] NAME|URL|FILE [--from DIR] [--sha256 HEX] [--name N]\n\n"
      "Fetches a GGUF model into the node's model store (HOME/models) and checks its sha256:\n"
      "  NAME   a model in apiary's catalog (apiary model list --catalog); its exact sha256 is known\n"
      "  URL    an http(s) download; interrupted downloads resume; pass --sha256 to pin the file\n"
      "  FILE   a local .gguf file to copy in\n"
      "A catalog model with no public download of its exact file is built from public sources\n"
      "(stories15M: Karpathy's llama2.c checkpoint and llama.cpp's Llama 2 vocabulary, converted\n"
      "and quantized by apiary to the same bytes); inputs stay in HOME/models/.build-NAME until the\n"
      "model is in place, so pulling again resumes.\n"
      "--from DIR (or $APIARY_MODEL_MIRROR) names an offline mirror directory holding the\n"
      "catalog's files (or a recipe's inputs); it is tried before any download.\n"
      "$APIARY_MODEL_MIRROR_URL=URL fetches every catalog download from URL/<file name> instead.\n";
  cli_common c = {0};
  mstore_pull_opts o = {.download = fetch_url}; /* URLs through p2p/fetch */
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"from", required_argument, 0, 'f'},
                                       {"sha256", required_argument, 0, 's'}, {"name", required_argument, 0, 'n'},
                                       {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == 'f') o.mirror_dir = optarg;
    else if (opt == 's') o.sha256 = optarg;
    else if (opt == 'n') o.name = optarg;
    else return cli_bad_opt("model pull", argv);
  }
  if (optind != argc - 1) return cli_usage_error("model pull", "expected one NAME, URL or FILE");
  char dir[HOME_PATH_MAX];
  if (models_dir(&c, dir, sizeof dir)) return CLI_FAIL;
  progress_state ps = {.tty = isatty(2)};
  if (log_get_level() <= LOG_INFO) {
    o.progress = on_progress;
    o.ud = &ps;
  }
  mstore_model m;
  char err[1024] = "";
  int rc = mstore_pull(dir, argv[optind], &o, &m, err, sizeof err);
  if (rc) {
    log_error("model pull: %s", err[0] ? err : err_str(rc));
    return CLI_FAIL;
  }
  if (c.json)
    return cli_print_json(json_pack("{s:s, s:s, s:s, s:I}", "name", m.name, "path", m.path, "sha256", m.sha256,
                                    "size", (json_int_t)m.size));
  printf("%s  %s  sha256 %s\n", m.name, m.path, m.sha256);
  return CLI_OK;
}

int cli_model_list_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary model list [--home DIR] [--json] [--catalog]\n\n"
      "Lists the models in the node's store (name, size, sha256, file), or with --catalog\n"
      "the models apiary knows by name (license, source, dataset, exact sha256).\n";
  cli_common c = {0};
  int catalog = 0;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"catalog", no_argument, 0, 'c'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == 'c') catalog = 1;
    else return cli_bad_opt("model list", argv);
  }
  if (optind < argc) return cli_usage_error("model list", "unexpected argument '%s'", argv[optind]);
  json_t *arr = json_array();
  if (catalog) {
    size_t n;
    const mstore_catalog_entry *e = mstore_catalog(&n);
    for (size_t i = 0; i < n; i++)
      json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "name", e[i].name, "file",
                                           e[i].file, "sha256", e[i].sha256, "size", (json_int_t)e[i].size, "license",
                                           e[i].license, "source", e[i].source, "dataset", e[i].dataset));
  } else {
    char dir[HOME_PATH_MAX];
    if (models_dir(&c, dir, sizeof dir)) { json_decref(arr); return CLI_FAIL; }
    static mstore_model list[256];
    int n = mstore_list(dir, list, 256);
    if (n < 0) { json_decref(arr); log_error("cannot read %s: %s", dir, err_str(n)); return CLI_FAIL; }
    for (int i = 0; i < n; i++)
      json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I}", "name", list[i].name, "path", list[i].path,
                                           "sha256", list[i].sha256, "size", (json_int_t)list[i].size));
  }
  if (c.json) return cli_print_json(json_pack("{s:o}", "models", arr));
  if (json_array_size(arr) == 0) printf("no models yet; fetch one with 'apiary model pull stories15M'\n");
  size_t i;
  json_t *m;
  json_array_foreach(arr, i, m) {
    printf("%-20s %8.1f MB  %.16s…  %s\n", json_string_value(json_object_get(m, "name")),
           (double)json_integer_value(json_object_get(m, "size")) / 1e6,
           json_string_value(json_object_get(m, "sha256")),
           catalog ? json_string_value(json_object_get(m, "license")) : json_string_value(json_object_get(m, "path")));
  }
  json_decref(arr);
  return CLI_OK;
}

int cli_model_convert_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary model convert-llama2c CHECKPOINT.bin VOCAB.gguf OUT.gguf\n\n"
      "Converts a llama2.c checkpoint (Karpathy's tinyllamas .bin files) to an F32 GGUF, byte for\n"
      "byte as llama.cpp's convert-llama2c-to-ggml writes it; the tokenizer is copied from\n"
      "VOCAB.gguf (e.g. llama.cpp's models/ggml-vocab-llama-spm.gguf, or any Llama 2 GGUF).\n"
      "Quantize the result with 'apiary model quantize'.\n";
  cli_common c = {0};
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    return cli_bad_opt("model convert-llama2c", argv);
  }
  if (optind != argc - 3) return cli_usage_error("model convert-llama2c", "expected CHECKPOINT VOCAB OUT");
  char err[1024] = "";
  int rc = llama2c_convert(argv[optind], argv[optind + 1], argv[optind + 2], NULL, NULL, err, sizeof err);
  if (rc) {
    log_error("model convert-llama2c: %s", err[0] ? err : err_str(rc));
    return CLI_FAIL;
  }
  char hex[MSTORE_SHA256_HEX];
  if ((rc = mstore_sha256_file(argv[optind + 2], hex, NULL, NULL))) {
    log_error("model convert-llama2c: cannot hash %s: %s", argv[optind + 2], err_str(rc));
    return CLI_FAIL;
  }
  if (c.json) return cli_print_json(json_pack("{s:s, s:s}", "path", argv[optind + 2], "sha256", hex));
  printf("%s  sha256 %s\n", argv[optind + 2], hex);
  return CLI_OK;
}
