/* llm/chat — chat templates: a conversation of {role, content} messages → prompt text.
 *
 * Instruction-tuned models expect their conversation laid out in the exact format they
 * were trained on. GGUF files carry it as a Jinja program (tokenizer.chat_template); we do
 * not run Jinja. Instead chat_detect recognizes the family from distinctive markers in
 * that text and one hand-written formatter per family lays the conversation out, each
 * from its model card's documented layout (see docs/chat.md):
 *
 *   chatml  <|im_start|>role\ncontent<|im_end|>\n ...               <|im_start|>assistant\n
 *   llama3  <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
 *   llama2  <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ...
 *   zephyr  <|role|>\ncontent</s>\n ...                              <|assistant|>\n
 *   gemma   <bos><start_of_turn>user\n(sys\n\n)content<end_of_turn>\n <start_of_turn>model\n
 *   phi3    <|role|>\ncontent<|end|>\n ...                            <|assistant|>\n
 *   plain   (sys\n\n)User: content\nAssistant: content\n ...           Assistant:
 *
 * "plain" is the fallback for models without a template (base models): a completion-style
 * transcript. Each format names its end-of-turn markers (chat_stop_strings) so generation
 * stops there, in addition to the tokenizer's end-of-generation tokens.
 *
 * The formatted prompt remembers which pieces are template markers (chat_seg.special) and
 * which are text, so chat_tokenize turns markers into the vocabulary's control tokens while
 * message content is encoded as plain text: a user cannot inject "<|im_end|>" as a token.
 * A rendered Jinja template gives two kinds of pieces: template text (special 2, scanned
 * for the vocabulary's special-token texts) and text that came from the messages, tools
 * or variables (special 0, plain text).
 *
 * Ownership: chat_prompt owns its text and segments (chat_prompt_init/deinit); messages are
 * borrowed. No global state; any thread. */
#ifndef APIARY_LLM_CHAT_H
#define APIARY_LLM_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "llm/tok.h"

#define CHAT_MAX_STOP 4                 /* stop strings per format */
#define CHAT_MAX_TEMPLATE (1u << 20)    /* bytes of template text chat_detect looks at */

typedef enum chat_format {
  CHAT_PLAIN = 0, /* "User: ...\nAssistant:" (no template) */
  CHAT_CHATML,    /* <|im_start|> (Qwen, Hermes, many fine-tunes) */
  CHAT_LLAMA3,    /* <|start_header_id|> (Llama 3.x instruct) */
  CHAT_LLAMA2,    /* [INST] with <<SYS>> (Llama 2 chat; Mistral instruct is close) */
  CHAT_ZEPHYR,    /* <|user|> ... </s> (Zephyr) */
  CHAT_GEMMA,     /* <start_of_turn> (Gemma instruct) */
  CHAT_PHI3,      /* <|user|> ... <|end|> (Phi-3) */
  CHAT_N_FORMATS
} chat_format;

typedef struct chat_msg {
  const char *role;    /* "system", "user" or "assistant" (borrowed) */
  const char *content; /* borrowed, NUL-terminated */
} chat_msg;

/* One piece of a formatted prompt. */
typedef struct chat_seg {
  size_t off, len; /* bytes of chat_prompt.text */
  int special;     /* 1: a template marker (becomes a control token if the vocabulary has it);
                      2: template text: special-token texts inside become their tokens;
                      0: plain text (message content), never special tokens */
} chat_seg;

typedef struct chat_prompt {
  char *text;      /* NUL-terminated (owned) */
  size_t len, cap; /* bytes used / allocated in text */
  chat_seg *segs;  /* pieces in order, covering text (owned) */
  size_t n_segs, segs_cap;
} chat_prompt;

void chat_prompt_init(chat_prompt *p);
void chat_prompt_deinit(chat_prompt *p);

/* "chatml", "llama3", ... ; "?" for a bad value. */
const char *chat_name(chat_format f);
/* Looks up a format by name (case-insensitive; also "llama-3", "llama-2", "phi-3",
 * "none"). Returns 0 or ERR_NOTFOUND. */
