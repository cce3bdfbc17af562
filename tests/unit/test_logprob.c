/* llm/logprob and the worker's logprob records (llm/local) against llama.cpp's reference
 * logits (shared *.ref.json, see their READMEs), for the tiny SPM model and stories15M (F32):
 *   - the math: logprob_top's order (ties: lower id first) and logprob_lse;
 *   - greedy generation with logprobs: each token is the reference's greedy token; at the
 *     first step (where the reference has the logsumexp) its logprob and the 20 alternatives'
 *     equal llama.cpp's logit - logsumexp within 1e-3, ids in order up to near-ties; at every
 *     later step the top-5 ids follow llama.cpp's order and their logprob gaps equal its logit
 *     gaps within 1e-3; the bytes are the reference's pieces;
 *   - echo: the prompt plus the first greedy pieces, evaluated position by position, gives
 *     the prompt's ids (BOS not reported) and, at the generated positions, the same numbers;
 *   - a stop string cuts the records of the tokens whose text it cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "core/hex.h"
#include "llm/local.h"
#include "llm/logprob.h"

#define TOL 1e-3

static void math_top_and_lse(void **state) {
  (void)state;
  float lg[8] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f, 3.0f, 2.5f};
  int32_t ids[LOGPROB_MAX_TOP];
  assert_int_equal(logprob_top(lg, 8, 4, ids), 4);
  int32_t want[4] = {1, 3, 6, 7};
  for (int i = 0; i < 4; i++) assert_int_equal(ids[i], want[i]);
  assert_int_equal(logprob_top(lg, 3, 20, ids), 3);
  assert_int_equal(ids[0], 1);
  assert_int_equal(ids[2], 0);
  double s = 0;
  for (int i = 0; i < 8; i++) s += exp((double)lg[i]);
  assert_true(fabs(logprob_lse(lg, 8) - log(s)) < 1e-9);
}

/* A job's records after it ends: count, with the bytes in b. */
static int run_records(local_svc *w, const char *path, const char *prompt, size_t plen, int max_tokens, int top,
                       int echo, const char *stop, logprob_rec *recs, int cap, buf *b, char *text, size_t text_cap) {
  local_req lr;
  memset(&lr, 0, sizeof lr);
  snprintf(lr.model_path, sizeof lr.model_path, "%s", path);
  lr.prompt = strndup(prompt, plen);
  lr.prompt_len = plen;
  lr.add_bos = -1;
  lr.sp = sample_default_params();
  lr.sp.temp = 0;
  lr.max_tokens = max_tokens;
  lr.logprobs = 1;
  lr.top_logprobs = top;
  lr.echo_logprobs = echo;
  if (stop) lr.stop[lr.n_stop++] = strdup(stop);
  local_job *j;
  assert_int_equal(local_submit(w, &lr, &j), 0);
  local_result r;
  assert_int_equal(local_job_wait(j, 120000, &r), 0);
  assert_int_not_equal(r.finish, LOCAL_ERROR);
  size_t tl = 0;
  int n;
  while ((n = local_job_read(j, text + tl, text_cap - 1 - tl, 0)) > 0) tl += (size_t)n;
  text[tl] = 0;
  int got = local_job_read_logprobs(j, recs, cap, b);
  assert_true(got >= 0);
  local_job_release(j);
  return got;
}

static double jnum(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }
static int32_t pair_id(json_t *top, size_t i) { return (int32_t)json_integer_value(json_array_get(json_array_get(top, i), 0)); }
static double pair_v(json_t *top, size_t i) { return json_number_value(json_array_get(json_array_get(top, i), 1)); }

/* rec's alternatives against a reference top list [[id, logit]...] of the same position:
 * with lse (the reference's logsumexp) absolute logprobs, else gaps to the first. */
