/* llm/model — a decoder-only transformer's hyperparameters and weights, bound from a GGUF
 * file.
 *
 * model_load opens the file (mmap, through llm/gguf), reads the hyperparameters from the
 * "{arch}.*" metadata and binds every tensor by name, checking each one's type and shape
 * against the hyperparameters; any mismatch is an error that names the tensor. Tensor
 * order in the file does not matter. Weight matrices stay in the mapping (borrowed
 * pointers, any supported quant type); the small vectors (norm weights, biases, RoPE
 * frequency factors) are converted to F32 into memory owned by the model.
 *
 * Architectures: "llama" (also Mistral-style files), "qwen2" (q/k/v biases, NeoX RoPE),
 * "qwen3" (per-head q/k RMSNorm, NeoX RoPE). The per-architecture differences are the
 * flags in model_hparams; the forward pass (llm/engine) reads the flags, not the arch.
 *
 * Shapes below are written in math order, [rows][cols]: a matrix W with y = W x has
 * n_out rows of n_in elements each (GGUF: ne[0] = n_in, ne[1] = n_out).
 *
 * Ownership: model_load returns an owned model (model_free). A model is immutable after
 * load; any number of engines on any threads may share it. */
#ifndef APIARY_LLM_MODEL_H
#define APIARY_LLM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "llm/gguf.h"
#include "llm/quant.h"

#define MODEL_MAX_LAYERS 512

typedef enum model_arch { MODEL_ARCH_LLAMA = 0, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3 } model_arch;

typedef enum model_rope { MODEL_ROPE_NORMAL = 0, MODEL_ROPE_NEOX = 1 } model_rope;

typedef struct model_hparams {
  model_arch arch;
  int n_vocab;        /* token count */
  int n_embd;         /* d: width of the residual stream */
  int n_layer;        /* transformer blocks */
  int n_head;         /* query heads */
  int n_head_kv;      /* key/value heads (n_head / n_head_kv query heads share one) */
  int head_dim;       /* hd: elements per head (key_length; default n_embd / n_head) */
  int n_ff;           /* FFN hidden width */
  int n_ctx_train;    /* context length the model was trained for */
  int n_rot;          /* RoPE dimensions per head (<= head_dim; the rest pass through) */
  float rope_base;    /* RoPE theta base */
  float rms_eps;      /* RMSNorm epsilon */
  model_rope rope;    /* pairing of rotated elements: (2i, 2i+1) or (i, i + n_rot/2) */
  int has_qkv_bias;   /* qwen2: attn_q/k/v have biases */
  int has_qk_norm;    /* qwen3: RMSNorm over each q and k head before RoPE */
  int pooling;        /* "{arch}.pooling_type" for embeddings (llama.cpp's enum, 0..4; see
                         engine_pooling), -1 when the file has none */
} model_hparams;

/* A weight matrix in the mapping: n_out rows of n_in elements of type `type`, each row
 * row_bytes long and rows contiguous. */
typedef struct model_mat {
  const void *data;   /* borrowed from the mapping */
  qtype type;         /* element type of the rows */
  int64_t n_in;       /* elements per row */
  int64_t n_out;      /* rows */
  size_t row_bytes;   /* quant_row_size(type, n_in) */
} model_mat;

typedef struct model_layer {
  float *attn_norm;   /* [d] RMSNorm weight before attention (owned) */
  model_mat wq;       /* [n_head*hd][d] */
  model_mat wk;       /* [n_head_kv*hd][d] */
  model_mat wv;       /* [n_head_kv*hd][d] */
  model_mat wo;       /* [d][n_head*hd] */
  float *bq;          /* [n_head*hd] or NULL (qwen2) */
  float *bk;          /* [n_head_kv*hd] or NULL */
  float *bv;          /* [n_head_kv*hd] or NULL */
  float *q_norm;      /* [hd] or NULL (qwen3) */
  float *k_norm;      /* [hd] or NULL */
  float *ffn_norm;    /* [d] RMSNorm weight before the FFN */
  model_mat w_gate;   /* [n_ff][d] */
  model_mat w_up;     /* [n_ff][d] */
  model_mat w_down;   /* [d][n_ff] */
} model_layer;

typedef struct model {
  gguf_file *gguf;      /* owned: the mapping every model_mat points into */
  model_hparams hp;
  model_mat tok_embd;   /* [n_vocab][d], rows read one token at a time */
  model_layer *layers;  /* [n_layer] (owned) */
  float *output_norm;   /* [d] */
  model_mat output;     /* [n_vocab][d]; the same matrix as tok_embd when tied */
  int output_tied;      /* 1 when the file has no output.weight */
  float *rope_freqs;    /* [n_rot/2] Llama-3 frequency divisors, or NULL */
  char arch_name[32];   /* general.architecture as found in the file */
  int64_t n_params;     /* elements of every bound tensor (tied output counted once) */
  size_t weight_bytes;  /* bytes of tensor data bound */
} model;

/* Opens path and binds the model. On failure returns <0 (ERR_FORMAT for a malformed or
 * inconsistent file, ERR_UNSUPPORTED for an unknown architecture or tensor type, -errno
 * for I/O) and writes one line naming the problem to err. Returns owned *out. */
int model_load(const char *path, model **out, char *err, size_t err_cap);
/* Same over an already opened file; takes f (closed on failure too). */
int model_from_gguf(gguf_file *f, model **out, char *err, size_t err_cap);
void model_free(model *m); /* NULL is a no-op */

/* Short description, e.g. "llama 6L d288 h6/6 ff768 v32000 Q8_0". */
void model_describe(const model *m, char *out, size_t cap);

#endif
