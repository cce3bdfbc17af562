/* llm/grammar_vocab — a vocabulary prepared for grammar masks: every token's bytes, its
 * flags (eog, never allowed, has non-ASCII bytes, well-formed UTF-8), the set of ASCII
 * bytes it uses, and a byte trie of all allowed-able tokens in preorder (grammar_impl.h).
 *
 * Built once (sorting the pieces, then one pass that opens a trie node per byte past the
 * common prefix with the previous piece); immutable afterwards and shared by any number of
 * matchers and threads. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar_impl.h"

typedef struct sort_ctx {
  const char *blob;
  const uint64_t *off;
} sort_ctx;

/* Sorting needs the pieces: a thread-local would be a global, so merge sort by hand. */
static int piece_cmp(const sort_ctx *c, int32_t a, int32_t b) {
  size_t la = c->off[a + 1] - c->off[a], lb = c->off[b + 1] - c->off[b];
  int r = memcmp(c->blob + c->off[a], c->blob + c->off[b], la < lb ? la : lb);
  if (r) return r;
  if (la != lb) return la < lb ? -1 : 1;
  return a < b ? -1 : a > b;
}

static void merge_sort(const sort_ctx *c, int32_t *v, int32_t *tmp, size_t n) {
  if (n < 2) return;
  size_t h = n / 2;
  merge_sort(c, v, tmp, h);
  merge_sort(c, v + h, tmp, n - h);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = piece_cmp(c, v[i], v[j]) <= 0 ? v[i++] : v[j++];
  while (i < h) tmp[k++] = v[i++];
  while (j < n) tmp[k++] = v[j++];
  memcpy(v, tmp, n * sizeof *v);
}

/* Well-formed UTF-8, allowing the last character to be cut short. */
static int utf8_wf_prefix(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 0;
    i++;
    for (size_t k = 0; k < need && i < n; k++, i++) {
      if (s[i] < lo || s[i] > hi) return 0;
      lo = 0x80, hi = 0xBF;
    }
  }
  return 1;
}

int32_t grammar_vocab_n(const grammar_vocab *v) { return v->n_vocab; }

void grammar_vocab_free(grammar_vocab *v) {
  if (!v) return;
  free(v->byte);
  free(v->depth);
  free(v->end);
  free(v->tok_off);
  free(v->toks);
  free(v->ascii);
  free(v->flags);
  free(v->blob);
  free(v->piece_off);
  free(v->eogs);
  free(v);
}

