/* p2p/krpc — see krpc.h. Parsing decodes the packet into a bencode node array on the stack
 * (KRPC_MAX_NODES entries), then copies out pointers; encoding writes every present field
 * in one fixed raw-byte key order that the bencode writer double-checks. */
#include "p2p/krpc.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "p2p/bencode.h"
#include "p2p/sha1.h"

static const char *const method_names[] = {
    [KRPC_PING] = "ping", [KRPC_FIND_NODE] = "find_node", [KRPC_GET_PEERS] = "get_peers",
    [KRPC_ANNOUNCE_PEER] = "announce_peer", [KRPC_GET] = "get", [KRPC_PUT] = "put",
};

const char *krpc_method_name(krpc_method m) {
  if (m <= KRPC_NONE || m >= KRPC_UNKNOWN) return NULL;
  return method_names[m];
}

static krpc_bytes bytes_of(const ben_node *n) {
  krpc_bytes b = {n->str, n->len};
  return b;
}

/* Optional fixed-length string: 0 absent, 1 present, ERR_FORMAT wrong type or length. */
static int fixed(const ben_node *d, const char *key, size_t len, const uint8_t **out) {
  const ben_node *v = ben_dict_get(d, key);
  if (!v) return 0;
  if (v->type != BEN_STR || v->len != len) return ERR_FORMAT;
  *out = v->str;
  return 1;
}

static int opt_str(const ben_node *d, const char *key, size_t max, krpc_bytes *out) {
  const ben_node *v = ben_dict_get(d, key);
  if (!v) return 0;
  if (v->type != BEN_STR || v->len > max) return ERR_FORMAT;
  *out = bytes_of(v);
  return 1;
}

static int opt_int(const ben_node *d, const char *key, int64_t *out) {
  const ben_node *v = ben_dict_get(d, key);
  if (!v) return 0;
  if (v->type != BEN_INT) return ERR_FORMAT;
  *out = v->i;
  return 1;
}

/* The fields shared by query arguments and response bodies. */
static int body(const ben_node *b, krpc_msg *m) {
  int rc;
  if (b->type != BEN_DICT) return ERR_FORMAT;
  if ((rc = fixed(b, "id", 20, &m->id)) <= 0) return rc ? rc : ERR_FORMAT;
  if ((rc = fixed(b, "target", 20, &m->target)) < 0) return rc;
  if ((rc = fixed(b, "info_hash", 20, &m->info_hash)) < 0) return rc;
  if ((rc = fixed(b, "k", 32, &m->k)) < 0) return rc;
  if ((rc = fixed(b, "sig", 64, &m->sig)) < 0) return rc;
  if ((rc = opt_int(b, "port", &m->port)) < 0) return rc;
  m->has_port = rc;
  if ((rc = opt_int(b, "implied_port", &m->implied_port)) < 0) return rc;
  m->has_implied_port = rc;
  if ((rc = opt_int(b, "seq", &m->seq)) < 0) return rc;
  m->has_seq = rc;
  if ((rc = opt_int(b, "cas", &m->cas)) < 0) return rc;
  m->has_cas = rc;
  if ((rc = opt_str(b, "token", KRPC_MAX_TOKEN, &m->token)) < 0) return rc;
  if ((rc = opt_str(b, "salt", SIZE_MAX, &m->salt)) < 0) return rc; /* size checked by the DHT (207) */
  if ((rc = opt_str(b, "nodes", SIZE_MAX, &m->nodes)) < 0) return rc;
  if ((rc = opt_str(b, "nodes6", SIZE_MAX, &m->nodes6)) < 0) return rc;
  const ben_node *v = ben_dict_get(b, "v");
  if (v) {
    m->v.p = v->raw;
    m->v.len = v->raw_len;
  }
  const ben_node *vals = ben_dict_get(b, "values");
  if (vals) {
    if (vals->type != BEN_LIST) return ERR_FORMAT;
    const ben_node *it = vals + 1;
    for (uint32_t i = 0; i < vals->count; i++, it = ben_next(it)) {
      if (it->type != BEN_STR || (it->len != KRPC_PEER_LEN && it->len != KRPC_PEER6_LEN)) return ERR_FORMAT;
      if (m->n_values < KRPC_MAX_VALUES) m->values[m->n_values++] = bytes_of(it);
    }
    if (!m->n_values) m->values[0].p = (const uint8_t *)""; /* present but empty */
  }
  return 0;
}

static krpc_method method_of(const krpc_bytes *q) {
  for (int i = KRPC_PING; i < KRPC_UNKNOWN; i++)
    if (strlen(method_names[i]) == q->len && !memcmp(method_names[i], q->p, q->len)) return (krpc_method)i;
  return KRPC_UNKNOWN;
}

