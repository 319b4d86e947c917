/* greenring core benchmarks: context switch, yield, spawn/join, skynet,
 * sleep storm, cross-worker wake-up, NOP round trip through the ring, and
 * (after all benchmarks) the resident memory of a parked task.
 *
 * Every runtime benchmark calls gr_run inside the benchmark function and runs
 * the benchmark loop inside the main task: the loop may move between worker
 * threads, but only one thread touches the benchmark state at a time.
 * Times are wall-clock; ratios against the raw baselines are measured inline
 * in the same function call, so each ratio comes from one run (run-to-run
 * spread on this VM is often 20%, see /work/shared/BENCHMARKING.md).
 *
 * The *_cpu ratios divide thread CPU times instead (workers=1, so the loop
 * and its baseline run on one thread): when other processes share the two
 * vCPUs, wall time includes time spent descheduled and only they are stable.
 *
 * Targets (a counter or the Time column against them):
 *   yield_pingpong     vs_raw_round_trip <= 2.5
 *   spawn_join         <= 100 ns
 *   skynet_1m          <= 300 ms        (warm: pooled stacks; cold_ms apart)
 *   nop_batch          vs_raw <= 1.5
 *   parked task RSS    <= 8192 bytes   (printed after the table)
 */
#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "arch/context.h"
#include "bench.h"
#include "greenring.h"

#define NS_PER_MS INT64_C(1000000)
#define NS_PER_S INT64_C(1000000000)
/* Inline baselines (for the ratios) run this long per benchmark call. */
#define BASELINE_BUDGET_NS (20 * NS_PER_MS)

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Wall-clock and calling-thread CPU time. The CPU figures make ratios
 * robust when other processes share the two vCPUs (wall time then includes
 * time spent descheduled); they are only meaningful for code that stays on
 * one thread (workers=1, or a raw loop). */
struct stamp {
    int64_t wall, cpu;
};

static struct stamp stamp_now(void)
{
    return (struct stamp){.wall = gr_bench_now_ns(), .cpu = thread_cpu_ns()};
}

/* Per-operation cost between two stamps. */
struct cost {
    double wall, cpu;
};

static struct cost cost_per(struct stamp a, struct stamp b, int64_t n)
{
    if (n <= 0)
        return (struct cost){0, 0};
    return (struct cost){(double)(b.wall - a.wall) / (double)n, (double)(b.cpu - a.cpu) / (double)n};
}

/* The mean of two baseline measurements (before and after the loop). */
static struct cost cost_mean(struct cost a, struct cost b)
{
    return (struct cost){(a.wall + b.wall) / 2, (a.cpu + b.cpu) / 2};
}

/* A field of /proc/self/status in kB, or -1. */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    size_t flen = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kb = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* =====================================================================
 * raw_switch: two contexts, gr__ctx_switch only (no scheduler). The floor.
 * ===================================================================== */

#define RAW_STACK_SIZE ((size_t)64 * 1024)
#define RAW_BATCH 1000 /* switches per gr_bench_keep_running_batch call */

struct raw_pair {
    gr__ctx m; /* the benchmark's own context */
    gr__ctx b; /* the bouncer */
    void *stack;
};

static void raw_bounce(void *arg)
{
    struct raw_pair *p = arg;
    for (;;)
        gr__ctx_switch(&p->b, p->m, p);
}

/* Map the bouncer's stack and run it once up to its first switch back. */
static int raw_pair_start(struct raw_pair *p)
{
    p->stack = mmap(NULL, RAW_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                    0);
    if (p->stack == MAP_FAILED)
        return -errno;
    p->b = gr__ctx_make((char *)p->stack + RAW_STACK_SIZE, raw_bounce);
    gr__ctx_switch(&p->m, p->b, p);
    return 0;
}

/* The bouncer is left suspended for good: its stack holds nothing that
 * needs cleaning up. */
