/* llm/quantize — model quantization and the streaming tensor sink; see quantize.h.
 *
 * The sink appends tensor bytes to an unlinked scratch file (each tensor starting at a
 * GGUF_DEFAULT_ALIGNMENT-aligned offset, not that the writer needs it) and remembers name,
 * shape, type, offset and size; finish maps the scratch file read-only and passes pointers
 * into the mapping to the GGUF writer, which streams them to the final file. */
#include "llm/quantize.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/err.h"

/* ---- targets ---------------------------------------------------------------------------- */

static const quantize_ftype ftypes[] = {
    {QUANTIZE_PURE, QT_F32, 0, "F32"},        {QUANTIZE_PURE, QT_F16, 1, "F16"},
    {QUANTIZE_PURE, QT_BF16, 32, "BF16"},     {QUANTIZE_PURE, QT_Q8_0, 7, "Q8_0"},
    {QUANTIZE_PURE, QT_Q4_0, 2, "Q4_0"},      {QUANTIZE_PURE, QT_Q4_1, 3, "Q4_1"},
    {QUANTIZE_PURE, QT_Q5_0, 8, "Q5_0"},      {QUANTIZE_PURE, QT_Q5_1, 9, "Q5_1"},
    {QUANTIZE_PURE, QT_Q4_K, 14, "Q4_K"},     {QUANTIZE_PURE, QT_Q5_K, 16, "Q5_K"},
    {QUANTIZE_PURE, QT_Q6_K, 18, "Q6_K"},     {QUANTIZE_Q4_K_M, QT_Q4_K, 15, "Q4_K_M"},
    {QUANTIZE_Q5_K_M, QT_Q5_K, 17, "Q5_K_M"},
};

int quantize_parse_ftype(const char *name, quantize_ftype *out) {
  for (size_t i = 0; name && i < sizeof ftypes / sizeof *ftypes; i++)
    if (!strcasecmp(name, ftypes[i].name)) {
      *out = ftypes[i];
      return 0;
    }
  return ERR_INVAL;
}

