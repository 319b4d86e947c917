/* The scheduler: one loop per worker thread.
 *
 * A running task gives up the CPU by switching straight to the next task of
 * its worker (run-next slot, then the local queue); only when there is none
 * does it switch to the worker's own stack, where find_runnable() looks at
 * the global queue, steals from other workers and finally blocks in the ring
 * wait. io_uring submissions are batched: the ring is entered once per
 * scheduler round (poll()), not once per operation. */
#include "core/worker.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#ifdef GR_VALGRIND
#include <poll.h>
#endif
#include <unistd.h>

#include "core/io_op.h"
#include "core/runtime.h"
#include "core/wait.h"
#include "task/debug.h"

/* Every this many scheduling decisions a worker looks at its inbox, ring and
 * the global queue before its own run queue, and prefers the queue to the
 * run-next slot (Go uses 61 for the same purpose). */
#define GLOBAL_CHECK_TICKS 61u
#define GLOBAL_BATCH 32u
#define ALTSTACK_SIZE ((size_t)64 * 1024)

static __thread struct gr__worker *tls_worker;

GR_NOINLINE struct gr__worker *gr__worker_self(void)
{
    /* The empty asm keeps the compiler from treating this as a pure
     * function whose result could be reused across a context switch. */
    __asm__ volatile("" ::: "memory");
    return tls_worker;
}

/* ---------------------------------------------------------------------
 * Context switching
 * --------------------------------------------------------------------- */

static void queue_woken(struct gr__worker *w, struct gr__task *t);
static void worker_idle(struct gr__worker *w);

static struct gr__worker *switch_to(struct gr__worker *w, gr__ctx *save, struct gr__task *to,
                                    int leaving_for_good)
{
    gr__ctx target = to ? to->ctx : w->sched_ctx;
#ifdef GR_FIBER_ASAN
    void *fake_stack = NULL;
    const void *bottom = to ? (const void *)(to->stack.top - to->stack.size) : w->thread_stack_lo;
    size_t size = to ? to->stack.size : w->thread_stack_size;
    __sanitizer_start_switch_fiber(leaving_for_good ? NULL : &fake_stack, bottom, size);
#else
    (void)leaving_for_good;
#endif
#ifdef GR_FIBER_TSAN
    __tsan_switch_to_fiber(to ? to->tsan_fiber : w->tsan_sched_fiber, 0);
#endif
    struct gr__worker *resumed_by = gr__ctx_switch(save, target, w);
#ifdef GR_FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
#endif
    return resumed_by;
}

static void start_running(struct gr__worker *w, struct gr__task *t)
{
    w->current = t;
    /* relaxed: `worker` is a hint for cancellers; the state store below and
     * the inbox protocol order everything that matters. */
    atomic_store_explicit(&t->worker, w, memory_order_relaxed);
    atomic_store_explicit(&t->state, GR_TASK_RUNNING, memory_order_relaxed);
    /* relaxed: single writer; the debug watchdog only samples these. */
    atomic_store_explicit(&w->switches,
                          atomic_load_explicit(&w->switches, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&w->running, t, memory_order_relaxed);
}

void gr__worker_finish_switch(struct gr__worker *w)
{
    struct gr__task *prev = w->after_task;
    enum gr__after after = w->after;
    w->after = GR_AFTER_NONE;
    w->after_task = NULL;
    switch (after) {
    case GR_AFTER_YIELD:
        atomic_store_explicit(&prev->state, GR_TASK_RUNNABLE, memory_order_relaxed);
        prev->next = NULL;
        if (w->yield_tail)
            w->yield_tail->next = prev;
        else
            w->yield_head = prev;
        w->yield_tail = prev;
        break;
    case GR_AFTER_EXIT:
        gr__task_unref(w, prev);
        break;
    case GR_AFTER_PARK:
    case GR_AFTER_NONE:
        break;
    }
}

/* ---------------------------------------------------------------------
 * Ring
 * --------------------------------------------------------------------- */

static void dispatch(struct gr__worker *w, const struct io_uring_cqe *cqe)
{
    struct gr__completion *c = io_uring_cqe_get_data(cqe);
    if (c)
        c->fn(w, c, cqe->res, cqe->flags);
}

static unsigned reap(struct gr__worker *w)
{
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&w->ring, head, cqe)
    {
        dispatch(w, cqe);
        n++;
    }
    io_uring_cq_advance(&w->ring, n);
    return n;
}

