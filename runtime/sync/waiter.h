/* Waiting in a sync object, for tasks and for foreign threads.
 *
 * Built on the park/wake protocol of core/wait.h. A sync wait record
 * (gr__swait) is either a task's gr__wait, or, for a thread that is not a
 * runtime worker, a futex word the thread sleeps on. The winner of the wait
 * calls gr__swait_wake() in both cases and does not need to know which.
 *
 * gr__waiter is the common record of objects that keep one FIFO of waiters
 * under their spinlock (mutex, semaphore, event, condition, barrier, queue
 * ...). The protocol:
 *
 *   lock the object; decide that the caller must wait;
 *   gr__waiter_init(&w, self, &obj->lock_, &obj->queue);   (prepare before publish)
 *   rc = gr__waiter_park(&w, "why");                        (links, unlocks, parks)
 *
 * Exactly one party wins a wait, decided by a CAS on the record's `claimed`
 * word (gr__swait_claim): the winner (unlock, release, set...) claims the
 * first waiter under the object's lock, unlinks it, hands it what it waited
 * for, puts it into a gr__wakeset, and wakes the set after unlocking. The
 * interrupt hook (cancellation, timeout scope) claims first and only then
 * takes the object's lock to unlink itself. So a waiter that was handed
 * something always returns success, and once a winner has claimed a waiter
 * nothing touches the object on that waiter's behalf any more: the object
 * may be freed as soon as the winner is done with it (a task that frees the
 * event it just set, a generator closed right after its consumer was
 * woken). A waiter whose claim failed for the winner (its hook is about to
 * withdraw it) stays linked and is skipped. */
#ifndef GR_SYNC_WAITER_H
#define GR_SYNC_WAITER_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/task.h"
#include "core/wait.h"
#include "greenring.h"
#include "sync/waitq.h"

/* ---- Park/wake record for tasks and foreign threads ---------------- */

struct gr__swait {
    struct gr__wait wait; /* task waits; wait.result is the result for both */
    _Atomic int claimed;    /* 1 once a winner or the interrupt owns the wait */
    _Atomic uint32_t futex; /* foreign waits: 0 waiting, 1 woken */
    int foreign;
};

/* Entry check of a waiting call. 0 with *self = the calling task, or (when
 * foreign_ok and a runtime is running) 0 with *self = NULL for a foreign
 * thread; otherwise -EPERM / -ECANCELED / -ETIMEDOUT (gr__blocking_check). */
int gr__sync_enter(struct gr__task **self, int foreign_ok);

/* self NULL: a foreign thread's record. Before publishing the record. */
void gr__swait_prepare(struct gr__swait *s, struct gr__task *self);
/* Block until woken; returns the wake result. Tasks: gr__park (with the
 * hook and own deadline). Foreign threads: a futex wait; when `deadline`
 * passes, hook(&s->wait, 0) is called once from this thread, like the
 * wait's own deadline interrupts a task. */
int gr__swait_park(struct gr__swait *s, const char *reason, gr__interrupt_fn hook,
                   int64_t deadline);
/* Try to become the wait's winner: 1 if this caller won. */
int gr__swait_claim(struct gr__swait *s);
/* End the wait (the winner only, once, any thread). The record may be gone
 * as soon as this returns. */
void gr__swait_wake(struct gr__swait *s, int result);

/* ---- Waiter in an object's FIFO -------------------------------------- */

struct gr__waiter;
struct gr__wakeset;

/* Called under the object's lock after an interrupt withdrew w: repairs the
 * object's state (e.g. a barrier breaks) and may queue other wake-ups. */
typedef void (*gr__withdrawn_fn)(struct gr__waiter *w, struct gr__wakeset *ws);

struct gr__waiter {
    struct gr__swait sw;
    struct gr_wnode_ node;
    gr_spin_ *lock;             /* the object's lock */
    gr__waitq *q;               /* the queue it waits in */
    gr__withdrawn_fn withdrawn; /* may be NULL */
    struct gr__waiter *wake_next;
    int wake_result;
    void *data;   /* the object's: element pointer... */
    uintptr_t aux; /* the object's: arrival index, writer flag... */
};

#define GR__WAITER_OF(n) GR_CONTAINER_OF(n, struct gr__waiter, node)

/* Wake-ups collected under a lock, issued after it (FIFO). */
struct gr__wakeset {
    struct gr__waiter *head, *tail;
};

#define GR__WAKESET_INIT {NULL, NULL}

void gr__waiter_init(struct gr__waiter *w, struct gr__task *self, gr_spin_ *lock,
                     gr__waitq *q);
/* With the object's lock held: link w at the tail of its queue, unlock,
 * park. Returns the wake result (also for interrupts: -ECANCELED,
 * -ETIMEDOUT). */
int gr__waiter_park(struct gr__waiter *w, const char *reason);
/* The second half alone, for callers that must do something between
 * linking (under the lock) and parking (without it), e.g. a condition wait
 * unlocking its mutex: a wake that comes in between makes the park return
 * at once. */
int gr__waiter_sleep(struct gr__waiter *w, const char *reason);

/* The first waiter of q that this caller could claim, unlinked (lock
 * held), or NULL. Waiters being withdrawn stay linked. */
struct gr__waiter *gr__waiter_pop(gr__waitq *q);

/* Queue a wake-up of an unlinked waiter. */
void gr__wakeset_add(struct gr__wakeset *ws, struct gr__waiter *w, int result);
/* Claim and unlink every waiter of q into ws with `result`. */
void gr__wakeset_add_all(struct gr__wakeset *ws, gr__waitq *q, int result);
/* Issue the wake-ups (after unlocking). */
void gr__wakeset_wake(struct gr__wakeset *ws);

/* Random numbers for fair choices (select). Thread-local state behind a
 * non-inlined accessor (tasks move between threads). */
uint32_t gr__sync_random(void);

#endif
