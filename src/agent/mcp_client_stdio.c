/* agent/mcp_client_stdio — the MCP client's stdio transport: the server is a child process.
 *
 * mcp_client__stdio_open spawns the command with libuv (PATH lookup, arguments and added
 * environment from the config) on a private loop, then starts one thread that runs that
 * loop; from then on only that thread touches the handles. The child's stdout is cut into
 * lines (agent/mcp_client_frame, at most MCP_CLIENT_MAX_MSG bytes each): a response goes to
 * the waiting caller, a request is answered at once (mcp_client__answer), a notification is
 * logged. The child's stderr is logged line by line (prefixed with the server's name, cut
 * at LOG_LINE_MAX bytes), never parsed. Callers hand messages to the loop through a queue
 * and a uv_async; they wait for their response on a condition variable, and learn of a
 * child that died (stdout closed, or exited), of a line over the cap, or of the timeout.
 *
 * Close: stdin closed (the spec's shutdown signal), up to 2 s for the child to exit, then
 * SIGTERM, 2 s, then SIGKILL, then the loop ends and the thread is joined.
 *
 * SIGPIPE: writing to a child that died raises it; opening a stdio client sets it to be
 * ignored when it still has its default action (the node ignores it already). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "agent/mcp_client_int.h"
#include "core/err.h"
#include "core/log.h"

#define LOG_LINE_MAX 1000    /* bytes of a stderr line logged */
#define STDERR_LINE_MAX 8192 /* a longer stderr line is skipped */
#define CLOSE_WAIT_MS 2000   /* each step of the shutdown */
#define EXIT_GRACE_MS 500    /* after the child exited, how long to wait for its last output */

extern char **environ;

typedef struct out_msg {
  struct out_msg *next;
  size_t len;
  char text[]; /* the message and its "\n" */
} out_msg;

typedef struct write_req {
  uv_write_t req;
  out_msg *m;
} write_req;

typedef struct stdio_tr {
  mcp_client *c;              /* the client (for its name) */
  uv_loop_t loop;
  uv_async_t wake;            /* callers → loop */
  uv_process_t proc;
  uv_pipe_t in, out, err;     /* the child's stdin (we write), stdout and stderr (we read) */
  uv_thread_t thread;
  int in_open;                /* loop thread: stdin not closed yet */
  mcp_client_lines lines;     /* loop thread: stdout framing */
  mcp_client_lines errlines;  /* loop thread: stderr framing */
  char rbuf[65536];           /* loop thread: read buffer (one read at a time) */

  pthread_mutex_t mu;         /* guards everything below */
  pthread_cond_t cv;
  out_msg *q_head, *q_tail;   /* messages to write (owned) */
  int close_stdin, kill_sig, shutdown; /* requests to the loop */
  int exited;                 /* exit_cb ran */
  long long exited_at;        /* when (monotonic ms) */
  int64_t exit_status;
  int term_signal;
  int out_closed;             /* the child's stdout ended (EOF or error) ... */
  long long out_closed_at;    /* ... then (monotonic ms) */
  int want;                   /* a caller waits for the response with want_id */
  json_int_t want_id;
  json_t *resp;               /* that response (owned until taken) */
  char fail[200];             /* why the waiting call cannot be answered (a line over the cap) */
} stdio_tr;

/* ---- loop thread ------------------------------------------------------------------------ */
static void write_cb(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  free(w->m);
  free(w);
  (void)status; /* a dead child shows up as a closed stdout or an exit */
}

static void write_now(stdio_tr *t, out_msg *m) {
  write_req *w = t->in_open ? malloc(sizeof *w) : NULL;
  if (!w) {
    free(m);
    return;
  }
  w->m = m;
  uv_buf_t b = uv_buf_init(m->text, (unsigned)m->len);
  if (uv_write(&w->req, (uv_stream_t *)&t->in, &b, 1, write_cb)) {
    free(m);
    free(w);
  }
}

