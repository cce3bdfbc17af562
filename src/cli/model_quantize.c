/* cli/model_quantize — `apiary model quantize IN OUT TYPE`: convert a GGUF model's weights
 * to another type (llm/quantize), streaming tensor by tensor, progress on stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "llm/quantize.h"

typedef struct progress {
  int tty;
  int quiet;
} progress;

static void on_tensor(void *user, size_t i, size_t n, const char *name, int64_t row_len, uint32_t src,
                      uint32_t wanted, uint32_t dst) {
  progress *p = user;
  if (wanted != dst) {
    if (p->tty && !p->quiet) fputc('\n', stderr);
    log_info("model quantize: %s: rows of %lld are not whole %s blocks; writing %s", name, (long long)row_len,
             quant_name(wanted), quant_name(dst));
  }
  if (p->quiet) return;
  if (p->tty)
    fprintf(stderr, "\r[%4zu/%4zu] %-36.36s %5s -> %-5s", i + 1, n, name, quant_name(src), quant_name(dst));
  else if ((i + 1) % 50 == 0 || i + 1 == n) /* logs: a line now and then */
    fprintf(stderr, "[%4zu/%4zu] %s %s -> %s\n", i + 1, n, name, quant_name(src), quant_name(dst));
  if (p->tty && i + 1 == n) fputc('\n', stderr);
}

int cli_model_quantize_main(int argc, char **argv) {
  static const char usage[] =
      "usage: apiary model quantize IN.gguf OUT.gguf TYPE [-t THREADS] [--json]\n\n"
      "Converts a GGUF model's weight matrices to TYPE and writes OUT with all of IN's metadata\n"
      "(general.file_type set for TYPE). TYPE is one of:\n"
      "  Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K F16 BF16 F32   every 2-D weight in that type\n"
      "  Q4_K_M Q5_K_M   K-quant mixes: Q4_K/Q5_K, with Q6_K for output (and a tied token_embd)\n"
      "                  and for attn_v and ffn_down in the first and last eighth of the\n"
      "                  layers and every third layer between\n"
      "1-D tensors (norms, biases) stay F32. Rows that are not whole blocks of the type fall back\n"
      "(Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, otherwise F32). Tensors are converted one at a time\n"
      "through a scratch file next to OUT, so memory stays small.\n\n"
      "  -t, --threads N   conversion threads (default 2)\n"
      "  --json            print a summary as JSON on stdout\n";
  cli_common c = {0};
  int threads = 2;
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, {"threads", required_argument, 0, 't'}, {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqt:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    if (opt == 't') {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*end || v < 1 || v > 64) return cli_usage_error("model quantize", "bad --threads '%s'", optarg);
      threads = (int)v;
    } else {
      return cli_bad_opt("model quantize", argv);
    }
  }
  if (argc - optind != 3) return cli_usage_error("model quantize", "expected IN OUT TYPE");
  const char *in = argv[optind], *out = argv[optind + 1], *type = argv[optind + 2];
  quantize_ftype ft;
  if (quantize_parse_ftype(type, &ft))
    return cli_usage_error("model quantize", "unknown TYPE '%s' (one of: %s)", type, quantize_ftype_names());
  if (access(in, R_OK) != 0) {
    log_error("model quantize: cannot read %s: %s; pass the path of a .gguf file", in, strerror(errno));
    return CLI_FAIL;
  }
  quant_init();
  progress p = {isatty(2), c.json};
  quantize_stats st;
  char err[512] = "";
  int rc = quantize_file(in, out, &ft, threads, on_tensor, &p, &st, err, sizeof err);
  if (rc) {
    if (rc == ERR_UNSUPPORTED)
      log_error("model quantize: %s; convert it with a current llama.cpp first", err);
    else
      log_error("model quantize: %s", err[0] ? err : err_str(rc));
    return CLI_FAIL;
  }
  if (c.json) {
    json_t *types = json_object();
    for (int t = 0; t < QT_COUNT; t++)
      if (st.n_per_type[t]) json_object_set_new(types, quant_name((uint32_t)t), json_integer((json_int_t)st.n_per_type[t]));
    return cli_print_json(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:I}", "in", in, "out", out, "type", ft.name,
                                    "tensors", (json_int_t)st.n_tensors, "in_bytes", (json_int_t)st.in_bytes,
                                    "out_bytes", (json_int_t)st.out_bytes, "tensor_types", types, "fallback_tensors", (json_int_t)st.n_fallback));
  }
  fprintf(stderr, "wrote %s: %s, %zu tensors (%zu in a fallback type), %.1f MB -> %.1f MB of weights\n", out,
          ft.name, st.n_tensors, st.n_fallback, (double)st.in_bytes / 1e6, (double)st.out_bytes / 1e6);
  return CLI_OK;
}
