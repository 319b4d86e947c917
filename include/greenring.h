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
    /* Signals tasks can wait for with gr_signal_wait (GR_SIGNAL(SIGUSR1) |
     * ...). They are blocked in every runtime thread for the whole run and
     * arrive only through a signalfd read by the runtime. */
    uint64_t signals;
    /* Graceful shutdown: the first SIGINT or SIGTERM that no task waits for
     * cancels the main task (a server stops accepting, drains its handlers
     * inside shield scopes with deadlines, flushes, and returns 0); a second
     * one exits the process at once with status 128 + signal number. */
    int graceful_shutdown;
    /* With graceful_shutdown: exit with status 1 if the program has not
     * finished this long after the first signal. 0: no limit. */
    int64_t shutdown_grace_ns;
    /* Maximum number of offload pool threads (gr_offload, and the runtime's
     * own blocking work: directory listing, readlink, copy_file_range...).
     * 0: GREENRING_OFFLOAD_THREADS if set, else min(32, online CPUs + 4).
     * At most 1024. */
    unsigned offload_threads;
} gr_config;

#define GR_SIGNAL(signo) (UINT64_C(1) << (signo))

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
 * Releases the handle. Waiting is a cancellation point: a join interrupted
 * by cancellation or a timeout returns -ECANCELED / -ETIMEDOUT and leaves
 * the handle valid; a task that has finished is joined without waiting,
 * also by a cancelled caller. Errors: -EINVAL (NULL, not a task, or already being joined
 * by another task), -ESRCH (stale handle: joined or detached before),
 * -EDEADLK (joining itself), -EPERM (outside a task). */
int gr_join(gr_task *task);

/* Release the handle without waiting; the task runs on. -EINVAL (NULL, or
 * a join is in progress), -ESRCH (stale handle: joined or detached). */
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
 * return -ETIMEDOUT. Otherwise like gr_join. The handle is always released:
 * when the caller is cancelled while waiting, the task is cancelled and
 * joined too, and -ECANCELED is returned. A task that has already finished
 * returns its result whatever the timeout. */
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
 * returns when a task finishes with a negative result, or all are done.
 * -EINVAL for ANY over an empty set (it could never return), NULL tasks
 * or an unknown mode; ALL and FIRST_ERROR over no tasks return 0 at once. */
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
 * Signals (loop.add_signal_handler)
 * ====================================================================== */

/* Block until one of the signals in `mask` (GR_SIGNAL bits, all of them in
 * gr_config.signals) arrives and return its number. Several tasks may wait
 * for different signals; a signal nobody waits for is kept (one per signal
 * number) for the next waiter. -EINVAL for an empty mask or a signal that is
 * not configured; -ECANCELED, -ETIMEDOUT, -EPERM. */
int gr_signal_wait(uint64_t mask);

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

/* ======================================================================
 * Synchronisation: mutex, rwlock, semaphore, event, condition, barrier
 *
 * asyncio's primitives, made safe between tasks on different workers.
 * Common rules (they hold for every object of this section and the next):
 *  - Objects are caller-allocated (mutex, rwlock, semaphore, event,
 *    condition, barrier: init/destroy; fields are private) or created by the
 *    library (channel, queue, generator: create/destroy). The uncontended
 *    paths never allocate; a waiter's record lives on its own stack.
 *  - Waiting is FIFO and by hand-off: whoever releases a lock, a permit, a
 *    slot or an item gives it to the first waiter directly, so a waiter
 *    cannot be overtaken by a late arrival (no starvation).
 *  - Every call that can wait is a cancellation point (see the top of this
 *    file): it returns -ECANCELED / -ETIMEDOUT when the calling task is
 *    cancelled / inside an expired timeout scope, also when it would not
 *    have to wait (level-triggered). A waiter that is interrupted did not
 *    get what it waited for (no lock held, no item taken, no permit used),
 *    and the next waiter is still served. Releasing calls (unlock, release,
 *    set, signal, close...) never wait and are never interrupted.
 *  - Errors are negative errno: -EINVAL for NULL or bad arguments, -EAGAIN
 *    from try-calls that would have to wait, -EBUSY from destroy while the
 *    object is held or waited on.
 *  - Lifetime: an object may be destroyed (and its memory reused) once no
 *    call on it is in progress. A woken waiter does not touch the object
 *    again, so e.g. a task may free an event right after setting it.
 *  - Threads that are not runtime workers ("foreign" threads) may call the
 *    waiting functions of semaphores, events, channels (including select)
 *    and queues while gr_run is active: they block the OS thread (futex) and
 *    cannot be cancelled. Mutex, rwlock, condition, barrier and generator
 *    waits return -EPERM outside a task. Non-waiting calls (try-calls,
 *    release, set, clear, signal, close, shutdown...) work from any thread.
 * ====================================================================== */

/* Private building blocks of the objects below (not API). */
#ifdef __cplusplus
#define GR_ATOMIC_(T) T /* same size and alignment; C++ never touches them */
#define GR_ZERO_INIT_ {}
#else
#define GR_ATOMIC_(T) _Atomic(T)
#define GR_ZERO_INIT_ {0}
#endif
struct gr_wnode_;
typedef struct gr_wlist_ {
    struct gr_wnode_ *head_, *tail_;
} gr_wlist_;
typedef struct gr_spin_ {
    GR_ATOMIC_(uint32_t) v_;
} gr_spin_;

/* ---- Mutex (asyncio.Lock) -------------------------------------------
 * Not recursive. Lock and unlock must happen in the same task (the owner is
 * recorded and checked). Unlock hands the mutex to the first waiter. */
typedef struct gr_mutex {
    GR_ATOMIC_(uintptr_t) state_; /* 0 free, else the owner | 1 if waiters */
    gr_spin_ lock_;
    gr_wlist_ waiters_;
} gr_mutex;

#define GR_MUTEX_INIT GR_ZERO_INIT_  /* static initialiser, same as gr_mutex_init */

int gr_mutex_init(gr_mutex *m);
/* -EBUSY if locked. */
int gr_mutex_destroy(gr_mutex *m);
/* 0 when the calling task holds the mutex. -EDEADLK if it holds it
 * already, -EPERM outside a task, -ECANCELED, -ETIMEDOUT. */
int gr_mutex_lock(gr_mutex *m);
/* 0, or -EAGAIN when the mutex is held (by anyone, the caller included). */
int gr_mutex_trylock(gr_mutex *m);
/* -EPERM if the mutex is not locked or the caller is not its owner. */
int gr_mutex_unlock(gr_mutex *m);
/* 1 if held, 0 if free (a snapshot). */
int gr_mutex_is_locked(gr_mutex *m);

/* ---- Reader/writer lock ---------------------------------------------
 * Many readers or one writer. Writer preference: once a writer waits, new
 * readers wait behind it, so writers cannot starve; when a writer unlocks,
 * the readers that queued up meanwhile are all admitted before the next
 * writer, so readers cannot starve either (Go's sync.RWMutex). Read locks
 * are counted, not owned; write locks are owned (checked on unlock). */
