/* Soak test of the sync primitives: many producers and consumers on every
 * worker, tiny capacities, interrupts sprinkled in, foreign threads. Every
 * check is an exact oracle (each item seen exactly once, counters exact).
 * Run with `./zigw build soak`; it is also clean under TSan (build it by
 * hand with -fsanitize=thread -DGR_TSAN=1). GR_STRESS_SCALE (default 1)
 * multiplies the item counts. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "support/support.h"

static int scale(void)
{
    const char *s = getenv("GR_STRESS_SCALE");
    int n = s ? atoi(s) : 1;
    return n > 0 ? n : 1;
}

static gr_task *spawn(gr_task_fn fn, void *arg)
{
    gr_task *t = NULL;
    ck_assert_int_eq(gr_spawn(&t, fn, arg, NULL), 0);
    return t;
}

/* ---------------------------------------------------------------------
 * Channels: 8 producers (6 tasks + 2 foreign threads), 8 consumers that
 * select over two channels, some of them under short timeouts.
 * --------------------------------------------------------------------- */

#define CH_PRODUCERS 6
#define CH_THREADS 2
#define CH_CONSUMERS 8

struct chstress {
    gr_chan *a, *b;
    gr_chan *done; /* the foreign threads report here when they are done */
    int per_producer;
    int total;
    _Atomic unsigned char *seen;
    _Atomic long received, timeouts;
};

struct chprod {
    struct chstress *s;
    int id;
};

static void produce(struct chstress *s, int id)
{
    for (int i = 0; i < s->per_producer; i++) {
        int v = id * s->per_producer + i;
        int rc = gr_chan_send(i & 1 ? s->a : s->b, &v);
        if (rc != 0)
            abort();
    }
}

static int ch_producer(void *arg)
{
    struct chprod *p = arg;
    produce(p->s, p->id);
    return 0;
}

static void *ch_thread(void *arg)
{
    struct chprod *p = arg;
    produce(p->s, p->id);
    int one = 1;
    if (gr_chan_send(p->s->done, &one) != 0)
        abort();
    return NULL;
}

static int ch_consumer(void *arg)
{
    struct chstress *s = arg;
    int v, open = 2, n = 0;
    gr_select_case c[2] = {{.chan = s->a, .op = GR_SELECT_RECV, .elem = &v},
                           {.chan = s->b, .op = GR_SELECT_RECV, .elem = &v}};
    while (open) {
        int k;
        if (++n % 7 == 0) {
            /* A select that often times out must take nothing. */
            gr_scope sc;
            gr_scope_enter_timeout(&sc, 2000);
            k = gr_select(c, 2, GR_NO_DEADLINE);
            gr_scope_leave(&sc);
            if (k == -ETIMEDOUT) {
                atomic_fetch_add(&s->timeouts, 1);
                continue;
            }
        } else {
            k = gr_select(c, 2, GR_NO_DEADLINE);
        }
        ck_assert_int_ge(k, 0);
        if (c[k].result == -EPIPE) {
            c[k].chan = NULL;
            open--;
            continue;
        }
        ck_assert(v >= 0 && v < s->total);
        ck_assert_int_eq(atomic_fetch_add(&s->seen[v], 1), 0);
        atomic_fetch_add(&s->received, 1);
    }
    return 0;
}

static int chan_main(void *arg)
{
    struct chstress *s = arg;
    struct chprod p[CH_PRODUCERS + CH_THREADS];
    gr_task *pt[CH_PRODUCERS], *ct[CH_CONSUMERS];
    pthread_t th[CH_THREADS];
    for (int i = 0; i < CH_CONSUMERS; i++)
        ct[i] = spawn(ch_consumer, s);
    for (int i = 0; i < CH_PRODUCERS + CH_THREADS; i++) {
        p[i] = (struct chprod){s, i};
        if (i < CH_PRODUCERS)
            pt[i] = spawn(ch_producer, &p[i]);
        else
            ck_assert_int_eq(pthread_create(&th[i - CH_PRODUCERS], NULL, ch_thread, &p[i]), 0);
    }
    for (int i = 0; i < CH_PRODUCERS; i++)
        ck_assert_int_eq(gr_join(pt[i]), 0);
    /* Wait for the threads in a task-friendly way; after its report a
     * thread only returns, so the joins below hardly block. */
    for (int i = 0; i < CH_THREADS; i++) {
        int one;
        ck_assert_int_eq(gr_chan_recv(s->done, &one), 0);
    }
    for (int i = 0; i < CH_THREADS; i++)
        pthread_join(th[i], NULL);
    gr_chan_close(s->a);
    gr_chan_close(s->b);
    for (int i = 0; i < CH_CONSUMERS; i++)
        ck_assert_int_eq(gr_join(ct[i]), 0);
    return 0;
}

