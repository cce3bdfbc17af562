/* p2p/session — one authenticated, encrypted link between two apiary nodes, as an engine
 * with no I/O (docs/protocol.md §2-§4).
 *
 * The host owns the socket and the clock. It feeds received TCP bytes with session_feed,
 * takes bytes to write with session_take_output, reads events with session_next_event,
 * sends application messages with session_send, and calls session_tick at (or after)
 * session_deadline(). Every call takes now_ms, a monotonic millisecond clock.
 *
 * Handshake: Noise_XX_25519_ChaChaPoly_BLAKE2b, prologue SESSION_PROLOGUE. The responder's
 * message 2 and the initiator's message 3 carry an identity payload binding the Noise static
 * key to the node's Ed25519 key (version, capabilities, public key, signature). If the host
 * named the node it expects, a different node fails the link before anything else is sent.
 * Then: records (app message, ping, pong, close) in Noise transport messages; both
 * directions rekey deterministically (SESSION_REKEY_*); idle links ping every keepalive_ms
 * and fail after idle_timeout_ms of silence.
 *
 * Events (in order): READY once, then MESSAGE*, then at most one of CLOSED or ERROR.
 *
 * Back-pressure contract: session_output_pending() counts bytes queued inside the engine.
 * The host adds the bytes it has taken but not yet written (e.g. libuv's write queue
 * size). While that sum is above SESSION_HIGH_WATER the host stops reading the socket and
 * stops producing application messages (it must still feed bytes already read, and take
 * output); it resumes below SESSION_LOW_WATER. session_feed consumes all given bytes, so
 * inbound memory is bounded by what the host chose to read plus one partial record.
 *
 * Randomness: the Noise static and ephemeral keys come from libsodium unless params fix
 * them. Ownership: session_new returns an owned handle (session_free); event data is
 * borrowed until the next session_next_event / session_free. One thread per session. */
#ifndef APIARY_P2P_SESSION_H
#define APIARY_P2P_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto/ident.h"

#define SESSION_VERSION 1
#define SESSION_PROLOGUE "apiary-noise-v1"          /* Noise prologue and signature context */
#define SESSION_ID_PAYLOAD_LEN 102                   /* u16 version, u32 caps, pk[32], sig[64] */
#define SESSION_HS_PAYLOAD_MAX 1024                  /* larger handshake payloads are refused */
#define SESSION_REKEY_MESSAGES 65536ull              /* rekey a direction after this many... */
#define SESSION_REKEY_BYTES (1ull << 30)             /* ...or this many ciphertext bytes */
#define SESSION_HIGH_WATER (8u * 1024 * 1024)
#define SESSION_LOW_WATER (2u * 1024 * 1024)
#define SESSION_CLOSE_REASON_MAX 256

/* Record types (first byte of a record). Unknown types are ignored. */
enum {
  SESSION_REC_APP = 0x00,   /* application message (the RPC layer's bytes) */
  SESSION_REC_PING = 0x01,  /* 8 opaque bytes, answered by PONG with the same bytes */
  SESSION_REC_PONG = 0x02,
  SESSION_REC_CLOSE = 0x03, /* u16be code, then a UTF-8 reason (<= 256 bytes) */
};

/* Close codes. */
enum {
  SESSION_CLOSE_NORMAL = 0,
  SESSION_CLOSE_SHUTDOWN = 1, /* the node is stopping */
  SESSION_CLOSE_PROTOCOL = 2, /* the peer broke the protocol */
};

typedef enum session_state {
  SESSION_HANDSHAKE = 0,
  SESSION_OPEN,
  SESSION_CLOSING, /* we sent CLOSE; flush output, then close the socket */
  SESSION_CLOSED,  /* the peer sent CLOSE */
  SESSION_FAILED,
} session_state;

typedef enum session_event_type {
  SESSION_EV_READY = 1, /* handshake done: remote_* are set */
  SESSION_EV_MESSAGE,   /* data/len: one application message */
  SESSION_EV_CLOSED,    /* the peer closed: code, data/len = reason */
  SESSION_EV_ERROR,     /* err, why; the link is dead: close the socket */
} session_event_type;

