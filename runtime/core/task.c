#include "core/task.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/runtime.h"
#include "core/wait.h"
#include "core/worker.h"

#define HANDLE_GEN_SHIFT 48
#define HANDLE_ADDR_MASK ((UINT64_C(1) << HANDLE_GEN_SHIFT) - 1)

/* ---------------------------------------------------------------------
 * Handles
 * --------------------------------------------------------------------- */

gr_task *gr__task_handle(struct gr__task *t)
{
    return (gr_task *)((uintptr_t)t | ((uintptr_t)t->gen << HANDLE_GEN_SHIFT));
}

int gr__task_from_handle(gr_task *h, struct gr__task **out)
{
    uintptr_t v = (uintptr_t)h;
    struct gr__task *t = (struct gr__task *)(v & HANDLE_ADDR_MASK);
    *out = NULL;
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    if (!rt)
        return -EPERM;
    char *top;
    if (!t || !gr__stack_slot_top(t, &top) || gr__task_at(top) != (char *)t)
        return -EINVAL; /* not a task of this runtime (or of a past run) */
    if (t->magic != GR_TASK_MAGIC || t->rt != rt)
        return -EINVAL;
    if (t->gen != (uint16_t)(v >> HANDLE_GEN_SHIFT))
        return -ESRCH;
    *out = t;
    return 0;
}

struct gr__task *gr__current_task(void)
{
    struct gr__worker *w = gr__worker_self();
    return w ? w->current : NULL;
}

gr_task *gr_self(void)
{
    struct gr__task *t = gr__current_task();
    return t ? gr__task_handle(t) : NULL;
}

/* ---------------------------------------------------------------------
 * Stack overflow reports
 * --------------------------------------------------------------------- */

static struct sigaction previous_segv;

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_u64(char *buf, size_t at, size_t cap, uint64_t v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n && at + 1 < cap)
        buf[at++] = digits[--n];
    return at;
}

/* Async-signal-safe: no stdio, no allocation. */
void gr__task_report_overflow(struct gr__task *t)
{
    char msg[160];
    size_t n = put_str(msg, 0, sizeof(msg), "greenring: task ");
    if (t->name[0]) {
        n = put_str(msg, n, sizeof(msg), t->name);
    } else {
        n = put_str(msg, n, sizeof(msg), "task-");
        n = put_u64(msg, n, sizeof(msg), t->id);
    }
    n = put_str(msg, n, sizeof(msg), " overflowed its ");
    n = put_u64(msg, n, sizeof(msg), t->stack.size);
    n = put_str(msg, n, sizeof(msg), "-byte stack\n");
    ssize_t rc = write(STDERR_FILENO, msg, n);
    (void)rc;
    abort();
}

static void on_segv(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)uctx;
    struct gr__stack s;
    if (gr__stack_guard_hit(info->si_addr, &s))
        gr__task_report_overflow((struct gr__task *)(void *)gr__task_at(s.top));
    /* Not a guard page: put the previous disposition back and let the
     * faulting instruction run again (default action: core dump). */
    sigaction(SIGSEGV, &previous_segv, NULL);
}

void gr__task_install_overflow_handler(void)
{
    static _Atomic int installed;
    if (atomic_exchange(&installed, 1))
        return;
    struct sigaction sa = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
}

/* ---------------------------------------------------------------------
 * Life cycle
 * --------------------------------------------------------------------- */

char *gr__task_at(char *stack_top)
{
    uintptr_t at = ((uintptr_t)stack_top - sizeof(struct gr__task)) & ~(uintptr_t)(GR_CACHELINE - 1);
    return (char *)at;
}

static void copy_name(struct gr__task *t, const char *name)
{
    size_t n = 0;
    if (name)
        for (; name[n] && n + 1 < sizeof(t->name); n++)
            t->name[n] = name[n];
    t->name[n] = '\0';
}

/* Ids are unique without a shared counter: list k (0 = foreign threads,
 * worker i = i + 1) hands out seq * (nworkers + 1) + k. */
