/* libFuzzer harness: the GGUF reader and the tokenizer loader on arbitrary bytes (model
 * files come from anywhere). Opens the input with gguf_open_mem, touches every accessor on
 * every kv and tensor (and reads every byte of each string and tensor so ASan sees any bad
 * pointer); when the file carries a vocabulary, builds the tokenizer, encodes the input's
 * own bytes as text both ways, and decodes the ids back through pieces and the stream.
 * Seeds: tests/fuzz/corpus/fuzz_gguf, made by tests/fuzz/gen_gguf_seeds.py. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llm/gguf.h"
#include "llm/tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint8_t sink;

static void touch(const void *p, uint64_t n) {
  const uint8_t *b = p;
  uint8_t x = 0;
  for (uint64_t i = 0; i < n; i++) x ^= b[i];
  sink ^= x;
}

/* Looks a name up through the C-string API (names with NULs are cut short, as callers'
 * would be). */
static void lookup(const gguf_file *f, gguf_str s, int tensor) {
  char name[GGUF_MAX_KEY + 1];
  size_t n = s.len < GGUF_MAX_KEY ? (size_t)s.len : GGUF_MAX_KEY;
  memcpy(name, s.ptr, n);
  name[n] = 0;
  if (tensor) (void)gguf_find_tensor(f, name);
  else {
    int64_t i;
    uint64_t u;
    double d;
    int b;
    gguf_str str;
    const gguf_kv *a;
    (void)gguf_find_kv(f, name);
    (void)gguf_get_int(f, name, &i);
    (void)gguf_get_uint(f, name, &u);
    (void)gguf_get_float(f, name, &d);
    (void)gguf_get_bool(f, name, &b);
    if (gguf_get_str(f, name, &str) == 0) touch(str.ptr, str.len);
    (void)gguf_get_arr(f, name, &a);
  }
}

static void touch_kv(const gguf_file *f, const gguf_kv *kv) {
  touch(kv->key.ptr, kv->key.len);
  lookup(f, kv->key, 0);
  if (kv->type != GGUF_VT_ARRAY) return;
  for (uint64_t i = 0; i < kv->arr_n; i++) {
    gguf_str s = gguf_arr_str(kv, i);
    touch(s.ptr, s.len);
    double d = gguf_arr_num(kv, i);
    sink ^= (uint8_t)(d == d);
  }
  (void)gguf_arr_str(kv, kv->arr_n);
  (void)gguf_arr_num(kv, kv->arr_n);
}

static void fuzz_tok(const gguf_file *f, const uint8_t *data, size_t size) {
  tok *t;
  char err[256], out[1024];
  if (tok_new_from_gguf(f, &t, err, sizeof err)) return;
  int32_t ids[2048];
  size_t len = size < 1024 ? size : 1024;
  for (int special = 0; special < 2; special++) {
    int n = tok_encode(t, (const char *)data + size - len, len, 1, special, ids, 2048);
    if (n < 0) continue;
    tok_stream s;
    tok_stream_init(&s);
    s.at_start = special;
    for (int i = 0; i < n && i < 2048; i++) {
      if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) __builtin_trap();
      (void)tok_stream_feed(t, &s, ids[i], out, sizeof out);
      (void)tok_is_eog(t, ids[i]);
    }
    (void)tok_stream_flush(&s, out, sizeof out);
  }
  for (int32_t id = -1; id <= tok_n_vocab(t) && id < 4096; id++) {
    (void)tok_piece(t, id, id & 1, out, sizeof out);
    size_t n;
    const char *p = tok_text(t, id, &n);
    if (p) touch(p, n);
  }
  (void)tok_bos(t);
  (void)tok_eos(t);
  (void)tok_add_bos(t);
  tok_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gguf_file *f;
  char err[256];
  if (gguf_open_mem(data, size, &f, err, sizeof err)) return 0;
  (void)gguf_version(f);
  (void)gguf_alignment(f);
  (void)gguf_file_size(f);
  (void)gguf_base(f);
  (void)gguf_data_offset(f);
  for (size_t i = 0; i < gguf_n_kv(f); i++) touch_kv(f, gguf_kv_at(f, i));
  (void)gguf_kv_at(f, gguf_n_kv(f));
  for (size_t i = 0; i < gguf_n_tensors(f); i++) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    touch(t->name.ptr, t->name.len);
    touch(t->data, t->nbytes);
    lookup(f, t->name, 1);
  }
  (void)gguf_tensor_at(f, gguf_n_tensors(f));
  fuzz_tok(f, data, size);
  gguf_close(f);
  return 0;
}
