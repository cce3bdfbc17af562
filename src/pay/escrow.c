/* pay/escrow — contract bindings over chain/ethrpc; see escrow.h. */
#include "pay/escrow.h"

#include <errno.h>
#include <string.h>

#include "chain/abi.h"
#include "chain/contracts_gen.h"
#include "core/buf.h"
#include "core/err.h"

#define OPENED_EVENT                                                                              \
  "Opened(bytes32 indexed channelId, address indexed client, address indexed provider, address signer," \
  " uint64 expiry, uint256 deposit)"

bool escrow_offline(int rc) { return rc < 0 && rc > -4096 && rc != ETHRPC_ERR_REVERT && rc != ETHRPC_ERR_RPC; }

static int map_rc(int rc) {
  if (rc == ETHRPC_ERR_REVERT) return ERR_REVERTED;
  if (rc == ETHRPC_ERR_RPC || rc == ERR_FORMAT) return ERR_CHAIN;
  return rc;
}

/* Sends one transaction and waits for it to be mined. */
static int send(ethrpc *rpc, const wallet *w, const uint8_t *to, const u256 *value, const buf *data,
                ethrpc_receipt *receipt_out) {
  ethrpc_send_opts o = {.confirmations = 1, .timeout_ms = 60000, .poll_ms = 100};
  ethrpc_receipt r;
  memset(&r, 0, sizeof r);
  int rc = ethrpc_send_tx(rpc, w, to, value, data->ptr, data->len, &o, NULL, &r);
  if (receipt_out) *receipt_out = r;
  else ethrpc_receipt_deinit(&r);
  return map_rc(rc);
}

static int call_tx(ethrpc *rpc, const wallet *w, const uint8_t *to, const u256 *value, const char *sig,
                   const abi_value *args, size_t n, ethrpc_receipt *receipt_out) {
  if (receipt_out) memset(receipt_out, 0, sizeof *receipt_out);
  buf cd;
  buf_init(&cd);
  int rc = abi_encode_call(&cd, sig, args, n);
  if (!rc) rc = send(rpc, w, to, value, &cd, receipt_out);
  buf_deinit(&cd);
  return rc;
}

static int deploy(ethrpc *rpc, const wallet *w, const unsigned char *bin, size_t bin_len, const char *ctor_types,
                  const abi_value *args, size_t n, uint8_t addr_out[static 20], uint64_t *gas) {
  buf code;
  buf_init(&code);
  int rc = buf_append(&code, bin, bin_len);
  if (!rc && ctor_types) rc = abi_encode(&code, ctor_types, args, n);
  ethrpc_receipt r;
  memset(&r, 0, sizeof r);
  if (!rc) rc = send(rpc, w, NULL, NULL, &code, &r);
  if (!rc && !r.has_contract) rc = ERR_CHAIN;
  if (!rc) {
    memcpy(addr_out, r.contract_address, 20);
    *gas += r.gas_used;
  }
  ethrpc_receipt_deinit(&r);
  buf_deinit(&code);
  return rc;
}

int escrow_deploy_all(ethrpc *rpc, const wallet *w, const escrow_gov_params *gp, escrow_deployment *out) {
  memset(out, 0, sizeof *out);
  if (!contracts_escrow_bin_len || !contracts_registry_bin_len || !contracts_governance_bin_len)
    return ERR_UNSUPPORTED;
  if (!gp->quorum) return ERR_INVAL;
  int rc = ethrpc_chain_id(rpc, &out->chain_id);
  if (rc) return map_rc(rc);
  rc = deploy(rpc, w, contracts_escrow_bin, contracts_escrow_bin_len, NULL, NULL, 0, out->escrow, &out->gas_used);
  if (!rc)
    rc = deploy(rpc, w, contracts_registry_bin, contracts_registry_bin_len, NULL, NULL, 0, out->registry,
                &out->gas_used);
  if (!rc) {
    abi_value a[] = {abi_address(out->registry), abi_uint(gp->quorum), abi_uint(gp->voting_period),
                     abi_uint(gp->timelock)};
    rc = deploy(rpc, w, contracts_governance_bin, contracts_governance_bin_len, "(address,uint32,uint64,uint64)", a,
                4, out->governance, &out->gas_used);
  }
  if (!rc) {
    abi_value a[] = {abi_address(out->governance)};
    ethrpc_receipt r;
    rc = call_tx(rpc, w, out->registry, NULL, "setGovernance(address)", a, 1, &r);
    if (!rc) out->gas_used += r.gas_used;
    ethrpc_receipt_deinit(&r);
  }
  return rc;
}

