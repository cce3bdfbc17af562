/* http/completions — POST /v1/completions served from the node's own models.
 *
 * Request fields (OpenAI's): model, prompt (a string or a one-string array), max_tokens
 * (default 16, as OpenAI), temperature (1.0), top_p (1.0), presence_penalty,
 * frequency_penalty, seed, stop (a string or up to 4), stream, stream_options.include_usage,
 * n, logprobs (0..5) and echo. POST /v1/chat/completions takes "messages" instead of
 * "prompt" (and logprobs true/false with top_logprobs 0..20) and answers in the
 * chat.completion shapes; max_tokens defaults to 256. Several choices (n, a prompt array)
 * are generated one after another, streamed each with its own index and finish chunk.
 * Responses carry the serving node's id and the cost (0 wei: local) in headers and in an
 * "apiary" object. Streams are server-sent events ending with "data: [DONE]". */
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "http/logprobs.h"
#include "http/openai.h"
#include "http/reqparse.h"
#include "llm/mstore.h"
#include "llm/toolcall.h"

#define STREAM_WAIT_MS 15000     /* a keepalive comment goes out after this much silence */
#define FULL_WAIT_MS (30 * 60 * 1000)
#define GONE_CHECK_MS 250        /* how often a waiting request looks whether its client left */

typedef struct stream_ctx {
  struct MHD_Connection *conn;
  gen_stream *src;       /* local or bought: market/gen (watched: its news resumes conn) */
  uint64_t last_out_ms;  /* when bytes last went out (a keepalive after STREAM_WAIT_MS) */
  http_log *lg;          /* the request's log line (lives until the request completes) */
  char id[40];
  char model[128];
  char node_id[64];
  long long created;
  int include_usage;
  int chat;              /* chat.completion.chunk shape */
  int sent_role;
  buf out;               /* bytes ready for MHD */
  size_t out_pos;
  int state;             /* 0 streaming, 1 final chunk queued, 2 [DONE] queued, 3 end */
  int tools;             /* tools were offered: calls are read out of the text */
  int mode;              /* with tools: 0 not known yet, 1 plain text (streamed), 2 calls (held to the end) */
  buf held;              /* text held back while it may be calls */
  int logprobs;          /* the chunks carry logprobs */
  http_lp lp;            /* the streamed choice's records not sent yet */
  char *prompt;          /* completions: the streamed choice's prompt (owned), for echo and text_offset */
  size_t prompt_len;
  int echo, echo_sent;   /* echo: the prompt goes out before the choice's first text */
  /* several choices: the ones after the first, submitted in turn when one ends */
  gen *gen;
  char asked[256];       /* the model as the client named it */
  local_req *queue;      /* [n_queue]: owned until submitted */
  char **queue_prompt;   /* [n_queue]: their prompts (owned) */
  int n_queue, next;
  int index;             /* the choice being streamed */
  int per_prompt;        /* n: a prompt's tokens count once per n choices */
  int pt, ct;            /* usage so far */
  uint64_t cost;         /* paid so far (bought choices) */
} stream_ctx;

static const char *finish_name(local_finish f) {
  return f == LOCAL_LENGTH ? "length" : "stop";
}

static void new_id(char *out, size_t cap, const char *prefix) {
  uint8_t r[12];
  randombytes_buf(r, sizeof r);
  int n = snprintf(out, cap, "%s", prefix);
  for (size_t i = 0; i < sizeof r && (size_t)n + 2 < cap; i++) n += snprintf(out + n, cap - (size_t)n, "%02x", r[i]);
}

/* OpenAI's tool_calls from toolcall_parse's calls (taken): each with a new id and its
 * arguments as JSON text; index numbers them (for stream deltas). */
static json_t *openai_calls(json_t *calls, int with_index) {
  json_t *out = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(calls, i, c) {
    char id[40], *args = json_dumps(json_object_get(c, "arguments"), JSON_COMPACT);
    new_id(id, sizeof id, "call_");
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", id, "type", "function", "function", "name",
                          json_string_value(json_object_get(c, "name")), "arguments", args ? args : "{}");
    free(args);
    if (with_index) json_object_set_new(o, "index", json_integer((json_int_t)i));
    json_array_append_new(out, o);
  }
  json_decref(calls);
  return out;
}

/* The assistant message of a whole chat answer. With tools offered, calls in the text become
 * tool_calls (and *finish "tool_calls"); the rest stays content (null when empty). */
static json_t *chat_message(const char *text, size_t len, int tools, const char **finish) {
  json_t *calls = NULL;
  char *content = NULL;
  if (tools) toolcall_parse(text, len, &calls, &content);
  json_t *m = json_pack("{s:s}", "role", "assistant");
  if (calls) {
    json_object_set_new(m, "content", content ? json_string(content) : json_null());
    json_object_set_new(m, "tool_calls", openai_calls(calls, 0));
    *finish = "tool_calls";
  } else {
    json_object_set_new(m, "content", json_stringn(text, len));
  }
  free(content);
  return m;
}

