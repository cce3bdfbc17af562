/* cli/model_synth — `apiary model synth`: write a GGUF model of a real shape with seeded
 * random weights and a real tokenizer (llm/synth), for benchmarks and tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/synth.h"

static void on_tensor(void *user, size_t i, size_t n, const char *name, int64_t row_len, uint32_t src,
                      uint32_t wanted, uint32_t dst) {
  int tty = *(int *)user;
  if (tty < 0) return;
  if (tty) fprintf(stderr, "\r[%4zu/%4zu] %-32.32s %-5s", i + 1, n, name, quant_name(dst));
  else if ((i + 1) % 50 == 0 || i + 1 == n) fprintf(stderr, "[%4zu/%4zu] %s %s\n", i + 1, n, name, quant_name(dst));
  if (tty && i + 1 == n) fputc('\n', stderr);
}

int cli_model_synth_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary model synth --shape SHAPE --type TYPE -o FILE [--vocab-from GGUF] [--seed S]\n"
      "                          [--layers N] [--pad-vocab] [-t THREADS] [--json]\n\n"
      "Writes a GGUF model with the published shape of a real model and seeded random weights\n"
      "(std 1/sqrt(fan_in)), for benchmarks. SHAPE: smollm2-135m, qwen2.5-0.5b, llama3.2-1b.\n"
      "TYPE as for 'apiary model quantize' (Q8_0, Q4_0, Q4_K_M, F32, ...).\n\n"
      "  --vocab-from GGUF  copy the tokenizer from this model (default:\n"
      "                     $APIARY_SHARED/models/stories15M-Q8_0.gguf); the vocabulary size is\n"
      "                     the tokenizer's when it differs from the shape's\n"
      "  --pad-vocab        pad the tokenizer with unused tokens to the shape's vocabulary size\n"
      "                     (embedding and output matrices of the real size)\n"
      "  --seed S           random seed (default 1); the same seed gives the same file\n"
      "  --layers N         fewer blocks than the shape (tests)\n"
      "  -t, --threads N    conversion threads (default 2)\n";
  cli_common c = {0};
  const char *shape = NULL, *type = NULL, *out = NULL, *vocab = NULL;
  synth_params p = {.seed = 1, .n_threads = 2};
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"shape", required_argument, 0, 's'},
                                       {"type", required_argument, 0, 'T'},
                                       {"output", required_argument, 0, 'o'},
                                       {"vocab-from", required_argument, 0, 'V'},
                                       {"seed", required_argument, 0, 'S'},
                                       {"layers", required_argument, 0, 'L'},
                                       {"pad-vocab", no_argument, 0, 'P'},
                                       {"threads", required_argument, 0, 't'},
                                       {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqo:t:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    char *end = NULL;
    switch (opt) {
    case 's': shape = optarg; break;
    case 'T': type = optarg; break;
    case 'o': out = optarg; break;
    case 'V': vocab = optarg; break;
    case 'P': p.pad_vocab = 1; break;
    case 'S':
      errno = 0;
      p.seed = strtoull(optarg, &end, 0);
      if (errno || *end || !*optarg) return cli_usage_error("model synth", "bad --seed '%s'", optarg);
      break;
    case 'L':
      p.n_layer = (int)strtol(optarg, &end, 10);
      if (*end || p.n_layer < 1 || p.n_layer > 512) return cli_usage_error("model synth", "bad --layers '%s'", optarg);
      break;
    case 't':
      p.n_threads = (int)strtol(optarg, &end, 10);
      if (*end || p.n_threads < 1 || p.n_threads > 64)
        return cli_usage_error("model synth", "bad --threads '%s'", optarg);
      break;
    default: return cli_bad_opt("model synth", argv);
    }
  }
  if (optind < argc) return cli_usage_error("model synth", "unexpected argument '%s'", argv[optind]);
  if (!shape || !type || !out) return cli_usage_error("model synth", "--shape, --type and -o are required");
  if (!(p.shape = synth_find_shape(shape)))
    return cli_usage_error("model synth", "unknown shape '%s' (smollm2-135m, qwen2.5-0.5b, llama3.2-1b)", shape);
  if (quantize_parse_ftype(type, &p.ftype))
    return cli_usage_error("model synth", "unknown --type '%s' (one of: %s)", type, quantize_ftype_names());
  if (p.n_layer > p.shape->n_layer)
    return cli_usage_error("model synth", "--layers %d is more than %s's %d", p.n_layer, shape, p.shape->n_layer);
  char def[4096];
  if (!vocab) {
    const char *shared = getenv("APIARY_SHARED");
    snprintf(def, sizeof def, "%s/models/stories15M-Q8_0.gguf", shared && *shared ? shared : "../shared");
    if (access(def, R_OK) != 0) {
      log_error("model synth: no tokenizer: pass --vocab-from GGUF (or set APIARY_SHARED to a folder with "
                "models/stories15M-Q8_0.gguf)");
      return CLI_FAIL;
    }
    vocab = def;
  }
  p.vocab_path = vocab;
  quant_init();
  int tty = c.json ? -1 : isatty(2);
  synth_info info;
  char err[512] = "";
  int rc = synth_write(&p, out, on_tensor, &tty, &info, err, sizeof err);
  if (rc) {
    log_error("model synth: %s", err[0] ? err : err_str(rc));
    return CLI_FAIL;
  }
  if (info.vocab_differs)
    log_warn("model synth: %s has a vocabulary of %d tokens, not %s's %d: using %d (pass --pad-vocab for the "
             "real size)",
             vocab, info.n_vocab, shape, p.shape->n_vocab, info.n_vocab);
  if (c.json)
    return cli_print_json(json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:I}", "out", out, "shape", shape, "type",
                                    p.ftype.name, "n_vocab", info.n_vocab, "n_layer",
                                    p.n_layer ? p.n_layer : p.shape->n_layer, "n_params", (json_int_t)info.n_params,
                                    "bytes", (json_int_t)info.bytes));
  fprintf(stderr, "wrote %s: %s %s, %.1fM params, %.1f MB of weights, vocab %d\n", out, shape, p.ftype.name,
          (double)info.n_params / 1e6, (double)info.bytes / 1e6, info.n_vocab);
  return CLI_OK;
}
