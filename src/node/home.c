/* node/home — node home layout, init, config schema and migrations; see home.h. */
#include "node/home.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/fs.h"
#include "http/auth.h"
#include "p2p/peers.h"
#include "market/payflow.h"
#include "market/receipt.h"
#include "pay/channel.h"

/* Every setting a node has, with its default. Later layers append their sections. */
static const config_key schema[] = {
    {"node", "name", CONFIG_STR, "\"\"", 0, 0, "a label for this node shown to its owner (not secret, not unique)"},
    {"log", "level", CONFIG_STR, "\"info\"", 0, 0, "log level: debug, info, warn or error"},
    {"engine", "threads", CONFIG_INT, "0", 0, 256, "inference threads; 0 means one per core"},
    {"engine", "context", CONFIG_INT, "4096", 16, 1048576, "context length (tokens) of a generation, capped by the model's"},
    {"net", "listen", CONFIG_STR, "\"0.0.0.0:7440\"", 0, 0, "TCP address for encrypted peer links (ADDR:PORT)"},
    {"net", "keepalive", CONFIG_INT, "15", 1, 3600, "seconds without sending before a link sends a keepalive"},
    {"net", "idle_timeout", CONFIG_INT, "60", 2, 86400, "seconds without hearing from a peer before its link is declared dead"},
    {"dht", "enabled", CONFIG_BOOL, "true", 0, 0, "join the BitTorrent Mainline DHT to find other nodes"},
    {"dht", "port", CONFIG_INT, "7441", 0, 65535, "UDP port of the Mainline DHT (0 = any free port)"},
    {"dht", "bootstrap", CONFIG_LIST,
     "[\"router.bittorrent.com:6881\", \"dht.transmissionbt.com:6881\", \"router.utorrent.com:6881\", \"dht.libtorrent.org:25401\"]",
     0, 0, "DHT nodes to start from (HOST:PORT); --bootstrap replaces this list"},
    {"dht", "allow_private", CONFIG_BOOL, "false", 0, 0,
     "accept loopback and private addresses in the DHT (labs; on automatically with a private --bootstrap)"},
    {"lan", "enabled", CONFIG_BOOL, "true", 0, 0, "find nodes on the local network with signed multicast beacons"},
    {"lan", "port", CONFIG_INT, "7447", 1, 65535, "UDP port of the LAN beacons"},
    {"lan", "group", CONFIG_STR, "\"239.192.77.7\"", 0, 0, "IPv4 multicast group of the LAN beacons"},
    {"nat", "enabled", CONFIG_BOOL, "true", 0, 0,
     "ask the home router to forward our ports (UPnP-IGD, then NAT-PMP); never when listening on loopback"},
    {"http", "enabled", CONFIG_BOOL, "true", 0, 0, "serve the OpenAI-compatible API (bearer tokens from 'apiary token create')"},
    {"http", "listen", CONFIG_STR, "\"127.0.0.1:8080\"", 0, 0, "address of the local API; keep it on loopback unless you mean to expose it"},
    {"lan", "interface", CONFIG_STR, "\"\"", 0, 0, "IPv4 address of the interface for beacons; empty = the system's default"},
    {"chain", "rpc", CONFIG_STR, "\"http://127.0.0.1:8545\"", 0, 0, "JSON-RPC URL of the EVM chain that holds the escrow (a local anvil by default)"},
    {"chain", "chain_id", CONFIG_INT, "0", 0, INT64_MAX, "chain id of the deployment (set by 'apiary chain deploy'; 0 = not deployed)"},
    {"chain", "escrow", CONFIG_STR, "\"\"", 0, 0, "Escrow contract address (set by 'apiary chain deploy')"},
    {"chain", "registry", CONFIG_STR, "\"\"", 0, 0, "Registry contract address (set by 'apiary chain deploy')"},
    {"chain", "governance", CONFIG_STR, "\"\"", 0, 0, "Governance contract address (set by 'apiary chain deploy')"},
    {"pay", "claim_threshold_wei", CONFIG_STR, "\"10000000000000000\"", 0, 0, "claim a channel once its unclaimed vouchers reach this many wei"},
    {"pay", "claim_before_expiry", CONFIG_INT, "3600", 0, 31536000, "claim a channel with unclaimed vouchers when it expires within this many seconds"},
    {"pay", "expiry_margin", CONFIG_INT, "600", 0, 31536000, "refuse vouchers on a channel that expires within this many seconds"},
    {"pay", "claim_interval", CONFIG_INT, "10", 1, 86400, "seconds between checks for channels to claim (and retries while the chain is down)"},
    {"engine", "max_tps", CONFIG_INT, "0", 0, 1000000, "cap on generated tokens per second per request (0 = none), e.g. to keep a small device cool"},
    {"market", "serve", CONFIG_LIST, "[]", 0, 0, "models this node sells (store names or GGUF paths); empty = every model in the store"},
    {"market", "price_prompt", CONFIG_INT, "0", 0, INT64_MAX, "price in wei per 1,000 prompt tokens"},
    {"market", "price_gen", CONFIG_INT, "0", 0, INT64_MAX, "price in wei per 1,000 generated tokens"},
    {"market", "max_concurrent", CONFIG_INT, "2", 1, 1024, "generations sold at once per model"},
    {"market", "credit_tokens", CONFIG_INT, "32", 1, 1000000, "tokens a buyer may receive beyond what it has paid before generation pauses"},
    {"market", "pay_timeout", CONFIG_INT, "10", 1, 3600, "seconds a paused or finished generation waits for payment before it is dropped"},
    {"market", "max_price_prompt", CONFIG_INT, "1000000000000000", 0, INT64_MAX, "most this node pays per 1,000 prompt tokens (wei; 0 = no limit)"},
    {"market", "max_price_gen", CONFIG_INT, "1000000000000000", 0, INT64_MAX, "most this node pays per 1,000 generated tokens (wei; 0 = no limit)"},
    {"market", "channel_deposit", CONFIG_STR, "\"0.01eth\"", 0, 0, "deposit of a payment channel this node opens to a provider"},
    {"market", "channel_lifetime", CONFIG_INT, "86400", 3600, 31536000, "seconds until such a channel expires"},
    {"market", "pay_every", CONFIG_INT, "8", 1, 100000, "send a voucher every this many received tokens"},
    {"market", "stall_timeout", CONFIG_INT, "10000", 100, 3600000, "milliseconds without a token before a provider is abandoned for the next"},
    {"market", "register_models", CONFIG_BOOL, "true", 0, 0, "list the served models' hashes in the Registry contract (when not listed yet)"},
    {"market", "verify_rate", CONFIG_STR, "\"0\"", 0, 0, "fraction of remote answers re-run on a second provider and compared (0 to 1)"},
};

