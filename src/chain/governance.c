/* chain/governance — node registration and Governance bindings; see governance.h. */
#include "chain/governance.h"

#include <stdio.h>
#include <string.h>

#include "chain/abi.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"

#define HINT_TAG "apiary-endpoint-hint-v1"

static int map_rc(int rc) {
  if (rc == ETHRPC_ERR_REVERT) return ERR_REVERTED;
  if (rc == ETHRPC_ERR_RPC || rc == ERR_FORMAT) return ERR_CHAIN;
  return rc;
}

static int tx(ethrpc *rpc, const wallet *w, const uint8_t to[static 20], const char *sig, const abi_value *a, size_t n) {
  buf cd;
  buf_init(&cd);
  int rc = abi_encode_call(&cd, sig, a, n);
  ethrpc_send_opts o = {.confirmations = 1, .timeout_ms = 60000, .poll_ms = 100};
  ethrpc_receipt r;
  memset(&r, 0, sizeof r);
  if (!rc) rc = map_rc(ethrpc_send_tx(rpc, w, to, NULL, cd.ptr, cd.len, &o, NULL, &r));
  ethrpc_receipt_deinit(&r);
  buf_deinit(&cd);
  return rc;
}

/* eth_call returning one word or a tuple: decodes ret as types. */
static int view(ethrpc *rpc, const uint8_t to[static 20], const char *sig, const abi_value *a, size_t n,
                const char *types, buf *ret, abi_value *pool, size_t pool_cap, const abi_value **t) {
  buf cd;
  buf_init(&cd);
  int rc = abi_encode_call(&cd, sig, a, n);
  ethrpc_msg m = {.to = to, .data = cd.ptr, .data_len = cd.len};
  if (!rc) rc = map_rc(ethrpc_call(rpc, &m, NULL, ret));
  buf_deinit(&cd);
  if (!rc && abi_decode(types, ret->ptr, ret->len, pool, pool_cap, t) < 0) rc = ERR_CHAIN;
  return rc;
}

int gov_register_node(ethrpc *rpc, const wallet *w, const uint8_t registry[static 20], uint64_t chain_id,
                      const ident *id, const char *hint) {
  size_t hl = strlen(hint);
  if (hl > 256) return ERR_TOOBIG;
  buf ret;
  buf_init(&ret);
  abi_value pool[4];
  const abi_value *t;
  abi_value a1[] = {abi_address(w->addr)};
  int rc = view(rpc, registry, "bindingNonces(address)", a1, 1, "(uint256)", &ret, pool, 4, &t);
  u256 nonce = rc ? u256_from_u64(0) : t->items[0].num;
  buf_deinit(&ret);
  if (rc) return rc;
  /* owner's EIP-712 NodeBinding */
  char key_hex[67] = "0x", owner_hex[43] = "0x", reg_hex[43] = "0x", nonce_dec[U256_DEC_BUF];
  hex_encode(id->pk, 32, key_hex + 2);
  hex_encode(w->addr, 20, owner_hex + 2);
  hex_encode(registry, 20, reg_hex + 2);
  u256_to_dec(&nonce, nonce_dec);
  json_t *typed = json_pack(
      "{s:{s:[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}], s:[{s:s,s:s},{s:s,s:s},{s:s,s:s}]}, s:s,"
      " s:{s:s, s:s, s:I, s:s}, s:{s:s, s:s, s:s}}",
      "types", "EIP712Domain", "name", "name", "type", "string", "name", "version", "type", "string", "name", "chainId",
      "type", "uint256", "name", "verifyingContract", "type", "address", "NodeBinding", "name", "nodeKey", "type",
      "bytes32", "name", "owner", "type", "address", "name", "nonce", "type", "uint256", "primaryType", "NodeBinding",
      "domain", "name", "apiary-registry", "version", "1", "chainId", (json_int_t)chain_id, "verifyingContract",
      reg_hex, "message", "nodeKey", key_hex, "owner", owner_hex, "nonce", nonce_dec);
  if (!typed) return ERR_NOMEM;
  uint8_t digest[32], owner_sig[65], node_sig[64];
  rc = eip712_digest_json(typed, digest);
  json_decref(typed);
  if (!rc) rc = eip712_sign(w, digest, owner_sig);
  if (rc) return rc;
  /* node's Ed25519 consent over the hint message */
  buf msg;
  buf_init(&msg);
  uint8_t word[32];
  u256 cid = u256_from_u64(chain_id);
  u256_to_be32(&cid, word);
  rc = buf_append(&msg, HINT_TAG, strlen(HINT_TAG));
  if (!rc) rc = buf_append(&msg, word, 32);
  if (!rc) rc = buf_append(&msg, registry, 20);
  if (!rc) rc = buf_append(&msg, id->pk, 32);
  if (!rc) rc = buf_append(&msg, w->addr, 20);
  if (!rc) rc = buf_append(&msg, hint, hl);
  if (!rc) ident_sign(id, msg.ptr, msg.len, node_sig);
  buf_deinit(&msg);
  if (rc) return rc;
  abi_value a[] = {abi_fixed_bytes(id->pk, 32), abi_string(hint), abi_bytes(node_sig, 64), abi_bytes(owner_sig, 65)};
  return tx(rpc, w, registry, "registerNode(bytes32,string,bytes,bytes)", a, 4);
}

