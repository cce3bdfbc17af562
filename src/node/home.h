/* node/home — the node home directory and what lives in it.
 *
 *     HOME/                 0700
 *       identity.key        0600  Ed25519 seed (crypto/ident)
 *       wallet.key          0600  secp256k1 secret (crypto/wallet)
 *       config.toml         0600  settings (core/config with home_config_schema)
 *       apiary.db           0600  SQLite store (core/store with home_migrations)
 *       models/                   model store
 *
 * home_init creates all of it and refuses to touch an existing identity. home_paths fills
 * the path strings. Main-thread helpers; no global state. */
#ifndef APIARY_NODE_HOME_H
#define APIARY_NODE_HOME_H

#include <stddef.h>

#include "core/config.h"
#include "core/store.h"
#include "crypto/ident.h"
#include "crypto/wallet.h"

#define HOME_PATH_MAX 1024

typedef struct home_paths {
  char dir[HOME_PATH_MAX];
  char identity[HOME_PATH_MAX];
  char wallet[HOME_PATH_MAX];
  char config[HOME_PATH_MAX];
  char db[HOME_PATH_MAX];
  char models[HOME_PATH_MAX];
} home_paths;

int home_paths_init(home_paths *p, const char *dir);

/* The config schema of a node and the database migrations, assembled from every layer. */
const config_key *home_config_schema(size_t *n_out);
const store_migration *home_migrations(size_t *n_out);

/* Creates a new node home at p->dir: identity, wallet, default config, database.
 * ERR_EXISTS when an identity is already there. On success ident_out / wallet_out (may be
 * NULL) receive the new keys (caller wipes them). err gets a readable message. */
int home_init(const home_paths *p, ident *ident_out, wallet *wallet_out, char *err, size_t err_cap);

/* Loads the config (defaults when the file is missing). Caller frees with config_free. */
int home_load_config(const home_paths *p, config **out, char *err, size_t err_cap);

/* Opens and migrates the database. */
int home_open_store(const home_paths *p, store **out, char *err, size_t err_cap);

#endif
