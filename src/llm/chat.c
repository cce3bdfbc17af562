/* llm/chat — chat templates (see chat.h for the layouts and docs/chat.md for sources).
 *
 * A formatter appends pieces to a chat_prompt through two helpers: mark() for template
 * markers that may be control tokens ("<|im_start|>", "<s>"), text() for everything else.
 * Content is trimmed only where the family's own template trims it (Llama 2 and 3, Gemma,
 * and our plain style). chat_tokenize then walks the pieces: a marker the vocabulary knows
 * as a control/user-defined token becomes that token; the text between two such tokens is
 * one run encoded with parse_special off, so message content never turns into control
 * tokens. */
#include "llm/chat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "llm/jinja.h"

/* ---- names and detection --------------------------------------------------------------- */

static const char *const names[CHAT_N_FORMATS] = {
    [CHAT_PLAIN] = "plain", [CHAT_CHATML] = "chatml", [CHAT_LLAMA3] = "llama3", [CHAT_LLAMA2] = "llama2",
    [CHAT_ZEPHYR] = "zephyr", [CHAT_GEMMA] = "gemma", [CHAT_PHI3] = "phi3",
};

const char *chat_name(chat_format f) {
  return (unsigned)f < CHAT_N_FORMATS ? names[f] : "?";
}

const char *chat_names(void) {
  return "chatml, llama3, llama2, zephyr, gemma, phi3, plain";
}

int chat_from_name(const char *name, chat_format *out) {
  static const struct {
    const char *alias;
    chat_format f;
  } aliases[] = {{"llama-3", CHAT_LLAMA3}, {"llama-2", CHAT_LLAMA2}, {"phi-3", CHAT_PHI3}, {"none", CHAT_PLAIN}};
  if (!name) return ERR_NOTFOUND;
  for (int i = 0; i < CHAT_N_FORMATS; i++)
    if (!strcasecmp(name, names[i])) {
      *out = (chat_format)i;
      return 0;
    }
  for (size_t i = 0; i < sizeof aliases / sizeof *aliases; i++)
    if (!strcasecmp(name, aliases[i].alias)) {
      *out = aliases[i].f;
      return 0;
    }
  return ERR_NOTFOUND;
}

static int has(const char *s, size_t len, const char *needle) {
  return memmem(s, len, needle, strlen(needle)) != NULL;
}

chat_format chat_detect_len(const char *s, size_t len, int *known_out) {
  chat_format f = CHAT_PLAIN;
  int known = 1;
  if (!s) len = 0;
  if (len > CHAT_MAX_TEMPLATE) len = CHAT_MAX_TEMPLATE;
  /* Most distinctive first: a template mentions its own turn markers literally. */
  if (len && has(s, len, "<|im_start|>")) f = CHAT_CHATML;
  else if (len && has(s, len, "<|start_header_id|>")) f = CHAT_LLAMA3;
  else if (len && has(s, len, "<start_of_turn>")) f = CHAT_GEMMA;
  else if (len && has(s, len, "<|user|>") && has(s, len, "<|end|>")) f = CHAT_PHI3;
  else if (len && has(s, len, "<|user|>")) f = CHAT_ZEPHYR; /* ends turns with eos_token, i.e. </s> */
  else if (len && has(s, len, "[INST]")) f = CHAT_LLAMA2;
  else known = 0;
  if (known_out) *known_out = known;
  return f;
}

chat_format chat_detect(const char *jinja_template, int *known_out) {
  return chat_detect_len(jinja_template, jinja_template ? strlen(jinja_template) : 0, known_out);
}

