/* greenring: an io_uring-native green-thread runtime for Linux.
 *
 * Tasks are stackful green threads. A task calls a blocking function such as
 * gr_read() or gr_sleep() and simply blocks: the runtime parks it and runs
 * another task on the same worker. There is one worker (OS thread, io_uring,
 * run queue) per core, and idle workers steal work from busy ones.
 *
 * Conventions (they hold for every function in this header):
 *  - Functions return >= 0 on success and a negative errno on failure, as
 *    liburing and the kernel do. The library never reads or sets errno.
 *  - Time is int64_t nanoseconds on CLOCK_MONOTONIC (see gr_now()).
 *  - Every blocking function is a cancellation point: once the calling task
 *    is cancelled it returns -ECANCELED (level-triggered: every later
 *    blocking call too), and inside an expired timeout scope it returns
 *    -ETIMEDOUT. Blocking functions called from outside a task return -EPERM.
 *  - Task entry points are `int fn(void *arg)` returning 0 or a negative errno.
 */
#ifndef GREENRING_H
#define GREENRING_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Runtime
 * ====================================================================== */

typedef struct gr_config {
    /* Number of workers (OS threads, one io_uring each). 0: online CPUs. */
    unsigned workers;
    /* Default task stack size in bytes (rounded up to the page size).
     * 0: GR_DEFAULT_STACK_SIZE. */
    size_t stack_size;
    /* Submission queue entries per worker ring. 0: 256. */
    unsigned ring_entries;
    /* Debug mode (also GREENRING_DEBUG=1): a watchdog reports tasks that
     * hold a worker for over 100 ms without blocking and tasks still
     * running long after being cancelled; gr_run reports tasks that were
     * never joined or detached. */
    int debug;
    /* Debug mode: report a cancelled task still running after this long.
     * 0: 1 s. */
    int64_t cancel_grace_ns;
    /* Print gr_dump_tasks(stderr) when the process receives SIGQUIT. */
    int dump_on_sigquit;
} gr_config;

#define GR_DEFAULT_STACK_SIZE ((size_t)64 * 1024)
/* Smallest accepted stack size: the task control block, the entry frames and
 * the sanitizer runtimes need this much. */
#define GR_MIN_STACK_SIZE ((size_t)16 * 1024)

typedef int (*gr_task_fn)(void *arg);

/* Start the workers, run main_fn(arg) as the first task, and return its
 * result once it has returned and every other task has finished (tasks still
 * alive when main returns are cancelled and joined first). cfg may be NULL.
 * Returns a negative errno if the runtime cannot start: -ENOSYS or -EPERM
 * when io_uring is unavailable (a message on stderr says why and what to
 * do), -EBUSY when another gr_run is active in this process, -EINVAL for a
 * NULL main_fn or a bad config. gr_run may be called again after it returns. */
int gr_run(gr_task_fn main_fn, void *arg, const gr_config *cfg);

/* Monotonic clock in nanoseconds. Callable from anywhere. */
int64_t gr_now(void);

/* Index of the worker running the calling task (0..workers-1), or -EPERM
 * outside a task. Tasks may move between workers at any blocking call. */
int gr_worker_index(void);

/* Number of workers of the running runtime, or -EPERM if none runs. */
int gr_worker_count(void);

/* ======================================================================
 * Tasks
 * ====================================================================== */

/* A task handle. Handles are checked: using a handle after the task was
 * joined or detached returns -ESRCH instead of touching another task. */
typedef struct gr_task gr_task;

typedef struct gr_spawn_opts {
    const char *name;  /* copied; NULL for none; longer names are cut */
    size_t stack_size; /* 0: the runtime's default; < GR_MIN_STACK_SIZE: -EINVAL */
} gr_spawn_opts;

#define GR_TASK_NAME_MAX 32 /* including the terminating NUL */

