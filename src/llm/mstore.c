/* llm/mstore — model store: catalog, pull (mirror, URL with resume, local file), list,
 * resolve; see mstore.h. */
#include "llm/mstore.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/hex.h"
#include "llm/llama2c.h"
#include "llm/quant.h"
#include "llm/quantize.h"

#define CHUNK (1u << 20)
#define SIDECAR_MAX (64u << 10)

/* stories15M: Karpathy's llama2.c checkpoint on Hugging Face and the Llama 2 SentencePiece
 * vocabulary from llama.cpp's repository at the commit whose converter made the reference
 * files; our converter and quantizer reproduce llama.cpp's files byte for byte. */
static const mstore_recipe stories15m_f32_recipe = {
    NULL, NULL, "https://huggingface.co/karpathy/tinyllamas/resolve/main/stories15M.bin",
    "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a",
    "https://raw.githubusercontent.com/ggml-org/llama.cpp/34af94cd9ab277632e27caeec2d41de2fd091b31/models/"
    "ggml-vocab-llama-spm.gguf"};
static const mstore_recipe stories15m_q8_recipe = {"stories15M-f32", "Q8_0", NULL, NULL, NULL};

static const mstore_catalog_entry catalog[] = {
    {"stories15M", "stories15M-Q8_0.gguf", "ba30bfbbfef35dfc5919a1f5d16ab517624e6fe9ee7c54d47cde8e1968ae6ad1",
     26671392, "MIT", "karpathy/tinyllamas (llama2.c), converted to GGUF and quantized with llama.cpp",
     "TinyStories (Eldan & Li, 2023)", NULL, &stories15m_q8_recipe},
    {"stories15M-f32", "stories15M-F32.gguf", "a4a429f2a6527275de0d53ffa5e3e8eabe320f618004120d51e1b1faae8bb567",
     98357952, "MIT", "karpathy/tinyllamas (llama2.c), converted to GGUF with llama.cpp",
     "TinyStories (Eldan & Li, 2023)", NULL, &stories15m_f32_recipe},
};

const mstore_catalog_entry *mstore_catalog(size_t *n_out) {
  *n_out = sizeof catalog / sizeof *catalog;
  return catalog;
}

const mstore_catalog_entry *mstore_catalog_find(const char *name) {
  for (size_t i = 0; i < sizeof catalog / sizeof *catalog; i++)
    if (!strcasecmp(catalog[i].name, name) || !strcasecmp(catalog[i].file, name)) return &catalog[i];
  return NULL;
}

static void progress(const mstore_pull_opts *o, const char *what, uint64_t done, uint64_t total) {
  if (o && o->progress) o->progress(what, done, total, o->ud);
}

int mstore_sha256_file(const char *path, char hex_out[MSTORE_SHA256_HEX], mstore_progress_fn cb, void *ud) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  struct stat st;
  uint64_t total = fstat(fileno(f), &st) == 0 ? (uint64_t)st.st_size : 0;
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  uint8_t *chunk = malloc(CHUNK);
  if (!chunk) { fclose(f); return ERR_NOMEM; }
  uint64_t done = 0;
  size_t n;
  while ((n = fread(chunk, 1, CHUNK, f)) > 0) {
    crypto_hash_sha256_update(&h, chunk, n);
    done += n;
    if (cb) cb("verifying", done, total, ud);
  }
  int rc = ferror(f) ? -EIO : 0;
  fclose(f);
  free(chunk);
  uint8_t d[32];
  crypto_hash_sha256_final(&h, d);
  hex_encode(d, 32, hex_out);
  return rc;
}

static int is_url(const char *s) { return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8); }

static const char *base_name(const char *s) {
  const char *q = strrchr(s, '/');
  return q ? q + 1 : s;
}