int chat_stop_strings(chat_format f, const char *const **out) {
  static const char *const plain[] = {"\nUser:"};
  static const char *const chatml[] = {"<|im_end|>", "<|im_start|>"};
  static const char *const llama3[] = {"<|eot_id|>", "<|start_header_id|>"};
  static const char *const llama2[] = {"</s>", "[INST]"};
  static const char *const zephyr[] = {"</s>", "<|user|>"};
  static const char *const gemma[] = {"<end_of_turn>", "<start_of_turn>"};
  static const char *const phi3[] = {"<|end|>", "<|user|>", "<|endoftext|>"};
  static const struct {
    const char *const *v;
    int n;
  } t[CHAT_N_FORMATS] = {
      [CHAT_PLAIN] = {plain, 1},  [CHAT_CHATML] = {chatml, 2}, [CHAT_LLAMA3] = {llama3, 2},
      [CHAT_LLAMA2] = {llama2, 2}, [CHAT_ZEPHYR] = {zephyr, 2}, [CHAT_GEMMA] = {gemma, 2},
      [CHAT_PHI3] = {phi3, 3},
  };
  if ((unsigned)f >= CHAT_N_FORMATS) {
    *out = NULL;
    return 0;
  }
  *out = t[f].v;
  return t[f].n;
}

/* ---- the prompt buffer ------------------------------------------------------------------ */

void chat_prompt_init(chat_prompt *p) {
  memset(p, 0, sizeof *p);
}

void chat_prompt_deinit(chat_prompt *p) {
  free(p->text);
  free(p->segs);
  memset(p, 0, sizeof *p);
}

typedef struct writer {
  chat_prompt *p;
  int oom;
} writer;

static void put(writer *w, const char *s, size_t len, int special) {
  chat_prompt *p = w->p;
  if (w->oom || !len) return;
  if (p->len + len + 1 > p->cap) {
    size_t nc = p->cap ? p->cap : 256;
    while (nc < p->len + len + 1) nc *= 2;
    char *t = realloc(p->text, nc);
    if (!t) {
      w->oom = 1;
      return;
    }
    p->text = t;
    p->cap = nc;
  }
  /* Adjacent pieces of the same kind share a segment (except markers: one token each). */
  chat_seg *last = p->n_segs ? &p->segs[p->n_segs - 1] : NULL;
  if (!special && last && !last->special) {
    last->len += len;
  } else {
    if (p->n_segs == p->segs_cap) {
      size_t nc = p->segs_cap ? p->segs_cap * 2 : 32;
      chat_seg *ns = realloc(p->segs, nc * sizeof *ns);
      if (!ns) {
        w->oom = 1;
        return;
      }
      p->segs = ns;
      p->segs_cap = nc;
    }
    p->segs[p->n_segs++] = (chat_seg){.off = p->len, .len = len, .special = special};
  }
  memcpy(p->text + p->len, s, len);
  p->len += len;
  p->text[p->len] = 0;
}

static void mark(writer *w, const char *s) {
  put(w, s, strlen(s), 1);
}

static void text(writer *w, const char *s) {
  put(w, s, strlen(s), 0);
}

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Content with trailing (and, for text_trim, leading) white space removed: Jinja's trim,
 * Python's strip. */
static void text_rtrim(writer *w, const char *s) {
  size_t len = strlen(s);
  while (len && is_space(s[len - 1])) len--;
  put(w, s, len, 0);
}

static void text_trim(writer *w, const char *s) {
  while (is_space(*s)) s++;
  text_rtrim(w, s);
}

static int is_role(const chat_msg *m, const char *role) {
  return !strcmp(m->role, role);
}

/* ---- the formatters --------------------------------------------------------------------- */

/* ChatML: every message, any role, verbatim. */
static void fmt_chatml(writer *w, const chat_msg *m, size_t n, int gen) {
  for (size_t i = 0; i < n; i++) {
    mark(w, "<|im_start|>");
    text(w, m[i].role);
    text(w, "\n");
    text(w, m[i].content);
    mark(w, "<|im_end|>");
    text(w, "\n");
  }
  if (gen) {
    mark(w, "<|im_start|>");
    text(w, "assistant\n");
  }
}

/* Llama 3 instruct: BOS, then a header per message; content trimmed. */
static void fmt_llama3(writer *w, const chat_msg *m, size_t n, int gen) {
  mark(w, "<|begin_of_text|>");
  for (size_t i = 0; i < n; i++) {
    mark(w, "<|start_header_id|>");
    text(w, m[i].role);
    mark(w, "<|end_header_id|>");
    text(w, "\n\n");
    text_trim(w, m[i].content);
    mark(w, "<|eot_id|>");
  }
  if (gen) {
    mark(w, "<|start_header_id|>");
    text(w, "assistant");
    mark(w, "<|end_header_id|>");
    text(w, "\n\n");
  }
}

