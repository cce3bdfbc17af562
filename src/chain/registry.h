/* chain/registry — typed bindings for the Registry contract's models (docs/contracts.md):
 * list a GGUF by its sha256 (addModel), read one (getModel), and enumerate the listed
 * hashes from ModelAdded logs. Blocking JSON-RPC (chain/ethrpc); errors as in
 * pay/escrow.h: ERR_REVERTED (reason in ethrpc_last_error), ERR_CHAIN, transport -errno. */
#ifndef APIARY_CHAIN_REGISTRY_H
#define APIARY_CHAIN_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "chain/ethrpc.h"
#include "crypto/wallet.h"

#define REGISTRY_NAME_MAX 129     /* 128 bytes + NUL */
#define REGISTRY_LICENSE_MAX 65
#define REGISTRY_URI_MAX 513
#define REGISTRY_LIST_MAX 1024

typedef struct registry_model {
  uint8_t hash[32];              /* sha256 of the GGUF */
  char name[REGISTRY_NAME_MAX];
  char license[REGISTRY_LICENSE_MAX];
  char source_uri[REGISTRY_URI_MAX];
  uint8_t publisher[20];
  bool verified;
  uint64_t registered_at;        /* unix seconds */
} registry_model;

int registry_add_model(ethrpc *rpc, const wallet *w, const uint8_t registry[static 20], const uint8_t hash[static 32],
                       const char *name, const char *license, const char *source_uri, ethrpc_receipt *receipt_out);
/* ERR_NOTFOUND when the hash is not listed. */
int registry_get_model(ethrpc *rpc, const uint8_t registry[static 20], const uint8_t hash[static 32],
                       registry_model *out);
/* The models listed now (added and not removed), oldest first; returns the count (≤ cap). */
int registry_list_models(ethrpc *rpc, const uint8_t registry[static 20], registry_model *out, int cap);

#endif