/* Create a task running fn(arg). If `task` is non-NULL the task is joinable
 * and *task receives its handle, which must be joined or detached; with a
 * NULL `task` it is detached from the start. opts may be NULL.
 * May be called from a task or from any other thread while gr_run is active
 * (from a foreign thread the task goes to the global queue).
 * Errors: -EINVAL (NULL fn, stack size too small), -EPERM (no runtime
 * running), -ENOMEM. */
int gr_spawn(gr_task **task, gr_task_fn fn, void *arg, const gr_spawn_opts *opts);

/* Wait for the task to finish and return its result (what fn returned).
 * Releases the handle. A cancellation point: a join interrupted by
 * cancellation or a timeout returns -ECANCELED / -ETIMEDOUT and leaves the
 * handle valid. Errors: -EINVAL (NULL, detached, or already being joined),
 * -ESRCH (stale handle: joined before), -EDEADLK (joining itself), -EPERM
 * (outside a task). */
int gr_join(gr_task *task);

/* Release the handle without waiting; the task runs on. -EINVAL (NULL or
 * already detached), -ESRCH (stale handle). */
int gr_detach(gr_task *task);

/* Let other runnable tasks on this worker run, then continue. A task that
 * keeps yielding cannot starve others. -EPERM outside a task. */
int gr_yield(void);

/* Block for ns nanoseconds / until the deadline (gr_now() time base).
 * 0 on success, -ECANCELED, -ETIMEDOUT (an enclosing timeout scope expired
 * first), -EPERM. */
int gr_sleep(int64_t ns);
int gr_sleep_until(int64_t deadline);

/* The calling task, or NULL outside a task. */
gr_task *gr_self(void);

/* Copy the task's name into buf (always NUL-terminated). The name of an
 * unnamed task is "task-<id>". Returns the name's length or -EINVAL/-ESRCH. */
int gr_task_name(gr_task *task, char *buf, size_t size);
/* Rename the task (NULL task: the calling one). */
int gr_task_set_name(gr_task *task, const char *name);

/* ======================================================================
 * Cancellation and scopes
 * ====================================================================== */

/* Request cancellation of a task (level-triggered): its current blocking
 * call and every later one return -ECANCELED, except inside a shield scope.
 * A task parked on an io_uring operation is cancelled with
 * IORING_OP_ASYNC_CANCEL and resumes only after that operation's own
 * completion. Cancelling a finished task or cancelling twice is harmless.
 * Callable from any thread. -EINVAL (NULL, not a task of this runtime),
 * -ESRCH (stale handle), -EPERM (no runtime). */
int gr_cancel(gr_task *task);

/* A scope lives on the caller's stack between gr_scope_enter_* and
 * gr_scope_leave, which must be properly nested. Fields are private. */
typedef struct gr_scope {
    struct gr_scope *parent_;
    void *task_;
    int64_t deadline_;
    unsigned char shield_;
    unsigned char fired_;
} gr_scope;

/* Timeout scope (asyncio.timeout / Trio move_on_after): once the deadline
 * has passed every blocking call inside returns -ETIMEDOUT. Nested scopes:
 * the earliest deadline wins. GR_NO_DEADLINE for none (reschedule later). */
#define GR_NO_DEADLINE INT64_MAX
int gr_scope_enter_deadline(gr_scope *scope, int64_t deadline);
int gr_scope_enter_timeout(gr_scope *scope, int64_t ns);
/* Shield scope (asyncio.shield, Trio shield): cancellation of the task and
 * deadlines of enclosing scopes are held off until the scope is left, so
 * cleanup can still block. Scopes entered inside it still apply. */
int gr_scope_enter_shield(gr_scope *scope);
/* Move the deadline of a scope the caller is inside (asyncio reschedule). */
int gr_scope_reschedule(gr_scope *scope, int64_t deadline);
/* Leave the innermost scope. Returns 1 if its deadline interrupted a
 * blocking call inside it (the scope expired), 0 if not; -EINVAL if scope is
 * not the calling task's innermost scope (left out of order). */
