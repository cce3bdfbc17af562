/* p2p/dht_udp — the Mainline DHT engine (p2p/dht, which does no I/O) on a libuv UDP
 * socket: datagrams in go to dht_input, the engine's packets go out, its events come back
 * through a callback, and a timer calls it again at its next deadline.
 *
 * The engine is borrowed and must outlive the glue; after dht_udp_pump(), anything the
 * caller asked of the engine (a lookup, a put) is on the wire. Loop thread only. */
#ifndef APIARY_P2P_DHT_UDP_H
#define APIARY_P2P_DHT_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "p2p/dht.h"

typedef struct dht_udp dht_udp;

/* An engine event (lookup done, …): ev is valid during the call. */
typedef void (*dht_udp_event_fn)(void *ud, const dht_event *ev);

/* Binds host:port (port 0: any free one) and starts. err says what to change on failure. */
int dht_udp_start(uv_loop_t *loop, dht *engine, const char *host, int port, dht_udp_event_fn on_event, void *ud,
                  dht_udp **out, char *err, size_t cap);
/* Flushes the engine's output and re-arms the timer. */
void dht_udp_pump(dht_udp *d);
/* The bound UDP port. */
uint16_t dht_udp_port(const dht_udp *d);
/* Stops: no events after this; the handles close and the glue frees itself. NULL ok. */
void dht_udp_stop(dht_udp *d);

#endif