typedef struct gr_rwlock {
    gr_spin_ lock_;
    uint32_t readers_;        /* read locks held */
    void *writer_;            /* owning task of the write lock */
    gr_wlist_ rq_, wq_;       /* waiting readers, writers */
} gr_rwlock;

#define GR_RWLOCK_INIT GR_ZERO_INIT_

int gr_rwlock_init(gr_rwlock *rw);
int gr_rwlock_destroy(gr_rwlock *rw); /* -EBUSY if held */
/* -EDEADLK if the caller holds the write lock; -EPERM, -ECANCELED,
 * -ETIMEDOUT. */
int gr_rwlock_rdlock(gr_rwlock *rw);
int gr_rwlock_tryrdlock(gr_rwlock *rw); /* -EAGAIN */
/* -EPERM if no read lock is held. */
int gr_rwlock_rdunlock(gr_rwlock *rw);
int gr_rwlock_wrlock(gr_rwlock *rw); /* like rdlock */
int gr_rwlock_trywrlock(gr_rwlock *rw);
/* -EPERM if the caller does not hold the write lock. */
int gr_rwlock_wrunlock(gr_rwlock *rw);

/* ---- Semaphore (asyncio.Semaphore, BoundedSemaphore) ----------------- */
typedef struct gr_sem {
    gr_spin_ lock_;
    uint32_t value_;
    uint32_t bound_; /* 0: unbounded; else the initial value */
    gr_wlist_ waiters_;
} gr_sem;

#define GR_SEM_MAX 0x7fffffffu

/* value <= GR_SEM_MAX, else -EINVAL. */
int gr_sem_init(gr_sem *s, unsigned value);
/* Bounded: a release that would raise the value above `value` fails with
 * -EOVERFLOW (asyncio raises ValueError). value >= 1. */
int gr_sem_init_bounded(gr_sem *s, unsigned value);
int gr_sem_destroy(gr_sem *s); /* -EBUSY if tasks wait */
/* Take a permit, waiting for one (FIFO). -ECANCELED, -ETIMEDOUT, -EPERM. */
int gr_sem_acquire(gr_sem *s);
int gr_sem_tryacquire(gr_sem *s); /* -EAGAIN when no permit is free */
/* Give a permit back (to the first waiter if any). -EOVERFLOW (bounded,
 * or the value would pass GR_SEM_MAX). Any thread. */
int gr_sem_release(gr_sem *s);
/* Free permits now (a snapshot), or -EINVAL. */
int gr_sem_value(gr_sem *s);

/* ---- Event (asyncio.Event) -------------------------------------------- */
typedef struct gr_event {
    gr_spin_ lock_;
    GR_ATOMIC_(uint32_t) set_;
    gr_wlist_ waiters_;
} gr_event;

#define GR_EVENT_INIT GR_ZERO_INIT_

int gr_event_init(gr_event *e);      /* starts clear */
int gr_event_destroy(gr_event *e);   /* -EBUSY if tasks wait */
/* Set the flag and wake every waiter at once (they all return 0, even if
 * the event is cleared again before they run). Any thread. */
int gr_event_set(gr_event *e);
int gr_event_clear(gr_event *e);
/* 0 once the flag is set (at once if it is). -ECANCELED, -ETIMEDOUT. */
int gr_event_wait(gr_event *e);
int gr_event_is_set(gr_event *e); /* 1 or 0 */

/* ---- Condition (asyncio.Condition) ------------------------------------
 * Used with a gr_mutex the caller holds. Signals are not remembered: a
 * signal with nobody waiting does nothing. */
typedef struct gr_cond {
    gr_spin_ lock_;
    gr_wlist_ waiters_;
} gr_cond;

#define GR_COND_INIT GR_ZERO_INIT_

int gr_cond_init(gr_cond *c);
int gr_cond_destroy(gr_cond *c); /* -EBUSY if tasks wait */
/* Unlock m, wait for a signal, lock m again. m is held again on every
 * return, including -ECANCELED / -ETIMEDOUT (the relock itself is shielded
 * from cancellation, as asyncio does). A signal that arrives together with
 * a cancellation is not lost: either the waiter returns 0, or the signal
 * goes to the next waiter. -EPERM if the caller does not hold m. */
int gr_cond_wait(gr_cond *c, gr_mutex *m);
/* Wait until pred(arg) returns non-zero (checked under m, before the first
 * wait and after every wake-up). 0, or the error of gr_cond_wait. */
int gr_cond_wait_for(gr_cond *c, gr_mutex *m, int (*pred)(void *arg), void *arg);
/* Wake the first waiter / every waiter. Holding m is not required. */
int gr_cond_signal(gr_cond *c);
int gr_cond_broadcast(gr_cond *c);

/* ---- Barrier (asyncio.Barrier) ----------------------------------------
 * `parties` tasks meet; the last one to arrive releases the others. The
 * barrier is reusable: the next round starts at once. If a waiting party is
 * cancelled or times out, or gr_barrier_abort is called, the barrier breaks:
 * every waiter and every later gr_barrier_wait returns -EPIPE until
 * gr_barrier_reset. */
typedef struct gr_barrier {
    gr_spin_ lock_;
    uint32_t parties_;
    uint32_t arrived_;
    uint32_t broken_;
    uint32_t round_;
    gr_wlist_ waiters_;
} gr_barrier;

int gr_barrier_init(gr_barrier *b, unsigned parties); /* parties >= 1 */
int gr_barrier_destroy(gr_barrier *b); /* -EBUSY if tasks wait */
/* Arrival index 0..parties-1 (the last to arrive gets parties-1), or
 * -EPIPE (broken), -ECANCELED / -ETIMEDOUT (this party was interrupted: the
 * barrier is now broken), -EPERM. */
int gr_barrier_wait(gr_barrier *b);
/* Break the barrier: waiters return -EPIPE. */
int gr_barrier_abort(gr_barrier *b);
/* Back to an empty, unbroken barrier; current waiters return -EPIPE. */
int gr_barrier_reset(gr_barrier *b);
int gr_barrier_n_waiting(gr_barrier *b);
int gr_barrier_broken(gr_barrier *b); /* 1 or 0 */

/* ======================================================================
 * Channels (Go channels) and select
 *
 * A channel carries elements of a fixed size, copied in and out by pointer.
 * capacity 0: rendezvous (a send waits for a receiver), N: buffered,
 * GR_CHAN_UNBOUNDED: sends never wait (the buffer grows). Elements are
 * delivered in send order; waiting senders and receivers are served FIFO.
 *
 * Close: buffered elements can still be received; after that, receives
 * return -EPIPE. Sends after close, and sends waiting at the time of the
 * close, return -EPIPE (their element was not sent). Waiting receivers are
 * woken with -EPIPE.
 *
 * Send and receive (and gr_select) also work from foreign threads, which
 * block; that is how a plain thread feeds work into the runtime.
 * ====================================================================== */

typedef struct gr_chan gr_chan;

#define GR_CHAN_UNBOUNDED ((size_t)-1)

/* elem_size >= 1. Bounded channels allocate their buffer here. -EINVAL,
 * -ENOMEM. */
