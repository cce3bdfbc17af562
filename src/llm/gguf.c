/* llm/gguf — GGUF v2/v3 reader and v3 writer; see gguf.h.
 *
 * Reader: one pass over the header with a bounds-checked cursor (every read checks the
 * bytes left before touching them), then checks that need the whole picture: alignment,
 * tensor data inside the file, no overlaps, no duplicate keys or tensor names. Lookups go
 * through name-sorted index arrays (binary search). Values are decoded as little-endian
 * byte by byte, so unaligned fields and big-endian hosts are both fine.
 *
 * Writer: keeps serialized metadata values and borrowed tensor pointers; gguf_writer_write
 * streams header, tensor infos and data through a small buffer into a temporary file, then
 * fsyncs and renames it into place. */
#include "llm/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "llm/quant.h"

struct gguf_file {
  const uint8_t *base;   /* mapping or caller memory */
  size_t size;           /* bytes at base */
  int mapped;            /* 1: munmap at close */
  uint32_t version;      /* 2 or 3 */
  size_t alignment;      /* general.alignment or GGUF_DEFAULT_ALIGNMENT */
  size_t data_off;       /* file offset of the data section */
  size_t n_kv;
  gguf_kv *kv;           /* owned, n_kv entries in file order */
  uint32_t *kv_sorted;   /* owned, kv indices sorted by key */
  size_t n_tensors;
  gguf_tensor *tensors;  /* owned, file order */
  uint32_t *t_sorted;    /* owned, tensor indices sorted by name */
};

/* ---- little-endian decoding ------------------------------------------------------------ */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Size of a scalar value type, 0 for STRING/ARRAY/unknown. */
static size_t scalar_size(uint32_t t) {
  switch (t) {
  case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
  case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
  case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
  case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
  default: return 0;
  }
}

const char *gguf_vtype_name(gguf_vtype t) {
  static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  return (unsigned)t < sizeof names / sizeof *names ? names[t] : "?";
}

/* ---- bounds-checked cursor --------------------------------------------------------------- */

typedef struct cursor {
  const uint8_t *base;
  size_t size;
  size_t pos;
  char *err;
  size_t err_cap;
} cursor;

static int fail(cursor *c, int rc, size_t at, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(cursor *c, int rc, size_t at, const char *fmt, ...) {
  if (c->err && c->err_cap) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_cap, "gguf: %s (at byte %zu)", msg, at);
  }
  return rc;
}

/* Copies up to 48 bytes of an untrusted name into out as printable ASCII (others → '?'),
 * so error messages stay one line. Returns out. */
static const char *show(const char *p, uint64_t n, char out[static 56]) {
  size_t k = 0;
  for (; k < n && k < 48; k++) out[k] = p[k] >= 0x20 && p[k] < 0x7f ? p[k] : '?';
  if (n > 48) memcpy(out + k, "...", 3), k += 3;
  out[k] = 0;
  return out;
}

static int need(cursor *c, uint64_t n, const char *what) {
  if (n > c->size - c->pos)
    return fail(c, ERR_FORMAT, c->pos, "%s: truncated (needs %llu bytes, %zu left)", what,
                (unsigned long long)n, c->size - c->pos);
  return 0;
}

static int rd_u32(cursor *c, const char *what, uint32_t *out) {
  int rc = need(c, 4, what);
  if (rc) return rc;
  *out = le32(c->base + c->pos);
  c->pos += 4;
  return 0;
}

static int rd_u64(cursor *c, const char *what, uint64_t *out) {
  int rc = need(c, 8, what);
  if (rc) return rc;
  *out = le64(c->base + c->pos);
  c->pos += 8;
  return 0;
}

/* Reads a length-prefixed string of at most cap bytes. */
static int rd_str(cursor *c, const char *what, uint64_t cap, gguf_str *out) {
  size_t at = c->pos;
  uint64_t n;
  int rc = rd_u64(c, what, &n);
  if (rc) return rc;
  if (n > cap) return fail(c, ERR_TOOBIG, at, "%s: length %llu over the cap %llu", what,
                           (unsigned long long)n, (unsigned long long)cap);
  if ((rc = need(c, n, what))) return rc;
  out->ptr = (const char *)c->base + c->pos;
  out->len = n;
  c->pos += n;
  return 0;
}

/* ---- metadata ---------------------------------------------------------------------------- */

/* Reads the elements of a string array, recording each element's offset. */
static int rd_str_array(cursor *c, const char *what, gguf_kv *kv) {
  /* Every element takes at least its 8-byte length: bound n by the bytes left before
   * allocating anything. */
  if (kv->arr_n > (c->size - c->pos) / 8)
    return fail(c, ERR_FORMAT, c->pos, "%s: %llu strings cannot fit in the %zu bytes left", what,
                (unsigned long long)kv->arr_n, c->size - c->pos);
  uint64_t *offs = NULL;
  if (kv->arr_n) {
    offs = malloc((size_t)kv->arr_n * sizeof *offs);
    if (!offs) return fail(c, ERR_NOMEM, c->pos, "%s: out of memory", what);
  }
  kv->str_offsets = offs;
  size_t start = c->pos;
  for (uint64_t i = 0; i < kv->arr_n; i++) {
    offs[i] = c->pos - start;
    gguf_str s;
    int rc = rd_str(c, what, GGUF_MAX_STRING, &s);
    if (rc) return rc;
  }
  return 0;
}

