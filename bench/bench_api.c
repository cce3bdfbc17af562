/* bench_api — what the local API's door carries: requests/s and latency under load.
 *
 *   bench_api               (run by bench/run; needs $APIARY_BIN, $APIARY_SHARED and wrk)
 *
 * One node on loopback in a temporary home, serving the tiny reference model
 * ($APIARY_SHARED/testdata/tiny-spm4k-Q8_0.gguf) with the default config. wrk
 * (Debian's package) drives it for $BENCH_API_SECS seconds (default 10) at 1, 16 and 64
 * connections (and 200 for generations) with: GET /health (the door alone, no token), GET /v1/models (token checked,
 * a small JSON answer) and POST /v1/completions asking for one greedy token (the tiniest
 * generation: parse, tokenize, queue, one decode step, answer). The table shows requests/s
 * answered 200, requests/s refused 429 (past [http] max_generations, default 32: the bounded
 * queue at work) and wrk's latency percentiles over all requests. Skips, exiting 0, when
 * wrk, the mirror or the binary is missing. Nothing here asserts timings.
 * APIARY_KEEP_BENCH_DIR=1 keeps the home and the node's log. */
#include <arpa/inet.h>
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

static const char *bin;
static char dir[256], home[300], token[160];
static pid_t node_pid;
static int port;

/* Runs a shell command; returns its exit status. out (if not NULL) receives stdout. */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  FILE *f = popen(cmd, "r");
  if (!f) return -1;
  size_t n = 0, k;
  char tmp[4096];
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

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int p = 0;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    p = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return p;
}

static int start_node(void) {
  char http[64], log[400], out[256];
  port = free_port();
  snprintf(http, sizeof http, "127.0.0.1:%d", port);
  snprintf(log, sizeof log, "%s.log", home);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execl(bin, bin, "node", "--home", home, "--listen", "127.0.0.1:0", "--no-lan", "--no-dht", "--http", http,
          (char *)NULL);
    _exit(127);
  }
  node_pid = pid;
  for (int k = 0; k < 300; k++) { /* up when its API answers */
    if (sh(out, sizeof out, "curl -s -o /dev/null -w '%%{http_code}' http://%s/health", http) == 0 &&
        !strcmp(out, "200"))
      return 0;
    if (waitpid(pid, NULL, WNOHANG) == pid) break;
    usleep(50000);
  }
  fprintf(stderr, "bench_api: the node did not start (see %s)\n", log);
  return -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* wrk's figures for one run. */
typedef struct wrk_out { double rps, non2xx_ps, p50_ms, p90_ms, p99_ms; long requests; } wrk_out;

/* "1.23ms", "456.00us", "1.20s" → milliseconds. */
static double ms_of(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (!strncmp(end, "us", 2)) return v / 1000;
  if (!strncmp(end, "ms", 2)) return v;
  if (!strncmp(end, "s", 1)) return v * 1000;
  if (!strncmp(end, "m", 1)) return v * 60000;
  return v;
}

static int run_wrk(const char *script, const char *path, int conns, int secs, wrk_out *w) {
  static char out[1 << 16];
  memset(w, 0, sizeof *w);
  int threads = conns < 2 ? 1 : 2;
  if (sh(out, sizeof out, "wrk -t%d -c%d -d%ds --latency -s '%s' 'http://127.0.0.1:%d%s' 2>&1", threads, conns, secs,
         script, port, path))
    return -1;
  const char *p;
  double secs_run = secs;
  if ((p = strstr(out, " requests in "))) {
    const char *q = p;
    while (q > out && q[-1] != '\n') q--;
    w->requests = atol(q);
    secs_run = ms_of(p + strlen(" requests in ")) / 1000;
  }
  if ((p = strstr(out, "Requests/sec:"))) w->rps = atof(p + strlen("Requests/sec:"));
  if ((p = strstr(out, "Non-2xx or 3xx responses:")) && secs_run > 0)
    w->non2xx_ps = atof(p + strlen("Non-2xx or 3xx responses:")) / secs_run;
  if ((p = strstr(out, "Latency Distribution"))) {
    const char *q;
    if ((q = strstr(p, " 50% "))) w->p50_ms = ms_of(q + 5 + strspn(q + 5, " "));
    if ((q = strstr(p, " 90% "))) w->p90_ms = ms_of(q + 5 + strspn(q + 5, " "));
    if ((q = strstr(p, " 99% "))) w->p99_ms = ms_of(q + 5 + strspn(q + 5, " "));
  }
  if (!w->requests) {
    fprintf(stderr, "bench_api: wrk said:\n%s\n", out);
    return -1;
  }
  return 0;
}

