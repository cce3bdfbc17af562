/* llm/tok — the tokenizer front: vocabulary loading from GGUF, the text→id hash table,
 * special-token partitioning, pieces and the streaming UTF-8 detokenizer; see tok.h.
 * Model-specific encoding of plain-text fragments lives in tok_spm.c (SentencePiece) and
 * tok_bpe.c (byte-level BPE), which also holds BPE's merges and pre-tokenizer.
 *
 * The vocabulary is copied into a few flat arrays (one text blob with offsets, scores,
 * attributes) plus an open-addressing hash table of ids keyed by token text (FNV-1a,
 * linear probing, at most half full). Duplicate texts resolve to the highest id, as
 * llama.cpp's token_to_id map does. */
#include "llm/tok_impl.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

/* ---- small helpers ---------------------------------------------------------------------- */

int tok__fail(char *err, size_t cap, int rc, const char *fmt, ...) {
  if (err && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
  }
  return rc;
}

void *tok__scratch_get(tok__scratch *s, size_t n) {
  if (n <= s->cap) return s->mem;
  void *p = realloc(s->mem, n);
  if (!p) return NULL;
  s->mem = p;
  s->cap = n;
  return p;
}

static uint32_t fnv1a(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
  return h;
}

static const char *text_of(const tok *t, int32_t id, size_t *len) {
  *len = t->off[id + 1] - t->off[id];
  return t->text + t->off[id];
}

int32_t tok__find(const tok *t, const char *text, size_t len) {
  for (size_t i = fnv1a(text, len) & t->hash_mask;; i = (i + 1) & t->hash_mask) {
    int32_t id = t->hash[i];
    if (id < 0) return -1;
    size_t n;
    const char *s = text_of(t, id, &n);
    if (n == len && memcmp(s, text, len) == 0) return id;
  }
}

/* ---- loading ------------------------------------------------------------------------------ */

static int load_texts(tok *t, const gguf_kv *toks, char *err, size_t cap) {
  uint64_t total = 0;
  for (int32_t i = 0; i < t->n_vocab; i++) {
    gguf_str s = gguf_arr_str(toks, (uint64_t)i);
    if (s.len > TOK_MAX_PIECE)
      return tok__fail(err, cap, ERR_TOOBIG, "tokenizer.ggml.tokens[%d]: %llu bytes, over the cap %d", i,
                       (unsigned long long)s.len, TOK_MAX_PIECE);
    total += s.len;
  }
  if (total >= UINT32_MAX) return tok__fail(err, cap, ERR_TOOBIG, "tokenizer.ggml.tokens: texts too large");
  t->text = malloc(total ? total : 1);
  t->off = malloc(((size_t)t->n_vocab + 1) * sizeof *t->off);
  if (!t->text || !t->off) return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
  uint32_t at = 0;
  for (int32_t i = 0; i < t->n_vocab; i++) {
    gguf_str s = gguf_arr_str(toks, (uint64_t)i);
    t->off[i] = at;
    if (s.len) memcpy(t->text + at, s.ptr, (size_t)s.len);
    at += (uint32_t)s.len;
  }
  t->off[t->n_vocab] = at;
  return 0;
}

/* Reads an optional numeric per-token array; absent: dflt for every token. */
static int load_numbers(const gguf_file *f, const char *key, int32_t n, double dflt, double *out, char *err,
                        size_t cap) {
  const gguf_kv *a;
  int rc = gguf_get_arr(f, key, &a);
  if (rc == ERR_NOTFOUND) {
    for (int32_t i = 0; i < n; i++) out[i] = dflt;
    return 0;
  }
  if (rc || a->arr_type == GGUF_VT_STRING || a->arr_n != (uint64_t)n)
    return tok__fail(err, cap, ERR_FORMAT, "%s: expected %d numbers, one per token", key, n);
  for (int32_t i = 0; i < n; i++) out[i] = gguf_arr_num(a, (uint64_t)i);
  return 0;
}

static uint8_t attr_of_type(double type) {
  if (!(type >= 0 && type <= 6)) return 0; /* also NaN; keeps the cast defined */
  switch ((int)type) {
  case 1: return TOK_ATTR_NORMAL;
  case 2: return TOK_ATTR_UNKNOWN;
  case 3: return TOK_ATTR_CONTROL;
  case 4: return TOK_ATTR_USER_DEFINED;
  case 5: return TOK_ATTR_UNUSED;
  case 6: return TOK_ATTR_BYTE;
  default: return 0; /* undefined: encodable, prints nothing */
  }
}

