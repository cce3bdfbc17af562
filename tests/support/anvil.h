/* tests/support/anvil — a real anvil (foundry) on a loopback port for the chain tests.
 *
 * tu_anvil_find looks in $ANVIL, then tools/node_modules/.bin (scripts/setup). Tests skip
 * when it is absent. tu_anvil_start runs it in its own process group on port (0 = a random
 * free one, retried on collisions) and waits until eth_chainId answers; with state_path
 * the chain is saved there when anvil exits (SIGTERM) and loaded on the next start, so a
 * stopped chain can come back with its state on the same port. */
#ifndef APIARY_TEST_ANVIL_H
#define APIARY_TEST_ANVIL_H
#include <stddef.h>
#include <sys/types.h>

typedef struct tu_anvil {
  pid_t pid;       /* 0 when not running */
  int port;
  char url[64];
} tu_anvil;

/* Writes the anvil path into out; returns out, or NULL when there is none. */
const char *tu_anvil_find(char *out, size_t cap);
/* 0 or -1. */
int tu_anvil_start(const char *bin, int port, const char *state_path, tu_anvil *a);
/* SIGTERM (anvil saves its state), then SIGKILL after 10 s; waits for the exit. */
void tu_anvil_stop(tu_anvil *a);
#endif
