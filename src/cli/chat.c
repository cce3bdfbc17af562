/* cli/chat — `apiary chat MODEL`: an interactive conversation with a local GGUF model.
 *
 * Reads one user message per line from stdin (a terminal or a pipe; EOF ends), lays the
 * whole conversation out with the model's own chat template (tokenizer.chat_template run
 * by llm/jinja; when it fails, or with --template NAME, one of llm/chat's hand-written
 * layouts; models without one get a plain "User:/Assistant:" transcript) and streams the reply to stdout as tokens arrive. The
 * conversation stays in memory and so does the KV cache: engine_generate reuses the
 * longest cached prefix, so each turn evaluates only what is new (the last reply as
 * re-encoded, the new message, the assistant header). When the conversation outgrows the
 * context, the oldest exchanges are dropped (the system message stays), and the cache is
 * re-evaluated from the first changed token.
 *
 * Lines "/reset" (forget the conversation), "/exit" (quit) and "/help" are commands.
 * Ctrl-C stops the reply being generated; the conversation continues. Per-turn figures go
 * to stderr with --verbose. Main thread only. */
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
#include "llm/chat.h"
#include "llm/engine.h"
#include "llm/mstore.h"
#include "llm/sample.h"
#include "llm/tok.h"
#include "node/home.h"

static const char usage[] =
    "usage: apiary chat MODEL [options]\n\n"
    "Chats with the GGUF model MODEL (a file path, or a name in the model store HOME/models).\n"
    "Type a message per line (or pipe them in: one message per line, EOF ends); the reply\n"
    "streams to stdout. The model's chat template is applied to the whole conversation; the\n"
    "KV cache is kept across turns, so only the new part of the prompt is evaluated.\n"
    "Commands: /reset forgets the conversation, /exit quits, /help lists them.\n\n"
    "      --template NAME       a built-in layout instead of the model's own template:\n"
    "                            chatml, llama3, llama2, zephyr, gemma, phi3 or plain (default:\n"
    "                            the model's template; plain \"User:/Assistant:\" when it has none)\n"
    "      --system TEXT         a system message to start the conversation with\n"
    "  -n, --n-predict N         most tokens per reply (default 512)\n"
    "      --temp T              temperature; 0 = greedy (default 0.8)\n"
    "      --top-k K             keep the K most likely tokens; 0 = off (default 40)\n"
    "      --top-p P             nucleus sampling; 1 = off (default 0.95)\n"
    "      --min-p P             drop tokens below P x the top probability (default 0.05)\n"
    "      --repeat-penalty R    penalize repeats of the last 64 tokens (default 1 = off)\n"
    "  -s, --seed S              sampling seed (default: random)\n"
    "  -t, --threads N           threads (default: the number of CPUs, at most 8)\n"
    "  -c, --ctx N               context size (default: the model's, at most 4096)\n"
    "      --home DIR            node home whose model store resolves names (default ~/.apiary)\n";

enum { OPT_TEMPLATE = 0x2000, OPT_SYSTEM };

#define CHAT_MAX_LINE (1 << 20) /* bytes of one typed message */

static engine *volatile g_engine; /* for the SIGINT handler */

static void on_sigint(int sig) {
  (void)sig;
  engine *e = g_engine;
  if (e) engine_cancel(e);
}

/* ---- the conversation ------------------------------------------------------------------- */

typedef struct convo {
  chat_msg *m; /* roles are static strings; contents are owned */
  size_t n, cap;
} convo;

static int convo_add(convo *c, const char *role, const char *content, size_t len) {
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 16;
    chat_msg *m = realloc(c->m, nc * sizeof *m);
    if (!m) return ERR_NOMEM;
    c->m = m;
    c->cap = nc;
  }
  char *s = malloc(len + 1);
  if (!s) return ERR_NOMEM;
  memcpy(s, content, len);
  s[len] = 0;
  c->m[c->n++] = (chat_msg){.role = role, .content = s};
  return 0;
}

/* Removes messages [i, i+k). */
static void convo_remove(convo *c, size_t i, size_t k) {
  for (size_t j = i; j < i + k; j++) free((char *)c->m[j].content);
  memmove(c->m + i, c->m + i + k, (c->n - i - k) * sizeof *c->m);
  c->n -= k;
}

static void convo_free(convo *c) {
  for (size_t i = 0; i < c->n; i++) free((char *)c->m[i].content);
  free(c->m);
}

/* ---- one reply -------------------------------------------------------------------------- */