/* Parses "<0xNN>" (hex digits either case); returns the byte or -1. */
static int parse_byte_token(const char *s, size_t n) {
  if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
  int v = 0;
  for (int i = 3; i < 5; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

static int load_scores_types(tok *t, const gguf_file *f, char *err, size_t cap) {
  double *tmp = malloc((size_t)t->n_vocab * sizeof *tmp);
  t->score = malloc((size_t)t->n_vocab * sizeof *t->score);
  t->attr = malloc((size_t)t->n_vocab);
  t->byte_val = malloc((size_t)t->n_vocab * sizeof *t->byte_val);
  int rc = ERR_NOMEM;
  if (!tmp || !t->score || !t->attr || !t->byte_val) {
    tok__fail(err, cap, rc, "tokenizer: out of memory");
    goto done;
  }
  if ((rc = load_numbers(f, "tokenizer.ggml.scores", t->n_vocab, 0, tmp, err, cap))) goto done;
  for (int32_t i = 0; i < t->n_vocab; i++) /* NaN sorts last; out-of-range doubles saturate */
    t->score[i] = isnan(tmp[i]) ? -INFINITY : tmp[i] > FLT_MAX ? INFINITY : tmp[i] < -FLT_MAX ? -INFINITY : (float)tmp[i];
  if ((rc = load_numbers(f, "tokenizer.ggml.token_type", t->n_vocab, 1, tmp, err, cap))) goto done;
  for (int32_t i = 0; i < t->n_vocab; i++) {
    size_t n;
    const char *s = text_of(t, i, &n);
    t->attr[i] = attr_of_type(tmp[i]);
    t->byte_val[i] = (int16_t)((t->attr[i] & TOK_ATTR_BYTE) ? parse_byte_token(s, n) : -1);
  }
done:
  free(tmp);
  return rc;
}

static int build_hash(tok *t, char *err, size_t cap) {
  size_t size = 16;
  while (size < 2 * (size_t)t->n_vocab) size *= 2;
  t->hash = malloc(size * sizeof *t->hash);
  if (!t->hash) return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
  memset(t->hash, 0xff, size * sizeof *t->hash);
  t->hash_mask = size - 1;
  for (int32_t id = 0; id < t->n_vocab; id++) {
    size_t n;
    const char *s = text_of(t, id, &n);
    size_t i = fnv1a(s, n) & t->hash_mask;
    for (; t->hash[i] >= 0; i = (i + 1) & t->hash_mask) {
      size_t m;
      const char *o = text_of(t, t->hash[i], &m);
      if (m == n && memcmp(o, s, n) == 0) break; /* duplicate text: the later id wins */
    }
    t->hash[i] = id;
  }
  return 0;
}

/* Byte fallback: <0xNN>, else the one-byte token, else unk. */
static void build_byte_tokens(tok *t) {
  for (int b = 0; b < 256; b++) {
    char name[7];
    snprintf(name, sizeof name, "<0x%02X>", b);
    char raw = (char)b;
    int32_t id = tok__find(t, name, 6);
    if (id < 0) id = tok__find(t, &raw, 1);
    t->byte_tok[b] = id >= 0 ? id : t->unk;
  }
}

/* Sort key for the special-token list. */
typedef struct special_key {
  uint32_t len;
  int32_t id;
} special_key;

static int cmp_key(const void *a, const void *b) {
  const special_key *x = a, *y = b;
  if (x->len != y->len) return x->len < y->len ? 1 : -1; /* longest first */
  return (x->id > y->id) - (x->id < y->id);
}

static int build_specials(tok *t, char *err, size_t cap) {
  size_t n = 0;
  for (int32_t i = 0; i < t->n_vocab; i++)
    n += (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_USER_DEFINED)) != 0;
  special_key *keys = malloc((n ? n : 1) * sizeof *keys);
  t->special = malloc((n ? n : 1) * sizeof *t->special);
  if (!keys || !t->special) {
    free(keys);
    return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
  }
  size_t k = 0;
  for (int32_t i = 0; i < t->n_vocab; i++)
    if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN | TOK_ATTR_USER_DEFINED))
      keys[k++] = (special_key){t->off[i + 1] - t->off[i], i};
  qsort(keys, n, sizeof *keys, cmp_key);
  for (size_t i = 0; i < n; i++) t->special[i] = keys[i].id;
  t->n_special = n;
  free(keys);
  return 0;
}

