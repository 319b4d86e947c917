/* A test-and-test-and-set spinlock for very short critical sections that
 * never block (waiter lists, callback lists). Never hold one across a park. */
#ifndef GR_CORE_SPINLOCK_H
#define GR_CORE_SPINLOCK_H

#include <stdatomic.h>

typedef struct {
    atomic_int locked;
} gr__spinlock;

#define GR_SPINLOCK_INIT {0}

static inline void gr__cpu_relax(void)
{
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static inline void gr__spin_lock(gr__spinlock *l)
{
    /* acquire: the critical section sees the previous holder's writes. */
    while (atomic_exchange_explicit(&l->locked, 1, memory_order_acquire)) {
        /* relaxed: spin on a plain read until it looks free, then retry
         * the exchange (keeps the cache line shared while waiting). */
        while (atomic_load_explicit(&l->locked, memory_order_relaxed))
            gr__cpu_relax();
    }
}

static inline void gr__spin_unlock(gr__spinlock *l)
{
    /* release: publishes the critical section's writes to the next holder. */
    atomic_store_explicit(&l->locked, 0, memory_order_release);
}

#endif