static void add_headers(struct MHD_Response *r, const char *node_id, const char *cost) {
  MHD_add_response_header(r, "X-Apiary-Node", node_id);
  if (cost) MHD_add_response_header(r, "X-Apiary-Cost-Wei", cost);
}

/* The "apiary" object of a response: who served it and what it cost. mr NULL = local. */
static json_t *apiary_info(const char *node_id, const mkt_result *mr) {
  if (!mr) return json_pack("{s:s, s:s, s:s}", "node", node_id, "cost_wei", "0", "served", "local");
  char cost[24];
  snprintf(cost, sizeof cost, "%llu", (unsigned long long)mr->cost_wei);
  json_t *prov = json_array();
  for (int i = 0; i < mr->n_providers; i++) json_array_append_new(prov, json_string(mr->providers[i]));
  return json_pack("{s:s, s:s, s:s, s:o, s:i}", "node", mr->node_id[0] ? mr->node_id : node_id, "cost_wei", cost,
                   "served", "network", "providers", prov, "failovers", mr->failovers);
}

static void queue_event(stream_ctx *s, json_t *j) {
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!text) return;
  buf_printf(&s->out, "data: %s\n\n", text);
  free(text);
}

static json_t *chunk_calls(stream_ctx *s, const char *text, size_t len, json_t *calls, const char *finish);
static json_t *chunk(stream_ctx *s, const char *text, size_t len, const char *finish) {
  return chunk_calls(s, text, len, NULL, finish);
}

/* A stream event: text (or none) and, for chat, tool_calls deltas (calls taken, may be NULL). */
static json_t *chunk_calls(stream_ctx *s, const char *text, size_t len, json_t *calls, const char *finish) {
  json_t *choice;
  if (gen_is_remote(s->src)) { /* the provider may change on failover */
    char now[MKT_NODE_ID_MAX];
    gen_node(s->src, now);
    if (now[0]) snprintf(s->node_id, sizeof s->node_id, "%s", now);
  }
  if (s->chat) {
    json_t *delta = json_object();
    if (!s->sent_role) {
      json_object_set_new(delta, "role", json_string("assistant"));
      s->sent_role = 1;
    }
    if (text) json_object_set_new(delta, "content", json_stringn(text, len));
    if (calls) json_object_set_new(delta, "tool_calls", calls);
    choice = json_pack("{s:i, s:o, s:s?}", "index", s->index, "delta", delta, "finish_reason", finish);
    if (!finish) json_object_set_new(choice, "finish_reason", json_null());
  } else {
    choice = json_pack("{s:i, s:s%, s:n, s:s?}", "index", s->index, "text", text ? text : "", text ? len : 0,
                       "logprobs", "finish_reason", finish);
    if (!finish) json_object_set_new(choice, "finish_reason", json_null());
  }
  if (s->logprobs) /* the tokens read since the last chunk */
    json_object_set_new(choice, "logprobs", http_lp_pending(&s->lp) ? http_lp_take(&s->lp) : json_null());
  json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", s->id, "object",
                   s->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)s->created, "model",
                   s->model, "choices", choice, "apiary",
                   gen_is_remote(s->src) ? json_pack("{s:s, s:s}", "node", s->node_id, "served", "network") /* cost: last event */
                             : apiary_info(s->node_id, NULL));
  if (c && s->include_usage) json_object_set_new(c, "usage", json_null()); /* the last chunk has it */
  return c;
}

/* With tools offered, whether streamed text so far may be the start of calls: 2 yes (hold
 * it), 1 no (plain text: stream it), 0 cannot tell yet. */
static int calls_ahead(const char *t, size_t len) {
  static const char *const openers[] = {"<tool_call>", "<|python_tag|>", "{", "["};
  size_t i = 0;
  while (i < len && (t[i] == ' ' || t[i] == '\n' || t[i] == '\t' || t[i] == '\r')) i++;
  if (i == len) return 0;
  for (size_t k = 0; k < sizeof openers / sizeof *openers; k++) {
    size_t n = strlen(openers[k]), m = len - i < n ? len - i : n;
    if (!memcmp(t + i, openers[k], m)) return m == n ? 2 : 0;
  }
  return 1;
}

/* Queues a text chunk, the prompt first when it is echoed and has not gone out yet. */
static void send_text(stream_ctx *s, const char *text, size_t len) {
  if (s->echo && !s->echo_sent) {
    s->echo_sent = 1;
    buf both;
    buf_init(&both);
    buf_append(&both, s->prompt, s->prompt_len);
    buf_append(&both, text, len);
    queue_event(s, chunk(s, both.ptr ? (const char *)both.ptr : "", both.len, NULL));
    buf_deinit(&both);
    return;
  }
  queue_event(s, chunk(s, text, len, NULL));
}

/* The next choice: submits queue[next] and resets the per-choice state. 0, or -1 with an
 * error event queued. */
