/* chain/ethrpc — blocking Ethereum JSON-RPC over libcurl; see ethrpc.h.
 *
 * One CURL easy handle per client (connection reuse); requests are built and parsed with
 * jansson. Quantities travel as "0x…" hex and are parsed into u256/u64; data as "0x…"
 * hex. Nothing here prints: failures land in rpc->err for the caller to log. */
#include "chain/ethrpc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chain/tx.h"
#include "core/err.h"
#include "core/hex.h"

struct ethrpc {
  CURL *curl;
  struct curl_slist *headers;
  char *url;
  int timeout_ms;
  uint64_t next_id;
  bool have_chain_id;
  uint64_t chain_id;   /* cached eth_chainId */
  buf resp;            /* response body */
  ethrpc_error err;
};

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
  ethrpc *rpc = ud;
  size_t total = size * n;
  if (rpc->resp.len + total > ETHRPC_MAX_RESPONSE) return 0;
  if (buf_append(&rpc->resp, p, total)) return 0;
  return total;
}

int ethrpc_new(const char *url, int timeout_ms, ethrpc **out) {
  if (!url || !*url) return ERR_INVAL;
  pthread_once(&g_curl_once, curl_init_once);
  ethrpc *rpc = calloc(1, sizeof *rpc);
  if (!rpc) return ERR_NOMEM;
  rpc->url = strdup(url);
  rpc->curl = curl_easy_init();
  rpc->headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (!rpc->url || !rpc->curl || !rpc->headers) {
    ethrpc_free(rpc);
    return ERR_NOMEM;
  }
  rpc->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
  rpc->next_id = 1;
  buf_init(&rpc->resp);
  *out = rpc;
  return 0;
}

void ethrpc_free(ethrpc *rpc) {
  if (!rpc) return;
  if (rpc->curl) curl_easy_cleanup(rpc->curl);
  curl_slist_free_all(rpc->headers);
  free(rpc->url);
  buf_deinit(&rpc->resp);
  free(rpc);
}

const ethrpc_error *ethrpc_last_error(const ethrpc *rpc) { return &rpc->err; }

static int set_err(ethrpc *rpc, ethrpc_errkind kind, long code, const char *msg, int rc) {
  rpc->err.kind = kind;
  rpc->err.code = code;
  snprintf(rpc->err.message, sizeof rpc->err.message, "%s", msg ? msg : "");
  return rc;
}

static int curl_to_errno(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
    case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
    case CURLE_WRITE_ERROR: return ERR_TOOBIG;
    default: return -EIO;
  }
}

/* Fills the revert fields from a hex string of revert data (may be NULL). */
static void set_revert(ethrpc *rpc, const char *hexdata, const char *msg) {
  uint8_t tmp[4096];
  int n = -1;
  if (hexdata) n = hex_decode_var(hexdata, strlen(hexdata), tmp, sizeof tmp);
  rpc->err.kind = ETHRPC_E_REVERT;
  if (n >= 0) {
    rpc->err.revert_len = (size_t)n;
    memcpy(rpc->err.revert_data, tmp, (size_t)n < sizeof rpc->err.revert_data ? (size_t)n : sizeof rpc->err.revert_data);
    abi_revert_reason(tmp, (size_t)n, rpc->err.reason, sizeof rpc->err.reason);
  } else if (msg && !strncmp(msg, "execution reverted: ", 20)) {
    snprintf(rpc->err.reason, sizeof rpc->err.reason, "%s", msg + 20);
  } else {
    snprintf(rpc->err.reason, sizeof rpc->err.reason, "%s", "reverted without a reason");
  }
}

