/* libFuzzer harness: a GGUF's tokenizer.chat_template (untrusted text from a downloaded
 * model) through chat_detect_len, then the detected format laid out over fixed messages
 * (one of each role, the last content taken from the input too). The segments must cover
 * the text exactly, in order, and the text must be NUL-terminated at its length. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int known = -1;
  chat_format f = chat_detect_len((const char *)data, size, &known);
  if (f < 0 || f >= CHAT_N_FORMATS || (known != 0 && known != 1) || (!known && f != CHAT_PLAIN)) abort();
  char *content = malloc(size + 1);
  if (!content) return 0;
  memcpy(content, data, size);
  content[size] = 0;
  chat_msg msgs[4] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", content}};
  chat_prompt p;
  chat_prompt_init(&p);
  if (chat_apply(f, msgs, 4, 1, &p) == 0) {
    size_t at = 0;
    for (size_t i = 0; i < p.n_segs; i++) {
      if (p.segs[i].off != at) abort();
      at += p.segs[i].len;
    }
    if (at != p.len || p.text[p.len] != 0) abort();
    const char *const *stops;
    int n = chat_stop_strings(f, &stops);
    for (int i = 0; i < n; i++)
      if (!stops[i] || !stops[i][0]) abort();
  }
  chat_prompt_deinit(&p);
  free(content);
  return 0;
}
