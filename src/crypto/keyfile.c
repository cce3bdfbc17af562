/* crypto/keyfile — secret key files; see keyfile.h. */
#include "crypto/keyfile.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/hex.h"

#define KEYFILE_MAX 4096
#define KEYFILE_MAX_SECRET 64

int keyfile_save(const char *path, const char *comment, const char *kind, const uint8_t *secret,
                 size_t len) {
  if (len > KEYFILE_MAX_SECRET) return ERR_INVAL;
  char text[KEYFILE_MAX];
  char hex[2 * KEYFILE_MAX_SECRET + 1];
  hex_encode(secret, len, hex);
  int n = snprintf(text, sizeof text, "# %s\n%s: %s\n", comment, kind, hex);
  sodium_memzero(hex, sizeof hex);
  int rc = (n < 0 || (size_t)n >= sizeof text)
               ? ERR_TOOBIG
               : fs_write_atomic(path, text, (size_t)n, 0600, FS_NO_OVERWRITE);
  sodium_memzero(text, sizeof text);
  return rc;
}

int keyfile_load(const char *path, const char *kind, uint8_t *secret_out, size_t len) {
  int rc = fs_check_private(path);
  if (rc) return rc;
  buf b;
  buf_init(&b);
  if ((rc = fs_read_file(path, KEYFILE_MAX, &b))) goto done;
  rc = ERR_FORMAT;
  size_t klen = strlen(kind);
  /* Find the "KIND: " line; comment and blank lines are skipped. */
  char *line = (char *)b.ptr, *end = (char *)b.ptr + b.len;
  while (line < end) {
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *le = nl ? nl : end;
    if (le > line && le[-1] == '\r') le--;
    if ((size_t)(le - line) > klen + 2 && !memcmp(line, kind, klen) && line[klen] == ':' &&
        line[klen + 1] == ' ') {
      const char *h = line + klen + 2;
      rc = hex_decode(h, (size_t)(le - h), secret_out, len) ? ERR_FORMAT : 0;
      break;
    }
    line = nl ? nl + 1 : end;
  }
done:
  if (b.ptr) sodium_memzero(b.ptr, b.cap);
  buf_deinit(&b);
  return rc;
}
