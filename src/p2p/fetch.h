/* p2p/fetch — downloading a file over HTTP(S) with libcurl: redirects followed, resumed
 * from what a previous attempt left in the part file, stalls aborted after a minute, the
 * data fsynced before it returns. The node's one HTTP client for files (model pulls);
 * the model store (llm/mstore) gets it as a hook, so llm does no network I/O.
 * Blocking; any thread. */
#ifndef APIARY_P2P_FETCH_H
#define APIARY_P2P_FETCH_H

#include <stddef.h>
#include <stdint.h>

/* done/total bytes so far (total 0 when unknown). */
typedef void (*fetch_progress_fn)(const char *what, uint64_t done, uint64_t total, void *ud);

/* Appends url's bytes to part_path (resuming after what is there). 0, or an error with err
 * saying what to do (ERR_NOTFOUND for a failed transfer, -errno for local files). */
int fetch_url(const char *url, const char *part_path, fetch_progress_fn progress, void *ud, char *err, size_t cap);

#endif
