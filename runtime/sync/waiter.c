#include "sync/waiter.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/attrs.h"
#include "core/runtime.h"
#include "core/worker.h"
#include "sync/spinlock.h"

/* ---------------------------------------------------------------------
 * Entry check
 * --------------------------------------------------------------------- */

int gr__sync_enter(struct gr__task **self, int foreign_ok)
{
    int rc = gr__blocking_check(self);
    if (rc != -EPERM)
        return rc;
    /* acquire: pairs with gr_run's publication of the runtime. */
    if (foreign_ok && !gr__worker_self() && atomic_load_explicit(&gr__rt, memory_order_acquire))
        return 0;
    return -EPERM;
}

/* ---------------------------------------------------------------------
 * Foreign threads: a futex word per wait
 * --------------------------------------------------------------------- */

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Wait while the word is 0, until the absolute CLOCK_MONOTONIC deadline.
 * Returns 1 when woken, 0 when the deadline passed first. */
static int futex_wait_until(struct gr__swait *s, int64_t deadline)
{
    for (;;) {
        /* acquire: pairs with the waker's release store, making the result
         * (and the handed-over element) visible. */
        if (atomic_load_explicit(&s->futex, memory_order_acquire))
            return 1;
        struct timespec ts, *tsp = NULL;
        if (deadline != GR_NO_DEADLINE) {
            if (gr_now() >= deadline)
                return 0;
            ts.tv_sec = deadline / 1000000000;
            ts.tv_nsec = deadline % 1000000000;
            tsp = &ts;
        }
        /* EAGAIN (already woken), EINTR and ETIMEDOUT all loop back to the
         * checks above. */
        futex(&s->futex, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 0, tsp);
    }
}

static int foreign_park(struct gr__swait *s, gr__interrupt_fn hook, int64_t deadline)
{
    if (!futex_wait_until(s, deadline)) {
        hook(&s->wait, 0); /* withdraws and wakes, or a winner's wake is coming */
        futex_wait_until(s, GR_NO_DEADLINE);
    }
    return s->wait.result;
}

/* ---------------------------------------------------------------------
 * Park and wake
 * --------------------------------------------------------------------- */

void gr__swait_prepare(struct gr__swait *s, struct gr__task *self)
{
    s->foreign = self == NULL;
    /* relaxed: the record is published later under the object's lock. */
    atomic_store_explicit(&s->claimed, 0, memory_order_relaxed);
    atomic_store_explicit(&s->futex, 0, memory_order_relaxed);
    if (self)
        gr__wait_prepare(&s->wait, self);
    else
        s->wait.task = NULL;
}

int gr__swait_park(struct gr__swait *s, const char *reason, gr__interrupt_fn hook,
                   int64_t deadline)
{
    if (s->foreign)
        return foreign_park(s, hook, deadline);
    return gr__park(&s->wait, reason, hook, deadline);
}

int gr__swait_claim(struct gr__swait *s)
{
    int expected = 0;
    /* relaxed: only decides who wins; the winner publishes what it hands
     * over through the wake (inbox release/acquire or the futex word). */
    return atomic_compare_exchange_strong_explicit(&s->claimed, &expected, 1,
                                                   memory_order_relaxed, memory_order_relaxed);
}

void gr__swait_wake(struct gr__swait *s, int result)
{
    if (!s->foreign) {
        gr__wake(&s->wait, result);
        return;
    }
    s->wait.result = result;
    /* release: publishes the result and whatever the winner handed over
     * (an element copied into the waiter's buffer) to the sleeper. */
    atomic_store_explicit(&s->futex, 1, memory_order_release);
    /* The record may be gone once the store is seen; the futex address is
     * on a live thread's stack, so a wake that finds nobody is harmless,
     * and every futex waiter rechecks its condition. */
    futex(&s->futex, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL);
}

/* ---------------------------------------------------------------------
 * Waiters in an object's FIFO
 * --------------------------------------------------------------------- */

void gr__wakeset_add(struct gr__wakeset *ws, struct gr__waiter *w, int result)
{
    w->wake_result = result;
    w->wake_next = NULL;
    if (ws->tail)
        ws->tail->wake_next = w;
    else
        ws->head = w;
    ws->tail = w;
}

struct gr__waiter *gr__waiter_pop(gr__waitq *q)
{
    for (struct gr_wnode_ *n = q->head_; n; n = n->next) {
        struct gr__waiter *w = GR__WAITER_OF(n);
        if (gr__swait_claim(&w->sw)) {
            gr__waitq_remove(q, n);
            return w;
        }
    }
    return NULL;
}

void gr__wakeset_add_all(struct gr__wakeset *ws, gr__waitq *q, int result)
{
    struct gr__waiter *w;
    while ((w = gr__waiter_pop(q)))
        gr__wakeset_add(ws, w, result);
}

void gr__wakeset_wake(struct gr__wakeset *ws)
{
    struct gr__waiter *w = ws->head;
    while (w) {
        /* Read the link first: the record may vanish once woken. */
        struct gr__waiter *next = w->wake_next;
        gr__swait_wake(&w->sw, w->wake_result);
        w = next;
    }
    ws->head = ws->tail = NULL;
}

/* Cancellation or a timeout scope: withdraw if nobody took us yet. */
static void waiter_interrupt(struct gr__wait *wait, int reason)
{
    struct gr__swait *s = GR_CONTAINER_OF(wait, struct gr__swait, wait);
    struct gr__waiter *w = GR_CONTAINER_OF(s, struct gr__waiter, sw);
    struct gr__wakeset ws = GR__WAKESET_INIT;
    if (!gr__swait_claim(&w->sw))
        return; /* the winner's wake is on its way; the object may be gone */
    gr__sync_lock(w->lock);
    gr__waitq_remove(w->q, &w->node); /* still linked: only claimers unlink */
    if (w->withdrawn)
        w->withdrawn(w, &ws);
    gr__sync_unlock(w->lock);
    gr__wakeset_wake(&ws);
    gr__swait_wake(&w->sw, reason ? reason : -ETIMEDOUT);
}

void gr__waiter_init(struct gr__waiter *w, struct gr__task *self, gr_spin_ *lock,
                     gr__waitq *q)
{
    gr__swait_prepare(&w->sw, self);
    w->node.linked = 0;
    w->lock = lock;
    w->q = q;
    w->withdrawn = NULL;
    w->wake_next = NULL;
    w->data = NULL;
    w->aux = 0;
}

int gr__waiter_sleep(struct gr__waiter *w, const char *reason)
{
    return gr__swait_park(&w->sw, reason, waiter_interrupt, GR_NO_DEADLINE);
}

int gr__waiter_park(struct gr__waiter *w, const char *reason)
{
    gr__waitq_push(w->q, &w->node);
    gr__sync_unlock(w->lock);
    return gr__waiter_sleep(w, reason);
}

/* ---------------------------------------------------------------------
 * Randomness for fair choices
 * --------------------------------------------------------------------- */

static __thread uint32_t rng_state;

GR_NOINLINE uint32_t gr__sync_random(void)
{
    /* The empty asm keeps the TLS address from being cached across a
     * context switch by the caller (see gr__worker_self). */
    __asm__ volatile("" ::: "memory");
    uint32_t x = rng_state;
    if (!x)
        x = (uint32_t)gr_now() | 1u;
    /* xorshift32: only has to be unpredictable enough for fairness. */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}
