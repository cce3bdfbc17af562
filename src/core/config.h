/* core/config — the node's config file: a strict subset of TOML that people edit by hand.
 *
 *     # comment
 *     [section]
 *     key = "string"        # strings in double quotes (\" \\ \n \t escapes)
 *     n = 42                # integers
 *     on = true             # booleans
 *     peers = ["a", "b"]    # one-line lists of strings
 *
 * Parsing is driven by a schema (config_key[]) owned by the layer that wires the node
 * (src/node): every key has a type, a default, limits and a help line. Unknown sections
 * and keys, duplicates, wrong types and out-of-range values are errors reported as
 * "FILE:LINE: message" so the user can fix them. config_write_default emits a commented
 * file with every key at its default. A config owns copies of all its strings.
 * Not thread-safe for writes; read-only use after loading is safe from any thread. */
#ifndef APIARY_CORE_CONFIG_H
#define APIARY_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CONFIG_MAX_FILE (1u << 20)
#define CONFIG_MAX_LINE 4096
#define CONFIG_MAX_LIST 256

typedef enum { CONFIG_STR, CONFIG_INT, CONFIG_BOOL, CONFIG_LIST } config_type;

typedef struct config_key {
  const char *section; /* "node" */
  const char *name;    /* "listen" */
  config_type type;
  const char *def;     /* default in config syntax: "\"x\"", "42", "true", "[]" */
  int64_t min, max;    /* CONFIG_INT limits (inclusive) */
  const char *help;    /* one line, written as a comment above the key */
} config_key;

typedef struct config config;

/* Creates a config holding the schema's defaults. The schema is borrowed and must outlive
 * the config. Returns 0 or an error (a bad default in the schema is ERR_INVAL). */
int config_new(const config_key *schema, size_t n, config **out);
void config_free(config *c);
/* Parses text over the current values. name labels error messages. On error err holds
 * "NAME:LINE: message" and the config keeps its previous values for keys not yet set. */
int config_parse(config *c, const char *text, size_t len, const char *name, char *err, size_t cap);
/* Reads and parses path. A missing file is -ENOENT (caller decides if that is fine). */
int config_load_file(config *c, const char *path, char *err, size_t cap);

/* Getters. Asking for a key that is not in the schema, or with the wrong type, is a
 * programming error (asserts). */
const char *config_str(const config *c, const char *section, const char *name);
int64_t config_int(const config *c, const char *section, const char *name);
int config_bool(const config *c, const char *section, const char *name);
size_t config_list(const config *c, const char *section, const char *name, const char *const **items_out);

/* Appends a complete commented config file with every key at its default. */
int config_write_default(const config_key *schema, size_t n, const char *header, buf *out);

#endif
