/* greenring task-control benchmarks: cancel_join, group_10k, timeout_scope,
 * gather_1k.
 *
 * As in bench_core.c, each benchmark calls gr_run inside the benchmark
 * function and runs the benchmark loop inside the main task (one thread at
 * a time touches the benchmark state). Times are wall-clock.
 *
 * Targets:
 *   timeout_scope   <= 20 ns per enter+leave pair (issue 3)
 *
 * Counters:
 *   cancel_join     spawn_yield_join_ns: the same loop without the read and
 *                   the cancel (a task that returns at once), measured
 *                   inline; the difference is the cost of parking on the
 *                   ring, ASYNC_CANCEL and the cancelled completion.
 *   timeout_scope   deadline_pair_ns: gr_scope_enter_deadline + leave (no
 *                   clock read); clock_ns: one gr_now(), for comparison.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "greenring.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
/* Inline baselines run this long per benchmark call. */
#define BASELINE_BUDGET_NS (20 * NS_PER_MS)

static int trivial_task(void *arg)
{
    (void)arg;
    return 0;
}

/* =====================================================================
 * cancel_join: workers=1. Spawn a task that parks in gr_read on an empty
 * pipe (the yield lets it run up to the park), cancel it, join it.
 * One iteration = spawn + park + cancel + join.
 * ===================================================================== */

struct cancel_join {
    gr_bench_state *st;
    int p[2];
    int64_t entered; /* readers that reached their gr_read */
    double baseline_ns;
};

static int parked_reader(void *arg)
{
    struct cancel_join *c = arg;
    char b;
    c->entered++; /* one worker: no other thread touches it */
    return (int)gr_read(c->p[0], &b, 1);
}

/* spawn + yield + join of a task that returns at once, ns per loop. */
static double spawn_yield_join_ns(int64_t budget_ns)
{
    int64_t n = 0, t0 = gr_bench_now_ns(), t1;
    do {
        for (int i = 0; i < 1000; i++) {
            gr_task *t;
            if (gr_spawn(&t, trivial_task, NULL, NULL) < 0)
                return -1;
            gr_yield();
            if (gr_join(t) != 0)
                return -1;
        }
        n += 1000;
        t1 = gr_bench_now_ns();
    } while (t1 - t0 < budget_ns);
    return (double)(t1 - t0) / (double)n;
}

static int cancel_join_main(void *arg)
{
    struct cancel_join *c = arg;
    c->baseline_ns = spawn_yield_join_ns(BASELINE_BUDGET_NS);
    c->entered = 0;
    while (gr_bench_keep_running(c->st)) {
        gr_task *t;
        int rc = gr_spawn(&t, parked_reader, c, NULL);
        if (rc < 0) {
            gr_bench_error_rc(c->st, "gr_spawn", rc);
            continue;
        }
        gr_yield(); /* the reader runs until it parks in the ring */
        gr_cancel(t);
        if ((rc = gr_join(t)) != -ECANCELED)
            gr_bench_error_rc(c->st, "cancelled reader returned", rc);
    }
    return 0;
}

static void bm_cancel_join(gr_bench_state *st)
{
    struct cancel_join c = {.st = st};
    if (pipe(c.p) < 0) {
        gr_bench_error_rc(st, "pipe", -errno);
        return;
    }
    if (gr_bench_run_runtime(st, cancel_join_main, &c, 1) == 0) {
        if (c.entered != gr_bench_iterations(st))
            gr_bench_error(st, "a reader did not reach its gr_read before the cancel");
        gr_bench_counter(st, "spawn_yield_join_ns", c.baseline_ns);
    }
    close(c.p[0]);
    close(c.p[1]);
}

/* =====================================================================
 * group_10k: all workers. Create a group, spawn 10,000 trivial tasks into
 * it, wait for it, destroy it. One iteration = one group.
 * ===================================================================== */

#define GROUP_TASKS 10000

struct simple {
    gr_bench_state *st;
};

static int group_main(void *arg)
{
    struct simple *s = arg;
    while (gr_bench_keep_running(s->st)) {
        gr_group *g;
        int rc = gr_group_create(&g);
        if (rc < 0) {
            gr_bench_error_rc(s->st, "gr_group_create", rc);
            continue;
        }
        for (int i = 0; i < GROUP_TASKS && rc == 0; i++)
            rc = gr_group_spawn(g, trivial_task, NULL, NULL);
        int wrc = gr_group_wait(g);
        if (rc < 0 || wrc < 0)
            gr_bench_error_rc(s->st, "group spawn/wait", rc < 0 ? rc : wrc);
        gr_group_destroy(g);
    }
    return 0;
}

