/* Task groups: structured concurrency (asyncio.TaskGroup). */
#include <errno.h>
#include <stdlib.h>

#include "core/runtime.h"
#include "core/spinlock.h"
#include "core/task.h"
#include "core/wait.h"
#include "greenring.h"

struct gr_group {
    gr__spinlock lock;
    struct gr__task *children; /* running children (intrusive list) */
    size_t live;
    int cancelling;    /* an error, a cancel or the deadline: children cancelled */
    int waited;        /* the wait has finished: no more spawns */
    int wait_interrupt;/* why the waiter stopped waiting early, or 0 */
    struct gr__wait *waiter;
    int64_t deadline;
    int64_t done_at; /* when the last child finished (with a deadline only) */
    int *errors;
    size_t nerrors, cap;
};

int gr_group_create(gr_group **out)
{
    if (!out)
        return -EINVAL;
    gr_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->deadline = GR_NO_DEADLINE;
    *out = g;
    return 0;
}

int gr_group_set_deadline(gr_group *g, int64_t deadline)
{
    if (!g)
        return -EINVAL;
    gr__spin_lock(&g->lock);
    g->deadline = deadline;
    gr__spin_unlock(&g->lock);
    return 0;
}

/* Locked. */
static void cancel_children(gr_group *g)
{
    g->cancelling = 1;
    for (struct gr__task *c = g->children; c; c = c->group_next)
        gr__task_cancel(c);
}

int gr_group_cancel(gr_group *g)
{
    if (!g)
        return -EINVAL;
    gr__spin_lock(&g->lock);
    cancel_children(g);
    gr__spin_unlock(&g->lock);
    return 0;
}

/* Locked. A failed allocation loses the record, not the first error. */
static void record_error(gr_group *g, int err)
{
    if (g->nerrors == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        int *errors = realloc(g->errors, cap * sizeof(*errors));
        if (!errors)
            return;
        g->errors = errors;
        g->cap = cap;
    }
    g->errors[g->nerrors++] = err;
}

static void child_finished(gr_group *g, struct gr__task *t, int result)
{
    struct gr__wait *wake = NULL;
    gr__spin_lock(&g->lock);
    if (t->group_prev)
        t->group_prev->group_next = t->group_next;
    else
        g->children = t->group_next;
    if (t->group_next)
        t->group_next->group_prev = t->group_prev;
    if (result < 0 && result != -ECANCELED) {
        record_error(g, result);
        if (!g->cancelling)
            cancel_children(g);
    }
    if (--g->live == 0 && g->deadline != GR_NO_DEADLINE)
        g->done_at = gr_now();
    if (g->live == 0 && g->waiter) {
        wake = g->waiter;
        g->waiter = NULL;
    }
    gr__spin_unlock(&g->lock);
    if (wake)
        gr__wake(wake, 0);
}

static int child_main(void *arg)
{
    gr_group *g = arg;
    struct gr__task *t = gr__current_task();
    gr_scope scope;
    int scoped = g->deadline != GR_NO_DEADLINE;
    if (scoped)
        gr_scope_enter_deadline(&scope, g->deadline);
    int result = t->group_fn(t->group_arg);
    if (scoped)
        gr_scope_leave(&scope);
    child_finished(g, t, result);
    return result;
}

int gr_group_spawn(gr_group *g, gr_task_fn fn, void *arg, const gr_spawn_opts *opts)
{
    if (!g || !fn)
        return -EINVAL;
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    if (!rt)
        return -EPERM;
    struct gr__task *t;
    gr__spin_lock(&g->lock);
    int rc = g->waited ? -EPIPE : gr__task_create(rt, child_main, g, opts, 0, &t);
    if (rc == 0) {
        t->group = g;
        t->group_fn = fn;
        t->group_arg = arg;
        t->group_prev = NULL;
        t->group_next = g->children;
        if (g->children)
            g->children->group_prev = t;
        g->children = t;
        g->live++;
        if (g->cancelling)
            gr__task_cancel(t);
    }
    gr__spin_unlock(&g->lock);
    if (rc == 0)
        gr__task_schedule_new(rt, t);
    return rc;
}

struct group_wait {
    struct gr__wait wait;
    gr_group *group;
};

/* The waiter is cancelled or reached the deadline: cancel the children and
 * keep waiting for them (the group cannot end before its children). */
static void wait_interrupt(struct gr__wait *w, int reason)
{
    gr_group *g = GR_CONTAINER_OF(w, struct group_wait, wait)->group;
    gr__spin_lock(&g->lock);
    if (g->waiter == w && !g->wait_interrupt) {
        g->wait_interrupt = reason ? reason : -ETIMEDOUT;
        cancel_children(g);
    }
    gr__spin_unlock(&g->lock);
}

int gr_group_wait(gr_group *g)
{
    if (!g)
        return -EINVAL;
    struct gr__task *self = gr__current_task();
    if (!self || self->no_block)
        return -EPERM;
    if (self->group == g)
        return -EDEADLK;
    struct group_wait w = {.group = g};
    gr__wait_prepare(&w.wait, self);
    gr__spin_lock(&g->lock);
    if (g->waiter) {
        gr__spin_unlock(&g->lock);
        return -EINVAL;
    }
    int must_wait = g->live > 0;
    if (must_wait)
        g->waiter = &w.wait;
    gr__spin_unlock(&g->lock);
    if (must_wait)
        gr__park(&w.wait, "group wait", wait_interrupt, g->deadline);
    gr__spin_lock(&g->lock);
    g->waited = 1;
    /* Children that were still running at the deadline make the group time
     * out, even when they finished before the timer could fire. */
    if (!g->wait_interrupt && g->deadline != GR_NO_DEADLINE && g->done_at >= g->deadline)
        g->wait_interrupt = -ETIMEDOUT;
    int rc = g->wait_interrupt ? g->wait_interrupt : g->nerrors ? g->errors[0] : 0;
    gr__spin_unlock(&g->lock);
    return rc;
}

int gr_group_errors(gr_group *g, int *errors, size_t n)
{
    if (!g || (!errors && n))
        return -EINVAL;
    gr__spin_lock(&g->lock);
    size_t count = g->nerrors;
    for (size_t i = 0; i < n && i < count; i++)
        errors[i] = g->errors[i];
    gr__spin_unlock(&g->lock);
    return (int)count;
}

int gr_group_destroy(gr_group *g)
{
    if (!g)
        return -EINVAL;
    gr__spin_lock(&g->lock);
    size_t live = g->live;
    gr__spin_unlock(&g->lock);
    if (live)
        return -EBUSY;
    free(g->errors);
    free(g);
    return 0;
}
