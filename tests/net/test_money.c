/* Money always adds up, under kills and a full disk: real node processes, a real anvil.
 *
 *   A and B sell stories15M (speed-capped so answers take seconds); C buys through its API
 *   and pays a voucher every 4 tokens. Ten times, a streamed request is started and, at a
 *   random moment, the serving provider or the client is SIGKILLed (between any two steps of
 *   a voucher's life: signed, sent, committed, answered) and started again. After each kill
 *   the books are checked until they settle; for every channel:
 *
 *     client signed (C's channel total) = provider accepted (its channel total)
 *       = claimed on chain (read back from the Escrow) = sum of the provider's receipts
 *       = sum of the client's receipts,
 *
 *   and an answer that survived a provider's death is complete. The seed is printed;
 *   APIARY_TEST_SEED replays a run.
 *
 *   An abandoned request: a non-streamed request whose client hangs up after a second stops
 *   on the provider within about a second, and stops being paid.
 *
 *   A full disk (needs root for a tmpfs; skipped otherwise): B's home on a small tmpfs that
 *   is then filled. B refuses new work up front with an error naming its disk; the user gets
 *   an error and pays nothing; the books still add up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../support/cluster.h"
#include "../support/testutil.h"

enum { A = 0, B = 1, C = 2 };
#define PRICE_P "1000000000"
#define PRICE_G "3000000007"

static tu_cluster cl;
static int ready;
static char sha[65], token[128], prompt[512];
static char out[1 << 18], errb[1 << 16];

static int setup(void **state) {
  (void)state;
  char mirror[1024];
  if (!tu_shared() || tu_shared_path(mirror, sizeof mirror, "models")) return 0;
  int rc = tu_cluster_init(&cl, 3);
  if (rc) return rc > 0 ? 0 : -1;
  for (int n = A; n <= B; n++) {
    tu_node_set(&cl, n, "price_prompt", PRICE_P);
    tu_node_set(&cl, n, "price_gen", PRICE_G);
    tu_node_set(&cl, n, "claim_threshold_wei", "\"1\"");
    tu_node_set(&cl, n, "claim_interval", "1");
    tu_node_set(&cl, n, "max_tps", "30");
    if (tu_apiary(out, sizeof out, errb, sizeof errb, "model pull --home %s stories15M --from %s", cl.node[n].home,
                  mirror))
      return -1;
  }
  tu_node_set(&cl, C, "stall_timeout", "4000");
  tu_node_set(&cl, C, "pay_every", "4");
  json_t *ml = tu_node_json(&cl, A, "model list");
  snprintf(sha, sizeof sha, "%s", json_string_value(json_object_get(json_array_get(json_object_get(ml, "models"), 0), "sha256")));
  json_decref(ml);
  char refpath[1200];
  snprintf(refpath, sizeof refpath, "%s/stories15M-Q8_0.ref.json", mirror);
  json_t *ref = tu_load_json(refpath);
  snprintf(prompt, sizeof prompt, "%s",
           json_string_value(json_object_get(json_array_get(json_object_get(ref, "greedy"), 0), "prompt")));
  json_decref(ref);
  for (int n = A; n <= C; n++)
    if (tu_node_start(&cl, n)) return -1;
  if (!tu_node_wait_offer(&cl, C, sha, A) || !tu_node_wait_offer(&cl, C, sha, B)) return -1;
  if (tu_node_token(&cl, C, token, sizeof token)) return -1;
  ready = 1;
  return 0;
}

static int b_mounted; /* B's home is on the test's tmpfs */

static int teardown(void **state) {
  (void)state;
  if (cl.n) {
    for (int n = A; n <= C; n++) tu_node_stop(&cl, n);
    if (b_mounted) tu_sh("umount %s", cl.node[B].home);
    tu_cluster_free(&cl);
  }
  return 0;
}

#define REQUIRE_READY()                                                   \
  do {                                                                    \
    if (!ready) {                                                         \
      print_message("anvil or ../shared not available; skipping\n");    \
      skip();                                                             \
    }                                                                     \
  } while (0)

/* ---- the books ------------------------------------------------------------------------ */

typedef struct chan_books {
  char id[80];
  int provider;           /* A or B */
  uint64_t signed_c, accepted_p, claimed_p, sum_c, sum_p;
} chan_books;

