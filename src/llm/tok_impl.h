/* llm/tok_impl — internals shared by the tokenizer front (tok.c) and the model-specific
 * encoders (tok_spm.c; tok_bpe.c later). Not part of the public API. */
#ifndef APIARY_LLM_TOK_IMPL_H
#define APIARY_LLM_TOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/tok.h"

typedef enum tok__kind { TOK__SPM = 1 } tok__kind;

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

/* Looks text up in the vocabulary; returns the id or -1. */
int32_t tok__find(const tok *t, const char *text, size_t len);

/* SPM: encodes one plain-text fragment (prefix_space: add the leading ▁). Returns 0 or
 * ERR_NOMEM. */
int tok__spm_encode(const tok *t, const char *text, size_t len, int prefix_space, tok__scratch *s,
                    tok__out *o);

#endif
