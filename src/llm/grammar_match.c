/* llm/grammar_match — the matcher: parse state, byte steps, token masks (grammar.h).
 *
 * Stacks are hash-consed nodes (pos, parent) in an arena: pos is an element index (the
 * top node sits on a CHAR element; lower nodes hold return positions), parent the node
 * below. Interning makes equal stacks equal ids, so a state (a set of top ids plus a
 * partial UTF-8 character) dedupes by id. The arena and the state sets are LIFO: a step
 * pushes, backing out pops (each bucket chain has its newest node first, so popping in
 * reverse order restores the chains exactly). After an accepted token the live stacks are
 * compacted to the bottom of the arena.
 *
 * The mask walks the vocabulary trie in preorder with one frame per depth; see grammar.h
 * for the one-class-loop shortcut. Everything is allocated by grammar_matcher_new; the
 * loop shortcut tables are filled lazily on first use, without allocating. One thread. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/grammar_impl.h"

#define NODE_CAP ((uint32_t)GRAMMAR_MAX_NODES) /* arena nodes per matcher */
#define SET_CAP (1u << 17)                      /* stack-set entries per matcher */
#define BUCKETS (1u << 16)
#define MAX_LOOPS 8   /* loop shortcut tables per matcher (reused round robin) */
#define MASK_CACHE 4  /* masks remembered per matcher, by the state they were computed in */
#define SIG_CAP 256   /* int32s of a state's signature; longer states are not cached */
#define DEAD 1

typedef struct mnode {
  int32_t pos;    /* element index */
  int32_t parent; /* node below, -1 at the bottom */
  int32_t next;   /* hash chain */
  uint32_t depth; /* nodes in this stack */
} mnode;

typedef struct mstate {
  uint32_t off, n;  /* stack tops: sets[off .. off+n) */
  uint32_t acc;     /* partial character: bits so far */
  uint8_t need;     /* continuation bytes still expected (0: none pending) */
  uint8_t blo, bhi; /* allowed range of the next continuation byte */
  uint8_t can_end;  /* the text so far is a complete sentence */
} mstate;

typedef struct loop_tab {
  int32_t cls;      /* class the table is for, -1: none */
  uint32_t *allow;  /* tokens made only of characters of the class */
  uint32_t *escape; /* bit per trie node: its subtree holds a token not in allow */
} loop_tab;

struct grammar_matcher {
  const grammar *g;
  const grammar_vocab *v;
  mnode *nodes;
  uint32_t n_nodes;
  int32_t *buckets;
  int32_t *sets;
  uint32_t n_sets;
  int32_t *remap;    /* compaction scratch, NODE_CAP */
  mstate cur;
  int err;           /* sticky error from the start state (a cap) */
  uint32_t steps;    /* expansion steps in the current byte step */
  mstate *frames;    /* mask walk, max_depth + 2 */
  uint32_t *fnodes, *fsets;
  int32_t *loop_slot; /* per class: slot in loops or -1 */
  loop_tab loops[MAX_LOOPS];
  uint32_t next_loop; /* slot to fill next */
  /* Masks of recent states: a JSON string's body (and many other places) returns to the
   * same state token after token, so its mask is computed once. A state is keyed by its
   * signature: the partial character and every stack's element positions. */
  struct {
    int32_t sig[SIG_CAP];
    uint32_t sig_len;   /* 0: empty slot */
    int count;
    uint32_t *mask;
  } cache[MASK_CACHE];
  uint32_t next_cache;
  int32_t sig[SIG_CAP]; /* scratch: the current state's signature */
};

/* The current state's signature into m->sig; its length, or 0 when too long to cache. */
static uint32_t state_sig(grammar_matcher *m) {
  const mstate *c = &m->cur;
  uint32_t k = 0;
  m->sig[k++] = (int32_t)c->acc;
  m->sig[k++] = c->need | c->blo << 8 | c->bhi << 16 | c->can_end << 24;
  m->sig[k++] = (int32_t)c->n;
  for (uint32_t j = 0; j < c->n; j++) {
    for (int32_t x = m->sets[c->off + j]; x >= 0; x = m->nodes[x].parent) {
      if (k + 2 > SIG_CAP) return 0;
      m->sig[k++] = m->nodes[x].pos;
    }
    m->sig[k++] = -1;
  }
  return k;
}

