/* crypto/keyfile — secret key files; see keyfile.h. */
#include "crypto/keyfile.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "core/hex.h"

#define KEYFILE_MAX 4096
#define KEYFILE_MAX_SECRET 64
#define KEYFILE_COMMENT_MAX 256
#define KF_SALT crypto_pwhash_SALTBYTES
#define KF_NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define KF_AB crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KF_MEM_CAP ((size_t)1 << 30)
#define KF_OPS_CAP 16ULL

static pthread_mutex_t pass_mu = PTHREAD_MUTEX_INITIALIZER;
static char *pass_buf;   /* sodium_malloc'd, guarded by pass_mu */
static size_t pass_len_; /* bytes in pass_buf */

int keyfile_unlock(const char *pass, size_t len) {
  if (!pass || !len || len > KEYFILE_PASS_MAX) return ERR_INVAL;
  if (sodium_init() < 0) return ERR_CRYPTO;
  char *p = sodium_malloc(len);
  if (!p) return ERR_NOMEM;
  memcpy(p, pass, len);
  pthread_mutex_lock(&pass_mu);
  if (pass_buf) sodium_free(pass_buf);
  pass_buf = p;
  pass_len_ = len;
  pthread_mutex_unlock(&pass_mu);
  return 0;
}

void keyfile_lock(void) {
  pthread_mutex_lock(&pass_mu);
  if (pass_buf) sodium_free(pass_buf);
  pass_buf = NULL;
  pass_len_ = 0;
  pthread_mutex_unlock(&pass_mu);
}

static int write_text(const char *path, const char *comment, const char *kind, const uint8_t *secret, size_t len,
                      const char *pass, size_t pass_len, unsigned long long ops, size_t mem, int flags) {
  if (len > KEYFILE_MAX_SECRET) return ERR_INVAL;
  char text[KEYFILE_MAX];
  char hex[2 * (KEYFILE_MAX_SECRET + KF_AB) + 1];
  int n, rc = 0;
  if (!pass) {
    hex_encode(secret, len, hex);
    n = snprintf(text, sizeof text, "# %s\n%s: %s\n", comment, kind, hex);
  } else {
    if (sodium_init() < 0) return ERR_CRYPTO;
    if (!ops) ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    if (!mem) mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    uint8_t salt[KF_SALT], nonce[KF_NONCE], ct[KEYFILE_MAX_SECRET + KF_AB];
    uint8_t *key = sodium_malloc(32);
    if (!key) return ERR_NOMEM;
    randombytes_buf(salt, sizeof salt);
    randombytes_buf(nonce, sizeof nonce);
    if (crypto_pwhash(key, 32, pass, pass_len, salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13)) rc = ERR_NOMEM;
    else
      crypto_aead_xchacha20poly1305_ietf_encrypt(ct, NULL, secret, len, (const uint8_t *)kind, strlen(kind), NULL,
                                                 nonce, key);
    sodium_free(key);
    if (rc) return rc;
    char sh[2 * KF_SALT + 1], nh[2 * KF_NONCE + 1];
    hex_encode(salt, sizeof salt, sh);
    hex_encode(nonce, sizeof nonce, nh);
    hex_encode(ct, len + KF_AB, hex);
    n = snprintf(text, sizeof text,
                 "# %s\n# Encrypted with the owner's passphrase (Argon2id, XChaCha20-Poly1305; docs/privacy.md).\n"
                 "%s.enc: v1 argon2id13 %llu %zu %s %s %s\n",
                 comment, kind, ops, mem, sh, nh, hex);
  }
  sodium_memzero(hex, sizeof hex);
  rc = (n < 0 || (size_t)n >= sizeof text) ? ERR_TOOBIG : fs_write_atomic(path, text, (size_t)n, 0600, flags);
  sodium_memzero(text, sizeof text);
  return rc;
}

int keyfile_save(const char *path, const char *comment, const char *kind, const uint8_t *secret,
                 size_t len) {
  return write_text(path, comment, kind, secret, len, NULL, 0, 0, 0, FS_NO_OVERWRITE);
}