static void bm_group_10k(gr_bench_state *st)
{
    struct simple s = {.st = st};
    if (gr_bench_run_runtime(st, group_main, &s, 0) == 0)
        gr_bench_set_items(st, gr_bench_iterations(st) * GROUP_TASKS);
}

/* =====================================================================
 * timeout_scope: workers=1. gr_scope_enter_timeout (a deadline one second
 * out, never reached) + gr_scope_leave, in the main task.
 * One iteration = one enter+leave pair.
 * ===================================================================== */

#define SCOPE_BATCH 1000

struct scope_bench {
    gr_bench_state *st;
    double deadline_pair_ns, clock_ns;
    int bad;
};

static double deadline_pair_ns(int64_t budget_ns, int *bad)
{
    gr_scope s;
    int64_t n = 0, t0 = gr_bench_now_ns(), t1;
    do {
        for (int i = 0; i < SCOPE_BATCH; i++) {
            gr_scope_enter_deadline(&s, GR_NO_DEADLINE);
            *bad |= gr_scope_leave(&s) != 0;
        }
        n += SCOPE_BATCH;
        t1 = gr_bench_now_ns();
    } while (t1 - t0 < budget_ns);
    return (double)(t1 - t0) / (double)n;
}

static double clock_ns(int64_t budget_ns)
{
    volatile int64_t sink = 0;
    int64_t n = 0, t0 = gr_bench_now_ns(), t1;
    do {
        for (int i = 0; i < SCOPE_BATCH; i++)
            sink += gr_now();
        n += SCOPE_BATCH;
        t1 = gr_bench_now_ns();
    } while (t1 - t0 < budget_ns);
    (void)sink;
    return (double)(t1 - t0) / (double)n;
}

static int scope_main(void *arg)
{
    struct scope_bench *b = arg;
    b->deadline_pair_ns = deadline_pair_ns(BASELINE_BUDGET_NS, &b->bad);
    b->clock_ns = clock_ns(BASELINE_BUDGET_NS);
    gr_scope s;
    int bad = 0;
    while (gr_bench_keep_running_batch(b->st, SCOPE_BATCH))
        for (int i = 0; i < SCOPE_BATCH; i++) {
            gr_scope_enter_timeout(&s, NS_PER_S);
            bad |= gr_scope_leave(&s) != 0;
        }
    b->bad |= bad;
    return 0;
}

static void bm_timeout_scope(gr_bench_state *st)
{
    struct scope_bench b = {.st = st};
    if (gr_bench_run_runtime(st, scope_main, &b, 1) != 0)
        return;
    if (b.bad) {
        gr_bench_error(st, "a scope that must not fire reported that it did (or failed)");
        return;
    }
    gr_bench_counter(st, "deadline_pair_ns", b.deadline_pair_ns);
    gr_bench_counter(st, "clock_ns", b.clock_ns);
}

/* =====================================================================
 * gather_1k: all workers. Spawn 1000 trivial tasks and gr_gather them
 * (COLLECT_ALL). One iteration = one batch of 1000.
 * ===================================================================== */

#define GATHER_TASKS 1000

struct gather_bench {
    gr_bench_state *st;
    gr_task *tasks[GATHER_TASKS];
    int results[GATHER_TASKS];
};

static int gather_main(void *arg)
{
    struct gather_bench *g = arg;
    while (gr_bench_keep_running(g->st)) {
        size_t n = 0;
        int rc = 0;
        for (; n < GATHER_TASKS; n++)
            if ((rc = gr_spawn(&g->tasks[n], trivial_task, NULL, NULL)) < 0)
                break;
        int grc = gr_gather(g->tasks, n, g->results, GR_GATHER_COLLECT_ALL);
        if (rc < 0 || grc < 0)
            gr_bench_error_rc(g->st, "spawn/gather", rc < 0 ? rc : grc);
    }
    return 0;
}

static void bm_gather_1k(gr_bench_state *st)
{
    struct gather_bench *g = calloc(1, sizeof(*g));
    if (!g) {
        gr_bench_error(st, "out of memory");
        return;
    }
    g->st = st;
    if (gr_bench_run_runtime(st, gather_main, g, 0) == 0)
        gr_bench_set_items(st, gr_bench_iterations(st) * GATHER_TASKS);
    free(g);
}

GR_BENCH_CONSTRUCTOR(register_task_benchmarks)
{
    gr_bench_register("cancel_join", bm_cancel_join, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("group_10k", bm_group_10k, &(gr_bench_opts){.unit = GR_BENCH_US});
    gr_bench_register("timeout_scope", bm_timeout_scope, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("gather_1k", bm_gather_1k, &(gr_bench_opts){.unit = GR_BENCH_US});
}
