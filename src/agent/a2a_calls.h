/* agent/a2a_calls — the caller's record of its delegations in flight, so a node that
 * restarts takes them up again by itself (node/a2acall) instead of leaving a task it asked
 * for unpaid and its result unread. One row per attempt (a provider and the task's id
 * there), in the table a2a_calls (a2a_calls_schema_v1, a migration after a2a_schema_v1):
 *
 *   id, provider   the task's 16-byte id and the provider's node key
 *   agent, input   what was asked of whom
 *   max_wei, cap   the caller's budget and what it holds the provider to (the advertised price
 *   rate           per task, and per 1,000 tokens: rate)
 *   channel        the payment channel the task was sent with (NULL: none)
 *   deadline       unix seconds after which it is given up
 *   state          open | completed | failed | canceled | lost (a provider left for another;
 *                  its task there is canceled when it is back: then abandoned)
 *   result         the answer's text, or why it failed
 *
 * Only delegations whose caller waits for the result are recorded (a `wait: false` one is
 * left to its caller). Thread: the store handle's. */
#ifndef APIARY_AGENT_A2A_CALLS_H
#define APIARY_AGENT_A2A_CALLS_H

#include <jansson.h>
#include <stdint.h>

#include "core/store.h"

extern const char a2a_calls_schema_v1[];

typedef struct a2a_call_row {
  uint8_t id[16], provider[32];
  char agent[64];
  char *input;        /* owned */
  uint64_t max_wei, cap, rate;
  int64_t deadline;   /* unix seconds */
  uint8_t channel[32];/* sent with the task (has_channel) */
  int has_channel;
} a2a_call_row;

/* Records an open attempt (again: updates nothing). 0 or ERR_STORE. */
int a2a_calls_open(store *s, const a2a_call_row *r);
/* Ends the attempt (state: completed|failed|canceled|lost|abandoned) with its result text
 * (NULL: keeps the one it has). 0 or ERR_STORE. */
int a2a_calls_end(store *s, const uint8_t id[16], const uint8_t provider[32], const char *state, const char *result);
/* The open attempts, at most cap; each row's input is owned by the caller
 * (a2a_call_row_clear). Count or ERR_STORE. */
int a2a_calls_list_open(store *s, a2a_call_row *out, int cap);
void a2a_call_row_clear(a2a_call_row *r);
/* The ids of the lost attempts on provider (at most cap). Count or ERR_STORE. */
int a2a_calls_lost(store *s, const uint8_t provider[32], uint8_t ids_out[][16], int cap);
/* The newest n attempts as JSON [{id, node, agent, state, result, updated}] (owned). */
json_t *a2a_calls_json(store *s, int n);

#endif
