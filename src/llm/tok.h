/* llm/tok — text ↔ token ids for the vocabularies GGUF models carry.
 *
 * tok_new_from_gguf reads tokenizer.ggml.* from an open GGUF file and copies what it needs
 * (token texts, scores, types, special ids) into one immutable handle; the file may be
 * closed afterwards. Supported: tokenizer.ggml.model = "llama" (SentencePiece-style BPE
 * with scores and byte fallback, tok_spm.c) and "gpt2" (byte-level BPE with merge ranks and
 * a regex pre-tokenizer chosen by tokenizer.ggml.pre, as llama.cpp does it: Llama 3, Qwen2,
 * GPT-2, DeepSeek, SmolLM, ...; tok_bpe.c). Other models, and pre-tokenizers llama.cpp does
 * not know, give ERR_UNSUPPORTED.
 *
 * Encoding follows llama.cpp's llama_tokenize: special-token texts (control, unknown and
 * user-defined tokens; control/unknown only with parse_special) are cut out of the text
 * first, longest token first; each remaining piece of plain text is encoded on its own,
 * with (SPM only) a leading space when it starts the text or follows a special token
 * (add_space_prefix, on by default for SPM). Byte-level BPE replaces invalid UTF-8 bytes
 * with U+FFFD before pre-tokenizing, as llama.cpp does.
 *
 * Decoding: tok_piece gives one token's bytes; the tok_stream functions turn a stream of ids
 * into text that is always whole UTF-8 characters, replacing invalid bytes with U+FFFD
 * (one per maximal invalid subsequence, as Python's errors="replace" does).
 *
 * Ownership and threads: the handle owns its copies and is immutable after creation, so any
 * number of threads may encode/decode with it at once; tok_stream state belongs to one
 * caller. tok_encode allocates scratch per call; the stream path never allocates. */
#ifndef APIARY_LLM_TOK_H
#define APIARY_LLM_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "llm/gguf.h"

/* Hard caps on untrusted vocabularies and inputs. */
#define TOK_MAX_VOCAB (1 << 21)   /* tokens */
#define TOK_MAX_PIECE (1 << 16)   /* bytes in one token text */
#define TOK_MAX_TEXT (1u << 28)   /* bytes passed to one tok_encode */
#define TOK_MAX_MERGES (1 << 22)  /* BPE merge rules */

/* Token attributes (from tokenizer.ggml.token_type). */
enum {
  TOK_ATTR_NORMAL = 1,
  TOK_ATTR_UNKNOWN = 2,
  TOK_ATTR_CONTROL = 4,
  TOK_ATTR_USER_DEFINED = 8,
  TOK_ATTR_UNUSED = 16,
  TOK_ATTR_BYTE = 32,
};

typedef struct tok tok;

/* Builds a tokenizer from f's metadata (borrowed; may be closed after). Returns 0 with *out
 * owned by the caller (tok_free), or ERR_NOTFOUND (no tokenizer), ERR_UNSUPPORTED (model
 * kind), ERR_FORMAT / ERR_TOOBIG (bad vocabulary), ERR_NOMEM, with a line in err. */
int tok_new_from_gguf(const gguf_file *f, tok **out, char *err, size_t err_cap);
void tok_free(tok *t); /* NULL is a no-op */

int32_t tok_n_vocab(const tok *t);
const char *tok_model(const tok *t); /* "llama" or "gpt2" */
const char *tok_pre(const tok *t);   /* BPE pre-tokenizer kind ("llama3", "qwen2", "gpt2", ...); "" for SPM */
int32_t tok_bos(const tok *t);       /* -1 if none */
int32_t tok_eos(const tok *t);       /* -1 if none */
int32_t tok_unk(const tok *t);       /* -1 if none */
int tok_is_eog(const tok *t, int32_t id); /* end of generation: eos, eot, eom, <|im_end|>... */
int tok_add_bos(const tok *t);       /* 1 if the model asks for BOS (tokenizer.ggml.add_bos_token) */
int tok_add_eos(const tok *t);       /* 1 if the model asks for EOS after the text */
int tok_attr(const tok *t, int32_t id); /* TOK_ATTR_* bits; 0 for ids out of range */
/* The token's stored text (borrowed, not NUL-terminated; ▁ not unescaped). NULL when id is
 * out of range. */
const char *tok_text(const tok *t, int32_t id, size_t *len_out);

/* Encodes text (len bytes, any bytes) into ids; add_bos prepends BOS (when the vocabulary
 * has one: pass tok_add_bos(t) for the model's default). Returns the count, which may
 * exceed cap (then only cap ids were written: call again with a bigger buffer), or <0
 * (ERR_TOOBIG over TOK_MAX_TEXT, ERR_NOMEM). ids may be NULL when cap is 0. */
int tok_encode(const tok *t, const char *text, size_t len, int add_bos, int parse_special, int32_t *ids,
               size_t cap);

/* The raw bytes of a token's piece as it appears in text (SPM: ▁ → space, <0xNN> → that
 * byte; BPE: GPT-2's byte characters → bytes; control and unknown tokens give "" unless
 * render_special, unused ones always ""). Writes
 * min(length, cap) bytes (no NUL) and returns the full length, or ERR_RANGE for a bad id. */
int tok_piece(const tok *t, int32_t id, int render_special, char *out, size_t cap);

/* Streaming detokenizer: feed ids, get bytes out only when they form whole UTF-8
 * characters. tok_stream_init clears the state (at_start = 0). Set at_start = 1 to drop
 * the one leading space that the space prefix put before the first word when decoding a
 * text from its very beginning (llama_detokenize's behaviour; a no-op for vocabularies
 * without add_space_prefix, such as byte-level BPE); leave it 0 to decode a continuation
 * (generated text), which keeps its leading space as llama.cpp prints it. */
typedef struct tok_stream {
  uint8_t pending[8]; /* the start of an incomplete UTF-8 character */
  size_t n_pending;   /* bytes in pending (0..3) */
  int at_start;       /* 1: strip one leading space from the next non-empty piece */
} tok_stream;

void tok_stream_init(tok_stream *s);
/* Feeds one id (control tokens print nothing). Returns bytes written to out, ERR_RANGE for
 * a bad id, or ERR_TOOBIG when cap is too small (state unchanged; cap >= 3 * (piece length
 * + 3) always suffices). */
int tok_stream_feed(const tok *t, tok_stream *s, int32_t id, char *out, size_t cap);
/* Ends the stream: leftover bytes of an incomplete character become U+FFFD. Returns bytes
 * written (0 or 3) or ERR_TOOBIG when cap < 3. */
int tok_stream_flush(tok_stream *s, char *out, size_t cap);

#endif
