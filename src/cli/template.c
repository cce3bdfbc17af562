/* cli/template — `apiary template render`: renders a chat template over a conversation.
 *
 *   apiary template render (--model MODEL | --template FILE) --messages FILE.json
 *          [--tools FILE.json] [--no-generation-prompt] [--var NAME=JSON]...
 *
 * The template is a model's own tokenizer.chat_template (with its BOS/EOS token text), or
 * a file: raw Jinja, or a Hugging Face tokenizer_config.json (its chat_template — a string,
 * or the list form, whose "default" entry is used — and bos_token/eos_token). The
 * conversation is an OpenAI-style JSON array of messages. The rendered text goes to
 * stdout exactly (no newline added), rendered by llm/chat's chat_render_jinja, the same
 * path the node uses. Exit 0, 1 (the template failed: parse error, render error or
 * raise_exception), 2 (usage). Main thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/log.h"
#include "llm/chat.h"
#include "llm/gguf.h"
#include "llm/jinja.h"
#include "llm/mstore.h"
#include "llm/tok.h"
#include "node/home.h"

static const char usage[] =
    "usage: apiary template render (--model MODEL | --template FILE) --messages FILE.json [options]\n\n"
    "Renders a chat template over a conversation and prints the prompt text exactly (no newline\n"
    "added): the model's own Jinja template, as the node lays out prompts.\n\n"
    "      --model MODEL          a GGUF file or a name in the model store: its\n"
    "                             tokenizer.chat_template and BOS/EOS token text\n"
    "      --template FILE        a Jinja template file, or a Hugging Face tokenizer_config.json\n"
    "                             (chat_template; bos_token, eos_token)\n"
    "      --messages FILE.json   a JSON array of OpenAI-style messages\n"
    "      --tools FILE.json      a JSON array of OpenAI tool definitions\n"
    "      --no-generation-prompt leave out the opening of the assistant's turn\n"
    "      --var NAME=JSON        one more template variable (e.g. date_string='\"26 Jul 2024\"');\n"
    "                             repeatable\n"
    "      --home DIR             node home whose model store resolves names (default ~/.apiary)\n";

enum { OPT_MODEL = 0x2000, OPT_TEMPLATE, OPT_MESSAGES, OPT_TOOLS, OPT_NO_GEN, OPT_VAR };

static json_t *load_json(const char *path, const char *what) {
  json_error_t je;
  json_t *j = json_load_file(path, JSON_DECODE_ANY, &je);
  if (!j) log_error("cannot read %s %s: %s (line %d); give a JSON file", what, path, je.text, je.line);
  return j;
}

/* tokenizer_config.json's bos_token / eos_token: a string or {content}. */
static const char *special_text(const json_t *cfg, const char *key) {
  const json_t *v = json_object_get(cfg, key);
  if (json_is_object(v)) v = json_object_get(v, "content");
  return json_is_string(v) ? json_string_value(v) : "";
}

/* Reads FILE: raw Jinja, or a tokenizer_config.json. Fills *tmpl (owned) and bos/eos. */
static int read_template_file(const char *path, char **tmpl, size_t *len, char **bos, char **eos) {
  buf b = {0};
  int rc = fs_read_file(path, JINJA_MAX_SOURCE * 4, &b);
  if (rc) {
    log_error("cannot read the template %s: %s", path, err_str(rc));
    return -1;
  }
  const char *s = b.ptr ? (const char *)b.ptr : "";
  size_t n = b.len, i = 0;
  while (i < n && strchr(" \t\r\n", s[i])) i++;
  json_t *cfg = i < n && s[i] == '{' ? json_loadb(s, n, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
  if (cfg && json_is_object(cfg) && json_object_get(cfg, "chat_template")) {
    const json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_array(ct)) {
      size_t k;
      json_t *e;
      const json_t *pick = NULL;
      json_array_foreach(ct, k, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name && !strcmp(name, "default")) pick = json_object_get(e, "template");
      }
      ct = pick;
    }
    if (!json_is_string(ct)) {
      log_error("%s has no usable chat_template (a string, or a list with a \"default\" entry)", path);
      json_decref(cfg);
      buf_deinit(&b);
      return -1;
    }
    *len = json_string_length(ct);
    *tmpl = malloc(*len + 1);
    *bos = strdup(special_text(cfg, "bos_token"));
    *eos = strdup(special_text(cfg, "eos_token"));
    if (*tmpl) memcpy(*tmpl, json_string_value(ct), *len + 1);
  } else {
    *len = n;
    *tmpl = malloc(n + 1);
    if (*tmpl) {
      memcpy(*tmpl, s, n);
      (*tmpl)[n] = 0;
    }
    *bos = strdup("");
    *eos = strdup("");
  }
  json_decref(cfg);
  buf_deinit(&b);
  if (!*tmpl || !*bos || !*eos) {
    log_error("out of memory");
    return -1;
  }
  return 0;
}