int gr_chan_create(gr_chan **out, size_t elem_size, size_t capacity);
/* Free the channel (buffered elements are dropped). -EBUSY while a task or
 * thread waits on it. */
int gr_chan_destroy(gr_chan *ch);
/* Copy *elem into the channel, waiting for room or a receiver. 0, -EPIPE
 * (closed), -ECANCELED / -ETIMEDOUT (not sent), -ENOMEM (unbounded growth),
 * -EPERM (no runtime). */
int gr_chan_send(gr_chan *ch, const void *elem);
/* Receive into *elem (NULL: discard), waiting for an element. 0, -EPIPE
 * (closed and drained), -ECANCELED / -ETIMEDOUT (nothing taken), -EPERM. */
int gr_chan_recv(gr_chan *ch, void *elem);
/* Never wait: -EAGAIN instead. Any thread, also without a runtime. */
int gr_chan_try_send(gr_chan *ch, const void *elem);
int gr_chan_try_recv(gr_chan *ch, void *elem);
/* 0, or -EPIPE if already closed. Any thread. */
int gr_chan_close(gr_chan *ch);
/* Buffered elements now, and the capacity (a snapshot). */
size_t gr_chan_len(gr_chan *ch);
size_t gr_chan_cap(gr_chan *ch);

enum { GR_SELECT_SEND = 1, GR_SELECT_RECV = 2 };

typedef struct gr_select_case {
    gr_chan *chan; /* NULL: the case is disabled (never fires) */
    int op;        /* GR_SELECT_SEND or GR_SELECT_RECV */
    void *elem;    /* SEND: element to send; RECV: destination (NULL: discard) */
    int result;    /* out, for the case that fired: 0, or -EPIPE (closed) */
} gr_select_case;

/* Wait until one of the cases can proceed, perform exactly that one and
 * return its index. When several are ready, one is chosen uniformly at
 * random (fairness). A case on a closed channel is ready: a receive once
 * the buffer is drained, a send always; it fires with result -EPIPE.
 * deadline (gr_now() time base): GR_NO_DEADLINE waits forever; once it has
 * passed, -ETIMEDOUT (a deadline in the past, e.g. 0, polls: -ETIMEDOUT at
 * once when nothing is ready). -EINVAL (bad case, n == 0), -ECANCELED,
 * -ETIMEDOUT (scope), -EPERM, -ENOMEM (more than 8 cases are bookkept in an
 * allocation). */
int gr_select(gr_select_case *cases, size_t n, int64_t deadline);

/* ======================================================================
 * Queues (asyncio.Queue, LifoQueue, PriorityQueue)
 *
 * maxsize 0 (GR_QUEUE_UNBOUNDED) means unbounded. put waits while the queue
 * is full, get while it is empty; waiting putters and getters are served
 * FIFO by hand-off. Every successful put counts one unfinished item;
 * gr_queue_task_done marks one done and gr_queue_join waits until none is
 * left.
 *
 * Shutdown (Python 3.13 semantics; Python raises QueueShutDown where these
 * return -ESHUTDOWN): afterwards put and put_nowait return -ESHUTDOWN, and
 * waiting putters are woken with -ESHUTDOWN (their item was not put). get
 * still returns the items left and then -ESHUTDOWN; waiting getters are
 * woken with -ESHUTDOWN. With `immediate` the items left are removed first
 * and counted as done (join returns once the items already taken are done).
 * ====================================================================== */

typedef struct gr_queue gr_queue;

#define GR_QUEUE_UNBOUNDED ((size_t)0)

/* Order of a priority queue: negative if a comes out before b (a
 * min-queue, like heapq). Ties come out in no particular order. */
typedef int (*gr_queue_cmp)(const void *a, const void *b);

int gr_queue_create(gr_queue **out, size_t elem_size, size_t maxsize); /* FIFO */
int gr_lifo_queue_create(gr_queue **out, size_t elem_size, size_t maxsize);
int gr_priority_queue_create(gr_queue **out, size_t elem_size, size_t maxsize,
                             gr_queue_cmp cmp);
int gr_queue_destroy(gr_queue *q); /* -EBUSY while a task or thread waits */
/* 0, -ESHUTDOWN, -ECANCELED / -ETIMEDOUT (not put), -ENOMEM, -EPERM. */
int gr_queue_put(gr_queue *q, const void *elem);
/* 0, -ESHUTDOWN (shut down and empty), -ECANCELED / -ETIMEDOUT (nothing
 * taken), -EPERM. elem NULL: discard. */
int gr_queue_get(gr_queue *q, void *elem);
int gr_queue_put_nowait(gr_queue *q, const void *elem); /* -EAGAIN when full */
int gr_queue_get_nowait(gr_queue *q, void *elem);       /* -EAGAIN when empty */
/* -EINVAL when called more times than items were put. Any thread. */
int gr_queue_task_done(gr_queue *q);
/* Wait until every item put has been marked done. */
int gr_queue_join(gr_queue *q);
int gr_queue_shutdown(gr_queue *q, int immediate);
size_t gr_queue_qsize(gr_queue *q);
size_t gr_queue_maxsize(gr_queue *q);
int gr_queue_empty(gr_queue *q); /* 1 or 0 */
int gr_queue_full(gr_queue *q);  /* 1 or 0 (never 1 when unbounded) */

/* ======================================================================
 * Generators (async generators / iterators, but stackful)
 *
 * The producer function runs in its own task and calls gr_gen_yield for
 * every value; the consumer iterates with gr_gen_next / gr_gen_send. Values
 * are copied (elem_size bytes) straight from the producer's yield into the
 * consumer's buffer. The producer starts at the first next/send (as in
 * Python) and runs only while a consumer call waits for its next value.
 *
 * gr_gen_close cancels the producer: its current gr_gen_yield and every
 * later blocking call return -ECANCELED, so its cleanup runs and it
 * returns; close then joins it and frees the generator. Close is also how a
 * finished generator is freed.
 * ====================================================================== */

typedef struct gr_gen gr_gen;
typedef int (*gr_gen_fn)(gr_gen *g, void *arg);

typedef struct gr_gen_opts {
    size_t elem_size;  /* bytes per yielded value; 0: sizeof(void *) */
    size_t send_size;  /* bytes per value sent in; 0: elem_size */
    const char *name;  /* of the producer task */
    size_t stack_size; /* 0: the runtime's default */
} gr_gen_opts;

/* Spawn the producer (it waits for the first next/send). opts may be NULL.
 * -EINVAL, -ENOMEM, -EPERM (no runtime). */
int gr_gen_create(gr_gen **out, gr_gen_fn fn, void *arg, const gr_gen_opts *opts);
/* Resume the producer and wait for its next value: 1 with the value in
 * *out (NULL: discard), 0 when the producer has returned 0, or the
 * producer's negative result once (0 afterwards). -EBUSY if another task is
 * inside next/send of this generator, -EPIPE while it is being closed.
 * -ECANCELED / -ETIMEDOUT: the producer was resumed but its next value is
 * not lost: it is kept for the following call, which returns it without
 * resuming the producer again (so that call's `in` is not delivered).
 * -EPERM outside a task. */