int chat_from_name(const char *name, chat_format *out);
/* Comma-separated list of the names, for usage messages. Static string. */
const char *chat_names(void);

/* Picks the format from a tokenizer.chat_template text (NULL or empty: CHAT_PLAIN).
 * Returns CHAT_PLAIN when no family's markers are found (*known_out = 0), else the
 * format (*known_out = 1). known_out may be NULL. chat_detect_len takes len bytes (not
 * NUL-terminated; only the first CHAT_MAX_TEMPLATE are searched). */
chat_format chat_detect(const char *jinja_template, int *known_out);
chat_format chat_detect_len(const char *jinja_template, size_t len, int *known_out);

/* The format's end-of-turn markers (static strings). Returns their count (<= CHAT_MAX_STOP). */
int chat_stop_strings(chat_format f, const char *const **out);

/* Lays out msgs[0..n) in format f into p (cleared first). add_generation_prompt appends the
 * opening of an assistant turn. A system message is honoured as the first message only
 * (formats without a system role merge it into the first user turn); later system
 * messages are treated as user turns by those formats. Returns 0, ERR_INVAL (bad format,
 * NULL role/content) or ERR_NOMEM. */
int chat_apply(chat_format f, const chat_msg *msgs, size_t n, int add_generation_prompt, chat_prompt *p);

/* Renders a model's Jinja chat template. messages: JSON array of OpenAI-style messages
 * (role, content — a string or an array of {type:"text",text} parts —, tool_calls,
 * tool_call_id, name); tools: JSON array of OpenAI tool objects or NULL; bos/eos: the
 * vocabulary's BOS/EOS token text (may be ""; NULL counts as ""). The context is what
 * transformers passes: messages, tools (only when given), add_generation_prompt,
 * bos_token, eos_token. Content given as text parts stays an array when the template
 * reads parts (probed with a one-message render), else the parts' texts are joined with
 * "\n" (what llama.cpp does). tool_calls pass through as given. Fills p (cleared first):
 * template-literal text becomes special-2 segments, context-derived runs plain text.
 * Returns 0, or an error with err filled: ERR_FORMAT (parse or render failure, including
 * raise_exception), ERR_TOOBIG (a cap), ERR_INVAL, ERR_NOMEM. Borrows everything. */
int chat_render_jinja(const char *tmpl, size_t tmpl_len, const json_t *messages, const json_t *tools,
                      int add_generation_prompt, const char *bos, const char *eos, chat_prompt *p, char *err,
                      size_t err_cap);
/* As chat_render_jinja with extra: a JSON object (or NULL) of more template variables
 * (e.g. date_string, enable_thinking); they win over the standard ones. */
int chat_render_jinja_ex(const char *tmpl, size_t tmpl_len, const json_t *messages, const json_t *tools,
                         int add_generation_prompt, const char *bos, const char *eos, const json_t *extra,
                         chat_prompt *p, char *err, size_t err_cap);

/* The id of the token whose text is exactly s[0..len) when the vocabulary has it as a
 * control or user-defined token, else -1. */
int32_t chat_special_id(const tok *t, const char *s, size_t len);

/* Encodes a formatted prompt: special segments the vocabulary knows become their token;
 * in template-text segments (special 2) every control/user-defined token text of the
 * vocabulary becomes its token (longest match at each position, as llama.cpp's
 * parse_special); all other text (template text and message content alike) is encoded
 * without parsing special-token text, one run per stretch between two special tokens (as llama.cpp
 * tokenizes a prompt with parse_special, minus injection). BOS is prepended when the model
 * asks for it and the prompt does not start with it already. Returns the count with
 * *ids_out owned by the caller (free), or <0 (ERR_NOMEM, ERR_TOOBIG). */
int chat_tokenize(const tok *t, const chat_prompt *p, int32_t **ids_out);

#endif