static void check_position(const logprob_rec *rec, json_t *top, double lse, int with_lse, const char *what) {
  size_t k = json_array_size(top);
  assert_true((size_t)rec->n_top >= k);
  for (size_t i = 0; i < k; i++) {
    double want = with_lse ? pair_v(top, i) - lse : pair_v(top, i) - pair_v(top, 0);
    double got = with_lse ? rec->top[i].logprob : rec->top[i].logprob - rec->top[0].logprob;
    if (fabs(got - want) > TOL) fail_msg("%s: alternative %zu logprob %.5f, reference %.5f", what, i, got, want);
    int near_tie = (i > 0 && pair_v(top, i - 1) - pair_v(top, i) < TOL) ||
                   (i + 1 < k && pair_v(top, i) - pair_v(top, i + 1) < TOL);
    if (!near_tie && rec->top[i].id != pair_id(top, i))
      fail_msg("%s: alternative %zu is %d, reference %d", what, i, rec->top[i].id, pair_id(top, i));
  }
  for (int i = 1; i < rec->n_top; i++) assert_true(rec->top[i].logprob <= rec->top[i - 1].logprob);
  /* the chosen (greedy) token is the first alternative */
  assert_int_equal(rec->tok.id, rec->top[0].id);
  assert_true(rec->tok.logprob == rec->top[0].logprob);
}

/* The reference's steps pieces [0, m) as bytes. */
static size_t ref_pieces(json_t *steps, int m, char *out, size_t cap) {
  size_t n = 0;
  for (int i = 0; i < m; i++) {
    const char *h = json_string_value(json_object_get(json_array_get(steps, (size_t)i), "piece_hex"));
    uint8_t tmp[256];
    int b = hex_decode_var(h, strlen(h), tmp, sizeof tmp);
    assert_true(b >= 0 && n + (size_t)b < cap);
    memcpy(out + n, tmp, (size_t)b);
    n += (size_t)b;
  }
  return n;
}

static void against_reference(const char *rel) {
  TU_REQUIRE_SHARED();
  char path[1024], refp[1024];
  snprintf(refp, sizeof refp, "%s.ref.json", rel);
  snprintf(path, sizeof path, "%s.gguf", rel);
  char gguf[1024];
  assert_int_equal(tu_shared_path(gguf, sizeof gguf, path), 0);
  tu_shared_path(path, sizeof path, refp);
  json_t *ref = tu_load_json(path);
  local_svc *w;
  assert_int_equal(local_svc_new(1, 512, &w), 0);
  enum { CAP = 80 };
  logprob_rec *recs = calloc(CAP, sizeof *recs);
  static char text[8192];
  size_t gi;
  json_t *g;
  json_array_foreach(json_object_get(ref, "greedy"), gi, g) {
    const char *prompt = json_string_value(json_object_get(g, "prompt"));
    json_t *steps = json_object_get(g, "steps"), *last = json_object_get(g, "last_prompt_token_logits");
    json_t *gids = json_object_get(g, "greedy_ids");
    char what[256];
    buf b;
    buf_init(&b);
    int ng = 16;
    int n = run_records(w, gguf, prompt, strlen(prompt), ng, 20, 0, NULL, recs, CAP, &b, text, sizeof text);
    assert_int_equal(n, ng);
    for (int i = 0; i < n; i++) {
      snprintf(what, sizeof what, "%s greedy %zu step %d", rel, gi, i);
      json_t *st = json_array_get(steps, (size_t)i);
      assert_int_equal(recs[i].tok.id, (int32_t)json_integer_value(json_array_get(gids, (size_t)i)));
      assert_int_equal(recs[i].prompt, 0);
      assert_true(recs[i].tok.logprob <= 0);
      /* the bytes are llama.cpp's piece */
      const char *h = json_string_value(json_object_get(st, "piece_hex"));
      char hx[512];
      hex_encode(b.ptr + recs[i].tok.off, recs[i].tok.len, hx);
      assert_string_equal(hx, h);
      if (i == 0) {
        check_position(&recs[0], json_object_get(last, "top"), jnum(last, "logsumexp"), 1, what);
        double want = pair_v(json_object_get(last, "top"), 0) - jnum(last, "logsumexp");
        if (fabs(recs[0].tok.logprob - want) > TOL) fail_msg("%s: logprob %.5f, reference %.5f", what, recs[0].tok.logprob, want);
      } else {
        check_position(&recs[i], json_object_get(st, "top5"), 0, 0, what);
      }
    }
    /* echo: prompt + the first 4 greedy pieces, position by position */
    char ptext[4096];
    size_t pl = strlen(prompt);
    memcpy(ptext, prompt, pl);
    pl += ref_pieces(steps, 4, ptext + pl, sizeof ptext - pl);
    buf_reset(&b);
    n = run_records(w, gguf, ptext, pl, 1, 5, 1, NULL, recs, CAP, &b, text, sizeof text);
    json_t *pids = json_object_get(g, "prompt_ids");
    int np = (int)json_array_size(pids) - 1; /* BOS is not reported */
    assert_int_equal(n, np + 4 + 1);
    assert_true(isnan(recs[0].tok.logprob) == 0); /* given BOS */
    for (int i = 0; i < np; i++) {
      assert_int_equal(recs[i].prompt, 1);
      assert_int_equal(recs[i].tok.id, (int32_t)json_integer_value(json_array_get(pids, (size_t)i + 1)));
      assert_true(recs[i].tok.logprob <= 0 && recs[i].n_top == 5);
    }
    for (int i = 0; i < 4; i++) {
      const logprob_rec *r = &recs[np + i];
      snprintf(what, sizeof what, "%s echo %zu position %d", rel, gi, i);
      assert_int_equal(r->prompt, 1);
      assert_int_equal(r->tok.id, (int32_t)json_integer_value(json_array_get(gids, (size_t)i)));
      if (i == 0) {
        check_position(r, json_object_get(json_array_get(steps, 0), "top5"), jnum(last, "logsumexp"), 1, what);
      } else {
        check_position(r, json_object_get(json_array_get(steps, (size_t)i), "top5"), 0, 0, what);
      }
    }
    assert_int_equal(recs[np + 4].prompt, 0); /* then the generated token: the 5th greedy one */
    assert_int_equal(recs[np + 4].tok.id, (int32_t)json_integer_value(json_array_get(gids, 4)));
    buf_deinit(&b);
  }
  free(recs);
  local_svc_free(w);
  json_decref(ref);
}