const char *quantize_ftype_names(void) {
  return "Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K F16 BF16 F32 Q4_K_M Q5_K_M";
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

/* Layer index of "blk.N.*", or -1. */
static int layer_of(const char *name) {
  if (strncmp(name, "blk.", 4)) return -1;
  char *end;
  long v = strtol(name + 4, &end, 10);
  return end != name + 4 && *end == '.' && v >= 0 && v < 1000000 ? (int)v : -1;
}

/* The mixes spend Q6_K on the first and last eighth of the blocks and on every third block
 * in between (counting from the end of the first eighth). */
static int wants_more_bits(int il, int n_layer) {
  int lo = n_layer / 8, hi = n_layer - n_layer / 8;
  if (il < lo || il >= hi) return 1;
  return (il - lo) % 3 == 2;
}

/* A type whose blocks fit rows of n, starting from t. */
static qtype fit_rows(qtype t, int64_t n) {
  if (quant_row_ok(t, n)) return t;
  qtype alt = t == QT_Q4_K ? QT_Q5_0 : t == QT_Q5_K ? QT_Q5_1 : t == QT_Q6_K ? QT_Q8_0 : QT_F32;
  if (alt != QT_F32 && quant_row_ok(alt, n)) return alt;
  return QT_F32;
}

qtype quantize_wanted_type(const quantize_ftype *ft, const char *name, uint32_t n_dims, int n_layer, int tied) {
  if (n_dims < 2 || !ends_with(name, ".weight") || !strcmp(name, "rope_freqs.weight")) return QT_F32;
  qtype t = ft->base;
  if (ft->mix != QUANTIZE_PURE) {
    int il = layer_of(name);
    if (!strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight")))
      t = QT_Q6_K;
    else if (il >= 0 && (ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")) &&
             wants_more_bits(il, n_layer))
      t = QT_Q6_K;
  }
  return t;
}

qtype quantize_pick_type(const quantize_ftype *ft, const char *name, uint32_t n_dims, const uint64_t ne[],
                         int n_layer, int tied) {
  return fit_rows(quantize_wanted_type(ft, name, n_dims, n_layer, tied), (int64_t)ne[0]);
}

/* ---- sink -------------------------------------------------------------------------------- */

typedef struct sink_tensor {
  char *name;          /* owned */
  uint32_t n_dims;
  uint64_t ne[GGUF_MAX_DIMS];
  uint32_t type;
  uint64_t offset;     /* in the scratch file */
  uint64_t nbytes;     /* announced */
} sink_tensor;

struct quantize_sink {
  int fd;              /* unlinked scratch file */
  uint64_t pos;        /* end of the data written */
  uint64_t cur_done;   /* bytes of the current tensor written */
  sink_tensor *t;      /* owned array */
  size_t n_t, cap_t;
  void *map;           /* scratch mapping (finish) */
  size_t map_len;
};

int quantize_sink_new(const char *out_path, quantize_sink **out) {
  *out = NULL;
  char *dup = strdup(out_path);
  if (!dup) return ERR_NOMEM;
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/.apiary-quantize.XXXXXX", dirname(dup));
  free(dup);
  int fd = mkostemp(tmpl, O_CLOEXEC);
  if (fd < 0) return -errno;
  unlink(tmpl);
  quantize_sink *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return ERR_NOMEM;
  }
  s->fd = fd;
  *out = s;
  return 0;
}

void quantize_sink_free(quantize_sink *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_t; i++) free(s->t[i].name);
  free(s->t);
  if (s->map) munmap(s->map, s->map_len);
  if (s->fd >= 0) close(s->fd);
  free(s);
}

int quantize_sink_begin(quantize_sink *s, const char *name, uint32_t n_dims, const uint64_t ne[], uint32_t type,
                        uint64_t nbytes) {
  if (n_dims == 0 || n_dims > GGUF_MAX_DIMS) return ERR_INVAL;
  if (s->n_t && s->cur_done != s->t[s->n_t - 1].nbytes) return ERR_FORMAT;
  if (s->n_t == s->cap_t) {
    size_t cap = s->cap_t ? 2 * s->cap_t : 64;
    sink_tensor *nt = realloc(s->t, cap * sizeof *nt);
    if (!nt) return ERR_NOMEM;
    s->t = nt;
    s->cap_t = cap;
  }
  sink_tensor *t = &s->t[s->n_t];
  memset(t, 0, sizeof *t);
  if (!(t->name = strdup(name))) return ERR_NOMEM;
  t->n_dims = n_dims;
  for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
  t->type = type;
  s->pos = (s->pos + GGUF_DEFAULT_ALIGNMENT - 1) / GGUF_DEFAULT_ALIGNMENT * GGUF_DEFAULT_ALIGNMENT;
  t->offset = s->pos;
  t->nbytes = nbytes;
  s->cur_done = 0;
  s->n_t++;
  return 0;
}

int quantize_sink_put(quantize_sink *s, const void *data, size_t len) {
  if (!s->n_t || s->cur_done + len > s->t[s->n_t - 1].nbytes) return ERR_FORMAT;
  const uint8_t *p = data;
  while (len) {
    ssize_t r = pwrite(s->fd, p, len > (1u << 30) ? (1u << 30) : len, (off_t)s->pos);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    p += r;
    len -= (size_t)r;
    s->pos += (uint64_t)r;
    s->cur_done += (uint64_t)r;
  }
  return 0;
}

int quantize_sink_finish(quantize_sink *s, gguf_writer *w, const char *out_path) {
  if (s->n_t && s->cur_done != s->t[s->n_t - 1].nbytes) return ERR_FORMAT;
  if (s->pos) {
    s->map_len = (size_t)s->pos;
    s->map = mmap(NULL, s->map_len, PROT_READ, MAP_SHARED, s->fd, 0);
    if (s->map == MAP_FAILED) {
      s->map = NULL;
      return -errno;
    }
    madvise(s->map, s->map_len, MADV_SEQUENTIAL);
  }
  for (size_t i = 0; i < s->n_t; i++) {
    const sink_tensor *t = &s->t[i];
    int rc = gguf_writer_add_tensor(w, t->name, t->n_dims, t->ne, t->type,
                                    s->map ? (const uint8_t *)s->map + t->offset : NULL, t->nbytes);
    if (rc) return rc;
  }
  return gguf_writer_write(w, out_path);
}

/* ---- row conversion ---------------------------------------------------------------------- */

typedef struct conv_job {
  qtype src_t, dst_t;
  const uint8_t *src;  /* first row of this job */
  uint8_t *dst;
  int64_t n_in, n_rows;
  size_t src_rb, dst_rb;
  int rc;
} conv_job;

static void *conv_run(void *arg) {
  conv_job *j = arg;
  float *row = malloc((size_t)j->n_in * sizeof *row);
  if (!row) {
    j->rc = ERR_NOMEM;
    return NULL;
  }
  for (int64_t r = 0; r < j->n_rows && !j->rc; r++) {
    quant_dequantize_row(j->src_t, j->src + (size_t)r * j->src_rb, row, j->n_in);
    j->rc = quant_quantize_row(j->dst_t, row, j->dst + (size_t)r * j->dst_rb, j->n_in);
  }
  free(row);
  return NULL;
}

#define MAX_THREADS 16

int quantize_sink_rows(quantize_sink *s, qtype src_t, const void *src, qtype dst_t, int64_t n_in, int64_t n_rows,
                       int n_threads) {
  size_t src_rb = quant_row_size(src_t, n_in), dst_rb = quant_row_size(dst_t, n_in);
  if (src_t == dst_t) return quantize_sink_put(s, src, src_rb * (size_t)n_rows);
  if (n_threads < 1) n_threads = 1;
  if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
  /* Chunks of about 8 MiB of output. */
  int64_t chunk = (int64_t)((8u << 20) / (dst_rb ? dst_rb : 1));
  if (chunk < 1) chunk = 1;
  if (chunk > n_rows) chunk = n_rows;
  uint8_t *buf = malloc(dst_rb * (size_t)(chunk ? chunk : 1));
  if (!buf) return ERR_NOMEM;
  int rc = 0;
  for (int64_t r0 = 0; r0 < n_rows && !rc; r0 += chunk) {
    int64_t nr = n_rows - r0 < chunk ? n_rows - r0 : chunk;
    conv_job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    int nt = nr < n_threads ? (int)nr : n_threads, started[MAX_THREADS] = {0};
    int64_t per = (nr + nt - 1) / nt;
    for (int k = 0; k < nt; k++) {
      int64_t a = k * per, b = a + per < nr ? a + per : nr;
      jobs[k] = (conv_job){src_t, dst_t, (const uint8_t *)src + (size_t)(r0 + a) * src_rb, buf + (size_t)a * dst_rb,
                           n_in, b > a ? b - a : 0, src_rb, dst_rb, 0};
      if (k > 0 && pthread_create(&th[k], NULL, conv_run, &jobs[k]) == 0) started[k] = 1;
    }
    conv_run(&jobs[0]);
    for (int k = 1; k < nt; k++) {
      if (started[k]) pthread_join(th[k], NULL);
      else conv_run(&jobs[k]);
    }
    for (int k = 0; k < nt && !rc; k++) rc = jobs[k].rc;
    if (!rc) rc = quantize_sink_put(s, buf, dst_rb * (size_t)nr);
  }
  free(buf);
  return rc;
}

/* ---- whole file ---------------------------------------------------------------------------- */

/* Drops the (clean, file-backed) input pages of a converted tensor from this process, so
 * the resident set does not grow to the whole input; they come back from the page cache if
 * touched again. */
static void drop_pages(const void *p, uint64_t n) {
  uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + pg - 1) / pg * pg,
            b = ((uintptr_t)p + (uintptr_t)n) / pg * pg;
  if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Copies every kv of f except general.file_type and general.quantization_version: like
 * llama-quantize (whose gguf_set_* removes a key and appends it) the caller adds those two
 * last, wherever the input had them. */
static int copy_kv_except_type(gguf_writer *w, const gguf_file *f) {
  int rc = 0;
  for (size_t i = 0; i < gguf_n_kv(f) && !rc; i++) {
    const gguf_kv *kv = gguf_kv_at(f, i);
    char *key = strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key) return ERR_NOMEM;
    if (!strcmp(key, "general.file_type") || !strcmp(key, "general.quantization_version")) {
      free(key);
      continue;
    }
    if (kv->type == GGUF_VT_STRING) {
      gguf_str v;
      memcpy(&v.len, kv->data, 8); /* the reader checked the string: u64 length, then bytes */
      v.ptr = (const char *)kv->data + 8;
      rc = gguf_writer_set_str(w, key, v.ptr, (size_t)v.len);
    } else if (kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING) {
      gguf_str *items = malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *items);
      if (!items) rc = ERR_NOMEM;
      for (uint64_t k = 0; items && k < kv->arr_n; k++) items[k] = gguf_arr_str(kv, k);
      if (items) rc = gguf_writer_set_arr_str(w, key, items, kv->arr_n);
      free(items);
    } else if (kv->type == GGUF_VT_ARRAY) {
      rc = gguf_writer_set_arr(w, key, kv->arr_type, kv->data, kv->arr_n);
    } else {
      rc = gguf_writer_set_scalar(w, key, kv->type, kv->data);
    }
    free(key);
  }
  return rc;
}