/* Required arguments per method. */
static int check_query(const krpc_msg *m) {
  switch (m->method) {
  case KRPC_FIND_NODE: return m->target ? 0 : ERR_FORMAT;
  case KRPC_GET_PEERS: return m->info_hash ? 0 : ERR_FORMAT;
  case KRPC_ANNOUNCE_PEER:
    if (!m->info_hash || !m->token.p) return ERR_FORMAT;
    if (!m->has_port && !(m->has_implied_port && m->implied_port == 1)) return ERR_FORMAT;
    return 0;
  case KRPC_GET: return m->target ? 0 : ERR_FORMAT;
  case KRPC_PUT:
    if (!m->token.p || !m->v.p) return ERR_FORMAT;
    if (m->k || m->sig || m->has_seq) /* mutable: all three */
      if (!m->k || !m->sig || !m->has_seq) return ERR_FORMAT;
    return 0;
  default: return 0;
  }
}

int krpc_parse(const uint8_t *pkt, size_t len, krpc_msg *out) {
  ben_node nodes[KRPC_MAX_NODES];
  memset(out, 0, offsetof(krpc_msg, values));
  out->n_values = 0;
  out->values[0].p = NULL;
  memset(&out->k, 0, sizeof *out - offsetof(krpc_msg, k));
  if (!pkt) return ERR_INVAL;
  if (len > KRPC_MAX_PACKET) return ERR_TOOBIG;
  int rc = ben_decode(pkt, len, nodes, KRPC_MAX_NODES, BEN_LENIENT_ORDER);
  if (rc < 0) return rc;
  const ben_node *top = &nodes[0];
  if (top->type != BEN_DICT) return ERR_FORMAT;
  if ((rc = opt_str(top, "t", KRPC_MAX_TID, &out->t)) <= 0) return rc ? rc : ERR_FORMAT;
  if (out->t.len == 0) return ERR_FORMAT;
  if ((rc = opt_str(top, "v", 64, &out->ver)) < 0) return rc;
  int64_t ro = 0;
  if ((rc = opt_int(top, "ro", &ro)) < 0) return rc;
  out->ro = ro == 1;
  const ben_node *y = ben_dict_get(top, "y");
  if (!y || y->type != BEN_STR || y->len != 1) return ERR_FORMAT;
  switch (y->str[0]) {
  case 'q': {
    out->kind = KRPC_QUERY;
    if ((rc = opt_str(top, "q", 64, &out->q)) <= 0) return rc ? rc : ERR_FORMAT;
    out->method = method_of(&out->q);
    const ben_node *a = ben_dict_get(top, "a");
    if (!a) return ERR_FORMAT;
    if ((rc = body(a, out))) return rc;
    if ((rc = check_query(out))) return rc;
    break;
  }
  case 'r': {
    out->kind = KRPC_RESPONSE;
    const ben_node *r = ben_dict_get(top, "r");
    if (!r) return ERR_FORMAT;
    if ((rc = body(r, out))) return rc;
    break;
  }
  case 'e': {
    out->kind = KRPC_ERROR;
    const ben_node *e = ben_dict_get(top, "e");
    if (!e || e->type != BEN_LIST || e->count < 1) return ERR_FORMAT;
    const ben_node *code = e + 1;
    if (code->type != BEN_INT) return ERR_FORMAT;
    out->err_code = code->i;
    if (e->count >= 2) {
      const ben_node *msg = ben_next(code);
      if (msg->type != BEN_STR) return ERR_FORMAT;
      out->err_msg = bytes_of(msg);
    }
    break;
  }
  default:
    return ERR_FORMAT;
  }
  /* The stored value must itself be strict bencoding (BEP 44: reject with 203). */
  if (out->v.p && ben_decode(out->v.p, out->v.len, nodes, KRPC_MAX_NODES, 0) < 0) return ERR_FORMAT;
  return 0;
}

/* ---- encoding ---- */