/* A special id from metadata: absent → dflt (if it is a valid id); out of range → -1. */
static int32_t special_id(const tok *t, const gguf_file *f, const char *key, int32_t dflt) {
  uint64_t v;
  int rc = gguf_get_uint(f, key, &v);
  if (rc == ERR_NOTFOUND) return dflt < t->n_vocab ? dflt : -1;
  if (rc || v >= (uint64_t)t->n_vocab) return -1;
  return (int32_t)v;
}

static int flag(const gguf_file *f, const char *key, int dflt) {
  int v;
  return gguf_get_bool(f, key, &v) == 0 ? v : dflt;
}

static void add_eog(tok *t, int32_t id) {
  if (id < 0 || t->n_eog == TOK__MAX_EOG) return;
  for (size_t i = 0; i < t->n_eog; i++)
    if (t->eog[i] == id) return;
  t->eog[t->n_eog++] = id;
}

/* Defaults when the file does not say, as llama.cpp's llama_vocab::load has them: SPM
 * bos 1, eos 2, unk 0, BOS added, space prefix; BPE bos = eos = 11, no unk, BOS only for
 * pre-tokenizers that want it (Llama 3), no space prefix. */
static void load_special_ids(tok *t, const gguf_file *f) {
  int bpe = t->kind == TOK__BPE;
  t->bos = special_id(t, f, "tokenizer.ggml.bos_token_id", bpe ? (tok__bpe_has_default_bos(t) ? 11 : -1) : 1);
  t->eos = special_id(t, f, "tokenizer.ggml.eos_token_id", bpe ? 11 : 2);
  t->unk = special_id(t, f, "tokenizer.ggml.unknown_token_id", bpe ? -1 : 0);
  t->eot = special_id(t, f, "tokenizer.ggml.eot_token_id", -1);
  t->eom = special_id(t, f, "tokenizer.ggml.eom_token_id", -1);
  t->add_bos = flag(f, "tokenizer.ggml.add_bos_token", bpe ? tok__bpe_default_add_bos(t) : 1);
  t->add_eos = flag(f, "tokenizer.ggml.add_eos_token", 0);
  t->add_space_prefix = flag(f, "tokenizer.ggml.add_space_prefix", !bpe);
  add_eog(t, t->eos);
  add_eog(t, t->eot);
  add_eog(t, t->eom);
  /* End-of-turn markers of common chat templates, when the vocabulary has them as
   * control or user-defined tokens. */
  static const char *const ends[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
                                     "<|endoftext|>", "<EOT>", "<|end_of_text|>", "<|return|>",
                                     "<|eom_id|>", "<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234>"};
  for (size_t i = 0; i < sizeof ends / sizeof *ends; i++) {
    int32_t id = tok__find(t, ends[i], strlen(ends[i]));
    if (id >= 0 && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED))) add_eog(t, id);
  }
}

/* Sets *kind from tokenizer.ggml.model. */
static int check_model(const gguf_file *f, tok__kind *kind, char *err, size_t cap) {
  gguf_str m;
  int rc = gguf_get_str(f, "tokenizer.ggml.model", &m);
  if (rc == ERR_NOTFOUND)
    return tok__fail(err, cap, ERR_NOTFOUND, "no tokenizer in this file (tokenizer.ggml.model missing)");
  if (rc) return tok__fail(err, cap, ERR_FORMAT, "tokenizer.ggml.model is not a string");
  if (gguf_str_eq(m, "llama")) *kind = TOK__SPM;
  else if (gguf_str_eq(m, "gpt2")) *kind = TOK__BPE;
  else
    return tok__fail(err, cap, ERR_UNSUPPORTED,
                     "tokenizer model '%.*s' is not supported yet ('llama' SentencePiece and 'gpt2' byte-level "
                     "BPE are)",
                     (int)(m.len > 32 ? 32 : m.len), m.ptr);
  return 0;
}