/* Copies src to dst (truncating), reporting progress. */
static int copy_file(const char *src, const char *dst, const mstore_pull_opts *o, char *err, size_t cap) {
  FILE *in = fopen(src, "rb");
  if (!in) { snprintf(err, cap, "cannot read %s: %s", src, strerror(errno)); return -errno; }
  FILE *out = fopen(dst, "wb");
  if (!out) {
    int e = errno;
    fclose(in);
    snprintf(err, cap, "cannot write %s: %s", dst, strerror(e));
    return -e;
  }
  struct stat st;
  uint64_t total = fstat(fileno(in), &st) == 0 ? (uint64_t)st.st_size : 0, done = 0;
  uint8_t *chunk = malloc(CHUNK);
  int rc = chunk ? 0 : ERR_NOMEM;
  size_t n;
  while (!rc && (n = fread(chunk, 1, CHUNK, in)) > 0) {
    if (fwrite(chunk, 1, n, out) != n) rc = -errno;
    done += n;
    progress(o, "copying", done, total);
  }
  if (!rc && ferror(in)) rc = -EIO;
  if (!rc && (fflush(out) || fsync(fileno(out)))) rc = -errno;
  if (fclose(out) && !rc) rc = -errno;
  fclose(in);
  free(chunk);
  if (rc) snprintf(err, cap, "copying %s to %s failed: %s%s", src, dst, err_str(rc),
                   rc == -ENOSPC ? " (free some disk space and pull again)" : "");
  return rc;
}

/* Downloads through the caller's hook (p2p/fetch): llm does no network I/O itself. */
static int download(const char *url, const char *part, const mstore_pull_opts *o, char *err, size_t cap) {
  if (!o || !o->download) {
    snprintf(err, cap, "cannot download %s: this program has no downloader (use 'apiary model pull')", url);
    return ERR_UNSUPPORTED;
  }
  return o->download(url, part, o->progress, o->ud, err, cap);
}

/* ---- recipes ------------------------------------------------------------------------------ */

/* Where a catalog download comes from: MIRROR/<file name> when an HTTP mirror is set. */
static void source_url(const mstore_pull_opts *o, const char *url, char *out, size_t cap) {
  const char *m = o->mirror_url ? o->mirror_url : getenv("APIARY_MODEL_MIRROR_URL");
  if (!m || !*m) {
    snprintf(out, cap, "%s", url);
    return;
  }
  size_t n = strlen(m);
  while (n && m[n - 1] == '/') n--;
  snprintf(out, cap, "%.*s/%s", (int)n, m, base_name(url));
}

/* 1 if path exists and hashes to want_hex. */
static int file_has_sha(const char *path, const char *want_hex, const mstore_pull_opts *o) {
  char hex[MSTORE_SHA256_HEX];
  return fs_exists(path) == 1 && mstore_sha256_file(path, hex, o->progress, o->ud) == 0 && !strcasecmp(hex, want_hex);
}

/* Fetches a recipe input into WORK/<file name of url> (kept until the model is in place):
 * from the mirror directory when it holds the file, else over HTTP with resume. With sha
 * the file must hash to it (a mismatch deletes it). */
static int fetch_input(const char *work, const char *url, const char *sha, const char *mirror,
                       const mstore_pull_opts *o, char *path, size_t path_cap, char *err, size_t cap) {
  const char *file = base_name(url);
  char part[1500], src[1200] = "";
  snprintf(path, path_cap, "%s/%s", work, file);
  snprintf(part, sizeof part, "%s.part", path);
  if (fs_exists(path) == 1) {
    if (!sha || file_has_sha(path, sha, o)) return 0;
    unlink(path);
  }
  if (mirror && *mirror) {
    snprintf(src, sizeof src, "%s/%s", mirror, file);
    if (fs_exists(src) != 1) src[0] = 0;
  }
  int rc;
  if (src[0]) {
    rc = copy_file(src, part, o, err, cap);
  } else {
    char u[2048];
    source_url(o, url, u, sizeof u);
    rc = download(u, part, o, err, cap);
  }
  if (rc) return rc;
  if (sha) {
    char hex[MSTORE_SHA256_HEX];
    if ((rc = mstore_sha256_file(part, hex, o->progress, o->ud))) {
      snprintf(err, cap, "cannot hash %s: %s", part, err_str(rc));
      return rc;
    }
    if (strcasecmp(hex, sha)) {
      unlink(part);
      snprintf(err, cap, "sha256 mismatch for %s: got %s, want %s; the download was deleted (a corrupt or "
               "different file)", src[0] ? src : url, hex, sha);
      return ERR_CRYPTO;
    }
  }
  if (rename(part, path) < 0) {
    snprintf(err, cap, "cannot move %s into place: %s", part, strerror(errno));
    return -errno;
  }
  return 0;
}