static int rd_array(cursor *c, const char *what, gguf_kv *kv) {
  size_t at = c->pos;
  uint32_t t;
  int rc = rd_u32(c, what, &t);
  if (rc) return rc;
  if (t == GGUF_VT_ARRAY) return fail(c, ERR_FORMAT, at, "%s: arrays of arrays are not supported", what);
  if (t != GGUF_VT_STRING && !scalar_size(t))
    return fail(c, ERR_FORMAT, at, "%s: unknown array element type %u", what, t);
  kv->arr_type = (gguf_vtype)t;
  at = c->pos;
  if ((rc = rd_u64(c, what, &kv->arr_n))) return rc;
  if (kv->arr_n > GGUF_MAX_ARRAY)
    return fail(c, ERR_TOOBIG, at, "%s: %llu elements, over the cap %u", what,
                (unsigned long long)kv->arr_n, GGUF_MAX_ARRAY);
  kv->data = c->base + c->pos;
  if (t == GGUF_VT_STRING) return rd_str_array(c, what, kv);
  uint64_t bytes = kv->arr_n * scalar_size(t); /* <= 2^24 * 8: no overflow */
  if ((rc = need(c, bytes, what))) return rc;
  c->pos += bytes;
  return 0;
}

static int rd_value(cursor *c, const char *what, gguf_kv *kv) {
  kv->data = c->base + c->pos;
  if (kv->type == GGUF_VT_ARRAY) return rd_array(c, what, kv);
  if (kv->type == GGUF_VT_STRING) {
    gguf_str s;
    return rd_str(c, what, GGUF_MAX_STRING, &s);
  }
  size_t n = scalar_size(kv->type);
  if (!n) return fail(c, ERR_FORMAT, c->pos - 4, "%s: unknown value type %u", what, (unsigned)kv->type);
  int rc = need(c, n, what);
  if (rc) return rc;
  c->pos += n;
  return 0;
}

static int rd_kv(cursor *c, size_t i, gguf_kv *kv) {
  char what[96];
  snprintf(what, sizeof what, "kv %zu key", i);
  size_t at = c->pos;
  int rc = rd_str(c, what, GGUF_MAX_KEY, &kv->key);
  if (rc) return rc;
  if (kv->key.len == 0) return fail(c, ERR_FORMAT, at, "%s: empty", what);
  char nm[56];
  snprintf(what, sizeof what, "kv %zu '%s'", i, show(kv->key.ptr, kv->key.len, nm));
  uint32_t t;
  if ((rc = rd_u32(c, what, &t))) return rc;
  kv->type = (gguf_vtype)t;
  return rd_value(c, what, kv);
}

/* ---- sorted indexes ---------------------------------------------------------------------- */

static int str_cmp(const char *a, uint64_t na, const char *b, uint64_t nb) {
  int r = memcmp(a, b, (size_t)(na < nb ? na : nb));
  if (r) return r;
  return (na > nb) - (na < nb);
}

typedef struct named {
  const char *ptr;
  uint64_t len;
  uint32_t idx;
} named;

