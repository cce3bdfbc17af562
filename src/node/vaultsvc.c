/* node/vaultsvc — vault envelopes over the links; see vaultsvc.h. */
#include "node/vaultsvc.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/fs.h"
#include "core/hex.h"
#include "core/log.h"
#include "node/netsvc.h"
#include "p2p/rpc.h"
#include "privacy/share.h"

#define B64_MAX (sodium_base64_ENCODED_LEN(SHARE_ENVELOPE_MAX, sodium_base64_VARIANT_ORIGINAL))
#define SEND_TIMEOUT_MS 20000

struct vaultsvc {
  netsvc *ns;                       /* borrowed */
  uint8_t me[IDENT_PK_BYTES];       /* this node */
  char inbox[HOME_PATH_MAX];        /* HOME/vault-inbox */
};

/* Decodes {env: base64} into a malloc'd envelope; ERR_* on bad input. */
static int decode_env(json_t *params, uint8_t **out, size_t *len_out) {
  const char *b64 = json_string_value(json_object_get(params, "env"));
  if (!b64) return ERR_INVAL;
  size_t bl = strlen(b64);
  if (bl > B64_MAX) return ERR_TOOBIG;
  uint8_t *env = malloc(SHARE_ENVELOPE_MAX);
  if (!env) return ERR_NOMEM;
  size_t n = 0;
  if (sodium_base642bin(env, SHARE_ENVELOPE_MAX, b64, bl, NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL)) {
    free(env);
    return ERR_FORMAT;
  }
  *out = env;
  *len_out = n;
  return 0;
}

static int inbox_count(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

static void m_envelope(void *ud, rpc *r, const rpc_request *req) {
  vaultsvc *v = ud;
  uint8_t *env = NULL, to[IDENT_PK_BYTES], h[16];
  size_t len = 0;
  int rc = decode_env(req->params, &env, &len);
  if (!rc) rc = share_parse_header(env, len, to);
  if (rc) {
    rpc_respond_error(r, req->handle, RPC_INVALID_PARAMS, "not a vault envelope", NULL);
    free(env);
    return;
  }
  if (sodium_memcmp(to, v->me, IDENT_PK_BYTES)) {
    rpc_respond_error(r, req->handle, RPC_INVALID_PARAMS, "the envelope is sealed for another node", NULL);
    free(env);
    return;
  }
  char name[64], path[HOME_PATH_MAX + 80];
  crypto_generichash(h, sizeof h, env, len, NULL, 0);
  hex_encode(h, sizeof h, name);
  snprintf(path, sizeof path, "%s/%s.apve", v->inbox, name);
  rc = fs_mkdir_p(v->inbox, 0700);
  if (!rc && inbox_count(v->inbox) >= VAULTSVC_INBOX_MAX) rc = ERR_TOOBIG;
  if (!rc) rc = fs_write_atomic(path, env, len, 0600, 0);
  free(env);
  if (rc) {
    rpc_respond_error(r, req->handle, RPC_INTERNAL_ERROR, rc == ERR_TOOBIG ? "the vault inbox is full" : "cannot store it",
                      NULL);
    return;
  }
  uint8_t from[IDENT_PK_BYTES];
  char fid[IDENT_ID_BUF] = "?";
  if (netsvc_rpc_peer(v->ns, r, from) == 0) ident_id_encode(from, fid);
  log_info("vault: an envelope from %s is in %s (apiary vault import --inbox)", fid, VAULTSVC_INBOX);
  json_t *res = json_pack("{s:b}", "stored", 1);
  rpc_respond(r, req->handle, res, NULL, 0);
  json_decref(res);
}

static void on_sent(void *ud, const rpc_reply *reply) {
  ctl_req *req = ud;
  if (reply->kind == RPC_REPLY_RESULT) ctl_reply_ok(req, json_pack("{s:b}", "delivered", 1));
  else ctl_reply_err(req, CTL_FAILED, "the node did not take it: %s", reply->message ? reply->message : "no answer");
}

static void c_send(ctl_req *req, json_t *params, void *ud) {
  vaultsvc *v = ud;
  const char *to = json_string_value(json_object_get(params, "to"));
  uint8_t pk[IDENT_PK_BYTES], *env = NULL, rto[IDENT_PK_BYTES];
  size_t len = 0;
  if (!to || ident_id_decode(to, strlen(to), pk)) { ctl_reply_err(req, CTL_INVALID_PARAMS, "bad node id"); return; }
  int rc = decode_env(params, &env, &len);
  if (!rc) rc = share_parse_header(env, len, rto);
  free(env);
  if (rc || sodium_memcmp(rto, pk, IDENT_PK_BYTES)) {
    ctl_reply_err(req, CTL_INVALID_PARAMS, "not an envelope sealed for %s", to);
    return;
  }
  json_t *p = json_pack("{s:O}", "env", json_object_get(params, "env"));
  if (netsvc_call(v->ns, pk, "vault.envelope", p, SEND_TIMEOUT_MS, on_sent, req))
    ctl_reply_err(req, CTL_FAILED, "cannot reach %s", to);
}

int vaultsvc_start(node_ctx *c, vaultsvc **out, char *err, size_t cap) {
  vaultsvc *v = calloc(1, sizeof *v);
  if (!v) return ERR_NOMEM;
  v->ns = c->net;
  memcpy(v->me, c->id->pk, IDENT_PK_BYTES);
  int rc = fs_join(v->inbox, sizeof v->inbox, c->paths->dir, VAULTSVC_INBOX);
  rpc_method m = {"vault.envelope", RPC_PARAMS_OBJECT, m_envelope, v};
  if (!rc) rc = netsvc_register(v->ns, &m);
  if (!rc) rc = ctl_server_add(c->ctl, "vault.send", c_send, v);
  if (rc) {
    snprintf(err, cap, "cannot register the vault methods: %s", err_str(rc));
    free(v);
    return rc;
  }
  *out = v;
  return 0;
}

void vaultsvc_free(vaultsvc *v) { free(v); }
