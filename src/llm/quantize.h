/* llm/quantize — convert a GGUF model's weights to another tensor type, and the tensor
 * sink that writes a GGUF file one tensor at a time.
 *
 * quantize_file reads IN (mmap, llm/gguf), picks a type for every tensor with
 * quantize_pick_type (see docs/engine.md "Quantizing"), converts each weight row through
 * F32 (quant_dequantize_row then quant_quantize_row; a tensor already of the target type is
 * copied byte for byte) and writes OUT with every other metadata key of IN, then
 * general.quantization_version 2 and general.file_type for the chosen mix (moved to the end
 * if IN had them, as llama-quantize does), with the tensors in
 * llama-quantize's order (non-block tensors, then block by block, by name within each):
 * for Q8_0 of an F32 file the output is byte-identical to llama-quantize's.
 *
 * Streaming: converted tensors go to an unlinked scratch file next to OUT in chunks of
 * rows; at the end the scratch file is mapped and handed to the GGUF writer, so memory use
 * stays at one chunk of rows however large the model is (the mapping is file-backed).
 *
 * Ownership: quantize_sink is an opaque handle (quantize_sink_new/free). Not thread-safe;
 * the library prints nothing: progress goes to the caller's callback. */
#ifndef APIARY_LLM_QUANTIZE_H
#define APIARY_LLM_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "llm/gguf.h"
#include "llm/quant.h"

/* A target: one tensor type for every weight matrix, or a K-quant mix. */
typedef enum quantize_mix { QUANTIZE_PURE = 0, QUANTIZE_Q4_K_M, QUANTIZE_Q5_K_M } quantize_mix;

typedef struct quantize_ftype {
  quantize_mix mix;  /* QUANTIZE_PURE: every 2-D weight gets `base` (when its rows fit) */
  qtype base;        /* the main type (Q4_K for Q4_K_M, Q5_K for Q5_K_M) */
  uint32_t file_type;/* llama.cpp's general.file_type value for this target */
  const char *name;  /* "Q4_K_M", "Q8_0", ... */
} quantize_ftype;

/* Parses a target name (case-insensitive): Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K F16 BF16
 * F32 Q4_K_M Q5_K_M. Returns 0 or ERR_INVAL. */
int quantize_parse_ftype(const char *name, quantize_ftype *out);
/* The accepted names, space separated (for usage messages). */
const char *quantize_ftype_names(void);

/* Type for one tensor of a model with n_layer blocks (tied: the file has no output.weight).
 * 1-D tensors and anything that is not a 2-D ".weight" stay F32. Rows (ne[0]) that are not
 * whole blocks of the wanted type fall back: K-quants to a 32-element type (Q4_K -> Q5_0,
 * Q5_K -> Q5_1, Q6_K -> Q8_0), and rows not a multiple of 32 to F32. */
qtype quantize_pick_type(const quantize_ftype *ft, const char *name, uint32_t n_dims, const uint64_t ne[],
                         int n_layer, int tied);
/* The type the rule asks for before the row-fit fallback. */
qtype quantize_wanted_type(const quantize_ftype *ft, const char *name, uint32_t n_dims, int n_layer, int tied);

/* ---- tensor sink ---------------------------------------------------------------------- */
typedef struct quantize_sink quantize_sink;

/* Creates a sink whose scratch file lives in the directory of out_path. */
int quantize_sink_new(const char *out_path, quantize_sink **out);
void quantize_sink_free(quantize_sink *s); /* NULL is a no-op */
/* Starts a tensor (name copied); its bytes follow with quantize_sink_put, nbytes in all. */
int quantize_sink_begin(quantize_sink *s, const char *name, uint32_t n_dims, const uint64_t ne[], uint32_t type,
                        uint64_t nbytes);
/* Appends bytes to the current tensor (borrowed; written before returning). */
int quantize_sink_put(quantize_sink *s, const void *data, size_t len);
/* Adds every tensor to w (in begin order) and writes the file with gguf_writer_write.
 * Returns 0 or <0 (-errno, ERR_FORMAT when a tensor got fewer bytes than announced). */
int quantize_sink_finish(quantize_sink *s, gguf_writer *w, const char *out_path);

/* Converts the n_rows rows of n_in elements at src (type src_t) to dst_t, writing them to
 * the sink's current tensor. Uses n_threads threads (0 or 1: the calling thread only). */
int quantize_sink_rows(quantize_sink *s, qtype src_t, const void *src, qtype dst_t, int64_t n_in, int64_t n_rows,
                       int n_threads);

/* Progress: tensor i of n (0-based) named name, rows of row_len elements, converted from
 * src to dst; wanted is the type the rule asked for (dst differs when the rows do not fit
 * its blocks: a fallback). */
typedef void (*quantize_progress_cb)(void *user, size_t i, size_t n, const char *name, int64_t row_len, uint32_t src,
                                     uint32_t wanted, uint32_t dst);

typedef struct quantize_stats {
  size_t n_tensors;
  uint64_t in_bytes;     /* tensor data read */
  uint64_t out_bytes;    /* tensor data written */
  size_t n_per_type[QT_COUNT]; /* tensors written per type */
  size_t n_fallback;     /* tensors written in another type than the rule's (rows did not fit) */
} quantize_stats;

/* Quantizes in_path to out_path. Returns 0; ERR_UNSUPPORTED (a tensor type this build cannot
 * read; err names the tensor), ERR_FORMAT/-errno from reading or writing. err may be NULL;
 * cb may be NULL; stats_out may be NULL. */
int quantize_file(const char *in_path, const char *out_path, const quantize_ftype *ft, int n_threads,
                  quantize_progress_cb cb, void *user, quantize_stats *stats_out, char *err, size_t err_cap);

#endif
