/* llm/local — local inference worker; see local.h. */
#include "llm/local.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "llm/chat.h"
#include "llm/engine.h"
#include "llm/grammar.h"
#include "llm/jinja.h"
#include "llm/gguf.h"
#include "llm/model.h"
#include "llm/tok.h"
#include "llm/toolcall.h"

struct local_job {
  local_svc *svc;
  local_req req;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  buf text;              /* everything generated so far */
  size_t read_pos;       /* how much the reader has taken */
  local_result result;   /* finish != LOCAL_RUNNING once done */
  atomic_int canceled;
  int32_t *ids;          /* generated token ids */
  int n_ids, cap_ids, ids_read;
  int prompt_tokens;     /* once tokenized */
  float *embd;           /* embeddings job: [n_embed][embd_dim], set when it ends well */
  int embd_dim;
  int64_t allowance;     /* tokens it may generate; -1 unlimited */
  int waiting_credit;
  logprob_log lp;        /* req.logprobs: the records (sized once the prompt is known) */
  int lp_released;       /* records whose text is out (or was cut: never) */
  int lp_read;           /* records the reader has taken */
  int refs;              /* caller + queue/worker */
  local_job *next;
};

struct local_svc {
  pthread_t worker;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  local_job *head, *tail;  /* queue */
  int stopping;
  int n_threads, n_ctx;
  _Atomic double max_tps;
  /* worker-only state */
  char loaded[1024];
  model *m;
  tok *t;
  engine *e;
  grammar_vocab *gv;       /* the loaded vocabulary prepared for grammars (built when first needed) */
};

void local_req_clear(local_req *lr) {
  free(lr->prompt);
  free(lr->cont_ids);
  for (int i = 0; i < lr->n_stop; i++) free(lr->stop[i]);
  free(lr->grammar);
  for (int i = 0; lr->embed && i < lr->n_embed; i++) {
    free(lr->embed[i].text);
    free(lr->embed[i].ids);
  }
  free(lr->embed);
  json_decref(lr->messages);
  json_decref(lr->tools);
  memset(lr, 0, sizeof *lr);
}

static void job_unref(local_job *j) {
  pthread_mutex_lock(&j->mu);
  int left = --j->refs;
  pthread_mutex_unlock(&j->mu);
  if (left) return;
  if (j->req.notify_free) j->req.notify_free(j->req.notify_ud);
  local_req_clear(&j->req);
  free(j->embd);
  free(j->ids);
  logprob_log_deinit(&j->lp);
  buf_deinit(&j->text);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}