static int ring_needs_enter(struct gr__worker *w)
{
    unsigned kflags = IO_URING_READ_ONCE(*w->ring.sq.kflags);
    return io_uring_sq_ready(&w->ring) || (kflags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

struct io_uring_sqe *gr__worker_sqe(struct gr__worker *w)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&w->ring))) {
        /* The submission queue is full: submit what is queued; if the
         * kernel pushes back (completion queue overflow), make room. */
        if (io_uring_submit_and_get_events(&w->ring) <= 0)
            reap(w);
    }
    return sqe;
}

static void send_wake(struct gr__worker *from, struct gr__worker *to)
{
    if (from && from->rt->cfg_have_msg_ring) {
        struct io_uring_sqe *sqe = gr__worker_sqe(from);
        io_uring_prep_msg_ring(sqe, to->ring.ring_fd, 0, 0, 0);
        io_uring_sqe_set_data64(sqe, 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        /* Submitted now, not at the end of the round: the target sleeps. */
        io_uring_submit(&from->ring);
        return;
    }
    uint64_t one = 1;
    ssize_t rc = write(to->eventfd, &one, sizeof(one));
    (void)rc; /* an eventfd write only fails when the counter is saturated,
                 which also wakes the reader */
}

static void eventfd_done(struct gr__worker *w, struct gr__completion *c, int32_t res,
                         uint32_t flags);

static void arm_eventfd(struct gr__worker *w)
{
    struct io_uring_sqe *sqe = gr__worker_sqe(w);
    io_uring_prep_read(sqe, w->eventfd, &w->eventfd_buf, sizeof(w->eventfd_buf), 0);
    io_uring_sqe_set_data(sqe, &w->eventfd_done);
}

static void eventfd_done(struct gr__worker *w, struct gr__completion *c, int32_t res,
                         uint32_t flags)
{
    (void)c;
    (void)flags;
    if (res != -ECANCELED)
        arm_eventfd(w);
}

/* ---------------------------------------------------------------------
 * Run queues, inbox, timers
 * --------------------------------------------------------------------- */

/* Full local queue: move half of it, the oldest, to the global queue (as
 * Go does) so other workers can take it without stealing one by one. */
static void spill_to_global(struct gr__worker *w, struct gr__runq *q)
{
    struct gr__task *first = NULL, *last = NULL, *t;
    uint32_t n = 0;
    while (n < GR_RUNQ_SIZE / 2 && (t = gr__runq_pop_front(q))) {
        if (last)
            last->next = t;
        else
            first = t;
        last = t;
        n++;
    }
    if (n)
        gr__global_push(w->rt, first, last, n);
}

static uint32_t queued(struct gr__worker *w)
{
    return gr__runq_len(&w->spawned) + gr__runq_len(&w->woken);
}

static void maybe_wake_idle(struct gr__worker *w)
{
    struct gr__runtime *rt = w->rt;
    /* relaxed: a heuristic; a missed wake-up only delays stealing until the
     * idle worker's next timer or wake-up, never loses the task. */
    if (atomic_load_explicit(&rt->n_parked, memory_order_relaxed) &&
        !atomic_load_explicit(&rt->n_searching, memory_order_relaxed))
        gr__worker_wake_idle(rt, w);
}

/* Woken and yielded tasks: FIFO among themselves. */
static void queue_woken(struct gr__worker *w, struct gr__task *t)
{
    while (GR_UNLIKELY(gr__runq_push_back(&w->woken, t) < 0))
        spill_to_global(w, &w->woken);
}

/* Spawned tasks: the newest runs first (depth-first). */
static void queue_spawned(struct gr__worker *w, struct gr__task *t)
{
    while (GR_UNLIKELY(gr__runq_push_back(&w->spawned, t) < 0))
        spill_to_global(w, &w->spawned);
}

/* The run-next slot holds the newest task spawned here or woken by the
 * running task (Go's runnext): a task that spawns and joins, or that hands
 * a message to a waiting partner, switches to it without touching a queue
 * (no fence, no CAS). What the slot held before goes to the queue of its
 * kind, where it can be stolen. */
static void set_runnext(struct gr__worker *w, struct gr__task *t, int spawned)
{
    struct gr__task *old = w->runnext;
    int old_spawned = w->runnext_spawned;
    w->runnext = t;
    w->runnext_spawned = spawned;
    if (!old)
        return;
    if (old_spawned)
        queue_spawned(w, old);
    else
        queue_woken(w, old);
    maybe_wake_idle(w);
}

void gr__worker_push_spawned(struct gr__worker *w, struct gr__task *t)
{
    atomic_store_explicit(&t->state, GR_TASK_RUNNABLE, memory_order_relaxed);
    set_runnext(w, t, 1);
}

void gr__worker_make_runnable(struct gr__worker *w, struct gr__task *t, int lifo)
{
    struct gr__wait *wait = t->wait;
    if (wait && gr__timer_armed(&wait->timer))
        gr__timer_disarm(&w->timers, &wait->timer);
    if (t == w->current) {
        /* Woken before it could switch out (its own completion reaped
         * while it was picking the next task): gr__park returns at once. */
        atomic_store_explicit(&t->state, GR_TASK_RUNNING, memory_order_relaxed);
        return;
    }
    /* relaxed: only this worker acts on a task's state while it is queued
     * here; thieves synchronise through the run queue. */
    atomic_store_explicit(&t->state, GR_TASK_RUNNABLE, memory_order_relaxed);
    if (lifo) {
        set_runnext(w, t, 0);
        return;
    }
    queue_woken(w, t);
    maybe_wake_idle(w);
}

void gr__worker_check_interrupts(struct gr__worker *w, struct gr__task *t)
{
    if (atomic_load_explicit(&t->state, memory_order_relaxed) != GR_TASK_PARKED ||
        atomic_load_explicit(&t->worker, memory_order_relaxed) != w || !t->wait)
        return;
    int reason = gr__interrupt_pending(t);
    if (reason)
        t->wait->on_interrupt(t->wait, reason);
}

static void handle_poke(struct gr__worker *w, struct gr__task *t)
{
    /* seq_cst: clear before looking, so a cancel that comes after this
     * point queues a new poke instead of being absorbed by this one. */
    atomic_store(&t->poke_queued, 0);
    if (atomic_load(&t->state) == GR_TASK_PARKED) {
        struct gr__worker *owner = atomic_load_explicit(&t->worker, memory_order_relaxed);
        if (owner == w) {
            gr__worker_check_interrupts(w, t);
        } else if (!atomic_exchange(&t->poke_queued, 1)) {
            /* The task moved on and parked elsewhere: forward, keeping the
             * reference this message holds. */
            gr__worker_post(owner, &t->poke_msg);
            return;
        }
    }
    gr__task_unref(w, t);
}

static void drain_inbox(struct gr__worker *w)
{
    /* relaxed pre-check: an empty inbox is the common case. */
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed))
        return;
    /* acquire: pairs with the release CAS in gr__worker_post, making the
     * waker's writes (the wake result) visible. */
    struct gr__msg *m = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    struct gr__msg *fifo = NULL;
    while (m) {
        struct gr__msg *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    while (fifo) {
        struct gr__msg *next = fifo->next;
        if (fifo->kind == GR_MSG_WAKE)
            gr__worker_make_runnable(w, fifo->task, 0);
        else
            handle_poke(w, fifo->task);
        fifo = next;
    }
}