int gr_scope_leave(gr_scope *scope);

/* Join with a timeout (asyncio.wait_for): wait up to `ns` for the task;
 * if it has not finished by then, cancel it, wait for it to finish, and
 * return -ETIMEDOUT. Otherwise like gr_join. The handle is released in
 * both cases (not when the caller itself is cancelled: -ECANCELED, and the
 * task was cancelled and joined too, so the handle is gone as well). */
int gr_wait_for(gr_task *task, int64_t ns);

/* ======================================================================
 * Task state without blocking, done callbacks
 * ====================================================================== */

/* 1 if finished, 0 if not, or a negative errno for a bad handle. */
int gr_task_done(gr_task *task);
/* 1 if cancellation was requested, 0 if not, or a negative errno. */
int gr_task_cancelled(gr_task *task);
/* The result once finished: 0 and *result set, or -EAGAIN if not done. */
int gr_task_result(gr_task *task, int *result);

/* A done callback: runs once when the task finishes, on the thread that
 * runs the finishing task, before joiners resume. It must not block (any
 * blocking call in it returns -EPERM) and must not add or remove callbacks
 * of the same task. The record belongs to the caller and must stay valid
 * until the callback has run or gr_task_remove_done_callback returned 0.
 * Fields are private. */
typedef struct gr_done_cb gr_done_cb;
typedef void (*gr_done_fn)(gr_task *task, void *arg);
struct gr_done_cb {
    gr_done_cb *next_;
    gr_done_fn fn_;
    void *arg_;
};
/* Returns 0 when registered, 1 when the task had already finished (fn ran
 * before this returned), or a negative errno. */
int gr_task_add_done_callback(gr_task *task, gr_done_cb *cb, gr_done_fn fn, void *arg);
/* 0 when removed before it ran, -ENOENT if it ran (or is not registered). */
int gr_task_remove_done_callback(gr_task *task, gr_done_cb *cb);

/* ======================================================================
 * Task groups (asyncio.TaskGroup, Trio nurseries)
 * A group cannot end before its children. The first child that returns an
 * error (a negative value other than -ECANCELED) cancels all its siblings
 * and gr_group_wait returns that first error. A handle to a group may be
 * passed to other tasks, which can spawn into it until it has been waited.
 * ====================================================================== */

typedef struct gr_group gr_group;

int gr_group_create(gr_group **group);
/* Spawn a child (detached: its result is collected by the group).
 * -EPIPE once the group has been waited, -EINVAL, -ENOMEM, -EPERM. A child
 * spawned into a group that is cancelling starts cancelled. */
int gr_group_spawn(gr_group *group, gr_task_fn fn, void *arg, const gr_spawn_opts *opts);
/* Children run inside a timeout scope with this deadline, and a wait that
 * reaches it cancels the children and returns -ETIMEDOUT. Set it before
 * spawning. */
int gr_group_set_deadline(gr_group *group, int64_t deadline);
/* Cancel every child (from any task). */
int gr_group_cancel(gr_group *group);
/* Wait until every child has finished. Returns 0, the first child error,
 * -ETIMEDOUT (group deadline), or -ECANCELED (the waiter was cancelled: the
 * children are cancelled and waited for first). -EDEADLK when called by one
 * of the group's own children; -EINVAL when another task waits already. */
int gr_group_wait(gr_group *group);
/* Copy up to n child errors (in the order they happened) into errors;
 * returns how many there were. */
int gr_group_errors(gr_group *group, int *errors, size_t n);
/* Free a group that has no running children (-EBUSY otherwise). */
int gr_group_destroy(gr_group *group);

/* ======================================================================
 * gather / wait / as_completed
 * ====================================================================== */

