/* llm/tok_bpe — byte-level BPE for tokenizer.ggml.model = "gpt2" (GPT-2, Llama 3, Qwen2/3,
 * DeepSeek, SmolLM, ...), as llama.cpp's llm_tokenizer_bpe does it.
 *
 * How it works, per plain-text fragment (special tokens are cut out before, in tok.c):
 *   1. Invalid UTF-8 bytes become U+FFFD, one per byte (llama.cpp's unicode_cpts_from_utf8).
 *   2. Pre-tokenization: the regexes that tokenizer.ggml.pre names (llama.cpp's table, run
 *      with PCRE2 in UTF + Unicode-property mode) split the text into words. Each regex
 *      splits every piece the previous one left, keeping both matches and the text between
 *      them, in order; this runs depth-first, so no list of pieces is ever built. \s and \S
 *      mean Unicode White_Space (as llama.cpp and Hugging Face tokenizers define it, not
 *      PCRE2's narrower \s).
 *   3. Each word's bytes map to GPT-2's printable characters (byte i → one character, e.g.
 *      ' ' → 'Ġ'), each one a symbol whose id is that character's token. With ignore_merges
 *      (Llama 3) a word that is itself a token is emitted as is. Otherwise adjacent symbol
 *      pairs that have a merge rule go into a min-heap by rank (ties: leftmost first); the
 *      best is merged, stale entries (a side merged away or grown) are skipped, the new
 *      neighbours are pushed. Symbols are emitted as their ids; a character the vocabulary
 *      lacks falls back to tokens for its single UTF-8 bytes, if any (llama.cpp's rule).
 *
 * The merge table maps (left id, right id) to (rank, merged id); merges are checked at load
 * (both sides and their concatenation must be tokens), so id pairs are exact stand-ins for
 * llama.cpp's string pairs. Duplicate pairs keep the first (lowest) rank.
 *
 * Decoding: a NORMAL token's text maps back through the inverse byte table; characters
 * outside it pass through as their UTF-8 bytes.
 *
 * Memory: the tokenizer owns the compiled regexes (read-only while matching, so shared by
 * threads) and the merge table. Per call, tok__work holds the PCRE2 match data and grow-only
 * scratch: the sanitized text (only when the input had invalid bytes), the symbols and heap
 * of the current word, the encoded word. Nothing is allocated per word once the scratch has
 * grown to the longest word. Cost: O(n log n) in the word length. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "llm/tok_impl.h"

#define BPE_MAX_RE 6

/* ---- pre-tokenizers (llama.cpp's llm_tokenizer_bpe table) ------------------------------------ */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3_HEAD                                                                                 \
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL
#define RE_QWEN2 RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL
#define RE_CJK_HANGUL "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"
#define RE_BLOOM " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"

typedef struct bpe_pre {
  const char *kind;              /* name used in error messages and tok__bpe_pre */
  const char *re[BPE_MAX_RE];    /* applied in order; NULL-terminated */
  int ignore_merges;             /* a word that is a token is emitted whole */
  int add_bos;                   /* default for tokenizer.ggml.add_bos_token */
  int no_bos;                    /* no default BOS id (chatglm) */
} bpe_pre;

