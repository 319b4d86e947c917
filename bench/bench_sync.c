/* greenring sync benchmarks: mutex, channels, queue, generator.
 *
 * As in bench_core.c, every benchmark runs gr_run inside the benchmark
 * function and the benchmark loop inside the main task. Times are
 * wall-clock. Targets:
 *   mutex_uncontended          <= 10 ns per lock + unlock
 *   chan_pingpong_same_worker  vs_yield_round_trip <= 4 (the yield round
 *                              trip is measured inline, in the same run)
 * The rest are reported as they are (messages/s for chan_mpmc). */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "greenring.h"

#define BATCH 1000 /* iterations per gr_bench_keep_running_batch call */

struct simple {
    gr_bench_state *st;
};

/* =====================================================================
 * mutex_uncontended: one task, lock + unlock. The floor is two locked
 * compare-and-swaps (acquire, release); raw_cas_pair_ns measures exactly
 * that inline, on the same thread, right after the loop.
 * ===================================================================== */

struct uncontended {
    gr_bench_state *st;
    double loop_ns, raw_ns;
};

static _Atomic uintptr_t raw_word;

static double raw_cas_pair_ns(void)
{
    enum { N = 20000000 };
    int64_t t0 = gr_bench_now_ns();
    for (int i = 0; i < N; i++) {
        uintptr_t e = 0;
        atomic_compare_exchange_strong_explicit(&raw_word, &e, 1, memory_order_acquire,
                                                memory_order_relaxed);
        e = 1;
        atomic_compare_exchange_strong_explicit(&raw_word, &e, 0, memory_order_release,
                                                memory_order_relaxed);
    }
    return (double)(gr_bench_now_ns() - t0) / N;
}

static int mutex_uncontended_main(void *arg)
{
    struct uncontended *u = arg;
    gr_mutex m = GR_MUTEX_INIT;
    int bad = 0;
    int64_t t0 = gr_bench_now_ns();
    while (gr_bench_keep_running_batch(u->st, BATCH))
        for (int i = 0; i < BATCH; i++)
            bad |= gr_mutex_lock(&m) | gr_mutex_unlock(&m);
    u->loop_ns = (double)(gr_bench_now_ns() - t0) / (double)gr_bench_iterations(u->st);
    u->raw_ns = raw_cas_pair_ns();
    if (bad)
        gr_bench_error(u->st, "lock/unlock failed");
    return 0;
}

static void bm_mutex_uncontended(gr_bench_state *st)
{
    struct uncontended u = {st, 0, 0};
    if (gr_bench_run_runtime(st, mutex_uncontended_main, &u, 1) == 0 && u.raw_ns > 0) {
        gr_bench_counter(st, "raw_cas_pair_ns", u.raw_ns);
        gr_bench_counter(st, "vs_raw_cas_pair", u.loop_ns / u.raw_ns);
    }
}

/* =====================================================================
 * mutex_contended: 4 tasks on 2 workers increment one counter under one
 * mutex, yielding inside the critical section so that the other tasks
 * really find it locked. One iteration = one lock + increment + yield +
 * unlock by some task. With FIFO hand-off every contended unlock wakes the
 * next waiter (possibly on the other worker): this measures the park /
 * hand-off / wake path. contended_frac: share of locks that had to wait.
 * ===================================================================== */

#define CONTENDERS 4

struct contended {
    gr_mutex m;
    int64_t per_task;
    int64_t counter;
    _Atomic int64_t waited;
};

static int contender(void *arg)
{
    struct contended *c = arg;
    int64_t waited = 0;
    for (int64_t i = 0; i < c->per_task; i++) {
        if (gr_mutex_trylock(&c->m) != 0) {
            waited++;
            gr_mutex_lock(&c->m);
        }
        c->counter++;
        gr_yield();
        gr_mutex_unlock(&c->m);
    }
    atomic_fetch_add(&c->waited, waited);
    return 0;
}

static int mutex_contended_main(void *arg)
{
    struct simple *s = arg;
    struct contended c = {.m = GR_MUTEX_INIT, .per_task = 2500};
    int64_t batch = c.per_task * CONTENDERS;
    while (gr_bench_keep_running_batch(s->st, batch)) {
        gr_task *t[CONTENDERS];
        for (int i = 0; i < CONTENDERS; i++)
            gr_spawn(&t[i], contender, &c, NULL);
        for (int i = 0; i < CONTENDERS; i++)
            gr_join(t[i]);
    }
    if (c.counter != gr_bench_iterations(s->st))
        gr_bench_error(s->st, "lost increments");
    gr_bench_set_items(s->st, c.counter);
    if (c.counter)
        gr_bench_counter(s->st, "contended_frac",
                         (double)atomic_load(&c.waited) / (double)c.counter);
    return 0;
}

