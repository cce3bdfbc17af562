/* p2p/noise — Noise handshake and transport cipher states; see noise.h.
 *
 * Written from the Noise spec rev 34 (§5 processing rules, §4 crypto functions, §7
 * patterns). The pattern table lists each message's tokens; the state machine is the
 * spec's WriteMessage / ReadMessage loop over it. */
#include "p2p/noise.h"

#include <sodium.h>
#include <string.h>

#include "core/err.h"

enum { T_END = 0, T_E, T_S, T_EE, T_ES, T_SE, T_SS };

#define MAX_MSGS 3
#define MAX_TOKENS 5

typedef struct pattern_def {
  const char *name;                       /* "XX" */
  int pre_resp_s;                         /* 1: responder's static is a pre-message (IK) */
  int n_msgs;                             /* handshake messages */
  unsigned char tok[MAX_MSGS][MAX_TOKENS]; /* tokens of each message, T_END terminated */
} pattern_def;

static const pattern_def patterns[] = {
  {"NN", 0, 2, {{T_E}, {T_E, T_EE}}},
  {"XX", 0, 3, {{T_E}, {T_E, T_EE, T_S, T_ES}, {T_S, T_SE}}},
  {"IK", 1, 2, {{T_E, T_ES, T_S, T_SS}, {T_E, T_EE, T_SE}}},
};

/* ---- hash, HMAC, HKDF ------------------------------------------------------------------ */

typedef struct hctx {
  int sha256;
  union {
    crypto_generichash_state b2; /* BLAKE2b-512 */
    crypto_hash_sha256_state s2; /* SHA-256 */
  } u;
} hctx;

static void h_init(hctx *c, int sha256) {
  c->sha256 = sha256;
  if (sha256)
    crypto_hash_sha256_init(&c->u.s2);
  else
    crypto_generichash_init(&c->u.b2, NULL, 0, 64);
}

static void h_update(hctx *c, const uint8_t *p, size_t n) {
  if (c->sha256)
    crypto_hash_sha256_update(&c->u.s2, p, n);
  else
    crypto_generichash_update(&c->u.b2, p, n);
}

static void h_final(hctx *c, uint8_t *out) {
  if (c->sha256)
    crypto_hash_sha256_final(&c->u.s2, out);
  else
    crypto_generichash_final(&c->u.b2, out, 64);
  sodium_memzero(c, sizeof *c);
}

/* HMAC-HASH(key[hashlen], a || b) per RFC 2104, BLOCKLEN 128 (BLAKE2b) or 64 (SHA-256). */
static void hmac(int sha256, const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen, uint8_t *out) {
  size_t block = sha256 ? 64 : 128, hl = sha256 ? 32 : 64;
  uint8_t pad[128], inner[64];
  hctx c;
  memset(pad, 0, sizeof pad);
  memcpy(pad, key, keylen); /* keylen <= hashlen < block */
  for (size_t i = 0; i < block; i++) pad[i] ^= 0x36;
  h_init(&c, sha256);
  h_update(&c, pad, block);
  if (alen) h_update(&c, a, alen);
  if (blen) h_update(&c, b, blen);
  h_final(&c, inner);
  for (size_t i = 0; i < block; i++) pad[i] ^= 0x36 ^ 0x5c;
  h_init(&c, sha256);
  h_update(&c, pad, block);
  h_update(&c, inner, hl);
  h_final(&c, out);
  sodium_memzero(pad, sizeof pad);
  sodium_memzero(inner, sizeof inner);
}

/* HKDF(ck, ikm, 2) -> o1, o2 (each hashlen bytes). */
static void hkdf2(int sha256, const uint8_t *ck, const uint8_t *ikm, size_t ikm_len, uint8_t *o1,
                  uint8_t *o2) {
  size_t hl = sha256 ? 32 : 64;
  uint8_t temp[64];
  const uint8_t one = 1, two = 2;
  hmac(sha256, ck, hl, ikm, ikm_len, NULL, 0, temp);
  hmac(sha256, temp, hl, &one, 1, NULL, 0, o1);
  hmac(sha256, temp, hl, o1, hl, &two, 1, o2);
  sodium_memzero(temp, sizeof temp);
}

/* ---- cipher state ---------------------------------------------------------------------- */

