/* p2p/dht_table — the DHT routing table: 160 buckets of DHT_K nodes, bucket i holding the
 * ids that share exactly i leading bits with our own (the "flat" form of BEP 5's splitting
 * table: the buckets a splitting table would create are exactly these, and the far ones it
 * would never split are the same). Buckets are allocated on first use, so a table in a
 * 10^4-node network costs a dozen buckets. A full bucket keeps newcomers in a replacement
 * cache and names a questionable node to ping; a node that reaches DHT_BAD_FAILS timeouts
 * is replaced by the newest cached candidate. Owned by one dht engine. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "p2p/dht_impl.h"

int dht__cmp_dist(const uint8_t target[static 20], const uint8_t a[static 20], const uint8_t b[static 20]) {
  for (int i = 0; i < 20; i++) {
    uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
    if (da != db) return da < db ? -1 : 1;
  }
  return 0;
}

int dht__cpl(const uint8_t a[static 20], const uint8_t b[static 20]) {
  for (int i = 0; i < 20; i++) {
    uint8_t x = a[i] ^ b[i];
    if (x) {
      int n = 0;
      while (!(x & 0x80)) { x <<= 1; n++; }
      return i * 8 + n;
    }
  }
  return 160;
}

int dht__node_state(const dht__tnode *n, uint64_t now) {
  if (n->fails >= DHT_BAD_FAILS) return DHT__BAD;
  if (n->last_reply && now - n->last_reply < DHT_GOOD_MS && n->fails == 0) return DHT__GOOD;
  return DHT__QUESTIONABLE;
}

void dht__table_init(dht__table *t, const uint8_t self[static 20]) {
  memset(t, 0, sizeof *t);
  memcpy(t->self, self, 20);
}

void dht__table_deinit(dht__table *t) {
  for (int i = 0; i < DHT__BUCKETS; i++) free(t->b[i]);
  memset(t, 0, sizeof *t);
}

dht__tnode *dht__table_find(dht__table *t, const uint8_t id[static 20]) {
  int i = dht__cpl(t->self, id);
  if (i >= DHT__BUCKETS || !t->b[i]) return NULL;
  dht__bucket *b = t->b[i];
  for (int j = 0; j < b->count; j++)
    if (!memcmp(b->n[j].id, id, 20)) return &b->n[j];
  return NULL;
}

static void fill(dht__tnode *n, const uint8_t id[20], const dht__addr *a, int replied, uint64_t now) {
  memset(n, 0, sizeof *n);
  memcpy(n->id, id, 20);
  n->addr = *a;
  n->last_seen = now;
  n->last_reply = replied ? now : 0;
}

int dht__table_heard(dht__table *t, const uint8_t id[static 20], const dht__addr *addr, int replied, uint64_t now,
                     dht__tnode **ping_out) {
  if (ping_out) *ping_out = NULL;
  int i = dht__cpl(t->self, id);
  if (i >= DHT__BUCKETS) return ERR_INVAL;
  if (!t->b[i]) {
    t->b[i] = calloc(1, sizeof **t->b);
    if (!t->b[i]) return ERR_NOMEM;
  }
  dht__bucket *b = t->b[i];
  for (int j = 0; j < b->count; j++) {
    dht__tnode *n = &b->n[j];
    if (memcmp(n->id, id, 20)) continue;
    /* Same id from another address: only believe it when the old address stopped
     * answering (otherwise anyone could redirect a good node). */
    if (memcmp(&n->addr, addr, sizeof *addr)) {
      if (n->fails == 0 && n->last_reply) return DHT__UPDATED;
      n->addr = *addr;
    }
    n->last_seen = now;
    if (replied) {
      n->last_reply = now;
      n->fails = 0;
      n->pinging = 0;
      b->last_changed = now;
    }
    return DHT__UPDATED;
  }
  if (b->count < DHT_K) {
    fill(&b->n[b->count++], id, addr, replied, now);
    b->last_changed = now;
    t->count++;
    return DHT__ADDED;
  }
  /* Full: replace a bad node outright. */
  int worst = -1;
  for (int j = 0; j < b->count; j++) {
    int st = dht__node_state(&b->n[j], now);
    if (st == DHT__BAD) {
      fill(&b->n[j], id, addr, replied, now);
      b->last_changed = now;
      return DHT__ADDED;
    }
    if (st == DHT__QUESTIONABLE && (worst < 0 || b->n[j].last_seen < b->n[worst].last_seen)) worst = j;
  }
  /* Otherwise remember the newcomer (only nodes that answered us: they are known live). */
  if (replied) {
    int k;
    for (k = 0; k < b->n_repl; k++)
      if (!memcmp(b->repl[k].id, id, 20)) break;
    if (k < b->n_repl) {
      memmove(&b->repl[k], &b->repl[k + 1], (size_t)(b->n_repl - k - 1) * sizeof b->repl[0]);
      b->n_repl--;
    } else if (b->n_repl == DHT__REPL) {
      memmove(&b->repl[0], &b->repl[1], (DHT__REPL - 1) * sizeof b->repl[0]);
      b->n_repl--;
    }
    fill(&b->repl[b->n_repl++], id, addr, replied, now);
  }
  if (worst >= 0 && ping_out && !b->n[worst].pinging) *ping_out = &b->n[worst];
  return DHT__FULL;
}

void dht__table_failed(dht__table *t, const uint8_t id[static 20], uint64_t now) {
  int i = dht__cpl(t->self, id);
  if (i >= DHT__BUCKETS || !t->b[i]) return;
  dht__bucket *b = t->b[i];
  for (int j = 0; j < b->count; j++) {
    dht__tnode *n = &b->n[j];
    if (memcmp(n->id, id, 20)) continue;
    n->pinging = 0;
    if (n->fails < 255) n->fails++;
    if (n->fails >= DHT_BAD_FAILS) {
      if (b->n_repl) {
        *n = b->repl[--b->n_repl];
        b->last_changed = now;
      } else if (n->fails >= DHT_BAD_FAILS + 2) {
        /* Long dead and nothing to replace it with: drop it. */
        b->n[j] = b->n[--b->count];
        t->count--;
      }
    }
    return;
  }
}

size_t dht__table_closest(const dht__table *t, const uint8_t target[static 20], uint64_t now, dht__tnode *out,
                          size_t cap) {
  size_t n = 0;
  if (!cap) return 0;
  for (int i = 0; i < DHT__BUCKETS; i++) {
    const dht__bucket *b = t->b[i];
    if (!b) continue;
    for (int j = 0; j < b->count; j++) {
      const dht__tnode *c = &b->n[j];
      if (!c->last_reply || dht__node_state(c, now) == DHT__BAD) continue; /* never answered: unverified */
      /* Insertion into the sorted output (cap is small: DHT_K or so). */
      size_t pos = n;
      while (pos > 0 && dht__cmp_dist(target, c->id, out[pos - 1].id) < 0) pos--;
      if (pos >= cap) continue;
      size_t last = n < cap ? n : cap - 1;
      memmove(&out[pos + 1], &out[pos], (last - pos) * sizeof *out);
      out[pos] = *c;
      if (n < cap) n++;
    }
  }
  return n;
}