int gr_gen_next(gr_gen *g, void *out);
/* Like next, and the producer's pending gr_gen_yield returns with a copy
 * of *in (send_size bytes; in NULL: like next). The first call of a
 * generator must not send a value (-EINVAL), as in Python. */
int gr_gen_send(gr_gen *g, const void *in, void *out);
/* Producer side: hand *value to the consumer, then wait for the next
 * next/send. 0, with *sent (if sent is not NULL) pointing at the copy of
 * the value sent in (valid until the next gr_gen_yield), or NULL for
 * gr_gen_next. -ECANCELED when the generator is being closed (clean up and
 * return), -ETIMEDOUT (a scope of the producer; the value may have been
 * handed over already), -EINVAL (not this generator's producer).
 * (Not a pointer-returning call, because the producer must be able to tell
 * "closed" from "nothing sent".) */
int gr_gen_yield(gr_gen *g, const void *value, const void **sent);
/* Cancel and join the producer, free g. A task waiting in next/send at
 * the time returns -EPIPE; later calls on g are invalid (it is freed).
 * Returns the producer's negative result if next/send did not report it
 * already and it is not -ECANCELED, else 0. Not interruptible (the join is
 * shielded). -EPERM outside a task, -EDEADLK from the producer itself. */
int gr_gen_close(gr_gen *g);

/* ======================================================================
 * Networking: addresses, sockets, streams, servers
 *
 * Sockets are plain fds. Calls that wait (accept, connect, send, recv...)
 * go through the calling worker's io_uring and park the task; calls that
 * never wait (socket, bind, listen, setsockopt) are plain system calls.
 * Every waiting call follows the rules at the top of this file: -ECANCELED
 * / -ETIMEDOUT when cancelled or inside an expired timeout scope, and an
 * interrupted call did not happen (if the kernel completed it first, its
 * result is returned). Sends never raise SIGPIPE (MSG_NOSIGNAL): a closed
 * peer gives -EPIPE. Every fd the library creates is close-on-exec.
 *
 * Name resolution (getaddrinfo) runs off the workers; numeric addresses
 * are parsed without it. Failures map to: -ENOENT (no such name), -EAGAIN
 * (temporary failure), -EAFNOSUPPORT, -ENOMEM, -EIO (anything else).
 * ====================================================================== */

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A socket address of any family (IPv4, IPv6, Unix) and its length. */
typedef struct gr_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
} gr_addr;

/* Longest text gr_addr_format writes, with the NUL ("unix:" + 107-byte
 * path, or "[v6%scope]:port"). */
#define GR_ADDR_STRLEN 120

/* A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]",
 * "fe80::1%lo") and a port. -EINVAL if ip is not numeric. */
int gr_addr_ip(gr_addr *out, const char *ip, uint16_t port);
/* A Unix socket path; a leading '@' names the abstract namespace.
 * -ENAMETOOLONG, -EINVAL. */
int gr_addr_unix(gr_addr *out, const char *path);
/* "1.2.3.4:80", "[::1]:80", "unix:/path", "unix:@name". Returns the
 * length, or -ENOSPC (truncated, still NUL-terminated), -EINVAL. */
int gr_addr_format(const gr_addr *a, char *buf, size_t size);
/* The port of an IPv4/IPv6 address, -EAFNOSUPPORT otherwise. */
int gr_addr_port(const gr_addr *a);

/* Resolve host and port into at most n addresses for `socktype`
 * (SOCK_STREAM or SOCK_DGRAM), in getaddrinfo's order. host NULL or "":
 * the wildcard addresses (for binding). Returns how many were stored
 * (>= 1), or an error above. A cancellation point. */
int gr_resolve(const char *host, uint16_t port, int socktype, gr_addr *out, size_t n);

/* ---- Sockets ------------------------------------------------------- */

typedef struct gr_listen_opts {
    int backlog;      /* listen(2) backlog; 0: SOMAXCONN; < 0: -EINVAL */
    int reuseport;    /* set SO_REUSEPORT (several listeners share a port) */
    int no_reuseaddr; /* do not set SO_REUSEADDR (set by default, as asyncio) */
    int v6only;       /* IPV6_V6ONLY for IPv6 sockets (default: dual stack) */
} gr_listen_opts;

/* A socket of a's family and `type` (SOCK_STREAM or SOCK_DGRAM), bound to
 * a, listening if it is a stream socket. opts may be NULL. For Unix
 * sockets, an existing socket file at the path is removed first (asyncio
 * does the same); any other file there gives -EADDRINUSE. Returns the fd. */
int gr_socket_bind(const gr_addr *a, int type, const gr_listen_opts *opts);
/* Listen on host:port (TCP). host NULL or "": all interfaces; a name is
 * resolved and the first address that binds is used. port 0: any free
 * port (gr_sock_name tells which). Returns the listening fd. */
int gr_listen_tcp(const char *host, uint16_t port, const gr_listen_opts *opts);
/* Listen on a Unix stream socket. Returns the fd. */
int gr_listen_unix(const char *path, const gr_listen_opts *opts);
/* A bound UDP socket (host NULL: all interfaces). Returns the fd. */
int gr_udp_bind(const char *host, uint16_t port, const gr_listen_opts *opts);

/* Accept one connection (io_uring accept). peer may be NULL. Returns the
 * new fd. Servers (below) use multishot accept instead. */
int gr_accept(int listen_fd, gr_addr *peer);
/* Connect fd to a. Returns 0 or -ECONNREFUSED, -ETIMEDOUT,
 * -ENETUNREACH... */
int gr_connect(int fd, const gr_addr *a);
/* Create a socket of `type` and connect it to the addresses in order,
 * returning the first that connects (its index in *which if non-NULL).
 * Each failed attempt's socket is closed. If all fail: the first
 * attempt's error. Cancellation and timeout scopes end the whole sequence.
 * Returns the connected fd. */
int gr_connect_addrs(const gr_addr *addrs, size_t n, int type, size_t *which);
/* Resolve host (see gr_resolve) and connect over TCP to each address in
 * order. Returns the connected fd. */
int gr_connect_tcp(const char *host, uint16_t port);
/* Connect to a Unix stream socket. Returns the fd. */
int gr_connect_unix(const char *path);

/* send/recv through io_uring. flags as send(2)/recv(2) (MSG_NOSIGNAL is
 * always added to sends). Return the byte count; recv returns 0 at EOF. */
ssize_t gr_send(int fd, const void *buf, size_t len, int flags);
ssize_t gr_recv(int fd, void *buf, size_t len, int flags);
/* Datagrams. to NULL: the connected peer. from may be NULL. */
ssize_t gr_sendto(int fd, const void *buf, size_t len, int flags, const gr_addr *to);
ssize_t gr_recvfrom(int fd, void *buf, size_t len, int flags, gr_addr *from);
/* shutdown(2) through io_uring: SHUT_RD, SHUT_WR, SHUT_RDWR. */
int gr_shutdown(int fd, int how);

