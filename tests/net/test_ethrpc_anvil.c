/* chain/ethrpc against a real anvil (foundry) on loopback: chain id, dev balances, an
 * EIP-1559 ether transfer with exact balance accounting, deploying hand-assembled bytecode,
 * eth_call results and decoded revert reasons (call, estimate and a mined failing tx),
 * confirmation waiting, error kinds, and a cross-check of our raw tx with `cast decode-tx`.
 *
 * anvil comes from tools/node_modules/.bin (scripts/setup) or $ANVIL; without it the
 * tests skip. The group setup starts anvil on a random free port (retrying on collisions)
 * and the group teardown kills it, also after failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/testutil.h"
#include "chain/abi.h"
#include "chain/contracts_gen.h"
#include "chain/ethrpc.h"
#include "chain/tx.h"
#include "core/err.h"
#include "core/hex.h"
#include "crypto/eip712.h"

static const char DEV_KEY[] = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

typedef struct fixture {
  pid_t pid;       /* anvil, 0 when absent */
  char url[64];
  char cast[512];  /* cast binary or "" */
  ethrpc *rpc;
  wallet dev;
  uint8_t contract[20];
  bool have_contract;
} fixture;

static fixture g_fx;

static const char *find_tool(const char *name, char *out, size_t cap) {
  const char *env = getenv(!strcmp(name, "anvil") ? "ANVIL" : "CAST");
  if (env && access(env, X_OK) == 0) return snprintf(out, cap, "%s", env), out;
  const char *dirs[] = {"tools/node_modules/.bin", "../tools/node_modules/.bin", "/work/main/tools/node_modules/.bin"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(out, cap, "%s/%s", dirs[i], name);
    if (access(out, X_OK) == 0) return out;
  }
  out[0] = 0;
  return NULL;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int start_anvil(const char *bin) {
  for (int attempt = 0; attempt < 5; attempt++) {
    int port = tu_port_block(1);
    if (port < 0) return -1;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
      setpgid(0, 0);
      int devnull = open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, 1), dup2(devnull, 2);
      execl(bin, bin, "--host", "127.0.0.1", "--port", ps, "--silent", (char *)NULL);
      _exit(127);
    }
    snprintf(g_fx.url, sizeof g_fx.url, "http://127.0.0.1:%d", port);
    ethrpc *rpc;
    if (ethrpc_new(g_fx.url, 2000, &rpc)) return -1;
    for (int i = 0; i < 150; i++) { /* up to 15 s */
      uint64_t id;
      if (!ethrpc_chain_id(rpc, &id)) {
        g_fx.pid = pid;
        g_fx.rpc = rpc;
        return 0;
      }
      int st;
      if (waitpid(pid, &st, WNOHANG) == pid) break; /* died: port taken? retry */
      sleep_ms(100);
    }
    ethrpc_free(rpc);
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  return -1;
}

static int group_setup(void **state) {
  (void)state;
  memset(&g_fx, 0, sizeof g_fx);
  char bin[512];
  if (!find_tool("anvil", bin, sizeof bin)) {
    fprintf(stderr, "anvil not found (run scripts/setup or set ANVIL); the anvil tests will skip\n");
    return 0;
  }
  find_tool("cast", g_fx.cast, sizeof g_fx.cast);
  if (start_anvil(bin)) {
    fprintf(stderr, "could not start anvil; the anvil tests will skip\n");
    return 0;
  }
  uint8_t sk[32];
  hex_decode(DEV_KEY, 64, sk, 32);
  return wallet_from_secret(sk, &g_fx.dev) ? -1 : 0;
}

static int group_teardown(void **state) {
  (void)state;
  ethrpc_free(g_fx.rpc);
  if (g_fx.pid > 0) {
    kill(-g_fx.pid, SIGTERM);
    kill(g_fx.pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
      if (waitpid(g_fx.pid, NULL, WNOHANG) == g_fx.pid) {
        g_fx.pid = 0;
        break;
      }
      sleep_ms(100);
    }
    if (g_fx.pid > 0) {
      kill(-g_fx.pid, SIGKILL);
      kill(g_fx.pid, SIGKILL);
      waitpid(g_fx.pid, NULL, 0);
    }
  }
  wallet_wipe(&g_fx.dev);
  return 0;
}

#define REQUIRE_ANVIL()                                   \
  do {                                                    \
    if (!g_fx.rpc) {                                      \
      print_message("anvil not available; skipping\n");   \
      skip();                                             \
    }                                                     \
  } while (0)