static void make_nonce(uint64_t n, uint8_t nonce[12]) {
  memset(nonce, 0, 4);
  for (int i = 0; i < 8; i++) nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

void noise_cs_init(noise_cs *cs, const uint8_t k[static NOISE_KEYLEN]) {
  memcpy(cs->k, k, NOISE_KEYLEN);
  cs->n = 0;
  cs->has_key = 1;
}

void noise_cs_deinit(noise_cs *cs) { sodium_memzero(cs, sizeof *cs); }

int noise_cs_encrypt(noise_cs *cs, const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len) {
  if (!cs->has_key) return ERR_INVAL;
  if (len > NOISE_MAX_PLAINTEXT || cap < len + NOISE_TAGLEN) return ERR_TOOBIG;
  if (cs->n == NOISE_NONCE_MAX) return ERR_RANGE;
  uint8_t nonce[12];
  unsigned long long clen = 0;
  make_nonce(cs->n, nonce);
  if (crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, len, ad, ad_len, NULL, nonce, cs->k))
    return ERR_CRYPTO;
  cs->n++;
  *out_len = (size_t)clen;
  return 0;
}

int noise_cs_decrypt(noise_cs *cs, const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len) {
  if (!cs->has_key) return ERR_INVAL;
  if (len < NOISE_TAGLEN || len > NOISE_MAX_MSG) return ERR_FORMAT;
  if (cap < len - NOISE_TAGLEN) return ERR_TOOBIG;
  if (cs->n == NOISE_NONCE_MAX) return ERR_RANGE;
  uint8_t nonce[12];
  unsigned long long plen = 0;
  make_nonce(cs->n, nonce);
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, ct, len, ad, ad_len, nonce, cs->k))
    return ERR_CRYPTO;
  cs->n++;
  *out_len = (size_t)plen;
  return 0;
}

void noise_cs_rekey(noise_cs *cs) {
  uint8_t zeros[NOISE_KEYLEN] = {0}, out[NOISE_KEYLEN + NOISE_TAGLEN], nonce[12];
  unsigned long long clen;
  make_nonce(NOISE_NONCE_MAX, nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, zeros, sizeof zeros, NULL, 0, NULL, nonce, cs->k);
  memcpy(cs->k, out, NOISE_KEYLEN);
  sodium_memzero(out, sizeof out);
}

/* ---- symmetric state ------------------------------------------------------------------- */

static void mix_hash(noise_hs *hs, const uint8_t *data, size_t len) {
  hctx c;
  h_init(&c, hs->sha256);
  h_update(&c, hs->h, hs->hashlen);
  if (len) h_update(&c, data, len);
  h_final(&c, hs->h);
}

static void mix_key(noise_hs *hs, const uint8_t *ikm, size_t len) {
  uint8_t o2[64];
  hkdf2(hs->sha256, hs->ck, ikm, len, hs->ck, o2);
  noise_cs_init(&hs->cs, o2); /* truncated to 32 */
  sodium_memzero(o2, sizeof o2);
}

/* out gets len (+16 when keyed) bytes; caller checked the room. */
static int encrypt_and_hash(noise_hs *hs, const uint8_t *pt, size_t len, uint8_t *out, size_t *out_len) {
  if (hs->cs.has_key) {
    int rc = noise_cs_encrypt(&hs->cs, hs->h, hs->hashlen, pt, len, out, len + NOISE_TAGLEN, out_len);
    if (rc) return rc;
  } else {
    if (len) memmove(out, pt, len);
    *out_len = len;
  }
  mix_hash(hs, out, *out_len);
  return 0;
}

static int decrypt_and_hash(noise_hs *hs, const uint8_t *ct, size_t len, uint8_t *out, size_t cap,
                            size_t *out_len) {
  uint8_t hprev[NOISE_HASHLEN_MAX];
  memcpy(hprev, hs->h, hs->hashlen);
  mix_hash(hs, ct, len); /* h over the ciphertext; decrypt with the previous h as AD */
  if (hs->cs.has_key) return noise_cs_decrypt(&hs->cs, hprev, hs->hashlen, ct, len, out, cap, out_len);
  if (len > cap) return ERR_TOOBIG;
  if (len) memmove(out, ct, len);
  *out_len = len;
  return 0;
}

static int dh(const uint8_t priv[32], const uint8_t pub[32], uint8_t out[32]) {
  return crypto_scalarmult(out, priv, pub) ? ERR_CRYPTO : 0;
}

/* ---- handshake ------------------------------------------------------------------------- */

static int parse_name(const char *name, int *pattern, int *sha256) {
  static const char pre[] = "Noise_", mid[] = "_25519_ChaChaPoly_";
  size_t n = strlen(name);
  if (n < sizeof pre - 1 + 2 + sizeof mid - 1 || memcmp(name, pre, sizeof pre - 1)) return ERR_UNSUPPORTED;
  const char *p = name + sizeof pre - 1;
  int found = -1;
  for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
    if (!memcmp(p, patterns[i].name, 2)) found = (int)i;
  if (found < 0) return ERR_UNSUPPORTED;
  p += 2;
  if (memcmp(p, mid, sizeof mid - 1)) return ERR_UNSUPPORTED;
  p += sizeof mid - 1;
  if (!strcmp(p, "BLAKE2b"))
    *sha256 = 0;
  else if (!strcmp(p, "SHA256"))
    *sha256 = 1;
  else
    return ERR_UNSUPPORTED;
  *pattern = found;
  return 0;
}

