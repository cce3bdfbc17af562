/* Payments end to end on a real anvil with real node processes on loopback:
 *
 *   deploy    `apiary chain deploy` from provider A's wallet, `apiary chain use` on client C;
 *   wallet    `apiary wallet send` moves exactly the amount;
 *   registry  A lists a model file by sha256; C reads it back; a second listing is refused;
 *   gov       A registers its node key, proposes to verify the model and votes; a double
 *             vote, a vote without a node and an early execute are refused; after the
 *             voting period and timelock (evm_increaseTime) the model is verified;
 *   open      C opens a channel to A (`apiary channel open`, A's wallet address asked over
 *             the link); C's balance drops by exactly deposit + gas;
 *   pay       `apiary pay` several times; below [pay] claim_threshold_wei nothing is
 *             claimed; crossing it, A claims by itself; `apiary channel claim` claims the
 *             rest; every step A's balance rises by exactly the claimed amount minus its gas
 *             (gasUsed × effectiveGasPrice from the receipts) and the escrow's falls by it;
 *   refusals  a payment above the deposit is refused;
 *   crash     A is SIGKILLed right after acknowledging vouchers and before claiming; after a
 *             restart it claims every acknowledged voucher;
 *   offline   anvil is stopped; A keeps accepting vouchers for the known channel; anvil
 *             comes back on the same port with the same state (--state) and A claims them;
 *   funding   topUp and extend by C; an early refund by A pays C deposit - claimed exactly,
 *             and later vouchers are refused.
 * Skips without anvil. Nothing leaves the machine (--no-lan, loopback DHT bootstrap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../support/anvil.h"
#include "../support/testutil.h"
#include "chain/ethrpc.h"
#include "core/hex.h"
#include "crypto/wallet.h"
#include "pay/escrow.h"
#include "pay/voucher.h"

/* anvil dev accounts 1 (provider A) and 0 (client C). */
static const char KEY_A[] = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
static const char KEY_C[] = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

static char out[1 << 16], err[1 << 16];
static char dir[256], home_a[300], home_c[300], state_path[300], id_a[80];
static char anvil_bin[512];
static tu_anvil chain;
static pid_t pid_a, pid_c;
static int port_a, port_c;
static ethrpc *rpc;
static uint8_t addr_a[20], addr_c[20], escrow[20], chan[32];

#define apiary(...) tu_apiary(out, sizeof out, err, sizeof err, __VA_ARGS__)

#define apiary_json(...) tu_apiary_json(out, sizeof out, err, sizeof err, __VA_ARGS__)

static pid_t start_node(const char *home, int port, int boot_port) {
  char listen[64], dhtp[16], boot[64], log[400];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  snprintf(dhtp, sizeof dhtp, "%d", port + 1);
  snprintf(boot, sizeof boot, "127.0.0.1:%d", boot_port + 1);
  snprintf(log, sizeof log, "%s.log", home);
  const char *argv[] = {tu_apiary_bin(), "node", "--home", home, "--listen", listen, "--dht-port", dhtp,
                        "--bootstrap", boot, "--no-lan", "--http", "127.0.0.1:0", NULL};
  pid_t pid = tu_spawn(argv, log);
  for (int k = 0; k < 300; k++) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s status --home %s", tu_apiary_bin(), home);
    if (tu_run(cmd, out, sizeof out, err, sizeof err) == 0) return pid;
    usleep(50000);
  }
  fail_msg("node %s did not start (see %s)", home, log);
  return -1;
}

static void stop_node(pid_t *pid, const char *home) {
  if (*pid <= 0) return;
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s stop --home %s", tu_apiary_bin(), home);
  tu_run(cmd, out, sizeof out, err, sizeof err);
  if (tu_wait_exit(*pid, 10000) < 0) kill(*pid, SIGKILL);
  *pid = 0;
}

static u256 balance(const uint8_t a[20]) {
  u256 b = u256_from_u64(0);
  int rc = ethrpc_get_balance(rpc, a, NULL, &b);
  if (rc) fail_msg("balance: %d", rc);
  return b;
}

static uint64_t head(void) {
  uint64_t n = 0;
  assert_int_equal(ethrpc_block_number(rpc, &n), 0);
  return n;
}