int grammar_vocab_new(int32_t n_vocab, const char *const *pieces, const size_t *lens, const uint8_t *eog,
                      const uint8_t *special, grammar_vocab **out) {
  *out = NULL;
  if (n_vocab <= 0 || !pieces || !lens) return ERR_INVAL;
  if (n_vocab > TOK_MAX_VOCAB) return ERR_TOOBIG;
  uint64_t total = 0;
  for (int32_t i = 0; i < n_vocab; i++) {
    if (lens[i] > TOK_MAX_PIECE) return ERR_TOOBIG;
    if (lens[i] && !pieces[i]) return ERR_INVAL;
    total += lens[i];
  }
  grammar_vocab *v = calloc(1, sizeof *v);
  int32_t *tmp = NULL;
  if (!v) return ERR_NOMEM;
  v->n_vocab = n_vocab;
  v->blob = malloc(total ? total : 1);
  v->piece_off = malloc(((size_t)n_vocab + 1) * sizeof *v->piece_off);
  v->ascii = calloc((size_t)n_vocab, sizeof *v->ascii);
  v->flags = calloc((size_t)n_vocab, 1);
  v->toks = malloc((size_t)n_vocab * sizeof *v->toks);
  v->eogs = malloc((size_t)n_vocab * sizeof *v->eogs);
  tmp = malloc((size_t)n_vocab * sizeof *tmp);
  /* at most one trie node per byte, plus the root */
  v->byte = malloc(total + 1);
  v->depth = malloc((total + 1) * sizeof *v->depth);
  v->end = malloc((total + 1) * sizeof *v->end);
  v->tok_off = malloc((total + 2) * sizeof *v->tok_off);
  if (!v->blob || !v->piece_off || !v->ascii || !v->flags || !v->toks || !v->eogs || !tmp || !v->byte ||
      !v->depth || !v->end || !v->tok_off)
    goto nomem;
  uint64_t at = 0;
  int32_t n_trie = 0;
  for (int32_t i = 0; i < n_vocab; i++) {
    v->piece_off[i] = at;
    if (lens[i]) memcpy(v->blob + at, pieces[i], lens[i]);
    const uint8_t *s = (const uint8_t *)v->blob + at;
    at += lens[i];
    uint8_t f = 0;
    for (size_t k = 0; k < lens[i]; k++) {
      if (s[k] < 0x80) v->ascii[i][s[k] >> 5] |= 1u << (s[k] & 31);
      else f |= GRAMMAR__TF_HIGH;
    }
    if (utf8_wf_prefix(s, lens[i])) f |= GRAMMAR__TF_WF;
    if (eog && eog[i]) {
      f |= GRAMMAR__TF_EOG;
      v->eogs[v->n_eog++] = i;
    } else if ((special && special[i]) || !lens[i]) {
      f |= GRAMMAR__TF_NEVER;
    } else {
      v->toks[n_trie++] = i;
    }
    v->flags[i] = f;
  }
  v->piece_off[n_vocab] = at;
  sort_ctx c = {v->blob, v->piece_off};
  merge_sort(&c, v->toks, tmp, (size_t)n_trie);

  /* Trie in preorder. path[d] = node at depth d on the current path. */
  uint32_t *path = malloc((TOK_MAX_PIECE + 1) * sizeof *path);
  if (!path) goto nomem;
  uint32_t n = 1;
  v->byte[0] = 0, v->depth[0] = 0, v->tok_off[0] = 0;
  path[0] = 0;
  size_t plen = 0; /* depth of the current path */
  const uint8_t *prev = NULL;
  for (int32_t k = 0; k < n_trie; k++) {
    int32_t id = v->toks[k];
    const uint8_t *s = (const uint8_t *)v->blob + v->piece_off[id];
    size_t len = v->piece_off[id + 1] - v->piece_off[id];
    size_t common = 0;
    while (prev && common < plen && common < len && prev[common] == s[common]) common++;
    for (size_t d = plen; d > common; d--) v->end[path[d]] = n; /* close nodes leaving the path */
    for (size_t d = common; d < len; d++) {
      v->byte[n] = s[d];
      v->depth[n] = (uint32_t)(d + 1);
      v->tok_off[n] = (uint32_t)k; /* tokens ending here start at k (set for all new nodes) */
      path[d + 1] = n++;
    }
    plen = len;
    prev = s;
    if (len > v->max_depth) v->max_depth = (uint32_t)len;
  }
  for (size_t d = plen; d > 0; d--) v->end[path[d]] = n;
  v->end[0] = n;
  free(path);
  /* tok_off: node i's tokens are those k with piece == path of i; since a new node's
   * tok_off is the first token passing through it and tokens ending at i sort first
   * among those, count them by a second pass. */
  {
    uint32_t *cnt = calloc((size_t)n + 1, sizeof *cnt);
    if (!cnt) goto nomem;
    /* walk again to map each token to its end node */
    uint32_t node = 0;
    size_t depth = 0;
    prev = NULL;
    uint32_t *stack = malloc(((size_t)v->max_depth + 1) * sizeof *stack);
    if (!stack) { free(cnt); goto nomem; }
    stack[0] = 0;
    for (int32_t k = 0; k < n_trie; k++) {
      int32_t id = v->toks[k];
      const uint8_t *s = (const uint8_t *)v->blob + v->piece_off[id];
      size_t len = v->piece_off[id + 1] - v->piece_off[id];
      size_t common = 0;
      while (prev && common < depth && common < len && prev[common] == s[common]) common++;
      depth = common;
      node = stack[depth];
      while (depth < len) { /* descend: the child with byte s[depth] */
        uint32_t ch = node + 1;
        while (v->byte[ch] != s[depth]) ch = v->end[ch];
        node = ch;
        stack[++depth] = node;
      }
      cnt[node]++;
      prev = s;
    }
    free(stack);
    uint32_t acc = 0;
    for (uint32_t i = 0; i < n; i++) {
      v->tok_off[i] = acc;
      acc += cnt[i];
    }
    v->tok_off[n] = acc;
    free(cnt);
  }
  v->n_nodes = n;
  free(tmp);
  *out = v;
  return 0;
nomem:
  free(tmp);
  grammar_vocab_free(v);
  return ERR_NOMEM;
}

int grammar_vocab_from_tok(const tok *t, grammar_vocab **out) {
  *out = NULL;
  int32_t n = tok_n_vocab(t);
  if (n <= 0) return ERR_INVAL;
  char **pieces = calloc((size_t)n, sizeof *pieces);
  size_t *lens = calloc((size_t)n, sizeof *lens);
  uint8_t *eog = calloc((size_t)n, 1), *special = calloc((size_t)n, 1);
  char *buf = malloc(TOK_MAX_PIECE);
  int rc = ERR_NOMEM;
  if (!pieces || !lens || !eog || !special || !buf) goto done;
  for (int32_t i = 0; i < n; i++) {
    int len = tok_piece(t, i, 0, buf, TOK_MAX_PIECE);
    if (len < 0) { rc = len; goto done; }
    if (len > TOK_MAX_PIECE) { rc = ERR_TOOBIG; goto done; }
    lens[i] = (size_t)len;
    if (len && !(pieces[i] = malloc((size_t)len))) goto done;
    if (len) memcpy(pieces[i], buf, (size_t)len);
    eog[i] = tok_is_eog(t, i) != 0;
    special[i] = (tok_attr(t, i) & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_UNUSED)) != 0;
  }
  rc = grammar_vocab_new(n, (const char *const *)pieces, lens, eog, special, out);
done:
  if (pieces)
    for (int32_t i = 0; i < n; i++) free(pieces[i]);
  free(pieces);
  free(lens);
  free(eog);
  free(special);
  free(buf);
  return rc;
}
