/* llm/gguf — GGUF v2/v3 reader (mmap) and v3 writer.
 *
 * The reader maps the file read-only and validates everything before returning: magic,
 * version, counts under hard caps, every string and array inside the file, known value
 * types (no arrays of arrays), unique keys, tensor names/dims/types (ne[0] whole blocks,
 * sizes that fit in int64), offsets aligned to general.alignment (default 32), tensor data
 * inside the file and non-overlapping, unique tensor names. Errors: ERR_FORMAT (malformed
 * or truncated), ERR_TOOBIG (over a cap), ERR_UNSUPPORTED (v1, v4+, big-endian, unknown
 * tensor type), -errno (open/mmap), each with a one-line message in err naming the field
 * and the byte offset. After a successful open all accessors are O(1) or O(log n) and
 * never fail on bounds: string arrays get an offset table at open time. See docs/gguf.md.
 *
 * Ownership: gguf_file owns the mapping; every gguf_str, kv data pointer and tensor data
 * pointer borrows from it and is valid until gguf_close. Reading is thread-safe after open
 * (immutable); open/close are not concurrent with reads of the same handle. */
#ifndef APIARY_LLM_GGUF_H
#define APIARY_LLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
/* Hard caps on untrusted counts (generous for real models, small enough to stop abuse). */
#define GGUF_MAX_KV 65536
#define GGUF_MAX_TENSORS 65536
#define GGUF_MAX_STRING (64u << 20)   /* one string, bytes */
#define GGUF_MAX_ARRAY (16u << 20)    /* elements in one array */
#define GGUF_MAX_NAME 256             /* tensor name bytes (ggml limit is 64) */
#define GGUF_MAX_KEY 4096             /* metadata key bytes */
#define GGUF_MAX_ALIGNMENT (1u << 24) /* general.alignment: a power of two up to this */

typedef enum gguf_vtype {
  GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
  GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
  GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
  GGUF_VT_FLOAT64 = 12,
} gguf_vtype;

typedef struct gguf_str {
  const char *ptr; /* borrowed, NOT NUL-terminated */
  uint64_t len;
} gguf_str;

typedef struct gguf_kv {
  gguf_str key;
  gguf_vtype type;      /* value type */
  gguf_vtype arr_type;  /* element type when type == GGUF_VT_ARRAY */
  uint64_t arr_n;       /* element count when type == GGUF_VT_ARRAY */
  const uint8_t *data;  /* borrowed: the raw little-endian value (scalar) or first element */
  const uint64_t *str_offsets; /* string arrays: offset of element i's u64 length from data */
} gguf_kv;

typedef struct gguf_tensor {
  gguf_str name;
  uint32_t n_dims;
  uint64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims = 1 */
  uint32_t type;              /* ggml type id (see llm/quant.h qtype) */
  uint64_t offset;            /* relative to the data section */
  uint64_t nbytes;
  const void *data;           /* borrowed pointer into the mapping */
} gguf_tensor;

typedef struct gguf_file gguf_file;

/* Opens and validates path. On failure returns <0 and writes a one-line reason to err
 * (err may be NULL). *out is owned by the caller: gguf_close. */
int gguf_open(const char *path, gguf_file **out, char *err, size_t err_cap);
/* Same over memory (borrowed; must outlive the handle). Used by tests and the fuzzer. */
int gguf_open_mem(const void *data, size_t len, gguf_file **out, char *err, size_t err_cap);
void gguf_close(gguf_file *f); /* NULL is a no-op */

uint32_t gguf_version(const gguf_file *f);
size_t gguf_alignment(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
const uint8_t *gguf_base(const gguf_file *f); /* start of the mapping */
size_t gguf_data_offset(const gguf_file *f);  /* file offset of the tensor data section */
const char *gguf_vtype_name(gguf_vtype t);     /* "u32", "string", ...; "?" when unknown */

size_t gguf_n_kv(const gguf_file *f);
const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i);
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key); /* NULL if absent */

/* Typed getters: 0 on success, ERR_NOTFOUND when absent, ERR_FORMAT when the stored type
 * cannot convert (integers convert between widths when the value fits; get_float accepts
 * float32/float64 and integers). */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_uint(const gguf_file *f, const char *key, uint64_t *out);
int gguf_get_float(const gguf_file *f, const char *key, double *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Array access: 0 or ERR_NOTFOUND/ERR_FORMAT (not an array of the wanted kind). */
int gguf_get_arr(const gguf_file *f, const char *key, const gguf_kv **out);
gguf_str gguf_arr_str(const gguf_kv *arr, uint64_t i);       /* arr_type STRING, i < arr_n */
double gguf_arr_num(const gguf_kv *arr, uint64_t i);         /* any numeric/bool arr_type */

size_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); /* NULL if absent */

/* 1 if s equals the NUL-terminated c string. */
int gguf_str_eq(gguf_str s, const char *c);

/* ---- Writer ------------------------------------------------------------------------
 * Builds a GGUF v3 file: add metadata and tensors (data borrowed until gguf_writer_write
 * returns), then write. Alignment is GGUF_DEFAULT_ALIGNMENT unless general.alignment is
 * set with gguf_writer_set_u32 before writing. Not thread-safe. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
/* Copies key/value (strings are copied). Setting an existing key replaces it. */
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v, size_t len);
/* Any scalar type t (not STRING/ARRAY) from its raw little-endian bytes (copied). */
int gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_vtype t, const void *le_value);
/* Array of n elements of scalar type t (raw little-endian bytes, copied). */
int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype t, const void *data, uint64_t n);
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const gguf_str *items, uint64_t n);
/* Copies every kv of src (used by quantize to keep metadata). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src);
/* Adds a tensor; data (nbytes = quant row size * rows) is borrowed until write. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims,
                           const uint64_t ne[], uint32_t type, const void *data, uint64_t nbytes);
/* Writes the file durably, streaming (temp file in the same directory + fsync + rename +
 * directory fsync, mode 0644): a crash leaves the old file or the new one. Returns 0,
 * ERR_INVAL (bad general.alignment) or -errno. */
int gguf_writer_write(gguf_writer *w, const char *path);

#endif
