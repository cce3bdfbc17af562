/* llm/synth — models of real shapes with random weights, for benchmarks and tests.
 *
 * synth_write builds a GGUF file for one of a few published model shapes (see the table in
 * docs/engine.md "Synthetic models"): the architecture's metadata, a tokenizer copied from
 * a real GGUF file (every tokenizer.* key), and seeded pseudo-random weights: 2-D weights
 * ~ N(0, 1/fan_in) (an Irwin-Hall sum of four uniforms, scaled), norm weights 1 + N(0, 0.02^2),
 * biases N(0, 0.02^2). Each tensor's stream is seeded from (seed, tensor name), so a tensor
 * is the same whatever the layer count or output type. Weights are generated in F32 and
 * converted with the quantize rules (llm/quantize: quantize_pick_type), streamed through a
 * quantize_sink (memory: one tensor in F32 at a time).
 *
 * The vocabulary size is the tokenizer's (it usually differs from the shape's); with
 * pad_vocab the token list is padded with unused "<synth_pad_N>" tokens (type UNUSED) up to
 * the shape's size, so the embedding and output matrices have the real model's size.
 * Not thread-safe against itself; prints nothing. */
#ifndef APIARY_LLM_SYNTH_H
#define APIARY_LLM_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "llm/quantize.h"

typedef struct synth_shape {
  const char *name;       /* "smollm2-135m" */
  const char *arch;       /* GGUF general.architecture */
  int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
  float rope_base, rms_eps;
  int tied;               /* no output.weight */
  int qkv_bias;           /* qwen2 */
  int llama3_rope;        /* rope_freqs.weight (Llama 3 frequency factors) */
  float rope_factor, rope_low, rope_high; /* Llama 3 scaling: factor, low/high freq factors */
  int rope_orig_ctx;      /* Llama 3 original context */
} synth_shape;

/* The known shapes (NULL-name terminated), and lookup by name (NULL when unknown). */
const synth_shape *synth_shapes(void);
const synth_shape *synth_find_shape(const char *name);

typedef struct synth_params {
  const synth_shape *shape;
  quantize_ftype ftype;
  const char *vocab_path;  /* GGUF whose tokenizer.* metadata is copied (required) */
  uint64_t seed;
  int n_layer;             /* 0: the shape's */
  int pad_vocab;           /* 1: pad the tokenizer to the shape's vocabulary size */
  int n_threads;           /* conversion threads */
} synth_params;

typedef struct synth_info {
  int n_vocab;             /* vocabulary size written */
  int vocab_differs;       /* the tokenizer's size differed from the shape's (and no padding) */
  int64_t n_params;
  uint64_t bytes;          /* tensor data written */
} synth_info;

/* Writes the model to out_path. Returns 0 or <0 with a one-line reason in err. cb may be
 * NULL (progress per tensor, as quantize). info_out may be NULL. */
int synth_write(const synth_params *p, const char *out_path, quantize_progress_cb cb, void *user,
                synth_info *info_out, char *err, size_t err_cap);

#endif