int noise_hs_init_name(noise_hs *hs, const char *protocol_name, int initiator, const uint8_t *s_priv,
                       const uint8_t *rs_pub, const uint8_t *prologue, size_t prologue_len) {
  memset(hs, 0, sizeof *hs);
  if (sodium_init() < 0) return ERR_CRYPTO;
  int rc = parse_name(protocol_name, &hs->pattern, &hs->sha256);
  if (rc) return rc;
  const pattern_def *pd = &patterns[hs->pattern];
  int needs_s = pd->pre_resp_s || hs->pattern == 1;
  if (needs_s && !s_priv) return ERR_INVAL;
  if (pd->pre_resp_s && initiator && !rs_pub) return ERR_INVAL;
  hs->hashlen = hs->sha256 ? 32 : 64;
  hs->initiator = initiator ? 1 : 0;
  size_t n = strlen(protocol_name);
  if (n <= hs->hashlen) {
    memcpy(hs->h, protocol_name, n);
  } else {
    hctx c;
    h_init(&c, hs->sha256);
    h_update(&c, (const uint8_t *)protocol_name, n);
    h_final(&c, hs->h);
  }
  memcpy(hs->ck, hs->h, hs->hashlen);
  mix_hash(hs, prologue, prologue_len);
  if (s_priv) {
    memcpy(hs->s, s_priv, NOISE_DHLEN);
    crypto_scalarmult_base(hs->s_pub, hs->s);
    hs->has_s = 1;
  }
  if (pd->pre_resp_s) {
    if (initiator) {
      memcpy(hs->rs, rs_pub, NOISE_DHLEN);
      hs->has_rs = 1;
      mix_hash(hs, hs->rs, NOISE_DHLEN);
    } else {
      mix_hash(hs, hs->s_pub, NOISE_DHLEN);
    }
  }
  return 0;
}

int noise_hs_init(noise_hs *hs, int initiator, const uint8_t s_priv[static NOISE_DHLEN],
                  const uint8_t *prologue, size_t prologue_len) {
  return noise_hs_init_name(hs, NOISE_PROTOCOL_NAME, initiator, s_priv, NULL, prologue, prologue_len);
}

int noise_hs_set_ephemeral(noise_hs *hs, const uint8_t e_priv[static NOISE_DHLEN]) {
  if (hs->msg != 0 && hs->has_e) return ERR_INVAL;
  memcpy(hs->e, e_priv, NOISE_DHLEN);
  crypto_scalarmult_base(hs->e_pub, hs->e);
  hs->has_e = 1;
  return 0;
}

void noise_hs_deinit(noise_hs *hs) { sodium_memzero(hs, sizeof *hs); }

int noise_hs_done(const noise_hs *hs) { return hs->msg >= patterns[hs->pattern].n_msgs; }

int noise_hs_my_turn(const noise_hs *hs) {
  return !hs->failed && !noise_hs_done(hs) && ((hs->msg % 2 == 0) == (hs->initiator == 1));
}

/* DH for a token, from this side's point of view. */
static int token_dh(noise_hs *hs, int t) {
  uint8_t out[32];
  const uint8_t *priv, *pub;
  int have;
  switch (t) {
  case T_EE: priv = hs->e, pub = hs->re, have = hs->has_e && hs->has_re; break;
  case T_ES:
    if (hs->initiator)
      priv = hs->e, pub = hs->rs, have = hs->has_e && hs->has_rs;
    else
      priv = hs->s, pub = hs->re, have = hs->has_s && hs->has_re;
    break;
  case T_SE:
    if (hs->initiator)
      priv = hs->s, pub = hs->re, have = hs->has_s && hs->has_re;
    else
      priv = hs->e, pub = hs->rs, have = hs->has_e && hs->has_rs;
    break;
  default: priv = hs->s, pub = hs->rs, have = hs->has_s && hs->has_rs; break;
  }
  if (!have) return ERR_INVAL;
  int rc = dh(priv, pub, out);
  if (!rc) mix_key(hs, out, sizeof out);
  sodium_memzero(out, sizeof out);
  return rc;
}

static int fail(noise_hs *hs, int rc) {
  hs->failed = 1;
  sodium_memzero(hs->s, sizeof hs->s);
  sodium_memzero(hs->e, sizeof hs->e);
  sodium_memzero(hs->ck, sizeof hs->ck);
  noise_cs_deinit(&hs->cs);
  return rc;
}

