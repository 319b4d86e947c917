#include "core/runtime.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/wait.h"
#include "offload/offload.h"
#include "signal/signal.h"
#include "task/debug.h"

#define DEFAULT_RING_ENTRIES 256u

struct gr__runtime *_Atomic gr__rt;
static _Atomic int run_active;

int64_t gr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t gr__now_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int gr_worker_index(void)
{
    struct gr__worker *w = gr__worker_self();
    return w && w->current ? (int)w->index : -EPERM;
}

int gr_worker_count(void)
{
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    return rt ? (int)rt->nworkers : -EPERM;
}

/* ---------------------------------------------------------------------
 * Global queue
 * --------------------------------------------------------------------- */

void gr__global_push(struct gr__runtime *rt, struct gr__task *first, struct gr__task *last,
                     uint32_t n)
{
    last->next = NULL;
    pthread_mutex_lock(&rt->global_lock);
    if (rt->global_tail)
        rt->global_tail->next = first;
    else
        rt->global_head = first;
    rt->global_tail = last;
    /* seq_cst: parkers read global_len after announcing they park. */
    atomic_fetch_add(&rt->global_len, n);
    pthread_mutex_unlock(&rt->global_lock);
}

struct gr__task *gr__global_pop(struct gr__runtime *rt)
{
    /* relaxed: a cheap emptiness hint; the lock orders the real access. */
    if (!atomic_load_explicit(&rt->global_len, memory_order_relaxed))
        return NULL;
    pthread_mutex_lock(&rt->global_lock);
    struct gr__task *t = rt->global_head;
    if (t) {
        rt->global_head = t->next;
        if (!rt->global_head)
            rt->global_tail = NULL;
        atomic_fetch_sub_explicit(&rt->global_len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&rt->global_lock);
    return t;
}

/* ---------------------------------------------------------------------
 * Start-up probe
 * --------------------------------------------------------------------- */

static int explain_unavailable(int rc, const char *what)
{
    fprintf(stderr,
            "greenring: io_uring is unavailable: %s (%s).\n"
            "greenring: check that the kernel is Linux 6.1 or newer, that `sysctl "
            "kernel.io_uring_disabled` is 0 (or 1 with this user in the io_uring group), and "
            "that no seccomp profile blocks io_uring_setup (Docker's default one does; run with "
            "a profile that allows it).\n",
            what, strerror(-rc));
    return rc;
}

static int probe_io_uring(struct gr__runtime *rt)
{
    if (getenv("GREENRING_PRETEND_NO_IO_URING"))
        return explain_unavailable(-ENOSYS, "GREENRING_PRETEND_NO_IO_URING is set");
    struct io_uring ring;
    int rc = io_uring_queue_init(4, &ring, 0);
    if (rc < 0)
        return explain_unavailable(rc, "io_uring_setup failed");
    struct io_uring_probe *probe = io_uring_get_probe_ring(&ring);
    static const int needed[] = {IORING_OP_NOP, IORING_OP_READ, IORING_OP_WRITE,
                                 IORING_OP_ASYNC_CANCEL, IORING_OP_CLOSE};
    for (size_t i = 0; probe && i < sizeof(needed) / sizeof(needed[0]); i++)
        if (!io_uring_opcode_supported(probe, needed[i]))
            rc = -ENOSYS;
    rt->cfg_have_msg_ring = probe && io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
#ifdef GR_VALGRIND
    rt->cfg_have_msg_ring = 0; /* eventfd wake-ups: they make the ring fd readable */
#endif
    io_uring_free_probe(probe);
    io_uring_queue_exit(&ring);
    if (!probe)
        return explain_unavailable(-ENOSYS, "the opcode probe failed");
    if (rc < 0)
        return explain_unavailable(rc, "the kernel lacks READ/WRITE/ASYNC_CANCEL/CLOSE");
    return 0;
}

/* ---------------------------------------------------------------------
 * Teardown
 * --------------------------------------------------------------------- */

void gr__runtime_foreach_task(struct gr__runtime *rt, void (*fn)(struct gr__task *t, void *arg),
                              void *arg)
{
    for (unsigned i = 0; i <= rt->nworkers; i++) {
        struct gr__task_list *l = i < rt->nworkers ? &rt->workers[i].tasks : &rt->foreign_tasks;
        gr__spin_lock(&l->lock);
        for (struct gr__task *t = l->head; t; t = t->list_next)
            fn(t, arg);
        gr__spin_unlock(&l->lock);
    }
}

static void cancel_other(struct gr__task *t, void *self)
{
    if (t != self)
        gr__task_cancel(t);
}

static void ignore_interrupt(struct gr__wait *w, int reason)
{
    (void)w;
    (void)reason;
}

/* Main has returned: cancel every other task and wait until all are gone. */
static void teardown(struct gr__runtime *rt, struct gr__task *self)
{
    atomic_store(&rt->main_done, 1);
    gr__runtime_foreach_task(rt, cancel_other, self);
    struct gr__wait w;
    gr__wait_prepare(&w, self);
    pthread_mutex_lock(&rt->teardown_lock);
    int others = atomic_load(&rt->live) > 1;
    if (others)
        rt->teardown_wait = &w;
    pthread_mutex_unlock(&rt->teardown_lock);
    if (others)
        gr__park(&w, "teardown", ignore_interrupt, GR_NO_DEADLINE);
}

void gr__runtime_task_done(struct gr__runtime *rt)
{
    /* acq_rel: the last exit must see all others' effects before stopping. */
    uint64_t left = atomic_fetch_sub_explicit(&rt->live, 1, memory_order_acq_rel) - 1;
    if (left == 1 && atomic_load(&rt->main_done)) {
        pthread_mutex_lock(&rt->teardown_lock);
        struct gr__wait *w = rt->teardown_wait;
        rt->teardown_wait = NULL;
        pthread_mutex_unlock(&rt->teardown_lock);
        if (w)
            gr__wake(w, 0);
    } else if (left == 0) {
        atomic_store(&rt->stopping, 1);
        gr__worker_wake_all(rt);
    }
}

/* ---------------------------------------------------------------------
 * gr_run
 * --------------------------------------------------------------------- */

struct main_args {
    struct gr__runtime *rt;
    gr_task_fn fn;
    void *arg;
    int result;
};

static int main_trampoline(void *arg)
{
    struct main_args *m = arg;
    m->result = m->fn(m->arg);
    teardown(m->rt, gr__current_task());
    return m->result;
}

struct start_args {
    struct gr__worker *w;
    pthread_barrier_t *ready;
    pthread_barrier_t *go;
    int rc;
    _Atomic int *abort;
};

static void *worker_thread(void *arg)
{
    struct start_args *sa = arg;
    struct gr__worker *w = sa->w;
    sa->rc = gr__worker_init(w);
    pthread_barrier_wait(sa->ready);
    pthread_barrier_wait(sa->go);
    if (!atomic_load(sa->abort))
        gr__worker_run(w);
    gr__worker_destroy(w);
    return NULL;
}

static int resolve_config(gr_config *cfg, const gr_config *in)
{
    *cfg = in ? *in : (gr_config){0};
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (unsigned)n : 1;
    }
    if (cfg->workers > GR_MAX_WORKERS)
        return -EINVAL;
    if (cfg->ring_entries == 0)
        cfg->ring_entries = DEFAULT_RING_ENTRIES;
    if (cfg->ring_entries > 32768)
        return -EINVAL;
    if (cfg->stack_size == 0)
        cfg->stack_size = GR_DEFAULT_STACK_SIZE;
    if (cfg->stack_size < GR_MIN_STACK_SIZE || cfg->cancel_grace_ns < 0)
        return -EINVAL;
    if (cfg->offload_threads > 1024)
        return -EINVAL;
    if (cfg->cancel_grace_ns == 0)
        cfg->cancel_grace_ns = 1000000000;
    return 0;
}

