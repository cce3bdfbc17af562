/* agent/agent_loop — the agent loop as a step machine, with no I/O.
 *
 * Given a task, its steps so far (as the store holds them) and what the agent spent today,
 * agent_plan says what to do next: call the model (with the conversation rebuilt from the
 * steps), run a tool call the model made, ask the owner to approve one, wait, finish with
 * the model's answer, or fail (cancel, step limit, spending cap). The driver (agent_run)
 * records a step as started before it acts and done after, so a plan made after a crash
 * sees the call that was in flight: a model call is made again (its tokens are counted
 * again); a tool call is run again only when the tool is idempotent, else it is marked
 * failed ("interrupted") and the model is told so. Pure: same input, same plan. */
#ifndef APIARY_AGENT_AGENT_LOOP_H
#define APIARY_AGENT_AGENT_LOOP_H

#include <jansson.h>
#include <stdint.h>

#include "agent/agent_store.h"

typedef enum agent_act {
  AGENT_ACT_MODEL = 1,     /* call the model: messages, step n (new or redone) */
  AGENT_ACT_TOOL,          /* run tool (args) for call_id as step n */
  AGENT_ACT_ASK_APPROVAL,  /* record step n awaiting the owner's approval, then wait */
  AGENT_ACT_WAIT,          /* nothing to do until the owner answers */
  AGENT_ACT_INTERRUPTED,   /* mark step n failed: it was running when the node stopped */
  AGENT_ACT_DONE,          /* finished: text is the answer */
  AGENT_ACT_FAIL,          /* failed: text says why */
  AGENT_ACT_CANCELED,      /* the owner canceled it */
} agent_act;

typedef struct agent_action {
  agent_act kind;
  int step;                /* the step number to write */
  const char *tool;        /* TOOL/ASK_APPROVAL: borrowed from the steps */
  const char *call_id;     /* borrowed */
  json_t *args;            /* borrowed */
  json_t *messages;        /* MODEL: OpenAI chat messages (owned; agent_action_clear) */
  const char *tool_choice; /* MODEL: "auto" or "required" */
  char text[1024];         /* DONE: the answer (truncated copy; the full one is in the step); FAIL: why */
} agent_action;

void agent_action_clear(agent_action *a);

/* def: a checked definition; steps[0..n) in order; spent_today: wei this agent's tasks
 * spent in the last 24 h. */
void agent_plan(const json_t *def, const agent_task *t, const agent_step *steps, int n, int64_t spent_today,
                agent_action *out);

/* May tool run again after a crash: a built-in read, or listed as idempotent in def. */
int agent_tool_idempotent(const json_t *def, const char *tool);

#endif
