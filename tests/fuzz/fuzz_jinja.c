/* libFuzzer harness: an untrusted chat template (a GGUF's tokenizer.chat_template) through
 * jinja_parse and jinja_render with a small fixed conversation, under the interpreter's
 * caps. Checks: no crash, no hang (the step budget), the output NUL-terminated at its
 * length, and the input runs sorted, disjoint and inside the text. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "llm/jinja.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static json_t *ctx;
  if (!ctx)
    ctx = json_loads("{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi "
                     "<|im_end|>\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                     "\"function\",\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]},{\"role\":\"tool\","
                     "\"content\":\"42\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":"
                     "{\"type\":\"object\"}}}],\"add_generation_prompt\":true,\"bos_token\":\"<s>\",\"eos_token\":\"</s>\"}",
                     0, NULL);
  if (!ctx) abort();
  jinja_tmpl *t = NULL;
  char err[256];
  if (jinja_parse((const char *)data, size, &t, err, sizeof err)) return 0;
  jinja_out o;
  if (!jinja_render(t, ctx, &o, err, sizeof err)) {
    if (!o.text || o.text[o.len] != 0 || o.len > JINJA_MAX_OUTPUT) abort();
    size_t end = 0;
    for (size_t i = 0; i < o.n_input; i++) {
      if (!o.input[i].len || o.input[i].off < end || o.input[i].off + o.input[i].len > o.len) abort();
      end = o.input[i].off + o.input[i].len;
    }
    jinja_out_deinit(&o);
  }
  jinja_free(t);
  return 0;
}
