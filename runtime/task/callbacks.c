/* Task state without blocking, done callbacks, and wait_for. */
#include <errno.h>

#include "core/task.h"
#include "core/wait.h"
#include "core/worker.h"
#include "greenring.h"

int gr_task_done(gr_task *handle)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    /* acquire: pairs with the release store of DONE in task_exit, so a
     * caller that sees 1 can read the result. */
    return atomic_load_explicit(&t->state, memory_order_acquire) == GR_TASK_DONE;
}

int gr_task_cancelled(gr_task *handle)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    /* relaxed: a snapshot of a flag that is only ever set. */
    return (atomic_load_explicit(&t->flags, memory_order_relaxed) & GR_TASK_CANCELLED) != 0;
}

int gr_task_result(gr_task *handle, int *result)
{
    int rc = gr_task_done(handle);
    if (rc < 0)
        return rc;
    if (!rc)
        return -EAGAIN;
    if (!result)
        return -EINVAL;
    *result = ((struct gr__task *)((uintptr_t)handle & ((UINT64_C(1) << 48) - 1)))->result;
    return 0;
}

static void run_callback(struct gr__task *t, gr_done_cb *cb)
{
    int saved = t->no_block;
    t->no_block = 1;
    cb->fn_(gr__task_handle(t), cb->arg_);
    t->no_block = saved;
}

int gr_task_add_done_callback(gr_task *handle, gr_done_cb *cb, gr_done_fn fn, void *arg)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    if (!cb || !fn)
        return -EINVAL;
    cb->fn_ = fn;
    cb->arg_ = arg;
    gr__spin_lock(&t->cb_lock);
    int closed = t->cbs_closed;
    if (!closed) {
        cb->next_ = t->cbs;
        t->cbs = cb;
    }
    gr__spin_unlock(&t->cb_lock);
    if (!closed)
        return 0;
    /* Finished already: run it here, under the same rules. */
    struct gr__task *self = gr__current_task();
    if (self) {
        run_callback(self, cb);
    } else {
        cb->fn_(handle, arg);
    }
    return 1;
}

int gr_task_remove_done_callback(gr_task *handle, gr_done_cb *cb)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    gr__spin_lock(&t->cb_lock);
    for (gr_done_cb **p = &t->cbs; *p; p = &(*p)->next_) {
        if (*p == cb) {
            *p = cb->next_;
            rc = 0;
            break;
        }
    }
    gr__spin_unlock(&t->cb_lock);
    return rc;
}

/* Called by the finishing task. Callbacks run under the lock so that a
 * remover that gets -ENOENT knows the callback is over and its record may
 * go away. Registration order is kept (the list is built LIFO). */
void gr__task_run_done_callbacks(struct gr__task *t)
{
    gr__spin_lock(&t->cb_lock);
    t->cbs_closed = 1;
    gr_done_cb *rev = NULL;
    while (t->cbs) {
        gr_done_cb *cb = t->cbs;
        t->cbs = cb->next_;
        cb->next_ = rev;
        rev = cb;
    }
    while (rev) {
        gr_done_cb *next = rev->next_;
        run_callback(t, rev);
        rev = next;
    }
    gr__spin_unlock(&t->cb_lock);
}

int gr_wait_for(gr_task *handle, int64_t ns)
{
    gr_scope scope;
    int rc = gr_scope_enter_timeout(&scope, ns);
    if (rc < 0)
        return rc;
    rc = gr_join(handle);
    int expired = gr_scope_leave(&scope);
    if (rc != -ETIMEDOUT && rc != -ECANCELED)
        return rc;
    if (rc == -ETIMEDOUT && !expired)
        return rc; /* the task itself returned -ETIMEDOUT */
    /* Our wait was interrupted: cancel the task and wait for it, shielded
     * so that our own cancellation cannot cut this short. */
    gr_cancel(handle);
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    gr_join(handle);
    gr_scope_leave(&shield);
    return rc;
}