static void expire_timers(struct gr__worker *w)
{
    struct gr__timer *tm = gr__timer_first(&w->timers);
    if (!tm)
        return;
    int64_t now = gr_now();
    while (tm && tm->deadline <= now) {
        gr__timer_disarm(&w->timers, tm);
        struct gr__wait *wait = GR_CONTAINER_OF(tm, struct gr__wait, timer);
        int reason = wait->deadline_result;
        if (reason) {
            int pending = gr__interrupt_pending(wait->task);
            reason = pending ? pending : reason;
        }
        wait->on_interrupt(wait, reason);
        tm = gr__timer_first(&w->timers);
    }
}

/* One scheduler round: submit, reap completions, take messages, fire
 * timers. */
static void poll_once(struct gr__worker *w)
{
    w->polling = 1;
    if (ring_needs_enter(w))
        io_uring_submit_and_get_events(&w->ring);
    reap(w);
    drain_inbox(w);
    expire_timers(w);
    w->polling = 0;
    gr__debug_poll(w);
}

/* ---------------------------------------------------------------------
 * Picking the next task
 * --------------------------------------------------------------------- */

static struct gr__task *pop_yielded(struct gr__worker *w)
{
    struct gr__task *t = w->yield_head;
    if (t && !(w->yield_head = t->next))
        w->yield_tail = NULL;
    return t;
}