static void test_basics(void **state) {
  (void)state;
  REQUIRE_ANVIL();
  uint64_t id, head;
  assert_int_equal(ethrpc_chain_id(g_fx.rpc, &id), 0);
  assert_int_equal(id, 31337);
  assert_int_equal(ethrpc_block_number(g_fx.rpc, &head), 0);
  u256 bal, want;
  assert_int_equal(ethrpc_get_balance(g_fx.rpc, g_fx.dev.addr, NULL, &bal), 0);
  assert_int_equal(u256_from_dec("10000000000000000000000", 23, &want), 0); /* 10000 ether */
  assert_true(u256_cmp(&bal, &want) <= 0);
  assert_true(u256_bits(&bal) > 60);
  ethrpc_fees fees;
  assert_int_equal(ethrpc_suggest_fees(g_fx.rpc, &fees), 0);
  assert_true(fees.eip1559);
  assert_false(u256_is_zero(&fees.max_fee));
  assert_true(u256_cmp(&fees.max_fee, &fees.max_priority_fee) >= 0);
  /* A JSON-RPC error object. */
  json_t *r = NULL;
  assert_int_equal(ethrpc_request(g_fx.rpc, "no_suchMethod", NULL, &r), ETHRPC_ERR_RPC);
  assert_int_equal(ethrpc_last_error(g_fx.rpc)->kind, ETHRPC_E_RPC);
}

/* Transport errors need no anvil: a closed port, and a listener that never answers. */
static void test_transport_errors(void **state) {
  (void)state;
  uint64_t id;
  ethrpc *dead;
  assert_int_equal(ethrpc_new("", 1000, &dead), ERR_INVAL);
  assert_int_equal(ethrpc_new("http://127.0.0.1:1", 1000, &dead), 0);
  assert_int_equal(ethrpc_chain_id(dead, &id), -ECONNREFUSED);
  assert_int_equal(ethrpc_last_error(dead)->kind, ETHRPC_E_NET);
  ethrpc_free(dead);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(fd, 4), 0);
  socklen_t sl = sizeof sa;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
  ethrpc *mute;
  assert_int_equal(ethrpc_new(url, 300, &mute), 0);
  assert_int_equal(ethrpc_chain_id(mute, &id), -ETIMEDOUT);
  assert_int_equal(ethrpc_last_error(mute)->kind, ETHRPC_E_NET);
  ethrpc_free(mute);
  close(fd);
}

static void test_transfer(void **state) {
  (void)state;
  REQUIRE_ANVIL();
  wallet fresh;
  assert_int_equal(wallet_generate(&fresh), 0);
  u256 before, after, to_bal, one;
  assert_int_equal(u256_from_dec("1000000000000000000", 19, &one), 0);
  assert_int_equal(ethrpc_get_balance(g_fx.rpc, g_fx.dev.addr, NULL, &before), 0);
  ethrpc_receipt rc;
  uint8_t h[32];
  int r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, fresh.addr, &one, NULL, 0, NULL, h, &rc);
  if (r) fail_msg("send_tx: %d %s", r, ethrpc_last_error(g_fx.rpc)->message);
  assert_int_equal(rc.status, 1);
  assert_memory_equal(rc.tx_hash, h, 32);
  assert_int_equal(rc.gas_used, 21000);
  json_t *txj = NULL;
  char hs[67] = "0x";
  hex_encode(h, 32, hs + 2);
  assert_int_equal(ethrpc_request(g_fx.rpc, "eth_getTransactionByHash", json_pack("[s]", hs), &txj), 0);
  assert_string_equal(json_string_value(json_object_get(txj, "type")), "0x2"); /* EIP-1559 */
  json_decref(txj);
  assert_int_equal(ethrpc_get_balance(g_fx.rpc, fresh.addr, NULL, &to_bal), 0);
  assert_int_equal(u256_cmp(&to_bal, &one), 0);
  assert_int_equal(ethrpc_get_balance(g_fx.rpc, g_fx.dev.addr, NULL, &after), 0);
  u256 cost, spent;
  assert_int_equal(u256_mul_u64(&cost, &rc.effective_gas_price, rc.gas_used), 0);
  assert_int_equal(u256_add(&cost, &cost, &one), 0);
  assert_int_equal(u256_sub(&spent, &before, &after), 0);
  char a[U256_DEC_BUF], b[U256_DEC_BUF];
  u256_to_dec(&spent, a);
  u256_to_dec(&cost, b);
  assert_string_equal(a, b);
  ethrpc_receipt_deinit(&rc);
  /* Our raw tx as foundry decodes it. */
  if (g_fx.cast[0]) {
    tx t;
    tx_init(&t, TX_EIP1559, 31337);
    t.nonce = 7;
    t.gas_limit = 21000;
    t.max_fee = u256_from_u64(3000000000u);
    t.max_priority_fee = u256_from_u64(1000000000u);
    t.has_to = true;
    memcpy(t.to, fresh.addr, 20);
    t.value = one;
    buf raw;
    buf_init(&raw);
    assert_int_equal(tx_sign(&t, &g_fx.dev, &raw, h), 0);
    char *hex = malloc(2 * raw.len + 1), hh[65], from[41], cmd[1024 + 700], out[4096];
    hex_encode(raw.ptr, raw.len, hex);
    hex_encode(h, 32, hh);
    hex_encode(g_fx.dev.addr, 20, from);
    snprintf(cmd, sizeof cmd, "%s decode-tx 0x%s", g_fx.cast, hex);
    int st = tu_run(cmd, out, sizeof out, NULL, 0);
    assert_int_equal(st, 0);
    if (!strstr(out, hh) || !strstr(out, from) || !strstr(out, "0x7a69") || !strstr(out, "0xde0b6b3a7640000"))
      fail_msg("cast decode-tx disagrees:\n%s", out);
    free(hex);
    buf_deinit(&raw);
  } else {
    print_message("cast not found: decode-tx cross-check skipped\n");
  }
  wallet_wipe(&fresh);
}