static void tiny_f32(void **state) {
  (void)state;
  against_reference("testdata/tiny-spm4k-F32");
}

static void stories_f32(void **state) {
  (void)state;
  against_reference("models/stories15M-F32");
}

/* A stop string: the records of tokens whose text it cut are dropped with the text; the
 * tokens kept spell out exactly the text returned. */
static void stop_string_cuts(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  char gguf[1024], path[1024];
  assert_int_equal(tu_shared_path(gguf, sizeof gguf, "testdata/tiny-spm4k-F32.gguf"), 0);
  tu_shared_path(path, sizeof path, "testdata/tiny-spm4k-F32.ref.json");
  json_t *ref = tu_load_json(path);
  json_t *g = json_array_get(json_object_get(ref, "greedy"), 0);
  const char *prompt = json_string_value(json_object_get(g, "prompt"));
  char full[1024];
  size_t fl = ref_pieces(json_object_get(g, "steps"), 8, full, sizeof full);
  full[fl] = 0;
  /* a 2-byte stop string that first occurs inside a piece (not at its start) */
  char stop[3] = "";
  int cut_piece = -1;
  size_t cut = 0, start = 0;
  for (int p = 0; p < 8 && cut_piece < 0; p++) {
    char upto[1024];
    size_t end = ref_pieces(json_object_get(g, "steps"), p + 1, upto, sizeof upto);
    for (size_t c = start + 1; p >= 2 && c + 1 < end && c + 2 <= fl && cut_piece < 0; c++) {
      memcpy(stop, full + c, 2);
      if (memmem(full, fl, stop, 2) == full + c && !memchr(stop, 0, 2)) cut_piece = p, cut = c;
    }
    start = end;
  }
  assert_true(cut_piece >= 0);
  local_svc *w;
  assert_int_equal(local_svc_new(1, 512, &w), 0);
  logprob_rec recs[16];
  buf b;
  buf_init(&b);
  static char text[2048];
  int n = run_records(w, gguf, prompt, strlen(prompt), 8, 0, 0, stop, recs, 16, &b, text, sizeof text);
  assert_int_equal(strlen(text), cut);
  assert_int_equal(n, cut_piece + 1); /* the cut token's text is partly out */
  size_t off = 0;
  for (int i = 0; i < cut_piece; i++) {
    assert_memory_equal(b.ptr + recs[i].tok.off, text + off, recs[i].tok.len);
    off += recs[i].tok.len;
    assert_int_equal(recs[i].n_top, 0);
  }
  buf_deinit(&b);
  local_svc_free(w);
  json_decref(ref);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(math_top_and_lse),
      cmocka_unit_test(tiny_f32),
      cmocka_unit_test(stories_f32),
      cmocka_unit_test(stop_string_cuts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