/* Llama 2 chat: "<s>[INST] user [/INST] answer </s>" per exchange; a leading system
 * message goes in a <<SYS>> block inside the first [INST]. The model's template has no
 * generation prompt: the [/INST] already opens the answer. */
static void fmt_llama2(writer *w, const chat_msg *m, size_t n, int gen) {
  (void)gen;
  size_t i = 0;
  const char *sys = NULL;
  if (n && is_role(&m[0], "system")) sys = m[i++].content;
  for (int first = 1; i < n; i++, first = 0) {
    if (is_role(&m[i], "assistant")) {
      text(w, " ");
      text_trim(w, m[i].content);
      text(w, " ");
      mark(w, "</s>");
      continue;
    }
    mark(w, "<s>");
    text(w, "[INST] ");
    if (first && sys) {
      text(w, "<<SYS>>\n");
      text(w, sys); /* the template strips "<<SYS>>…" + user text as a whole: only its end */
      text(w, "\n<</SYS>>\n\n");
      text_rtrim(w, m[i].content);
    } else {
      text_trim(w, m[i].content);
    }
    text(w, " [/INST]");
  }
}

/* Zephyr: "<|role|>\ncontent</s>\n"; the generation prompt is "<|assistant|>\n". */
static void fmt_zephyr(writer *w, const chat_msg *m, size_t n, int gen) {
  for (size_t i = 0; i < n; i++) {
    const char *r = is_role(&m[i], "system") ? "<|system|>" : is_role(&m[i], "assistant") ? "<|assistant|>" : "<|user|>";
    mark(w, r);
    text(w, "\n");
    text(w, m[i].content);
    mark(w, "</s>");
    text(w, "\n");
  }
  if (gen) {
    mark(w, "<|assistant|>");
    text(w, "\n");
  }
}

/* Gemma: BOS; roles "user" and "model"; no system role: a leading system message is put
 * in front of the first user turn, separated by a blank line. Content trimmed. */
static void fmt_gemma(writer *w, const chat_msg *m, size_t n, int gen) {
  size_t i = 0;
  const char *sys = NULL;
  mark(w, "<bos>");
  if (n && is_role(&m[0], "system")) sys = m[i++].content;
  for (; i < n; i++) {
    int model = is_role(&m[i], "assistant");
    mark(w, "<start_of_turn>");
    text(w, model ? "model\n" : "user\n");
    if (sys && !model) {
      text_trim(w, sys);
      text(w, "\n\n");
      sys = NULL;
    }
    text_trim(w, m[i].content);
    mark(w, "<end_of_turn>");
    text(w, "\n");
  }
  if (sys) { /* only a system message: give it its own user turn */
    mark(w, "<start_of_turn>");
    text(w, "user\n");
    text_trim(w, sys);
    mark(w, "<end_of_turn>");
    text(w, "\n");
  }
  if (gen) {
    mark(w, "<start_of_turn>");
    text(w, "model\n");
  }
}

/* Phi-3: "<|role|>\ncontent<|end|>\n"; the generation prompt is "<|assistant|>\n", and
 * without it the template ends with EOS ("<|endoftext|>"). */
static void fmt_phi3(writer *w, const chat_msg *m, size_t n, int gen) {
  for (size_t i = 0; i < n; i++) {
    const char *r = is_role(&m[i], "system") ? "<|system|>" : is_role(&m[i], "assistant") ? "<|assistant|>" : "<|user|>";
    mark(w, r);
    text(w, "\n");
    text(w, m[i].content);
    mark(w, "<|end|>");
    text(w, "\n");
  }
  if (gen) {
    mark(w, "<|assistant|>");
    text(w, "\n");
  } else {
    mark(w, "<|endoftext|>");
  }
}

/* Plain transcript for models without a template. */
static void fmt_plain(writer *w, const chat_msg *m, size_t n, int gen) {
  size_t i = 0;
  if (n && is_role(&m[0], "system")) {
    text_trim(w, m[i++].content);
    text(w, "\n\n");
  }
  for (; i < n; i++) {
    text(w, is_role(&m[i], "assistant") ? "Assistant: " : "User: ");
    text_trim(w, m[i].content);
    text(w, "\n");
  }
  if (gen) text(w, "Assistant:");
}