static int token_text(const tok *t, int32_t id, char **out) {
  size_t len = 0;
  const char *s = id >= 0 ? tok_text(t, id, &len) : NULL;
  *out = strndup(s ? s : "", s ? len : 0);
  return *out ? 0 : -1;
}

/* The model's chat template and BOS/EOS text. */
static int read_model_template(const cli_common *c, const char *spec, char **tmpl, size_t *len, char **bos,
                               char **eos) {
  char path[1024], err[512];
  if (!access(spec, R_OK)) {
    snprintf(path, sizeof path, "%s", spec);
  } else {
    char dir[HOME_PATH_MAX];
    home_paths hp;
    mstore_model mm;
    if (cli_home(c, dir, sizeof dir) || home_paths_init(&hp, dir)) {
      log_error("no model file at %s (and no node home to look it up in; pass --home DIR)", spec);
      return -1;
    }
    if (mstore_resolve(hp.models, spec, &mm, err, sizeof err)) {
      log_error("no model file at %s, nor in the store: %s", spec, err);
      return -1;
    }
    snprintf(path, sizeof path, "%s", mm.path);
  }
  gguf_file *g = NULL;
  tok *t = NULL;
  int rc, ret = -1;
  if ((rc = gguf_open(path, &g, err, sizeof err))) {
    log_error("cannot open %s: %s", path, err[0] ? err : err_str(rc));
    return -1;
  }
  gguf_str js = {0};
  if (gguf_get_str(g, "tokenizer.chat_template", &js) || !js.len) {
    log_error("%s has no chat template (tokenizer.chat_template); give one with --template FILE", path);
    goto done;
  }
  if ((rc = tok_new_from_gguf(g, &t, err, sizeof err))) {
    log_error("cannot load the tokenizer of %s: %s", path, err[0] ? err : err_str(rc));
    goto done;
  }
  *len = (size_t)js.len;
  if (!(*tmpl = malloc(*len + 1)) || token_text(t, tok_bos(t), bos) || token_text(t, tok_eos(t), eos)) {
    log_error("out of memory");
    goto done;
  }
  memcpy(*tmpl, js.ptr, *len);
  (*tmpl)[*len] = 0;
  ret = 0;
done:
  tok_free(t);
  gguf_close(g);
  return ret;
}