static int start_next(stream_ctx *s) {
  http__gen_release(s->src);
  s->src = NULL;
  local_req *lr = &s->queue[s->next];
  free(s->prompt);
  s->prompt = s->queue_prompt[s->next];
  s->queue_prompt[s->next] = NULL;
  s->prompt_len = s->prompt ? strlen(s->prompt) : 0;
  s->next++;
  s->index++;
  s->sent_role = s->mode = s->echo_sent = 0;
  buf_reset(&s->held);
  http_lp_deinit(&s->lp);
  http_lp_init(&s->lp, s->logprobs, s->chat, s->echo ? 0 : (long)s->prompt_len,
               s->echo && s->prompt && s->prompt[0] != ' ');
  char name[128];
  gen_error ge;
  gen_request gr = {.model = s->asked};
  if (gen_submit(s->gen, &gr, lr, &s->src, name, sizeof name, &ge)) { /* takes lr */
    s->src = NULL;
    queue_event(s, json_pack("{s:{s:s, s:s, s:s}}", "error", "message", ge.message, "type",
                             ge.status < 500 ? "invalid_request_error" : "server_error", "code",
                             ge.code ? ge.code : "generation_failed"));
    return -1;
  }
  http__gen_watch(s->conn, s->src, 1);
  return 0;
}

/* Fills s->out with the next bytes to send; never blocks. 1 when there is nothing yet. */
static int refill(stream_ctx *s) {
  buf_reset(&s->out);
  s->out_pos = 0;
  if (s->state == 0) {
    char text[4096];
    int n = gen_read(s->src, text, sizeof text, 0);
    if (n > 0) http_lp_drain(&s->lp, s->src); /* the records of the text just read */
    if (n > 0 && s->tools && s->mode != 1) { /* may be calls: hold until it is clear */
      buf_append(&s->held, text, (size_t)n);
      s->mode = calls_ahead((const char *)s->held.ptr, s->held.len);
      if (s->mode == 1) queue_event(s, chunk(s, (const char *)s->held.ptr, s->held.len, NULL));
      else buf_append_str(&s->out, ": holding a tool call\n\n");
      return 0;
    }
    if (n > 0) { send_text(s, text, (size_t)n); return 0; }
    if (n == -ETIMEDOUT) return 1;
    mkt_result r;
    gen_wait(s->src, 0, &r);
    http_lp_drain(&s->lp, s->src);
    if (r.finish == LOCAL_ERROR) {
      queue_event(s, json_pack("{s:{s:s, s:s, s:s}}", "error", "message", r.error, "type",
                               r.http_status == 400 ? "invalid_request_error" : "server_error", "code",
                               r.code ? r.code : "generation_failed"));
    } else {
      if (s->index % s->per_prompt == 0) s->pt += r.prompt_tokens; /* a prompt counts once, whatever n */
      s->ct += r.completion_tokens;
      if (gen_is_remote(s->src)) s->cost += r.cost_wei;
      if (s->lg) {
        s->lg->prompt_tokens = s->pt;
        s->lg->completion_tokens = s->ct;
        s->lg->wei = s->cost;
        snprintf(s->lg->node, sizeof s->lg->node, "%s", s->node_id);
      }
      const char *fin = finish_name(r.finish);
      if (s->tools && s->mode != 1 && s->held.len) { /* the held text: calls, or text after all */
        json_t *calls = NULL;
        char *content = NULL;
        toolcall_parse((const char *)s->held.ptr, s->held.len, &calls, &content);
        if (!calls) queue_event(s, chunk(s, (const char *)s->held.ptr, s->held.len, NULL));
        else {
          if (content) queue_event(s, chunk(s, content, strlen(content), NULL));
          json_t *oc = openai_calls(calls, 1);
          size_t i;
          json_t *c;
          json_array_foreach(oc, i, c) { /* the name first, then the arguments, as OpenAI streams them */
            json_t *fn = json_object_get(c, "function");
            json_t *head = json_pack("[{s:I, s:O, s:s, s:{s:O, s:s}}]", "index", (json_int_t)i, "id",
                                     json_object_get(c, "id"), "type", "function", "function", "name",
                                     json_object_get(fn, "name"), "arguments", "");
            queue_event(s, chunk_calls(s, NULL, 0, head, NULL));
            json_t *args = json_pack("[{s:I, s:{s:O}}]", "index", (json_int_t)i, "function", "arguments",
                                     json_object_get(fn, "arguments"));
            queue_event(s, chunk_calls(s, NULL, 0, args, NULL));
          }
          json_decref(oc);
          fin = "tool_calls";
        }
        free(content);
      }
      if (s->echo && !s->echo_sent) send_text(s, "", 0); /* no text came: the prompt alone */
      json_t *last = chunk(s, NULL, 0, fin);
      if (gen_is_remote(s->src)) json_object_set_new(last, "apiary", apiary_info(s->node_id, &r));
      queue_event(s, last);
      if (s->next < s->n_queue) { /* the next choice streams on (or its error event ends the stream) */
        if (start_next(s) == 0) return 0;
      } else if (s->include_usage) { /* OpenAI's shape: a chunk of its own, with no choices */
        json_t *u = chunk(s, NULL, 0, NULL);
        json_object_set_new(u, "choices", json_array());
        json_object_set_new(u, "usage", json_pack("{s:i, s:i, s:i}", "prompt_tokens", s->pt, "completion_tokens",
                                                  s->ct, "total_tokens", s->pt + s->ct));
        queue_event(s, u);
      }
    }
    s->state = 2;
    buf_append_str(&s->out, "data: [DONE]\n\n");
    return 0;
  }
  s->state = 3;
  return 0;
}