static inline uint32_t node_hash(int32_t pos, int32_t parent) {
  return (((uint32_t)pos * 0x9E3779B1u) ^ ((uint32_t)(parent + 1) * 0x85EBCA77u)) >> 16 & (BUCKETS - 1);
}

static int intern(grammar_matcher *m, int32_t pos, int32_t parent) {
  uint32_t h = node_hash(pos, parent);
  for (int32_t i = m->buckets[h]; i >= 0; i = m->nodes[i].next)
    if (m->nodes[i].pos == pos && m->nodes[i].parent == parent) return i;
  if (m->n_nodes >= NODE_CAP) return ERR_TOOBIG;
  uint32_t depth = parent < 0 ? 1 : m->nodes[parent].depth + 1;
  if (depth > GRAMMAR_MAX_DEPTH) return ERR_TOOBIG;
  mnode *n = &m->nodes[m->n_nodes];
  n->pos = pos, n->parent = parent, n->next = m->buckets[h], n->depth = depth;
  m->buckets[h] = (int32_t)m->n_nodes;
  return (int)m->n_nodes++;
}

static void release_to(grammar_matcher *m, uint32_t mark) {
  while (m->n_nodes > mark) {
    mnode *n = &m->nodes[--m->n_nodes];
    m->buckets[node_hash(n->pos, n->parent)] = n->next;
  }
}

/* Adds a top to T, which must be the newest set. */
static int add_top(grammar_matcher *m, mstate *T, int32_t id) {
  for (uint32_t i = 0; i < T->n; i++)
    if (m->sets[T->off + i] == id) return 0;
  if (T->n >= GRAMMAR_MAX_STACKS || m->n_sets >= SET_CAP) return ERR_TOOBIG;
  m->sets[m->n_sets++] = id;
  T->n++;
  return 0;
}

/* Adds to T every stack reached from position pos over parent without consuming. */
static int expand(grammar_matcher *m, int32_t pos, int32_t parent, mstate *T, int depth) {
  if (++m->steps > GRAMMAR_MAX_EXPAND || depth > 4096) return ERR_TOOBIG;
  const grammar *g = m->g;
  const grammar__elem *e = &g->elems[pos];
  if (e->type == GRAMMAR__CHAR) {
    int id = intern(m, pos, parent);
    return id < 0 ? id : add_top(m, T, id);
  }
  if (e->type == GRAMMAR__END) {
    if (parent < 0) {
      T->can_end = 1;
      return 0;
    }
    return expand(m, m->nodes[parent].pos, m->nodes[parent].parent, T, depth + 1);
  }
  int32_t ret = parent;
  if (g->elems[pos + 1].type != GRAMMAR__END && (ret = intern(m, pos + 1, parent)) < 0) return ret;
  for (uint32_t a = g->rule_alt[e->val]; a < g->rule_alt[e->val + 1]; a++) {
    int rc = expand(m, (int32_t)g->alts[a], ret, T, depth + 1);
    if (rc) return rc;
  }
  return 0;
}

static void begin(grammar_matcher *m, mstate *T) {
  memset(T, 0, sizeof *T);
  T->off = m->n_sets;
  m->steps = 0;
}

static int step_cp(grammar_matcher *m, const mstate *S, uint32_t cp, mstate *T) {
  const grammar *g = m->g;
  for (uint32_t i = 0; i < S->n; i++) {
    const mnode *n = &m->nodes[m->sets[S->off + i]];
    if (!grammar__class_has(g, &g->classes[g->elems[n->pos].val], cp)) continue;
    int rc = expand(m, n->pos + 1, n->parent, T, 0);
    if (rc) return rc;
  }
  return 0;
}

