/* llm/tok_spm — SentencePiece-style BPE for tokenizer.ggml.model = "llama".
 *
 * How it works: spaces become "▁" (with one more "▁" in front when prefix_space is set);
 * the text is split into UTF-8 characters (a lead byte's length, cut at the end of the
 * text, so invalid bytes form one-byte symbols); every adjacent pair whose concatenation is
 * a vocabulary token goes into a max-heap keyed by that token's score (ties: leftmost
 * first). The best pair is merged, its neighbours' pairs are pushed, and stale heap entries
 * (a side already merged away or grown) are skipped when popped. Finally each symbol is
 * emitted as its token, or, when it is not in the vocabulary (a character the vocabulary
 * lacks), as byte-fallback tokens <0xNN>, one per byte. This is the algorithm llama.cpp's
 * SPM tokenizer uses, so ids match it exactly.
 *
 * Cost: O(n log n) in the fragment length; all memory comes from the caller's scratch.
 * Pure function of its inputs; thread-safe. */
#include <string.h>

#include "core/err.h"
#include "llm/tok_impl.h"

typedef struct sym {
  int32_t prev, next; /* neighbours in the current segmentation, -1 at the ends */
  uint32_t start;     /* byte offset into the escaped text */
  uint32_t n;         /* byte length; 0 once merged into the left neighbour */
} sym;

typedef struct bigram {
  float score;        /* score of the merged token */
  uint32_t left, right; /* symbol indices */
  uint32_t size;      /* byte length of the merge when it was pushed */
} bigram;

typedef struct spm {
  const tok *t;
  const char *text;   /* escaped text */
  sym *syms;
  bigram *heap;
  size_t n_heap;
} spm;

/* 1 if a should be merged before b. */
static int before(const bigram *a, const bigram *b) {
  return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(spm *m, bigram b) {
  size_t i = m->n_heap++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!before(&b, &m->heap[up])) break;
    m->heap[i] = m->heap[up];
    i = up;
  }
  m->heap[i] = b;
}

static bigram heap_pop(spm *m) {
  bigram top = m->heap[0], last = m->heap[--m->n_heap];
  size_t i = 0, n = m->n_heap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(&m->heap[c + 1], &m->heap[c])) c++;
    if (!before(&m->heap[c], &last)) break;
    m->heap[i] = m->heap[c];
    i = c;
  }
  if (n) m->heap[i] = last;
  return top;
}

static void try_pair(spm *m, int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  uint32_t size = m->syms[left].n + m->syms[right].n;
  int32_t id = tok__find(m->t, m->text + m->syms[left].start, size);
  if (id < 0) return;
  heap_push(m, (bigram){m->t->score[id], (uint32_t)left, (uint32_t)right, size});
}

/* Byte length of the UTF-8 character a lead byte starts (1 for stray bytes). */
static uint32_t char_len(uint8_t c) {
  static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return len[c >> 4];
}

/* Writes the escaped text (▁ for spaces, optional leading ▁) into out; returns its length. */
static size_t escape(const char *text, size_t len, int prefix_space, char *out) {
  static const char mark[3] = {(char)0xE2, (char)0x96, (char)0x81}; /* U+2581 ▁ */
  size_t n = 0;
  if (prefix_space) memcpy(out, mark, 3), n = 3;
  for (size_t i = 0; i < len; i++) {
    if (text[i] == ' ') memcpy(out + n, mark, 3), n += 3;
    else out[n++] = text[i];
  }
  return n;
}

static size_t split_chars(const char *text, size_t len, sym *syms) {
  size_t n = 0;
  for (size_t off = 0; off < len; n++) {
    uint32_t k = char_len((uint8_t)text[off]);
    if (k > len - off) k = (uint32_t)(len - off);
    syms[n] = (sym){(int32_t)n - 1, off + k < len ? (int32_t)n + 1 : -1, (uint32_t)off, k};
    off += k;
  }
  return n;
}

static void merge_all(spm *m, size_t n_sym) {
  for (size_t i = 1; i < n_sym; i++) try_pair(m, (int32_t)i - 1, (int32_t)i);
  while (m->n_heap) {
    bigram b = heap_pop(m);
    sym *l = &m->syms[b.left], *r = &m->syms[b.right];
    if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
    l->n += r->n;
    r->n = 0;
    l->next = r->next;
    if (r->next >= 0) m->syms[r->next].prev = (int32_t)b.left;
    try_pair(m, l->prev, (int32_t)b.left);
    try_pair(m, (int32_t)b.left, l->next);
  }
}

static void emit_symbols(const spm *m, size_t n_sym, tok__out *o) {
  for (int32_t i = n_sym ? 0 : -1; i >= 0; i = m->syms[i].next) {
    const sym *s = &m->syms[i];
    int32_t id = tok__find(m->t, m->text + s->start, s->n);
    if (id >= 0) {
      tok__emit(o, id);
      continue;
    }
    for (uint32_t k = 0; k < s->n; k++) { /* byte fallback */
      int32_t b = m->t->byte_tok[(uint8_t)m->text[s->start + k]];
      if (b >= 0) tok__emit(o, b);
    }
  }
}

int tok__spm_encode(const tok *t, const char *text, size_t len, int prefix_space, tok__scratch *s,
                    tok__out *o) {
  size_t esc_len = prefix_space ? 3 : 0;
  for (size_t i = 0; i < len; i++) esc_len += text[i] == ' ' ? 3 : 1;
  if (esc_len == 0) return 0;
  /* Layout: syms[esc_len] | heap[3 * esc_len] | escaped text. At most one symbol per byte;
   * each merge pushes at most two pairs, so the heap never holds more than 3 per symbol. */
  size_t syms_bytes = esc_len * sizeof(sym), heap_bytes = 3 * esc_len * sizeof(bigram);
  uint8_t *mem = tok__scratch_get(s, syms_bytes + heap_bytes + esc_len);
  if (!mem) return ERR_NOMEM;
  spm m = {t, (char *)mem + syms_bytes + heap_bytes, (sym *)mem, (bigram *)(mem + syms_bytes), 0};
  escape(text, len, prefix_space, (char *)m.text);
  size_t n_sym = split_chars(m.text, esc_len, m.syms);
  merge_all(&m, n_sym);
  emit_symbols(&m, n_sym, o);
  return 0;
}
