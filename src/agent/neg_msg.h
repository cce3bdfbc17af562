/* agent/neg_msg — the negotiation wire messages and their JSON codec.
 *
 *   {"type": "offer"|"counter"|"accept"|"reject"|"withdraw",
 *    "session": "<32 hex>", "round": N,
 *    "bid": {"<issue>": "<value>" | {"sealed": "<base64>"}, ...},   (offer, counter, accept)
 *    "expiry": <ms since epoch>, "deadline": <rounds>,                (offer, counter)
 *    "argument": "<human-readable text>"}                             (optional)
 *
 * offer opens a session (round 0); counter answers an offer with another (and so declines
 * it); accept takes the counterpart's last offer, repeating its round and bid; reject ends
 * the session without a deal (deadline, nothing acceptable); withdraw walks away (owner,
 * expiry, timeout). Rounds count messages from 0 and alternate sides. A bid names every
 * issue once; a confidential value travels sealed (agent/neg_seal).
 * The decoder is for untrusted bytes: caps on size (NEG_MAX_MSG), argument length
 * (NEG_MAX_ARG, no NUL), rounds (NEG_MAX_ROUNDS), unknown keys rejected. This is the payload
 * of the JSON-RPC method neg.message. Pure; thread-safe. */
#ifndef APIARY_AGENT_NEG_MSG_H
#define APIARY_AGENT_NEG_MSG_H

#include <jansson.h>

#include "agent/neg_scenario.h"
#include "agent/neg_seal.h"

#define NEG_MAX_MSG 65536
#define NEG_MAX_ARG 2048

typedef enum neg_msg_type {
  NEG_MSG_OFFER = 1,
  NEG_MSG_COUNTER,
  NEG_MSG_ACCEPT,
  NEG_MSG_REJECT,
  NEG_MSG_WITHDRAW,
} neg_msg_type;

typedef struct neg_msg {
  neg_msg_type type;
  uint8_t session[NEG_SESSION_BYTES];
  int round;
  int has_bid;
  neg_bid bid;                     /* values in clear (after opening sealed ones) */
  uint32_t sealed;                 /* decoded: bit i set when issue i came sealed */
  uint64_t expiry_ms;              /* offer/counter: valid until; 0 otherwise */
  int deadline;                    /* offer/counter: the sender stops at this round (0: not said) */
  char argument[NEG_MAX_ARG + 1];  /* NUL-terminated; "" when none */
} neg_msg;

const char *neg_msg_type_name(neg_msg_type t);

/* Encodes m (borrowed). Issues in seal_mask are sealed to peer_xpk (required when the mask
 * is not 0). Returns owned JSON, or NULL (allocation or crypto failure). */
json_t *neg_msg_encode(const neg_domain *d, const neg_msg *m, uint32_t seal_mask, const uint8_t *peer_xpk);
/* Decodes j (borrowed). Sealed values are opened with keys (NULL: a sealed value is an
 * error). Returns 0 or ERR_FORMAT / ERR_TOOBIG / ERR_CRYPTO with a message in err. */
int neg_msg_decode(const neg_domain *d, const json_t *j, const neg_seal_keys *keys, neg_msg *out, char *err, size_t cap);
/* The same from text (at most NEG_MAX_MSG bytes). */
int neg_msg_parse(const neg_domain *d, const char *text, size_t len, const neg_seal_keys *keys, neg_msg *out, char *err,
                  size_t cap);

#endif