/* MHD's content reader (a pool thread): what is ready, or — with nothing ready — the
 * connection suspended until the generation has news or GONE_CHECK_MS passed (then 0). A
 * client that left ends the stream, which cancels the generation (stream_free). */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max) {
  stream_ctx *s = cls;
  (void)pos;
  while (s->out_pos >= s->out.len) {
    if (s->state >= 2) return MHD_CONTENT_READER_END_OF_STREAM;
    if (refill(s) == 0) continue;
    if (http__client_gone(s->conn)) return MHD_CONTENT_READER_END_WITH_ERROR;
    if (http__now_ms() - s->last_out_ms >= STREAM_WAIT_MS) { /* silence: a comment keeps the line open */
      buf_append_str(&s->out, ": waiting for tokens\n\n");
      break;
    }
    if (http__suspend(s->conn, GONE_CHECK_MS)) return MHD_CONTENT_READER_END_WITH_ERROR; /* the server stops */
    return 0;
  }
  s->last_out_ms = http__now_ms();
  size_t n = s->out.len - s->out_pos;
  if (n > max) n = max;
  memcpy(out, s->out.ptr + s->out_pos, n);
  s->out_pos += n;
  return (ssize_t)n;
}

static void stream_free(void *cls) {
  stream_ctx *s = cls;
  if (s->src) gen_cancel(s->src); /* the client may have gone: stop generating */
  http__gen_release(s->src);
  for (int i = s->next; i < s->n_queue; i++) {
    local_req_clear(&s->queue[i]);
    free(s->queue_prompt[i]);
  }
  free(s->queue);
  free(s->queue_prompt);
  free(s->prompt);
  http_lp_deinit(&s->lp);
  buf_deinit(&s->out);
  buf_deinit(&s->held);
  free(s);
}



static int bad_request(const http_request *req, const char *code, const char *msg) {
  return http__send_error(req->conn, 400, "invalid_request_error", code, msg);
}