int chat_apply(chat_format f, const chat_msg *msgs, size_t n, int add_generation_prompt, chat_prompt *p) {
  static void (*const fmts[CHAT_N_FORMATS])(writer *, const chat_msg *, size_t, int) = {
      [CHAT_PLAIN] = fmt_plain,   [CHAT_CHATML] = fmt_chatml, [CHAT_LLAMA3] = fmt_llama3,
      [CHAT_LLAMA2] = fmt_llama2, [CHAT_ZEPHYR] = fmt_zephyr, [CHAT_GEMMA] = fmt_gemma,
      [CHAT_PHI3] = fmt_phi3,
  };
  if ((unsigned)f >= CHAT_N_FORMATS || (n && !msgs)) return ERR_INVAL;
  for (size_t i = 0; i < n; i++)
    if (!msgs[i].role || !msgs[i].content) return ERR_INVAL;
  if (!p->text) { /* always leave a NUL-terminated (possibly empty) text */
    if (!(p->text = malloc(256))) return ERR_NOMEM;
    p->cap = 256;
  }
  p->len = 0;
  p->n_segs = 0;
  p->text[0] = 0;
  writer w = {.p = p};
  fmts[f](&w, msgs, n, add_generation_prompt);
  return w.oom ? ERR_NOMEM : 0;
}

/* ---- Jinja templates -------------------------------------------------------------------- */

#define CHAT_PROBE "apiary-typed-content-probe"

/* Does the template read content given as an array of text parts? Renders a one-message
 * conversation whose content is such an array: yes when the text shows up and the
 * array's JSON does not. */
static int reads_parts(const jinja_tmpl *t, const json_t *base_ctx, const json_t *trusted) {
  json_t *ctx = json_deep_copy(base_ctx);
  json_t *msgs = json_pack("[{s:s, s:[{s:s, s:s}]}]", "role", "user", "content", "type", "text", "text", CHAT_PROBE);
  int yes = 0;
  if (ctx && msgs && !json_object_set(ctx, "messages", msgs)) {
    jinja_out o;
    char err[64];
    if (!jinja_render_trusted(t, ctx, trusted, &o, err, sizeof err)) {
      yes = strstr(o.text, CHAT_PROBE) && !strstr(o.text, "\"type\"");
      jinja_out_deinit(&o);
    }
  }
  json_decref(msgs);
  json_decref(ctx);
  return yes;
}

/* messages with every text-part array joined into one string (new reference). */
static json_t *join_parts(const json_t *messages) {
  json_t *out = json_deep_copy(messages);
  size_t i;
  json_t *m;
  if (!out) return NULL;
  json_array_foreach(out, i, m) {
    json_t *c = json_object_get(m, "content");
    if (!json_is_array(c)) continue;
    char *s = NULL;
    size_t len = 0, k;
    json_t *part;
    FILE *f = open_memstream(&s, &len);
    if (!f) goto fail;
    int first = 1;
    json_array_foreach(c, k, part) {
      const char *txt = json_string_value(json_object_get(part, "text"));
      const char *type = json_string_value(json_object_get(part, "type"));
      if (!txt || (type && strcmp(type, "text"))) continue;
      if (!first) fputc('\n', f);
      fputs(txt, f);
      first = 0;
    }
    fclose(f);
    json_t *js = json_stringn(s ? s : "", len);
    free(s);
    if (!js || json_object_set_new(m, "content", js)) goto fail;
  }
  return out;
fail:
  json_decref(out);
  return NULL;
}

static int has_parts(const json_t *messages) {
  size_t i;
  json_t *m;
  json_array_foreach(messages, i, m) if (json_is_array(json_object_get(m, "content"))) return 1;
  return 0;
}