/* A tiny assembler for the test contract: opcodes, PUSH1/PUSH4/PUSH32 and one-byte
 * jump labels patched after the fact. */
typedef struct asm_t {
  uint8_t code[256];
  size_t n;
} asm_t;

static void op(asm_t *a, uint8_t o) { a->code[a->n++] = o; }
static void push1(asm_t *a, uint8_t v) { op(a, 0x60), op(a, v); }
static void push4(asm_t *a, const uint8_t v[4]) {
  op(a, 0x63);
  memcpy(a->code + a->n, v, 4);
  a->n += 4;
}
static void push32(asm_t *a, const uint8_t v[32]) {
  op(a, 0x7f);
  memcpy(a->code + a->n, v, 32);
  a->n += 32;
}

/* Runtime:
 *   get()        returns uint256 42
 *   ping(uint256 v) emits Pinged(address indexed caller, uint256 v)
 *   anything else reverts with Error("nope") */
static size_t build_runtime(uint8_t *out) {
  asm_t a = {.n = 0};
  uint8_t sel_get[4], sel_ping[4], w[32];
  assert_int_equal(abi_selector("get()", sel_get), 0);
  assert_int_equal(abi_selector("ping(uint256)", sel_ping), 0);
  push1(&a, 0), op(&a, 0x35), push1(&a, 0xe0), op(&a, 0x1c);         /* sel = calldata[0:4] */
  op(&a, 0x80), push4(&a, sel_get), op(&a, 0x14), push1(&a, 0);      /* DUP1 PUSH4 EQ PUSH1 Lget */
  size_t fix_get = a.n - 1;
  op(&a, 0x57);                                                       /* JUMPI */
  op(&a, 0x80), push4(&a, sel_ping), op(&a, 0x14), push1(&a, 0);
  size_t fix_ping = a.n - 1;
  op(&a, 0x57);
  /* revert Error("nope") */
  memset(w, 0, 32);
  memcpy(w, "\x08\xc3\x79\xa0", 4);
  push32(&a, w), push1(&a, 0x00), op(&a, 0x52);
  push1(&a, 0x20), push1(&a, 0x04), op(&a, 0x52);
  push1(&a, 0x04), push1(&a, 0x24), op(&a, 0x52);
  memset(w, 0, 32);
  memcpy(w, "nope", 4);
  push32(&a, w), push1(&a, 0x44), op(&a, 0x52);
  push1(&a, 0x64), push1(&a, 0x00), op(&a, 0xfd);                    /* REVERT(0, 100) */
  /* Lget: return 42 */
  a.code[fix_get] = (uint8_t)a.n;
  op(&a, 0x5b), push1(&a, 42), push1(&a, 0), op(&a, 0x52), push1(&a, 32), push1(&a, 0), op(&a, 0xf3);
  /* Lping: mstore(0, calldata[4:36]); log2(0, 32, topic0, caller); stop */
  a.code[fix_ping] = (uint8_t)a.n;
  op(&a, 0x5b), push1(&a, 4), op(&a, 0x35), push1(&a, 0), op(&a, 0x52);
  op(&a, 0x33);                                                       /* CALLER (topic1) */
  assert_int_equal(abi_event_topic("Pinged(address,uint256)", w), 0);
  push32(&a, w), push1(&a, 32), push1(&a, 0), op(&a, 0xa2), op(&a, 0x00);
  assert_true(a.n < 200);
  memcpy(out, a.code, a.n);
  return a.n;
}

