/* agent/agent_run — runs a task: plan (agent_loop), record, act, record, again.
 *
 * The actions themselves come from the caller (agent_ops): the node's glue calls the model
 * through market/gen and the tools through agent/agent_tools and the MCP client. Every step
 * is written as started before it acts and as done (with its output, tokens and wei, and the
 * task's totals in the same transaction) after, so a task survives a crash of the node and
 * resumes where it was. Runs on one worker thread with its own store handle. */
#ifndef APIARY_AGENT_AGENT_RUN_H
#define APIARY_AGENT_AGENT_RUN_H

#include <jansson.h>
#include <stdint.h>

#include "agent/agent_store.h"

typedef struct agent_model_out {
  char *content;     /* text outside the calls (owned, may be NULL) */
  json_t *calls;     /* [{name, arguments}] (owned, may be NULL) */
  int64_t tokens;    /* prompt + completion */
  int64_t wei;       /* paid for it */
} agent_model_out;

typedef struct agent_ops {
  /* The model: messages and tools (OpenAI shapes, borrowed) → out. 0, or an error with err. */
  int (*model)(void *ud, const json_t *def, json_t *messages, json_t *tools, const char *tool_choice,
               agent_model_out *out, char *err, size_t cap);
  /* A tool call: 0 with *text (owned) and *is_error; *wei what it cost. budget: the wei
   * the task may still spend (its max_wei_task less what it spent), -1 when uncapped. */
  int (*tool)(void *ud, const json_t *def, const char *name, json_t *args, int64_t budget, char **text, int *is_error,
              int64_t *wei);
  /* The tools offered to the model (an OpenAI tools array, owned). */
  json_t *(*tools)(void *ud, const json_t *def);
  void *ud;
} agent_ops;

/* Runs task id until it ends, waits for the owner, or *stop is set. Returns 0 or a store
 * error (the task is then left as it was, to be resumed). */
int agent_run_task(store *s, int64_t id, const agent_ops *ops, volatile int *stop);

#endif