static void run_chan(size_t cap)
{
    struct chstress s = {.per_producer = 20000 * scale()};
    s.total = s.per_producer * (CH_PRODUCERS + CH_THREADS);
    s.seen = calloc((size_t)s.total, 1);
    ck_assert_ptr_nonnull(s.seen);
    ck_assert_int_eq(gr_chan_create(&s.a, sizeof(int), cap), 0);
    ck_assert_int_eq(gr_chan_create(&s.b, sizeof(int), cap), 0);
    ck_assert_int_eq(gr_chan_create(&s.done, sizeof(int), GR_CHAN_UNBOUNDED), 0);
    gr_test_run_ok(chan_main, &s, 0);
    ck_assert_int_eq(atomic_load(&s.received), s.total);
    for (int i = 0; i < s.total; i++)
        ck_assert_int_eq(atomic_load(&s.seen[i]), 1);
    ck_assert_int_eq(gr_chan_destroy(s.a), 0);
    ck_assert_int_eq(gr_chan_destroy(s.b), 0);
    ck_assert_int_eq(gr_chan_destroy(s.done), 0);
    free((void *)s.seen);
}

START_TEST(stress_chan_rendezvous)
{
    run_chan(0);
}
END_TEST

START_TEST(stress_chan_capacity_1)
{
    run_chan(1);
}
END_TEST

START_TEST(stress_chan_capacity_3)
{
    run_chan(3);
}
END_TEST

/* ---------------------------------------------------------------------
 * Queues: maxsize 1, task_done/join, consumers cancelled at the end.
 * --------------------------------------------------------------------- */

#define Q_PRODUCERS 8
#define Q_CONSUMERS 8

struct qstress {
    gr_queue *q;
    int per_producer, total;
    _Atomic unsigned char *seen;
    _Atomic long consumed;
};

struct qprod {
    struct qstress *s;
    int id;
};

static int q_producer(void *arg)
{
    struct qprod *p = arg;
    for (int i = 0; i < p->s->per_producer; i++) {
        int v = p->id * p->s->per_producer + i;
        ck_assert_int_eq(gr_queue_put(p->s->q, &v), 0);
    }
    return 0;
}

static int q_consumer(void *arg)
{
    struct qstress *s = arg;
    for (int n = 0;; n++) {
        int v, rc;
        if (n % 5 == 0) {
            gr_scope sc;
            gr_scope_enter_timeout(&sc, 3000);
            rc = gr_queue_get(s->q, &v);
            gr_scope_leave(&sc);
            if (rc == -ETIMEDOUT)
                continue;
        } else {
            rc = gr_queue_get(s->q, &v);
        }
        if (rc < 0)
            return rc == -ESHUTDOWN ? 0 : rc;
        ck_assert_int_eq(atomic_fetch_add(&s->seen[v], 1), 0);
        atomic_fetch_add(&s->consumed, 1);
        ck_assert_int_eq(gr_queue_task_done(s->q), 0);
    }
}

