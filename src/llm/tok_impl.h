/* llm/tok_impl — internals shared by the tokenizer front (tok.c) and the model-specific
 * encoders (tok_spm.c, tok_bpe.c). Not part of the public API. */
#ifndef APIARY_LLM_TOK_IMPL_H
#define APIARY_LLM_TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/tok.h"

typedef enum tok__kind { TOK__SPM = 1, TOK__BPE = 2 } tok__kind;

typedef struct tok__bpe tok__bpe; /* byte-level BPE state: merges, pre-tokenizer (tok_bpe.c) */

#define TOK__MAX_EOG 16

struct tok {
  tok__kind kind;
  int32_t n_vocab;
  char *text;           /* owned: every token's text, back to back */
  uint32_t *off;        /* owned: n_vocab + 1 offsets into text */
  float *score;         /* owned: n_vocab merge scores (higher merges first) */
  uint8_t *attr;        /* owned: n_vocab TOK_ATTR_* bits */
  int16_t *byte_val;    /* owned: n_vocab; the byte a <0xNN> BYTE token stands for, else -1 */
  int32_t *hash;        /* owned: open-addressing table of ids by text, -1 = empty */
  size_t hash_mask;     /* table size - 1 (a power of two) */
  int32_t *special;     /* owned: control/unknown/user-defined ids, longest text first */
  size_t n_special;
  int32_t byte_tok[256]; /* id to emit for a raw byte (byte fallback), -1 if none */
  int32_t bos, eos, eot, eom, unk; /* -1 when absent */
  int32_t eog[TOK__MAX_EOG];       /* end-of-generation ids */
  size_t n_eog;
  int add_bos, add_eos, add_space_prefix;
  tok__bpe *bpe;        /* owned: kind BPE only, else NULL */
};

/* Output of an encoder: ids beyond cap are counted, not stored. */
typedef struct tok__out {
  int32_t *ids;
  size_t cap;
  size_t n;
} tok__out;

static inline void tok__emit(tok__out *o, int32_t id) {
  if (o->n < o->cap) o->ids[o->n] = id;
  o->n++;
}

/* Per-call scratch memory that grows as needed and is reused across fragments. */
typedef struct tok__scratch {
  void *mem;
  size_t cap;
} tok__scratch;

/* Returns at least n bytes of scratch (contents not kept), or NULL. */
void *tok__scratch_get(tok__scratch *s, size_t n);

/* Per-call work memory of tok_encode: grow-only scratch buffers (SPM uses s[0]; BPE s[0]
 * for a word's symbols and heap, s[1] for sanitized text, s[2] for an encoded word) and
 * BPE's PCRE2 match data, created on first use. tok__work_free releases it all. */
typedef struct tok__work {
  tok__scratch s[3];
  void *match;
} tok__work;

void tok__work_free(tok__work *w);

/* Writes a message into err (cap bytes; err may be NULL) and returns rc. */
int tok__fail(char *err, size_t cap, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Looks text up in the vocabulary; returns the id or -1. */
int32_t tok__find(const tok *t, const char *text, size_t len);

/* SPM: encodes one plain-text fragment (prefix_space: add the leading ▁). Returns 0 or
 * ERR_NOMEM. */
int tok__spm_encode(const tok *t, const char *text, size_t len, int prefix_space, tok__scratch *s,
                    tok__out *o);

/* BPE: reads tokenizer.ggml.pre and .merges into t->bpe (t's texts and hash must be built).
 * Returns 0, or ERR_FORMAT / ERR_TOOBIG / ERR_UNSUPPORTED (unknown pre) / ERR_NOMEM with a
 * line in err; t->bpe may be set even on failure (tok_free releases it). */
int tok__bpe_load(tok *t, const gguf_file *f, char *err, size_t cap);
void tok__bpe_free(tok__bpe *b); /* NULL is a no-op */
const char *tok__bpe_pre(const tok *t);  /* the pre-tokenizer's kind, e.g. "llama3" */
int tok__bpe_default_add_bos(const tok *t);
int tok__bpe_has_default_bos(const tok *t);

/* BPE: encodes one plain-text fragment (any bytes). Returns 0, ERR_NOMEM, or ERR_TOOBIG
 * when PCRE2 gives up on a pathological text. */
int tok__bpe_encode(const tok *t, const char *text, size_t len, tok__work *w, tok__out *o);

/* BPE decoding: maps the character at p[0..n) (n > 0) of a NORMAL token's text back to the
 * byte it stands for in *b; returns the bytes consumed (a character outside the mapping
 * gives its first byte as is and consumes 1). */
int tok__bpe_unbyte(const tok *t, const uint8_t *p, size_t n, uint8_t *b);

#endif