static void list_add(struct gr__runtime *rt, struct gr__task_list *l, struct gr__task *t)
{
    t->list = l;
    uint64_t k = l == &rt->foreign_tasks ? 0 : GR_CONTAINER_OF(l, struct gr__worker, tasks)->index + 1u;
    gr__spin_lock(&l->lock);
    t->id = ++l->next_seq * (rt->nworkers + 1) + k;
    t->list_prev = NULL;
    t->list_next = l->head;
    if (l->head)
        l->head->list_prev = t;
    l->head = t;
    gr__spin_unlock(&l->lock);
}

static void list_remove(struct gr__task *t)
{
    struct gr__task_list *l = t->list;
    gr__spin_lock(&l->lock);
    if (t->list_prev)
        t->list_prev->list_next = t->list_next;
    else
        l->head = t->list_next;
    if (t->list_next)
        t->list_next->list_prev = t->list_prev;
    gr__spin_unlock(&l->lock);
}

static struct gr__task *init_task(struct gr__runtime *rt, const struct gr__stack *st,
                                  gr_task_fn fn, void *arg, const char *name, int joinable)
{
    struct gr__task *t = (struct gr__task *)(void *)gr__task_at(st->top);
    /* The generation survives in the slot between uses. A fresh slot starts
     * from a per-run value, so a handle kept from an earlier gr_run whose
     * stack happens to sit at the same address is still seen as stale. */
    uint16_t gen = t->magic == GR_TASK_MAGIC ? t->gen : rt->handle_epoch;
    memset(t, 0, sizeof(*t));
    t->magic = GR_TASK_MAGIC;
    t->gen = gen;
    t->rt = rt;
    t->fn = fn;
    t->arg = arg;
    t->stack = *st;
    /* relaxed: nobody else sees the task yet; publication is the queue
     * push. */
    atomic_store_explicit(&t->refs, joinable ? 2u : 1u, memory_order_relaxed);
    uint32_t flags = joinable ? 0u : GR_TASK_DETACHED;
    if (atomic_load(&rt->main_done))
        flags |= GR_TASK_CANCELLED; /* teardown: late spawns start cancelled */
    atomic_store_explicit(&t->flags, flags, memory_order_relaxed);
    t->wake_msg = (struct gr__msg){.task = t, .kind = GR_MSG_WAKE};
    t->poke_msg = (struct gr__msg){.task = t, .kind = GR_MSG_POKE};
    copy_name(t, name);
    t->ctx = gr__ctx_make(t, gr__task_entry);
#ifdef GR_FIBER_TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    return t;
}

int gr__task_create(struct gr__runtime *rt, gr_task_fn fn, void *arg,
                    const gr_spawn_opts *opts, int joinable, struct gr__task **out)
{
    size_t size;
    long rc = gr__stack_round_size(opts ? opts->stack_size : 0, &size);
    if (rc < 0)
        return (int)rc;
    struct gr__worker *w = gr__worker_self();
    struct gr__stack st;
    rc = gr__stack_alloc(w ? &w->stacks : NULL, size, &st);
    if (rc < 0)
        return (int)rc;
    struct gr__task *t = init_task(rt, &st, fn, arg, opts ? opts->name : NULL, joinable);
    /* relaxed: a counter; teardown reads it under its lock after the
     * final decrement's acq_rel. */
    atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
    list_add(rt, w ? &w->tasks : &rt->foreign_tasks, t);
    *out = t;
    return 0;
}

void gr__task_schedule_new(struct gr__runtime *rt, struct gr__task *t)
{
    struct gr__worker *w = gr__worker_self();
    if (w) {
        gr__worker_push_spawned(w, t);
        return;
    }
    atomic_store_explicit(&t->state, GR_TASK_RUNNABLE, memory_order_relaxed);
    gr__global_push(rt, t, t, 1);
    gr__worker_wake_idle(rt, NULL);
}