static int queue_main(void *arg)
{
    struct qstress *s = arg;
    struct qprod p[Q_PRODUCERS];
    gr_task *pt[Q_PRODUCERS], *ct[Q_CONSUMERS];
    for (int i = 0; i < Q_CONSUMERS; i++)
        ct[i] = spawn(q_consumer, s);
    for (int i = 0; i < Q_PRODUCERS; i++) {
        p[i] = (struct qprod){s, i};
        pt[i] = spawn(q_producer, &p[i]);
    }
    for (int i = 0; i < Q_PRODUCERS; i++)
        ck_assert_int_eq(gr_join(pt[i]), 0);
    ck_assert_int_eq(gr_queue_join(s->q), 0);
    ck_assert_int_eq(atomic_load(&s->consumed), s->total);
    gr_queue_shutdown(s->q, 0);
    for (int i = 0; i < Q_CONSUMERS; i++)
        ck_assert_int_eq(gr_join(ct[i]), 0);
    return 0;
}

static void run_queue(int kind)
{
    struct qstress s = {.per_producer = 10000 * scale()};
    s.total = s.per_producer * Q_PRODUCERS;
    s.seen = calloc((size_t)s.total, 1);
    ck_assert_ptr_nonnull(s.seen);
    if (kind == 0)
        ck_assert_int_eq(gr_queue_create(&s.q, sizeof(int), 1), 0);
    else
        ck_assert_int_eq(gr_lifo_queue_create(&s.q, sizeof(int), 2), 0);
    gr_test_run_ok(queue_main, &s, 0);
    for (int i = 0; i < s.total; i++)
        ck_assert_int_eq(atomic_load(&s.seen[i]), 1);
    ck_assert_int_eq(gr_queue_destroy(s.q), 0);
    free((void *)s.seen);
}

START_TEST(stress_queue_fifo)
{
    run_queue(0);
}
END_TEST

START_TEST(stress_queue_lifo)
{
    run_queue(1);
}
END_TEST

/* ---------------------------------------------------------------------
 * Locks: mutex counter with yields, semaphore bound, condition hand-off,
 * rwlock, under random cancellation of some waiters.
 * --------------------------------------------------------------------- */

#define LOCK_TASKS 16

struct lstress {
    gr_mutex m;
    gr_rwlock rw;
    gr_sem sem;
    gr_cond cond;
    int rounds;
    long counter;   /* under m */
    long rw_value;  /* under rw (write) */
    int tokens;     /* under m, moved through cond */
    _Atomic int in_sem, max_in_sem;
    _Atomic long interrupted;
    _Atomic int rw_writers, rw_violations;
};

static int has_token(void *arg)
{
    struct lstress *s = arg;
    return s->tokens > 0;
}

static int lock_task(void *arg)
{
    struct lstress *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        ck_assert_int_eq(gr_mutex_lock(&s->m), 0);
        long v = s->counter;
        if (i % 3 == 0)
            gr_yield();
        s->counter = v + 1;
        ck_assert_int_eq(gr_mutex_unlock(&s->m), 0);

        /* Semaphore of 3, sometimes under a timeout that may fire. */
        gr_scope sc;
        gr_scope_enter_timeout(&sc, i % 4 == 0 ? 5000 : GR_NO_DEADLINE);
        int rc = gr_sem_acquire(&s->sem);
        gr_scope_leave(&sc);
        if (rc == 0) {
            int in = atomic_fetch_add(&s->in_sem, 1) + 1;
            int max = atomic_load(&s->max_in_sem);
            while (in > max && !atomic_compare_exchange_weak(&s->max_in_sem, &max, in))
                ;
            gr_yield();
            atomic_fetch_sub(&s->in_sem, 1);
            ck_assert_int_eq(gr_sem_release(&s->sem), 0);
        } else {
            ck_assert_int_eq(rc, -ETIMEDOUT);
            atomic_fetch_add(&s->interrupted, 1);
        }

        /* A token goes around through the condition variable. */
        ck_assert_int_eq(gr_mutex_lock(&s->m), 0);
        ck_assert_int_eq(gr_cond_wait_for(&s->cond, &s->m, has_token, s), 0);
        s->tokens--;
        gr_yield();
        s->tokens++;
        gr_cond_signal(&s->cond);
        ck_assert_int_eq(gr_mutex_unlock(&s->m), 0);

        /* Readers and writers. */
        if (i % 5 == 0) {
            ck_assert_int_eq(gr_rwlock_wrlock(&s->rw), 0);
            if (atomic_fetch_add(&s->rw_writers, 1) != 0)
                atomic_fetch_add(&s->rw_violations, 1);
            long w = s->rw_value;
            gr_yield();
            s->rw_value = w + 1;
            atomic_fetch_sub(&s->rw_writers, 1);
            ck_assert_int_eq(gr_rwlock_wrunlock(&s->rw), 0);
        } else {
            ck_assert_int_eq(gr_rwlock_rdlock(&s->rw), 0);
            if (atomic_load(&s->rw_writers) != 0)
                atomic_fetch_add(&s->rw_violations, 1);
            ck_assert_int_eq(gr_rwlock_rdunlock(&s->rw), 0);
        }
    }
    return 0;
}