static int cmp_named(const void *a, const void *b) {
  const named *x = a, *y = b;
  int r = str_cmp(x->ptr, x->len, y->ptr, y->len);
  return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Builds an index of n names (first name at names, stride bytes apart) sorted by name. */
static uint32_t *sort_index(const gguf_str *names, size_t stride, size_t n) {
  uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
  named *tmp = malloc((n ? n : 1) * sizeof *tmp);
  if (!idx || !tmp) {
    free(idx);
    free(tmp);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const gguf_str *s = (const gguf_str *)((const char *)names + i * stride);
    tmp[i] = (named){s->ptr, s->len, (uint32_t)i};
  }
  qsort(tmp, n, sizeof *tmp, cmp_named);
  for (size_t i = 0; i < n; i++) idx[i] = tmp[i].idx;
  free(tmp);
  return idx;
}

/* Binary search of a sorted index; returns the position in the table or -1. */
static long find_sorted(const uint32_t *idx, size_t n, const gguf_str *names, size_t stride,
                        const char *key) {
  size_t klen = strlen(key), lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const gguf_str *s = (const gguf_str *)((const char *)names + (size_t)idx[mid] * stride);
    int r = str_cmp(s->ptr, s->len, key, klen);
    if (r == 0) return (long)idx[mid];
    if (r < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/* ---- header, metadata, tensors ----------------------------------------------------------- */

static int rd_header(cursor *c, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
  uint32_t magic, ver;
  int rc = rd_u32(c, "magic", &magic);
  if (rc) return rc;
  if (magic != GGUF_MAGIC)
    return fail(c, ERR_FORMAT, 0, "magic: not a GGUF file (first bytes %02x %02x %02x %02x)", c->base[0],
                c->base[1], c->base[2], c->base[3]);
  if ((rc = rd_u32(c, "version", &ver))) return rc;
  if (ver == 1) return fail(c, ERR_UNSUPPORTED, 4, "version: GGUF v1 is not supported; convert the file to v3");
  if ((ver & 0xffff) == 0 && ver)
    return fail(c, ERR_UNSUPPORTED, 4, "version: big-endian GGUF files are not supported");
  if (ver != 2 && ver != 3)
    return fail(c, ERR_UNSUPPORTED, 4, "version: GGUF v%u is not supported (only v2 and v3)", ver);
  f->version = ver;
  if ((rc = rd_u64(c, "tensor count", n_tensors))) return rc;
  if (*n_tensors > GGUF_MAX_TENSORS)
    return fail(c, ERR_TOOBIG, 8, "tensor count: %llu, over the cap %u", (unsigned long long)*n_tensors,
                GGUF_MAX_TENSORS);
  if ((rc = rd_u64(c, "kv count", n_kv))) return rc;
  if (*n_kv > GGUF_MAX_KV)
    return fail(c, ERR_TOOBIG, 16, "kv count: %llu, over the cap %u", (unsigned long long)*n_kv, GGUF_MAX_KV);
  /* A kv takes at least 8 (key length) + 1 (key) + 4 (type) + 1 (u8 value) bytes, a tensor
   * info 8 + 1 + 4 + 8 + 4 + 8: refuse impossible counts before allocating for them. */
  if (*n_kv * 14 + *n_tensors * 33 > c->size - c->pos)
    return fail(c, ERR_FORMAT, 8, "counts: %llu tensors and %llu kvs cannot fit in %zu bytes",
                (unsigned long long)*n_tensors, (unsigned long long)*n_kv, c->size);
  return 0;
}

static int rd_all_kv(cursor *c, gguf_file *f, size_t n) {
  f->kv = calloc(n ? n : 1, sizeof *f->kv);
  if (!f->kv) return fail(c, ERR_NOMEM, c->pos, "kv table: out of memory");
  for (size_t i = 0; i < n; i++) {
    int rc = rd_kv(c, i, &f->kv[i]);
    f->n_kv = i + 1; /* so close frees a partly read entry's offsets */
    if (rc) return rc;
  }
  f->kv_sorted = sort_index(&f->kv[0].key, sizeof *f->kv, n);
  if (!f->kv_sorted) return fail(c, ERR_NOMEM, c->pos, "kv index: out of memory");
  for (size_t i = 1; i < n; i++) {
    const gguf_kv *a = &f->kv[f->kv_sorted[i - 1]], *b = &f->kv[f->kv_sorted[i]];
    char nm[56];
    if (!str_cmp(a->key.ptr, a->key.len, b->key.ptr, b->key.len))
      return fail(c, ERR_FORMAT, (size_t)((const uint8_t *)b->key.ptr - c->base), "kv %u: duplicate key '%s'",
                  f->kv_sorted[i], show(b->key.ptr, b->key.len, nm));
  }
  return 0;
}

static int rd_alignment(cursor *c, gguf_file *f) {
  f->alignment = GGUF_DEFAULT_ALIGNMENT;
  long i = find_sorted(f->kv_sorted, f->n_kv, &f->kv[0].key, sizeof *f->kv, "general.alignment");
  if (i < 0) return 0;
  const gguf_kv *kv = &f->kv[i];
  size_t at = (size_t)(kv->data - c->base);
  if (kv->type != GGUF_VT_UINT32)
    return fail(c, ERR_FORMAT, at, "general.alignment: type %s, expected u32", gguf_vtype_name(kv->type));
  uint32_t a = le32(kv->data);
  if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT)
    return fail(c, ERR_FORMAT, at, "general.alignment: %u is not a power of two up to %u", a, GGUF_MAX_ALIGNMENT);
  f->alignment = a;
  return 0;
}

/* Checks one tensor's type and shape and computes its byte size (at: the ne and type
 * fields, for messages). */
static int check_shape(cursor *c, size_t at_ne, size_t at_type, const char *what, gguf_tensor *t) {
  const quant_traits *qt = quant_traits_of(t->type);
  size_t at = at_ne;
  if (!qt) return fail(c, ERR_UNSUPPORTED, at_type, "%s: unknown tensor type %u", what, t->type);
  uint64_t nel = 1;
  for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
    if (t->ne[d] == 0) return fail(c, ERR_FORMAT, at, "%s: ne[%u] is 0", what, d);
    if (t->ne[d] > (uint64_t)INT64_MAX / nel)
      return fail(c, ERR_FORMAT, at, "%s: element count overflows", what);
    nel *= t->ne[d];
  }
  if (t->ne[0] % qt->block_size)
    return fail(c, ERR_FORMAT, at, "%s: ne[0] = %llu is not a multiple of the %s block size %u", what,
                (unsigned long long)t->ne[0], qt->name, qt->block_size);
  uint64_t blocks = nel / qt->block_size;
  if (blocks > (uint64_t)INT64_MAX / qt->type_size)
    return fail(c, ERR_FORMAT, at, "%s: byte size overflows", what);
  t->nbytes = blocks * qt->type_size;
  return 0;
}

static int rd_tensor(cursor *c, size_t i, size_t align, gguf_tensor *t) {
  char what[96], nm[56];
  snprintf(what, sizeof what, "tensor %zu name", i);
  size_t at = c->pos;
  int rc = rd_str(c, what, GGUF_MAX_NAME, &t->name);
  if (rc) return rc;
  if (t->name.len == 0) return fail(c, ERR_FORMAT, at, "%s: empty", what);
  snprintf(what, sizeof what, "tensor %zu '%s'", i, show(t->name.ptr, t->name.len, nm));
  at = c->pos;
  if ((rc = rd_u32(c, what, &t->n_dims))) return rc;
  if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
    return fail(c, ERR_FORMAT, at, "%s: n_dims %u, expected 1..%d", what, t->n_dims, GGUF_MAX_DIMS);
  for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
  size_t at_ne = c->pos;
  for (uint32_t d = 0; d < t->n_dims; d++)
    if ((rc = rd_u64(c, what, &t->ne[d]))) return rc;
  at = c->pos;
  if ((rc = rd_u32(c, what, &t->type))) return rc;
  if ((rc = check_shape(c, at_ne, at, what, t))) return rc;
  at = c->pos;
  if ((rc = rd_u64(c, what, &t->offset))) return rc;
  if (t->offset % align)
    return fail(c, ERR_FORMAT, at, "%s: offset %llu is not a multiple of the alignment %zu", what,
                (unsigned long long)t->offset, align);
  return 0;
}

/* qsort comparator for the overlap check: tensor pointers by offset. */
static int cmp_offset(const void *a, const void *b) {
  const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

static int check_overlaps(cursor *c, gguf_file *f) {
  if (f->n_tensors < 2) return 0;
  const gguf_tensor **by_off = malloc(f->n_tensors * sizeof *by_off);
  if (!by_off) return fail(c, ERR_NOMEM, c->pos, "tensor table: out of memory");
  for (size_t i = 0; i < f->n_tensors; i++) by_off[i] = &f->tensors[i];
  qsort(by_off, f->n_tensors, sizeof *by_off, cmp_offset);
  int rc = 0;
  for (size_t i = 1; i < f->n_tensors && !rc; i++) {
    const gguf_tensor *a = by_off[i - 1], *b = by_off[i];
    char n1[56], n2[56];
    if (a->offset + a->nbytes > b->offset)
      rc = fail(c, ERR_FORMAT, f->data_off + (size_t)b->offset, "tensor '%s': data overlaps tensor '%s'",
                show(b->name.ptr, b->name.len, n1), show(a->name.ptr, a->name.len, n2));
  }
  free(by_off);
  return rc;
}

/* Places the data section and checks every tensor's data against it. */
static int check_data(cursor *c, gguf_file *f) {
  size_t a = f->alignment, meta_end = c->pos;
  f->data_off = meta_end % a ? meta_end + (a - meta_end % a) : meta_end;
  if (f->n_tensors == 0) return 0; /* files without tensors may end without padding */
  if (f->data_off > c->size) return fail(c, ERR_FORMAT, meta_end, "data section: starts past the end of the file");
  uint64_t room = c->size - f->data_off;
  for (size_t i = 0; i < f->n_tensors; i++) {
    gguf_tensor *t = &f->tensors[i];
    char nm[56];
    if (t->offset > room || t->nbytes > room - t->offset)
      return fail(c, ERR_FORMAT, f->data_off + (t->offset > room ? room : t->offset),
                  "tensor %zu '%s': data [%llu, +%llu) runs past the end of the file", i,
                  show(t->name.ptr, t->name.len, nm), (unsigned long long)t->offset, (unsigned long long)t->nbytes);
    t->data = c->base + f->data_off + t->offset;
  }
  return check_overlaps(c, f);
}

static int rd_all_tensors(cursor *c, gguf_file *f, size_t n) {
  f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
  if (!f->tensors) return fail(c, ERR_NOMEM, c->pos, "tensor table: out of memory");
  f->n_tensors = n;
  for (size_t i = 0; i < n; i++) {
    int rc = rd_tensor(c, i, f->alignment, &f->tensors[i]);
    if (rc) return rc;
  }
  f->t_sorted = sort_index(&f->tensors[0].name, sizeof *f->tensors, n);
  if (!f->t_sorted) return fail(c, ERR_NOMEM, c->pos, "tensor index: out of memory");
  for (size_t i = 1; i < n; i++) {
    const gguf_tensor *a = &f->tensors[f->t_sorted[i - 1]], *b = &f->tensors[f->t_sorted[i]];
    char nm[56];
    if (!str_cmp(a->name.ptr, a->name.len, b->name.ptr, b->name.len))
      return fail(c, ERR_FORMAT, (size_t)((const uint8_t *)b->name.ptr - c->base), "tensor %u: duplicate name '%s'",
                  f->t_sorted[i], show(b->name.ptr, b->name.len, nm));
  }
  return 0;
}

static int parse(gguf_file *f, char *err, size_t err_cap) {
  cursor c = {f->base, f->size, 0, err, err_cap};
  uint64_t n_tensors, n_kv;
  int rc = rd_header(&c, f, &n_tensors, &n_kv);
  if (!rc) rc = rd_all_kv(&c, f, (size_t)n_kv);
  if (!rc) rc = rd_alignment(&c, f);
  if (!rc) rc = rd_all_tensors(&c, f, (size_t)n_tensors);
  if (!rc) rc = check_data(&c, f);
  return rc;
}

/* ---- open / close ------------------------------------------------------------------------ */

int gguf_open_mem(const void *data, size_t len, gguf_file **out, char *err, size_t err_cap) {
  *out = NULL;
  if (err && err_cap) err[0] = 0;
  if (!data && len) return ERR_INVAL;
  gguf_file *f = calloc(1, sizeof *f);
  if (!f) return ERR_NOMEM;
  f->base = data;
  f->size = len;
  int rc = parse(f, err, err_cap);
  if (rc) {
    gguf_close(f);
    return rc;
  }
  *out = f;
  return 0;
}

static int open_error(int rc, const char *path, const char *what, char *err, size_t err_cap) {
  if (err && err_cap) snprintf(err, err_cap, "gguf: cannot %s %s: %s", what, path, strerror(-rc));
  return rc;
}

int gguf_open(const char *path, gguf_file **out, char *err, size_t err_cap) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return open_error(-errno, path, "open", err, err_cap);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int rc = -errno;
    close(fd);
    return open_error(rc, path, "stat", err, err_cap);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return open_error(-EINVAL, path, "read (not a regular file)", err, err_cap);
  }
  size_t size = (size_t)st.st_size;
  void *map = NULL;
  if (size > 0) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int rc = -errno;
      close(fd);
      return open_error(rc, path, "map", err, err_cap);
    }
  }
  close(fd);
  int rc = gguf_open_mem(size ? map : "", size, out, err, err_cap);
  if (rc) {
    if (map) munmap(map, size);
    return rc;
  }
  (*out)->mapped = map != NULL;
  return 0;
}

