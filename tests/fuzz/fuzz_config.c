/* libFuzzer harness: the config parser on arbitrary bytes (config files are edited by hand
 * and may be anything). Uses the real node schema. */
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "node/home.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t n;
  const config_key *schema = home_config_schema(&n);
  config *c;
  if (config_new(schema, n, &c)) return 0;
  char err[512];
  config_parse(c, (const char *)data, size, "fuzz", err, sizeof err);
  for (size_t i = 0; i < n; i++) {
    if (schema[i].type == CONFIG_STR) (void)config_str(c, schema[i].section, schema[i].name);
    if (schema[i].type == CONFIG_INT) (void)config_int(c, schema[i].section, schema[i].name);
  }
  config_free(c);
  return 0;
}