/* Sends a whole answer j (taken) with the node and cost headers. */
static int send_answer(const http_request *req, json_t *j, const char *node, const char *cost) {
  char *out = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (!out) return MHD_NO;
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(out), out, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header(r, "Content-Type", "application/json");
  http__cors(r);
  add_headers(r, node, cost);
  http_log *lg = http__log();
  if (lg) lg->status = 200;
  int ret = MHD_queue_response(req->conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- one request's generation: parked while it waits ------------------------------ */

typedef struct gen_task {
  gen_stream *src;       /* watched: its news resumes the connection */
  local_req *queue;      /* the choices after the first (owned), n_lr - 1 of them */
  char **prompts;        /* completions: each choice's prompt (owned), n_lr of them */
  int n_lr;
  size_t plen;           /* strlen(prompts[0]) */
  http_lp lp;
  http_gen_plan p;
  int tools, remote, started;
  char name[128];        /* the model's display name */
  char model[256];       /* as the client named it */
  char node_id[MKT_NODE_ID_MAX];
  uint64_t t0;           /* submitted at (FULL_WAIT_MS) */
} gen_task;

static void gen_task_free(void *ud) {
  gen_task *t = ud;
  if (t->src) gen_cancel(t->src); /* the client left, it took too long, or the server stops */
  http__gen_release(t->src);
  for (int i = 0; t->queue && i < t->n_lr - 1; i++) local_req_clear(&t->queue[i]);
  free(t->queue);
  for (int i = 0; t->prompts && i < t->n_lr; i++) free(t->prompts[i]);
  free(t->prompts);
  http_lp_deinit(&t->lp);
  free(t);
}

/* Answers with an event stream; the stream takes the generation and the choices to come. */
static int start_stream(const http_request *req, gen_task *t) {
  http_log *lg = http__log();
  stream_ctx *s = calloc(1, sizeof *s);
  if (!s) return MHD_NO;
  s->conn = req->conn;
  s->src = t->src;
  t->src = NULL;
  s->chat = t->p.chat;
  s->tools = t->tools;
  buf_init(&s->held);
  buf_init(&s->out);
  s->include_usage = t->p.include_usage;
  s->created = (long long)time(NULL);
  new_id(s->id, sizeof s->id, t->p.chat ? "chatcmpl-" : "cmpl-");
  snprintf(s->model, sizeof s->model, "%s", t->name);
  snprintf(s->node_id, sizeof s->node_id, "%s", t->node_id);
  s->lg = lg;
  s->logprobs = t->p.logprobs;
  s->lp = t->lp;
  t->lp.acc = NULL; /* the stream's now */
  s->echo = t->p.echo;
  s->per_prompt = t->p.per_prompt > 0 ? t->p.per_prompt : 1;
  s->gen = req->gen;
  s->last_out_ms = http__now_ms();
  snprintf(s->asked, sizeof s->asked, "%s", t->model);
  if (t->prompts) {
    s->prompt = t->prompts[0];
    s->prompt_len = t->plen;
    t->prompts[0] = NULL;
  }
  if (t->n_lr > 1) { /* the other choices wait their turn */
    s->queue_prompt = calloc((size_t)t->n_lr - 1, sizeof *s->queue_prompt);
    if (!s->queue_prompt) {
      stream_free(s);
      return MHD_NO;
    }
    s->queue = t->queue;
    t->queue = NULL;
    for (int i = 1; t->prompts && i < t->n_lr; i++) s->queue_prompt[i - 1] = t->prompts[i], t->prompts[i] = NULL;
    s->n_queue = t->n_lr - 1;
  }
  if (lg) lg->status = 200;
  struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 8192, stream_read, s, stream_free);
  if (!r) {
    stream_free(s);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  http__cors(r);
  add_headers(r, t->node_id, t->remote ? NULL : "0"); /* remote: the cost is in the last event */
  int ret = MHD_queue_response(req->conn, 200, r);
  MHD_destroy_response(r);
  return ret;
}

/* Goes on with t: waits (parked) for a provider, then streams, or waits for the end and
 * answers with one JSON. A client that left cancels it (gen_task_free), within GONE_CHECK_MS. */
static int generate_step(const http_request *req, void *ud) {
  gen_task *t = ud;
  if (!t->started) { /* a request nobody can serve is an HTTP error, not a stream */
    if (gen_wait_started(t->src, 0, t->node_id) == -ETIMEDOUT) {
      if (http__client_gone(req->conn)) return MHD_NO; /* left while a provider was being found */
      return http__wait(req->conn, generate_step, t, gen_task_free, GONE_CHECK_MS);
    }
    t->started = 1;
    if (gen_failed_early(t->src)) {
      mkt_result mr;
      gen_wait(t->src, 0, &mr);
      http__gen_release(t->src);
      t->src = NULL;
      unsigned st = mr.http_status ? (unsigned)mr.http_status : 502;
      return http__send_error(req->conn, st, st < 500 ? "invalid_request_error" : "server_error",
                              mr.code ? mr.code : st == 404 ? "model_not_found" : "provider_failed", mr.error);
    }
    if (!t->node_id[0]) snprintf(t->node_id, sizeof t->node_id, "%s", req->node_id);
  }
  if (t->p.stream) return start_stream(req, t);
  mkt_result res;
  if (gen_wait(t->src, 0, &res) == -ETIMEDOUT) {
    if (http__client_gone(req->conn)) return MHD_NO; /* close, nothing to answer */
    if (http__now_ms() - t->t0 >= FULL_WAIT_MS)
      return http__send_error(req->conn, 504, "server_error", "timeout", "generation took too long");
    return http__wait(req->conn, generate_step, t, gen_task_free, GONE_CHECK_MS);
  }
  int chat = t->p.chat, remote = t->remote;
  buf text;
  buf_init(&text);
  if (t->p.echo) buf_append(&text, t->prompts[0], t->plen);
  char tmp[8192];
  int n;
  while ((n = gen_read(t->src, tmp, sizeof tmp, 0)) > 0) buf_append(&text, tmp, (size_t)n);
  http_lp_drain(&t->lp, t->src);
  http__gen_release(t->src);
  t->src = NULL;
  if (res.finish == LOCAL_ERROR) {
    buf_deinit(&text);
    unsigned st = res.http_status ? (unsigned)res.http_status : remote ? 502 : 500;
    return http__send_error(req->conn, st, st < 500 ? "invalid_request_error" : "server_error",
                            res.code ? res.code : remote ? "provider_failed" : "generation_failed", res.error);
  }
  const char *fin = finish_name(res.finish);
  json_t *msg = chat ? chat_message(text.ptr ? (const char *)text.ptr : "", text.len, t->tools, &fin) : NULL;
  json_t *choice = chat ? json_pack("{s:i, s:o, s:s}", "index", 0, "message", msg, "finish_reason", fin)
                        : json_pack("{s:i, s:s%, s:o, s:s}", "index", 0, "text", text.ptr ? (const char *)text.ptr : "",
                                    text.len, "logprobs", http_lp_take(&t->lp), "finish_reason", finish_name(res.finish));
  if (chat && t->p.logprobs) json_object_set_new(choice, "logprobs", http_lp_take(&t->lp));
  buf_deinit(&text);
  if (remote && res.node_id[0]) snprintf(t->node_id, sizeof t->node_id, "%s", res.node_id);
  http_log *lg = http__log();
  if (lg) {
    lg->status = 200;
    lg->prompt_tokens = res.prompt_tokens;
    lg->completion_tokens = res.completion_tokens;
    lg->wei = remote ? res.cost_wei : 0;
    snprintf(lg->node, sizeof lg->node, "%s", t->node_id);
  }
  char id[40];
  new_id(id, sizeof id, chat ? "chatcmpl-" : "cmpl-");
  json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:[o], s:{s:i, s:i, s:i}, s:o}", "id", id, "object",
                        chat ? "chat.completion" : "text_completion", "created", (json_int_t)time(NULL), "model",
                        t->name, "choices", choice, "usage", "prompt_tokens", res.prompt_tokens,
                        "completion_tokens", res.completion_tokens, "total_tokens",
                        res.prompt_tokens + res.completion_tokens, "apiary",
                        apiary_info(req->node_id, remote ? &res : NULL));
  char cost[24];
  snprintf(cost, sizeof cost, "%llu", (unsigned long long)(remote ? res.cost_wei : 0));
  return send_answer(req, j, t->node_id, cost);
}