static void work_dir(const char *models_dir, const mstore_catalog_entry *e, char *out, size_t cap) {
  snprintf(out, cap, "%s/.build-%s", models_dir, e->name);
}

/* Removes a recipe's work directory (plain files only) and, recursively, its base's. */
static void remove_work(const char *models_dir, const mstore_catalog_entry *e) {
  char dir[1200];
  work_dir(models_dir, e, dir, sizeof dir);
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      if (de->d_name[0] == '.') continue;
      char path[1500];
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      unlink(path);
    }
    closedir(d);
    rmdir(dir);
  }
  const mstore_catalog_entry *b = e->recipe && e->recipe->base ? mstore_catalog_find(e->recipe->base) : NULL;
  if (b && b != e) remove_work(models_dir, b);
}

static int read_sidecar(const char *json_path, const char *models_dir, mstore_model *m);

/* 1 if the store already holds e's exact file (sidecar hash and size match). */
static int stored(const char *models_dir, const mstore_catalog_entry *e, mstore_model *out) {
  char sidecar[1200];
  size_t flen = strlen(e->file);
  snprintf(sidecar, sizeof sidecar, "%s/%.*s.json", models_dir, (int)(flen > 5 ? flen - 5 : flen), e->file);
  struct stat st;
  return read_sidecar(sidecar, models_dir, out) == 0 && stat(out->path, &st) == 0 &&
         (uint64_t)st.st_size == out->size && !strcasecmp(out->sha256, e->sha256);
}

typedef struct quant_progress {
  const mstore_pull_opts *o;
} quant_progress;

static void on_quantize(void *user, size_t i, size_t n, const char *name, int64_t row_len, uint32_t src,
                        uint32_t wanted, uint32_t dst) {
  (void)name, (void)row_len, (void)src, (void)wanted, (void)dst;
  quant_progress *q = user;
  progress(q->o, "quantizing", i + 1, n);
}

static int run_recipe(const char *models_dir, const mstore_catalog_entry *e, const mstore_pull_opts *o,
                      const char *mirror, const char *out, int depth, char *err, size_t cap);

/* Puts the verified file of base entry b where run_recipe can read it; path_out gets it. */
static int base_file(const char *models_dir, const mstore_catalog_entry *b, const mstore_pull_opts *o,
                     const char *mirror, const char *work, int depth, char *path_out, size_t path_cap, char *err,
                     size_t cap) {
  mstore_model have;
  if (stored(models_dir, b, &have)) {
    snprintf(path_out, path_cap, "%s", have.path);
    return 0;
  }
  if (mirror && *mirror) {
    snprintf(path_out, path_cap, "%s/%s", mirror, b->file);
    if (file_has_sha(path_out, b->sha256, o)) return 0;
  }
  snprintf(path_out, path_cap, "%s/%s", work, b->file);
  if (file_has_sha(path_out, b->sha256, o)) return 0;
  char part[1500];
  snprintf(part, sizeof part, "%s.part", path_out);
  int rc;
  if (b->url) {
    char u[2048];
    source_url(o, b->url, u, sizeof u);
    rc = download(u, part, o, err, cap);
  } else {
    rc = run_recipe(models_dir, b, o, mirror, part, depth + 1, err, cap);
  }
  if (rc) return rc;
  char hex[MSTORE_SHA256_HEX];
  if ((rc = mstore_sha256_file(part, hex, o->progress, o->ud))) {
    snprintf(err, cap, "cannot hash %s: %s", part, err_str(rc));
    return rc;
  }
  if (strcasecmp(hex, b->sha256)) {
    unlink(part);
    snprintf(err, cap, "%s built from public sources hashes to %s, not %s; it was deleted (an input changed "
             "upstream?)", b->file, hex, b->sha256);
    return ERR_CRYPTO;
  }
  if (rename(part, path_out) < 0) {
    snprintf(err, cap, "cannot move %s into place: %s", part, strerror(errno));
    return -errno;
  }
  return 0;
}

