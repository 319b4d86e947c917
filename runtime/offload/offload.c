#include "offload/offload.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/attrs.h"
#include "core/spinlock.h"
#include "core/task.h"
#include "core/wait.h"

#define MAX_THREADS_LIMIT 1024u
#define DEFAULT_THREADS_CAP 32u
#define IDLE_EXIT_S 10 /* an idle thread exits after this long */
#define FREE_JOBS_MAX 256u

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_ABANDONED };

struct waiter;

struct job {
    struct job *next;
    gr_offload_fn fn;
    void *arg;
    gr_offload_release_fn release;
    void *result;
    struct waiter *waiter; /* only dereferenced by the winner of DONE */
    _Atomic int state;
    _Atomic int interrupted;
    /* 1 while the pool thread is inside gr__wake for this job: the woken
     * task waits for 0 before it goes on, because a wake from a foreign
     * thread still reads the worker (and may write its eventfd) after the
     * task became runnable, and the runtime must not end under it. */
    _Atomic int waking;
};

/* On the calling task's stack; valid until the task resumes. */
struct waiter {
    struct gr__wait wait;
    struct job *job;
    enum gr__offload_mode mode;
    int abandoned; /* set by the interrupt hook that won the job */
};

struct pool {
    pthread_mutex_t lock;
    pthread_cond_t work;   /* a job was queued, or the pool stops */
    pthread_cond_t exited; /* a thread left (shutdown waits on it) */
    struct job *head, *tail;
    unsigned queued, nthreads, idle, busy, max;
    unsigned refs; /* each thread, plus one while the pool is published */
    int stopping;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER; /* creation, shutdown */
static struct pool *_Atomic pool;
static _Atomic unsigned configured_max;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static __thread struct job *current_job; /* pool threads only */

/* Job records outlive the call that queued them, so they are recycled
 * through a free list instead of living on a stack. */
static gr__spinlock free_lock = GR_SPINLOCK_INIT;
static struct job *free_jobs;
static unsigned n_free_jobs;

/* ---------------------------------------------------------------------
 * Job records
 * --------------------------------------------------------------------- */

static struct job *job_get(void)
{
    gr__spin_lock(&free_lock);
    struct job *j = free_jobs;
    if (j) {
        free_jobs = j->next;
        n_free_jobs--;
    }
    gr__spin_unlock(&free_lock);
    return j ? j : malloc(sizeof(*j));
}

static void job_put(struct job *j)
{
    gr__spin_lock(&free_lock);
    int keep = n_free_jobs < FREE_JOBS_MAX;
    if (keep) {
        j->next = free_jobs;
        free_jobs = j;
        n_free_jobs++;
    }
    gr__spin_unlock(&free_lock);
    if (!keep)
        free(j);
}

/* ---------------------------------------------------------------------
 * Pool threads
 * --------------------------------------------------------------------- */

static void pool_unref(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->lock);
    if (!last)
        return;
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->exited);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static void idle_deadline(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += IDLE_EXIT_S;
}

/* The next job, or NULL when this thread should exit (stopping, surplus,
 * or idle too long). Called and returns with p->lock held. */
static struct job *take_job(struct pool *p)
{
    struct timespec until;
    idle_deadline(&until);
    while (!p->head) {
        if (p->stopping || p->nthreads > p->max)
            return NULL;
        p->idle++;
        int rc = pthread_cond_timedwait(&p->work, &p->lock, &until);
        p->idle--;
        if (rc == ETIMEDOUT && !p->head)
            return NULL;
    }
    struct job *j = p->head;
    p->head = j->next;
    if (!p->head)
        p->tail = NULL;
    p->queued--;
    return j;
}

static void run_job(struct job *j)
{
    int expected = JOB_QUEUED;
    /* acq_rel: acquire pairs with the hook's CAS (an abandoned job is ours
     * with everything its waiter wrote); release is not needed yet but
     * keeps the transitions uniform. */
    if (!atomic_compare_exchange_strong_explicit(&j->state, &expected, JOB_RUNNING,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        /* Abandoned before it started: fn never runs. */
        if (j->release)
            j->release(j->arg, NULL);
        job_put(j);
        return;
    }
    current_job = j;
    void *r = j->fn(j->arg);
    current_job = NULL;
    j->result = r;
    expected = JOB_RUNNING;
    /* acq_rel: release publishes the result to the waiter (which also
     * gets it through the inbox hand-off); acquire on failure makes the
     * abandoning hook's writes visible before we recycle the record. */
    if (atomic_compare_exchange_strong_explicit(&j->state, &expected, JOB_DONE,
                                                memory_order_acq_rel, memory_order_acquire)) {
        /* relaxed: published to the task by the wake's release push. */
        atomic_store_explicit(&j->waking, 1, memory_order_relaxed);
        gr__wake(&j->waiter->wait, 0);
        /* release: the task owns the job once it reads 0 (acquire). */
        atomic_store_explicit(&j->waking, 0, memory_order_release);
        return;
    }
    if (j->release)
        j->release(j->arg, r);
    job_put(j);
}

static void *pool_thread(void *arg)
{
    struct pool *p = arg;
    pthread_setname_np(pthread_self(), "gr-offload"); /* for ps, gdb, tests */
    pthread_mutex_lock(&p->lock);
    struct job *j;
    while ((j = take_job(p))) {
        p->busy++;
        pthread_mutex_unlock(&p->lock);
        run_job(j);
        pthread_mutex_lock(&p->lock);
        p->busy--;
    }
    p->nthreads--;
    pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->lock);
    pool_unref(p);
    return NULL;
}