typedef struct reply {
  buf text;   /* the reply so far (owned) */
  int oom;
  const int32_t *stop_ids; /* control tokens that end a turn in this template */
  int n_stop_ids;
} reply;

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  reply *r = user;
  for (int i = 0; i < r->n_stop_ids; i++)
    if (id == r->stop_ids[i]) return 1;
  if (!len) return 0;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  if (buf_append(&r->text, text, len)) {
    r->oom = 1;
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
  case ENGINE_STOP_CALLBACK: return "end_of_turn";
  case ENGINE_STOP_CANCELED: return "canceled";
  case ENGINE_STOP_GRAMMAR: return "grammar_complete";
  }
  return "unknown";
}

typedef struct session {
  const tok *t;
  engine *e;
  sampler *s;
  chat_format fmt;
  const char *tmpl;  /* the model's Jinja template (borrowed from the GGUF; NULL: use fmt) */
  size_t tmpl_len;
  char bos[64], eos[64];
  engine_gen_params gp;
  int32_t stop_ids[CHAT_MAX_STOP];
  int n_stop_ids;
  convo c;
  size_t n_fixed; /* leading messages kept by /reset and trimming (the system message) */
  chat_prompt p;
  int turn;
} session;

/* Renders the conversation with the model's own template; on failure (said once) the
 * session uses the detected format from then on. */
static int render_template(session *ss) {
  json_t *msgs = json_array();
  for (size_t i = 0; i < ss->c.n; i++)
    json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", ss->c.m[i].role, "content", ss->c.m[i].content));
  char err[256];
  int rc = chat_render_jinja(ss->tmpl, ss->tmpl_len, msgs, NULL, 1, ss->bos, ss->eos, &ss->p, err, sizeof err);
  json_decref(msgs);
  if (rc) {
    log_info("the model's chat template failed (%s); using the %s layout instead", err, chat_name(ss->fmt));
    ss->tmpl = NULL;
  }
  return rc;
}

/* Formats and encodes the conversation with a generation prompt, dropping the oldest
 * exchanges until it leaves room for a reply. Returns the token count (*ids_out owned),
 * 0 when even the newest message alone does not fit (it is removed), or <0 on error. */
static int fit_prompt(session *ss, int32_t **ids_out) {
  int n_ctx = engine_n_ctx(ss->e);
  int room = ss->gp.max_tokens < n_ctx / 4 ? ss->gp.max_tokens : n_ctx / 4;
  if (room < 1) room = 1;
  for (;;) {
    int rc = ss->tmpl ? render_template(ss) : -1;
    if (rc) rc = chat_apply(ss->fmt, ss->c.m, ss->c.n, 1, &ss->p);
    if (rc) return rc;
    int n = chat_tokenize(ss->t, &ss->p, ids_out);
    if (n < 0) return n;
    if (n + room <= n_ctx) return n;
    free(*ids_out);
    *ids_out = NULL;
    size_t older = ss->c.n - ss->n_fixed - 1; /* messages before the newest user message */
    if (!older) {
      log_error("that message needs %d tokens but the context has %d (with %d kept for the reply); "
                "send a shorter one or raise --ctx",
                n, n_ctx, room);
      convo_remove(&ss->c, ss->c.n - 1, 1);
      return 0;
    }
    /* drop the oldest exchange: a user message and the reply after it */
    size_t k = older >= 2 && !strcmp(ss->c.m[ss->n_fixed + 1].role, "assistant") ? 2 : 1;
    log_debug("context full: dropping the oldest %zu message(s)", k);
    convo_remove(&ss->c, ss->n_fixed, k);
  }
}

