/* core/fs — small file helpers with explicit modes, size caps and durability.
 *
 * fs_write_atomic writes to a temporary file in the same directory, fsyncs it, then renames
 * (or links, when refusing to overwrite) it into place and fsyncs the directory, so a crash
 * leaves either the old file or the new one, never a torn one. Thread-safe (no shared
 * state). Paths are NUL-terminated; contents travel with their length. */
#ifndef APIARY_CORE_FS_H
#define APIARY_CORE_FS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

enum { FS_NO_OVERWRITE = 1 };

/* Reads the whole file into out (appended). Fails with ERR_TOOBIG above max_bytes,
 * -ENOENT when missing. */
int fs_read_file(const char *path, size_t max_bytes, buf *out);
/* Writes data to path with mode, atomically and durably. With FS_NO_OVERWRITE an existing
 * path gives ERR_EXISTS and is left untouched. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, int flags);
/* Creates dir and missing parents with mode (existing dirs are kept as they are). */
int fs_mkdir_p(const char *dir, mode_t mode);
/* 1 if path exists, 0 if not, negative on other errors. */
int fs_exists(const char *path);
/* Returns ERR_PERM when path is readable or writable by group or others. */
int fs_check_private(const char *path);
/* Joins a and b with '/' into out (cap bytes). ERR_TOOBIG when it does not fit. */
int fs_join(char *out, size_t cap, const char *a, const char *b);

#endif
