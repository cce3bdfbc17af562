/* p2p/dht_store — what this node keeps for others: announced peers (infohash -> peers,
 * each expiring DHT_PEER_TTL_MS after its last announce) and BEP 44 items (expiring
 * DHT_ITEM_TTL_MS after their last put). Both have hard caps from dht_config; when full,
 * the entry that expires first makes room. Linear scans: the caps keep them small, and
 * a public node sees few announces per infohash. Owned by one dht engine. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "p2p/dht_impl.h"

void dht__store_init(dht__store *s, uint32_t max_hashes, uint32_t max_peers, uint32_t max_items) {
  memset(s, 0, sizeof *s);
  s->max_hashes = max_hashes;
  s->max_peers = max_peers;
  s->max_items = max_items;
}

void dht__store_deinit(dht__store *s) {
  for (uint32_t i = 0; i < s->n_hashes; i++) free(s->hashes[i].peers);
  free(s->hashes);
  for (uint32_t i = 0; i < s->n_items; i++) free(s->items[i]);
  free(s->items);
  memset(s, 0, sizeof *s);
}

static dht__hash *find_hash(const dht__store *s, const uint8_t ih[20]) {
  for (uint32_t i = 0; i < s->n_hashes; i++)
    if (!memcmp(s->hashes[i].ih, ih, 20)) return &s->hashes[i];
  return NULL;
}

static uint64_t hash_expiry(const dht__hash *h) {
  uint64_t m = 0;
  for (uint32_t i = 0; i < h->n; i++)
    if (h->peers[i].expires > m) m = h->peers[i].expires;
  return m;
}

int dht__store_peer(dht__store *s, const uint8_t ih[static 20], const dht__addr *a, uint64_t now) {
  if (!s->max_hashes || !s->max_peers) return ERR_RANGE;
  dht__hash *h = find_hash(s, ih);
  if (!h) {
    if (!s->hashes) {
      s->hashes = calloc(s->max_hashes, sizeof *s->hashes);
      if (!s->hashes) return ERR_NOMEM;
    }
    if (s->n_hashes < s->max_hashes) {
      h = &s->hashes[s->n_hashes++];
      memset(h, 0, sizeof *h);
    } else {
      h = &s->hashes[0];
      for (uint32_t i = 1; i < s->n_hashes; i++)
        if (hash_expiry(&s->hashes[i]) < hash_expiry(h)) h = &s->hashes[i];
      s->n_peers -= h->n;
      h->n = 0;
    }
    memcpy(h->ih, ih, 20);
    if (!h->peers) {
      h->peers = calloc(s->max_peers, sizeof *h->peers);
      if (!h->peers) return ERR_NOMEM;
    }
  }
  uint64_t exp = now + DHT_PEER_TTL_MS;
  for (uint32_t i = 0; i < h->n; i++) {
    if (!memcmp(&h->peers[i].addr, a, sizeof *a)) {
      h->peers[i].expires = exp;
      return 0;
    }
  }
  dht__peer *p;
  if (h->n < s->max_peers) {
    p = &h->peers[h->n++];
    s->n_peers++;
  } else {
    p = &h->peers[0];
    for (uint32_t i = 1; i < h->n; i++)
      if (h->peers[i].expires < p->expires) p = &h->peers[i];
  }
  p->addr = *a;
  p->expires = exp;
  return 0;
}

size_t dht__store_peers(const dht__store *s, const uint8_t ih[static 20], uint64_t now, dht__addr *out, size_t cap) {
  const dht__hash *h = find_hash(s, ih);
  size_t n = 0;
  if (!h) return 0;
  for (uint32_t i = 0; i < h->n && n < cap; i++)
    if (h->peers[i].expires > now) out[n++] = h->peers[i].addr;
  return n;
}

dht__item *dht__store_item(dht__store *s, const uint8_t target[static 20], uint64_t now) {
  for (uint32_t i = 0; i < s->n_items; i++)
    if (!memcmp(s->items[i]->target, target, 20) && s->items[i]->expires > now) return s->items[i];
  return NULL;
}

int dht__store_put(dht__store *s, const dht__item *it) {
  if (!s->max_items) return ERR_RANGE;
  for (uint32_t i = 0; i < s->n_items; i++) {
    if (!memcmp(s->items[i]->target, it->target, 20)) {
      *s->items[i] = *it;
      return 0;
    }
  }
  if (!s->items) {
    s->items = calloc(s->max_items, sizeof *s->items);
    if (!s->items) return ERR_NOMEM;
  }
  if (s->n_items == s->max_items) {
    uint32_t w = 0;
    for (uint32_t i = 1; i < s->n_items; i++)
      if (s->items[i]->expires < s->items[w]->expires) w = i;
    *s->items[w] = *it;
    return 0;
  }
  dht__item *c = malloc(sizeof *c);
  if (!c) return ERR_NOMEM;
  *c = *it;
  s->items[s->n_items++] = c;
  return 0;
}

void dht__store_expire(dht__store *s, uint64_t now) {
  for (uint32_t i = 0; i < s->n_hashes;) {
    dht__hash *h = &s->hashes[i];
    for (uint32_t j = 0; j < h->n;) {
      if (h->peers[j].expires <= now) {
        h->peers[j] = h->peers[--h->n];
        s->n_peers--;
      } else {
        j++;
      }
    }
    if (h->n == 0) {
      free(h->peers);
      *h = s->hashes[--s->n_hashes];
      memset(&s->hashes[s->n_hashes], 0, sizeof *h);
    } else {
      i++;
    }
  }
  for (uint32_t i = 0; i < s->n_items;) {
    if (s->items[i]->expires <= now) {
      free(s->items[i]);
      s->items[i] = s->items[--s->n_items];
    } else {
      i++;
    }
  }
}
