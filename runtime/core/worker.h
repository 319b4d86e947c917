/* Workers: one OS thread per core, each with its own io_uring, local run
 * queue plus run-next slot, inbox, timer heap and stack cache. */
#ifndef GR_CORE_WORKER_H
#define GR_CORE_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "arch/context.h"
#include "core/attrs.h"
#include "core/io_op.h"
#include "core/runq.h"
#include "core/stack.h"
#include "core/task.h"
#include "core/timer.h"

struct gr__runtime;

/* What the context that gives up the CPU leaves for the one that takes
 * over; done right after the switch, when the old stack is no longer in use
 * (a yielded task may only become stealable once it is switched out). */
enum gr__after { GR_AFTER_NONE, GR_AFTER_YIELD, GR_AFTER_PARK, GR_AFTER_EXIT };

struct gr__worker {
    /* Owner-only state first. */
    struct gr__runtime *rt;
    unsigned index;
    struct io_uring ring;
    int eventfd; /* wake-up from threads that have no ring */
    uint64_t eventfd_buf;
    struct gr__completion eventfd_done;
    struct gr__task *current;
    struct gr__task *runnext;
    int runnext_spawned; /* the run-next task was spawned (not woken) */
    /* Tasks that called gr_yield, FIFO, linked through task->next. Owner
     * only (no atomics on the yield path); moved to the stealable queue
     * every GLOBAL_CHECK_TICKS. */
    struct gr__task *yield_head, *yield_tail;
    gr__ctx sched_ctx; /* the worker thread's own stack */
    enum gr__after after;
    struct gr__task *after_task;
    uint32_t tick;
    int polling; /* inside poll_once: wake-ups are FIFO, not run-next */
    uint32_t rng;
    struct gr__timer_heap timers;
    struct gr__stack_cache stacks;
    struct gr__task_list tasks;
    pthread_t thread;
    void *altstack;
#ifdef GR_FIBER_ASAN
    void *thread_stack_lo;
    size_t thread_stack_size;
#endif
#ifdef GR_FIBER_TSAN
    void *tsan_sched_fiber;
#endif
    /* Shared with other threads (read by the debug watchdog). */
    _Atomic uint64_t switches;
    _Atomic(struct gr__task *) running;
    /* Two local queues (runq.h): spawned tasks run newest first (depth-first
     * fork-join), woken and yielded ones oldest first. */
    struct gr__runq spawned;
    struct gr__runq woken;
    _Atomic(struct gr__msg *) inbox GR_ALIGNED_CACHELINE;
    /* 1 while blocked (or about to block) in the ring wait; whoever
     * exchanges it to 0 sends the wake-up. */
    _Atomic int parked GR_ALIGNED_CACHELINE;
};

/* The worker of the calling thread, or NULL. Not inlined (see task.h). */
struct gr__worker *gr__worker_self(void);

/* Give up the CPU from a running task: pick the next task (or go back to
 * the scheduler loop) and switch. Returns the worker that resumed the task.
 * `after` says what happens to the calling task once it is switched out. */
struct gr__worker *gr__worker_switch_out(struct gr__worker *w, enum gr__after after);
/* Called by every context right after it was switched to. */
void gr__worker_finish_switch(struct gr__worker *w);

/* Make a task runnable on w (w's thread only). lifo: into the run-next slot. */
void gr__worker_make_runnable(struct gr__worker *w, struct gr__task *t, int lifo);
/* Queue a new task on w (w's thread only), next in line. */
void gr__worker_push_spawned(struct gr__worker *w, struct gr__task *t);
/* Hand a message to w from any thread and wake w if it sleeps. */
void gr__worker_post(struct gr__worker *w, struct gr__msg *m);
/* Wake one parked worker if nobody is looking for work (a task became
 * stealable). `self` may be NULL. */
void gr__worker_wake_idle(struct gr__runtime *rt, struct gr__worker *self);
void gr__worker_wake_all(struct gr__runtime *rt);
/* Interrupt hook dispatch for a task parked on w (w's thread). */
void gr__worker_check_interrupts(struct gr__worker *w, struct gr__task *t);

/* An io_uring SQE on w's ring (submitting the queue first when it is full). */
struct io_uring_sqe *gr__worker_sqe(struct gr__worker *w);

/* Thread life cycle: init (ring, eventfd, alternate signal stack) on the
 * worker's own thread, run the scheduler loop until the runtime stops,
 * destroy. */
int gr__worker_init(struct gr__worker *w);
void gr__worker_run(struct gr__worker *w);
void gr__worker_destroy(struct gr__worker *w);

#endif