/* Writes a wrk Lua script for one request kind; returns 0. */
static int write_script(const char *path, const char *method, const char *body, int auth) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "wrk.method = \"%s\"\n", method);
  if (body) fprintf(f, "wrk.body = '%s'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", body);
  if (auth) fprintf(f, "wrk.headers[\"Authorization\"] = \"Bearer %s\"\n", token);
  fclose(f);
  return 0;
}

int main(void) {
  const char *shared = getenv("APIARY_SHARED");
  bin = getenv("APIARY_BIN");
  char model[1024], out[4096];
  if (!bin || access(bin, X_OK) || !shared) {
    printf("bench_api: skipped ($APIARY_BIN and $APIARY_SHARED are needed)\n");
    return 0;
  }
  if (sh(NULL, 0, "command -v wrk >/dev/null 2>&1")) {
    printf("bench_api: skipped (wrk is not installed: apt-get install wrk, or run scripts/setup)\n");
    return 0;
  }
  snprintf(model, sizeof model, "%s/testdata/tiny-spm4k-Q8_0.gguf", shared);
  if (access(model, R_OK)) {
    printf("bench_api: skipped (no %s)\n", model);
    return 0;
  }
  int secs = getenv("BENCH_API_SECS") ? atoi(getenv("BENCH_API_SECS")) : 10;
  if (secs < 1) secs = 1;
  snprintf(dir, sizeof dir, "/tmp/apiary-bench-api-XXXXXX");
  if (!mkdtemp(dir)) return 1;
  snprintf(home, sizeof home, "%s/n", dir);
  int rc = 1;
  if (sh(NULL, 0, "'%s' init --home %s >/dev/null 2>&1 && '%s' model pull --home %s %s --name tiny >/dev/null 2>&1", bin,
         home, bin, home, model) ||
      sh(out, sizeof out, "'%s' token --home %s create --json 2>/dev/null", bin, home)) {
    fprintf(stderr, "bench_api: could not set up the node's home in %s\n", dir);
    goto done;
  }
  json_t *j = json_loads(out, 0, NULL);
  snprintf(token, sizeof token, "%s", json_string_value(json_object_get(j, "token")) ? json_string_value(json_object_get(j, "token")) : "");
  json_decref(j);
  if (start_node()) goto done;
  char s_health[400], s_models[400], s_gen[400];
  snprintf(s_health, sizeof s_health, "%s/health.lua", dir);
  snprintf(s_models, sizeof s_models, "%s/models.lua", dir);
  snprintf(s_gen, sizeof s_gen, "%s/gen.lua", dir);
  write_script(s_health, "GET", NULL, 0);
  write_script(s_models, "GET", NULL, 1);
  write_script(s_gen, "POST", "{\"model\":\"tiny\",\"prompt\":\"Once upon a time\",\"max_tokens\":1,\"temperature\":0}", 1);
  struct { const char *name, *script, *path; } kinds[] = {
      {"GET /health", s_health, "/health"},
      {"GET /v1/models", s_models, "/v1/models"},
      {"POST /v1/completions (1 token)", s_gen, "/v1/completions"},
  };
  int conns[] = {1, 16, 64, 200};
  printf("local API under wrk, %d s a run, tiny model, default config (max_generations 32)\n\n", secs);
  printf("| %-30s | %5s | %10s | %10s | %8s | %8s | %8s |\n", "request", "conns", "200/s", "429/s", "p50 ms",
         "p90 ms", "p99 ms");
  printf("|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------------", "------:", "-----------:", "-----------:",
         "---------:", "---------:", "---------:");
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
    for (size_t c = 0; c < sizeof conns / sizeof *conns; c++) {
      wrk_out w;
      if (conns[c] > 64 && k != 2) continue; /* the crowd only where it can be refused */
      if (run_wrk(kinds[k].script, kinds[k].path, conns[c], secs, &w)) goto done;
      printf("| %-30s | %5d | %10.0f | %10.0f | %8.2f | %8.2f | %8.2f |\n", kinds[k].name, conns[c],
             w.rps - w.non2xx_ps, w.non2xx_ps, w.p50_ms, w.p90_ms, w.p99_ms);
      fflush(stdout);
    }
  rc = 0;
done:
  if (node_pid > 0) {
    kill(node_pid, SIGTERM);
    waitpid(node_pid, NULL, 0);
  }
  if (!getenv("APIARY_KEEP_BENCH_DIR")) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  else printf("bench_api: kept %s\n", dir);
  return rc;
}