static void raw_pair_stop(struct raw_pair *p)
{
    munmap(p->stack, RAW_STACK_SIZE);
}

/* Cost of one switch, measured for about `budget_ns` on the calling thread;
 * a negative wall time is an errno. */
static struct cost raw_switch_cost(int64_t budget_ns)
{
    struct raw_pair p;
    int rc = raw_pair_start(&p);
    if (rc < 0)
        return (struct cost){rc, rc};
    int64_t round_trips = 0;
    struct stamp t0 = stamp_now(), t1;
    do {
        for (int i = 0; i < 10000; i++)
            gr__ctx_switch(&p.m, p.b, &p);
        round_trips += 10000;
        t1 = stamp_now();
    } while (t1.wall - t0.wall < budget_ns);
    raw_pair_stop(&p);
    return cost_per(t0, t1, 2 * round_trips);
}

static void bm_raw_switch(gr_bench_state *st)
{
    struct raw_pair p;
    int rc = raw_pair_start(&p);
    if (rc < 0) {
        gr_bench_error_rc(st, "mmap", rc);
        return;
    }
    /* One iteration = one switch: a batch is RAW_BATCH/2 round trips. */
    while (gr_bench_keep_running_batch(st, RAW_BATCH))
        for (int i = 0; i < RAW_BATCH / 2; i++)
            gr__ctx_switch(&p.m, p.b, &p);
    raw_pair_stop(&p);
}

/* =====================================================================
 * yield_pingpong: workers=1, two tasks yielding to each other.
 * One iteration = one round trip (A -> B -> A) = two gr_yield calls.
 * ===================================================================== */

struct pingpong {
    gr_bench_state *st;
    _Atomic int stop;
    int64_t partner_yields, partner_at_end;
    int64_t iterations;
    struct cost round_trip, raw;
};

static int pingpong_partner(void *arg)
{
    struct pingpong *p = arg;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed)) {
        gr_yield();
        p->partner_yields++;
    }
    return 0;
}

static int pingpong_main(void *arg)
{
    struct pingpong *p = arg;
    gr_task *partner;
    int rc = gr_spawn(&partner, pingpong_partner, p, NULL);
    if (rc < 0) {
        gr_bench_error_rc(p->st, "gr_spawn", rc);
        return rc;
    }
    gr_yield(); /* the partner starts and yields back */
    /* The raw baseline runs here, on the worker thread, just before and
     * just after the loop: one run, one thread, adjacent in time. */
    struct cost raw_before = raw_switch_cost(BASELINE_BUDGET_NS / 2);
    p->partner_yields = 0;
    struct stamp t0 = stamp_now();
    while (gr_bench_keep_running(p->st))
        gr_yield();
    struct stamp t1 = stamp_now();
    p->iterations = gr_bench_iterations(p->st);
    /* Each of our yields resumed the partner once, and it counted that;
     * the join below resumes it once more. */
    p->partner_at_end = p->partner_yields;
    p->round_trip = cost_per(t0, t1, p->iterations);
    p->raw = cost_mean(raw_before, raw_switch_cost(BASELINE_BUDGET_NS / 2));
    atomic_store(&p->stop, 1);
    return gr_join(partner);
}

static void bm_yield_pingpong(gr_bench_state *st)
{
    struct pingpong p = {.st = st};
    if (gr_bench_run_runtime(st, pingpong_main, &p, 1) < 0 || p.iterations == 0)
        return;
    if (p.raw.wall <= 0) {
        gr_bench_error_rc(st, "raw switch baseline", (int)p.raw.wall);
        return;
    }
    /* If yield returned without switching, the partner did not run: then
     * this would measure nothing. */
    double partner_ratio = (double)p.partner_at_end / (double)p.iterations;
    if (partner_ratio < 0.9 || partner_ratio > 1.1) {
        char msg[128];
        snprintf(msg, sizeof msg, "partner yielded %.3f times per round trip (want 1)",
                 partner_ratio);
        gr_bench_error(st, msg);
        return;
    }
    gr_bench_counter(st, "raw_switch_ns", p.raw.wall);
    gr_bench_counter(st, "vs_raw_round_trip", p.round_trip.wall / (2.0 * p.raw.wall));
    gr_bench_counter(st, "vs_raw_round_trip_cpu", p.round_trip.cpu / (2.0 * p.raw.cpu));
}

