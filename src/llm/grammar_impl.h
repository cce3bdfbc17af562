/* llm/grammar_impl — the structures shared by gbnf_parse.c, grammar_match.c and
 * grammar_vocab.c. Not a public interface. */
#ifndef APIARY_LLM_GRAMMAR_IMPL_H
#define APIARY_LLM_GRAMMAR_IMPL_H

#include <stdint.h>

#include "llm/grammar.h"

enum { GRAMMAR__END = 0, GRAMMAR__CHAR = 1, GRAMMAR__REF = 2 };

typedef struct grammar__elem {
  uint8_t type; /* GRAMMAR__END / CHAR / REF */
  int32_t val;  /* CHAR: class index; REF: rule index */
} grammar__elem;

typedef struct grammar__class {
  uint32_t off, n;   /* ranges[2*off .. 2*(off+n)): sorted, merged, inclusive lo,hi pairs */
  uint32_t ascii[4]; /* bit c set: code point c (< 128) is in the class */
  uint8_t all_high;  /* every code point 0x80..0x10FFFF is in the class */
} grammar__class;

struct grammar {
  grammar__elem *elems;   /* n_elems; every alternative ends with an END element */
  uint32_t n_elems;
  uint32_t *alts;         /* start element of each alternative, grouped by rule */
  uint32_t *rule_alt;     /* rule r's alternatives: alts[rule_alt[r] .. rule_alt[r+1]) */
  uint32_t n_rules;
  grammar__class *classes; /* n_classes */
  uint32_t n_classes;
  uint32_t *ranges;       /* class ranges (lo, hi pairs) */
  int32_t root;           /* start rule */
};

int grammar__class_has(const grammar *g, const grammar__class *c, uint32_t cp);
int grammar__class_meets(const grammar *g, const grammar__class *c, uint32_t lo, uint32_t hi);

/* Trie of the vocabulary in preorder: node 0 is the root (no byte); node i's children
 * follow it, the first at i+1, the next sibling of child j at end[j]. */
struct grammar_vocab {
  int32_t n_vocab;
  uint32_t n_nodes;
  uint8_t *byte;       /* byte on the edge into node i */
  uint32_t *depth;     /* bytes from the root */
  uint32_t *end;       /* preorder index just past node i's subtree */
  uint32_t *tok_off;   /* tokens ending at node i: toks[tok_off[i] .. tok_off[i+1]) */
  int32_t *toks;       /* token ids sorted by their bytes (trie tokens only) */
  uint32_t max_depth;  /* longest piece */
  /* per token */
  uint32_t (*ascii)[4]; /* ASCII bytes that occur in the piece */
  uint8_t *flags;      /* GRAMMAR__TF_* */
  char *blob;          /* all pieces */
  uint64_t *piece_off; /* n_vocab + 1 */
  int32_t *eogs;       /* eog token ids */
  int32_t n_eog;
};

enum {
  GRAMMAR__TF_EOG = 1,     /* end of generation */
  GRAMMAR__TF_NEVER = 2,   /* special, or no bytes: never allowed */
  GRAMMAR__TF_HIGH = 4,    /* has bytes >= 0x80 */
  GRAMMAR__TF_WF = 8,      /* well-formed UTF-8 (the last character may be cut short) */
};

#endif