int tok_new_from_gguf(const gguf_file *f, tok **out, char *err, size_t err_cap) {
  *out = NULL;
  tok__kind kind = TOK__SPM;
  int rc = check_model(f, &kind, err, err_cap);
  if (rc) return rc;
  const gguf_kv *toks;
  rc = gguf_get_arr(f, "tokenizer.ggml.tokens", &toks);
  if (rc || toks->arr_type != GGUF_VT_STRING)
    return tok__fail(err, err_cap, rc == ERR_NOTFOUND ? ERR_NOTFOUND : ERR_FORMAT,
                     "tokenizer.ggml.tokens: %s", rc == ERR_NOTFOUND ? "missing" : "not an array of strings");
  if (toks->arr_n == 0 || toks->arr_n > TOK_MAX_VOCAB)
    return tok__fail(err, err_cap, toks->arr_n ? ERR_TOOBIG : ERR_FORMAT,
                     "tokenizer.ggml.tokens: %llu tokens (1..%d allowed)",
                     (unsigned long long)toks->arr_n, TOK_MAX_VOCAB);
  tok *t = calloc(1, sizeof *t);
  if (!t) return tok__fail(err, err_cap, ERR_NOMEM, "tokenizer: out of memory");
  t->kind = kind;
  t->n_vocab = (int32_t)toks->arr_n;
  if ((rc = load_texts(t, toks, err, err_cap))) goto fail;
  if ((rc = load_scores_types(t, f, err, err_cap))) goto fail;
  if ((rc = build_hash(t, err, err_cap))) goto fail;
  if (kind == TOK__BPE && (rc = tok__bpe_load(t, f, err, err_cap))) goto fail;
  load_special_ids(t, f);
  build_byte_tokens(t);
  if ((rc = build_specials(t, err, err_cap))) goto fail;
  *out = t;
  return 0;
fail:
  tok_free(t);
  return rc;
}

void tok_free(tok *t) {
  if (!t) return;
  free(t->text);
  free(t->off);
  free(t->score);
  free(t->attr);
  free(t->byte_val);
  free(t->hash);
  free(t->special);
  tok__bpe_free(t->bpe);
  free(t);
}

/* ---- accessors ---------------------------------------------------------------------------- */

int32_t tok_n_vocab(const tok *t) { return t->n_vocab; }
const char *tok_model(const tok *t) { return t->kind == TOK__SPM ? "llama" : "gpt2"; }
const char *tok_pre(const tok *t) { return t->kind == TOK__BPE ? tok__bpe_pre(t) : ""; }
int32_t tok_bos(const tok *t) { return t->bos; }
int32_t tok_eos(const tok *t) { return t->eos; }
int32_t tok_unk(const tok *t) { return t->unk; }
int tok_add_bos(const tok *t) { return t->add_bos && t->bos >= 0; }
int tok_add_eos(const tok *t) { return t->add_eos && t->eos >= 0; }

int tok_is_eog(const tok *t, int32_t id) {
  for (size_t i = 0; i < t->n_eog; i++)
    if (t->eog[i] == id) return 1;
  return 0;
}

int tok_attr(const tok *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->attr[id] : 0; }

const char *tok_text(const tok *t, int32_t id, size_t *len_out) {
  if (id < 0 || id >= t->n_vocab) return NULL;
  return text_of(t, id, len_out);
}

/* ---- encoding ----------------------------------------------------------------------------- */

/* A piece of the input: plain text (id < 0) or one special token. */
typedef struct frag {
  size_t start, len;
  int32_t id;
} frag;

typedef struct frags {
  frag *v;
  size_t n, cap;
} frags;

static int frags_push(frags *f, frag x) {
  if (f->n == f->cap) {
    size_t nc = f->cap ? 2 * f->cap : 16;
    frag *p = realloc(f->v, nc * sizeof *p);
    if (!p) return ERR_NOMEM;
    f->v = p;
    f->cap = nc;
  }
  f->v[f->n++] = x;
  return 0;
}