int http__generate(const http_request *req, local_req *lrs, int n_lr, const char *model, const http_gen_plan *p) {
  gen_stream *src = NULL;
  char name[128];
  gen_error ge;
  gen_request gr = {.model = model};
  local_req *lr = &lrs[0];
  int chat = p->chat, tools = lr->tools && strcmp(lr->tool_choice, "none") != 0;
  if (!req->gen) {
    for (int i = 0; i < n_lr; i++) local_req_clear(&lrs[i]);
    return http__send_error(req->conn, 503, "server_error", "no_engine", "this node does not run models");
  }
  gen_task *t = calloc(1, sizeof *t);
  local_req *queue = n_lr > 1 ? calloc((size_t)n_lr - 1, sizeof *queue) : NULL;
  /* completions: each choice's prompt, for echo and text_offset (lr's own is taken) */
  char **prompts = chat ? NULL : calloc((size_t)n_lr, sizeof *prompts);
  for (int i = 0; prompts && i < n_lr; i++) prompts[i] = lrs[i].prompt ? strndup(lrs[i].prompt, lrs[i].prompt_len) : NULL;
  if (!t || (n_lr > 1 && !queue) || (!chat && (!prompts || !prompts[0]))) {
    for (int i = 0; i < n_lr; i++) local_req_clear(&lrs[i]), free(prompts ? prompts[i] : NULL);
    free(prompts);
    free(queue);
    free(t);
    return http__send_error(req->conn, 500, "server_error", "server_error", "out of memory");
  }
  size_t plen = prompts ? strlen(prompts[0]) : 0;
  http_lp_init(&t->lp, p->logprobs, chat, p->echo ? 0 : (long)plen, p->echo && prompts && prompts[0][0] != ' ');
  for (int i = 1; i < n_lr; i++) { /* the other choices wait their turn */
    queue[i - 1] = lrs[i];
    memset(&lrs[i], 0, sizeof lrs[i]);
  }
  t->queue = queue;
  t->prompts = prompts;
  t->n_lr = n_lr;
  t->plen = plen;
  t->p = *p;
  t->tools = tools;
  snprintf(t->model, sizeof t->model, "%s", model);
  if (gen_submit(req->gen, &gr, lr, &src, name, sizeof name, &ge)) { /* takes lr */
    gen_task_free(t);
    if (ge.status == 429) return http__send_busy(req->conn, ge.message);
    return http__send_error(req->conn, (unsigned)ge.status,
                            ge.status == 503 ? "server_error" : ge.status == 403 ? "permission_error"
                                                                                 : "invalid_request_error",
                            ge.code, ge.message);
  }
  t->src = src;
  http__gen_watch(req->conn, src, p->stream); /* a whole answer waits for the end only */
  t->remote = gen_is_remote(src);
  t->started = !t->remote;
  t->t0 = http__now_ms();
  snprintf(t->name, sizeof t->name, "%s", name);
  snprintf(t->node_id, sizeof t->node_id, "%s", req->node_id);
  http_log *lg = http__log();
  if (lg) {
    snprintf(lg->model, sizeof lg->model, "%.90s", name);
    snprintf(lg->served, sizeof lg->served, "%s", t->remote ? "network" : "local");
  }
  return http__run(req, generate_step, t, gen_task_free);
}

/* Parses the body, resolves the model; on success fills lr (model path) and name. */
int http__begin(const http_request *req, json_t **body_out, local_req *lr, char *name, size_t name_cap,
                int *stream, int *include_usage, int default_max) {
  memset(lr, 0, sizeof *lr);
  if (!req->gen) return http__send_error(req->conn, 503, "server_error", "no_engine", "this node does not run models");
  json_error_t je;
  json_t *body = req->body ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je) : NULL;
  if (!json_is_object(body)) {
    json_decref(body);
    return bad_request(req, "invalid_json", "the body must be a JSON object");
  }
  const char *model = json_string_value(json_object_get(body, "model"));
  if (!model || !*model) {
    json_decref(body);
    return bad_request(req, "model_required", "'model' is required: a name from GET /v1/models or a sha256");
  }
  snprintf(name, name_cap, "%s", model); /* resolved by market/gen, local or network */
  *stream = json_is_true(json_object_get(body, "stream"));
  *include_usage = json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage"));
  const char *code = NULL;
  const char *why = http_parse_privacy(body, MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Apiary-Privacy"),
                                       req->privacy, &code);
  if (!why) why = http_parse_sampling(body, lr, default_max, &code);
  if (why) {
    local_req_clear(lr);
    json_decref(body);
    return bad_request(req, code, why);
  }
  *body_out = body;
  return -1; /* go on */
}


