/* Task control block. One allocation per task: the control block sits at
 * the top of the task's own stack, right below the stack's top. */
#ifndef GR_CORE_TASK_H
#define GR_CORE_TASK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "arch/context.h"
#include "core/attrs.h"
#include "core/fiber_annotations.h"
#include "core/spinlock.h"
#include "core/stack.h"
#include "greenring.h"

struct gr__worker;
struct gr__runtime;
struct gr__wait;
struct gr__task_list;

enum gr__task_state {
    GR_TASK_RUNNABLE, /* in a run queue, the global queue or an inbox */
    GR_TASK_RUNNING,
    GR_TASK_PARKED,   /* in a blocking call; `wait` describes it */
    GR_TASK_DONE,
};

/* Inbox message: how other threads hand a task to the worker it is parked
 * on. Each task has one node per kind, so it is never queued twice. */
enum gr__msg_kind { GR_MSG_WAKE, GR_MSG_POKE };
struct gr__msg {
    struct gr__msg *next;
    struct gr__task *task;
    enum gr__msg_kind kind;
};

#define GR_TASK_DETACHED 1u
#define GR_TASK_CANCELLED 2u
#define GR_TASK_JOINED 4u /* a joiner holds the handle */

/* join word values besides a pointer to the joiner's wait record */
#define GR_JOIN_NONE ((uintptr_t)0)
#define GR_JOIN_DONE ((uintptr_t)1)

struct gr__task {
    gr__ctx ctx; /* saved stack pointer while not running */
    /* The worker running the task, or the one it is parked on. Written by
     * that worker; relaxed atomic because cancellers read it as a hint. */
    _Atomic(struct gr__worker *) worker;
    _Atomic int state;
    _Atomic uint32_t flags;
    _Atomic uint32_t refs; /* running + handle + queued pokes */
    _Atomic uintptr_t join;
    _Atomic uint32_t poke_queued;
    uint32_t magic;
    uint16_t gen; /* handle generation; bumped when the slot is freed */
    int result;
    gr_task_fn fn;
    void *arg;
    struct gr__runtime *rt;
    struct gr__stack stack;
    struct gr__wait *wait;    /* current park; owned by the task */
    gr_scope *scope;          /* innermost scope; owned by the task */
    struct gr__task *next;    /* global queue link */
    struct gr__msg wake_msg;
    struct gr__msg poke_msg;
    struct gr__task_list *list; /* registry list it is on */
    struct gr__task *list_prev, *list_next;
    uint64_t id;
    /* Shown by the task dump, read by other threads: relaxed atomics. */
    _Atomic int64_t parked_at;
    _Atomic(const char *) wait_reason;
    _Atomic int64_t cancelled_at; /* when the cancel flag was set (debug reports) */
    /* Done callbacks (task/callbacks.c); run under cb_lock by the exiting
     * task. cbs_closed: the task has finished, callbacks run at once. */
    gr__spinlock cb_lock;
    int cbs_closed;
    struct gr_done_cb *cbs;
    int no_block; /* running done callbacks: blocking calls are refused */
    /* Task group membership (task/group.c). */
    struct gr_group *group;
    struct gr__task *group_prev, *group_next;
    gr_task_fn group_fn;
    void *group_arg;
#ifdef GR_FIBER_TSAN
    void *tsan_fiber;
#endif
    char name[GR_TASK_NAME_MAX];
} GR_ALIGNED_CACHELINE;

#define GR_TASK_MAGIC 0x67725441u

/* Registry of live tasks (introspection, teardown). One per worker plus one
 * for foreign threads; a task stays on the list it was created on. */
struct gr__task_list {
    gr__spinlock lock;
    struct gr__task *head;
    uint64_t next_seq; /* ids handed out by this list's creator (under lock) */
};

/* Cheap pre-check for fast paths (an uncontended lock): 0 when neither a
 * cancellation nor any scope can interrupt the task, so the full
 * gr__blocking_check can be skipped. relaxed: a cancellation racing with the
 * call is seen by the next blocking call (cancellation is level-triggered);
 * a call that really waits goes through gr__park's ordering. */
static inline int gr__task_interrupt_possible(struct gr__task *t)
{
    return (atomic_load_explicit(&t->flags, memory_order_relaxed) & GR_TASK_CANCELLED) ||
           t->scope;
}

/* The handle of a task: its address with the generation in the top bits. */
gr_task *gr__task_handle(struct gr__task *t);
/* Validates a handle: 0, -EINVAL (NULL / not a task of this runtime) or
 * -ESRCH (stale). */
int gr__task_from_handle(gr_task *h, struct gr__task **out);

/* The control block's address for a stack top. */
char *gr__task_at(char *stack_top);
/* Allocate and initialise a task (not yet runnable). joinable: a handle
 * reference is held for the caller. */
int gr__task_create(struct gr__runtime *rt, gr_task_fn fn, void *arg,
                    const gr_spawn_opts *opts, int joinable, struct gr__task **out);
/* Queue a task made by gr__task_create: the run-next slot of the calling
 * worker, or the global queue from a foreign thread. */
void gr__task_schedule_new(struct gr__runtime *rt, struct gr__task *t);
/* Park `self` until `t` has finished: 0, or an interrupt (-ECANCELED,
 * -ETIMEDOUT), or -EINVAL when somebody else waits for t already. */
int gr__task_wait_done(struct gr__task *self, struct gr__task *t, const char *reason);
/* Runs and closes the done-callback list (task/callbacks.c). */
void gr__task_run_done_callbacks(struct gr__task *t);
/* The task's name ("task-<id>" when unnamed) into buf (size > 0); returns
 * its length. No handle check: for the runtime's own reports. */
int gr__task_copy_name(struct gr__task *t, char *buf, size_t size);
/* SIGSEGV handler that turns a guard-page hit into an overflow report. */
void gr__task_install_overflow_handler(void);
/* Entry of every task; `arg` is the worker that first switched to it. */
GR_NORETURN void gr__task_entry(void *arg);
void gr__task_unref(struct gr__worker *w, struct gr__task *t);
/* Request cancellation (any thread). Harmless on finished tasks. */
void gr__task_cancel(struct gr__task *t);
/* Print "greenring: task <name> overflowed its <N>-byte stack" and abort. */
GR_NORETURN void gr__task_report_overflow(struct gr__task *t);
/* The calling task, or NULL outside a task. Not inlined: a task may resume
 * on another thread, so thread-local reads must not be cached across a
 * switch. */
struct gr__task *gr__current_task(void);

#endif
