/* p2p/session — link session engine; see session.h and docs/protocol.md.
 *
 * Inbound path: TCP bytes -> wire decoder (u16 frames) -> Noise handshake messages, then
 * transport messages -> decrypt (+ rekey rule) -> record decoder (u32 records) -> records.
 * Outbound path: record = u32 len || type || body, cut into <= 65519-byte pieces, each
 * encrypted into one Noise message and queued as u16 len || ciphertext. */
#include "p2p/session.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "p2p/frame.h"
#include "p2p/noise.h"

typedef struct pending_ev {
  session_event ev; /* data points into owned */
  uint8_t *owned;   /* heap copy of the event's bytes, or NULL */
} pending_ev;

struct session {
  int initiator;                        /* 1 if we dialed */
  const ident *me;                      /* borrowed node identity */
  int has_expected;                     /* expected_pk is set */
  uint8_t expected_pk[IDENT_PK_BYTES];  /* the node the host means to reach */
  session_params p;                     /* effective parameters (key pointers cleared) */
  session_state state;                  /* see session_state */
  int err;                              /* error that killed the link */
  noise_hs hs;                          /* handshake (wiped after split) */
  noise_cs tx, rx;                      /* transport cipher states */
  uint64_t tx_msgs, tx_bytes, rx_msgs, rx_bytes; /* since the last rekey, per direction */
  uint64_t tx_rekeys, rx_rekeys;        /* rekeys done */
  frame_dec wire;                       /* u16 Noise messages */
  frame_dec rec;                        /* u32 records inside the plaintext */
  buf out;                              /* queued output bytes */
  uint8_t remote_pk[IDENT_PK_BYTES];    /* peer node key (READY) */
  uint8_t hh[NOISE_HASHLEN_MAX];        /* final handshake hash */
  uint64_t hs_deadline;                 /* handshake must finish by this time */
  uint64_t last_send, last_recv;        /* ms of the last bytes queued / received */
  uint64_t ping_seq;                    /* next PING body */
  pending_ev *evs;                      /* event queue (ring not needed: drained often) */
  size_t ev_head, ev_len, ev_cap;       /* queue window [head, len) and storage */
  uint8_t *ev_last;                     /* data of the event last handed out */
  uint8_t scratch[NOISE_MAX_MSG];       /* one Noise message (plaintext) */
};

void session_default_params(session_params *p) {
  memset(p, 0, sizeof *p);
  p->handshake_timeout_ms = 10000;
  p->keepalive_ms = 15000;
  p->idle_timeout_ms = 60000;
  p->rekey_messages = SESSION_REKEY_MESSAGES;
  p->rekey_bytes = SESSION_REKEY_BYTES;
}

/* ---- events ---------------------------------------------------------------------------- */

static int push_event(session *s, const session_event *ev, const uint8_t *data, size_t len) {
  if (s->ev_head > 0 && s->ev_head == s->ev_len) s->ev_head = s->ev_len = 0;
  if (s->ev_len == s->ev_cap) {
    if (s->ev_head > 0) { /* compact */
      memmove(s->evs, s->evs + s->ev_head, (s->ev_len - s->ev_head) * sizeof *s->evs);
      s->ev_len -= s->ev_head;
      s->ev_head = 0;
    } else {
      size_t ncap = s->ev_cap ? s->ev_cap * 2 : 16;
      pending_ev *n = realloc(s->evs, ncap * sizeof *n);
      if (!n) return ERR_NOMEM;
      s->evs = n;
      s->ev_cap = ncap;
    }
  }
  pending_ev *pe = &s->evs[s->ev_len];
  pe->ev = *ev;
  pe->owned = NULL;
  if (len) {
    pe->owned = malloc(len);
    if (!pe->owned) return ERR_NOMEM;
    memcpy(pe->owned, data, len);
  }
  pe->ev.data = pe->owned;
  pe->ev.len = len;
  s->ev_len++;
  return 0;
}

int session_next_event(session *s, session_event *ev) {
  free(s->ev_last);
  s->ev_last = NULL;
  if (s->ev_head == s->ev_len) return 0;
  pending_ev *pe = &s->evs[s->ev_head++];
  *ev = pe->ev;
  s->ev_last = pe->owned;
  return 1;
}

/* Kills the link: wipes keys, queues the one ERROR event. Returns rc. */
static int fail(session *s, int rc, const char *why) {
  if (s->state == SESSION_FAILED) return s->err;
  s->state = SESSION_FAILED;
  s->err = rc;
  noise_hs_deinit(&s->hs);
  noise_cs_deinit(&s->tx);
  noise_cs_deinit(&s->rx);
  session_event ev = {.type = SESSION_EV_ERROR, .err = rc, .why = why};
  push_event(s, &ev, NULL, 0);
  return rc;
}