/* Splits every plain fragment of in at each occurrence of special token id into out. */
static int split_on(const tok *t, const char *text, int32_t id, const frags *in, frags *out) {
  size_t plen;
  const char *pat = text_of(t, id, &plen);
  out->n = 0;
  for (size_t i = 0; i < in->n; i++) {
    frag f = in->v[i];
    while (f.id < 0 && f.len >= plen) {
      const char *hit = memmem(text + f.start, f.len, pat, plen);
      if (!hit) break;
      size_t at = (size_t)(hit - text);
      if (at > f.start && frags_push(out, (frag){f.start, at - f.start, -1})) return ERR_NOMEM;
      if (frags_push(out, (frag){at, plen, id})) return ERR_NOMEM;
      f.len -= at + plen - f.start;
      f.start = at + plen;
    }
    if ((f.id >= 0 || f.len > 0) && frags_push(out, f)) return ERR_NOMEM;
  }
  return 0;
}

/* Cuts special-token texts out of text, longest token first (llama.cpp's
 * tokenizer_st_partition). Control and unknown tokens only count with parse_special;
 * user-defined ones always do. Result in *a (caller frees a->v and b->v). */
static int partition(const tok *t, const char *text, size_t len, int parse_special, frags *a, frags *b) {
  if (len && frags_push(a, (frag){0, len, -1})) return ERR_NOMEM;
  for (size_t k = 0; k < t->n_special && a->n; k++) {
    int32_t id = t->special[k];
    if (!parse_special && (t->attr[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN))) continue;
    if (t->off[id + 1] == t->off[id]) continue; /* empty text never matches */
    if (split_on(t, text, id, a, b)) return ERR_NOMEM;
    frags tmp = *a;
    *a = *b;
    *b = tmp;
  }
  return 0;
}

int tok_encode(const tok *t, const char *text, size_t len, int add_bos, int parse_special, int32_t *ids,
               size_t cap) {
  if (len > TOK_MAX_TEXT) return ERR_TOOBIG;
  if ((!text && len) || (!ids && cap)) return ERR_INVAL;
  tok__out o = {ids, cap, 0};
  if (add_bos && t->bos >= 0) tok__emit(&o, t->bos);
  frags a = {0}, b = {0};
  tok__work w = {0};
  int rc = partition(t, text, len, parse_special, &a, &b);
  int prev_special = 1; /* the start of the text counts as after a special token */
  for (size_t i = 0; i < a.n && !rc; i++) {
    if (a.v[i].id >= 0) {
      tok__emit(&o, a.v[i].id);
      prev_special = 1;
      continue;
    }
    if (t->kind == TOK__BPE) rc = tok__bpe_encode(t, text + a.v[i].start, a.v[i].len, &w, &o);
    else rc = tok__spm_encode(t, text + a.v[i].start, a.v[i].len, t->add_space_prefix && prev_special, &w.s[0], &o);
    prev_special = 0;
  }
  free(a.v);
  free(b.v);
  tok__work_free(&w);
  if (rc) return rc;
  return o.n > INT_MAX ? ERR_TOOBIG : (int)o.n;
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* What a token prints: bytes p[0..n), read through unescape. */
enum { RAW = 0, SPM_SPACE = 1, BPE_BYTES = 2 }; /* as is; ▁ is a space; GPT-2 characters are bytes */
typedef struct piece {
  const tok *t;
  const char *p;
  size_t n;
  int unescape;
} piece;

static const uint8_t all_bytes[256] = {
#define B4(x) x, x + 1, x + 2, x + 3
#define B16(x) B4(x), B4(x + 4), B4(x + 8), B4(x + 12)
#define B64(x) B16(x), B16(x + 16), B16(x + 32), B16(x + 48)
    B64(0), B64(64), B64(128), B64(192)
#undef B64
#undef B16
#undef B4
};

static piece piece_of(const tok *t, int32_t id, int render_special) {
  piece pc = {t, "", 0, RAW};
  uint8_t a = t->attr[id];
  if (a & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)) {
    if (render_special) pc.p = text_of(t, id, &pc.n);
  } else if (a & TOK_ATTR_USER_DEFINED) {
    pc.p = text_of(t, id, &pc.n);
  } else if (a & TOK_ATTR_NORMAL) {
    pc.p = text_of(t, id, &pc.n);
    pc.unescape = t->kind == TOK__BPE ? BPE_BYTES : SPM_SPACE;
  } else if ((a & TOK_ATTR_BYTE) && t->byte_val[id] >= 0) {
    pc.p = (const char *)&all_bytes[t->byte_val[id]];
    pc.n = 1;
  }
  return pc;
}

