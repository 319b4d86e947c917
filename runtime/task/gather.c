/* gather, wait and as_completed, built on done callbacks. */
#include <errno.h>
#include <stdlib.h>

#include "core/spinlock.h"
#include "core/task.h"
#include "core/wait.h"
#include "greenring.h"

/* ---------------------------------------------------------------------
 * A parked task waiting for "enough" of several tasks to finish.
 * --------------------------------------------------------------------- */

struct multi_wait {
    gr__spinlock lock;
    struct gr__wait wait;
    int parked; /* the wait record is armed and nobody woke it yet */
    size_t ndone, n;
    int error_seen;
    int first_error; /* the first negative result, in completion order */
    enum gr_wait_mode mode;
};

struct multi_cb {
    gr_done_cb cb;
    struct multi_wait *mw;
};

static int satisfied(const struct multi_wait *mw)
{
    switch (mw->mode) {
    case GR_WAIT_ANY:
        return mw->ndone > 0;
    case GR_WAIT_FIRST_ERROR:
        return mw->error_seen || mw->ndone == mw->n;
    case GR_WAIT_ALL:
        break;
    }
    return mw->ndone == mw->n;
}

static void multi_done(gr_task *task, void *arg)
{
    struct multi_wait *mw = arg;
    int result = 0;
    gr_task_result(task, &result);
    struct gr__wait *wake = NULL;
    gr__spin_lock(&mw->lock);
    mw->ndone++;
    if (result < 0 && !mw->error_seen) {
        mw->error_seen = 1;
        mw->first_error = result;
    }
    if (mw->parked && satisfied(mw)) {
        mw->parked = 0;
        wake = &mw->wait;
    }
    gr__spin_unlock(&mw->lock);
    if (wake)
        gr__wake(wake, 0);
}

static void multi_interrupt(struct gr__wait *w, int reason)
{
    struct multi_wait *mw = GR_CONTAINER_OF(w, struct multi_wait, wait);
    gr__spin_lock(&mw->lock);
    int won = mw->parked;
    mw->parked = 0;
    gr__spin_unlock(&mw->lock);
    if (won)
        gr__wake(w, reason);
}

#define STACK_CBS 32

/* gr_wait, also reporting the first error in completion order (tasks that
 * had finished before the call count in input order). */
static int wait_many(gr_task **tasks, size_t n, enum gr_wait_mode mode, int64_t deadline,
                     unsigned char *done, int *first_error)
{
    if ((!tasks && n) || mode > GR_WAIT_ALL)
        return -EINVAL;
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    struct multi_cb stack_cbs[STACK_CBS];
    struct multi_cb *cbs = n <= STACK_CBS ? stack_cbs : calloc(n, sizeof(*cbs));
    if (!cbs)
        return -ENOMEM;
    struct multi_wait mw = {.n = n, .mode = mode};
    gr__wait_prepare(&mw.wait, self);
    size_t registered = 0;
    for (; registered < n; registered++) {
        cbs[registered].mw = &mw;
        rc = gr_task_add_done_callback(tasks[registered], &cbs[registered].cb, multi_done, &mw);
        if (rc < 0)
            break;
    }
    int wait_rc = 0;
    if (rc >= 0) {
        gr__spin_lock(&mw.lock);
        int must_wait = !satisfied(&mw);
        mw.parked = must_wait;
        gr__spin_unlock(&mw.lock);
        if (must_wait)
            wait_rc = gr__park(&mw.wait, "wait", multi_interrupt, deadline);
    }
    for (size_t i = 0; i < registered; i++)
        gr_task_remove_done_callback(tasks[i], &cbs[i].cb);
    if (cbs != stack_cbs)
        free(cbs);
    *first_error = mw.first_error;
    if (rc < 0)
        return rc;
    if (wait_rc < 0)
        return wait_rc;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        int d = gr_task_done(tasks[i]) == 1;
        if (done)
            done[i] = (unsigned char)d;
        count += d;
    }
    return count;
}

int gr_wait(gr_task **tasks, size_t n, enum gr_wait_mode mode, int64_t deadline,
            unsigned char *done)
{
    if (n == 0 && mode == GR_WAIT_ANY)
        return -EINVAL; /* could never be satisfied: a silent hang otherwise */
    int first_error;
    return wait_many(tasks, n, mode, deadline, done, &first_error);
}

/* ---------------------------------------------------------------------
 * gather
 * --------------------------------------------------------------------- */

static void cancel_and_join_all(gr_task **tasks, size_t n, int *results)
{
    for (size_t i = 0; i < n; i++)
        gr_cancel(tasks[i]);
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    for (size_t i = 0; i < n; i++) {
        int r = gr_join(tasks[i]);
        if (results)
            results[i] = r;
    }
    gr_scope_leave(&shield);
}

