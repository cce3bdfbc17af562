/* llm/grammar — grammar-constrained decoding: GBNF grammars, token masks.
 *
 * A GBNF grammar (the format of llama.cpp's grammars/README.md: `name ::= alternatives`,
 * string literals with \n \t \r \\ \" \xNN \uNNNN \UNNNNNNNN escapes, character classes
 * `[a-z]` / `[^...]`, `.`, grouping, `* + ? {m} {m,} {m,n}`, `#` comments, references)
 * is parsed (gbnf_parse.c) into rules whose alternatives are flat element sequences:
 * character sets over Unicode code points, rule references and end markers. Repetitions
 * become helper rules (x* is `r ::= x r | ε`); text may span lines freely: a rule ends
 * where the next `name ::=` begins.
 *
 * Matching (grammar_match.c) is a pushdown automaton run on bytes: the parse state is a
 * set of stacks whose top sits on a character set; stacks are hash-consed nodes
 * (position, parent) in a per-matcher arena, so equal stacks are equal ids and a set
 * dedupes by id. A reference at the end of an alternative does not grow the stack (tail
 * call), so loops run in constant space. UTF-8 is decoded byte by byte: a token ending in
 * the middle of a code point leaves a partial state that keeps only the stacks whose set
 * can still take some completion; malformed UTF-8 is rejected.
 *
 * Masks (grammar_vocab.c) walk the vocabulary's byte trie depth first, advancing the
 * parse state one byte per trie edge and dropping a whole subtree at its first rejected
 * byte; the arena is a LIFO, so backing out of a subtree frees its nodes. When the state
 * sits in a one-character-class loop (the body of a JSON string, digits), every token
 * made only of characters of that class is allowed at once from a precomputed bit set,
 * and the walk only visits trie paths that lead to other tokens.
 *
 * Ownership and threads: a grammar and a grammar_vocab are immutable once made and may
 * be shared by any number of threads and matchers; a matcher borrows both (they must
 * outlive it) and belongs to one thread. grammar_matcher_new allocates everything; mask,
 * allows and accept never allocate. Hard caps bound the text, rules, nesting, stack depth
 * and stack-set size; going over a run-time cap is ERR_TOOBIG. */
#ifndef APIARY_LLM_GRAMMAR_H
#define APIARY_LLM_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "llm/tok.h"

#define GRAMMAR_MAX_TEXT (1u << 22)     /* bytes of GBNF text */
#define GRAMMAR_MAX_RULES (1 << 18)     /* rules, helper rules included */
#define GRAMMAR_MAX_ELEMS (1 << 22)     /* elements over all rules */
#define GRAMMAR_MAX_NESTING 256         /* parenthesis depth */
#define GRAMMAR_MAX_REPEAT 10000        /* m and n of x{m,n} */
#define GRAMMAR_MAX_STACKS 1024         /* stacks in one parse state */
#define GRAMMAR_MAX_DEPTH 10000         /* nodes in one stack (nesting of the text) */
#define GRAMMAR_MAX_NODES (1 << 17)     /* stack nodes in one matcher (live + one mask walk) */
#define GRAMMAR_MAX_EXPAND (1 << 18)    /* expansion steps per byte */

typedef struct grammar grammar;                 /* parsed grammar; immutable; shareable across threads */
typedef struct grammar_vocab grammar_vocab;     /* a vocabulary prepared for masking; immutable; shareable */
typedef struct grammar_matcher grammar_matcher; /* one generation's parse state; one thread */

/* Parses GBNF text (len bytes, borrowed); root names the start rule ("root" when NULL).
 * Returns 0 with *out owned (grammar_free), or ERR_FORMAT (syntax, unknown rule, left
 * recursion that cannot terminate), ERR_TOOBIG (a cap), ERR_NOMEM, with "line:col: why"
 * in err. */
int grammar_parse(const char *gbnf, size_t len, const char *root, grammar **out, char *err, size_t err_cap);
void grammar_free(grammar *g); /* NULL is a no-op */

/* pieces[i], lens[i]: the bytes token i produces when generated (borrowed, copied);
 * eog[i] != 0 marks end-of-generation tokens; special[i] != 0 marks other control tokens
 * (never allowed while a grammar is active); either may be NULL (none). Tokens with no
 * bytes that are not eog are never allowed. Returns 0 with *out owned, ERR_INVAL,
 * ERR_TOOBIG (over TOK_MAX_VOCAB / TOK_MAX_PIECE), ERR_NOMEM. */
int grammar_vocab_new(int32_t n_vocab, const char *const *pieces, const size_t *lens, const uint8_t *eog,
                      const uint8_t *special, grammar_vocab **out);
/* The same from a tokenizer (borrowed): tok_piece (render_special 0), tok_is_eog, and
 * control/unknown/unused attributes as special. */
int grammar_vocab_from_tok(const tok *t, grammar_vocab **out);
void grammar_vocab_free(grammar_vocab *v); /* NULL is a no-op */
int32_t grammar_vocab_n(const grammar_vocab *v);

/* Borrows g and v (both must outlive the matcher). Returns 0, ERR_NOMEM. */
int grammar_matcher_new(const grammar *g, const grammar_vocab *v, grammar_matcher **out);
void grammar_matcher_free(grammar_matcher *m); /* NULL is a no-op */
void grammar_matcher_reset(grammar_matcher *m); /* back to the start of the grammar */
/* mask: (n_vocab+31)/32 words, bit i set = token i may come next (its bytes continue a
 * sentence of the grammar; eog tokens only when the text so far is a complete sentence).
 * Returns the count allowed (0: dead end), or <0 (ERR_TOOBIG: a run-time cap). Never
 * allocates. */
int grammar_matcher_mask(grammar_matcher *m, uint32_t *mask);
int grammar_matcher_allows(grammar_matcher *m, int32_t id);        /* 1/0: fast check of one token */
int grammar_matcher_accept(grammar_matcher *m, int32_t id);        /* advance by a token; ERR_INVAL if not allowed */
/* Advances by raw bytes; ERR_INVAL (state unchanged) when they leave the grammar. */
int grammar_matcher_accept_bytes(grammar_matcher *m, const char *s, size_t len);
int grammar_matcher_can_end(const grammar_matcher *m);  /* the bytes so far form a complete sentence */
int grammar_matcher_must_end(const grammar_matcher *m); /* complete and nothing more can follow */

#endif
