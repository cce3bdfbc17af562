/* http/http_config — see http_config.h. */
#include "http/http_config.h"

#include <stdint.h>

/* Settings of the local API. */
const config_key http_config_keys[] = {
    {"http", "enabled", CONFIG_BOOL, "true", 0, 0, "serve the OpenAI-compatible API (bearer tokens from 'apiary token create')"},
    {"http", "listen", CONFIG_STR, "\"127.0.0.1:8080\"", 0, 0, "address of the local API; keep it on loopback unless you mean to expose it"},
    {"http", "cors_origins", CONFIG_LIST, "[]", 0, 0, "web origins allowed to call the API from a browser (e.g. \"http://localhost:3000\"); empty = none"},
};
const size_t http_config_keys_n = sizeof http_config_keys / sizeof *http_config_keys;