static int locks_main(void *arg)
{
    struct lstress *s = arg;
    gr_task *t[LOCK_TASKS];
    for (int i = 0; i < LOCK_TASKS; i++)
        t[i] = spawn(lock_task, s);
    for (int i = 0; i < LOCK_TASKS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(stress_locks)
{
    static struct lstress s;
    memset(&s, 0, sizeof(s));
    s.rounds = 2000 * scale();
    s.tokens = 2;
    gr_mutex_init(&s.m);
    gr_rwlock_init(&s.rw);
    gr_sem_init(&s.sem, 3);
    gr_cond_init(&s.cond);
    gr_test_run_ok(locks_main, &s, 0);
    ck_assert_int_eq(s.counter, (long)LOCK_TASKS * s.rounds);
    ck_assert_int_le(atomic_load(&s.max_in_sem), 3);
    ck_assert_int_eq(gr_sem_value(&s.sem), 3);
    ck_assert_int_eq(s.tokens, 2);
    ck_assert_int_eq(atomic_load(&s.rw_violations), 0);
    ck_assert_int_eq(s.rw_value, (long)LOCK_TASKS * ((s.rounds + 4) / 5));
    ck_assert_int_eq(gr_mutex_destroy(&s.m), 0);
    ck_assert_int_eq(gr_rwlock_destroy(&s.rw), 0);
}
END_TEST

/* ---------------------------------------------------------------------
 * Generators: many at once, consumed from tasks on every worker.
 * --------------------------------------------------------------------- */

#define GENS 16

static int gen_range(gr_gen *g, void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        if (gr_gen_yield(g, &i, NULL) < 0)
            return -ECANCELED;
    return 0;
}

static int gen_consumer(void *arg)
{
    int n = *(int *)arg;
    gr_gen_opts o = {.elem_size = sizeof(int)};
    gr_gen *g;
    ck_assert_int_eq(gr_gen_create(&g, gen_range, arg, &o), 0);
    int v, expect = 0;
    /* Half of them stop early and close. */
    int stop = (n / 2) * (gr_worker_index() & 1);
    while (gr_gen_next(g, &v) == 1) {
        ck_assert_int_eq(v, expect++);
        if (stop && expect == stop)
            break;
    }
    ck_assert_int_eq(expect, stop ? stop : n);
    ck_assert_int_eq(gr_gen_close(g), 0);
    return 0;
}

static int gens_main(void *arg)
{
    gr_task *t[GENS];
    for (int i = 0; i < GENS; i++)
        t[i] = spawn(gen_consumer, arg);
    for (int i = 0; i < GENS; i++)
        ck_assert_int_eq(gr_join(t[i]), 0);
    return 0;
}

START_TEST(stress_generators)
{
    int n = 5000 * scale();
    gr_test_run_ok(gens_main, &n, 0);
}
END_TEST

Suite *gr_test_suite(void)
{
    Suite *s = suite_create("stress_sync");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, stress_chan_rendezvous);
    tcase_add_test(tc, stress_chan_capacity_1);
    tcase_add_test(tc, stress_chan_capacity_3);
    tcase_add_test(tc, stress_queue_fifo);
    tcase_add_test(tc, stress_queue_lifo);
    tcase_add_test(tc, stress_locks);
    tcase_add_test(tc, stress_generators);
    suite_add_tcase(s, tc);
    return s;
}