/* Append-only: version i+1 is list[i]. Never edit or reorder a landed entry. */
static const store_migration migrations[] = {
    {"node",
     "CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"},
    {"p2p", peers_schema_v1},
    {"http", auth_schema_v1},
    {"pay", pay_schema_v1},
    {"market", market_schema_v1},
    {"market", market_schema_v2},
};

const config_key *home_config_schema(size_t *n_out) {
  *n_out = sizeof schema / sizeof *schema;
  return schema;
}

const store_migration *home_migrations(size_t *n_out) {
  *n_out = sizeof migrations / sizeof *migrations;
  return migrations;
}

int home_paths_init(home_paths *p, const char *dir) {
  memset(p, 0, sizeof *p);
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  if (n == 0 || n >= sizeof p->dir - 32) return ERR_TOOBIG;
  memcpy(p->dir, dir, n);
  p->dir[n] = 0;
  int rc = fs_join(p->identity, sizeof p->identity, p->dir, "identity.key");
  rc = rc ? rc : fs_join(p->wallet, sizeof p->wallet, p->dir, "wallet.key");
  rc = rc ? rc : fs_join(p->config, sizeof p->config, p->dir, "config.toml");
  rc = rc ? rc : fs_join(p->db, sizeof p->db, p->dir, "apiary.db");
  rc = rc ? rc : fs_join(p->models, sizeof p->models, p->dir, "models");
  return rc;
}

