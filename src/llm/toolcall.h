/* llm/toolcall — OpenAI function tools for a model: how it calls one, the grammar that makes
 * it call one, and reading the calls back out of the text it generated.
 *
 * A model calls tools in the layout it was trained on; its chat template shows which:
 *
 *   hermes  <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>   (Qwen 2.5/3, Hermes,
 *           and the layout we teach models whose template says nothing about tools)
 *   llama3  {"name": "f", "parameters": {...}}                              (Llama 3.1+)
 *
 * toolcall_grammar writes the GBNF that allows exactly such calls: a choice among the offered
 * functions' names, each followed by arguments valid under that function's JSON Schema
 * (llm/jsonschema). tool_choice "required" or a named function constrains the whole answer to
 * calls (hermes may call several in a row when parallel calls are allowed); "auto" and
 * "none" leave the text free. toolcall_parse reads calls in either layout from any text, so
 * the side that reads an answer (the HTTP API, possibly on another node than the one that
 * generated it) needs no knowledge of the model.
 *
 * Models whose template does not take tools get them through toolcall_flatten: the tools are
 * described in a system message, earlier calls and tool results become plain turns.
 *
 * Ownership: outputs are owned by the caller (free / json_decref); inputs borrowed. No global
 * state; any thread. */
#ifndef APIARY_LLM_TOOLCALL_H
#define APIARY_LLM_TOOLCALL_H

#include <jansson.h>
#include <stddef.h>

#define TOOLCALL_MAX_TOOLS 64      /* functions offered in one request */
#define TOOLCALL_MAX_PARALLEL 8    /* calls in one answer */
#define TOOLCALL_MAX_NAME 64       /* OpenAI: [A-Za-z0-9_-]{1,64} */

typedef enum toolcall_format { TOOLCALL_HERMES = 0, TOOLCALL_LLAMA3 } toolcall_format;

/* The layout a chat template (NULL or empty: none) uses for calls. */
toolcall_format toolcall_detect(const char *tmpl, size_t len);
const char *toolcall_format_name(toolcall_format f);

/* Checks an OpenAI `tools` array: 1..TOOLCALL_MAX_TOOLS {type:"function", function:{name,
 * description?, parameters?}} with valid, distinct names and parameters the grammar can
 * express. Returns 0 or ERR_INVAL / ERR_UNSUPPORTED with err saying which tool and why. */
int toolcall_check_tools(const json_t *tools, char *err, size_t err_cap);

/* Checks tool_choice against tools: "auto", "none", "required", or {type:"function",
 * function:{name}} naming an offered function. Writes the choice as "auto", "none",
 * "required" or the function's name to choice_out. 0 or ERR_INVAL. */
int toolcall_check_choice(const json_t *choice, const json_t *tools, char *choice_out, size_t choice_cap, char *err,
                          size_t err_cap);

/* The grammar for choice ("required" or a function name; anything else gives 0 and *out
 * NULL: no constraint). parallel: several calls may follow one another (hermes only). */
int toolcall_grammar(toolcall_format f, const json_t *tools, const char *choice, int parallel, char **gbnf_out,
                     char *err, size_t err_cap);

/* Finds the calls in text[0..len): <tool_call> blocks (a last unclosed one included when its
 * JSON is whole), or the whole text being one call object or an array of them, in either
 * layout. *calls_out: a new array of {name, arguments} (arguments a JSON object) or NULL when
 * there are none; *content_out: the text outside the calls, trimmed (NULL when empty). */
int toolcall_parse(const char *text, size_t len, json_t **calls_out, char **content_out);

/* Checks and normalizes OpenAI chat messages (untrusted): 1..max {role, content, ...} with
 * role system, developer (becomes system), user, assistant or tool; content a string, an
 * array of text parts (joined) or null (an assistant message with tool_calls); assistant
 * tool_calls (at most TOOLCALL_MAX_PARALLEL {id?, type:"function", function:{name,
 * arguments}}; arguments given as a JSON string become the object it holds, as chat
 * templates expect); tool messages with tool_call_id. Text has no NUL bytes and all of it
 * fits max_bytes. *out: a new array holding only those fields (no reference into in, so it
 * may move to another thread). Returns 0, or ERR_INVAL / ERR_UNSUPPORTED (image or audio
 * parts) / ERR_TOOBIG with err saying which message and why. */
int toolcall_check_messages(const json_t *in, size_t max_messages, size_t max_bytes, json_t **out, char *err,
                            size_t err_cap);

/* Messages for a model whose template does not take tools: a new array of {role, content}
 * with string content and roles system/user/assistant only: the tools described in the
 * system message (tools may be NULL), assistant calls written as hermes blocks, tool results
 * as user turns in <tool_response> blocks. */
int toolcall_flatten(const json_t *messages, const json_t *tools, json_t **flat_out);

#endif