static void finish(local_job *j, local_finish f, int pt, int ct, const char *err) {
  pthread_mutex_lock(&j->mu);
  j->result.finish = f;
  j->result.prompt_tokens = pt;
  j->result.completion_tokens = ct;
  if (err) snprintf(j->result.error, sizeof j->result.error, "%s", err);
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (j->req.notify) j->req.notify(j->req.notify_ud);
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct gen_state {
  local_job *j;
  double t0, tps;
  const tok *t;          /* for the pieces of logprob records */
  float *raw;            /* req.logprobs: the position's raw logits [n_vocab] */
  int n_vocab;
} gen_state;

/* The engine's on_logits: keeps the position's raw logits for the token drawn from them. */
static void on_logits(void *user, const float *logits, int n_vocab) {
  gen_state *g = user;
  memcpy(g->raw, logits, (size_t)n_vocab * sizeof *logits);
}

/* Records whose text is now out: every one so far (j->mu held). */
static void lp_release(local_job *j) {
  for (int i = j->lp_released; i < j->lp.n; i++) j->lp.recs[i].text_end = j->text.len;
  j->lp_released = j->lp.n;
}

static int on_token(void *user, int32_t id, const char *text, size_t len) {
  gen_state *g = user;
  local_job *j = g->j;
  if (atomic_load(&j->canceled)) return 1; /* stop */
  pthread_mutex_lock(&j->mu);
  int rc = 0;
  if (g->raw && id >= 0) rc = logprob_log_add(&j->lp, g->t, g->raw, g->n_vocab, logprob_lse(g->raw, g->n_vocab), id, 0);
  if (!rc) rc = buf_append(&j->text, text, len);
  if (!rc && len) lp_release(j); /* a token held back goes out with the text that releases it */
  if (!rc && id >= 0) {
    if (j->n_ids == j->cap_ids) {
      int nc = j->cap_ids ? j->cap_ids * 2 : 256;
      int32_t *p = realloc(j->ids, (size_t)nc * sizeof *p);
      if (!p) rc = ERR_NOMEM;
      else j->ids = p, j->cap_ids = nc;
    }
    if (!rc) j->ids[j->n_ids++] = id;
  }
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  if (j->req.notify) j->req.notify(j->req.notify_ud);
  if (rc) return 1;
  /* Credit window: wait until the provider allows more tokens. */
  pthread_mutex_lock(&j->mu);
  while (j->allowance >= 0 && j->n_ids >= j->allowance && !atomic_load(&j->canceled)) {
    j->waiting_credit = 1;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += 50 * 1000000L;
    if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &dl);
  }
  j->waiting_credit = 0;
  int n = j->n_ids;
  pthread_mutex_unlock(&j->mu);
  /* Speed cap: sleep until this token's slot. */
  if (g->tps > 0 && id >= 0) {
    double due = g->t0 + (double)n / g->tps, now = mono_s();
    if (due > now) {
      struct timespec ts = {(time_t)(due - now), (long)((due - now - (double)(time_t)(due - now)) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
  return atomic_load(&j->canceled) ? 1 : 0;
}

/* Loads (or keeps) the model at path. Worker thread. */
static int ensure_model(local_svc *s, const char *path, char *err, size_t cap) {
  if (s->m && !strcmp(s->loaded, path)) return 0;
  grammar_vocab_free(s->gv);
  s->gv = NULL;
  engine_free(s->e);
  tok_free(s->t);
  model_free(s->m);
  s->e = NULL;
  s->t = NULL;
  s->m = NULL;
  s->loaded[0] = 0;
  int rc = model_load(path, &s->m, err, cap);
  if (!rc) rc = tok_new_from_gguf(s->m->gguf, &s->t, err, cap);
  if (!rc) {
    engine_params ep = engine_default_params();
    ep.n_threads = s->n_threads;
    ep.n_ctx = s->n_ctx;
    rc = engine_new(s->m, &ep, &s->e, err, cap);
  }
  if (rc) {
    engine_free(s->e);
    tok_free(s->t);
    model_free(s->m);
    s->e = NULL;
    s->t = NULL;
    s->m = NULL;
    return rc;
  }
  snprintf(s->loaded, sizeof s->loaded, "%s", path);
  return 0;
}

/* Ends a job with an error that is the request's fault (bad grammar, a template refusing
 * the conversation). */
static void fail_request(local_job *j, const char *why) {
  pthread_mutex_lock(&j->mu);
  j->result.kind = LOCAL_E_REQUEST;
  pthread_mutex_unlock(&j->mu);
  finish(j, LOCAL_ERROR, 0, 0, why);
}

/* The text of token id, for a template's bos_token / eos_token ("" when none). */
static void token_text(const tok *t, int32_t id, char *out, size_t cap) {
  size_t len = 0;
  const char *p = id >= 0 ? tok_text(t, id, &len) : NULL;
  if (!p || len >= cap) len = 0;
  if (len) memcpy(out, p, len);
  out[len] = 0;
}

/* Whether a template text mentions s (it then handles those messages or fields itself). */
static int mentions(gguf_str tmpl, const char *s) { return tmpl.len && memmem(tmpl.ptr, (size_t)tmpl.len, s, strlen(s)); }

/* Tokenizes a chat request: rendered with the model's own template when it has one (and
 * the template takes what the request holds: tools, tool calls, tool results), else with
 * the detected family's format; tools and tool turns the template does not know are laid
 * out as plain turns (llm/toolcall). Returns the token count with *ids owned, or <0 with err
 * (a template that refuses the conversation: its own message). Worker thread. */
static int chat_ids(local_svc *s, const local_req *r, int32_t **ids, chat_format *fmt_out, toolcall_format *tf_out,
                    char *err, size_t cap) {
  gguf_str tmpl = {"", 0};
  gguf_get_str(s->m->gguf, "tokenizer.chat_template", &tmpl);
  int known;
  *fmt_out = chat_detect_len(tmpl.ptr, (size_t)tmpl.len, &known);
  *tf_out = toolcall_detect(tmpl.ptr, (size_t)tmpl.len);
  const json_t *tools = strcmp(r->tool_choice, "none") ? r->tools : NULL;
  int has_tool_turns = 0;
  size_t i;
  json_t *m;
  json_array_foreach(r->messages, i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    if ((role && !strcmp(role, "tool")) || json_object_get(m, "tool_calls")) has_tool_turns = 1;
  }
  json_t *msgs = json_incref(r->messages), *flat = NULL;
  if ((tools && !mentions(tmpl, "tools")) || (has_tool_turns && !mentions(tmpl, "tool"))) {
    if (toolcall_flatten(r->messages, tools, &flat)) {
      json_decref(msgs);
      return err_set(err, cap, ERR_NOMEM, "out of memory");
    }
    json_decref(msgs);
    msgs = flat;
    tools = NULL;
  }
  chat_prompt cp;
  chat_prompt_init(&cp);
  int rc = -1;
  if (tmpl.len) {
    char bos[64], eos[64];
    token_text(s->t, tok_bos(s->t), bos, sizeof bos);
    token_text(s->t, tok_eos(s->t), eos, sizeof eos);
    rc = chat_render_jinja(tmpl.ptr, (size_t)tmpl.len, msgs, tools, 1, bos, eos, &cp, err, cap);
    jinja_tmpl *jt = NULL;
    char perr[128];
    if (rc == ERR_FORMAT && jinja_parse(tmpl.ptr, (size_t)tmpl.len, &jt, perr, sizeof perr) == 0) {
      jinja_free(jt); /* the template runs but refused this conversation (raise_exception): its message */
      chat_prompt_deinit(&cp);
      json_decref(msgs);
      return rc;
    }
    if (rc) rc = -1; /* a template apiary cannot run: the detected family's format instead */
  }
  if (rc) {
    if (!flat && toolcall_flatten(r->messages, tools, &flat) == 0) {
      json_decref(msgs);
      msgs = flat;
    }
    chat_msg cm[LOCAL_MAX_MESSAGES + 1];
    size_t k = 0;
    json_array_foreach(msgs, i, m) {
      if (k == LOCAL_MAX_MESSAGES + 1) break;
      const char *c = json_string_value(json_object_get(m, "content"));
      cm[k++] = (chat_msg){json_string_value(json_object_get(m, "role")), c ? c : ""};
    }
    rc = chat_apply(*fmt_out, cm, k, 1, &cp);
    if (rc) err_set(err, cap, rc, "cannot lay out the conversation");
  }
  int n = rc ? rc : chat_tokenize(s->t, &cp, ids);
  if (n < 0 && !rc) err_set(err, cap, n, "cannot tokenize the conversation");
  chat_prompt_deinit(&cp);
  json_decref(msgs);
  return n;
}

/* The grammar a request's output must follow: its own (response_format, grammar) or, with a
 * required or named tool choice, the model's call layout. 0 with *gm NULL when free. */
static int grammar_of(local_svc *s, const local_req *r, toolcall_format tf, grammar **g, grammar_matcher **gm, char *err,
                      size_t cap) {
  *g = NULL;
  *gm = NULL;
  char *tools_gbnf = NULL;
  int rc = 0;
  if (r->tools && r->messages &&
      (rc = toolcall_grammar(tf, r->tools, r->tool_choice, r->parallel_tools, &tools_gbnf, err, cap)))
    return rc;
  const char *text = tools_gbnf ? tools_gbnf : r->grammar;
  if (!text) return 0;
  if (!s->gv && (rc = grammar_vocab_from_tok(s->t, &s->gv))) {
    free(tools_gbnf);
    return err_set(err, cap, rc, "cannot prepare the vocabulary for grammars: %s", err_str(rc));
  }
  rc = grammar_parse(text, strlen(text), "root", g, err, cap);
  free(tools_gbnf);
  if (!rc) rc = grammar_matcher_new(*g, s->gv, gm);
  if (rc) {
    grammar_free(*g);
    *g = NULL;
    if (rc == ERR_NOMEM) return rc;
    char why[512];
    snprintf(why, sizeof why, "%s", err);
    return err_set(err, cap, ERR_INVAL, "bad grammar: %s", why);
  }
  return 0;
}

/* echo_logprobs: each prompt token's log-probability given those before it, from the
 * prompt evaluated one position at a time (a batch's logits are only the last position's;
 * one by one gives the same numbers, see engine.h). A leading BOS is not text and is not
 * reported; without one the first token has no logprob. 0 or an engine error. */
static int echo_logprobs(local_svc *s, local_job *j, const int32_t *ids, int n, float *raw) {
  int nv = s->m->hp.n_vocab, rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    if (atomic_load(&j->canceled)) return ERR_CANCELED;
    if (i > 0 || ids[0] != tok_bos(s->t)) {
      pthread_mutex_lock(&j->mu);
      rc = logprob_log_add(&j->lp, s->t, i ? raw : NULL, nv, i ? logprob_lse(raw, nv) : 0, ids[i], 1);
      lp_release(j);
      pthread_mutex_unlock(&j->mu);
      if (j->req.notify) j->req.notify(j->req.notify_ud);
    }
    if (!rc && i + 1 < n) rc = engine_eval(s->e, &ids[i], 1, i, raw);
  }
  return rc;
}

/* Ends a job with an error of the given kind. */
static void fail_kind(local_job *j, local_error_kind kind, int pt, const char *why) {
  pthread_mutex_lock(&j->mu);
  j->result.kind = kind;
  pthread_mutex_unlock(&j->mu);
  finish(j, LOCAL_ERROR, pt, 0, why);
}

/* An input's token ids: text tokenized (BOS and EOS as the model asks) or ids checked
 * against the vocabulary, into ids[0..cap). Returns the count (may exceed cap: too long)
 * or <0 with err. */
static int embed_ids(local_svc *s, const local_embed_in *in, int idx, int32_t *ids, int cap, char *err,
                     size_t err_cap) {
  if (!in->text) {
    for (int i = 0; i < in->n_ids; i++)
      if (in->ids[i] < 0 || in->ids[i] >= s->m->hp.n_vocab)
        return err_set(err, err_cap, ERR_INVAL, "input %d: token id %d is outside the vocabulary (0..%d)", idx,
                       (int)in->ids[i], s->m->hp.n_vocab - 1);
    if (in->n_ids <= cap) memcpy(ids, in->ids, (size_t)in->n_ids * sizeof *ids);
    return in->n_ids;
  }
  int eos = tok_add_eos(s->t) && tok_eos(s->t) >= 0;
  int n = tok_encode(s->t, in->text, in->text_len, tok_add_bos(s->t), 0, ids, (size_t)(cap > eos ? cap - eos : 0));
  if (n < 0) return err_set(err, err_cap, n, "input %d cannot be tokenized: %s", idx, err_str(n));
  if (eos && n + 1 <= cap) ids[n] = tok_eos(s->t);
  n += eos;
  if (n == 0) return err_set(err, err_cap, ERR_INVAL, "input %d has no tokens", idx);
  return n;
}

/* An embeddings job: one pooled, normalized vector per input. Worker thread. */
static void run_embed_job(local_svc *s, local_job *j) {
  char err[320] = "";
  const local_req *r = &j->req;
  int dim = engine_n_embd(s->e), n_ctx = engine_n_ctx(s->e), total = 0;
  local_error_kind kind = LOCAL_E_REQUEST;
  int32_t *ids = NULL;
  float *out = NULL;
  engine_pooling pool;
  if (engine_embd_pooling(s->m, &pool, err, sizeof err)) goto fail;
  if (r->embed_dims && r->embed_dims != dim) {
    snprintf(err, sizeof err, "'dimensions' is %d, but this model's embeddings have %d (they cannot be shortened)",
             r->embed_dims, dim);
    goto fail;
  }
  /* one buffer of n_ctx + 1 ids (one more shows an input that is too long) */
  ids = malloc((size_t)(n_ctx + 1) * sizeof *ids);
  out = malloc((size_t)r->n_embed * (size_t)dim * sizeof *out);
  if (!ids || !out) {
    kind = LOCAL_E_INTERNAL;
    snprintf(err, sizeof err, "out of memory");
    goto fail;
  }
  engine_cancel_reset(s->e);
  for (int i = 0; i < r->n_embed; i++) {
    if (atomic_load(&j->canceled)) {
      free(ids);
      free(out);
      finish(j, LOCAL_CANCELED, total, 0, NULL);
      return;
    }
    int n = embed_ids(s, &r->embed[i], i, ids, n_ctx + 1, err, sizeof err);
    if (n < 0) goto fail;
    total += n;
    if (n > n_ctx) {
      kind = LOCAL_E_CONTEXT;
      snprintf(err, sizeof err, "input %d has %d tokens; this node's context holds %d", i, n, n_ctx);
      goto fail;
    }
    float *v = out + (size_t)i * dim;
    int rc = engine_embed(s->e, ids, n, pool, v);
    if (rc) {
      kind = LOCAL_E_INTERNAL;
      snprintf(err, sizeof err, "embedding failed: %s", err_str(rc));
      goto fail;
    }
    engine_embd_normalize(v, dim);
    pthread_mutex_lock(&j->mu);
    j->prompt_tokens = total;
    pthread_mutex_unlock(&j->mu);
  }
  free(ids);
  pthread_mutex_lock(&j->mu);
  j->embd = out;
  j->embd_dim = dim;
  pthread_mutex_unlock(&j->mu);
  finish(j, LOCAL_STOP, total, 0, NULL);
  return;
fail:
  free(ids);
  free(out);
  fail_kind(j, kind, total, err);
}

static void run_job(local_svc *s, local_job *j) {
  char err[256] = "";
  if (atomic_load(&j->canceled)) { finish(j, LOCAL_CANCELED, 0, 0, NULL); return; }
  int rc = ensure_model(s, j->req.model_path, err, sizeof err);
  if (rc) {
    char msg[320];
    snprintf(msg, sizeof msg, "cannot load the model: %s", err[0] ? err : err_str(rc));
    finish(j, LOCAL_ERROR, 0, 0, msg);
    return;
  }
  if (j->req.n_embed > 0) {
    run_embed_job(s, j);
    return;
  }
  int32_t *ids = NULL;
  int n;
  const char *chat_stops[CHAT_MAX_STOP];
  int n_chat_stops = 0;
  toolcall_format tf = TOOLCALL_HERMES;
  if (j->req.messages) {
    chat_format fmt;
    n = chat_ids(s, &j->req, &ids, &fmt, &tf, err, sizeof err);
    if (n < 0) {
      free(ids);
      fail_request(j, err);
      return;
    }
    const char *const *stops;
    int k = chat_stop_strings(fmt, &stops);
    for (int i = 0; i < k && i < CHAT_MAX_STOP; i++) chat_stops[n_chat_stops++] = stops[i];
  } else {
    int bos = j->req.add_bos < 0 ? tok_add_bos(s->t) : j->req.add_bos;
    n = tok_encode(s->t, j->req.prompt, j->req.prompt_len, bos, j->req.parse_special, NULL, 0);
    ids = n > 0 ? malloc((size_t)n * sizeof *ids) : NULL;
    if (ids && tok_encode(s->t, j->req.prompt, j->req.prompt_len, bos, j->req.parse_special, ids, (size_t)n) != n) n = -1;
  }
  if (n <= 0 || !ids) {
    free(ids);
    finish(j, LOCAL_ERROR, 0, 0, n == 0 ? "the prompt is empty" : "cannot format or tokenize the prompt");
    return;
  }
  if (j->req.n_cont > 0) { /* failover: resume after the tokens another node generated */
    int32_t *all = realloc(ids, (size_t)(n + j->req.n_cont) * sizeof *ids);
    if (!all) {
      free(ids);
      finish(j, LOCAL_ERROR, 0, 0, "out of memory");
      return;
    }
    ids = all;
    for (int i = 0; i < j->req.n_cont; i++) {
      if (j->req.cont_ids[i] < 0 || j->req.cont_ids[i] >= s->m->hp.n_vocab) {
        free(ids);
        finish(j, LOCAL_ERROR, 0, 0, "continuation token id out of the vocabulary");
        return;
      }
      ids[n + i] = j->req.cont_ids[i];
    }
    n += j->req.n_cont;
  }
  pthread_mutex_lock(&j->mu);
  j->prompt_tokens = n;
  pthread_mutex_unlock(&j->mu);
  if (n >= engine_n_ctx(s->e)) {
    free(ids);
    snprintf(err, sizeof err, "the prompt has %d tokens; this node's context holds %d", n, engine_n_ctx(s->e));
    pthread_mutex_lock(&j->mu);
    j->result.kind = LOCAL_E_CONTEXT;
    pthread_mutex_unlock(&j->mu);
    finish(j, LOCAL_ERROR, n, 0, err);
    return;
  }
  grammar *g = NULL;
  grammar_matcher *gm = NULL;
  if ((rc = grammar_of(s, &j->req, tf, &g, &gm, err, sizeof err))) {
    free(ids);
    if (rc == ERR_NOMEM) finish(j, LOCAL_ERROR, n, 0, "out of memory");
    else fail_request(j, err);
    return;
  }
  for (int i = 0; gm && i < j->req.n_cont; i++) /* a resumed answer already went this far */
    if (grammar_matcher_accept(gm, j->req.cont_ids[i])) {
      free(ids);
      grammar_matcher_free(gm);
      grammar_free(g);
      fail_request(j, "the continued tokens do not fit the grammar");
      return;
    }
  sampler *smp = NULL;
  if ((rc = sample_new(s->m->hp.n_vocab, &j->req.sp, &smp))) {
    free(ids);
    grammar_matcher_free(gm);
    grammar_free(g);
    finish(j, LOCAL_ERROR, n, 0, "bad sampling parameters");
    return;
  }
  engine_gen_params gp = engine_default_gen_params();
  gp.max_tokens = j->req.max_tokens;
  gp.n_stop = 0;
  for (int i = 0; i < j->req.n_stop && gp.n_stop < ENGINE_MAX_STOP; i++) gp.stop[gp.n_stop++] = j->req.stop[i];
  for (int i = 0; i < n_chat_stops && gp.n_stop < ENGINE_MAX_STOP; i++) gp.stop[gp.n_stop++] = chat_stops[i];
  gp.n_resume = j->req.n_cont; /* their held-back text comes out first (engine.h) */
  gp.resume_sent = j->req.cont_bytes;
  gp.grammar = gm;
  engine_gen_stats st;
  memset(&st, 0, sizeof st);
  engine_cancel_reset(s->e);
  gen_state gs = {j, mono_s(), atomic_load(&s->max_tps), s->t, NULL, s->m->hp.n_vocab};
  if (j->req.logprobs) { /* every store sized now: the token loop does not allocate */
    int echo = j->req.echo_logprobs;
    pthread_mutex_lock(&j->mu);
    rc = logprob_log_init(&j->lp, j->req.max_tokens + (echo ? n : 0) + 1, j->req.top_logprobs);
    pthread_mutex_unlock(&j->mu);
    gs.raw = rc ? NULL : malloc((size_t)gs.n_vocab * sizeof *gs.raw);
    if (!rc && !gs.raw) rc = ERR_NOMEM;
    if (!rc && echo) rc = echo_logprobs(s, j, ids, n, gs.raw);
    gp.on_logits = on_logits;
  }
  if (!rc) rc = engine_generate(s->e, s->t, smp, ids, n, &gp, on_token, &gs, &st);
  free(gs.raw);
  pthread_mutex_lock(&j->mu);
  if (st.stop == ENGINE_STOP_STRING) j->lp.n = j->lp_released; /* tokens of the stop string: cut with their text */
  else lp_release(j);
  pthread_mutex_unlock(&j->mu);
  sample_free(smp);
  grammar_matcher_free(gm);
  grammar_free(g);
  free(ids);
  if (rc && rc != ERR_CANCELED) {
    snprintf(err, sizeof err, "generation failed: %s", err_str(rc));
    finish(j, LOCAL_ERROR, n, st.n_gen, err);
    return;
  }
  local_finish f = atomic_load(&j->canceled) ? LOCAL_CANCELED
                   : (st.stop == ENGINE_STOP_MAX_TOKENS || st.stop == ENGINE_STOP_CTX) ? LOCAL_LENGTH
                                                                                      : LOCAL_STOP;
  finish(j, f, n, st.n_gen, NULL);
}

static void *worker(void *arg) {
  local_svc *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stopping) pthread_cond_wait(&s->cv, &s->mu);
    local_job *j = s->head;
    if (j) {
      s->head = j->next;
      if (!s->head) s->tail = NULL;
    }
    int stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (!j) break;
    if (stop) finish(j, LOCAL_CANCELED, 0, 0, "the node is stopping");
    else run_job(s, j);
    job_unref(j);
  }
  grammar_vocab_free(s->gv);
  engine_free(s->e);
  tok_free(s->t);
  model_free(s->m);
  return NULL;
}

int local_svc_new(int n_threads, int n_ctx, local_svc **out) {
  local_svc *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  s->n_threads = n_threads;
  s->n_ctx = n_ctx;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  if (pthread_create(&s->worker, NULL, worker, s)) {
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return ERR_NOMEM;
  }
  *out = s;
  return 0;
}

void local_svc_free(local_svc *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  for (local_job *j = s->head; j; j = j->next) atomic_store(&j->canceled, 1);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->worker, NULL);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  free(s);
}

