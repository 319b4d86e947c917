/* Reader/writer lock with writer preference, Go's sync.RWMutex policy.
 *
 * All state is under the spinlock. A reader gets in at once only when no
 * writer holds or waits for the lock. Unlocks hand over: the last reader
 * out passes the lock to the first waiting writer; a writer's unlock admits
 * every reader that queued behind it (they arrived while a writer was
 * ahead), and only if there are none the next writer. */
#include <errno.h>

#include "core/task.h"
#include "sync/spinlock.h"
#include "sync/waiter.h"

int gr_rwlock_init(gr_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    *rw = (gr_rwlock)GR_RWLOCK_INIT;
    return 0;
}

int gr_rwlock_destroy(gr_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    gr__sync_lock(&rw->lock_);
    int busy = rw->readers_ || rw->writer_ || !gr__waitq_empty(&rw->rq_) ||
               !gr__waitq_empty(&rw->wq_);
    gr__sync_unlock(&rw->lock_);
    return busy ? -EBUSY : 0;
}

/* Lock held: admit every waiting reader. */
static void admit_readers(gr_rwlock *rw, struct gr__wakeset *ws)
{
    struct gr__waiter *w;
    while ((w = gr__waiter_pop(&rw->rq_))) {
        rw->readers_++;
        gr__wakeset_add(ws, w, 0);
    }
}

/* Lock held, lock free of holders: give it to the first waiting writer. */
static int admit_writer(gr_rwlock *rw, struct gr__wakeset *ws)
{
    struct gr__waiter *w = gr__waiter_pop(&rw->wq_);
    if (!w)
        return 0;
    rw->writer_ = w->sw.wait.task;
    gr__wakeset_add(ws, w, 0);
    return 1;
}

/* A waiting writer was interrupted: readers it held back may go in, unless
 * another writer waits or a writer holds the lock. */
static void writer_withdrawn(struct gr__waiter *w, struct gr__wakeset *ws)
{
    gr_rwlock *rw = w->data;
    if (!rw->writer_ && gr__waitq_empty(&rw->wq_))
        admit_readers(rw, ws);
}

static int wait_here(gr_rwlock *rw, struct gr__task *self, gr__waitq *q, int writer)
{
    struct gr__waiter w;
    gr__waiter_init(&w, self, &rw->lock_, q);
    w.data = rw;
    if (writer)
        w.withdrawn = writer_withdrawn;
    return gr__waiter_park(&w, writer ? "rwlock write" : "rwlock read");
}

/* try-calls do not wait, so they are no cancellation points. */
static int enter(int try, struct gr__task **self)
{
    if (!try)
        return gr__sync_enter(self, 0);
    *self = gr__current_task();
    return *self ? 0 : -EPERM;
}

static int rdlock(gr_rwlock *rw, int try)
{
    struct gr__task *self;
    if (!rw)
        return -EINVAL;
    int rc = enter(try, &self);
    if (rc < 0)
        return rc;
    gr__sync_lock(&rw->lock_);
    if (rw->writer_ == self) {
        rc = -EDEADLK;
    } else if (!rw->writer_ && gr__waitq_empty(&rw->wq_)) {
        rw->readers_++;
    } else if (try) {
        rc = -EAGAIN;
    } else {
        return wait_here(rw, self, &rw->rq_, 0);
    }
    gr__sync_unlock(&rw->lock_);
    return rc;
}

static int wrlock(gr_rwlock *rw, int try)
{
    struct gr__task *self;
    if (!rw)
        return -EINVAL;
    int rc = enter(try, &self);
    if (rc < 0)
        return rc;
    gr__sync_lock(&rw->lock_);
    if (rw->writer_ == self) {
        rc = -EDEADLK;
    } else if (!rw->writer_ && !rw->readers_) {
        rw->writer_ = self;
    } else if (try) {
        rc = -EAGAIN;
    } else {
        return wait_here(rw, self, &rw->wq_, 1);
    }
    gr__sync_unlock(&rw->lock_);
    return rc;
}

int gr_rwlock_rdlock(gr_rwlock *rw)
{
    return rdlock(rw, 0);
}

int gr_rwlock_tryrdlock(gr_rwlock *rw)
{
    return rdlock(rw, 1);
}

int gr_rwlock_wrlock(gr_rwlock *rw)
{
    return wrlock(rw, 0);
}

int gr_rwlock_trywrlock(gr_rwlock *rw)
{
    return wrlock(rw, 1);
}

int gr_rwlock_rdunlock(gr_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&rw->lock_);
    if (!rw->readers_) {
        gr__sync_unlock(&rw->lock_);
        return -EPERM;
    }
    if (--rw->readers_ == 0)
        admit_writer(rw, &ws);
    gr__sync_unlock(&rw->lock_);
    gr__wakeset_wake(&ws);
    return 0;
}

int gr_rwlock_wrunlock(gr_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    struct gr__wakeset ws = GR__WAKESET_INIT;
    gr__sync_lock(&rw->lock_);
    if (!self || rw->writer_ != self) {
        gr__sync_unlock(&rw->lock_);
        return -EPERM;
    }
    rw->writer_ = NULL;
    if (!gr__waitq_empty(&rw->rq_))
        admit_readers(rw, &ws);
    else
        admit_writer(rw, &ws);
    gr__sync_unlock(&rw->lock_);
    gr__wakeset_wake(&ws);
    return 0;
}
