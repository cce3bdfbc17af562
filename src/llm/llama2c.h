/* llm/llama2c — Karpathy's llama2.c checkpoints ("version 0", the tinyllamas .bin files)
 * to GGUF, byte for byte as llama.cpp's convert-llama2c-to-ggml writes them, and back.
 *
 * The checkpoint is 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len; vocab_size < 0 means the classifier is not shared with the
 * embedding) followed by float32 arrays: token_embedding (vocab, dim), rms_att (layer, dim),
 * wq (layer, dim, dim), wk and wv (layer, kv_dim, dim), wo (layer, dim, dim), rms_ffn
 * (layer, dim), w1 (layer, hidden, dim), w2 (layer, dim, hidden), w3 (layer, hidden, dim),
 * rms_final (dim), freq_cis_real and freq_cis_imag (seq_len, head_size/2), then wcls
 * (vocab, dim) when unshared. The file ends there: anything else is an error.
 *
 * The GGUF matches llama.cpp's converter (commit 34af94cd) exactly: no permutation of wq/wk
 * (llama2.c and GGUF's "llama" RoPE both rotate adjacent pairs), output.weight always
 * written (a copy of the embedding when shared), freq_cis dropped, llama.context_length
 * LLAMA2C_GGUF_CTX (the converter's default n_ctx, not seq_len), rope dimension
 * min(64, head_size), and the tokenizer (tokens, scores, token types) copied from a vocab
 * GGUF such as llama.cpp's models/ggml-vocab-llama-spm.gguf. Key order, tensor order and
 * padding are llama.cpp's, so stories15M.bin gives stories15M-F32.gguf with its pinned sha256.
 *
 * The parser reads untrusted bytes: header values under hard caps, sizes computed without
 * overflow, the file length checked exactly (tests/fuzz/fuzz_llama2c.c). Weight pointers
 * borrow from the caller's buffer; nothing is copied. Any thread; the library prints
 * nothing. */
#ifndef APIARY_LLM_LLAMA2C_H
#define APIARY_LLM_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "llm/gguf.h"

#define LLAMA2C_HEADER_BYTES 28
/* Hard caps on header values (the largest llama2.c models are far below them). */
#define LLAMA2C_MAX_DIM (1 << 16)
#define LLAMA2C_MAX_HIDDEN (1 << 18)
#define LLAMA2C_MAX_LAYERS 1024
#define LLAMA2C_MAX_HEADS 1024
#define LLAMA2C_MAX_VOCAB (1 << 21)
#define LLAMA2C_MAX_SEQ (1 << 20)
#define LLAMA2C_GGUF_CTX 128 /* llama.context_length as convert-llama2c-to-ggml writes it */

typedef struct llama2c_config {
  int32_t dim;          /* transformer width */
  int32_t hidden_dim;   /* FFN width */
  int32_t n_layers;
  int32_t n_heads;      /* query heads */
  int32_t n_kv_heads;   /* key/value heads (divides n_heads) */
  int32_t vocab_size;   /* positive (the header's sign is in shared_classifier) */
  int32_t seq_len;      /* context the model was trained with */
  int shared_classifier;/* 1: the header's vocab_size was positive, no wcls in the file */
} llama2c_config;

/* The arrays of a parsed checkpoint: byte pointers (little-endian float32, maybe unaligned)
 * borrowed from the buffer given to llama2c_parse. */
typedef struct llama2c_weights {
  llama2c_config c;
  const uint8_t *token_embedding; /* (vocab, dim) */
  const uint8_t *rms_att;         /* (layer, dim) */
  const uint8_t *wq;              /* (layer, dim, dim) */
  const uint8_t *wk, *wv;         /* (layer, kv_dim, dim) */
  const uint8_t *wo;              /* (layer, dim, dim) */
  const uint8_t *rms_ffn;         /* (layer, dim) */
  const uint8_t *w1, *w3;         /* (layer, hidden, dim) */
  const uint8_t *w2;              /* (layer, dim, hidden) */
  const uint8_t *rms_final;       /* (dim) */
  const uint8_t *freq_cis_real;   /* (seq_len, head_size/2) */
  const uint8_t *freq_cis_imag;   /* (seq_len, head_size/2) */
  const uint8_t *wcls;            /* (vocab, dim): the embedding itself when shared */
} llama2c_weights;

/* Validates the checkpoint in data[0..len) and points out's arrays into it. Returns 0,
 * ERR_FORMAT (bad or inconsistent header, wrong length: err says which field and what was
 * expected) or ERR_TOOBIG (a header value over its cap). err may be NULL. */
int llama2c_parse(const void *data, size_t len, llama2c_weights *out, char *err, size_t err_cap);

/* Called while converting: done/total units of work (tensors). */
typedef void (*llama2c_progress_fn)(const char *what, uint64_t done, uint64_t total, void *ud);

/* Writes the GGUF for parsed weights w with the tokenizer of vocab (borrowed) to out_path
 * (atomically, see gguf_writer_write). Returns 0, ERR_FORMAT (the vocab has no llama
 * tokenizer, or its size differs from the checkpoint's), ERR_NOMEM or -errno. */
int llama2c_write_gguf(const llama2c_weights *w, const gguf_file *vocab, const char *out_path,
                       llama2c_progress_fn progress, void *ud, char *err, size_t err_cap);
/* Whole files: maps ckpt_path, opens vocab_path (a GGUF holding tokenizer.ggml.*), writes
 * out_path. Errors as above, plus -errno from opening and the GGUF reader's codes. */
int llama2c_convert(const char *ckpt_path, const char *vocab_path, const char *out_path,
                    llama2c_progress_fn progress, void *ud, char *err, size_t err_cap);

/* The reverse, for tests: rebuilds the llama2.c checkpoint of a GGUF this module (or
 * llama.cpp's converter) wrote, all tensors F32, with seq_len (the GGUF does not keep it)
 * and freq_cis from llama2c_freq_cis. The classifier is shared when output.weight equals
 * token_embd.weight. Returns 0, ERR_FORMAT (a tensor missing, of another type or shape)
 * or -errno. */
int llama2c_write_checkpoint(const gguf_file *g, int32_t seq_len, const char *out_path, char *err, size_t err_cap);

/* The RoPE tables llama2.c's export stored: re/im[t * head_size/2 + i] = cos/sin(t * f_i)
 * for t < seq_len, f_i = 1 / 10000^(2i / head_size), in float32 as PyTorch computed them
 * on the CPU (powf, a reciprocal, a float product, cosf/sinf). PyTorch evaluated the power
 * with SLEEF's vectorized powf (1-ulp accurate) in its vector lanes, which differs from the
 * correctly rounded value in one lane for head_size 48 (i = 10, one ulp below; found by
 * matching stories15M.bin's published sha256); that lane is reproduced, other head sizes
 * use the correctly rounded power and may differ from upstream files in the last bit.
 * cosf/sinf are the C library's (glibc's match PyTorch's). */
void llama2c_freq_cis(int head_size, int seq_len, float *re, float *im);

#endif