static uint64_t receipts_sum(int n, const char *role, const char *chan) {
  json_t *l = tu_node_json(&cl, n, "receipts --role %s", role);
  uint64_t s = 0;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(l, "receipts"), k, x) {
    const char *ch = json_string_value(json_object_get(x, "channel"));
    if (!ch || strcmp(ch, chan)) continue;
    s += tu_dec(x, "amount");
    /* a receipt that was paid names what was paid for, even after its node was killed */
    if (tu_dec(x, "amount") && !json_integer_value(json_object_get(x, "prompt_tokens")) &&
        !json_integer_value(json_object_get(x, "gen_tokens")))
      fail_msg("a %s receipt of %s wei names no tokens (request %s)", role, json_string_value(json_object_get(x, "amount")),
               json_string_value(json_object_get(x, "request")));
  }
  json_decref(l);
  return s;
}

/* Reads every client channel of C and the provider's side of it. Returns the count. */
static int read_books(chan_books *b, int cap, int *unanswered) {
  json_t *st = tu_node_json(&cl, C, "status");
  *unanswered = (int)json_integer_value(json_object_get(json_object_get(st, "market"), "vouchers_unanswered"));
  json_decref(st);
  json_t *cc = tu_node_json(&cl, C, "channel list");
  int n = 0;
  size_t k;
  json_t *x;
  json_array_foreach(json_object_get(cc, "channels"), k, x) {
    if (n >= cap || strcmp(json_string_value(json_object_get(x, "role")) ?: "", "client")) continue;
    chan_books *e = &b[n];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "%s", json_string_value(json_object_get(x, "id")));
    e->signed_c = tu_dec(x, "signed");
    e->provider = -1;
    for (int p = A; p <= B; p++) {
      json_t *pc = tu_node_json(&cl, p, "channel list");
      size_t j;
      json_t *y;
      json_array_foreach(json_object_get(pc, "channels"), j, y) {
        if (strcmp(json_string_value(json_object_get(y, "id")) ?: "", e->id)) continue;
        e->provider = p;
        e->accepted_p = tu_dec(y, "signed");
        e->claimed_p = tu_dec(y, "claimed");
      }
      json_decref(pc);
    }
    e->sum_c = receipts_sum(C, "client", e->id);
    if (e->provider >= 0) e->sum_p = receipts_sum(e->provider, "provider", e->id);
    n++;
  }
  json_decref(cc);
  return n;
}

static int agree(const chan_books *e) {
  return e->provider >= 0 && e->signed_c == e->accepted_p && e->accepted_p == e->claimed_p &&
         e->claimed_p == e->sum_p && e->sum_p == e->sum_c;
}

/* Waits until every channel's books agree (vouchers answered, claims mined). */
static void check_books(const char *when) {
  chan_books b[16];
  int n = 0, unanswered = 0, ok = 0;
  for (int t = 0; t < 60 && !ok; t++) {
    n = read_books(b, 16, &unanswered);
    ok = n > 0 && unanswered == 0;
    for (int i = 0; i < n && ok; i++) ok = agree(&b[i]);
    if (!ok) usleep(250000);
  }
  if (ok) return;
  for (int i = 0; i < n; i++)
    print_message("channel %.12s… (%c): client signed %llu, provider accepted %llu, claimed %llu, provider receipts "
                  "%llu, client receipts %llu\n",
                  b[i].id, b[i].provider >= 0 ? 'A' + b[i].provider : '?', (unsigned long long)b[i].signed_c,
                  (unsigned long long)b[i].accepted_p, (unsigned long long)b[i].claimed_p,
                  (unsigned long long)b[i].sum_p, (unsigned long long)b[i].sum_c);
  fail_msg("the books do not add up %s (%d channels, %d vouchers unanswered)", when, n, unanswered);
}

/* ---- requests ------------------------------------------------------------------------- */

static char sse[400], hpath[400];

static pid_t stream_request(int max_tokens) {
  static char cmd[4096];
  snprintf(sse, sizeof sse, "%s/sse.txt", cl.dir);
  snprintf(hpath, sizeof hpath, "%s/sse-hdr.txt", cl.dir);
  unlink(sse);
  unlink(hpath);
  snprintf(cmd, sizeof cmd,
           "curl -s -N -D %s -o %s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":%d,\"temperature\":0,\"stream\":true}'",
           hpath, sse, token, tu_node_http_port(&cl, C), prompt, max_tokens);
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  return tu_spawn(argv, NULL);
}