/* Keeps S's stacks that may take a character completing T's partial one. */
static int filter_partial(grammar_matcher *m, const mstate *S, mstate *T) {
  const grammar *g = m->g;
  uint32_t shift = 6 * (T->need - 1u);
  uint32_t lo = ((T->acc << 6) | (T->blo & 0x3Fu)) << shift;
  uint32_t hi = (((T->acc << 6) | (T->bhi & 0x3Fu)) << shift) | ((1u << shift) - 1);
  for (uint32_t i = 0; i < S->n; i++) {
    int32_t id = m->sets[S->off + i];
    const grammar__class *c = &g->classes[g->elems[m->nodes[id].pos].val];
    if (!c->all_high && !grammar__class_meets(g, c, lo, hi)) continue;
    if (m->n_sets >= SET_CAP) return ERR_TOOBIG;
    m->sets[m->n_sets++] = id;
    T->n++;
  }
  return 0;
}

/* T = S after byte b. Returns 0, DEAD, or <0. T is pushed on the set storage. */
static int advance(grammar_matcher *m, const mstate *S, uint8_t b, mstate *T) {
  begin(m, T);
  int rc;
  if (!S->need) {
    if (b < 0x80) {
      rc = step_cp(m, S, b, T);
      if (rc) return rc;
      return T->n || T->can_end ? 0 : DEAD;
    }
    T->blo = 0x80, T->bhi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) T->need = 1, T->acc = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF) {
      T->need = 2, T->acc = b & 0x0F;
      if (b == 0xE0) T->blo = 0xA0;
      if (b == 0xED) T->bhi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      T->need = 3, T->acc = b & 0x07;
      if (b == 0xF0) T->blo = 0x90;
      if (b == 0xF4) T->bhi = 0x8F;
    } else return DEAD;
  } else {
    if (b < S->blo || b > S->bhi) return DEAD;
    uint32_t acc = (S->acc << 6) | (b & 0x3Fu);
    if (S->need == 1) {
      rc = step_cp(m, S, acc, T);
      if (rc) return rc;
      return T->n || T->can_end ? 0 : DEAD;
    }
    T->need = (uint8_t)(S->need - 1), T->acc = acc, T->blo = 0x80, T->bhi = 0xBF;
  }
  rc = filter_partial(m, S, T);
  if (rc) return rc;
  return T->n ? 0 : DEAD;
}

/* Moves the live stacks of cur to the bottom of the arena. */
static void compact(grammar_matcher *m) {
  uint32_t n = m->n_nodes;
  release_to(m, 0);
  m->n_nodes = n; /* the nodes are still there; only the chains were undone */
  for (uint32_t i = 0; i < n; i++) m->remap[i] = -1;
  for (uint32_t j = 0; j < m->cur.n; j++)
    for (int32_t x = m->sets[m->cur.off + j]; x >= 0 && m->remap[x] == -1; x = m->nodes[x].parent) m->remap[x] = -2;
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (m->remap[i] != -2) continue;
    mnode x = m->nodes[i];
    x.parent = x.parent < 0 ? -1 : m->remap[x.parent];
    uint32_t h = node_hash(x.pos, x.parent);
    x.next = m->buckets[h];
    m->buckets[h] = (int32_t)k;
    m->nodes[k] = x;
    m->remap[i] = (int32_t)k++;
  }
  m->n_nodes = k;
  for (uint32_t j = 0; j < m->cur.n; j++) m->sets[j] = m->remap[m->sets[m->cur.off + j]];
  m->cur.off = 0;
  m->n_sets = m->cur.n;
}

void grammar_matcher_reset(grammar_matcher *m) {
  release_to(m, 0);
  m->n_sets = 0;
  m->err = 0;
  mstate T;
  begin(m, &T);
  const grammar *g = m->g;
  for (uint32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1] && !m->err; a++)
    m->err = expand(m, (int32_t)g->alts[a], -1, &T, 0);
  m->cur = T;
  if (!m->err) compact(m);
}

