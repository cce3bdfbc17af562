/* libFuzzer harness: KRPC parsing and the whole DHT engine on arbitrary input.
 *
 * Every input is parsed with krpc_parse (a parsed message must re-encode and re-parse).
 * Then, by the first byte: odd -> the rest shapes a *response* to the engine's latest
 * outstanding query (right transaction id, from the address it was sent to), with fuzzed
 * id, nodes, values, token, item fields, so lookups, tokens, stores and BEP 44 checks run
 * on hostile answers; even -> the bytes go to dht_input as a raw packet. One long-lived
 * engine (loopback allowed, no rate limit) keeps lookups running and its clock moving, so
 * timeouts, refresh, expiry and token rotation run too. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/dht.h"
#include "p2p/krpc.h"

static dht *d;
static uint64_t now = 1000;
static uint8_t last_t[KRPC_MAX_TID];
static size_t last_t_len;
static struct sockaddr_in last_to;
static int have_last;
static krpc_msg m, m2;
static uint8_t out[70000];

static void drain(void) {
  dht_output o;
  int guard = 0;
  while (dht_poll(d, now, &o) > 0 && guard++ < 10000) {
    if (o.kind != DHT_OUT_PACKET) continue;
    if (krpc_parse(o.pkt, o.len, &m2) != 0) abort(); /* we must only send valid KRPC */
    if (m2.kind == KRPC_QUERY) {
      memcpy(last_t, m2.t.p, m2.t.len);
      last_t_len = m2.t.len;
      memcpy(&last_to, &o.to, sizeof last_to);
      have_last = 1;
    }
  }
}

static size_t take(const uint8_t **p, size_t *left, size_t n) {
  if (n > *left) n = *left;
  *p += n;
  *left -= n;
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static unsigned kick;
  if (!d) {
    dht_config c;
    dht_config_default(&c);
    c.allow_private = 1;
    c.rate_per_sec = 0;
    uint8_t id[20] = {0x5a};
    if (dht_new(id, &c, &d)) abort();
    struct sockaddr_in b;
    memset(&b, 0, sizeof b);
    b.sin_family = AF_INET;
    b.sin_addr.s_addr = htonl(0x7f000001);
    b.sin_port = htons(6881);
    dht_bootstrap_add(d, (const struct sockaddr *)&b);
  }
  if (krpc_parse(data, size, &m) == 0) {
    int n = krpc_encode(&m, out, sizeof out);
    if (n <= 0 || krpc_parse(out, (size_t)n, &m2) != 0) abort();
  }
  dht_stats st;
  dht_get_stats(d, &st);
  if (st.lookups < 2) { /* keep lookups of every kind going */
    uint8_t t[20] = {(uint8_t)kick}, pk[32] = {(uint8_t)(kick >> 2)};
    switch (kick++ % 5) {
    case 0: dht_get_peers(d, t, NULL); break;
    case 1: dht_announce(d, t, (uint16_t)(kick & 1 ? 0 : 7000), NULL); break;
    case 2: dht_get_mutable(d, pk, (const uint8_t *)"s", kick & 1, NULL); break;
    case 3: dht_get_immutable(d, t, NULL); break;
    default: dht_put_immutable(d, (const uint8_t *)"i1e", 3, NULL, NULL); break;
    }
  }
  drain();
  now += 20 + (size & 0x3f) * 100;
  if (size && (data[0] & 1) && have_last) {
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    memset(&m, 0, sizeof m);
    m.kind = (data[0] & 0x10) ? KRPC_ERROR : KRPC_RESPONSE;
    m.t.p = last_t;
    m.t.len = last_t_len;
    m.err_code = 201;
    uint8_t id[20] = {0};
    size_t n = take(&p, &left, 20);
    memcpy(id, p - n, n);
    m.id = id;
    size_t nl = left ? (size_t)(p[0] % 9) * 26 : 0;
    take(&p, &left, 1);
    n = take(&p, &left, nl);
    m.nodes.p = p - n;
    m.nodes.len = n;
    size_t nv = left ? (size_t)(p[0] % 5) : 0;
    take(&p, &left, 1);
    for (size_t i = 0; i < nv && left >= 6; i++) {
      m.values[i].p = p;
      m.values[i].len = 6;
      take(&p, &left, 6);
      m.n_values++;
    }
    n = take(&p, &left, 20);
    m.token.p = p - n;
    m.token.len = n;
    static uint8_t k[32], sig[64];
    if (left >= 96 && (data[0] & 2)) {
      memcpy(k, p, 32);
      memcpy(sig, p + 32, 64);
      take(&p, &left, 96);
      m.k = k;
      m.sig = sig;
      m.has_seq = 1;
      m.seq = (int64_t)(data[0] >> 2);
    }
    if (left) {
      m.v.p = p; /* the rest as the item value; krpc_parse refuses it unless strict bencoding */
      m.v.len = left;
    }
    int len = krpc_encode(&m, out, sizeof out);
    if (len > 0) dht_input(d, out, (size_t)len, (const struct sockaddr *)&last_to, now);
  } else {
    struct sockaddr_in from;
    memset(&from, 0, sizeof from);
    from.sin_family = AF_INET;
    from.sin_addr.s_addr = htonl(0x7f000001);
    from.sin_port = htons((uint16_t)(6881 + (size & 7)));
    dht_input(d, data, size, (const struct sockaddr *)&from, now);
  }
  drain();
  return 0;
}
