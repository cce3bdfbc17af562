/* bench_voucher — the cost of paying per token: vouchers signed, checked and durably
 * accepted per second, the gas of the Escrow transactions measured on a real anvil, and
 * the on-chain cost per 1,000 tokens with channels against paying on chain per request.
 * Prints tables; asserts nothing. The gas part runs only when anvil is installed
 * (scripts/setup puts it in tools/node_modules/.bin). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chain/ethrpc.h"
#include "core/err.h"
#include "core/hex.h"
#include "core/store.h"
#include "node/home.h"
#include "pay/channel.h"
#include "pay/escrow.h"
#include "pay/voucher.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_channel(channel *ch, const wallet *client, const wallet *provider) {
  memset(ch, 0, sizeof *ch);
  for (int i = 0; i < 32; i++) ch->id[i] = (uint8_t)(i * 7 + 1);
  ch->chain_id = 31337;
  memset(ch->escrow, 0xee, 20);
  memcpy(ch->client, client->addr, 20);
  memcpy(ch->signer, client->addr, 20);
  memcpy(ch->provider, provider->addr, 20);
  ch->deposit = u256_from_u64(1000000000000000000ull);
  ch->expiry = (uint64_t)time(NULL) + 86400;
}

/* Accept n vouchers into a fresh database in dir; returns vouchers/s. */
static double accept_rate(const char *dir, const voucher *vs, int n, channel *prov) {
  char path[512], err[256];
  snprintf(path, sizeof path, "%s/bench-voucher-%d.db", dir, (int)getpid());
  unlink(path);
  store *s;
  size_t nm;
  const store_migration *m = home_migrations(&nm);
  if (store_open(path, &s, err, sizeof err) || store_migrate(s, m, nm, err, sizeof err) < 0) return -1;
  channel_put(s, prov);
  double t0 = now_s();
  for (int i = 0; i < n; i++)
    if (voucher_accept(s, &vs[i], (uint64_t)time(NULL), 600, NULL)) return -1;
  double rate = n / (now_s() - t0);
  store_close(s);
  char side[600];
  unlink(path);
  snprintf(side, sizeof side, "%s-wal", path);
  unlink(side);
  snprintf(side, sizeof side, "%s-shm", path);
  unlink(side);
  return rate;
}

static pid_t start_anvil(int port) {
  char anvil[512];
  snprintf(anvil, sizeof anvil, "tools/node_modules/.bin/anvil");
  if (access(anvil, X_OK)) return -1;
  fflush(stdout); /* or the child would write our buffered output again */
  pid_t pid = fork();
  if (pid == 0) {
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execl(anvil, anvil, "--host", "127.0.0.1", "--port", p, "--silent", (char *)NULL);
    _exit(127);
  }
  return pid;
}

