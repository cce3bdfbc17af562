/* bench_market — what a remote generation costs against a local one.
 *
 *   bench_market            (run by bench/run; needs $APIARY_BIN and $APIARY_SHARED)
 *
 * Two node processes on loopback, in homes under a temporary directory: provider P pulls
 * stories15M (Q8_0) from the mirror $APIARY_SHARED/models, client C has no model. Both run
 * with --no-lan and bootstrap only from each other; nothing leaves the machine. The offer is
 * free (price 0, the default), so no chain is involved: payments are bench_voucher's part.
 *
 * The same greedy streaming request (POST /v1/completions, 128 tokens, stream_options.
 * include_usage) goes to P's API, which generates locally, and to C's API, which routes it
 * to P over the encrypted link and relays the stream. For each: time to first token (request
 * start to the first SSE event with non-empty text) and decode tokens/s ((completion tokens
 * - 1) / time from first to last text event). One warm-up each, then $BENCH_REPS runs
 * (default 5), local and remote alternating; the table shows medians and remote/local
 * ratios. P generates with one thread ($BENCH_MARKET_THREADS, 0 = one per core) so that on a
 * small machine C's relay does not take a core from P's own threads. A request that fails
 * (e.g. its link replaced by a duplicate one) is run again, at most twice, and counted.
 * Skips, exiting 0, when the model mirror or the binary is missing. Nothing here asserts
 * timings. APIARY_KEEP_BENCH_DIR=1 keeps the homes and node logs. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOKENS 128
#define PROMPT "Once upon a time"

enum { P = 0, C = 1 };

static const char *bin;
static char dir[256], home[2][300], ids[2][80], token[2][160], mirror[1024];
static pid_t pids[2];
static int base;
static int threads = 1; /* P's [engine] threads */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs `$APIARY_BIN ARGS`; returns its exit status. out (if not NULL) receives stdout. */
static int apiary(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int apiary(char *out, size_t cap, const char *fmt, ...) {
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", bin, args);
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  size_t n = 0;
  char tmp[4096];
  size_t k;
  while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
    if (out && n + 1 < cap) {
      size_t m = k < cap - 1 - n ? k : cap - 1 - n;
      memcpy(out + n, tmp, m);
      n += m;
    }
  }
  if (out && cap) out[n] = 0;
  int st = pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* `apiary ARGS --json` parsed; NULL on failure. Returns owned. */
static json_t *apiary_json(const char *args) {
  static char out[1 << 18];
  if (apiary(out, sizeof out, "%s --json", args)) return NULL;
  return json_loads(out, 0, NULL);
}

/* 1 if port is free for both TCP and UDP on 127.0.0.1. */
static int port_free(int port) {
  int types[2] = {SOCK_STREAM, SOCK_DGRAM};
  for (int i = 0; i < 2; i++) {
    int fd = socket(AF_INET, types[i], 0);
    if (fd < 0) return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    if (!ok) return 0;
  }
  return 1;
}

/* Ports: listen base+n, DHT base+2+n, HTTP base+4+n. */
static int pick_base(void) {
  srand((unsigned)getpid() ^ (unsigned)time(NULL));
  for (int tries = 0; tries < 50; tries++) {
    int b = 30000 + (rand() % 2000) * 8, ok = 1;
    for (int i = 0; i < 6 && ok; i++) ok = port_free(b + i);
    if (ok) return b;
  }
  return 0;
}

static int http_port(int n) { return base + 4 + n; }

static int start_node(int n) {
  char listen[64], dhtp[16], boot[64], http[64], log[400];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", base + n);
  snprintf(dhtp, sizeof dhtp, "%d", base + 2 + n);
  snprintf(boot, sizeof boot, "127.0.0.1:%d", base + 2 + (1 - n));
  snprintf(http, sizeof http, "127.0.0.1:%d", http_port(n));
  snprintf(log, sizeof log, "%s.log", home[n]);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execl(bin, bin, "node", "--home", home[n], "--listen", listen, "--dht-port", dhtp, "--bootstrap", boot,
          "--no-lan", "--http", http, (char *)NULL);
    _exit(127);
  }
  pids[n] = pid;
  for (int k = 0; k < 300; k++) {
    if (apiary(NULL, 0, "status --home %s", home[n]) == 0) return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid) {
      pids[n] = 0;
      break;
    }
    usleep(50000);
  }
  fprintf(stderr, "bench_market: node %s did not start (see %s)\n", home[n], log);
  return -1;
}

