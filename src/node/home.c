/* node/home — node home layout, init, config schema and migrations; see home.h. */
#include "node/home.h"

#include <errno.h>
#include <pthread.h>
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
#include "chain/chain_config.h"
#include "agent/agent_config.h"
#include "agent/agent_store.h"
#include "agent/a2a_calls.h"
#include "agent/a2a_task.h"
#include "agent/neg_store.h"
#include "http/http_config.h"
#include "market/market_config.h"
#include "market/payflow.h"
#include "p2p/p2p_config.h"
#include "pay/pay_config.h"
#include "privacy/policy_config.h"
#include "market/receipt.h"
#include "pay/channel.h"
#include "privacy/owner.h"
#include "privacy/vault.h"

/* The node's own settings; every layer declares its own (p2p, market, chain, pay, http). */
static const config_key node_keys[] = {
    {"node", "name", CONFIG_STR, "\"\"", 0, 0, "a label for this node shown to its owner (not secret, not unique)"},
    {"log", "level", CONFIG_STR, "\"info\"", 0, 0, "log level: debug, info, warn or error"},
};

/* Every layer's keys, in the order the default config.toml shows them. */
static const struct { const config_key *keys; const size_t *n; } layers[] = {
    {node_keys, NULL}, {market_config_keys, &market_config_keys_n}, {p2p_config_keys, &p2p_config_keys_n},
    {http_config_keys, &http_config_keys_n}, {chain_config_keys, &chain_config_keys_n},
    {pay_config_keys, &pay_config_keys_n}, {agent_config_keys, &agent_config_keys_n},
    {policy_config_keys, &policy_config_keys_n}, {owner_config_keys, &owner_config_keys_n},
};

static config_key schema[128];
static size_t n_schema;
static pthread_once_t schema_once = PTHREAD_ONCE_INIT;

static void build_schema(void) {
  for (size_t l = 0; l < sizeof layers / sizeof *layers; l++) {
    size_t n = layers[l].n ? *layers[l].n : sizeof node_keys / sizeof *node_keys;
    for (size_t i = 0; i < n && n_schema < sizeof schema / sizeof *schema; i++) schema[n_schema++] = layers[l].keys[i];
  }
}

/* Append-only: version i+1 is list[i]. Never edit or reorder a landed entry. */
static const store_migration migrations[] = {
    {"node",
     "CREATE TABLE node_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;"},
    {"p2p", peers_schema_v1},
    {"http", auth_schema_v1},
    {"pay", pay_schema_v1},
    {"market", market_schema_v1},
    {"market", market_schema_v2},
    {"agent", agent_schema_v1},
    {"agent", a2a_schema_v1},
    {"agent", a2a_calls_schema_v1},
    {"agent", a2a_schema_v2},
    {"http", auth_schema_v2},
    {"agent", neg_schema_v1},
    {"privacy", vault_schema_v1},
};

const config_key *home_config_schema(size_t *n_out) {
  pthread_once(&schema_once, build_schema);
  *n_out = n_schema;
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