int local_submit(local_svc *s, local_req *req, local_job **out) {
  local_job *j = calloc(1, sizeof *j);
  if (!j) return ERR_NOMEM;
  j->svc = s;
  j->req = *req;
  memset(req, 0, sizeof *req); /* taken */
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  buf_init(&j->text);
  j->refs = 2;
  j->allowance = -1;
  pthread_mutex_lock(&s->mu);
  if (s->stopping) {
    pthread_mutex_unlock(&s->mu);
    j->refs = 1;
    finish(j, LOCAL_CANCELED, 0, 0, "the node is stopping");
  } else {
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
  }
  *out = j;
  return 0;
}

static void deadline_in(struct timespec *ts, int ms) {
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

int local_job_read(local_job *j, char *out, size_t cap, int timeout_ms) {
  struct timespec dl;
  deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&j->mu);
  while (j->read_pos == j->text.len && j->result.finish == LOCAL_RUNNING)
    if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT) break;
  int rc;
  if (j->read_pos < j->text.len) {
    size_t n = j->text.len - j->read_pos;
    if (n > cap) n = cap;
    memcpy(out, j->text.ptr + j->read_pos, n);
    j->read_pos += n;
    rc = (int)n;
  } else if (j->result.finish != LOCAL_RUNNING) {
    rc = j->result.finish == LOCAL_ERROR ? ERR_INVAL : 0;
  } else {
    rc = -ETIMEDOUT;
  }
  pthread_mutex_unlock(&j->mu);
  return rc;
}