/* Waits for the stream's first chunk; returns the provider producing it (A or B: the
 * newest chunk's apiary.node), or -1. */
static int serving(void) {
  static char line[1 << 16], last[1 << 16];
  for (int i = 0; i < 400; i++) {
    usleep(25000);
    FILE *f = fopen(sse, "r");
    last[0] = 0;
    while (f && fgets(line, sizeof line, f))
      if (!strncmp(line, "data: {", 7)) memcpy(last, line, strlen(line) + 1);
    if (f) fclose(f);
    if (!last[0]) continue;
    json_t *e = json_loads(last + 6, 0, NULL);
    const char *node = json_string_value(json_object_get(json_object_get(e, "apiary"), "node"));
    int who = -1;
    for (int p = A; p <= B; p++)
      if (node && !strcmp(node, cl.node[p].id)) who = p;
    json_decref(e);
    return who;
  }
  return -1;
}

/* The last event of the stream: its finish reason ("" when it ended without one). */
static void stream_finish(char *fin, size_t cap) {
  FILE *f = fopen(sse, "r");
  static char line[1 << 16];
  fin[0] = 0;
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "data: {", 7)) continue;
    json_t *e = json_loads(line + 6, 0, NULL);
    const char *r = json_string_value(json_object_get(json_array_get(json_object_get(e, "choices"), 0), "finish_reason"));
    if (r) snprintf(fin, cap, "%s", r);
    json_decref(e);
  }
  if (f) fclose(f);
}

static void test_kills(void **state) {
  (void)state;
  REQUIRE_READY();
  unsigned seed = getenv("APIARY_TEST_SEED") ? (unsigned)atoi(getenv("APIARY_TEST_SEED")) : (unsigned)time(NULL);
  print_message("money: seed %u (APIARY_TEST_SEED=%u replays it)\n", seed, seed);
  srand(seed);
  int kills[3] = {0, 0, 0};
  for (int round = 0; round < 10; round++) {
    int kill_client = rand() % 3 == 2;
    int delay_ms = rand() % 1500;
    pid_t curl = stream_request(80);
    int prov = serving();
    if (prov < 0) fail_msg("round %d: the stream did not start", round);
    usleep((useconds_t)delay_ms * 1000);
    int victim = kill_client ? C : prov;
    tu_node_kill(&cl, victim);
    kills[victim]++;
    int st = tu_wait_exit(curl, 60000);
    if (victim != C) { /* the answer continues on the other provider and completes */
      char fin[32];
      stream_finish(fin, sizeof fin);
      if (st != 0 || strcmp(fin, "length"))
        fail_msg("round %d (seed %u): after %c was killed the answer ended '%s' (curl %d)", round, seed, 'A' + victim,
                 fin, st);
    }
    if (tu_node_start(&cl, victim)) fail_msg("round %d: node %c did not restart", round, 'A' + victim);
    for (int p = A; p <= B; p++)
      if (!tu_node_wait_offer(&cl, C, sha, p)) fail_msg("round %d: C does not see %c's offer again", round, 'A' + p);
    char when[80];
    snprintf(when, sizeof when, "after round %d (seed %u, %c killed after %d ms)", round, seed, 'A' + victim, delay_ms);
    check_books(when);
  }
  print_message("money: 10 kills (A %d, B %d, C %d), books agree after each\n", kills[A], kills[B], kills[C]);
}