/* Yielded tasks become stealable (and go behind woken ones). */
static void publish_yielded(struct gr__worker *w)
{
    struct gr__task *t;
    while ((t = pop_yielded(w)))
        queue_woken(w, t);
}

static struct gr__task *pop_local(struct gr__worker *w)
{
    struct gr__task *t = w->runnext;
    if (t) {
        w->runnext = NULL;
        return t;
    }
    if ((t = gr__runq_pop_back(&w->spawned)) || (t = gr__runq_pop_front(&w->woken)))
        return t;
    return pop_yielded(w);
}

static struct gr__task *pick_local(struct gr__worker *w)
{
    struct gr__task *t;
    if (GR_UNLIKELY(++w->tick % GLOBAL_CHECK_TICKS == 0)) {
        /* Fairness: the global queue and the oldest woken task go before
         * anything spawned since (which would otherwise run first). */
        poll_once(w);
        publish_yielded(w);
        if ((t = gr__global_pop(w->rt)) || (t = gr__runq_pop_front(&w->woken)))
            return t;
    }
    if ((t = pop_local(w)))
        return t;
    poll_once(w);
    return pop_local(w);
}

static struct gr__task *take_global(struct gr__worker *w)
{
    struct gr__task *t = gr__global_pop(w->rt);
    if (!t)
        return NULL;
    /* Take a batch while we hold nothing else: fewer trips to the lock. */
    for (uint32_t i = 1; i < GLOBAL_BATCH; i++) {
        struct gr__task *more = gr__global_pop(w->rt);
        if (!more)
            break;
        if (gr__runq_push_back(&w->woken, more) < 0) {
            gr__global_push(w->rt, more, more, 1);
            break;
        }
    }
    return t;
}

static uint32_t next_random(struct gr__worker *w)
{
    /* xorshift32: victim order only needs to differ between workers. */
    uint32_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

/* Take half of one of the victim's queues, oldest first (for spawned work
 * the oldest is the biggest subtree, as in Cilk); run the first and queue
 * the rest here, where they can be stolen again. */
static struct gr__task *steal_half(struct gr__worker *w, struct gr__runq *from,
                                   void (*queue)(struct gr__worker *, struct gr__task *))
{
    uint32_t want = (gr__runq_len(from) + 1) / 2;
    struct gr__task *first = NULL, *t;
    for (uint32_t i = 0; i < want && (t = gr__runq_pop_front(from)); i++) {
        if (!first)
            first = t;
        else
            queue(w, t);
    }
    return first;
}

static struct gr__task *steal(struct gr__worker *w)
{
    struct gr__runtime *rt = w->rt;
    unsigned n = rt->nworkers;
    if (n < 2)
        return NULL;
    unsigned start = next_random(w) % n;
    for (unsigned i = 0; i < n; i++) {
        struct gr__worker *victim = &rt->workers[(start + i) % n];
        struct gr__task *t;
        if (victim != w && ((t = steal_half(w, &victim->spawned, queue_spawned)) ||
                            (t = steal_half(w, &victim->woken, queue_woken))))
            return t;
    }
    return NULL;
}

static struct gr__task *search(struct gr__worker *w)
{
    struct gr__runtime *rt = w->rt;
    /* relaxed: n_searching is a heuristic that throttles wake-ups. */
    atomic_fetch_add_explicit(&rt->n_searching, 1, memory_order_relaxed);
    struct gr__task *t = steal(w);
    uint32_t left = atomic_fetch_sub_explicit(&rt->n_searching, 1, memory_order_relaxed) - 1;
    /* The last searcher found work: others may be needed too (Go's
     * spinning-M hand-off). */
    if (t && left == 0 && queued(w) > 0 &&
        atomic_load_explicit(&rt->n_parked, memory_order_relaxed))
        gr__worker_wake_idle(rt, w);
    return t;
}

static int work_visible(struct gr__worker *w)
{
    struct gr__runtime *rt = w->rt;
    return atomic_load(&w->inbox) || atomic_load(&rt->global_len) || atomic_load(&rt->stopping);
}

static void block_in_ring(struct gr__worker *w)
{
    struct gr__runtime *rt = w->rt;
    /* seq_cst store then seq_cst loads in work_visible(): a poster pushes
     * (release) then fences (seq_cst) and reads `parked`; one of the two
     * sides sees the other, so a message is never left behind a sleeping
     * worker. */
    atomic_store(&w->parked, 1);
    atomic_fetch_add_explicit(&rt->n_parked, 1, memory_order_relaxed);
    if (!work_visible(w)) {
        struct __kernel_timespec ts, *tsp = NULL;
        struct gr__timer *first = gr__timer_first(&w->timers);
        if (first) {
            int64_t delta = first->deadline - gr_now();
            if (delta < 0)
                delta = 0;
            ts.tv_sec = delta / 1000000000;
            ts.tv_nsec = delta % 1000000000;
            tsp = &ts;
        }
        struct io_uring_cqe *cqe;
#ifdef GR_VALGRIND
        /* Valgrind (3.19) keeps its big lock across io_uring_enter, so a
         * worker waiting there stops every other thread: wait in ppoll on
         * the ring fd instead, which Valgrind knows may block. (Rings are
         * set up without DEFER_TASKRUN and woken by eventfd under Valgrind,
         * so the ring fd does become readable.) */
        (void)cqe;
        io_uring_submit(&w->ring);
        if (!io_uring_cq_ready(&w->ring)) {
            struct pollfd pfd = {.fd = w->ring.ring_fd, .events = POLLIN};
            struct timespec pts = {0, 0};
            if (tsp) {
                pts.tv_sec = tsp->tv_sec;
                pts.tv_nsec = tsp->tv_nsec;
            }
            ppoll(&pfd, 1, tsp ? &pts : NULL, NULL);
        }
        io_uring_get_events(&w->ring);
#else
        io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, tsp, NULL);
#endif
    }
    atomic_fetch_sub_explicit(&rt->n_parked, 1, memory_order_relaxed);
    atomic_store(&w->parked, 0);
}