/* Choice j of prompt i (chat: of the messages): every field parsed into lr (*echo:
 * completions' echo); n > 1: each choice takes the next seed, so they differ (a given seed
 * stays reproducible). NULL or the client's error (lr cleared). */
static const char *parse_choice(json_t *body, int chat, int i, int j, int default_max, local_req *lr, int *echo,
                                const char **code) {
  memset(lr, 0, sizeof *lr);
  const char *why = http_parse_sampling(body, lr, default_max, code);
  if (!why) why = chat ? http_parse_messages(body, lr, code) : http_parse_prompt_at(body, i, lr, code);
  if (!why) why = http_parse_constraints(body, lr, chat, code);
  if (!why) why = http_parse_logprobs(body, lr, chat, echo, code);
  if (why) local_req_clear(lr);
  lr->sp.seed += (uint64_t)j;
  return why;
}

/* n choices for each of k prompts (or for the messages): each its own generation, one after
 * another, parked while each runs. Not streamed. */
typedef struct many_task {
  json_t *body;          /* the request (a reference) */
  char model[256];
  int chat, n, k, default_max;
  int i, j;              /* the choice in flight: prompt i, choice j */
  json_t *choices;       /* the ones done */
  int pt, ct, any_remote;
  uint64_t cost;
  char node[MKT_NODE_ID_MAX];
  gen_stream *src;       /* the choice in flight (watched), or NULL */
  int remote, started, tools;
  buf text;
  http_lp lp;
  uint64_t t0;
} many_task;

static void many_free(void *ud) {
  many_task *t = ud;
  if (t->src) gen_cancel(t->src);
  http__gen_release(t->src);
  json_decref(t->body);
  json_decref(t->choices);
  buf_deinit(&t->text);
  http_lp_deinit(&t->lp);
  free(t);
}

static int many_answer(const http_request *req, many_task *t) {
  http_log *lg = http__log();
  if (lg) {
    snprintf(lg->model, sizeof lg->model, "%.90s", t->model);
    snprintf(lg->served, sizeof lg->served, "%s", t->any_remote ? "network" : "local");
    snprintf(lg->node, sizeof lg->node, "%s", t->node);
    lg->prompt_tokens = t->pt;
    lg->completion_tokens = t->ct;
    lg->wei = t->cost;
  }
  char id[40], costs[24];
  new_id(id, sizeof id, t->chat ? "chatcmpl-" : "cmpl-");
  snprintf(costs, sizeof costs, "%llu", (unsigned long long)t->cost);
  json_t *choices = t->choices;
  t->choices = NULL;
  json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:o, s:{s:i, s:i, s:i}, s:{s:s, s:s, s:s}}", "id", id, "object",
                        t->chat ? "chat.completion" : "text_completion", "created", (json_int_t)time(NULL), "model",
                        t->model, "choices", choices, "usage", "prompt_tokens", t->pt, "completion_tokens", t->ct,
                        "total_tokens", t->pt + t->ct, "apiary", "node", t->node, "cost_wei", costs, "served",
                        t->any_remote ? "network" : "local");
  return send_answer(req, j, t->node, costs);
}

