/* p2p/noise — the Noise Protocol Framework (rev 34): handshake state machine and transport
 * cipher states for Noise_{XX,IK,NN}_25519_ChaChaPoly_{BLAKE2b,SHA256}. apiary links use
 * Noise_XX_25519_ChaChaPoly_BLAKE2b (NOISE_PROTOCOL_NAME); the other five are here because
 * they cost a table row each and the spec vectors exercise them.
 *
 * How it works: noise_hs walks the pattern's token list one message at a time; each write
 * or read consumes one message. When noise_hs_done() is true, noise_hs_split() yields the two
 * transport cipher states (send, recv) for this side. All primitives come from libsodium:
 * X25519 (crypto_scalarmult), ChaCha20-Poly1305 IETF, BLAKE2b-512 / SHA-256, with HMAC and
 * HKDF built on them exactly as the spec defines (block 128 bytes for BLAKE2b, 64 for SHA-256).
 *
 * No I/O. Randomness: an ephemeral key not set with noise_hs_set_ephemeral() is drawn from
 * libsodium's randombytes when the first e token is written. Secrets are wiped by
 * noise_hs_deinit / noise_cs_deinit and on every error path that leaves the state unusable.
 *
 * Ownership: all structs are caller-owned storage, no heap. Not thread-safe per object. */
#ifndef APIARY_P2P_NOISE_H
#define APIARY_P2P_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define NOISE_DHLEN 32
#define NOISE_KEYLEN 32
#define NOISE_TAGLEN 16
#define NOISE_HASHLEN_MAX 64
#define NOISE_MAX_MSG 65535      /* a Noise message on the wire, bytes */
#define NOISE_MAX_PLAINTEXT (NOISE_MAX_MSG - NOISE_TAGLEN)
#define NOISE_NONCE_MAX UINT64_MAX /* reserved: never used to encrypt a message */
#define NOISE_PROTOCOL_NAME "Noise_XX_25519_ChaChaPoly_BLAKE2b"

/* A CipherState: key k, nonce n. */
typedef struct noise_cs {
  uint8_t k[NOISE_KEYLEN]; /* secret key */
  uint64_t n;              /* next nonce */
  int has_key;             /* 0 before the first MixKey */
} noise_cs;

typedef struct noise_hs {
  int pattern;                     /* internal pattern index */
  int sha256;                      /* 1 = SHA-256, 0 = BLAKE2b */
  size_t hashlen;                  /* 32 or 64 */
  int initiator;                   /* 1 for the initiator */
  int msg;                         /* index of the next handshake message (0-based) */
  int failed;                      /* a read or write failed: the state is dead */
  uint8_t ck[NOISE_HASHLEN_MAX];   /* chaining key */
  uint8_t h[NOISE_HASHLEN_MAX];    /* handshake hash */
  noise_cs cs;                     /* handshake cipher state */
  uint8_t s[NOISE_DHLEN], s_pub[NOISE_DHLEN];   /* local static key pair */
  uint8_t e[NOISE_DHLEN], e_pub[NOISE_DHLEN];   /* local ephemeral key pair */
  uint8_t rs[NOISE_DHLEN], re[NOISE_DHLEN];     /* remote static / ephemeral public keys */
  int has_s, has_e, has_rs, has_re;             /* which of the above are set */
} noise_hs;

/* Initializes a Noise_XX_25519_ChaChaPoly_BLAKE2b handshake. s_priv: our X25519 static
 * private key (borrowed, copied). prologue may be NULL when prologue_len is 0. Returns 0 or
 * ERR_CRYPTO (libsodium init failed or low-order public key). */
int noise_hs_init(noise_hs *hs, int initiator, const uint8_t s_priv[static NOISE_DHLEN],
                  const uint8_t *prologue, size_t prologue_len);
/* Same for any supported protocol name (the 6 above). s_priv may be NULL for NN; rs_pub is
 * the responder's static public key (IK initiator only, else NULL). ERR_UNSUPPORTED for an
 * unknown name, ERR_INVAL when a key the pattern needs is missing. */
int noise_hs_init_name(noise_hs *hs, const char *protocol_name, int initiator, const uint8_t *s_priv,
                       const uint8_t *rs_pub, const uint8_t *prologue, size_t prologue_len);
/* Fixes the ephemeral private key (tests and vectors only). Call before the first write. */
int noise_hs_set_ephemeral(noise_hs *hs, const uint8_t e_priv[static NOISE_DHLEN]);
void noise_hs_deinit(noise_hs *hs);

/* Writes the next handshake message carrying payload into out (cap bytes). Returns 0 and
 * sets *out_len, or ERR_INVAL (not our turn / done / failed), ERR_TOOBIG (message would
 * exceed cap or NOISE_MAX_MSG), ERR_CRYPTO. */
int noise_hs_write_message(noise_hs *hs, const uint8_t *payload, size_t payload_len, uint8_t *out,
                           size_t cap, size_t *out_len_out);
/* Reads the next handshake message; the decrypted payload goes to payload_out (cap bytes).
 * Returns 0, ERR_INVAL (not our turn), ERR_FORMAT (too short / too long), ERR_TOOBIG
 * (payload over cap), ERR_CRYPTO (bad tag, bad key). Any error kills the handshake. */
int noise_hs_read_message(noise_hs *hs, const uint8_t *msg, size_t msg_len, uint8_t *payload_out,
                          size_t cap, size_t *payload_len_out);
/* 1 when every handshake message has been written or read. */
int noise_hs_done(const noise_hs *hs);
/* 1 when the next handshake message is ours to write. */
int noise_hs_my_turn(const noise_hs *hs);
/* Derives the transport cipher states for this side (initiator sends with k1, responder
 * with k2). Only when done; returns 0 or ERR_INVAL. Wipes ck. */
int noise_hs_split(noise_hs *hs, noise_cs *send_out, noise_cs *recv_out);
/* The remote static public key, or NULL if not (yet) known. Borrowed from hs. */
const uint8_t *noise_hs_remote_static(const noise_hs *hs);
/* Our static public key. */
const uint8_t *noise_hs_local_static(const noise_hs *hs);
/* The handshake hash h (current value; final once done). Returns its length (32 or 64). */
size_t noise_hs_handshake_hash(const noise_hs *hs, const uint8_t **h_out);

/* Transport. noise_cs_init sets key k and nonce 0. */
void noise_cs_init(noise_cs *cs, const uint8_t k[static NOISE_KEYLEN]);
void noise_cs_deinit(noise_cs *cs);
/* out = ENCRYPT(k, n++, ad, pt): len + 16 bytes. In-place (out == pt) is allowed. Returns 0,
 * ERR_TOOBIG (len > NOISE_MAX_PLAINTEXT or cap too small), ERR_RANGE (nonce exhausted:
 * n == 2^64-1 — the link must be dropped). */
int noise_cs_encrypt(noise_cs *cs, const uint8_t *ad, size_t ad_len, const uint8_t *pt, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len_out);
/* out = DECRYPT(k, n, ad, ct); n is incremented only on success. ERR_FORMAT (shorter than a
 * tag or over NOISE_MAX_MSG), ERR_TOOBIG (cap), ERR_CRYPTO (tag mismatch), ERR_RANGE. */
int noise_cs_decrypt(noise_cs *cs, const uint8_t *ad, size_t ad_len, const uint8_t *ct, size_t len,
                     uint8_t *out, size_t cap, size_t *out_len_out);
/* REKEY(k): k = first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes). n is unchanged. */
void noise_cs_rekey(noise_cs *cs);

#endif