typedef struct session_event {
  session_event_type type;
  const uint8_t *data;                 /* MESSAGE payload / CLOSED reason (borrowed) */
  size_t len;                          /* bytes at data */
  int err;                             /* ERROR: negative code */
  const char *why;                     /* ERROR: static text */
  uint16_t code;                       /* CLOSED: close code */
  uint8_t remote_pk[IDENT_PK_BYTES];   /* READY: the peer's node key */
  uint16_t remote_version;             /* READY */
  uint32_t remote_caps;                /* READY */
} session_event;

typedef struct session_params {
  uint32_t caps;                   /* our capability bits (docs/protocol.md §3.2) */
  uint64_t handshake_timeout_ms;   /* whole handshake must finish within this (10 s) */
  uint64_t keepalive_ms;           /* send PING after this long without sending (15 s) */
  uint64_t idle_timeout_ms;        /* fail after this long without receiving (60 s) */
  uint64_t rekey_messages;         /* SESSION_REKEY_MESSAGES; both ends must agree (tests only) */
  uint64_t rekey_bytes;            /* SESSION_REKEY_BYTES; same */
  const uint8_t *static_priv;      /* optional 32-byte X25519 static key; NULL = random */
  const uint8_t *ephemeral_priv;   /* optional fixed ephemeral (tests only) */
} session_params;

typedef struct session session;

void session_default_params(session_params *p);

/* Creates a session. me: borrowed for the session's lifetime. expected_pk: the node the
 * host means to reach (NULL accepts any authenticated node; copied). params NULL =
 * defaults. The initiator's first handshake message is queued at once. Returns 0,
 * ERR_NOMEM or ERR_CRYPTO. */
int session_new(int initiator, const ident *me, const uint8_t *expected_pk, const session_params *params,
                uint64_t now_ms, session **out);
void session_free(session *s);

/* Feeds received bytes (all are consumed). Returns 0, or the negative error that killed
 * the link (also queued as an ERROR event). After a failure every call returns it again. */
int session_feed(session *s, const uint8_t *data, size_t len, uint64_t now_ms);
/* Queues one application message (1..FRAME_MAX_APP bytes; borrowed, copied encrypted).
 * Returns 0, ERR_INVAL (not open), ERR_TOOBIG, ERR_NOMEM, ERR_RANGE (nonce exhausted). */
int session_send(session *s, const uint8_t *msg, size_t len, uint64_t now_ms);
/* Queues CLOSE (once); state becomes CLOSING. reason may be NULL. */
int session_close(session *s, uint16_t code, const char *reason, uint64_t now_ms);
/* Runs timers: keepalive PING, idle and handshake timeouts (-ETIMEDOUT). Returns 0 or the
 * error that killed the link. */
int session_tick(session *s, uint64_t now_ms);
/* When session_tick must next be called (absolute ms; UINT64_MAX = never). */
uint64_t session_deadline(const session *s);

/* Bytes queued for sending. */
size_t session_output_pending(const session *s);
/* Moves every queued output byte into *out (deinit'd or empty buf; the caller then owns
 * it and frees it once written). Returns the byte count. */
size_t session_take_output(session *s, buf *out);

/* Pops the next event into *ev_out. Returns 1, or 0 when there is none. */
int session_next_event(session *s, session_event *ev_out);

session_state session_get_state(const session *s);
/* The peer's node key once READY, else NULL. */
const uint8_t *session_remote_pk(const session *s);
/* The final Noise handshake hash (64 bytes) once READY, else NULL: a channel binding. */
const uint8_t *session_handshake_hash(const session *s);
/* Rekeys done so far in each direction (tests, stats). */
void session_rekey_counts(const session *s, uint64_t *sent_out, uint64_t *recv_out);

/* Testing and fuzzing only: encrypts arbitrary bytes as record-stream plaintext (no
 * record framing added), cut into transport messages, as a misbehaving but authenticated
 * peer could. Returns 0 or the error. */
int session__inject_plaintext(session *s, const uint8_t *data, size_t len);

#endif