/* Gas paid by `from` in blocks (after, head]: Σ gasUsed × effectiveGasPrice. */
static u256 gas_paid(const uint8_t from[20], uint64_t after) {
  u256 sum = u256_from_u64(0);
  char want[43] = "0x";
  hex_encode(from, 20, want + 2);
  uint64_t h = head();
  for (uint64_t b = after + 1; b <= h; b++) {
    char num[32];
    snprintf(num, sizeof num, "0x%llx", (unsigned long long)b);
    json_t *res = NULL;
    assert_int_equal(ethrpc_request(rpc, "eth_getBlockByNumber", json_pack("[s, b]", num, 1), &res), 0);
    size_t i;
    json_t *tx;
    json_array_foreach(json_object_get(res, "transactions"), i, tx) {
      const char *f = json_string_value(json_object_get(tx, "from"));
      if (!f || strcasecmp(f, want)) continue;
      uint8_t hash[32];
      assert_int_equal(hex_parse(json_string_value(json_object_get(tx, "hash")), hash, 32), 0);
      ethrpc_receipt r;
      assert_int_equal(ethrpc_get_receipt(rpc, hash, &r), 0);
      u256 g;
      assert_int_equal(u256_mul_u64(&g, &r.effective_gas_price, r.gas_used), 0);
      assert_int_equal(u256_add(&sum, &sum, &g), 0);
      ethrpc_receipt_deinit(&r);
    }
    json_decref(res);
  }
  return sum;
}

static escrow_channel onchain(void) {
  escrow_channel st;
  int rc = escrow_get(rpc, escrow, chan, &st);
  if (rc) fail_msg("getChannel: %d", rc);
  return st;
}

static int wait_claimed(uint64_t want, int seconds) {
  u256 w = u256_from_u64(want);
  for (int i = 0; i < seconds * 10; i++) {
    escrow_channel st;
    if (!escrow_get(rpc, escrow, chan, &st) && !u256_cmp(&st.claimed, &w)) return 0;
    usleep(100000);
  }
  return -1;
}

/* Waits until home's node lists the channel with this claimed total. */
static int wait_cached(const char *home, const char *claimed) {
  for (int i = 0; i < 50; i++) {
    json_t *l = apiary_json("channel --home %s list", home);
    json_t *c = json_array_get(json_object_get(l, "channels"), 0);
    const char *v = json_string_value(json_object_get(c, "claimed"));
    int ok = v && !strcmp(v, claimed);
    json_decref(l);
    if (ok) return 0;
    usleep(100000);
  }
  return -1;
}

static void assert_u256_eq(const u256 *a, const u256 *b) {
  if (u256_cmp(a, b)) {
    char x[U256_DEC_BUF], y[U256_DEC_BUF];
    u256_to_dec(a, x);
    u256_to_dec(b, y);
    fail_msg("%s != %s", x, y);
  }
}

/* A's balance rose by exactly `claimed` minus A's gas since block `after`, and the escrow's
 * fell by `claimed`. */
static void check_claim_accounting(const u256 *a_before, const u256 *esc_before, uint64_t claimed, uint64_t after) {
  u256 a_now = balance(addr_a), esc_now = balance(escrow), gas = gas_paid(addr_a, after), expect, c = u256_from_u64(claimed);
  assert_int_equal(u256_add(&expect, &a_now, &gas), 0);
  assert_int_equal(u256_sub(&expect, &expect, a_before), 0); /* now + gas - before */
  assert_u256_eq(&expect, &c);
  u256 drop;
  assert_int_equal(u256_sub(&drop, esc_before, &esc_now), 0);
  assert_u256_eq(&drop, &c);
}

static void pay(uint64_t wei) {
  json_t *r = apiary_json("pay --home %s %s %llu", home_c, id_a, (unsigned long long)wei);
  assert_non_null(r);
  assert_true(json_is_true(json_object_get(r, "accepted")));
  json_decref(r);
}

static void set_threshold(const char *wei) {
  char cfg[400];
  snprintf(cfg, sizeof cfg, "%s/config.toml", home_a);
  assert_int_equal(tu_sh("sed -i 's/^claim_threshold_wei = .*/claim_threshold_wei = \"%s\"/' %s", wei, cfg), 0);
}