/* Next output byte of a piece at *i; returns 0 at the end. */
static int piece_next(const piece *pc, size_t *i, uint8_t *b) {
  if (*i >= pc->n) return 0;
  const uint8_t *p = (const uint8_t *)pc->p + *i;
  if (pc->unescape == BPE_BYTES) {
    *i += (size_t)tok__bpe_unbyte(pc->t, p, pc->n - *i, b);
  } else if (pc->unescape == SPM_SPACE && pc->n - *i >= 3 && p[0] == 0xE2 && p[1] == 0x96 && p[2] == 0x81) {
    *b = ' ';
    *i += 3;
  } else {
    *b = p[0];
    *i += 1;
  }
  return 1;
}

int tok_piece(const tok *t, int32_t id, int render_special, char *out, size_t cap) {
  if (id < 0 || id >= t->n_vocab) return ERR_RANGE;
  piece pc = piece_of(t, id, render_special);
  size_t n = 0, i = 0;
  uint8_t b;
  while (piece_next(&pc, &i, &b)) {
    if (n < cap) out[n] = (char)b;
    n++;
  }
  return (int)n; /* <= TOK_MAX_PIECE */
}

void tok_stream_init(tok_stream *s) { memset(s, 0, sizeof *s); }

/* Bytes a UTF-8 character with this lead byte takes; 0 for bytes that cannot lead. */
static size_t utf8_need(uint8_t c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

/* 1 if b may follow the pending bytes (the second byte's range depends on the lead). */
static int utf8_cont_ok(const tok_stream *s, uint8_t b) {
  uint8_t lo = 0x80, hi = 0xBF;
  if (s->n_pending == 1) {
    switch (s->pending[0]) {
    case 0xE0: lo = 0xA0; break;
    case 0xED: hi = 0x9F; break;
    case 0xF0: lo = 0x90; break;
    case 0xF4: hi = 0x8F; break;
    default: break;
    }
  }
  return b >= lo && b <= hi;
}

typedef struct sink {
  char *out;
  size_t cap, n;
  int full;
} sink;

static void put(sink *k, const void *p, size_t n) {
  if (k->n + n > k->cap) {
    k->full = 1;
    return;
  }
  memcpy(k->out + k->n, p, n);
  k->n += n;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD}; /* U+FFFD */

static void utf8_byte(tok_stream *s, uint8_t b, sink *k) {
  if (s->n_pending && !utf8_cont_ok(s, b)) { /* the pending prefix is a maximal invalid part */
    put(k, replacement, 3);
    s->n_pending = 0;
  }
  if (s->n_pending) {
    s->pending[s->n_pending++] = b;
    if (s->n_pending == utf8_need(s->pending[0])) {
      put(k, s->pending, s->n_pending);
      s->n_pending = 0;
    }
    return;
  }
  size_t need = utf8_need(b);
  if (need == 1) put(k, &b, 1);
  else if (need == 0) put(k, replacement, 3);
  else s->pending[s->n_pending++] = b;
}

int tok_stream_feed(const tok *t, tok_stream *s, int32_t id, char *out, size_t cap) {
  if (id < 0 || id >= t->n_vocab) return ERR_RANGE;
  piece pc = piece_of(t, id, 0);
  tok_stream st = *s; /* committed only on success */
  sink k = {out, cap, 0, 0};
  size_t i = 0;
  uint8_t b;
  if (st.at_start && pc.n) {
    st.at_start = 0;
    if (t->add_space_prefix) {
    size_t j = 0;
    if (piece_next(&pc, &j, &b) && b == ' ') i = j;
    }
  }
  while (!k.full && piece_next(&pc, &i, &b)) utf8_byte(&st, b, &k);
  if (k.full) return ERR_TOOBIG;
  *s = st;
  return (int)k.n;
}

int tok_stream_flush(tok_stream *s, char *out, size_t cap) {
  if (!s->n_pending) return 0;
  if (cap < 3) return ERR_TOOBIG;
  memcpy(out, replacement, 3);
  s->n_pending = 0;
  return 3;
}