static void bm_mutex_contended(gr_bench_state *st)
{
    struct simple s = {st};
    gr_bench_run_runtime(st, mutex_contended_main, &s, 2);
}

/* =====================================================================
 * chan_pingpong_*: two tasks bounce an int over two rendezvous channels.
 * One iteration = one round trip (send + receive on each side).
 * ===================================================================== */

struct pingpong {
    gr_bench_state *st;
    gr_chan *ab, *ba;
    int cross_worker;
    _Atomic int partner_worker;
    int64_t rounds, cross;
    double yield_rt_ns, chan_rt_ns;
    _Atomic int stop;
};

static int pong(void *arg)
{
    struct pingpong *p = arg;
    atomic_store(&p->partner_worker, gr_worker_index());
    int v;
    while (gr_chan_recv(p->ab, &v) == 0) {
        atomic_store_explicit(&p->partner_worker, gr_worker_index(), memory_order_relaxed);
        if (gr_chan_send(p->ba, &v) != 0)
            break;
    }
    return 0;
}

static int yielder(void *arg)
{
    struct pingpong *p = arg;
    while (!atomic_load_explicit(&p->stop, memory_order_relaxed))
        gr_yield();
    return 0;
}

/* The yield round trip (A -> B -> A) on this worker, for the ratio. */
static double yield_round_trip_ns(struct pingpong *p)
{
    gr_task *t;
    atomic_store(&p->stop, 0);
    if (gr_spawn(&t, yielder, p, NULL) < 0)
        return 0;
    gr_yield();
    enum { N = 200000 };
    int64_t t0 = gr_bench_now_ns();
    for (int i = 0; i < N; i++)
        gr_yield();
    double ns = (double)(gr_bench_now_ns() - t0) / N;
    atomic_store(&p->stop, 1);
    gr_join(t);
    return ns;
}

static int pingpong_main(void *arg)
{
    struct pingpong *p = arg;
    if (!p->cross_worker)
        p->yield_rt_ns = yield_round_trip_ns(p);
    gr_task *partner;
    atomic_store(&p->partner_worker, -1);
    int rc = gr_spawn(&partner, pong, p, NULL);
    if (rc < 0) {
        gr_bench_error_rc(p->st, "gr_spawn", rc);
        return rc;
    }
    if (p->cross_worker) {
        /* Keep this worker busy so the idle one steals the partner. */
        int64_t give_up = gr_now() + 200 * INT64_C(1000000);
        while (atomic_load(&p->partner_worker) < 0 && gr_now() < give_up)
            ;
    }
    int v = 0;
    int64_t t0 = gr_bench_now_ns();
    while (gr_bench_keep_running(p->st)) {
        if (gr_chan_send(p->ab, &v) != 0 || gr_chan_recv(p->ba, &v) != 0) {
            gr_bench_error(p->st, "ping-pong failed");
            continue;
        }
        v++;
        p->rounds++;
        if (atomic_load_explicit(&p->partner_worker, memory_order_relaxed) != gr_worker_index())
            p->cross++;
    }
    p->chan_rt_ns = p->rounds ? (double)(gr_bench_now_ns() - t0) / (double)p->rounds : 0;
    gr_chan_close(p->ab);
    return gr_join(partner);
}

static void pingpong(gr_bench_state *st, int cross_worker)
{
    struct pingpong p = {.st = st, .cross_worker = cross_worker};
    if (gr_chan_create(&p.ab, sizeof(int), 0) < 0 || gr_chan_create(&p.ba, sizeof(int), 0) < 0) {
        gr_bench_error(st, "gr_chan_create");
        return;
    }
    if (gr_bench_run_runtime(st, pingpong_main, &p, cross_worker ? 2 : 1) == 0 && p.rounds) {
        gr_bench_counter(st, "cross_frac", (double)p.cross / (double)p.rounds);
        if (!cross_worker && p.yield_rt_ns > 0) {
            gr_bench_counter(st, "yield_round_trip_ns", p.yield_rt_ns);
            gr_bench_counter(st, "vs_yield_round_trip", p.chan_rt_ns / p.yield_rt_ns);
        }
    }
    gr_chan_destroy(p.ab);
    gr_chan_destroy(p.ba);
}

static void bm_chan_pingpong_same_worker(gr_bench_state *st)
{
    pingpong(st, 0);
}

static void bm_chan_pingpong_cross_worker(gr_bench_state *st)
{
    pingpong(st, 1);
}

/* =====================================================================
 * chan_mpmc: 4 producers, 4 consumers, capacity 64, all workers.
 * One iteration = one message; items/s is the message rate.
 * ===================================================================== */

#define MPMC_SIDE 4
#define MPMC_CAP 64
#define MPMC_BATCH 40000