int chat_render_jinja_ex(const char *tmpl, size_t tmpl_len, const json_t *messages, const json_t *tools,
                         int add_generation_prompt, const char *bos, const char *eos, const json_t *extra,
                         chat_prompt *p, char *err, size_t err_cap) {
  jinja_tmpl *t = NULL;
  jinja_out o = {0};
  json_t *ctx = NULL, *trusted = NULL, *joined = NULL;
  int rc;
  if (!tmpl || !json_is_array(messages) || (tools && !json_is_array(tools)) || (extra && !json_is_object(extra)))
    return err_set(err, err_cap, ERR_INVAL, "render needs a template and a JSON array of messages");
  if ((rc = jinja_parse(tmpl, tmpl_len, &t, err, err_cap))) return rc;
  ctx = json_object();
  trusted = json_pack("{s:s, s:s}", "bos_token", bos ? bos : "", "eos_token", eos ? eos : "");
  if (!ctx || !trusted || json_object_set(ctx, "messages", (json_t *)messages) ||
      json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt)) ||
      (tools && json_object_set(ctx, "tools", (json_t *)tools)) || (extra && json_object_update(ctx, (json_t *)extra))) {
    rc = ERR_NOMEM;
    goto done;
  }
  if (has_parts(messages) && !reads_parts(t, ctx, trusted)) {
    if (!(joined = join_parts(messages)) || json_object_set(ctx, "messages", joined)) {
      rc = ERR_NOMEM;
      goto done;
    }
  }
  if ((rc = jinja_render_trusted(t, ctx, trusted, &o, err, err_cap))) goto done;
  if (!p->text) {
    if (!(p->text = malloc(256))) {
      rc = ERR_NOMEM;
      goto done;
    }
    p->cap = 256;
  }
  p->len = 0;
  p->n_segs = 0;
  p->text[0] = 0;
  writer w = {.p = p};
  size_t at = 0;
  for (size_t i = 0; i < o.n_input; i++) {
    put(&w, o.text + at, o.input[i].off - at, 2);
    put(&w, o.text + o.input[i].off, o.input[i].len, 0);
    at = o.input[i].off + o.input[i].len;
  }
  put(&w, o.text + at, o.len - at, 2);
  if (w.oom) rc = ERR_NOMEM;
done:
  if (rc == ERR_NOMEM) err_set(err, err_cap, rc, "out of memory rendering the chat template");
  jinja_out_deinit(&o);
  json_decref(joined);
  json_decref(ctx);
  json_decref(trusted);
  jinja_free(t);
  return rc;
}

int chat_render_jinja(const char *tmpl, size_t tmpl_len, const json_t *messages, const json_t *tools,
                      int add_generation_prompt, const char *bos, const char *eos, chat_prompt *p, char *err,
                      size_t err_cap) {
  return chat_render_jinja_ex(tmpl, tmpl_len, messages, tools, add_generation_prompt, bos, eos, NULL, p, err, err_cap);
}

/* ---- tokenizing ------------------------------------------------------------------------- */

int32_t chat_special_id(const tok *t, const char *s, size_t len) {
  int32_t ids[2];
  if (!len) return -1;
  int n = tok_encode(t, s, len, 0, 1, ids, 2);
  if (n != 1) return -1;
  if (!(tok_attr(t, ids[0]) & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED))) return -1;
  size_t tl;
  const char *tt = tok_text(t, ids[0], &tl);
  if (!tt || tl != len || memcmp(tt, s, len)) return -1;
  return ids[0];
}

typedef struct idvec {
  int32_t *v;
  size_t n, cap;
} idvec;

static int idvec_reserve(idvec *a, size_t more) {
  if (a->n + more <= a->cap) return 0;
  size_t nc = a->cap ? a->cap : 64;
  while (nc < a->n + more) nc *= 2;
  int32_t *v = realloc(a->v, nc * sizeof *v);
  if (!v) return ERR_NOMEM;
  a->v = v;
  a->cap = nc;
  return 0;
}

/* Encodes text[0..len) as plain text (no special parsing, no BOS) onto a. */
static int encode_run(const tok *t, const char *s, size_t len, idvec *a) {
  if (!len) return 0;
  int n = tok_encode(t, s, len, 0, 0, NULL, 0);
  if (n <= 0) return n;
  if (idvec_reserve(a, (size_t)n)) return ERR_NOMEM;
  if (tok_encode(t, s, len, 0, 0, a->v + a->n, (size_t)n) != n) return ERR_INVAL;
  a->n += (size_t)n;
  return 0;
}

