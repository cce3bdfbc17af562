/* cli/embed — `apiary embed -m MODEL TEXT...`: embeddings from a local GGUF model.
 *
 * Loads the model, its tokenizer and an engine, then for each TEXT: tokens (BOS and EOS as
 * the model asks; text taken as plain text), the final hidden states after the output norm
 * pooled as the model's "{arch}.pooling_type" says (mean when it says nothing; --pooling
 * overrides it, as llama.cpp's does), scaled to unit length (L2) unless --no-normalize.
 * Text mode prints one line of numbers per TEXT; --json one object. The same numbers as
 * POST /v1/embeddings. Main thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/engine.h"
#include "llm/tok.h"

static const char usage[] =
    "usage: apiary embed -m MODEL TEXT... [options] [--json]\n\n"
    "Prints the embedding of each TEXT under the GGUF model at path MODEL: the last hidden\n"
    "state after the output norm, pooled as the model's metadata says (mean when it says\n"
    "nothing), scaled to unit length; the vectors POST /v1/embeddings answers.\n\n"
    "  -m, --model FILE          the GGUF model (required)\n"
    "      --pooling P           mean, cls or last: overrides the model's pooling\n"
    "      --no-normalize        print the pooled vectors as they are\n"
    "  -t, --threads N           threads (default: the number of CPUs, at most 8)\n"
    "  -c, --ctx N               context size: the longest TEXT in tokens (default: the\n"
    "                            model's, at most 4096)\n"
    "      --json                print {model, pooling, n_embd, data: [{index, tokens,\n"
    "                            embedding}]}\n";

enum { OPT_POOLING = 0x2000, OPT_NO_NORM };

static const char *pooling_name(engine_pooling p) {
  return p == ENGINE_POOL_CLS ? "cls" : p == ENGINE_POOL_LAST ? "last" : "mean";
}

/* Tokenizes text as embeddings do; returns the count (may exceed cap) or <0. */
static int text_ids(const tok *t, const char *text, int32_t *ids, int cap) {
  int eos = tok_add_eos(t) && tok_eos(t) >= 0;
  int n = tok_encode(t, text, strlen(text), tok_add_bos(t), 0, ids, (size_t)(cap > eos ? cap - eos : 0));
  if (n < 0) return n;
  if (eos && n + 1 <= cap) ids[n] = tok_eos(t);
  return n + eos;
}

int cli_embed_main(int argc, char **argv) {
  cli_common c = {0};
  const char *path = NULL;
  long n_threads = 0, n_ctx = 0;
  int normalize = 1, have_pooling = 0;
  engine_pooling pooling = ENGINE_POOL_MEAN;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"model", required_argument, 0, 'm'},
                                       {"threads", required_argument, 0, 't'},
                                       {"ctx", required_argument, 0, 'c'},
                                       {"pooling", required_argument, 0, OPT_POOLING},
                                       {"no-normalize", no_argument, 0, OPT_NO_NORM},
                                       {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqm:t:c:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    switch (opt) {
    case 'm': path = optarg; break;
    case 't':
      if (cli_parse_long(optarg, 1, 256, &n_threads)) return cli_usage_error("embed", "bad --threads '%s' (1..256)", optarg);
      break;
    case 'c':
      if (cli_parse_long(optarg, 1, 1 << 22, &n_ctx)) return cli_usage_error("embed", "bad --ctx '%s'", optarg);
      break;
    case OPT_POOLING:
      have_pooling = 1;
      if (!strcmp(optarg, "mean")) pooling = ENGINE_POOL_MEAN;
      else if (!strcmp(optarg, "cls")) pooling = ENGINE_POOL_CLS;
      else if (!strcmp(optarg, "last")) pooling = ENGINE_POOL_LAST;
      else return cli_usage_error("embed", "bad --pooling '%s' (mean, cls or last)", optarg);
      break;
    case OPT_NO_NORM: normalize = 0; break;
    default: return cli_bad_opt("embed", argv);
    }
  }
  if (!path) return cli_usage_error("embed", "missing -m MODEL (a .gguf file)");
  if (optind >= argc) return cli_usage_error("embed", "missing TEXT");
  for (int i = optind; i < argc; i++)
    if (!argv[i][0]) return cli_usage_error("embed", "TEXT %d is empty", i - optind + 1);

  int ret = CLI_FAIL, rc;
  char err[512];
  model *m = NULL;
  tok *t = NULL;
  engine *e = NULL;
  int32_t *ids = NULL;
  float *v = NULL;
  json_t *data = NULL;
  if ((rc = model_load(path, &m, err, sizeof err))) {
    if (rc == -ENOENT) log_error("no model file at %s; check the path", path);
    else log_error("cannot load model %s: %s", path, err[0] ? err : err_str(rc));
    goto done;
  }
  if ((rc = tok_new_from_gguf(m->gguf, &t, err, sizeof err))) {
    log_error("cannot load the tokenizer of %s: %s", path, err[0] ? err : err_str(rc));
    goto done;
  }
  if (!have_pooling && engine_embd_pooling(m, &pooling, err, sizeof err)) {
    log_error("%s: %s; choose one with --pooling", path, err);
    goto done;
  }
  engine_params ep = engine_default_params();
  ep.n_threads = (int)n_threads;
  ep.n_ctx = (int)n_ctx;
  if ((rc = engine_new(m, &ep, &e, err, sizeof err))) {
    log_error("cannot create the engine: %s", err);
    goto done;
  }
  int cap = engine_n_ctx(e), dim = engine_n_embd(e);
  ids = malloc((size_t)(cap + 1) * sizeof *ids);
  v = malloc((size_t)dim * sizeof *v);
  data = json_array();
  if (!ids || !v || !data) {
    log_error("out of memory");
    goto done;
  }
  for (int i = optind; i < argc; i++) {
    int n = text_ids(t, argv[i], ids, cap + 1);
    if (n <= 0) {
      log_error("TEXT %d %s", i - optind + 1, n == 0 ? "has no tokens" : "cannot be tokenized");
      goto done;
    }
    if (n > cap) {
      log_error("TEXT %d has %d tokens; the context holds %d (raise it with --ctx)", i - optind + 1, n, cap);
      goto done;
    }
    if ((rc = engine_embed(e, ids, n, pooling, v))) {
      log_error("embedding failed: %s", err_str(rc));
      goto done;
    }
    if (normalize) engine_embd_normalize(v, dim);
    if (!c.json) {
      for (int k = 0; k < dim; k++) printf(k ? " %.9g" : "%.9g", (double)v[k]);
      printf("\n");
      continue;
    }
    json_t *vec = json_array();
    for (int k = 0; k < dim; k++) json_array_append_new(vec, json_real(v[k]));
    json_array_append_new(data, json_pack("{s:i, s:i, s:o}", "index", i - optind, "tokens", n, "embedding", vec));
  }
  if (c.json) {
    rc = cli_print_json(json_pack("{s:s, s:s, s:i, s:b, s:O}", "model", path, "pooling", pooling_name(pooling),
                                  "n_embd", dim, "normalized", normalize, "data", data));
    if (rc) goto done;
  }
  ret = CLI_OK;
done:
  json_decref(data);
  free(ids);
  free(v);
  engine_free(e);
  tok_free(t);
  model_free(m);
  return ret;
}