struct mpmc {
    gr_chan *ch;
    int64_t per_producer;
    _Atomic int64_t received;
};

static int mpmc_producer(void *arg)
{
    struct mpmc *m = arg;
    for (int64_t i = 0; i < m->per_producer; i++)
        if (gr_chan_send(m->ch, &i) != 0)
            return -EPIPE;
    return 0;
}

static int mpmc_consumer(void *arg)
{
    struct mpmc *m = arg;
    int64_t v, n = 0;
    while (gr_chan_recv(m->ch, &v) == 0)
        n++;
    atomic_fetch_add(&m->received, n);
    return 0;
}

static int mpmc_main(void *arg)
{
    struct simple *s = arg;
    struct mpmc m = {.per_producer = MPMC_BATCH / MPMC_SIDE};
    int64_t sent = 0;
    while (gr_bench_keep_running_batch(s->st, MPMC_BATCH)) {
        if (gr_chan_create(&m.ch, sizeof(int64_t), MPMC_CAP) < 0) {
            gr_bench_error(s->st, "gr_chan_create");
            continue;
        }
        gr_task *p[MPMC_SIDE], *c[MPMC_SIDE];
        for (int i = 0; i < MPMC_SIDE; i++) {
            gr_spawn(&c[i], mpmc_consumer, &m, NULL);
            gr_spawn(&p[i], mpmc_producer, &m, NULL);
        }
        for (int i = 0; i < MPMC_SIDE; i++)
            gr_join(p[i]);
        gr_chan_close(m.ch);
        for (int i = 0; i < MPMC_SIDE; i++)
            gr_join(c[i]);
        gr_chan_destroy(m.ch);
        sent += MPMC_BATCH;
    }
    if (atomic_load(&m.received) != sent)
        gr_bench_error(s->st, "lost messages");
    gr_bench_set_items(s->st, sent);
    return 0;
}

static void bm_chan_mpmc(gr_bench_state *st)
{
    struct simple s = {st};
    gr_bench_run_runtime(st, mpmc_main, &s, 0);
}

/* =====================================================================
 * queue_put_get: one task, put then get on a FIFO queue (neither waits).
 * ===================================================================== */

static int queue_main(void *arg)
{
    struct simple *s = arg;
    gr_queue *q;
    if (gr_queue_create(&q, sizeof(int64_t), 64) < 0) {
        gr_bench_error(s->st, "gr_queue_create");
        return 0;
    }
    int64_t v = 0;
    int bad = 0;
    while (gr_bench_keep_running_batch(s->st, BATCH))
        for (int i = 0; i < BATCH; i++) {
            bad |= gr_queue_put(q, &v) | gr_queue_get(q, &v);
            v++;
        }
    if (bad)
        gr_bench_error(s->st, "put/get failed");
    gr_queue_destroy(q);
    return 0;
}

static void bm_queue_put_get(gr_bench_state *st)
{
    struct simple s = {st};
    gr_bench_run_runtime(st, queue_main, &s, 1);
}

/* =====================================================================
 * generator_next: one value from a producer task per iteration (two task
 * switches), on one worker.
 * ===================================================================== */

static int counting(gr_gen *g, void *arg)
{
    (void)arg;
    for (int64_t i = 0;; i++)
        if (gr_gen_yield(g, &i, NULL) < 0)
            return 0;
}

static int generator_main(void *arg)
{
    struct simple *s = arg;
    gr_gen *g;
    gr_gen_opts opts = {.elem_size = sizeof(int64_t)};
    if (gr_gen_create(&g, counting, NULL, &opts) < 0) {
        gr_bench_error(s->st, "gr_gen_create");
        return 0;
    }
    int64_t v, expect = 0;
    while (gr_bench_keep_running(s->st)) {
        if (gr_gen_next(g, &v) != 1 || v != expect++)
            gr_bench_error(s->st, "wrong value");
    }
    gr_gen_close(g);
    return 0;
}

static void bm_generator_next(gr_bench_state *st)
{
    struct simple s = {st};
    gr_bench_run_runtime(st, generator_main, &s, 1);
}

GR_BENCH_CONSTRUCTOR(register_sync_benchmarks)
{
    gr_bench_register("mutex_uncontended", bm_mutex_uncontended,
                      &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("mutex_contended", bm_mutex_contended, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("chan_pingpong_same_worker", bm_chan_pingpong_same_worker,
                      &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("chan_pingpong_cross_worker", bm_chan_pingpong_cross_worker,
                      &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("chan_mpmc", bm_chan_mpmc, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("queue_put_get", bm_queue_put_get, &(gr_bench_opts){.unit = GR_BENCH_NS});
    gr_bench_register("generator_next", bm_generator_next, &(gr_bench_opts){.unit = GR_BENCH_NS});
}
