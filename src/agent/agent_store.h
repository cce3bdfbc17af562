/* agent/agent_store — agents, their tasks and every step of every task, in SQLite.
 *
 * An agent is a definition its owner writes (agent/agent_def: a checked JSON object) kept
 * under its name. A task is one job given to an agent: its input, a state, what it spent
 * (tokens, wei) and its result or error. A step is one model call or one tool call of a
 * task, numbered from 0; a step is written "started" before it runs and "done" (or
 * "failed") with its output after, each in its own transaction, so after a crash the
 * store says exactly which call was in flight (agent/agent_loop decides what to do).
 *
 * Tables: agents, agent_tasks, agent_steps (agent_schema_v1). A store handle belongs to one
 * thread: the node's loop thread and the agent worker each open their own. Returned
 * strings and JSON are owned by the caller. */
#ifndef APIARY_AGENT_AGENT_STORE_H
#define APIARY_AGENT_AGENT_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "core/store.h"

extern const char agent_schema_v1[];

#define AGENT_NAME_MAX 64
#define AGENT_MAX_STEPS_LOADED 512

/* Task states. */
#define AGENT_QUEUED "queued"
#define AGENT_RUNNING "running"
#define AGENT_WAITING "waiting"     /* a tool call waits for the owner's approval */
#define AGENT_DONE "done"
#define AGENT_FAILED "failed"
#define AGENT_CANCELED "canceled"

/* Step states (one letter). */
enum { STEP_STARTED = 's', STEP_DONE = 'd', STEP_FAILED = 'f', STEP_AWAITING = 'a', STEP_APPROVED = 'o',
       STEP_DENIED = 'x' };

typedef struct agent_task {
  int64_t id;
  char agent[AGENT_NAME_MAX];
  char *input;                 /* owned */
  char state[12];
  int64_t tokens, wei;
  int64_t created, updated;    /* unix seconds */
  char *result, *error;        /* owned, may be NULL */
  int cancel;                  /* the owner asked to cancel */
} agent_task;

typedef struct agent_step {
  int n;
  char kind;                   /* 'm' model call, 't' tool call */
  char state;                  /* STEP_* */
  char tool[96];               /* tool steps: the tool's name */
  char call_id[64];            /* tool steps: the model's call id */
  json_t *args;                /* tool steps: arguments (owned) */
  json_t *output;              /* model: {content, calls:[{id,name,arguments}]}; tool: {text, error?} (owned) */
  int64_t tokens, wei, bytes;
} agent_step;

void agent_task_clear(agent_task *t);
void agent_steps_free(agent_step *s, int n);

/* Agents. def is a checked definition (agent_def_check). put replaces; 0 or ERR_STORE. */
int agent_put(store *s, const char *name, const json_t *def);
/* 0 with *def (owned), ERR_NOTFOUND, or ERR_STORE. */
int agent_get(store *s, const char *name, json_t **def);
int agent_rm(store *s, const char *name);       /* ERR_NOTFOUND when none */
json_t *agent_list(store *s);                   /* [{name, model, created}] or NULL */

/* Tasks. */
int agent_task_add(store *s, const char *agent, const char *input, int64_t *id_out);
int agent_task_get(store *s, int64_t id, agent_task *out);
/* Sets the state (and result or error when not NULL). */
int agent_task_set(store *s, int64_t id, const char *state, const char *result, const char *error);
int agent_task_cancel(store *s, int64_t id); /* ERR_NOTFOUND; ERR_INVAL when it already ended */
/* Adds to the task's totals. */
int agent_task_spend(store *s, int64_t id, int64_t tokens, int64_t wei);
/* The oldest task in one of the runnable states (queued, running; waiting ones with an
 * approved or denied step), or 0. */
int64_t agent_task_next(store *s);
/* What an agent's tasks spent since `since` (unix seconds). */
int64_t agent_spent_since(store *s, const char *agent, int64_t since);
json_t *agent_task_list(store *s, const char *agent, int limit); /* newest first */
json_t *agent_task_json(const agent_task *t, const agent_step *steps, int n);

/* Steps. */
int agent_steps_load(store *s, int64_t task, agent_step **out, int *n_out);
/* Writes a step (insert or replace) and, in the same transaction, adds tokens and wei to
 * the task's totals. */
int agent_step_put(store *s, int64_t task, const agent_step *st, int64_t add_tokens, int64_t add_wei);
/* The owner's answer to a step awaiting approval: ERR_NOTFOUND when none awaits. */
int agent_step_decide(store *s, int64_t task, int approve);

#endif
