/* chain/registry — Registry model bindings; see registry.h. */
#include "chain/registry.h"

#include <stdio.h>
#include <string.h>

#include "chain/abi.h"
#include "core/buf.h"
#include "core/err.h"

static int map_rc(int rc) {
  if (rc == ETHRPC_ERR_REVERT) return ERR_REVERTED;
  if (rc == ETHRPC_ERR_RPC || rc == ERR_FORMAT) return ERR_CHAIN;
  return rc;
}

int registry_add_model(ethrpc *rpc, const wallet *w, const uint8_t registry[static 20], const uint8_t hash[static 32],
                       const char *name, const char *license, const char *source_uri, ethrpc_receipt *receipt_out) {
  abi_value a[] = {abi_fixed_bytes(hash, 32), abi_string(name), abi_string(license), abi_string(source_uri)};
  buf cd;
  buf_init(&cd);
  int rc = abi_encode_call(&cd, "addModel(bytes32,string,string,string)", a, 4);
  ethrpc_send_opts o = {.confirmations = 1, .timeout_ms = 60000, .poll_ms = 100};
  ethrpc_receipt r;
  memset(&r, 0, sizeof r);
  if (!rc) rc = map_rc(ethrpc_send_tx(rpc, w, registry, NULL, cd.ptr, cd.len, &o, NULL, &r));
  if (receipt_out) *receipt_out = r;
  else ethrpc_receipt_deinit(&r);
  buf_deinit(&cd);
  return rc;
}

static void copy_str(char *dst, size_t cap, const abi_value *v) {
  size_t n = v->len < cap - 1 ? v->len : cap - 1;
  memcpy(dst, v->ptr, n);
  dst[n] = 0;
}

int registry_get_model(ethrpc *rpc, const uint8_t registry[static 20], const uint8_t hash[static 32],
                       registry_model *out) {
  buf cd, ret;
  buf_init(&cd);
  buf_init(&ret);
  abi_value a[] = {abi_fixed_bytes(hash, 32)};
  int rc = abi_encode_call(&cd, "getModel(bytes32)", a, 1);
  ethrpc_msg m = {.to = registry, .data = cd.ptr, .data_len = cd.len};
  if (!rc) rc = map_rc(ethrpc_call(rpc, &m, NULL, &ret));
  abi_value pool[16];
  const abi_value *t;
  if (!rc && abi_decode("((string,string,string,address,bool,uint64))", ret.ptr, ret.len, pool, 16, &t) < 0)
    rc = ERR_CHAIN;
  if (!rc) {
    const abi_value *s = &t->items[0];
    memset(out, 0, sizeof *out);
    memcpy(out->hash, hash, 32);
    copy_str(out->name, sizeof out->name, &s->items[0]);
    copy_str(out->license, sizeof out->license, &s->items[1]);
    copy_str(out->source_uri, sizeof out->source_uri, &s->items[2]);
    memcpy(out->publisher, s->items[3].b, 20);
    out->verified = !u256_is_zero(&s->items[4].num);
    abi_get_u64(&s->items[5], &out->registered_at);
    static const uint8_t zero[20];
    if (!memcmp(out->publisher, zero, 20)) rc = ERR_NOTFOUND;
  }
  buf_deinit(&cd);
  buf_deinit(&ret);
  return rc;
}

int registry_list_models(ethrpc *rpc, const uint8_t registry[static 20], registry_model *out, int cap) {
  uint8_t topic[32];
  int rc = abi_event_topic("ModelAdded(bytes32 indexed modelHash, address indexed publisher, string name)", topic);
  if (rc) return rc;
  ethrpc_filter f = {.from_block = 0, .to_block = UINT64_MAX, .address = registry, .topic0 = &topic};
  ethrpc_log *logs = NULL;
  size_t n = 0;
  rc = map_rc(ethrpc_get_logs(rpc, &f, &logs, &n));
  if (rc) return rc;
  int count = 0;
  for (size_t i = 0; i < n && count < cap && !rc; i++) {
    if (logs[i].ntopics < 2) continue;
    int dup = 0; /* removed and added again: list once */
    for (int k = 0; k < count && !dup; k++) dup = !memcmp(out[k].hash, logs[i].topics[1], 32);
    if (dup) continue;
    int r = registry_get_model(rpc, registry, logs[i].topics[1], &out[count]);
    if (r == 0) count++;
    else if (r != ERR_NOTFOUND) rc = r;
  }
  ethrpc_logs_free(logs, n);
  return rc ? rc : count;
}