static void w_body(ben_w *w, const krpc_msg *m) {
  ben_w_dict(w);
  if (m->has_cas) { ben_w_key(w, "cas"); ben_w_int(w, m->cas); }
  if (m->id) { ben_w_key(w, "id"); ben_w_str(w, m->id, 20); }
  if (m->has_implied_port) { ben_w_key(w, "implied_port"); ben_w_int(w, m->implied_port); }
  if (m->info_hash) { ben_w_key(w, "info_hash"); ben_w_str(w, m->info_hash, 20); }
  if (m->k) { ben_w_key(w, "k"); ben_w_str(w, m->k, 32); }
  if (m->nodes.p) { ben_w_key(w, "nodes"); ben_w_str(w, m->nodes.p, m->nodes.len); }
  if (m->nodes6.p) { ben_w_key(w, "nodes6"); ben_w_str(w, m->nodes6.p, m->nodes6.len); }
  if (m->has_port) { ben_w_key(w, "port"); ben_w_int(w, m->port); }
  if (m->salt.p) { ben_w_key(w, "salt"); ben_w_str(w, m->salt.p, m->salt.len); }
  if (m->has_seq) { ben_w_key(w, "seq"); ben_w_int(w, m->seq); }
  if (m->sig) { ben_w_key(w, "sig"); ben_w_str(w, m->sig, 64); }
  if (m->target) { ben_w_key(w, "target"); ben_w_str(w, m->target, 20); }
  if (m->token.p) { ben_w_key(w, "token"); ben_w_str(w, m->token.p, m->token.len); }
  if (m->v.p) { ben_w_key(w, "v"); ben_w_raw(w, m->v.p, m->v.len); }
  if (m->n_values || m->values[0].p) {
    ben_w_key(w, "values");
    ben_w_list(w);
    for (size_t i = 0; i < m->n_values && i < KRPC_MAX_VALUES; i++) ben_w_str(w, m->values[i].p, m->values[i].len);
    ben_w_end(w);
  }
  ben_w_end(w);
}

int krpc_encode(const krpc_msg *m, uint8_t *out, size_t cap) {
  if (!m || !out || !m->t.p) return ERR_INVAL;
  ben_w w;
  ben_w_init(&w, out, cap);
  ben_w_dict(&w);
  switch (m->kind) {
  case KRPC_QUERY: {
    const char *name = krpc_method_name(m->method);
    if (!m->q.p && !name) return ERR_INVAL;
    ben_w_key(&w, "a");
    w_body(&w, m);
    ben_w_key(&w, "q");
    if (m->q.p) ben_w_str(&w, m->q.p, m->q.len);
    else ben_w_cstr(&w, name);
    break;
  }
  case KRPC_RESPONSE:
    ben_w_key(&w, "r");
    w_body(&w, m);
    break;
  case KRPC_ERROR:
    ben_w_key(&w, "e");
    ben_w_list(&w);
    ben_w_int(&w, m->err_code);
    ben_w_str(&w, m->err_msg.p ? m->err_msg.p : (const uint8_t *)"", m->err_msg.len);
    ben_w_end(&w);
    break;
  default:
    return ERR_INVAL;
  }
  if (m->ro) { ben_w_key(&w, "ro"); ben_w_int(&w, 1); }
  ben_w_key(&w, "t");
  ben_w_str(&w, m->t.p, m->t.len);
  if (m->ver.p) { ben_w_key(&w, "v"); ben_w_str(&w, m->ver.p, m->ver.len); }
  ben_w_key(&w, "y");
  ben_w_str(&w, m->kind == KRPC_QUERY ? "q" : m->kind == KRPC_RESPONSE ? "r" : "e", 1);
  ben_w_end(&w);
  return ben_w_finish(&w);
}

int krpc_encode_error(const uint8_t *t, size_t t_len, int code, const char *msg, uint8_t *out, size_t cap) {
  krpc_msg m;
  memset(&m, 0, sizeof m);
  m.kind = KRPC_ERROR;
  m.t.p = t;
  m.t.len = t_len;
  m.err_code = code;
  m.err_msg.p = (const uint8_t *)msg;
  m.err_msg.len = strlen(msg);
  return krpc_encode(&m, out, cap);
}

int krpc_sig_input(const uint8_t *salt, size_t salt_len, int64_t seq, const uint8_t *v, size_t v_len,
                   uint8_t *out, size_t cap) {
  char head[128];
  int n;
  if (salt_len > KRPC_MAX_SALT) return ERR_TOOBIG;
  if (salt && salt_len) n = snprintf(head, sizeof head, "4:salt%zu:", salt_len);
  else n = 0;
  size_t need = (size_t)n + salt_len + 32 + 4 + v_len;
  if (need > cap) return ERR_TOOBIG;
  size_t off = 0;
  memcpy(out, head, (size_t)n);
  off += (size_t)n;
  if (n) { memcpy(out + off, salt, salt_len); off += salt_len; }
  n = snprintf((char *)out + off, cap - off, "3:seqi%llde1:v", (long long)seq);
  off += (size_t)n;
  if (v_len > cap - off) return ERR_TOOBIG;
  memcpy(out + off, v, v_len);
  return (int)(off + v_len);
}

void krpc_target_mutable(const uint8_t k[static 32], const uint8_t *salt, size_t salt_len, uint8_t out[static 20]) {
  sha1_ctx c;
  sha1_init(&c);
  sha1_update(&c, k, 32);
  if (salt_len) sha1_update(&c, salt, salt_len);
  sha1_final(&c, out);
}

void krpc_target_immutable(const uint8_t *v, size_t v_len, uint8_t out[static 20]) { sha1(v, v_len, out); }