int gr_spawn(gr_task **task, gr_task_fn fn, void *arg, const gr_spawn_opts *opts)
{
    if (task)
        *task = NULL;
    if (!fn)
        return -EINVAL;
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    if (!rt)
        return -EPERM;
    struct gr__task *t;
    int rc = gr__task_create(rt, fn, arg, opts, task != NULL, &t);
    if (rc < 0)
        return rc;
    if (task)
        *task = gr__task_handle(t);
    gr__task_schedule_new(rt, t);
    return 0;
}

static void free_task(struct gr__worker *w, struct gr__task *t)
{
#ifdef GR_FIBER_TSAN
    __tsan_destroy_fiber(t->tsan_fiber);
#endif
    /* The task leaves the registry only now: a finished task whose handle
     * was never joined or detached stays visible to the debug report. */
    list_remove(t);
    struct gr__stack st = t->stack;
    gr__stack_free(w ? &w->stacks : NULL, &st);
}

void gr__task_unref(struct gr__worker *w, struct gr__task *t)
{
    /* acq_rel: the last owner must see every other owner's writes before
     * the stack is reused. */
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        free_task(w, t);
}

static GR_NORETURN void task_exit(struct gr__task *t, int result)
{
    t->result = result;
    atomic_store_explicit(&t->state, GR_TASK_DONE, memory_order_release);
    /* Callbacks first: a joiner resumes after they have run. */
    gr__task_run_done_callbacks(t);
    /* acq_rel: publishes the result to the joiner (release) and reads its
     * wait record (acquire). */
    uintptr_t joiner = atomic_exchange_explicit(&t->join, GR_JOIN_DONE, memory_order_acq_rel);
    if (joiner > GR_JOIN_DONE)
        gr__wake((struct gr__wait *)joiner, 0);
    gr__runtime_task_done(t->rt);
    gr__worker_switch_out(gr__worker_self(), GR_AFTER_EXIT);
    __builtin_unreachable();
}

void gr__task_entry(void *arg)
{
    struct gr__worker *w = arg;
#ifdef GR_FIBER_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    gr__worker_finish_switch(w);
    struct gr__task *t = w->current;
    task_exit(t, t->fn(t->arg));
}

/* ---------------------------------------------------------------------
 * Join, detach, cancel
 * --------------------------------------------------------------------- */

/* The handle is gone (joined or detached): bump the generation at once,
 * so the old handle is stale (-ESRCH) even while the task is still
 * finishing, then drop the handle's reference. */
static void release_handle(struct gr__task *t)
{
    t->gen++;
    gr__task_unref(gr__worker_self(), t);
}

struct join_wait {
    struct gr__wait wait;
    struct gr__task *target;
};

static void join_interrupt(struct gr__wait *w, int reason)
{
    struct join_wait *jw = GR_CONTAINER_OF(w, struct join_wait, wait);
    uintptr_t expected = (uintptr_t)w;
    /* acquire on success: nothing to read; the CAS only decides who wins. */
    if (atomic_compare_exchange_strong_explicit(&jw->target->join, &expected, GR_JOIN_NONE,
                                                memory_order_acquire, memory_order_relaxed))
        gr__wake(w, reason);
}

/* Park until t has finished. 0, or the interrupt. */
int gr__task_wait_done(struct gr__task *self, struct gr__task *t, const char *reason)
{
    struct join_wait jw = {.target = t};
    gr__wait_prepare(&jw.wait, self);
    uintptr_t expected = GR_JOIN_NONE;
    /* release: publishes the prepared wait record to the exiting task. */
    if (!atomic_compare_exchange_strong_explicit(&t->join, &expected, (uintptr_t)&jw.wait,
                                                 memory_order_acq_rel, memory_order_acquire))
        return expected == GR_JOIN_DONE ? 0 : -EINVAL;
    return gr__park(&jw.wait, reason, join_interrupt, GR_NO_DEADLINE);
}

