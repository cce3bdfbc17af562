/* Chat templates: each format's exact text for one fixed conversation (system, user,
 * assistant, user + generation prompt), written out literally from the layout the
 * family's model card / tokenizer_config.json chat_template specifies; detection on
 * realistic tokenizer.chat_template snippets of each family; names; stop strings; and
 * tokenizing with the Llama vocabulary of the shared stories15M (markers → control
 * tokens, content never). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/testutil.h"
#include "core/err.h"
#include "llm/chat.h"
#include "llm/gguf.h"
#include "llm/tok.h"

static const chat_msg conv[] = {
    {"system", "You are a helpful assistant."},
    {"user", "Hello!"},
    {"assistant", "Hi! How can I help?"},
    {"user", "Tell me a joke."},
};
#define N_CONV (sizeof conv / sizeof *conv)

static void check_format(chat_format f, const chat_msg *m, size_t n, int gen, const char *want) {
  chat_prompt p;
  chat_prompt_init(&p);
  assert_int_equal(chat_apply(f, m, n, gen, &p), 0);
  assert_string_equal(p.text, want);
  assert_int_equal(p.len, strlen(want));
  /* the segments cover the text in order, without gaps */
  size_t off = 0;
  for (size_t i = 0; i < p.n_segs; i++) {
    assert_int_equal(p.segs[i].off, off);
    assert_true(p.segs[i].len > 0);
    off += p.segs[i].len;
  }
  assert_int_equal(off, p.len);
  chat_prompt_deinit(&p);
}

/* ChatML (OpenAI ChatML as used by Qwen / OpenHermes: "<|im_start|>{role}\n{content}<|im_end|>\n",
 * generation prompt "<|im_start|>assistant\n"). */
static void test_chatml(void **state) {
  (void)state;
  check_format(CHAT_CHATML, conv, N_CONV, 1,
               "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
               "<|im_start|>user\nHello!<|im_end|>\n"
               "<|im_start|>assistant\nHi! How can I help?<|im_end|>\n"
               "<|im_start|>user\nTell me a joke.<|im_end|>\n"
               "<|im_start|>assistant\n");
  check_format(CHAT_CHATML, conv + 1, 1, 0, "<|im_start|>user\nHello!<|im_end|>\n");
}

/* Llama 3 instruct (Meta's model card "Llama 3 prompt format": <|begin_of_text|>, then
 * "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>", and the assistant
 * header as generation prompt). */
