/* node/agentsvc — the agent runtime in a running node: control methods agent.add|list|
 * show|rm and task.run|show|list|cancel|approve (loop thread), and a worker thread that
 * runs tasks with its own store handle (see agentsvc.c). */
#ifndef APIARY_NODE_AGENTSVC_H
#define APIARY_NODE_AGENTSVC_H

#include "core/store.h"
#include "market/gen.h"
#include "node/control.h"

typedef struct agentsvc agentsvc;

typedef struct agentsvc_opts {
  gen *gen;            /* borrowed: every model call */
  store *db;           /* the loop thread's store (borrowed) */
  const char *db_path; /* the worker opens its own handle */
  const char *home;    /* the node home: agents' folders, the control socket */
  ctl_server *ctl;
} agentsvc_opts;

int agentsvc_start(const agentsvc_opts *o, agentsvc **out, char *err, size_t cap);
/* Stops the worker (a model call in flight is canceled; its task resumes at the next start). */
void agentsvc_stop(agentsvc *a);
void agentsvc_free(agentsvc *a); /* NULL is a no-op */

#endif
