/* Mutex internals shared with the condition variable. */
#ifndef GR_SYNC_MUTEX_H
#define GR_SYNC_MUTEX_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/task.h"
#include "greenring.h"

/* state_: 0 when free, else the owning task's address (cache-line aligned,
 * so bit 0 is free) with GR__MUTEX_WAITERS set while waiters may be
 * queued. */
#define GR__MUTEX_WAITERS ((uintptr_t)1)

/* The owning task, or NULL. relaxed: a task that compares the owner with
 * itself sees its own latest store (or the hand-off, ordered by its wake);
 * anyone else only learns "not me". */
static inline struct gr__task *gr__mutex_owner(gr_mutex *m)
{
    uintptr_t s = atomic_load_explicit(&m->state_, memory_order_relaxed);
    return (struct gr__task *)(s & ~GR__MUTEX_WAITERS);
}

#endif