void gguf_close(gguf_file *f) {
  if (!f) return;
  for (size_t i = 0; i < f->n_kv; i++) free((void *)f->kv[i].str_offsets);
  free(f->kv);
  free(f->kv_sorted);
  free(f->tensors);
  free(f->t_sorted);
  if (f->mapped) munmap((void *)f->base, f->size);
  free(f);
}

/* ---- accessors --------------------------------------------------------------------------- */

uint32_t gguf_version(const gguf_file *f) { return f->version; }
size_t gguf_alignment(const gguf_file *f) { return f->alignment; }
size_t gguf_file_size(const gguf_file *f) { return f->size; }
const uint8_t *gguf_base(const gguf_file *f) { return f->base; }
size_t gguf_data_offset(const gguf_file *f) { return f->data_off; }
size_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
size_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }

const gguf_kv *gguf_kv_at(const gguf_file *f, size_t i) { return i < f->n_kv ? &f->kv[i] : NULL; }

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
  if (!f->n_kv || !key) return NULL;
  long i = find_sorted(f->kv_sorted, f->n_kv, &f->kv[0].key, sizeof *f->kv, key);
  return i < 0 ? NULL : &f->kv[i];
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i) {
  return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
  if (!f->n_tensors || !name) return NULL;
  long i = find_sorted(f->t_sorted, f->n_tensors, &f->tensors[0].name, sizeof *f->tensors, name);
  return i < 0 ? NULL : &f->tensors[i];
}

