/* privacy/share — sealed envelopes of vault items; see share.h. */
#include "privacy/share.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

static const char sig_tag[] = "apiary-vault-share-v1";

static void be(uint8_t *p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
static uint64_t rd(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

static int sig_check(const uint8_t *body, size_t signed_len, const uint8_t sig[64], const uint8_t pk[32]) {
  uint8_t *m = malloc(sizeof sig_tag - 1 + signed_len);
  if (!m) return ERR_NOMEM;
  memcpy(m, sig_tag, sizeof sig_tag - 1);
  memcpy(m + sizeof sig_tag - 1, body, signed_len);
  int rc = ident_verify(pk, m, sizeof sig_tag - 1 + signed_len, sig);
  free(m);
  return rc;
}

int share_seal(const ident *from, const uint8_t to[static IDENT_PK_BYTES], const char *name, const char *purpose,
               int64_t expires, int64_t now, const uint8_t *value, size_t len, buf *out) {
  size_t nl = name ? strlen(name) : 0, pl = purpose ? strlen(purpose) : 0;
  if (sodium_init() < 0) return ERR_CRYPTO;
  if (!nl || nl > VAULT_NAME_MAX || !pl || pl > GRANT_TEXT_MAX || len > VAULT_VALUE_MAX || expires <= now || now < 0)
    return ERR_INVAL;
  uint8_t xpk[crypto_box_PUBLICKEYBYTES];
  if (crypto_sign_ed25519_pk_to_curve25519(xpk, to)) return ERR_CRYPTO;
  size_t blen = 32 + 32 + 8 + 8 + 2 + nl + 2 + pl + 4 + len + 64;
  size_t mlen = sizeof sig_tag - 1 + blen - 64;
  uint8_t *m = sodium_malloc(mlen + 64); /* tag || body (the value is secret) */
  if (!m) return ERR_NOMEM;
  memcpy(m, sig_tag, sizeof sig_tag - 1);
  uint8_t *b = m + sizeof sig_tag - 1, *p = b;
  memcpy(p, from->pk, 32), p += 32;
  memcpy(p, to, 32), p += 32;
  be(p, (uint64_t)now, 8), p += 8;
  be(p, (uint64_t)expires, 8), p += 8;
  be(p, nl, 2), p += 2;
  memcpy(p, name, nl), p += nl;
  be(p, pl, 2), p += 2;
  memcpy(p, purpose, pl), p += pl;
  be(p, len, 4), p += 4;
  if (len) memcpy(p, value, len), p += len;
  ident_sign(from, m, mlen, p);
  int rc = buf_reserve(out, SHARE_HEADER_BYTES + crypto_box_SEALBYTES + blen);
  if (!rc) {
    uint8_t *o = out->ptr + out->len;
    memcpy(o, SHARE_MAGIC, 4);
    o[4] = SHARE_VERSION;
    memcpy(o + 5, to, 32);
    rc = crypto_box_seal(o + SHARE_HEADER_BYTES, b, blen, xpk) ? ERR_CRYPTO : 0;
    if (!rc) out->len += SHARE_HEADER_BYTES + crypto_box_SEALBYTES + blen;
  }
  sodium_free(m);
  return rc;
}

int share_parse_header(const uint8_t *env, size_t len, uint8_t *recipient_out) {
  if (len > SHARE_ENVELOPE_MAX) return ERR_TOOBIG;
  if (len < SHARE_HEADER_BYTES + crypto_box_SEALBYTES || memcmp(env, SHARE_MAGIC, 4)) return ERR_FORMAT;
  if (env[4] != SHARE_VERSION) return ERR_UNSUPPORTED;
  if (recipient_out) memcpy(recipient_out, env + 5, 32);
  return 0;
}

/* Reads a length-prefixed text (no NUL, no control bytes) into dst (cap max + 1). */
static int take_text(const uint8_t **p, const uint8_t *end, int lenbytes, size_t max, char *dst) {
  if (end - *p < lenbytes) return ERR_FORMAT;
  size_t n = (size_t)rd(*p, lenbytes);
  *p += lenbytes;
  if (n == 0 || n > max) return ERR_FORMAT;
  if ((size_t)(end - *p) < n) return ERR_FORMAT;
  for (size_t i = 0; i < n; i++)
    if ((*p)[i] < 0x20 || (*p)[i] == 0x7f) return ERR_FORMAT;
  memcpy(dst, *p, n);
  dst[n] = 0;
  *p += n;
  return 0;
}

int share_parse_body(const uint8_t *body, size_t len, share_item *out) {
  memset(out, 0, sizeof *out);
  if (len > SHARE_BODY_MAX) return ERR_TOOBIG;
  if (sodium_init() < 0) return ERR_CRYPTO;
  const uint8_t *p = body, *end = body + len;
  if (len < 32 + 32 + 8 + 8 + 64) return ERR_FORMAT;
  memcpy(out->sender, p, 32), p += 32;
  memcpy(out->recipient, p, 32), p += 32;
  uint64_t c = rd(p, 8), e = rd(p + 8, 8);
  p += 16;
  if (c > INT64_MAX || e > INT64_MAX || e <= c) return ERR_FORMAT;
  out->created = (int64_t)c;
  out->expires = (int64_t)e;
  int rc;
  if ((rc = take_text(&p, end, 2, VAULT_NAME_MAX, out->name))) return rc;
  if ((rc = take_text(&p, end, 2, GRANT_TEXT_MAX, out->purpose))) return rc;
  if (end - p < 4) return ERR_FORMAT;
  size_t vl = (size_t)rd(p, 4);
  p += 4;
  if (vl > VAULT_VALUE_MAX) return ERR_TOOBIG;
  if ((size_t)(end - p) != vl + 64) return ERR_FORMAT;
  if ((rc = sig_check(body, (size_t)(p + vl - body), p + vl, out->sender))) return ERR_CRYPTO;
  if (!(out->value = sodium_malloc(vl + 1))) return ERR_NOMEM;
  memcpy(out->value, p, vl);
  out->value[vl] = 0;
  out->value_len = vl;
  return 0;
}

int share_open(const ident *me, const uint8_t *env, size_t len, int64_t now, share_item *out) {
  memset(out, 0, sizeof *out);
  if (sodium_init() < 0) return ERR_CRYPTO;
  uint8_t to[32], xpk[32], xsk[32];
  int rc = share_parse_header(env, len, to);
  if (rc) return rc;
  if (sodium_memcmp(to, me->pk, 32)) return ERR_PERM;
  size_t slen = len - SHARE_HEADER_BYTES, blen = slen - crypto_box_SEALBYTES;
  uint8_t *body = sodium_malloc(blen ? blen : 1);
  if (!body) return ERR_NOMEM;
  rc = ERR_CRYPTO;
  if (crypto_sign_ed25519_pk_to_curve25519(xpk, me->pk) || crypto_sign_ed25519_sk_to_curve25519(xsk, me->sk))
    goto done;
  if (crypto_box_seal_open(body, env + SHARE_HEADER_BYTES, slen, xpk, xsk)) goto done;
  if ((rc = share_parse_body(body, blen, out))) goto done;
  if (sodium_memcmp(out->recipient, me->pk, 32)) rc = ERR_PERM;
  else if (now >= out->expires) rc = ERR_EXPIRED;
done:
  sodium_memzero(xsk, sizeof xsk);
  sodium_free(body);
  if (rc) share_item_deinit(out);
  return rc;
}

void share_item_deinit(share_item *it) {
  if (it->value) sodium_free(it->value);
  sodium_memzero(it, sizeof *it);
}