/* Builds e's file at out (not yet verified: the caller checks its sha256). */
static int run_recipe(const char *models_dir, const mstore_catalog_entry *e, const mstore_pull_opts *o,
                      const char *mirror, const char *out, int depth, char *err, size_t cap) {
  const mstore_recipe *r = e->recipe;
  char work[1200], in[1400], vocab[1400];
  if (!r || depth > 4) {
    snprintf(err, cap, "no way to build %s (catalog recipe loop)", e->name);
    return ERR_INVAL;
  }
  work_dir(models_dir, e, work, sizeof work);
  int rc = fs_mkdir_p(work, 0700);
  if (rc) {
    snprintf(err, cap, "cannot create %s: %s", work, err_str(rc));
    return rc;
  }
  if (r->base) {
    const mstore_catalog_entry *b = mstore_catalog_find(r->base);
    quantize_ftype ft;
    if (!b || b == e || !r->quantize || quantize_parse_ftype(r->quantize, &ft)) {
      snprintf(err, cap, "catalog recipe of %s is broken (base %s, type %s)", e->name, r->base,
               r->quantize ? r->quantize : "none");
      return ERR_INVAL;
    }
    if ((rc = base_file(models_dir, b, o, mirror, work, depth, in, sizeof in, err, cap))) return rc;
    quant_init();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    quant_progress qp = {o};
    char sub[512] = "";
    rc = quantize_file(in, out, &ft, ncpu < 1 ? 1 : ncpu > 16 ? 16 : (int)ncpu, on_quantize, &qp, NULL, sub,
                       sizeof sub);
    if (rc) snprintf(err, cap, "quantizing %s to %s failed: %s", in, r->quantize, sub);
    return rc;
  }
  if ((rc = fetch_input(work, r->ckpt_url, r->ckpt_sha256, mirror, o, in, sizeof in, err, cap)) ||
      (rc = fetch_input(work, r->vocab_url, NULL, mirror, o, vocab, sizeof vocab, err, cap)))
    return rc;
  char sub[512] = "";
  rc = llama2c_convert(in, vocab, out, o->progress, o->ud, sub, sizeof sub);
  if (rc) {
    snprintf(err, cap, "converting the llama2.c checkpoint failed: %s", sub);
    if (strstr(sub, "vocabulary")) unlink(vocab); /* unpinned: fetch it again next time */
  }
  return rc;
}

static int write_sidecar(const char *models_dir, const mstore_model *m, const mstore_catalog_entry *e) {
  char path[1200];
  snprintf(path, sizeof path, "%s/%.*s.json", models_dir, (int)(strlen(base_name(m->path)) - 5), base_name(m->path));
  json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s}", "name", m->name, "file", base_name(m->path), "sha256", m->sha256,
                        "size", (json_int_t)m->size, "source", m->source);
  if (!j) return ERR_NOMEM;
  if (e) {
    json_object_set_new(j, "license", json_string(e->license));
    json_object_set_new(j, "dataset", json_string(e->dataset));
  }
  char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(j);
  if (!text) return ERR_NOMEM;
  int rc = fs_write_atomic(path, text, strlen(text), 0644, 0);
  free(text);
  return rc;
}

