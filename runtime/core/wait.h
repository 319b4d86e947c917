/* Parking and waking: the protocol every blocking call is built on.
 *
 * A blocking call fills a wait record on its own stack, registers it with
 * whatever will end the wait (an io_uring operation, a join, a primitive's
 * waiter list...), and calls gr__park(). Exactly one party "wins" the wait
 * (the completion, the primitive's signaller, or an interrupt that managed
 * to withdraw the registration) and calls gr__wake() with the result.
 *
 * Every wake of a task parked on worker W is carried out by W's thread:
 * directly when the waker runs there, through W's inbox otherwise. So W's
 * thread has always finished switching the task out before it can make the
 * task runnable, the timer of the wait (in W's heap) is only touched by W,
 * and the wait record on the parked stack stays valid until W resumes it.
 *
 * Interrupts (cancellation, a scope deadline, the wait's own deadline) also
 * run on W and call the record's `interrupt` hook, which must end the wait
 * early if it has not ended yet: withdraw and gr__wake() with the reason, or,
 * for an io_uring operation, submit IORING_OP_ASYNC_CANCEL and let the
 * operation's own completion wake the task. */
#ifndef GR_CORE_WAIT_H
#define GR_CORE_WAIT_H

#include <stdint.h>

#include "core/timer.h"
#include "greenring.h"

struct gr__task;
struct gr__wait;

typedef void (*gr__interrupt_fn)(struct gr__wait *w, int reason);

struct gr__wait {
    struct gr__task *task;
    int result;
    int interrupt;       /* 0, or the reason an interrupt was requested */
    int deadline_result; /* what the deadline delivers: 0 (own) or -ETIMEDOUT */
    gr__interrupt_fn on_interrupt;
    const char *reason; /* wait reason shown by gr_dump_tasks */
    struct gr__timer timer;
};


/* Initialise a wait record for task t. Must happen before the record is
 * published to a waker (the waker reads w->task). */
void gr__wait_prepare(struct gr__wait *w, struct gr__task *t);

/* Park the calling task until the wait is woken; returns the wake result.
 * `deadline` is the wait's own deadline (GR_NO_DEADLINE for none): when it
 * passes the wait is interrupted with reason 0. Enclosing timeout scopes add
 * their deadline (reason -ETIMEDOUT) and cancellation reason -ECANCELED,
 * unless shielded. */
int gr__park(struct gr__wait *w, const char *reason, gr__interrupt_fn on_interrupt,
             int64_t deadline);

/* End the wait with `result`. Only the party that won the wait calls this,
 * exactly once, from any thread. */
void gr__wake(struct gr__wait *w, int result);

/* An interrupt hook for waits that are withdrawn by winning a CAS or that
 * nothing else can end (sleep): wakes with the reason. */
void gr__interrupt_wake(struct gr__wait *w, int reason);

/* Entry check of every blocking call: -EPERM outside a task, -ECANCELED
 * when cancelled and not shielded, -ETIMEDOUT when a scope has expired, 0
 * otherwise. Fills *self with the calling task. */
int gr__blocking_check(struct gr__task **self);

/* The interrupt that applies to the task now (same values as above, without
 * the -EPERM case). Marks the scope whose deadline fired. */
int gr__interrupt_pending(struct gr__task *t);

#endif