int main(void) {
  wallet client, provider;
  uint8_t k0[32], k1[32];
  /* anvil's first two development keys: funded on the local chain below */
  hex_decode("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", 64, k0, 32);
  hex_decode("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d", 64, k1, 32);
  wallet_from_secret(k0, &client);
  wallet_from_secret(k1, &provider);

  /* ---- vouchers ---- */
  channel ch;
  make_channel(&ch, &client, &provider);
  enum { N = 3000 };
  static voucher vs[N];
  double t0 = now_s();
  for (int i = 0; i < N; i++) {
    u256 amt = u256_from_u64(1000ull * (uint64_t)(i + 1));
    if (voucher_sign(&ch, &client, &amt, (uint64_t)time(NULL), &vs[i])) { fprintf(stderr, "sign failed\n"); return 1; }
    ch.amount = amt;
  }
  double sign_rate = N / (now_s() - t0);
  channel prov;
  make_channel(&prov, &client, &provider);
  prov.role = CHANNEL_PROVIDER;
  t0 = now_s();
  for (int i = 0; i < N; i++) {
    if (voucher_check(&prov, &vs[i], (uint64_t)time(NULL), 600)) { fprintf(stderr, "check failed\n"); return 1; }
    prov.amount = vs[i].amount;
  }
  double check_rate = N / (now_s() - t0);
  make_channel(&prov, &client, &provider);
  prov.role = CHANNEL_PROVIDER;
  double disk = accept_rate("build", vs, 1000, &prov);
  double shm = accept_rate("/dev/shm", vs, N, &prov);
  printf("vouchers (EIP-712 Voucher{channelId, amount}, secp256k1)\n");
  printf("  %-46s %10.0f /s\n", "signed (client)", sign_rate);
  printf("  %-46s %10.0f /s\n", "checked offline: signature + rules (provider)", check_rate);
  printf("  %-46s %10.0f /s\n", "accepted and committed, SQLite on disk (fsync)", disk);
  printf("  %-46s %10.0f /s\n", "accepted and committed, SQLite on tmpfs", shm);

  /* ---- gas on a real chain ---- */
  int port = 40000 + (int)(getpid() % 20000);
  pid_t anvil = start_anvil(port);
  if (anvil < 0) {
    printf("\nanvil not installed: run scripts/setup for the gas figures\n");
    return 0;
  }
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
  ethrpc *rpc = NULL;
  uint64_t chain_id = 0;
  for (int i = 0; i < 100; i++) {
    if (!rpc && ethrpc_new(url, 5000, &rpc)) break;
    if (ethrpc_chain_id(rpc, &chain_id) == 0) break;
    usleep(100000);
  }
  escrow_gov_params gp = {1, 60, 60};
  escrow_deployment dep;
  ethrpc_receipt r_open, r_claim, r_claim2, r_refund;
  memset(&r_open, 0, sizeof r_open);
  memset(&r_claim, 0, sizeof r_claim);
  memset(&r_claim2, 0, sizeof r_claim2);
  memset(&r_refund, 0, sizeof r_refund);
  int rc = escrow_deploy_all(rpc, &client, &gp, &dep);
  uint8_t id[32];
  u256 dep_amt = u256_from_u64(10000000000000000ull);
  if (!rc) rc = escrow_open(rpc, &client, dep.escrow, provider.addr, client.addr, (uint64_t)time(NULL) + 86400,
                            &dep_amt, id, &r_open);
  channel real;
  memset(&real, 0, sizeof real);
  memcpy(real.id, id, 32);
  real.chain_id = dep.chain_id;
  memcpy(real.escrow, dep.escrow, 20);
  memcpy(real.client, client.addr, 20);
  memcpy(real.signer, client.addr, 20);
  memcpy(real.provider, provider.addr, 20);
  real.deposit = dep_amt;
  real.expiry = (uint64_t)time(NULL) + 86400;
  voucher v1, v2;
  u256 a1 = u256_from_u64(1000000000000000ull), a2 = u256_from_u64(2000000000000000ull);
  if (!rc) rc = voucher_sign(&real, &client, &a1, (uint64_t)time(NULL), &v1);
  if (!rc) rc = escrow_claim(rpc, &provider, dep.escrow, id, &a1, v1.sig, &r_claim);
  real.amount = a1;
  if (!rc) rc = voucher_sign(&real, &client, &a2, (uint64_t)time(NULL), &v2);
  if (!rc) rc = escrow_claim(rpc, &provider, dep.escrow, id, &a2, v2.sig, &r_claim2);
  if (!rc) rc = escrow_refund(rpc, &provider, dep.escrow, id, &r_refund);
  kill(anvil, SIGTERM);
  waitpid(anvil, NULL, 0);
  ethrpc_free(rpc);
  if (rc) {
    printf("\ngas measurement failed: %s\n", err_str(rc));
    return 0;
  }
  printf("\ngas on anvil (whole transactions)\n");
  printf("  %-46s %10llu\n", "open (client's first channel)", (unsigned long long)r_open.gas_used);
  printf("  %-46s %10llu\n", "claim (first on a channel)", (unsigned long long)r_claim.gas_used);
  printf("  %-46s %10llu\n", "claim (later)", (unsigned long long)r_claim2.gas_used);
  printf("  %-46s %10llu\n", "refund (provider releases the rest)", (unsigned long long)r_refund.gas_used);
  printf("  %-46s %10u\n", "a plain ETH transfer (for comparison)", 21000u);

  /* Cost model: one channel carries T tokens with a claim every C tokens; paying on chain
   * instead means one transfer per request of R tokens. */
  const double T = 1e6, C = 1e5, R = 256, gwei = 1.0;
  double channel_gas = (double)r_open.gas_used + (T / C) * (double)r_claim2.gas_used + (double)r_refund.gas_used;
  double per1k_channel = channel_gas / (T / 1000.0);
  double per1k_onchain = 21000.0 * (1000.0 / R);
  printf("\non-chain gas per 1,000 tokens at %.0f gwei (1M tokens per channel, a claim every 100k tokens,\n"
         "requests of 256 tokens when paying on chain per request)\n", gwei);
  printf("  %-46s %10.0f gas  %8.0f gwei\n", "payment channel + per-token vouchers", per1k_channel, per1k_channel * gwei);
  printf("  %-46s %10.0f gas  %8.0f gwei\n", "one on-chain transfer per request", per1k_onchain, per1k_onchain * gwei);
  printf("  %-46s %10.0fx\n", "channels are cheaper by", per1k_onchain / per1k_channel);
  ethrpc_receipt_deinit(&r_open);
  ethrpc_receipt_deinit(&r_claim);
  ethrpc_receipt_deinit(&r_claim2);
  ethrpc_receipt_deinit(&r_refund);
  return 0;
}