static void test_abandoned(void **state) {
  (void)state;
  REQUIRE_READY();
  /* a non-streamed request for 200 tokens (~7 s at 30 tok/s) whose client leaves after 1.5 s */
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "curl -s --max-time 1.5 -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":200,\"temperature\":0}'",
           token, tu_node_http_port(&cl, C), prompt);
  tu_run(cmd, out, sizeof out, NULL, 0);
  time_t left = time(NULL);
  /* C stops routing it and tells the provider; the provider stops generating */
  int routing = 1;
  for (int i = 0; i < 40 && routing; i++) {
    json_t *s = tu_node_json(&cl, C, "status");
    routing = (int)json_integer_value(json_object_get(json_object_get(s, "market"), "requests_routing"));
    json_decref(s);
    if (routing) usleep(100000);
  }
  assert_int_equal(routing, 0);
  sleep(1);
  json_t *l = tu_node_json(&cl, C, "receipts --role client");
  json_t *r = json_array_get(json_object_get(l, "receipts"), 0);
  char req[40];
  snprintf(req, sizeof req, "%s", json_string_value(json_object_get(r, "request")));
  json_decref(l);
  json_int_t g1 = -1;
  for (int p = A; p <= B; p++) {
    json_t *pl = tu_node_json(&cl, p, "receipts --role provider");
    size_t k;
    json_t *x;
    json_array_foreach(json_object_get(pl, "receipts"), k, x) {
      if (!strcmp(json_string_value(json_object_get(x, "request")) ?: "", req)) g1 = json_integer_value(json_object_get(x, "gen_tokens"));
    }
    json_decref(pl);
  }
  if (g1 < 0) fail_msg("no provider receipt for the abandoned request %s", req);
  /* 200 tokens would take ~7 s; it stopped soon after the client left */
  if (g1 >= 120) fail_msg("the provider generated %lld of 200 tokens for a client that left after 1.5 s", (long long)g1);
  print_message("money: abandoned after 1.5 s: the provider stopped at %lld tokens (%lds after)\n", (long long)g1,
                (long)(time(NULL) - left));
  check_books("after an abandoned request");
}

static void test_disk_full(void **state) {
  (void)state;
  REQUIRE_READY();
  if (geteuid() != 0) {
    print_message("not root: cannot mount a tmpfs for the full-disk case; skipping\n");
    skip();
  }
  /* B's home moves onto a small tmpfs (model 27 MB + database). */
  tu_node_stop(&cl, B);
  const char *bh = cl.node[B].home;
  if (tu_sh("cp -a %s %s.save && mount -t tmpfs -o size=40m tmpfs %s && cp -a %s.save/. %s/", bh, bh, bh, bh, bh)) {
    print_message("cannot mount a tmpfs here; skipping\n");
    tu_sh("umount %s 2>/dev/null; rm -rf %s && mv %s.save %s", bh, bh, bh, bh);
    tu_node_start(&cl, B);
    skip();
  }
  b_mounted = 1;
  assert_int_equal(tu_node_start(&cl, B), 0);
  tu_node_stop(&cl, A); /* B is the only seller */
  assert_true(tu_node_wait_offer(&cl, C, sha, B));
  /* fill the disk */
  tu_sh("dd if=/dev/zero of=%s/filler bs=64k 2>/dev/null; sync", bh);
  char cmd[4096], hdr[400];
  snprintf(hdr, sizeof hdr, "%s/full-hdr.txt", cl.dir);
  snprintf(cmd, sizeof cmd,
           "curl -s -D %s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":20,\"temperature\":0}'",
           hdr, token, tu_node_http_port(&cl, C), prompt);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  json_t *r = json_loads(out, 0, NULL);
  const char *msg = json_string_value(json_object_get(json_object_get(r, "error"), "message"));
  if (!msg || !strstr(msg, "disk")) fail_msg("a full provider's refusal should name its disk: %s", out);
  print_message("money: full disk: %s\n", msg);
  json_decref(r);
  /* no answer, no charge: the error carries no cost */
  assert_int_equal(tu_sh("grep -qi '^HTTP/1.1 5' %s", hdr), 0);
  assert_int_not_equal(tu_sh("grep -qi '^X-Apiary-Cost-Wei: [1-9]' %s", hdr), 0);
  /* space again: B sells again */
  tu_sh("rm -f %s/filler", bh);
  snprintf(cmd, sizeof cmd,
           "curl -s -H 'Authorization: Bearer %s' http://127.0.0.1:%d/v1/completions -d "
           "'{\"model\":\"stories15M\",\"prompt\":\"%s\",\"max_tokens\":8,\"temperature\":0}'",
           token, tu_node_http_port(&cl, C), prompt);
  assert_int_equal(tu_run(cmd, out, sizeof out, NULL, 0), 0);
  if (!strstr(out, "\"choices\"")) fail_msg("B does not sell again once it has space: %s", out);
  assert_int_equal(tu_node_start(&cl, A), 0);
  check_books("after B's disk had space again");
  tu_node_stop(&cl, B);
  if (tu_sh("umount %s", bh) == 0) b_mounted = 0;
  tu_sh("rm -rf %s && mv %s.save %s", bh, bh, bh);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kills),
      cmocka_unit_test(test_abandoned),
      cmocka_unit_test(test_disk_full),
  };
  return cmocka_run_group_tests_name("money", tests, setup, teardown);
}