/* ---- output ---------------------------------------------------------------------------- */

/* Queues u16 len || msg (a handshake message, in the clear). */
static int queue_wire(session *s, const uint8_t *msg, size_t len) {
  uint8_t hdr[2];
  frame_put_len(hdr, 2, len);
  int rc = buf_reserve(&s->out, len + 2);
  if (!rc) rc = buf_append(&s->out, hdr, 2);
  if (!rc) rc = buf_append(&s->out, msg, len);
  return rc;
}

/* Encrypts s->scratch[0..len) as one transport message onto the output; applies the
 * sender's rekey rule. */
static int send_piece(session *s, size_t len) {
  int rc = buf_reserve(&s->out, 2 + len + NOISE_TAGLEN);
  if (rc) return rc;
  uint8_t *dst = s->out.ptr + s->out.len;
  size_t clen;
  rc = noise_cs_encrypt(&s->tx, NULL, 0, s->scratch, len, dst + 2, len + NOISE_TAGLEN, &clen);
  if (rc) return rc;
  frame_put_len(dst, 2, clen);
  s->out.len += 2 + clen;
  s->out.ptr[s->out.len] = 0;
  s->tx_msgs++;
  s->tx_bytes += clen;
  if (s->tx_msgs >= s->p.rekey_messages || s->tx_bytes >= s->p.rekey_bytes) {
    noise_cs_rekey(&s->tx);
    s->tx_msgs = s->tx_bytes = 0;
    s->tx_rekeys++;
  }
  return 0;
}

/* Queues one record: u32 len || type || body. */
static int send_record(session *s, uint8_t type, const uint8_t *body, size_t len, uint64_t now_ms) {
  uint8_t head[5];
  frame_put_len(head, 4, len + 1);
  head[4] = type;
  size_t hpos = 0, bpos = 0, total = 5 + len;
  while (hpos + bpos < total) {
    size_t fill = 0;
    while (fill < NOISE_MAX_PLAINTEXT && hpos < 5) s->scratch[fill++] = head[hpos++];
    size_t take = len - bpos;
    if (take > NOISE_MAX_PLAINTEXT - fill) take = NOISE_MAX_PLAINTEXT - fill;
    if (take) memcpy(s->scratch + fill, body + bpos, take);
    bpos += take;
    fill += take;
    int rc = send_piece(s, fill);
    if (rc) return rc;
  }
  s->last_send = now_ms;
  return 0;
}

size_t session_output_pending(const session *s) { return s->out.len; }

size_t session_take_output(session *s, buf *out) {
  size_t n = s->out.len;
  buf_deinit(out);
  *out = s->out;
  buf_init(&s->out);
  return n;
}

/* ---- handshake ------------------------------------------------------------------------- */

/* The signed statement: context || role || noise static pub || h || version || caps. */
static size_t sig_message(uint8_t *m, char role, const uint8_t noise_pub[32], const uint8_t h[64],
                          const uint8_t vc[6]) {
  size_t n = sizeof SESSION_PROLOGUE - 1;
  memcpy(m, SESSION_PROLOGUE, n);
  m[n++] = (uint8_t)role;
  memcpy(m + n, noise_pub, 32);
  n += 32;
  memcpy(m + n, h, 64);
  n += 64;
  memcpy(m + n, vc, 6);
  return n + 6;
}

/* Writes our identity payload and the handshake message carrying it. */
static int write_identity(session *s) {
  uint8_t pl[SESSION_ID_PAYLOAD_LEN], m[128], msg[256];
  const uint8_t *h;
  noise_hs_handshake_hash(&s->hs, &h);
  pl[0] = SESSION_VERSION >> 8;
  pl[1] = SESSION_VERSION & 0xff;
  frame_put_len(pl + 2, 4, s->p.caps);
  memcpy(pl + 6, s->me->pk, 32);
  size_t mlen = sig_message(m, s->initiator ? 'I' : 'R', noise_hs_local_static(&s->hs), h, pl);
  ident_sign(s->me, m, mlen, pl + 38);
  size_t n;
  int rc = noise_hs_write_message(&s->hs, pl, sizeof pl, msg, sizeof msg, &n);
  if (!rc) rc = queue_wire(s, msg, n);
  return rc;
}