/* llama-quantize's tensor order (its weight_name_comparer): tensors outside the blocks
 * first, then block by block, by name within each group; byte-identical output needs it. */
static int llama_order(const void *pa, const void *pb) {
  const gguf_tensor *a = *(const gguf_tensor *const *)pa, *b = *(const gguf_tensor *const *)pb;
  char na[GGUF_MAX_NAME + 1], nb[GGUF_MAX_NAME + 1];
  snprintf(na, sizeof na, "%.*s", (int)a->name.len, a->name.ptr);
  snprintf(nb, sizeof nb, "%.*s", (int)b->name.len, b->name.ptr);
  int la = layer_of(na), lb = layer_of(nb);
  if (la != lb) return la < lb ? -1 : 1;
  return strcmp(na, nb);
}

int quantize_file(const char *in_path, const char *out_path, const quantize_ftype *ft, int n_threads,
                  quantize_progress_cb cb, void *user, quantize_stats *stats_out, char *err, size_t err_cap) {
  gguf_file *f = NULL;
  quantize_sink *s = NULL;
  gguf_writer *w = NULL;
  quantize_stats st = {0};
  const gguf_tensor **order = NULL; /* the tensors in output order */
  char name[GGUF_MAX_NAME + 1];
  int rc = gguf_open(in_path, &f, err, err_cap);
  if (rc) return rc;
  /* Block count (for the mixes) and whether output is tied to token_embd. */
  int n_layer = 0;
  gguf_str arch;
  if (gguf_get_str(f, "general.architecture", &arch) == 0 && arch.len < 64) {
    char key[96];
    int64_t v;
    snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
    if (gguf_get_int(f, key, &v) == 0 && v > 0 && v < 100000) n_layer = (int)v;
  }
  int tied = gguf_find_tensor(f, "output.weight") == NULL;
  size_t n = gguf_n_tensors(f);
  /* Check every input type first, so an unsupported file fails before any work. */
  for (size_t i = 0; i < n; i++) {
    const gguf_tensor *t = gguf_tensor_at(f, i);
    const quant_traits *qt = quant_traits_of(t->type);
    if (!qt || !qt->supported) {
      rc = err_set(err, err_cap, ERR_UNSUPPORTED, "%.*s: input tensor type %s (%u) cannot be read by this build",
                 (int)t->name.len, t->name.ptr, quant_name(t->type), t->type);
      goto done;
    }
  }
  if ((rc = quantize_sink_new(out_path, &s))) {
    err_set(err, err_cap, rc, "cannot create a scratch file next to %s: %s", out_path, err_str(rc));
    goto done;
  }
  if (!(w = gguf_writer_new())) {
    rc = ERR_NOMEM;
    goto done;
  }
  /* llama-quantize's key order: the input's keys, then quantization_version, then file_type. */
  if ((rc = copy_kv_except_type(w, f)) ||
      (ft->base != QT_F32 && ft->base != QT_F16 && ft->base != QT_BF16 &&
       (rc = gguf_writer_set_u32(w, "general.quantization_version", 2))) ||
      (rc = gguf_writer_set_u32(w, "general.file_type", ft->file_type))) {
    err_set(err, err_cap, rc, "cannot copy metadata: %s", err_str(rc));
    goto done;
  }
  if (!(order = malloc((n ? n : 1) * sizeof *order))) {
    rc = ERR_NOMEM;
    goto done;
  }
  for (size_t i = 0; i < n; i++) order[i] = gguf_tensor_at(f, i);
  qsort(order, n, sizeof *order, llama_order);
  for (size_t i = 0; i < n; i++) {
    const gguf_tensor *t = order[i];
    snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
    qtype want = quantize_wanted_type(ft, name, t->n_dims, n_layer, tied);
    qtype dst = quantize_pick_type(ft, name, t->n_dims, t->ne, n_layer, tied);
    int64_t n_in = (int64_t)t->ne[0], n_rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    uint64_t nbytes = quant_row_size(dst, n_in) * (uint64_t)n_rows;
    if (cb) cb(user, i, n, name, n_in, t->type, want, dst);
    st.n_fallback += want != dst;
    if ((rc = quantize_sink_begin(s, name, t->n_dims, t->ne, dst, nbytes)) ||
        (rc = quantize_sink_rows(s, (qtype)t->type, t->data, dst, n_in, n_rows, n_threads))) {
      err_set(err, err_cap, rc, "%s: %s", name, err_str(rc));
      goto done;
    }
    drop_pages(t->data, t->nbytes);
    st.n_tensors++;
    st.in_bytes += t->nbytes;
    st.out_bytes += nbytes;
    st.n_per_type[dst]++;
  }
  if ((rc = quantize_sink_finish(s, w, out_path))) err_set(err, err_cap, rc, "cannot write %s: %s", out_path, err_str(rc));
done:
  free(order);
  gguf_writer_free(w);
  quantize_sink_free(s);
  gguf_close(f);
  if (!rc && stats_out) *stats_out = st;
  return rc;
}