int home_load_config(const home_paths *p, config **out, char *err, size_t err_cap) {
  size_t n;
  const config_key *s = home_config_schema(&n);
  config *c;
  int rc = config_new(s, n, &c);
  if (rc) return rc;
  rc = config_load_file(c, p->config, err, err_cap);
  if (rc == -ENOENT) rc = 0; /* no file: defaults */
  if (rc) {
    config_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int home_open_store(const home_paths *p, store **out, char *err, size_t err_cap) {
  store *s;
  int rc = store_open(p->db, &s, err, err_cap);
  if (rc) return rc;
  size_t n;
  const store_migration *m = home_migrations(&n);
  rc = store_migrate(s, m, n, err, err_cap);
  if (rc < 0) {
    store_close(s);
    return rc;
  }
  *out = s;
  return 0;
}

static int record_meta(store *s, const char *key, const char *value) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(store_db(s), "INSERT OR REPLACE INTO node_meta(key, value) VALUES (?, ?)", -1, &st,
                         NULL) != SQLITE_OK)
    return ERR_STORE;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

#define FAIL(code, ...)                                                                      \
  do {                                                                                       \
    rc = (code);                                                                             \
    if (err && err_cap) snprintf(err, err_cap, __VA_ARGS__);                                 \
    goto done;                                                                               \
  } while (0)

int home_init(const home_paths *p, ident *ident_out, wallet *wallet_out, char *err, size_t err_cap) {
  ident id;
  wallet w;
  store *st = NULL;
  buf cfg;
  buf_init(&cfg);
  int rc;
  memset(&id, 0, sizeof id);
  memset(&w, 0, sizeof w);
  if (fs_exists(p->identity) == 1)
    FAIL(ERR_EXISTS, "%s already holds a node identity (%s); refusing to overwrite it. Use another --home, "
         "or move that directory away if you really mean to start over", p->dir, p->identity);
  if (fs_exists(p->wallet) == 1)
    FAIL(ERR_EXISTS, "%s exists without an identity: an earlier init was interrupted. The wallet key may hold "
         "funds, so apiary will not replace it: move it away and run init again", p->wallet);
  if ((rc = fs_mkdir_p(p->dir, 0700))) FAIL(rc, "cannot create %s: %s", p->dir, err_str(rc));
  if (chmod(p->dir, 0700) < 0) FAIL(-errno, "cannot make %s private (chmod 700): %s", p->dir, strerror(errno));
  if ((rc = fs_mkdir_p(p->models, 0700))) FAIL(rc, "cannot create %s: %s", p->models, err_str(rc));

  if ((rc = wallet_generate(&w))) FAIL(rc, "cannot create a wallet key: %s", err_str(rc));
  if ((rc = ident_generate(&id))) FAIL(rc, "cannot create an identity key: %s", err_str(rc));

  if (fs_exists(p->config) != 1) {
    size_t n;
    const config_key *s = home_config_schema(&n);
    rc = config_write_default(s, n,
                              "# apiary node configuration.\n"
                              "# Every setting is listed with its default; edit values in place.\n"
                              "# Unknown keys are errors, so typos are caught. See docs/config.md.\n\n",
                              &cfg);
    if (!rc) rc = fs_write_atomic(p->config, cfg.ptr, cfg.len, 0600, FS_NO_OVERWRITE);
    if (rc) FAIL(rc, "cannot write %s: %s", p->config, err_str(rc));
  }
  if ((rc = home_open_store(p, &st, err, err_cap))) goto done;

  /* Keys last, wallet before identity: an identity file means init completed. */
  if ((rc = wallet_save(&w, p->wallet))) FAIL(rc, "cannot write %s: %s", p->wallet, err_str(rc));
  if ((rc = ident_save(&id, p->identity))) FAIL(rc, "cannot write %s: %s", p->identity, err_str(rc));

  char node_id[IDENT_ID_BUF], created[32];
  ident_id_encode(id.pk, node_id);
  snprintf(created, sizeof created, "%lld", (long long)time(NULL));
  if (record_meta(st, "node_id", node_id) || record_meta(st, "created_at", created))
    FAIL(ERR_STORE, "cannot record the node in %s: %s", p->db, store_errmsg(st));
  if (ident_out) *ident_out = id;
  if (wallet_out) *wallet_out = w;
  rc = 0;
done:
  store_close(st);
  buf_deinit(&cfg);
  ident_wipe(&id);
  wallet_wipe(&w);
  return rc;
}