int local_job_wait(local_job *j, int timeout_ms, local_result *r) {
  struct timespec dl;
  deadline_in(&dl, timeout_ms);
  pthread_mutex_lock(&j->mu);
  int rc = 0;
  while (j->result.finish == LOCAL_RUNNING)
    if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT) { rc = -ETIMEDOUT; break; }
  if (r) *r = j->result;
  pthread_mutex_unlock(&j->mu);
  return rc;
}

/* A queued job is skipped; a running one stops at its next token (on_token). */
void local_job_cancel(local_job *j) {
  atomic_store(&j->canceled, 1);
  pthread_mutex_lock(&j->mu);
  pthread_cond_broadcast(&j->cv); /* wakes a worker waiting for credit */
  pthread_mutex_unlock(&j->mu);
}

void local_job_release(local_job *j) {
  if (j) job_unref(j);
}

int local_job_read_logprobs(local_job *j, logprob_rec *out, int cap, buf *bytes) {
  pthread_mutex_lock(&j->mu);
  int n = 0;
  while (n < cap && j->lp_read + n < j->lp_released && j->lp.recs[j->lp_read + n].text_end <= j->read_pos) n++;
  int rc = n ? logprob_log_copy(&j->lp, j->lp_read, n, out, bytes) : 0;
  if (!rc) j->lp_read += n;
  pthread_mutex_unlock(&j->mu);
  return rc ? rc : n;
}