static int many_step(const http_request *req, void *ud) {
  many_task *t = ud;
  for (;;) {
    if (!t->src) { /* the next choice */
      if (t->i == t->k) return many_answer(req, t);
      local_req lr;
      int echo = 0;
      const char *code = NULL, *why = parse_choice(t->body, t->chat, t->i, t->j, t->default_max, &lr, &echo, &code);
      if (why) return bad_request(req, code, why);
      t->tools = lr.tools && strcmp(lr.tool_choice, "none") != 0;
      buf_reset(&t->text);
      if (echo) buf_append(&t->text, lr.prompt, lr.prompt_len);
      http_lp_deinit(&t->lp);
      http_lp_init(&t->lp, lr.logprobs, t->chat, echo ? 0 : (long)lr.prompt_len, echo && lr.prompt[0] != ' ');
      gen_request gr = {.model = t->model};
      gen_error e;
      char name[128];
      if (gen_submit(req->gen, &gr, &lr, &t->src, name, sizeof name, &e)) { /* takes lr */
        t->src = NULL;
        return http__send_error(req->conn, (unsigned)e.status, e.status < 500 ? "invalid_request_error" : "server_error",
                                e.code, e.message);
      }
      http__gen_watch(req->conn, t->src, 0);
      t->remote = gen_is_remote(t->src);
      t->started = !t->remote;
      t->t0 = http__now_ms();
    }
    if (!t->started) {
      char node[MKT_NODE_ID_MAX];
      if (gen_wait_started(t->src, 0, node) == -ETIMEDOUT) {
        if (http__client_gone(req->conn)) return MHD_NO;
        return http__wait(req->conn, many_step, t, many_free, GONE_CHECK_MS);
      }
      t->started = 1;
    }
    mkt_result res;
    if (gen_wait(t->src, 0, &res) == -ETIMEDOUT) {
      if (http__client_gone(req->conn)) return MHD_NO;
      if (http__now_ms() - t->t0 >= FULL_WAIT_MS)
        return http__send_error(req->conn, 504, "server_error", "timeout", "generation took too long");
      return http__wait(req->conn, many_step, t, many_free, GONE_CHECK_MS);
    }
    char tmp[8192];
    int n;
    while ((n = gen_read(t->src, tmp, sizeof tmp, 0)) > 0) buf_append(&t->text, tmp, (size_t)n);
    http_lp_drain(&t->lp, t->src);
    http__gen_release(t->src);
    t->src = NULL;
    if (res.finish == LOCAL_ERROR) {
      int st = res.http_status ? res.http_status : t->remote ? 502 : 500;
      return http__send_error(req->conn, (unsigned)st, st < 500 ? "invalid_request_error" : "server_error",
                              res.code ? res.code : "generation_failed",
                              res.error[0] ? res.error : "generation took too long");
    }
    const char *tx = t->text.ptr ? (const char *)t->text.ptr : "";
    int index = t->i * t->n + t->j;
    const char *fin = finish_name(res.finish);
    json_t *msg = t->chat ? chat_message(tx, t->text.len, t->tools, &fin) : NULL;
    json_t *choice = t->chat ? json_pack("{s:i, s:o, s:s}", "index", index, "message", msg, "finish_reason", fin)
                             : json_pack("{s:i, s:s%, s:o, s:s}", "index", index, "text", tx, t->text.len, "logprobs",
                                         http_lp_take(&t->lp), "finish_reason", finish_name(res.finish));
    if (t->chat && t->lp.on) json_object_set_new(choice, "logprobs", http_lp_take(&t->lp));
    json_array_append_new(t->choices, choice);
    if (t->j == 0) t->pt += res.prompt_tokens; /* a prompt counts once, whatever n */
    t->ct += res.completion_tokens;
    if (t->remote) {
      t->any_remote = 1;
      t->cost += res.cost_wei;
      if (res.node_id[0]) snprintf(t->node, sizeof t->node, "%s", res.node_id);
    }
    if (++t->j == t->n) t->j = 0, t->i++;
  }
}

static int generate_many(const http_request *req, json_t *body, const char *model, int chat, int n, int k,
                         int default_max) {
  many_task *t = calloc(1, sizeof *t);
  if (!t || !(t->choices = json_array())) {
    free(t);
    return http__send_error(req->conn, 500, "server_error", "server_error", "out of memory");
  }
  t->body = json_incref(body);
  snprintf(t->model, sizeof t->model, "%s", model);
  t->chat = chat, t->n = n, t->k = k, t->default_max = default_max;
  snprintf(t->node, sizeof t->node, "%s", req->node_id);
  buf_init(&t->text);
  return http__run(req, many_step, t, many_free);
}

/* How many choices a request asks for: n per prompt, k prompts. */
static int choices_asked(const http_request *req, json_t *body, int chat, int *n, int *k) {
  const char *code = NULL, *why = http_parse_n(body, n, &code);
  if (why) return bad_request(req, code, why);
  *k = chat ? 1 : http_prompt_count(body);
  if (*k < 1 || *k > HTTP_MAX_PROMPTS) return bad_request(req, "invalid_prompt", "a prompt array holds 1 to 8 strings");
  return -1;
}

/* POST /v1/chat/completions and /v1/completions: parse, then one answer, several (not
 * streamed: one JSON), or several streamed one after another. */
static int complete(const http_request *req, int chat) {
  json_t *body = NULL;
  local_req lr;
  char name[256];
  int stream, usage, default_max = chat ? 256 : 16;
  int rc = http__begin(req, &body, &lr, name, sizeof name, &stream, &usage, default_max);
  if (rc != -1) return rc;
  local_req_clear(&lr); /* parsed again per choice */
  int n = 1, k = 1;
  if ((rc = choices_asked(req, body, chat, &n, &k)) != -1) goto done;
  if (!stream && n * k > 1) {
    rc = generate_many(req, body, name, chat, n, k, default_max);
    goto done;
  }
  local_req *lrs = calloc((size_t)(n * k), sizeof *lrs);
  if (!lrs) {
    rc = http__send_error(req->conn, 500, "server_error", "server_error", "out of memory");
    goto done;
  }
  int echo = 0;
  for (int i = 0; i < k; i++)
    for (int j = 0; j < n; j++) {
      const char *code = NULL, *why = parse_choice(body, chat, i, j, default_max, &lrs[i * n + j], &echo, &code);
      if (why) {
        for (int x = 0; x < n * k; x++) local_req_clear(&lrs[x]);
        free(lrs);
        rc = bad_request(req, code, why);
        goto done;
      }
    }
  http_gen_plan plan = {.chat = chat, .stream = stream, .include_usage = usage, .logprobs = lrs[0].logprobs,
                        .echo = echo, .per_prompt = n};
  rc = http__generate(req, lrs, n * k, name, &plan); /* takes them */
  free(lrs);
done:
  json_decref(body);
  return rc;
}

int http__chat_completions(const http_request *req) { return complete(req, 1); }

int http__completions(const http_request *req) { return complete(req, 0); }
