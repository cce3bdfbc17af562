/* llm/mstore — the model store: GGUF files in HOME/models, each with a JSON sidecar.
 *
 *     HOME/models/stories15M-Q8_0.gguf        the weights (read-only once verified)
 *     HOME/models/stories15M-Q8_0.json        {"name","file","sha256","size","source",...}
 *
 * A store is plain files (no database) so the CLI can list and resolve models whether or
 * not a node is running. mstore_pull fetches a model by catalog name, URL or local path:
 * from an offline mirror directory first (--from DIR or $APIARY_MODEL_MIRROR), else over
 * HTTP(S) through the caller's downloader (p2p/fetch: libcurl), resuming a partial download
 * (NAME.gguf.part) with a Range request.
 * Every file is sha256-checked before it is moved into place; a mismatch deletes the
 * partial file and says so. Main thread; progress is reported through a callback.
 *
 * A catalog entry with no direct download of its exact file has a recipe instead: fetch
 * public inputs (a llama2.c checkpoint pinned by sha256, a tokenizer GGUF), convert them
 * (llm/llama2c) and quantize (llm/quantize); the result must hash to the entry's sha256,
 * which the recipe reproduces byte for byte. Inputs are kept in HOME/models/.build-NAME
 * until the model is in place, so an interrupted pull resumes where it stopped. An offline
 * mirror directory may hold the final file or the recipe's inputs; with an HTTP mirror
 * ($APIARY_MODEL_MIRROR_URL) every catalog download comes from MIRROR/<file name>. */
#ifndef APIARY_LLM_MSTORE_H
#define APIARY_LLM_MSTORE_H

#include <stddef.h>
#include <stdint.h>

#define MSTORE_SHA256_HEX 65

/* How to make a catalog file from public sources when no download of it is known. */
typedef struct mstore_recipe {
  const char *base;        /* catalog name of the model to quantize, or NULL to convert */
  const char *quantize;    /* with base: the target type ("Q8_0") */
  const char *ckpt_url;    /* without base: a llama2.c checkpoint ... */
  const char *ckpt_sha256; /* ... and its exact sha256 (checked before converting) */
  const char *vocab_url;   /* the tokenizer GGUF; not pinned itself: the output's sha256 is */
} mstore_recipe;

/* A model the project knows by name: where it comes from and its exact bytes. */
typedef struct mstore_catalog_entry {
  const char *name;      /* "stories15M" (also matched case-insensitively) */
  const char *file;      /* "stories15M-Q8_0.gguf" */
  const char *sha256;    /* hex of the exact file */
  uint64_t size;         /* bytes */
  const char *license;
  const char *source;    /* upstream project */
  const char *dataset;
  const char *url;       /* public download URL of this exact file, or NULL when none is known */
  const mstore_recipe *recipe; /* how to build it when url is NULL (or NULL) */
} mstore_catalog_entry;

const mstore_catalog_entry *mstore_catalog(size_t *n_out);
const mstore_catalog_entry *mstore_catalog_find(const char *name);

typedef struct mstore_model {
  char name[128];
  char path[1024];
  char sha256[MSTORE_SHA256_HEX];
  uint64_t size;
  char source[512];
} mstore_model;

/* Called during downloads and hashing: done/total bytes (total 0 when unknown). */
typedef void (*mstore_progress_fn)(const char *what, uint64_t done, uint64_t total, void *ud);

/* Downloads url, appending to part_path (resuming): p2p/fetch's fetch_url. 0 or an error
 * with err set. */
typedef int (*mstore_download_fn)(const char *url, const char *part_path, mstore_progress_fn progress, void *ud,
                                  char *err, size_t err_cap);

typedef struct mstore_pull_opts {
  mstore_download_fn download;  /* how URLs are fetched (NULL: they cannot be) */
  const char *mirror_dir;       /* offline mirror; NULL = $APIARY_MODEL_MIRROR */
  const char *mirror_url;       /* HTTP mirror for catalog downloads; NULL = $APIARY_MODEL_MIRROR_URL */
  const char *sha256;           /* expected hex for URLs/paths not in the catalog (optional) */
  const char *name;             /* store name for a URL/path (default: the file name) */
  mstore_progress_fn progress;
  void *ud;
} mstore_pull_opts;

/* Pulls spec (catalog name, http(s) URL, or path of a local GGUF) into models_dir.
 * Already present and verified: returns 0 at once. err explains failures and what to do. */
int mstore_pull(const char *models_dir, const char *spec, const mstore_pull_opts *o, mstore_model *out,
                char *err, size_t err_cap);
/* Lists models (sidecars) in models_dir; returns the count written (<= cap) or <0. */
int mstore_list(const char *models_dir, mstore_model *out, size_t cap);
/* Resolves a name, file name, sha256 (or unique prefix >= 8 hex) or path to a GGUF path. */
int mstore_resolve(const char *models_dir, const char *spec, mstore_model *out, char *err, size_t err_cap);
/* sha256 of a file as lowercase hex. */
int mstore_sha256_file(const char *path, char hex_out[MSTORE_SHA256_HEX], mstore_progress_fn progress, void *ud);

#endif