static void stop_node(int n) {
  if (pids[n] <= 0) return;
  apiary(NULL, 0, "stop --home %s", home[n]);
  for (int k = 0; k < 300; k++) {
    if (waitpid(pids[n], NULL, WNOHANG) == pids[n]) {
      pids[n] = 0;
      return;
    }
    usleep(50000);
  }
  kill(pids[n], SIGKILL);
  waitpid(pids[n], NULL, 0);
  pids[n] = 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* Waits until C lists an offer of stories15M's sha from P. */
static int wait_offer(const char *sha) {
  char args[400];
  snprintf(args, sizeof args, "offers --home %s", home[C]);
  for (int i = 0; i < 240; i++) {
    json_t *o = apiary_json(args);
    size_t k;
    json_t *x;
    int found = 0;
    json_array_foreach(json_object_get(o, "offers"), k, x) {
      const char *m = json_string_value(json_object_get(x, "model")), *nd = json_string_value(json_object_get(x, "node"));
      if (m && nd && !strcmp(m, sha) && !strcmp(nd, ids[P])) found = 1;
    }
    json_decref(o);
    if (found) return 1;
    usleep(250000);
  }
  return 0;
}

/* One streamed request: the SSE parser's state. */
typedef struct run {
  double t0, t_first, t_last; /* request start, first and last event with text (s) */
  long completion_tokens;     /* from the usage of the last chunk; -1 until seen */
  int n_text;                 /* events with text */
  char served[16], node[80];  /* the last chunk's "apiary" object */
  char err[200];              /* an error event's message */
  char *pend;                 /* bytes of an incomplete event */
  size_t pend_len;
} run;

static void on_event(run *r, const char *data, size_t len) {
  if (len == 6 && !memcmp(data, "[DONE]", 6)) return;
  json_t *j = json_loadb(data, len, 0, NULL);
  if (!j) return;
  json_t *e = json_object_get(j, "error");
  if (e) snprintf(r->err, sizeof r->err, "%s", json_string_value(json_object_get(e, "message")) ?: "error");
  const char *text = json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text"));
  if (text && *text) {
    double t = now_s();
    if (!r->t_first) r->t_first = t;
    r->t_last = t;
    r->n_text++;
  }
  json_t *u = json_object_get(j, "usage");
  if (u) r->completion_tokens = (long)json_integer_value(json_object_get(u, "completion_tokens"));
  json_t *a = json_object_get(j, "apiary");
  if (a) {
    snprintf(r->served, sizeof r->served, "%s", json_string_value(json_object_get(a, "served")) ?: "");
    snprintf(r->node, sizeof r->node, "%s", json_string_value(json_object_get(a, "node")) ?: "");
  }
  json_decref(j);
}

/* curl's write callback: splits the stream into "\n\n"-terminated events. */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud) {
  run *r = ud;
  size_t n = size * nmemb;
  char *p = realloc(r->pend, r->pend_len + n + 1);
  if (!p) return 0;
  r->pend = p;
  memcpy(p + r->pend_len, ptr, n);
  r->pend_len += n;
  p[r->pend_len] = 0;
  size_t start = 0;
  for (;;) {
    char *end = strstr(p + start, "\n\n");
    if (!end) break;
    size_t elen = (size_t)(end - (p + start));
    if (elen >= 6 && !memcmp(p + start, "data: ", 6)) on_event(r, p + start + 6, elen - 6);
    start += elen + 2;
  }
  memmove(p, p + start, r->pend_len - start + 1);
  r->pend_len -= start;
  return n;
}