static void init_list(struct gr__task_list *l)
{
    *l = (struct gr__task_list){.lock = GR_SPINLOCK_INIT};
}

static struct gr__runtime *create_runtime(const gr_config *cfg)
{
    struct gr__runtime *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    rt->cfg = *cfg;
    static _Atomic uint16_t runs;
    /* relaxed: any distinct-enough value will do. */
    rt->handle_epoch = (uint16_t)(atomic_fetch_add_explicit(&runs, 1, memory_order_relaxed) * 4099u);
    const char *env = getenv("GREENRING_DEBUG");
    rt->debug = cfg->debug || (env && env[0] == '1');
    rt->nworkers = cfg->workers;
    rt->workers = aligned_alloc(GR_CACHELINE, sizeof(struct gr__worker) * rt->nworkers);
    if (!rt->workers) {
        free(rt);
        return NULL;
    }
    memset(rt->workers, 0, sizeof(struct gr__worker) * rt->nworkers);
    pthread_mutex_init(&rt->global_lock, NULL);
    pthread_mutex_init(&rt->teardown_lock, NULL);
    init_list(&rt->foreign_tasks);
    for (unsigned i = 0; i < rt->nworkers; i++) {
        struct gr__worker *w = &rt->workers[i];
        w->rt = rt;
        w->index = i;
        w->rng = 0x9e3779b9u * (i + 1);
        init_list(&w->tasks);
    }
    return rt;
}