enum gr_gather_policy {
    GR_GATHER_FAIL_FAST,  /* first error: cancel the others, return it */
    GR_GATHER_COLLECT_ALL /* return_exceptions=True: every result in results[] */
};
/* Join n tasks; results[i] receives task i's result (input order). Every
 * handle is released. FAIL_FAST returns the first error in completion
 * order (the rest are cancelled and joined, their results filled in);
 * COLLECT_ALL returns 0. A cancelled gatherer cancels and joins all and
 * returns -ECANCELED. */
int gr_gather(gr_task **tasks, size_t n, int *results, enum gr_gather_policy policy);

enum gr_wait_mode { GR_WAIT_ANY, GR_WAIT_FIRST_ERROR, GR_WAIT_ALL };
/* asyncio.wait: block until the mode is satisfied or the deadline passes
 * (GR_NO_DEADLINE: none), then set done[i] (if done is non-NULL) and return
 * how many tasks are done. Nothing is cancelled or joined. FIRST_ERROR
 * returns when a task finishes with a negative result, or all are done. */
int gr_wait(gr_task **tasks, size_t n, enum gr_wait_mode mode, int64_t deadline,
            unsigned char *done);

/* Iterate tasks in completion order (asyncio.as_completed). Fields are
 * private. */
typedef struct gr_as_completed {
    gr_task **tasks_;
    size_t n_, taken_, ready_len_;
    size_t *ready_;
    void *cbs_;
    void *waiter_;
    int lock_; /* a spinlock word */
} gr_as_completed;
int gr_as_completed_init(gr_as_completed *it, gr_task **tasks, size_t n);
/* Index (into tasks) of the next finished task; -ENOENT when all have been
 * returned; -ETIMEDOUT at the deadline; -ECANCELED. */
int gr_as_completed_next(gr_as_completed *it, int64_t deadline);
void gr_as_completed_destroy(gr_as_completed *it);

/* ======================================================================
 * Introspection and debugging
 * ====================================================================== */

typedef struct gr_task_info {
    uint64_t id;
    char name[GR_TASK_NAME_MAX];
    const char *state;       /* "runnable", "running", "parked", "done" */
    int worker;              /* last worker, -1 if never ran */
    const char *wait_reason; /* what a parked task waits on, or NULL */
    int64_t parked_ns;       /* how long it has been parked (coarse) */
    int cancelled;
} gr_task_info;
/* Call fn for every live task (a snapshot taken under the registry locks:
 * fn must not block or spawn). Returns the number of tasks visited. */
int gr_tasks_foreach(void (*fn)(const gr_task_info *info, void *arg), void *arg);
/* Print every live task: id, name, state, worker, wait reason and for how
 * long (like Go's goroutine dump). Returns the count or -EPERM. */
int gr_dump_tasks(FILE *out);

typedef struct gr_runtime_stats {
    uint64_t live_tasks;
    uint64_t stacks_in_use;
    uint64_t stacks_pooled;
    uint64_t stack_bytes_mapped;
} gr_runtime_stats;
int gr_stats(gr_runtime_stats *out);

/* ======================================================================
 * Raw fd I/O through io_uring
 * Any fd: pipes, files, sockets. Each call submits one io_uring operation
 * on the calling worker's ring and parks the task until it completes.
 * A cancelled call did not happen unless its result says otherwise: if the
 * operation completed before the cancellation took effect, its result is
 * returned (bytes are never lost) and the next call returns -ECANCELED.
 * ====================================================================== */

ssize_t gr_read(int fd, void *buf, size_t len);   /* at the file position */
ssize_t gr_write(int fd, const void *buf, size_t len);
ssize_t gr_pread(int fd, void *buf, size_t len, off_t offset);
ssize_t gr_pwrite(int fd, const void *buf, size_t len, off_t offset);
/* Close through io_uring. The fd is released even if the call is cancelled. */
int gr_close(int fd);
/* Submit a no-op through the ring and wait for its completion (measures the
 * runtime's own overhead). */
int gr_nop(void);

#ifdef __cplusplus
}
#endif
#endif /* GREENRING_H */
