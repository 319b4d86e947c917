/* Mutex: one state word with a CAS fast path, FIFO hand-off when contended.
 *
 * state_ holds the owner: 0 when free, else the owning task's address, with
 * bit 0 (GR__MUTEX_WAITERS) set while waiters may be queued. The
 * uncontended lock is one CAS 0 -> self and the uncontended unlock one CAS
 * self -> 0, which checks the owner for free: it fails for a non-owner, an
 * unlocked mutex, or when waiters are queued. Everything else happens under
 * the spinlock: a locker that has to wait sets the waiters bit and links
 * itself before unlocking the spinlock, so the owner's unlock CAS fails and
 * it takes the slow path, where it passes the mutex to the first waiter by
 * writing that waiter's address into the state, never 0 (so a late arrival
 * cannot barge in: strict FIFO). The bit is cleared when the last waiter
 * leaves. */
#include <errno.h>

#include "core/attrs.h"
#include "core/task.h"
#include "core/worker.h"
#include "sync/mutex.h"
#include "sync/spinlock.h"
#include "sync/waiter.h"

int gr_mutex_init(gr_mutex *m)
{
    if (!m)
        return -EINVAL;
    *m = (gr_mutex)GR_MUTEX_INIT;
    return 0;
}

int gr_mutex_destroy(gr_mutex *m)
{
    if (!m)
        return -EINVAL;
    /* relaxed: a snapshot; destroying a mutex in use is a caller bug this
     * only reports. */
    return atomic_load_explicit(&m->state_, memory_order_relaxed) == 0 ? 0 : -EBUSY;
}

/* The calling task: one non-inlined TLS read (see gr__worker_self). */
static struct gr__task *current(void)
{
    struct gr__worker *w = gr__worker_self();
    return w ? w->current : NULL;
}

static int try_acquire(gr_mutex *m, struct gr__task *self)
{
    uintptr_t expected = 0;
    /* acquire: the critical section sees what the previous owner wrote
     * before its release. */
    return atomic_compare_exchange_strong_explicit(&m->state_, &expected, (uintptr_t)self,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* An interrupted waiter left: if it was the last one, the fast unlock may
 * work again. Runs under the spinlock. */
static void mutex_withdrawn(struct gr__waiter *w, struct gr__wakeset *ws)
{
    (void)ws;
    gr_mutex *m = w->data;
    if (gr__waitq_empty(&m->waiters_))
        /* relaxed: no data is published; the owner's unlock CAS either
         * sees the bit (and then needs the spinlock we hold) or not. */
        atomic_fetch_and_explicit(&m->state_, ~GR__MUTEX_WAITERS, memory_order_relaxed);
}

static GR_NOINLINE int lock_slow(gr_mutex *m, struct gr__task *self)
{
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    if (gr__mutex_owner(m) == self)
        return -EDEADLK;
    gr__sync_lock(&m->lock_);
    /* relaxed: the CASes below validate it. */
    uintptr_t s = atomic_load_explicit(&m->state_, memory_order_relaxed);
    for (;;) {
        if (s == 0) {
            if (try_acquire(m, self)) {
                gr__sync_unlock(&m->lock_);
                return 0;
            }
            s = atomic_load_explicit(&m->state_, memory_order_relaxed);
            continue;
        }
        /* relaxed: the owner stays; ordering with its unlock comes from
         * the spinlock its slow path must take. */
        if ((s & GR__MUTEX_WAITERS) ||
            atomic_compare_exchange_weak_explicit(&m->state_, &s, s | GR__MUTEX_WAITERS,
                                                  memory_order_relaxed, memory_order_relaxed))
            break;
    }
    struct gr__waiter w;
    gr__waiter_init(&w, self, &m->lock_, &m->waiters_);
    w.withdrawn = mutex_withdrawn;
    w.data = m;
    /* 0: the unlocker made us the owner. */
    return gr__waiter_park(&w, "mutex");
}

int gr_mutex_lock(gr_mutex *m)
{
    if (GR_UNLIKELY(!m))
        return -EINVAL;
    struct gr__task *self = current();
    if (GR_UNLIKELY(!self))
        return -EPERM;
    if (GR_LIKELY(!gr__task_interrupt_possible(self)) && GR_LIKELY(try_acquire(m, self)))
        return 0;
    return lock_slow(m, self);
}

int gr_mutex_trylock(gr_mutex *m)
{
    if (!m)
        return -EINVAL;
    struct gr__task *self = current();
    if (!self)
        return -EPERM;
    return try_acquire(m, self) ? 0 : -EAGAIN;
}

static GR_NOINLINE int unlock_slow(gr_mutex *m, struct gr__task *self)
{
    if (gr__mutex_owner(m) != self)
        return -EPERM; /* not locked, or not by the caller */
    gr__sync_lock(&m->lock_);
    struct gr__waiter *w = gr__waiter_pop(&m->waiters_);
    /* Hand over to w (waiters bit kept while more may wait), or free it.
     * release: publishes the critical section to the next owner (the wake
     * orders it too) or the next locker's acquire CAS. */
    uintptr_t next = 0;
    if (w)
        next = (uintptr_t)w->sw.wait.task | (gr__waitq_empty(&m->waiters_) ? 0 : GR__MUTEX_WAITERS);
    atomic_store_explicit(&m->state_, next, memory_order_release);
    gr__sync_unlock(&m->lock_);
    if (w)
        gr__swait_wake(&w->sw, 0);
    return 0;
}

int gr_mutex_unlock(gr_mutex *m)
{
    if (GR_UNLIKELY(!m))
        return -EINVAL;
    struct gr__task *self = current();
    if (GR_UNLIKELY(!self))
        return -EPERM;
    uintptr_t expected = (uintptr_t)self;
    /* release: publishes the critical section to the next locker's
     * acquire. Fails for non-owners, unlocked mutexes and waiters. */
    if (GR_LIKELY(atomic_compare_exchange_strong_explicit(&m->state_, &expected, 0,
                                                          memory_order_release,
                                                          memory_order_relaxed)))
        return 0;
    return unlock_slow(m, self);
}

int gr_mutex_is_locked(gr_mutex *m)
{
    if (!m)
        return -EINVAL;
    /* relaxed: a snapshot. */
    return atomic_load_explicit(&m->state_, memory_order_relaxed) != 0;
}