int escrow_open(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t provider[static 20],
                const uint8_t signer[static 20], uint64_t expiry, const u256 *deposit, uint8_t id_out[static 32],
                ethrpc_receipt *receipt_out) {
  abi_value a[] = {abi_address(provider), abi_address(signer), abi_uint(expiry)};
  ethrpc_receipt r;
  memset(&r, 0, sizeof r);
  int rc = call_tx(rpc, w, escrow, deposit, "open(address,address,uint64)", a, 3, &r);
  if (!rc) {
    rc = ERR_CHAIN; /* no Opened event from our contract: not an Escrow */
    for (size_t i = 0; i < r.nlogs; i++) {
      const ethrpc_log *l = &r.logs[i];
      abi_value pool[16];
      const abi_value *t;
      if (memcmp(l->address, escrow, 20)) continue;
      if (abi_decode_log(OPENED_EVENT, (const uint8_t(*)[32])l->topics, l->ntopics, l->data, l->data_len, pool, 16,
                         &t) < 0)
        continue;
      memcpy(id_out, t->items[0].b, 32);
      rc = 0;
      break;
    }
  }
  if (receipt_out) *receipt_out = r;
  else ethrpc_receipt_deinit(&r);
  return rc;
}

int escrow_topup(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                 const u256 *value, ethrpc_receipt *receipt_out) {
  abi_value a[] = {abi_fixed_bytes(id, 32)};
  return call_tx(rpc, w, escrow, value, "topUp(bytes32)", a, 1, receipt_out);
}

int escrow_extend(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                  uint64_t new_expiry, ethrpc_receipt *receipt_out) {
  abi_value a[] = {abi_fixed_bytes(id, 32), abi_uint(new_expiry)};
  return call_tx(rpc, w, escrow, NULL, "extend(bytes32,uint64)", a, 2, receipt_out);
}

int escrow_claim(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                 const u256 *amount, const uint8_t sig[static 65], ethrpc_receipt *receipt_out) {
  abi_value a[] = {abi_fixed_bytes(id, 32), abi_u256(amount), abi_bytes(sig, 65)};
  return call_tx(rpc, w, escrow, NULL, "claim(bytes32,uint256,bytes)", a, 3, receipt_out);
}

#define CLAIM_MANY_MAX 64

int escrow_claim_many(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], size_t n,
                      const uint8_t (*ids)[32], const u256 *amounts, const uint8_t (*sigs)[65],
                      ethrpc_receipt *receipt_out) {
  if (n == 0 || n > CLAIM_MANY_MAX) return ERR_INVAL;
  abi_value vi[CLAIM_MANY_MAX], va[CLAIM_MANY_MAX], vs[CLAIM_MANY_MAX];
  for (size_t i = 0; i < n; i++) {
    vi[i] = abi_fixed_bytes(ids[i], 32);
    va[i] = abi_u256(&amounts[i]);
    vs[i] = abi_bytes(sigs[i], 65);
  }
  abi_value a[] = {abi_array(vi, n), abi_array(va, n), abi_array(vs, n)};
  return call_tx(rpc, w, escrow, NULL, "claimMany(bytes32[],uint256[],bytes[])", a, 3, receipt_out);
}

int escrow_refund(ethrpc *rpc, const wallet *w, const uint8_t escrow[static 20], const uint8_t id[static 32],
                  ethrpc_receipt *receipt_out) {
  abi_value a[] = {abi_fixed_bytes(id, 32)};
  return call_tx(rpc, w, escrow, NULL, "refund(bytes32)", a, 1, receipt_out);
}

int escrow_get(ethrpc *rpc, const uint8_t escrow[static 20], const uint8_t id[static 32], escrow_channel *out) {
  buf cd, ret;
  buf_init(&cd);
  buf_init(&ret);
  abi_value a[] = {abi_fixed_bytes(id, 32)};
  int rc = abi_encode_call(&cd, "getChannel(bytes32)", a, 1);
  ethrpc_msg m = {.to = escrow, .data = cd.ptr, .data_len = cd.len};
  if (!rc) rc = map_rc(ethrpc_call(rpc, &m, NULL, &ret));
  abi_value pool[16];
  const abi_value *t;
  if (!rc && abi_decode("(address,uint64,bool,address,address,uint128,uint128)", ret.ptr, ret.len, pool, 16, &t) < 0)
    rc = ERR_CHAIN;
  if (!rc) {
    memset(out, 0, sizeof *out);
    memcpy(out->client, t->items[0].b, 20);
    abi_get_u64(&t->items[1], &out->expiry);
    out->closed = !u256_is_zero(&t->items[2].num);
    memcpy(out->provider, t->items[3].b, 20);
    memcpy(out->signer, t->items[4].b, 20);
    out->deposit = t->items[5].num;
    out->claimed = t->items[6].num;
    static const uint8_t zero[20];
    if (!memcmp(out->client, zero, 20)) rc = ERR_UNKNOWN_CHANNEL;
  }
  buf_deinit(&cd);
  buf_deinit(&ret);
  return rc;
}