int noise_hs_write_message(noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out,
                           size_t cap, size_t *out_len) {
  if (!noise_hs_my_turn(hs)) return ERR_INVAL;
  const unsigned char *tok = patterns[hs->pattern].tok[hs->msg];
  size_t pos = 0, n;
  if (cap > NOISE_MAX_MSG) cap = NOISE_MAX_MSG;
  for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
    int rc = 0;
    switch (tok[i]) {
    case T_E:
      if (!hs->has_e) {
        crypto_box_keypair(hs->e_pub, hs->e); /* X25519 key pair */
        hs->has_e = 1;
      }
      if (cap - pos < NOISE_DHLEN) return ERR_TOOBIG;
      memcpy(out + pos, hs->e_pub, NOISE_DHLEN);
      mix_hash(hs, hs->e_pub, NOISE_DHLEN);
      pos += NOISE_DHLEN;
      break;
    case T_S:
      if (!hs->has_s) return fail(hs, ERR_INVAL);
      if (cap - pos < NOISE_DHLEN + (hs->cs.has_key ? NOISE_TAGLEN : 0)) return ERR_TOOBIG;
      rc = encrypt_and_hash(hs, hs->s_pub, NOISE_DHLEN, out + pos, &n);
      pos += n;
      break;
    default: rc = token_dh(hs, tok[i]); break;
    }
    if (rc) return fail(hs, rc);
  }
  if (cap - pos < payload_len + (hs->cs.has_key ? NOISE_TAGLEN : 0)) return fail(hs, ERR_TOOBIG);
  int rc = encrypt_and_hash(hs, payload, payload_len, out + pos, &n);
  if (rc) return fail(hs, rc);
  *out_len = pos + n;
  hs->msg++;
  return 0;
}

int noise_hs_read_message(noise_hs *hs, const uint8_t *msg, size_t msg_len, uint8_t *payload_out,
                          size_t cap, size_t *payload_len) {
  if (hs->failed || noise_hs_done(hs) || noise_hs_my_turn(hs)) return ERR_INVAL;
  if (msg_len > NOISE_MAX_MSG) return fail(hs, ERR_FORMAT);
  const unsigned char *tok = patterns[hs->pattern].tok[hs->msg];
  size_t pos = 0, n;
  for (int i = 0; i < MAX_TOKENS && tok[i] != T_END; i++) {
    int rc = 0;
    switch (tok[i]) {
    case T_E:
      if (msg_len - pos < NOISE_DHLEN) return fail(hs, ERR_FORMAT);
      memcpy(hs->re, msg + pos, NOISE_DHLEN);
      hs->has_re = 1;
      mix_hash(hs, hs->re, NOISE_DHLEN);
      pos += NOISE_DHLEN;
      break;
    case T_S: {
      size_t need = NOISE_DHLEN + (hs->cs.has_key ? NOISE_TAGLEN : 0);
      if (msg_len - pos < need) return fail(hs, ERR_FORMAT);
      rc = decrypt_and_hash(hs, msg + pos, need, hs->rs, NOISE_DHLEN, &n);
      if (!rc) hs->has_rs = 1;
      pos += need;
      break;
    }
    default: rc = token_dh(hs, tok[i]); break;
    }
    if (rc) return fail(hs, rc);
  }
  size_t rest = msg_len - pos;
  if (hs->cs.has_key && rest < NOISE_TAGLEN) return fail(hs, ERR_FORMAT);
  if (rest - (hs->cs.has_key ? NOISE_TAGLEN : 0) > cap) return fail(hs, ERR_TOOBIG);
  int rc = decrypt_and_hash(hs, msg + pos, rest, payload_out, cap, payload_len);
  if (rc) return fail(hs, rc);
  hs->msg++;
  return 0;
}

int noise_hs_split(noise_hs *hs, noise_cs *send_out, noise_cs *recv_out) {
  if (hs->failed || !noise_hs_done(hs)) return ERR_INVAL;
  uint8_t k1[64], k2[64];
  hkdf2(hs->sha256, hs->ck, NULL, 0, k1, k2);
  if (hs->initiator) {
    noise_cs_init(send_out, k1);
    noise_cs_init(recv_out, k2);
  } else {
    noise_cs_init(send_out, k2);
    noise_cs_init(recv_out, k1);
  }
  sodium_memzero(k1, sizeof k1);
  sodium_memzero(k2, sizeof k2);
  sodium_memzero(hs->ck, sizeof hs->ck);
  sodium_memzero(hs->e, sizeof hs->e);
  sodium_memzero(hs->s, sizeof hs->s);
  noise_cs_deinit(&hs->cs);
  return 0;
}

const uint8_t *noise_hs_remote_static(const noise_hs *hs) { return hs->has_rs ? hs->rs : NULL; }

const uint8_t *noise_hs_local_static(const noise_hs *hs) { return hs->has_s ? hs->s_pub : NULL; }

size_t noise_hs_handshake_hash(const noise_hs *hs, const uint8_t **h_out) {
  *h_out = hs->h;
  return hs->hashlen;
}
