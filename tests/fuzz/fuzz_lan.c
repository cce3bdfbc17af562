/* libFuzzer harness: LAN beacon decoding (UDP packets from anyone on the LAN). */
#include <stddef.h>
#include <stdint.h>

#include "p2p/lan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lan_beacon b;
  (void)lan_beacon_decode(data, size, 1700000000000, &b);
  return 0;
}
