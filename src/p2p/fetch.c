/* p2p/fetch — HTTP(S) file downloads with resume; see fetch.h. */
#include "p2p/fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

typedef struct dl_state {
  fetch_progress_fn progress;
  void *ud;
  uint64_t offset; /* bytes already on disk when the request started */
} dl_state;

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  dl_state *s = ud;
  (void)ultotal;
  (void)ulnow;
  if (s->progress) s->progress("downloading", s->offset + (uint64_t)dlnow, dltotal ? s->offset + (uint64_t)dltotal : 0, s->ud);
  return 0;
}

int fetch_url(const char *url, const char *part, fetch_progress_fn progress, void *ud, char *err, size_t cap) {
  struct stat st;
  uint64_t have = stat(part, &st) == 0 ? (uint64_t)st.st_size : 0;
  FILE *out = fopen(part, have ? "ab" : "wb");
  if (!out) { snprintf(err, cap, "cannot write %s: %s", part, strerror(errno)); return -errno; }
  CURL *c = curl_easy_init();
  if (!c) { fclose(out); return ERR_NOMEM; }
  dl_state s = {progress, ud, have};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xfer);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);   /* abort a transfer stalled ... */
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);   /* ... for a minute; resume later */
  curl_easy_setopt(c, CURLOPT_USERAGENT, "apiary/0.1");
  if (have) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)have);
  CURLcode r = curl_easy_perform(c);
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(c);
  int rc = 0;
  if (fflush(out) || fsync(fileno(out))) rc = -errno;
  fclose(out);
  if (r == CURLE_RANGE_ERROR || code == 416) {
    /* The server cannot resume from here (or the part is already complete): restart. */
    if (code == 416) return 0;
    unlink(part);
    return fetch_url(url, part, progress, ud, err, cap);
  }
  if (r != CURLE_OK) {
    snprintf(err, cap, "download of %s failed: %s%s; run the same pull again to resume", url, curl_easy_strerror(r),
             code >= 400 ? " (HTTP error)" : "");
    return ERR_NOTFOUND;
  }
  if (rc) snprintf(err, cap, "writing %s failed: %s%s", part, err_str(rc), rc == -ENOSPC ? " (disk full)" : "");
  return rc;
}

