/* Condition variable (asyncio.Condition) over a gr_mutex.
 *
 * A waiter links itself into the condition's list before it unlocks the
 * mutex, so a signal sent by anyone who locked the mutex after that finds it
 * (no lost wake-up). Signals hand over by unlinking: a waiter that was
 * unlinked by a signal returns 0 even if it is cancelled at the same time,
 * and an interrupted waiter that was still linked leaves without consuming a
 * signal. */
#include <errno.h>

#include "sync/mutex.h"
#include "sync/spinlock.h"
#include "sync/waiter.h"

int gr_cond_init(gr_cond *c)
{
    if (!c)
        return -EINVAL;
    *c = (gr_cond)GR_COND_INIT;
    return 0;
}

int gr_cond_destroy(gr_cond *c)
{
    if (!c)
        return -EINVAL;
    gr__sync_lock(&c->lock_);
    int busy = !gr__waitq_empty(&c->waiters_);
    gr__sync_unlock(&c->lock_);
    return busy ? -EBUSY : 0;
}

/* Lock m again whatever happens to the task meanwhile: shielded from
 * cancellation and enclosing deadlines, as asyncio.Condition.wait does. */
static void relock(gr_mutex *m)
{
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    int rc = gr_mutex_lock(m);
    gr_scope_leave(&shield);
    (void)rc; /* cannot fail: a task, shielded, not the owner */
}

static int holds(gr_mutex *m, struct gr__task *self)
{
    return gr__mutex_owner(m) == self;
}

int gr_cond_wait(gr_cond *c, gr_mutex *m)
{
    if (!c || !m)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self || !holds(m, self))
        return -EPERM;
    int rc = gr__sync_enter(&self, 0);
    if (rc < 0)
        return rc;
    struct gr__waiter w;
    gr__sync_lock(&c->lock_);
    gr__waiter_init(&w, self, &c->lock_, &c->waiters_);
    gr__waitq_push(&c->waiters_, &w.node);
    gr__sync_unlock(&c->lock_);
    gr_mutex_unlock(m);
    rc = gr__waiter_sleep(&w, "condition");
    relock(m);
    return rc;
}

int gr_cond_wait_for(gr_cond *c, gr_mutex *m, int (*pred)(void *arg), void *arg)
{
    if (!c || !m || !pred)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self || !holds(m, self))
        return -EPERM;
    int rc = gr__sync_enter(&self, 0);
    while (rc == 0 && !pred(arg))
        rc = gr_cond_wait(c, m);
    return rc;
}

static int wake(gr_cond *c, int all)
{
    if (!c)
        return -EINVAL;
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&c->lock_);
    if (all) {
        gr__wakeset_add_all(&ws, &c->waiters_, 0);
    } else {
        struct gr__waiter *w = gr__waiter_pop(&c->waiters_);
        if (w)
            gr__wakeset_add(&ws, w, 0);
    }
    gr__sync_unlock(&c->lock_);
    gr__wakeset_wake(&ws);
    return 0;
}

int gr_cond_signal(gr_cond *c)
{
    return wake(c, 0);
}

int gr_cond_broadcast(gr_cond *c)
{
    return wake(c, 1);
}