static void destroy_runtime(struct gr__runtime *rt)
{
    pthread_mutex_destroy(&rt->global_lock);
    pthread_mutex_destroy(&rt->teardown_lock);
    free(rt->workers);
    free(rt);
}

/* Starts the threads, waits until all rings are up (or one failed), then
 * lets them run and joins them. */
static int run_workers(struct gr__runtime *rt)
{
    unsigned n = rt->nworkers;
    pthread_barrier_t ready, go;
    _Atomic int abort_run = 0;
    struct start_args *sa = calloc(n, sizeof(*sa));
    pthread_t *threads = calloc(n, sizeof(*threads));
    if (!sa || !threads) {
        free(sa);
        free(threads);
        return -ENOMEM;
    }
    pthread_barrier_init(&ready, NULL, n + 1);
    pthread_barrier_init(&go, NULL, n + 1);
    /* Workers inherit the mask: managed signals are blocked everywhere the
     * runtime runs code, so they only arrive through the signalfd. This
     * thread keeps them blocked until the run ends. */
    sigset_t managed, saved;
    gr__signals_set(rt, &managed);
    pthread_sigmask(SIG_BLOCK, &managed, &saved);
    int rc = 0;
    for (unsigned i = 0; i < n; i++) {
        sa[i] = (struct start_args){.w = &rt->workers[i], .ready = &ready, .go = &go,
                                    .abort = &abort_run};
        if (pthread_create(&threads[i], NULL, worker_thread, &sa[i]) != 0) {
            fprintf(stderr, "greenring: cannot start worker thread %u\n", i);
            abort(); /* the barriers count on every thread */
        }
    }
    pthread_barrier_wait(&ready);
    for (unsigned i = 0; i < n; i++)
        if (sa[i].rc < 0 && rc == 0)
            rc = sa[i].rc;
    if (rc < 0) {
        explain_unavailable(rc, "setting up a worker's ring failed");
        atomic_store(&abort_run, 1);
    }
    pthread_barrier_wait(&go);
    for (unsigned i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&go);
    /* Signals that arrived after the dispatcher stopped would otherwise be
     * delivered with their default action when the mask is restored. */
    struct timespec zero = {0};
    while (!sigisemptyset(&managed) && sigtimedwait(&managed, NULL, &zero) > 0)
        ;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    free(sa);
    free(threads);
    return rc;
}

int gr_run(gr_task_fn main_fn, void *arg, const gr_config *cfg_in)
{
    if (!main_fn)
        return -EINVAL;
    gr_config cfg;
    int rc = resolve_config(&cfg, cfg_in);
    if (rc < 0)
        return rc;
    if (atomic_exchange(&run_active, 1))
        return -EBUSY;
    struct gr__runtime *rt = create_runtime(&cfg);
    if (!rt) {
        rc = -ENOMEM;
        goto out_active;
    }
    if ((rc = probe_io_uring(rt)) < 0)
        goto out_rt;
    if ((rc = gr__stack_pool_init(cfg.stack_size)) < 0)
        goto out_rt;
    gr__task_install_overflow_handler();
    /* A write to a pipe or socket whose reader is gone must be an EPIPE
     * result, not the death of the process (the kernel raises SIGPIPE in
     * the thread that issued the io_uring write). */
    struct sigaction old_pipe, ignore = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, NULL, &old_pipe);
    int restore_pipe = old_pipe.sa_handler == SIG_DFL;
    if (restore_pipe)
        sigaction(SIGPIPE, &ignore, NULL);
    /* release: tasks and foreign spawners acquire the runtime pointer. */
    atomic_store_explicit(&gr__rt, rt, memory_order_release);
    struct main_args m = {.rt = rt, .fn = main_fn, .arg = arg};
    struct gr__task *main_task;
    gr_spawn_opts opts = {.name = "main"};
    if ((rc = gr__task_create(rt, main_trampoline, &m, &opts, 0, &main_task)) < 0)
        goto out_pool;
    rt->main_task = main_task;
    gr__task_schedule_new(rt, main_task);
    if ((rc = gr__signals_start(rt)) < 0)
        goto out_pool;
    gr__offload_configure(cfg.offload_threads);
    gr__debug_start(rt);
    rc = run_workers(rt);
    gr__debug_stop(rt);
    gr__signals_stop(rt);
    /* Every task has finished: nobody waits on the pool. Idle pool threads
     * exit now; one still inside an abandoned function leaves later. */
    gr__offload_shutdown();
    if (rc == 0)
        rc = m.result;
out_pool:
    if (restore_pipe)
        sigaction(SIGPIPE, &old_pipe, NULL);
    atomic_store_explicit(&gr__rt, NULL, memory_order_release);
    gr__stack_pool_destroy();
out_rt:
    destroy_runtime(rt);
out_active:
    atomic_store(&run_active, 0);
    return rc;
}
