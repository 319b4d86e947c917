/* Signals: every signal the run manages is blocked in all runtime threads
 * (they inherit the mask gr_run sets before creating them), so the kernel
 * queues it on a signalfd. A dispatcher task reads that signalfd through
 * io_uring and hands each signal to a task waiting for it, keeps it for a
 * later waiter, or, for SIGINT/SIGTERM under graceful shutdown, cancels the
 * main task. */
#include "signal/signal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/runtime.h"
#include "core/spinlock.h"
#include "core/task.h"
#include "core/wait.h"
#include "greenring.h"

#define MAX_SIGNO 64

struct sig_waiter {
    struct gr__wait wait;
    uint64_t mask;
    struct sig_waiter *next;
    int linked;
};

struct gr__signals {
    int fd;
    uint64_t mask;
    gr__spinlock lock;
    struct sig_waiter *waiters;
    uint64_t pending; /* received, nobody waited: one per signal number */
    int shutdown_signals;
};

static int valid_signo(int signo)
{
    return signo > 0 && signo < MAX_SIGNO && signo != SIGKILL && signo != SIGSTOP;
}

void gr__signals_set(const struct gr__runtime *rt, sigset_t *set)
{
    sigemptyset(set);
    uint64_t mask = rt->cfg.signals;
    if (rt->cfg.graceful_shutdown)
        mask |= GR_SIGNAL(SIGINT) | GR_SIGNAL(SIGTERM);
    for (int signo = 1; signo < MAX_SIGNO; signo++)
        if ((mask & GR_SIGNAL(signo)) && valid_signo(signo))
            sigaddset(set, signo);
}

static struct gr__signals *signals_of(struct gr__runtime *rt)
{
    return rt->signals;
}

/* Locked. Take the first waiter interested in signo. */
static struct sig_waiter *take_waiter(struct gr__signals *s, int signo)
{
    for (struct sig_waiter **p = &s->waiters; *p; p = &(*p)->next) {
        struct sig_waiter *sw = *p;
        if (sw->mask & GR_SIGNAL(signo)) {
            *p = sw->next;
            sw->linked = 0;
            return sw;
        }
    }
    return NULL;
}

static int grace_timer(void *arg)
{
    struct gr__runtime *rt = arg;
    if (gr_sleep(rt->cfg.shutdown_grace_ns) == 0) {
        fprintf(stderr, "greenring: graceful shutdown did not finish in time; exiting\n");
        _exit(1);
    }
    return 0;
}

static void shutdown_signal(struct gr__runtime *rt, int signo)
{
    struct gr__signals *s = signals_of(rt);
    if (s->shutdown_signals++ > 0) {
        fprintf(stderr, "greenring: second %s, exiting now\n", strsignal(signo));
        _exit(128 + signo);
    }
    gr__task_cancel(rt->main_task);
    if (rt->cfg.shutdown_grace_ns > 0)
        gr_spawn(NULL, grace_timer, rt, &(gr_spawn_opts){.name = "shutdown-grace"});
}

static void deliver(struct gr__runtime *rt, int signo)
{
    struct gr__signals *s = signals_of(rt);
    gr__spin_lock(&s->lock);
    struct sig_waiter *sw = take_waiter(s, signo);
    int shutdown = !sw && rt->cfg.graceful_shutdown && (signo == SIGINT || signo == SIGTERM);
    if (!sw && !shutdown)
        s->pending |= GR_SIGNAL(signo);
    gr__spin_unlock(&s->lock);
    if (sw)
        gr__wake(&sw->wait, signo);
    else if (shutdown)
        shutdown_signal(rt, signo);
}

static int dispatcher(void *arg)
{
    struct gr__runtime *rt = arg;
    struct signalfd_siginfo info;
    for (;;) {
        ssize_t n = gr_read(signals_of(rt)->fd, &info, sizeof(info));
        if (n < 0)
            return n == -ECANCELED ? 0 : (int)n;
        if (n == (ssize_t)sizeof(info) && valid_signo((int)info.ssi_signo))
            deliver(rt, (int)info.ssi_signo);
    }
}

int gr__signals_start(struct gr__runtime *rt)
{
    sigset_t set;
    gr__signals_set(rt, &set);
    if (sigisemptyset(&set))
        return 0;
    struct gr__signals *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->fd < 0) {
        free(s);
        return -EMFILE;
    }
    for (int signo = 1; signo < MAX_SIGNO; signo++)
        if (sigismember(&set, signo) == 1)
            s->mask |= GR_SIGNAL(signo);
    rt->signals = s;
    struct gr__task *t;
    gr_spawn_opts opts = {.name = "signals"};
    int rc = gr__task_create(rt, dispatcher, rt, &opts, 0, &t);
    if (rc < 0) {
        gr__signals_stop(rt);
        return rc;
    }
    gr__task_schedule_new(rt, t);
    return 0;
}

void gr__signals_stop(struct gr__runtime *rt)
{
    struct gr__signals *s = signals_of(rt);
    if (!s)
        return;
    close(s->fd);
    free(s);
    rt->signals = NULL;
}

static void waiter_interrupt(struct gr__wait *w, int reason)
{
    struct sig_waiter *sw = GR_CONTAINER_OF(w, struct sig_waiter, wait);
    struct gr__signals *s = signals_of(w->task->rt);
    gr__spin_lock(&s->lock);
    int won = sw->linked;
    if (won) {
        for (struct sig_waiter **p = &s->waiters; *p; p = &(*p)->next) {
            if (*p == sw) {
                *p = sw->next;
                break;
            }
        }
        sw->linked = 0;
    }
    gr__spin_unlock(&s->lock);
    if (won)
        gr__wake(w, reason);
}

int gr_signal_wait(uint64_t mask)
{
    struct gr__task *self;
    int rc = gr__blocking_check(&self);
    if (rc < 0)
        return rc;
    struct gr__signals *s = signals_of(self->rt);
    if (!mask || !s || (mask & ~s->mask))
        return -EINVAL;
    struct sig_waiter sw = {.mask = mask, .linked = 1};
    gr__wait_prepare(&sw.wait, self);
    gr__spin_lock(&s->lock);
    uint64_t ready = s->pending & mask;
    if (ready) {
        int signo = __builtin_ctzll(ready);
        s->pending &= ~GR_SIGNAL(signo);
        gr__spin_unlock(&s->lock);
        return signo;
    }
    sw.next = s->waiters;
    s->waiters = &sw;
    gr__spin_unlock(&s->lock);
    return gr__park(&sw.wait, "signal", waiter_interrupt, GR_NO_DEADLINE);
}
