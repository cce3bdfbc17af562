/* cli/run — `apiary run MODEL -p TEXT`: generate text with a local GGUF model.
 *
 * Loads the model (llm/model), its tokenizer (llm/tok) and an engine (llm/engine), encodes
 * the prompt with BOS as the model asks and, like llama.cpp, with special-token text parsed
 * into control tokens (--no-parse-special: plain text), then streams the continuation to stdout as tokens
 * arrive, through the tokenizer's stream detokenizer. Text mode prints the prompt, then
 * the continuation; speed figures go to stderr (suppressed by --quiet). --json prints one
 * object at the end instead. Ctrl-C stops generation (the text so far is kept) and exits 1.
 * Main thread only. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/fs.h"
#include "llm/engine.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"
#include "llm/local.h"
#include "llm/sample.h"
#include "llm/tok.h"

static const char usage[] =
    "usage: apiary run MODEL -p TEXT [options] [--json]\n\n"
    "Generates a continuation of TEXT with the GGUF model at path MODEL and streams it to\n"
    "stdout. The prompt gets BOS when the model asks for it; special-token text in it (such\n"
    "as \"</s>\") becomes its control token, as in llama.cpp (--no-parse-special: plain text).\n\n"
    "  -p, --prompt TEXT         the prompt (required)\n"
    "  -n, --n-predict N         tokens to generate (default 128)\n"
    "      --temp T              temperature; 0 = greedy (default 0.8)\n"
    "      --top-k K             keep the K most likely tokens; 0 = off (default 40)\n"
    "      --top-p P             nucleus sampling; 1 = off (default 0.95)\n"
    "      --min-p P             drop tokens below P x the top probability (default 0.05)\n"
    "      --repeat-penalty R    penalize repeats of the last --repeat-last-n tokens (default 1 = off)\n"
    "      --repeat-last-n N     penalty window (default 64)\n"
    "      --frequency-penalty F subtract F x count (default 0)\n"
    "      --presence-penalty F  subtract F once for any repeat (default 0)\n"
    "  -s, --seed S              sampling seed (default: random; printed with --json)\n"
    "      --stop TEXT           stop before TEXT (repeatable, up to 8)\n"
    "      --ignore-eos          keep generating after end-of-text tokens\n"
    "      --grammar FILE        constrain the output to a GBNF grammar (start rule: root)\n"
    "      --json-schema FILE    constrain the output to JSON valid under a JSON Schema\n"
    "  -t, --threads N           threads (default: the number of CPUs, at most 8)\n"
    "  -c, --ctx N               context size (default: the model's, at most 4096)\n"
    "  -b, --batch N             prompt tokens per forward pass (default 256)\n"
    "      --kv-f16              keep the KV cache in F16 (half the memory, logits move ~0.01)\n"
    "      --no-parse-special    treat special-token text in the prompt as plain text\n"
    "      --json                print {prompt_ids, ids, text, n_prompt, n_gen, pp_tps, tg_tps,\n"
    "                            stop, seed} at the end instead of streaming\n";

enum {
  OPT_LASTN = 0x2000, OPT_FREQ, OPT_PRES, OPT_STOP,
  OPT_IGNORE_EOS, OPT_KV_F16, OPT_NO_PARSE_SPECIAL, OPT_GRAMMAR, OPT_SCHEMA
};

static engine *volatile g_engine; /* for the SIGINT handler */

static void on_sigint(int sig) {
  (void)sig;
  engine *e = g_engine;
  if (e) engine_cancel(e);
}

typedef struct run_out {
  int json;          /* collect instead of streaming */
  int32_t *ids;      /* [cap] generated ids (json) */
  int n, cap;
  buf text;          /* generated text (json) */
  int oom;
} run_out;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  run_out *o = user;
  if (!o->json) {
    if (len) {
      fwrite(text, 1, len, stdout);
      fflush(stdout);
    }
    return 0;
  }
  if (id >= 0 && o->n < o->cap) o->ids[o->n++] = id;
  if (buf_append(&o->text, text, len)) {
    o->oom = 1;
    return 1;
  }
  return 0;
}

