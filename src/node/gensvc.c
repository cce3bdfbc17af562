/* node/gensvc — remote generation over links; see gensvc.h. */
#include "node/gensvc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "llm/mstore.h"

#define POLL_MS 20
#define MAX_JOBS 64

typedef struct serving {
  rpc *r;               /* the link's RPC endpoint (NULL once the link is gone) */
  uint64_t handle;      /* the request being answered */
  local_job *job;
} serving;

struct gensvc {
  uv_timer_t timer;
  netsvc *ns;
  local_svc *local;
  const char *models_dir;
  serving jobs[MAX_JOBS];
  int closing;
};

/* ---- provider ------------------------------------------------------------------------ */

static void end_job(serving *s) {
  local_job_cancel(s->job);
  local_job_release(s->job);
  memset(s, 0, sizeof *s);
}

static void m_generate(void *ud, rpc *r, const rpc_request *req) {
  gensvc *g = ud;
  const char *model = json_string_value(json_object_get(req->params, "model"));
  const char *prompt = json_string_value(json_object_get(req->params, "prompt"));
  if (!model || strlen(model) != 64 || !prompt || !*prompt || strlen(prompt) > LOCAL_MAX_PROMPT) {
    rpc_respond_error(r, req->handle, RPC_INVALID_PARAMS, "need model (sha256 hex) and a non-empty prompt", NULL);
    return;
  }
  mstore_model m;
  char err[512];
  if (mstore_resolve(g->models_dir, model, &m, err, sizeof err)) {
    rpc_respond_error(r, req->handle, -32010, "this node does not serve that model", NULL);
    return;
  }
  serving *slot = NULL;
  for (int i = 0; i < MAX_JOBS && !slot; i++)
    if (!g->jobs[i].job) slot = &g->jobs[i];
  if (!slot) {
    rpc_respond_error(r, req->handle, RPC_BUSY, "too many generations in progress", NULL);
    return;
  }
  local_req lr;
  memset(&lr, 0, sizeof lr);
  snprintf(lr.model_path, sizeof lr.model_path, "%s", m.path);
  lr.prompt = strdup(prompt);
  lr.prompt_len = strlen(prompt);
  lr.add_bos = -1;
  lr.sp = sample_default_params();
  lr.sp.temp = 0.8f;
  json_t *v;
  if ((v = json_object_get(req->params, "temperature")) && json_is_number(v)) lr.sp.temp = (float)json_number_value(v);
  if ((v = json_object_get(req->params, "seed")) && json_is_integer(v)) lr.sp.seed = (uint64_t)json_integer_value(v);
  lr.max_tokens = 128;
  if ((v = json_object_get(req->params, "max_tokens")) && json_is_integer(v) && json_integer_value(v) > 0 &&
      json_integer_value(v) <= 8192)
    lr.max_tokens = (int)json_integer_value(v);
  if (!lr.prompt || local_submit(g->local, &lr, &slot->job)) {
    free(lr.prompt);
    rpc_respond_error(r, req->handle, RPC_INTERNAL_ERROR, "cannot queue the generation", NULL);
    return;
  }
  slot->r = r;
  slot->handle = req->handle;
}

/* Moves new text from the worker to the links; finishes jobs that are done. */
static void on_poll(uv_timer_t *t) {
  gensvc *g = t->data;
  char text[4096];
  for (int i = 0; i < MAX_JOBS; i++) {
    serving *s = &g->jobs[i];
    if (!s->job) continue;
    int n;
    while ((n = local_job_read(s->job, text, sizeof text, 0)) > 0) {
      json_t *d = json_pack("{s:s%}", "text", text, (size_t)n);
      int rc = rpc_stream(s->r, s->handle, d, NULL, 0);
      json_decref(d);
      if (rc) break; /* canceled by the caller, or the link is full: stop */
    }
    if (n == -ETIMEDOUT) continue; /* still generating */
    local_result res;
    local_job_wait(s->job, 0, &res);
    if (n > 0) { /* the stream was refused */
      end_job(s);
      continue;
    }
    if (res.finish == LOCAL_ERROR) {
      rpc_respond_error(s->r, s->handle, RPC_INTERNAL_ERROR, res.error, NULL);
    } else {
      json_t *done = json_pack("{s:s, s:i, s:i}", "finish", res.finish == LOCAL_LENGTH ? "length" : "stop",
                               "prompt_tokens", res.prompt_tokens, "completion_tokens", res.completion_tokens);
      rpc_respond(s->r, s->handle, done, NULL, 0);
      json_decref(done);
    }
    end_job(s);
  }
}

static void on_rpc_closed(void *ud, rpc *r) {
  gensvc *g = ud;
  for (int i = 0; i < MAX_JOBS; i++)
    if (g->jobs[i].job && g->jobs[i].r == r) end_job(&g->jobs[i]);
}

/* ---- client: ask ---------------------------------------------------------------------- */

