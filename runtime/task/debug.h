/* Debug mode, introspection hooks and the SIGQUIT dump. */
#ifndef GR_TASK_DEBUG_H
#define GR_TASK_DEBUG_H

#include <stdatomic.h>

#include "core/attrs.h"

struct gr__worker;
struct gr__runtime;

/* Set by the SIGQUIT handler; a worker prints the dump at its next round. */
extern _Atomic int gr__dump_requested;

void gr__debug_dump_now(void);

static inline void gr__debug_poll(struct gr__worker *w)
{
    (void)w;
    /* relaxed: a request flag; the dump itself takes the registry locks. */
    if (GR_UNLIKELY(atomic_load_explicit(&gr__dump_requested, memory_order_relaxed)))
        gr__debug_dump_now();
}

/* gr_run: start/stop the watchdog and the SIGQUIT hook per the config;
 * report tasks never joined or detached at the end. */
int gr__debug_start(struct gr__runtime *rt);
void gr__debug_stop(struct gr__runtime *rt);

#endif