int gr_join(gr_task *handle)
{
    struct gr__task *t, *self;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    if (!(self = gr__current_task()))
        return -EPERM;
    if (t == self)
        return -EDEADLK;
    uint32_t flags = atomic_fetch_or(&t->flags, GR_TASK_JOINED);
    if (flags & (GR_TASK_DETACHED | GR_TASK_JOINED)) {
        if (!(flags & GR_TASK_JOINED))
            atomic_fetch_and(&t->flags, ~GR_TASK_JOINED);
        return -EINVAL;
    }
    /* Only waiting is a cancellation point: a finished task is joined
     * even by a cancelled caller (as awaiting a done asyncio task). acquire:
     * pairs with the exchange in task_exit, so the result is visible. */
    rc = 0;
    if (atomic_load_explicit(&t->join, memory_order_acquire) != GR_JOIN_DONE) {
        rc = gr__blocking_check(&self);
        if (rc == 0)
            rc = gr__task_wait_done(self, t, "join");
    }
    if (rc < 0) {
        atomic_fetch_and(&t->flags, ~GR_TASK_JOINED);
        return rc;
    }
    int result = t->result;
    release_handle(t);
    return result;
}

int gr_detach(gr_task *handle)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    uint32_t flags = atomic_fetch_or(&t->flags, GR_TASK_DETACHED);
    if (flags & (GR_TASK_DETACHED | GR_TASK_JOINED)) {
        if (!(flags & GR_TASK_DETACHED))
            atomic_fetch_and(&t->flags, ~GR_TASK_DETACHED);
        return -EINVAL;
    }
    release_handle(t);
    return 0;
}

void gr__task_cancel(struct gr__task *t)
{
    /* seq_cst flag store, then seq_cst state load: see gr__park. */
    if (!(atomic_fetch_or(&t->flags, GR_TASK_CANCELLED) & GR_TASK_CANCELLED))
        /* relaxed: read by the debug watchdog only. */
        atomic_store_explicit(&t->cancelled_at, gr__now_coarse(), memory_order_relaxed);
    if (atomic_load(&t->state) != GR_TASK_PARKED)
        return; /* it sees the flag at its next blocking call */
    struct gr__worker *owner = atomic_load_explicit(&t->worker, memory_order_relaxed);
    struct gr__worker *self = gr__worker_self();
    if (owner == self) {
        gr__worker_check_interrupts(self, t);
        return;
    }
    if (atomic_exchange(&t->poke_queued, 1))
        return; /* a poke is on its way */
    /* relaxed: the caller holds a reference (handle), so refs > 0. */
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    gr__worker_post(owner, &t->poke_msg);
}

int gr_cancel(gr_task *handle)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    gr__task_cancel(t);
    return 0;
}

/* ---------------------------------------------------------------------
 * Names
 * --------------------------------------------------------------------- */

int gr_task_name(gr_task *handle, char *buf, size_t size)
{
    struct gr__task *t;
    int rc = gr__task_from_handle(handle, &t);
    if (rc < 0)
        return rc;
    if (!buf || size == 0)
        return -EINVAL;
    return gr__task_copy_name(t, buf, size);
}

int gr__task_copy_name(struct gr__task *t, char *buf, size_t size)
{
    char unnamed[GR_TASK_NAME_MAX];
    const char *name = t->name;
    if (!name[0]) {
        size_t n = put_str(unnamed, 0, sizeof(unnamed), "task-");
        n = put_u64(unnamed, n, sizeof(unnamed), t->id);
        unnamed[n] = '\0';
        name = unnamed;
    }
    size_t len = strlen(name);
    size_t copy = len < size - 1 ? len : size - 1;
    memcpy(buf, name, copy);
    buf[copy] = '\0';
    return (int)len;
}

int gr_task_set_name(gr_task *handle, const char *name)
{
    struct gr__task *t = gr__current_task();
    if (handle) {
        int rc = gr__task_from_handle(handle, &t);
        if (rc < 0)
            return rc;
    }
    if (!t)
        return -EPERM;
    copy_name(t, name);
    return 0;
}