int gr_gather(gr_task **tasks, size_t n, int *results, enum gr_gather_policy policy)
{
    if ((!tasks && n) || !results || policy > GR_GATHER_COLLECT_ALL)
        return -EINVAL;
    enum gr_wait_mode mode = policy == GR_GATHER_FAIL_FAST ? GR_WAIT_FIRST_ERROR : GR_WAIT_ALL;
    int first_error;
    int rc = wait_many(tasks, n, mode, GR_NO_DEADLINE, NULL, &first_error);
    if (rc < 0 && rc != -ECANCELED && rc != -ETIMEDOUT)
        return rc; /* bad handles: nothing was consumed */
    int err = rc < 0 ? rc : policy == GR_GATHER_FAIL_FAST ? first_error : 0;
    /* Either everything is done (the joins return at once), or we stop
     * early and the rest is cancelled; every handle is released. */
    cancel_and_join_all(tasks, n, results);
    return err;
}

/* ---------------------------------------------------------------------
 * as_completed
 * --------------------------------------------------------------------- */

struct completion_cb {
    gr_done_cb cb;
    gr_as_completed *it;
    size_t index;
};

static gr__spinlock *iter_lock(gr_as_completed *it)
{
    return (gr__spinlock *)(void *)&it->lock_;
}

static void iter_done(gr_task *task, void *arg)
{
    (void)task;
    struct completion_cb *c = arg;
    gr_as_completed *it = c->it;
    struct gr__wait *wake = NULL;
    gr__spin_lock(iter_lock(it));
    it->ready_[it->ready_len_++] = c->index;
    if (it->waiter_) {
        wake = it->waiter_;
        it->waiter_ = NULL;
    }
    gr__spin_unlock(iter_lock(it));
    if (wake)
        gr__wake(wake, 0);
}

int gr_as_completed_init(gr_as_completed *it, gr_task **tasks, size_t n)
{
    _Static_assert(sizeof(((gr_as_completed *)0)->lock_) >= sizeof(gr__spinlock),
                   "gr_as_completed.lock_ holds a spinlock");
    if (!it || (!tasks && n))
        return -EINVAL;
    *it = (gr_as_completed){.tasks_ = tasks, .n_ = n};
    it->ready_ = calloc(n ? n : 1, sizeof(size_t));
    struct completion_cb *cbs = calloc(n ? n : 1, sizeof(*cbs));
    if (!it->ready_ || !cbs) {
        free(it->ready_);
        free(cbs);
        return -ENOMEM;
    }
    it->cbs_ = cbs;
    for (size_t i = 0; i < n; i++) {
        cbs[i] = (struct completion_cb){.it = it, .index = i};
        int rc = gr_task_add_done_callback(tasks[i], &cbs[i].cb, iter_done, &cbs[i]);
        if (rc < 0) {
            it->n_ = i; /* destroy removes only what was added */
            gr_as_completed_destroy(it);
            return rc;
        }
    }
    return 0;
}

struct iter_wait {
    struct gr__wait wait;
    gr_as_completed *it;
};

static void iter_interrupt(struct gr__wait *w, int reason)
{
    gr_as_completed *it = GR_CONTAINER_OF(w, struct iter_wait, wait)->it;
    gr__spin_lock(iter_lock(it));
    int won = it->waiter_ == w;
    if (won)
        it->waiter_ = NULL;
    gr__spin_unlock(iter_lock(it));
    if (won)
        gr__wake(w, reason);
}

int gr_as_completed_next(gr_as_completed *it, int64_t deadline)
{
    if (!it)
        return -EINVAL;
    if (it->taken_ == it->n_)
        return -ENOENT;
    struct gr__task *self;
    struct iter_wait w = {.it = it};
    gr__spin_lock(iter_lock(it));
    if (it->taken_ < it->ready_len_) {
        int index = (int)it->ready_[it->taken_++];
        gr__spin_unlock(iter_lock(it));
        return index;
    }
    gr__spin_unlock(iter_lock(it));
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    gr__wait_prepare(&w.wait, self);
    gr__spin_lock(iter_lock(it));
    int ready = it->taken_ < it->ready_len_;
    if (!ready)
        it->waiter_ = &w.wait;
    gr__spin_unlock(iter_lock(it));
    if (!ready) {
        rc = gr__park(&w.wait, "as_completed", iter_interrupt, deadline);
        if (rc < 0)
            return rc;
    }
    gr__spin_lock(iter_lock(it));
    rc = it->taken_ < it->ready_len_ ? (int)it->ready_[it->taken_++] : -ETIMEDOUT;
    gr__spin_unlock(iter_lock(it));
    return rc;
}

void gr_as_completed_destroy(gr_as_completed *it)
{
    if (!it)
        return;
    struct completion_cb *cbs = it->cbs_;
    for (size_t i = 0; cbs && i < it->n_; i++)
        gr_task_remove_done_callback(it->tasks_[i], &cbs[i].cb);
    free(cbs);
    free(it->ready_);
    *it = (gr_as_completed){0};
}
