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

/* Runs cb for `finished` on the calling task `runner` (which may be the
 * finished task itself), with blocking calls refused. */
static void run_callback(struct gr__task *runner, struct gr__task *finished, gr_done_cb *cb)
{
    int saved = runner->no_block;
    runner->no_block = 1;
    cb->fn_(gr__task_handle(finished), cb->arg_);
    runner->no_block = saved;
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
    if (self)
        run_callback(self, t, cb);
    else
        cb->fn_(handle, arg);
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
        run_callback(t, t, rev);
        rev = next;
    }
    gr__spin_unlock(&t->cb_lock);
}

int gr_wait_for(gr_task *handle, int64_t ns)
{
    int done = gr_task_done(handle);
    if (done < 0)
        return done;
    if (done)
        return gr_join(handle); /* finished: its result, whatever the timeout */
    gr_scope scope;
    int rc = gr_scope_enter_timeout(&scope, ns);
    if (rc < 0)
        return rc;
    rc = gr_join(handle);
    gr_scope_leave(&scope);
    /* A successful join released the handle: rc is the task's own result.
     * Otherwise our wait was interrupted (our timeout, an enclosing one, or
     * cancellation): cancel the task and wait for it, shielded so that our
     * own cancellation cannot cut this short. */
    if ((rc != -ETIMEDOUT && rc != -ECANCELED) || gr_task_done(handle) < 0)
        return rc;
    gr_cancel(handle);
    gr_scope shield;
    gr_scope_enter_shield(&shield);
    gr_join(handle);
    gr_scope_leave(&shield);
    return rc;
}