int gguf_str_eq(gguf_str s, const char *c) {
  size_t n = strlen(c);
  return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* Integer value of a scalar at p: *is_signed tells how to read *u (as int64 when set). */
static int int_value(uint32_t t, const uint8_t *p, uint64_t *u, int *is_signed) {
  *is_signed = 1;
  switch (t) {
  case GGUF_VT_UINT8: *is_signed = 0; *u = p[0]; return 0;
  case GGUF_VT_INT8: *u = (uint64_t)(int64_t)(int8_t)p[0]; return 0;
  case GGUF_VT_UINT16: *is_signed = 0; *u = le16(p); return 0;
  case GGUF_VT_INT16: *u = (uint64_t)(int64_t)(int16_t)le16(p); return 0;
  case GGUF_VT_UINT32: *is_signed = 0; *u = le32(p); return 0;
  case GGUF_VT_INT32: *u = (uint64_t)(int64_t)(int32_t)le32(p); return 0;
  case GGUF_VT_UINT64: *is_signed = 0; *u = le64(p); return 0;
  case GGUF_VT_INT64: *u = le64(p); return 0;
  default: return ERR_FORMAT;
  }
}

static double float_value(uint32_t t, const uint8_t *p) {
  if (t == GGUF_VT_FLOAT32) {
    uint32_t b = le32(p);
    float v;
    memcpy(&v, &b, 4);
    return v;
  }
  if (t == GGUF_VT_FLOAT64) {
    uint64_t b = le64(p);
    double v;
    memcpy(&v, &b, 8);
    return v;
  }
  if (t == GGUF_VT_BOOL) return p[0] != 0;
  uint64_t u;
  int sg;
  if (int_value(t, p, &u, &sg)) return 0;
  return sg ? (double)(int64_t)u : (double)u;
}

static const gguf_kv *scalar_kv(const gguf_file *f, const char *key, int *rc) {
  const gguf_kv *kv = gguf_find_kv(f, key);
  *rc = !kv ? ERR_NOTFOUND : (kv->type == GGUF_VT_ARRAY || kv->type == GGUF_VT_STRING) ? ERR_FORMAT : 0;
  return kv;
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out) {
  int rc, sg;
  const gguf_kv *kv = scalar_kv(f, key, &rc);
  uint64_t u;
  if (rc) return rc;
  if (int_value(kv->type, kv->data, &u, &sg)) return ERR_FORMAT;
  if (!sg && u > (uint64_t)INT64_MAX) return ERR_FORMAT;
  *out = (int64_t)u;
  return 0;
}

int gguf_get_uint(const gguf_file *f, const char *key, uint64_t *out) {
  int rc, sg;
  const gguf_kv *kv = scalar_kv(f, key, &rc);
  uint64_t u;
  if (rc) return rc;
  if (int_value(kv->type, kv->data, &u, &sg)) return ERR_FORMAT;
  if (sg && (int64_t)u < 0) return ERR_FORMAT;
  *out = u;
  return 0;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out) {
  int rc;
  const gguf_kv *kv = scalar_kv(f, key, &rc);
  if (rc) return rc;
  if (kv->type == GGUF_VT_BOOL) return ERR_FORMAT;
  *out = float_value(kv->type, kv->data);
  return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out) {
  const gguf_kv *kv = gguf_find_kv(f, key);
  if (!kv) return ERR_NOTFOUND;
  if (kv->type != GGUF_VT_BOOL) return ERR_FORMAT;
  *out = kv->data[0] != 0;
  return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
  const gguf_kv *kv = gguf_find_kv(f, key);
  if (!kv) return ERR_NOTFOUND;
  if (kv->type != GGUF_VT_STRING) return ERR_FORMAT;
  out->len = le64(kv->data);
  out->ptr = (const char *)kv->data + 8;
  return 0;
}

int gguf_get_arr(const gguf_file *f, const char *key, const gguf_kv **out) {
  const gguf_kv *kv = gguf_find_kv(f, key);
  if (!kv) return ERR_NOTFOUND;
  if (kv->type != GGUF_VT_ARRAY) return ERR_FORMAT;
  *out = kv;
  return 0;
}

gguf_str gguf_arr_str(const gguf_kv *arr, uint64_t i) {
  gguf_str s = {"", 0};
  if (!arr || arr->type != GGUF_VT_ARRAY || arr->arr_type != GGUF_VT_STRING || i >= arr->arr_n) return s;
  const uint8_t *p = arr->data + arr->str_offsets[i];
  s.len = le64(p);
  s.ptr = (const char *)p + 8;
  return s;
}

double gguf_arr_num(const gguf_kv *arr, uint64_t i) {
  if (!arr || arr->type != GGUF_VT_ARRAY || i >= arr->arr_n) return 0;
  size_t n = scalar_size(arr->arr_type);
  if (!n) return 0;
  return float_value(arr->arr_type, arr->data + i * n);
}

/* Bytes of kv's value as stored (after the type field), for copying. */
static uint64_t value_span(const gguf_kv *kv) {
  if (kv->type == GGUF_VT_STRING) return 8 + le64(kv->data);
  if (kv->type != GGUF_VT_ARRAY) return scalar_size(kv->type);
  uint64_t body;
  if (kv->arr_type != GGUF_VT_STRING) body = kv->arr_n * scalar_size(kv->arr_type);
  else if (kv->arr_n == 0) body = 0;
  else body = kv->str_offsets[kv->arr_n - 1] + 8 + le64(kv->data + kv->str_offsets[kv->arr_n - 1]);
  return 12 + body; /* element type + count precede data */
}

/* ---- writer ------------------------------------------------------------------------------ */

typedef struct wkv {
  char *key;          /* owned, NUL-terminated */
  uint32_t type;      /* value type */
  uint8_t *val;       /* owned: the serialized value (what follows the type field) */
  size_t val_len;
} wkv;

typedef struct wtensor {
  char *name;         /* owned, NUL-terminated */
  uint32_t n_dims;
  uint64_t ne[GGUF_MAX_DIMS];
  uint32_t type;
  const void *data;   /* borrowed until gguf_writer_write returns */
  uint64_t nbytes;
} wtensor;

struct gguf_writer {
  wkv *kv;
  size_t n_kv, cap_kv;
  wtensor *t;
  size_t n_t, cap_t;
};

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->n_kv; i++) {
    free(w->kv[i].key);
    free(w->kv[i].val);
  }
  for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
  free(w->kv);
  free(w->t);
  free(w);
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 16;
  void *p = realloc(*arr, nc * elem);
  if (!p) return ERR_NOMEM;
  *arr = p;
  *cap = nc;
  return 0;
}

