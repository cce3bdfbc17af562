/* libFuzzer harness: byte-level BPE encoding of arbitrary text (prompts come from anyone).
 * At start it writes one small vocabulary per pre-tokenizer kind (every byte's character,
 * merges that build longer tokens, control and user-defined tokens) and loads it. Each
 * input: the first byte picks the pre-tokenizer, the rest is the text. Checks: encoding
 * succeeds both ways (special text parsed and not); with special text read as plain text,
 * decoding the ids through the stream gives back the text exactly, with each invalid UTF-8
 * byte replaced by U+FFFD (every byte has a token, so nothing may be lost); every id is in
 * range. Seeds: tests/fuzz/corpus/fuzz_tok_bpe. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm/gguf.h"
#include "llm/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const pres[] = {"llama-bpe", "qwen2",          "gpt-2",  "deepseek-v3", "deepseek-llm",
                                   "default",   "deepseek-coder", "tekken", "bloom",       "starcoder",
                                   "falcon",    "viking",         "chatglm-bpe"};
#define N_PRE (sizeof pres / sizeof *pres)
static tok *toks[N_PRE];

/* UTF-8 of GPT-2's character for byte b. */
static size_t byte_char(int b, char *out) {
  int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  int cp = b;
  if (!printable) {
    cp = 256;
    for (int i = 0; i < b; i++) cp += !((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255));
  }
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2;
}

static void build(void) {
  enum { N_BYTES = 256, N_EXTRA = 8 };
  static char store[N_BYTES][3];
  gguf_str items[N_BYTES + N_EXTRA];
  int32_t types[N_BYTES + N_EXTRA];
  for (int b = 0; b < N_BYTES; b++) {
    size_t n = byte_char(b, store[b]);
    items[b] = (gguf_str){store[b], n};
    types[b] = 1;
  }
  static const char *const extra[N_EXTRA] = {"\xc4\xa0t", "he", "\xc4\xa0the", "in", "ing", "12", "<|end|>", "<tool>"};
  for (int i = 0; i < N_EXTRA; i++) {
    items[N_BYTES + i] = (gguf_str){extra[i], strlen(extra[i])};
    types[N_BYTES + i] = i == 6 ? 3 : i == 7 ? 4 : 1;
  }
  static const char *const merges_c[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he", "i n", "in g", "1 2"};
  gguf_str merges[6];
  for (int i = 0; i < 6; i++) merges[i] = (gguf_str){merges_c[i], strlen(merges_c[i])};
  char path[] = "/tmp/fuzz_tok_bpe_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) abort();
  close(fd);
  for (size_t p = 0; p < N_PRE; p++) {
    gguf_writer *w = gguf_writer_new();
    if (!w || gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2", 4) ||
        gguf_writer_set_str(w, "tokenizer.ggml.pre", pres[p], strlen(pres[p])) ||
        gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", items, N_BYTES + N_EXTRA) ||
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, N_BYTES + N_EXTRA) ||
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 6) || gguf_writer_write(w, path))
      abort();
    gguf_writer_free(w);
    gguf_file *f;
    char err[256];
    if (gguf_open(path, &f, err, sizeof err) || tok_new_from_gguf(f, &toks[p], err, sizeof err)) {
      fprintf(stderr, "fuzz_tok_bpe: %s: %s\n", pres[p], err);
      abort();
    }
    gguf_close(f);
  }
  unlink(path);
}

/* Strict UTF-8 length of the character at p, or 0 (same rule as the tokenizer). */
static size_t valid(const uint8_t *p, size_t n) {
  uint8_t c = p[0], lo = 0x80, hi = 0xBF;
  size_t k;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) k = 2;
  else if (c >= 0xE0 && c <= 0xEF) k = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
  else if (c >= 0xF0 && c <= 0xF4) k = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
  else return 0;
  if (n < k || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!toks[0]) build();
  if (size < 1 || size > 4096) return 0;
  const tok *t = toks[data[0] % N_PRE];
  const char *text = (const char *)data + 1;
  size_t len = size - 1;
  int32_t *ids = malloc((3 * len + 2) * sizeof *ids); /* an invalid byte is 3 bytes of U+FFFD */
  char *want = malloc(3 * len + 1), *got = malloc(3 * len + 16);
  if (!ids || !want || !got) abort();
  int n = tok_encode(t, text, len, 1, 1, ids, 3 * len + 2);
  if (n < 0 || (size_t)n > 3 * len + 1) abort();
  n = tok_encode(t, text, len, 0, 0, ids, 3 * len + 2);
  if (n < 0 || (size_t)n > 3 * len) abort();
  size_t wn = 0;
  for (size_t i = 0; i < len;) {
    size_t k = valid((const uint8_t *)text + i, len - i);
    if (k) memcpy(want + wn, text + i, k), wn += k, i += k;
    else memcpy(want + wn, "\xef\xbf\xbd", 3), wn += 3, i++;
  }
  tok_stream s;
  tok_stream_init(&s);
  s.at_start = 1; /* no space prefix in BPE: must not drop anything */
  size_t gn = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) abort();
    int r = tok_stream_feed(t, &s, ids[i], got + gn, 3 * len + 16 - gn);
    if (r < 0) abort();
    gn += (size_t)r;
  }
  int r = tok_stream_flush(&s, got + gn, 3 * len + 16 - gn);
  if (r < 0) abort();
  gn += (size_t)r;
  if (gn != wn || memcmp(got, want, wn)) abort();
  free(ids);
  free(want);
  free(got);
  return 0;
}