/* Init code: copy the runtime that follows it to memory and return it. */
static size_t build_initcode(uint8_t *out, uint8_t *runtime_out, size_t *rt_len) {
  size_t n = build_runtime(runtime_out);
  const uint8_t init[] = {0x60, (uint8_t)n, 0x60, 12, 0x60, 0x00, 0x39, 0x60, (uint8_t)n, 0x60, 0x00, 0xf3};
  memcpy(out, init, 12);
  memcpy(out + 12, runtime_out, n);
  *rt_len = n;
  return 12 + n;
}

static void test_contract(void **state) {
  (void)state;
  REQUIRE_ANVIL();
  uint8_t init[300], rt[256];
  size_t rtn, n = build_initcode(init, rt, &rtn);
  uint64_t nonce;
  uint8_t predicted[20];
  assert_int_equal(ethrpc_get_nonce(g_fx.rpc, g_fx.dev.addr, &nonce), 0);
  tx_create_address(g_fx.dev.addr, nonce, predicted);
  ethrpc_receipt rc;
  int r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, NULL, NULL, init, n, NULL, NULL, &rc);
  if (r) fail_msg("deploy: %d %s", r, ethrpc_last_error(g_fx.rpc)->message);
  assert_int_equal(rc.status, 1);
  assert_true(rc.has_contract);
  memcpy(g_fx.contract, rc.contract_address, 20);
  assert_memory_equal(g_fx.contract, predicted, 20);
  g_fx.have_contract = true;
  ethrpc_receipt_deinit(&rc);
  buf code;
  buf_init(&code);
  assert_int_equal(ethrpc_get_code(g_fx.rpc, g_fx.contract, NULL, &code), 0);
  assert_int_equal(code.len, rtn);
  assert_memory_equal(code.ptr, rt, rtn);
  /* eth_call get() → 42. */
  buf cd, out;
  buf_init(&cd);
  buf_init(&out);
  assert_int_equal(abi_encode_call(&cd, "get()", NULL, 0), 0);
  ethrpc_msg m = {.to = g_fx.contract, .data = cd.ptr, .data_len = cd.len};
  assert_int_equal(ethrpc_call(g_fx.rpc, &m, NULL, &out), 0);
  abi_value pool[4];
  const abi_value *t;
  assert_true(abi_decode("(uint256)", out.ptr, out.len, pool, 4, &t) > 0);
  uint64_t v;
  assert_int_equal(abi_get_u64(&t->items[0], &v), 0);
  assert_int_equal(v, 42);
  /* Anything else reverts with "nope": eth_call, eth_estimateGas ... */
  buf_reset(&cd);
  abi_value args[1] = {abi_uint(1)};
  assert_int_equal(abi_encode_call(&cd, "set(uint256)", args, 1), 0);
  m.data = cd.ptr;
  m.data_len = cd.len;
  buf_reset(&out);
  assert_int_equal(ethrpc_call(g_fx.rpc, &m, NULL, &out), ETHRPC_ERR_REVERT);
  assert_int_equal(ethrpc_last_error(g_fx.rpc)->kind, ETHRPC_E_REVERT);
  assert_string_equal(ethrpc_last_error(g_fx.rpc)->reason, "nope");
  uint64_t gas;
  m.from = g_fx.dev.addr;
  assert_int_equal(ethrpc_estimate_gas(g_fx.rpc, &m, &gas), ETHRPC_ERR_REVERT);
  assert_string_equal(ethrpc_last_error(g_fx.rpc)->reason, "nope");
  /* ... and a mined transaction with a fixed gas limit (status 0, reason by replay). */
  ethrpc_send_opts o = {.gas_limit = 100000, .confirmations = 1, .timeout_ms = 20000, .poll_ms = 100};
  r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, g_fx.contract, NULL, cd.ptr, cd.len, &o, NULL, &rc);
  assert_int_equal(r, ETHRPC_ERR_REVERT);
  assert_int_equal(rc.status, 0);
  assert_string_equal(rc.revert_reason, "nope");
  ethrpc_receipt_deinit(&rc);
  /* Without the fixed gas limit the estimate already refuses. */
  r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, g_fx.contract, NULL, cd.ptr, cd.len, NULL, NULL, &rc);
  assert_int_equal(r, ETHRPC_ERR_REVERT);
  assert_string_equal(ethrpc_last_error(g_fx.rpc)->reason, "nope");
  /* ping(7) emits Pinged(caller indexed, 7): in the receipt and through eth_getLogs. */
  ethrpc_filter f = {.from_block = 0, .to_block = UINT64_MAX, .address = g_fx.contract};
  ethrpc_log *logs;
  size_t nlogs;
  assert_int_equal(ethrpc_get_logs(g_fx.rpc, &f, &logs, &nlogs), 0);
  assert_int_equal(nlogs, 0);
  ethrpc_logs_free(logs, nlogs);
  buf_reset(&cd);
  args[0] = abi_uint(7);
  assert_int_equal(abi_encode_call(&cd, "ping(uint256)", args, 1), 0);
  r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, g_fx.contract, NULL, cd.ptr, cd.len, NULL, NULL, &rc);
  if (r) fail_msg("ping: %d %s", r, ethrpc_last_error(g_fx.rpc)->message);
  assert_int_equal(rc.nlogs, 1);
  const char *ev = "Pinged(address indexed caller, uint256 value)";
  const abi_value *t2;
  abi_value pool2[8];
  assert_true(abi_decode_log(ev, (const uint8_t(*)[32])rc.logs[0].topics, rc.logs[0].ntopics, rc.logs[0].data,
                             rc.logs[0].data_len, pool2, 8, &t2) > 0);
  assert_memory_equal(t2->items[0].b, g_fx.dev.addr, 20);
  assert_int_equal(abi_get_u64(&t2->items[1], &v), 0);
  assert_int_equal(v, 7);
  uint64_t mined_in = rc.block_number;
  ethrpc_receipt_deinit(&rc);
  uint8_t topic0[32];
  assert_int_equal(abi_event_topic(ev, topic0), 0);
  f.from_block = mined_in;
  f.topic0 = (const uint8_t(*)[32])topic0;
  assert_int_equal(ethrpc_get_logs(g_fx.rpc, &f, &logs, &nlogs), 0);
  assert_int_equal(nlogs, 1);
  assert_int_equal(logs[0].block_number, mined_in);
  assert_memory_equal(logs[0].topics[1] + 12, g_fx.dev.addr, 20);
  ethrpc_logs_free(logs, nlogs);
  buf_deinit(&cd);
  buf_deinit(&out);
  buf_deinit(&code);
}

