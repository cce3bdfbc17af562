/* node/mktreg — the Registry's chain jobs for the buyer (thread pool); see mktsvc_impl.h. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/ethrpc.h"
#include "chain/registry.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/log.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"
#include "llm/gguf.h"
#include "llm/mstore.h"
#include "node/mktsvc_impl.h"

/* ---- the Registry (thread pool) ---------------------------------------------------------- */

typedef struct reg_job {
  uv_work_t w;
  mktsvc *m;
  uint8_t sha[32];
  int ensure;             /* register it when missing (our own offers) */
  char name[MKT_NAME_MAX];
  char path[1024];
  int rc;
} reg_job;

static void reg_work(uv_work_t *w) {
  reg_job *j = w->data;
  mktsvc *m = j->m;
  ethrpc *eth;
  if ((j->rc = ethrpc_new(m->rpc_url, 5000, &eth))) return;
  registry_model rm;
  j->rc = registry_get_model(eth, m->registry, j->sha, &rm);
  if (j->rc == ERR_NOTFOUND && j->ensure) {
    wallet wl;
    if (wallet_load(m->wallet_path, &wl) == 0) {
      char license[REGISTRY_LICENSE_MAX] = "unknown", source[REGISTRY_URI_MAX] = "";
      gguf_file *f;
      char e[128];
      if (gguf_open(j->path, &f, e, sizeof e) == 0) {
        gguf_str s;
        if (gguf_get_str(f, "general.license", &s) == 0 && s.len > 0 && s.len < (int)sizeof license)
          snprintf(license, sizeof license, "%.*s", (int)s.len, s.ptr);
        if (gguf_get_str(f, "general.source.url", &s) == 0 && s.len > 0 && s.len < (int)sizeof source)
          snprintf(source, sizeof source, "%.*s", (int)s.len, s.ptr);
        gguf_close(f);
      }
      j->rc = registry_add_model(eth, &wl, m->registry, j->sha, j->name, license, source, NULL);
      wallet_wipe(&wl);
      if (!j->rc) j->rc = 1; /* added */
    }
  }
  ethrpc_free(eth);
}


/* The Registry's models, so a request can name a model the Registry lists. */
typedef struct list_job {
  uv_work_t w;
  mktsvc *m;
  registry_model *list;
  int n;
} list_job;

static void list_work(uv_work_t *w) {
  list_job *j = w->data;
  ethrpc *eth;
  j->n = -1;
  if (ethrpc_new(j->m->rpc_url, 5000, &eth)) return;
  j->n = registry_list_models(eth, j->m->registry, j->list, MAX_NAMES);
  ethrpc_free(eth);
}

static void list_after(uv_work_t *w, int status) {
  list_job *j = w->data;
  mktsvc *m = j->m;
  m->jobs--;
  if (!m->closing) {
    int n = status ? -1 : j->n;
    const char *names[MAX_NAMES];
    uint8_t shas[MAX_NAMES][32];
    int verified[MAX_NAMES];
    int64_t at[MAX_NAMES];
    for (int i = 0; i < n; i++) {
      names[i] = j->list[i].name;
      memcpy(shas[i], j->list[i].hash, 32);
      verified[i] = j->list[i].verified;
      at[i] = (int64_t)j->list[i].registered_at;
    }
    mkt_route_names(m->rt, mktsvc__now_ms(m), names, (const uint8_t(*)[32])shas, verified, at, n);
    mktsvc__drain(m);
  }
  free(j->list);
  free(j);
}

void mktsvc__list_names(mktsvc *m) {
  list_job *j = calloc(1, sizeof *j);
  if (j) j->list = calloc(MAX_NAMES, sizeof *j->list);
  if (j && j->list) j->m = m, j->w.data = j;
  if (!j || !j->list || uv_queue_work(m->loop, &j->w, list_work, list_after)) {
    if (j) free(j->list);
    free(j);
    mkt_route_names(m->rt, mktsvc__now_ms(m), NULL, NULL, NULL, NULL, -1);
    return;
  }
  m->jobs++;
}

static void reg_after(uv_work_t *w, int status) {
  reg_job *j = w->data;
  mktsvc *m = j->m;
  m->jobs--;
  char hex[17];
  hex_encode(j->sha, 8, hex);
  if (j->ensure) {
    if (j->rc == 1) log_info("listed model %s (%s…) in the Registry", j->name, hex);
    else if (j->rc && j->rc != ERR_NOTFOUND) log_warn("cannot list model %s in the Registry: %s", j->name, err_str(j->rc));
  } else if (!m->closing) {
    int listed = status ? -1 : j->rc == 0 ? 1 : j->rc == ERR_NOTFOUND ? 0 : -1;
    if (listed < 0) log_warn("cannot read the Registry (%s)", err_str(j->rc));
    mkt_route_registry(m->rt, mktsvc__now_ms(m), j->sha, listed);
    mktsvc__drain(m);
  }
  free(j);
}

int mktsvc__reg_start(mktsvc *m, const uint8_t sha[32], int ensure, const char *name, const char *path) {
  reg_job *j = calloc(1, sizeof *j);
  if (!j) return ERR_NOMEM;
  j->m = m;
  memcpy(j->sha, sha, 32);
  j->ensure = ensure;
  if (name) snprintf(j->name, sizeof j->name, "%s", name);
  if (path) snprintf(j->path, sizeof j->path, "%s", path);
  j->w.data = j;
  if (uv_queue_work(m->loop, &j->w, reg_work, reg_after)) { free(j); return ERR_NOMEM; }
  m->jobs++;
  return 0;
}