static struct gr__task *find_runnable(struct gr__worker *w)
{
    for (;;) {
        struct gr__task *t;
        if ((t = pick_local(w)) || (t = take_global(w)))
            return t;
        if (atomic_load(&w->rt->stopping))
            return NULL;
        if ((t = search(w)))
            return t;
        block_in_ring(w);
    }
}

struct gr__worker *gr__worker_switch_out(struct gr__worker *w, enum gr__after after)
{
    struct gr__task *cur = w->current;
    if (GR_UNLIKELY(!gr__stack_canary_ok(&cur->stack)))
        gr__task_report_overflow(cur);
    struct gr__task *next = pick_local(w);
    if (after != GR_AFTER_EXIT) {
        int woken = after == GR_AFTER_PARK &&
                    atomic_load_explicit(&cur->state, memory_order_relaxed) == GR_TASK_RUNNING;
        if (woken || (after == GR_AFTER_YIELD && !next)) {
            /* Nothing to switch to, or our own wake-up came in while we
             * were looking: keep running. */
            if (next)
                gr__worker_make_runnable(w, next, 1);
            return w;
        }
    }
    w->after = after;
    w->after_task = cur;
    if (next)
        start_running(w, next);
    else
        worker_idle(w);
    struct gr__worker *resumed_by = switch_to(w, &cur->ctx, next, after == GR_AFTER_EXIT);
    gr__worker_finish_switch(resumed_by);
    return resumed_by;
}

/* ---------------------------------------------------------------------
 * Cross-thread hand-off
 * --------------------------------------------------------------------- */

void gr__worker_post(struct gr__worker *w, struct gr__msg *m)
{
    struct gr__worker *self = gr__worker_self();
    struct gr__runtime *rt = w->rt;
    /* A foreign thread may still be in here after the task it woke has run
     * and finished: workers wait for such posts before closing their
     * eventfds (gr__worker_destroy). relaxed increment is enough: the
     * release CAS below orders it before the message becomes visible. */
    if (!self)
        atomic_fetch_add_explicit(&rt->foreign_posts, 1, memory_order_relaxed);
    /* relaxed load: the CAS below validates it. */
    struct gr__msg *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do {
        m->next = head;
        /* release: publishes m and everything the poster wrote before
         * (the wake result) to the worker's acquire exchange. */
    } while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, m, memory_order_release,
                                                    memory_order_relaxed));
    /* seq_cst fence: orders the push before the read of `parked` (see
     * block_in_ring). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&w->parked, memory_order_relaxed) && atomic_exchange(&w->parked, 0))
        send_wake(self, w);
    /* release: our last touch of the worker happens before a stopping
     * worker sees the count drop. */
    if (!self)
        atomic_fetch_sub_explicit(&rt->foreign_posts, 1, memory_order_release);
}