/* A message as text with its newline (owned), or NULL. Takes msg. */
static out_msg *encode(json_t *msg) {
  char *text = json_dumps(msg, JSON_COMPACT);
  json_decref(msg);
  if (!text) return NULL;
  size_t n = strlen(text);
  out_msg *m = malloc(sizeof *m + n + 1);
  if (m) {
    m->next = NULL;
    m->len = n + 1;
    memcpy(m->text, text, n);
    m->text[n] = '\n';
  }
  free(text);
  return m;
}

static int on_line(void *ud, const char *line, size_t len) {
  stdio_tr *t = ud;
  if (!line) {
    log_warn("MCP server '%s' wrote a line over %u bytes; skipped", t->c->name, MCP_CLIENT_MAX_MSG);
    pthread_mutex_lock(&t->mu);
    if (t->want) {
      snprintf(t->fail, sizeof t->fail, "the server wrote a line over %u bytes (the cap), which was skipped",
               MCP_CLIENT_MAX_MSG);
      pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
  }
  json_t *msg = NULL;
  char why[300];
  int kind = mcp_client__parse(line, len, &msg, why, sizeof why);
  if (kind < 0) {
    /* A server that writes JSON with an id null error (a parse error of ours) still ends the call. */
    json_t *m = json_loadb(line, len, 0, NULL);
    if (m && json_is_null(json_object_get(m, "id")) && json_is_object(json_object_get(m, "error"))) {
      msg = m;
      kind = MCP_CLIENT_MSG_RESPONSE;
    } else {
      json_decref(m);
      log_warn("MCP server '%s' wrote a line that is %s; ignored", t->c->name, why);
      return 0;
    }
  }
  if (kind == MCP_CLIENT_MSG_REQUEST) {
    json_t *answer = mcp_client__answer(msg);
    json_decref(msg);
    out_msg *m = answer ? encode(answer) : NULL;
    if (m) write_now(t, m);
    return 0;
  }
  if (kind == MCP_CLIENT_MSG_NOTIFICATION) {
    mcp_client__notified(t->c, msg);
    json_decref(msg);
    return 0;
  }
  json_t *id = json_object_get(msg, "id");
  pthread_mutex_lock(&t->mu);
  if (t->want && !t->resp && (json_is_null(id) || (json_is_integer(id) && json_integer_value(id) == t->want_id))) {
    t->resp = msg;
    msg = NULL;
    pthread_cond_broadcast(&t->cv);
  }
  pthread_mutex_unlock(&t->mu);
  if (msg) log_debug("MCP server '%s': a response nobody waits for (late, after a timeout?)", t->c->name);
  json_decref(msg);
  return 0;
}

static int on_err_line(void *ud, const char *line, size_t len) {
  stdio_tr *t = ud;
  if (!line) log_info("mcp[%s] (a stderr line over %d bytes, skipped)", t->c->name, STDERR_LINE_MAX);
  else log_info("mcp[%s] %.*s", t->c->name, (int)(len < LOG_LINE_MAX ? len : LOG_LINE_MAX), line);
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  stdio_tr *t = h->data;
  (void)suggested;
  *b = uv_buf_init(t->rbuf, sizeof t->rbuf);
}

static void out_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  stdio_tr *t = s->data;
  if (n > 0) {
    if (mcp_client__lines_feed(&t->lines, b->base, (size_t)n, on_line, t) == ERR_NOMEM)
      log_error("MCP server '%s': out of memory reading its output", t->c->name);
    return;
  }
  if (n == 0) return;
  uv_read_stop(s);
  pthread_mutex_lock(&t->mu);
  t->out_closed = 1;
  t->out_closed_at = mcp_client__now_ms();
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

static void err_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  stdio_tr *t = s->data;
  if (n > 0) mcp_client__lines_feed(&t->errlines, b->base, (size_t)n, on_err_line, t);
  else if (n < 0) {
    if (t->errlines.len) on_err_line(t, t->errlines.buf, t->errlines.len); /* a last line without "\n" */
    t->errlines.len = 0;
    uv_read_stop(s);
  }
}