/* Streams one completion from node n's API into r. Returns 0 or -1 (message printed). */
static int stream_once(int n, run *r) {
  memset(r, 0, sizeof *r);
  r->completion_tokens = -1;
  char url[128], auth[400];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/completions", http_port(n));
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token[n]);
  const char *body = "{\"model\":\"stories15M\",\"prompt\":\"" PROMPT "\",\"max_tokens\":128,\"temperature\":0,"
                     "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
  CURL *c = curl_easy_init();
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  h = curl_slist_append(h, auth);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  r->t0 = now_s();
  CURLcode cc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(r->pend);
  r->pend = NULL;
  const char *who = n == P ? "local" : "remote";
  if (cc != CURLE_OK || status != 200) {
    fprintf(stderr, "bench_market: %s request failed: %s, HTTP %ld\n", who, curl_easy_strerror(cc), status);
    return -1;
  }
  if (r->err[0] || !r->t_first || r->completion_tokens < 2) {
    fprintf(stderr, "bench_market: %s stream incomplete: %s\n", who, r->err[0] ? r->err : "no tokens or usage");
    if (strstr(r->err, "link closed"))
      fprintf(stderr, "bench_market: (a second link between P and C replaced the one carrying the answer; run again)\n");
    return -1;
  }
  return 0;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_d);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Creates both homes, pulls the model into P, starts both nodes and waits for the offer. */