/* =====================================================================
 * spawn_join: workers=1, spawn a trivial task and join it.
 * ===================================================================== */

struct simple {
    gr_bench_state *st;
};

static int trivial_task(void *arg)
{
    (void)arg;
    return 0;
}

static int spawn_join_main(void *arg)
{
    struct simple *s = arg;
    while (gr_bench_keep_running(s->st)) {
        gr_task *t;
        int rc = gr_spawn(&t, trivial_task, NULL, NULL);
        if (rc == 0)
            rc = gr_join(t);
        if (rc != 0)
            gr_bench_error_rc(s->st, "spawn/join", rc); /* the next keep_running ends the loop */
    }
    return 0;
}

static void bm_spawn_join(gr_bench_state *st)
{
    struct simple s = {.st = st};
    gr_bench_run_runtime(st, spawn_join_main, &s, 1);
}

/* =====================================================================
 * skynet_1m: all workers, 1,000,000 leaf tasks in a 10-ary tree (six
 * levels, 1,111,111 tasks in all) summing 0..999999.
 * Task results are ints, so each node writes its 64-bit sum into its
 * argument, which lives in the parent's frame.
 * ===================================================================== */

#define SKYNET_LEAVES INT64_C(1000000)
#define SKYNET_DIV 10
#define SKYNET_SUM INT64_C(499999500000)

struct sky_node {
    int64_t num, size, sum;
};

static int skynet_task(void *arg)
{
    struct sky_node *n = arg;
    if (n->size == 1) {
        n->sum = n->num;
        return 0;
    }
    struct sky_node kids[SKYNET_DIV];
    gr_task *h[SKYNET_DIV];
    int64_t sub = n->size / SKYNET_DIV;
    int spawned = 0, rc = 0;
    for (; spawned < SKYNET_DIV; spawned++) {
        kids[spawned] = (struct sky_node){.num = n->num + spawned * sub, .size = sub};
        if ((rc = gr_spawn(&h[spawned], skynet_task, &kids[spawned], NULL)) < 0)
            break;
    }
    int64_t sum = 0;
    for (int i = 0; i < spawned; i++) {
        int jr = gr_join(h[i]);
        if (jr != 0 && rc == 0)
            rc = jr;
        sum += kids[i].sum;
    }
    n->sum = sum;
    return rc;
}

/* One skynet run; 0, or a negative errno / -EPROTO for a wrong sum (with
 * the reason reported on st). */
static int skynet_once(gr_bench_state *st)
{
    struct sky_node root = {.num = 0, .size = SKYNET_LEAVES};
    gr_task *t;
    int rc = gr_spawn(&t, skynet_task, &root, NULL);
    if (rc == 0)
        rc = gr_join(t);
    if (rc != 0) {
        gr_bench_error_rc(st, "skynet spawn/join", rc);
        return rc < 0 ? rc : -EPROTO;
    }
    if (root.sum != SKYNET_SUM) {
        char msg[128];
        snprintf(msg, sizeof msg, "skynet sum %lld, want %lld", (long long)root.sum,
                 (long long)SKYNET_SUM);
        gr_bench_error(st, msg);
        return -EPROTO;
    }
    return 0;
}

struct skynet {
    gr_bench_state *st;
    double cold_ms;
    long rss_kb;
};