/* TCP_NODELAY on or off. */
int gr_sock_nodelay(int fd, int on);
/* SO_KEEPALIVE on or off; idle_s, interval_s, count > 0 also set
 * TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT (0: leave the kernel's). */
int gr_sock_keepalive(int fd, int on, int idle_s, int interval_s, int count);
/* Local and peer address of a socket. */
int gr_sock_name(int fd, gr_addr *out);
int gr_sock_peer(int fd, gr_addr *out);

/* ---- Streams (asyncio StreamReader + StreamWriter) -------------------
 * A buffered byte stream over a connected fd: a socket (TCP, Unix), a pipe
 * or a tty. The stream owns the fd.
 *
 * Reading: data that arrived but was not asked for yet stays in the
 * stream's read buffer, whose size is bounded by `limit` (a line longer
 * than the limit is an error, not unbounded growth; on sockets, receiving
 * pauses once the buffer holds `limit` bytes nobody reads, and only the
 * few packets already on their way may land on top). A read that is
 * cancelled or times out loses nothing: whatever arrived stays buffered
 * for the next read. One task reads at a time (a second concurrent reader
 * gets -EBUSY); another task may write at the same time. Stream sockets
 * receive through one multishot recv with provided buffers (docs/net.md).
 *
 * Writing: gr_stream_write never waits. On a socket with nothing queued it
 * first tries a non-blocking send(2) of the caller's bytes; what the socket
 * does not take is copied into the stream's write buffer and sent in the
 * background through io_uring. gr_stream_drain is the
 * back-pressure point: once more than write_high bytes wait to be sent it
 * blocks until no more than write_low do (asyncio's high/low water
 * marks). A send error (peer reset...) is remembered and returned by every
 * later write, drain and flush.
 *
 * Errors specific to streams: -ENODATA (EOF came before what was asked
 * for: readexactly, readuntil; what did arrive stays buffered, see
 * gr_stream_buffered), -EMSGSIZE (a line or chunk over the limit), -EBUSY
 * (another task is reading, or close while a read/drain is in progress),
 * -EPIPE (write after write_eof). */

typedef struct gr_stream gr_stream;

#define GR_STREAM_LIMIT ((size_t)64 * 1024)
#define GR_STREAM_WRITE_HIGH ((size_t)64 * 1024)

typedef struct gr_stream_opts {
    size_t limit;      /* read buffer limit; 0: GR_STREAM_LIMIT */
    size_t write_high; /* drain waits above this; 0: GR_STREAM_WRITE_HIGH */
    size_t write_low;  /* ... until at most this is left; 0: write_high / 4 */
    int no_nodelay;    /* TCP streams get TCP_NODELAY unless this is set */
    /* Writes of at least this many bytes are sent with zero-copy send
     * (IORING_OP_SEND_ZC) straight from the caller's buffer; such a write
     * waits until the kernel is done with the buffer. 0: never. Sockets
     * only. */
    size_t zerocopy_min;
} gr_stream_opts;

/* Wrap a connected fd (the stream takes it over, also on failure). opts
 * may be NULL. -EINVAL (bad fd or options), -ENOMEM. */
int gr_stream_open(gr_stream **out, int fd, const gr_stream_opts *opts);
/* asyncio.open_connection: gr_connect_tcp / gr_connect_unix + open. */
int gr_open_connection(gr_stream **out, const char *host, uint16_t port,
                       const gr_stream_opts *opts);
int gr_open_unix_connection(gr_stream **out, const char *path, const gr_stream_opts *opts);
int gr_stream_fd(gr_stream *s);

/* Up to n bytes (at least 1 unless at EOF: 0). On a stream socket a read
 * that has to wait receives straight into buf, and gets all that arrived
 * for it before it runs again (up to n). */
ssize_t gr_stream_read(gr_stream *s, void *buf, size_t n);
/* Exactly n bytes; -ENODATA if EOF comes first (the partial data stays
 * buffered: gr_stream_buffered says how much arrived). n may exceed the
 * limit (the buffer grows to n for this call). */
ssize_t gr_stream_readexactly(gr_stream *s, void *buf, size_t n);
/* Up to and including the first occurrence of sep (seplen >= 1). Returns
 * the length. -EMSGSIZE if sep is not within the first min(limit, cap)
 * bytes (the data stays buffered: asyncio's LimitOverrunError);
 * -ENODATA if EOF comes first (the data stays buffered). */
ssize_t gr_stream_readuntil(gr_stream *s, const void *sep, size_t seplen, void *buf, size_t cap);
/* A line ending in '\n' (kept). At EOF: the unterminated rest, then 0.
 * A line longer than min(limit, cap): -EMSGSIZE at once, and the whole
 * line is dropped, through its '\n' (the part that has not arrived yet is
 * dropped as it arrives), so the next read starts at the next line. */
ssize_t gr_stream_readline(gr_stream *s, void *buf, size_t cap);
/* Everything until EOF (asyncio read(-1)). -EMSGSIZE if more than cap
 * bytes arrive first (they stay buffered). */
ssize_t gr_stream_read_to_eof(gr_stream *s, void *buf, size_t cap);
/* 1 if EOF was received and nothing is buffered, else 0. */
int gr_stream_at_eof(gr_stream *s);
/* Bytes that can be read without waiting. */
size_t gr_stream_buffered(gr_stream *s);

/* Send n bytes, or queue (copy) what cannot be sent at once. Never waits,
 * except a zero-copy write (opts.zerocopy_min). 0, or the stream's send
 * error, -EPIPE after write_eof, -ENOMEM. */
int gr_stream_write(gr_stream *s, const void *buf, size_t n);
/* Back-pressure (asyncio drain): if more than write_high bytes wait to be
 * sent, wait until at most write_low do. 0 or the send error. */
int gr_stream_drain(gr_stream *s);
/* Wait until every queued byte has been handed to the kernel. */
int gr_stream_flush(gr_stream *s);
/* Bytes queued and not yet sent. */
size_t gr_stream_write_buffered(gr_stream *s);
/* Flush, then shut the sending side (half-close: the peer reads EOF, and
 * this side can still read). Later writes return -EPIPE. */
int gr_stream_write_eof(gr_stream *s);
/* close + wait_closed in one call: flush what is queued, close the fd and
 * free the stream. If the flush fails or is interrupted (cancellation, a
 * timeout scope: bound a close to a slow peer with one), the rest is
 * dropped. The stream is freed in every case except -EBUSY (a read, drain
 * or flush of another task is in progress); returns 0, the send error, or
 * the interrupt. */
int gr_stream_close(gr_stream *s);
/* Close at once, dropping unsent data. Frees the stream (except -EBUSY). */
int gr_stream_abort(gr_stream *s);

/* ---- Servers (asyncio.start_server) -----------------------------------
 * A server accepts connections on a listening socket (multishot accept)
 * and runs fn(stream, arg) in a new task per connection, inside a task
 * group. When fn returns, the stream is closed (flushed first if fn
 * returned >= 0; aborted otherwise), so fn must not leave other tasks
 * using it. A handler's error ends only its own connection (it does not
 * cancel the other handlers, as a plain task group would). When accepting
 * fails for lack of fds (EMFILE, ENFILE, ENOBUFS, ENOMEM) the server keeps
 * serving its connections and accepts again once one of them closes (or
 * after 100 ms). */