int local_job_embeddings(local_job *j, const float **out, int *dim) {
  pthread_mutex_lock(&j->mu);
  int n = j->embd && j->result.finish == LOCAL_STOP ? j->req.n_embed : 0;
  *out = n ? j->embd : NULL;
  *dim = n ? j->embd_dim : 0;
  pthread_mutex_unlock(&j->mu);
  return n;
}

int local_job_read_ids(local_job *j, int32_t *out, int cap) {
  pthread_mutex_lock(&j->mu);
  int n = j->n_ids - j->ids_read;
  if (n > cap) n = cap;
  if (n > 0) memcpy(out, j->ids + j->ids_read, (size_t)n * sizeof *out);
  j->ids_read += n > 0 ? n : 0;
  pthread_mutex_unlock(&j->mu);
  return n > 0 ? n : 0;
}

void local_job_progress(local_job *j, int *prompt_tokens, int *gen_tokens) {
  pthread_mutex_lock(&j->mu);
  if (prompt_tokens) *prompt_tokens = j->prompt_tokens;
  if (gen_tokens) *gen_tokens = j->n_ids;
  pthread_mutex_unlock(&j->mu);
}

void local_job_allow(local_job *j, int64_t tokens) {
  pthread_mutex_lock(&j->mu);
  j->allowance = tokens;
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

int local_job_waiting_credit(local_job *j) {
  pthread_mutex_lock(&j->mu);
  int w = j->waiting_credit;
  pthread_mutex_unlock(&j->mu);
  return w;
}

int local_job_done(local_job *j) {
  pthread_mutex_lock(&j->mu);
  int d = j->result.finish != LOCAL_RUNNING;
  pthread_mutex_unlock(&j->mu);
  return d;
}

void local_svc_set_max_tps(local_svc *s, double tps) { atomic_store(&s->max_tps, tps > 0 ? tps : 0); }