/* The vocabulary's control and user-defined tokens, for scanning template text. */
typedef struct special_set {
  int32_t *ids;
  size_t n;
} special_set;

static int special_set_load(const tok *t, special_set *s) {
  int32_t nv = tok_n_vocab(t);
  s->n = 0;
  s->ids = NULL;
  for (int32_t id = 0; id < nv; id++) {
    size_t len;
    if (!(tok_attr(t, id) & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) || !tok_text(t, id, &len) || !len) continue;
    if (!(s->n & (s->n + 1)) || !s->ids) {
      int32_t *v = realloc(s->ids, (s->n * 2 + 16) * sizeof *v);
      if (!v) return ERR_NOMEM;
      s->ids = v;
    }
    s->ids[s->n++] = id;
  }
  return 0;
}

/* The longest special token whose text starts at s[0..len): its id and length, or -1. */
static int32_t special_at(const tok *t, const special_set *ss, const char *s, size_t len, size_t *len_out) {
  int32_t best = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < ss->n; i++) {
    size_t tl;
    const char *tt = tok_text(t, ss->ids[i], &tl);
    if (tl > len || tl <= best_len || tt[0] != s[0] || memcmp(tt, s, tl)) continue;
    best = ss->ids[i];
    best_len = tl;
  }
  *len_out = best_len;
  return best;
}

int chat_tokenize(const tok *t, const chat_prompt *p, int32_t **ids_out) {
  idvec a = {0};
  special_set ss = {0};
  int have_ss = 0;
  int rc = 0;
  size_t run_off = 0, run_len = 0; /* the pending stretch of plain text (contiguous) */
  *ids_out = NULL;
  if (p->len > TOK_MAX_TEXT) return ERR_TOOBIG;
  int32_t bos = tok_bos(t);
  if (tok_add_bos(t) && bos >= 0) {
    if ((rc = idvec_reserve(&a, 1))) goto fail;
    a.v[a.n++] = bos;
  }
  for (size_t i = 0; i < p->n_segs; i++) {
    const chat_seg *s = &p->segs[i];
    if (s->special == 2) { /* template text: find the special tokens inside */
      if (!have_ss && (rc = special_set_load(t, &ss))) goto fail;
      have_ss = 1;
      size_t k = 0;
      while (k < s->len) {
        size_t tl;
        int32_t id = special_at(t, &ss, p->text + s->off + k, s->len - k, &tl);
        if (id < 0) {
          if (!run_len) run_off = s->off + k;
          run_len = s->off + k + 1 - run_off;
          k++;
          continue;
        }
        if ((rc = encode_run(t, p->text + run_off, run_len, &a))) goto fail;
        run_len = 0;
        k += tl;
        if (id == bos && a.n == 1 && a.v[0] == bos && tok_add_bos(t)) continue; /* the template's own BOS */
        if ((rc = idvec_reserve(&a, 1))) goto fail;
        a.v[a.n++] = id;
      }
      continue;
    }
    int32_t id = s->special ? chat_special_id(t, p->text + s->off, s->len) : -1;
    if (id < 0) { /* text, or a marker this vocabulary does not have: part of the run */
      if (!run_len) run_off = s->off;
      run_len = s->off + s->len - run_off;
      continue;
    }
    if ((rc = encode_run(t, p->text + run_off, run_len, &a))) goto fail;
    run_len = 0;
    if (id == bos && a.n == 1 && a.v[0] == bos) continue; /* the template's own BOS */
    if ((rc = idvec_reserve(&a, 1))) goto fail;
    a.v[a.n++] = id;
  }
  if ((rc = encode_run(t, p->text + run_off, run_len, &a))) goto fail;
  if (a.n > (size_t)TOK_MAX_TEXT) {
    rc = ERR_TOOBIG;
    goto fail;
  }
  free(ss.ids);
  *ids_out = a.v;
  return (int)a.n;
fail:
  free(ss.ids);
  free(a.v);
  return rc < 0 ? rc : ERR_NOMEM;
}
