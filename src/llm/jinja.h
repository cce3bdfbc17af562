/* llm/jinja — a Jinja interpreter for model chat templates (tokenizer.chat_template).
 *
 * Covers the language Hugging Face chat templates use and renders it the way
 * @huggingface/jinja (what transformers.js runs) does, byte for byte: its whitespace
 * handling (trim_blocks and lstrip_blocks on, one trailing newline dropped), its value
 * printing (true/false, 1.0, JSON for lists and dicts), its tojson, its filters, tests and
 * methods; a few Jinja features it lacks (tests with arguments, string comparison, list
 * append, more filters) follow Python Jinja.
 *
 * Provenance: every string value knows which of its bytes came from the render context
 * (message text, roles, tool JSON) rather than from the template's own literals. The
 * rendered output lists those bytes as runs (jinja_out.input), so a caller can scan only
 * template text for special-token markers: "<|im_end|>" typed by a user stays text.
 * Concatenation, slicing, trimming, join, split and format keep runs exactly; any other
 * filter or method applied to input text marks its whole result as input.
 *
 * Templates come from untrusted files: the source is capped (JINJA_MAX_SOURCE), and so
 * are nesting depth, output size, memory, evaluation steps and macro recursion; going over
 * one is an error (ERR_TOOBIG or ERR_FORMAT with a message), never a crash or a hang.
 *
 * Ownership: jinja_parse returns an owned, immutable template (jinja_free) that any number
 * of threads may render at once; jinja_render borrows the context and fills an owned
 * jinja_out (jinja_out_deinit). Each render uses its own arena; no global state. */
#ifndef APIARY_LLM_JINJA_H
#define APIARY_LLM_JINJA_H

#include <jansson.h>
#include <stddef.h>

#define JINJA_MAX_SOURCE (1u << 20)  /* bytes of template source */
#define JINJA_MAX_OUTPUT (4u << 20)  /* bytes of rendered text (and of any one string) */
#define JINJA_MAX_DEPTH 64           /* nesting of blocks and expressions in the source */
#define JINJA_MAX_STEPS 2000000u     /* evaluation steps (nodes + loop iterations) per render */
#define JINJA_MAX_CALL_DEPTH 32      /* macro / caller recursion */
#define JINJA_MAX_MEMORY (64u << 20) /* bytes of arena per render */
#define JINJA_MAX_ITEMS 1000000u     /* items of one list (range(), append) */

typedef struct jinja_tmpl jinja_tmpl;                     /* parsed template; immutable; any thread */
typedef struct jinja_run { size_t off, len; } jinja_run;  /* output bytes that came from the context */
typedef struct jinja_out {
  char *text;               /* NUL-terminated rendered text (owned) */
  size_t len;               /* bytes of text */
  jinja_run *input;         /* sorted, non-overlapping runs of text from context values (owned) */
  size_t n_input;
} jinja_out;

/* Parses src[0..len). Returns 0 with *out owned by the caller, or ERR_TOOBIG / ERR_FORMAT
 * (with "line L, column C: what" in err) / ERR_NOMEM. */
int jinja_parse(const char *src, size_t len, jinja_tmpl **out, char *err, size_t err_cap);
void jinja_free(jinja_tmpl *t); /* NULL ok */

/* ctx: a JSON object whose members are the template's variables (borrowed); its strings
 * are input (tainted). Returns 0 with out filled (owned), or ERR_FORMAT (a render error or
 * raise_exception, message in err), ERR_TOOBIG (a cap), ERR_NOMEM, ERR_INVAL. */
int jinja_render(const jinja_tmpl *t, const json_t *ctx, jinja_out *out, char *err, size_t err_cap);
/* As jinja_render, plus trusted: a JSON object (or NULL) of further variables whose
 * strings count as template text (e.g. bos_token, eos_token); ctx wins on a clash. */
int jinja_render_trusted(const jinja_tmpl *t, const json_t *ctx, const json_t *trusted, jinja_out *out, char *err,
                         size_t err_cap);
void jinja_out_deinit(jinja_out *o);

#endif
