#include "core/wait.h"

#include <errno.h>

#include "core/task.h"
#include "core/runtime.h"
#include "core/worker.h"

void gr__wait_prepare(struct gr__wait *w, struct gr__task *t)
{
    w->task = t;
    w->result = 0;
    w->interrupt = 0;
    w->timer.index = GR_TIMER_IDLE;
}

/* Walks the scope chain up to the innermost shield. Returns the scope with
 * the earliest deadline (or NULL) and whether a shield was met. */
static gr_scope *earliest_scope(struct gr__task *t, int *shielded)
{
    gr_scope *earliest = NULL;
    *shielded = 0;
    for (gr_scope *s = t->scope; s; s = s->parent_) {
        if (s->deadline_ != GR_NO_DEADLINE && (!earliest || s->deadline_ < earliest->deadline_))
            earliest = s;
        if (s->shield_) {
            *shielded = 1;
            break;
        }
    }
    return earliest;
}

/* The interrupt given the scope walk's result (earliest_scope). */
static int pending_for(struct gr__task *t, gr_scope *earliest, int shielded)
{
    /* seq_cst: pairs with gr__task_cancel (flag store, then state load)
     * against gr__park (state store, then this load). */
    if (!shielded && (atomic_load(&t->flags) & GR_TASK_CANCELLED))
        return -ECANCELED;
    if (earliest && gr_now() >= earliest->deadline_) {
        earliest->fired_ = 1;
        return -ETIMEDOUT;
    }
    return 0;
}

int gr__interrupt_pending(struct gr__task *t)
{
    int shielded;
    gr_scope *earliest = earliest_scope(t, &shielded);
    return pending_for(t, earliest, shielded);
}

int gr__blocking_check(struct gr__task **self)
{
    struct gr__task *t = gr__current_task();
    *self = t;
    if (!t || t->no_block)
        return -EPERM;
    return gr__interrupt_pending(t);
}

void gr__wake(struct gr__wait *w, int result)
{
    struct gr__task *t = w->task;
    w->result = result;
    /* relaxed: while parked, `worker` only changes on the owning worker's
     * thread, and the winner of the wait was ordered after the task's
     * registration (primitive lock, CAS, or the CQE on that worker). */
    struct gr__worker *owner = atomic_load_explicit(&t->worker, memory_order_relaxed);
    if (owner == gr__worker_self())
        /* Woken by the running task (a send, an unlock): run-next, as Go
         * does, for hand-off latency. Woken by completions, timers or
         * messages while polling: FIFO, in the order they happened. */
        gr__worker_make_runnable(owner, t, owner->current && !owner->polling);
    else
        gr__worker_post(owner, &t->wake_msg);
}

void gr__interrupt_wake(struct gr__wait *w, int reason)
{
    gr__wake(w, reason);
}

int gr__park(struct gr__wait *w, const char *reason, gr__interrupt_fn on_interrupt,
             int64_t deadline)
{
    struct gr__worker *wk = gr__worker_self();
    struct gr__task *t = wk->current;
    int shielded;
    gr_scope *scope = earliest_scope(t, &shielded);
    w->reason = reason;
    w->on_interrupt = on_interrupt;
    w->deadline_result = 0;
    if (scope && scope->deadline_ < deadline) {
        deadline = scope->deadline_;
        w->deadline_result = -ETIMEDOUT;
    }
    t->wait = w;
    /* relaxed: only read by introspection, as a snapshot. */
    atomic_store_explicit(&t->parked_at, gr__now_coarse(), memory_order_relaxed);
    atomic_store_explicit(&t->wait_reason, reason, memory_order_relaxed);
    /* seq_cst: see gr__interrupt_pending. */
    atomic_store(&t->state, GR_TASK_PARKED);
    /* The same scope walk as for the deadline above: the chain belongs to
     * this task and cannot change while it parks. */
    int pending = pending_for(t, scope, shielded);
    if (pending)
        on_interrupt(w, pending);
    else if (deadline != GR_NO_DEADLINE && gr__timer_arm(&wk->timers, &w->timer, deadline) < 0)
        on_interrupt(w, -ENOMEM);
    if (atomic_load_explicit(&t->state, memory_order_relaxed) != GR_TASK_RUNNING)
        gr__worker_switch_out(wk, GR_AFTER_PARK);
    t->wait = NULL;
    atomic_store_explicit(&t->wait_reason, NULL, memory_order_relaxed);
    return w->result;
}