static const bpe_pre PRE_DEFAULT = {
    "default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, 0, 0, 0};
static const bpe_pre PRE_LLAMA3 = {"llama3", {RE_LLAMA3}, 1, 1, 0};
static const bpe_pre PRE_DBRX = {"dbrx", {RE_LLAMA3}, 0, 0, 0};
static const bpe_pre PRE_CHATGLM4 = {"chatglm4", {RE_LLAMA3}, 0, 0, 1};
static const bpe_pre PRE_QWEN2 = {"qwen2", {RE_QWEN2}, 0, 0, 0};
static const bpe_pre PRE_GPT2 = {"gpt2", {RE_GPT2}, 0, 0, 0};
static const bpe_pre PRE_STARCODER = {"starcoder", {"\\p{N}", RE_GPT2}, 0, 0, 0};
static const bpe_pre PRE_FALCON = {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, 0, 0, 0};
static const bpe_pre PRE_DEEPSEEK_LLM = {
    "deepseek-llm",
    {"[\\r\\n]",
     "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4}-\\x{293}"
     "\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x{386}\\x{388}-\\x{38a}"
     "\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}\\x{531}-\\x{556}"
     "\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}\\x{1cbd}-\\x{1cbf}"
     "\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}\\x{1f18}-\\x{1f1d}"
     "\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}\\x{1f5d}\\x{1f5f}-"
     "\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}\\x{1fc6}-\\x{1fcc}"
     "\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}\\x{1ff6}-\\x{1ffc}"
     "\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}\\x{2126}\\x{2128}"
     "\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}\\x{2145}-\\x{2149}\\x{214e}"
     "\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}"
     "\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}"
     "\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}"
     "\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-"
     "\\x{10cf2}\\x{118a0}-\\x{118df}\\x{1e900}-\\x{1e943}]+",
     "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+", "\\s+$",
     RE_CJK_HANGUL,
     "\\p{N}+"},
    0, 0, 0};
static const bpe_pre PRE_DEEPSEEK_CODER = {
    "deepseek-coder", {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK_HANGUL, "\\p{N}"}, 0, 0, 0};
static const bpe_pre PRE_DEEPSEEK3 = {
    "deepseek-v3",
    {"\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
     "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
     "?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    0, 0, 0};
static const bpe_pre PRE_BLOOM = {"bloom", {RE_BLOOM}, 0, 0, 0};
static const bpe_pre PRE_VIKING = {"viking", {RE_BLOOM, "\\p{N}"}, 0, 0, 0};
static const bpe_pre PRE_TEKKEN = {
    "tekken",
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?["
     "\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/"
     "]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    1, 1, 0};

/* tokenizer.ggml.pre values llama.cpp accepts, and the pre-tokenizer each one means. */
static const struct {
  const char *name;
  const bpe_pre *pre;
} pre_names[] = {
    {"default", &PRE_DEFAULT},       {"llama3", &PRE_LLAMA3},         {"llama-v3", &PRE_LLAMA3},
    {"llama-bpe", &PRE_LLAMA3},      {"falcon3", &PRE_LLAMA3},        {"dbrx", &PRE_DBRX},
    {"smaug-bpe", &PRE_DBRX},        {"chatglm-bpe", &PRE_CHATGLM4},  {"qwen2", &PRE_QWEN2},
    {"deepseek-r1-qwen", &PRE_QWEN2}, {"megrez", &PRE_QWEN2},         {"stablelm2", &PRE_QWEN2},
    {"gpt-2", &PRE_GPT2},            {"phi-2", &PRE_GPT2},            {"jina-es", &PRE_GPT2},
    {"jina-de", &PRE_GPT2},          {"gigachat", &PRE_GPT2},         {"jina-v1-en", &PRE_GPT2},
    {"jina-v2-es", &PRE_GPT2},       {"jina-v2-de", &PRE_GPT2},       {"jina-v2-code", &PRE_GPT2},
    {"roberta-bpe", &PRE_GPT2},      {"mpt", &PRE_GPT2},              {"olmo", &PRE_GPT2},
    {"jais", &PRE_GPT2},             {"starcoder", &PRE_STARCODER},   {"refact", &PRE_STARCODER},
    {"command-r", &PRE_STARCODER},   {"smollm", &PRE_STARCODER},      {"codeshell", &PRE_STARCODER},
    {"exaone", &PRE_STARCODER},      {"minerva-7b", &PRE_STARCODER},  {"falcon", &PRE_FALCON},
    {"deepseek-llm", &PRE_DEEPSEEK_LLM}, {"deepseek-coder", &PRE_DEEPSEEK_CODER},
    {"deepseek-v3", &PRE_DEEPSEEK3}, {"poro-chat", &PRE_BLOOM},       {"bloom", &PRE_BLOOM},
    {"gpt3-finnish", &PRE_BLOOM},    {"viking", &PRE_VIKING},         {"tekken", &PRE_TEKKEN},
};

/* Unicode White_Space, for \s: llama.cpp's and Hugging Face's definition (PCRE2's \s lacks
 * U+0085). */
#define WS_CLASS "\\t-\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"

/* Rewrites \s and \S into explicit White_Space classes. Returns the owned pattern or NULL. */
static char *expand_ws(const char *re) {
  size_t n = strlen(re), cap = n + 1;
  for (size_t i = 0; i + 1 < n; i++)
    if (re[i] == '\\' && (re[i + 1] == 's' || re[i + 1] == 'S')) cap += sizeof WS_CLASS + 3;
  char *out = malloc(cap), *o = out;
  if (!out) return NULL;
  int in_class = 0;
  for (size_t i = 0; i < n; i++) {
    char c = re[i];
    if (c == '\\' && i + 1 < n) {
      char e = re[i + 1];
      i++;
      if (e == 's' || (e == 'S' && !in_class)) {
        const char *open = in_class ? "" : e == 's' ? "[" : "[^";
        o += sprintf(o, "%s%s%s", open, WS_CLASS, in_class ? "" : "]");
      } else {
        *o++ = '\\';
        *o++ = e;
      }
      continue;
    }
    if (c == '[' && !in_class) in_class = 1;
    else if (c == ']' && in_class) in_class = 0;
    *o++ = c;
  }
  *o = 0;
  return out;
}

/* ---- the GPT-2 byte ↔ character mapping --------------------------------------------------- */

/* Bytes that stand for themselves: '!'..'~', '¡'..'¬', '®'..'ÿ'; the others map to U+0100
 * upwards in byte order. */
static int byte_is_printable(int b) {
  return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

static void build_byte_map(uint16_t cp_of_byte[256]) {
  int next = 256;
  for (int b = 0; b < 256; b++) cp_of_byte[b] = (uint16_t)(byte_is_printable(b) ? b : next++);
}

/* UTF-8 of a code point below 0x800; returns the length. */
static size_t put_cp(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2;
}

/* ---- the tokenizer's BPE state -------------------------------------------------------------- */

typedef struct merge_slot {
  uint64_t key; /* left id << 32 | right id; MERGE_EMPTY when free */
  int32_t rank; /* index in tokenizer.ggml.merges */
  int32_t id;   /* the merged token */
} merge_slot;

#define MERGE_EMPTY UINT64_MAX

struct tok__bpe {
  const bpe_pre *pre;
  pcre2_code *re[BPE_MAX_RE];   /* owned, compiled pre[] regexes */
  size_t n_re;
  merge_slot *merges;           /* owned, open addressing, at most half full */
  size_t merge_mask;
  int32_t n_merges;
  int32_t byte_id[256];         /* token of each byte's character, -1 if none */
  uint8_t enc[256][2];          /* UTF-8 of each byte's character */
  uint8_t enc_len[256];
  int16_t byte_of_cp[324];      /* inverse mapping for code points < 324; -1 if none */
};

static uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static const merge_slot *merge_find(const tok__bpe *b, int32_t left, int32_t right) {
  uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
  for (size_t i = mix64(key) & b->merge_mask;; i = (i + 1) & b->merge_mask) {
    const merge_slot *s = &b->merges[i];
    if (s->key == key) return s;
    if (s->key == MERGE_EMPTY) return NULL;
  }
}

/* Prints at most 40 bytes of s for an error message (the text may be anything). */
static int shown(gguf_str s) { return (int)(s.len > 40 ? 40 : s.len); }

static int load_merges(tok *t, tok__bpe *b, const gguf_file *f, char *err, size_t cap) {
  const gguf_kv *a;
  int rc = gguf_get_arr(f, "tokenizer.ggml.merges", &a);
  if (rc == ERR_NOTFOUND)
    return tok__fail(err, cap, ERR_FORMAT,
                     "tokenizer.ggml.merges: missing (a 'gpt2' BPE vocabulary needs its merge rules)");
  if (rc || a->arr_type != GGUF_VT_STRING)
    return tok__fail(err, cap, ERR_FORMAT, "tokenizer.ggml.merges: not an array of strings");
  if (a->arr_n > TOK_MAX_MERGES)
    return tok__fail(err, cap, ERR_TOOBIG, "tokenizer.ggml.merges: %llu merges, over the cap %d",
                     (unsigned long long)a->arr_n, TOK_MAX_MERGES);
  size_t size = 16;
  while (size < 2 * (size_t)a->arr_n) size *= 2;
  b->merges = malloc(size * sizeof *b->merges);
  if (!b->merges) return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
  for (size_t i = 0; i < size; i++) b->merges[i].key = MERGE_EMPTY;
  b->merge_mask = size - 1;
  b->n_merges = (int32_t)a->arr_n;
  char *both = malloc(2 * TOK_MAX_PIECE + 1);
  if (!both) return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
  rc = 0;
  for (int32_t r = 0; r < b->n_merges && !rc; r++) {
    gguf_str m = gguf_arr_str(a, (uint64_t)r);
    /* "left right": split at the first space after the first byte (llama.cpp's rule). */
    const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', (size_t)m.len - 1) : NULL;
    if (!sp || m.len > 2 * TOK_MAX_PIECE + 1) {
      rc = tok__fail(err, cap, ERR_FORMAT, "tokenizer.ggml.merges[%d] '%.*s': not two tokens separated by a space", r,
                     shown(m), m.ptr);
      break;
    }
    size_t ln = (size_t)(sp - m.ptr), rn = (size_t)m.len - ln - 1;
    int32_t left = tok__find(t, m.ptr, ln), right = tok__find(t, sp + 1, rn);
    memcpy(both, m.ptr, ln);
    memcpy(both + ln, sp + 1, rn);
    int32_t id = left >= 0 && right >= 0 ? tok__find(t, both, ln + rn) : -1;
    if (id < 0) {
      const char *what = left < 0 ? "its left side" : right < 0 ? "its right side" : "the merged text";
      rc = tok__fail(err, cap, ERR_FORMAT, "tokenizer.ggml.merges[%d] '%.*s': %s is not a token of the vocabulary", r,
                     shown(m), m.ptr, what);
      break;
    }
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    size_t i = mix64(key) & b->merge_mask;
    while (b->merges[i].key != MERGE_EMPTY && b->merges[i].key != key) i = (i + 1) & b->merge_mask;
    if (b->merges[i].key == key) continue; /* duplicate pair: the first rank stays */
    b->merges[i] = (merge_slot){key, r, id};
  }
  free(both);
  return rc;
}

static int compile_pre(tok__bpe *b, char *err, size_t cap) {
  for (size_t k = 0; k < BPE_MAX_RE && b->pre->re[k]; k++) {
    char *pat = expand_ws(b->pre->re[k]);
    if (!pat) return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
    int code;
    PCRE2_SIZE at;
    b->re[k] = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY,
                             &code, &at, NULL);
    free(pat);
    if (!b->re[k]) {
      PCRE2_UCHAR msg[128];
      pcre2_get_error_message(code, msg, sizeof msg);
      return tok__fail(err, cap, ERR_UNSUPPORTED, "pre-tokenizer '%s': regex %zu does not compile at %zu: %s",
                       b->pre->kind, k, (size_t)at, (const char *)msg);
    }
    pcre2_jit_compile(b->re[k], PCRE2_JIT_COMPLETE); /* without JIT the interpreter runs */
    b->n_re = k + 1;
  }
  return 0;
}

int tok__bpe_load(tok *t, const gguf_file *f, char *err, size_t cap) {
  gguf_str pre;
  const bpe_pre *p = NULL;
  int rc = gguf_get_str(f, "tokenizer.ggml.pre", &pre);
  if (rc == ERR_NOTFOUND) {
    p = &PRE_DEFAULT; /* llama.cpp warns and uses 'default' */
  } else if (rc) {
    return tok__fail(err, cap, ERR_FORMAT, "tokenizer.ggml.pre is not a string");
  } else {
    for (size_t i = 0; i < sizeof pre_names / sizeof *pre_names && !p; i++)
      if (gguf_str_eq(pre, pre_names[i].name)) p = pre_names[i].pre;
    if (!p)
      return tok__fail(err, cap, ERR_UNSUPPORTED, "unknown pre-tokenizer type '%.*s' (tokenizer.ggml.pre)", shown(pre),
                       pre.ptr);
  }
  tok__bpe *b = calloc(1, sizeof *b);
  if (!b) return tok__fail(err, cap, ERR_NOMEM, "tokenizer: out of memory");
  t->bpe = b;
  b->pre = p;
  uint16_t cp_of_byte[256];
  build_byte_map(cp_of_byte);
  for (int i = 0; i < 324; i++) b->byte_of_cp[i] = -1;
  for (int i = 0; i < 256; i++) {
    char u[2];
    b->enc_len[i] = (uint8_t)put_cp(cp_of_byte[i], u);
    memcpy(b->enc[i], u, b->enc_len[i]);
    b->byte_id[i] = tok__find(t, u, b->enc_len[i]);
    b->byte_of_cp[cp_of_byte[i]] = (int16_t)i;
  }
  if ((rc = load_merges(t, b, f, err, cap))) return rc;
  if ((rc = compile_pre(b, err, cap))) return rc;
  return 0;
}

void tok__bpe_free(tok__bpe *b) {
  if (!b) return;
  for (size_t k = 0; k < BPE_MAX_RE; k++) pcre2_code_free(b->re[k]); /* NULL is a no-op */
  free(b->merges);
  free(b);
}

const char *tok__bpe_pre(const tok *t) { return t->bpe->pre->kind; }
int tok__bpe_default_add_bos(const tok *t) { return t->bpe->pre->add_bos; }
int tok__bpe_has_default_bos(const tok *t) { return !t->bpe->pre->no_bos; }

/* ---- decoding -------------------------------------------------------------------------------- */

int tok__bpe_unbyte(const tok *t, const uint8_t *p, size_t n, uint8_t *b) {
  if (n == 0) return 0;
  uint32_t cp;
  int k;
  if (p[0] < 0x80) {
    cp = p[0], k = 1;
  } else if (n >= 2 && p[0] >= 0xC2 && p[0] <= 0xDF && (p[1] & 0xC0) == 0x80) {
    cp = (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F), k = 2;
  } else {
    cp = 0xFFFFFFFF, k = 1;
  }
  if (cp < 324 && t->bpe->byte_of_cp[cp] >= 0) {
    *b = (uint8_t)t->bpe->byte_of_cp[cp];
    return k;
  }
  *b = p[0]; /* not a mapped character: its bytes pass through one by one */
  return 1;
}

/* ---- encoding -------------------------------------------------------------------------------- */

typedef struct bsym {
  int32_t prev, next; /* neighbours in the word, -1 at the ends */
  uint32_t start, n;  /* bytes of the word; n = 0 once merged into the left neighbour */
  int32_t id;         /* the symbol's token, -1 for a character the vocabulary lacks */
} bsym;

typedef struct bpair {
  int32_t rank;
  uint32_t left, right; /* symbol indices */
  uint32_t size;        /* bytes of the merge when it was pushed */
  int32_t id;           /* the merged token */
} bpair;

typedef struct bpe_run {
  const tok *t;
  const tok__bpe *b;
  tok__work *w;
  tok__out *o;
  bsym *syms;
  bpair *heap;
  size_t n_heap;
} bpe_run;

static int before(const bpair *a, const bpair *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_run *r, bpair p) {
  size_t i = r->n_heap++;
  while (i > 0) {
    size_t up = (i - 1) / 2;
    if (!before(&p, &r->heap[up])) break;
    r->heap[i] = r->heap[up];
    i = up;
  }
  r->heap[i] = p;
}

static bpair heap_pop(bpe_run *r) {
  bpair top = r->heap[0], last = r->heap[--r->n_heap];
  size_t i = 0, n = r->n_heap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(&r->heap[c + 1], &r->heap[c])) c++;
    if (!before(&r->heap[c], &last)) break;
    r->heap[i] = r->heap[c];
    i = c;
  }
  if (n) r->heap[i] = last;
  return top;
}

static void try_pair(bpe_run *r, int32_t left, int32_t right) {
  if (left < 0 || right < 0) return;
  const bsym *l = &r->syms[left], *rt = &r->syms[right];
  if (l->id < 0 || rt->id < 0) return;
  const merge_slot *m = merge_find(r->b, l->id, rt->id);
  if (m) heap_push(r, (bpair){m->rank, (uint32_t)left, (uint32_t)right, l->n + rt->n, m->id});
}

/* Emits the tokens of one pre-tokenized word (raw bytes). */
static int bpe_word(bpe_run *r, const uint8_t *word, size_t n) {
  const tok__bpe *b = r->b;
  if (n == 1 && b->byte_id[word[0]] >= 0) { /* the common one-character word */
    tok__emit(r->o, b->byte_id[word[0]]);
    return 0;
  }
  if (b->pre->ignore_merges) {
    char *enc = tok__scratch_get(&r->w->s[2], 2 * n);
    if (!enc) return ERR_NOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
      memcpy(enc + m, b->enc[word[i]], b->enc_len[word[i]]);
      m += b->enc_len[word[i]];
    }
    int32_t id = tok__find(r->t, enc, m);
    if (id >= 0) {
      tok__emit(r->o, id);
      return 0;
    }
  }
  /* Layout: syms[n] | heap[3n]. Each merge pushes at most two pairs. */
  size_t syms_bytes = n * sizeof(bsym);
  uint8_t *mem = tok__scratch_get(&r->w->s[0], syms_bytes + 3 * n * sizeof(bpair));
  if (!mem) return ERR_NOMEM;
  r->syms = (bsym *)mem;
  r->heap = (bpair *)(mem + syms_bytes);
  r->n_heap = 0;
  for (size_t i = 0; i < n; i++)
    r->syms[i] = (bsym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, (uint32_t)i, 1, b->byte_id[word[i]]};
  for (size_t i = 1; i < n; i++) try_pair(r, (int32_t)i - 1, (int32_t)i);
  while (r->n_heap) {
    bpair p = heap_pop(r);
    bsym *l = &r->syms[p.left], *rt = &r->syms[p.right];
    if (l->n == 0 || rt->n == 0 || l->n + rt->n != p.size) continue; /* stale */
    l->n += rt->n;
    l->id = p.id;
    rt->n = 0;
    l->next = rt->next;
    if (rt->next >= 0) r->syms[rt->next].prev = (int32_t)p.left;
    try_pair(r, l->prev, (int32_t)p.left);
    try_pair(r, (int32_t)p.left, l->next);
  }
  for (int32_t i = 0; i >= 0; i = r->syms[i].next) {
    const bsym *s = &r->syms[i];
    if (s->id >= 0) {
      tok__emit(r->o, s->id);
      continue;
    }
    /* A character the vocabulary lacks (never merged, so one byte): tokens for the single
     * bytes of its UTF-8 text, when the vocabulary has such odd tokens. */
    uint8_t c = word[s->start];
    for (int k = 0; k < b->enc_len[c]; k++) {
      int32_t id = tok__find(r->t, (const char *)&b->enc[c][k], 1);
      if (id >= 0) tok__emit(r->o, id);
    }
  }
  return 0;
}

/* Splits s[0..n) with regex k and hands each piece (matches and the gaps between them) to
 * regex k + 1, or to bpe_word after the last one. */
static int split(bpe_run *r, size_t k, const char *s, size_t n) {
  if (k == r->b->n_re) return bpe_word(r, (const uint8_t *)s, n);
  pcre2_match_data *md = r->w->match;
  size_t gap = 0, at = 0;
  int rc = 0;
  while (at < n && !rc) {
    int m = pcre2_match(r->b->re[k], (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
    if (m == PCRE2_ERROR_NOMATCH) break;
    if (m < 0) return ERR_TOOBIG; /* match or stack limit: a pathological text */
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t ms = ov[0], me = ov[1];
    if (me == ms) { /* empty match (no table regex has one): step over one character */
      at = ms + 1;
      while (at < n && ((uint8_t)s[at] & 0xC0) == 0x80) at++;
      continue;
    }
    if (ms > gap) rc = split(r, k + 1, s + gap, ms - gap);
    if (!rc) rc = split(r, k + 1, s + ms, me - ms);
    gap = at = me;
  }
  if (!rc && gap < n) rc = split(r, k + 1, s + gap, n - gap);
  return rc;
}

/* Length of the valid UTF-8 character at p (strict: no overlongs, surrogates or values over
 * U+10FFFF), or 0. */
static size_t utf8_valid(const uint8_t *p, size_t n) {
  uint8_t c = p[0];
  if (c < 0x80) return 1;
  size_t k;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) k = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < k || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < k; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return k;
}

int tok__bpe_encode(const tok *t, const char *text, size_t len, tok__work *w, tok__out *o) {
  if (len == 0) return 0;
  if (!w->match && !(w->match = pcre2_match_data_create(1, NULL))) return ERR_NOMEM;
  /* Invalid bytes → U+FFFD (3 bytes each), so PCRE2 always sees valid UTF-8. */
  const uint8_t *p = (const uint8_t *)text;
  size_t bad = 0;
  for (size_t i = 0; i < len;) {
    size_t k = utf8_valid(p + i, len - i);
    if (k) i += k;
    else bad++, i++;
  }
  const char *s = text;
  size_t n = len;
  if (bad) {
    char *clean = tok__scratch_get(&w->s[1], len + 2 * bad);
    if (!clean) return ERR_NOMEM;
    n = 0;
    for (size_t i = 0; i < len;) {
      size_t k = utf8_valid(p + i, len - i);
      if (k) {
        memcpy(clean + n, p + i, k);
        n += k;
        i += k;
      } else {
        memcpy(clean + n, "\xEF\xBF\xBD", 3);
        n += 3;
        i++;
      }
    }
    s = clean;
  }
  bpe_run r = {t, t->bpe, w, o, NULL, NULL, 0};
  return split(&r, 0, s, n);
}

void tok__work_free(tok__work *w) {
  for (size_t i = 0; i < sizeof w->s / sizeof *w->s; i++) free(w->s[i].mem);
  pcre2_match_data_free(w->match); /* NULL is a no-op */
  memset(w, 0, sizeof *w);
}
