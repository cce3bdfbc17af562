/* node/asksvc — the `ask` control method: a generation through market/gen for the CLI
 * (`apiary ask MODEL PROMPT [--node ID]`), answered whole. Loop thread. */
#ifndef APIARY_NODE_ASKSVC_H
#define APIARY_NODE_ASKSVC_H

#include <uv.h>

#include "market/gen.h"
#include "node/control.h"

typedef struct asksvc asksvc;

/* Registers `ask`; g and ctl are borrowed for the service's lifetime. */
int asksvc_start(uv_loop_t *loop, gen *g, ctl_server *ctl, asksvc **out);
/* Cancels and answers the asks in flight, closes the timer (frees on close). */
void asksvc_stop(asksvc *v);

#endif
