/* Introspection: live tasks, the task dump, runtime counters. */
#include <errno.h>
#include <string.h>

#include "core/runtime.h"
#include "core/task.h"
#include "core/wait.h"
#include "greenring.h"

static const char *state_name(int state)
{
    switch (state) {
    case GR_TASK_RUNNABLE:
        return "runnable";
    case GR_TASK_RUNNING:
        return "running";
    case GR_TASK_PARKED:
        return "parked";
    default:
        return "done";
    }
}

/* Reads fields other threads may be changing: the snapshot can be a moment
 * old, which is what a dump is. */
static void describe(struct gr__task *t, gr_task_info *info, int64_t now)
{
    memset(info, 0, sizeof(*info));
    info->id = t->id;
    gr__task_copy_name(t, info->name, sizeof(info->name));
    /* relaxed: a snapshot. */
    int state = atomic_load_explicit(&t->state, memory_order_relaxed);
    info->state = state_name(state);
    struct gr__worker *w = atomic_load_explicit(&t->worker, memory_order_relaxed);
    info->worker = w ? (int)w->index : -1;
    info->cancelled =
        (atomic_load_explicit(&t->flags, memory_order_relaxed) & GR_TASK_CANCELLED) != 0;
    if (state == GR_TASK_PARKED) {
        const char *reason = atomic_load_explicit(&t->wait_reason, memory_order_relaxed);
        info->wait_reason = reason ? reason : "parking";
        info->parked_ns = now - atomic_load_explicit(&t->parked_at, memory_order_relaxed);
    }
}

struct visit {
    void (*fn)(const gr_task_info *info, void *arg);
    void *arg;
    int count;
    int64_t now;
};

static void visit_one(struct gr__task *t, void *arg)
{
    struct visit *v = arg;
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == GR_TASK_DONE)
        return; /* finished, only waiting for its handle to be released */
    gr_task_info info;
    describe(t, &info, v->now);
    v->fn(&info, v->arg);
    v->count++;
}

int gr_tasks_foreach(void (*fn)(const gr_task_info *info, void *arg), void *arg)
{
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    if (!rt)
        return -EPERM;
    if (!fn)
        return -EINVAL;
    struct visit v = {.fn = fn, .arg = arg, .now = gr__now_coarse()};
    gr__runtime_foreach_task(rt, visit_one, &v);
    return v.count;
}

static void print_one(const gr_task_info *info, void *arg)
{
    FILE *out = arg;
    fprintf(out, "task %llu \"%s\" %s", (unsigned long long)info->id, info->name, info->state);
    if (info->worker >= 0)
        fprintf(out, " on worker %d", info->worker);
    if (info->wait_reason)
        fprintf(out, " [%s, %lld ms]", info->wait_reason,
                (long long)(info->parked_ns / 1000000));
    fprintf(out, "%s\n", info->cancelled ? " (cancelled)" : "");
}

int gr_dump_tasks(FILE *out)
{
    if (!out)
        return -EINVAL;
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    if (!rt)
        return -EPERM;
    fprintf(out, "greenring: %llu live tasks on %u workers\n",
            (unsigned long long)atomic_load(&rt->live), rt->nworkers);
    int n = gr_tasks_foreach(print_one, out);
    fflush(out);
    return n;
}

int gr_stats(gr_runtime_stats *out)
{
    if (!out)
        return -EINVAL;
    struct gr__runtime *rt = atomic_load_explicit(&gr__rt, memory_order_acquire);
    if (!rt)
        return -EPERM;
    struct gr__stack_counters c;
    gr__stack_counters(&c);
    out->live_tasks = atomic_load(&rt->live);
    out->stacks_in_use = c.in_use;
    out->stacks_pooled = c.pooled;
    out->stack_bytes_mapped = c.mapped;
    return 0;
}