void gr__worker_wake_idle(struct gr__runtime *rt, struct gr__worker *self)
{
    unsigned n = rt->nworkers;
    unsigned start = self ? self->index + 1 : 0;
    for (unsigned i = 0; i < n; i++) {
        struct gr__worker *v = &rt->workers[(start + i) % n];
        if (v == self)
            continue;
        /* relaxed pre-check, then the exchange decides who wakes it. */
        if (atomic_load_explicit(&v->parked, memory_order_relaxed) && atomic_exchange(&v->parked, 0)) {
            send_wake(self, v);
            return;
        }
    }
}

void gr__worker_wake_all(struct gr__runtime *rt)
{
    struct gr__worker *self = gr__worker_self();
    for (unsigned i = 0; i < rt->nworkers; i++) {
        struct gr__worker *v = &rt->workers[i];
        if (v != self && atomic_exchange(&v->parked, 0))
            send_wake(self, v);
    }
}

/* ---------------------------------------------------------------------
 * Worker thread
 * --------------------------------------------------------------------- */

static int setup_ring(struct gr__worker *w)
{
    static const unsigned flag_sets[] = {
#ifndef GR_VALGRIND /* DEFER_TASKRUN completions do not wake a ppoll on the ring fd */
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
#endif
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0,
    };
    unsigned entries = w->rt->cfg.ring_entries;
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
        struct io_uring_params p = {.flags = flag_sets[i] | IORING_SETUP_CQSIZE |
                                             IORING_SETUP_SUBMIT_ALL,
                                    .cq_entries = entries * 4};
        rc = io_uring_queue_init_params(entries, &w->ring, &p);
        if (rc == 0)
            break;
    }
    return rc;
}

static int setup_altstack(struct gr__worker *w)
{
    /* Stack overflows are reported from a SIGSEGV handler, which cannot
     * run on the overflowed stack. */
    w->altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (w->altstack == MAP_FAILED) {
        w->altstack = NULL;
        return -ENOMEM;
    }
    stack_t ss = {.ss_sp = w->altstack, .ss_size = ALTSTACK_SIZE};
    return sigaltstack(&ss, NULL) == 0 ? 0 : -ENOMEM;
}

static void teardown_altstack(struct gr__worker *w)
{
    if (!w->altstack)
        return;
    stack_t ss = {.ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    munmap(w->altstack, ALTSTACK_SIZE);
}

static void record_thread_stack(struct gr__worker *w)
{
#ifdef GR_FIBER_ASAN
    pthread_attr_t attr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &w->thread_stack_lo, &w->thread_stack_size);
    pthread_attr_destroy(&attr);
#endif
#ifdef GR_FIBER_TSAN
    w->tsan_sched_fiber = __tsan_get_current_fiber();
#endif
    (void)w;
}

int gr__worker_init(struct gr__worker *w)
{
    int rc = setup_ring(w);
    if (rc < 0)
        return rc;
    w->eventfd = eventfd(0, EFD_CLOEXEC);
    if (w->eventfd < 0) {
        io_uring_queue_exit(&w->ring);
        return -EMFILE;
    }
    w->eventfd_done.fn = eventfd_done;
    arm_eventfd(w);
    gr__timer_heap_init(&w->timers);
    rc = setup_altstack(w);
    tls_worker = w;
    record_thread_stack(w);
    return rc;
}

void gr__worker_run(struct gr__worker *w)
{
    struct gr__task *t;
    while ((t = find_runnable(w))) {
        start_running(w, t);
        switch_to(w, &w->sched_ctx, t, 0);
        gr__worker_finish_switch(w);
    }
}

static void worker_idle(struct gr__worker *w)
{
    w->current = NULL;
    /* relaxed: sampled by the debug watchdog only. */
    atomic_store_explicit(&w->running, NULL, memory_order_relaxed);
}

void gr__worker_destroy(struct gr__worker *w)
{
    /* acquire: pairs with the release decrement in gr__worker_post. */
    while (atomic_load_explicit(&w->rt->foreign_posts, memory_order_acquire))
        sched_yield();
    gr__stack_cache_flush(&w->stacks);
    io_uring_queue_exit(&w->ring);
    close(w->eventfd);
    gr__timer_heap_destroy(&w->timers);
    teardown_altstack(w);
    tls_worker = NULL;
}
