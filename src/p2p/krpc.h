/* p2p/krpc — KRPC messages of the Mainline DHT (BEP 5, BEP 44 shapes; BEP 32 nodes6).
 *
 * krpc_parse turns one UDP payload into a krpc_msg whose byte fields point into the
 * packet (zero copy: the packet must outlive the message). It checks shapes, not policy:
 * fixed-size fields (id, target, info_hash, k, sig) must have their exact length or the
 * message is rejected; `nodes` is handed over raw (the DHT checks it is a multiple of 26).
 * krpc_encode writes a krpc_msg back with sorted keys; a parsed message re-encodes to the
 * same bytes when the sender was canonical (the BEP 5 examples round-trip byte for byte).
 * BEP 44 `v` (the stored value) travels as raw bencoding in v, and krpc_parse checks it
 * strictly (sorted keys).
 * Dict key order of the packet itself is tolerated (BEN_LENIENT_ORDER): some clients in the
 * wild send unsorted keys. Pure functions; thread-safe. */
#ifndef APIARY_P2P_KRPC_H
#define APIARY_P2P_KRPC_H

#include <stddef.h>
#include <stdint.h>

#define KRPC_MAX_PACKET 65536  /* hard cap on an incoming payload */
#define KRPC_MAX_NODES 1024    /* bencode nodes per packet */
#define KRPC_MAX_VALUES 128    /* compact peers kept from a `values` list */
#define KRPC_MAX_TID 16        /* transaction id bytes we accept */
#define KRPC_MAX_TOKEN 64
#define KRPC_MAX_SALT 64       /* BEP 44 */
#define KRPC_MAX_VALUE 1000    /* BEP 44: bencode(v) */
#define KRPC_NODE_LEN 26       /* compact IPv4 node: id(20) ip(4) port(2) */
#define KRPC_NODE6_LEN 38      /* compact IPv6 node: id(20) ip(16) port(2) */
#define KRPC_PEER_LEN 6        /* compact IPv4 peer */
#define KRPC_PEER6_LEN 18      /* compact IPv6 peer */

enum { KRPC_ERR_GENERIC = 201, KRPC_ERR_SERVER = 202, KRPC_ERR_PROTOCOL = 203,
       KRPC_ERR_METHOD = 204, KRPC_ERR_TOO_BIG = 205, KRPC_ERR_BAD_SIG = 206,
       KRPC_ERR_SALT_TOO_BIG = 207, KRPC_ERR_CAS = 301, KRPC_ERR_SEQ = 302 };

typedef enum krpc_kind { KRPC_QUERY = 1, KRPC_RESPONSE = 2, KRPC_ERROR = 3 } krpc_kind;

typedef enum krpc_method {
  KRPC_NONE = 0, KRPC_PING, KRPC_FIND_NODE, KRPC_GET_PEERS, KRPC_ANNOUNCE_PEER, KRPC_GET,
  KRPC_PUT, KRPC_UNKNOWN /* a query with a method name we do not know (answer 204) */
} krpc_method;

/* A byte string inside the packet (or any caller memory when building). */
typedef struct krpc_bytes {
  const uint8_t *p;
  size_t len;
} krpc_bytes;

typedef struct krpc_msg {
  krpc_kind kind;
  krpc_bytes t;            /* transaction id (1..KRPC_MAX_TID bytes) */
  krpc_bytes ver;          /* top-level "v": client version, optional */
  int ro;                  /* top-level "ro" = 1: a read-only node (BEP 43), keep out of tables */
  krpc_method method;      /* queries */
  krpc_bytes q;            /* queries: the method name as sent */
  /* arguments ("a") or response ("r") */
  const uint8_t *id;       /* 20 bytes; required in queries and responses */
  const uint8_t *target;   /* find_node, get: 20 bytes */
  const uint8_t *info_hash;/* get_peers, announce_peer: 20 bytes */
  int has_port;
  int64_t port;            /* announce_peer */
  int has_implied_port;
  int64_t implied_port;    /* announce_peer: 1 = use the UDP source port */
  krpc_bytes token;        /* get_peers/get responses, announce_peer/put queries */
  krpc_bytes nodes;        /* raw compact IPv4 nodes */
  krpc_bytes nodes6;       /* raw compact IPv6 nodes */
  size_t n_values;
  krpc_bytes values[KRPC_MAX_VALUES]; /* compact peers (6 or 18 bytes each) */
  /* BEP 44 */
  const uint8_t *k;        /* 32-byte Ed25519 public key */
  const uint8_t *sig;      /* 64-byte signature */
  krpc_bytes salt;
  int has_seq;
  int64_t seq;
  int has_cas;
  int64_t cas;
  krpc_bytes v;            /* raw bencoded value (get response / put query) */
  /* errors */
  int64_t err_code;
  krpc_bytes err_msg;
} krpc_msg;

/* Parses one packet. Borrows pkt (out points into it). Returns 0, ERR_FORMAT for anything
 * malformed (including a `v` that is not strict bencoding: BEP 44 says answer 203), or
 * ERR_TOOBIG over the caps. The size of `v` and `salt` is not checked here: the DHT answers
 * 205 / 207 for those. For queries the
 * method-specific arguments are checked: a known method missing a required argument is
 * ERR_FORMAT (answer 203 when t is known: krpc_parse still fills t when it can). */
int krpc_parse(const uint8_t *pkt, size_t len, krpc_msg *out);

/* Encodes m (kind, t and the fields that are set) with sorted keys into out. Queries take
 * their method name from q if set, else from method. Returns the byte count or
 * ERR_TOOBIG / ERR_INVAL. */
int krpc_encode(const krpc_msg *m, uint8_t *out, size_t cap);

/* Convenience: an error packet {t, y:e, e:[code, msg]}. */
int krpc_encode_error(const uint8_t *t, size_t t_len, int code, const char *msg, uint8_t *out, size_t cap);

/* Method name for a krpc_method ("ping", ...), or NULL. */
const char *krpc_method_name(krpc_method m);

/* BEP 44 signature input: ["4:salt" len ":" salt] "3:seqi" seq "e1:v" v. Returns its
 * length or ERR_TOOBIG when it does not fit cap. */
int krpc_sig_input(const uint8_t *salt, size_t salt_len, int64_t seq, const uint8_t *v, size_t v_len,
                   uint8_t *out, size_t cap);

/* BEP 44 targets. */
void krpc_target_mutable(const uint8_t k[static 32], const uint8_t *salt, size_t salt_len, uint8_t out[static 20]);
void krpc_target_immutable(const uint8_t *v, size_t v_len, uint8_t out[static 20]);

#endif
