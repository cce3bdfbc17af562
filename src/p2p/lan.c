/* p2p/lan — LAN discovery beacon encoding and verification; see lan.h. */
#include "p2p/lan.h"

#include <string.h>

#include "core/err.h"

#define SIGNED_LEN 56

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

void lan_beacon_encode(const ident *id, uint16_t tcp_port, uint16_t dht_port, int64_t now_ms,
                       uint8_t out[static LAN_BEACON_LEN]) {
  memset(out, 0, LAN_BEACON_LEN);
  memcpy(out, LAN_MAGIC, 8);
  out[8] = LAN_VERSION;
  put16(out + 10, tcp_port);
  put16(out + 12, dht_port);
  uint64_t ts = (uint64_t)now_ms;
  for (int i = 0; i < 8; i++) out[14 + i] = (uint8_t)(ts >> (56 - 8 * i));
  memcpy(out + 22, id->pk, 32);
  ident_sign(id, out, SIGNED_LEN, out + SIGNED_LEN);
}

int lan_beacon_decode(const uint8_t *pkt, size_t len, int64_t now_ms, lan_beacon *out) {
  if (len != LAN_BEACON_LEN || memcmp(pkt, LAN_MAGIC, 8) || pkt[8] != LAN_VERSION) return ERR_FORMAT;
  if (ident_verify(pkt + 22, pkt, SIGNED_LEN, pkt + SIGNED_LEN)) return ERR_CRYPTO;
  uint64_t ts = 0;
  for (int i = 0; i < 8; i++) ts = ts << 8 | pkt[14 + i];
  int64_t skew = (int64_t)ts - now_ms;
  if (skew > LAN_MAX_SKEW_MS || skew < -LAN_MAX_SKEW_MS) return ERR_RANGE;
  memcpy(out->pk, pkt + 22, 32);
  out->tcp_port = get16(pkt + 10);
  out->dht_port = get16(pkt + 12);
  out->ts_ms = (int64_t)ts;
  return 0;
}
