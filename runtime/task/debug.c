/* Debug mode: the watchdog thread, the SIGQUIT dump, and the end-of-run
 * report of tasks that were never joined or detached. */
#include "task/debug.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "core/runtime.h"
#include "core/task.h"
#include "greenring.h"

#define WATCHDOG_PERIOD_NS 50000000 /* 50 ms: half the 100 ms budget */
#define HOLD_LIMIT_NS 100000000
#define GR_TASK_REPORTED 8u

_Atomic int gr__dump_requested;

void gr__debug_dump_now(void)
{
    if (atomic_exchange(&gr__dump_requested, 0))
        gr_dump_tasks(stderr);
}

static void on_sigquit(int sig)
{
    (void)sig;
    atomic_store(&gr__dump_requested, 1);
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_relaxed);
    if (rt) {
        /* Wake worker 0 so the dump happens even when all are idle. */
        uint64_t one = 1;
        ssize_t rc = write(rt->workers[0].eventfd, &one, sizeof(one));
        (void)rc;
    }
}

struct held {
    uint64_t switches;
    int64_t since;
    int reported;
};

static void report_cancelled(struct gr__task *t, void *arg)
{
    struct gr__runtime *rt = arg;
    uint32_t flags = atomic_load(&t->flags);
    int64_t at = atomic_load_explicit(&t->cancelled_at, memory_order_relaxed);
    if (!(flags & GR_TASK_CANCELLED) || (flags & GR_TASK_REPORTED) ||
        atomic_load(&t->state) == GR_TASK_DONE || gr__now_coarse() - at < rt->cfg.cancel_grace_ns)
        return;
    atomic_fetch_or(&t->flags, GR_TASK_REPORTED);
    char name[GR_TASK_NAME_MAX];
    gr__task_copy_name(t, name, sizeof(name));
    fprintf(stderr, "greenring debug: task %s is still running %lld ms after it was cancelled\n",
            name, (long long)((gr__now_coarse() - at) / 1000000));
}

static void check_worker(struct gr__worker *w, struct held *h, int64_t now)
{
    /* relaxed: samples; a stale value only delays a report. */
    uint64_t switches = atomic_load_explicit(&w->switches, memory_order_relaxed);
    struct gr__task *t = atomic_load_explicit(&w->running, memory_order_relaxed);
    if (switches != h->switches || !t) {
        *h = (struct held){.switches = switches, .since = now};
        return;
    }
    if (h->reported || now - h->since < HOLD_LIMIT_NS)
        return;
    h->reported = 1;
    char name[GR_TASK_NAME_MAX];
    gr__task_copy_name(t, name, sizeof(name));
    const char *reason = atomic_load_explicit(&t->wait_reason, memory_order_relaxed);
    const char *state = reason ? reason : "computing";
    fprintf(stderr,
            "greenring debug: task %s has held worker %u for %lld ms without reaching a blocking "
            "call (%s)\n",
            name, w->index, (long long)((now - h->since) / 1000000), state);
}

static void *watchdog_main(void *arg)
{
    struct gr__runtime *rt = arg;
    struct held *held = calloc(rt->nworkers, sizeof(*held));
    pthread_mutex_lock(&rt->watchdog_lock);
    while (!rt->watchdog_stop && held) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += WATCHDOG_PERIOD_NS;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&rt->watchdog_cond, &rt->watchdog_lock, &ts);
        if (rt->watchdog_stop)
            break;
        pthread_mutex_unlock(&rt->watchdog_lock);
        int64_t now = gr_now();
        for (unsigned i = 0; i < rt->nworkers; i++)
            check_worker(&rt->workers[i], &held[i], now);
        gr__runtime_foreach_task(rt, report_cancelled, rt);
        pthread_mutex_lock(&rt->watchdog_lock);
    }
    pthread_mutex_unlock(&rt->watchdog_lock);
    free(held);
    return NULL;
}

int gr__debug_start(struct gr__runtime *rt)
{
    if (rt->cfg.dump_on_sigquit) {
        struct sigaction sa = {.sa_handler = on_sigquit, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGQUIT, &sa, NULL);
    }
    if (!rt->debug)
        return 0;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->watchdog_cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&rt->watchdog_lock, NULL);
    rt->watchdog_stop = 0;
    rt->watchdog_running = pthread_create(&rt->watchdog, NULL, watchdog_main, rt) == 0;
    return rt->watchdog_running ? 0 : -EAGAIN;
}

static void report_unjoined(struct gr__task *t, void *arg)
{
    int *count = arg;
    if (atomic_load(&t->flags) & GR_TASK_DETACHED)
        return;
    char name[GR_TASK_NAME_MAX];
    gr__task_copy_name(t, name, sizeof(name));
    fprintf(stderr, "greenring debug: task %s finished but was never joined or detached\n", name);
    (*count)++;
}

void gr__debug_stop(struct gr__runtime *rt)
{
    if (rt->cfg.dump_on_sigquit)
        signal(SIGQUIT, SIG_DFL);
    if (!rt->debug)
        return;
    if (rt->watchdog_running) {
        pthread_mutex_lock(&rt->watchdog_lock);
        rt->watchdog_stop = 1;
        pthread_cond_signal(&rt->watchdog_cond);
        pthread_mutex_unlock(&rt->watchdog_lock);
        pthread_join(rt->watchdog, NULL);
    }
    pthread_cond_destroy(&rt->watchdog_cond);
    pthread_mutex_destroy(&rt->watchdog_lock);
    int count = 0;
    gr__runtime_foreach_task(rt, report_unjoined, &count);
}