/* One turn for the user message just added. Returns 0, or <0 on a fatal error. */
static int do_turn(session *ss) {
  int32_t *ids = NULL;
  reply r = {.stop_ids = ss->stop_ids, .n_stop_ids = ss->n_stop_ids};
  int n = fit_prompt(ss, &ids);
  if (n <= 0) return n;
  ss->turn++;
  engine_cancel_reset(ss->e);
  g_engine = ss->e;
  struct sigaction sa = {.sa_handler = on_sigint}, old;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old);
  engine_gen_stats st;
  int rc = engine_generate(ss->e, ss->t, ss->s, ids, n, &ss->gp, on_token, &r, &st);
  sigaction(SIGINT, &old, NULL);
  g_engine = NULL;
  free(ids);
  fputs("\n", stdout);
  fflush(stdout);
  if (rc) {
    log_error("generation failed: %s", err_str(rc));
    buf_deinit(&r.text);
    return rc;
  }
  if (r.oom) {
    buf_deinit(&r.text);
    log_error("out of memory");
    return ERR_NOMEM;
  }
  double tps = st.gen_ms > 0 ? st.n_gen / (st.gen_ms / 1e3) : 0;
  log_debug("turn %d: prompt %d tokens, %d reused from the cache, %d evaluated; reply %d tokens, %.1f tok/s; "
            "stop: %s",
            ss->turn, st.n_prompt, st.n_prompt - st.n_prompt_eval, st.n_prompt_eval, st.n_gen, tps,
            stop_name(st.stop));
  if (st.stop == ENGINE_STOP_CANCELED) {
    engine_cancel_reset(ss->e);
    log_warn("interrupted; the reply so far is kept");
  } else if (st.stop == ENGINE_STOP_CTX) {
    log_warn("the context is full; the oldest messages will be dropped next turn (or type /reset)");
  }
  const char *txt = r.text.ptr ? (const char *)r.text.ptr : "";
  size_t len = r.text.len;
  while (len && strchr(" \t\r\n", *txt)) txt++, len--;
  while (len && strchr(" \t\r\n", txt[len - 1])) len--;
  rc = convo_add(&ss->c, "assistant", txt, len);
  buf_deinit(&r.text);
  return rc;
}

/* Resolves MODEL: an existing file, else a name in the home's model store. */
static int resolve_model(const cli_common *c, const char *spec, char *path, size_t cap) {
  if (!access(spec, R_OK)) {
    snprintf(path, cap, "%s", spec);
    return 0;
  }
  char dir[HOME_PATH_MAX], err[512];
  home_paths hp;
  mstore_model mm;
  if (cli_home(c, dir, sizeof dir) || home_paths_init(&hp, dir)) {
    log_error("no model file at %s (and no node home to look it up in; pass --home DIR)", spec);
    return -1;
  }
  int rc = mstore_resolve(hp.models, spec, &mm, err, sizeof err);
  if (rc) {
    log_error("no model file at %s, nor in the store: %s", spec, err);
    return -1;
  }
  snprintf(path, cap, "%s", mm.path);
  return 0;
}