void grammar_matcher_free(grammar_matcher *m) {
  if (!m) return;
  free(m->nodes);
  free(m->buckets);
  free(m->sets);
  free(m->remap);
  free(m->frames);
  free(m->fnodes);
  free(m->fsets);
  free(m->loop_slot);
  for (uint32_t i = 0; i < MASK_CACHE; i++) free(m->cache[i].mask);
  for (uint32_t i = 0; i < MAX_LOOPS; i++) {
    free(m->loops[i].allow);
    free(m->loops[i].escape);
  }
  free(m);
}

int grammar_matcher_new(const grammar *g, const grammar_vocab *v, grammar_matcher **out) {
  *out = NULL;
  grammar_matcher *m = calloc(1, sizeof *m);
  if (!m) return ERR_NOMEM;
  m->g = g, m->v = v;
  m->nodes = malloc(NODE_CAP * sizeof *m->nodes);
  m->buckets = malloc(BUCKETS * sizeof *m->buckets);
  m->sets = malloc(SET_CAP * sizeof *m->sets);
  m->remap = malloc(NODE_CAP * sizeof *m->remap);
  m->frames = malloc(((size_t)v->max_depth + 2) * sizeof *m->frames);
  m->fnodes = malloc(((size_t)v->max_depth + 2) * sizeof *m->fnodes);
  m->fsets = malloc(((size_t)v->max_depth + 2) * sizeof *m->fsets);
  m->loop_slot = malloc(((size_t)g->n_classes + 1) * sizeof *m->loop_slot);
  if (!m->nodes || !m->buckets || !m->sets || !m->remap || !m->frames || !m->fnodes || !m->fsets || !m->loop_slot)
    goto nomem;
  memset(m->buckets, 0xFF, BUCKETS * sizeof *m->buckets);
  for (uint32_t c = 0; c < g->n_classes; c++) m->loop_slot[c] = -1;
  size_t words = ((size_t)v->n_vocab + 31) / 32;
  for (uint32_t i = 0; i < MASK_CACHE; i++)
    if (!(m->cache[i].mask = malloc(words * sizeof *m->cache[i].mask))) goto nomem;
  for (uint32_t i = 0; i < MAX_LOOPS; i++) {
    loop_tab *t = &m->loops[i];
    t->cls = -1;
    t->allow = malloc(words * sizeof *t->allow);
    t->escape = malloc(((size_t)v->n_nodes + 31) / 32 * sizeof *t->escape);
    if (!t->allow || !t->escape) goto nomem;
  }
  grammar_matcher_reset(m);
  *out = m;
  return 0;
nomem:
  grammar_matcher_free(m);
  return ERR_NOMEM;
}

/* Fills a shortcut table for class c. */
static void fill_loop(grammar_matcher *m, loop_tab *t, int32_t cls) {
  const grammar_vocab *v = m->v;
  const grammar__class *c = &m->g->classes[cls];
  size_t words = ((size_t)v->n_vocab + 31) / 32;
  memset(t->allow, 0, words * sizeof *t->allow);
  memset(t->escape, 0, ((size_t)v->n_nodes + 31) / 32 * sizeof *t->escape);
  for (int32_t id = 0; id < v->n_vocab; id++) {
    uint8_t f = v->flags[id];
    if (f & (GRAMMAR__TF_EOG | GRAMMAR__TF_NEVER)) continue;
    const uint32_t *a = v->ascii[id];
    if ((a[0] & ~c->ascii[0]) | (a[1] & ~c->ascii[1]) | (a[2] & ~c->ascii[2]) | (a[3] & ~c->ascii[3])) continue;
    if ((f & GRAMMAR__TF_HIGH) && !(c->all_high && (f & GRAMMAR__TF_WF))) continue;
    t->allow[id >> 5] |= 1u << (id & 31);
  }
  for (uint32_t i = v->n_nodes; i-- > 0;) {
    int e = 0;
    for (uint32_t k = v->tok_off[i]; k < v->tok_off[i + 1] && !e; k++) {
      int32_t id = v->toks[k];
      e = !((t->allow[id >> 5] >> (id & 31)) & 1);
    }
    for (uint32_t j = i + 1; j < v->end[i] && !e; j = v->end[j]) e = (t->escape[j >> 5] >> (j & 31)) & 1;
    if (e) t->escape[i >> 5] |= 1u << (i & 31);
  }
  if (t->cls >= 0) m->loop_slot[t->cls] = -1;
  t->cls = cls;
  m->loop_slot[cls] = (int32_t)(t - m->loops);
}