typedef struct gr_server gr_server;
typedef int (*gr_conn_fn)(gr_stream *s, void *arg);

typedef struct gr_server_opts {
    /* Connections served at once; more wait in the listen backlog.
     * 0: no limit. */
    unsigned max_connections;
    gr_stream_opts stream;  /* for every connection */
    size_t stack_size;      /* of the handler tasks; 0: the default */
    gr_listen_opts listen;  /* gr_start_server / gr_start_unix_server */
} gr_server_opts;

/* Start serving listen_fd (the server takes it over, also on failure).
 * Returns at once; the accept loop runs in its own task. opts may be
 * NULL. */
int gr_server_start(gr_server **out, int listen_fd, gr_conn_fn fn, void *arg,
                     const gr_server_opts *opts);
/* gr_listen_tcp / gr_listen_unix + gr_server_start. */
int gr_start_server(gr_server **out, const char *host, uint16_t port, gr_conn_fn fn, void *arg,
                    const gr_server_opts *opts);
int gr_start_unix_server(gr_server **out, const char *path, gr_conn_fn fn, void *arg,
                         const gr_server_opts *opts);
/* The listening address (e.g. the port picked for port 0). */
int gr_server_addr(gr_server *srv, gr_addr *out);
/* Connections being served now. */
size_t gr_server_connections(gr_server *srv);
/* Connections accepted since the start. */
uint64_t gr_server_accepted(gr_server *srv);
/* Wait until the server is closed (serve_forever). 0, -ECANCELED,
 * -ETIMEDOUT. */
int gr_server_wait(gr_server *srv);
/* Graceful close: stop accepting (the listening socket is closed; a Unix
 * socket file the server created is removed), give the handlers until
 * `grace_ns` from now to finish, then cancel those left and wait for them;
 * free the server. grace_ns 0: cancel at once; GR_NO_DEADLINE: wait as
 * long as they take. Runs shielded, so a cancelled caller (e.g. main under
 * gr_config.graceful_shutdown) still gets the whole sequence. Returns 0,
 * or -ETIMEDOUT if handlers had to be cancelled; -EDEADLK from one of the
 * server's own handlers (nothing is done). */
int gr_server_close(gr_server *srv, int64_t grace_ns);

/* ======================================================================
 * Thread offload (asyncio.to_thread / loop.run_in_executor)
 * A blocking function runs on a bounded pool of OS threads while the
 * calling task is parked; workers never block. The pool also serves the
 * runtime itself (directory listing, readlink, copy_file_range, rmtree).
 * Pool threads start on demand, up to a maximum (default min(32, online
 * CPUs + 4), as Python's ThreadPoolExecutor: offloaded work mostly waits
 * on I/O, so a few more threads than cores keep the cores busy, and the cap
 * keeps big machines from growing hundreds of threads), and exit after 10 s
 * idle. GREENRING_OFFLOAD_THREADS=N sets the default maximum.
 * ====================================================================== */

typedef void *(*gr_offload_fn)(void *arg);
/* Called on the pool thread when the caller stopped waiting (it was
 * cancelled or timed out): frees what fn returned and whatever arg owns.
 * If the job was withdrawn before a thread took it, fn is never called and
 * release gets result NULL. */
typedef void (*gr_offload_release_fn)(void *arg, void *result);

/* Run fn(arg) on the offload pool and park until it returns; then 0, with
 * *result (if result is non-NULL) set to what fn returned.
 * A blocking function cannot be interrupted: a task cancelled (or timed
 * out) while waiting gets -ECANCELED (-ETIMEDOUT) at once, and fn runs to
 * completion on its thread; release (may be NULL) then gets arg and fn's
 * result. So when the call can be interrupted, arg must not point into the
 * caller's stack (allocate it, and free it in release). A job interrupted
 * before a thread picked it up is not run. Errors: -EINVAL (NULL fn),
 * -EPERM (not in a task), -EAGAIN (no pool thread could be started),
 * -ENOMEM. */
int gr_offload(gr_offload_fn fn, void *arg, gr_offload_release_fn release, void **result);
/* Maximum number of pool threads (0: the default). Takes effect at once;
 * surplus threads leave when idle. -EINVAL above 1024. */
int gr_offload_set_max_threads(unsigned n);
/* The current maximum. */
int gr_offload_max_threads(void);

/* ======================================================================
 * Files (aiofiles.open and the file object)
 * Every operation io_uring can do goes through the calling worker's ring
 * (OPENAT, READ/WRITE, READV/WRITEV, FSYNC, STATX, FALLOCATE, FADVISE,
 * FTRUNCATE where the kernel has it, CLOSE); the rest goes to the offload
 * pool. Reads of page-cached data are first tried with preadv2(RWF_NOWAIT)
 * on the worker, which is cheaper than a round trip through the ring
 * (docs/files.md has the numbers); only a read that would block goes to
 * io_uring. A task that keeps getting immediate reads yields every 64.
 *
 * Binary only. A gr_file keeps its own position and does positional I/O
 * (pread/pwrite at that position), so the kernel's file offset is not used
 * (except by append-mode writes, which always go to the end of the file).
 * Stream calls (read, write, readline, seek, flush, ...) of one gr_file
 * are serialised by a per-file lock that parks, so tasks may share a file;
 * positional calls (pread/pwrite) of an unbuffered file take no lock.
 *
 * Buffered mode (the default) keeps a per-file buffer: small reads are
 * served from it, small writes collect in it until it is full, or until
 * flush, seek, a read, or close. A write that does not fit in what is left
 * of the buffer flushes it first, so in append mode each write of up to
 * the buffer size reaches the file with one write(2): records from several
 * appenders are never interleaved.
 *
 * Interruption: a read or write interrupted after transferring data
 * returns the count transferred (and the position moved by exactly that);
 * the next call reports the cancellation. Short reads happen only at the
 * end of the file. A closed (or zeroed) gr_file returns -EBADF.
 * ====================================================================== */

struct statx;
struct iovec;

#define GR_FILE_DEFAULT_BUFFER ((size_t)64 * 1024)

typedef struct gr_file_opts {
    /* Size of the per-file buffer. 0: GR_FILE_DEFAULT_BUFFER. */
    size_t buffer_size;
    /* No buffer: every read/write is one operation (O_DIRECT files are
     * always unbuffered). */
    int unbuffered;
    /* Register the fd in the fixed-file table of the ring of the worker
     * that opens the file (IOSQE_FIXED_FILE saves a file-table lookup and
     * reference per operation). Each worker has its own ring, and a fixed
     * file belongs to one ring: operations issued while the task runs on
     * another worker use the plain fd. Ignored where IORING_OP_MSG_RING is
     * missing (closing from another worker needs it). */
    int fixed;
    /* Never try preadv2(RWF_NOWAIT) before going to io_uring. */
    int no_speculate;
} gr_file_opts;