/* Checks the peer's identity payload against the h it was written under. */
static int check_identity(session *s, const uint8_t *pl, size_t len, const uint8_t h[64], session_event *ready,
                          const char **why) {
  uint8_t m[128];
  *why = "malformed identity payload";
  if (len < SESSION_ID_PAYLOAD_LEN) return ERR_FORMAT;
  uint16_t ver = (uint16_t)(pl[0] << 8 | pl[1]);
  if (ver < 1) {
    *why = "unsupported protocol version";
    return ERR_UNSUPPORTED;
  }
  size_t mlen = sig_message(m, s->initiator ? 'R' : 'I', noise_hs_remote_static(&s->hs), h, pl);
  if (ident_verify(pl + 6, m, mlen, pl + 38)) {
    *why = "identity signature invalid";
    return ERR_CRYPTO;
  }
  if (s->has_expected && sodium_memcmp(pl + 6, s->expected_pk, 32)) {
    *why = "remote node id differs from the expected one";
    return ERR_CRYPTO;
  }
  memset(ready, 0, sizeof *ready);
  ready->type = SESSION_EV_READY;
  memcpy(ready->remote_pk, pl + 6, 32);
  ready->remote_version = ver;
  ready->remote_caps = (uint32_t)pl[2] << 24 | (uint32_t)pl[3] << 16 | (uint32_t)pl[4] << 8 | pl[5];
  return 0;
}

static int finish_handshake(session *s, const session_event *ready, uint64_t now_ms) {
  const uint8_t *h;
  noise_hs_handshake_hash(&s->hs, &h);
  memcpy(s->hh, h, 64);
  int rc = noise_hs_split(&s->hs, &s->tx, &s->rx);
  noise_hs_deinit(&s->hs);
  if (rc) return rc;
  memcpy(s->remote_pk, ready->remote_pk, 32);
  s->state = SESSION_OPEN;
  s->last_send = s->last_recv = now_ms;
  return push_event(s, ready, NULL, 0);
}

static int on_handshake_msg(session *s, const uint8_t *msg, size_t len, uint64_t now_ms) {
  uint8_t pl[SESSION_HS_PAYLOAD_MAX], h[64];
  const uint8_t *hp;
  size_t pn;
  const char *why = "handshake failed";
  if (noise_hs_my_turn(&s->hs)) return fail(s, ERR_FORMAT, "unexpected handshake message");
  noise_hs_handshake_hash(&s->hs, &hp);
  memcpy(h, hp, 64);
  int idx = s->hs.msg;
  int rc = noise_hs_read_message(&s->hs, msg, len, pl, sizeof pl, &pn);
  if (rc) return fail(s, rc, "bad handshake message");
  if (idx == 0) { /* responder got msg 1; its payload is ignored in version 1 */
    rc = write_identity(s);
    return rc ? fail(s, rc, "handshake write failed") : 0;
  }
  session_event ready;
  rc = check_identity(s, pl, pn, h, &ready, &why);
  if (rc) return fail(s, rc, why);
  if (idx == 1) { /* initiator got msg 2: answer with msg 3 */
    rc = write_identity(s);
    if (rc) return fail(s, rc, "handshake write failed");
  }
  rc = finish_handshake(s, &ready, now_ms);
  return rc ? fail(s, rc, "handshake split failed") : 0;
}

/* ---- records --------------------------------------------------------------------------- */

static int on_record(session *s, const uint8_t *r, size_t len, uint64_t now_ms) {
  session_event ev = {0};
  switch (r[0]) {
  case SESSION_REC_APP:
    if (s->state != SESSION_OPEN) return 0; /* we are closing: drop */
    ev.type = SESSION_EV_MESSAGE;
    return push_event(s, &ev, r + 1, len - 1);
  case SESSION_REC_PING:
    if (s->state != SESSION_OPEN) return 0;
    if (len != 9) return fail(s, ERR_FORMAT, "bad ping");
    return send_record(s, SESSION_REC_PONG, r + 1, 8, now_ms);
  case SESSION_REC_PONG:
    return len == 9 ? 0 : fail(s, ERR_FORMAT, "bad pong");
  case SESSION_REC_CLOSE: {
    if (len < 3 || len - 3 > SESSION_CLOSE_REASON_MAX) return fail(s, ERR_FORMAT, "bad close");
    ev.type = SESSION_EV_CLOSED;
    ev.code = (uint16_t)(r[1] << 8 | r[2]);
    s->state = SESSION_CLOSED;
    noise_cs_deinit(&s->tx);
    noise_cs_deinit(&s->rx);
    return push_event(s, &ev, r + 3, len - 3);
  }
  default:
    return 0; /* unknown record types are ignored (forward compatibility) */
  }
}