/* Is the stack with top id a loop: does matching one character of its class lead back to
 * the same stack? (What follows a matched CHAR does not depend on the character.) Then
 * every token made only of the class's characters is allowed from a state holding it. */
static int is_loop(grammar_matcher *m, int32_t id) {
  uint32_t nm = m->n_nodes, sm = m->n_sets;
  mstate T;
  begin(m, &T);
  const mnode *n = &m->nodes[id];
  int rc = expand(m, n->pos + 1, n->parent, &T, 0), found = 0;
  for (uint32_t i = 0; !rc && i < T.n && !found; i++) found = m->sets[T.off + i] == id;
  release_to(m, nm);
  m->n_sets = sm;
  return found;
}

/* The shortcut table for the current state, or NULL. Picks the top whose class admits the
 * most ASCII characters among the loops. */
static const loop_tab *loop_for_state(grammar_matcher *m) {
  const grammar *g = m->g;
  if (m->cur.need) return NULL;
  int32_t best = -1;
  int best_w = 0;
  for (uint32_t j = 0; j < m->cur.n; j++) {
    int32_t id = m->sets[m->cur.off + j];
    int32_t cls = g->elems[m->nodes[id].pos].val;
    const grammar__class *c = &g->classes[cls];
    int w = __builtin_popcount(c->ascii[0]) + __builtin_popcount(c->ascii[1]) + __builtin_popcount(c->ascii[2]) +
            __builtin_popcount(c->ascii[3]) + (c->all_high ? 64 : 0);
    if (w <= best_w || w < 8 || !is_loop(m, id)) continue;
    best = cls, best_w = w;
  }
  if (best < 0) return NULL;
  if (m->loop_slot[best] < 0) {
    loop_tab *t = &m->loops[m->next_loop];
    m->next_loop = (m->next_loop + 1) % MAX_LOOPS;
    fill_loop(m, t, best);
  }
  return &m->loops[m->loop_slot[best]];
}

int grammar_matcher_mask(grammar_matcher *m, uint32_t *mask) {
  const grammar_vocab *v = m->v;
  size_t words = ((size_t)v->n_vocab + 31) / 32;
  memset(mask, 0, words * sizeof *mask);
  if (m->err) return m->err;
  if (!m->cur.need && m->cur.can_end)
    for (int32_t i = 0; i < v->n_eog; i++) mask[v->eogs[i] >> 5] |= 1u << (v->eogs[i] & 31);
  uint32_t sig_len = state_sig(m);
  for (uint32_t i = 0; sig_len && i < MASK_CACHE; i++)
    if (m->cache[i].sig_len == sig_len && !memcmp(m->cache[i].sig, m->sig, sig_len * sizeof *m->sig)) {
      memcpy(mask, m->cache[i].mask, words * sizeof *mask);
      return m->cache[i].count;
    }
  uint32_t nm = m->n_nodes, sm = m->n_sets;
  const loop_tab *lt = loop_for_state(m);
  if (lt)
    for (size_t w = 0; w < words; w++) mask[w] |= lt->allow[w];
  int rc = 0;
  m->frames[0] = m->cur;
  m->fnodes[1] = nm, m->fsets[1] = sm;
  for (uint32_t i = 1; i < v->n_nodes;) {
    uint32_t d = v->depth[i];
    release_to(m, m->fnodes[d]);
    m->n_sets = m->fsets[d];
    if (lt && !((lt->escape[i >> 5] >> (i & 31)) & 1)) {
      i = v->end[i];
      continue;
    }
    rc = advance(m, &m->frames[d - 1], v->byte[i], &m->frames[d]);
    if (rc < 0) break;
    if (rc == DEAD) {
      rc = 0;
      i = v->end[i];
      continue;
    }
    for (uint32_t k = v->tok_off[i]; k < v->tok_off[i + 1]; k++) {
      int32_t id = v->toks[k];
      mask[id >> 5] |= 1u << (id & 31);
    }
    m->fnodes[d + 1] = m->n_nodes, m->fsets[d + 1] = m->n_sets;
    i++;
  }
  release_to(m, nm);
  m->n_sets = sm;
  if (rc < 0) {
    memset(mask, 0, words * sizeof *mask);
    return rc;
  }
  int count = 0;
  for (size_t w = 0; w < words; w++) count += __builtin_popcount(mask[w]);
  if (sig_len) { /* remember it (round robin) */
    uint32_t i = m->next_cache;
    m->next_cache = (i + 1) % MASK_CACHE;
    memcpy(m->cache[i].sig, m->sig, sig_len * sizeof *m->sig);
    m->cache[i].sig_len = sig_len;
    m->cache[i].count = count;
    memcpy(m->cache[i].mask, mask, words * sizeof *mask);
  }
  return count;
}