int ethrpc_request(ethrpc *rpc, const char *method, json_t *params, json_t **result_out) {
  memset(&rpc->err, 0, sizeof rpc->err);
  if (!params) params = json_array();
  json_t *req = json_pack("{s:s,s:I,s:s,s:o}", "jsonrpc", "2.0", "id", (json_int_t)rpc->next_id++, "method", method,
                          "params", params);
  if (!req) return ERR_NOMEM;
  char *body = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  if (!body) return ERR_NOMEM;
  buf_reset(&rpc->resp);
  CURL *c = rpc->curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, rpc->url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, rpc->headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)rpc->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)rpc->timeout_ms);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, rpc);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode cc = curl_easy_perform(c);
  free(body);
  if (cc != CURLE_OK) return set_err(rpc, ETHRPC_E_NET, (long)cc, curl_easy_strerror(cc), curl_to_errno(cc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  json_error_t je;
  json_t *resp = json_loadb((const char *)rpc->resp.ptr, rpc->resp.len, JSON_ALLOW_NUL, &je); /* anvil escapes revert bytes as \u0000 */
  if (!resp || !json_is_object(resp)) {
    json_decref(resp);
    if (status != 200) {
      char m[64];
      snprintf(m, sizeof m, "HTTP status %ld", status);
      return set_err(rpc, ETHRPC_E_NET, status, m, -EPROTO);
    }
    return set_err(rpc, ETHRPC_E_FORMAT, 0, "response is not a JSON object", ERR_FORMAT);
  }
  json_t *e = json_object_get(resp, "error");
  if (e && !json_is_null(e)) {
    const char *msg = json_string_value(json_object_get(e, "message"));
    long code = (long)json_integer_value(json_object_get(e, "code"));
    set_err(rpc, ETHRPC_E_RPC, code, msg ? msg : "error", ETHRPC_ERR_RPC);
    json_t *data = json_object_get(e, "data");
    if (json_is_object(data)) data = json_object_get(data, "data"); /* some nodes nest it */
    const char *hexdata = json_string_value(data);
    if (hexdata && strncmp(hexdata, "0x", 2)) hexdata = NULL;
    bool reverted = code == 3 || (msg && strstr(msg, "revert"));
    int rc = ETHRPC_ERR_RPC;
    if (reverted) {
      set_revert(rpc, hexdata, msg);
      rc = ETHRPC_ERR_REVERT;
    }
    json_decref(resp);
    return rc;
  }
  json_t *result = json_object_get(resp, "result");
  if (!result) {
    json_decref(resp);
    return set_err(rpc, ETHRPC_E_FORMAT, 0, "response has neither result nor error", ERR_FORMAT);
  }
  *result_out = json_incref(result);
  json_decref(resp);
  return 0;
}

/* ---- JSON helpers ---- */

static json_t *hex_json(const uint8_t *p, size_t n) {
  char *s = malloc(2 * n + 3);
  if (!s) return NULL;
  s[0] = '0';
  s[1] = 'x';
  hex_encode(p, n, s + 2);
  json_t *j = json_string(s);
  free(s);
  return j;
}

static json_t *qty_json(const u256 *v) {
  char s[U256_HEX_BUF];
  u256_to_hex(v, s);
  return json_string(s);
}

static json_t *u64_json(uint64_t v) {
  u256 x = u256_from_u64(v);
  return qty_json(&x);
}

static int parse_qty(const json_t *j, u256 *out) {
  const char *s = json_string_value(j);
  if (!s || strncmp(s, "0x", 2)) return ERR_FORMAT;
  return u256_from_hex(s, strlen(s), out) ? ERR_FORMAT : 0;
}

static int parse_u64(const json_t *j, uint64_t *out) {
  u256 v;
  if (parse_qty(j, &v) || u256_to_u64(&v, out)) return ERR_FORMAT;
  return 0;
}

static int parse_fixed(const json_t *j, uint8_t *out, size_t n) {
  const char *s = json_string_value(j);
  if (!s || hex_decode(s, strlen(s), out, n)) return ERR_FORMAT;
  return 0;
}

static int parse_data(const json_t *j, buf *out) {
  const char *s = json_string_value(j);
  if (!s || strncmp(s, "0x", 2)) return ERR_FORMAT;
  size_t n = strlen(s);
  if (n % 2) return ERR_FORMAT;
  int rc = buf_reserve(out, n / 2);
  if (rc) return rc;
  int k = hex_decode_var(s, n, out->ptr + out->len, n / 2);
  if (k < 0) return ERR_FORMAT;
  out->len += (size_t)k;
  out->ptr[out->len] = 0;
  return 0;
}

/* Request returning one quantity. */
static int req_qty(ethrpc *rpc, const char *method, json_t *params, u256 *out) {
  json_t *r = NULL;
  int rc = ethrpc_request(rpc, method, params, &r);
  if (rc) return rc;
  rc = parse_qty(r, out);
  json_decref(r);
  if (rc) set_err(rpc, ETHRPC_E_FORMAT, 0, "bad quantity", rc);
  return rc;
}

static int req_u64(ethrpc *rpc, const char *method, json_t *params, uint64_t *out) {
  u256 v;
  int rc = req_qty(rpc, method, params, &v);
  if (!rc && u256_to_u64(&v, out)) rc = set_err(rpc, ETHRPC_E_FORMAT, 0, "quantity over 64 bits", ERR_FORMAT);
  return rc;
}

/* ---- simple methods ---- */

int ethrpc_chain_id(ethrpc *rpc, uint64_t *out) {
  if (rpc->have_chain_id) {
    *out = rpc->chain_id;
    return 0;
  }
  int rc = req_u64(rpc, "eth_chainId", NULL, out);
  if (!rc) {
    rpc->have_chain_id = true;
    rpc->chain_id = *out;
  }
  return rc;
}

int ethrpc_block_number(ethrpc *rpc, uint64_t *out) { return req_u64(rpc, "eth_blockNumber", NULL, out); }

int ethrpc_get_balance(ethrpc *rpc, const uint8_t addr[static 20], const char *block, u256 *out) {
  return req_qty(rpc, "eth_getBalance", json_pack("[o,s]", hex_json(addr, 20), block ? block : "latest"), out);
}

int ethrpc_get_nonce(ethrpc *rpc, const uint8_t addr[static 20], uint64_t *out) {
  return req_u64(rpc, "eth_getTransactionCount", json_pack("[o,s]", hex_json(addr, 20), "pending"), out);
}

int ethrpc_get_code(ethrpc *rpc, const uint8_t addr[static 20], const char *block, buf *out) {
  json_t *r = NULL;
  int rc = ethrpc_request(rpc, "eth_getCode", json_pack("[o,s]", hex_json(addr, 20), block ? block : "latest"), &r);
  if (rc) return rc;
  rc = parse_data(r, out);
  json_decref(r);
  if (rc) set_err(rpc, ETHRPC_E_FORMAT, 0, "bad code", rc);
  return rc;
}

int ethrpc_gas_price(ethrpc *rpc, u256 *out) { return req_qty(rpc, "eth_gasPrice", NULL, out); }
int ethrpc_max_priority_fee(ethrpc *rpc, u256 *out) { return req_qty(rpc, "eth_maxPriorityFeePerGas", NULL, out); }

int ethrpc_suggest_fees(ethrpc *rpc, ethrpc_fees *out) {
  memset(out, 0, sizeof *out);
  int rc = ethrpc_gas_price(rpc, &out->gas_price);
  if (rc) return rc;
  json_t *r = NULL;
  rc = ethrpc_request(rpc, "eth_feeHistory", json_pack("[s,s,[i]]", "0x1", "latest", 50), &r);
  if (rc == ETHRPC_ERR_RPC) return 0; /* no EIP-1559 support: legacy */
  if (rc) return rc;
  json_t *bf = json_object_get(r, "baseFeePerGas");
  size_t n = json_array_size(bf);
  /* The last entry is the base fee of the next block. */
  if (!n || parse_qty(json_array_get(bf, n - 1), &out->base_fee)) {
    json_decref(r);
    return 0; /* pre-London chain: baseFeePerGas absent or zero-filled */
  }
  u256 reward = u256_from_u64(0);
  json_t *rw = json_array_get(json_object_get(r, "reward"), 0);
  bool have_reward = rw && !parse_qty(json_array_get(rw, 0), &reward);
  json_decref(r);
  out->eip1559 = true;
  if (ethrpc_max_priority_fee(rpc, &out->max_priority_fee)) {
    out->max_priority_fee = have_reward ? reward : u256_from_u64(1000000000u); /* 1 gwei */
    memset(&rpc->err, 0, sizeof rpc->err);
  }
  u256 twice;
  if (u256_mul_u64(&twice, &out->base_fee, 2) || u256_add(&out->max_fee, &twice, &out->max_priority_fee))
    return set_err(rpc, ETHRPC_E_FORMAT, 0, "fee overflow", ERR_RANGE);
  return 0;
}

static json_t *msg_json(const ethrpc_msg *m) {
  json_t *o = json_object();
  if (m->from) json_object_set_new(o, "from", hex_json(m->from, 20));
  if (m->to) json_object_set_new(o, "to", hex_json(m->to, 20));
  if (!u256_is_zero(&m->value)) json_object_set_new(o, "value", qty_json(&m->value));
  if (m->data_len) { /* both names: "input" is current, "data" what older nodes read */
    json_object_set_new(o, "input", hex_json(m->data, m->data_len));
    json_object_set_new(o, "data", hex_json(m->data, m->data_len));
  }
  if (m->gas) json_object_set_new(o, "gas", u64_json(m->gas));
  return o;
}

int ethrpc_estimate_gas(ethrpc *rpc, const ethrpc_msg *m, uint64_t *out) {
  return req_u64(rpc, "eth_estimateGas", json_pack("[o]", msg_json(m)), out);
}

int ethrpc_call(ethrpc *rpc, const ethrpc_msg *m, const char *block, buf *out) {
  json_t *r = NULL;
  int rc = ethrpc_request(rpc, "eth_call", json_pack("[o,s]", msg_json(m), block ? block : "latest"), &r);
  if (rc) return rc;
  rc = parse_data(r, out);
  json_decref(r);
  if (rc) set_err(rpc, ETHRPC_E_FORMAT, 0, "bad call result", rc);
  return rc;
}

int ethrpc_send_raw(ethrpc *rpc, const uint8_t *raw, size_t len, uint8_t hash_out[static 32]) {
  json_t *r = NULL;
  int rc = ethrpc_request(rpc, "eth_sendRawTransaction", json_pack("[o]", hex_json(raw, len)), &r);
  if (rc) return rc;
  uint8_t h[32];
  tx_hash(raw, len, h);
  rc = parse_fixed(r, hash_out, 32);
  json_decref(r);
  if (rc) return set_err(rpc, ETHRPC_E_FORMAT, 0, "bad tx hash", rc);
  if (memcmp(h, hash_out, 32)) return set_err(rpc, ETHRPC_E_FORMAT, 0, "node returned another tx hash", ERR_FORMAT);
  return 0;
}

/* ---- logs and receipts ---- */

static int parse_log(const json_t *j, ethrpc_log *l) {
  memset(l, 0, sizeof *l);
  if (parse_fixed(json_object_get(j, "address"), l->address, 20)) return ERR_FORMAT;
  json_t *ts = json_object_get(j, "topics"), *t;
  size_t i;
  if (!json_is_array(ts) || json_array_size(ts) > 4) return ERR_FORMAT;
  json_array_foreach(ts, i, t) {
    if (parse_fixed(t, l->topics[i], 32)) return ERR_FORMAT;
  }
  l->ntopics = json_array_size(ts);
  buf d;
  buf_init(&d);
  if (parse_data(json_object_get(j, "data"), &d)) {
    buf_deinit(&d);
    return ERR_FORMAT;
  }
  l->data = d.ptr;
  l->data_len = d.len;
  /* Pending logs may lack these. */
  parse_u64(json_object_get(j, "blockNumber"), &l->block_number);
  parse_u64(json_object_get(j, "logIndex"), &l->log_index);
  parse_fixed(json_object_get(j, "transactionHash"), l->tx_hash, 32);
  l->removed = json_is_true(json_object_get(j, "removed"));
  return 0;
}

void ethrpc_logs_free(ethrpc_log *logs, size_t n) {
  if (!logs) return;
  for (size_t i = 0; i < n; i++) free(logs[i].data);
  free(logs);
}

static int parse_logs(const json_t *arr, ethrpc_log **out, size_t *n_out) {
  *out = NULL;
  *n_out = 0;
  if (!json_is_array(arr)) return ERR_FORMAT;
  size_t n = json_array_size(arr);
  if (n > ETHRPC_MAX_LOGS) return ERR_TOOBIG;
  if (!n) return 0;
  ethrpc_log *logs = calloc(n, sizeof *logs);
  if (!logs) return ERR_NOMEM;
  for (size_t i = 0; i < n; i++) {
    if (parse_log(json_array_get(arr, i), &logs[i])) {
      ethrpc_logs_free(logs, i);
      return ERR_FORMAT;
    }
  }
  *out = logs;
  *n_out = n;
  return 0;
}

void ethrpc_receipt_deinit(ethrpc_receipt *r) {
  ethrpc_logs_free(r->logs, r->nlogs);
  r->logs = NULL;
  r->nlogs = 0;
}

int ethrpc_get_receipt(ethrpc *rpc, const uint8_t hash[static 32], ethrpc_receipt *out) {
  memset(out, 0, sizeof *out);
  json_t *r = NULL;
  int rc = ethrpc_request(rpc, "eth_getTransactionReceipt", json_pack("[o]", hex_json(hash, 32)), &r);
  if (rc) return rc;
  if (json_is_null(r)) {
    json_decref(r);
    return ERR_NOTFOUND;
  }
  uint64_t st = 0;
  rc = ERR_FORMAT;
  if (!json_is_object(r) || parse_fixed(json_object_get(r, "transactionHash"), out->tx_hash, 32) ||
      parse_u64(json_object_get(r, "blockNumber"), &out->block_number) ||
      parse_fixed(json_object_get(r, "blockHash"), out->block_hash, 32) ||
      parse_u64(json_object_get(r, "status"), &st) || st > 1 ||
      parse_u64(json_object_get(r, "gasUsed"), &out->gas_used))
    goto fail;
  out->status = (int)st;
  json_t *egp = json_object_get(r, "effectiveGasPrice");
  if (egp && parse_qty(egp, &out->effective_gas_price)) goto fail;
  json_t *ca = json_object_get(r, "contractAddress");
  if (ca && !json_is_null(ca)) {
    if (parse_fixed(ca, out->contract_address, 20)) goto fail;
    out->has_contract = true;
  }
  rc = parse_logs(json_object_get(r, "logs"), &out->logs, &out->nlogs);
  if (rc) goto fail;
  json_decref(r);
  return 0;
fail:
  json_decref(r);
  ethrpc_receipt_deinit(out);
  return set_err(rpc, ETHRPC_E_FORMAT, 0, "malformed receipt", rc);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

int ethrpc_wait_receipt(ethrpc *rpc, const uint8_t hash[static 32], unsigned confirmations, int timeout_ms,
                        int poll_ms, ethrpc_receipt *out) {
  if (confirmations < 1) confirmations = 1;
  if (poll_ms <= 0) poll_ms = 1000;
  int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 120000);
  for (;;) {
    int rc = ethrpc_get_receipt(rpc, hash, out);
    if (!rc) {
      uint64_t head;
      rc = ethrpc_block_number(rpc, &head);
      if (rc) {
        ethrpc_receipt_deinit(out);
        return rc;
      }
      if (head + 1 >= out->block_number + confirmations) return 0;
      ethrpc_receipt_deinit(out);
    } else if (rc != ERR_NOTFOUND) {
      return rc;
    }
    int64_t left = deadline - now_ms();
    if (left <= 0) return set_err(rpc, ETHRPC_E_NET, 0, "timed out waiting for the receipt", -ETIMEDOUT);
    sleep_ms(left < poll_ms ? (int)left : poll_ms);
  }
}

static json_t *topic_json(const uint8_t (*t)[32]) { return t ? hex_json(*t, 32) : json_null(); }

int ethrpc_get_logs(ethrpc *rpc, const ethrpc_filter *f, ethrpc_log **logs_out, size_t *n_out) {
  json_t *o = json_object();
  json_object_set_new(o, "fromBlock", u64_json(f->from_block));
  json_object_set_new(o, "toBlock", f->to_block == UINT64_MAX ? json_string("latest") : u64_json(f->to_block));
  if (f->address) json_object_set_new(o, "address", hex_json(f->address, 20));
  if (f->topic0 || f->topic1 || f->topic2) {
    json_t *ts = json_array();
    json_array_append_new(ts, topic_json(f->topic0));
    if (f->topic1 || f->topic2) json_array_append_new(ts, topic_json(f->topic1));
    if (f->topic2) json_array_append_new(ts, topic_json(f->topic2));
    json_object_set_new(o, "topics", ts);
  }
  json_t *r = NULL;
  int rc = ethrpc_request(rpc, "eth_getLogs", json_pack("[o]", o), &r);
  if (rc) return rc;
  rc = parse_logs(r, logs_out, n_out);
  json_decref(r);
  if (rc) set_err(rpc, ETHRPC_E_FORMAT, 0, "malformed logs", rc);
  return rc;
}

/* ---- the whole transaction ---- */

int ethrpc_send_tx(ethrpc *rpc, const wallet *w, const uint8_t *to, const u256 *value, const uint8_t *data,
                   size_t data_len, const ethrpc_send_opts *opts, uint8_t *hash_out, ethrpc_receipt *receipt_out) {
  ethrpc_send_opts def = {0, 1, 120000, 1000, false, {{0, 0, 0, 0}}};
  if (!opts) opts = &def;
  memset(receipt_out, 0, sizeof *receipt_out);
  uint64_t chain_id, nonce, gas = opts->gas_limit;
  int rc = ethrpc_chain_id(rpc, &chain_id);
  if (!rc) rc = ethrpc_get_nonce(rpc, w->addr, &nonce);
  if (rc) return rc;
  ethrpc_msg m = {w->addr, to, value ? *value : u256_from_u64(0), data, data_len, 0};
  if (!gas) {
    rc = ethrpc_estimate_gas(rpc, &m, &gas);
    if (rc) return rc;
    gas += gas / 5;
  }
  ethrpc_fees fees;
  rc = ethrpc_suggest_fees(rpc, &fees);
  if (rc) return rc;
  tx t;
  tx_init(&t, fees.eip1559 && !opts->legacy ? TX_EIP1559 : TX_LEGACY, chain_id);
  t.nonce = nonce;
  t.gas_limit = gas;
  t.max_fee = fees.max_fee;
  t.max_priority_fee = fees.max_priority_fee;
  t.gas_price = fees.gas_price;
  const u256 *price = t.type == TX_EIP1559 ? &t.max_fee : &t.gas_price;
  if (!u256_is_zero(&opts->max_fee_cap) && u256_cmp(price, &opts->max_fee_cap) > 0)
    return set_err(rpc, ETHRPC_E_NET, 0, "suggested fee above the configured cap", ERR_RANGE);
  if (to) {
    t.has_to = true;
    memcpy(t.to, to, 20);
  }
  t.value = m.value;
  t.data = data;
  t.data_len = data_len;
  buf raw;
  buf_init(&raw);
  uint8_t h[32], sent[32];
  rc = tx_sign(&t, w, &raw, h);
  if (!rc) rc = ethrpc_send_raw(rpc, raw.ptr, raw.len, sent);
  buf_deinit(&raw);
  if (rc) return rc;
  if (hash_out) memcpy(hash_out, h, 32);
  rc = ethrpc_wait_receipt(rpc, h, opts->confirmations, opts->timeout_ms, opts->poll_ms, receipt_out);
  if (rc) return rc;
  if (receipt_out->status == 1) return 0;
  /* Reverted: replay at the inclusion block for the reason. */
  char block[32];
  snprintf(block, sizeof block, "0x%llx", (unsigned long long)receipt_out->block_number);
  m.gas = gas;
  buf out;
  buf_init(&out);
  rc = ethrpc_call(rpc, &m, block, &out);
  buf_deinit(&out);
  if (rc == ETHRPC_ERR_REVERT) {
    snprintf(receipt_out->revert_reason, sizeof receipt_out->revert_reason, "%s", rpc->err.reason);
  } else {
    /* The replay succeeded or failed otherwise (state changed, out of gas): say so. */
    snprintf(receipt_out->revert_reason, sizeof receipt_out->revert_reason, "%s",
             gas == receipt_out->gas_used ? "out of gas" : "reverted (replay gave no reason)");
    set_err(rpc, ETHRPC_E_REVERT, 0, "transaction reverted", 0);
    snprintf(rpc->err.reason, sizeof rpc->err.reason, "%s", receipt_out->revert_reason);
  }
  rpc->err.kind = ETHRPC_E_REVERT;
  return ETHRPC_ERR_REVERT;
}
