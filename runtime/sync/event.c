/* Event (asyncio.Event): a flag and the tasks waiting for it. */
#include <errno.h>

#include "sync/spinlock.h"
#include "sync/waiter.h"

int gr_event_init(gr_event *e)
{
    if (!e)
        return -EINVAL;
    *e = (gr_event)GR_EVENT_INIT;
    return 0;
}

int gr_event_destroy(gr_event *e)
{
    if (!e)
        return -EINVAL;
    gr__sync_lock(&e->lock_);
    int busy = !gr__waitq_empty(&e->waiters_);
    gr__sync_unlock(&e->lock_);
    return busy ? -EBUSY : 0;
}

int gr_event_set(gr_event *e)
{
    if (!e)
        return -EINVAL;
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&e->lock_);
    /* release: a waiter that sees the flag without the lock (the fast path
     * of gr_event_wait) also sees what the setter wrote before. */
    atomic_store_explicit(&e->set_, 1, memory_order_release);
    gr__wakeset_add_all(&ws, &e->waiters_, 0);
    gr__sync_unlock(&e->lock_);
    gr__wakeset_wake(&ws);
    return 0;
}

int gr_event_clear(gr_event *e)
{
    if (!e)
        return -EINVAL;
    gr__sync_lock(&e->lock_);
    /* relaxed: clearing publishes nothing; waiters decide under the lock. */
    atomic_store_explicit(&e->set_, 0, memory_order_relaxed);
    gr__sync_unlock(&e->lock_);
    return 0;
}

int gr_event_is_set(gr_event *e)
{
    if (!e)
        return -EINVAL;
    /* acquire: pairs with gr_event_set's release. */
    return (int)atomic_load_explicit(&e->set_, memory_order_acquire);
}

int gr_event_wait(gr_event *e)
{
    if (!e)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 1);
    if (rc < 0)
        return rc;
    /* acquire: pairs with gr_event_set's release. */
    if (atomic_load_explicit(&e->set_, memory_order_acquire))
        return 0;
    gr__sync_lock(&e->lock_);
    /* relaxed: the lock orders it against set and clear. */
    if (atomic_load_explicit(&e->set_, memory_order_relaxed)) {
        gr__sync_unlock(&e->lock_);
        return 0;
    }
    struct gr__waiter w;
    gr__waiter_init(&w, self, &e->lock_, &e->waiters_);
    return gr__waiter_park(&w, "event");
}