/* Decrypts the fields after "KIND.enc: " (f, n bytes) with the unlocked passphrase. */
static int open_enc(const char *f, size_t n, const char *kind, uint8_t *secret_out, size_t len) {
  char line[KEYFILE_MAX], sh[2 * KF_SALT + 2], nh[2 * KF_NONCE + 2], ch[2 * (KEYFILE_MAX_SECRET + KF_AB) + 2];
  unsigned long long ops;
  unsigned long long mem;
  if (n >= sizeof line) return ERR_FORMAT;
  memcpy(line, f, n);
  line[n] = 0;
  int rc = ERR_FORMAT;
  uint8_t salt[KF_SALT], nonce[KF_NONCE], ct[KEYFILE_MAX_SECRET + KF_AB];
  if (sscanf(line, "v1 argon2id13 %llu %llu %33s %49s %161s", &ops, &mem, sh, nh, ch) != 5) goto done;
  if (len > KEYFILE_MAX_SECRET || strlen(ch) != 2 * (len + KF_AB) || hex_decode(sh, strlen(sh), salt, KF_SALT) ||
      hex_decode(nh, strlen(nh), nonce, KF_NONCE) || hex_decode(ch, strlen(ch), ct, len + KF_AB))
    goto done;
  if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > KF_OPS_CAP || mem < crypto_pwhash_MEMLIMIT_MIN || mem > KF_MEM_CAP) {
    rc = ERR_RANGE;
    goto done;
  }
  if (sodium_init() < 0) { rc = ERR_CRYPTO; goto done; }
  uint8_t *key = sodium_malloc(32);
  if (!key) { rc = ERR_NOMEM; goto done; }
  pthread_mutex_lock(&pass_mu);
  rc = !pass_buf ? ERR_LOCKED
       : crypto_pwhash(key, 32, pass_buf, pass_len_, salt, ops, (size_t)mem, crypto_pwhash_ALG_ARGON2ID13)
           ? ERR_NOMEM
           : 0;
  pthread_mutex_unlock(&pass_mu);
  if (!rc && crypto_aead_xchacha20poly1305_ietf_decrypt(secret_out, NULL, NULL, ct, len + KF_AB,
                                                        (const uint8_t *)kind, strlen(kind), nonce, key))
    rc = ERR_LOCKED;
  sodium_free(key);
done:
  sodium_memzero(line, sizeof line);
  sodium_memzero(ch, sizeof ch);
  return rc;
}

/* Finds the key line: plain (enc 0) or encrypted (enc 1); comment copies the first comment. */
static int parse(const buf *b, const char *kind, uint8_t *secret_out, size_t len, int *enc_out, char *comment) {
  size_t klen = strlen(kind);
  char *line = (char *)b->ptr, *end = (char *)b->ptr + b->len;
  if (comment) comment[0] = 0;
  while (line < end) {
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *le = nl ? nl : end;
    if (le > line && le[-1] == '\r') le--;
    size_t ll = (size_t)(le - line);
    if (comment && !comment[0] && ll > 2 && line[0] == '#' && line[1] == ' ' && ll - 2 < KEYFILE_COMMENT_MAX) {
      memcpy(comment, line + 2, ll - 2);
      comment[ll - 2] = 0;
    }
    if (ll > klen + 2 && !memcmp(line, kind, klen) && line[klen] == ':' && line[klen + 1] == ' ') {
      const char *h = line + klen + 2;
      if (enc_out) *enc_out = 0;
      if (!secret_out) return 0;
      return hex_decode(h, (size_t)(le - h), secret_out, len) ? ERR_FORMAT : 0;
    }
    if (ll > klen + 6 && !memcmp(line, kind, klen) && !memcmp(line + klen, ".enc: ", 6)) {
      if (enc_out) *enc_out = 1;
      if (!secret_out) return 0;
      return open_enc(line + klen + 6, ll - klen - 6, kind, secret_out, len);
    }
    line = nl ? nl + 1 : end;
  }
  return ERR_FORMAT;
}

static int read_key_file(const char *path, buf *b) {
  buf_init(b);
  int rc = fs_check_private(path);
  return rc ? rc : fs_read_file(path, KEYFILE_MAX, b);
}

static void wipe_buf(buf *b) {
  if (b->ptr) sodium_memzero(b->ptr, b->cap);
  buf_deinit(b);
}

int keyfile_load(const char *path, const char *kind, uint8_t *secret_out, size_t len) {
  buf b;
  int rc = read_key_file(path, &b);
  if (rc == 0) rc = parse(&b, kind, secret_out, len, NULL, NULL);
  wipe_buf(&b);
  if (rc) sodium_memzero(secret_out, len);
  return rc;
}

int keyfile_is_encrypted(const char *path) {
  buf b;
  buf_init(&b);
  int rc = fs_read_file(path, KEYFILE_MAX, &b);
  if (rc == 0) rc = memmem(b.ptr, b.len, ".enc: v1 ", 9) ? 1 : 0; /* any kind */
  wipe_buf(&b);
  return rc;
}

int keyfile_reseal(const char *path, const char *kind, size_t len, const char *pass, size_t pass_len,
                   unsigned long long opslimit, size_t memlimit) {
  if (len > KEYFILE_MAX_SECRET || (pass && (!pass_len || pass_len > KEYFILE_PASS_MAX))) return ERR_INVAL;
  uint8_t secret[KEYFILE_MAX_SECRET];
  char comment[KEYFILE_COMMENT_MAX] = "";
  buf b;
  int rc = read_key_file(path, &b);
  if (rc == 0) rc = parse(&b, kind, secret, len, NULL, comment);
  wipe_buf(&b);
  if (!rc)
    rc = write_text(path, comment[0] ? comment : "apiary secret key. Secret: never share or commit this file.", kind,
                    secret, len, pass, pass_len, opslimit, memlimit, 0);
  sodium_memzero(secret, sizeof secret);
  return rc;
}
