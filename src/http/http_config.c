/* http/http_config — see http_config.h. */
#include "http/http_config.h"

#include <stdint.h>

/* Settings of the local API. */
const config_key http_config_keys[] = {
    {"http", "enabled", CONFIG_BOOL, "true", 0, 0, "serve the OpenAI-compatible API (bearer tokens from 'apiary token create')"},
    {"http", "listen", CONFIG_STR, "\"127.0.0.1:8080\"", 0, 0, "address of the local API; keep it on loopback unless you mean to expose it"},
    {"http", "max_generations", CONFIG_INT, "32", 1, 4096, "generations the API runs or waits for at once; more are refused with 429 and Retry-After"},
    {"http", "max_connections", CONFIG_INT, "512", 8, 65536, "open API connections at once (they share the [http] threads; a waiting or streaming one holds none)"},
    {"http", "threads", CONFIG_INT, "4", 1, 64, "threads serving the API, each polling many connections (waits and streams park, never block one)"},
    {"http", "max_per_address", CONFIG_INT, "32", 0, 65536, "open API connections from one address (127.0.0.1 and ::1 exempt; 0 = no cap)"},
    {"http", "idle_timeout", CONFIG_INT, "30", 2, 3600, "seconds an API connection may stay silent before it is closed (streams send keepalives)"},
    {"http", "cors_origins", CONFIG_LIST, "[]", 0, 0, "web origins allowed to call the API from a browser (e.g. \"http://localhost:3000\"); empty = none"},
};
const size_t http_config_keys_n = sizeof http_config_keys / sizeof *http_config_keys;