static int on_transport_msg(session *s, const uint8_t *msg, size_t len, uint64_t now_ms) {
  size_t pn;
  int rc = noise_cs_decrypt(&s->rx, NULL, 0, msg, len, s->scratch, sizeof s->scratch, &pn);
  if (rc) return fail(s, rc, rc == ERR_CRYPTO ? "decryption failed (tampered, replayed or reordered)" : "bad transport message");
  s->rx_msgs++;
  s->rx_bytes += len;
  if (s->rx_msgs >= s->p.rekey_messages || s->rx_bytes >= s->p.rekey_bytes) {
    noise_cs_rekey(&s->rx);
    s->rx_msgs = s->rx_bytes = 0;
    s->rx_rekeys++;
  }
  const uint8_t *p = s->scratch;
  while (pn > 0 && (s->state == SESSION_OPEN || s->state == SESSION_CLOSING)) {
    size_t used, rlen;
    const uint8_t *r;
    rc = frame_dec_feed(&s->rec, p, pn, &used, &r, &rlen);
    if (rc < 0) return fail(s, rc, "bad record framing");
    p += used;
    pn -= used;
    if (rc == 1) {
      rc = on_record(s, r, rlen, now_ms);
      if (rc) return s->state == SESSION_FAILED ? rc : fail(s, rc, "record handling failed");
    }
  }
  return 0;
}

int session_feed(session *s, const uint8_t *data, size_t len, uint64_t now_ms) {
  if (s->state == SESSION_FAILED) return s->err;
  if (len) s->last_recv = now_ms;
  while (len > 0) {
    if (s->state == SESSION_CLOSED) return 0; /* nothing may follow CLOSE; ignore */
    size_t used, mlen;
    const uint8_t *m;
    int rc = frame_dec_feed(&s->wire, data, len, &used, &m, &mlen);
    if (rc < 0) return fail(s, rc, "bad wire framing");
    data += used;
    len -= used;
    if (rc == 0) break;
    rc = s->state == SESSION_HANDSHAKE ? on_handshake_msg(s, m, mlen, now_ms) : on_transport_msg(s, m, mlen, now_ms);
    if (rc) return s->state == SESSION_FAILED ? s->err : fail(s, rc, "out of memory");
  }
  return 0;
}

/* ---- public ---------------------------------------------------------------------------- */

int session_new(int initiator, const ident *me, const uint8_t *expected_pk, const session_params *params,
                uint64_t now_ms, session **out) {
  *out = NULL;
  if (sodium_init() < 0) return ERR_CRYPTO;
  session *s = calloc(1, sizeof *s);
  if (!s) return ERR_NOMEM;
  int rc;
  uint8_t sp[32], spub[32];
  s->initiator = initiator ? 1 : 0;
  s->me = me;
  if (params)
    s->p = *params;
  else
    session_default_params(&s->p);
  if (!s->p.rekey_messages) s->p.rekey_messages = SESSION_REKEY_MESSAGES;
  if (!s->p.rekey_bytes) s->p.rekey_bytes = SESSION_REKEY_BYTES;
  if (expected_pk) {
    s->has_expected = 1;
    memcpy(s->expected_pk, expected_pk, 32);
  }
  if (s->p.static_priv)
    memcpy(sp, s->p.static_priv, 32);
  else
    crypto_box_keypair(spub, sp);
  rc = noise_hs_init(&s->hs, s->initiator, sp, (const uint8_t *)SESSION_PROLOGUE, sizeof SESSION_PROLOGUE - 1);
  sodium_memzero(sp, sizeof sp);
  if (rc) goto fail;
  if (s->p.ephemeral_priv) noise_hs_set_ephemeral(&s->hs, s->p.ephemeral_priv);
  s->p.static_priv = s->p.ephemeral_priv = NULL;
  if ((rc = frame_dec_init(&s->wire, FRAME_WIRE_PREFIX, NOISE_TAGLEN, FRAME_WIRE_MAX))) goto fail;
  if ((rc = frame_dec_init(&s->rec, FRAME_RECORD_PREFIX, 1, FRAME_MAX_RECORD))) goto fail;
  buf_init(&s->out);
  s->hs_deadline = now_ms + s->p.handshake_timeout_ms;
  s->last_send = s->last_recv = now_ms;
  if (s->initiator) {
    uint8_t msg[64];
    size_t n;
    rc = noise_hs_write_message(&s->hs, NULL, 0, msg, sizeof msg, &n);
    if (!rc) rc = queue_wire(s, msg, n);
    if (rc) goto fail;
  }
  *out = s;
  return 0;
fail:
  session_free(s);
  return rc;
}