int cli_chat_main(int argc, char **argv) {
  cli_common c = {0};
  const char *tmpl_name = NULL, *system_msg = NULL;
  long n_predict = 512, n_threads = 0, n_ctx = 0;
  int have_seed = 0;
  sample_params sp = sample_default_params();
  static const struct option opts[] = {CLI_COMMON_LONGOPTS, CLI_SAMPLING_LONGOPTS,
                                       {"template", required_argument, 0, OPT_TEMPLATE},
                                       {"system", required_argument, 0, OPT_SYSTEM},
                                       {"n-predict", required_argument, 0, 'n'},
                                       {"threads", required_argument, 0, 't'},
                                       {"ctx", required_argument, 0, 'c'},
                                       {0}};
  int opt;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "hvqn:s:t:c:", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) return CLI_OK;
    if (r > 0) continue;
    int sr = cli_sampling_opt("chat", opt, optarg, &sp, &have_seed);
    if (sr == 1) continue;
    if (sr) return sr;
    switch (opt) {
    case OPT_TEMPLATE: tmpl_name = optarg; break;
    case OPT_SYSTEM: system_msg = optarg; break;
    case 'n':
      if (cli_parse_long(optarg, 1, 1 << 24, &n_predict)) return cli_usage_error("chat", "bad -n '%s' (1 or more)", optarg);
      break;
    case 't':
      if (cli_parse_long(optarg, 1, 256, &n_threads)) return cli_usage_error("chat", "bad --threads '%s' (1..256)", optarg);
      break;
    case 'c':
      if (cli_parse_long(optarg, 1, 1 << 22, &n_ctx)) return cli_usage_error("chat", "bad --ctx '%s'", optarg);
      break;
    default: return cli_bad_opt("chat", argv);
    }
  }
  if (optind >= argc) return cli_usage_error("chat", "missing MODEL (a .gguf file or a store name)");
  if (optind + 1 < argc) return cli_usage_error("chat", "unexpected argument '%s'", argv[optind + 1]);
  chat_format fmt = CHAT_PLAIN;
  if (tmpl_name && chat_from_name(tmpl_name, &fmt))
    return cli_usage_error("chat", "unknown --template '%s' (one of %s)", tmpl_name, chat_names());
  if (!have_seed) sp.seed = cli_random_seed();

  int ret = CLI_FAIL, rc;
  char err[512], path[1024];
  model *m = NULL;
  tok *t = NULL;
  char *line = NULL;
  size_t line_cap = 0;
  session ss = {0};
  chat_prompt_init(&ss.p);
  if (resolve_model(&c, argv[optind], path, sizeof path)) goto done;
  if ((rc = model_load(path, &m, err, sizeof err))) {
    log_error("cannot load model %s: %s", path, err[0] ? err : err_str(rc));
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
  const char *tmpl_text = NULL;
  size_t tmpl_len = 0;
  if (!tmpl_name) {
    gguf_str js = {0};
    int known = 0;
    if (!gguf_get_str(m->gguf, "tokenizer.chat_template", &js) && js.len) {
      fmt = chat_detect_len(js.ptr, (size_t)js.len, &known);
      tmpl_text = js.ptr, tmpl_len = (size_t)js.len;
    }
    if (!js.len)
      log_info("%s has no chat template; using a plain \"User: ...\\nAssistant:\" transcript "
               "(pick a layout with --template)",
               path);
    else
      log_debug("chat template: the model's own (fallback layout: %s)", chat_name(fmt));
  }
  engine_params ep = engine_default_params();
  ep.n_threads = (int)n_threads;
  ep.n_ctx = (int)n_ctx;
  if ((rc = engine_new(m, &ep, &ss.e, err, sizeof err))) {
    log_error("cannot set up inference: %s", err);
    goto done;
  }
  if ((rc = sample_new(m->hp.n_vocab, &sp, &ss.s))) {
    log_error("cannot set up sampling: %s", err_str(rc));
    goto done;
  }
  ss.t = t;
  ss.fmt = fmt;
  ss.tmpl = tmpl_text;
  ss.tmpl_len = tmpl_len;
  for (int k = 0; k < 2; k++) { /* BOS / EOS text for the template */
    int32_t id = k ? tok_eos(t) : tok_bos(t);
    size_t len = 0;
    const char *tx = id >= 0 ? tok_text(t, id, &len) : NULL;
    char *dst = k ? ss.eos : ss.bos;
    if (!tx || len >= sizeof ss.bos) len = 0;
    if (len) memcpy(dst, tx, len);
    dst[len] = 0;
  }
  ss.gp = engine_default_gen_params();
  ss.gp.max_tokens = (int)n_predict;
  const char *const *stops;
  int n_stops = chat_stop_strings(fmt, &stops);
  for (int i = 0; i < n_stops && ss.gp.n_stop < ENGINE_MAX_STOP; i++) {
    ss.gp.stop[ss.gp.n_stop++] = stops[i]; /* as text, when the model writes it out */
    int32_t id = chat_special_id(t, stops[i], strlen(stops[i]));
    if (id >= 0) ss.stop_ids[ss.n_stop_ids++] = id; /* as a control token (prints nothing) */
  }
  if (system_msg && system_msg[0]) {
    if (convo_add(&ss.c, "system", system_msg, strlen(system_msg))) goto oom;
    ss.n_fixed = 1;
  }

  int tty = isatty(0) && isatty(1);
  if (tty && log_get_level() <= LOG_INFO)
    fprintf(stderr, "apiary chat: %s, template %s. Type a message; /reset starts over, /exit quits.\n", path,
            chat_name(fmt));
  for (;;) {
    if (tty) {
      fputs("> ", stdout);
      fflush(stdout);
    }
    ssize_t len = getline(&line, &line_cap, stdin);
    if (len < 0) break;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    size_t skip = strspn(line, " \t");
    if ((size_t)len == skip) continue;
    if (len > CHAT_MAX_LINE) {
      log_error("that message is over %d bytes; send a shorter one", CHAT_MAX_LINE);
      continue;
    }
    const char *cmd = line + skip;
    if (!strcmp(cmd, "/exit") || !strcmp(cmd, "/quit")) break;
    if (!strcmp(cmd, "/reset")) {
      convo_remove(&ss.c, ss.n_fixed, ss.c.n - ss.n_fixed);
      if (log_get_level() <= LOG_INFO) fprintf(stderr, "(conversation cleared)\n");
      continue;
    }
    if (!strcmp(cmd, "/help")) {
      fprintf(stderr, "/reset  forget the conversation (keeps --system)\n/exit   quit\n");
      continue;
    }
    if (convo_add(&ss.c, "user", line, (size_t)len)) goto oom;
    if ((rc = do_turn(&ss))) goto done;
  }
  if (ferror(stdin)) {
    log_error("cannot read stdin: %s", strerror(errno));
    goto done;
  }
  ret = CLI_OK;
  goto done;
oom:
  log_error("out of memory");
done:
  free(line);
  chat_prompt_deinit(&ss.p);
  convo_free(&ss.c);
  sample_free(ss.s);
  engine_free(ss.e);
  tok_free(t);
  model_free(m);
  return ret;
}