/* Holds a pointer to the open file's state; the struct itself may live
 * anywhere but must not be copied while open. Zero it (or open it) before
 * use. */
typedef struct gr_file {
    struct gr__file *impl_;
} gr_file;

/* fopen-style modes, binary only ("b" is accepted and ignored, "t" is
 * -EINVAL): "r" read, "w" write (create, truncate), "a" append (create),
 * "x" write (create, fail with -EEXIST if it exists); "+" adds the other
 * direction. New files get mode 0666 & ~umask. Always O_CLOEXEC.
 * Returns the open(2) flags for a mode, or -EINVAL. */
int gr_file_mode_flags(const char *mode);

/* Open a file (buffered). 0 or -ENOENT, -EACCES, -EISDIR (a directory
 * opened for writing; read-only opens of a directory succeed as with
 * open(2), and reads then fail with -EISDIR), -EEXIST ("x"), -EINVAL,
 * -ENOMEM, -ECANCELED, -ETIMEDOUT, -EPERM (not in a task). */
int gr_file_open(gr_file *f, const char *path, const char *mode);
/* Open with open(2) flags (O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_EXCL,
 * O_TRUNC, O_APPEND, O_DIRECT, O_SYNC, O_DSYNC, O_NOFOLLOW, O_TMPFILE...;
 * O_CLOEXEC is always added), permission bits for a new file, and options
 * (NULL: defaults). */
int gr_file_open_flags(gr_file *f, const char *path, int flags, unsigned perm,
                       const gr_file_opts *opts);
/* Flush buffered writes (even when the task is cancelled: the flush runs
 * shielded), release the fixed-file slot, close the fd, remove a named
 * temporary file. The file is closed whatever the result, which is the
 * first error met (a failed flush: its data is lost). -EBADF if already
 * closed. Not a cancellation point. */
int gr_file_close(gr_file *f);
/* The underlying fd (for gr_sendfile, fstat...), or -EBADF. */
int gr_file_fd(const gr_file *f);
/* Path of a named temporary file, else NULL. */
const char *gr_file_path(const gr_file *f);

/* Read up to len bytes at the file position and advance it. Returns the
 * count (0 at end of file; fewer than len only at the end or when
 * interrupted after some bytes arrived), or a negative errno. */
ssize_t gr_file_read(gr_file *f, void *buf, size_t len);
/* Write at the file position (the end, in append mode). Buffered: the
 * whole buffer is taken (returns len). Unbuffered: one write, which may be
 * short. */
ssize_t gr_file_write(gr_file *f, const void *buf, size_t len);
/* Write everything, looping over short writes. Returns len, or the count
 * written before an error or interruption (if any was), else the error. */
ssize_t gr_file_write_all(gr_file *f, const void *buf, size_t len);
/* Positional I/O: neither uses nor moves the file position. Buffered
 * files: pread sees buffered writes (they are flushed first), pwrite drops
 * the read buffer. pwrite on an append-mode file appends (as pwrite(2)). */
ssize_t gr_file_pread(gr_file *f, void *buf, size_t len, off_t offset);
ssize_t gr_file_pwrite(gr_file *f, const void *buf, size_t len, off_t offset);
/* Vectored positional I/O (IORING_OP_READV/WRITEV), one operation. */
ssize_t gr_file_preadv(gr_file *f, const struct iovec *iov, int iovcnt, off_t offset);
ssize_t gr_file_pwritev(gr_file *f, const struct iovec *iov, int iovcnt, off_t offset);
/* Read from the position to the end of the file into a new buffer (*data,
 * NUL-terminated for convenience, free() it). Returns the length.
 * -EFBIG if it is longer than max (0: no limit; the position is then
 * unchanged), -ENOMEM. Interrupted: the error, the position where it was
 * and nothing allocated. */
ssize_t gr_file_read_all(gr_file *f, char **data, size_t max);

/* Read one line, up to and including '\n', into buf (NUL-terminated).
 * Returns its length; 0 at end of file; the last line may lack the '\n'.
 * -EOVERFLOW if the line (with its '\n') does not fit in size - 1 bytes:
 * nothing is consumed, so the caller can retry with a larger buffer.
 * Interrupted: the error, and the position stays at the line's start. */
ssize_t gr_file_readline(gr_file *f, char *buf, size_t size);

/* Line iterator (async for line in f). Lines are returned in a buffer the
 * iterator owns (valid until the next call), growing up to max_line bytes
 * (with the '\n'). Fields are private. */
typedef struct gr_file_lines {
    gr_file *file_;
    char *buf_;
    size_t cap_, max_;
} gr_file_lines;
int gr_file_lines_init(gr_file_lines *it, gr_file *f, size_t max_line);
/* Length of the next line (*line points at it, NUL-terminated), 0 at the
 * end, -EOVERFLOW for a line over max_line (not consumed), or an error. */
ssize_t gr_file_lines_next(gr_file_lines *it, const char **line);
void gr_file_lines_destroy(gr_file_lines *it);

/* SEEK_SET, SEEK_CUR, SEEK_END (a statx through the ring). Returns the new
 * position. -EINVAL for a negative result or another whence. */
off_t gr_file_seek(gr_file *f, off_t offset, int whence);
off_t gr_file_tell(gr_file *f);
/* Resize the file (flushes first; the position does not move). */
int gr_file_truncate(gr_file *f, off_t length);
/* Write out the buffer (no fsync). */
int gr_file_flush(gr_file *f);
/* flush + IORING_OP_FSYNC (full or data-only). */
int gr_file_fsync(gr_file *f);
int gr_file_fdatasync(gr_file *f);
/* fallocate(2) and posix_fadvise(2) through the ring (flush first). */
int gr_file_fallocate(gr_file *f, int mode, off_t offset, off_t len);
int gr_file_fadvise(gr_file *f, off_t offset, off_t len, int advice);
/* statx of the open file (buffered writes are flushed first). */
int gr_file_stat(gr_file *f, struct statx *st);
/* O_DIRECT alignment of buffers and of offsets/lengths for this file
 * (statx STATX_DIOALIGN; 0 when the file system does not support it). */
int gr_file_dio_align(gr_file *f, size_t *mem_align, size_t *offset_align);

/* Temporary files (aiofiles.tempfile), opened "w+" in dir (NULL: $TMPDIR,
 * else /tmp). tempfile: O_TMPFILE, no name, gone when closed (where the file
 * system lacks O_TMPFILE: a named file unlinked at once). named_tempfile:
 * <dir>/<prefix>XXXXXX (prefix NULL: "tmp"), removed by gr_file_close;
 * gr_file_path gives its name. */
int gr_file_tempfile(gr_file *f, const char *dir);
int gr_file_named_tempfile(gr_file *f, const char *dir, const char *prefix);

/* ======================================================================
 * Filesystem operations (aiofiles.os, aiofiles.ospath, shutil)
 * Paths are relative to the current directory unless absolute. All are
 * cancellation points. Results: 0 or a negative errno unless said.
 * ====================================================================== */

