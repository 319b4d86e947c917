/* The short internal lock of every sync object (gr_spin_ in greenring.h:
 * its word is part of the public structs, so it is not core's
 * gr__spinlock).
 *
 * Test-and-test-and-set: one atomic exchange when the lock is free; while it
 * is taken, waiters spin on a plain load (the cache line stays shared until
 * the holder releases it) with a pause hint, and give the CPU away after a
 * while, because the holder may be a preempted thread (foreign threads, or
 * more runtime threads than cores under a sanitizer).
 *
 * Critical sections are a few list and buffer operations. A spinlock is
 * never held across gr__park, a futex wait, or a wake-up (wakes are
 * collected and issued after the unlock); the one call that may enter the
 * kernel under it is malloc, when an unbounded channel or queue grows. */
#ifndef GR_SYNC_SPINLOCK_H
#define GR_SYNC_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

#include "core/spinlock.h" /* gr__cpu_relax */
#include "greenring.h"

#define GR_SPIN_TRIES_BEFORE_YIELD 128

static inline int gr__sync_trylock(gr_spin_ *l)
{
    /* acquire: the critical section's accesses stay after the lock is
     * taken and see everything the previous holder wrote before its
     * release. */
    return atomic_exchange_explicit(&l->v_, 1, memory_order_acquire) == 0;
}

static inline void gr__sync_lock(gr_spin_ *l)
{
    while (!gr__sync_trylock(l)) {
        unsigned n = 0;
        /* relaxed: only waits until the lock looks free; the exchange
         * above decides and orders. */
        while (atomic_load_explicit(&l->v_, memory_order_relaxed)) {
            if (++n < GR_SPIN_TRIES_BEFORE_YIELD) {
                gr__cpu_relax();
            } else {
                sched_yield();
                n = 0;
            }
        }
    }
}

static inline void gr__sync_unlock(gr_spin_ *l)
{
    /* release: publishes the critical section's writes to the next
     * holder's acquire exchange. */
    atomic_store_explicit(&l->v_, 0, memory_order_release);
}

#endif