/* Runs the bytes from cur; on success leaves the final state in *T (on top of the sets). */
static int run_bytes(grammar_matcher *m, const uint8_t *s, size_t len, mstate *T) {
  mstate a = m->cur, b;
  for (size_t i = 0; i < len; i++) {
    int rc = advance(m, &a, s[i], &b);
    if (rc) return rc;
    a = b;
  }
  *T = a;
  return 0;
}

int grammar_matcher_accept_bytes(grammar_matcher *m, const char *s, size_t len) {
  if (m->err) return m->err;
  uint32_t nm = m->n_nodes, sm = m->n_sets;
  mstate T;
  int rc = run_bytes(m, (const uint8_t *)s, len, &T);
  if (rc) {
    release_to(m, nm);
    m->n_sets = sm;
    return rc == DEAD ? ERR_INVAL : rc;
  }
  m->cur = T;
  compact(m);
  return 0;
}

static const uint8_t *piece(const grammar_vocab *v, int32_t id, size_t *len) {
  *len = v->piece_off[id + 1] - v->piece_off[id];
  return (const uint8_t *)v->blob + v->piece_off[id];
}

int grammar_matcher_allows(grammar_matcher *m, int32_t id) {
  const grammar_vocab *v = m->v;
  if (id < 0 || id >= v->n_vocab || m->err) return 0;
  uint8_t f = v->flags[id];
  if (f & GRAMMAR__TF_EOG) return !m->cur.need && m->cur.can_end;
  if (f & GRAMMAR__TF_NEVER) return 0;
  /* as the mask decides it: a token of the loop's class is allowed by the shortcut (even
   * where stepping through it would hit a cap on a pathological grammar) */
  const loop_tab *lt = loop_for_state(m);
  if (lt && ((lt->allow[id >> 5] >> (id & 31)) & 1)) return 1;
  uint32_t nm = m->n_nodes, sm = m->n_sets;
  size_t len;
  const uint8_t *s = piece(v, id, &len);
  mstate T;
  int rc = run_bytes(m, s, len, &T);
  release_to(m, nm);
  m->n_sets = sm;
  return rc == 0;
}

int grammar_matcher_accept(grammar_matcher *m, int32_t id) {
  const grammar_vocab *v = m->v;
  if (id < 0 || id >= v->n_vocab) return ERR_INVAL;
  if (m->err) return m->err;
  uint8_t f = v->flags[id];
  if (f & GRAMMAR__TF_EOG) {
    if (m->cur.need || !m->cur.can_end) return ERR_INVAL;
    m->cur.n = 0; /* ended: nothing may follow */
    compact(m);
    return 0;
  }
  if (f & GRAMMAR__TF_NEVER) return ERR_INVAL;
  size_t len;
  const uint8_t *s = piece(v, id, &len);
  return grammar_matcher_accept_bytes(m, (const char *)s, len);
}

int grammar_matcher_can_end(const grammar_matcher *m) { return !m->err && !m->cur.need && m->cur.can_end; }

int grammar_matcher_must_end(const grammar_matcher *m) { return grammar_matcher_can_end(m) && m->cur.n == 0; }