static void test_confirmations(void **state) {
  (void)state;
  REQUIRE_ANVIL();
  wallet fresh;
  assert_int_equal(wallet_generate(&fresh), 0);
  u256 wei = u256_from_u64(12345);
  ethrpc_receipt rc;
  uint8_t h[32];
  assert_int_equal(ethrpc_send_tx(g_fx.rpc, &g_fx.dev, fresh.addr, &wei, NULL, 0, NULL, h, &rc), 0);
  ethrpc_receipt_deinit(&rc);
  /* anvil automines one block per tx: 3 confirmations need 2 more blocks. */
  assert_int_equal(ethrpc_wait_receipt(g_fx.rpc, h, 3, 600, 100, &rc), -ETIMEDOUT);
  json_t *res = NULL;
  assert_int_equal(ethrpc_request(g_fx.rpc, "anvil_mine", json_pack("[s]", "0x2"), &res), 0);
  json_decref(res);
  assert_int_equal(ethrpc_wait_receipt(g_fx.rpc, h, 3, 5000, 100, &rc), 0);
  assert_int_equal(rc.status, 1);
  ethrpc_receipt_deinit(&rc);
  /* Unknown hash: not found. */
  memset(h, 0x42, 32);
  assert_int_equal(ethrpc_get_receipt(g_fx.rpc, h, &rc), ERR_NOTFOUND);
  /* Legacy (EIP-155) path too. */
  ethrpc_send_opts o = {.confirmations = 1, .timeout_ms = 20000, .poll_ms = 100, .legacy = true};
  assert_int_equal(ethrpc_send_tx(g_fx.rpc, &g_fx.dev, fresh.addr, &wei, NULL, 0, &o, h, &rc), 0);
  assert_int_equal(rc.status, 1);
  ethrpc_receipt_deinit(&rc);
  u256 bal;
  assert_int_equal(ethrpc_get_balance(g_fx.rpc, fresh.addr, NULL, &bal), 0);
  assert_int_equal(bal.w[0], 2 * 12345);
  wallet_wipe(&fresh);
}