/* Start one more thread (p->lock held). Signals are blocked in pool
 * threads: they belong to the application's own threads. */
static int spawn_thread(struct pool *p)
{
    pthread_attr_t attr;
    sigset_t all;
    pthread_t th;
    if (pthread_attr_init(&attr) != 0)
        return -ENOMEM;
    sigfillset(&all);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setsigmask_np(&attr, &all);
    int rc = pthread_create(&th, &attr, pool_thread, p);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return -rc;
    p->nthreads++;
    p->refs++;
    return 0;
}

/* ---------------------------------------------------------------------
 * The pool
 * --------------------------------------------------------------------- */

static unsigned default_max(void)
{
    const char *env = getenv("GREENRING_OFFLOAD_THREADS");
    if (env && *env) {
        long n = strtol(env, NULL, 10);
        if (n > 0)
            return n > MAX_THREADS_LIMIT ? MAX_THREADS_LIMIT : (unsigned)n;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = (cpus > 0 ? (unsigned)cpus : 1u) + 4u;
    return n > DEFAULT_THREADS_CAP ? DEFAULT_THREADS_CAP : n;
}

static unsigned wanted_max(void)
{
    /* relaxed: a configuration value, read when a pool is (re)sized. */
    unsigned n = atomic_load_explicit(&configured_max, memory_order_relaxed);
    return n ? n : default_max();
}

/* After fork the pool's threads are gone: start afresh in the child (the
 * old pool is leaked; its lock may have been held by a vanished thread). */
static void atfork_child(void)
{
    atomic_store_explicit(&pool, NULL, memory_order_relaxed); /* single-threaded here */
    free_lock = (gr__spinlock)GR_SPINLOCK_INIT;
    free_jobs = NULL;
    n_free_jobs = 0;
    pthread_mutex_init(&pool_lock, NULL);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

static struct pool *pool_create(void)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->exited, NULL);
    pthread_mutex_init(&p->lock, NULL);
    p->max = wanted_max();
    p->refs = 1;
    return p;
}

/* The running pool, created on first use. */
static struct pool *pool_get(void)
{
    /* acquire: pairs with the release store below (an initialised pool). */
    struct pool *p = atomic_load_explicit(&pool, memory_order_acquire);
    if (GR_LIKELY(p))
        return p;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&pool_lock);
    p = atomic_load_explicit(&pool, memory_order_relaxed); /* under the lock */
    if (!p && (p = pool_create()))
        atomic_store_explicit(&pool, p, memory_order_release); /* see above */
    pthread_mutex_unlock(&pool_lock);
    return p;
}

/* Queue j and make sure a thread will take it (p->lock held). */
static int enqueue(struct pool *p, struct job *j)
{
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    if (p->idle >= p->queued) {
        pthread_cond_signal(&p->work);
        return 0;
    }
    if (p->nthreads >= p->max)
        return 0; /* a busy thread takes it when done */
    int rc = spawn_thread(p);
    if (rc < 0 && p->nthreads == 0) {
        /* Nobody could ever run it: take it back (it is the only one). */
        p->head = p->tail = NULL;
        p->queued--;
        return -EAGAIN;
    }
    return 0;
}