static int skynet_main(void *arg)
{
    struct skynet *s = arg;
    /* The first run after gr_run maps and faults in fresh stacks; it is
     * reported apart (cold_ms), the loop measures runs on pooled stacks. */
    int64_t t0 = gr_bench_now_ns();
    int rc = skynet_once(s->st);
    s->cold_ms = (double)(gr_bench_now_ns() - t0) / 1e6;
    while (gr_bench_keep_running(s->st))
        if (rc == 0)
            rc = skynet_once(s->st); /* after an error the loop ends */
    s->rss_kb = status_kb("VmRSS"); /* stacks still pooled */
    return 0;
}

static void bm_skynet_1m(gr_bench_state *st)
{
    struct skynet s = {.st = st};
    if (gr_bench_run_runtime(st, skynet_main, &s, 0) == 0) {
        gr_bench_set_items(st, gr_bench_iterations(st) * SKYNET_LEAVES);
        gr_bench_counter(st, "cold_ms", s.cold_ms);
        gr_bench_counter(st, "rss_after_MB", (double)s.rss_kb / 1024.0);
    }
}

/* =====================================================================
 * sleep_storm: all workers, 100,000 tasks each sleeping a random 1-10 ms,
 * all joined. Lateness = wake-up time - deadline, averaged over every
 * sleeper of every storm.
 * ===================================================================== */

#define STORM_TASKS 100000

struct sleeper {
    int64_t delay;
    int64_t late;
};

struct storm {
    gr_bench_state *st;
    struct sleeper *sleepers;
    gr_task **handles;
    uint32_t rng;
    int64_t late_sum, late_max, late_n;
    double cold_ms, cold_late_mean_us;
};

static int sleeper_task(void *arg)
{
    struct sleeper *s = arg;
    int64_t deadline = gr_now() + s->delay;
    int rc = gr_sleep_until(deadline);
    s->late = gr_now() - deadline;
    return rc;
}

/* One storm: spawn them all, then join them all. Adds the lateness of every
 * sleeper to the totals. */
static int storm_once(struct storm *s)
{
    int spawned = 0, rc = 0;
    for (; spawned < STORM_TASKS; spawned++) {
        s->rng ^= s->rng << 13;
        s->rng ^= s->rng >> 17;
        s->rng ^= s->rng << 5;
        s->sleepers[spawned] = (struct sleeper){
            .delay = NS_PER_MS + (int64_t)(s->rng % (uint32_t)(9 * NS_PER_MS + 1)),
        };
        rc = gr_spawn(&s->handles[spawned], sleeper_task, &s->sleepers[spawned], NULL);
        if (rc < 0)
            break;
    }
    for (int i = 0; i < spawned; i++) {
        int jr = gr_join(s->handles[i]);
        if (jr != 0 && rc == 0)
            rc = jr;
        int64_t late = s->sleepers[i].late;
        s->late_sum += late;
        s->late_n++;
        if (late > s->late_max)
            s->late_max = late;
    }
    if (rc != 0)
        gr_bench_error_rc(s->st, "sleep storm spawn/sleep/join", rc);
    return rc;
}

static int storm_main(void *arg)
{
    struct storm *s = arg;
    s->rng = 0x2545f491u;
    /* The first storm after gr_run faults in fresh stacks: reported apart. */
    int64_t t0 = gr_bench_now_ns();
    int rc = storm_once(s);
    s->cold_ms = (double)(gr_bench_now_ns() - t0) / 1e6;
    s->cold_late_mean_us = s->late_n ? (double)s->late_sum / (double)s->late_n / 1e3 : 0;
    s->late_sum = s->late_max = s->late_n = 0;
    while (gr_bench_keep_running(s->st))
        if (rc == 0)
            rc = storm_once(s);
    return 0;
}