/* Stores key = (type, val[0..len)); takes val (freed on failure). */
static int put_kv(gguf_writer *w, const char *key, uint32_t type, uint8_t *val, size_t len) {
  size_t klen = key ? strlen(key) : 0;
  if (!w || klen == 0 || klen > GGUF_MAX_KEY) {
    free(val);
    return ERR_INVAL;
  }
  for (size_t i = 0; i < w->n_kv; i++) {
    if (strcmp(w->kv[i].key, key)) continue;
    free(w->kv[i].val);
    w->kv[i] = (wkv){w->kv[i].key, type, val, len};
    return 0;
  }
  char *k = strdup(key);
  if (w->n_kv >= GGUF_MAX_KV || !k || grow((void **)&w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv)) {
    free(k);
    free(val);
    return w->n_kv >= GGUF_MAX_KV ? ERR_TOOBIG : ERR_NOMEM;
  }
  w->kv[w->n_kv++] = (wkv){k, type, val, len};
  return 0;
}

static int put_copy(gguf_writer *w, const char *key, uint32_t type, const void *val, size_t len) {
  uint8_t *v = malloc(len ? len : 1);
  if (!v) return ERR_NOMEM;
  if (len) memcpy(v, val, len);
  return put_kv(w, key, type, v, len);
}

int gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_vtype t, const void *le_value) {
  size_t n = scalar_size(t);
  if (!n || !le_value) return ERR_INVAL;
  return put_copy(w, key, t, le_value, n);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
  uint8_t b[4];
  put32(b, v);
  return put_copy(w, key, GGUF_VT_UINT32, b, 4);
}

int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
  uint8_t b[4];
  put32(b, (uint32_t)v);
  return put_copy(w, key, GGUF_VT_INT32, b, 4);
}

int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) {
  uint8_t b[8];
  put64(b, v);
  return put_copy(w, key, GGUF_VT_UINT64, b, 8);
}

int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
  uint32_t bits;
  uint8_t b[4];
  memcpy(&bits, &v, 4);
  put32(b, bits);
  return put_copy(w, key, GGUF_VT_FLOAT32, b, 4);
}

int gguf_writer_set_bool(gguf_writer *w, const char *key, int v) {
  uint8_t b = v != 0;
  return put_copy(w, key, GGUF_VT_BOOL, &b, 1);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v, size_t len) {
  if ((!v && len) || len > GGUF_MAX_STRING) return ERR_INVAL;
  uint8_t *b = malloc(8 + len);
  if (!b) return ERR_NOMEM;
  put64(b, len);
  if (len) memcpy(b + 8, v, len);
  return put_kv(w, key, GGUF_VT_STRING, b, 8 + len);
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype t, const void *data, uint64_t n) {
  size_t es = scalar_size(t);
  if (!es || n > GGUF_MAX_ARRAY || (!data && n)) return ERR_INVAL;
  size_t len = 12 + (size_t)n * es;
  uint8_t *b = malloc(len);
  if (!b) return ERR_NOMEM;
  put32(b, t);
  put64(b + 4, n);
  if (n) memcpy(b + 12, data, (size_t)n * es);
  return put_kv(w, key, GGUF_VT_ARRAY, b, len);
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const gguf_str *items, uint64_t n) {
  if (n > GGUF_MAX_ARRAY || (!items && n)) return ERR_INVAL;
  size_t len = 12;
  for (uint64_t i = 0; i < n; i++) {
    if (items[i].len > GGUF_MAX_STRING || (!items[i].ptr && items[i].len)) return ERR_INVAL;
    len += 8 + (size_t)items[i].len;
  }
  uint8_t *b = malloc(len), *p = b + 12;
  if (!b) return ERR_NOMEM;
  put32(b, GGUF_VT_STRING);
  put64(b + 4, n);
  for (uint64_t i = 0; i < n; i++) {
    put64(p, items[i].len);
    if (items[i].len) memcpy(p + 8, items[i].ptr, (size_t)items[i].len);
    p += 8 + items[i].len;
  }
  return put_kv(w, key, GGUF_VT_ARRAY, b, len);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src) {
  for (size_t i = 0; i < src->n_kv; i++) {
    const gguf_kv *kv = &src->kv[i];
    char *key = strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key) return ERR_NOMEM;
    const uint8_t *val = kv->type == GGUF_VT_ARRAY ? kv->data - 12 : kv->data;
    int rc = put_copy(w, key, kv->type, val, (size_t)value_span(kv));
    free(key);
    if (rc) return rc;
  }
  return 0;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t n_dims, const uint64_t ne[],
                           uint32_t type, const void *data, uint64_t nbytes) {
  size_t nlen = name ? strlen(name) : 0;
  if (!w || nlen == 0 || nlen > GGUF_MAX_NAME || n_dims == 0 || n_dims > GGUF_MAX_DIMS || !ne) return ERR_INVAL;
  if (!data && nbytes) return ERR_INVAL;
  gguf_tensor t = {.n_dims = n_dims, .type = type};
  for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t.ne[d] = d < n_dims ? ne[d] : 1;
  cursor c = {0};
  if (check_shape(&c, 0, 0, "", &t)) return ERR_INVAL;
  if (t.nbytes != nbytes) return ERR_INVAL;
  for (size_t i = 0; i < w->n_t; i++)
    if (!strcmp(w->t[i].name, name)) return ERR_EXISTS;
  if (w->n_t >= GGUF_MAX_TENSORS) return ERR_TOOBIG;
  char *nm = strdup(name);
  if (!nm || grow((void **)&w->t, &w->cap_t, w->n_t, sizeof *w->t)) {
    free(nm);
    return ERR_NOMEM;
  }
  wtensor *wt = &w->t[w->n_t++];
  *wt = (wtensor){nm, n_dims, {0}, type, data, nbytes};
  memcpy(wt->ne, t.ne, sizeof wt->ne);
  return 0;
}