typedef struct ask_ctx {
  ctl_req *req;
  buf text;
  char node_id[IDENT_ID_BUF];
} ask_ctx;

static void on_ask_reply(void *ud, const rpc_reply *reply) {
  ask_ctx *a = ud;
  if (reply->kind == RPC_REPLY_STREAM) {
    const char *t = json_string_value(json_object_get(reply->result, "text"));
    if (t) buf_append(&a->text, t, json_string_length(json_object_get(reply->result, "text")));
    return;
  }
  if (reply->kind == RPC_REPLY_RESULT) {
    json_t *r = json_pack("{s:s, s:s%, s:O?, s:O?, s:O?}", "node_id", a->node_id, "text",
                          a->text.ptr ? (const char *)a->text.ptr : "", a->text.len, "finish",
                          json_object_get(reply->result, "finish"), "prompt_tokens",
                          json_object_get(reply->result, "prompt_tokens"), "completion_tokens",
                          json_object_get(reply->result, "completion_tokens"));
    ctl_reply_ok(a->req, r);
  } else {
    ctl_reply_err(a->req, CTL_FAILED, "%s: %s", a->node_id, reply->message ? reply->message : "failed");
  }
  buf_deinit(&a->text);
  free(a);
}

static void m_ask(ctl_req *req, json_t *params, void *ud) {
  gensvc *g = ud;
  const char *node = json_string_value(json_object_get(params, "node_id"));
  const char *model = json_string_value(json_object_get(params, "model"));
  const char *prompt = json_string_value(json_object_get(params, "prompt"));
  uint8_t pk[32];
  if (!node || ident_id_decode(node, strlen(node), pk)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need --node NODE_ID (choosing a provider from the DHT comes with the market layer)");
    return;
  }
  if (!model || !prompt || !*prompt) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "need a model and a prompt");
    return;
  }
  /* The model's sha256: from our store, the catalog, or given as 64 hex digits. */
  char sha[65] = "";
  mstore_model m;
  char err[512];
  const mstore_catalog_entry *e;
  uint8_t raw[32];
  if (mstore_resolve(g->models_dir, model, &m, err, sizeof err) == 0 && m.sha256[0]) snprintf(sha, sizeof sha, "%s", m.sha256);
  else if ((e = mstore_catalog_find(model))) snprintf(sha, sizeof sha, "%s", e->sha256);
  else if (strlen(model) == 64 && hex_decode(model, 64, raw, 32) == 0) snprintf(sha, sizeof sha, "%s", model);
  if (!sha[0]) {
    ctl_reply_err(req, CTL_FAILED, "unknown model '%s': give a catalog name, a model in the store or a sha256", model);
    return;
  }
  ask_ctx *a = calloc(1, sizeof *a);
  if (!a) { ctl_reply_err(req, CTL_INTERNAL, "out of memory"); return; }
  a->req = req;
  buf_init(&a->text);
  ident_id_encode(pk, a->node_id);
  json_t *p = json_pack("{s:s, s:s}", "model", sha, "prompt", prompt);
  json_t *v;
  if ((v = json_object_get(params, "max_tokens"))) json_object_set(p, "max_tokens", v);
  if ((v = json_object_get(params, "temperature"))) json_object_set(p, "temperature", v);
  if ((v = json_object_get(params, "seed"))) json_object_set(p, "seed", v);
  int rc = netsvc_call(g->ns, pk, "generate", p, 300000, on_ask_reply, a);
  if (rc) {
    ctl_reply_err(req, CTL_FAILED, "cannot reach %s: %s", a->node_id, err_str(rc));
    buf_deinit(&a->text);
    free(a);
  }
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int gensvc_start(uv_loop_t *loop, netsvc *ns, ctl_server *ctl, local_svc *local, const char *models_dir,
                 gensvc **out) {
  gensvc *g = calloc(1, sizeof *g);
  if (!g) return ERR_NOMEM;
  g->ns = ns;
  g->local = local;
  g->models_dir = models_dir;
  rpc_method gm = {"generate", RPC_PARAMS_OBJECT, m_generate, g};
  int rc = netsvc_register(ns, &gm);
  if (!rc) rc = netsvc_on_rpc_closed(ns, on_rpc_closed, g);
  if (!rc) rc = ctl_server_add(ctl, "ask", m_ask, g);
  if (rc) { free(g); return rc; }
  uv_timer_init(loop, &g->timer);
  g->timer.data = g;
  uv_timer_start(&g->timer, on_poll, POLL_MS, POLL_MS);
  *out = g;
  return 0;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void gensvc_stop(gensvc *g) {
  if (!g || g->closing) return;
  g->closing = 1;
  for (int i = 0; i < MAX_JOBS; i++)
    if (g->jobs[i].job) end_job(&g->jobs[i]);
  uv_close((uv_handle_t *)&g->timer, on_closed);
}