/* statx (STATX_BASIC_STATS) following symlinks / of the link itself. */
int gr_fs_stat(const char *path, struct statx *st);
int gr_fs_lstat(const char *path, struct statx *st);
/* 1 or 0 (-ENOENT and -ENOTDIR mean 0); other errors (-EACCES on a
 * parent...) are returned. Follow symlinks (a dangling link: 0). */
int gr_fs_exists(const char *path);
int gr_fs_is_file(const char *path);
int gr_fs_is_dir(const char *path);
/* renameat2: flags 0, RENAME_NOREPLACE, RENAME_EXCHANGE. */
int gr_fs_rename(const char *from, const char *to, unsigned flags);
/* missing_ok: a missing file is success. */
int gr_fs_unlink(const char *path, int missing_ok);
int gr_fs_mkdir(const char *path, unsigned mode);
/* mkdir -p: creates the missing parents. exist_ok: an existing directory
 * is success (an existing non-directory is -EEXIST either way). */
int gr_fs_makedirs(const char *path, unsigned mode, int exist_ok);
int gr_fs_rmdir(const char *path);
/* Hard link / symbolic link `linkpath` -> `target`. */
int gr_fs_link(const char *target, const char *linkpath);
int gr_fs_symlink(const char *target, const char *linkpath);
/* readlink into buf, NUL-terminated: the length, or -ENAMETOOLONG if it
 * does not fit (offload pool). */
ssize_t gr_fs_readlink(const char *path, char *buf, size_t size);
/* The canonical absolute path (symlinks, "." and ".." resolved; the path
 * must exist), NUL-terminated: the length, or -ENAMETOOLONG. */
ssize_t gr_fs_realpath(const char *path, char *buf, size_t size);

typedef struct gr_dirent {
    const char *name;
    uint64_t ino;
    unsigned char type; /* DT_REG, DT_DIR, DT_LNK... (DT_UNKNOWN on some file systems) */
} gr_dirent;
/* Directory listing (offload pool), without "." and "..", in directory
 * order. listdir: *names is a NULL-terminated array; scandir: *entries.
 * Either is one allocation: free() it. Returns the number of entries. */
ssize_t gr_fs_listdir(const char *path, char ***names);
ssize_t gr_fs_scandir(const char *path, gr_dirent **entries);

/* Copy a file's content (and permission bits) to dst, created or
 * truncated: copy_file_range on the offload pool (in-kernel copy,
 * reflinks), falling back to splice through a pipe via the ring. Returns
 * the bytes copied. An interrupted copy returns the error (dst then holds
 * a prefix, as with shutil). -EISDIR for a directory. */
off_t gr_fs_copyfile(const char *src, const char *dst);
/* Send count bytes (0: up to the end) of in_fd from offset to out_fd (a
 * socket or pipe), with IORING_OP_SPLICE through a pipe (sendfile). Returns
 * the bytes sent: fewer than asked at end of file, or when interrupted
 * after some were sent (the caller can resume at offset + result). */
ssize_t gr_sendfile(int out_fd, int in_fd, off_t offset, size_t count);

/* Temporary directory: created (mode 0700) as <dir>/<prefix>XXXXXX (dir
 * NULL: $TMPDIR, else /tmp; prefix NULL: "tmp"); its path is written to
 * path (-ENAMETOOLONG if size is too small). */
int gr_fs_mkdtemp(char *path, size_t size, const char *dir, const char *prefix);
/* Remove a directory and everything in it (symlinks are removed, not
 * followed); a missing path is -ENOENT, a file or a symlink -ENOTDIR. Not
 * interruptible (cleanup). */
int gr_fs_rmtree(const char *path);

/* ======================================================================
 * Subprocesses (asyncio.create_subprocess_exec)
 * The child starts with no blocked signals, and SIGPIPE and SIGXFSZ at their
 * default disposition (the runtime ignores SIGPIPE).
 * Waiting uses a pidfd (IORING_OP_WAITID, or a pidfd poll on kernels
 * before 6.7). A process must be released with gr_process_destroy, which
 * kills and reaps a child that is still running: no zombies are left, also
 * when a waiting task was cancelled.
 * ====================================================================== */

enum gr_stdio_mode {
    GR_STDIO_INHERIT, /* the parent's fd (the default) */
    GR_STDIO_PIPE,    /* a pipe, exposed as a gr_stream */
    GR_STDIO_DEVNULL,
    GR_STDIO_FD       /* `fd`, which stays the caller's */
};
typedef struct gr_stdio {
    enum gr_stdio_mode mode;
    int fd;
} gr_stdio;

typedef struct gr_process_opts {
    char *const *env; /* NULL: the parent's environment */
    const char *cwd;  /* NULL: the parent's */
    gr_stdio std_in, std_out, std_err;
} gr_process_opts;

typedef struct gr_process gr_process;

/* How a child ended: code >= 0 and signal 0 after exit(code); code -1 and
 * the signal number when a signal killed it. */
typedef struct gr_exit_status {
    int code;
    int signal;
} gr_exit_status;

/* Output collected by gr_process_communicate; data is malloc'd (free it). */
typedef struct gr_output {
    char *data;
    size_t len;
} gr_output;

/* Start `file` (searched in PATH when it has no '/') with argv (argv[0]
 * first, NULL-terminated). -ENOENT / -EACCES when it cannot be executed (no
 * process is left behind), -EINVAL, -EMFILE, -EPERM outside a task. */
int gr_process_spawn(gr_process **out, const char *file, char *const argv[],
                     const gr_process_opts *opts);
/* The pipe streams (NULL unless GR_STDIO_PIPE); owned by the process. */
gr_stream *gr_process_stdin(gr_process *p);
gr_stream *gr_process_stdout(gr_process *p);
gr_stream *gr_process_stderr(gr_process *p);
/* Take a pipe stream over (0 stdin, 1 stdout, 2 stderr): the caller closes
 * it; the process forgets it. NULL if there is none. */
gr_stream *gr_process_take_stream(gr_process *p, int which);
pid_t gr_process_pid(gr_process *p);
/* Wait for the child to end (reaping it) and report how; callable again
 * once it has ended. A cancellation point. */
int gr_process_wait(gr_process *p, gr_exit_status *status);
/* Send a signal (pidfd_send_signal: never a recycled pid). -ESRCH once
 * reaped. */
int gr_process_signal(gr_process *p, int sig);
int gr_process_terminate(gr_process *p); /* SIGTERM */
int gr_process_kill(gr_process *p);      /* SIGKILL */
/* Write `input` to stdin and close it, collect stdout and stderr (when they
 * are pipes and out/err are non-NULL) concurrently, then wait for the exit.
 * No deadlock however large the outputs. If interrupted (cancellation, a
 * timeout scope) and kill_on_interrupt is set, the child is killed and
 * reaped before returning the interrupt. */
int gr_process_communicate(gr_process *p, const void *input, size_t len, gr_output *out,
                           gr_output *err, gr_exit_status *status, int kill_on_interrupt);
/* Kill (SIGKILL) and reap the child if it is still running, close the
 * pipes, free. Not interruptible. */
int gr_process_destroy(gr_process *p);

#ifdef __cplusplus
}
#endif
#endif /* GREENRING_H */