void session_free(session *s) {
  if (!s) return;
  noise_hs_deinit(&s->hs);
  noise_cs_deinit(&s->tx);
  noise_cs_deinit(&s->rx);
  frame_dec_deinit(&s->wire);
  frame_dec_deinit(&s->rec);
  buf_deinit(&s->out);
  for (size_t i = s->ev_head; i < s->ev_len; i++) free(s->evs[i].owned);
  free(s->evs);
  free(s->ev_last);
  sodium_memzero(s->scratch, sizeof s->scratch);
  free(s);
}

int session_send(session *s, const uint8_t *msg, size_t len, uint64_t now_ms) {
  if (s->state != SESSION_OPEN) return s->state == SESSION_FAILED ? s->err : ERR_INVAL;
  if (len == 0 && !msg) msg = (const uint8_t *)"";
  if (len > FRAME_MAX_APP) return ERR_TOOBIG;
  int rc = send_record(s, SESSION_REC_APP, msg, len, now_ms);
  return rc ? fail(s, rc, "send failed") : 0;
}

int session_close(session *s, uint16_t code, const char *reason, uint64_t now_ms) {
  if (s->state != SESSION_OPEN) return s->state == SESSION_FAILED ? s->err : ERR_INVAL;
  uint8_t body[2 + SESSION_CLOSE_REASON_MAX];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > SESSION_CLOSE_REASON_MAX) rl = SESSION_CLOSE_REASON_MAX;
  body[0] = (uint8_t)(code >> 8);
  body[1] = (uint8_t)code;
  if (rl) memcpy(body + 2, reason, rl);
  int rc = send_record(s, SESSION_REC_CLOSE, body, 2 + rl, now_ms);
  if (rc) return fail(s, rc, "send failed");
  s->state = SESSION_CLOSING;
  return 0;
}

int session_tick(session *s, uint64_t now_ms) {
  switch (s->state) {
  case SESSION_HANDSHAKE:
    if (now_ms >= s->hs_deadline) return fail(s, -ETIMEDOUT, "handshake timed out");
    return 0;
  case SESSION_OPEN:
    if (now_ms >= s->last_recv + s->p.idle_timeout_ms) return fail(s, -ETIMEDOUT, "peer silent too long");
    if (now_ms >= s->last_send + s->p.keepalive_ms) {
      uint8_t body[8];
      frame_put_len(body, 4, (size_t)(s->ping_seq >> 32));
      frame_put_len(body + 4, 4, (size_t)(s->ping_seq & 0xffffffffu));
      s->ping_seq++;
      int rc = send_record(s, SESSION_REC_PING, body, 8, now_ms);
      if (rc) return fail(s, rc, "send failed");
    }
    return 0;
  case SESSION_FAILED: return s->err;
  default: return 0;
  }
}

uint64_t session_deadline(const session *s) {
  if (s->state == SESSION_HANDSHAKE) return s->hs_deadline;
  if (s->state != SESSION_OPEN) return UINT64_MAX;
  uint64_t a = s->last_recv + s->p.idle_timeout_ms, b = s->last_send + s->p.keepalive_ms;
  return a < b ? a : b;
}

session_state session_get_state(const session *s) { return s->state; }

const uint8_t *session_remote_pk(const session *s) {
  return s->state != SESSION_HANDSHAKE && s->state != SESSION_FAILED ? s->remote_pk : NULL;
}

const uint8_t *session_handshake_hash(const session *s) {
  return s->state != SESSION_HANDSHAKE && s->state != SESSION_FAILED ? s->hh : NULL;
}

void session_rekey_counts(const session *s, uint64_t *sent_out, uint64_t *recv_out) {
  *sent_out = s->tx_rekeys;
  *recv_out = s->rx_rekeys;
}

int session__inject_plaintext(session *s, const uint8_t *data, size_t len) {
  if (s->state != SESSION_OPEN) return ERR_INVAL;
  while (len) {
    size_t n = len < NOISE_MAX_PLAINTEXT ? len : NOISE_MAX_PLAINTEXT;
    memcpy(s->scratch, data, n);
    int rc = send_piece(s, n);
    if (rc) return rc;
    data += n;
    len -= n;
  }
  return 0;
}
