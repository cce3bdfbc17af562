/* core/fs — file helpers; see fs.h. */
#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

int fs_join(char *out, size_t cap, const char *a, const char *b) {
  int n = snprintf(out, cap, "%s/%s", a, b);
  return (n < 0 || (size_t)n >= cap) ? ERR_TOOBIG : 0;
}

int fs_read_file(const char *path, size_t max_bytes, buf *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = 0;
  struct stat st;
  if (fstat(fd, &st) < 0) { rc = -errno; goto done; }
  if ((uint64_t)st.st_size > max_bytes) { rc = ERR_TOOBIG; goto done; }
  if ((rc = buf_reserve(out, (size_t)st.st_size))) goto done;
  for (;;) {
    if ((rc = buf_reserve(out, 4096))) goto done;
    ssize_t n = read(fd, out->ptr + out->len, out->cap - out->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      rc = -errno;
      goto done;
    }
    if (n == 0) break;
    out->len += (size_t)n;
    if (out->len > max_bytes) { rc = ERR_TOOBIG; goto done; }
  }
  out->ptr[out->len] = 0;
done:
  close(fd);
  return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int fsync_parent(const char *path) {
  char tmp[4096];
  if (strlen(path) >= sizeof tmp) return ERR_TOOBIG;
  strcpy(tmp, path);
  int dfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  int rc = fsync(dfd) < 0 ? -errno : 0;
  close(dfd);
  return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags) {
  char tmp[4096];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
  if (n < 0 || (size_t)n >= sizeof tmp) return ERR_TOOBIG;
  if ((flags & FS_NO_OVERWRITE) && fs_exists(path) == 1) return ERR_EXISTS;
  int fd = mkostemp(tmp, O_CLOEXEC); /* created 0600 */
  if (fd < 0) return -errno;
  int rc = 0;
  if (fchmod(fd, mode) < 0) { rc = -errno; goto fail; }
  if ((rc = write_all(fd, data, len))) goto fail;
  if (fsync(fd) < 0) { rc = -errno; goto fail; }
  if (close(fd) < 0) { fd = -1; rc = -errno; goto fail; }
  fd = -1;
  if (flags & FS_NO_OVERWRITE) {
    /* link() fails with EEXIST instead of replacing: no window where a racing writer's
     * file is clobbered. */
    if (link(tmp, path) < 0) { rc = errno == EEXIST ? ERR_EXISTS : -errno; goto fail; }
    unlink(tmp);
  } else if (rename(tmp, path) < 0) {
    rc = -errno;
    goto fail;
  }
  return fsync_parent(path);
fail:
  if (fd >= 0) close(fd);
  unlink(tmp);
  return rc;
}

int fs_mkdir_p(const char *dir, mode_t mode) {
  char tmp[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof tmp) return ERR_INVAL;
  memcpy(tmp, dir, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, mode) < 0 && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) < 0 && errno != EEXIST) return -errno;
  return 0;
}

int fs_exists(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0) return 1;
  return errno == ENOENT ? 0 : -errno;
}

int fs_check_private(const char *path) {
  struct stat st;
  if (stat(path, &st) < 0) return -errno;
  return (st.st_mode & 077) ? ERR_PERM : 0;
}