static int read_sidecar(const char *json_path, const char *models_dir, mstore_model *m) {
  buf b;
  buf_init(&b);
  int rc = fs_read_file(json_path, SIDECAR_MAX, &b);
  if (rc) { buf_deinit(&b); return rc; }
  json_t *j = json_loadb((const char *)b.ptr, b.len, 0, NULL);
  buf_deinit(&b);
  if (!j) return ERR_FORMAT;
  const char *name = json_string_value(json_object_get(j, "name"));
  const char *file = json_string_value(json_object_get(j, "file"));
  const char *sha = json_string_value(json_object_get(j, "sha256"));
  const char *src = json_string_value(json_object_get(j, "source"));
  rc = ERR_FORMAT;
  if (name && file && sha && strlen(sha) == 64 && !strchr(file, '/')) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->path, sizeof m->path, "%s/%s", models_dir, file);
    memcpy(m->sha256, sha, 65);
    m->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
    snprintf(m->source, sizeof m->source, "%s", src ? src : "");
    rc = 0;
  }
  json_decref(j);
  return rc;
}

static int check_magic(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return -errno;
  char magic[4] = {0};
  size_t n = fread(magic, 1, 4, f);
  fclose(f);
  return (n == 4 && !memcmp(magic, "GGUF", 4)) ? 0 : ERR_FORMAT;
}

int mstore_pull(const char *models_dir, const char *spec, const mstore_pull_opts *o, mstore_model *out, char *err,
                size_t cap) {
  mstore_pull_opts none = {0};
  if (!o) o = &none;
  const mstore_catalog_entry *e = mstore_catalog_find(spec);
  int url = !e && is_url(spec);
  int local = !e && !url && fs_exists(spec) == 1;
  if (!e && !url && !local) {
    snprintf(err, cap, "unknown model '%s': not in the catalog (see 'apiary model list --catalog'), not an "
             "http(s) URL and not a file", spec);
    return ERR_NOTFOUND;
  }
  const char *file = e ? e->file : base_name(spec);
  size_t flen = strlen(file);
  if (flen < 6 || strcasecmp(file + flen - 5, ".gguf") || flen > 200) {
    snprintf(err, cap, "'%s' does not name a .gguf file", file);
    return ERR_INVAL;
  }
  const char *want = e ? e->sha256 : o->sha256;
  if (want && (strlen(want) != 64 || hex_decode(want, 64, (uint8_t[32]){0}, 32))) {
    snprintf(err, cap, "--sha256 wants 64 hex digits");
    return ERR_INVAL;
  }
  int rc = fs_mkdir_p(models_dir, 0700);
  if (rc) { snprintf(err, cap, "cannot create %s: %s", models_dir, err_str(rc)); return rc; }

  mstore_model m;
  memset(&m, 0, sizeof m);
  snprintf(m.name, sizeof m.name, "%s", e ? e->name : (o->name ? o->name : file));
  snprintf(m.path, sizeof m.path, "%s/%s", models_dir, file);
  snprintf(m.source, sizeof m.source, "%s", e ? e->source : spec);
  char part[1200], sidecar[1200];
  snprintf(part, sizeof part, "%s.part", m.path);
  snprintf(sidecar, sizeof sidecar, "%s/%.*s.json", models_dir, (int)(flen - 5), file);

  /* Already here? Trust a sidecar whose hash is the one we want and whose size matches. */
  mstore_model have;
  struct stat st;
  if (read_sidecar(sidecar, models_dir, &have) == 0 && stat(have.path, &st) == 0 &&
      (uint64_t)st.st_size == have.size && (!want || !strcasecmp(have.sha256, want))) {
    if (out) *out = have;
    return 0;
  }

  const char *mirror = o->mirror_dir ? o->mirror_dir : getenv("APIARY_MODEL_MIRROR");
  char src[1200] = "";
  if (local) snprintf(src, sizeof src, "%s", spec);
  else if (mirror && *mirror) {
    snprintf(src, sizeof src, "%s/%s", mirror, file);
    if (fs_exists(src) != 1) src[0] = 0;
  }
  if (src[0]) {
    rc = copy_file(src, part, o, err, cap);
  } else if (url) {
    rc = download(spec, part, o, err, cap);
  } else if (e && e->url) {
    char u[2048];
    source_url(o, e->url, u, sizeof u);
    rc = download(u, part, o, err, cap);
  } else if (e && e->recipe) {
    rc = run_recipe(models_dir, e, o, mirror, part, 0, err, cap);
  } else {
    snprintf(err, cap, "no source for '%s': it is not in the mirror%s%s and no public download of this exact file "
             "is known; put %s in a directory and pass --from DIR (or set APIARY_MODEL_MIRROR), or pull a URL with "
             "--sha256", spec, mirror ? " " : "", mirror ? mirror : " (none set)", file);
    return ERR_NOTFOUND;
  }
  if (rc) return rc;
  if ((rc = check_magic(part))) {
    unlink(part);
    snprintf(err, cap, "%s is not a GGUF file (bad magic); nothing was stored", spec);
    return ERR_FORMAT;
  }
  if ((rc = mstore_sha256_file(part, m.sha256, o->progress, o->ud))) {
    snprintf(err, cap, "cannot hash %s: %s", part, err_str(rc));
    return rc;
  }
  int built = !src[0] && !url && e && !e->url && e->recipe;
  if (want && strcasecmp(m.sha256, want)) {
    unlink(part);
    if (built) {
      remove_work(models_dir, e);
      snprintf(err, cap, "%s built from public sources hashes to %s, not %s; it and its inputs were deleted (an "
               "input changed upstream?)", file, m.sha256, want);
    } else {
      snprintf(err, cap, "sha256 mismatch for %s: got %s, want %s; the partial file was deleted (a corrupt or "
               "different file)", spec, m.sha256, want);
    }
    return ERR_CRYPTO;
  }
  if (stat(part, &st) == 0) m.size = (uint64_t)st.st_size;
  chmod(part, 0644);
  if (rename(part, m.path) < 0) {
    snprintf(err, cap, "cannot move %s into place: %s", part, strerror(errno));
    return -errno;
  }
  if ((rc = write_sidecar(models_dir, &m, e))) {
    snprintf(err, cap, "cannot write %s: %s", sidecar, err_str(rc));
    return rc;
  }
  if (built) remove_work(models_dir, e);
  if (out) *out = m;
  return 0;
}