/* eth_call of a no-argument view returning one bytes32. */
static void call_bytes32(const uint8_t to[20], const char *sig, const abi_value *args, size_t nargs, uint8_t out[32]) {
  buf cd, ret;
  buf_init(&cd);
  buf_init(&ret);
  assert_int_equal(abi_encode_call(&cd, sig, args, nargs), 0);
  ethrpc_msg m = {.to = to, .data = cd.ptr, .data_len = cd.len};
  int r = ethrpc_call(g_fx.rpc, &m, NULL, &ret);
  if (r) fail_msg("%s: %d %s", sig, r, ethrpc_last_error(g_fx.rpc)->reason);
  abi_value pool[2];
  const abi_value *t;
  assert_true(abi_decode("(bytes32)", ret.ptr, ret.len, pool, 2, &t) > 0);
  memcpy(out, t->items[0].b, 32);
  buf_deinit(&cd);
  buf_deinit(&ret);
}

/* The project's Escrow contract (contracts/Escrow.sol, compiled into the library) agrees
 * with crypto/eip712 on the domain separator and voucher digest, and pays a voucher we
 * sign; a replayed voucher reverts with the NothingToClaim custom error. */
static void test_escrow_voucher(void **state) {
  (void)state;
  REQUIRE_ANVIL();
  if (!contracts_escrow_bin_len) skip();
  ethrpc_receipt rc;
  int r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, NULL, NULL, contracts_escrow_bin, contracts_escrow_bin_len, NULL, NULL,
                         &rc);
  if (r) fail_msg("deploy Escrow: %d %s %s", r, ethrpc_last_error(g_fx.rpc)->message, ethrpc_last_error(g_fx.rpc)->reason);
  assert_true(rc.has_contract);
  uint8_t escrow[20];
  memcpy(escrow, rc.contract_address, 20);
  ethrpc_receipt_deinit(&rc);
  uint8_t mine[32], theirs[32];
  call_bytes32(escrow, "domainSeparator()", NULL, 0, theirs);
  eip712_voucher_domain(31337, escrow, mine);
  assert_memory_equal(mine, theirs, 32);

  wallet provider, signer;
  assert_int_equal(wallet_generate(&provider), 0);
  assert_int_equal(wallet_generate(&signer), 0);
  abi_value nargs[2] = {abi_address(g_fx.dev.addr), abi_address(provider.addr)};
  uint8_t predicted[32];
  call_bytes32(escrow, "nextChannelId(address,address)", nargs, 2, predicted);
  /* open(provider, signer, expiry) with 1 ether. */
  u256 one;
  assert_int_equal(u256_from_dec("1000000000000000000", 19, &one), 0);
  abi_value oargs[3] = {abi_address(provider.addr), abi_address(signer.addr), abi_uint((uint64_t)time(NULL) + 3600)};
  buf cd;
  buf_init(&cd);
  assert_int_equal(abi_encode_call(&cd, "open(address,address,uint64)", oargs, 3), 0);
  r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, escrow, &one, cd.ptr, cd.len, NULL, NULL, &rc);
  if (r) fail_msg("open: %d %s %s", r, ethrpc_last_error(g_fx.rpc)->message, ethrpc_last_error(g_fx.rpc)->reason);
  assert_int_equal(rc.nlogs, 1);
  abi_value pool[16];
  const abi_value *ev;
  r = abi_decode_log("Opened(bytes32 indexed channelId, address indexed client, address indexed provider,"
                     " address signer, uint64 expiry, uint256 deposit)",
                     (const uint8_t(*)[32])rc.logs[0].topics, rc.logs[0].ntopics, rc.logs[0].data, rc.logs[0].data_len,
                     pool, 16, &ev);
  assert_true(r > 0);
  uint8_t chan[32];
  memcpy(chan, ev->items[0].b, 32);
  assert_memory_equal(chan, predicted, 32);
  assert_memory_equal(ev->items[3].b, signer.addr, 20);
  assert_int_equal(u256_cmp(&ev->items[5].num, &one), 0);
  ethrpc_receipt_deinit(&rc);

  /* The contract's voucher digest is ours. */
  u256 quarter;
  assert_int_equal(u256_from_dec("250000000000000000", 18, &quarter), 0);
  abi_value vargs[2] = {abi_fixed_bytes(chan, 32), abi_u256(&quarter)};
  call_bytes32(escrow, "voucherDigest(bytes32,uint256)", vargs, 2, theirs);
  eip712_voucher_digest(31337, escrow, chan, &quarter, mine);
  assert_memory_equal(mine, theirs, 32);

  /* claim(channelId, amount, signature), submitted by the dev account: the provider gets paid. */
  uint8_t sig[65];
  assert_int_equal(eip712_voucher_sign(&signer, 31337, escrow, chan, &quarter, sig), 0);
  abi_value cargs[3] = {abi_fixed_bytes(chan, 32), abi_u256(&quarter), abi_bytes(sig, 65)};
  buf_reset(&cd);
  assert_int_equal(abi_encode_call(&cd, "claim(bytes32,uint256,bytes)", cargs, 3), 0);
  r = ethrpc_send_tx(g_fx.rpc, &g_fx.dev, escrow, NULL, cd.ptr, cd.len, NULL, NULL, &rc);
  if (r) fail_msg("claim: %d %s %s", r, ethrpc_last_error(g_fx.rpc)->message, ethrpc_last_error(g_fx.rpc)->reason);
  ethrpc_receipt_deinit(&rc);
  u256 bal;
  assert_int_equal(ethrpc_get_balance(g_fx.rpc, provider.addr, NULL, &bal), 0);
  assert_int_equal(u256_cmp(&bal, &quarter), 0);

  /* Replaying it reverts with NothingToClaim(uint256,uint256): raw data kept, selector named. */
  ethrpc_msg m = {.from = g_fx.dev.addr, .to = escrow, .data = cd.ptr, .data_len = cd.len};
  buf out;
  buf_init(&out);
  assert_int_equal(ethrpc_call(g_fx.rpc, &m, NULL, &out), ETHRPC_ERR_REVERT);
  const ethrpc_error *e = ethrpc_last_error(g_fx.rpc);
  uint8_t sel[4];
  assert_int_equal(abi_selector("NothingToClaim(uint256,uint256)", sel), 0);
  assert_int_equal(e->revert_len, 4 + 64);
  assert_memory_equal(e->revert_data, sel, 4);
  assert_non_null(strstr(e->reason, "custom error 0x"));
  const abi_value *t;
  assert_true(abi_decode("(uint256,uint256)", e->revert_data + 4, e->revert_len - 4, pool, 16, &t) > 0);
  assert_int_equal(u256_cmp(&t->items[1].num, &quarter), 0);
  /* A voucher signed by someone else: WrongSigner. */
  u256 half;
  assert_int_equal(u256_from_dec("500000000000000000", 18, &half), 0);
  assert_int_equal(eip712_voucher_sign(&provider, 31337, escrow, chan, &half, sig), 0);
  cargs[1] = abi_u256(&half);
  cargs[2] = abi_bytes(sig, 65);
  buf_reset(&cd);
  assert_int_equal(abi_encode_call(&cd, "claim(bytes32,uint256,bytes)", cargs, 3), 0);
  m.data = cd.ptr;
  m.data_len = cd.len;
  assert_int_equal(ethrpc_call(g_fx.rpc, &m, NULL, &out), ETHRPC_ERR_REVERT);
  assert_int_equal(abi_selector("WrongSigner(address,address)", sel), 0);
  assert_memory_equal(ethrpc_last_error(g_fx.rpc)->revert_data, sel, 4);
  buf_deinit(&out);
  buf_deinit(&cd);
  wallet_wipe(&provider);
  wallet_wipe(&signer);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transport_errors),
      cmocka_unit_test(test_basics),
      cmocka_unit_test(test_transfer),
      cmocka_unit_test(test_contract),
      cmocka_unit_test(test_confirmations),
      cmocka_unit_test(test_escrow_voucher),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