static int render_main(int argc, char **argv) {
  cli_common c = {0};
  const char *model = NULL, *tfile = NULL, *mfile = NULL, *tools_file = NULL;
  int gen = 1, ret = CLI_FAIL, rc;
  json_t *vars = json_object(), *messages = NULL, *tools = NULL;
  char *tmpl = NULL, *bos = NULL, *eos = NULL;
  size_t tlen = 0;
  chat_prompt p;
  chat_prompt_init(&p);
  static const struct option opts[] = {CLI_COMMON_LONGOPTS,
                                       {"model", required_argument, 0, OPT_MODEL},
                                       {"template", required_argument, 0, OPT_TEMPLATE},
                                       {"messages", required_argument, 0, OPT_MESSAGES},
                                       {"tools", required_argument, 0, OPT_TOOLS},
                                       {"no-generation-prompt", no_argument, 0, OPT_NO_GEN},
                                       {"var", required_argument, 0, OPT_VAR},
                                       {0}};
  int opt;
  optind = 1;
  if (!vars) return CLI_FAIL;
  while ((opt = getopt_long(argc, argv, "hvq", opts, NULL)) != -1) {
    int r = cli_common_opt(opt, optarg, &c, usage);
    if (r < 0) {
      ret = CLI_OK;
      goto done;
    }
    if (r > 0) continue;
    switch (opt) {
    case OPT_MODEL: model = optarg; break;
    case OPT_TEMPLATE: tfile = optarg; break;
    case OPT_MESSAGES: mfile = optarg; break;
    case OPT_TOOLS: tools_file = optarg; break;
    case OPT_NO_GEN: gen = 0; break;
    case OPT_VAR: {
      const char *eq = strchr(optarg, '=');
      json_t *v = eq ? json_loads(eq + 1, JSON_DECODE_ANY, NULL) : NULL;
      if (!eq || eq == optarg || !v) {
        json_decref(v);
        ret = cli_usage_error("template render", "bad --var '%s' (NAME=JSON, e.g. date_string='\"1 Jan 2025\"')", optarg);
        goto done;
      }
      char name[128];
      snprintf(name, sizeof name, "%.*s", (int)(eq - optarg), optarg);
      json_object_set_new(vars, name, v);
      break;
    }
    default: ret = cli_bad_opt("template render", argv); goto done;
    }
  }
  if (optind < argc) {
    ret = cli_usage_error("template render", "unexpected argument '%s'", argv[optind]);
    goto done;
  }
  if (!!model == !!tfile) {
    ret = cli_usage_error("template render", "give one of --model MODEL or --template FILE");
    goto done;
  }
  if (!mfile) {
    ret = cli_usage_error("template render", "missing --messages FILE.json");
    goto done;
  }
  if (!(messages = load_json(mfile, "messages"))) goto done;
  if (!json_is_array(messages)) {
    log_error("%s: the messages must be a JSON array of {role, content} objects", mfile);
    goto done;
  }
  if (tools_file) {
    if (!(tools = load_json(tools_file, "tools"))) goto done;
    if (!json_is_array(tools)) {
      log_error("%s: the tools must be a JSON array of tool definitions", tools_file);
      goto done;
    }
  }
  if (model ? read_model_template(&c, model, &tmpl, &tlen, &bos, &eos) : read_template_file(tfile, &tmpl, &tlen, &bos, &eos))
    goto done;
  char err[1024];
  err[0] = 0;
  rc = chat_render_jinja_ex(tmpl, tlen, messages, tools, gen, bos, eos, json_object_size(vars) ? vars : NULL, &p, err,
                            sizeof err);
  if (rc) {
    log_error("the chat template failed: %s", err[0] ? err : err_str(rc));
    goto done;
  }
  if (p.len && fwrite(p.text, 1, p.len, stdout) != p.len) {
    log_error("cannot write the output");
    goto done;
  }
  if (fflush(stdout)) goto done;
  ret = CLI_OK;
done:
  chat_prompt_deinit(&p);
  json_decref(vars);
  json_decref(messages);
  json_decref(tools);
  free(tmpl);
  free(bos);
  free(eos);
  return ret;
}

int cli_template_main(int argc, char **argv) {
  static const char top[] = "usage: apiary template render (--model MODEL | --template FILE) --messages FILE.json "
                            "[options]\n\nSubcommands:\n  render   render a chat template over a conversation "
                            "(see 'apiary template render --help')\n";
  if (argc < 2) {
    fputs(top, stderr);
    return CLI_USAGE;
  }
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    fputs(top, stdout);
    return CLI_OK;
  }
  if (!strcmp(argv[1], "render")) return render_main(argc - 1, argv + 1);
  return cli_usage_error("template", "unknown subcommand '%s' (render)", argv[1]);
}