int gov_count(ethrpc *rpc, const uint8_t gov[static 20], uint64_t *out) {
  buf ret;
  buf_init(&ret);
  abi_value pool[4];
  const abi_value *t;
  int rc = view(rpc, gov, "proposalCount()", NULL, 0, "(uint256)", &ret, pool, 4, &t);
  if (!rc && abi_get_u64(&t->items[0], out)) rc = ERR_CHAIN;
  buf_deinit(&ret);
  return rc;
}

int gov_propose(ethrpc *rpc, const wallet *w, const uint8_t gov[static 20], int action, const uint8_t target[static 32],
                bool value, uint64_t *id_out) {
  abi_value a[] = {abi_uint((uint64_t)action), abi_fixed_bytes(target, 32), abi_bool(value)};
  int rc = tx(rpc, w, gov, "propose(uint8,bytes32,bool)", a, 3);
  if (!rc) rc = gov_count(rpc, gov, id_out); /* ours unless another proposal landed in between */
  return rc;
}

int gov_vote(ethrpc *rpc, const wallet *w, const uint8_t gov[static 20], uint64_t id, const uint8_t node_key[static 32],
             bool support) {
  abi_value a[] = {abi_uint(id), abi_fixed_bytes(node_key, 32), abi_bool(support)};
  return tx(rpc, w, gov, "vote(uint256,bytes32,bool)", a, 3);
}

int gov_execute(ethrpc *rpc, const wallet *w, const uint8_t gov[static 20], uint64_t id) {
  abi_value a[] = {abi_uint(id)};
  return tx(rpc, w, gov, "execute(uint256)", a, 1);
}

int gov_get(ethrpc *rpc, const uint8_t gov[static 20], uint64_t id, gov_proposal *out) {
  buf ret;
  buf_init(&ret);
  abi_value pool[16];
  const abi_value *t;
  abi_value a[] = {abi_uint(id)};
  int rc = view(rpc, gov, "getProposal(uint256)", a, 1,
                "((bytes32,address,uint8,bool,bool,uint64,uint64,uint64,uint32,uint32))", &ret, pool, 16, &t);
  if (!rc) {
    const abi_value *p = &t->items[0];
    uint64_t v;
    memset(out, 0, sizeof *out);
    out->id = id;
    memcpy(out->target, p->items[0].b, 32);
    memcpy(out->proposer, p->items[1].b, 20);
    abi_get_u64(&p->items[2], &v);
    out->action = (int)v;
    out->value = !u256_is_zero(&p->items[3].num);
    out->executed = !u256_is_zero(&p->items[4].num);
    abi_get_u64(&p->items[5], &out->start_block);
    abi_get_u64(&p->items[6], &out->vote_end);
    abi_get_u64(&p->items[7], &out->eta);
    abi_get_u64(&p->items[8], &v);
    out->for_votes = (uint32_t)v;
    abi_get_u64(&p->items[9], &v);
    out->against_votes = (uint32_t)v;
  }
  buf_reset(&ret);
  abi_value pool2[4];
  if (!rc) rc = view(rpc, gov, "state(uint256)", a, 1, "(uint8)", &ret, pool2, 4, &t);
  if (!rc) {
    uint64_t s;
    abi_get_u64(&t->items[0], &s);
    out->state = (int)s;
  }
  buf_deinit(&ret);
  return rc;
}