static void bm_sleep_storm(gr_bench_state *st)
{
    struct storm s = {.st = st};
    s.sleepers = calloc(STORM_TASKS, sizeof *s.sleepers);
    s.handles = calloc(STORM_TASKS, sizeof *s.handles);
    if (!s.sleepers || !s.handles) {
        gr_bench_error(st, "out of memory");
    } else if (gr_bench_run_runtime(st, storm_main, &s, 0) == 0 && s.late_n) {
        gr_bench_counter(st, "late_mean_us", (double)s.late_sum / (double)s.late_n / 1e3);
        gr_bench_counter(st, "late_max_us", (double)s.late_max / 1e3);
        gr_bench_counter(st, "cold_ms", s.cold_ms);
        gr_bench_counter(st, "cold_late_mean_us", s.cold_late_mean_us);
        gr_bench_set_items(st, gr_bench_iterations(st) * STORM_TASKS);
    }
    free(s.sleepers);
    free(s.handles);
}

/* =====================================================================
 * cross_worker_wake: workers=2, a one-byte pipe ping-pong between two tasks
 * that each block in gr_read, set up so that they sit on different workers.
 * One iteration = one round trip = two cross-worker wake-ups.
 *
 * Expect microseconds, not nanoseconds: each wake-up makes the kernel wake
 * the other worker's thread out of its ring wait, and this VM has no cpuidle
 * driver, so waking an idle vCPU costs ~10 us (BENCHMARKING.md). The
 * counter cross_frac is the fraction of round trips whose two halves ran on
 * different workers (a task may move at any blocking call).
 * ===================================================================== */

struct xwake {
    gr_bench_state *st;
    int ab[2]; /* main -> partner */
    int ba[2]; /* partner -> main */
    _Atomic int partner_worker;
    int64_t cross, rounds;
};

static int xwake_partner(void *arg)
{
    struct xwake *x = arg;
    /* Report where we run, then block: the read is submitted on this
     * worker's ring, so its completion resumes us here. */
    atomic_store(&x->partner_worker, gr_worker_index());
    for (;;) {
        char c;
        ssize_t n = gr_read(x->ab[0], &c, 1);
        if (n != 1 || c == 'q')
            return n < 0 ? (int)n : 0;
        atomic_store_explicit(&x->partner_worker, gr_worker_index(), memory_order_relaxed);
        if (gr_write(x->ba[1], &c, 1) != 1)
            return -EIO;
    }
}

static int xwake_main(void *arg)
{
    struct xwake *x = arg;
    gr_task *partner;
    atomic_store(&x->partner_worker, -1);
    int rc = gr_spawn(&partner, xwake_partner, x, NULL);
    if (rc < 0) {
        gr_bench_error_rc(x->st, "gr_spawn", rc);
        return rc;
    }
    /* Keep this worker busy (no yield) so the idle worker, woken by the
     * spawn, steals the partner; give up after 200 ms and measure anyway. */
    int64_t give_up = gr_now() + 200 * NS_PER_MS;
    while (atomic_load(&x->partner_worker) < 0 && gr_now() < give_up)
        ;
    if (atomic_load(&x->partner_worker) < 0)
        gr_yield(); /* same worker after all: let the partner start */
    char c = 'p';
    while (gr_bench_keep_running(x->st)) {
        if (gr_write(x->ab[1], &c, 1) != 1 || gr_read(x->ba[0], &c, 1) != 1) {
            gr_bench_error(x->st, "pipe ping-pong failed");
            continue;
        }
        x->rounds++;
        if (atomic_load_explicit(&x->partner_worker, memory_order_relaxed) != gr_worker_index())
            x->cross++;
    }
    c = 'q';
    gr_write(x->ab[1], &c, 1);
    return gr_join(partner);
}

static void bm_cross_worker_wake(gr_bench_state *st)
{
    struct xwake x = {.st = st};
    if (pipe(x.ab) < 0 || pipe(x.ba) < 0) {
        gr_bench_error_rc(st, "pipe", -errno);
        return;
    }
    if (gr_bench_run_runtime(st, xwake_main, &x, 2) == 0 && x.rounds)
        gr_bench_counter(st, "cross_frac", (double)x.cross / (double)x.rounds);
    close(x.ab[0]);
    close(x.ab[1]);
    close(x.ba[0]);
    close(x.ba[1]);
}