static int setup(void **state) {
  (void)state;
  if (!tu_anvil_find(anvil_bin, sizeof anvil_bin)) return 0;
  tu_tmpdir(dir, sizeof dir);
  snprintf(home_a, sizeof home_a, "%s/a", dir);
  snprintf(home_c, sizeof home_c, "%s/c", dir);
  snprintf(state_path, sizeof state_path, "%s/anvil-state.json", dir);
  if (tu_anvil_start(anvil_bin, 0, state_path, &chain)) return 0;
  if (ethrpc_new(chain.url, 5000, &rpc)) return -1;
  port_a = tu_port_block(4);
  if (port_a < 0) return -1;
  port_c = port_a + 2;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  stop_node(&pid_c, home_c);
  stop_node(&pid_a, home_a);
  ethrpc_free(rpc);
  tu_anvil_stop(&chain);
  if (dir[0] && !getenv("APIARY_KEEP_TEST_DIR")) tu_rm_rf(dir);
  return 0;
}

static void test_pay_end_to_end(void **state) {
  (void)state;
  if (!chain.pid) {
    print_message("anvil not available; skipping\n");
    skip();
  }
  /* homes, wallets, deployment */
  assert_int_equal(apiary("init --home %s", home_a), 0);
  assert_int_equal(apiary("init --home %s", home_c), 0);
  assert_int_equal(tu_wallet_import(home_a, KEY_A), 0);
  assert_int_equal(tu_wallet_import(home_c, KEY_C), 0);
  json_t *d = apiary_json("chain --home %s deploy --rpc %s --voting-period 60 --timelock 60", home_a, chain.url);
  assert_non_null(d);
  const char *esc = json_string_value(json_object_get(d, "escrow"));
  assert_int_equal(wallet_addr_parse(esc, strlen(esc), escrow), 0);
  assert_int_equal(apiary("chain --home %s use --rpc %s --escrow %s --registry %s --governance %s", home_c, chain.url,
                          esc, json_string_value(json_object_get(d, "registry")),
                          json_string_value(json_object_get(d, "governance"))), 0);
  json_decref(d);
  json_t *w = apiary_json("wallet --home %s address", home_a);
  const char *s = json_string_value(json_object_get(w, "address"));
  assert_int_equal(wallet_addr_parse(s, strlen(s), addr_a), 0);
  json_decref(w);
  w = apiary_json("wallet --home %s address", home_c);
  s = json_string_value(json_object_get(w, "address"));
  assert_int_equal(wallet_addr_parse(s, strlen(s), addr_c), 0);
  json_decref(w);
  /* wallet send: exactly the amount arrives */
  static const uint8_t sink[20] = {0xde, 0xad, 0xbe, 0xef, 1};
  char sink_text[WALLET_ADDR_BUF];
  wallet_addr_eip55(sink, sink_text);
  assert_int_equal(apiary("wallet --home %s send %s 12345wei", home_c, sink_text), 0);
  json_t *bj = apiary_json("wallet --home %s balance %s", home_c, sink_text);
  assert_non_null(bj);
  assert_string_equal(json_string_value(json_object_get(bj, "wei")), "12345");
  json_decref(bj);

  /* the Registry: list a model file by its sha256, read it back */
  char model[400];
  snprintf(model, sizeof model, "%s/tiny.gguf", dir);
  assert_int_equal(tu_sh("printf 'GGUF-not-really' > %s", model), 0);
  json_t *m = apiary_json("registry --home %s model add %s --license MIT --source https://example.invalid/t", home_a,
                          model);
  assert_non_null(m);
  assert_string_equal(json_string_value(json_object_get(m, "name")), "tiny");
  json_decref(m);
  m = apiary_json("registry --home %s model list", home_c);
  assert_non_null(m);
  json_t *m0 = json_array_get(json_object_get(m, "models"), 0);
  assert_int_equal(json_array_size(json_object_get(m, "models")), 1);
  assert_string_equal(json_string_value(json_object_get(m0, "sha256")), /* sha256sum of the file */
                      "2cb239972ab1520bac7d7a6a5bfb6bda73220e8fd89a517ec11c4525c9d1c6e9");
  assert_string_equal(json_string_value(json_object_get(m0, "license")), "MIT");
  assert_false(json_is_true(json_object_get(m0, "verified")));
  json_decref(m);
  assert_int_not_equal(apiary("registry --home %s model add %s", home_c, model), 0);
  assert_non_null(strstr(err, "ModelExists"));

  /* governance: A registers its node, proposes to verify the model, votes; C (no node
   * registered) cannot vote; execution waits for the vote and the timelock */
  static const char SHA[] = "2cb239972ab1520bac7d7a6a5bfb6bda73220e8fd89a517ec11c4525c9d1c6e9";
  assert_int_equal(apiary("registry --home %s node register --hint 127.0.0.1:7440", home_a), 0);
  json_t *pj = apiary_json("gov --home %s propose verify %s", home_a, SHA);
  assert_non_null(pj);
  assert_int_equal(json_integer_value(json_object_get(pj, "id")), 1);
  json_decref(pj);
  assert_int_equal(apiary("gov --home %s vote 1 yes", home_a), 0);
  assert_int_not_equal(apiary("gov --home %s vote 1 yes", home_a), 0); /* AlreadyVoted */
  assert_int_not_equal(apiary("gov --home %s vote 1 yes", home_c), 0); /* NotNodeOwner */
  assert_int_not_equal(apiary("gov --home %s execute 1", home_a), 0);  /* NotReady */
  assert_non_null(strstr(err, "NotReady")); /* anvil's message carries \u0000 escapes: still parsed */
  json_t *res = NULL;
  assert_int_equal(ethrpc_request(rpc, "evm_increaseTime", json_pack("[i]", 125), &res), 0);
  json_decref(res);
  res = NULL;
  assert_int_equal(ethrpc_request(rpc, "evm_mine", json_array(), &res), 0);
  json_decref(res);
  assert_int_equal(apiary("gov --home %s execute 1", home_c), 0); /* anyone may execute */
  pj = apiary_json("gov --home %s list", home_c);
  json_t *p0 = json_array_get(json_object_get(pj, "proposals"), 0);
  assert_string_equal(json_string_value(json_object_get(p0, "state")), "executed");
  assert_int_equal(json_integer_value(json_object_get(p0, "for")), 1);
  json_decref(pj);
  m = apiary_json("registry --home %s model show %s", home_c, SHA);
  assert_non_null(m);
  assert_true(json_is_true(json_object_get(m, "verified")));
  json_decref(m);

  char cfg[400];
  snprintf(cfg, sizeof cfg, "%s/config.toml", home_a);
  assert_int_equal(tu_sh("sed -i 's/^claim_interval = .*/claim_interval = 1/' %s", cfg), 0);
  set_threshold("250000000000000"); /* 2.5e14 */

  /* nodes */
  pid_a = start_node(home_a, port_a, port_c);
  pid_c = start_node(home_c, port_c, port_a);
  json_t *id = apiary_json("id --home %s", home_a);
  snprintf(id_a, sizeof id_a, "%s", json_string_value(json_object_get(id, "node_id")));
  json_decref(id);
  int reached = 0;
  for (int i = 0; i < 60 && !reached; i++) {
    reached = apiary("ping --home %s %s", home_c, id_a) == 0;
    if (!reached) usleep(250000);
  }
  assert_true(reached);

  /* open: C pays deposit + gas exactly */
  const uint64_t DEPOSIT = 1000000000000000ull; /* 1e15 */
  u256 c0 = balance(addr_c);
  uint64_t b0 = head();
  json_t *ch = apiary_json("channel --home %s open %s %llu --expiry 86400", home_c, id_a, (unsigned long long)DEPOSIT);
  assert_non_null(ch);
  assert_int_equal(hex_parse(json_string_value(json_object_get(ch, "id")), chan, 32), 0);
  json_decref(ch);
  u256 c1 = balance(addr_c), gas_c = gas_paid(addr_c, b0), spent, want = u256_from_u64(DEPOSIT);
  assert_int_equal(u256_sub(&spent, &c0, &c1), 0);
  assert_int_equal(u256_add(&want, &want, &gas_c), 0);
  assert_u256_eq(&spent, &want);
  escrow_channel st = onchain();
  assert_memory_equal(st.provider, addr_a, 20);
  assert_memory_equal(st.signer, addr_c, 20);

  /* pay below the threshold: accepted, nothing claimed */
  u256 a0 = balance(addr_a), e0 = balance(escrow);
  uint64_t b1 = head();
  pay(100000000000000ull);
  pay(100000000000000ull);
  sleep(2);
  st = onchain();
  assert_true(u256_is_zero(&st.claimed));
  /* crossing it: A claims by itself */
  pay(100000000000000ull);
  assert_int_equal(wait_claimed(300000000000000ull, 20), 0);
  check_claim_accounting(&a0, &e0, 300000000000000ull, b1);

  /* a forced claim of the rest */
  a0 = balance(addr_a), e0 = balance(escrow), b1 = head();
  pay(50000000000000ull);
  assert_int_equal(apiary("channel --home %s claim", home_a), 0);
  assert_int_equal(wait_claimed(350000000000000ull, 10), 0);
  check_claim_accounting(&a0, &e0, 50000000000000ull, b1);

  /* overspend is refused by the client (and would be by the provider) */
  assert_int_not_equal(apiary("pay --home %s %s 1000000000000000", home_c, id_a), 0);

  /* crash: A acknowledges 2e14 (below the threshold), is killed before claiming */
  a0 = balance(addr_a), e0 = balance(escrow), b1 = head();
  pay(100000000000000ull);
  pay(100000000000000ull);
  kill(pid_a, SIGKILL);
  tu_wait_exit(pid_a, 5000);
  pid_a = 0;
  st = onchain();
  u256 c35 = u256_from_u64(350000000000000ull);
  assert_u256_eq(&st.claimed, &c35);
  set_threshold("1");
  pid_a = start_node(home_a, port_a, port_c);
  assert_int_equal(wait_claimed(550000000000000ull, 20), 0);
  check_claim_accounting(&a0, &e0, 200000000000000ull, b1);
  assert_int_equal(wait_cached(home_a, "550000000000000"), 0);

  /* offline: the chain goes away; A keeps accepting; the chain comes back and A claims */
  a0 = balance(addr_a), e0 = balance(escrow), b1 = head();
  tu_anvil_stop(&chain);
  reached = 0;
  for (int i = 0; i < 60 && !reached; i++) { /* C re-dials A after its restart */
    reached = apiary("ping --home %s %s", home_c, id_a) == 0;
    if (!reached) usleep(250000);
  }
  assert_true(reached);
  pay(10000000000000ull);
  pay(10000000000000ull);
  json_t *l = apiary_json("channel --home %s list", home_a);
  json_t *c0j = json_array_get(json_object_get(l, "channels"), 0);
  assert_string_equal(json_string_value(json_object_get(c0j, "signed")), "570000000000000");
  assert_string_equal(json_string_value(json_object_get(c0j, "claimed")), "550000000000000");
  json_decref(l);
  sleep(2); /* a few failed claim attempts */
  int port = chain.port;
  assert_int_equal(tu_anvil_start(anvil_bin, port, state_path, &chain), 0);
  assert_int_equal(wait_claimed(570000000000000ull, 20), 0);
  check_claim_accounting(&a0, &e0, 20000000000000ull, b1);
  assert_int_equal(wait_cached(home_a, "570000000000000"), 0); /* recorded after the chain confirms */

  /* topUp and extend by the client, then an early release (refund) by the provider: the
   * client gets deposit - claimed back exactly, and further vouchers are refused. */
  char idh[67] = "0x";
  hex_encode(chan, 32, idh + 2);
  st = onchain();
  uint64_t old_expiry = st.expiry;
  assert_int_equal(apiary("channel --home %s topup %s 100000000000000", home_c, idh), 0);
  assert_int_equal(apiary("channel --home %s extend %s 172800", home_c, idh), 0);
  st = onchain();
  u256 dep = u256_from_u64(1100000000000000ull);
  assert_u256_eq(&st.deposit, &dep);
  assert_true(st.expiry > old_expiry);
  l = apiary_json("channel --home %s list", home_c);
  c0j = json_array_get(json_object_get(l, "channels"), 0);
  assert_string_equal(json_string_value(json_object_get(c0j, "deposit")), "1100000000000000");
  json_decref(l);
  u256 cb = balance(addr_c);
  assert_int_equal(apiary("channel --home %s refund %s", home_a, idh), 0);
  u256 ca = balance(addr_c), back, want_back = u256_from_u64(1100000000000000ull - 570000000000000ull);
  assert_int_equal(u256_sub(&back, &ca, &cb), 0);
  assert_u256_eq(&back, &want_back);
  st = onchain();
  assert_true(st.closed);
  assert_int_not_equal(apiary("pay --home %s %s 1", home_c, id_a), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_pay_end_to_end)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
