/* Semaphore (asyncio.Semaphore / BoundedSemaphore) with FIFO hand-off: a
 * release gives its permit straight to the first waiter, so the value is 0
 * whenever someone waits and a newcomer cannot take a permit a waiter was
 * woken for. */
#include <errno.h>

#include "sync/spinlock.h"
#include "sync/waiter.h"

static int init(gr_sem *s, unsigned value, unsigned bound)
{
    if (!s || value > GR_SEM_MAX)
        return -EINVAL;
    *s = (gr_sem){.value_ = value, .bound_ = bound};
    return 0;
}

int gr_sem_init(gr_sem *s, unsigned value)
{
    return init(s, value, 0);
}

int gr_sem_init_bounded(gr_sem *s, unsigned value)
{
    if (value == 0)
        return -EINVAL;
    return init(s, value, value);
}

int gr_sem_destroy(gr_sem *s)
{
    if (!s)
        return -EINVAL;
    gr__sync_lock(&s->lock_);
    int busy = !gr__waitq_empty(&s->waiters_);
    gr__sync_unlock(&s->lock_);
    return busy ? -EBUSY : 0;
}

static int take(gr_sem *s)
{
    if (s->value_ == 0)
        return 0;
    s->value_--;
    return 1;
}

int gr_sem_acquire(gr_sem *s)
{
    if (!s)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__sync_enter(&self, 1);
    if (rc < 0)
        return rc;
    gr__sync_lock(&s->lock_);
    if (take(s)) {
        gr__sync_unlock(&s->lock_);
        return 0;
    }
    struct gr__waiter w;
    gr__waiter_init(&w, self, &s->lock_, &s->waiters_);
    /* 0: a releaser handed us its permit. */
    return gr__waiter_park(&w, "semaphore");
}

int gr_sem_tryacquire(gr_sem *s)
{
    if (!s)
        return -EINVAL;
    gr__sync_lock(&s->lock_);
    int ok = take(s);
    gr__sync_unlock(&s->lock_);
    return ok ? 0 : -EAGAIN;
}

int gr_sem_release(gr_sem *s)
{
    if (!s)
        return -EINVAL;
    gr__sync_lock(&s->lock_);
    struct gr__waiter *w = gr__waiter_pop(&s->waiters_);
    int rc = 0;
    if (!w) {
        if ((s->bound_ && s->value_ >= s->bound_) || s->value_ >= GR_SEM_MAX)
            rc = -EOVERFLOW;
        else
            s->value_++;
    }
    gr__sync_unlock(&s->lock_);
    if (w)
        gr__swait_wake(&w->sw, 0);
    return rc;
}

int gr_sem_value(gr_sem *s)
{
    if (!s)
        return -EINVAL;
    gr__sync_lock(&s->lock_);
    int v = (int)s->value_;
    gr__sync_unlock(&s->lock_);
    return v;
}