static void exit_cb(uv_process_t *p, int64_t status, int sig) {
  stdio_tr *t = p->data;
  pthread_mutex_lock(&t->mu);
  t->exited = 1;
  t->exited_at = mcp_client__now_ms();
  t->exit_status = status;
  t->term_signal = sig;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

static void close_if(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void wake_cb(uv_async_t *a) {
  stdio_tr *t = a->data;
  pthread_mutex_lock(&t->mu);
  out_msg *q = t->q_head;
  t->q_head = t->q_tail = NULL;
  int close_in = t->close_stdin, sig = t->kill_sig, down = t->shutdown, exited = t->exited;
  t->kill_sig = 0;
  pthread_mutex_unlock(&t->mu);
  while (q) {
    out_msg *next = q->next;
    write_now(t, q);
    q = next;
  }
  if ((close_in || down) && t->in_open) {
    t->in_open = 0;
    uv_close((uv_handle_t *)&t->in, NULL);
  }
  if (sig && !exited) uv_process_kill(&t->proc, sig);
  if (down) {
    close_if((uv_handle_t *)&t->out);
    close_if((uv_handle_t *)&t->err);
    close_if((uv_handle_t *)&t->proc);
    close_if((uv_handle_t *)&t->wake);
  }
}

static void loop_main(void *arg) {
  stdio_tr *t = arg;
  uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* ---- caller threads --------------------------------------------------------------------- */
static void enqueue(stdio_tr *t, out_msg *m) {
  pthread_mutex_lock(&t->mu);
  if (t->q_tail) t->q_tail->next = m;
  else t->q_head = m;
  t->q_tail = m;
  pthread_mutex_unlock(&t->mu);
  uv_async_send(&t->wake);
}

/* Why the child cannot answer (under t->mu), into err; 0 when it still can. */
static int dead_why(stdio_tr *t, char *err, size_t cap) {
  long long now = mcp_client__now_ms(); /* stdout's end and the exit come in either order: wait a little for both */
  int gone = (t->out_closed && (t->exited || now - t->out_closed_at >= EXIT_GRACE_MS)) ||
             (t->exited && now - t->exited_at >= EXIT_GRACE_MS);
  if (!gone) return 0;
  if (t->exited && t->term_signal)
    return err_set(err, cap, -ECONNRESET, "the server process was killed by signal %d (its stderr is in the log)",
                   t->term_signal);
  if (t->exited)
    return err_set(err, cap, -ECONNRESET, "the server process exited with status %lld (its stderr is in the log)",
                   (long long)t->exit_status);
  return err_set(err, cap, -ECONNRESET, "the server process closed its stdout (its stderr is in the log)");
}

static int stdio_notify(mcp_client *c, json_t *msg, char *err, size_t cap) {
  stdio_tr *t = c->tr;
  pthread_mutex_lock(&t->mu);
  int rc = dead_why(t, err, cap);
  pthread_mutex_unlock(&t->mu);
  if (rc) {
    json_decref(msg);
    return rc;
  }
  out_msg *m = encode(msg);
  if (!m) return err_set(err, cap, ERR_NOMEM, "out of memory");
  enqueue(t, m);
  return 0;
}

static int stdio_request(mcp_client *c, json_t *msg, json_int_t id, int timeout_ms, json_t **resp_out, char *err,
                         size_t cap) {
  stdio_tr *t = c->tr;
  *resp_out = NULL;
  out_msg *m = encode(msg);
  if (!m) return err_set(err, cap, ERR_NOMEM, "out of memory");
  pthread_mutex_lock(&t->mu);
  int rc = dead_why(t, err, cap);
  if (rc) {
    pthread_mutex_unlock(&t->mu);
    free(m);
    return rc;
  }
  t->want = 1;
  t->want_id = id;
  t->fail[0] = 0;
  pthread_mutex_unlock(&t->mu);
  enqueue(t, m);
  long long deadline = mcp_client__now_ms() + timeout_ms;
  pthread_mutex_lock(&t->mu);
  for (;;) {
    if (t->resp || t->fail[0] || (rc = dead_why(t, err, cap))) break;
    long long now = mcp_client__now_ms(), until = deadline;
    if (now >= deadline) {
      rc = err_set(err, cap, -ETIMEDOUT, "no answer within %d ms", timeout_ms);
      break;
    }
    if (t->exited && t->exited_at + EXIT_GRACE_MS < until) until = t->exited_at + EXIT_GRACE_MS;
    if (t->out_closed && t->out_closed_at + EXIT_GRACE_MS < until) until = t->out_closed_at + EXIT_GRACE_MS;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long wait_ms = until - now;
    ts.tv_sec += wait_ms / 1000;
    ts.tv_nsec += (wait_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
  }
  if (t->resp) {
    rc = 0;
    *resp_out = t->resp;
  } else if (!rc) {
    rc = err_set(err, cap, -EPROTO, "%s", t->fail);
  }
  t->resp = NULL;
  t->want = 0;
  pthread_mutex_unlock(&t->mu);
  return rc;
}

/* Waits up to ms for the child to exit; 1 when it did. */
static int wait_exit(stdio_tr *t, int ms) {
  long long deadline = mcp_client__now_ms() + ms;
  pthread_mutex_lock(&t->mu);
  while (!t->exited && mcp_client__now_ms() < deadline) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20 * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
  }
  int done = t->exited;
  pthread_mutex_unlock(&t->mu);
  return done;
}

static void request_loop(stdio_tr *t, int close_stdin, int sig, int shutdown) {
  pthread_mutex_lock(&t->mu);
  t->close_stdin |= close_stdin;
  if (sig) t->kill_sig = sig;
  t->shutdown |= shutdown;
  pthread_mutex_unlock(&t->mu);
  uv_async_send(&t->wake);
}

static void free_tr(stdio_tr *t) {
  while (t->q_head) {
    out_msg *n = t->q_head->next;
    free(t->q_head);
    t->q_head = n;
  }
  json_decref(t->resp);
  mcp_client__lines_deinit(&t->lines);
  mcp_client__lines_deinit(&t->errlines);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  free(t);
}

static void stdio_close(mcp_client *c) {
  stdio_tr *t = c->tr;
  if (!t) return;
  request_loop(t, 1, 0, 0);
  if (!wait_exit(t, CLOSE_WAIT_MS)) {
    log_debug("MCP server '%s' did not exit when its stdin closed; SIGTERM", c->name);
    request_loop(t, 0, SIGTERM, 0);
    if (!wait_exit(t, CLOSE_WAIT_MS)) {
      log_warn("MCP server '%s' ignored SIGTERM; SIGKILL", c->name);
      request_loop(t, 0, SIGKILL, 0);
      wait_exit(t, CLOSE_WAIT_MS);
    }
  }
  request_loop(t, 0, 0, 1);
  uv_thread_join(&t->thread);
  uv_loop_close(&t->loop);
  free_tr(t);
  c->tr = NULL;
}

static const mcp_client_transport stdio_transport = {stdio_request, stdio_notify, stdio_close};

/* The environment: the inherited one with add's entries replacing or joining it (owned
 * array of borrowed strings). */
static char **make_env(const char *const *add) {
  size_t n_env = 0, n_add = 0;
  while (environ && environ[n_env]) n_env++;
  while (add && add[n_add]) n_add++;
  char **env = calloc(n_env + n_add + 1, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n_env; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int replaced = 0;
    for (size_t j = 0; j < n_add && !replaced; j++)
      replaced = !strncmp(add[j], environ[i], klen) && add[j][klen] == '=';
    if (!replaced) env[k++] = environ[i];
  }
  for (size_t j = 0; j < n_add; j++) env[k++] = (char *)add[j];
  return env;
}

int mcp_client__stdio_open(mcp_client *c, const mcp_client_cfg *cfg, char *err, size_t cap) {
  for (const char *const *e = cfg->env; e && *e; e++)
    if (!strchr(*e, '=') || **e == '=') return err_set(err, cap, ERR_INVAL, "environment entry '%s' is not K=V", *e);
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  stdio_tr *t = calloc(1, sizeof *t);
  size_t n_args = 0;
  while (cfg->args && cfg->args[n_args]) n_args++;
  char **argv = calloc(n_args + 2, sizeof *argv);
  char **env = make_env(cfg->env);
  if (!t || !argv || !env) {
    free(t);
    free(argv);
    free(env);
    return err_set(err, cap, ERR_NOMEM, "out of memory");
  }
  argv[0] = (char *)cfg->command;
  for (size_t i = 0; i < n_args; i++) argv[i + 1] = (char *)cfg->args[i];
  t->c = c;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  mcp_client__lines_init(&t->lines, MCP_CLIENT_MAX_MSG);
  mcp_client__lines_init(&t->errlines, STDERR_LINE_MAX);
  int rc = uv_loop_init(&t->loop);
  if (rc) {
    free(argv);
    free(env);
    free_tr(t);
    return err_set(err, cap, rc, "cannot start an event loop: %s", uv_strerror(rc));
  }
  uv_async_init(&t->loop, &t->wake, wake_cb);
  uv_pipe_init(&t->loop, &t->in, 0);
  uv_pipe_init(&t->loop, &t->out, 0);
  uv_pipe_init(&t->loop, &t->err, 0);
  t->wake.data = t->proc.data = t->in.data = t->out.data = t->err.data = t;
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&t->in},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&t->out},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&t->err},
  };
  uv_process_options_t opt = {.exit_cb = exit_cb, .file = cfg->command, .args = argv, .env = env,
                              .stdio_count = 3, .stdio = stdio};
  rc = uv_spawn(&t->loop, &t->proc, &opt);
  free(argv);
  free(env);
  if (rc) {
    if (rc == UV_ENOENT)
      err_set(err, cap, -ENOENT, "cannot start '%s': no such program (is it installed, and in PATH?)", cfg->command);
    else
      err_set(err, cap, rc, "cannot start '%s': %s", cfg->command, uv_strerror(rc));
    uv_close((uv_handle_t *)&t->proc, NULL);
    uv_close((uv_handle_t *)&t->in, NULL);
    uv_close((uv_handle_t *)&t->out, NULL);
    uv_close((uv_handle_t *)&t->err, NULL);
    uv_close((uv_handle_t *)&t->wake, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    free_tr(t);
    return rc == UV_ENOENT ? -ENOENT : rc;
  }
  t->in_open = 1;
  uv_read_start((uv_stream_t *)&t->out, alloc_cb, out_read_cb);
  uv_read_start((uv_stream_t *)&t->err, alloc_cb, err_read_cb);
  log_debug("MCP server '%s': started '%s' (pid %d)", c->name, cfg->command, t->proc.pid);
  c->t = &stdio_transport;
  c->tr = t;
  if (uv_thread_create(&t->thread, loop_main, t)) {
    c->t = NULL;
    c->tr = NULL;
    uv_process_kill(&t->proc, SIGKILL);
    uv_close((uv_handle_t *)&t->proc, NULL);
    uv_close((uv_handle_t *)&t->in, NULL);
    uv_close((uv_handle_t *)&t->out, NULL);
    uv_close((uv_handle_t *)&t->err, NULL);
    uv_close((uv_handle_t *)&t->wake, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_loop_close(&t->loop);
    free_tr(t);
    return err_set(err, cap, -EAGAIN, "cannot start a thread for the MCP server (out of threads)");
  }
  return 0;
}