static const char *stop_name(engine_stop s) {
  switch (s) {
  case ENGINE_STOP_MAX_TOKENS: return "max_tokens";
  case ENGINE_STOP_EOG: return "eog";
  case ENGINE_STOP_STRING: return "stop_string";
  case ENGINE_STOP_CTX: return "context_full";
  case ENGINE_STOP_CALLBACK: return "callback";
  case ENGINE_STOP_CANCELED: return "canceled";
  case ENGINE_STOP_GRAMMAR: return "grammar_complete";
  }
  return "unknown";
}

int cli_run_main(int argc, char **argv) {
  cli_common c = {0};
  const char *prompt = NULL;
  long n_predict = 128, n_threads = 0, n_ctx = 0, n_batch = 0, v;
  int have_seed = 0, kv_f16 = 0, parse_special = 1;
  sample_params sp = sample_default_params();
  engine_gen_params gp = engine_default_gen_params();
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, CLI_SAMPLING_LONGOPTS,
                                       {"prompt", required_argument, 0, 'p'},
                                       {"n-predict", required_argument, 0, 'n'},
                                       {"threads", required_argument, 0, 't'},
                                       {"ctx", required_argument, 0, 'c'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"repeat-last-n", required_argument, 0, OPT_LASTN},
                                       {"frequency-penalty", required_argument, 0, OPT_FREQ},
                                       {"presence-penalty", required_argument, 0, OPT_PRES},
                                       {"stop", required_argument, 0, OPT_STOP},
                                       {"ignore-eos", no_argument, 0, OPT_IGNORE_EOS},
                                       {"kv-f16", no_argument, 0, OPT_KV_F16},
                                       {"no-parse-special", no_argument, 0, OPT_NO_PARSE_SPECIAL},
                                       {"grammar", required_argument, 0, OPT_GRAMMAR},
                                       {"json-schema", required_argument, 0, OPT_SCHEMA},
                                       {0}};
  const char *grammar_file = NULL, *schema_file = NULL;
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqp:n:s:t:c:b:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    int sr = cli_sampling_opt("run", opt, optarg, &sp, &have_seed);
    if (sr == 1) continue;
    if (sr) return sr;
    switch (opt) {
    case 'p': prompt = optarg; break;
    case 'n':
      if (cli_parse_long(optarg, 0, 1 << 24, &n_predict)) return cli_usage_error("run", "bad -n '%s' (0 or more)", optarg);
      break;
    case 't':
      if (cli_parse_long(optarg, 1, 256, &n_threads)) return cli_usage_error("run", "bad --threads '%s' (1..256)", optarg);
      break;
    case 'c':
      if (cli_parse_long(optarg, 1, 1 << 22, &n_ctx)) return cli_usage_error("run", "bad --ctx '%s'", optarg);
      break;
    case 'b':
      if (cli_parse_long(optarg, 1, 1 << 16, &n_batch)) return cli_usage_error("run", "bad --batch '%s'", optarg);
      break;
    case OPT_LASTN:
      if (cli_parse_long(optarg, 0, SAMPLE_MAX_LAST_N, &v))
        return cli_usage_error("run", "bad --repeat-last-n '%s' (0..%d)", optarg, SAMPLE_MAX_LAST_N);
      sp.penalty_last_n = (int)v;
      break;
    case OPT_FREQ:
      if (cli_parse_float(optarg, -100, 100, &sp.freq_penalty))
        return cli_usage_error("run", "bad --frequency-penalty '%s'", optarg);
      break;
    case OPT_PRES:
      if (cli_parse_float(optarg, -100, 100, &sp.presence_penalty))
        return cli_usage_error("run", "bad --presence-penalty '%s'", optarg);
      break;
    case OPT_STOP:
      if (gp.n_stop == ENGINE_MAX_STOP) return cli_usage_error("run", "at most %d --stop strings", ENGINE_MAX_STOP);
      if (!optarg[0] || strlen(optarg) > ENGINE_MAX_STOP_LEN)
        return cli_usage_error("run", "--stop text must be 1..%d bytes", ENGINE_MAX_STOP_LEN);
      gp.stop[gp.n_stop++] = optarg;
      break;
    case OPT_IGNORE_EOS: gp.stop_at_eog = 0; break;
    case OPT_GRAMMAR: grammar_file = optarg; break;
    case OPT_SCHEMA: schema_file = optarg; break;
    case OPT_KV_F16: kv_f16 = 1; break;
    case OPT_NO_PARSE_SPECIAL: parse_special = 0; break;
    default: return cli_bad_opt("run", argv);
    }
  }
  if (optind >= argc) return cli_usage_error("run", "missing MODEL (a .gguf file)");
  if (optind + 1 < argc) return cli_usage_error("run", "unexpected argument '%s'", argv[optind + 1]);
  if (!prompt) return cli_usage_error("run", "missing -p TEXT");
  if (grammar_file && schema_file) return cli_usage_error("run", "give --grammar or --json-schema, not both");
  const char *path = argv[optind];
  if (!have_seed) sp.seed = cli_random_seed();
  gp.max_tokens = (int)n_predict;

  int ret = CLI_FAIL, rc;
  char err[512];
  model *m = NULL;
  tok *t = NULL;
  engine *e = NULL;
  sampler *s = NULL;
  int32_t *ids = NULL;
  run_out out = {.json = c.json};
  grammar *gr = NULL;
  grammar_vocab *gv = NULL;
  grammar_matcher *gm = NULL;
  char *gbnf = NULL;

  if (grammar_file || schema_file) { /* the constraint is read and checked before the model loads */
    buf fb;
    buf_init(&fb);
    if ((rc = fs_read_file(grammar_file ? grammar_file : schema_file, LOCAL_MAX_GRAMMAR, &fb)) || buf_append(&fb, "", 1)) {
      log_error("cannot read %s: %s", grammar_file ? grammar_file : schema_file, err_str(rc ? rc : ERR_NOMEM));
      buf_deinit(&fb);
      goto done;
    }
    gbnf = (char *)fb.ptr; /* owned now */
    if (schema_file) {
      json_error_t je;
      json_t *schema = json_loadb(gbnf, fb.len - 1, 0, &je);
      free(gbnf);
      gbnf = NULL;
      if (!schema) {
        log_error("%s:%d: not JSON: %s", schema_file, je.line, je.text);
        goto done;
      }
      rc = jsonschema_to_gbnf_ex(schema, "root", JSONSCHEMA_COMPACT, &gbnf, err, sizeof err);
      json_decref(schema);
      if (rc) {
        log_error("%s: %s", schema_file, err);
        goto done;
      }
    }
    if ((rc = grammar_parse(gbnf, strlen(gbnf), "root", &gr, err, sizeof err))) {
      log_error("%s: %s", grammar_file ? grammar_file : schema_file, err);
      goto done;
    }
  }

  if ((rc = model_load(path, &m, err, sizeof err))) {
    if (rc == -ENOENT) log_error("no model file at %s; check the path", path);
    else log_error("cannot load model %s: %s", path, err[0] ? err : err_str(rc));
    goto done;
  }
  if ((rc = tok_new_from_gguf(m->gguf, &t, err, sizeof err))) {
    log_error("cannot load the tokenizer of %s: %s", path, err[0] ? err : err_str(rc));
    goto done;
  }
  if (tok_n_vocab(t) != m->hp.n_vocab) {
    log_error("%s: the tokenizer has %d tokens but the model %d; the file is inconsistent", path, tok_n_vocab(t),
              m->hp.n_vocab);
    goto done;
  }
  size_t plen = strlen(prompt);
  int n_ids = tok_encode(t, prompt, plen, tok_add_bos(t), parse_special, NULL, 0);
  if (n_ids < 0) {
    log_error("cannot tokenize the prompt: %s", err_str(n_ids));
    goto done;
  }
  if (n_ids == 0) {
    log_error("the prompt encodes to no tokens; give some text with -p");
    goto done;
  }
  ids = malloc((size_t)n_ids * sizeof *ids);
  if (!ids || tok_encode(t, prompt, plen, tok_add_bos(t), parse_special, ids, (size_t)n_ids) != n_ids) {
    log_error("cannot tokenize the prompt");
    goto done;
  }
  engine_params ep = engine_default_params();
  ep.n_threads = (int)n_threads;
  ep.n_ctx = (int)n_ctx;
  ep.n_batch = (int)n_batch;
  ep.kv_f16 = kv_f16;
  if ((rc = engine_new(m, &ep, &e, err, sizeof err))) {
    log_error("cannot set up inference: %s", err);
    goto done;
  }
  if (n_ids > engine_n_ctx(e)) {
    log_error("the prompt has %d tokens but the context only %d; shorten it or raise --ctx", n_ids,
              engine_n_ctx(e));
    goto done;
  }
  if ((rc = sample_new(m->hp.n_vocab, &sp, &s))) {
    log_error("cannot set up sampling: %s", err_str(rc));
    goto done;
  }
  if (gr) {
    if ((rc = grammar_vocab_from_tok(t, &gv)) || (rc = grammar_matcher_new(gr, gv, &gm))) {
      log_error("cannot set up the grammar: %s", err_str(rc));
      goto done;
    }
    gp.grammar = gm;
  }
  if (c.json) {
    out.cap = (int)n_predict;
    out.ids = malloc(((size_t)out.cap + 1) * sizeof *out.ids);
    if (!out.ids) {
      log_error("out of memory");
      goto done;
    }
  } else {
    fwrite(prompt, 1, plen, stdout);
    fflush(stdout);
  }

  g_engine = e;
  struct sigaction sa = {.sa_handler = on_sigint}, old;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  engine_gen_stats st;
  rc = engine_generate(e, t, s, ids, n_ids, &gp, on_token, &out, &st);
  sigaction(SIGINT, &old, NULL);
  g_engine = NULL;
  if (rc) {
    log_error("generation failed: %s", err_str(rc));
    goto done;
  }
  if (out.oom) {
    log_error("out of memory collecting the output");
    goto done;
  }
  double pp_tps = st.prompt_ms > 0 ? st.n_prompt_eval / (st.prompt_ms / 1e3) : 0;
  double tg_tps = st.gen_ms > 0 ? st.n_gen / (st.gen_ms / 1e3) : 0;
  if (c.json) {
    json_t *pj = json_array(), *gj = json_array();
    for (int i = 0; i < n_ids; i++) json_array_append_new(pj, json_integer(ids[i]));
    for (int i = 0; i < out.n; i++) json_array_append_new(gj, json_integer(out.ids[i]));
    ret = cli_print_json(json_pack("{s:o, s:o, s:s%, s:i, s:i, s:f, s:f, s:s, s:I}", "prompt_ids", pj, "ids", gj,
                                   "text", out.text.ptr ? (const char *)out.text.ptr : "", out.text.len, "n_prompt", n_ids, "n_gen", st.n_gen,
                                   "pp_tps", pp_tps, "tg_tps", tg_tps, "stop", stop_name(st.stop), "seed",
                                   (json_int_t)sp.seed));
  } else {
    printf("\n");
    fflush(stdout);
    log_info("prompt %d tokens, %.1f tok/s; generated %d tokens, %.1f tok/s; stop: %s", n_ids, pp_tps, st.n_gen,
             tg_tps, stop_name(st.stop));
    ret = CLI_OK;
  }
  if (st.stop == ENGINE_STOP_CANCELED) {
    log_error("interrupted");
    ret = CLI_FAIL;
  }
done:
  grammar_matcher_free(gm);
  grammar_vocab_free(gv);
  grammar_free(gr);
  free(gbnf);
  free(out.ids);
  buf_deinit(&out.text);
  free(ids);
  sample_free(s);
  engine_free(e);
  tok_free(t);
  model_free(m);
  return ret;
}