static int setup(void) {
  char args[1400];
  const char *names = "pc";
  for (int n = 0; n < 2; n++) {
    snprintf(home[n], sizeof home[n], "%s/%c", dir, names[n]);
    snprintf(args, sizeof args, "init --home %s", home[n]);
    json_t *j = apiary_json(args);
    if (!j) {
      fprintf(stderr, "bench_market: apiary init failed\n");
      return -1;
    }
    snprintf(ids[n], sizeof ids[n], "%s", json_string_value(json_object_get(j, "node_id")) ?: "");
    json_decref(j);
  }
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "sed -i 's/^threads = .*/threads = %d/' '%s/config.toml'", threads, home[P]);
  if (system(cmd)) {
    fprintf(stderr, "bench_market: cannot set [engine] threads in %s/config.toml\n", home[P]);
    return -1;
  }
  if (apiary(NULL, 0, "model pull --home %s stories15M --from %s", home[P], mirror)) {
    fprintf(stderr, "bench_market: model pull from %s failed\n", mirror);
    return -1;
  }
  if (apiary(NULL, 0, "sell --home %s stories15M", home[P])) { /* a new node sells nothing */
    fprintf(stderr, "bench_market: apiary sell failed\n");
    return -1;
  }
  snprintf(args, sizeof args, "model list --home %s", home[P]);
  json_t *ml = apiary_json(args);
  char sha[65] = "";
  snprintf(sha, sizeof sha, "%s",
           json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")) ?: "");
  json_decref(ml);
  if ((base = pick_base()) == 0) {
    fprintf(stderr, "bench_market: no free loopback ports\n");
    return -1;
  }
  if (start_node(P) || start_node(C)) return -1;
  for (int n = 0; n < 2; n++) {
    snprintf(args, sizeof args, "token --home %s create", home[n]);
    json_t *t = apiary_json(args);
    snprintf(token[n], sizeof token[n], "%s", json_string_value(json_object_get(t, "token")) ?: "");
    json_decref(t);
    if (!token[n][0]) {
      fprintf(stderr, "bench_market: token create failed\n");
      return -1;
    }
  }
  double t = now_s();
  if (!wait_offer(sha)) {
    fprintf(stderr, "bench_market: C never saw P's offer (logs in %s)\n", dir);
    return -1;
  }
  printf("  C learned P's offer %.1f s after start (DHT over loopback)\n", now_s() - t);
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  bin = getenv("APIARY_BIN");
  const char *shared = getenv("APIARY_SHARED");
  char model[1100];
  snprintf(mirror, sizeof mirror, "%s/models", shared ? shared : "");
  snprintf(model, sizeof model, "%s/stories15M-Q8_0.gguf", mirror);
  if (!shared || access(model, R_OK)) {
    printf("bench_market: no model mirror (%s); set APIARY_SHARED; skipping\n", model);
    return 0;
  }
  if (!bin || access(bin, X_OK)) {
    printf("bench_market: no apiary binary ($APIARY_BIN, run `make`); skipping\n");
    return 0;
  }
  int reps = getenv("BENCH_REPS") ? atoi(getenv("BENCH_REPS")) : 5;
  if (getenv("BENCH_MARKET_THREADS")) threads = atoi(getenv("BENCH_MARKET_THREADS"));
  if (threads < 0 || threads > 256) threads = 1;
  if (reps < 1 || reps > 100) reps = 5;
  snprintf(dir, sizeof dir, "/tmp/bench_market.XXXXXX");
  if (!mkdtemp(dir)) {
    printf("bench_market: mkdtemp: %s; skipping\n", strerror(errno));
    return 0;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("stories15M Q8_0, prompt \"%s\", %d greedy tokens streamed; 1 warm-up + %d runs each, median\n", PROMPT,
         MAX_TOKENS, reps);
  printf("  prices: free (price 0, no chain): payments are measured by bench_voucher\n");
  printf("  P generates with %d inference thread%s ($BENCH_MARKET_THREADS; 0 = one per core), leaving a core to C's relay\n",
         threads, threads == 1 ? "" : "s");
  int ok = 0;
  double ttft[2][100], tps[2][100], total[2][100], events[2][100];
  long ntok = 0;
  int retried[2] = {0, 0};
  if (setup() == 0) {
    run r;
    ok = 1;
    for (int i = -1; i < reps && ok; i++) {
      for (int n = 0; n < 2 && ok; n++) {
        int a = 0;
        while (stream_once(n, &r) && ++a < 3) retried[n]++;
        if (a == 3) {
          ok = 0;
          break;
        }
        const char *want = n == P ? "local" : "network";
        if (strcmp(r.served, want) || (n == C && strcmp(r.node, ids[P]))) {
          fprintf(stderr, "bench_market: %s run served '%s' by %s\n", n == P ? "local" : "remote", r.served, r.node);
          ok = 0;
          break;
        }
        if (i < 0) continue;
        ttft[n][i] = (r.t_first - r.t0) * 1e3;
        tps[n][i] = (double)(r.completion_tokens - 1) / (r.t_last - r.t_first);
        total[n][i] = (r.t_last - r.t0) * 1e3;
        events[n][i] = r.n_text;
        ntok = r.completion_tokens;
        if (getenv("BENCH_VERBOSE"))
          printf("  run %d %-6s ttft %.1f ms, %.1f t/s, %d text events, %.1f ms\n", i, n == P ? "local" : "remote",
                 ttft[n][i], tps[n][i], r.n_text, total[n][i]);
      }
    }
  }
  if (ok) {
    double tt[2], ts[2], tw[2], te[2];
    for (int n = 0; n < 2; n++) {
      tt[n] = median(ttft[n], reps);
      ts[n] = median(tps[n], reps);
      tw[n] = median(total[n], reps);
      te[n] = median(events[n], reps);
    }
    printf("  %-28s %10s %10s %14s\n", "", "local (P)", "remote (C)", "remote/local");
    printf("  %-28s %10.1f %10.1f %13.2fx\n", "time to first token, ms", tt[P], tt[C], tt[C] / tt[P]);
    printf("  %-28s %10.1f %10.1f %13.2fx\n", "decode tokens/s", ts[P], ts[C], ts[C] / ts[P]);
    printf("  %-28s %10.1f %10.1f %13.2fx\n", "whole answer, ms", tw[P], tw[C], tw[C] / tw[P]);
    printf("  %-28s %10.0f %10.0f %13s\n", "SSE events with text", te[P], te[C], "");
    printf("  (%ld completion tokens per run; decode t/s = (tokens - 1) / (last - first token))\n", ntok);
    if (retried[P] || retried[C])
      printf("  requests that failed and were run again: %d local, %d remote (see the messages above)\n", retried[P],
             retried[C]);
    printf("  overhead = one extra hop: C's API picks P from the offers it knows and sends `generate`\n"
           "  over the open Noise link (first token: a loopback round trip and two JSON/SSE re-encodings);\n"
           "  each `$/stream` chunk is encrypted by P, decrypted by C and re-sent as SSE (decode). The\n"
           "  generation itself runs on P in both columns\n");
  } else {
    printf("bench_market: setup or a request failed; no figures (see messages above)\n");
  }
  for (int n = 1; n >= 0; n--) stop_node(n);
  if (!getenv("APIARY_KEEP_BENCH_DIR")) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  curl_global_cleanup();
  return 0;
}