/* Buffered sequential writer over a file descriptor; the first error sticks. */
typedef struct wout {
  int fd;
  int rc;
  uint64_t pos;        /* bytes written so far (the file offset) */
  size_t n;            /* bytes in buf */
  uint8_t buf[1 << 16];
} wout;

static void out_flush(wout *o) {
  size_t done = 0;
  while (!o->rc && done < o->n) {
    ssize_t r = write(o->fd, o->buf + done, o->n - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) o->rc = -errno;
    else done += (size_t)r;
  }
  o->n = 0;
}

static void out_bytes(wout *o, const void *p, uint64_t n) {
  const uint8_t *s = p;
  o->pos += n;
  while (n && !o->rc) {
    if (o->n == sizeof o->buf) out_flush(o);
    size_t k = sizeof o->buf - o->n;
    if (k > n) k = (size_t)n;
    memcpy(o->buf + o->n, s, k);
    o->n += k;
    s += k;
    n -= k;
  }
}

static void out_u32(wout *o, uint32_t v) {
  uint8_t b[4];
  put32(b, v);
  out_bytes(o, b, 4);
}

static void out_u64(wout *o, uint64_t v) {
  uint8_t b[8];
  put64(b, v);
  out_bytes(o, b, 8);
}

static void out_pad(wout *o, size_t align) {
  static const uint8_t zeros[64];
  while (o->pos % align) {
    size_t k = align - (size_t)(o->pos % align);
    out_bytes(o, zeros, k < sizeof zeros ? k : sizeof zeros);
  }
}

static int writer_alignment(const gguf_writer *w, size_t *out) {
  *out = GGUF_DEFAULT_ALIGNMENT;
  for (size_t i = 0; i < w->n_kv; i++) {
    if (strcmp(w->kv[i].key, "general.alignment")) continue;
    if (w->kv[i].type != GGUF_VT_UINT32) return ERR_INVAL;
    uint32_t a = le32(w->kv[i].val);
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT) return ERR_INVAL;
    *out = a;
  }
  return 0;
}

static void write_all_parts(const gguf_writer *w, size_t align, wout *o) {
  out_u32(o, GGUF_MAGIC);
  out_u32(o, 3);
  out_u64(o, w->n_t);
  out_u64(o, w->n_kv);
  for (size_t i = 0; i < w->n_kv; i++) {
    out_u64(o, strlen(w->kv[i].key));
    out_bytes(o, w->kv[i].key, strlen(w->kv[i].key));
    out_u32(o, w->kv[i].type);
    out_bytes(o, w->kv[i].val, w->kv[i].val_len);
  }
  uint64_t off = 0;
  for (size_t i = 0; i < w->n_t; i++) {
    const wtensor *t = &w->t[i];
    out_u64(o, strlen(t->name));
    out_bytes(o, t->name, strlen(t->name));
    out_u32(o, t->n_dims);
    for (uint32_t d = 0; d < t->n_dims; d++) out_u64(o, t->ne[d]);
    out_u32(o, t->type);
    out_u64(o, off);
    off += t->nbytes;
    off += off % align ? align - off % align : 0;
  }
  out_pad(o, align);
  for (size_t i = 0; i < w->n_t; i++) {
    out_flush(o); /* large tensors go straight from the caller's memory */
    o->pos += w->t[i].nbytes;
    const uint8_t *p = w->t[i].data;
    for (uint64_t left = w->t[i].nbytes; left && !o->rc;) {
      ssize_t r = write(o->fd, p, left > (1u << 30) ? (1u << 30) : (size_t)left);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) o->rc = -errno;
      else { p += r; left -= (uint64_t)r; }
    }
    out_pad(o, align);
  }
  out_flush(o);
}

static int fsync_dir_of(const char *path) {
  char *tmp = strdup(path);
  if (!tmp) return ERR_NOMEM;
  int dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(tmp);
  if (dfd < 0) return -errno;
  int rc = fsync(dfd) < 0 ? -errno : 0;
  close(dfd);
  return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path) {
  size_t align;
  int rc = writer_alignment(w, &align);
  if (rc) return rc;
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  wout *o = malloc(sizeof *o);
  if (!tmp || !o) {
    free(tmp);
    free(o);
    return ERR_NOMEM;
  }
  snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
  o->fd = mkostemp(tmp, O_CLOEXEC);
  o->rc = o->fd < 0 ? -errno : 0;
  o->pos = 0;
  o->n = 0;
  if (o->fd >= 0) {
    if (fchmod(o->fd, 0644) < 0) o->rc = -errno;
    write_all_parts(w, align, o);
    if (!o->rc && fsync(o->fd) < 0) o->rc = -errno;
    if (close(o->fd) < 0 && !o->rc) o->rc = -errno;
    if (!o->rc && rename(tmp, path) < 0) o->rc = -errno;
    if (o->rc) unlink(tmp);
    else o->rc = fsync_dir_of(path);
  }
  rc = o->rc;
  free(tmp);
  free(o);
  return rc;
}