int mstore_list(const char *models_dir, mstore_model *out, size_t cap) {
  DIR *d = opendir(models_dir);
  if (!d) return errno == ENOENT ? 0 : -errno;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) && n < cap) {
    size_t len = strlen(de->d_name);
    if (len < 6 || strcmp(de->d_name + len - 5, ".json")) continue;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", models_dir, de->d_name);
    if (read_sidecar(path, models_dir, &out[n]) == 0 && fs_exists(out[n].path) == 1) n++;
  }
  closedir(d);
  return (int)n;
}

int mstore_resolve(const char *models_dir, const char *spec, mstore_model *out, char *err, size_t cap) {
  if (strchr(spec, '/') && fs_exists(spec) == 1) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", base_name(spec));
    snprintf(out->path, sizeof out->path, "%s", spec);
    return 0;
  }
  mstore_model list[256];
  int n = mstore_list(models_dir, list, 256);
  if (n < 0) { snprintf(err, cap, "cannot read %s: %s", models_dir, err_str(n)); return n; }
  const mstore_catalog_entry *e = mstore_catalog_find(spec);
  int found = -1, matches = 0;
  size_t slen = strlen(spec);
  for (int i = 0; i < n; i++) {
    int hit = !strcasecmp(list[i].name, spec) || !strcasecmp(base_name(list[i].path), spec) ||
              (e && !strcasecmp(list[i].sha256, e->sha256)) ||
              (slen >= 8 && slen <= 64 && !strncasecmp(list[i].sha256, spec, slen));
    if (hit) { found = i; matches++; }
  }
  if (matches == 1) { *out = list[found]; return 0; }
  if (matches > 1) { snprintf(err, cap, "'%s' matches %d models; use the full sha256", spec, matches); return ERR_INVAL; }
  if (fs_exists(spec) == 1) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", spec);
    snprintf(out->path, sizeof out->path, "%s", spec);
    return 0;
  }
  snprintf(err, cap, "model '%s' is not in %s; fetch it with 'apiary model pull %s'%s", spec, models_dir, spec,
           e ? "" : " (a catalog name, URL or file)");
  return ERR_NOTFOUND;
}