/* =====================================================================
 * nop_batch: IORING_OP_NOP through the runtime (gr_nop in a loop in one
 * task, workers=1), against nop_raw_liburing: the same ring set-up and one
 * io_uring_enter per NOP, as the runtime does it.
 * ===================================================================== */

static inline int raw_nop(struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    struct io_uring_cqe *cqe;
    io_uring_prep_nop(sqe);
    int rc = io_uring_submit_and_wait(ring, 1);
    if (rc < 0)
        return rc;
    if ((rc = io_uring_peek_cqe(ring, &cqe)) < 0)
        return rc;
    rc = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    return rc;
}

/* Cost of one raw NOP on a ring of the calling thread, measured for about
 * `budget_ns`; a negative wall time is an errno. */
static struct cost raw_nop_cost(int64_t budget_ns)
{
    struct io_uring ring;
    int rc = gr_bench_raw_ring_init(&ring);
    if (rc < 0)
        return (struct cost){rc, rc};
    int64_t n = 0;
    struct stamp t0 = stamp_now(), t1 = t0;
    do {
        for (int i = 0; i < 1000; i++)
            if ((rc = raw_nop(&ring)) < 0)
                goto out;
        n += 1000;
        t1 = stamp_now();
    } while (t1.wall - t0.wall < budget_ns);
out:
    io_uring_queue_exit(&ring);
    return rc < 0 ? (struct cost){rc, rc} : cost_per(t0, t1, n);
}

static void bm_nop_raw_liburing(gr_bench_state *st)
{
    struct io_uring ring;
    int rc = gr_bench_raw_ring_init(&ring);
    if (rc < 0) {
        gr_bench_error_rc(st, "io_uring_queue_init_params", rc);
        return;
    }
    while (gr_bench_keep_running(st))
        if ((rc = raw_nop(&ring)) < 0)
            gr_bench_error_rc(st, "raw nop", rc);
    io_uring_queue_exit(&ring);
}

struct nop {
    gr_bench_state *st;
    int64_t iterations;
    struct cost per, raw;
};

static int nop_main(void *arg)
{
    struct nop *s = arg;
    /* The raw baseline runs on this worker thread (a ring of its own), just
     * before and just after the loop. */
    struct cost raw_before = raw_nop_cost(BASELINE_BUDGET_NS / 2);
    struct stamp t0 = stamp_now();
    while (gr_bench_keep_running(s->st)) {
        int rc = gr_nop();
        if (rc < 0)
            gr_bench_error_rc(s->st, "gr_nop", rc);
    }
    struct stamp t1 = stamp_now();
    s->iterations = gr_bench_iterations(s->st);
    s->per = cost_per(t0, t1, s->iterations);
    struct cost raw_after = raw_nop_cost(BASELINE_BUDGET_NS / 2);
    s->raw = raw_before.wall < 0 ? raw_before
             : raw_after.wall < 0 ? raw_after
                                  : cost_mean(raw_before, raw_after);
    return 0;
}

static void bm_nop_batch(gr_bench_state *st)
{
    struct nop s = {.st = st};
    if (gr_bench_run_runtime(st, nop_main, &s, 1) < 0 || s.iterations == 0)
        return;
    if (s.raw.wall <= 0) {
        gr_bench_error_rc(st, "raw nop baseline", (int)s.raw.wall);
        return;
    }
    gr_bench_counter(st, "raw_nop_ns", s.raw.wall);
    gr_bench_counter(st, "vs_raw", s.per.wall / s.raw.wall);
    gr_bench_counter(st, "vs_raw_cpu", s.per.cpu / s.raw.cpu);
}

/* =====================================================================
 * RSS per parked task (after all benchmarks): 100,000 tasks all parked in
 * a long gr_sleep; VmRSS before spawning and once all are parked.
 * ===================================================================== */

