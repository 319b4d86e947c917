/* Signal delivery to tasks: a signalfd read by a runtime task. */
#ifndef GR_SIGNAL_SIGNAL_H
#define GR_SIGNAL_SIGNAL_H

#include <signal.h>

struct gr__runtime;

/* The signals the run manages (configured + graceful shutdown's). */
void gr__signals_set(const struct gr__runtime *rt, sigset_t *set);
/* Before the workers start: open the signalfd and queue the dispatcher
 * task. 0 or a negative errno. */
int gr__signals_start(struct gr__runtime *rt);
/* After the workers stopped. */
void gr__signals_stop(struct gr__runtime *rt);

#endif