static int submit(struct job *j)
{
    for (;;) {
        struct pool *p = pool_get();
        if (!p)
            return -ENOMEM;
        pthread_mutex_lock(&p->lock);
        if (p->stopping) { /* shut down under us: a new pool is created */
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        int rc = enqueue(p, j);
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
}

void gr__offload_configure(unsigned max_threads)
{
    if (max_threads > MAX_THREADS_LIMIT)
        max_threads = MAX_THREADS_LIMIT;
    /* relaxed: see wanted_max. */
    atomic_store_explicit(&configured_max, max_threads, memory_order_relaxed);
    pthread_mutex_lock(&pool_lock);
    struct pool *p = atomic_load_explicit(&pool, memory_order_relaxed); /* under the lock */
    if (p) {
        pthread_mutex_lock(&p->lock);
        p->max = wanted_max();
        pthread_cond_broadcast(&p->work); /* surplus idle threads leave */
        pthread_mutex_unlock(&p->lock);
    }
    pthread_mutex_unlock(&pool_lock);
}

void gr__offload_shutdown(void)
{
    pthread_mutex_lock(&pool_lock);
    /* relaxed: pool_lock orders it against creation; the pool's own lock
     * orders everything done with it. */
    struct pool *p = atomic_exchange_explicit(&pool, NULL, memory_order_relaxed);
    pthread_mutex_unlock(&pool_lock);
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    /* Busy threads run abandoned functions: they leave when those return. */
    while (p->nthreads > p->busy)
        pthread_cond_wait(&p->exited, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pool_unref(p);
}

/* ---------------------------------------------------------------------
 * Waiting for a job
 * --------------------------------------------------------------------- */

/* Runs on the worker the task is parked on. Wins the job unless the
 * function already returned (then its wake is on the way). */
static void on_interrupt(struct gr__wait *w, int reason)
{
    struct waiter *wt = GR_CONTAINER_OF(w, struct waiter, wait);
    struct job *j = wt->job;
    /* acquire: orders our read before acting on the state. */
    int cur = atomic_load_explicit(&j->state, memory_order_acquire);
    while (cur == JOB_QUEUED || (cur == JOB_RUNNING && wt->mode == GR_OFFLOAD_ABANDON)) {
        /* acq_rel: release hands the job (and its release duty) to the
         * pool thread; acquire on failure re-reads its latest state. */
        if (atomic_compare_exchange_weak_explicit(&j->state, &cur, JOB_ABANDONED,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            wt->abandoned = 1;
            gr__wake(w, reason);
            return;
        }
    }
    if (cur == JOB_RUNNING) /* GR_OFFLOAD_FINISH: ask the function to hurry */
        atomic_store_explicit(&j->interrupted, 1, memory_order_relaxed); /* a hint it polls */
}

/* The pool thread may still be finishing the wake that resumed us (see
 * struct job): a few hundred nanoseconds, unless it was preempted. */
static void wait_wake_done(struct job *j)
{
    /* acquire: pairs with the release store after gr__wake. */
    for (unsigned i = 0; atomic_load_explicit(&j->waking, memory_order_acquire); i++) {
        if (i < 100)
            gr__cpu_relax();
        else
            sched_yield();
    }
}

static void ignore_interrupt(struct gr__wait *w, int reason)
{
    (void)w;
    (void)reason;
}

static int entry_check(enum gr__offload_mode mode, struct gr__task **self)
{
    if (mode != GR_OFFLOAD_NO_INTERRUPT)
        return gr__blocking_check(self);
    *self = gr__current_task();
    return *self && !(*self)->no_block ? 0 : -EPERM;
}

int gr__offload_run(gr_offload_fn fn, void *arg, gr_offload_release_fn release, void **result,
                    enum gr__offload_mode mode, const char *reason)
{
    struct gr__task *self;
    int rc = entry_check(mode, &self);
    if (rc < 0)
        return rc;
    struct job *j = job_get();
    if (!j)
        return -ENOMEM;
    struct waiter wt = {.job = j, .mode = mode};
    gr__wait_prepare(&wt.wait, self);
    j->fn = fn;
    j->arg = arg;
    j->release = release;
    j->result = NULL;
    j->waiter = &wt;
    /* relaxed: the pool's mutex publishes the job to the thread. */
    atomic_store_explicit(&j->state, JOB_QUEUED, memory_order_relaxed);
    atomic_store_explicit(&j->interrupted, 0, memory_order_relaxed);
    atomic_store_explicit(&j->waking, 0, memory_order_relaxed);
    if ((rc = submit(j)) < 0) {
        job_put(j);
        return rc;
    }
    gr__interrupt_fn hook = mode == GR_OFFLOAD_NO_INTERRUPT ? ignore_interrupt : on_interrupt;
    rc = gr__park(&wt.wait, reason, hook, GR_NO_DEADLINE);
    if (wt.abandoned)
        return rc; /* the pool thread owns j now */
    wait_wake_done(j);
    if (result)
        *result = j->result;
    job_put(j);
    return 0;
}

int gr__offload_interrupted(void)
{
    struct job *j = current_job;
    /* relaxed: a hint; the function only stops earlier. */
    return j && atomic_load_explicit(&j->interrupted, memory_order_relaxed);
}

struct call {
    long (*fn)(void *arg);
    void *arg;
    long result;
};

static void *call_trampoline(void *p)
{
    struct call *c = p;
    c->result = c->fn(c->arg);
    return NULL;
}

long gr__offload_call(long (*fn)(void *arg), void *arg, enum gr__offload_mode mode,
                      const char *reason)
{
    struct call c = {.fn = fn, .arg = arg};
    if (mode == GR_OFFLOAD_ABANDON) /* c lives on this stack */
        mode = GR_OFFLOAD_FINISH;
    int rc = gr__offload_run(call_trampoline, &c, NULL, NULL, mode, reason);
    return rc < 0 ? rc : c.result;
}

/* ---------------------------------------------------------------------
 * Public API
 * --------------------------------------------------------------------- */

int gr_offload(gr_offload_fn fn, void *arg, gr_offload_release_fn release, void **result)
{
    if (!fn)
        return -EINVAL;
    return gr__offload_run(fn, arg, release, result, GR_OFFLOAD_ABANDON, "offload");
}

int gr_offload_set_max_threads(unsigned n)
{
    if (n > MAX_THREADS_LIMIT)
        return -EINVAL;
    gr__offload_configure(n);
    return 0;
}

int gr_offload_max_threads(void)
{
    return (int)wanted_max();
}