#define RSS_TASKS 100000
#define RSS_TARGET 8192

struct rss {
    gr_task **handles;
    _Atomic int parked;
    long before_kb, parked_kb;
    int spawned, cancelled_ok;
    int rc;
};

static int parker_task(void *arg)
{
    struct rss *r = arg;
    atomic_fetch_add(&r->parked, 1);
    int rc = gr_sleep(3600 * NS_PER_S);
    return rc == -ECANCELED ? 0 : (rc == 0 ? -EINVAL : rc);
}

static int rss_main(void *arg)
{
    struct rss *r = arg;
    r->before_kb = status_kb("VmRSS");
    for (; r->spawned < RSS_TASKS; r->spawned++) {
        int rc = gr_spawn(&r->handles[r->spawned], parker_task, r, NULL);
        if (rc < 0) {
            r->rc = rc;
            break;
        }
    }
    int64_t give_up = gr_now() + 30 * NS_PER_S;
    while (atomic_load(&r->parked) < r->spawned && gr_now() < give_up)
        gr_yield();
    /* The last ones bumped the counter just before parking: let them park. */
    gr_sleep(20 * NS_PER_MS);
    r->parked_kb = status_kb("VmRSS");
    for (int i = 0; i < r->spawned; i++)
        gr_cancel(r->handles[i]);
    for (int i = 0; i < r->spawned; i++)
        if (gr_join(r->handles[i]) == 0)
            r->cancelled_ok++;
    return 0;
}

static void rss_report(void)
{
    struct rss r = {0};
    r.handles = calloc(RSS_TASKS, sizeof *r.handles);
    if (!r.handles) {
        printf("rss_per_parked_task: out of memory\n");
        return;
    }
    memset(r.handles, 0xff, RSS_TASKS * sizeof *r.handles); /* touch it before the baseline */
    gr_config cfg = {.workers = 0};
    int rc = gr_run(rss_main, &r, &cfg);
    if (rc < 0 || r.rc < 0) {
        printf("rss_per_parked_task: failed: %s\n", strerror(rc < 0 ? -rc : -r.rc));
    } else {
        long delta_kb = r.parked_kb - r.before_kb;
        long per = r.spawned ? delta_kb * 1024 / r.spawned : 0;
        printf("rss_per_parked_task: %ld bytes (target <= %d)%s\n", per, RSS_TARGET,
               per <= RSS_TARGET ? "" : "  ** over target **");
        printf("  %d tasks parked in gr_sleep (%d seen parking), %d workers: VmRSS %ld kB -> %ld "
               "kB; %d of %d joined cleanly after gr_cancel\n",
               r.spawned, atomic_load(&r.parked), (int)sysconf(_SC_NPROCESSORS_ONLN),
               r.before_kb, r.parked_kb, r.cancelled_ok, r.spawned);
    }
    free(r.handles);
    printf("peak_rss (VmHWM, whole run): %ld kB\n", status_kb("VmHWM"));
}

/* ===================================================================== */

GR_BENCH_CONSTRUCTOR(register_core_benchmarks)
{
    gr_bench_register("raw_switch", bm_raw_switch, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("yield_pingpong", bm_yield_pingpong, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("spawn_join", bm_spawn_join, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("skynet_1m", bm_skynet_1m,
                      &(gr_bench_opts){.unit = GR_BENCH_MS, .min_time = 0.5});
    gr_bench_register("sleep_storm", bm_sleep_storm,
                      &(gr_bench_opts){.unit = GR_BENCH_MS, .min_time = 0.5});
    gr_bench_register("cross_worker_wake", bm_cross_worker_wake,
                      &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("nop_batch", bm_nop_batch, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("nop_raw_liburing", bm_nop_raw_liburing,
                      &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_after_all("rss_per_parked_task", rss_report);
}