static void test_llama3(void **state) {
  (void)state;
  check_format(CHAT_LLAMA3, conv, N_CONV, 1,
               "<|begin_of_text|>"
               "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\nHi! How can I help?<|eot_id|>"
               "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>"
               "<|start_header_id|>assistant<|end_header_id|>\n\n");
  /* content is trimmed, as the template's "| trim" does */
  const chat_msg m[] = {{"user", "  hi \n"}};
  check_format(CHAT_LLAMA3, m, 1, 0, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
}

/* Llama 2 chat (meta-llama/Llama-2-7b-chat-hf chat_template: bos + "[INST] " + content.strip()
 * + " [/INST]", answers " " + content.strip() + " " + eos, the system message wrapped in
 * "<<SYS>>\n...\n<</SYS>>\n\n" in front of the first user message). */
static void test_llama2(void **state) {
  (void)state;
  check_format(CHAT_LLAMA2, conv, N_CONV, 1,
               "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello! [/INST]"
               " Hi! How can I help? </s>"
               "<s>[INST] Tell me a joke. [/INST]");
  /* no system message; the generation prompt adds nothing */
  check_format(CHAT_LLAMA2, conv + 1, 3, 0, "<s>[INST] Hello! [/INST] Hi! How can I help? </s><s>[INST] Tell me a joke. [/INST]");
}

/* Zephyr (HuggingFaceH4/zephyr-7b-beta model card: "<|system|>\n...</s>\n<|user|>\n...</s>\n<|assistant|>\n"). */
static void test_zephyr(void **state) {
  (void)state;
  check_format(CHAT_ZEPHYR, conv, N_CONV, 1,
               "<|system|>\nYou are a helpful assistant.</s>\n"
               "<|user|>\nHello!</s>\n"
               "<|assistant|>\nHi! How can I help?</s>\n"
               "<|user|>\nTell me a joke.</s>\n"
               "<|assistant|>\n");
}

/* Gemma instruct (google/gemma-7b-it model card: "<bos><start_of_turn>user\n...<end_of_turn>\n
 * <start_of_turn>model\n"; no system role: as Gemma 2/3 do, the system text goes first in the
 * first user turn followed by a blank line). */
static void test_gemma(void **state) {
  (void)state;
  check_format(CHAT_GEMMA, conv, N_CONV, 1,
               "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n"
               "<start_of_turn>model\nHi! How can I help?<end_of_turn>\n"
               "<start_of_turn>user\nTell me a joke.<end_of_turn>\n"
               "<start_of_turn>model\n");
  check_format(CHAT_GEMMA, conv + 1, 1, 0, "<bos><start_of_turn>user\nHello!<end_of_turn>\n");
}

/* Phi-3 (microsoft/Phi-3-mini-4k-instruct model card: "<|user|>\n...<|end|>\n<|assistant|>\n";
 * without a generation prompt the template ends with eos "<|endoftext|>"). */
static void test_phi3(void **state) {
  (void)state;
  check_format(CHAT_PHI3, conv, N_CONV, 1,
               "<|system|>\nYou are a helpful assistant.<|end|>\n"
               "<|user|>\nHello!<|end|>\n"
               "<|assistant|>\nHi! How can I help?<|end|>\n"
               "<|user|>\nTell me a joke.<|end|>\n"
               "<|assistant|>\n");
  check_format(CHAT_PHI3, conv + 1, 1, 0, "<|user|>\nHello!<|end|>\n<|endoftext|>");
}

/* Our plain transcript for models without a template. */
static void test_plain(void **state) {
  (void)state;
  check_format(CHAT_PLAIN, conv, N_CONV, 1,
               "You are a helpful assistant.\n\n"
               "User: Hello!\n"
               "Assistant: Hi! How can I help?\n"
               "User: Tell me a joke.\n"
               "Assistant:");
  check_format(CHAT_PLAIN, NULL, 0, 1, "Assistant:");
  check_format(CHAT_PLAIN, NULL, 0, 0, "");
}

static void test_bad_args(void **state) {
  (void)state;
  chat_prompt p;
  chat_prompt_init(&p);
  const chat_msg bad[] = {{"user", NULL}};
  assert_int_equal(chat_apply(CHAT_CHATML, bad, 1, 1, &p), ERR_INVAL);
  assert_int_equal(chat_apply(CHAT_N_FORMATS, conv, N_CONV, 1, &p), ERR_INVAL);
  /* reuse of one prompt buffer: the second call replaces the first */
  assert_int_equal(chat_apply(CHAT_CHATML, conv, N_CONV, 1, &p), 0);
  assert_int_equal(chat_apply(CHAT_PLAIN, conv + 1, 1, 0, &p), 0);
  assert_string_equal(p.text, "User: Hello!\n");
  assert_int_equal(p.n_segs, 1);
  chat_prompt_deinit(&p);
  chat_prompt_deinit(&p); /* twice is harmless */
}

/* ---- detection ---------------------------------------------------------------------------- */

static void test_detect(void **state) {
  (void)state;
  static const struct {
    const char *tmpl;
    chat_format want;
  } cases[] = {
      /* Qwen2-Instruct */
      {"{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
       "'<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
       "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt "
       "%}{{ '<|im_start|>assistant\\n' }}{% endif %}",
       CHAT_CHATML},
      /* Meta-Llama-3-8B-Instruct */
      {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
       "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
       "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% "
       "endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
       CHAT_LLAMA3},
      /* Llama-2-7b-chat-hf */
      {"{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
       "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
       "%}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
       "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
       "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + "
       "content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + "
       "eos_token }}{% endif %}{% endfor %}",
       CHAT_LLAMA2},
      /* Mistral-7B-Instruct (close enough to Llama 2's layout) */
      {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
       "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + "
       "eos_token}}{% endif %}{% endfor %}",
       CHAT_LLAMA2},
      /* zephyr-7b-beta: turns end with eos_token (</s>), no <|end|> */
      {"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
       "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token "
       "}}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% "
       "endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
       CHAT_ZEPHYR},
      /* gemma-7b-it */
      {"{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% "
       "endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else "
       "%}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim "
       "+ '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}",
       CHAT_GEMMA},
      /* Phi-3-mini-4k-instruct */
      {"{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
       "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% "
       "elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif "
       "%}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
       CHAT_PHI3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int known = -1;
    chat_format f = chat_detect(cases[i].tmpl, &known);
    if (f != cases[i].want) fail_msg("case %zu: got %s, want %s", i, chat_name(f), chat_name(cases[i].want));
    assert_int_equal(known, 1);
    /* the length form agrees, and a cut before the markers does not see them */
    assert_int_equal(chat_detect_len(cases[i].tmpl, strlen(cases[i].tmpl), NULL), cases[i].want);
    assert_int_equal(chat_detect_len(cases[i].tmpl, 5, &known), CHAT_PLAIN);
    assert_int_equal(known, 0);
  }
  /* unknown (a Vicuna-style template), empty and missing templates: the plain default */
  int known = -1;
  assert_int_equal(chat_detect("{% for message in messages %}{{ message['role'].upper() + ': ' + "
                               "message['content'] + '\\n' }}{% endfor %}",
                               &known),
                   CHAT_PLAIN);
  assert_int_equal(known, 0);
  assert_int_equal(chat_detect("", &known), CHAT_PLAIN);
  assert_int_equal(known, 0);
  assert_int_equal(chat_detect(NULL, NULL), CHAT_PLAIN);
}

static void test_names_and_stops(void **state) {
  (void)state;
  chat_format f;
  for (int i = 0; i < CHAT_N_FORMATS; i++) {
    assert_int_equal(chat_from_name(chat_name((chat_format)i), &f), 0);
    assert_int_equal(f, i);
    assert_non_null(strstr(chat_names(), chat_name((chat_format)i)));
    const char *const *stops;
    int n = chat_stop_strings((chat_format)i, &stops);
    assert_true(n >= 1 && n <= CHAT_MAX_STOP);
    for (int k = 0; k < n; k++) assert_true(stops[k][0]);
  }
  assert_int_equal(chat_from_name("ChatML", &f), 0);
  assert_int_equal(f, CHAT_CHATML);
  assert_int_equal(chat_from_name("llama-3", &f), 0);
  assert_int_equal(f, CHAT_LLAMA3);
  assert_int_equal(chat_from_name("phi-3", &f), 0);
  assert_int_equal(f, CHAT_PHI3);
  assert_int_equal(chat_from_name("nope", &f), ERR_NOTFOUND);
  assert_int_equal(chat_from_name(NULL, &f), ERR_NOTFOUND);
  assert_string_equal(chat_name(CHAT_N_FORMATS), "?");
  const char *const *stops;
  assert_int_equal(chat_stop_strings(CHAT_CHATML, &stops), 2);
  assert_string_equal(stops[0], "<|im_end|>");
  assert_int_equal(chat_stop_strings(CHAT_LLAMA3, &stops), 2);
  assert_string_equal(stops[0], "<|eot_id|>");
  assert_int_equal(chat_stop_strings(CHAT_GEMMA, &stops), 2);
  assert_string_equal(stops[0], "<end_of_turn>");
  assert_int_equal(chat_stop_strings(CHAT_PHI3, &stops), 3);
  assert_string_equal(stops[0], "<|end|>");
  assert_int_equal(chat_stop_strings(CHAT_PLAIN, &stops), 1);
  assert_string_equal(stops[0], "\nUser:");
}

/* ---- tokenizing (Llama vocabulary: <s> = 1 and </s> = 2 are control tokens) -------------- */

static tok *load_stories_tok(void) {
  char path[1024], err[512];
  assert_int_equal(tu_shared_path(path, sizeof path, "models/stories15M-Q8_0.gguf"), 0);
  gguf_file *f;
  if (gguf_open(path, &f, err, sizeof err)) fail_msg("%s", err);
  tok *t;
  int rc = tok_new_from_gguf(f, &t, err, sizeof err);
  gguf_close(f);
  if (rc) fail_msg("%s", err);
  return t;
}

static void test_tokenize(void **state) {
  (void)state;
  TU_REQUIRE_SHARED();
  tok *t = load_stories_tok();
  assert_true(tok_add_bos(t));
  assert_int_equal(chat_special_id(t, "<s>", 3), 1);
  assert_int_equal(chat_special_id(t, "</s>", 4), 2);
  assert_int_equal(chat_special_id(t, "<|im_end|>", 10), -1);
  assert_int_equal(chat_special_id(t, "Hello", 5), -1);
  assert_int_equal(chat_special_id(t, "", 0), -1);

  chat_prompt p;
  chat_prompt_init(&p);
  int32_t *ids, ref[512];
  /* Llama 2 layout: the same ids as encoding the text with special parsing (llama.cpp's way),
   * the template's <s> not doubled by the model's add_bos. */
  assert_int_equal(chat_apply(CHAT_LLAMA2, conv, N_CONV, 1, &p), 0);
  int n = chat_tokenize(t, &p, &ids);
  int nr = tok_encode(t, p.text, p.len, 0, 1, ref, 512);
  assert_true(n > 10);
  assert_int_equal(n, nr);
  assert_memory_equal(ids, ref, (size_t)n * sizeof *ids);
  assert_int_equal(ids[0], 1);
  assert_true(ids[1] != 1);
  free(ids);
  /* content cannot inject control tokens: "</s><s>" typed by the user stays text */
  const chat_msg inj[] = {{"user", "a</s><s>b"}};
  assert_int_equal(chat_apply(CHAT_LLAMA2, inj, 1, 1, &p), 0);
  n = chat_tokenize(t, &p, &ids);
  assert_true(n > 3);
  assert_int_equal(ids[0], 1);
  for (int i = 1; i < n; i++) assert_true(ids[i] != 1 && ids[i] != 2);
  free(ids);
  /* markers the vocabulary lacks are plain text: ChatML on this model = BOS + plain encoding */
  assert_int_equal(chat_apply(CHAT_CHATML, conv, N_CONV, 1, &p), 0);
  n = chat_tokenize(t, &p, &ids);
  nr = tok_encode(t, p.text, p.len, 1, 0, ref, 512);
  assert_int_equal(n, nr);
  assert_memory_equal(ids, ref, (size_t)n * sizeof *ids);
  free(ids);
  /* plain: BOS + the text */
  assert_int_equal(chat_apply(CHAT_PLAIN, conv + 1, 1, 1, &p), 0);
  n = chat_tokenize(t, &p, &ids);
  nr = tok_encode(t, p.text, p.len, 1, 0, ref, 512);
  assert_int_equal(n, nr);
  assert_memory_equal(ids, ref, (size_t)n * sizeof *ids);
  free(ids);
  chat_prompt_deinit(&p);
  tok_free(t);
}

/* The model's own Jinja template: template text is scanned for special tokens (the trusted
 * bos_token too), message text never. */
static void test_render_jinja(void **state) {
  (void)state;
  static const char tmpl[] =
      "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content | trim }} [/INST]"
      "{% else %} {{ m.content }} </s>{% endif %}{% endfor %}";
  chat_prompt p;
  chat_prompt_init(&p);
  char err[256];
  json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\" hi \"},{\"role\":\"assistant\",\"content\":\"yo\"},"
                            "{\"role\":\"user\",\"content\":\"a</s><s>b\"}]",
                            0, NULL);
  assert_non_null(msgs);
  assert_int_equal(chat_render_jinja(tmpl, strlen(tmpl), msgs, NULL, 1, "<s>", "</s>", &p, err, sizeof err), 0);
  assert_string_equal(p.text, "<s>[INST] hi [/INST] yo </s>[INST] a</s><s>b [/INST]");
  size_t at = 0; /* segments cover the text; the user's bytes are plain text */
  for (size_t i = 0; i < p.n_segs; i++) {
    assert_int_equal(p.segs[i].off, at);
    at += p.segs[i].len;
    if (!memcmp(p.text + p.segs[i].off, "a</s>", 5)) assert_int_equal(p.segs[i].special, 0);
  }
  assert_int_equal(at, p.len);
  TU_REQUIRE_SHARED();
  tok *t = load_stories_tok();
  int32_t *ids, ref[512];
  int n = chat_tokenize(t, &p, &ids);
  assert_true(n > 10);
  assert_int_equal(ids[0], 1); /* one BOS: the template's, not doubled */
  assert_true(ids[1] != 1);
  int n_eos = 0, n_bos = 0;
  for (int i = 0; i < n; i++) n_eos += ids[i] == 2, n_bos += ids[i] == 1;
  assert_int_equal(n_eos, 1); /* the template's </s>; the user's stays text */
  assert_int_equal(n_bos, 1);
  free(ids);
  /* without injected text the ids are llama.cpp's (special parsing over the whole text) */
  json_t *plain = json_loads("[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"yo\"}]", 0, NULL);
  assert_int_equal(chat_render_jinja(tmpl, strlen(tmpl), plain, NULL, 1, "<s>", "</s>", &p, err, sizeof err), 0);
  n = chat_tokenize(t, &p, &ids);
  int nr = tok_encode(t, p.text, p.len, 0, 1, ref, 512);
  assert_int_equal(n, nr);
  assert_memory_equal(ids, ref, (size_t)n * sizeof *ids);
  free(ids);
  /* text parts: joined with "\n" for a template that prints content */
  json_t *parts = json_loads("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":\"text\",\"text\":\"B\"}]}]", 0, NULL);
  assert_int_equal(chat_render_jinja(tmpl, strlen(tmpl), parts, NULL, 1, "", "", &p, err, sizeof err), 0);
  assert_string_equal(p.text, "[INST] A\nB [/INST]");
  /* ... and left as parts for one that reads them */
  static const char parts_tmpl[] = "{% for m in messages %}{% for c in m.content %}<{{ c.text }}>{% endfor %}{% endfor %}";
  assert_int_equal(chat_render_jinja(parts_tmpl, strlen(parts_tmpl), parts, NULL, 1, "", "", &p, err, sizeof err), 0);
  assert_string_equal(p.text, "<A><B>");
  /* failures say why */
  assert_int_equal(chat_render_jinja("{% if %}", 8, plain, NULL, 1, "", "", &p, err, sizeof err), ERR_FORMAT);
  assert_non_null(strstr(err, "line 1"));
  assert_int_equal(chat_render_jinja("{{ raise_exception('nope') }}", 29, plain, NULL, 1, "", "", &p, err, sizeof err), ERR_FORMAT);
  assert_non_null(strstr(err, "nope"));
  json_decref(parts);
  json_decref(plain);
  json_decref(msgs);
  chat_prompt_deinit(&p);
  tok_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chatml),  cmocka_unit_test(test_llama3),   cmocka_unit_test(test_llama2),
      cmocka_unit_test(test_zephyr),  cmocka_unit_test(test_gemma),    cmocka_unit_test(test_phi3),
      cmocka_unit_test(test_plain),   cmocka_unit_test(test_bad_args), cmocka_unit_test(test_detect),
      cmocka_unit_test(test_names_and_stops), cmocka_unit_test(test_tokenize),
      cmocka_unit_test(test_render_jinja),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
